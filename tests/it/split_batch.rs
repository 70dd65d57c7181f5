//! Batch messages between the split layout's processes (`bridge.batch`):
//! the features, model and metric processes on the real RabbitMQ, every
//! process with `bridge.batch = true`.
//!
//! What must hold, per sample as with one message per sample: every id is
//! written once with sklearn's prediction; a poison sample inside a batch
//! message is dead-lettered alone (its own body, reason and place in the
//! batch) while the rest of that message is predicted and written; a batch
//! body that cannot be split is dead-lettered whole. And what batching
//! changes: the model receives a few deliveries for thousands of samples,
//! and the truths, which arrive far ahead of the predictions, wait in
//! their queue instead of being evicted from a small join
//! (`metric.max_pending` 2,000 here, for 20,000 samples).

use std::time::Instant;

use crate::support::oracle;
use crate::support::split::*;

const BATCH: &str = "application/vnd.modelwatch.batch+json";

/// A per-sample `features` body of oracle row `row` under `id`.
fn features_body(id: u64, row: usize) -> String {
    let x = oracle::rows()[row].scaled;
    let x: Vec<String> = x.iter().map(|v| format!("{v:?}")).collect();
    format!(r#"{{"id": {id}, "body": [{}]}}"#, x.join(", "))
}

/// The test's objects, every process with batch messages and a join of
/// `max_pending` ids.
fn batch_broker(test: &str, max_pending: usize) -> TestBroker {
    let mut broker = TestBroker::new(test);
    broker.extra_env.extend([
        ("MODELWATCH__BRIDGE__BATCH".into(), "true".into()),
        (
            "MODELWATCH__METRIC__MAX_PENDING".into(),
            max_pending.to_string(),
        ),
    ]);
    broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_messages_carry_every_sample_once_and_a_poison_sample_costs_only_itself() {
    const N: usize = 20_000;
    let t0 = Instant::now();
    let conn = connect().await;
    let broker = batch_broker("batch", 2000);
    let mut metric = broker.spawn("metric", "metric", &[]);
    let mut model = broker.spawn("model", "model", &[]);
    for (p, n) in [(&mut metric, 3), (&mut model, 1)] {
        p.wait_log("inbound consumer started", n, START).await;
    }

    // A batch of five features, two of them poison (index 1: a string
    // feature; index 3: nine features), and the truths of the three good
    // ones, as a batch too: they make three more rows. Straight to the
    // model's and the metric's queues (the monitor's would take a copy of
    // the features, and these have no place in its windows).
    let good = [
        (9_000_000_000_001u64, 0usize),
        (9_000_000_000_003, 1),
        (9_000_000_000_005, 2),
    ];
    let poison = [
        r#"{"id": 9000000000002, "body": ["x", 0, 0, 0, 0, 0, 0, 0, 0, 0]}"#.to_string(),
        r#"{"id": 9000000000004, "body": [0, 0, 0, 0, 0, 0, 0, 0, 0]}"#.to_string(),
    ];
    let elements = [
        features_body(good[0].0, good[0].1),
        poison[0].clone(),
        features_body(good[1].0, good[1].1),
        poison[1].clone(),
        features_body(good[2].0, good[2].1),
    ];
    let batch = format!("[{}]", elements.join(","));
    let truths: Vec<String> = good
        .iter()
        .map(|(id, row)| {
            format!(
                r#"{{"id": {id}, "body": {:?}}}"#,
                oracle::rows()[*row].target
            )
        })
        .collect();
    let truths = format!("[{}]", truths.join(", "));
    let ch = confirm_channel(&conn).await;
    let model_queue = broker.model_queue.as_str();
    publish_typed(&ch, "", model_queue, batch.as_bytes(), BATCH).await;
    publish_typed(&ch, "", &broker.truth_queue, truths.as_bytes(), BATCH).await;
    // A batch body that is not a JSON array: dead-lettered whole.
    let broken = br#"[{"id": 1, "body": [0.1"#;
    publish_typed(&ch, "", model_queue, broken, BATCH).await;

    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "0"],
    );
    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N + good.len(), RUN).await;
    for p in [&mut model, &mut metric] {
        p.sigterm();
    }
    for p in [&mut model, &mut metric] {
        p.expect_exit_ok(STOP).await;
    }

    // Every sample once, with sklearn's prediction; the three good ones of
    // the poisoned batch too.
    let rows = metric.csv();
    let (ours, theirs): (Vec<Row>, Vec<Row>) = rows
        .into_iter()
        .partition(|r| good.iter().all(|(id, _)| *id != r.id));
    assert_ids_once(&ours, N, "metric_log.csv");
    assert_rows_match_model(&ours, "metric_log.csv");
    let mut got: Vec<u64> = theirs.iter().map(|r| r.id).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        good.map(|(id, _)| id).to_vec(),
        "the good samples of the poisoned batch"
    );
    for r in &theirs {
        let row = good.iter().find(|(id, _)| *id == r.id).unwrap().1;
        assert!(
            (r.y_pred - oracle::rows()[row].prediction).abs() < oracle::PREDICTION_TOLERANCE,
            "{r:?}: sklearn predicts {}",
            oracle::rows()[row].prediction
        );
    }
    // No truth was evicted or expired waiting for its prediction, though
    // the join holds 2,000: the truths' consumer held back.
    for reason in ["evicted", "expired"] {
        assert_eq!(
            metric.join_dropped(reason),
            0,
            "{reason}\n{}",
            metric.report()
        );
    }
    let reg = metric.registry();
    assert_eq!(
        reg.count("modelwatch_monitor_features_unmatched_total", &[]),
        0,
        "the monitor used every feature: its consumer held back too\n{}",
        metric.report()
    );

    // Batches on the wire: the model took the 20,000 features in a few
    // deliveries (the source's batches of 512), and every delivery was acked.
    let m = InboundStopped::all_of(&model.registry());
    let mq = m
        .iter()
        .find(|s| s.queue == broker.model_queue)
        .expect("model consumer");
    assert!(
        mq.received * 100 < N as u64,
        "{} deliveries for {N} samples: not batched ({mq:?})",
        mq.received
    );
    assert_eq!(mq.acked, mq.received, "{mq:?}");
    assert_eq!(
        mq.dead_lettered, 3,
        "two poison samples and one broken batch: {mq:?}"
    );
    // The bridge counts samples: features and truths, 2N.
    assert_eq!(features.bridge("confirmed"), 2 * N as u64);

    // The dead-letter queue: each poison sample alone, as a per-sample
    // message with its place in the batch; the broken batch whole.
    let dead = drain(&conn, &broker.dead_letter_queue, 3, RUN).await;
    assert_eq!(dead.len(), 3, "{dead:?}");
    for (index, body) in [(1, &poison[0]), (3, &poison[1])] {
        let d = dead
            .iter()
            .find(|d| d.body == body.as_bytes())
            .unwrap_or_else(|| panic!("poison sample {index} not dead-lettered alone: {dead:?}"));
        assert_eq!(
            d.headers.get("x-batch-index"),
            Some(&index.to_string()),
            "{d:?}"
        );
        assert_eq!(
            d.headers.get("x-batch-size"),
            Some(&"5".to_string()),
            "{d:?}"
        );
        assert_eq!(d.content_type.as_deref(), Some("application/json"), "{d:?}");
        assert_eq!(d.routing_key, broker.model_queue);
        let reason = &d.headers["x-reject-reason"];
        assert!(
            reason.contains("not a number") || reason.contains("expected 10 features"),
            "{reason}"
        );
    }
    let whole = dead
        .iter()
        .find(|d| d.body == broken)
        .unwrap_or_else(|| panic!("the broken batch was not dead-lettered whole: {dead:?}"));
    assert_eq!(whole.content_type.as_deref(), Some(BATCH));
    assert!(
        whole.headers["x-reject-reason"].contains("a batch body is a JSON array"),
        "{whole:?}"
    );
    assert!(!whole.headers.contains_key("x-batch-index"));

    println!(
        "batch: {N} samples + 3 of a poisoned batch, every row once; the model received {} deliveries; \
         2 poison samples and 1 broken batch dead-lettered; no half evicted with max_pending 2000; test took {:.2?}",
        mq.received,
        t0.elapsed()
    );
    drop(conn);
}

