//! Helpers for the tests that talk to the real RabbitMQ on 127.0.0.1:5672.
//!
//! - [`App`]: runs the `modelwatch` binary in a temporary folder (its logs in
//!   `<tmp>/logs`), with a clean environment and a hard time limit;
//! - [`TestQueue`]: a durable queue with a unique name bound to `ml_pipeline`,
//!   drained with lapin into [`Received`] messages, deleted at the end;
//! - [`read_metric_csv`], [`Counters`] and [`coverage`] to compare what the
//!   run wrote with what the broker holds;
//! - [`PrivateBroker`]: a RabbitMQ node of the test's own, for the tests
//!   that stop or restart the broker or need fixed queue names (the
//!   machine's broker is never stopped, restarted or purged by a test);
//! - [`LineChild`]: a child process whose stdout is read line by line.
//!
//! Nothing here skips a test when the broker is absent: every broker helper
//! panics with a message that says what is wrong.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;

pub use super::openmetrics::Scrape;
pub use super::private_broker::PrivateBroker;
pub use super::provision::{ensure_broker, python_with_pika, run_bounded};
pub use super::{connect_to, oracle, read_metric_csv, Row, BROKER_URL};

/// Nothing listens on port 1: connections are refused at once.
pub const UNREACHABLE_URL: &str = "amqp://guest:guest@127.0.0.1:1/%2f";
/// The exchange the bridge publishes to.
pub const EXCHANGE: &str = "ml_pipeline";
/// The routing keys, one per message kind.
pub const ROUTING_KEYS: [&str; 4] = ["features", "y_true", "y_pred", "metrics"];
/// The queues of the original Python services.
pub const LEGACY_QUEUES: [&str; 3] = ["features", "y_true", "y_pred"];
/// The setting that makes the bridge declare [`LEGACY_QUEUES`].
pub const LEGACY_QUEUES_KEY: &str = "MODELWATCH__BRIDGE__LEGACY_QUEUES";
use super::process::{Launch, Proc};
pub use super::serial::broker_lock;

