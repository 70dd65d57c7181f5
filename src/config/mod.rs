//! Configuration: every key the program reads, its default, and its checks.
//!
//! Settings come from the built-in defaults, a TOML file (`config/default.toml`
//! documents every key and is compiled in as [`DEFAULT_TOML`]), then
//! environment variables `MODELWATCH__SECTION__KEY`, then command-line flags.
//! Unknown keys, wrong types (a float in an integer key is not rounded) and
//! out-of-range values are errors that name the key, so a typo never silently
//! falls back to a default, and every number and duration has a bound, so no
//! value can make the program hang or spin. Error messages that quote config
//! text are bounded, escaped and have URL passwords redacted; the printed
//! form redacts the AMQP password.
//!
//! Read in the order of `config/default.toml`: one file per section holds
//! its struct, its default, what it is for and its [`Check`] —
//! [`roles`], [`data`], [`source`] (with its [`scenario`]), [`model`], [`metric`], [`plot`], [`logs`],
//! [`bridge`], [`inbound`], [`history`], [`http`], [`monitor`]; [`Settings::validate`] runs the checks
//! in that order. Then how the layers combine ([`load`]), the command-line
//! flags that override keys ([`flags`]: a flag is declared and mapped
//! there, once) and redaction (`core::text`, shared with every layer
//! that quotes text). A new key is a field, its default and its check in
//! its section's file, plus its line in `config/default.toml`
//! (a test keeps the two equal) and in `docs/configuration.md`'s table (`tests/it/docs.rs` keeps that equal too).

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod bridge;
pub mod data;
pub mod flags;
pub mod history;
pub mod http;
pub mod inbound;
pub mod load;
pub mod logs;
pub mod metric;
pub mod model;
pub mod monitor;
pub mod plot;
pub mod roles;
pub mod scenario;
pub mod source;
#[cfg(test)]
mod tests;

use crate::core::text::{redact_url, sanitize};
pub use bridge::{BridgeSettings, OnFull};
pub use data::DataSettings;
pub use flags::Overrides;
pub use history::HistorySettings;
pub use http::HttpSettings;
pub use inbound::InboundSettings;
pub use load::{ConfigSource, Semantics};
pub use logs::LogSettings;
pub use metric::MetricSettings;
pub use model::ModelSettings;
pub use monitor::{MonitorSettings, Op, RuleSettings};
pub use plot::PlotSettings;
pub use roles::Role;
pub use scenario::ScenarioSettings;
pub use source::{Order, SourceSettings, MAX_RATE};

/// Prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "MODELWATCH";

/// Environment variable naming the config file (as `--config` does).
pub const CONFIG_ENV: &str = "MODELWATCH_CONFIG";

/// The config file used when none is named and it exists in the current dir.
pub const IMPLICIT_CONFIG: &str = "config/default.toml";

/// The shipped configuration, every key with its comment; equal to
/// [`Settings::default`] (a test checks it). `modelwatch config --default`
/// prints it.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// All settings, one field per section, in the order of `config/default.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The roles this process runs; all four by default (one process).
    pub roles: Vec<Role>,
    /// The user's own data (empty path: the built-in diabetes data).
    pub data: DataSettings,
    pub source: SourceSettings,
    pub model: ModelSettings,
    pub metric: MetricSettings,
    pub plot: PlotSettings,
    pub logs: LogSettings,
    pub bridge: BridgeSettings,
    pub inbound: InboundSettings,
    pub history: HistorySettings,
    pub http: HttpSettings,
    pub monitor: MonitorSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            roles: Role::ALL.to_vec(),
            data: DataSettings::default(),
            source: SourceSettings::default(),
            model: ModelSettings::default(),
            metric: MetricSettings::default(),
            plot: PlotSettings::default(),
            logs: LogSettings::default(),
            bridge: BridgeSettings::default(),
            inbound: InboundSettings::default(),
            history: HistorySettings::default(),
            http: HttpSettings::default(),
            monitor: MonitorSettings::default(),
        }
    }
}

impl Settings {
    /// Runs `role` in this process.
    pub fn runs(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Runs only some roles: the others are reached through RabbitMQ.
    pub fn is_split(&self) -> bool {
        !Role::ALL.iter().all(|r| self.runs(*r))
    }

    /// Checks ranges and relations between keys, section by section in
    /// file order; the first problem found is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        roles::check(&self.roles, self.bridge.enabled)?;
        self.data.check()?;
        self.source.check()?;
        self.model.check()?;
        self.metric.check()?;
        self.plot.check()?;
        self.logs.check()?;
        self.bridge.check()?;
        self.inbound.check()?;
        self.batch_limits()?;
        self.history.check()?;
        if self.history.enabled && !self.bridge.enabled {
            return Err(ConfigError::invalid(
                "history.enabled",
                "the history stream is written by the bridge: turn the bridge on (bridge.enabled, --amqp-url or AMQP_URL), or history off",
            ));
        }
        self.http.check()?;
        self.monitor.check()?;
        self.own_data_limits()
    }

