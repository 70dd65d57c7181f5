//! The bridge's counters, shared by the actor side and the AMQP side.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counts of what the bridge did. Every event that loses or repeats a
/// message has a counter here, so nothing is dropped silently.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Messages handed to the bridge by the pipeline.
    pub accepted: AtomicU64,
    /// `basic.publish` calls that reached the broker's socket (resends included).
    pub published: AtomicU64,
    /// Publishes the broker confirmed (ack).
    pub confirmed: AtomicU64,
    /// Publishes the broker refused (nack); each is published again.
    pub nacked: AtomicU64,
    /// Publishes of a message that had been published before (after a nack
    /// or a lost connection): the duplicates a consumer may see.
    pub resent: AtomicU64,
    /// Oldest messages dropped from a full buffer (`on_full = "drop_oldest"`).
    pub dropped: AtomicU64,
    /// Messages the bridge could not take after shutdown began.
    pub refused_at_shutdown: AtomicU64,
    /// Connections made after the first.
    pub reconnects: AtomicU64,
    /// Messages purged from legacy queues that nobody read past their bound.
    pub legacy_purged: AtomicU64,
    /// Gauge: messages the publisher holds (in flight or awaiting a resend).
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
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            accepted: self.accepted.load(Relaxed),
            published: self.published.load(Relaxed),
            confirmed: self.confirmed.load(Relaxed),
            nacked: self.nacked.load(Relaxed),
            resent: self.resent.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            refused_at_shutdown: self.refused_at_shutdown.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            legacy_purged: self.legacy_purged.load(Relaxed),
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
