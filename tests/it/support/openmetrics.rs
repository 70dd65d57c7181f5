//! Reading the telemetry registry of a real `modelwatch` process, the way
//! a scraper does: `GET /metrics` over HTTP while it runs, or
//! `logs/final_metrics.txt` (the same OpenMetrics text, written at exit)
//! once it is gone. No test parses log text for a number.
//!
//! [`http_get`] is a minimal HTTP/1.1 client over a `TcpStream` with
//! bounded timeouts (`Connection: close`), enough for our own server.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// One parsed exposition: every sample with its labels.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
    pub text: String,
}

impl Scrape {
    /// Parses OpenMetrics text; panics with the line on anything malformed.
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value in {line:?}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                    (name.to_string(), parse_labels(body, line))
                }
            };
            samples.push((name, labels, value));
        }
        Scrape {
            samples,
            text: text.to_string(),
        }
    }

    /// The registry a process wrote at exit (`logs/final_metrics.txt`).
    pub fn final_of(logs: &Path) -> Scrape {
        let path = logs.join("final_metrics.txt");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (the process writes it at exit)", path.display()));
        assert!(
            text.ends_with("# EOF\n"),
            "{}: not a whole exposition",
            path.display()
        );
        Scrape::parse(&text)
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    /// Panics, naming the series, when there is none: a renamed metric, one
    /// never registered, or a wrong name in the test must fail the check,
    /// never read as 0. See [`Scrape::get_or_zero`] for the label sets a
    /// family only shows once they are used.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).unwrap_or_else(|| {
            panic!(
                "the series {name}{labels:?} is absent from the registry ({} samples{}): \
                 renamed, never registered, or a wrong name in the test",
                self.samples.len(),
                if self.has(name) {
                    format!("; {name} has other label sets: {:?}", self.label_sets(name))
                } else {
                    String::new()
                }
            )
        })
    }

    /// As [`Scrape::get`], but an absent series reads 0 when, and only when,
    /// `name` belongs to a metric family the program declares (see
    /// `declared_names`): a labelled family (say
    /// `modelwatch_bridge_messages_total{event="nacked"}`) shows a label set
    /// only once it is used, and a family nobody touched not at all. A name
    /// the program does not register still fails, naming it.
    pub fn get_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(name, labels) {
            Some(v) => v,
            None => {
                assert!(
                    declared_family(name).is_some(),
                    "{name}: no metric family of that name is declared by the program \
                     (src/core/metrics.rs, src/monitor/telemetry.rs): renamed, or a wrong name \
                     in the test"
                );
                0.0
            }
        }
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for (n, l, v) in &self.samples {
            if n == name
                && labels
                    .iter()
                    .all(|(k, want)| l.get(*k).map(String::as_str) == Some(*want))
            {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }

    fn label_sets(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, _)| l)
            .take(10)
            .collect()
    }

    /// As [`Scrape::get`], as a whole number.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        whole(name, labels, self.get(name, labels))
    }

    /// As [`Scrape::get_or_zero`], as a whole number.
    pub fn count_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        whole(name, labels, self.get_or_zero(name, labels))
    }

    /// Whether any sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

fn whole(name: &str, labels: &[(&str, &str)], v: f64) -> u64 {
    assert!(
        v >= 0.0 && v.fract() == 0.0,
        "{name} {labels:?} = {v} is not a count"
    );
    v as u64
}

/// The families the program registers (`modelwatch_NAME[_UNIT]`), from
/// its own declarations (`pipeline::check::metric_declarations`: the
/// registry's, the monitor's and the build info), the list `/metrics` is
/// registered from.
fn declared_names() -> Vec<String> {
    modelwatch::pipeline::check::metric_declarations()
        .iter()
        .map(|d| d.family())
        .collect()
}

/// The registered family a sample name belongs to (`_total`, `_bucket`,
/// `_sum`, `_count`, `_created`, `_info` are the suffixes OpenMetrics adds).
pub fn declared_family(name: &str) -> Option<String> {
    let names = declared_names();
    let mut candidates = vec![name];
    for suffix in ["_total", "_bucket", "_sum", "_count", "_created", "_info"] {
        if let Some(base) = name.strip_suffix(suffix) {
            candidates.push(base);
        }
    }
    candidates
        .into_iter()
        .find(|c| names.iter().any(|n| n == c))
        .map(str::to_string)
}

fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("bad escape in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unclosed label value in {line:?}"),
            }
        };
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The address a process serves HTTP on, from `logs/http.addr` (waits for
/// the file, bounded).
pub fn http_addr(logs: &Path, timeout: Duration) -> SocketAddr {
    let path = logs.join("http.addr");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(addr) = text.trim().parse() {
                return addr;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{}: no address after {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A response: status code, headers (lower-case names), body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// `METHOD path` with `extra` header lines, over a fresh connection;
/// every read and write bounded by 5 s.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
) -> std::io::Result<Response> {
    let limit = Some(Duration::from_secs(5));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(limit)?;
    s.set_write_timeout(limit)?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.take(64 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<BTreeMap<_, _>>();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `GET path`; panics on a connection error.
pub fn http_get(addr: SocketAddr, path: &str) -> Response {
    http_request(addr, "GET", path, "").unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// `GET /metrics`, checked to be OpenMetrics, parsed.
pub fn scrape(addr: SocketAddr) -> Scrape {
    let r = http_get(addr, "/metrics");
    assert_eq!(r.status, 200, "GET /metrics: {r:?}");
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "GET /metrics content type"
    );
    Scrape::parse(&r.body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = body.split_once("\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            return out;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
}

#[test]
fn openmetrics_text_is_read_back() {
    let s = Scrape::parse(
        "# TYPE a counter\na_total 3\nb_total{queue=\"q,1\",event=\"acked\"} 2\nb_total{queue=\"q\",event=\"acked\"} 5\nc_bucket{le=\"+Inf\"} 7\n# EOF\n",
    );
    assert_eq!(s.count("a_total", &[]), 3);
    assert_eq!(s.count("b_total", &[("event", "acked")]), 7);
    assert_eq!(s.count("b_total", &[("queue", "q,1")]), 2);
    assert_eq!(s.count("c_bucket", &[("le", "+Inf")]), 7);
    // An absent series fails, naming it; `*_or_zero` only for a family the
    // program registers.
    let absent = std::panic::catch_unwind(|| s.count("nothing_total", &[]));
    let msg = *absent.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("nothing_total"), "{msg}");
    assert!(std::panic::catch_unwind(|| s.count("b_total", &[("event", "nacked")])).is_err());
    assert!(std::panic::catch_unwind(|| s.count_or_zero("nothing_total", &[])).is_err());
    assert_eq!(
        s.count_or_zero("modelwatch_bridge_messages_total", &[("event", "nacked")]),
        0
    );
    assert_eq!(
        declared_family("modelwatch_absolute_error_count").as_deref(),
        Some("modelwatch_absolute_error")
    );
    assert_eq!(declared_family("modelwatch_absolute_eror_count"), None);
    // The monitor's families, units and the build info are declared too.
    assert_eq!(
        declared_family("modelwatch_monitor_dropped_bytes_total").as_deref(),
        Some("modelwatch_monitor_dropped_bytes")
    );
    assert_eq!(
        declared_family("modelwatch_build_info").as_deref(),
        Some("modelwatch_build")
    );
    assert_eq!(s.count_or_zero("modelwatch_window_mae", &[]), 0);
    // Without its unit the name is not declared.
    assert!(
        std::panic::catch_unwind(|| s.count_or_zero("modelwatch_monitor_dropped_total", &[]))
            .is_err()
    );
}
