//! Helpers of the "one role per process" tests (`split`,
//! `interop` and the other `*_split` modules), which run several `modelwatch` processes (and the
//! original Python services) linked through the real RabbitMQ on
//! 127.0.0.1:5672.
//!
//! - [`TestBroker`]: the exchange, work queues and dead-letter objects of one
//!   test, named uniquely (pid + test name), passed to the processes as
//!   `MODELWATCH__...` variables, and deleted when it is dropped (also when
//!   the test fails);
//! - [`RoleProc`]: one `modelwatch run --roles ...` with a fresh logs dir and
//!   current dir in a temporary folder; wait for a log line or for CSV rows,
//!   SIGTERM (through `kill`) or `kill -9` it, read its CSV and counters;
//!   killed if dropped while running;
//! - [`PyProc`]: a `python3 -c SCRIPT` whose stdout is collected line by line;
//! - lapin helpers: publish raw bodies, purge, count and drain a queue.
//!
//! Nothing here skips a test when the broker is down: the broker helpers
//! panic and say what is wrong. Every wait is bounded; past its limit the
//! process is killed and the test fails with the end of its log.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

pub use super::openmetrics::Scrape;
pub use super::private_broker::PrivateBroker;
pub use super::provision::{ensure_broker, python_with_pika, run_bounded};
pub use super::{connect, connect_to, oracle, read_metric_csv, Row, BROKER_URL};

use super::process::{Launch, Proc};

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Broker objects of one test.

/// The broker names one test uses, unique to the test and the test process.
/// Dropping it deletes the work queues, the dead-letter queue and the two
/// exchanges whose names it generated (names set by hand to shared queues,
/// such as the legacy `features`, are left alone).
pub struct TestBroker {
    pub prefix: String,
    pub exchange: String,
    pub model_queue: String,
    pub truth_queue: String,
    pub pred_queue: String,
    pub plot_queue: String,
    /// The monitor's features (it runs with the metric role).
    pub monitor_queue: String,
    /// The monitor's features with a classifier's probabilities.
    pub scored_queue: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// Whether the processes declare the legacy queues (default: no).
    pub legacy_queues: bool,
    /// More `MODELWATCH__...` variables for every process.
    pub extra_env: Vec<(String, String)>,
    /// The broker the processes use (default [`BROKER_URL`]; a test's
    /// private node otherwise).
    pub url: String,
}

impl TestBroker {
    pub fn new(test: &str) -> TestBroker {
        // Unique in the test binary too (two modules may pick one `test`).
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("mwtest.{}.{n}.{test}", std::process::id());
        TestBroker {
            exchange: format!("{prefix}.x"),
            model_queue: format!("{prefix}.model"),
            truth_queue: format!("{prefix}.metric.y_true"),
            pred_queue: format!("{prefix}.metric.y_pred"),
            plot_queue: format!("{prefix}.plot"),
            monitor_queue: format!("{prefix}.monitor.features"),
            scored_queue: format!("{prefix}.monitor.scored"),
            dead_letter_exchange: format!("{prefix}.dlx"),
            dead_letter_queue: format!("{prefix}.dlq"),
            legacy_queues: false,
            extra_env: Vec::new(),
            url: BROKER_URL.to_string(),
            prefix,
        }
    }

