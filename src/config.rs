//! Configuration: every key the program reads, its default, and its checks.
//!
//! Settings come from a TOML file (`config/default.toml` documents every key),
//! then environment variables `MODELWATCH__SECTION__KEY`, then command-line
//! flags. Unknown keys, wrong types and out-of-range values are errors that
//! name the key, so a typo never silently falls back to a default. The
//! printed form redacts the AMQP password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "MODELWATCH";

/// A configuration problem, naming the key (or file) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0}: not found")]
    Missing(PathBuf),
    #[error("config: {0}")]
    Load(String),
    #[error("config: {key}: {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

/// All settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The roles this process runs; all four by default (one process).
    pub roles: Vec<Role>,
    pub source: SourceSettings,
    pub model: ModelSettings,
    pub metric: MetricSettings,
    pub plot: PlotSettings,
    pub logs: LogSettings,
    pub bridge: BridgeSettings,
    pub inbound: InboundSettings,
}

/// A part of the pipeline that a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Features,
    Model,
    Metric,
    Plot,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Features, Role::Model, Role::Metric, Role::Plot];
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.trim() {
            "features" => Ok(Role::Features),
            "model" => Ok(Role::Model),
            "metric" => Ok(Role::Metric),
            "plot" => Ok(Role::Plot),
            other => Err(format!(
                "unknown role {other:?} (roles are features, model, metric, plot)"
            )),
        }
    }
}

/// Consumers that feed local actors from RabbitMQ, when a process runs only
/// some roles (`roles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSettings {
    /// Unacknowledged deliveries per consumer.
    pub prefetch: u16,
    /// Most deliveries handed to an actor as one batch.
    pub batch_size: usize,
    /// Larger message bodies are dead-lettered.
    pub max_body_bytes: usize,
    /// Work queue of the model role (bound to `features`); model processes share it.
    pub model_queue: String,
    /// Work queues of the metric role (bound to `y_true` and `y_pred`).
    pub metric_truth_queue: String,
    pub metric_prediction_queue: String,
    /// Work queue of the plot role (bound to `metrics`).
    pub plot_queue: String,
    /// Where malformed messages go, with the reason in the `x-reject-reason` header.
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// Length bound of the work queues and the dead-letter queue; a work
    /// queue past it dead-letters its oldest message (reason `maxlen`).
    pub queue_max_length: u32,
    /// Longest wait at shutdown for in-flight inbound work before closing.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for InboundSettings {
    fn default() -> Self {
        InboundSettings {
            prefetch: 1000,
            batch_size: 250,
            max_body_bytes: 65_536,
            model_queue: "ml_pipeline.model".into(),
            metric_truth_queue: "ml_pipeline.metric.y_true".into(),
            metric_prediction_queue: "ml_pipeline.metric.y_pred".into(),
            plot_queue: "ml_pipeline.plot".into(),
            dead_letter_exchange: "ml_pipeline.dlx".into(),
            dead_letter_queue: "ml_pipeline.dlq".into(),
            queue_max_length: 1_000_000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The feature source (the client of the original services).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// Samples to emit before a clean stop; 0 = forever.
    pub count: u64,
    /// Samples per second; 0 = as fast as downstream accepts.
    pub rate: f64,
    /// Seed of the row picker; absent = random.
    pub seed: Option<u64>,
    /// Most samples carried by one message between actors.
    pub batch_size: usize,
    /// Batches emitted but not yet fully processed downstream.
    pub max_in_flight: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            roles: Role::ALL.to_vec(),
            source: SourceSettings::default(),
            model: ModelSettings::default(),
            metric: MetricSettings::default(),
            plot: PlotSettings::default(),
            logs: LogSettings::default(),
            bridge: BridgeSettings::default(),
            inbound: InboundSettings::default(),
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
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            count: 0,
            rate: 10.0,
            seed: None,
            batch_size: 512,
            max_in_flight: 4,
        }
    }
}

/// The model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// Artifact written by `train` and loaded by `run`; fitted in memory when absent.
    pub artifact: PathBuf,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            artifact: PathBuf::from("models/diabetes_linear.json"),
        }
    }
}

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

/// What the bridge does when its buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Slow the source down (backpressure); nothing is lost.
    Block,
    /// Drop the oldest buffered message and count it.
    DropOldest,
}

