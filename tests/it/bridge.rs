//! The outbound bridge against the real RabbitMQ on 127.0.0.1:5672: what
//! reaches a queue bound to `ml_pipeline` (ids, bodies, properties), through
//! a proxy that cuts the connection at random moments, with the broker
//! unreachable, with a small `drop_oldest` buffer, and the legacy queues of
//! the Python services.
//!
//! No test skips itself without a broker: they fail, saying so. The tests
//! that publish to the broker take [`broker_lock`], so that no queue
//! bound with `#` sees another test's run. The broker-restart test is in
//! `bridge_restart.rs` (on a private broker).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::amqp::*;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const BROKER_WAIT: Duration = Duration::from_secs(20);
/// A debug build publishes about 3,000 messages/s with confirms (4 per
/// sample), behind a fast source: the shutdown wait must cover the backlog,
/// with room for a busy machine. A healthy run ends long before.
const SHUTDOWN_TIMEOUT: &str = "60s";
/// Hard limit of a run: past it, it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Prints how long a test took, not counting its wait for the broker lock.
fn done(test: &str, started: Instant, locked: Instant) {
    eprintln!(
        "{test}: {:.1} s (+ {:.1} s waiting for the broker lock)",
        locked.elapsed().as_secs_f64(),
        (locked - started).as_secs_f64()
    );
}

