//! The outbound RabbitMQ bridge: mirrors every message of the pipeline onto
//! a topic exchange that anyone can consume from.
//!
//! Two halves joined by a bounded [`outbox::Outbox`]:
//! - [`actor::BridgeActor`], on the actix side, is wired as one more
//!   recipient of features, truths, predictions and metric records;
//! - [`publisher::Publisher`], on a multi-threaded tokio runtime of its own
//!   (lapin's I/O and heartbeats must not stall behind actor work), connects,
//!   declares the [`topology`], publishes with confirms and resends what the
//!   broker did not confirm.
//!
//! Nothing in the pipeline knows about AMQP, and the pipeline never waits
//! for the broker unless the outbox is full and `on_full = "block"`.

pub mod actor;
pub mod decode;
pub mod inbound;
pub mod outbox;
pub mod publisher;
pub mod stats;
pub mod throttle;
pub mod topology;

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::{oneshot, watch};

pub use actor::BridgeActor;
pub use stats::{BridgeStats, StatsSnapshot};

use crate::config::{BridgeSettings, InboundSettings};
use crate::messages::{Batch, Kind};
use decode::Decode;
use inbound::Inbound;
use outbox::Outbox;
use publisher::{Leftover, Publisher};

/// What the bridge reports at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeReport {
    pub stats: StatsSnapshot,
    /// Messages the broker never confirmed (buffered, or refused at shutdown).
    pub undelivered: u64,
}

/// A running bridge.
pub struct Bridge {
    pub actor: Addr<BridgeActor>,
    outbox: Arc<Outbox>,
    stats: Arc<BridgeStats>,
    runtime: tokio::runtime::Runtime,
    shutdown: watch::Sender<Option<Instant>>,
    done: oneshot::Receiver<Leftover>,
    settings: BridgeSettings,
    consumers: Vec<tokio::task::JoinHandle<()>>,
    consumers_stop: watch::Sender<Option<Instant>>,
    consumers_timeout: std::time::Duration,
}

impl Bridge {
    /// Starts the AMQP runtime and the actor (inside an actix System).
    pub fn start(settings: BridgeSettings) -> std::io::Result<Bridge> {
        let stats = Arc::new(BridgeStats::default());
        let outbox = Arc::new(Outbox::new(
            settings.buffer,
            settings.on_full,
            stats.clone(),
        ));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("amqp")
            .enable_all()
            .build()?;
        let (shutdown, shutdown_rx) = watch::channel(None);
        let (done_tx, done) = oneshot::channel();
        let publisher = Publisher::new(
            settings.clone(),
            outbox.clone(),
            stats.clone(),
            shutdown_rx.clone(),
        );
        runtime.spawn(async move {
            let _ = done_tx.send(publisher.run().await);
        });
        runtime.spawn(report_periodically(
            stats.clone(),
            outbox.clone(),
            settings.stats_interval,
            shutdown_rx,
        ));
        let actor_outbox = outbox.clone();
        let actor = Supervisor::start(move |_| BridgeActor::new(actor_outbox));
        Ok(Bridge {
            actor,
            outbox,
            stats,
            runtime,
            shutdown,
            done,
            settings,
            consumers: Vec::new(),
            consumers_stop: watch::channel(None).0,
            consumers_timeout: std::time::Duration::from_secs(10),
        })
    }

    /// Starts an inbound consumer of `queue` (bound to `kind`) feeding `target`.
    pub fn consume<T: Decode>(
        &mut self,
        queue: &str,
        kind: Kind,
        target: Recipient<Batch<T>>,
        settings: &InboundSettings,
    ) where
        Batch<T>: actix::Message<Result = ()> + Send,
    {
        let inbound = Inbound {
            queue: queue.to_owned(),
            kind,
            target,
            stats: Default::default(),
        };
        self.consumers_timeout = settings.shutdown_timeout;
        let run = inbound.run(
            self.settings.clone(),
            settings.clone(),
            self.consumers_stop.subscribe(),
        );
        self.consumers.push(self.runtime.spawn(run));
    }

    /// Stops the inbound consumers: no new deliveries; in-flight work
    /// finishes (bounded by `inbound.shutdown_timeout`) and is acked.
    pub async fn stop_consumers(&mut self) {
        let deadline = Instant::now() + self.consumers_timeout;
        let _ = self.consumers_stop.send(Some(deadline));
        let backstop = deadline + BROKER_OP_TIMEOUT + std::time::Duration::from_secs(5);
        for c in self.consumers.drain(..) {
            let abort = c.abort_handle();
            if tokio::time::timeout_at(backstop.into(), c).await.is_err() {
                tracing::error!("an inbound consumer did not stop in time; abandoning it (its unacked deliveries go back to the queue)");
                abort.abort();
            }
        }
    }

    /// Stops taking new messages without blocking the pipeline: from now on
    /// a full outbox refuses (and counts) instead of waiting.
    pub fn stop_blocking(&self) {
        self.outbox.close();
    }

