//! `[bridge]`: the outbound RabbitMQ bridge, and the broker connection that
//! both directions share.
//!
//! With `enabled` (or `--amqp-url`, `AMQP_URL`) every message is also
//! published, persistent and confirmed, to the durable topic `exchange`.
//! While the broker is away or slow up to `buffer` messages wait; when full,
//! `on_full` blocks the source (backpressure) or drops the oldest (counted).
//! The password in `url` is never shown (see `to_redacted_toml`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    amqp_name, duration_in, in_range, redact_url, Check, ConfigError, DAY, HOUR, MIN_PERIOD,
};

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
    /// Publish several samples per message (the batch form of
    /// docs/wire.md), for modelwatch processes on the other end; off, every
    /// sample is its own message, the form outside consumers and the
    /// original Python services read.
    pub batch: bool,
    /// Most samples in one batch message.
    pub batch_max: usize,
}

/// Most samples a batch message may carry (`bridge.batch_max`).
pub const MAX_BATCH_SAMPLES: usize = 65_536;

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
            batch: false,
            batch_max: 512,
        }
    }
}

impl Check for BridgeSettings {
    /// Checked even with the bridge off: `--amqp-url` or `AMQP_URL` may
    /// turn it on, and a bad value should not wait for that day.
    fn check(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| ConfigError::invalid("bridge.url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "amqp" | "amqps") {
            return Err(ConfigError::invalid(
                "bridge.url",
                format!("scheme must be amqp or amqps, got {}", url.scheme()),
            ));
        }
        if url.scheme() == "amqps" && !cfg!(feature = "tls") {
            return Err(ConfigError::invalid(
                "bridge.url",
                format!(
                    "amqps:// needs a build with TLS (`cargo build --features tls`); this build would send {} in clear",
                    redact_url(&self.url)
                ),
            ));
        }
        check_amqp_query(&self.url)?;
        amqp_name("bridge.exchange", &self.exchange)?;
        in_range(
            "bridge.legacy_queue_max_length",
            self.legacy_queue_max_length as usize,
            1,
            100_000_000,
        )?;
        in_range("bridge.buffer", self.buffer, 1, 100_000_000)?;
        in_range("bridge.confirm_window", self.confirm_window, 1, 65_535)?;
        duration_in(
            "bridge.shutdown_timeout",
            self.shutdown_timeout,
            Duration::ZERO,
            HOUR,
        )?;
        duration_in("bridge.backoff_min", self.backoff_min, MIN_PERIOD, HOUR)?;
        duration_in("bridge.backoff_max", self.backoff_max, MIN_PERIOD, HOUR)?;
        if self.backoff_max < self.backoff_min {
            return Err(ConfigError::invalid(
                "bridge.backoff_max",
                "must be >= bridge.backoff_min",
            ));
        }
        duration_in(
            "bridge.stats_interval",
            self.stats_interval,
            MIN_PERIOD,
            DAY,
        )?;
        in_range("bridge.heartbeat", self.heartbeat as usize, 0, 3600)?;
        in_range("bridge.batch_max", self.batch_max, 1, MAX_BATCH_SAMPLES)
    }
}

/// Smallest frame size a broker accepts (AMQP 0-9-1 `frame-min-size`).
const MIN_FRAME_MAX: u32 = 4096;

/// The URL's query as lapin reads it (`heartbeat`, `frame_max`,
/// `channel_max`, `connection_timeout`, `auth_mechanism`): a value lapin
/// cannot parse, or a frame size below the protocol's minimum, would only
/// fail at connect time, over and over; say so now, naming `bridge.url`.
fn check_amqp_query(url: &str) -> Result<(), ConfigError> {
    let uri: lapin::uri::AMQPUri = url.parse().map_err(|e: String| {
        ConfigError::invalid("bridge.url", format!("not an AMQP URL lapin can use: {e}"))
    })?;
    if let Some(f) = uri.query.frame_max {
        if f != 0 && f < MIN_FRAME_MAX {
            return Err(ConfigError::invalid(
                "bridge.url",
                format!("frame_max must be 0 (the broker's choice) or at least {MIN_FRAME_MAX}, got {f}"),
            ));
        }
    }
    Ok(())
}