/// Two model workers with batch messages, one of them stopped
/// (`kill -STOP`) for 5 s mid-run and then let go: the metric's join of
/// 4,000 ids keeps every truth whose prediction the stopped worker holds
/// (a consumer asks for `prefetch / batch_max` messages, so a stopped
/// worker holds about `prefetch` samples, not `prefetch` batches), the
/// side that runs ahead waits in its queue, and every id is written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_holds_no_more_than_the_join_can_wait_for() {
    const N: usize = 60_000;
    let t0 = Instant::now();
    let _conn = connect().await;
    let broker = batch_broker("batchstop", 4000);
    let mut metric = broker.spawn("metric", "metric", &["--no-monitor"]);
    let mut model_a = broker.spawn("model-a", "model", &[]);
    let mut model_b = broker.spawn("model-b", "model", &[]);
    for (p, n) in [(&mut metric, 2), (&mut model_a, 1), (&mut model_b, 1)] {
        p.wait_log("inbound consumer started", n, START).await;
    }
    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "20000"],
    );
    metric.wait_rows(1000, RUN).await;
    let signal = |sig: &str, pid: u32| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP", model_a.pid());
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let during = metric.csv_rows_now();
    signal("-CONT", model_a.pid());
    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;
    for p in [&mut model_a, &mut model_b, &mut metric] {
        p.sigterm();
    }
    for p in [&mut model_a, &mut model_b, &mut metric] {
        p.expect_exit_ok(STOP).await;
    }
    let rows = metric.csv();
    assert_ids_once(&rows, N, "metric_log.csv");
    assert_rows_match_model(&rows, "metric_log.csv");
    for reason in ["evicted", "expired"] {
        assert_eq!(
            metric.join_dropped(reason),
            0,
            "{reason}\n{}",
            metric.report()
        );
    }
    println!(
        "stopped worker: {N} rows once with a join of 4,000; {during} rows written while model-a was stopped; test took {:.2?}",
        t0.elapsed()
    );
}
