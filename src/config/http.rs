//! `[http]`: the HTTP server inside the process (`/metrics`, `/health`,
//! `/ready`; see `crate::http`).
//!
//! `max_event_streams` bounds the dashboard's live streams (`/events`);
//! each holds one of the `max_connections` for as long as its page is open.
//!
//! `listen` is an address `ip:port` (port 0 picks a free port, logged and
//! written to `logs/http.addr`) or `off`. Two processes of the split layout
//! on one machine need different ports. Connections served at once and the
//! time a client has to send its request head are bounded, so no client can
//! hold the server.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration_in, in_range, Check, ConfigError, MIN_PERIOD};

/// The `listen` value that disables the server.
pub const HTTP_OFF: &str = "off";

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `ip:port` to listen on (port 0: any free port), or `off`.
    pub listen: String,
    /// Connections served at once, at most.
    pub max_connections: usize,
    /// A client must send its request head within this time.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Dashboard event streams (`GET /events`) open at once, at most.
    pub max_event_streams: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:9898".into(),
            max_connections: 256,
            request_timeout: Duration::from_secs(5),
            max_event_streams: 16,
        }
    }
}

impl HttpSettings {
    /// The address to bind; `None` when the server is `off`. (Settings are
    /// checked when loaded, so any other value parses.)
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        if self.listen == HTTP_OFF {
            return None;
        }
        self.listen.parse().ok()
    }
}

impl Check for HttpSettings {
    fn check(&self) -> Result<(), ConfigError> {
        if self.listen != HTTP_OFF && self.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::invalid(
                "http.listen",
                format!(
                    "must be \"{HTTP_OFF}\" or an address ip:port such as 127.0.0.1:9898 \
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
    fn the_default_listens_on_loopback_9898() {
        let h = HttpSettings::default();
        h.check().unwrap();
        assert_eq!(h.listen_addr(), Some("127.0.0.1:9898".parse().unwrap()));
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
    }
}