/// The outbound RabbitMQ bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// Mirror every message to RabbitMQ (also on with `--amqp-url` or `AMQP_URL`).
    pub enabled: bool,
    /// Broker address; `amqps://` needs the `tls` build feature.
    pub url: String,
    /// Durable topic exchange the messages are published to.
    pub exchange: String,
    /// Queues of the original Python services, declared and bound to their routing key.
    pub legacy_queues: bool,
    /// Length bound of those queues (oldest dropped beyond it), so an unread one cannot fill the broker.
    pub legacy_queue_max_length: u32,
    /// Messages held while the broker is away or slow.
    pub buffer: usize,
    /// `block` (backpressure, default) or `drop_oldest` (counted).
    pub on_full: OnFull,
    /// Published messages awaiting a broker confirm, at most.
    pub confirm_window: usize,
    /// Longest wait at shutdown without a confirm (each confirm extends it).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// First reconnect delay; doubles after each failure up to `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Time between counter reports in the log.
    #[serde(with = "humantime_serde")]
    pub stats_interval: Duration,
    /// AMQP heartbeat, in seconds (0 = broker's choice).
    pub heartbeat: u16,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            enabled: false,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            exchange: "ml_pipeline".into(),
            legacy_queues: true,
            legacy_queue_max_length: 100_000,
            buffer: 100_000,
            on_full: OnFull::Block,
            confirm_window: 1000,
            shutdown_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            stats_interval: Duration::from_secs(30),
            heartbeat: 10,
        }
    }
}

/// Command-line overrides, applied after the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub count: Option<u64>,
    pub rate: Option<f64>,
    pub seed: Option<u64>,
    pub logs_dir: Option<PathBuf>,
    pub amqp_url: Option<String>,
    pub roles: Option<Vec<Role>>,
}

impl Settings {
    /// Reads `path`, applies `MODELWATCH__*` environment overrides and `overrides`,
    /// then checks every value.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(path, overrides, std::env::vars().collect())
    }

    /// As [`Settings::load`], with an explicit environment (for tests).
    pub fn load_with_env(
        path: &Path,
        overrides: &Overrides,
        env: Vec<(String, String)>,
    ) -> Result<Settings, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::Missing(path.to_owned()));
        }
        check_env_names(&env)?;
        let env_map = env
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .cloned()
            .collect();
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("roles")
                    .source(Some(env_map)),
            )
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let mut settings: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        settings.apply(overrides, &env);
        settings.validate()?;
        Ok(settings)
    }

    fn apply(&mut self, o: &Overrides, env: &[(String, String)]) {
        if let Some(v) = o.count {
            self.source.count = v;
        }
        if let Some(v) = o.rate {
            self.source.rate = v;
        }
        if o.seed.is_some() {
            self.source.seed = o.seed;
        }
        if let Some(v) = &o.logs_dir {
            self.logs.dir = v.clone();
        }
        if let Some(v) = &o.roles {
            self.roles = v.clone();
        }
        let env_url = env.iter().find(|(k, _)| k == "AMQP_URL").map(|(_, v)| v);
        if let Some(url) = o.amqp_url.as_ref().or(env_url) {
            self.bridge.url = url.clone();
            self.bridge.enabled = true;
        }
    }

    /// Checks ranges and relations between keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.source;
        if !s.rate.is_finite() || s.rate < 0.0 || (s.rate > 0.0 && s.rate < 1e-3) {
            return Err(ConfigError::invalid(
                "source.rate",
                format!(
                    "must be 0 (as fast as possible) or a number of samples/s >= 0.001, got {}",
                    s.rate
                ),
            ));
        }
        if self.roles.is_empty() {
            return Err(ConfigError::invalid("roles", "must name at least one role"));
        }
        if self.is_split() && !self.bridge.enabled {
            return Err(ConfigError::invalid(
                "roles",
                "running only some roles links them through RabbitMQ: turn the bridge on (bridge.enabled, --amqp-url or AMQP_URL)",
            ));
        }
        in_range("source.batch_size", s.batch_size, 1, 65_536)?;
        in_range("source.max_in_flight", s.max_in_flight, 1, 1024)?;
        in_range(
            "metric.max_pending",
            self.metric.max_pending,
            1,
            100_000_000,
        )?;
        positive("metric.pending_ttl", self.metric.pending_ttl)?;
        positive("metric.flush_interval", self.metric.flush_interval)?;
        in_range(
            "metric.max_restarts",
            self.metric.max_restarts as usize,
            0,
            1000,
        )?;
        positive("plot.interval", self.plot.interval)?;
        in_range("plot.bins", self.plot.bins, 1, 1000)?;
        in_range("plot.width", self.plot.width as usize, 200, 8000)?;
        in_range("plot.height", self.plot.height as usize, 150, 8000)?;
        if self.logs.dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("logs.dir", "must not be empty"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.logs.level)
            .map_err(|e| ConfigError::invalid("logs.level", e.to_string()))?;
        let b = &self.bridge;
        let url = url::Url::parse(&b.url)
            .map_err(|e| ConfigError::invalid("bridge.url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "amqp" | "amqps") {
            return Err(ConfigError::invalid(
                "bridge.url",
                format!("scheme must be amqp or amqps, got {}", url.scheme()),
            ));
        }
        if b.exchange.is_empty() {
            return Err(ConfigError::invalid("bridge.exchange", "must not be empty"));
        }
        in_range("bridge.buffer", b.buffer, 1, 100_000_000)?;
        in_range("bridge.confirm_window", b.confirm_window, 1, 65_535)?;
        in_range(
            "bridge.legacy_queue_max_length",
            b.legacy_queue_max_length as usize,
            1,
            100_000_000,
        )?;
        positive("bridge.backoff_min", b.backoff_min)?;
        if b.backoff_max < b.backoff_min {
            return Err(ConfigError::invalid(
                "bridge.backoff_max",
                "must be >= bridge.backoff_min",
            ));
        }
        positive("bridge.stats_interval", b.stats_interval)?;
        let i = &self.inbound;
        in_range("inbound.prefetch", i.prefetch as usize, 1, 65_535)?;
        in_range("inbound.batch_size", i.batch_size, 1, 65_536)?;
        in_range("inbound.max_body_bytes", i.max_body_bytes, 64, 128 << 20)?;
        in_range(
            "inbound.queue_max_length",
            i.queue_max_length as usize,
            1,
            100_000_000,
        )?;
        in_range(
            "metric.dedup_window",
            self.metric.dedup_window,
            1,
            100_000_000,
        )?;
        for (key, name) in [
            ("inbound.model_queue", &i.model_queue),
            ("inbound.metric_truth_queue", &i.metric_truth_queue),
            (
                "inbound.metric_prediction_queue",
                &i.metric_prediction_queue,
            ),
            ("inbound.plot_queue", &i.plot_queue),
            ("inbound.dead_letter_exchange", &i.dead_letter_exchange),
            ("inbound.dead_letter_queue", &i.dead_letter_queue),
        ] {
            if name.is_empty() {
                return Err(ConfigError::invalid(key, "must not be empty"));
            }
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

/// `amqp://user:secret@host` -> `amqp://user:***@host`; unparsable input is hidden whole.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable url>".into(),
    }
}