    /// Waits up to `bridge.shutdown_timeout` for everything to be confirmed,
    /// then stops the AMQP runtime and reports what was not delivered.
    pub async fn shutdown(self) -> BridgeReport {
        self.outbox.close();
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        let _ = self.shutdown.send(Some(deadline));
        // Backstop: the publisher stops by the deadline; if the broker holds
        // it up past that (a hung socket), stop waiting and count what it held.
        let backstop =
            self.settings.shutdown_timeout + BROKER_OP_TIMEOUT + std::time::Duration::from_secs(5);
        let leftover = match tokio::time::timeout(backstop, self.done).await {
            Ok(Ok(leftover)) => leftover,
            _ => {
                tracing::error!("bridge publisher did not stop in time; abandoning it");
                Leftover {
                    undelivered: self.outbox.len() as u64
                        + self.stats.held.load(std::sync::atomic::Ordering::Relaxed),
                }
            }
        };
        self.runtime.shutdown_background();
        let stats = self.stats.snapshot();
        let report = BridgeReport {
            stats,
            undelivered: leftover.undelivered + stats.refused_at_shutdown,
        };
        stats.log("bridge stopped", self.outbox.len());
        if report.undelivered > 0 {
            tracing::warn!(
                undelivered = report.undelivered,
                "bridge: messages not confirmed by the broker before the shutdown deadline"
            );
        } else {
            tracing::info!("bridge: every mirrored message was confirmed by the broker");
        }
        report
    }
}

/// Longest wait for a connection (TCP, handshake, declarations) or a close.
/// lapin can wait forever for a reply that a cut socket will never bring.
pub const BROKER_OP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs a broker operation, failing it after [`BROKER_OP_TIMEOUT`].
pub async fn bounded<T>(
    op: impl std::future::Future<Output = lapin::Result<T>>,
) -> lapin::Result<T> {
    match tokio::time::timeout(BROKER_OP_TIMEOUT, op).await {
        Ok(r) => r,
        Err(_) => Err(lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer from the broker",
        ))),
    }
}

/// Closes a connection without ever waiting long for the broker.
pub async fn close_quietly(conn: &lapin::Connection, code: u16, why: &str) {
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        conn.close(code, why.into()),
    )
    .await;
}

/// Did the broker refuse with 406 PRECONDITION_FAILED (other properties)?
pub fn is_precondition_failed(e: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

/// A refusal by the broker that no retry can fix: the login (ACCESS_REFUSED,
/// 403) or the virtual host (NOT_ALLOWED, 530) was refused. `None` for
/// everything else (unreachable, reset, timed out: transient).
pub fn permanent_refusal(e: &lapin::Error) -> Option<Refusal> {
    use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
    let lapin::ErrorKind::ProtocolError(amqp) = e.kind() else {
        return None;
    };
    // The broker's text (a short string: at most 255 bytes) names the
    // mechanism or the vhost, never the password.
    let detail = amqp.get_message().as_str().escape_debug().to_string();
    match amqp.kind() {
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
        | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)
            if detail.contains("vhost") =>
        {
            Some(Refusal::Vhost(detail))
        }
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => Some(Refusal::Login(detail)),
        AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => Some(Refusal::Vhost(detail)),
        _ => None,
    }
}

/// What the broker refused for good, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the broker refused the login (check the user and password): {0}")]
    Login(String),
    #[error(
        "the broker refused the virtual host (check that it exists and the user may use it): {0}"
    )]
    Vhost(String),
}

/// Why the bridge cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerCheckError {
    #[error("bridge.url {url}: {refusal}")]
    Refused { url: String, refusal: Refusal },
    #[error("bridge.url: cannot start the check: {0}")]
    Runtime(std::io::Error),
}

/// Connects once at start-up, before any actor runs: a refused login or
/// virtual host is a configuration error (the caller exits 2); an
/// unreachable broker is not (it may come later), so it is only logged and
/// the bridge retries as usual. Bounded by [`BROKER_OP_TIMEOUT`]. Runs on a
/// thread and runtime of its own, so it can be called from anywhere.
pub fn check_broker(settings: &BridgeSettings) -> Result<(), BrokerCheckError> {
    let settings = settings.clone();
    let url = crate::config::redact_url(&settings.url);
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok::<_, std::io::Error>(rt.block_on(async {
            match bounded(connect(&settings, "modelwatch start-up check")).await {
                Ok(conn) => {
                    close_quietly(&conn, 200, "start-up check done").await;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }))
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the broker check panicked")));
    match outcome {
        Err(e) => Err(BrokerCheckError::Runtime(e)),
        Ok(Ok(())) => {
            tracing::info!(url = %url, "broker reachable; login and virtual host accepted");
            Ok(())
        }
        Ok(Err(e)) => match permanent_refusal(&e) {
            Some(refusal) => Err(BrokerCheckError::Refused { url, refusal }),
            None => {
                // The publisher warns once when it fails to connect too:
                // one warning for one outage.
                tracing::debug!(url = %url, error = %e, "start-up check: broker not reachable; the bridge will retry");
                Ok(())
            }
        },
    }
}

/// Sleeps until `deadline`, or forever when there is none (a `select!` arm
/// for the shutdown deadline of the publisher and the consumers).
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Connects to the broker of `settings` with heartbeats and a connect
/// timeout unless the URL sets its own; `name` shows in the management UI.
pub async fn connect(settings: &BridgeSettings, name: &str) -> lapin::Result<lapin::Connection> {
    let mut uri: lapin::uri::AMQPUri = settings
        .url
        .parse()
        .map_err(|e: String| lapin::Error::from(std::io::Error::other(e)))?;
    if uri.query.heartbeat.is_none() && settings.heartbeat > 0 {
        uri.query.heartbeat = Some(settings.heartbeat);
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(5_000);
    }
    let props = lapin::ConnectionProperties::default().with_connection_name(name.into());
    lapin::Connection::connect_uri(uri, props).await
}

async fn report_periodically(
    stats: Arc<BridgeStats>,
    outbox: Arc<Outbox>,
    every: std::time::Duration,
    mut shutdown: watch::Receiver<Option<Instant>>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => stats.snapshot().log("bridge counters", outbox.len()),
            r = shutdown.changed() => if r.is_err() || shutdown.borrow().is_some() { break },
        }
    }
}