    /// The environment that points a process at these objects.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("MODELWATCH__BRIDGE__EXCHANGE", &self.exchange),
            ("MODELWATCH__INBOUND__MODEL_QUEUE", &self.model_queue),
            ("MODELWATCH__INBOUND__METRIC_TRUTH_QUEUE", &self.truth_queue),
            (
                "MODELWATCH__INBOUND__METRIC_PREDICTION_QUEUE",
                &self.pred_queue,
            ),
            ("MODELWATCH__INBOUND__PLOT_QUEUE", &self.plot_queue),
            (
                "MODELWATCH__INBOUND__MONITOR_FEATURES_QUEUE",
                &self.monitor_queue,
            ),
            (
                "MODELWATCH__INBOUND__MONITOR_SCORED_QUEUE",
                &self.scored_queue,
            ),
            (
                "MODELWATCH__INBOUND__DEAD_LETTER_EXCHANGE",
                &self.dead_letter_exchange,
            ),
            (
                "MODELWATCH__INBOUND__DEAD_LETTER_QUEUE",
                &self.dead_letter_queue,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        env.push((
            "MODELWATCH__BRIDGE__LEGACY_QUEUES".into(),
            self.legacy_queues.to_string(),
        ));
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// Starts `modelwatch run --roles <roles> <args>` against these objects.
    pub fn spawn(&self, label: &str, roles: &str, args: &[&str]) -> RoleProc {
        RoleProc::spawn_at(&self.url, label, roles, args, &self.env())
    }

    fn owned(&self, name: &str) -> bool {
        name.starts_with(&self.prefix)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let queues: Vec<String> = [
            &self.model_queue,
            &self.truth_queue,
            &self.pred_queue,
            &self.plot_queue,
            &self.monitor_queue,
            &self.scored_queue,
            &self.dead_letter_queue,
        ]
        .into_iter()
        .filter(|q| self.owned(q))
        .cloned()
        .collect();
        let url = self.url.clone();
        let exchanges: Vec<String> = [&self.exchange, &self.dead_letter_exchange]
            .into_iter()
            .filter(|x| self.owned(x))
            .cloned()
            .collect();
        // A runtime of its own: this may run while a test panics, inside or
        // outside the test's runtime.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async move {
                let conn = match tokio::time::timeout(
                    Duration::from_secs(10),
                    Connection::connect(&url, ConnectionProperties::default()),
                )
                .await
                {
                    Ok(Ok(c)) => c,
                    _ => {
                        eprintln!("cleanup: broker unreachable; left {queues:?} {exchanges:?}");
                        return;
                    }
                };
                for q in &queues {
                    // A fresh channel each: an error closes the channel.
                    if let Ok(ch) = conn.create_channel().await {
                        if let Err(e) = ch
                            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                            .await
                        {
                            eprintln!("cleanup: deleting queue {q}: {e}");
                        }
                    }
                }
                for x in &exchanges {
                    if let Ok(ch) = conn.create_channel().await {
                        if let Err(e) = ch
                            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                            .await
                        {
                            eprintln!("cleanup: deleting exchange {x}: {e}");
                        }
                    }
                }
                let _ = conn.close(200, "test cleanup".into()).await;
            });
        });
        let _ = cleanup.join();
    }
}

// ---------------------------------------------------------------------------
// A modelwatch process running some roles.

/// One `modelwatch run --roles ...`; killed (SIGKILL) if dropped while running.
pub struct RoleProc {
    pub label: String,
    roles: String,
    url: String,
    proc: Proc,
    pub started: Instant,
}

impl RoleProc {
    /// Starts the binary: current dir `<tmp>/cwd` (empty: no model artifact,
    /// so the model is fitted in memory), logs in `<tmp>/logs`, the bridge
    /// on [`BROKER_URL`], and only `env` of the `MODELWATCH*`, `AMQP_URL`,
    /// `RUST_LOG` and `FAILPOINTS` variables.
    pub fn spawn(label: &str, roles: &str, args: &[&str], env: &[(String, String)]) -> RoleProc {
        RoleProc::spawn_at(BROKER_URL, label, roles, args, env)
    }

