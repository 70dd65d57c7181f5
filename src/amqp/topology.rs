//! The broker-side objects the bridge declares at every (re)connect.
//!
//! - a durable topic exchange (default `ml_pipeline`), routing keys
//!   `features`, `y_true`, `y_pred`, `metrics`;
//! - the queues `features`, `y_true`, `y_pred` that the original Python
//!   services read, bound to the exchange under their routing key, so those
//!   services keep working unchanged.
//!
//! The Python services declare their queues with a plain
//! `queue_declare(queue=...)` (not durable, no arguments), and RabbitMQ
//! refuses a re-declaration with other properties. So a legacy queue is
//! declared exactly that way when it does not exist, and only bound (never
//! re-declared) when it exists with other properties. Because the plain
//! form cannot carry `x-max-length`, the bound is enforced from here instead:
//! [`trim_legacy_queues`] purges a legacy queue that nobody consumes once it
//! holds more than `bridge.legacy_queue_max_length` messages (counted and
//! logged), so a queue nobody reads cannot fill the broker.

use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ExchangeKind};

use super::publish::stats::BridgeStats;
use crate::config::BridgeSettings;
use crate::messages::Kind;

/// The legacy queues: the kinds the Python services exchanged.
pub const LEGACY_KINDS: [Kind; 3] = [Kind::Features, Kind::YTrue, Kind::YPred];

/// Declares the exchange and, if enabled, the legacy queues and bindings.
pub async fn declare(conn: &Connection, s: &BridgeSettings) -> lapin::Result<()> {
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        s.exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    if s.legacy_queues {
        for kind in LEGACY_KINDS {
            declare_legacy_queue(conn, kind.routing_key()).await?;
            ch.queue_bind(
                kind.routing_key().into(),
                s.exchange.as_str().into(),
                kind.routing_key().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
    }
    let _ = ch.close(200, "topology declared".into()).await;
    Ok(())
}

/// Is `name` one of the queues of the original Python services?
pub fn is_legacy_queue(name: &str) -> bool {
    LEGACY_KINDS.iter().any(|k| k.routing_key() == name)
}

/// Declares the legacy queue `name` as the Python services do.
pub async fn declare_legacy_queue(conn: &Connection, name: &str) -> lapin::Result<()> {
    declare_or_accept(
        conn,
        name,
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
}

/// Declares queue `name`; if it already exists with other properties (the
/// broker refuses with 406 and closes the channel), accepts it as it is.
pub async fn declare_or_accept(
    conn: &Connection,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> lapin::Result<()> {
    let ch = conn.create_channel().await?;
    if let Err(e) = ch.queue_declare(name.into(), options, args).await {
        if !super::connection::is_precondition_failed(&e) {
            return Err(e);
        }
        tracing::info!(queue = name, reason = %e, "queue exists with other properties; using it as it is");
        let ch = conn.create_channel().await?;
        passive(&ch, name).await?;
        let _ = ch.close(200, "ok".into()).await;
    } else {
        let _ = ch.close(200, "ok".into()).await;
    }
    Ok(())
}

/// Checks that queue `name` exists; returns its counts.
pub async fn passive(ch: &lapin::Channel, name: &str) -> lapin::Result<lapin::Queue> {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), options, FieldTable::default())
        .await
}

/// Purges each legacy queue that has no consumer and holds more than the
/// bound. Returns the number of messages purged.
pub async fn trim_legacy_queues(
    conn: &Connection,
    s: &BridgeSettings,
    stats: &BridgeStats,
) -> lapin::Result<u64> {
    if !s.legacy_queues {
        return Ok(0);
    }
    let ch = conn.create_channel().await?;
    let mut purged = 0;
    for kind in LEGACY_KINDS {
        let name = kind.routing_key();
        let q = passive(&ch, name).await?;
        if q.consumer_count() == 0 && q.message_count() > s.legacy_queue_max_length {
            let n = ch
                .queue_purge(name.into(), QueuePurgeOptions::default())
                .await? as u64;
            purged += n;
            stats.purged(name, n);
            tracing::warn!(
                queue = name,
                purged = n,
                bound = s.legacy_queue_max_length,
                "legacy queue had no consumer and passed its bound; purged it"
            );
        }
    }
    let _ = ch.close(200, "trimmed".into()).await;
    Ok(purged)
}
