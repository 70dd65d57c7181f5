//! `[logs]`: the folder of every output file, the log level, and how big a
//! log file may grow.
//!
//! `dir` holds metric_log.csv, labels_log.txt, pipeline.log and the PNG
//! (whether they can be written is checked at start-up, by the command
//! line); `level` is a tracing filter, checked here so a typo exits 2.
//! `max_bytes` and `keep` bound every log the program appends to (a program
//! meant to run for months must not fill the disk): see
//! [`crate::core::append_file::Rotation`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Check, ConfigError};
use crate::core::append_file::Rotation;
use crate::core::reopen::Reopen;

/// Smallest `logs.max_bytes` (other than 0, no bound): a few rows a file.
pub const MIN_MAX_BYTES: u64 = 4096;
/// Largest `logs.max_bytes`: 1 TB.
pub const MAX_MAX_BYTES: u64 = 1_000_000_000_000;
/// Most old files kept of each log.
pub const MAX_KEEP: u32 = 1000;

/// Where and how the program logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Folder of metric_log.csv, labels_log.txt, pipeline.log and the PNG.
    pub dir: PathBuf,
    /// tracing filter (`info`, `modelwatch=debug`, ...); `RUST_LOG` wins when set.
    pub level: String,
    /// A log file that a row would take past this size is renamed to
    /// `name.1` and a new one started (0: no bound, e.g. under logrotate).
    pub max_bytes: u64,
    /// Old files kept of each log: `name.1` (newest) to `name.keep`.
    pub keep: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            dir: PathBuf::from("logs"),
            level: "info".into(),
            max_bytes: 50_000_000,
            keep: 5,
        }
    }
}

impl LogSettings {
    /// The rotation of every log file, reopened on `reopen`'s requests.
    pub fn rotation(&self, reopen: &Reopen) -> Rotation {
        Rotation {
            max_bytes: self.max_bytes,
            keep: self.keep,
            reopen: reopen.clone(),
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
        if self.max_bytes != 0 && !(MIN_MAX_BYTES..=MAX_MAX_BYTES).contains(&self.max_bytes) {
            return Err(ConfigError::invalid(
                "logs.max_bytes",
                format!(
                    "must be 0 (no bound) or between {MIN_MAX_BYTES} and {MAX_MAX_BYTES}, got {}",
                    self.max_bytes
                ),
            ));
        }
        if !(1..=MAX_KEEP).contains(&self.keep) {
            return Err(ConfigError::invalid(
                "logs.keep",
                format!("must be between 1 and {MAX_KEEP}, got {}", self.keep),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_bound_and_keep_have_ranges() {
        let ok = LogSettings::default();
        assert!(ok.check().is_ok());
        for (max_bytes, keep, key) in [
            (100, 5, "logs.max_bytes"),
            (MAX_MAX_BYTES + 1, 5, "logs.max_bytes"),
            (0, 0, "logs.keep"),
            (4096, MAX_KEEP + 1, "logs.keep"),
        ] {
            let s = LogSettings {
                max_bytes,
                keep,
                ..LogSettings::default()
            };
            let err = s.check().unwrap_err().to_string();
            assert!(err.contains(key), "{max_bytes} {keep}: {err}");
        }
        let off = LogSettings {
            max_bytes: 0,
            ..LogSettings::default()
        };
        assert!(off.check().is_ok());
    }
}