    /// [`RoleProc::spawn`] with the bridge on the broker at `url`.
    pub fn spawn_at(
        url: &str,
        label: &str,
        roles: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> RoleProc {
        let launch = Launch::run().in_temp_dir(&format!("mw-split-{label}-"));
        RoleProc::spawn_with(launch, url, label, roles, args, env)
    }

    /// Starts the same roles again in the same folder (same logs) once this
    /// process has exited (after [`RoleProc::kill9`], say).
    pub fn respawn(mut self, args: &[&str], env: &[(String, String)]) -> RoleProc {
        assert!(!self.is_running(), "{} is still running", self.label);
        let (roles, url) = (self.roles.clone(), self.url.clone());
        // Keep the folder: the new process takes it over.
        let launch = Launch::run().in_dir(self.proc.take_dir());
        RoleProc::spawn_with(launch, &url, &self.label, &roles, args, env)
    }

    fn spawn_with(
        launch: Launch,
        url: &str,
        label: &str,
        roles: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> RoleProc {
        let proc = launch
            .roles(roles)
            .broker(url)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .spawn();
        RoleProc {
            label: label.to_string(),
            roles: roles.to_string(),
            url: url.to_string(),
            started: proc.started(),
            proc,
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.proc.dir().join("logs")
    }

    pub fn csv_path(&self) -> PathBuf {
        self.logs_dir().join("metric_log.csv")
    }

    /// `logs/pipeline.log` (no colours), or "" before it exists.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.logs_dir().join("pipeline.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.proc.dir().join("stderr.txt")).unwrap_or_default()
    }

    /// Its name, state and the end of its log, for failure messages.
    pub fn report(&self) -> String {
        let log = self.log();
        let log = if log.is_empty() { self.stderr() } else { log };
        format!(
            "--- {} (pid {}, {:?}) pipeline.log (end) ---\n{}",
            self.label,
            self.pid(),
            self.proc.status(),
            tail(&log, 25)
        )
    }

    /// Lines of the log containing `needle`.
    pub fn lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// The last log line containing `needle`; panics when there is none.
    pub fn line(&self, needle: &str) -> String {
        self.lines(needle)
            .pop()
            .unwrap_or_else(|| panic!("no {needle:?} line\n{}", self.report()))
    }

    /// Still running? (Records the exit status once it has exited.)
    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// Kills the process and panics with `what` and the end of its log.
    fn fail(&mut self, what: String) -> ! {
        self.proc.kill();
        panic!("{what}\n{}", self.report());
    }

    /// Waits until the log holds `count` lines containing `needle`; fails
    /// (killing the process) if it exits first or after `timeout`.
    pub async fn wait_log(&mut self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines(needle).len() >= count {
                return;
            }
            if !self.is_running() {
                self.fail(format!(
                    "{} exited while waiting for {count} x {needle:?}",
                    self.label
                ));
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "{}: no {count} x {needle:?} within {timeout:?}: killed",
                    self.label
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Complete rows (lines ended by a newline, header excluded) of
    /// `metric_log.csv` now.
    pub fn csv_rows_now(&self) -> usize {
        match std::fs::read(self.csv_path()) {
            Ok(bytes) => bytes
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                .saturating_sub(1),
            Err(_) => 0,
        }
    }

    /// Waits until `metric_log.csv` has at least `n` rows; fails (killing
    /// the process) if it exits first or after `timeout`. Returns the rows.
    pub async fn wait_rows(&mut self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.csv_rows_now();
            if rows >= n {
                return rows;
            }
            if !self.is_running() {
                self.fail(format!(
                    "{} exited with {rows} of {n} CSV rows written",
                    self.label
                ));
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "{}: {rows} of {n} CSV rows after {timeout:?}: killed",
                    self.label
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM with the `kill` command.
    pub fn sigterm(&mut self) {
        assert!(
            self.is_running(),
            "{} is not running, cannot SIGTERM it\n{}",
            self.label,
            self.report()
        );
        self.proc.signal("TERM");
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        assert!(
            self.is_running(),
            "{} already exited, cannot kill -9 it\n{}",
            self.label,
            self.report()
        );
        self.proc.signal("KILL");
        self.proc.kill();
    }

    /// Waits for the exit; past `timeout` kills the process and fails.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.proc.wait_for_async(timeout).await {
            Some(status) => status,
            None => self.fail(format!(
                "{} still running after {timeout:?}: killed",
                self.label
            )),
        }
    }

    /// Waits for the exit and fails unless the code is 0.
    pub async fn expect_exit_ok(&mut self, timeout: Duration) {
        let status = self.wait_exit(timeout).await;
        assert!(
            status.success(),
            "{} exited with {status}\n{}\n--- stderr (end) ---\n{}",
            self.label,
            self.report(),
            tail(&self.stderr(), 15)
        );
    }

    /// SIGTERM, then waits for exit code 0.
    pub async fn stop(&mut self, timeout: Duration) {
        self.sigterm();
        self.expect_exit_ok(timeout).await;
    }

    /// Rows of `metric_log.csv`, checking the header is its first line and
    /// appears only there, and every row has four fields.
    pub fn csv(&self) -> Vec<Row> {
        read_metric_csv(&self.csv_path())
    }

    /// The registry the process wrote at exit.
    pub fn registry(&self) -> Scrape {
        Scrape::final_of(&self.logs_dir())
    }

    /// The counters of its inbound consumers at exit, one per queue.
    pub fn inbound_stopped(&self) -> Vec<InboundStopped> {
        InboundStopped::all_of(&self.registry())
    }

    /// A counter of the bridge at exit (`confirmed`, `dropped`, ...); an
    /// event's label set shows only once it happened (absent reads 0).
    pub fn bridge(&self, event: &str) -> u64 {
        self.registry()
            .count_or_zero("modelwatch_bridge_messages_total", &[("event", event)])
    }

    /// Halves that wrote no row at exit, by reason (`expired`, `evicted`,
    /// `duplicate`, `redelivered`); a reason's label set shows only once
    /// it happened (absent reads 0).
    pub fn join_dropped(&self, reason: &str) -> u64 {
        self.registry()
            .count_or_zero("modelwatch_join_dropped_total", &[("reason", reason)])
    }
}

/// The counters of one inbound consumer at exit, from the registry
/// (`modelwatch_inbound_messages_total{queue, event}` and
/// `modelwatch_inbound_dead_lettered_total{queue, reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundStopped {
    pub queue: String,
    pub received: u64,
    pub acked: u64,
    pub requeued: u64,
    pub dead_lettered: u64,
    /// Deliveries flagged `redelivered` by the broker.
    pub redelivered: u64,
    /// Malformed deliveries whose dead-letter copy failed: rejected to the
    /// queue's own dead-letter exchange.
    pub rejected: u64,
}

impl InboundStopped {
    /// Every consumer of a process, from its final registry.
    pub fn all_of(reg: &Scrape) -> Vec<InboundStopped> {
        let mut queues: Vec<String> = reg
            .samples
            .iter()
            .filter(|(n, _, _)| n == "modelwatch_inbound_messages_total")
            .filter_map(|(_, l, _)| l.get("queue").cloned())
            .collect();
        queues.sort();
        queues.dedup();
        queues
            .into_iter()
            .map(|queue| {
                // The queues are those the registry shows; an event's
                // label set shows only once it happened (absent reads 0).
                let n = |event| {
                    reg.count_or_zero(
                        "modelwatch_inbound_messages_total",
                        &[("queue", &queue), ("event", event)],
                    )
                };
                InboundStopped {
                    received: n("delivered"),
                    acked: n("acked"),
                    requeued: n("requeued"),
                    redelivered: n("redelivered"),
                    rejected: n("rejected"),
                    dead_lettered: reg.count_or_zero(
                        "modelwatch_inbound_dead_lettered_total",
                        &[("queue", &queue)],
                    ),
                    queue,
                }
            })
            .collect()
    }
}

/// Checks that the rows hold `n` distinct ids, each once; returns them.
pub fn assert_ids_once(rows: &[Row], n: usize, what: &str) -> HashSet<u64> {
    let mut seen = HashSet::new();
    let dups: Vec<u64> = rows
        .iter()
        .map(|r| r.id)
        .filter(|&id| !seen.insert(id))
        .collect();
    assert!(
        dups.is_empty(),
        "{what}: {} ids written more than once, e.g. {:?}",
        dups.len(),
        &dups[..dups.len().min(10)]
    );
    assert_eq!(
        rows.len(),
        n,
        "{what}: {} rows, expected {n} (each id exactly once)",
        rows.len()
    );
    for r in rows {
        assert!(
            (r.absolute_error - (r.y_true - r.y_pred).abs()).abs() < 1e-9,
            "{what}: row {r:?}: absolute_error is not |y_true - y_pred|"
        );
    }
    seen
}

// ---------------------------------------------------------------------------
// Python scripts.

/// A `python -c SCRIPT ARGS` with stdout collected line by line, run by the
/// test venv's Python ([`python_with_pika`]), never the system one.
pub struct PyProc {
    pub label: String,
    /// Owns the folder of its stderr.
    proc: Proc,
    lines: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl PyProc {
    pub fn spawn(label: &str, script: &str, args: &[&str]) -> PyProc {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mw-py-{label}-"))
            .tempdir()
            .expect("temp dir");
        let stderr_path = dir.path().join("stderr.txt");
        let mut child = Command::new(python_with_pika())
            .arg("-u")
            .arg("-c")
            .arg(script)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3 ({label}): {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => sink.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        PyProc {
            label: label.to_string(),
            proc: Proc::adopt(child, Some(dir)),
            lines,
            stderr_path,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    fn fail(&mut self, what: String) -> ! {
        self.proc.kill();
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines = self.lines();
        panic!(
            "{what}\n--- {} stdout (end, {} lines) ---\n{}\n--- stderr ---\n{}",
            self.label,
            lines.len(),
            tail(&lines.join("\n"), 10),
            tail(&stderr, 30)
        );
    }

    /// Waits until `done(lines)`; fails (killing python) if it exits
    /// without it or after `timeout`.
    pub async fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[String]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.lines()) {
                return;
            }
            if !self.is_running() {
                // The reader thread may lag the exit by a moment.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if done(&self.lines()) {
                    return;
                }
                self.fail(format!(
                    "{} exited ({:?}) before {what}",
                    self.label,
                    self.proc.status()
                ));
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "{}: no {what} within {timeout:?}: killed",
                    self.label
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for exit code 0; past `timeout` kills it and fails.
    pub async fn expect_exit_ok(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                self.fail(format!("{} still running after {timeout:?}", self.label));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if !self.proc.status().expect("exited").success() {
            self.fail(format!(
                "{} exited with {:?}",
                self.label,
                self.proc.status()
            ));
        }
        // Let the reader thread take the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// lapin.

/// A channel with publisher confirms on.
pub async fn confirm_channel(conn: &Connection) -> Channel {
    let ch = conn.create_channel().await.expect("opening a channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    ch
}

/// Publishes `body` (its confirm is the answer); panics when it cannot.
async fn publish_one(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    content_type: &str,
    delivery_mode: u8,
) -> lapin::PublisherConfirm {
    ch.basic_publish(
        exchange.into(),
        routing_key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default()
            .with_content_type(content_type.into())
            .with_delivery_mode(delivery_mode),
    )
    .await
    .unwrap_or_else(|e| panic!("publishing to {exchange}/{routing_key}: {e}"))
}

/// Publishes one body as `content_type` to `exchange` under
/// `routing_key`, waiting for the broker's confirm; panics on a nack.
pub async fn publish_typed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    content_type: &str,
) {
    let confirmation = publish_one(ch, exchange, routing_key, body, content_type, 2)
        .await
        .await
        .expect("waiting for a publisher confirm");
    assert!(
        confirmation.is_ack(),
        "the broker nacked a message to {exchange}/{routing_key}"
    );
}

/// Publishes raw bodies to `exchange` under `routing_key`, waiting for the
/// broker's confirms (in windows of 100); panics on a nack.
pub async fn publish_raw(ch: &Channel, exchange: &str, routing_key: &str, bodies: &[Vec<u8>]) {
    for chunk in bodies.chunks(100) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for body in chunk {
            confirms
                .push(publish_one(ch, exchange, routing_key, body, "application/json", 1).await);
        }
        for c in confirms {
            let confirmation = c.await.expect("waiting for a publisher confirm");
            assert!(
                confirmation.is_ack(),
                "the broker nacked a message to {exchange}/{routing_key}"
            );
        }
    }
}

/// Declares `queue` (durable, deleted by the [`TestBroker`] that owns the
/// name) and binds it to the test's exchange under `key`.
pub async fn watch_queue(conn: &lapin::Connection, broker: &TestBroker, queue: &str, key: &str) {
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("declaring {queue}: {e}"));
    ch.queue_bind(
        queue.into(),
        broker.exchange.as_str().into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("binding {queue}: {e}"));
    let _ = ch.close(200, "declared".into()).await;
}

/// Messages `queue` holds now (passive declare; panics if it does not exist).
pub async fn queue_len(conn: &Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.expect("channel");
    let q = modelwatch::amqp::topology::passive(&ch, queue)
        .await
        .unwrap_or_else(|e| panic!("queue {queue} does not exist: {e}"));
    let _ = ch.close(200, "counted".into()).await;
    q.message_count()
}

/// Declares `queue` as the original Python services did (pika's plain
/// `channel.queue_declare(queue=...)`: not durable, no arguments). Panics
/// with an explanation if the queue exists with other properties.
pub async fn declare_like_python(conn: &Connection, queue: &str) {
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "queue {queue:?} exists with other properties than the Python services give it \
             (not durable, no arguments), so they could not declare it: {e}"
        )
    });
    let _ = ch.close(200, "declared".into()).await;
}

/// Purges `queue`; returns how many messages it dropped. Only ever on a
/// test's own [`PrivateBroker`] (`conn` to it): no test purges a queue of
/// the machine's broker.
pub async fn purge(conn: &Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.expect("channel");
    let n = ch
        .queue_purge(queue.into(), QueuePurgeOptions::default())
        .await
        .unwrap_or_else(|e| panic!("purging {queue}: {e}"));
    let _ = ch.close(200, "purged".into()).await;
    n
}

/// A message read back from a queue.
#[derive(Debug, Clone)]
pub struct Got {
    pub routing_key: String,
    pub body: Vec<u8>,
    /// Headers whose values are strings or integers (as text).
    pub headers: BTreeMap<String, String>,
    pub content_type: Option<String>,
}

fn header_strings(p: &BasicProperties) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(h) = p.headers() {
        for (k, v) in h.inner() {
            let s = match v {
                AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                AMQPValue::ShortString(s) => s.to_string(),
                AMQPValue::LongLongInt(n) => n.to_string(),
                AMQPValue::LongInt(n) => n.to_string(),
                _ => continue,
            };
            out.insert(k.to_string(), s);
        }
    }
    out
}

/// Takes (and acknowledges) every message of `queue`, waiting up to
/// `timeout` for at least `expected` to be there; returns what it took.
pub async fn drain(conn: &Connection, queue: &str, expected: usize, timeout: Duration) -> Vec<Got> {
    let ch = conn.create_channel().await.expect("channel");
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    loop {
        let m = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap_or_else(|e| panic!("basic_get on {queue}: {e}"));
        match m {
            Some(m) => {
                let d = m.delivery;
                got.push(Got {
                    routing_key: d.routing_key.to_string(),
                    headers: header_strings(&d.properties),
                    content_type: d.properties.content_type().as_ref().map(|c| c.to_string()),
                    body: d.data,
                });
            }
            None if got.len() >= expected || Instant::now() >= deadline => break,
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let _ = ch.close(200, "drained".into()).await;
    got
}

// ---------------------------------------------------------------------------
// Time limits and the model.

/// Longest wait for a process to start its consumers.
pub const START: Duration = Duration::from_secs(30);
/// Longest wait for a run (publishing, rows) to complete.
pub const RUN: Duration = Duration::from_secs(60);
/// Longest wait for a process to exit after SIGTERM.
pub const STOP: Duration = Duration::from_secs(30);

/// `(target, sklearn's prediction)` of each of the 442 rows, in file order,
/// from the tests' own [`oracle`] (not the code under test).
pub fn row_truths_and_predictions() -> Vec<(f64, f64)> {
    oracle::rows()
        .iter()
        .map(|r| (r.target, r.prediction))
        .collect()
}

/// Checks every row is a real sample: some data row has its `y_true` as
/// target and sklearn's prediction of that row as `y_pred`.
pub fn assert_rows_match_model(rows: &[Row], what: &str) {
    for r in rows {
        oracle::assert_model_output(r.y_true, r.y_pred, &format!("{what}: row {r:?}"));
    }
}
