//! `[source]`: the feature source, the client of the original services.
//!
//! It picks random rows of the data set `count` times (0 = forever) at
//! `rate` samples/s (0 = as fast as the pipeline takes them) and sends them
//! downstream in batches; `max_in_flight` batches on their way bound memory.
//! `scenario` (off by default) shifts the stream from a given sample on.
//! `order = "sequential"` takes each row once, in file order, instead.

use serde::{Deserialize, Serialize};

use super::scenario::ScenarioSettings;
use super::{in_range, Check, ConfigError};

/// Fastest `source.rate`: beyond it the pacing arithmetic loses meaning, and
/// the pipeline does not reach a tenth of it anyway (BENCHMARKS.md).
pub const MAX_RATE: f64 = 10_000_000.0;

/// The order the source takes the data's rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Random rows, with replacement (seeded by `seed`), for as long as
    /// `count` says.
    #[default]
    Random,
    /// Each row once, in file order, then stop (or sooner, at `count`).
    Sequential,
}

/// The feature source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// Samples to emit before a clean stop; 0 = forever.
    pub count: u64,
    /// Samples per second; 0 = as fast as downstream accepts.
    pub rate: f64,
    /// Seed of the row picker; absent = random.
    pub seed: Option<u64>,
    /// Random rows (with replacement) or each row once in file order.
    pub order: Order,
    /// Most samples carried by one message between actors.
    pub batch_size: usize,
    /// Batches emitted but not yet fully processed downstream.
    pub max_in_flight: usize,
    /// Shift the stream from a given sample on (absent = off); see
    /// [`super::scenario`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<ScenarioSettings>,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            count: 0,
            rate: 10.0,
            seed: None,
            order: Order::Random,
            batch_size: 512,
            max_in_flight: 4,
            scenario: None,
        }
    }
}

impl Check for SourceSettings {
    fn check(&self) -> Result<(), ConfigError> {
        let rate = self.rate;
        if !rate.is_finite() || rate < 0.0 || (rate > 0.0 && rate < 1e-3) || rate > MAX_RATE {
            return Err(ConfigError::invalid(
                "source.rate",
                format!(
                    "must be 0 (as fast as possible) or a number of samples/s between 0.001 and {MAX_RATE:.0}, got {rate:?}"
                ),
            ));
        }
        in_range("source.batch_size", self.batch_size, 1, 65_536)?;
        in_range("source.max_in_flight", self.max_in_flight, 1, 1024)?;
        if let Some(scenario) = &self.scenario {
            if self.order == Order::Sequential {
                return Err(ConfigError::invalid(
                    "source.scenario",
                    "draws the rows it changes at random: it does not go with source.order = \"sequential\" (each row once)",
                ));
            }
            if self.count > 0 && scenario.start >= self.count {
                return Err(ConfigError::invalid(
                    "source.scenario.start",
                    format!(
                        "the scenario would never begin: start {} is not below source.count {}",
                        scenario.start, self.count
                    ),
                ));
            }
            // Its meaning against the data set (known features, a
            // population that exists) is the source's to check:
            // `source::scenario::check_settings`.
        }
        Ok(())
    }
}