/// Every sample of a 5000-sample run reaches a queue bound with `#`, under
/// each routing key, with the wire format and properties of the design, and
/// the values the CSV holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_reaches_a_bound_queue_in_the_wire_format() {
    let started = Instant::now();
    let _serial = broker_lock().await;
    let locked = Instant::now();
    wait_for_broker(BROKER_WAIT).await;
    let queue = TestQueue::declare("wire", "#").await;

    let run = App::builder()
        .args(&[
            "--count",
            "5000",
            "--rate",
            "0",
            "--seed",
            "11",
            "--amqp-url",
            BROKER_URL,
        ])
        .env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", SHUTDOWN_TIMEOUT)
        .start()
        .finish(RUN_TIMEOUT)
        .await;
    run.assert_exit_ok();
    let rows = run.rows();
    assert_eq!(rows.len(), 5000);
    let counters = run.counters();
    eprintln!("counters: {}", counters.line);
    assert_eq!(
        counters.get("accepted"),
        20_000 + counters.monitor_messages(),
        "{}",
        counters.line
    );
    assert_eq!(counters.undelivered, 0, "{}", counters.line);

    let msgs = queue.drain(Duration::from_secs(60)).await;
    queue.delete().await;
    let cov = coverage(&rows, &msgs, &ROUTING_KEYS);
    eprintln!("coverage:\n{}", cov.report());
    assert_eq!(cov.missing(), 0, "missing ids:\n{}", cov.report());
    assert_eq!(cov.unparsable, 0, "bodies that are not JSON with an id");
    for (key, k) in &cov.keys {
        assert_eq!(k.distinct, 5000, "{key}");
    }
    // At-least-once: a copy is only ever the resend of an unconfirmed message.
    let resent = counters.get("resent");
    assert!(
        cov.duplicates() as u64 <= resent,
        "{} duplicates but only {resent} resends:\n{}",
        cov.duplicates(),
        cov.report()
    );

    let by_id: std::collections::HashMap<u64, Row> = rows.iter().map(|r| (r.id, *r)).collect();
    let mut checked = 0;
    for m in &msgs {
        let json = m.json.as_ref().expect("checked above");
        let id = m.id().expect("checked above");
        let Some(row) = by_id.get(&id) else {
            continue; // another process publishing to ml_pipeline
        };
        let what = format!("{} message {}", m.routing_key, m.body_text());
        assert_eq!(
            m.message_id.as_deref(),
            Some(id.to_string().as_str()),
            "{what}"
        );
        assert_eq!(m.kind.as_deref(), Some(m.routing_key.as_str()), "{what}");
        assert_eq!(
            m.content_type.as_deref(),
            Some("application/json"),
            "{what}"
        );
        assert_eq!(m.delivery_mode, Some(2), "{what}");
        assert!(m.timestamp.is_some_and(|t| t > 1_600_000_000), "{what}");
        assert!(
            m.app_id
                .as_deref()
                .is_some_and(|a| a.starts_with("modelwatch")),
            "{what}: app_id {:?}",
            m.app_id
        );
        let obj = json.as_object().expect("a JSON object");
        assert_eq!(obj.len(), 2, "{what}: only id and body");
        let body = &json["body"];
        let num = |v: &serde_json::Value| {
            v.as_f64()
                .unwrap_or_else(|| panic!("{what}: {v} is not a number"))
        };
        match m.routing_key.as_str() {
            "features" => {
                // sklearn's scaled features of a data row whose target and
                // sklearn prediction are what the CSV holds for this id
                let xs: Vec<f64> = body
                    .as_array()
                    .unwrap_or_else(|| panic!("{what}"))
                    .iter()
                    .map(num)
                    .collect();
                let i = oracle::row_of_features(&xs)
                    .unwrap_or_else(|| panic!("{what}: not the scaled features of a data row"));
                let expected = oracle::rows()[i];
                assert_eq!(expected.target, row.y_true, "{what}: row {i}, CSV {row:?}");
                assert!(
                    (expected.prediction - row.y_pred).abs() <= oracle::PREDICTION_TOLERANCE,
                    "{what}: sklearn predicts {} for row {i}, CSV {row:?}",
                    expected.prediction
                );
            }
            "y_true" => assert_eq!(num(body).to_bits(), row.y_true.to_bits(), "{what}"),
            "y_pred" => assert_eq!(num(body).to_bits(), row.y_pred.to_bits(), "{what}"),
            "metrics" => {
                assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{what}");
                assert_eq!(
                    num(&body["y_true"]).to_bits(),
                    row.y_true.to_bits(),
                    "{what}"
                );
                assert_eq!(
                    num(&body["y_pred"]).to_bits(),
                    row.y_pred.to_bits(),
                    "{what}"
                );
                assert_eq!(
                    num(&body["absolute_error"]).to_bits(),
                    row.absolute_error.to_bits(),
                    "{what}"
                );
            }
            other => panic!("unexpected routing key {other:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 20_000, "checked {checked} messages");
    done("wire format", started, locked);
}

/// A TCP proxy that forwards to the broker and drops every live connection
/// after each of `gaps` in turn. Stops when [`ChaosProxy::stop`] is called
/// or when it is dropped.
struct ChaosProxy {
    port: u16,
    cuts_done: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ChaosProxy {
    async fn start(upstream: SocketAddr, gaps: Vec<Duration>) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        let cuts_done = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        // Each cut bumps this; every connection task watches it.
        let (cut_tx, cut_rx) = watch::channel(0u64);

        let serve = {
            let stop = stop.clone();
            let connections = connections.clone();
            async move {
                let mut live = JoinSet::new();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        accepted = listener.accept() => {
                            let Ok((mut client, _)) = accepted else { continue };
                            connections.fetch_add(1, Ordering::Relaxed);
                            let mut cut = cut_rx.clone();
                            cut.borrow_and_update();
                            live.spawn(async move {
                                let Ok(mut server) = TcpStream::connect(upstream).await else {
                                    return;
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                    // Dropping both sockets cuts the connection mid-stream.
                                    _ = cut.changed() => {}
                                }
                            });
                        }
                        Some(_) = live.join_next(), if !live.is_empty() => {}
                    }
                }
                live.shutdown().await;
            }
        };
        let cutter = {
            let stop = stop.clone();
            let cuts_done = cuts_done.clone();
            async move {
                for gap in gaps {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(gap) => {}
                    }
                    cut_tx.send_modify(|n| *n += 1);
                    cuts_done.fetch_add(1, Ordering::Relaxed);
                }
                // Keep the sender, so connections are not cut by its drop.
                stop.cancelled().await;
            }
        };
        let task = tokio::spawn(async move {
            tokio::join!(serve, cutter);
        });
        ChaosProxy {
            port,
            cuts_done,
            connections,
            stop,
            task: Some(task),
        }
    }

    /// Stops the proxy and waits for it; returns (cuts, connections).
    async fn stop(&mut self) -> (u64, u64) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("proxy stops within 5 s")
                .expect("proxy task");
        }
        (
            self.cuts_done.load(Ordering::Relaxed),
            self.connections.load(Ordering::Relaxed),
        )
    }
}

/// The seed of the proxy's cut timings: `MODELWATCH_TEST_SEED` to replay a
/// run, else a fresh one. Printed either way.
fn test_seed() -> u64 {
    let seed = match std::env::var("MODELWATCH_TEST_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("MODELWATCH_TEST_SEED={v:?} is not a u64")),
        Err(_) => rand::rng().random(),
    };
    eprintln!("seed: {seed} (replay with MODELWATCH_TEST_SEED={seed})");
    seed
}

