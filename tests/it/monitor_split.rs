//! The monitor in the split layout: it runs with the metric role, gets the
//! features for its drift tests from a queue of its own, and, across a
//! `kill -9` of its process, puts every record in exactly one window (the
//! restarted process continues after the last window of
//! `metrics_over_time.csv` and takes in the rows of `metric_log.csv`
//! written after it). The real RabbitMQ; objects named per test, deleted
//! after.
//!
//! Drift figures come only from the features of a window's own records:
//! features left in the monitor's queue by earlier runs are dropped and
//! counted, and a window without features says so everywhere (empty
//! fields, NaN gauges, a counter, one WARN line, "no features" on the
//! dashboard). With `--legacy-inbound` (the original Python producer) the
//! model forwards the features it consumed to the monitor: that test runs
//! on a RabbitMQ node of its own ([`PrivateBroker`]), since the legacy queue
//! names on the machine's broker are other people's.

use crate::support;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::split::*;

const N: usize = 6000;
const WINDOW: usize = 500;

/// `(seq, records_total, has drift figures)` per row of `metrics_over_time.csv`.
fn windows(p: &RoleProc) -> Vec<(u64, u64, bool)> {
    let text = std::fs::read_to_string(p.logs_dir().join("metrics_over_time.csv"))
        .expect("metrics_over_time.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (seq, total, bmi_p) = (col("seq"), col("records_total"), col("bmi_p"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "a whole row: {l}");
            (
                f[seq].parse().unwrap(),
                f[total].parse().unwrap(),
                !f[bmi_p].is_empty(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_takes_every_record_once_across_a_kill_9_of_its_process() {
    let broker = TestBroker::new("monitor9");
    let mut metric = broker.spawn("metric", "metric", &[]);
    // y_true, y_pred and the monitor's features.
    metric.wait_log("inbound consumer started", 3, START).await;
    let mut front = broker.spawn(
        "features+model",
        "features,model",
        &["--count", &N.to_string(), "--rate", "2000", "--seed", "5"],
    );
    metric.wait_rows(N / 3, RUN).await;
    metric.kill9();
    let mut metric = metric.respawn(&[], &broker.env());
    front.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;
    metric.stop(STOP).await;

    let rows = metric.csv();
    assert_ids_once(&rows, N, "metric_log.csv");
    let w = windows(&metric);
    let seqs: Vec<u64> = w.iter().map(|x| x.0).collect();
    let expected: Vec<u64> = (1..=(N / WINDOW) as u64).collect();
    assert_eq!(
        seqs,
        expected,
        "every window once, in order\n{}",
        metric.report()
    );
    for (i, (seq, total, _)) in w.iter().enumerate() {
        assert_eq!(*total, (i as u64 + 1) * WINDOW as u64, "window {seq}");
    }
    // The features reached the monitor through its queue: drift figures in
    // (nearly) every window; a window right after the restart may lack them
    // while the new process's feature window fills.
    let with_drift = w.iter().filter(|x| x.2).count();
    assert!(
        with_drift >= w.len() - 2,
        "{with_drift} of {} windows have drift figures: {w:?}\n{}\n{}",
        w.len(),
        metric
            .registry()
            .text
            .lines()
            .filter(|l| l.contains("monitor_") || l.contains("observer"))
            .collect::<Vec<_>>()
            .join("\n"),
        metric.report()
    );
    // The restarted process did continue after a window of the first.
    let resumed = metric.line("monitor: continuing after the last closed window");
    assert!(resumed.contains("records="), "{resumed}");
    let reg = metric.registry();
    assert_eq!(
        reg.count(
            "modelwatch_observer_dropped_total",
            &[("observer", "monitor")]
        ),
        0
    );
    println!(
        "split monitor: {N} rows, {} windows, {with_drift} with drift figures, across a kill -9 at {} rows",
        w.len(),
        N / 3
    );
}

/// The rows of `metrics_over_time.csv` as column name -> field.
fn over_time_rows(logs: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap_or_default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let header: Vec<&str> = header.split(',').collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "a whole row: {l}");
            header
                .iter()
                .zip(f)
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Waits until `metrics_over_time.csv` has `n` rows (bounded).
async fn wait_windows(p: &mut RoleProc, n: usize) -> Vec<BTreeMap<String, String>> {
    let deadline = Instant::now() + RUN;
    loop {
        let rows = over_time_rows(&p.logs_dir());
        if rows.len() >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} windows after {RUN:?}\n{}",
            rows.len(),
            p.report()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const FEATURES: [&str; 10] = [
    "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
];

/// `{"id": id, "body": body}`.
fn body(id: u64, body: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"id": id, "body": body})).unwrap()
}

/// Waits (bounded) until the metric process has taken every message of
/// the monitor's queue.
async fn monitor_queue_taken(conn: &lapin::Connection, broker: &TestBroker, metric: &RoleProc) {
    let deadline = Instant::now() + RUN;
    while queue_len(conn, &broker.monitor_queue).await > 0 {
        assert!(Instant::now() < deadline, "{}", metric.report());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The issue's case: `ml_pipeline.monitor.features` kept what earlier runs
/// published, and a metric role took those as its windows' features (the
/// same p-values in every window). Here the queue is pre-loaded with
/// features whose ids match no record (shifted by +1 in every column, so
/// any use of them would flag drift everywhere); the metric role then gets
/// 1,000 records without features and 1,000 whose own (unshifted) features
/// come first. The first two windows must have no drift figures at all
/// (empty fields, NaN gauges, a counter, one WARN line, "no features" on
/// the dashboard), the last two figures from their own features only, and
/// every stale feature is counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_features_are_dropped_and_counted_and_windows_without_features_say_so() {
    const STALE: usize = 1200;
    const PER_PHASE: usize = 2 * WINDOW;
    let broker = TestBroker::new("monstale");
    // A first metric process declares the queues, then stops: what is
    // published now waits in the monitor's queue, as earlier runs' features did.
    let mut first = broker.spawn("metric-first", "metric", &[]);
    first.wait_log("inbound consumer started", 3, START).await;
    first.stop(STOP).await;
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let rows = oracle::rows();
    let stale: Vec<Vec<u8>> = (0..STALE)
        .map(|i| {
            let x: Vec<f64> = rows[i % rows.len()]
                .scaled
                .iter()
                .map(|v| v + 1.0)
                .collect();
            body(1_700_000_000_000_000 + i as u64, serde_json::json!(x))
        })
        .collect();
    publish_raw(&ch, &broker.exchange, "features", &stale).await;
    assert_eq!(queue_len(&conn, &broker.monitor_queue).await, STALE as u32);

    let mut metric = broker.spawn("metric", "metric", &[]);
    metric.wait_log("inbound consumer started", 3, START).await;
    // The monitor has taken them all before any record comes.
    monitor_queue_taken(&conn, &broker, &metric).await;
    let pairs = row_truths_and_predictions();
    // The bodies of y_true, y_pred and features of PER_PHASE records.
    let records = |from: usize| -> [Vec<Vec<u8>>; 3] {
        let (mut truths, mut preds, mut features) = (Vec::new(), Vec::new(), Vec::new());
        for i in from..from + PER_PHASE {
            let (id, row) = (1_800_000_000_000_000 + i as u64, (i * 7) % rows.len());
            truths.push(body(id, serde_json::json!(pairs[row].0)));
            preds.push(body(id, serde_json::json!(pairs[row].1)));
            features.push(body(id, serde_json::json!(rows[row].scaled.to_vec())));
        }
        [truths, preds, features]
    };
    // Phase 1: records without features.
    let [truths, preds, _] = records(0);
    publish_raw(&ch, &broker.exchange, "y_true", &truths).await;
    publish_raw(&ch, &broker.exchange, "y_pred", &preds).await;
    metric.wait_rows(PER_PHASE, RUN).await;
    wait_windows(&mut metric, 2).await;
    // While the last window has no features: the page and the gauges say so.
    let addr = support::openmetrics::http_addr(&metric.logs_dir(), START);
    let page = support::openmetrics::http_get(addr, "/").body;
    assert!(
        page.contains("(no features: the last window&#39;s features never reached the monitor")
            || page.contains("(no features: the last window's features never reached the monitor"),
        "the dashboard says the window had no features:\n{page}"
    );
    let live = support::openmetrics::scrape(addr);
    for name in ["modelwatch_drift_share", "modelwatch_dataset_drift"] {
        assert!(live.has(name), "{name} missing");
        assert!(live.get(name, &[]).is_nan(), "{name} is NaN, not 0");
    }
    assert!(live
        .get("modelwatch_drift_p_value", &[("feature", "bmi")])
        .is_nan());
    assert_eq!(
        live.count("modelwatch_monitor_windows_without_features_total", &[]),
        2
    );

    // Phase 2: each record's own features first, then the record.
    let [truths, preds, features] = records(PER_PHASE);
    publish_raw(&ch, &broker.exchange, "features", &features).await;
    publish_raw(&ch, &broker.exchange, "y_true", &truths).await;
    publish_raw(&ch, &broker.exchange, "y_pred", &preds).await;
    metric.wait_rows(2 * PER_PHASE, RUN).await;
    let w = wait_windows(&mut metric, 4).await;
    metric.stop(STOP).await;

    assert_eq!(w.len(), 4, "{w:?}");
    for (i, row) in w.iter().enumerate() {
        let report = format!("window {}: {row:?}", i + 1);
        assert!(!row["prediction_p"].is_empty(), "{report}");
        if i < 2 {
            // No features of its own: nothing made up from the stale ones.
            for f in FEATURES {
                for stat in ["p", "psi", "wasserstein", "drift"] {
                    assert_eq!(row[&format!("{f}_{stat}")], "", "{f}_{stat} of {report}");
                }
            }
            assert_eq!(row["drift_share"], "", "{report}");
            assert_eq!(row["dataset_drift"], "", "{report}");
        } else {
            // Its own, unshifted features: the +1 shift of the stale ones
            // would make every feature drift.
            for f in FEATURES {
                assert!(!row[&format!("{f}_p")].is_empty(), "{f}_p of {report}");
            }
            assert_eq!(row["bmi_drift"], "0", "{report}");
            let share: f64 = row["drift_share"].parse().expect("a share");
            assert!(share < 0.5, "{report}");
            assert_eq!(row["dataset_drift"], "0", "{report}");
        }
    }
    let reg = metric.registry();
    assert_eq!(
        reg.count("modelwatch_monitor_features_unmatched_total", &[]),
        STALE as u64,
        "every stale feature dropped and counted, none of the records' own"
    );
    assert_eq!(
        reg.count("modelwatch_monitor_windows_without_features_total", &[]),
        2
    );
    let warned = metric.lines("closed without the features of any of its records");
    assert_eq!(warned.len(), 1, "one WARN line: {warned:?}");
    assert!(warned[0].contains("WARN"), "{}", warned[0]);
    println!(
        "stale features: {STALE} dropped and counted; 2 windows without features, 2 with their own"
    );
}

/// The issue's second case: the features an earlier model-only
/// `--legacy-inbound` run left in the monitor's queue carry recent ids, a
/// little older than this run's records, and far fewer than the bound that
/// pushes waiting features out. They can match no record once a window
/// holds newer ones: `/metrics` must count them while the run goes on, not
/// only at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_features_a_little_older_than_the_records_are_counted_while_the_run_goes_on() {
    const STALE: usize = 2000;
    const RECORDS: usize = 3 * WINDOW;
    const FIRST: u64 = 1_800_000_000_000_000;
    let broker = TestBroker::new("monrecent");
    let mut first = broker.spawn("metric-first", "metric", &[]);
    first.wait_log("inbound consumer started", 3, START).await;
    first.stop(STOP).await;
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let rows = oracle::rows();
    // Ids just before the run's first record.
    let stale: Vec<Vec<u8>> = (0..STALE)
        .map(|i| {
            let row = rows[i % rows.len()].scaled.to_vec();
            body(FIRST - STALE as u64 + i as u64, serde_json::json!(row))
        })
        .collect();
    publish_raw(&ch, &broker.exchange, "features", &stale).await;
    assert_eq!(queue_len(&conn, &broker.monitor_queue).await, STALE as u32);

    let mut metric = broker.spawn("metric", "metric", &[]);
    metric.wait_log("inbound consumer started", 3, START).await;
    monitor_queue_taken(&conn, &broker, &metric).await;
    // The run's records, each with its own features.
    let pairs = row_truths_and_predictions();
    let (mut truths, mut preds, mut features) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..RECORDS {
        let (id, row) = (FIRST + i as u64, (i * 7) % rows.len());
        truths.push(body(id, serde_json::json!(pairs[row].0)));
        preds.push(body(id, serde_json::json!(pairs[row].1)));
        features.push(body(id, serde_json::json!(rows[row].scaled.to_vec())));
    }
    publish_raw(&ch, &broker.exchange, "features", &features).await;
    publish_raw(&ch, &broker.exchange, "y_true", &truths).await;
    publish_raw(&ch, &broker.exchange, "y_pred", &preds).await;
    metric.wait_rows(RECORDS, RUN).await;
    let w = wait_windows(&mut metric, RECORDS / WINDOW).await;
    // Alive, before any shutdown: every stale feature is counted already.
    let addr = support::openmetrics::http_addr(&metric.logs_dir(), START);
    let deadline = Instant::now() + Duration::from_secs(5);
    let live = loop {
        let live = support::openmetrics::scrape(addr);
        if live.count("modelwatch_monitor_features_unmatched_total", &[]) >= STALE as u64
            || Instant::now() >= deadline
        {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        live.count("modelwatch_monitor_features_unmatched_total", &[]),
        STALE as u64,
        "the stale features are counted while the run goes on, {} windows closed\n{}",
        w.len(),
        metric.report()
    );
    metric.stop(STOP).await;
    // Each window used its own features only (no drift against them).
    for (i, row) in w.iter().enumerate() {
        assert!(!row["bmi_p"].is_empty(), "window {}: {row:?}", i + 1);
        assert_eq!(row["dataset_drift"], "0", "window {}: {row:?}", i + 1);
    }
    assert_eq!(
        metric
            .registry()
            .count("modelwatch_monitor_features_unmatched_total", &[]),
        STALE as u64,
        "none of the records' own features dropped, none counted twice"
    );
}

/// The original features service as it was (pika `BlockingConnection`, the
/// default exchange, plain `queue_declare`, float timestamp ids), but for
/// the port (`argv[1]`: the private node), the rows from a JSON file
/// (`argv[2]`), `argv[3]` samples on one connection without the sleep, and
/// a final `done`.
const LEGACY_PRODUCER: &str = r#"
import json
import random
import sys
from datetime import datetime

import pika

with open(sys.argv[2]) as f:
    data = json.load(f)
X, y = data['features'], data['targets']
N = int(sys.argv[3])
random.seed(42)

connection = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[1])))
channel = connection.channel()
channel.queue_declare(queue='features')
channel.queue_declare(queue='y_true')

