//! `[plot]`: the error-distribution picture.
//!
//! The plot actor renders `error_distribution.png` every `interval` (and
//! once more at shutdown) from its histogram of `bins` bars; the size is
//! bounded so a render stays cheap.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration_in, in_range, Check, ConfigError, HOUR, MIN_PERIOD};

/// The error-distribution plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlotSettings {
    /// Time between renders (one more is made at shutdown).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Number of histogram bars.
    pub bins: usize,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

impl Default for PlotSettings {
    fn default() -> Self {
        PlotSettings {
            interval: Duration::from_secs(2),
            bins: 40,
            width: 1000,
            height: 600,
        }
    }
}

impl Check for PlotSettings {
    fn check(&self) -> Result<(), ConfigError> {
        duration_in("plot.interval", self.interval, MIN_PERIOD, HOUR)?;
        in_range("plot.bins", self.bins, 1, 1000)?;
        in_range("plot.width", self.width as usize, 200, 8000)?;
        in_range("plot.height", self.height as usize, 150, 8000)
    }
}
