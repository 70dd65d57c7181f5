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

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::messages::Kind;

/// Prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "MODELWATCH";

/// Environment variable naming the config file (as `--config` does).
pub const CONFIG_ENV: &str = "MODELWATCH_CONFIG";

/// The config file used when none is named and it exists in the current dir.
pub const IMPLICIT_CONFIG: &str = "config/default.toml";

/// The shipped configuration, every key with its comment; equal to
/// [`Settings::default`] (a test checks it). `modelwatch config --default`
/// prints it.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Largest config file read; a config is a few KiB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Longest quoted text in an error message (a key, a path, a parser message).
const MAX_QUOTED_CHARS: usize = 300;

/// Fastest `source.rate`: beyond it the pacing arithmetic loses meaning, and
/// the pipeline does not reach a tenth of it anyway (BENCHMARKS.md).
pub const MAX_RATE: f64 = 10_000_000.0;

/// Shortest period of a timer (renders, flushes, reports, backoff, expiry).
const MIN_PERIOD: Duration = Duration::from_millis(10);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

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
}

impl ConfigError {
    fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: sanitize(key),
            problem: sanitize(&problem.into()),
        }
    }

    fn file(path: &Path, problem: impl Into<String>) -> ConfigError {
        ConfigError::File {
            path: shown_path(path),
            problem: sanitize(&problem.into()),
        }
    }
}

/// Where the settings come from, in the order the program looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Named by `--config` or `MODELWATCH_CONFIG`: it must exist.
    Named(PathBuf),
    /// `config/default.toml` found in the current dir.
    Found(PathBuf),
    /// No file: the built-in defaults (plus environment and flags).
    BuiltIn,
}

impl ConfigSource {
    /// The named file, else `config/default.toml` if the current dir has
    /// one, else the built-in defaults: the program runs from any folder.
    pub fn resolve(named: Option<&Path>) -> ConfigSource {
        match named {
            Some(p) => ConfigSource::Named(p.to_owned()),
            None if Path::new(IMPLICIT_CONFIG).is_file() => {
                ConfigSource::Found(PathBuf::from(IMPLICIT_CONFIG))
            }
            None => ConfigSource::BuiltIn,
        }
    }

    /// The file read, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigSource::Named(p) | ConfigSource::Found(p) => Some(p),
            ConfigSource::BuiltIn => None,
        }
    }

    /// For the one INFO line that says where the settings came from.
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::Named(p) | ConfigSource::Found(p) => {
                format!("config file {}", shown_path(p))
            }
            ConfigSource::BuiltIn => format!(
                "the built-in defaults (no --config, no {CONFIG_ENV}, no ./{IMPLICIT_CONFIG})"
            ),
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
    pub http: HttpSettings,
}

/// TEMPORARY (replaced by the config-sections branch): the HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: String,
    pub max_connections: usize,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:9898".into(),
            max_connections: 256,
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl HttpSettings {
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        if self.listen == "off" {
            None
        } else {
            self.listen.parse().ok()
        }
    }
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
    /// Read what the original Python services publish: the model and metric
    /// work queues become their queues `features`, `y_true` and `y_pred`
    /// (whatever the three queue keys say).
    pub legacy: bool,
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
            legacy: false,
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
            http: HttpSettings::default(),
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
    /// `--legacy-inbound`: sets `inbound.legacy`.
    pub legacy_inbound: bool,
}

