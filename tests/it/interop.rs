//! Interoperation with the original Python services, written as they were:
//! pika `BlockingConnection`, the default exchange, queues declared with a
//! plain `channel.queue_declare(queue=...)`, bodies
//! `{"id": <datetime.now().timestamp()>, "body": ...}`, `auto_ack=True`.
//!
//! - the original features service feeds our model and metric roles, run
//!   with the one switch `--legacy-inbound` (their work queues become its
//!   queues `features` and `y_true`, and `y_pred`);
//! - our features and model roles feed the original metric service, which
//!   reads the legacy queues `y_true` and `y_pred` the bridge binds.
//!
//! Both tests use the fixed legacy queue names, so each runs on a
//! [`PrivateBroker`] of its own (its own node, port and data under
//! `target/`, stopped and removed on drop, pass or fail): the legacy queues
//! of the machine's broker are never declared, purged or deleted by a test.
//! Everything else (exchange, work and dead-letter queues) is unique to the
//! test too. They need RabbitMQ installed and python3 with pika, and fail
//! (never skip) without them.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::support::split::*;
use serde_json::Value;

/// Declares the legacy queues as the Python services do and empties them
/// (on the test's private node: nothing else has used them there).
async fn fresh_legacy_queues(conn: &lapin::Connection, queues: &[&str]) {
    for q in queues {
        declare_like_python(conn, q).await;
        let purged = purge(conn, q).await;
        if purged > 0 {
            println!("purged {purged} old messages from the legacy queue {q}");
        }
    }
}

/// The original features service, as it was but for three things: it reads
/// the rows from a JSON file (`{"features": [[10 floats]...], "targets":
/// [...]}`) instead of sklearn's `load_diabetes()`, sends `argv[2]` samples on
/// one connection instead of one connection and a 10 s sleep per sample, and
/// prints what it sent (`{"id": <float>, "row": <index>}`) for the test; and
/// it connects to the port `argv[3]` (the test's private node).
const FEATURES_SERVICE: &str = r#"
import json
import random
import sys
from datetime import datetime

import pika

with open(sys.argv[1]) as f:
    data = json.load(f)
X, y = data['features'], data['targets']
N = int(sys.argv[2])
random.seed(42)

connection = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[3])))
channel = connection.channel()
channel.queue_declare(queue='features')
channel.queue_declare(queue='y_true')

last_id = None
for _ in range(N):
    random_row = random.randint(0, len(X) - 1)
    message_id = datetime.timestamp(datetime.now())
    while message_id == last_id:  # two samples within one microsecond
        message_id = datetime.timestamp(datetime.now())
    last_id = message_id
    message_y_true = {'id': message_id, 'body': y[random_row]}
    channel.basic_publish(exchange='', routing_key='y_true', body=json.dumps(message_y_true))
    message_features = {'id': message_id, 'body': list(X[random_row])}
    channel.basic_publish(exchange='', routing_key='features', body=json.dumps(message_features))
    print(json.dumps({'id': message_id, 'row': random_row}))

connection.close()
print('done')
"#;

/// The original metric service: reads `y_true` and `y_pred` with
/// `auto_ack=True`, joins by id and computes the absolute error. It prints
/// each joined row as a JSON line (the original appended it to a CSV), prints
/// `ready` once it consumes, and stops after `argv[1]` rows. It connects to
/// the port `argv[2]` (the test's private node).
const METRIC_SERVICE: &str = r#"
import json
import sys

import pika

N = int(sys.argv[1])
answers = {}
joined = 0

connection = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[2])))
channel = connection.channel()
channel.queue_declare(queue='y_true')
channel.queue_declare(queue='y_pred')


def callback(ch, method, properties, body):
    global joined
    message = json.loads(body)
    message_id = message['id']
    answers.setdefault(message_id, {})[method.routing_key] = message['body']
    row = answers[message_id]
    if 'y_true' in row and 'y_pred' in row and 'done' not in row:
        row['done'] = True
        y_true, y_pred = row['y_true'], row['y_pred']
        print(json.dumps({'id': message_id, 'y_true': y_true, 'y_pred': y_pred,
                          'absolute_error': abs(y_true - y_pred)}))
        joined += 1
        if joined >= N:
            ch.stop_consuming()


