//! The broker-side objects the bridge declares at every (re)connect.
//!
//! - a durable topic exchange (default `ml_pipeline`), routing keys
//!   `features`, `y_true`, `y_pred`, `metrics`;
//! - the queues `features`, `y_true`, `y_pred` that the original Python
//!   services read, bound to the exchange under their routing key, so those
//!   services keep working unchanged;
//! - with `history.enabled`, the history stream ([`declare_history`]), bound
//!   with `#` so it keeps every message, read by `modelwatch replay`.
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
//!
//! The split layout's objects are declared here too ([`declare_work_queue`]):
//! the dead-letter exchange and queue, and each role's durable, bounded work
//! queue. Those are declared strictly: a broker that holds one with other
//! properties (another `x-max-length`, a reserved `amq.` name) refuses, and
//! [`DeclareError`] names the config key of the object, so the start-up
//! check ([`super::connection::check_topology`]) can exit 2 on it rather than
//! let a consumer retry a declaration that can never succeed.

use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Connection, ExchangeKind};

use super::publish::stats::BridgeStats;
use crate::config::{BridgeSettings, HistorySettings, InboundSettings};
use crate::core::messages::Kind;

/// The legacy queues: the kinds the Python services exchanged.
pub const LEGACY_KINDS: [Kind; 3] = [Kind::Features, Kind::YTrue, Kind::YPred];

/// A declaration that failed, with the config key that names the object.
#[derive(Debug, thiserror::Error)]
#[error("{key} ({object}): {error}")]
pub struct DeclareError {
    /// The config key whose value names the object (`bridge.exchange`, ...).
    pub key: &'static str,
    /// What was declared, e.g. `queue 'ml_pipeline.dlq'` (escaped).
    pub object: String,
    pub error: lapin::Error,
}

impl DeclareError {
    /// Did the broker refuse for good: 406 PRECONDITION_FAILED (it exists
    /// with other properties) or 403 ACCESS_REFUSED (a reserved `amq.` name,
    /// or no permission)? A retry cannot fix either: a configuration error.
    pub fn is_refusal(&self) -> bool {
        use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
        matches!(self.error.kind(), lapin::ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::ACCESSREFUSED)))
    }

    /// Did the broker answer the history stream's declaration with any
    /// protocol error? A broker without streams refuses `x-queue-type =
    /// stream` in more than one way (406, 540 NOT_IMPLEMENTED, 541), and
    /// none of them goes away with a retry.
    pub fn is_history_refusal(&self) -> bool {
        self.key == "history.queue"
            && matches!(self.error.kind(), lapin::ErrorKind::ProtocolError(_))
    }
}

/// Tags a failed declaration with its key and object.
fn on(key: &'static str, kind: &str, name: &str) -> impl FnOnce(lapin::Error) -> DeclareError {
    let object = format!("{kind} '{}'", name.escape_debug());
    move |error| DeclareError { key, object, error }
}

/// Declares the exchange and, if enabled, the legacy queues and bindings
/// (the history stream is [`declare_history`]).
pub async fn declare(conn: &Connection, s: &BridgeSettings) -> lapin::Result<()> {
    declare_checked(conn, s).await.map_err(|e| e.error)
}

/// [`declare`], telling which object failed.
pub async fn declare_checked(conn: &Connection, s: &BridgeSettings) -> Result<(), DeclareError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(on("bridge.url", "channel", ""))?;
    declare_exchange(&ch, s).await?;
    if s.legacy_queues {
        for kind in LEGACY_KINDS {
            let name = kind.routing_key();
            declare_legacy_queue(conn, name).await.map_err(on(
                "bridge.legacy_queues",
                "queue",
                name,
            ))?;
            ch.queue_bind(
                name.into(),
                s.exchange.as_str().into(),
                name.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(on("bridge.legacy_queues", "binding of queue", name))?;
        }
    }
    let _ = ch.close(200, "topology declared".into()).await;
    Ok(())
}

/// The durable topic exchange of `bridge.exchange`.
async fn declare_exchange(ch: &lapin::Channel, s: &BridgeSettings) -> Result<(), DeclareError> {
    exchange(ch, &s.exchange)
        .await
        .map_err(on("bridge.exchange", "exchange", &s.exchange))
}

