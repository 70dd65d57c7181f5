//! One role per process: `modelwatch run --roles features|model|metric` as
//! separate processes linked only through the real RabbitMQ (127.0.0.1:5672),
//! the four-service layout of the original Python services.
//!
//! Each test has its own exchange, work queues and dead-letter objects
//! (named after the test process and the test, deleted at the end) and turns
//! the legacy queues off, so the tests run in parallel without seeing each
//! other's messages. The consumer roles start first; the features role
//! starts once every consumer logged "inbound consumer started" (its queue is
//! declared and bound). Every wait is bounded: past it the processes are
//! killed and the test fails. With the broker down the tests fail, they never
//! skip.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::split::*;

/// Waits until each process logged "inbound consumer started" for each of
/// its queues (`(process, queues)`).
async fn wait_consumers(procs: &mut [(&mut RoleProc, usize)]) {
    for (p, n) in procs.iter_mut() {
        p.wait_log("inbound consumer started", *n, START).await;
    }
}

/// `confirmed=` of the "bridge summary" line (messages the process
/// published and the broker confirmed).
fn confirmed(p: &RoleProc) -> u64 {
    p.bridge("confirmed")
}

/// The one "inbound consumer stopped" line of a process with one consumer.
fn only_consumer(p: &RoleProc) -> InboundStopped {
    let mut lines = p.inbound_stopped();
    assert_eq!(
        lines.len(),
        1,
        "{}: expected one \"inbound consumer stopped\" line\n{}",
        p.label,
        p.report()
    );
    lines.pop().unwrap()
}

/// The "inbound consumer stopped" lines of a process, by queue.
fn consumers_by_queue(p: &RoleProc) -> HashMap<String, InboundStopped> {
    p.inbound_stopped()
        .into_iter()
        .map(|s| (s.queue.clone(), s))
        .collect()
}

fn assert_no_panic(p: &RoleProc) {
    let log = p.log();
    assert!(
        !log.contains("panic"),
        "{} logged a panic\n{}",
        p.label,
        p.report()
    );
}

/// Features, two models and a metric, each its own process: every sample is
/// logged exactly once and both models share the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_log_every_sample_once_and_share_the_model_work() {
    const N: usize = 3000;
    let t0 = Instant::now();
    let conn = connect().await;
    let broker = TestBroker::new("four");
    let mut metric = broker.spawn("metric", "metric", &[]);
    let mut model_a = broker.spawn("model-a", "model", &[]);
    let mut model_b = broker.spawn("model-b", "model", &[]);
    wait_consumers(&mut [(&mut metric, 2), (&mut model_a, 1), (&mut model_b, 1)]).await;

    let flow = Instant::now();
    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "0"],
    );
    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;
    let flow = flow.elapsed();

    for p in [&mut model_a, &mut model_b, &mut metric] {
        p.sigterm();
    }
    for p in [&mut model_a, &mut model_b, &mut metric] {
        p.expect_exit_ok(STOP).await;
        assert_no_panic(p);
    }

    let rows = metric.csv();
    assert_ids_once(&rows, N, "metric_log.csv");
    assert_rows_match_model(&rows, "metric_log.csv");

    let a = only_consumer(&model_a);
    let b = only_consumer(&model_b);
    assert!(
        a.received > 0 && b.received > 0,
        "both models must handle some samples: model-a received={}, model-b received={}",
        a.received,
        b.received
    );
    assert!(
        a.received + b.received >= N as u64,
        "the models received {} + {} < {N} features",
        a.received,
        b.received
    );
    for (s, p) in [(&a, &model_a), (&b, &model_b)] {
        assert_eq!(s.queue, broker.model_queue);
        assert_eq!(s.dead_lettered, 0, "{}: {s:?}", p.label);
        assert_eq!(s.acked, s.received, "{}: not all acked: {s:?}", p.label);
    }
    let m = consumers_by_queue(&metric);
    let truth = &m[&broker.truth_queue];
    let pred = &m[&broker.pred_queue];
    assert!(
        truth.received >= N as u64 && pred.received >= N as u64,
        "{m:?}"
    );
    assert_eq!(truth.acked, truth.received, "{truth:?}");
    assert_eq!(pred.acked, pred.received, "{pred:?}");

    let published =
        confirmed(&features) + confirmed(&model_a) + confirmed(&model_b) + confirmed(&metric);
    let consumed = a.received + b.received + truth.received + pred.received;
    println!(
        "four processes: {N} samples in {:.2?} (features start to last row); messages moved: \
         features published {} (features + y_true), model-a received {} published {}, \
         model-b received {} published {}, metric received {} y_true + {} y_pred and \
         published {} metrics; total {published} published, {consumed} consumed; \
         metric redelivered={} duplicates={}; test took {:.2?}",
        flow,
        confirmed(&features),
        a.received,
        confirmed(&model_a),
        b.received,
        confirmed(&model_b),
        truth.received,
        pred.received,
        confirmed(&metric),
        metric.join_dropped("redelivered"),
        metric.join_dropped("duplicate"),
        t0.elapsed()
    );
    drop(conn);
}