impl Settings {
    /// Reads `path`, applies `MODELWATCH__*` environment overrides and `overrides`,
    /// then checks every value.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(path, overrides, std::env::vars().collect())
    }

    /// As [`Settings::load`], from `source` (a file or the built-in defaults).
    pub fn load_from(
        source: &ConfigSource,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        Self::load_source(source.path(), overrides, std::env::vars().collect())
    }

    /// As [`Settings::load`], with an explicit environment (for tests).
    pub fn load_with_env(
        path: &Path,
        overrides: &Overrides,
        env: Vec<(String, String)>,
    ) -> Result<Settings, ConfigError> {
        Self::load_source(Some(path), overrides, env)
    }

    /// The built-in defaults, the file at `path` if any, the environment
    /// `env`, then `overrides`; every value checked.
    pub fn load_source(
        path: Option<&Path>,
        overrides: &Overrides,
        env: Vec<(String, String)>,
    ) -> Result<Settings, ConfigError> {
        let schema = toml::Value::try_from(Settings::default())
            .expect("settings always serialize")
            .try_into::<toml::Table>()
            .expect("settings serialize to a table");
        let text = match path {
            Some(path) => {
                let text = read_config_file(path)?;
                let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                    ConfigError::file(path, syntax_error(&text, &e))
                })?;
                check_file_types(&schema, &table, "")?;
                Some(text)
            }
            None => None,
        };
        check_env_names(&env)?;
        check_env_values(&schema, &env)?;
        let env_map = env
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .cloned()
            .collect();
        let mut builder = config::Config::builder();
        if let Some(text) = &text {
            builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
        }
        let raw = builder
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("roles")
                    .source(Some(env_map)),
            )
            .build()
            .map_err(|e| ConfigError::Load(sanitize(&e.to_string())))?;
        let mut settings: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(sanitize(&e.to_string())))?;
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
        if o.legacy_inbound {
            self.inbound.legacy = true;
        }
        if self.inbound.legacy {
            self.inbound.model_queue = Kind::Features.routing_key().into();
            self.inbound.metric_truth_queue = Kind::YTrue.routing_key().into();
            self.inbound.metric_prediction_queue = Kind::YPred.routing_key().into();
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
        if !s.rate.is_finite()
            || s.rate < 0.0
            || (s.rate > 0.0 && s.rate < 1e-3)
            || s.rate > MAX_RATE
        {
            return Err(ConfigError::invalid(
                "source.rate",
                format!(
                    "must be 0 (as fast as possible) or a number of samples/s between 0.001 and {MAX_RATE:.0}, got {:?}",
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
        duration_in(
            "metric.pending_ttl",
            self.metric.pending_ttl,
            MIN_PERIOD,
            DAY,
        )?;
        duration_in(
            "metric.flush_interval",
            self.metric.flush_interval,
            MIN_PERIOD,
            HOUR,
        )?;
        duration_in("plot.interval", self.plot.interval, MIN_PERIOD, HOUR)?;
        in_range(
            "metric.max_restarts",
            self.metric.max_restarts as usize,
            0,
            1000,
        )?;
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
        duration_in("bridge.backoff_min", b.backoff_min, MIN_PERIOD, HOUR)?;
        duration_in("bridge.backoff_max", b.backoff_max, MIN_PERIOD, HOUR)?;
        if b.backoff_max < b.backoff_min {
            return Err(ConfigError::invalid(
                "bridge.backoff_max",
                "must be >= bridge.backoff_min",
            ));
        }
        duration_in("bridge.stats_interval", b.stats_interval, MIN_PERIOD, DAY)?;
        duration_in(
            "bridge.shutdown_timeout",
            b.shutdown_timeout,
            Duration::ZERO,
            HOUR,
        )?;
        in_range("bridge.heartbeat", b.heartbeat as usize, 0, 3600)?;
        let i = &self.inbound;
        in_range("inbound.prefetch", i.prefetch as usize, 1, 65_535)?;
        duration_in(
            "inbound.shutdown_timeout",
            i.shutdown_timeout,
            Duration::ZERO,
            HOUR,
        )?;
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
        if k.starts_with(&single) && !k.starts_with(&double) && k != CONFIG_ENV {
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

/// Reads a config file, refusing a directory, an unreadable or a huge file.
fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing(shown_path(path)))
        }
        Err(e) => return Err(ConfigError::file(path, format!("cannot read: {e}"))),
    };
    if meta.is_dir() {
        return Err(ConfigError::IsDirectory(shown_path(path)));
    }
    // Bounded even when the size is unknown (a pipe, /dev/zero).
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::file(
            path,
            format!("larger than {MAX_CONFIG_BYTES} bytes: not a config"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        ConfigError::file(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// A TOML syntax error as position and parser message, never the quoted
/// line (which may hold a password).
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(
                "TOML syntax error at line {line}, column {column}: {}",
                e.message().trim()
            )
        }
        None => format!("TOML syntax error: {}", e.message().trim()),
    }
}

/// The kind of value a key takes, from the built-in defaults (`source.seed`,
/// absent by default, is an integer). `None`: not a key (serde names it).
fn expected<'a>(schema: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    const SEED: toml::Value = toml::Value::Integer(0);
    if path == ["source", "seed"] {
        return Some(&SEED);
    }
    let (last, sections) = path.split_last()?;
    let mut table = schema;
    for s in sections {
        table = table.get(*s)?.as_table()?;
    }
    table.get(*last)
}

/// The file's values have the type of their key: a float in an integer key
/// is refused (the config crate would round it), so are a string in a
/// number key and the like. Unknown keys are left to serde, which names them.
fn check_file_types(
    schema: &toml::Table,
    table: &toml::Table,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = format!("{prefix}{k}");
        let path: Vec<&str> = key.split('.').collect();
        let Some(want) = expected(schema, &path) else {
            continue;
        };
        let ok = match (want, v) {
            (toml::Value::Table(_), toml::Value::Table(inner)) => {
                check_file_types(schema, inner, &format!("{key}."))?;
                true
            }
            (toml::Value::Integer(_), toml::Value::Integer(_)) => true,
            (toml::Value::Integer(_), toml::Value::Float(f)) => {
                return Err(ConfigError::invalid(
                    &key,
                    format!("must be a whole number, got {f}"),
                ))
            }
            (toml::Value::Float(_), toml::Value::Float(_) | toml::Value::Integer(_)) => true,
            (a, b) => a.same_type(b),
        };
        if !ok {
            return Err(ConfigError::invalid(
                &key,
                format!("must be {}, got {}", type_name(want), type_name(v)),
            ));
        }
    }
    Ok(())
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::Integer(_) => "a whole number",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::String(_) => "a string",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a section",
        toml::Value::Datetime(_) => "a date",
    }
}