channel.basic_consume(queue='y_true', on_message_callback=callback, auto_ack=True)
channel.basic_consume(queue='y_pred', on_message_callback=callback, auto_ack=True)
print('ready')
channel.start_consuming()
connection.close()
"#;

/// The original features service feeds our model and metric processes: the
/// metric logs every sample, under the Python float id in microseconds, with
/// the target and the model's prediction of the row that was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_features_service_feeds_our_model_and_metric_roles() {
    const N: usize = 300;
    let t0 = Instant::now();
    let node = PrivateBroker::start("interop-py-features");
    let conn = connect_to(&node.url()).await;
    // Our consumers start first, on queues that do not exist yet: they must
    // create them as the Python service declares them, or its plain
    // queue_declare would be refused (406).
    for q in ["features", "y_true", "y_pred"] {
        let ch = conn.create_channel().await.expect("channel");
        ch.queue_delete(q.into(), lapin::options::QueueDeleteOptions::default())
            .await
            .expect("deleting the legacy queue");
    }

    // The one switch, as the README says; the work queue names the test
    // broker sets are overridden by it.
    let mut broker = TestBroker::new("py-features");
    broker.url = node.url();
    let mut metric = broker.spawn("metric", "metric", &["--legacy-inbound"]);
    let mut model = broker.spawn("model", "model", &["--legacy-inbound"]);
    metric.wait_log("inbound consumer started", 2, START).await;
    model.wait_log("inbound consumer started", 1, START).await;
    // What other runs left in the legacy queues is not this test's.
    fresh_legacy_queues(&conn, &["features", "y_true", "y_pred"]).await;

    // The scaled rows and targets, from the tests' own oracle (sklearn's
    // load_diabetes()), for the Python service.
    let rows: Vec<Vec<f64>> = oracle::rows().iter().map(|r| r.scaled.to_vec()).collect();
    let targets: Vec<f64> = oracle::rows().iter().map(|r| r.target).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_file = dir.path().join("diabetes.json");
    std::fs::write(
        &data_file,
        serde_json::to_vec(&serde_json::json!({"features": rows, "targets": targets})).unwrap(),
    )
    .expect("writing the data file");

    let flow = Instant::now();
    let mut py = PyProc::spawn(
        "features.py",
        FEATURES_SERVICE,
        &[
            data_file.to_str().unwrap(),
            &N.to_string(),
            &node.port.to_string(),
        ],
    );
    py.wait_until("done", RUN, |l| l.last().is_some_and(|x| x == "done"))
        .await;
    py.expect_exit_ok(STOP).await;
    let sent: Vec<(f64, usize)> = py
        .lines()
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            let id = v["id"]
                .as_f64()
                .filter(|_| !v["id"].is_u64())
                .unwrap_or_else(|| panic!("the Python id is not a float: {l}"));
            (id, v["row"].as_u64().unwrap() as usize)
        })
        .collect();
    assert_eq!(sent.len(), N, "samples the Python service reports sent");

    metric.wait_rows(N, RUN).await;
    let flow = flow.elapsed();
    model.sigterm();
    metric.sigterm();
    model.expect_exit_ok(STOP).await;
    metric.expect_exit_ok(STOP).await;

    // round(ts * 1e6): the float id in microseconds.
    let pairs = row_truths_and_predictions();
    let expected: HashMap<u64, (f64, f64, f64)> = sent
        .iter()
        .map(|&(ts, row)| ((ts * 1e6).round() as u64, (ts, pairs[row].0, pairs[row].1)))
        .collect();
    assert_eq!(
        expected.len(),
        N,
        "the Python ids are distinct in microseconds"
    );
    let logged = metric.csv();
    assert_ids_once(&logged, N, "metric_log.csv");
    for r in &logged {
        let &(ts, y_true, y_pred) = expected.get(&r.id).unwrap_or_else(|| {
            panic!(
                "row {r:?}: id is not round(ts * 1e6) of any Python id (e.g. {})",
                sent[0].0
            )
        });
        assert!(
            r.y_true == y_true && (r.y_pred - y_pred).abs() <= oracle::PREDICTION_TOLERANCE,
            "id {} (Python {ts}): (y_true, y_pred) logged {:?} vs (target, sklearn prediction) \
             of the row sent {:?}",
            r.id,
            (r.y_true, r.y_pred),
            (y_true, y_pred)
        );
    }
    // Nothing left behind in the Python queues.
    assert_eq!(queue_len(&conn, "features").await, 0);
    assert_eq!(queue_len(&conn, "y_true").await, 0);
    assert_eq!(queue_len(&conn, "y_pred").await, 0);
    println!(
        "python features -> our model + metric: {N} samples in {:.2?}, model received {}, \
         metric received {} y_true + {} y_pred, redelivered={} duplicates={}; test took {:.2?}",
        flow,
        model.inbound_stopped()[0].received,
        metric
            .inbound_stopped()
            .iter()
            .find(|s| s.queue == "y_true")
            .map_or(0, |s| s.received),
        metric
            .inbound_stopped()
            .iter()
            .find(|s| s.queue == "y_pred")
            .map_or(0, |s| s.received),
        metric.join_dropped("redelivered"),
        metric.join_dropped("duplicate"),
        t0.elapsed()
    );
}

