//! The HTTP server in the split layout: a metric process and a model
//! process with the bridge on, fed by a features process, each serve their
//! own port (from their own `logs/http.addr`); `/ready` is 200 once they are
//! connected, and the metric's `/metrics` counts what came in on each of
//! its two work queues.
//!
//! Needs the real RabbitMQ on 127.0.0.1:5672
//! (`cargo test --test it http_split::`).
//! Broker objects are named for this test and deleted by [`TestBroker`].
//!
//! Also: the README's split layout ("One role per process"), run as the
//! README prints it, on one host, against a private RabbitMQ node (its
//! queue names are the fixed ones of the README).

use crate::support;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::openmetrics::{http_addr, http_get, scrape};
use crate::support::split::*;

/// Waits until `GET /ready` is 200 (bounded); returns its body.
async fn wait_ready(p: &mut RoleProc, addr: SocketAddr) -> String {
    let deadline = Instant::now() + START;
    loop {
        let r = http_get(addr, "/ready");
        if r.status == 200 {
            return r.body;
        }
        assert!(
            p.is_running() && Instant::now() < deadline,
            "{}: /ready still {} ({}) after {START:?}\n{}",
            p.label,
            r.status,
            r.body,
            p.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_serves_its_own_port_ready_once_connected_with_inbound_counters() {
    const N: usize = 2000;
    ensure_broker();
    let broker = TestBroker::new("http");
    let mut metric = broker.spawn("metric", "metric", &[]);
    let mut model = broker.spawn("model", "model", &[]);
    let metric_addr = http_addr(&metric.logs_dir(), START);
    let model_addr = http_addr(&model.logs_dir(), START);
    assert_ne!(metric_addr, model_addr, "two processes on one port");
    for body in [
        wait_ready(&mut metric, metric_addr).await,
        wait_ready(&mut model, model_addr).await,
    ] {
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["status"], "ready", "{body}");
    }
    let health = http_get(metric_addr, "/health");
    assert_eq!(health.status, 200, "{health:?}");
    // The consumers run before anything is published.
    metric.wait_log("inbound consumer started", 2, START).await;
    model.wait_log("inbound consumer started", 1, START).await;

    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "1000"],
    );
    let features_addr = http_addr(&features.logs_dir(), START);
    assert!(![metric_addr, model_addr].contains(&features_addr));
    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;

    let m = scrape(metric_addr);
    for queue in [&broker.truth_queue, &broker.pred_queue] {
        let delivered = m.count(
            "modelwatch_inbound_messages_total",
            &[("queue", queue), ("event", "delivered")],
        );
        assert!(
            delivered >= N as u64,
            "{queue}: {delivered} delivered\n{}",
            m.text
        );
    }
    assert_eq!(m.count("modelwatch_rows_written_total", &[]), N as u64);
    assert_eq!(m.count("modelwatch_bridge_connected", &[]), 1);
    let md = scrape(model_addr);
    let delivered = md.count(
        "modelwatch_inbound_messages_total",
        &[("queue", &broker.model_queue), ("event", "delivered")],
    );
    assert!(
        delivered >= N as u64,
        "model: {delivered} delivered\n{}",
        md.text
    );

    model.stop(STOP).await;
    metric.stop(STOP).await;
    assert_ids_once(&metric.csv(), N, "metric");
}

/// The fenced block tagged `split-layout` of docs/operations.md (it was
/// the README's).
fn readme_split_layout() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
            .expect("docs/operations.md");
    let start = readme
        .find("```sh split-layout\n")
        .expect("docs/operations.md: no ```sh split-layout block (\"One role per process\")");
    let body = &readme[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body
        .find("\n```")
        .expect("docs/operations.md: the split-layout block does not end");
    body[..end].to_string()
}

/// Kills a process group when dropped (a test that fails leaves nothing).
struct Group(u32);