/// A name no other test (or test process) uses.
pub fn unique_name(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "modelwatch-test.{what}.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------
// The binary under test.

/// How to start one `modelwatch run` (a [`Launch`] in a temporary folder).
#[derive(Debug)]
pub struct AppBuilder {
    launch: Launch,
    /// For failure messages.
    args: Vec<String>,
}

impl AppBuilder {
    /// Extra arguments after `run --config <default.toml> --logs-dir <tmp>/logs`.
    pub fn args(mut self, args: &[&str]) -> AppBuilder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self.launch = self.launch.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> AppBuilder {
        self.launch = self.launch.env(key, value);
        self
    }

    /// Starts the binary in a fresh temporary folder (current dir
    /// `<tmp>/cwd`, logs in `<tmp>/logs`, output in `<tmp>/std*.txt`).
    pub fn start(self) -> App {
        let mut launch = self.launch;
        // The legacy queues `features`, `y_true`, `y_pred` are fixed names
        // that no test reads unless it says so (and then on a
        // [`PrivateBroker`] of its own): off unless the test sets the key.
        if !launch.sets(LEGACY_QUEUES_KEY) {
            launch = launch.env(LEGACY_QUEUES_KEY, "false");
        }
        App {
            proc: Some(launch.spawn()),
            args: self.args,
        }
    }
}

/// A running `modelwatch run`; killed (and its folder removed) if dropped
/// before it finished.
pub struct App {
    /// Taken by [`App::finish`].
    proc: Option<Proc>,
    args: Vec<String>,
}

impl App {
    pub fn builder() -> AppBuilder {
        AppBuilder {
            launch: Launch::run().in_temp_dir("modelwatch-app-"),
            args: Vec::new(),
        }
    }

    fn proc(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("not finished yet")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.proc
            .as_ref()
            .expect("not finished yet")
            .dir()
            .join("logs")
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        self.proc().is_running()
    }

    /// Waits for the exit; past `timeout` (from its start) kills the
    /// process and panics with the end of its log.
    pub async fn finish(mut self, timeout: Duration) -> Finished {
        let mut proc = self.proc.take().expect("not finished yet");
        let left = (proc.started() + timeout).saturating_duration_since(Instant::now());
        let Some(status) = proc.wait_for_async(left).await else {
            proc.kill();
            panic!(
                "modelwatch {:?} still running after {timeout:?}: killed.\n--- stderr (end) ---\n{}",
                self.args,
                tail(&read(&proc.dir().join("stderr.txt")), 40)
            );
        };
        Finished {
            elapsed: proc.started().elapsed(),
            status,
            proc,
            args: std::mem::take(&mut self.args),
        }
    }
}

/// A finished run and its files.
pub struct Finished {
    pub status: ExitStatus,
    /// From start to exit.
    pub elapsed: Duration,
    /// Exited; holds the folder (removed when this drops).
    proc: Proc,
    args: Vec<String>,
}

impl Finished {
    pub fn logs_dir(&self) -> PathBuf {
        self.proc.dir().join("logs")
    }

    /// `logs/pipeline.log` (no colours, unlike stderr).
    pub fn log(&self) -> String {
        read(&self.logs_dir().join("pipeline.log"))
    }

    pub fn stderr(&self) -> String {
        read(&self.proc.dir().join("stderr.txt"))
    }

    /// Panics, with the end of stderr, unless the exit code is 0.
    pub fn assert_exit_ok(&self) {
        assert!(
            self.status.success(),
            "modelwatch {:?} exited with {} after {:?}\n--- stderr (end) ---\n{}",
            self.args,
            self.status,
            self.elapsed,
            tail(&self.stderr(), 40)
        );
    }

    /// The rows of `logs/metric_log.csv`.
    pub fn rows(&self) -> Vec<Row> {
        read_metric_csv(&self.logs_dir().join("metric_log.csv"))
    }

    /// The bridge's counters at shutdown.
    pub fn counters(&self) -> Counters {
        Counters::from_final(&self.logs_dir())
    }
}

/// A file as text, without terminal colour codes (stderr has them).
fn read(path: &Path) -> String {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{}: {e}>", path.display()));
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Lines of `log` containing `needle`.
pub fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// The bridge's counters at exit, from the registry the process wrote
/// (`logs/final_metrics.txt`): `modelwatch_bridge_messages_total{event}`,
/// reconnects and the undelivered count set at shutdown.
#[derive(Debug, Clone)]
pub struct Counters {
    /// The registry's bridge samples, for failure messages.
    pub line: String,
    scrape: Scrape,
    pub undelivered: u64,
}

impl Counters {
    pub fn from_final(logs: &Path) -> Counters {
        let scrape = Scrape::final_of(logs);
        let line = scrape
            .text
            .lines()
            .filter(|l| l.starts_with("modelwatch_bridge"))
            .collect::<Vec<_>>()
            .join("; ");
        Counters {
            undelivered: scrape.count("modelwatch_bridge_undelivered", &[]),
            line,
            scrape,
        }
    }

    /// The monitor's own messages on the exchange: one per closed window
    /// (routing key `monitor`) and one per alert event (`alerts`), beside
    /// the pipeline's four per sample.
    pub fn monitor_messages(&self) -> u64 {
        // No alert event: the family has no label set at all.
        self.scrape.count("modelwatch_monitor_windows_total", &[])
            + self
                .scrape
                .count_or_zero("modelwatch_alert_events_total", &[])
    }

    /// A counter of the bridge (`accepted`, `published`, `confirmed`,
    /// `nacked`, `resent`, `dropped`, or `reconnects`). An event's label
    /// set shows only once it happened: absent reads 0 (a name the program
    /// does not register still fails).
    pub fn get(&self, name: &str) -> u64 {
        match name {
            "reconnects" => self.scrape.count("modelwatch_bridge_reconnects_total", &[]),
            event => self
                .scrape
                .count_or_zero("modelwatch_bridge_messages_total", &[("event", event)]),
        }
    }
}

// ---------------------------------------------------------------------------
// metric_log.csv

// ---------------------------------------------------------------------------
// The broker.

/// Waits until the broker takes AMQP connections; panics after `timeout`.
pub async fn wait_for_broker(timeout: Duration) {
    ensure_broker();
    wait_for_broker_at(BROKER_URL, timeout).await
}

/// Waits until the broker at `url` takes AMQP connections; panics after
/// `timeout`.
pub async fn wait_for_broker_at(url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect(url, ConnectionProperties::default()),
        )
        .await;
        let error = match attempt {
            Ok(Ok(conn)) => {
                let _ = conn.close(200, "ready".into()).await;
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out".to_string(),
        };
        if Instant::now() >= deadline {
            panic!(
                "RabbitMQ at {url} not reachable within {timeout:?} ({error}). These tests \
                 need the broker: `rabbitmq-server -detached`, then `rabbitmqctl await_startup`."
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs `rabbitmqctl ARGS`, killing it after `timeout`. Ok(stdout) on exit 0.
pub fn rabbitmqctl(args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut cmd = Command::new("rabbitmqctl");
    cmd.args(args);
    run_bounded(&format!("rabbitmqctl {args:?}"), cmd, timeout)
}

/// Declares `ml_pipeline` as the bridge does (durable topic).
pub async fn declare_exchange(ch: &lapin::Channel) {
    modelwatch::amqp::topology::exchange(ch, EXCHANGE)
        .await
        .expect("declaring the ml_pipeline exchange");
}

/// A message as a consumer sees it.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    pub message_id: Option<String>,
    /// The AMQP `type` property.
    pub kind: Option<String>,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
    pub timestamp: Option<u64>,
    pub app_id: Option<String>,
    pub body: Vec<u8>,
    /// The body parsed as JSON, if it is JSON.
    pub json: Option<Value>,
}

impl Received {
    fn from_delivery(d: lapin::message::Delivery) -> Received {
        let p = &d.properties;
        let s = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|s| s.to_string());
        Received {
            routing_key: d.routing_key.to_string(),
            message_id: s(p.message_id()),
            kind: s(p.kind()),
            content_type: s(p.content_type()),
            delivery_mode: *p.delivery_mode(),
            timestamp: *p.timestamp(),
            app_id: s(p.app_id()),
            json: serde_json::from_slice(&d.data).ok(),
            body: d.data,
        }
    }

    /// The `id` of the JSON body.
    pub fn id(&self) -> Option<u64> {
        self.json.as_ref()?.get("id")?.as_u64()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// As [`drain_queue`], on the broker at `url`.
pub async fn drain_queue_at(url: &str, queue: &str, timeout: Duration) -> Vec<Received> {
    let conn = connect_to(url).await;
    let ch = conn.create_channel().await.expect("channel");
    let n = modelwatch::amqp::topology::passive(&ch, queue)
        .await
        .unwrap_or_else(|e| panic!("queue {queue} does not exist: {e}"))
        .message_count() as usize;
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "modelwatch-test-drain".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("basic_consume");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Ok(Some(Ok(d))) => out.push(Received::from_delivery(d)),
            Ok(Some(Err(e))) => panic!("consuming {queue}: {e}"),
            Ok(None) => panic!("consumer of {queue} ended after {} of {n}", out.len()),
            Err(_) => panic!(
                "draining {queue}: {} of {n} messages within {timeout:?}",
                out.len()
            ),
        }
    }
    let _ = conn.close(200, "drained".into()).await;
    out
}

/// A durable queue with a unique name, bound to `ml_pipeline`. Delete it
/// with [`TestQueue::delete`]; if the test fails first, drop removes it
/// with rabbitmqctl, and `x-expires` (10 min unused) as a last resort.
pub struct TestQueue {
    pub name: String,
    /// The broker it lives on.
    url: String,
    /// `-n NODE` for rabbitmqctl: None for the shared broker.
    node: Option<String>,
    deleted: bool,
}

impl TestQueue {
    /// On the shared broker.
    pub async fn declare(what: &str, binding_key: &str) -> TestQueue {
        ensure_broker();
        TestQueue::declare_at(BROKER_URL, None, what, binding_key).await
    }

    /// On a test's own node.
    pub async fn declare_on(broker: &PrivateBroker, what: &str, binding_key: &str) -> TestQueue {
        TestQueue::declare_at(&broker.url(), Some(&broker.node), what, binding_key).await
    }

    async fn declare_at(url: &str, node: Option<&str>, what: &str, binding_key: &str) -> TestQueue {
        let name = unique_name(what);
        let conn = connect_to(url).await;
        let ch = conn.create_channel().await.expect("channel");
        declare_exchange(&ch).await;
        let mut args = FieldTable::default();
        args.insert("x-expires".into(), AMQPValue::LongUInt(600_000));
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .unwrap_or_else(|e| panic!("declaring {name}: {e}"));
        ch.queue_bind(
            name.as_str().into(),
            EXCHANGE.into(),
            binding_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("binding {name}: {e}"));
        let _ = conn.close(200, "declared".into()).await;
        TestQueue {
            name,
            url: url.to_string(),
            node: node.map(str::to_string),
            deleted: false,
        }
    }

    /// Reads every message the queue holds now.
    pub async fn drain(&self, timeout: Duration) -> Vec<Received> {
        drain_queue_at(&self.url, &self.name, timeout).await
    }

    pub async fn delete(mut self) {
        let conn = connect_to(&self.url).await;
        let ch = conn.create_channel().await.expect("channel");
        ch.queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap_or_else(|e| panic!("deleting {}: {e}", self.name));
        let _ = conn.close(200, "deleted".into()).await;
        self.deleted = true;
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        if !self.deleted {
            let mut args = Vec::new();
            if let Some(node) = &self.node {
                args.extend(["-n", node.as_str()]);
            }
            args.extend(["delete_queue", self.name.as_str()]);
            let _ = rabbitmqctl(&args, Duration::from_secs(15));
        }
    }
}

// ---------------------------------------------------------------------------
// Comparing the broker with the CSV.

/// For one routing key: how the messages cover the ids of the CSV.
#[derive(Debug, Clone, Default)]
pub struct KeyCoverage {
    /// Messages with an id of the CSV.
    pub received: usize,
    /// Distinct ids of the CSV seen.
    pub distinct: usize,
    /// Extra copies (at-least-once resends).
    pub duplicates: usize,
    /// Ids of the CSV never seen.
    pub missing: Vec<u64>,
}

/// How the messages of a queue cover the rows of a run.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub keys: BTreeMap<String, KeyCoverage>,
    /// Messages with an id not in the CSV (another process publishing to
    /// the same exchange).
    pub foreign: usize,
    /// Bodies that are not JSON with an integer id.
    pub unparsable: usize,
}

impl Coverage {
    pub fn missing(&self) -> usize {
        self.keys.values().map(|k| k.missing.len()).sum()
    }

    pub fn duplicates(&self) -> usize {
        self.keys.values().map(|k| k.duplicates).sum()
    }

    /// One line per key, for the test output.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for (key, k) in &self.keys {
            s += &format!(
                "  {key:9} received={} distinct={} duplicates={} missing={}{}\n",
                k.received,
                k.distinct,
                k.duplicates,
                k.missing.len(),
                if k.missing.is_empty() {
                    String::new()
                } else {
                    format!(" (first: {:?})", &k.missing[..k.missing.len().min(5)])
                }
            );
        }
        s += &format!("  foreign={} unparsable={}", self.foreign, self.unparsable);
        s
    }
}