    /// What a run of the user's own data cannot do: read the Python
    /// services' queues (`inbound.legacy`: they carry the diabetes data's
    /// arrays, not values by column name).
    fn own_data_limits(&self) -> Result<(), ConfigError> {
        if self.data.is_own() && self.inbound.legacy {
            return Err(ConfigError::invalid(
                "inbound.legacy",
                "reads the Python services' queues, which carry the diabetes data; a run of your own data (data.path) reads its own work queues (docs/wire.md)",
            ));
        }
        Ok(())
    }

    /// Batch bodies (`bridge.batch`) are for modelwatch processes on the
    /// other end: not for the original Python services' queues, which
    /// read one sample per message.
    fn batch_limits(&self) -> Result<(), ConfigError> {
        if !self.bridge.batch {
            return Ok(());
        }
        if self.inbound.legacy {
            return Err(ConfigError::invalid(
                "bridge.batch",
                "sends several samples per message, which the original Python services cannot read, and inbound.legacy (--legacy-inbound) works with them: turn one off",
            ));
        }
        if self.bridge.legacy_queues {
            return Err(ConfigError::invalid(
                "bridge.batch",
                "sends several samples per message, which the original Python services' queues (bridge.legacy_queues) would receive and they cannot read: set bridge.legacy_queues = false",
            ));
        }
        Ok(())
    }

    /// The settings as TOML, with the AMQP password replaced by `***`.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.bridge.url = redact_url(&self.bridge.url);
        toml::to_string_pretty(&shown).expect("settings always serialize")
    }
}

/// A section's own checks: ranges of its keys and relations between them.
/// Checks that span sections (`roles` needs the bridge) are in
/// [`Settings::validate`].
pub trait Check {
    fn check(&self) -> Result<(), ConfigError>;
}

/// A configuration problem, naming the key (or file) and what is wrong.
/// Every text in it that came from outside is bounded, escaped and has URL
/// passwords redacted ([`sanitize`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0}: not found")]
    Missing(String),
    #[error("config file {0}: is a directory, not a file")]
    IsDirectory(String),
    #[error("config file {path}: {problem}")]
    File { path: String, problem: String },
    #[error("config: {0}")]
    Load(String),
    #[error("config: {key}: {problem}")]
    Invalid { key: String, problem: String },
    /// A value the `config` crate could not read into its key's type;
    /// `text` is its own message (which quotes the value).
    #[error("config: {text}")]
    Parse {
        key: String,
        expected: Option<&'static str>,
        text: String,
    },
}

impl ConfigError {
    /// `key` has a value that is wrong for `problem`: both sanitized.
    pub fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: sanitize(key),
            problem: sanitize(&problem.into()),
        }
    }

    /// The same error with the config file shown as `shown` (the file named
    /// by `MODELWATCH_CONFIG` is named by the variable, not quoted).
    fn file_named_by(self, shown: &str) -> ConfigError {
        match self {
            ConfigError::Missing(_) => ConfigError::Missing(shown.to_owned()),
            ConfigError::IsDirectory(_) => ConfigError::IsDirectory(shown.to_owned()),
            ConfigError::File { problem, .. } => ConfigError::File {
                path: shown.to_owned(),
                problem,
            },
            other => other,
        }
    }

    fn file(path: &std::path::Path, problem: impl Into<String>) -> ConfigError {
        ConfigError::File {
            path: crate::core::text::shown_path(path),
            problem: sanitize(&problem.into()),
        }
    }
}

/// Shortest period of a timer (renders, flushes, reports, backoff, expiry).
const MIN_PERIOD: Duration = Duration::from_millis(10);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Longest exchange or queue name AMQP can carry (a short string).
pub const MAX_AMQP_NAME_BYTES: usize = 255;

/// An exchange or queue name: 1 to 255 bytes (an AMQP short string), else
/// an error naming `key` (lapin would panic on a longer one).
fn amqp_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::invalid(key, "must not be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            key,
            "must not contain control characters (the broker strips some of them when it declares, then cannot find the name it was given)",
        ));
    }
    if name.len() > MAX_AMQP_NAME_BYTES {
        return Err(ConfigError::invalid(
            key,
            format!(
                "must be at most {MAX_AMQP_NAME_BYTES} bytes (an AMQP name), got {} bytes",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// `lo <= v <= hi`, else an error naming `key`.
fn in_range(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError::invalid(
            key,
            format!("must be between {lo} and {hi}, got {v}"),
        ));
    }
    Ok(())
}

/// `lo <= d <= hi`, else an error naming `key`.
fn duration_in(key: &str, d: Duration, lo: Duration, hi: Duration) -> Result<(), ConfigError> {
    if d < lo || d > hi {
        return Err(ConfigError::invalid(
            key,
            format!(
                "must be between {} and {}, got {}",
                humantime::format_duration(lo),
                humantime::format_duration(hi),
                humantime::format_duration(d)
            ),
        ));
    }
    Ok(())
}
