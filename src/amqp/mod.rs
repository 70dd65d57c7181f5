//! Everything AMQP, split by direction (vector's `src/amqp.rs`,
//! `src/sinks/amqp/`, `src/sources/amqp.rs` are the model):
//!
//! - [`connection`]: connecting, bounded broker operations, permanent vs
//!   transient refusals, shared by both directions;
//! - [`topology`]: every declaration (exchange, legacy queues, work queues,
//!   dead-letter objects), in one place;
//! - [`publish`]: the outbound bridge that mirrors every message of the
//!   pipeline onto the topic exchange (actor, outbox, publisher, counters);
//! - [`consume`]: the inbound consumers that feed local actors from their
//!   work queues in the split layout (consumer, decoding, log throttling).
//!
//! [`Bridge`] below runs both on a multi-threaded tokio runtime of its own
//! (lapin's I/O and heartbeats must not stall behind actor work). Nothing in
//! the pipeline knows about AMQP, and the pipeline never waits for the
//! broker unless the outbox is full and `on_full = "block"`.

pub mod connection;
pub mod consume;
pub mod publish;
pub mod topology;

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::{oneshot, watch};

pub use connection::{check_topology, BROKER_OP_TIMEOUT};
pub use publish::actor::{BatchForm, BridgeActor};
pub use publish::stats::{BridgeStats, StatsSnapshot};

use crate::config::{BridgeSettings, HistorySettings, InboundSettings};
use crate::core::backlog::Hold;
use crate::core::messages::{Batch, Kind};
use crate::core::metrics::Metrics;
use crate::core::schema::WireSchema;
use consume::decode::Decode;
use consume::inbound::{self, Inbound};
use publish::outbox::Outbox;
use publish::publisher::{Leftover, Publisher};

/// What the bridge reports at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeReport {
    pub stats: StatsSnapshot,
    /// Messages the broker never confirmed (buffered, or refused at shutdown).
    pub undelivered: u64,
    /// Inbound deliveries whose work was given up at the shutdown deadline.
    pub inbound_abandoned: u64,
}

impl BridgeReport {
    /// Everything mirrored was confirmed, and no inbound work was given up.
    pub fn complete(&self) -> bool {
        self.undelivered == 0 && self.stats.dropped == 0 && self.inbound_abandoned == 0
    }
}

/// A look at what the bridge still holds, usable after the bridge itself
/// moved into the drain (for the second-signal message).
pub struct BridgeProbe {
    outbox: Arc<Outbox>,
    stats: Arc<BridgeStats>,
}

impl BridgeProbe {
    /// Messages not confirmed yet: buffered, in flight or awaiting a resend.
    pub fn undelivered_now(&self) -> u64 {
        self.outbox.len() as u64 + self.stats.held()
    }

    /// Confirms received so far (progress, while draining).
    pub fn confirmed(&self) -> u64 {
        self.stats.confirmed.get()
    }
}

/// A running bridge.
pub struct Bridge {
    pub actor: Addr<BridgeActor>,
    outbox: Arc<Outbox>,
    stats: Arc<BridgeStats>,
    runtime: AmqpRuntime,
    shutdown: watch::Sender<Option<Instant>>,
    done: oneshot::Receiver<Leftover>,
    settings: BridgeSettings,
    consumers: Vec<(tokio::task::JoinHandle<()>, Arc<inbound::InboundStats>)>,
    consumers_stop: watch::Sender<Option<Instant>>,
    consumers_timeout: std::time::Duration,
    inbound_abandoned: u64,
    metrics: Metrics,
    /// The run's schema (data of the user's own): how features go out and
    /// what every consumer takes.
    schema: Option<Arc<WireSchema>>,
}

