//! Where a replay starts and stops, and which routing keys it keeps: the
//! parsing and checking of `--from`, `--until` and `--key`, kept pure so
//! that every refusal (an unknown key, a time in the future, a time that is
//! not RFC 3339) is tested without a broker.
//!
//! RabbitMQ's `x-stream-offset` takes `first`, `last`, `next`, an offset
//! or a timestamp. AMQP 0-9-1 timestamps are whole seconds, so a time is
//! truncated to its second: the broker then starts at the first chunk
//! written at or after it (a chunk holds the messages of a few
//! milliseconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The routing keys a history holds: the four of the pipeline and the two
/// of the monitor.
pub const KEYS: [&str; 7] = [
    "features", "y_true", "y_pred", "metrics", "monitor", "alerts", "scored",
];

/// Where to start reading (`--from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest message the stream still holds.
    First,
    /// The start of the last chunk written.
    Last,
    /// Only what is published from now on.
    Next,
    /// This offset (the broker starts at its chunk; earlier ones are skipped).
    Offset(u64),
    /// Messages written at or after this time, in seconds since the epoch.
    Time(u64),
}

/// Where to stop reading (`--until`; `--follow` never stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The end of the stream as it was when the replay started.
    Now,
    /// The first message published after this time (seconds since the
    /// epoch, compared with the message's `timestamp`), or the end.
    Time(u64),
    /// The message at this offset: the end as found before (a backfill
    /// that reads the tail several times probes for the end once).
    Offset(u64),
}

/// A refused `--from`, `--until` or `--key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("--from {0}: not first, last, next, an offset or an RFC 3339 time (e.g. 2026-11-29T08:42:49Z)")]
    BadFrom(String),
    #[error("--until {0}: not now or an RFC 3339 time (e.g. 2026-11-29T08:42:49Z)")]
    BadUntil(String),
    #[error("{flag} {time}: a time in the future (now is {now}); use --from next or --follow to wait for new messages")]
    Future {
        flag: &'static str,
        time: String,
        now: String,
    },
    #[error("--key {0}: unknown routing key (the keys are features, y_true, y_pred, metrics, monitor, alerts)")]
    UnknownKey(String),
    #[error("--until {until} is before --from {from}: nothing to read")]
    Backwards { from: String, until: String },
}

/// Most bytes of an argument quoted back in an error.
const QUOTED: usize = 64;

