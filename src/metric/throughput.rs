//! ThroughputObserver: rows per second over the last ten seconds, as the
//! gauge `modelwatch_rows_per_second` (what a dashboard shows as "now";
//! Prometheus computes its own rates from the counters).
//!
//! It is an observer, not a work recipient (see [`crate::core::fanout`]): it runs
//! on the observers' own thread, gets the metric's records through a
//! bounded mailbox, and when it falls behind it misses batches (counted)
//! rather than slowing the pipeline. Memory is ten counters. The fail point
//! `observer-stall` (e.g. `FAILPOINTS=observer-stall=sleep(1000)`) stalls it
//! on purpose, to show exactly that.

use std::sync::atomic::AtomicU64;

use actix::prelude::*;
use prometheus_client::metrics::gauge::Gauge;

use crate::core::messages::{Batch, MetricRecord};

/// Seconds of history the rate is computed over.
const WINDOW_SECS: usize = 10;
/// Batches that may wait in the mailbox before the sender's copies are dropped.
const MAILBOX: usize = 64;

pub struct ThroughputObserver {
    /// Rows per second, for the last `WINDOW_SECS` whole seconds.
    seconds: [u64; WINDOW_SECS],
    current: u64,
    filled: usize,
    gauge: Gauge<f64, AtomicU64>,
}

impl ThroughputObserver {
    pub fn new(gauge: Gauge<f64, AtomicU64>) -> Self {
        ThroughputObserver {
            seconds: [0; WINDOW_SECS],
            current: 0,
            filled: 0,
            gauge,
        }
    }

    /// Closes the current second: the rate over the seconds seen so far.
    fn tick(&mut self) -> f64 {
        self.seconds.rotate_right(1);
        self.seconds[0] = std::mem::take(&mut self.current);
        self.filled = (self.filled + 1).min(WINDOW_SECS);
        self.seconds[..self.filled].iter().sum::<u64>() as f64 / self.filled as f64
    }
}

impl Actor for ThroughputObserver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(std::time::Duration::from_secs(1), |act, _| {
            let rate = act.tick();
            act.gauge.set(rate);
        });
    }
}

impl Handler<Batch<MetricRecord>> for ThroughputObserver {
    type Result = ();

    fn handle(&mut self, batch: Batch<MetricRecord>, _: &mut Context<Self>) {
        fail::fail_point!("observer-stall");
        self.current += batch.items.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_mean_of_the_seconds_seen() {
        let mut t = ThroughputObserver::new(Gauge::default());
        t.current = 100;
        assert_eq!(t.tick(), 100.0);
        t.current = 300;
        assert_eq!(t.tick(), 200.0);
        for _ in 0..WINDOW_SECS {
            t.current = 50;
            t.tick();
        }
        assert_eq!(t.tick(), 45.0); // nine 50s and one 0 (nothing this second)
    }
}
