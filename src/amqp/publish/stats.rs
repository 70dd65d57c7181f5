//! The bridge's counters, shared by the actor side and the AMQP side.
//!
//! Each counter is a handle of the telemetry registry ([`crate::core::metrics`]):
//! `modelwatch_bridge_messages_total{event=...}` and friends, so `/metrics`,
//! the summary line and the tests read the same numbers the bridge counts.
//! [`BridgeStats::default`] makes unregistered handles (for unit tests).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::core::metrics::{Metrics, QueueLabel};

/// Counts of what the bridge did. Every event that loses or repeats a
/// message has a counter here, so nothing is dropped silently.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Messages handed to the bridge by the pipeline.
    pub accepted: Counter,
    /// `basic.publish` calls that reached the broker's socket (resends included).
    pub published: Counter,
    /// Publishes the broker confirmed (ack).
    pub confirmed: Counter,
    /// Publishes the broker refused (nack); each is published again.
    pub nacked: Counter,
    /// Publishes of a message that had been published before (after a nack
    /// or a lost connection): the duplicates a consumer may see.
    pub resent: Counter,
    /// Oldest messages dropped from a full buffer (`on_full = "drop_oldest"`).
    pub dropped: Counter,
    /// Messages the bridge could not take after shutdown began.
    pub refused_at_shutdown: Counter,
    /// Connections made after the first.
    pub reconnects: Counter,
    /// Messages purged from legacy queues that nobody read past their bound
    /// (all queues; by queue in the registry).
    pub legacy_purged: Counter,
    legacy_by_queue: Family<QueueLabel, Counter>,
    /// 1 while connected with the topology declared (what `/ready` reads).
    pub connected: Gauge,
    /// Messages held by the bridge (buffered, in flight, awaiting a resend).
    pub buffered: Gauge,
    /// Set at shutdown: what the broker never confirmed.
    pub undelivered: Gauge,
    /// Messages the publisher holds (in flight or awaiting a resend).
    pub held: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub accepted: u64,
    pub published: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub resent: u64,
    pub dropped: u64,
    pub refused_at_shutdown: u64,
    pub reconnects: u64,
    pub legacy_purged: u64,
}

impl BridgeStats {
    /// The registry's handles.
    pub fn registered(m: &Metrics) -> BridgeStats {
        BridgeStats {
            accepted: m.bridge("accepted"),
            published: m.bridge("published"),
            confirmed: m.bridge("confirmed"),
            nacked: m.bridge("nacked"),
            resent: m.bridge("resent"),
            dropped: m.bridge("dropped"),
            refused_at_shutdown: m.bridge("refused_at_shutdown"),
            reconnects: m.bridge_reconnects.clone(),
            legacy_purged: Counter::default(),
            legacy_by_queue: m.legacy_purged.clone(),
            connected: m.bridge_connected.clone(),
            buffered: m.bridge_buffered.clone(),
            undelivered: m.bridge_undelivered.clone(),
            held: AtomicU64::new(0),
        }
    }

    pub fn add(counter: &Counter, n: u64) {
        counter.inc_by(n);
    }

    /// Counts messages purged from the legacy queue `queue`.
    pub fn purged(&self, queue: &str, n: u64) {
        self.legacy_purged.inc_by(n);
        self.legacy_by_queue
            .get_or_create(&QueueLabel {
                queue: queue.to_owned(),
            })
            .inc_by(n);
    }

    pub fn held(&self) -> u64 {
        self.held.load(Relaxed)
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            accepted: self.accepted.get(),
            published: self.published.get(),
            confirmed: self.confirmed.get(),
            nacked: self.nacked.get(),
            resent: self.resent.get(),
            dropped: self.dropped.get(),
            refused_at_shutdown: self.refused_at_shutdown.get(),
            reconnects: self.reconnects.get(),
            legacy_purged: self.legacy_purged.get(),
        }
    }
}

impl StatsSnapshot {
    /// Logs the counters as one line.
    pub fn log(&self, what: &str, buffered: usize) {
        tracing::info!(
            accepted = self.accepted,
            published = self.published,
            confirmed = self.confirmed,
            nacked = self.nacked,
            resent = self.resent,
            dropped = self.dropped,
            buffered,
            reconnects = self.reconnects,
            "{what}"
        );
    }
}