/// Compares `msgs` with the ids of `rows`, for each of `keys`.
pub fn coverage(rows: &[Row], msgs: &[Received], keys: &[&str]) -> Coverage {
    let ids: std::collections::HashSet<u64> = rows.iter().map(|r| r.id).collect();
    let mut seen: HashMap<&str, HashMap<u64, usize>> =
        keys.iter().map(|k| (*k, HashMap::new())).collect();
    let mut cov = Coverage::default();
    for m in msgs {
        let Some(id) = m.id() else {
            cov.unparsable += 1;
            continue;
        };
        match seen.get_mut(m.routing_key.as_str()) {
            Some(per_id) if ids.contains(&id) => *per_id.entry(id).or_default() += 1,
            _ => cov.foreign += 1,
        }
    }
    for key in keys {
        let per_id = &seen[key];
        let mut missing: Vec<u64> = ids
            .iter()
            .filter(|id| !per_id.contains_key(id))
            .copied()
            .collect();
        missing.sort_unstable();
        let received: usize = per_id.values().sum();
        cov.keys.insert(
            key.to_string(),
            KeyCoverage {
                received,
                distinct: per_id.len(),
                duplicates: received - per_id.len(),
                missing,
            },
        );
    }
    cov
}

// ---------------------------------------------------------------------------
// Child processes read line by line (the example consumers).