impl Bridge {
    /// Starts the AMQP runtime and the actor (inside an actix System).
    /// With `history`, the history stream is declared at every connect;
    /// with `schema`, messages carry values by column name and its
    /// fingerprint, and consumers refuse those of another schema.
    pub fn start(
        settings: BridgeSettings,
        history: Option<HistorySettings>,
        schema: Option<Arc<WireSchema>>,
        batch: Option<BatchForm>,
        metrics: &Metrics,
    ) -> std::io::Result<Bridge> {
        let stats = Arc::new(BridgeStats::registered(metrics));
        let outbox = Arc::new(Outbox::new(
            settings.buffer,
            settings.on_full,
            stats.clone(),
        ));
        let runtime = AmqpRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("amqp")
                .enable_all()
                .build()?,
        ));
        let (shutdown, shutdown_rx) = watch::channel(None);
        let (done_tx, done) = oneshot::channel();
        let publisher = Publisher::new(
            settings.clone(),
            history,
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
        let (actor_outbox, actor_schema) = (outbox.clone(), schema.clone());
        let actor = Supervisor::start(move |_| BridgeActor::new(actor_outbox, actor_schema, batch));
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
            inbound_abandoned: 0,
            metrics: metrics.clone(),
            schema,
        })
    }

    /// A bridge actor that publishes straight to `queue` (the default
    /// exchange), through the same outbox, confirms and retries.
    pub fn to_queue(&self, queue: &str) -> Addr<BridgeActor> {
        let (outbox, queue) = (self.outbox.clone(), queue.to_owned());
        let schema = self.schema.clone();
        Supervisor::start(move |_| BridgeActor::to_queue(outbox, &queue, schema))
    }

    pub fn probe(&self) -> BridgeProbe {
        BridgeProbe {
            outbox: self.outbox.clone(),
            stats: self.stats.clone(),
        }
    }

    /// Starts an inbound consumer of `queue` (bound to `kind`) feeding
    /// `target`, holding back while `hold` says so.
    pub fn consume<T: Decode>(
        &mut self,
        queue: &str,
        kind: Kind,
        target: Recipient<Batch<T>>,
        settings: &InboundSettings,
        hold: Option<Hold>,
    ) where
        Batch<T>: actix::Message<Result = ()> + Send,
    {
        let stats = Arc::new(inbound::InboundStats::registered(&self.metrics, queue));
        let inbound = Inbound {
            queue: queue.to_owned(),
            kind,
            target,
            stats: stats.clone(),
            schema: self.schema.clone(),
            hold,
        };
        self.consumers_timeout = settings.shutdown_timeout;
        let run = inbound.run(
            self.settings.clone(),
            settings.clone(),
            self.consumers_stop.subscribe(),
        );
        self.consumers.push((self.runtime.spawn(run), stats));
    }

    /// Stops the inbound consumers: no new deliveries; in-flight work
    /// finishes (bounded by `inbound.shutdown_timeout`) and is acked.
    /// Returns how many deliveries were abandoned unfinished (they go back
    /// to their queue, but this run did not do their work).
    pub async fn stop_consumers(&mut self) -> u64 {
        let deadline = Instant::now() + self.consumers_timeout;
        let _ = self.consumers_stop.send(Some(deadline));
        let backstop = deadline + BROKER_OP_TIMEOUT + std::time::Duration::from_secs(5);
        let mut abandoned = 0;
        for (c, stats) in self.consumers.drain(..) {
            let abort = c.abort_handle();
            if tokio::time::timeout_at(backstop.into(), c).await.is_err() {
                tracing::error!("an inbound consumer did not stop in time; abandoning it (its unacked deliveries go back to the queue)");
                abort.abort();
                let held = stats
                    .in_flight
                    .swap(0, std::sync::atomic::Ordering::Relaxed);
                stats.abandoned.inc_by(held);
            }
            abandoned += stats.abandoned.get();
        }
        self.inbound_abandoned += abandoned;
        abandoned
    }

    /// Stops taking new messages without blocking the pipeline: from now on
    /// a full outbox refuses (and counts) instead of waiting.
    pub fn stop_blocking(&self) {
        self.outbox.close();
    }

    /// Waits for everything to be confirmed, as long as the broker makes
    /// progress (`bridge.shutdown_timeout` is the longest wait without a
    /// confirm), then stops the AMQP runtime and reports what was not delivered.
    pub async fn shutdown(self) -> BridgeReport {
        self.outbox.close();
        let _ = self.shutdown.send(Some(Instant::now()));
        // Backstop: the publisher stops by its deadline; if the broker holds
        // it up past that (a hung socket), stop waiting and count what it
        // held. Confirms still arriving move the backstop on too.
        let grace =
            self.settings.shutdown_timeout + BROKER_OP_TIMEOUT + std::time::Duration::from_secs(5);
        let confirmed = || self.stats.confirmed.get();
        let mut seen = confirmed();
        let mut backstop = Instant::now() + grace;
        let mut done = self.done;
        let leftover = loop {
            match tokio::time::timeout_at(backstop.into(), &mut done).await {
                Ok(Ok(leftover)) => break leftover,
                Err(_) if confirmed() != seen => {
                    seen = confirmed();
                    backstop = Instant::now() + grace;
                }
                _ => {
                    tracing::error!("bridge publisher did not stop in time; abandoning it");
                    break Leftover {
                        undelivered: self.outbox.len() as u64 + self.stats.held(),
                    };
                }
            }
        };
        // Never blocks (see AmqpRuntime), even inside the actix System.
        drop(self.runtime);
        let stats = self.stats.snapshot();
        let report = BridgeReport {
            stats,
            undelivered: leftover.undelivered + stats.refused_at_shutdown,
            inbound_abandoned: self.inbound_abandoned,
        };
        stats.log("bridge stopped", self.outbox.len());
        self.stats.undelivered.set(report.undelivered as i64);
        self.stats.buffered.set(self.outbox.len() as i64);
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

/// The bridge's own tokio runtime. Dropping a `Runtime` blocks until its
/// tasks end, which tokio refuses (panics) inside an async context, and a
/// `Bridge` may be dropped there: when a second signal abandons the drain,
/// or when the drain fails early. So it is always shut down in the
/// background: its tasks are cancelled, their threads not waited for.
struct AmqpRuntime(Option<tokio::runtime::Runtime>);

impl AmqpRuntime {
    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0
            .as_ref()
            .expect("runtime is live until drop")
            .spawn(task)
    }
}

impl Drop for AmqpRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Logs the counters every `every`, and keeps the `bridge_buffered` gauge
/// current (every second).
async fn report_periodically(
    stats: Arc<BridgeStats>,
    outbox: Arc<Outbox>,
    every: std::time::Duration,
    mut shutdown: watch::Receiver<Option<Instant>>,
) {
    let mut log = tokio::time::interval(every);
    let mut gauge = tokio::time::interval(std::time::Duration::from_secs(1));
    log.tick().await;
    loop {
        tokio::select! {
            _ = log.tick() => stats.snapshot().log("bridge counters", outbox.len()),
            _ = gauge.tick() => {
                stats.buffered.set((outbox.len() as u64 + stats.held()) as i64);
            }
            r = shutdown.changed() => if r.is_err() || shutdown.borrow().is_some() { break },
        }
    }
}