impl Group {
    /// Whether any process of the group is alive.
    fn alive(&self) -> bool {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return false;
        };
        dir.flatten().any(|e| {
            std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid pgrp ...
                    let after = stat.rsplit_once(") ")?.1.to_owned();
                    after.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                .is_some_and(|pgrp| pgrp == self.0)
        })
    }

    fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{sig}"), "--", &format!("-{}", self.0)])
            .status();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.alive() {
            self.signal("KILL");
        }
    }
}

/// Issue 18, 1.1: the README's five commands, as printed, on one machine:
/// every process after the first exited 2 (`http.listen 127.0.0.1:9898:
/// Address already in use`) and no row was written. Now each takes a free
/// port when 9898 is taken (one WARN line) and says it in its
/// `http.addr`; rows arrive and every process answers `/health`.
#[test]
fn the_readme_split_layout_runs_as_printed_on_one_host() {
    const FEATURES: usize = 1000;
    let broker = crate::support::private_broker::PrivateBroker::start("readme-split");
    let block = readme_split_layout();
    assert!(
        block.contains("127.0.0.1:5672"),
        "the README's AMQP_URL changed: {block}"
    );
    // Only the broker's port changes; the features role gets a count.
    let block = block.replace("127.0.0.1:5672", &format!("127.0.0.1:{}", broker.port));
    let mut features_lines = 0;
    let script: Vec<String> = block
        .lines()
        .map(|l| {
            if l.contains("--roles features") {
                features_lines += 1;
                assert!(!l.trim_end().ends_with('&'), "{l}");
                format!("{} --count {FEATURES}", l.trim_end())
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(features_lines, 1, "{block}");
    let dir = tempfile::tempdir().expect("a temp dir");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(dir.path().join("layout.sh"), script.join("\n") + "\n").unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_modelwatch"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(dir.path().join("layout.sh"))
        .current_dir(&cwd)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MODELWATCH")
            || matches!(k.as_str(), "AMQP_URL" | "RUST_LOG" | "FAILPOINTS")
        {
            cmd.env_remove(&k);
        }
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut shell = cmd.spawn().expect("bash");
    let group = Group(shell.id());
    let stderr = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();

    // Every process serves HTTP, each on its own address.
    let mut addrs = Vec::new();
    for logs in ["logs", "logs/model-1", "logs/model-2", "logs/features"] {
        let logs = cwd.join(logs);
        let addr = http_addr(&logs, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = support::openmetrics::http_request(addr, "GET", "/health", "");
            if r.as_ref().is_ok_and(|r| r.status == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: /health at {addr}: {r:?}\n{}",
                logs.display(),
                stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        addrs.push(addr);
    }
    let distinct: std::collections::HashSet<_> = addrs.iter().collect();
    assert_eq!(distinct.len(), 4, "{addrs:?}");

    // Rows arrive in logs/metric_log.csv.
    let csv = cwd.join("logs/metric_log.csv");
    let rows = || {
        std::fs::read_to_string(&csv)
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows() == 0 {
        assert!(
            Instant::now() < deadline,
            "no row in {} after 60 s\n{}",
            csv.display(),
            stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The features process (the script's last command) ends with its count.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = shell.try_wait().expect("waiting for bash") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "features still running\n{}",
            stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "the script exited {status}\n{}", stderr());
    // The rest of the rows, then stop the background processes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows() < FEATURES && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let written = rows();
    group.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while group.alive() {
        assert!(
            Instant::now() < deadline,
            "the layout did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = stderr();
    eprintln!("README split layout: {written} of {FEATURES} rows; HTTP at {addrs:?}");
    assert!(!err.contains("Address already in use"), "{err}");
    assert!(!err.contains("error:"), "{err}");
    let warns = err
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("is in use"))
        .count();
    // 9898 went to the first process (or to someone else already).
    assert!(
        (3..=4).contains(&warns),
        "{warns} fallback WARN lines\n{err}"
    );
    drop(broker);
}
