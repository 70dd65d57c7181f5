//! History on the real broker: the pipeline (the real binary, bridge on,
//! `history.enabled`) fills a stream, and `modelwatch replay` reads it back
//! as JSON lines, from a time, with an offset file, or into rebuilt files
//! that equal the live ones. Retention drops old segments; an existing
//! stream with other arguments is used as it is; every refusal exits 2.
//!
//! Each test has a stream and an exchange of its own (unique names,
//! deleted at the end: streams are durable), so runs of other tests on the
//! shared broker never reach it. Run under
//! `flock -s /tmp/modelwatch-broker.lock cargo test --test history`.

mod amqp;
mod history_support;

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use amqp::*;
use history_support::*;

const SAMPLES: usize = 5_000;
const REPLAY_TIMEOUT: Duration = Duration::from_secs(120);

/// An RFC 3339 time for `secs` since the epoch.
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_back_what_the_live_run_wrote() {
    let _lock = broker_lock().await;
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("live");
    // About 8 s of samples, so that a time in the middle splits them.
    let run = run_with_history(&stream, &["--count", "5000", "--rate", "600"], &[])
        .finish(Duration::from_secs(120))
        .await;
    run.assert_exit_ok();
    let rows = run.rows();
    assert_eq!(rows.len(), SAMPLES);
    let csv_ids: Vec<u64> = rows.iter().map(|r| r.id).collect();

    // 1. Everything, metrics only: 5,000 distinct ids, the CSV's values.
    let full = replay(
        &stream,
        &["--from", "first", "--key", "metrics"],
        REPLAY_TIMEOUT,
    )
    .ok();
    assert_eq!(full.lines.len(), SAMPLES, "{}", full.stderr);
    assert!(full.lines.iter().all(|l| l.key == "metrics"));
    assert_eq!(ids(&full.lines).len(), SAMPLES, "distinct ids");
    assert_offsets_increase(&full.lines);
    let printed: Vec<u64> = full.lines.iter().map(|l| l.id).collect();
    assert_eq!(
        printed, csv_ids,
        "the stream holds the rows in the CSV's order"
    );
    for (line, row) in full.lines.iter().zip(&rows) {
        let b = &line.body;
        assert_eq!(b["y_true"].as_f64(), Some(row.y_true), "id {}", row.id);
        assert_eq!(b["y_pred"].as_f64(), Some(row.y_pred), "id {}", row.id);
        assert_eq!(
            b["absolute_error"].as_f64(),
            Some(row.absolute_error),
            "id {}",
            row.id
        );
    }

    // 2. Every key: the four kinds of each sample.
    let all = replay(&stream, &[], REPLAY_TIMEOUT).ok();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for l in &all.lines {
        *per_key.entry(l.key.as_str()).or_default() += 1;
    }
    assert_eq!(per_key.len(), 4, "{per_key:?}");
    assert!(per_key.values().all(|n| *n == SAMPLES), "{per_key:?}");
    assert_offsets_increase(&all.lines);

    // 3. From a time in the middle: only the later ones, a tail of the CSV.
    // Ids are microseconds since the epoch at emission: the second after
    // the middle row's.
    let middle = csv_ids[SAMPLES / 2] / 1_000_000 + 1;
    let later = replay(
        &stream,
        &["--from", &rfc3339(middle), "--key", "metrics"],
        REPLAY_TIMEOUT,
    )
    .ok();
    let n = later.lines.len();
    eprintln!(
        "--from {}: {n} of {SAMPLES} rows (the middle row is {})",
        rfc3339(middle),
        SAMPLES / 2
    );
    assert!(n > 0 && n < SAMPLES, "{n} rows from the middle");
    let tail: Vec<u64> = later.lines.iter().map(|l| l.id).collect();
    assert_eq!(tail, csv_ids[SAMPLES - n..], "a tail of the CSV, in order");
    let first_after = csv_ids
        .iter()
        .position(|id| *id >= middle * 1_000_000)
        .unwrap();
    assert!(
        SAMPLES - n <= first_after,
        "every row emitted after {} is printed (from row {}, first after is row {first_after})",
        rfc3339(middle),
        SAMPLES - n
    );

    // 4. Rebuild: metric_log.csv equal to the live one, byte for byte; the
    // labels the same messages; a picture.
    let dir = tempfile::tempdir().unwrap();
    let rebuilt = dir.path().join("rebuilt");
    let r = replay(
        &stream,
        &["--rebuild", rebuilt.to_str().unwrap()],
        REPLAY_TIMEOUT,
    )
    .ok();
    assert!(r.lines.is_empty(), "--rebuild prints no lines");
    assert_eq!(
        bytes(&rebuilt.join("metric_log.csv")),
        bytes(&run.logs_dir().join("metric_log.csv")),
        "the rebuilt metric_log.csv equals the live one"
    );
    let labels = |p: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_to_string(p.join("labels_log.txt"))
            .unwrap()
            .lines()
            .map(|l| l.split_once(' ').unwrap().1.to_owned())
            .collect();
        v.sort();
        v
    };
    let live_labels = labels(&run.logs_dir());
    assert_eq!(live_labels.len(), 2 * SAMPLES);
    assert_eq!(
        labels(&rebuilt),
        live_labels,
        "the same label lines, times aside"
    );
    let png = bytes(&rebuilt.join("error_distribution.png"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000);

    // A second rebuild into the same folder adds nothing: dedup by id.
    replay(
        &stream,
        &["--rebuild", rebuilt.to_str().unwrap()],
        REPLAY_TIMEOUT,
    )
    .ok();
    assert_eq!(
        bytes(&rebuilt.join("metric_log.csv")),
        bytes(&run.logs_dir().join("metric_log.csv")),
    );

    // 5. Resume: half up to a time, then the rest; together exactly once.
    let offsets = dir.path().join("replay.offset");
    let offsets = offsets.to_str().unwrap();
    let first_half = replay(
        &stream,
        &[
            "--key",
            "metrics",
            "--until",
            &rfc3339(middle),
            "--from-offset-file",
            offsets,
        ],
        REPLAY_TIMEOUT,
    )
    .ok();
    let saved: u64 = std::fs::read_to_string(offsets)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let rest = replay(
        &stream,
        &["--key", "metrics", "--from-offset-file", offsets],
        REPLAY_TIMEOUT,
    )
    .ok();
    let (a, b) = (first_half.lines.len(), rest.lines.len());
    eprintln!(
        "resume: {a} rows up to {}, saved offset {saved}, then {b}",
        rfc3339(middle)
    );
    assert!(a > 0 && b > 0, "two halves: {a} then {b}");
    assert!(first_half.lines.iter().all(|l| l.offset <= saved));
    assert!(rest.lines.iter().all(|l| l.offset > saved));
    let together: Vec<u64> = first_half
        .lines
        .iter()
        .chain(&rest.lines)
        .map(|l| l.id)
        .collect();
    assert_eq!(together, csv_ids, "exactly once, in order");
    // At the end, nothing more: the offset file is past the last message.
    let again = replay(
        &stream,
        &["--key", "metrics", "--from-offset-file", offsets],
        REPLAY_TIMEOUT,
    )
    .ok();
    assert!(again.lines.is_empty());

    // A time after the last message (a past time, yet past the end):
    // nothing to print, and the replay ends.
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let after = replay(&stream, &["--from", &rfc3339(now)], REPLAY_TIMEOUT).ok();
    assert!(after.lines.is_empty());

    // 6. An offset past the end, and a time in the future: exit 2.
    let end = all.lines.last().unwrap().offset;
    let past = (end + 2).to_string();
    let e = replay(&stream, &["--from", &past], REPLAY_TIMEOUT).refused();
    assert!(e.contains("past the end"), "{e}");
    let future = rfc3339(csv_ids[SAMPLES - 1] / 1_000_000 + 3600);
    let e = replay(&stream, &["--from", &future], REPLAY_TIMEOUT).refused();
    assert!(e.contains("future"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_2_with_a_clear_message() {
    let _lock = broker_lock().await;
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("refusals");

    // No such stream (history never turned on for it).
    let e = replay(&stream, &[], REPLAY_TIMEOUT).refused();
    assert!(
        e.contains("no such stream") && e.contains(&stream.name),
        "{e}"
    );
    // An unknown key, a time in the future, --until before --from.
    let e = replay(
        &stream,
        &["--key", "metrics", "--key", "metric"],
        REPLAY_TIMEOUT,
    )
    .refused();
    assert!(
        e.contains("unknown routing key") && e.contains("metric"),
        "{e}"
    );
    let e = replay(&stream, &["--from", "2999-01-01T00:00:00Z"], REPLAY_TIMEOUT).refused();
    assert!(e.contains("future"), "{e}");
    let e = replay(
        &stream,
        &["--until", "2999-01-01T00:00:00Z"],
        REPLAY_TIMEOUT,
    )
    .refused();
    assert!(e.contains("future"), "{e}");
    let e = replay(
        &stream,
        &[
            "--from",
            "2026-01-02T00:00:00Z",
            "--until",
            "2026-01-01T00:00:00Z",
        ],
        REPLAY_TIMEOUT,
    )
    .refused();
    assert!(e.contains("before"), "{e}");
    let e = replay(&stream, &["--from", "yesterday"], REPLAY_TIMEOUT).refused();
    assert!(e.contains("--from"), "{e}");

    // Replay with the bridge off: history is on RabbitMQ.
    let off = replay_command_without_bridge(&stream, &[]);
    let e = replay_with(off, REPLAY_TIMEOUT).refused();
    assert!(e.contains("bridge"), "{e}");

    // `run` with history on and the bridge off.
    let run = App::builder()
        .args(&["--count", "10"])
        .env("MODELWATCH__HISTORY__ENABLED", "true")
        .start()
        .finish(Duration::from_secs(30))
        .await;
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr());
    assert!(run.stderr().contains("history.enabled"), "{}", run.stderr());

    // `run` whose history.queue is a classic queue: not a stream.
    let classic = TestQueue::declare("history-classic", "none").await;
    let run = App::builder()
        .args(&["--count", "10", "--amqp-url", BROKER_URL])
        .env("MODELWATCH__HISTORY__ENABLED", "true")
        .env("MODELWATCH__HISTORY__QUEUE", &classic.name)
        .env("MODELWATCH__BRIDGE__EXCHANGE", &stream.name)
        .start()
        .finish(Duration::from_secs(60))
        .await;
    // Nor does replay read it (a consumer would take its messages away).
    let classic_stream = TestStream {
        name: classic.name.clone(),
    };
    let e = replay(&classic_stream, &[], REPLAY_TIMEOUT).refused();
    std::mem::forget(classic_stream); // the queue is the TestQueue's to delete
    classic.delete().await;
    assert!(e.contains("not a stream"), "{e}");
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr());
    let err = run.stderr();
    assert!(
        err.contains("history.queue") && err.contains("not a stream"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_segments() {
    let _lock = broker_lock().await;
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("retention");
    // 8,000 messages of about 200 bytes (1.6 MB) into 4 KiB segments, 64 KiB
    // kept: the broker drops the oldest segments as new ones start.
    let run = run_with_history(
        &stream,
        &["--count", "2000", "--rate", "0"],
        &[
            ("MODELWATCH__HISTORY__SEGMENT_BYTES", "4096"),
            ("MODELWATCH__HISTORY__MAX_BYTES", "65536"),
        ],
    )
    .finish(Duration::from_secs(120))
    .await;
    run.assert_exit_ok();
    let csv_ids: Vec<u64> = run.rows().iter().map(|r| r.id).collect();
    assert_eq!(csv_ids.len(), 2000);
    let kept = replay(
        &stream,
        &["--from", "first", "--key", "metrics"],
        REPLAY_TIMEOUT,
    )
    .ok();
    let all = replay(&stream, &["--from", "first"], REPLAY_TIMEOUT).ok();
    let n = kept.lines.len();
    eprintln!(
        "retention: {n} of 2000 metrics rows and {} of 8000 messages remain; the first offset is {}",
        all.lines.len(),
        all.lines.first().map_or(0, |l| l.offset)
    );
    assert!(n > 0 && n < 2000 / 4, "{n} rows remain");
    assert!(
        all.lines.first().unwrap().offset > 0,
        "replay from first starts later"
    );
    let tail: Vec<u64> = kept.lines.iter().map(|l| l.id).collect();
    assert_eq!(
        tail,
        csv_ids[2000 - n..],
        "what remains is the newest, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_with_other_arguments_is_used_as_it_is() {
    let _lock = broker_lock().await;
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("other-args");
    let first = run_with_history(
        &stream,
        &["--count", "100"],
        &[("MODELWATCH__HISTORY__MAX_AGE", "7D")],
    )
    .finish(Duration::from_secs(60))
    .await;
    first.assert_exit_ok();
    let second = run_with_history(
        &stream,
        &["--count", "100"],
        &[("MODELWATCH__HISTORY__MAX_AGE", "1D")],
    )
    .finish(Duration::from_secs(60))
    .await;
    second.assert_exit_ok();
    let log = second.log();
    assert_eq!(
        count_lines(&log, "history stream exists with other arguments"),
        1,
        "the difference is logged once:\n{}",
        tail(&log, 20)
    );
    assert!(log.contains("x-max-age"), "{}", tail(&log, 20));
    let lines = replay(&stream, &["--key", "metrics"], REPLAY_TIMEOUT)
        .ok()
        .lines;
    let mut expected: Vec<u64> = first.rows().iter().map(|r| r.id).collect();
    expected.extend(second.rows().iter().map(|r| r.id));
    assert_eq!(lines.iter().map(|l| l.id).collect::<Vec<_>>(), expected);

    // Backfill, as a late observer calls it: the last 50 metrics, in order.
    let source = modelwatch::history::StreamSource {
        bridge: modelwatch::config::BridgeSettings {
            enabled: true,
            url: BROKER_URL.into(),
            exchange: stream.exchange().into(),
            ..Default::default()
        },
        queue: stream.name.clone(),
        prefetch: 1000,
        max_body_bytes: 65_536,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let recent = modelwatch::history::read_recent(&source, &["metrics"], 50, deadline)
        .await
        .unwrap();
    let recent_ids: Vec<u64> = recent.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(recent_ids, expected[expected.len() - 50..]);
    // More than the stream holds: all of them.
    let all = modelwatch::history::read_recent(&source, &["metrics", "y_true"], 1000, deadline)
        .await
        .unwrap();
    assert_eq!(all.len(), 400, "200 samples, two keys");
}
