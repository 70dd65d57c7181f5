//! A real Prometheus scrapes the real binary, and promtool checks a real
//! scrape: `/metrics` is what the Prometheus tools accept, not only what
//! our own reader (support/openmetrics.rs) parses.
//!
//! Prometheus and promtool come from Debian's `prometheus` package,
//! installed by [`provision::prometheus_tools`] when missing. Each test runs
//! its own server: a temp dir holding its config and its TSDB, a free port
//! on 127.0.0.1, scraping only the binary under test (127.0.0.1 too) every
//! second. Any `prometheus` service the package may have started (port
//! 9090, /var/lib/prometheus) is never used. The server is killed by PID
//! and its dir removed when the test ends, pass or fail ([`Prometheus`]'s
//! Drop). None of these tests needs RabbitMQ: the bridge, where one is on,
//! points at a port nothing listens on.

use crate::support;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::openmetrics::{http_addr, http_get, http_request, scrape};
use crate::support::sandbox::*;

/// A port nothing listens on: the bridge retries it until its shutdown timeout.
const UNREACHABLE: &str = "amqp://guest:guest@127.0.0.1:5999/%2f";

/// The job name of the binary in the scrape config.
const JOB: &str = "modelwatch";

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// The last `n` lines of a file (the server's log, for a failure message).
fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Percent-encodes a query parameter (everything but unreserved characters).
fn encode_query(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server of our own, scraping `target` every second. Killed
/// by PID, and its dir (config, data, log) removed, on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with a config scraping `target` as job [`JOB`];
    /// returns once `/-/ready` answers 200 (bounded). A port taken between
    /// [`free_port`] and the server's bind is retried on another port.
    fn start(prometheus: &Path, target: SocketAddr) -> Prometheus {
        assert!(target.ip().is_loopback(), "scrape only loopback: {target}");
        let dir = tempfile::Builder::new()
            .prefix("modelwatch-prometheus-")
            .tempdir()
            .expect("a temp dir");
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .expect("writing prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let mut last = String::new();
        for _ in 0..3 {
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let file = File::create(&log).expect("creating the log");
            let mut child = Command::new(prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("the log"))
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", prometheus.display()));
            match wait_ready(&mut child, addr, Duration::from_secs(30)) {
                Ok(()) => return Prometheus { child, addr, dir },
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("{e}\n{}", tail(&log, 20));
                }
            }
        }
        panic!("Prometheus did not start: {last}");
    }

    /// `GET /api/v1/query?query=<expr>`: the raw JSON answer and the
    /// instant vector as (labels, value); panics unless it is a success.
    fn query(&self, expr: &str) -> (String, Vec<(serde_json::Value, f64)>) {
        let path = format!("/api/v1/query?query={}", encode_query(expr));
        let r = http_get(self.addr, &path);
        assert_eq!(r.status, 200, "{expr}: {r:?}");
        let json: serde_json::Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{expr}: not JSON ({e}): {}", r.body));
        assert_eq!(json["status"], "success", "{expr}: {json}");
        assert_eq!(json["data"]["resultType"], "vector", "{expr}: {json}");
        let samples = json["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{expr}: no result: {json}"))
            .iter()
            .map(|s| {
                let v = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{expr}: bad value in {s}"));
                (s["metric"].clone(), v)
            })
            .collect();
        (r.body, samples)
    }

    /// The single value of `expr`; panics unless there is exactly one.
    fn value(&self, expr: &str) -> f64 {
        let (raw, samples) = self.query(expr);
        println!("query {expr}\n  -> {raw}");
        assert_eq!(samples.len(), 1, "{expr}: one series expected: {raw}");
        samples[0].1
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // By PID (SIGKILL); the temp dir goes with `dir` afterwards.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the server at `addr` answers `/-/ready` with 200; Err if it
/// exits or does not within `timeout`.
fn wait_ready(child: &mut Child, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("prometheus exited with {status}"));
        }
        if http_request(addr, "GET", "/-/ready", "").is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("/-/ready not 200 within {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// `up` is 1 while the binary runs, and after the run Prometheus holds the
/// final counts: `modelwatch_samples_emitted_total` and
/// `modelwatch_rows_written_total` both equal the rows of metric_log.csv.
///
/// How the last scrape is made to see final values, exactly: a process
/// stops serving `/metrics` when it exits, so a scrape taken just before
/// the exit may or may not hold the last rows. Here the run mirrors to a
/// broker that never answers (a closed port) with
/// `bridge.shutdown_timeout = 6s`: after `--count` is done the drain writes
/// and flushes every row (final counters), then the bridge waits 6 s for
/// confirms that never come while the HTTP server keeps serving. Prometheus
/// scrapes every second, so it takes several scrapes of the final values.
/// The run then exits 1 (messages undelivered), which is asserted too.
/// `last_over_time` reads the last real sample (the staleness marker
/// written when the target went away is not a value).
#[test]
fn prometheus_scrapes_up_and_the_final_counts_equal_the_csv_rows() {
    // Installed (when missing) before the binary starts, not while it runs.
    let (prometheus, _) = support::provision::prometheus_tools();
    let started = Instant::now();
    let sb = Sandbox::new();
    let logs = sb.logs();
    // 6 s of samples, then a 6 s hold: `up` is seen well within either.
    let count: u64 = 1200;
    let mut cmd = sb.run_command(
        &logs,
        &[
            "--count",
            &count.to_string(),
            "--rate",
            "200",
            "--amqp-url",
            UNREACHABLE,
        ],
    );
    cmd.env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", "6s");
    let mut run = Running::spawn(cmd);
    let target = http_addr(&logs, Duration::from_secs(20));
    let prom = Prometheus::start(&prometheus, target);

    // `up` is 1 for our job while the binary runs.
    let up_expr = format!("up{{job=\"{JOB}\"}}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (raw, samples) = prom.query(&up_expr);
        if samples.iter().any(|(_, v)| *v == 1.0) {
            println!("query {up_expr}\n  -> {raw}");
            assert_eq!(samples.len(), 1, "one target: {raw}");
            assert_eq!(samples[0].0["instance"], target.to_string(), "{raw}");
            break;
        }
        assert!(
            run.is_running() && Instant::now() < deadline,
            "no up == 1 for {JOB} while it ran: {raw}\n{}",
            tail(&prom.log(), 20)
        );
        thread::sleep(Duration::from_millis(200));
    }

    let out = run.wait(Duration::from_secs(40));
    out.expect_code(1);
    let line = one_error_line(&out);
    assert!(
        line.contains("not confirmed by the broker"),
        "exit 1 only for the unreachable broker: {line}"
    );
    let rows = read_metric_log(&logs).len() as u64;
    assert_eq!(rows, count, "every sample has its row");

    let job = format!("{{job=\"{JOB}\"}}");
    let scrapes = prom.value(&format!("count_over_time(up{job}[5m])"));
    let emitted = prom.value(&format!(
        "last_over_time(modelwatch_samples_emitted_total{job}[5m])"
    ));
    let written = prom.value(&format!(
        "last_over_time(modelwatch_rows_written_total{job}[5m])"
    ));
    let finals = support::openmetrics::Scrape::final_of(&logs);
    println!(
        "scrapes {scrapes}, emitted {emitted}, written {written}, csv rows {rows}, \
         final_metrics.txt rows {}, {:.1} s",
        finals.count("modelwatch_rows_written_total", &[]),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        emitted, rows as f64,
        "samples counter in Prometheus vs CSV rows"
    );
    assert_eq!(
        written, rows as f64,
        "rows counter in Prometheus vs CSV rows"
    );
    assert_eq!(finals.count("modelwatch_rows_written_total", &[]), rows);
    assert!(scrapes >= 3.0, "only {scrapes} scrapes");
}

/// Runs `promtool check metrics` with `input` on stdin, bounded; returns
/// (exit code, stdout, stderr).
fn promtool_check(promtool: &Path, input: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (inp, out, err) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("err"),
    );
    fs::write(&inp, input).expect("writing the scrape");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(File::open(&inp).expect("the scrape"))
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", promtool.display()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for promtool") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("promtool check metrics: no exit within 30 s; killed");
        }
        thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        fs::read_to_string(&out).unwrap_or_default(),
        fs::read_to_string(&err).unwrap_or_default(),
    )
}