/// Environment values of number and boolean keys must parse as such: a
/// float in an integer key is refused (the config crate would round it).
/// Values that do not parse are not quoted (they may be a secret put in the
/// wrong variable).
fn check_env_values(schema: &toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    let prefix = format!("{ENV_PREFIX}__");
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let path: Vec<&str> = lower.split("__").collect();
        let Some(want) = expected(schema, &path) else {
            continue;
        };
        let key = format!("{name} ({})", path.join("."));
        let v = value.trim();
        let number = v.parse::<f64>().ok().filter(|f| f.is_finite());
        let problem = match want {
            toml::Value::Integer(_) if v.parse::<i64>().is_err() => Some(match number {
                Some(f) => format!("must be a whole number, got {f}"),
                None => "must be a whole number".to_owned(),
            }),
            toml::Value::Float(_) if v.parse::<f64>().is_err() => {
                Some("must be a number".to_owned())
            }
            toml::Value::Boolean(_)
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
            {
                Some("must be true or false".to_owned())
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(ConfigError::invalid(&key, problem));
        }
    }
    Ok(())
}

/// A path as shown in a message: bounded and escaped.
fn shown_path(path: &Path) -> String {
    sanitize(&path.display().to_string())
}

/// Text from outside made fit for a one-line message: URL passwords
/// redacted, control characters (newlines too) escaped, at most
/// [`MAX_QUOTED_CHARS`] characters.
pub fn sanitize(text: &str) -> String {
    let redacted = redact_credentials(text);
    let mut out = String::new();
    for (n, c) in redacted.chars().enumerate() {
        if n == MAX_QUOTED_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces the password of every `scheme://user:password@` in `text` by
/// `***`, also in broken URLs (an unclosed quote, a `/` in the password):
/// the user info runs to the last `@` before a space or a quote.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
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

    #[test]
    fn built_in_defaults_without_a_file_equal_the_shipped_file() {
        let s = Settings::load_source(None, &Overrides::default(), vec![]).unwrap();
        assert_eq!(s, Settings::default());
        let parsed: Settings = toml::from_str(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn floats_in_integer_keys_are_refused_not_rounded() {
        for (toml, key) in [
            ("[source]\ncount = 2.5\n", "source.count"),
            ("[source]\nbatch_size = 1.5\n", "source.batch_size"),
            ("[source]\nseed = 7.0\n", "source.seed"),
            ("[bridge]\nheartbeat = 1e1\n", "bridge.heartbeat"),
            ("[source]\ncount = \"5\"\n", "source.count"),
        ] {
            let err = load(toml, &[]).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        let err = load("", &[("MODELWATCH__SOURCE__COUNT", "2.5")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("source.count"), "{err}");
        // whole numbers still load, and integers are fine for float keys
        let s = load(
            "[source]\nrate = 3\n",
            &[("MODELWATCH__SOURCE__COUNT", "5")],
        )
        .unwrap();
        assert_eq!((s.source.rate, s.source.count), (3.0, 5));
    }

    #[test]
    fn extreme_rates_and_periods_are_refused() {
        for toml in [
            "[source]\nrate = 1e30\n",
            "[source]\nrate = 10000001\n",
            "[plot]\ninterval = \"1ns\"\n",
            "[metric]\nflush_interval = \"9ms\"\n",
            "[metric]\npending_ttl = \"2d\"\n",
            "[bridge]\nbackoff_min = \"1us\"\n",
            "[bridge]\nstats_interval = \"1ms\"\n",
            "[bridge]\nshutdown_timeout = \"2h\"\n",
            "[bridge]\nheartbeat = 60000\n",
            "[inbound]\nshutdown_timeout = \"1000h\"\n",
        ] {
            let key = toml
                .lines()
                .next()
                .unwrap()
                .trim_matches(['[', ']'])
                .to_owned()
                + "."
                + toml.lines().nth(1).unwrap().split(' ').next().unwrap();
            let err = load(toml, &[]).unwrap_err().to_string();
            assert!(err.contains(&key), "{toml}: {err}");
        }
        let s = load(
            "[source]\nrate = 10000000\n[plot]\ninterval = \"10ms\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.plot.interval, Duration::from_millis(10));
    }

    #[test]
    fn credentials_are_redacted_in_every_quoted_text() {
        assert_eq!(
            redact_credentials("url = \"amqp://guest:SECRET@127.0.0.1/"),
            "url = \"amqp://guest:***@127.0.0.1/"
        );
        assert_eq!(
            redact_credentials("a amqp://u:SE/CR@ET@h:5/x b http://h/p@q"),
            "a amqp://u:***@h:5/x b http://h/p@q"
        );
        let err = load("[bridge]\nurl = \"amqp://guest:SECRET@127.0.0.1/\n", &[])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET") && err.contains("line 2"), "{err}");
        let err = load("", &[("MODELWATCH__BRIDGE__ON_FULL", "amqp://u:SECRET@h")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET") && err.contains("on_full"), "{err}");
        let err = load("", &[("MODELWATCH__BRIDGE__HEARTBEAT", "SECRET")])
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("SECRET") && err.contains("bridge.heartbeat"),
            "{err}"
        );
        assert_eq!(sanitize("a\nb"), "a\\nb");
        assert!(sanitize(&"x".repeat(10_000)).len() < 400);
    }

    #[test]
    fn legacy_inbound_reads_the_queues_of_the_python_services() {
        let s = load("[inbound]\nlegacy = true\n", &[]).unwrap();
        assert_eq!(
            [
                s.inbound.model_queue.as_str(),
                &s.inbound.metric_truth_queue,
                &s.inbound.metric_prediction_queue
            ],
            ["features", "y_true", "y_pred"]
        );
        let o = Overrides {
            legacy_inbound: true,
            ..Overrides::default()
        };
        let s = Settings::load_source(None, &o, vec![]).unwrap();
        assert!(s.inbound.legacy);
        assert_eq!(s.inbound.model_queue, "features");
    }

    #[test]
    fn a_directory_is_not_a_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = Settings::load_with_env(dir.path(), &Overrides::default(), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
        let err = Settings::load_with_env(Path::new("/dev/zero"), &Overrides::default(), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