/// `kill -9` of one of two model processes mid-run: its unacknowledged
/// deliveries go back to the queue, the other model handles them, and the
/// metric still logs every id exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_killed_mid_run_loses_and_doubles_nothing() {
    kill_a_model_mid_run("classic").await;
}

/// The same with quorum work queues (`inbound.queue_type = "quorum"`, for
/// roles spread over a RabbitMQ cluster): the same guarantees, and the
/// queues are quorum queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_quorum_queues_a_model_killed_mid_run_loses_and_doubles_nothing() {
    kill_a_model_mid_run("quorum").await;
}

/// The type (`classic`, `quorum`) of each queue of the local broker whose
/// name starts with `prefix` (`rabbitmqctl list_queues`, read-only).
fn queue_types(prefix: &str) -> std::collections::BTreeMap<String, String> {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "--quiet",
            "--no-table-headers",
            "name",
            "type",
        ])
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(n, t)| (n.to_owned(), t.trim().to_owned()))
        .collect()
}

async fn kill_a_model_mid_run(queue_type: &str) {
    const N: usize = 6000;
    const RATE: f64 = 1500.0;
    let t0 = Instant::now();
    let conn = connect().await;
    let mut broker = TestBroker::new(&format!("kill9{queue_type}"));
    broker
        .extra_env
        .push(("MODELWATCH__INBOUND__QUEUE_TYPE".into(), queue_type.into()));
    let mut metric = broker.spawn("metric", "metric", &[]);
    // The victim is slow (every batch it predicts sleeps 200 ms), so when it
    // is killed it surely holds deliveries it has not acked yet.
    let mut victim_env = broker.env();
    victim_env.push(("FAILPOINTS".into(), "model-predict=sleep(200)".into()));
    let mut victim = RoleProc::spawn("model-killed", "model", &[], &victim_env);
    let mut survivor = broker.spawn("model-survivor", "model", &[]);
    wait_consumers(&mut [(&mut metric, 2), (&mut victim, 1), (&mut survivor, 1)]).await;
    let types = queue_types(broker.model_queue.trim_end_matches(".model"));
    for q in [
        &broker.model_queue,
        &broker.truth_queue,
        &broker.pred_queue,
        &broker.dead_letter_queue,
    ] {
        assert_eq!(
            types.get(q).map(String::as_str),
            Some(queue_type),
            "{q}: {types:?}"
        );
    }

    let features_started = Instant::now();
    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", &RATE.to_string()],
    );
    // Let samples flow for about a second, then kill one model.
    metric.wait_rows(1, RUN).await;
    tokio::time::sleep_until((features_started + Duration::from_secs(1)).into()).await;
    let rows_at_kill = metric.csv_rows_now();
    let at_kill = features_started.elapsed();
    assert!(
        features.is_running(),
        "the features role finished before the kill: not mid-run\n{}",
        features.report()
    );
    victim.kill9();
    // The source emits at most elapsed * rate + 1 samples: the killed model
    // cannot have received more.
    let emitted_bound = ((at_kill.as_secs_f64() * RATE) as u64 + 1).min(N as u64);

    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N, Duration::from_secs(90)).await;
    survivor.stop(STOP).await;
    metric.stop(STOP).await;
    assert_no_panic(&survivor);
    assert_no_panic(&metric);

    let rows = metric.csv();
    assert_ids_once(&rows, N, "metric_log.csv");
    assert_rows_match_model(&rows, "metric_log.csv");

    let s = only_consumer(&survivor);
    assert!(
        s.received >= N as u64 - emitted_bound,
        "the surviving model received {} features; the killed one had at most {emitted_bound} \
         of {N}: the rest must have gone to the survivor",
        s.received
    );
    assert_eq!(s.acked, s.received, "survivor: {s:?}");
    // What the victim held unacked came back, flagged, to the survivor.
    assert!(
        s.redelivered > 0,
        "the survivor got no redelivered features: the killed model held no unacked work \
         (or acked before handling it): {s:?}"
    );
    assert!(s.redelivered <= s.received, "{s:?}");
    let m = consumers_by_queue(&metric);
    let redelivered = metric.join_dropped("redelivered");
    let duplicates = metric.join_dropped("duplicate");
    println!(
        "kill -9 ({queue_type} queues): model killed {:.2?} after the features role started ({rows_at_kill} rows \
         written, at most {emitted_bound} samples emitted by then); the survivor received {} \
         features, {} of them redelivered; the metric received {} y_true + {} y_pred for {N} rows; metric \
         redelivered={redelivered} duplicates={duplicates}; test took {:.2?}",
        at_kill,
        s.received,
        s.redelivered,
        m[&broker.truth_queue].received,
        m[&broker.pred_queue].received,
        t0.elapsed()
    );
    drop(conn);
}