/// `MODELWATCH_SOURCE__RATE` (one underscore after the prefix) would be ignored
/// by the environment source: refuse it instead of silently using the default.
fn check_env_names(env: &[(String, String)]) -> Result<(), ConfigError> {
    let single = format!("{ENV_PREFIX}_");
    let double = format!("{ENV_PREFIX}__");
    for (k, _) in env {
        if k.starts_with(&single) && !k.starts_with(&double) {
            return Err(ConfigError::invalid(
                k,
                format!("environment overrides are spelt {double}SECTION__KEY (two underscores)"),
            ));
        }
    }
    Ok(())
}

fn in_range(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError::invalid(
            key,
            format!("must be between {lo} and {hi}, got {v}"),
        ));
    }
    Ok(())
}

fn positive(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be longer than 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_with_env(&path, &Overrides::default(), env)
    }

    #[test]
    fn shipped_default_config_is_the_built_in_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let s = Settings::load_with_env(&path, &Overrides::default(), vec![]).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn env_overrides_with_double_underscore() {
        let s = load(
            "",
            &[
                ("MODELWATCH__SOURCE__RATE", "250"),
                ("MODELWATCH__PLOT__INTERVAL", "500ms"),
            ],
        )
        .unwrap();
        assert_eq!(s.source.rate, 250.0);
        assert_eq!(s.plot.interval, Duration::from_millis(500));
    }

    #[test]
    fn single_underscore_env_is_an_error() {
        let err = load("", &[("MODELWATCH_SOURCE_RATE", "5")]).unwrap_err();
        assert!(err.to_string().contains("MODELWATCH_SOURCE_RATE"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = load("[source]\nrat = 3\n", &[]).unwrap_err().to_string();
        assert!(err.contains("rat"), "{err}");
        let err = load("[source]\nrate = -1\n", &[]).unwrap_err().to_string();
        assert!(err.contains("source.rate"), "{err}");
        let err = load("", &[("MODELWATCH__SOURCE__RATE", "fast")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("source.rate"), "{err}");
        let err = load("[source]\nrate = 1e-300\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("source.rate"), "{err}");
        let err = load("[plot]\nbins = 0\n", &[]).unwrap_err().to_string();
        assert!(err.contains("plot.bins"), "{err}");
    }

    #[test]
    fn amqp_url_env_turns_the_bridge_on_and_is_redacted() {
        let s = load("", &[("AMQP_URL", "amqp://u:s3cret@h:5672/%2f")]).unwrap();
        assert!(s.bridge.enabled);
        let shown = s.to_redacted_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("u:***@h"), "{shown}");
    }
}
