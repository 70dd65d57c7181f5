//! How far each input of a join by id runs ahead of the other: the
//! metric's halves waiting for their partner (truths and predictions
//! apart), and the monitor's features waiting for their record.
//!
//! Why: in the split layout these inputs come from separate queues. With
//! batch messages the truths and the features, which no model slows down,
//! arrive far ahead of the predictions and records; the joins would then
//! drop them (`metric.max_pending`, the monitor's bound) although their
//! partners are on the way. The metric and the monitor publish their
//! waiting counts here, and the inbound consumer of an input that is
//! ahead by its limit takes no new deliveries until the other side
//! catches up (they wait in the queue, not in memory). Only the input that
//! is ahead waits, so the other always flows and the two cannot wait on
//! each other; ids that never get a partner still leave by the TTL (the
//! metric) or as stale (the monitor). An input counts as ahead only while
//! its newest id is newer than the other's: a backlog of older messages
//! (left in a queue by an earlier run) is read on, not waited on, so it
//! cannot hold the current ones behind it.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// One side of the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The metric's truths waiting for their prediction.
    Truths,
    /// The metric's predictions waiting for their truth.
    Predictions,
    /// The monitor's features waiting for their record.
    Features,
}

/// What waits, per side (set after every change).
#[derive(Debug, Default)]
pub struct Backlog {
    truths: AtomicUsize,
    predictions: AtomicUsize,
    features: AtomicUsize,
}

impl Backlog {
    /// The metric's waiting halves of the side that runs ahead
    /// ([`crate::metric::join`] counts the other as 0).
    pub fn set_halves(&self, truths: usize, predictions: usize) {
        self.truths.store(truths, Relaxed);
        self.predictions.store(predictions, Relaxed);
    }

    /// The monitor's waiting features while they run ahead of its records.
    pub fn set_features(&self, features: usize) {
        self.features.store(features, Relaxed);
    }

    pub fn waiting(&self, side: Side) -> usize {
        match side {
            Side::Truths => self.truths.load(Relaxed),
            Side::Predictions => self.predictions.load(Relaxed),
            Side::Features => self.features.load(Relaxed),
        }
    }
}

/// When an inbound consumer of one side holds back: while that side has
/// `limit` halves or more waiting.
#[derive(Debug, Clone)]
pub struct Hold {
    backlog: Arc<Backlog>,
    side: Side,
    limit: usize,
}

impl Hold {
    /// The hold of `side` for a join that keeps `bound` waiting at most:
    /// at half of it, so that the other side's, and one more hand-over of
    /// deliveries, still fit.
    pub fn new(backlog: Arc<Backlog>, side: Side, bound: usize) -> Hold {
        Hold {
            backlog,
            side,
            limit: (bound / 2).max(1),
        }
    }

    /// Take no new deliveries now.
    pub fn holds(&self) -> bool {
        self.backlog.waiting(self.side) >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_side_that_is_ahead_holds() {
        let backlog = Arc::new(Backlog::default());
        let truths = Hold::new(backlog.clone(), Side::Truths, 100);
        let predictions = Hold::new(backlog.clone(), Side::Predictions, 100);
        backlog.set_halves(49, 0);
        assert!(!truths.holds() && !predictions.holds());
        backlog.set_halves(50, 3);
        assert!(truths.holds() && !predictions.holds());
        backlog.set_halves(0, 70);
        assert!(!truths.holds() && predictions.holds());
    }
}