/// `n` random durations in `ms` milliseconds.
fn random_gaps(rng: &mut impl Rng, n: usize, ms: std::ops::Range<u64>) -> Vec<Duration> {
    (0..n)
        .map(|_| Duration::from_millis(rng.random_range(ms.clone())))
        .collect()
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Connections cut at random moments between the app and the broker: the
/// run ends within its shutdown deadline, and a durable queue read directly
/// from the broker (not through the proxy) holds every id.
///
/// The cuts come as a burst 30-300 ms apart (many land while a connection
/// opens, declares or publishes its first messages), then 8 cuts 300-900 ms
/// apart. A run killed at `RUN_TIMEOUT` whose log ends with "broker
/// connection lost" hung after losing a connection; seen with the publisher
/// awaiting `Connection::close` on a connection whose I/O had just failed,
/// which lapin never resolves, outside any deadline. The shutdown deadline
/// must bound that wait too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cuts_lose_nothing() {
    let started = Instant::now();
    let _serial = broker_lock().await;
    let locked = Instant::now();
    wait_for_broker(BROKER_WAIT).await;
    let queue = TestQueue::declare("cuts", "#").await;
    // A burst of quick cuts (some land on a connection still opening or
    // declaring), then cuts far enough apart that publishing resumes between.
    let mut rng = rand::rngs::StdRng::seed_from_u64(test_seed());
    let gaps = random_gaps(&mut rng, 40, 30..300)
        .into_iter()
        .chain(random_gaps(&mut rng, 8, 300..900))
        .collect();
    let mut proxy = ChaosProxy::start("127.0.0.1:5672".parse().unwrap(), gaps).await;
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);

    let run = App::builder()
        .args(&["--count", "10000", "--rate", "2500", "--amqp-url", &url])
        .env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", SHUTDOWN_TIMEOUT)
        .env("MODELWATCH__BRIDGE__BACKOFF_MAX", "1s")
        .start()
        .finish(RUN_TIMEOUT)
        .await;
    let (cuts, connections) = proxy.stop().await;
    run.assert_exit_ok();
    let rows = run.rows();
    assert_eq!(rows.len(), 10_000);
    let counters = run.counters();
    eprintln!(
        "proxy: {cuts} cuts, {connections} connections; run {:.1} s\ncounters: {}",
        run.elapsed.as_secs_f64(),
        counters.line
    );
    assert!(cuts >= 3, "the proxy cut only {cuts} times");
    assert!(counters.get("reconnects") >= 1, "{}", counters.line);
    assert_eq!(counters.undelivered, 0, "{}", counters.line);

    let msgs = queue.drain(Duration::from_secs(60)).await;
    queue.delete().await;
    let cov = coverage(&rows, &msgs, &ROUTING_KEYS);
    eprintln!(
        "coverage (published={} resent={} duplicates={} missing={}):\n{}",
        counters.get("published"),
        counters.get("resent"),
        cov.duplicates(),
        cov.missing(),
        cov.report()
    );
    assert_eq!(cov.missing(), 0, "missing ids:\n{}", cov.report());
    assert_eq!(cov.unparsable, 0);
    done("connection cuts", started, locked);
}

/// No broker at all: the run still finishes quickly with every row, says
/// once that the broker is unreachable, and reports what it could not
/// deliver, with exit code 1 (0 means everything was delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_does_not_hold_the_pipeline_up() {
    let started = Instant::now();
    let run = App::builder()
        .args(&[
            "--count",
            "2000",
            "--rate",
            "0",
            "--amqp-url",
            UNREACHABLE_URL,
        ])
        .env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", "2s")
        .start()
        .finish(Duration::from_secs(30))
        .await;
    assert_eq!(run.status.code(), Some(1), "{}", tail(&run.stderr(), 20));
    assert_eq!(run.rows().len(), 2000);
    let log = run.log();
    let counters = run.counters();
    eprintln!(
        "run {:.1} s; counters: {}; undelivered={}",
        run.elapsed.as_secs_f64(),
        counters.line,
        counters.undelivered
    );
    // The source is never held up by the bridge: 2000 samples take well
    // under a second; the run then waits at most the 2 s shutdown timeout.
    let source = log
        .lines()
        .find(|l| l.contains("source finished"))
        .unwrap_or_else(|| panic!("no \"source finished\" line:\n{}", tail(&log, 30)));
    let source_secs: f64 = source
        .split_whitespace()
        .find_map(|t| t.strip_prefix("secs="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no secs= in {source:?}"));
    assert!(
        source_secs < 3.0,
        "the source took {source_secs} s: {source}"
    );
    assert!(
        run.elapsed < Duration::from_secs(8),
        "the run took {:?} with a 2 s shutdown timeout",
        run.elapsed
    );
    let said = format!(
        "modelwatch: error: not everything was delivered: {} messages not confirmed",
        8000 + counters.monitor_messages()
    );
    assert!(
        run.stderr().contains(&said),
        "stderr names the undelivered count:\n{}",
        tail(&run.stderr(), 10)
    );
    let all = 8000 + counters.monitor_messages();
    assert_eq!(counters.get("accepted"), all, "{}", counters.line);
    assert_eq!(counters.get("confirmed"), 0, "{}", counters.line);
    assert_eq!(
        counters.undelivered, all,
        "4 messages per sample and the monitor's, none sent"
    );
    assert_eq!(
        count_lines(&log, "broker unreachable"),
        1,
        "logged once, not per retry:\n{}",
        tail(&log, 30)
    );
    assert!(!log.contains("guest:guest"), "the password is redacted");
    done("unreachable broker", started, started);
}

/// `drop_oldest` with a small buffer and no broker: every row is still
/// written, and what was dropped is counted: nothing vanishes silently, and
/// the exit code (1) says that not everything was delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_counts_what_it_drops() {
    let started = Instant::now();
    let run = App::builder()
        .args(&[
            "--count",
            "2000",
            "--rate",
            "0",
            "--amqp-url",
            UNREACHABLE_URL,
        ])
        .env("MODELWATCH__BRIDGE__BUFFER", "100")
        .env("MODELWATCH__BRIDGE__ON_FULL", "drop_oldest")
        .env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", "1s")
        .start()
        .finish(Duration::from_secs(30))
        .await;
    assert_eq!(run.status.code(), Some(1), "{}", tail(&run.stderr(), 20));
    assert_eq!(run.rows().len(), 2000);
    let log = run.log();
    let counters = run.counters();
    eprintln!(
        "counters: {}; undelivered={}",
        counters.line, counters.undelivered
    );
    let said = format!(
        "{} messages not confirmed by the broker, {} dropped from the full buffer",
        counters.undelivered,
        counters.get("dropped")
    );
    assert!(
        run.stderr().contains(&said),
        "stderr says {said:?}:\n{}",
        tail(&run.stderr(), 10)
    );
    let dropped = counters.get("dropped");
    assert!(dropped > 0, "{}", counters.line);
    let all = 8000 + counters.monitor_messages();
    assert_eq!(counters.get("accepted"), all, "{}", counters.line);
    assert_eq!(
        dropped + counters.undelivered,
        all,
        "every message is dropped (counted) or reported undelivered: {}",
        counters.line
    );
    assert_eq!(
        count_lines(&log, "bridge buffer full"),
        1,
        "one full episode, logged once:\n{}",
        tail(&log, 30)
    );
    done("drop_oldest", started, started);
}

