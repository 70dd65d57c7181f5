//! The split layout with data of the user's own, through the real binary
//! and the real RabbitMQ (objects named per test, deleted after): the
//! source, the model and the metric with its monitor in three processes
//! given the same `--data --target --model`.
//!
//! - The wire carries features by column name, a level the model never saw
//!   as its text, and the schema's fingerprint in a header; a classifier's
//!   model publishes its probabilities by class name (`scored`) for the
//!   monitor of another process.
//! - Every prediction and every window's figures agree with scikit-learn
//!   and scipy (tests/oracle/run_own.py, run_classifier.py) over the rows
//!   in the order the metric wrote them (the split layout may join them in
//!   another order than the file's).
//! - A message of another schema, of none, or with a column the schema
//!   does not have is dead-lettered with the reason; the role goes on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

use crate::support::sandbox::{read_metric_log, Sandbox};
use crate::support::split::*;
use crate::{run_classifier, run_own};

const FLOW: Duration = Duration::from_secs(30);
const FINGERPRINT: &str = "x-modelwatch-schema";

/// Writes the rows of `data` the source streams (those without a missing
/// cell) to `out`, in the order `metric_log.csv` of `logs` holds their
/// records (row k of the file has the k-th smallest id); returns how many.
fn rows_as_written(data: &Path, logs: &Path, out: &Path) -> usize {
    let text = std::fs::read_to_string(data).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let kept: Vec<&str> = lines
        .filter(|l| !l.split(',').any(|c| ["", "NA", "NaN"].contains(&c.trim())))
        .collect();
    let written: Vec<u64> = read_metric_log(logs).iter().map(|r| r.id).collect();
    let mut ids = written.clone();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), written.len(), "every record once");
    assert_eq!(ids.len(), kept.len(), "a record for every row streamed");
    let rank: HashMap<u64, usize> = ids.iter().enumerate().map(|(k, id)| (*id, k)).collect();
    let mut body = String::from(header) + "\n";
    for id in &written {
        body += kept[rank[id]];
        body += "\n";
    }
    std::fs::write(out, body).unwrap();
    kept.len()
}

/// The three processes of one run of `data` (target `target`, artifact
/// `model`, windows of `window` rows), `metric_args` for the metric's,
/// `model_env` more variables for the model's only: returns the metric's
/// and the model's processes once every row has its record, the source
/// finished.
pub(crate) async fn run_split(
    broker: &TestBroker,
    own: &[&str],
    metric_args: &[&str],
    model_env: &[(String, String)],
    rows: usize,
    metric_consumers: usize,
) -> (RoleProc, RoleProc) {
    let args: Vec<&str> = own.iter().chain(metric_args).copied().collect();
    let mut metric = broker.spawn("metric", "metric,plot", &args);
    metric
        .wait_log("inbound consumer started", metric_consumers, START)
        .await;
    let mut env = broker.env();
    env.extend(model_env.iter().cloned());
    let mut model = RoleProc::spawn_at(&broker.url, "model", "model", own, &env);
    model.wait_log("inbound consumer started", 1, START).await;
    let source_args: Vec<&str> = own
        .iter()
        .copied()
        .chain(["--order", "sequential", "--rate", "2000"])
        .collect();
    let mut source = broker.spawn("features", "features", &source_args);
    source.expect_exit_ok(RUN).await;
    metric.wait_rows(rows, RUN).await;
    (metric, model)
}