/// A malformed message, the routing key it is published under, and a part
/// of the reason the consumer must give.
struct Bad {
    routing_key: &'static str,
    body: Vec<u8>,
    reason: &'static str,
}

/// `n` malformed messages of every kind the decoder refuses, each body
/// unique (`i` is in it), spread over the three routing keys.
fn malformed(n: usize, max_body: usize) -> Vec<Bad> {
    let ten = "0.038, 0.05, 0.061, 0.021, -0.044, -0.034, -0.043, -0.002, 0.019, -0.017";
    let oversized = move |json: String| {
        let mut b = json.into_bytes();
        assert!(b.len() < max_body + 904);
        b.resize(max_body + 904, b' ');
        b
    };
    type Make = (&'static str, &'static str, Box<dyn Fn(usize) -> Vec<u8>>);
    let s = move |f: fn(usize, &str) -> String| -> Box<dyn Fn(usize) -> Vec<u8>> {
        Box::new(move |i| f(i, ten).into_bytes())
    };
    let kinds: Vec<Make> = vec![
        // routing key `features` (the model's queue)
        ("features", "not JSON", s(|i, _| format!("not json #{i}"))),
        (
            "features",
            "not JSON",
            Box::new(|i| {
                let mut b = vec![0xff, 0xfe, b'{'];
                b.extend(i.to_string().bytes());
                b
            }),
        ),
        (
            "features",
            "a JSON array, not an object",
            s(|i, _| format!("[{i}, 1.5, 2.5]")),
        ),
        (
            "features",
            "not a JSON object",
            s(|i, _| format!("\"sample {i}\"")),
        ),
        (
            "features",
            "no \"id\"",
            s(|i, t| format!(r#"{{"n": {i}, "body": [{t}]}}"#)),
        ),
        (
            "features",
            "bad \"id\"",
            s(|i, t| format!(r#"{{"id": "{i}", "body": [{t}]}}"#)),
        ),
        (
            "features",
            "bad \"id\"",
            s(|i, t| format!(r#"{{"id": -{}, "body": [{t}]}}"#, i + 1)),
        ),
        (
            "features",
            "bad \"id\"",
            s(|i, t| format!(r#"{{"id": -1732865012.25, "n": {i}, "body": [{t}]}}"#)),
        ),
        (
            "features",
            "bad \"id\"",
            s(|i, t| format!(r#"{{"id": 9007199254740993, "n": {i}, "body": [{t}]}}"#)),
        ),
        (
            "features",
            "bad \"id\"",
            s(|i, t| format!(r#"{{"id": null, "n": {i}, "body": [{t}]}}"#)),
        ),
        (
            "features",
            "expected 10 features",
            s(|i, _| format!(r#"{{"id": {i}, "body": [0.1, 0.2, 0.3]}}"#)),
        ),
        (
            "features",
            "expected 10 features",
            s(|i, t| format!(r#"{{"id": {i}, "body": [{t}, 0.5]}}"#)),
        ),
        (
            "features",
            "not a number",
            s(|i, _| {
                format!(
                    r#"{{"id": {i}, "body": [0.038, "0.05", 0.061, 0.021, -0.044, -0.034, -0.043, -0.002, 0.019, -0.017]}}"#
                )
            }),
        ),
        (
            "features",
            "expected 10 numbers",
            s(|i, _| format!(r#"{{"id": {i}, "body": 151.0}}"#)),
        ),
        (
            "features",
            "bad \"body\"",
            s(|i, _| format!(r#"{{"id": {i}}}"#)),
        ),
        // NaN and Infinity as Python's json.dumps writes them.
        (
            "features",
            "not JSON",
            s(|i, _| {
                format!(
                    r#"{{"id": 1732865012.{i:06}, "body": [NaN, 0.05, 0.061, 0.021, -0.044, -0.034, -0.043, -0.002, 0.019, -0.017]}}"#
                )
            }),
        ),
        (
            "features",
            "not JSON",
            s(|i, _| {
                format!(
                    r#"{{"id": 1732865012.{i:06}, "body": [0.038, Infinity, 0.061, 0.021, -0.044, -0.034, -0.043, -0.002, 0.019, -0.017]}}"#
                )
            }),
        ),
        (
            "features",
            "byte limit",
            Box::new(move |i| oversized(format!(r#"{{"id": {i}, "body": [{ten}]}}"#))),
        ),
        // routing key `y_true` (the metric's truth queue)
        (
            "y_true",
            "not a number",
            s(|i, _| format!(r#"{{"id": {i}, "body": "151.0"}}"#)),
        ),
        (
            "y_true",
            "not a number",
            s(|i, _| format!(r#"{{"id": {i}, "body": null}}"#)),
        ),
        (
            "y_true",
            "not JSON",
            s(|i, _| format!(r#"{{"id": 1732865012.{i:06}, "body": NaN}}"#)),
        ),
        (
            "y_true",
            "not JSON",
            s(|i, _| format!(r#"{{"id": 1732865012.{i:06}, "body": -Infinity}}"#)),
        ),
        (
            "y_true",
            "not JSON",
            s(|i, _| format!(r#"{{"id": {i}, "body": 151.0"#)),
        ),
        (
            "y_true",
            "no \"id\"",
            s(|i, _| format!(r#"{{"ID": {i}, "body": 151.0}}"#)),
        ),
        (
            "y_true",
            "byte limit",
            Box::new(move |i| oversized(format!(r#"{{"id": {i}, "body": 151.0}}"#))),
        ),
        // routing key `y_pred` (the metric's prediction queue)
        (
            "y_pred",
            "not JSON",
            s(|i, _| format!(r#"{{"id": 1732865012.{i:06}, "body": Infinity}}"#)),
        ),
        (
            "y_pred",
            "bad \"id\"",
            s(|i, _| format!(r#"{{"id": "x{i}", "body": 206.1}}"#)),
        ),
        (
            "y_pred",
            "bad \"id\"",
            s(|i, _| format!(r#"{{"id": 1e300, "n": {i}, "body": 206.1}}"#)),
        ),
        (
            "y_pred",
            "not a number",
            s(|i, _| format!(r#"{{"id": {i}, "body": [206.1]}}"#)),
        ),
        (
            "y_pred",
            "read as a batch only with content_type application/vnd.modelwatch.batch+json",
            s(|i, _| format!("[{{\"id\": {i}, \"body\": 206.1}}]")),
        ),
        (
            "y_pred",
            "byte limit",
            Box::new(move |i| oversized(format!(r#"{{"id": {i}, "body": 206.1}}"#))),
        ),
    ];
    (0..n)
        .map(|i| {
            let (routing_key, reason, make) = &kinds[i % kinds.len()];
            Bad {
                routing_key,
                body: make(i),
                reason,
            }
        })
        .collect()
}

/// 1000 malformed messages of every kind, published straight to the
/// exchange while good samples flow: each is dead-lettered once with its
/// reason, counted, and the good samples are all logged; nothing crashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_dead_lettered_while_good_ones_flow() {
    const N: usize = 3000;
    const BAD: usize = 1000;
    const MAX_BODY: usize = 4096;
    let t0 = Instant::now();
    let conn = connect().await;
    let mut broker = TestBroker::new("malformed");
    broker.extra_env.push((
        "MODELWATCH__INBOUND__MAX_BODY_BYTES".into(),
        MAX_BODY.to_string(),
    ));
    // Without the monitor: its features queue would dead-letter each bad
    // `features` message a second time (`monitor_split` covers it).
    let mut metric = broker.spawn("metric", "metric", &["--no-monitor"]);
    let mut model = broker.spawn("model", "model", &[]);
    wait_consumers(&mut [(&mut metric, 2), (&mut model, 1)]).await;

    let bad = malformed(BAD, MAX_BODY);
    let sent_per_key = |key: &str| bad.iter().filter(|b| b.routing_key == key).count() as u64;
    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "300"],
    );
    // Interleave the malformed messages with the good ones: ten rounds over
    // a few seconds of the 10 s run (publishing them takes up to about 7 s on a busy machine), once good rows are being written.
    let features_started = Instant::now();
    metric.wait_rows(1, RUN).await;
    let ch = confirm_channel(&conn).await;
    let first_bad_at = features_started.elapsed();
    assert!(
        features.is_running(),
        "the features role finished before the malformed messages were sent\n{}",
        features.report()
    );
    for round in bad.chunks(BAD / 10) {
        for key in ["features", "y_true", "y_pred"] {
            let bodies: Vec<Vec<u8>> = round
                .iter()
                .filter(|b| b.routing_key == key)
                .map(|b| b.body.clone())
                .collect();
            publish_raw(&ch, &broker.exchange, key, &bodies).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let published_bad = Instant::now();
    let last_bad_at = features_started.elapsed();
    let good_still_flowing = features.is_running();
    // Otherwise the malformed messages did not interleave with good ones.
    assert!(
        good_still_flowing,
        "the features role finished before the last malformed message was published \
         ({last_bad_at:.2?} after it started)\n{}",
        features.report()
    );

    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;
    let deadline = Instant::now() + RUN;
    loop {
        let n = queue_len(&conn, &broker.dead_letter_queue).await as usize;
        if n >= BAD {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} of {BAD} malformed messages reached {} within {RUN:?}\n{}\n{}",
            broker.dead_letter_queue,
            model.report(),
            metric.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead_lettered_in = published_bad.elapsed();
    // Nobody crashed on the way.
    for p in [&mut model, &mut metric] {
        assert!(p.is_running(), "{} died\n{}", p.label, p.report());
    }
    model.sigterm();
    metric.sigterm();
    model.expect_exit_ok(STOP).await;
    metric.expect_exit_ok(STOP).await;
    assert_no_panic(&model);
    assert_no_panic(&metric);

    let rows = metric.csv();
    assert_ids_once(&rows, N, "metric_log.csv");
    assert_rows_match_model(&rows, "metric_log.csv");

    // Counted by the processes, per queue.
    let mq = only_consumer(&model);
    let m = consumers_by_queue(&metric);
    let (tq, pq) = (&m[&broker.truth_queue], &m[&broker.pred_queue]);
    assert_eq!(mq.queue, broker.model_queue);
    assert_eq!(
        mq.dead_lettered + tq.dead_lettered + pq.dead_lettered,
        BAD as u64,
        "dead_lettered= of the \"inbound consumer stopped\" lines: model {mq:?}, metric {m:?}"
    );
    assert_eq!(mq.dead_lettered, sent_per_key("features"), "{mq:?}");
    assert_eq!(tq.dead_lettered, sent_per_key("y_true"), "{tq:?}");
    assert_eq!(pq.dead_lettered, sent_per_key("y_pred"), "{pq:?}");
    assert!(mq.received >= N as u64 + sent_per_key("features"), "{mq:?}");
    for s in [&mq, tq, pq] {
        assert_eq!(s.acked, s.received, "everything received is acked: {s:?}");
        assert_eq!(s.requeued, 0, "{s:?}");
    }

    // What the dead-letter queue holds: each message once, with its reason.
    let got = drain(&conn, &broker.dead_letter_queue, BAD, RUN).await;
    assert_eq!(got.len(), BAD, "messages in {}", broker.dead_letter_queue);
    let mut expected: HashMap<&[u8], &Bad> = HashMap::new();
    for b in &bad {
        assert!(
            expected.insert(&b.body, b).is_none(),
            "test bodies are unique"
        );
    }
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for g in &got {
        let sent = expected.remove(g.body.as_slice()).unwrap_or_else(|| {
            panic!(
                "dead-lettered a body that was not sent, or twice: {:?}",
                String::from_utf8_lossy(&g.body[..g.body.len().min(200)])
            )
        });
        let reason = g.headers.get("x-reject-reason").unwrap_or_else(|| {
            panic!(
                "no string x-reject-reason header on {:?}: headers {:?}",
                String::from_utf8_lossy(&g.body[..g.body.len().min(200)]),
                g.headers
            )
        });
        assert!(!reason.trim().is_empty(), "empty x-reject-reason");
        assert!(
            reason.contains(sent.reason),
            "{:?} sent under {}: reason {reason:?} does not mention {:?}",
            String::from_utf8_lossy(&g.body[..g.body.len().min(200)]),
            sent.routing_key,
            sent.reason
        );
        assert_eq!(g.routing_key, sent.routing_key, "routing key kept");
        *reasons.entry(sent.reason.to_string()).or_default() += 1;
    }
    assert!(
        expected.is_empty(),
        "{} never dead-lettered",
        expected.len()
    );

    println!(
        "malformed: {BAD} malformed ({} features, {} y_true, {} y_pred) dead-lettered with \
         reasons {reasons:?}, all in the DLQ when checked (after the good run ended) {:.2?} after the last was \
         published (sent {first_bad_at:.2?} to \
         {last_bad_at:.2?} after the features role started, still running then); {N} good rows; model received {}, metric received {} y_true + {} y_pred; \
         test took {:.2?}",
        sent_per_key("features"),
        sent_per_key("y_true"),
        sent_per_key("y_pred"),
        dead_lettered_in,
        mq.received,
        tq.received,
        pq.received,
        t0.elapsed()
    );
}