/// The queues of the original Python services get the messages, and a
/// plain pika `queue_declare(queue=...)` of them still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_queues_keep_the_python_services_working() {
    let started = Instant::now();
    // The fixed legacy queue names: on a node of this test's own, so the
    // machine's `features`, `y_true`, `y_pred` are never filled or purged.
    let node = PrivateBroker::start("bridge-legacy");
    let url = node.url();
    let locked = Instant::now();
    wait_for_broker_at(&url, BROKER_WAIT).await;
    let run = App::builder()
        .args(&["--count", "300", "--rate", "0", "--amqp-url", &url])
        .env(LEGACY_QUEUES_KEY, "true")
        .env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", SHUTDOWN_TIMEOUT)
        .start()
        .finish(RUN_TIMEOUT)
        .await;
    run.assert_exit_ok();
    let rows = run.rows();
    assert_eq!(rows.len(), 300);

    // What the Python services do: a plain declare, then read a message.
    let script = r#"
import json, sys, pika
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
for name in ("features", "y_true", "y_pred"):
    ok = ch.queue_declare(queue=name)
    method, props, body = ch.basic_get(queue=name, auto_ack=False)
    assert method is not None, name + " is empty"
    msg = json.loads(body)
    assert set(msg) == {"id", "body"}, msg
    print(name, ok.method.message_count, msg["id"])
conn.close()  # the unacked messages go back to their queues
"#;
    let pika_url = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(python_with_pika());
        cmd.args(["-c", script, &pika_url]);
        run_bounded("pika redeclare script", cmd, Duration::from_secs(60))
    })
    .await
    .unwrap();
    let stdout = out.unwrap_or_else(|e| panic!("pika redeclare failed: {e}"));
    eprintln!("pika: {stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "one line per legacy queue: {stdout}");
    let ids: std::collections::HashSet<String> = rows.iter().map(|r| r.id.to_string()).collect();
    for (line, q) in lines.iter().zip(LEGACY_QUEUES) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 3, "{line:?}");
        assert_eq!(f[0], q, "{line:?}");
        assert_eq!(
            f[1], "300",
            "{q}: the run's 300 messages, nothing else: {line:?}"
        );
        assert!(ids.contains(f[2]), "{q}: id of another run: {line:?}");
    }

    for q in LEGACY_QUEUES {
        let msgs = drain_queue_at(&url, q, Duration::from_secs(30)).await;
        let cov = coverage(&rows, &msgs, &[q]);
        eprintln!("legacy queue {q}:\n{}", cov.report());
        assert_eq!(cov.missing(), 0, "{q}:\n{}", cov.report());
        assert_eq!(cov.keys[q].distinct, 300, "{q}");
    }
    done("legacy queues", started, locked);
}