/// Our features and model roles (bridge on, legacy queues on) feed the
/// original metric service through the queues `y_true` and `y_pred`: it
/// joins every sample under our integer ids, with the right error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_features_and_model_roles_feed_the_python_metric_service() {
    const N: usize = 200;
    let t0 = Instant::now();
    let node = PrivateBroker::start("interop-py-metric");
    let conn = connect_to(&node.url()).await;
    fresh_legacy_queues(&conn, &["features", "y_true", "y_pred"]).await;

    let mut broker = TestBroker::new("py-metric");
    broker.legacy_queues = true;
    broker.url = node.url();
    let mut py = PyProc::spawn(
        "metric.py",
        METRIC_SERVICE,
        &[&N.to_string(), &node.port.to_string()],
    );
    py.wait_until("\"ready\"", START, |l| l.iter().any(|x| x == "ready"))
        .await;

    let flow = Instant::now();
    let mut ours = broker.spawn(
        "features+model",
        "features,model",
        &["--count", &N.to_string(), "--rate", "0"],
    );
    ours.expect_exit_ok(RUN).await;
    let joined = |l: &[String]| l.iter().filter(|x| x.starts_with('{')).count();
    py.wait_until(&format!("{N} joined rows"), RUN, |l| joined(l) >= N)
        .await;
    py.expect_exit_ok(STOP).await;
    let flow = flow.elapsed();

    let mut ids = HashSet::new();
    for line in py.lines().iter().filter(|x| x.starts_with('{')) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let id = v["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("the id is not our integer id: {line}"));
        assert!(
            id > 1_000_000_000_000_000,
            "{line}: not a microsecond timestamp id"
        );
        assert!(ids.insert(id), "id {id} joined twice");
        let num = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("{line}: {k} is not a number"))
        };
        let (y_true, y_pred, err) = (num("y_true"), num("y_pred"), num("absolute_error"));
        assert_eq!(err, (y_true - y_pred).abs(), "{line}");
        oracle::assert_model_output(y_true, y_pred, line);
    }
    assert_eq!(ids.len(), N, "rows joined by the Python metric service");
    let published = ours.bridge("confirmed");
    assert_eq!(
        published,
        3 * N as u64,
        "features, y_true and y_pred of each sample confirmed"
    );
    println!(
        "our features,model -> python metric: {N} rows joined in {:.2?} ({published} messages \
         published and confirmed); test took {:.2?}",
        flow,
        t0.elapsed()
    );
    // Our features went to the legacy `features` queue too (nobody reads
    // it): it goes with the private node.
}