/// Declares the exchange `name` as the bridge does: a durable topic
/// exchange. The one place it is written; consumers (the examples, the
/// tests, the bench) declare it through here to be able to start first.
pub async fn exchange(ch: &lapin::Channel, name: &str) -> lapin::Result<()> {
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}

/// A work queue of the split layout: its name, the key that names it and
/// the routing key it is bound under.
#[derive(Debug, Clone, Copy)]
pub struct WorkQueue<'a> {
    pub key: &'static str,
    pub name: &'a str,
    pub kind: Kind,
}

/// Declares the dead-letter exchange and queue, and the work queue `q`
/// bound to the exchange under its kind's routing key. A legacy queue (a
/// queue of the original Python services) is declared as they declare it
/// and accepted as it is; every other object is declared strictly, so a
/// refusal names its key (see [`DeclareError::is_refusal`]).
pub async fn declare_work_queue(
    conn: &Connection,
    bridge: &BridgeSettings,
    s: &InboundSettings,
    q: WorkQueue<'_>,
) -> Result<(), DeclareError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(on("bridge.url", "channel", ""))?;
    declare_exchange(&ch, bridge).await?;
    let dlx = s.dead_letter_exchange.as_str();
    ch.exchange_declare(
        dlx.into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(on("inbound.dead_letter_exchange", "exchange", dlx))?;
    let mut bounded = FieldTable::default();
    bounded.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(s.queue_max_length as i64),
    );
    // Quorum queues (durable, as every queue here is) only with the type
    // asked for: a classic queue is declared without the argument, as it
    // always was, so existing queues still match.
    if s.queue_type == crate::config::inbound::QueueType::Quorum {
        bounded.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from(s.queue_type.as_str())),
        );
    }
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let dlq = s.dead_letter_queue.as_str();
    ch.queue_declare(dlq.into(), durable_queue, bounded.clone())
        .await
        .map_err(on("inbound.dead_letter_queue", "queue", dlq))?;
    ch.queue_bind(
        dlq.into(),
        dlx.into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(on("inbound.dead_letter_queue", "binding of queue", dlq))?;
    if is_legacy_queue(q.name) {
        // A queue of the original Python services: declared as they declare
        // it, or they could not declare it any more.
        declare_legacy_queue(conn, q.name)
            .await
            .map_err(on(q.key, "queue", q.name))?;
    } else {
        // Bounded: past the bound the oldest is dead-lettered (reason
        // `maxlen`), so a role that is gone for good cannot make its queue
        // fill the broker.
        let mut args = bounded;
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(dlx)),
        );
        ch.queue_declare(q.name.into(), durable_queue, args)
            .await
            .map_err(on(q.key, "queue", q.name))?;
    }
    ch.queue_bind(
        q.name.into(),
        bridge.exchange.as_str().into(),
        q.kind.routing_key().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(on(q.key, "binding of queue", q.name))?;
    let _ = ch.close(200, "declared".into()).await;
    Ok(())
}

/// The arguments of the history stream: its type and its retention.
pub fn history_arguments(h: &HistorySettings) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("stream")),
    );
    args.insert(
        "x-max-age".into(),
        AMQPValue::LongString(LongString::from(h.max_age.as_str())),
    );
    args.insert(
        "x-max-length-bytes".into(),
        AMQPValue::LongLongInt(h.max_bytes as i64),
    );
    args.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongLongInt(h.segment_bytes as i64),
    );
    args
}

