//! `[http]`: the HTTP server inside the process (`/metrics`, `/health`,
//! `/ready`; see `crate::http`).
//!
//! `max_event_streams` bounds the dashboard's live streams (`/events`);
//! each holds one of the `max_connections` for as long as its page is open.
//!
//! `listen` is `auto` (the default: [`DEFAULT_ADDR`], or a free port on
//! loopback when another process holds it, so that the split layout's
//! processes start side by side on one machine), an address `ip:port`
//! (taken: exit 2; port 0 picks a free port) or `off`. The address bound is
//! logged and written to `logs/http.addr`. Connections served at once, the
//! time a client has to send its request head and the time it has to read a
//! response are bounded, so no client can hold the server.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration_in, in_range, Check, ConfigError, MIN_PERIOD};

/// The `listen` value that disables the server.
pub const HTTP_OFF: &str = "off";

/// The `listen` value that tries [`DEFAULT_ADDR`] and falls back to a free
/// loopback port when it is taken.
pub const HTTP_AUTO: &str = "auto";

/// The address `auto` tries first.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9898";

/// Where to listen, from `http.listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// `off`: no server.
    Off,
    /// `auto`: [`DEFAULT_ADDR`], else a free port on 127.0.0.1.
    Auto,
    /// An address the user gave: bound as it is, or exit 2.
    At(SocketAddr),
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `auto`, `ip:port` to listen on (port 0: any free port), or `off`.
    pub listen: String,
    /// Connections served at once, at most.
    pub max_connections: usize,
    /// A client must send its request head within this time.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// A response (or an event of a stream) that the client does not take
    /// within this time drops the connection.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Dashboard event streams (`GET /events`) open at once, at most.
    pub max_event_streams: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: HTTP_AUTO.into(),
            max_connections: 256,
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_event_streams: 16,
        }
    }
}

impl HttpSettings {
    /// Where to listen. (Settings are checked when loaded, so any value
    /// other than `off` and `auto` parses.)
    pub fn listen(&self) -> Listen {
        match self.listen.as_str() {
            HTTP_OFF => Listen::Off,
            HTTP_AUTO => Listen::Auto,
            other => other.parse().map_or(Listen::Off, Listen::At),
        }
    }

    /// The address given; `None` when the server is `off` or `auto`.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        match self.listen() {
            Listen::At(addr) => Some(addr),
            Listen::Off | Listen::Auto => None,
        }
    }
}

impl Check for HttpSettings {
    fn check(&self) -> Result<(), ConfigError> {
        if self.listen != HTTP_OFF
            && self.listen != HTTP_AUTO
            && self.listen.parse::<SocketAddr>().is_err()
        {
            return Err(ConfigError::invalid(
                "http.listen",
                format!(
                    "must be \"{HTTP_AUTO}\" ({DEFAULT_ADDR}, or a free port when it is taken), \
                     \"{HTTP_OFF}\" or an address ip:port such as {DEFAULT_ADDR} \
                     (port 0 picks a free port), got {:?}",
                    self.listen
                ),
            ));
        }
        in_range("http.max_connections", self.max_connections, 1, 100_000)?;
        in_range("http.max_event_streams", self.max_event_streams, 1, 1000)?;
        duration_in(
            "http.request_timeout",
            self.request_timeout,
            MIN_PERIOD,
            Duration::from_secs(60),
        )?;
        duration_in(
            "http.write_timeout",
            self.write_timeout,
            Duration::from_millis(100),
            Duration::from_secs(60),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_listen(listen: &str) -> HttpSettings {
        HttpSettings {
            listen: listen.into(),
            ..HttpSettings::default()
        }
    }

    #[test]
    fn the_default_is_auto_and_an_address_is_explicit() {
        let h = HttpSettings::default();
        h.check().unwrap();
        assert_eq!(h.listen(), Listen::Auto);
        assert_eq!(h.listen_addr(), None);
        let at = with_listen(DEFAULT_ADDR);
        at.check().unwrap();
        assert_eq!(at.listen(), Listen::At(DEFAULT_ADDR.parse().unwrap()));
    }

    #[test]
    fn off_disables_and_port_0_and_ipv6_are_addresses() {
        let off = with_listen("off");
        off.check().unwrap();
        assert_eq!(off.listen_addr(), None);
        for addr in ["0.0.0.0:0", "[::1]:9000", "127.0.0.1:65535"] {
            let h = with_listen(addr);
            h.check().unwrap();
            assert_eq!(h.listen_addr(), Some(addr.parse().unwrap()), "{addr}");
        }
    }

    #[test]
    fn a_listen_value_that_is_no_address_is_named() {
        for bad in [
            "",
            "OFF",
            "AUTO",
            "on",
            "9898",
            "127.0.0.1",
            "localhost:9898",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            " 127.0.0.1:9898",
        ] {
            let err = with_listen(bad).check().unwrap_err().to_string();
            assert!(err.contains("http.listen"), "{bad:?}: {err}");
        }
        // What is quoted back is bounded and escaped.
        let err = with_listen(&format!("a\n{}", "x".repeat(10_000)))
            .check()
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n') && err.len() < 600, "{err}");
    }

    #[test]
    fn connection_and_timeout_bounds_are_named() {
        for (max_connections, ok) in [(0, false), (1, true), (100_000, true), (100_001, false)] {
            let h = HttpSettings {
                max_connections,
                ..HttpSettings::default()
            };
            match h.check() {
                Ok(()) => assert!(ok, "{max_connections} accepted"),
                Err(e) => {
                    assert!(!ok, "{max_connections}: {e}");
                    assert!(e.to_string().contains("http.max_connections"), "{e}");
                }
            }
        }
        for (streams, ok) in [(0, false), (1, true), (1000, true), (1001, false)] {
            let h = HttpSettings {
                max_event_streams: streams,
                ..HttpSettings::default()
            };
            match h.check() {
                Ok(()) => assert!(ok, "{streams} accepted"),
                Err(e) => {
                    assert!(!ok, "{streams}: {e}");
                    assert!(e.to_string().contains("http.max_event_streams"), "{e}");
                }
            }
        }
        for (ms, ok) in [(9, false), (10, true), (60_000, true), (60_001, false)] {
            let h = HttpSettings {
                request_timeout: Duration::from_millis(ms),
                ..HttpSettings::default()
            };
            match h.check() {
                Ok(()) => assert!(ok, "{ms}ms accepted"),
                Err(e) => {
                    assert!(!ok, "{ms}ms: {e}");
                    assert!(e.to_string().contains("http.request_timeout"), "{e}");
                }
            }
        }
        for (ms, ok) in [(99, false), (100, true), (60_000, true), (60_001, false)] {
            let h = HttpSettings {
                write_timeout: Duration::from_millis(ms),
                ..HttpSettings::default()
            };
            match h.check() {
                Ok(()) => assert!(ok, "{ms}ms accepted"),
                Err(e) => {
                    assert!(!ok, "{ms}ms: {e}");
                    assert!(e.to_string().contains("http.write_timeout"), "{e}");
                }
            }
        }
    }
}