fn quoted(s: &str) -> String {
    crate::core::text::bounded_text(s, QUOTED)
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn shown(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// An RFC 3339 time (`Z` or a `+hh:mm`/`-hh:mm` offset), in whole seconds
/// since the epoch; `None` if it is not one.
fn parse_time(s: &str) -> Option<u64> {
    if !s.is_ascii() || s.len() > 40 {
        return None;
    }
    let (local, offset_secs) = match s.len().checked_sub(6).map(|i| s.split_at(i)) {
        Some((local, zone))
            if (zone.starts_with('+') || zone.starts_with('-')) && zone.as_bytes()[3] == b':' =>
        {
            let hours: i64 = zone[1..3].parse().ok()?;
            let minutes: i64 = zone[4..6].parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            (
                local.to_string() + "Z",
                sign * (hours * 3600 + minutes * 60),
            )
        }
        _ => (s.to_string(), 0),
    };
    let utc = seconds(humantime::parse_rfc3339_weak(&local).ok()?) as i64 - offset_secs;
    u64::try_from(utc).ok()
}

/// Parses `--from` against the clock `now`.
pub fn parse_from(s: &str, now: SystemTime) -> Result<Start, PositionError> {
    let start = match s {
        "first" => Start::First,
        "last" => Start::Last,
        "next" => Start::Next,
        _ if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map(Start::Offset)
            .map_err(|_| PositionError::BadFrom(quoted(s)))?,
        _ => Start::Time(parse_time(s).ok_or_else(|| PositionError::BadFrom(quoted(s)))?),
    };
    if let Start::Time(t) = start {
        if t > seconds(now) {
            return Err(PositionError::Future {
                flag: "--from",
                time: shown(t),
                now: shown(seconds(now)),
            });
        }
    }
    Ok(start)
}

/// Parses `--until` against the clock `now` and the start.
pub fn parse_until(s: &str, from: Start, now: SystemTime) -> Result<Until, PositionError> {
    if s == "now" {
        return Ok(Until::Now);
    }
    let t = parse_time(s).ok_or_else(|| PositionError::BadUntil(quoted(s)))?;
    if t > seconds(now) {
        return Err(PositionError::Future {
            flag: "--until",
            time: shown(t),
            now: shown(seconds(now)),
        });
    }
    if let Start::Time(f) = from {
        if t < f {
            return Err(PositionError::Backwards {
                from: shown(f),
                until: shown(t),
            });
        }
    }
    Ok(Until::Time(t))
}

/// The routing keys to keep, from `--key` (repeatable, or comma-separated);
/// none given keeps every key. Each is one of [`KEYS`].
pub fn parse_keys(given: &[String]) -> Result<Vec<&'static str>, PositionError> {
    let mut keys: Vec<&'static str> = Vec::new();
    for k in given.iter().flat_map(|k| k.split(',')) {
        let known = KEYS
            .iter()
            .find(|known| **known == k)
            .ok_or_else(|| PositionError::UnknownKey(quoted(k)))?;
        if !keys.contains(known) {
            keys.push(known);
        }
    }
    if keys.is_empty() {
        keys = KEYS.to_vec();
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn from_takes_names_offsets_and_past_times() {
        let now = at("2026-11-29T12:00:00Z");
        assert_eq!(parse_from("first", now), Ok(Start::First));
        assert_eq!(parse_from("last", now), Ok(Start::Last));
        assert_eq!(parse_from("next", now), Ok(Start::Next));
        assert_eq!(parse_from("0", now), Ok(Start::Offset(0)));
        assert_eq!(parse_from("4999", now), Ok(Start::Offset(4999)));
        // 2026-11-29T11:00:00.750Z is 1795950000.75 s after the epoch
        // (python3 -c "import datetime as d; print(d.datetime(2026,11,29,11,tzinfo=d.timezone.utc).timestamp())"
        // prints 1795950000.0): truncated to the second.
        assert_eq!(
            parse_from("2026-11-29T11:00:00.750Z", now),
            Ok(Start::Time(1_795_950_000))
        );
        assert_eq!(
            parse_from("2026-11-29T13:00:00+02:00", now),
            Ok(Start::Time(1_795_950_000))
        );
    }

    #[test]
    fn from_refuses_the_future_and_nonsense() {
        let now = at("2026-11-29T12:00:00Z");
        assert!(matches!(
            parse_from("2026-11-29T12:00:01Z", now),
            Err(PositionError::Future { flag: "--from", .. })
        ));
        for bad in [
            "",
            "-1",
            "1.5",
            "yesterday",
            "99999999999999999999999",
            "first ",
        ] {
            assert!(
                matches!(parse_from(bad, now), Err(PositionError::BadFrom(_))),
                "{bad:?}"
            );
        }
        let long = "x".repeat(10_000);
        let e = parse_from(&long, now).unwrap_err().to_string();
        assert!(
            e.len() < 300,
            "the error quotes a bounded part: {}",
            e.len()
        );
    }

    #[test]
    fn until_is_now_or_a_past_time_after_from() {
        let now = at("2026-11-29T12:00:00Z");
        assert_eq!(parse_until("now", Start::First, now), Ok(Until::Now));
        assert_eq!(
            parse_until("2026-11-29T11:00:00Z", Start::First, now),
            Ok(Until::Time(1_795_950_000))
        );
        assert!(matches!(
            parse_until("2026-11-30T00:00:00Z", Start::First, now),
            Err(PositionError::Future {
                flag: "--until",
                ..
            })
        ));
        assert!(matches!(
            parse_until("2026-11-29T10:00:00Z", Start::Time(1_795_950_000), now),
            Err(PositionError::Backwards { .. })
        ));
        assert!(matches!(
            parse_until("soon", Start::First, now),
            Err(PositionError::BadUntil(_))
        ));
    }

    #[test]
    fn keys_are_checked_deduplicated_and_default_to_all() {
        assert_eq!(parse_keys(&[]).unwrap(), KEYS.to_vec());
        let given = vec!["metrics".to_string(), "alerts,metrics".to_string()];
        assert_eq!(parse_keys(&given).unwrap(), vec!["metrics", "alerts"]);
        assert_eq!(
            parse_keys(&["metric".to_string()]),
            Err(PositionError::UnknownKey("metric".into()))
        );
        assert!(parse_keys(&["".to_string()]).is_err());
    }
}