/// `promtool check metrics` accepts a real scrape of the running binary,
/// taken once rows are flowing (so the histograms hold observations), with
/// no lint problem (promtool exits 3 on one, 1 on a parse error).
///
/// promtool 2.42 lints the Prometheus text format 0.0.4, not OpenMetrics
/// (it rejects the `info` type, and reads a counter `x` with samples
/// `x_total` as a family without help), so the scrape asks for it the way
/// one would at a shell: `curl -H 'Accept: text/plain' .../metrics |
/// promtool check metrics`. Without that header `/metrics` stays
/// OpenMetrics (checked here too), which is what Prometheus reads.
#[test]
fn promtool_check_metrics_accepts_a_real_scrape() {
    let (_, promtool) = support::provision::prometheus_tools();
    let sb = Sandbox::new();
    let logs = sb.logs();
    let run = Running::spawn(sb.run_command(&logs, &["--count", "0", "--rate", "2000"]));
    let addr = http_addr(&logs, Duration::from_secs(20));
    // `scrape` asserts the OpenMetrics content type of a plain GET.
    wait_until("rows in /metrics", Duration::from_secs(20), || {
        scrape(addr).count("modelwatch_rows_written_total", &[]) > 0
    });
    let r = http_request(addr, "GET", "/metrics", "Accept: text/plain\r\n").expect("GET /metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "{r:?}"
    );
    let body = r.body;
    assert!(
        body.contains("\nmodelwatch_rows_written_total "),
        "a whole exposition: {body}"
    );
    let (code, stdout, stderr) = promtool_check(&promtool, &body);
    println!("promtool check metrics: exit {code:?}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    assert_eq!(
        code,
        Some(0),
        "promtool rejects /metrics:\n{stderr}{stdout}\n--- scrape\n{body}"
    );
    assert!(
        stderr.trim().is_empty() && !stdout.to_lowercase().contains("error"),
        "promtool reported problems:\n{stderr}{stdout}"
    );

    // And promtool is no rubber stamp: a broken copy of the same scrape fails.
    let broken = body.replacen(
        "modelwatch_samples_emitted_total ",
        "modelwatch samples ",
        1,
    );
    let (code, _, stderr) = promtool_check(&promtool, &broken);
    assert_ne!(code, Some(0), "promtool accepted a broken scrape: {stderr}");

    run.signal("TERM");
    run.wait(Duration::from_secs(30)).expect_code(0);
}