/// Publishes `body` to `queue` through the default exchange, with the
/// schema header `fingerprint` when given.
async fn publish_to_queue(
    conn: &lapin::Connection,
    queue: &str,
    body: &str,
    fingerprint: Option<&str>,
) {
    let ch = confirm_channel(conn).await;
    let mut props = BasicProperties::default().with_content_type("application/json".into());
    if let Some(f) = fingerprint {
        let mut headers = FieldTable::default();
        headers.insert(FINGERPRINT.into(), AMQPValue::LongString(f.into()));
        props = props.with_headers(headers);
    }
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            props,
        )
        .await
        .expect("publish");
    assert!(confirm.await.expect("confirm").is_ack());
    let _ = ch.close(200, "published".into()).await;
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The flags every process of a split run of your own data is given.
fn own_args(data: &Path, target: &str, model: &Path, window: usize) -> Vec<String> {
    [
        "--data",
        path_str(data),
        "--target",
        target,
        "--model",
        path_str(model),
        "--monitor-window",
        &window.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_of_your_own_data_runs_split_by_column_name_and_agrees_with_sklearn() {
    let sb = Sandbox::new();
    let artifact = run_own::train(&sb);
    let data = run_own::data_dir().join("shifted.csv");
    let broker = TestBroker::new("own");
    let conn = connect().await;
    let own = own_args(&data, "y", &artifact, run_own::WINDOW);
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    // The features as the exchange carries them: into a queue of the
    // test's (its plot queue: no plot role reads it here).
    let mut metric = broker.spawn("metric-probe", "metric", &own);
    metric.wait_log("inbound consumer started", 3, START).await;
    metric.stop(STOP).await;
    watch_queue(&conn, &broker, &broker.plot_queue, "features").await;
    let sk_rows = run_own::expected("train.csv", "shifted.csv")["rows"]
        .as_u64()
        .unwrap() as usize;
    let (mut metric, mut model) = run_split(&broker, &own, &[], &[], sk_rows, 3).await;

    // The wire: values by name, a new level as its text, one fingerprint.
    let got = drain(&conn, &broker.plot_queue, sk_rows, FLOW).await;
    assert_eq!(got.len(), sk_rows, "a features message per row");
    let fingerprint = got[0]
        .headers
        .get(FINGERPRINT)
        .cloned()
        .expect("the header");
    assert_eq!(fingerprint.len(), 16, "{fingerprint}");
    assert!(fingerprint.chars().all(|c| c.is_ascii_hexdigit()));
    let mut purple = 0;
    for g in &got {
        assert_eq!(g.headers.get(FINGERPRINT), Some(&fingerprint));
        let v: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
        let f = v["features"].as_object().expect("features by name");
        let names: Vec<&str> = f.keys().map(String::as_str).collect();
        assert_eq!(names.len(), 5, "{names:?}");
        for n in ["x1", "color", "x2", "size", "region"] {
            assert!(f.contains_key(n), "{n} in {v}");
        }
        assert!(f["x1"].is_f64() && f["size"].is_string(), "{v}");
        purple += usize::from(f["color"] == "purple");
    }
    assert!(purple > 0, "the level the model never saw keeps its text");

    // Another schema, none, a column the schema lacks: dead-lettered.
    let model_queue = broker.model_queue.clone();
    let named = r#"{"id": 5, "features": {"x1": 1.0, "color": "red", "x2": 0.5, "size": "S", "region": "north"}}"#;
    let extra = r#"{"id": 6, "features": {"x1": 1.0, "color": "red", "x2": 0.5, "size": "S", "regio": "north"}}"#;
    let diabetes = r#"{"id": 7, "body": [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]}"#;
    publish_to_queue(&conn, &model_queue, named, Some("0123456789abcdef")).await;
    publish_to_queue(&conn, &model_queue, diabetes, None).await;
    publish_to_queue(&conn, &model_queue, extra, Some(&fingerprint)).await;
    let dead = drain(&conn, &broker.dead_letter_queue, 3, FLOW).await;
    let reasons: Vec<String> = dead
        .iter()
        .map(|d| {
            d.headers
                .get("x-reject-reason")
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].contains("schema 0123456789abcdef") && reasons[0].contains(&fingerprint),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("no x-modelwatch-schema header"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("\"regio\""), "{reasons:?}");
    assert!(model.is_running(), "the model goes on\n{}", model.report());
    model.stop(STOP).await;
    metric.stop(STOP).await;

    // Every prediction and window against scikit-learn and scipy, over the
    // rows in the order the metric joined them.
    let ordered = sb.join("as_written.csv");
    rows_as_written(&data, &metric.logs_dir(), &ordered);
    let sk = run_own::expected("train.csv", path_str(&ordered));
    let windows = run_own::assert_agrees_in(&metric.logs_dir(), &sk, false);
    assert!(windows >= 7, "{windows} windows");
    println!("split, by column name: {sk_rows} rows and {windows} windows agree with scikit-learn/scipy; {purple} rows with a new level kept its text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classifier_of_your_own_data_runs_split_and_its_monitor_gets_the_probabilities() {
    const WINDOW: usize = 100;
    let sb = Sandbox::new();
    let model_path: PathBuf = run_classifier::train(&sb, "binary.csv", WINDOW);
    let data = run_classifier::data_dir().join("binary_flipped.csv");
    let broker = TestBroker::new("ownclf");
    let conn = connect().await;
    let own = own_args(&data, "label", &model_path, WINDOW);
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    let mut probe = broker.spawn("metric-probe", "metric", &own);
    // y_true, y_pred and the scored features (not the source's).
    probe.wait_log("inbound consumer started", 3, START).await;
    probe.stop(STOP).await;
    watch_queue(&conn, &broker, &broker.plot_queue, "scored").await;
    let rows = std::fs::read_to_string(&data).unwrap().lines().count() - 1;
    let (mut metric, mut model) = run_split(&broker, &own, &[], &[], rows, 3).await;
    model.stop(STOP).await;
    metric.stop(STOP).await;
    let got = drain(&conn, &broker.plot_queue, rows, FLOW).await;
    assert_eq!(got.len(), rows, "a scored message per row");
    // The monitor read the scored features: its features queue was never
    // declared (bound and unread, it would only fill).
    let ch = conn.create_channel().await.expect("channel");
    let features_queue = modelwatch::amqp::topology::passive(&ch, &broker.monitor_queue).await;
    assert!(features_queue.is_err(), "{} exists", broker.monitor_queue);
    for g in &got {
        let v: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
        let p = v["probabilities"].as_object().expect("by class");
        assert_eq!(p.len(), 2, "{v}");
        let sum: f64 = p.values().map(|x| x.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-12, "{v}");
        assert!(v["features"].is_object(), "{v}");
    }
    let ordered = sb.join("as_written.csv");
    rows_as_written(&data, &metric.logs_dir(), &ordered);
    let sk = run_classifier::expected(&model_path, path_str(&ordered), WINDOW);
    let windows = run_classifier::assert_agrees_in(&metric.logs_dir(), &sk, WINDOW, false);
    assert_eq!(windows, rows / WINDOW);
    println!("split classifier: {rows} rows and {windows} windows (accuracy, log loss, ROC AUC, ...) agree with scikit-learn");
}

/// The other split of a classifier: the source alone, the model with the
/// metric and its monitor. The monitor takes the model's scored features
/// in its own process and reads no features queue (it did, and a window's
/// figures were of whichever of the two came first for a row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classifier_split_after_the_source_has_every_rows_probabilities() {
    const WINDOW: usize = 100;
    let sb = Sandbox::new();
    let model_path: PathBuf = run_classifier::train(&sb, "binary.csv", WINDOW);
    let data = run_classifier::data_dir().join("binary_flipped.csv");
    let broker = TestBroker::new("ownclf2");
    let own = own_args(&data, "label", &model_path, WINDOW);
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    let rows = std::fs::read_to_string(&data).unwrap().lines().count() - 1;
    let mut back = broker.spawn("model+metric", "model,metric,plot", &own);
    // The model's features and the metric's truths: no monitor queue.
    back.wait_log("inbound consumer started", 2, START).await;
    let source_args: Vec<&str> = own
        .iter()
        .copied()
        .chain(["--order", "sequential", "--rate", "0"])
        .collect();
    let mut source = broker.spawn("features", "features", &source_args);
    source.expect_exit_ok(RUN).await;
    back.wait_rows(rows, RUN).await;
    back.stop(STOP).await;
    assert!(
        !back.log().contains(&broker.monitor_queue),
        "no features queue for the monitor\n{}",
        back.report()
    );
    let ordered = sb.join("as_written.csv");
    rows_as_written(&data, &back.logs_dir(), &ordered);
    let sk = run_classifier::expected(&model_path, path_str(&ordered), WINDOW);
    let windows = run_classifier::assert_agrees_in(&back.logs_dir(), &sk, WINDOW, false);
    assert_eq!(windows, rows / WINDOW);
}
