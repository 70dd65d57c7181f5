//! `[metric]`: the join of truths and predictions, and the log files.
//!
//! Unmatched ids are bounded (`max_pending`) and age out (`pending_ttl`),
//! both counted; rows reach the files at least every `flush_interval`; a
//! metric reading RabbitMQ remembers `dedup_window` written ids to ignore
//! redeliveries; failed writes restart the actor at most `max_restarts`
//! times in a row before the run ends with exit 1.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration_in, in_range, Check, ConfigError, DAY, HOUR, MIN_PERIOD};

/// The metric (join and logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricSettings {
    /// Most ids waiting for their other half (truth or prediction).
    pub max_pending: usize,
    /// How long an unmatched id waits before it is dropped and counted.
    #[serde(with = "humantime_serde")]
    pub pending_ttl: Duration,
    /// Ids remembered to ignore redelivered halves, when the metric reads RabbitMQ.
    pub dedup_window: usize,
    /// Longest time a written row stays in memory before it reaches the file.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Write `labels_log.txt` (one line per received message).
    pub labels_log: bool,
    /// Restarts in a row after failed writes before the run ends (exit 1).
    pub max_restarts: u32,
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            max_pending: 100_000,
            pending_ttl: Duration::from_secs(60),
            dedup_window: 1_000_000,
            flush_interval: Duration::from_secs(1),
            labels_log: true,
            max_restarts: 10,
        }
    }
}

impl Check for MetricSettings {
    fn check(&self) -> Result<(), ConfigError> {
        in_range("metric.max_pending", self.max_pending, 1, 100_000_000)?;
        duration_in("metric.pending_ttl", self.pending_ttl, MIN_PERIOD, DAY)?;
        in_range("metric.dedup_window", self.dedup_window, 1, 100_000_000)?;
        duration_in(
            "metric.flush_interval",
            self.flush_interval,
            MIN_PERIOD,
            HOUR,
        )?;
        in_range("metric.max_restarts", self.max_restarts as usize, 0, 1000)
    }
}