last_id = None
for _ in range(N):
    random_row = random.randint(0, len(X) - 1)
    message_id = datetime.timestamp(datetime.now())
    while message_id == last_id:
        message_id = datetime.timestamp(datetime.now())
    last_id = message_id
    message_y_true = {'id': message_id, 'body': y[random_row]}
    channel.basic_publish(exchange='', routing_key='y_true', body=json.dumps(message_y_true))
    message_features = {'id': message_id, 'body': list(X[random_row])}
    channel.basic_publish(exchange='', routing_key='features', body=json.dumps(message_features))

connection.close()
print('done')
"#;

/// The issue's case: with the original Python producer (`--legacy-inbound`)
/// the monitor never saw a feature and wrote `drift_share` 0.0 and
/// `dataset_drift` 0 in every window. Now the model forwards the features it
/// consumed from `features` to the monitor's queue: every window has drift
/// figures from its own records' features, and the model's deliveries are
/// acked only once the forwarded copies are confirmed (nothing left in the
/// legacy queues).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_python_producer_the_monitor_gets_the_features_the_model_consumed() {
    const N: usize = 2 * WINDOW;
    let node = PrivateBroker::start("legacy");
    let mut broker = TestBroker::new("monlegacy");
    broker.url = node.url();
    let mut metric = broker.spawn("metric", "metric", &["--legacy-inbound"]);
    let mut model = broker.spawn("model", "model", &["--legacy-inbound"]);
    metric.wait_log("inbound consumer started", 3, START).await;
    model.wait_log("inbound consumer started", 1, START).await;

    let rows: Vec<Vec<f64>> = oracle::rows().iter().map(|r| r.scaled.to_vec()).collect();
    let targets: Vec<f64> = oracle::rows().iter().map(|r| r.target).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_file = dir.path().join("diabetes.json");
    std::fs::write(
        &data_file,
        serde_json::to_vec(&serde_json::json!({"features": rows, "targets": targets})).unwrap(),
    )
    .unwrap();
    let mut py = PyProc::spawn(
        "legacy-producer",
        LEGACY_PRODUCER,
        &[
            &node.port.to_string(),
            data_file.to_str().unwrap(),
            &N.to_string(),
        ],
    );
    py.wait_until("done", RUN, |l| l.last().is_some_and(|x| x == "done"))
        .await;
    py.expect_exit_ok(STOP).await;
    metric.wait_rows(N, RUN).await;
    let w = wait_windows(&mut metric, N / WINDOW).await;
    let addr = support::openmetrics::http_addr(&metric.logs_dir(), START);
    let page = support::openmetrics::http_get(addr, "/").body;
    assert!(!page.contains("(no features"), "{page}");
    model.stop(STOP).await;
    metric.stop(STOP).await;

    assert_eq!(w.len(), N / WINDOW);
    for (i, row) in w.iter().enumerate() {
        let report = format!("window {}: {row:?}\n{}", i + 1, metric.report());
        for f in FEATURES {
            assert!(!row[&format!("{f}_p")].is_empty(), "{f}_p of {report}");
        }
        assert!(!row["drift_share"].is_empty(), "{report}");
        assert!(!row["dataset_drift"].is_empty(), "{report}");
    }
    let reg = metric.registry();
    assert_eq!(
        reg.count("modelwatch_monitor_windows_without_features_total", &[]),
        0
    );
    // Features the monitor could not match (a record's feature arriving
    // after its window closed) are few.
    let unmatched = reg.count("modelwatch_monitor_features_unmatched_total", &[]);
    assert!(
        unmatched <= (N / 20) as u64,
        "{unmatched} unmatched\n{}\n{w:?}",
        reg.text
            .lines()
            .filter(|l| l.contains("monitor") || l.contains("inbound_messages"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The model forwarded each feature once it had predicted it (at least
    // once: confirmed, so the deliveries were acked), and the legacy queue
    // is empty.
    assert!(
        model.bridge("confirmed") >= 2 * N as u64,
        "predictions and forwarded features confirmed: {}",
        model.bridge("confirmed")
    );
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        lapin::Connection::connect(&node.url(), lapin::ConnectionProperties::default()),
    )
    .await
    .expect("connect in time")
    .expect("connect to the private node");
    assert_eq!(queue_len(&conn, "features").await, 0);
    assert_eq!(queue_len(&conn, &broker.monitor_queue).await, 0);
    let _ = conn.close(200, "done".into()).await;
    println!(
        "legacy producer -> model (forwarding) -> monitor: {N} samples, {} windows with drift, {unmatched} features unmatched",
        w.len()
    );
}

/// Runs `script` (with `args`) in the test venv's Python (numpy there) and
/// returns its stdout.
fn python(what: &str, script: &str, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(python_with_pika());
    cmd.arg("-c").arg(script).args(args);
    run_bounded(what, cmd, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"))
}

/// numpy's scaling of the data, as the original services scale it
/// (sklearn's `load_diabetes`: `scale()`, then `/ sqrt(n)`), rows drawn
/// with numpy's generator: one JSON line `[id, features, y_true, y_pred]`
/// per sample, the prediction from sklearn's coefficients.
const NUMPY_SAMPLES: &str = r#"
import json, sys
import numpy as np
path, n, seed, coef = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
data = np.loadtxt(path, delimiter=",", skiprows=1)
raw, y = data[:, :10], data[:, 10]
x = (raw - raw.mean(axis=0)) / raw.std(axis=0)
x /= np.sqrt(x.shape[0])
pred = coef[0] + x @ np.array(coef[1:])
rows = np.random.default_rng(seed).integers(0, x.shape[0], n)
for i, r in enumerate(rows):
    print(json.dumps([1_000_000 + i, [float(v) for v in x[r]], float(y[r]), float(pred[r])]))
"#;

/// Issue 18, 1.4: features scaled with numpy differ from this program's by
/// about 1e-16, which broke every tie with the reference (`s4` read as
/// drifted in every window, KS p 1e-15). Published to the exchange from
/// numpy's figures, an unshifted stream of 2,000 samples gives four windows
/// with drift figures and no feature, nor the prediction, drifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numpy_scaled_features_of_an_unshifted_stream_show_no_drift() {
    const SAMPLES: usize = 2000;
    let coef: Vec<f64> = [oracle::SKLEARN_INTERCEPT]
        .into_iter()
        .chain(oracle::SKLEARN_COEFFICIENTS)
        .collect();
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv");
    let out = python(
        "numpy samples",
        NUMPY_SAMPLES,
        &[
            csv,
            &SAMPLES.to_string(),
            "18",
            &serde_json::to_string(&coef).unwrap(),
        ],
    );
    type Sample = (u64, Vec<f64>, f64, f64);
    let samples: Vec<Sample> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a sample line"))
        .collect();
    assert_eq!(samples.len(), SAMPLES);
    // The noise is there: many features differ from the program's own
    // scaling (its drift reference), each by far less than 1e-12.
    let data = modelwatch::core::data::Dataset::embedded();
    let ours: Vec<_> = (0..data.len()).map(|i| data.feature_row(i)).collect();
    let mut differ = 0;
    let mut our_samples = Vec::with_capacity(SAMPLES);
    for s in &samples {
        let near = ours
            .iter()
            .find(|r| r.iter().zip(&s.1).all(|(a, b)| (a - b).abs() < 1e-12))
            .expect("every numpy row is one of the data's rows");
        differ += near.iter().zip(&s.1).filter(|(a, b)| a != b).count();
        our_samples.push((s.0, near.to_vec(), s.2, s.3));
    }
    println!(
        "{differ} of {} numpy-scaled features differ from the program's by an ulp or so",
        SAMPLES * 10
    );
    assert!(
        differ > 0,
        "numpy's scaling equals ours here: the test has no teeth"
    );

    let rows = drift_windows("numpydrift", &samples).await;
    assert_eq!(rows.len(), SAMPLES / 500);
    let names = [
        "age",
        "sex",
        "bmi",
        "bp",
        "s1",
        "s2",
        "s3",
        "s4",
        "s5",
        "s6",
        "prediction",
    ];
    for r in &rows {
        println!(
            "window {}: {}",
            r["seq"],
            names
                .iter()
                .map(|n| format!("{n} {}", r[&format!("{n}_p")]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut lowest = vec![f64::INFINITY; names.len()];
    for r in &rows {
        for (k, name) in names.iter().enumerate() {
            let p: f64 = r[&format!("{name}_p")]
                .parse()
                .unwrap_or_else(|_| panic!("window {}: no {name}_p", r["seq"]));
            lowest[k] = lowest[k].min(p);
            assert_eq!(
                r[&format!("{name}_drift")],
                "0",
                "window {}: {name} drifted (p {p:e})",
                r["seq"]
            );
        }
        assert_eq!(r["dataset_drift"], "0");
        assert_eq!(r["drift_share"].parse::<f64>().unwrap(), 0.0);
        assert!(
            !r["active_alerts"].contains("drift"),
            "window {}: {}",
            r["seq"],
            r["active_alerts"]
        );
    }
    // The same rows with the program's own scaling: the very same figures.
    let our_rows = drift_windows("ourdrift", &our_samples).await;
    assert_eq!(our_rows.len(), rows.len());
    for (numpy, own) in rows.iter().zip(&our_rows) {
        for name in names {
            for col in ["p", "psi", "drift"] {
                let key = format!("{name}_{col}");
                assert_eq!(numpy[&key], own[&key], "window {}: {key}", numpy["seq"]);
            }
        }
    }
    println!(
        "numpy-scaled unshifted stream, lowest p per window column over {} windows: {}",
        rows.len(),
        names
            .iter()
            .zip(&lowest)
            .map(|(n, p)| format!("{n} {p:.3e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// One metric-role process fed `samples` (`(id, features, y_true,
/// y_pred)`) through the exchange; the rows of its `metrics_over_time.csv`.
async fn drift_windows(
    test: &str,
    samples: &[(u64, Vec<f64>, f64, f64)],
) -> Vec<std::collections::BTreeMap<String, String>> {
    let broker = TestBroker::new(test);
    let mut metric = broker.spawn("metric", "metric", &[]);
    metric.wait_log("inbound consumer started", 3, START).await;
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let body = |id: u64, v: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({"id": id, "body": v})).unwrap()
    };
    // Features first: a window's features are there before its records.
    let features: Vec<Vec<u8>> = samples
        .iter()
        .map(|s| body(s.0, s.1.clone().into()))
        .collect();
    publish_raw(&ch, &broker.exchange, "features", &features).await;
    let truths: Vec<Vec<u8>> = samples.iter().map(|s| body(s.0, s.2.into())).collect();
    publish_raw(&ch, &broker.exchange, "y_true", &truths).await;
    let preds: Vec<Vec<u8>> = samples.iter().map(|s| body(s.0, s.3.into())).collect();
    publish_raw(&ch, &broker.exchange, "y_pred", &preds).await;
    metric.wait_rows(samples.len(), RUN).await;
    // The last window closes with its last record; give the monitor a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while over_time_rows_now(&metric) < samples.len() / 500 && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    metric.stop(STOP).await;
    let _ = conn.close(200, "done".into()).await;
    let rows = over_time_rows(&metric.logs_dir());
    assert_eq!(rows.len(), samples.len() / 500, "{}", metric.report());
    rows
}

fn over_time_rows_now(p: &RoleProc) -> usize {
    std::fs::read_to_string(p.logs_dir().join("metrics_over_time.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// numpy's figures of `metric_log.csv`'s rows (MAE, RMSE, R², bias =
/// mean(pred − true), max error), as JSON.
const NUMPY_WINDOW: &str = r#"
import json, sys
import numpy as np
d = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
y, p = d[:, 1], d[:, 2]
e = p - y
print(json.dumps({
    "mae": float(np.mean(np.abs(e))),
    "rmse": float(np.sqrt(np.mean(e ** 2))),
    "r2": float(1 - np.sum(e ** 2) / np.sum((y - y.mean()) ** 2)),
    "bias": float(np.mean(e)),
    "max_error": float(np.max(np.abs(e))),
}))
"#;

/// Issue 18, 2.5: truth 1e300 against prediction −1e300 was accepted, and
/// its squared error overflowed: the window's RMSE read 0.0, R² was empty,
/// `rmse_high` could never fire. Such values are now dead-lettered; values
/// at the bound (±1e100) are taken in and every figure of the window is
/// finite and equal to numpy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_truths_and_predictions_leave_every_window_figure_finite() {
    let broker = TestBroker::new("overflow");
    let mut metric = broker.spawn("metric", "metric", &[]);
    metric.wait_log("inbound consumer started", 3, START).await;
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let body = |id: u64, v: f64| format!(r#"{{"id": {id}, "body": {v:e}}}"#).into_bytes();
    // Beyond the bound, first; then 10 at the bound; then 490 ordinary.
    let mut truths = Vec::new();
    let mut preds = Vec::new();
    for id in 1..=10u64 {
        truths.push(body(id, 1e300));
        preds.push(body(id, -1e300));
    }
    for id in 11..=20u64 {
        truths.push(body(id, 1e100));
        preds.push(body(id, -1e100));
    }
    let rows = oracle::rows();
    for id in 21..=510u64 {
        let r = &rows[(id as usize * 7) % rows.len()];
        truths.push(body(id, r.target));
        preds.push(body(id, r.prediction));
    }
    publish_raw(&ch, &broker.exchange, "y_true", &truths).await;
    publish_raw(&ch, &broker.exchange, "y_pred", &preds).await;
    metric.wait_rows(500, RUN).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while over_time_rows_now(&metric) < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    metric.stop(STOP).await;
    let _ = conn.close(200, "done".into()).await;

    let windows = over_time_rows(&metric.logs_dir());
    assert_eq!(windows.len(), 1, "{}", metric.report());
    let w = &windows[0];
    let csv = metric.csv_path();
    let want: serde_json::Value = serde_json::from_str(&python(
        "numpy window",
        NUMPY_WINDOW,
        &[csv.to_str().unwrap()],
    ))
    .unwrap();
    for key in ["mae", "rmse", "r2", "bias", "max_error"] {
        let got: f64 = w[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is empty: {w:?}"));
        assert!(got.is_finite(), "{key} = {got}");
        let want = want[key].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{key}: {got:e}, numpy {want:e}"
        );
    }
    // The ten pairs past the bound went to the dead-letter queue, both halves.
    let reg = metric.registry();
    assert_eq!(
        reg.count("modelwatch_inbound_dead_lettered_total", &[]),
        20,
        "{}",
        metric.report()
    );
    assert_eq!(metric.csv().len(), 500);
}
