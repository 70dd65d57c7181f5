//! `[history]`: the RabbitMQ stream that keeps every message the bridge
//! publishes, so a consumer that attaches late (`modelwatch replay`, a
//! dashboard opened tomorrow, a metric log rebuilt after a lost disk) can
//! read what it missed.
//!
//! With `enabled` the topology declares a stream queue (`x-queue-type =
//! stream`, durable) named `queue`, bound to the exchange with `#`.
//! Retention is RabbitMQ's own: `max_age` (`x-max-age`), `max_bytes`
//! (`x-max-length-bytes`), and `segment_bytes`
//! (`x-stream-max-segment-size-bytes`): the broker drops whole segments, so
//! the retention is as fine as a segment. The stream is written by the
//! bridge, so history needs the bridge on (checked in
//! [`super::Settings::validate`]).

use serde::{Deserialize, Serialize};

use super::{amqp_name, Check, ConfigError};

/// Units RabbitMQ accepts in `x-max-age`: years, months, days, hours,
/// minutes, seconds (case matters: `M` is months, `m` minutes).
const AGE_UNITS: &str = "YMDhms";

/// Largest number in `max_age` (100 years in seconds, about).
const MAX_AGE_NUMBER: u64 = 3_200_000_000;

/// Bounds of `max_bytes` and `segment_bytes`.
const MIN_BYTES: u64 = 4_096;
const MAX_STREAM_BYTES: u64 = 1 << 44; // 16 TiB
/// RabbitMQ keeps a segment's size in a 32-bit field; stay below it.
const MAX_SEGMENT_BYTES: u64 = 3_000_000_000;

/// The history stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Declare the stream and bind it to the exchange for every routing key.
    pub enabled: bool,
    /// Name of the stream queue.
    pub queue: String,
    /// Oldest data kept: a whole number and a unit, `Y M D h m s` (`x-max-age`).
    pub max_age: String,
    /// Most bytes kept on disk (`x-max-length-bytes`); whole segments go.
    pub max_bytes: u64,
    /// Size of one segment file (`x-stream-max-segment-size-bytes`).
    pub segment_bytes: u64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            enabled: false,
            queue: "ml_pipeline.history".into(),
            max_age: "7D".into(),
            max_bytes: 5_000_000_000,
            segment_bytes: 100_000_000,
        }
    }
}

impl Check for HistorySettings {
    /// Checked even when off, like the bridge: a bad value should not wait
    /// for the day history is turned on.
    fn check(&self) -> Result<(), ConfigError> {
        amqp_name("history.queue", &self.queue)?;
        if self.queue.starts_with("amq.") {
            return Err(ConfigError::invalid(
                "history.queue",
                "names starting with `amq.` are reserved by RabbitMQ",
            ));
        }
        check_max_age(&self.max_age)?;
        bytes_in(
            "history.max_bytes",
            self.max_bytes,
            MIN_BYTES,
            MAX_STREAM_BYTES,
        )?;
        bytes_in(
            "history.segment_bytes",
            self.segment_bytes,
            MIN_BYTES,
            MAX_SEGMENT_BYTES,
        )?;
        if self.segment_bytes > self.max_bytes {
            return Err(ConfigError::invalid(
                "history.segment_bytes",
                "must be at most history.max_bytes (retention drops whole segments)",
            ));
        }
        Ok(())
    }
}

fn bytes_in(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError::invalid(
            key,
            format!("must be between {lo} and {hi} bytes, got {v}"),
        ));
    }
    Ok(())
}

/// `max_age` as RabbitMQ parses `x-max-age`: a positive whole number and
/// one unit letter. The broker refuses anything else when it declares, and
/// then the stream cannot be made at all: say so at start instead.
fn check_max_age(age: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError::invalid(
            "history.max_age",
            format!(
                "{why}: a whole number and a unit, Y (years), M (months), D (days), h, m or s, e.g. \"7D\" or \"12h\"; got {:?}",
                crate::core::text::sanitize(age)
            ),
        )
    };
    let Some(unit) = age.chars().last() else {
        return Err(bad("must not be empty"));
    };
    if !AGE_UNITS.contains(unit) {
        return Err(bad("unknown unit"));
    }
    let number = &age[..age.len() - unit.len_utf8()];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a whole number"));
    }
    match number.parse::<u64>() {
        Ok(n) if (1..=MAX_AGE_NUMBER).contains(&n) => Ok(()),
        _ => Err(bad(&format!("the number must be 1 to {MAX_AGE_NUMBER}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_takes_rabbitmq_units_only() {
        for ok in ["7D", "1Y", "3M", "12h", "30m", "1s", "3200000000s"] {
            check_max_age(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "D",
            "7",
            "7d",
            "7 D",
            "-1D",
            "0D",
            "1.5h",
            "7DD",
            "3200000001s",
            "7é",
        ] {
            let e = check_max_age(bad).unwrap_err().to_string();
            assert!(e.contains("history.max_age"), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes_are_bounded_and_a_segment_fits_the_stream() {
        let ok = HistorySettings::default();
        ok.check().unwrap();
        let mut s = ok.clone();
        s.segment_bytes = s.max_bytes + 1;
        assert!(s
            .check()
            .unwrap_err()
            .to_string()
            .contains("history.segment_bytes"));
        let mut s = ok.clone();
        s.max_bytes = 10;
        assert!(s
            .check()
            .unwrap_err()
            .to_string()
            .contains("history.max_bytes"));
        let mut s = ok.clone();
        s.queue = "amq.history".into();
        assert!(s.check().unwrap_err().to_string().contains("history.queue"));
        let mut s = ok;
        s.queue = "x".repeat(256);
        assert!(s.check().unwrap_err().to_string().contains("history.queue"));
    }
}
