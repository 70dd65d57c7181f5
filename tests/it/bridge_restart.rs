//! A RabbitMQ restart (`rabbitmqctl stop_app` / `start_app`) in the middle of
//! a run at 2000 samples/s: the run finishes cleanly, and a durable queue
//! bound before the run holds every id of the CSV under each routing key.
//! Duplicates (resends after the lost connection) are allowed and counted;
//! a missing id fails.
//!
//! The broker it restarts is a [`PrivateBroker`] the test starts for
//! itself (its own node, port and data under `target/`, stopped and removed
//! on drop, pass or fail): the machine's broker is never touched.

use std::time::{Duration, Instant};

use crate::support::amqp::*;

const SAMPLES: usize = 20_000;
/// A debug build publishes about 3,000 messages/s with confirms, so at 2000
/// samples/s (8000 messages/s) most of the run is buffered and published
/// after the source stops; with the broker away for 10-20 s (stop_app,
/// 3 s, start_app), that takes about 40 s. Generous, yet bounded.
const SHUTDOWN_TIMEOUT: &str = "90s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_run_loses_nothing() {
    let started = Instant::now();
    let broker = PrivateBroker::start("bridge-restart");
    let url = broker.url();
    wait_for_broker_at(&url, Duration::from_secs(30)).await;
    let queue = TestQueue::declare_on(&broker, "restart", "#").await;

    let mut app = App::builder()
        .args(&[
            "--count",
            &SAMPLES.to_string(),
            "--rate",
            "2000",
            "--amqp-url",
            &url,
        ])
        .env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", SHUTDOWN_TIMEOUT)
        .env("MODELWATCH__BRIDGE__BACKOFF_MAX", "1s")
        .start();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(app.is_running(), "the run ended before the restart");

    let t = Instant::now();
    tokio::task::block_in_place(|| broker.stop_app());
    let stopped_at = t.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| broker.start_app());
    let back_at = t.elapsed();
    let running_after_restart = app.is_running();
    // Otherwise the restart was not mid-run and proves nothing.
    assert!(
        running_after_restart,
        "the run ended while the broker was down ({:.1} s after stop_app): no restart mid-run",
        back_at.as_secs_f64()
    );
    wait_for_broker_at(&url, Duration::from_secs(30)).await;

    let run = app.finish(Duration::from_secs(150)).await;
    run.assert_exit_ok();
    let rows = run.rows();
    assert_eq!(rows.len(), SAMPLES);
    let counters = run.counters();

    let msgs = queue.drain(Duration::from_secs(120)).await;
    queue.delete().await;
    let cov = coverage(&rows, &msgs, &ROUTING_KEYS);
    eprintln!(
        "restart: stop_app issued 1.5 s into the run took {:.1} s; the broker was back \
         {:.1} s later (3 s down, then start_app and await_startup), the run still going; \
         the run took {:.1} s",
        stopped_at.as_secs_f64(),
        (back_at - stopped_at).as_secs_f64(),
        run.elapsed.as_secs_f64()
    );
    eprintln!("counters: {}", counters.line);
    eprintln!(
        "restart figures: samples={SAMPLES} messages={} published={} confirmed={} resent={} \
         nacked={} reconnects={} undelivered={} received={} duplicates={} missing={}",
        SAMPLES * 4,
        counters.get("published"),
        counters.get("confirmed"),
        counters.get("resent"),
        counters.get("nacked"),
        counters.get("reconnects"),
        counters.undelivered,
        msgs.len(),
        cov.duplicates(),
        cov.missing()
    );
    eprintln!(
        "ids of the run: {}..={}\ncoverage:\n{}",
        rows.first().unwrap().id,
        rows.last().unwrap().id,
        cov.report()
    );
    assert!(counters.get("reconnects") >= 1, "{}", counters.line);
    assert_eq!(counters.undelivered, 0, "{}", counters.line);
    assert_eq!(cov.unparsable, 0);
    assert_eq!(cov.missing(), 0, "missing ids:\n{}", cov.report());
    eprintln!("broker restart: {:.1} s", started.elapsed().as_secs_f64());
}
