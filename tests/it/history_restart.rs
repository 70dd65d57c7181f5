//! A RabbitMQ restart (`rabbitmqctl stop_app` / `start_app`) while
//! `modelwatch replay --follow` reads the history of a running pipeline:
//! the replay reconnects and continues after its last offset, so every id
//! of the CSV is printed (no gap) and no offset twice; the bridge's resends
//! may print an id twice (counted here), and `--rebuild` removes those.
//!
//! The broker it restarts is a [`PrivateBroker`] the test starts for
//! itself (its own node, port and data under `target/`, stopped and removed
//! on drop, pass or fail): the machine's broker is never touched.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::amqp::*;
use crate::support::history::*;

const SAMPLES: usize = 6_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_follow_continues_across_a_broker_restart() {
    let broker = PrivateBroker::start("history-restart");
    wait_for_broker_at(&broker.url(), Duration::from_secs(30)).await;
    let stream = TestStream::on(&broker, "restart");
    // Declares the stream first, so the follower can attach before the run.
    run_with_history(&stream, &["--count", "1"], &[])
        .finish(Duration::from_secs(60))
        .await
        .assert_exit_ok();
    let mut follower = LineChild::spawn(
        "replay --follow",
        replay_command(&stream, &["--follow", "--key", "metrics"]),
    );
    follower.wait_for_line("\"key\":\"metrics\"", Duration::from_secs(30));

    // About 15 s of samples; the broker goes away 3 s in, for 3 s.
    let mut app = run_with_history(
        &stream,
        &["--count", &SAMPLES.to_string(), "--rate", "400"],
        &[
            ("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", "90s"),
            ("MODELWATCH__BRIDGE__BACKOFF_MAX", "1s"),
        ],
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| broker.stop_app());
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| broker.start_app());
    let running_after_restart = app.is_running();
    assert!(
        running_after_restart,
        "the run ended while the broker was down: no restart mid-run"
    );
    wait_for_broker_at(&broker.url(), Duration::from_secs(30)).await;
    let run = app.finish(Duration::from_secs(180)).await;
    run.assert_exit_ok();
    let csv_ids: Vec<u64> = run.rows().iter().map(|r| r.id).collect();
    assert_eq!(csv_ids.len(), SAMPLES);

    // Wait until the follower printed the last row of the run.
    let last = format!("\"id\":{}", csv_ids.last().unwrap());
    let waited = Instant::now();
    follower.wait_for_line(&last, Duration::from_secs(120));
    eprintln!(
        "the follower printed the last row {:.1} s after the run ended",
        waited.elapsed().as_secs_f64()
    );
    follower.signal("TERM");
    let (status, out) = follower.finish(Duration::from_secs(30));
    assert!(
        status.success(),
        "replay --follow exits 0 at SIGTERM: {status}"
    );
    let lines = parse_lines(&out.join("\n"));
    assert_offsets_increase(&lines);
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for l in &lines {
        *seen.entry(l.id).or_default() += 1;
    }
    let missing = csv_ids.iter().filter(|id| !seen.contains_key(id)).count();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "follow across a restart: {} lines, {} distinct ids, {duplicates} duplicates (bridge resends), {missing} missing",
        lines.len(),
        seen.len()
    );
    assert_eq!(missing, 0, "no gap: every row of the run is printed");

    // The rebuild removes the duplicates by id: the run's rows, once each.
    let dir = tempfile::tempdir().unwrap();
    let rebuilt = dir.path().join("rebuilt");
    replay(
        &stream,
        &["--rebuild", rebuilt.to_str().unwrap()],
        Duration::from_secs(120),
    )
    .ok();
    let rows = read_metric_csv(&rebuilt.join("metric_log.csv"));
    let ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "rebuilt ids are unique");
    assert_eq!(
        ids.len(),
        SAMPLES + 1,
        "the run's rows and the first run's one"
    );
    assert!(csv_ids.iter().all(|id| unique.binary_search(id).is_ok()));
}
