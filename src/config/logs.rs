//! `[logs]`: the folder of every output file, and the log level.
//!
//! `dir` holds metric_log.csv, labels_log.txt, pipeline.log and the PNG
//! (whether they can be written is checked at start-up, by the command
//! line); `level` is a tracing filter, checked here so a typo exits 2.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Check, ConfigError};

/// Where and how the program logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Folder of metric_log.csv, labels_log.txt, pipeline.log and the PNG.
    pub dir: PathBuf,
    /// tracing filter (`info`, `modelwatch=debug`, ...); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            dir: PathBuf::from("logs"),
            level: "info".into(),
        }
    }
}

impl Check for LogSettings {
    fn check(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("logs.dir", "must not be empty"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map_err(|e| ConfigError::invalid("logs.level", e.to_string()))?;
        Ok(())
    }
}