/// A child whose stdout lines are collected by a thread; killed on drop
/// (a [`Proc`]).
pub struct LineChild {
    pub name: String,
    proc: Proc,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
    stderr: PathBuf,
}

impl LineChild {
    pub fn spawn(name: &str, mut cmd: Command) -> LineChild {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr.txt");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).unwrap());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineChild {
            name: name.into(),
            proc: Proc::adopt(child, Some(dir)),
            lines,
            seen: vec![],
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        read(&self.stderr)
    }

    /// Sends a signal (`TERM`, `INT`) with `kill(1)`, by process id.
    pub fn signal(&self, name: &str) {
        self.proc.signal(name)
    }

    /// Waits (blocking) for a line containing `needle`.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => panic!(
                    "{}: no line with {needle:?} within {timeout:?} ({e}); stdout so far: {:?}\n--- stderr ---\n{}",
                    self.name,
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits (blocking) for the exit; returns the status and every stdout
    /// line. Past `timeout` kills it and panics.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let Some(status) = self.proc.wait_for(timeout) else {
            self.proc.kill();
            self.seen.extend(self.lines.try_iter());
            panic!(
                "{} still running after {timeout:?}: killed. {} lines of stdout, last: {:?}\n--- stderr ---\n{}",
                self.name,
                self.seen.len(),
                self.seen.last(),
                self.stderr()
            );
        };
        // The reader thread ends at EOF.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }
}
