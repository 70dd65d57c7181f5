//! Issue 8, items 2, 6 and 10, against the real binary and the real
//! RabbitMQ on 127.0.0.1:5672 (run under the shared broker lock):
//!
//! - a 65 KB poison message on a work queue is dead-lettered once with a
//!   bounded reason, the messages behind it flow, and the logs barely grow;
//! - an inbound truth/prediction pair whose error would overflow is
//!   dead-lettered with a reason, and no `inf` row is written;
//! - an artifact whose predictions can overflow is refused at load (exit 2);
//! - a wrong password or a missing vhost is refused at start (exit 2), the
//!   password appearing nowhere.
//!
//! Broker objects are named after the test process and the test
//! ([`TestBroker`]) and deleted at the end, pass or fail; processes are
//! killed when their guard drops.

use crate::support;
use std::time::{Duration, Instant};

use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use crate::support::split::{
    confirm_channel, connect, drain, publish_raw, queue_len, watch_queue, RoleProc, TestBroker,
    START, STOP,
};

/// Longest wait for messages to flow or be dead-lettered in these tests.
const FLOW: Duration = Duration::from_secs(30);

/// Waits until `queue` holds at least `n` messages; panics after [`FLOW`].
async fn wait_queue_len(conn: &lapin::Connection, queue: &str, n: u32, p: &RoleProc) {
    let deadline = Instant::now() + FLOW;
    loop {
        let len = queue_len(conn, queue).await;
        if len >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{queue} holds {len} of {n} messages after {FLOW:?}\n{}",
            p.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Item 2: `{"id":[9E15 x 13000],"body":1}` (65 KB, under the body limit)
/// on the model's work queue used to make a 247 KB reason header, which the
/// broker refused (frame too large) by closing the connection: redelivered
/// forever, 605 MB of logs, good messages stuck behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_65kb_poison_message_is_dead_lettered_once_and_good_ones_flow() {
    const GOOD: usize = 20;
    let conn = connect().await;
    let broker = TestBroker::new("poison");
    let mut model = broker.spawn("model", "model", &[]);
    model.wait_log("inbound consumer started", 1, START).await;
    // The model's predictions, to see the good messages flow.
    watch_queue(&conn, &broker, &broker.pred_queue, "y_pred").await;

    let ids = vec!["9E15"; 13_000].join(",");
    let poison = format!(r#"{{"id":[{ids}],"body":1}}"#).into_bytes();
    assert!(poison.len() > 65_000 && poison.len() < 65_536);
    let good: Vec<Vec<u8>> = (0..GOOD)
        .map(|i| {
            format!(
                r#"{{"id": {}, "body": [0.01,0,0,0,0,0,0,0,0,0]}}"#,
                1000 + i
            )
            .into_bytes()
        })
        .collect();
    let (log_before, err_before) = (model.log().len(), model.stderr().len());
    let ch = confirm_channel(&conn).await;
    publish_raw(
        &ch,
        &broker.exchange,
        "features",
        std::slice::from_ref(&poison),
    )
    .await;
    publish_raw(&ch, &broker.exchange, "features", &good).await;

    // The good messages behind it flow.
    wait_queue_len(&conn, &broker.pred_queue, GOOD as u32, &model).await;
    let preds = drain(&conn, &broker.pred_queue, GOOD, FLOW).await;
    assert_eq!(preds.len(), GOOD, "predictions of the good messages");
    // The poison is in the dead-letter queue once, with a bounded reason.
    wait_queue_len(&conn, &broker.dead_letter_queue, 1, &model).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dead = drain(&conn, &broker.dead_letter_queue, 1, FLOW).await;
    assert_eq!(dead.len(), 1, "the poison is dead-lettered exactly once");
    assert_eq!(dead[0].body, poison, "the dead-letter copy is the message");
    let reason = dead[0]
        .headers
        .get("x-reject-reason")
        .unwrap_or_else(|| panic!("no x-reject-reason: {:?}", dead[0].headers));
    assert!(reason.starts_with("bad \"id\""), "{reason}");
    assert!(reason.len() <= 512, "reason of {} bytes", reason.len());
    assert!(model.is_running(), "the model died\n{}", model.report());

    // The logs grew by a few lines, not by copies of the body.
    let log_growth = model.log().len() - log_before;
    let err_growth = model.stderr().len() - err_before;
    assert!(
        log_growth < 4096 && err_growth < 4096,
        "pipeline.log grew {log_growth} bytes, stderr {err_growth}\n{}",
        model.report()
    );
    assert!(
        model.lines("connection lost").is_empty(),
        "the poison broke the connection\n{}",
        model.report()
    );
    model.stop(STOP).await;
    let stopped = model.inbound_stopped();
    assert_eq!(stopped.len(), 1, "{}", model.report());
    let s = &stopped[0];
    assert_eq!(s.received, GOOD as u64 + 1, "{s:?}");
    assert_eq!(s.dead_lettered, 1, "{s:?}");
    assert_eq!(s.acked, s.received, "{s:?}");
    assert_eq!(s.requeued, 0, "{s:?}");
}

/// A RabbitMQ policy, cleared on drop (pass or fail).
struct Policy(String);

impl Policy {
    fn set(name: &str, pattern: &str, definition: &str) -> Policy {
        support::amqp::rabbitmqctl(
            &[
                "set_policy",
                "--priority",
                "100",
                "--apply-to",
                "queues",
                name,
                pattern,
                definition,
            ],
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("setting policy {name}: {e}"));
        Policy(name.to_owned())
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        if let Err(e) =
            support::amqp::rabbitmqctl(&["clear_policy", &self.0], Duration::from_secs(30))
        {
            eprintln!("clearing policy {}: {e}", self.0);
        }
    }
}

/// Item 2: a dead-letter copy the broker refuses (nack: the dead-letter
/// queue is full with `overflow = reject-publish`) used to count as done:
/// the message was acked and lost. It is now rejected without requeue, so
/// the broker moves it to the work queue's own dead-letter exchange (seen
/// here by a second queue bound to it), once, and the queue keeps flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_the_broker_refuses_is_rejected_to_the_queues_own_dlx_once() {
    const GOOD: usize = 10;
    let conn = connect().await;
    let broker = TestBroker::new("dlfail");
    let _full = Policy::set(
        &format!("{}.dlq-full", broker.prefix),
        &format!("^{}$", broker.dead_letter_queue.replace('.', "\\.")),
        r#"{"max-length": 0, "overflow": "reject-publish"}"#,
    );
    let mut model = broker.spawn("model", "model", &[]);
    model.wait_log("inbound consumer started", 1, START).await;
    watch_queue(&conn, &broker, &broker.pred_queue, "y_pred").await;
    // A second queue on the dead-letter exchange (fanout), to see what
    // reaches it; the plot queue's name is unused by a model process and
    // deleted with the test's other objects.
    let watch = broker.plot_queue.clone();
    {
        let ch = conn.create_channel().await.expect("channel");
        ch.queue_declare(
            watch.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declaring the watch queue");
        ch.queue_bind(
            watch.as_str().into(),
            broker.dead_letter_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("binding the watch queue");
        let _ = ch.close(200, "declared".into()).await;
    }
    let ch = confirm_channel(&conn).await;
    publish_raw(&ch, &broker.exchange, "features", &[b"not json".to_vec()]).await;
    let good: Vec<Vec<u8>> = (0..GOOD)
        .map(|i| {
            format!(
                r#"{{"id": {}, "body": [0.01,0,0,0,0,0,0,0,0,0]}}"#,
                2000 + i
            )
            .into_bytes()
        })
        .collect();
    publish_raw(&ch, &broker.exchange, "features", &good).await;
    wait_queue_len(&conn, &broker.pred_queue, GOOD as u32, &model).await;

    // The refused copy (with its reason) and the broker's own dead-letter
    // of the rejected delivery.
    wait_queue_len(&conn, &watch, 2, &model).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = drain(&conn, &watch, 2, FLOW).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|g| g.body == b"not json"), "{got:?}");
    let rejected: Vec<_> = got
        .iter()
        .filter(|g| g.headers.get("x-first-death-reason").map(String::as_str) == Some("rejected"))
        .collect();
    assert_eq!(
        rejected.len(),
        1,
        "one broker dead-letter of the rejected delivery: {got:?}"
    );
    assert_eq!(
        rejected[0].headers.get("x-first-death-queue"),
        Some(&broker.model_queue),
        "{got:?}"
    );
    assert_eq!(
        model.lines("dead-letter publish failed").len(),
        1,
        "{}",
        model.report()
    );
    model.stop(STOP).await;
    let stopped = model.inbound_stopped();
    assert_eq!(stopped.len(), 1, "{}", model.report());
    let s = &stopped[0];
    let line = format!("{s:?}");
    assert_eq!(s.received, GOOD as u64 + 1, "{line}");
    // The copy the broker refused is counted rejected, not dead-lettered.
    assert_eq!(s.dead_lettered, 0, "{line}");
    assert_eq!(s.rejected, 1, "{line}");
    assert_eq!(s.requeued, 0, "{line}");
    assert_eq!(s.acked, GOOD as u64, "{line}");
}

/// Item 6: y_true 1.7e308 and y_pred -1.7e308 used to join into the row
/// `id,1.7e308,-1.7e308,inf`. Each is refused at decode (|y| over 1e100),
/// dead-lettered with the reason; a good pair still makes its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_pair_whose_error_overflows_is_dead_lettered_and_no_inf_row() {
    let conn = connect().await;
    let broker = TestBroker::new("overflow");
    let mut metric = broker.spawn("metric", "metric", &[]);
    metric.wait_log("inbound consumer started", 2, START).await;
    let ch = confirm_channel(&conn).await;
    let bad = 6200;
    let good = 6201;
    publish_raw(
        &ch,
        &broker.exchange,
        "y_true",
        &[
            format!(r#"{{"id": {bad}, "body": 1.7e308}}"#).into_bytes(),
            format!(r#"{{"id": {good}, "body": 151.0}}"#).into_bytes(),
        ],
    )
    .await;
    publish_raw(
        &ch,
        &broker.exchange,
        "y_pred",
        &[
            format!(r#"{{"id": {bad}, "body": -1.7e308}}"#).into_bytes(),
            format!(r#"{{"id": {good}, "body": 206.5}}"#).into_bytes(),
        ],
    )
    .await;
    metric.wait_rows(1, FLOW).await;
    wait_queue_len(&conn, &broker.dead_letter_queue, 2, &metric).await;
    let dead = drain(&conn, &broker.dead_letter_queue, 2, FLOW).await;
    assert_eq!(dead.len(), 2, "both halves dead-lettered");
    for d in &dead {
        let reason = d.headers.get("x-reject-reason").expect("a reason");
        assert!(
            reason.contains(&d.routing_key) && reason.contains("limit"),
            "{}: {reason}",
            d.routing_key
        );
    }
    metric.stop(STOP).await;
    let text = std::fs::read_to_string(metric.csv_path()).unwrap();
    assert!(!text.contains("inf") && !text.contains("NaN"), "{text}");
    let rows = metric.csv();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].id, good);
    assert_eq!(rows[0].absolute_error, 55.5);
}

/// Item 6: an artifact with finite coefficients of 1.7e308 gave `inf`
/// errors; it is refused at load, before anything runs.
#[test]
fn an_artifact_whose_predictions_can_overflow_exits_2_at_load() {
    let sb = support::sandbox::Sandbox::new();
    let mut m = modelwatch::model::LinearModel::fit(modelwatch::core::data::Dataset::embedded())
        .expect("fitting");
    m.coefficients = vec![1.7e308; 10];
    let artifact = sb.join("huge.json");
    m.save(&artifact).expect("saving the artifact");
    let mut cmd = sb.run_command(&sb.logs(), &["--count", "200", "--rate", "0"]);
    cmd.env("MODELWATCH__MODEL__ARTIFACT", &artifact);
    let out = support::sandbox::run_within(cmd, Duration::from_secs(20));
    out.expect_code(2);
    let line = support::sandbox::one_error_line(&out);
    assert!(
        line.contains("huge.json") && line.contains("coefficients too large"),
        "{line}"
    );
    assert!(
        !sb.logs().join("metric_log.csv").exists(),
        "rows were written before the artifact was refused"
    );
}

/// Runs with the bridge on `url` and expects exit 2 within a few seconds,
/// with one error line containing `needle`; returns stderr and pipeline.log.
fn refused_at_start(url: &str, needle: &str) -> (String, String) {
    let sb = support::sandbox::Sandbox::new();
    let cmd = sb.run_command(
        &sb.logs(),
        &["--count", "20", "--rate", "0", "--amqp-url", url],
    );
    let out = support::sandbox::run_within(cmd, Duration::from_secs(20));
    out.expect_code(2);
    assert!(
        out.elapsed < Duration::from_secs(12),
        "refused only after {:?}",
        out.elapsed
    );
    let line = support::sandbox::one_error_line(&out);
    assert!(line.contains(needle), "{needle:?} not in {line:?}");
    assert!(
        !sb.logs().join("metric_log.csv").exists(),
        "the pipeline ran before the broker refused"
    );
    let log = std::fs::read_to_string(sb.logs().join("pipeline.log")).unwrap_or_default();
    (format!("{}{}", out.stdout, out.stderr), log)
}

/// Item 10: a wrong password retried for the whole run and exited 0 with
/// `undelivered=20`. It is a configuration error: exit 2 at start.
#[test]
fn a_wrong_password_exits_2_at_start_and_never_shows_it() {
    let secret = format!("wrong-pw-{}", std::process::id());
    let url = format!("amqp://guest:{secret}@127.0.0.1:5672/%2f");
    let (output, log) = refused_at_start(&url, "refused the login");
    assert!(output.contains("guest:***@127.0.0.1"), "{output}");
    assert!(
        !output.contains(&secret),
        "password in the output: {output}"
    );
    assert!(!log.contains(&secret), "password in pipeline.log: {log}");
}

/// Item 10: a virtual host that does not exist: exit 2 at start.
#[test]
fn a_missing_vhost_exits_2_at_start() {
    let vhost = format!("mwtest-no-such-vhost-{}", std::process::id());
    let url = format!("amqp://guest:guest@127.0.0.1:5672/{vhost}");
    let (output, _) = refused_at_start(&url, "refused the virtual host");
    assert!(output.contains(&vhost), "the vhost is named: {output}");
    assert!(!output.contains("guest:guest"), "password shown: {output}");
}

/// Starts `roles` against `broker` and expects exit 2 within a few seconds,
/// stderr naming `key` and containing `needle`, and no endless log.
async fn declaration_refused(broker: &TestBroker, roles: &str, key: &str, needle: &str) {
    let mut p = broker.spawn("refused", roles, &["--count", "20", "--rate", "0"]);
    let status = p.wait_exit(Duration::from_secs(20)).await;
    let stderr = p.stderr();
    assert_eq!(status.code(), Some(2), "{}", p.report());
    let line = stderr
        .lines()
        .find(|l| l.starts_with("modelwatch: error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains(key), "{key} not named: {line}");
    assert!(line.contains(needle), "{needle:?} not in {line}");
    assert!(!line.contains("guest:guest"), "password shown: {line}");
    assert!(p.log().len() < 20_000, "log grew: {}", p.log().len());
}

/// The hostile re-test of item 2 (a): a work queue that exists with another
/// `x-max-length` (inbound.queue_max_length changed between runs) made the
/// consumer retry its declaration ~100 times a second for the whole run,
/// and exit 0. It is a configuration error: exit 2 at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_queue_with_another_max_length_exits_2_at_start() {
    let conn = connect().await;
    let broker = TestBroker::new("maxlen");
    let ch = conn.create_channel().await.expect("channel");
    let mut args = FieldTable::default();
    args.insert(
        "x-max-length".into(),
        lapin::types::AMQPValue::LongLongInt(1000),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        lapin::types::AMQPValue::LongString(broker.dead_letter_exchange.as_str().into()),
    );
    ch.queue_declare(
        broker.model_queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .expect("declaring the model queue with x-max-length 1000");
    // As modelwatch declared it with inbound.queue_max_length = 1000.
    declaration_refused(&broker, "model", "inbound.model_queue", "x-max-length").await;
    declaration_refused(
        &broker,
        "model",
        "inbound.queue_max_length",
        "PRECONDITION_FAILED",
    )
    .await;
}

/// Item 2 (b), (c): a reserved `amq.` queue name was refused by the broker
/// in a loop (2525 log lines in 10 s); `amq.direct` as the exchange was
/// taken for an outage (retry, then exit 1). Both exit 2 naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_or_mistyped_broker_names_exit_2_at_start() {
    let _conn = connect().await;
    let mut broker = TestBroker::new("amqq");
    broker.extra_env.push((
        "MODELWATCH__INBOUND__MODEL_QUEUE".into(),
        format!("amq.{}", broker.prefix),
    ));
    declaration_refused(&broker, "model", "inbound.model_queue", "ACCESS_REFUSED").await;
    let mut broker = TestBroker::new("amqdirect");
    broker
        .extra_env
        .push(("MODELWATCH__BRIDGE__EXCHANGE".into(), "amq.direct".into()));
    declaration_refused(
        &broker,
        "features",
        "bridge.exchange",
        "PRECONDITION_FAILED",
    )
    .await;
}

/// Item 2, at run time: a work queue deleted and declared again with other
/// properties while the consumer runs. The consumer's re-declaration is
/// refused at every attempt: it must back off (the log stays small), not
/// spin (lapin logs an ERROR per refused channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_at_run_time_backs_off_instead_of_spinning() {
    let conn = connect().await;
    let mut broker = TestBroker::new("spin");
    broker
        .extra_env
        .push(("MODELWATCH__BRIDGE__BACKOFF_MAX".into(), "2s".into()));
    let mut model = broker.spawn("model", "model", &[]);
    model.wait_log("inbound consumer started", 1, START).await;
    let ch = conn.create_channel().await.expect("channel");
    // The dead-letter queue comes back without its bound (refused at every
    // re-declaration), then the work queue goes: the consumer is cancelled
    // and must start again.
    let delete = lapin::options::QueueDeleteOptions::default();
    ch.queue_delete(broker.dead_letter_queue.as_str().into(), delete)
        .await
        .expect("deleting the dead-letter queue");
    ch.queue_declare(
        broker.dead_letter_queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declaring it again without a bound");
    ch.queue_delete(broker.model_queue.as_str().into(), delete)
        .await
        .expect("deleting the model queue");
    let before = model.log().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let grown = model.log().len() - before;
    assert!(model.is_running(), "{}", model.report());
    let refusals = model.lines("inequivalent arg").len();
    assert!(
        refusals <= 10 && grown < 20_000,
        "{refusals} refusal lines, log grew {grown} bytes in 5 s: it spins"
    );
    model.stop(STOP).await;
}