/// Set once the difference of an existing stream was logged (the bridge
/// declares at every reconnect: one line per process is enough).
static HISTORY_DIFFERENCE_LOGGED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Declares the history stream of `h` (durable, `x-queue-type = stream`,
/// with its retention) and binds it to the exchange with `#`, so it keeps
/// every routing key, those of the monitor included. Idempotent. When the
/// stream exists with other retention arguments the broker refuses (406,
/// and closes the channel): it is then used as it is, checked with a
/// passive declare on a fresh channel, and the broker's reason (which
/// names the argument and both values) is logged once. A queue of that
/// name that is not a stream, or a broker that cannot make one (no
/// streams), is a refusal naming `history.queue`.
pub async fn declare_history(
    conn: &Connection,
    bridge: &BridgeSettings,
    h: &HistorySettings,
) -> Result<(), DeclareError> {
    const KEY: &str = "history.queue";
    let name = h.queue.as_str();
    let ch = conn
        .create_channel()
        .await
        .map_err(on("bridge.url", "channel", ""))?;
    declare_exchange(&ch, bridge).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let ch = match ch
        .queue_declare(name.into(), durable, history_arguments(h))
        .await
    {
        Ok(_) => ch,
        Err(e) if is_precondition_failed(&e) => {
            let reason = crate::core::text::sanitize(&e.to_string());
            let fresh = conn
                .create_channel()
                .await
                .map_err(on("bridge.url", "channel", ""))?;
            if passive(&fresh, name).await.is_err() {
                // It does not exist, yet the broker refused to make it.
                return Err(on(KEY, "stream", name)(e));
            }
            let _ = fresh.close(200, "checked".into()).await;
            if let Some(not_a_stream) = not_a_stream(conn, name, h).await {
                return Err(on(KEY, "stream", name)(not_a_stream));
            }
            let fresh = conn
                .create_channel()
                .await
                .map_err(on("bridge.url", "channel", ""))?;
            if !HISTORY_DIFFERENCE_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    stream = %name.escape_debug(),
                    difference = %reason,
                    "history stream exists with other arguments; using it as it is (delete it, or set the history keys to its values, to change them)"
                );
            }
            fresh
        }
        Err(e) => return Err(on(KEY, "stream", name)(e)),
    };
    ch.queue_bind(
        name.into(),
        bridge.exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(on(KEY, "binding of stream", name))?;
    let _ = ch.close(200, "declared".into()).await;
    Ok(())
}

/// Arguments only a stream takes; a queue that refuses a declaration for
/// one of these (and nothing else) is a stream with other retention.
const STREAM_ARGUMENTS: [&str; 5] = [
    "x-max-age",
    "x-max-length-bytes",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

/// Tells whether the existing queue `name` is not a stream (the history
/// reader asks too, before it consumes: a consumer of a classic queue takes
/// its messages away). First it is declared again with the arguments of
/// `h` ([`history_arguments`]): a stream declared with them (the usual
/// case: `run` made it with the same history keys) accepts that, and no
/// channel is closed (the broker's refusal closes the channel, which lapin
/// logs as an ERROR: a probe that refuses every time would log an ERROR at
/// every start and every replay). Only when that is refused, declared again
/// with `x-queue-type = stream` alone, the broker names the first argument
/// that differs (it compares them in a fixed order, `x-queue-type` after
/// the others). A stream differs only in stream arguments; a classic or
/// quorum queue differs in `x-queue-type` or in an argument a stream
/// cannot have (`x-expires`, `x-max-length`, ...). Returns the broker's
/// refusal for a queue that is not a stream.
pub async fn not_a_stream(
    conn: &Connection,
    name: &str,
    h: &HistorySettings,
) -> Option<lapin::Error> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let ch = conn.create_channel().await.ok()?;
    if ch
        .queue_declare(name.into(), durable, history_arguments(h))
        .await
        .is_ok()
    {
        let _ = ch.close(200, "checked".into()).await;
        return None;
    }
    let ch = conn.create_channel().await.ok()?;
    let mut only_type = FieldTable::default();
    only_type.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("stream")),
    );
    match ch.queue_declare(name.into(), durable, only_type).await {
        Ok(_) => {
            let _ = ch.close(200, "checked".into()).await;
            None
        }
        Err(e) => {
            let text = e.to_string();
            let arg = text
                .split("inequivalent arg '")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .unwrap_or("");
            (!STREAM_ARGUMENTS.contains(&arg)).then_some(e)
        }
    }
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
        if !is_precondition_failed(&e) {
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
/// Did the broker refuse with 406 PRECONDITION_FAILED (other properties)?
pub fn is_precondition_failed(e: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}
