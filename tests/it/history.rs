//! History on the real broker: the pipeline (the real binary, bridge on,
//! `history.enabled`) fills a stream, and `modelwatch replay` reads it back
//! as JSON lines, from a time, with an offset file, or into rebuilt files
//! that equal the live ones. Retention drops old segments; an existing
//! stream with other arguments is used as it is; every refusal exits 2.
//!
//! Each test has a stream and an exchange of its own (unique names,
//! deleted at the end: streams are durable), so runs of other tests on the
//! shared broker never reach it, and they run at the same time as the
//! rest of the suite (`cargo test --test it history::`).

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use crate::support::amqp::*;
use crate::support::history::*;
use crate::support::process::Proc;

const SAMPLES: usize = 5_000;
const REPLAY_TIMEOUT: Duration = Duration::from_secs(120);

/// An RFC 3339 time for `secs` since the epoch.
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_back_what_the_live_run_wrote() {
    // On a node of its own: `--from TIME` compares the ids (this machine's
    // clock) with the stream's chunk times (the broker's Erlang clock), and
    // a long-running broker's Erlang clock can lag the machine's after the
    // machine's clock moved (8 s seen on the shared one on 2026-12-03:
    // then no time in the run selected anything). A fresh node's does not.
    let broker = crate::support::private_broker::PrivateBroker::start("history-live");
    let stream = TestStream::on(&broker, "live");
    // About 8 s of samples, so that a time in the middle splits them.
    let run = run_with_history(&stream, &["--count", "5000", "--rate", "600"], &[])
        .finish(Duration::from_secs(120))
        .await;
    run.assert_exit_ok();
    // The stream's checks (is it a stream?) refuse nothing on a stream
    // declared as the history keys say: no ERROR line at start (lapin
    // logs a refused declaration as one).
    assert!(
        error_lines(&run.stderr()).is_empty(),
        "a run with history on logs no ERROR:\n{}",
        error_lines(&run.stderr()).join("\n")
    );
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
    assert!(
        error_lines(&full.stderr).is_empty(),
        "a replay logs no ERROR:\n{}",
        full.stderr
    );
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

    // 2. Every key: the four kinds of each sample, and the monitor's one
    // message per window of 500 (and alert events, if a rule fired).
    let all = replay(&stream, &[], REPLAY_TIMEOUT).ok();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for l in &all.lines {
        *per_key.entry(l.key.as_str()).or_default() += 1;
    }
    for key in ["features", "y_true", "y_pred", "metrics"] {
        assert_eq!(per_key.get(key), Some(&SAMPLES), "{key}: {per_key:?}");
    }
    assert_eq!(
        per_key.get("monitor"),
        Some(&(SAMPLES / 500)),
        "{per_key:?}"
    );

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
    // A rebuild resumes from its folder, not from an offset file (its
    // monitor must start at the first row); nothing is created.
    let dir = tempfile::tempdir().unwrap();
    let (rebuilt, offsets) = (dir.path().join("r"), dir.path().join("o"));
    let e = replay(
        &stream,
        &[
            "--rebuild",
            rebuilt.to_str().unwrap(),
            "--from-offset-file",
            offsets.to_str().unwrap(),
        ],
        REPLAY_TIMEOUT,
    )
    .refused();
    assert!(
        e.contains("--from-offset-file") && e.contains("--rebuild"),
        "{e}"
    );
    assert!(!rebuilt.exists() && !offsets.exists());

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
    let classic_stream = TestStream::named(&classic.name);
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
        history: Default::default(),
        prefetch: 1000,
        max_body_bytes: 65_536,
        max_batch_bytes: 1 << 20,
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

/// `metrics_over_time.csv` as (header, rows of fields).
fn over_time(logs: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
    let mut lines = text.lines();
    let split = |l: &str| l.split(',').map(String::from).collect::<Vec<_>>();
    let header = split(lines.next().expect("a header"));
    (header, lines.map(split).collect())
}

/// `alerts.jsonl` as (rule, state, seq) in file order.
fn alert_events(logs: &std::path::Path) -> Vec<(String, String, u64)> {
    std::fs::read_to_string(logs.join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["rule"].as_str().unwrap().to_owned(),
                v["state"].as_str().unwrap().to_owned(),
                v["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A scenario run with history on (so alerts fire), then `replay
/// --rebuild`: the monitor's files come back by the live monitor's code.
/// `metrics_over_time.csv` equals the live one on every column but
/// `end_time` and `period_*` (they depend on the clock), `alerts.jsonl`
/// has the same rule/state/seq events, `error_distribution.png` (with the
/// baseline line) is the live one byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_makes_the_monitors_files_again() {
    rebuild_makes_the_monitors_files_again_from(&[]).await;
}

/// The same from a stream of batch messages (`bridge.batch`): the reader
/// takes each batch apart, one entry per sample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_from_batch_messages_makes_the_same_files() {
    rebuild_makes_the_monitors_files_again_from(&[
        ("MODELWATCH__BRIDGE__BATCH", "true"),
        ("MODELWATCH__BRIDGE__LEGACY_QUEUES", "false"),
    ])
    .await;
}

async fn rebuild_makes_the_monitors_files_again_from(env: &[(&str, &str)]) {
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("monitor");
    let run = run_with_history(
        &stream,
        &[
            "--count",
            "6000",
            "--rate",
            "1000",
            "--seed",
            "11",
            "--scenario",
            "start=3000,bmi+=10",
        ],
        env,
    )
    .finish(Duration::from_secs(120))
    .await;
    run.assert_exit_ok();
    let live = run.logs_dir();
    // The live monitor is an observer: equality needs it to have taken in
    // every record (a debug build beside the bridge on 2 cores can miss).
    let missed = Scrape::final_of(&live).count(
        "modelwatch_observer_dropped_total",
        &[("observer", "monitor")],
    );
    assert_eq!(
        missed, 0,
        "the live monitor missed records: the run is too fast here"
    );
    let (header, live_rows) = over_time(&live);
    assert_eq!(live_rows.len(), 12, "6,000 samples, windows of 500");
    let live_alerts = alert_events(&live);
    assert!(
        live_alerts.iter().any(|(_, state, _)| state == "fired"),
        "the scenario fires alerts: {live_alerts:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let rebuilt = dir.path().join("rebuilt");
    // From the live run's folder: the same model (fitted in memory there,
    // no artifact), so the same baseline.
    let mut cmd = replay_command(&stream, &["--rebuild", rebuilt.to_str().unwrap()]);
    cmd.current_dir(live.parent().unwrap());
    let r = replay_with(cmd, REPLAY_TIMEOUT).ok();
    assert!(r.lines.is_empty(), "--rebuild prints no lines");
    if !env.is_empty() {
        // Batches in the stream: far fewer messages than samples, and
        // every sample of each kind read back from them.
        let all = replay(&stream, &["--from", "first"], REPLAY_TIMEOUT).ok();
        let of = |key: &str| all.lines.iter().filter(|l| l.key == key).count();
        for key in ["features", "y_true", "y_pred", "metrics"] {
            assert_eq!(of(key), 6000, "{key} entries replayed from the batches");
        }
        let mut per_message: std::collections::HashMap<u64, usize> = Default::default();
        for l in &all.lines {
            *per_message.entry(l.offset).or_default() += 1;
        }
        let batches = per_message.values().filter(|n| **n > 1).count();
        assert!(
            batches > 0 && per_message.len() < all.lines.len(),
            "{} messages for {} entries, {batches} of several samples: not batched",
            per_message.len(),
            all.lines.len()
        );
    }

    let (rebuilt_header, rebuilt_rows) = over_time(&rebuilt);
    assert_eq!(rebuilt_header, header);
    assert_eq!(rebuilt_rows.len(), live_rows.len());
    let clock = |name: &str| name == "end_time" || name.starts_with("period_");
    let mut compared = 0;
    for (a, b) in live_rows.iter().zip(&rebuilt_rows) {
        assert_eq!(a.len(), header.len());
        for ((name, x), y) in header.iter().zip(a).zip(b) {
            if !clock(name) {
                assert_eq!(x, y, "window {}: column {name}", a[0]);
                compared += 1;
            }
        }
    }
    eprintln!(
        "rebuild: {} windows, {compared} fields equal ({} columns of {} compared), {} alert events",
        rebuilt_rows.len(),
        header.iter().filter(|h| !clock(h)).count(),
        header.len(),
        live_alerts.len()
    );
    assert_eq!(alert_events(&rebuilt), live_alerts);
    assert_eq!(
        bytes(&rebuilt.join("error_distribution.png")),
        bytes(&live.join("error_distribution.png")),
        "the rebuilt histogram has the baseline line, as the live one"
    );
    let png = bytes(&rebuilt.join("error_over_time.png"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000);

    // A second rebuild into the same folder adds nothing: the monitor
    // continues after its last row, and every row is already there.
    let mut cmd = replay_command(&stream, &["--rebuild", rebuilt.to_str().unwrap()]);
    cmd.current_dir(live.parent().unwrap());
    replay_with(cmd, REPLAY_TIMEOUT).ok();
    assert_eq!(over_time(&rebuilt).1.len(), live_rows.len());
    assert_eq!(alert_events(&rebuilt), live_alerts);
}

/// The first `/events` message of the server at `addr` (waits for the
/// server to serve: the port is bound before the pipeline starts).
fn first_event(addr: &str, timeout: Duration) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = addr.trim().parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let deadline = std::time::Instant::now() + timeout;
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 65536]);
    while std::time::Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading /events: {e}"),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(i) = text.find("\ndata: ") {
            if let Some(end) = text[i + 7..].find('\n') {
                return serde_json::from_str(&text[i + 7..i + 7 + end]).unwrap();
            }
        }
    }
    panic!(
        "no /events message within {timeout:?}: {}",
        String::from_utf8_lossy(&buf)
    );
}

/// Backfill at start: run 1 with history writes windows; run 2, in a fresh
/// logs folder (a new container) on the same stream, shows them on its
/// board before its own first window closes (a slow rate), and numbers its
/// first window after run 1's last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_process_starts_with_the_windows_of_the_stream() {
    // The backfill is bounded by a deadline.
    let _timing = crate::support::serial::timing_lock_async().await;
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("backfill");
    let first = run_with_history(
        &stream,
        &[
            "--count",
            "2000",
            "--rate",
            "4000",
            "--monitor-window",
            "200",
        ],
        &[],
    )
    .finish(Duration::from_secs(120))
    .await;
    first.assert_exit_ok();
    let (header, rows) = over_time(&first.logs_dir());
    assert_eq!(rows.len(), 10, "2,000 samples, windows of 200");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (seq, mae) = (col("seq"), col("mae"));
    let last_seq: u64 = rows.last().unwrap()[seq].parse().unwrap();

    // Run 2: its first window of 200 closes after 5 s at 40 samples/s.
    let mut second = run_with_history(
        &stream,
        &["--count", "200", "--rate", "40", "--monitor-window", "200"],
        &[],
    );
    let addr_file = second.logs_dir().join("http.addr");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !addr_file.exists() {
        assert!(second.is_running(), "run 2 ended before it served HTTP");
        assert!(std::time::Instant::now() < deadline, "no http.addr");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = std::fs::read_to_string(&addr_file).unwrap();
    let snapshot = first_event(&addr, Duration::from_secs(30));
    let shown: Vec<(u64, f64)> = snapshot["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| (w["seq"].as_u64().unwrap(), w["mae"].as_f64().unwrap()))
        .collect();
    eprintln!(
        "backfill: the first event of run 2 shows windows {:?} of run 1's {}",
        shown.iter().map(|w| w.0).collect::<Vec<_>>(),
        rows.len()
    );
    assert!(!shown.is_empty(), "the board starts with run 1's windows");
    // A tail of run 1's windows (the backfill is bounded by a deadline),
    // ending at its last, with its figures; none of run 2's yet.
    let tail = &rows[rows.len() - shown.len()..];
    for ((s, m), row) in shown.iter().zip(tail) {
        assert_eq!(*s, row[seq].parse::<u64>().unwrap());
        assert_eq!(*m, row[mae].parse::<f64>().unwrap(), "window {s}");
    }
    assert_eq!(shown.last().unwrap().0, last_seq);

    let second = second.finish(Duration::from_secs(120)).await;
    second.assert_exit_ok();
    let (_, own) = over_time(&second.logs_dir());
    assert_eq!(own.len(), 1, "one window of 200");
    assert_eq!(
        own[0][seq].parse::<u64>().unwrap(),
        last_seq + 1,
        "run 2 numbers its first window after run 1's last"
    );
    assert_eq!(own[0][col("records_total")], "200", "its own records only");
}

/// Lines of `text` that a log level marks as an ERROR (with or without
/// colour codes around the level).
fn error_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("ERROR")).collect()
}

/// The files a rebuild writes, by name, as bytes.
const REBUILT_FILES: [&str; 6] = [
    "metric_log.csv",
    "labels_log.txt",
    "metrics_over_time.csv",
    "alerts.jsonl",
    "error_distribution.png",
    "error_over_time.png",
];

fn rebuilt_files(dir: &std::path::Path) -> Vec<(&'static str, Vec<u8>)> {
    REBUILT_FILES
        .iter()
        .map(|f| (*f, bytes(&dir.join(f))))
        .collect()
}

/// Asserts that the files of `dir` equal `expected`, naming the first
/// that differs.
fn assert_same_files(dir: &std::path::Path, expected: &[(&'static str, Vec<u8>)], what: &str) {
    for (name, want) in expected {
        let got = bytes(&dir.join(name));
        assert!(
            got == *want,
            "{what}: {name} differs from the uninterrupted rebuild's ({} bytes, expected {}; {} lines, expected {})",
            got.len(),
            want.len(),
            got.iter().filter(|&&b| b == b'\n').count(),
            want.iter().filter(|&&b| b == b'\n').count(),
        );
    }
}

/// The size of the file at `path` (0 if there is none yet).
fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Starts `replay --rebuild dir` (from `cwd`) and kills it with SIGKILL
/// as soon as `file` of `dir` is larger than `above` bytes; panics if the
/// rebuild ended by itself before (the kill would not be mid-way).
fn rebuild_killed_when(
    stream: &TestStream,
    cwd: &std::path::Path,
    dir: &std::path::Path,
    file: &str,
    above: u64,
) {
    let mut cmd = replay_command(stream, &["--rebuild", dir.to_str().unwrap()]);
    cmd.current_dir(cwd)
        .env("MODELWATCH__MONITOR__WINDOW", "250")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = Proc::spawn(cmd, None);
    let path = dir.join(file);
    let deadline = std::time::Instant::now() + REPLAY_TIMEOUT;
    loop {
        if size(&path) > above {
            child.kill(); // SIGKILL
            return;
        }
        if !child.is_running() {
            let status = child.status().expect("exited");
            panic!("the rebuild ended ({status}) before {file} grew past {above} bytes: no kill mid-way");
        }
        assert!(std::time::Instant::now() < deadline, "rebuild stuck");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `replay --rebuild` is resumable and idempotent for every file it
/// writes: killed with SIGKILL twice mid-way (when `labels_log.txt`, then
/// `metric_log.csv` got their first flush: the monitor's files then hold
/// nothing yet, as in the report of 14 windows of 40 after a resume) and
/// run again, its files equal those of one uninterrupted rebuild, byte for
/// byte; from files cut at other points (`metrics_over_time.csv` and
/// `alerts.jsonl` partly written, torn last lines) too; and running it
/// once more on a finished folder changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rebuild_resumes_to_the_files_of_an_uninterrupted_one() {
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("resume");
    // 40 windows of 250, alerts from the shift at the middle.
    let run = run_with_history(
        &stream,
        &[
            "--count",
            "10000",
            "--rate",
            "4000",
            "--seed",
            "7",
            "--monitor-window",
            "250",
            "--scenario",
            "start=5000,bmi+=10",
        ],
        &[],
    )
    .finish(Duration::from_secs(180))
    .await;
    run.assert_exit_ok();
    let cwd = tempfile::tempdir().unwrap();
    let rebuild = |dir: &std::path::Path| {
        let mut cmd = replay_command(&stream, &["--rebuild", dir.to_str().unwrap()]);
        cmd.current_dir(cwd.path())
            .env("MODELWATCH__MONITOR__WINDOW", "250");
        replay_with(cmd, REPLAY_TIMEOUT).ok()
    };

    // One uninterrupted rebuild: the reference.
    let whole = cwd.path().join("whole");
    let r = rebuild(&whole);
    assert!(
        error_lines(&r.stderr).is_empty(),
        "a rebuild logs no ERROR:\n{}",
        r.stderr
    );
    let expected = rebuilt_files(&whole);
    let (_, windows) = over_time(&whole);
    assert_eq!(windows.len(), 40, "10,000 records, windows of 250");
    let events = alert_events(&whole);
    assert!(
        events.iter().any(|(_, s, _)| s == "fired"),
        "the shift fires alerts: {events:?}"
    );

    // Killed twice mid-way, then run to the end.
    let killed = cwd.path().join("killed");
    rebuild_killed_when(&stream, cwd.path(), &killed, "labels_log.txt", 0);
    let csv_after_first = size(&killed.join("metric_log.csv"));
    rebuild_killed_when(
        &stream,
        cwd.path(),
        &killed,
        "metric_log.csv",
        csv_after_first.max(100),
    );
    eprintln!(
        "killed twice: metric_log.csv {} of {} bytes, labels_log.txt {} of {}, metrics_over_time.csv {} of {}",
        size(&killed.join("metric_log.csv")),
        size(&whole.join("metric_log.csv")),
        size(&killed.join("labels_log.txt")),
        size(&whole.join("labels_log.txt")),
        size(&killed.join("metrics_over_time.csv")),
        size(&whole.join("metrics_over_time.csv")),
    );
    assert!(
        size(&killed.join("metric_log.csv")) < size(&whole.join("metric_log.csv")),
        "the kill was mid-way"
    );
    rebuild(&killed);
    assert_same_files(&killed, &expected, "killed twice, then resumed");

    // Cut at other points, as a kill between two writes leaves them: the
    // first 10 windows, half the alert events, torn last lines.
    let cut = |name: &str, keep: &dyn Fn(&[u8]) -> usize| {
        let path = killed.join(name);
        let all = bytes(&path);
        let n = keep(&all);
        std::fs::write(&path, &all[..n]).unwrap();
    };
    let nth_line_end = |all: &[u8], n: usize| -> usize {
        all.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(n - 1)
            .map_or(all.len(), |(i, _)| i + 1)
    };
    cut("metrics_over_time.csv", &|all| nth_line_end(all, 11)); // header + 10
    let half = events.len().div_ceil(2);
    cut("alerts.jsonl", &|all| nth_line_end(all, half) + 5); // torn
    cut("metric_log.csv", &|all| all.len() * 2 / 3 + 7);
    cut("labels_log.txt", &|all| all.len() / 3 + 11);
    rebuild(&killed);
    assert_same_files(
        &killed,
        &expected,
        "files cut at other points, then resumed",
    );

    // A finished rebuild run again changes nothing.
    let again = rebuild(&killed);
    assert_same_files(&killed, &expected, "a finished rebuild run again");
    assert!(error_lines(&again.stderr).is_empty(), "{}", again.stderr);
}

/// The files of `dir` (not below it), by name, as bytes.
fn folder_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                bytes(&p),
            )
        })
        .collect();
    files.sort();
    files
}

/// `replay --rebuild` into a copy of a live run's folder is refused (exit
/// 1, naming `labels_log.txt`), the files left as the live run wrote
/// them: the live label lines have the time the metric received each
/// message, to the microsecond, the rebuild's the time the bridge took it,
/// to the second, so the rebuild's lines are not the folder's. (A check of
/// the last line's kind and id alone took the 6,000 live lines for its own
/// and exited 0 with "already=3000".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_into_a_live_runs_folder_is_refused_naming_the_labels() {
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("livedir");
    let run = run_with_history(&stream, &["--count", "3000", "--rate", "1000"], &[])
        .finish(Duration::from_secs(120))
        .await;
    run.assert_exit_ok();
    let live = run.logs_dir();
    let labels = bytes(&live.join("labels_log.txt"));
    assert_eq!(
        labels.iter().filter(|&&b| b == b'\n').count(),
        6000,
        "a y_true and a y_pred line per sample"
    );

    // A copy of the live folder, as a user would rebuild "into" it.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for (name, data) in folder_files(&live) {
        std::fs::write(copy.join(&name), data).unwrap();
    }
    let before = folder_files(&copy);
    assert!(before.iter().any(|(n, _)| n == "metric_log.csv"));

    let mut cmd = replay_command(&stream, &["--rebuild", copy.to_str().unwrap()]);
    cmd.current_dir(live.parent().unwrap());
    let r = replay_with(cmd, REPLAY_TIMEOUT);
    assert_eq!(
        r.code,
        Some(1),
        "a rebuild into a live run's folder fails:\n{}",
        r.stderr
    );
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("modelwatch: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", r.stderr);
    eprintln!("refused: {}", errors[0]);
    assert!(
        errors[0].contains(copy.join("labels_log.txt").to_str().unwrap())
            && errors[0].contains("another history"),
        "the error names the labels file: {}",
        errors[0]
    );
    let after = folder_files(&copy);
    assert_eq!(
        after.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        before.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "no file added or removed"
    );
    for ((name, want), (_, got)) in before.iter().zip(&after) {
        assert!(
            got == want,
            "{name} changed by the refused rebuild ({} bytes, was {})",
            got.len(),
            want.len()
        );
    }
}

/// `replay --follow` that loses its stream after reading exits 1 (a
/// failure while reading, with a line saying what), not 2 (which says
/// nothing was read: bad input).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_exits_1_when_the_stream_is_deleted_after_reading() {
    wait_for_broker(Duration::from_secs(30)).await;
    let stream = TestStream::new("deleted");
    run_with_history(&stream, &["--count", "200"], &[])
        .finish(Duration::from_secs(120))
        .await
        .assert_exit_ok();
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut cmd = replay_command(&stream, &["--follow", "--key", "metrics"]);
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = Proc::spawn(cmd, None);
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while lines(&out) < 200 {
        assert!(child.is_running(), "--follow ended early");
        assert!(std::time::Instant::now() < deadline, "no 200 lines");
        std::thread::sleep(Duration::from_millis(20));
    }
    rabbitmqctl(&["delete_queue", &stream.name], Duration::from_secs(30)).unwrap();
    let Some(status) = child.wait_for(Duration::from_secs(90)) else {
        child.kill();
        panic!(
            "--follow still running 90 s after its stream was deleted:\n{}",
            std::fs::read_to_string(&err).unwrap()
        );
    };
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(lines(&out), 200, "the lines read before are kept");
    assert_eq!(status.code(), Some(1), "a failure after reading:\n{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("modelwatch: error:"))
        .collect();
    assert_eq!(said.len(), 1, "one line saying what:\n{stderr}");
    assert!(
        said[0].contains("after 200 messages read") && said[0].contains(&stream.name),
        "{}",
        said[0]
    );
}

/// `replay --rebuild` of runs of the user's own data (a regression with
/// categorical columns, a binary classifier) given the run's `--data
/// --target --model`: the features by column name (a classifier's scored
/// features with their probabilities) make the monitor's windows again,
/// equal to the live ones but for the clock's columns, and the same alert
/// events. A rebuild without them (the diabetes data's) leaves every
/// message of the schema out, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_of_your_own_data_reads_it_by_column_name() {
    wait_for_broker(Duration::from_secs(30)).await;
    let sb = crate::support::sandbox::Sandbox::new();
    let regression = crate::run_own::train(&sb);
    let classifier = crate::run_classifier::train(&sb, "binary.csv", 100);
    // An ONNX classifier: the live run has the runtime library, the
    // rebuild (the artifact's reference only) runs without it.
    let (wrap, onnx) = crate::onnx::train(&sb, "forest_cls", true);
    crate::support::sandbox::run_within(crate::onnx::with_runtime(wrap), REPLAY_TIMEOUT)
        .expect_code(0);
    let library = crate::support::provision::onnxruntime_library();
    let library = library.to_str().unwrap();
    let cases = [
        (
            "ownreg",
            crate::run_own::data_dir().join("shifted.csv"),
            "y",
            regression,
            crate::run_own::WINDOW,
            "monitor_features",
        ),
        (
            "ownclf",
            crate::run_classifier::data_dir().join("binary_flipped.csv"),
            "label",
            classifier,
            100,
            "monitor_scored",
        ),
        (
            "onnxclf",
            crate::onnx::models().join("new_cls.csv"),
            "kind",
            onnx,
            crate::onnx::WINDOW,
            "monitor_scored",
        ),
    ];
    for (what, data, target, model, window, observer) in cases {
        let stream = TestStream::new(what);
        let window = window.to_string();
        let own = [
            "--data",
            data.to_str().unwrap(),
            "--target",
            target,
            "--model",
            model.to_str().unwrap(),
        ];
        let mut args = own.to_vec();
        args.extend(["--order", "sequential", "--rate", "2000"]);
        args.extend(["--monitor-window", &window]);
        let env: &[(&str, &str)] = match what {
            "onnxclf" => &[("ORT_DYLIB_PATH", library)],
            _ => &[],
        };
        let run = run_with_history(&stream, &args, env)
            .finish(Duration::from_secs(120))
            .await;
        run.assert_exit_ok();
        let live = run.logs_dir();
        let missed = Scrape::final_of(&live).count(
            "modelwatch_observer_dropped_total",
            &[("observer", observer)],
        );
        assert_eq!(missed, 0, "{what}: the live monitor missed records");
        let (header, live_rows) = over_time(&live);
        assert!(live_rows.len() >= 5, "{what}: {} windows", live_rows.len());
        let live_alerts = alert_events(&live);

        let dir = tempfile::tempdir().unwrap();
        let rebuilt = dir.path().join("rebuilt");
        let mut args = vec!["--rebuild", rebuilt.to_str().unwrap()];
        args.extend(own);
        let mut cmd = replay_command(&stream, &args);
        cmd.env("MODELWATCH__MONITOR__WINDOW", &window);
        replay_with(cmd, REPLAY_TIMEOUT).ok();
        let (rebuilt_header, rebuilt_rows) = over_time(&rebuilt);
        assert_eq!(rebuilt_header, header, "{what}");
        assert_eq!(rebuilt_rows.len(), live_rows.len(), "{what}");
        let clock = |name: &str| name == "end_time" || name.starts_with("period_");
        for (a, b) in live_rows.iter().zip(&rebuilt_rows) {
            for ((name, x), y) in header.iter().zip(a).zip(b) {
                if !clock(name) {
                    assert_eq!(x, y, "{what}: window {}: column {name}", a[0]);
                }
            }
        }
        assert_eq!(alert_events(&rebuilt), live_alerts, "{what}");
        let by_name = header
            .iter()
            .filter(|h| h.ends_with("_p") && !h.starts_with("prediction"))
            .count();
        assert!(by_name > 0, "{what}: drift columns by name: {header:?}");

        // The diabetes data's rebuild of that stream takes none of it.
        let other = dir.path().join("diabetes");
        let cmd = replay_command(&stream, &["--rebuild", other.to_str().unwrap()]);
        let r = replay_with(cmd, REPLAY_TIMEOUT).ok();
        let rows = std::fs::read_to_string(other.join("metric_log.csv")).unwrap();
        assert_eq!(rows.lines().count(), 1, "{what}: only the header\n{rows}");
        assert!(r.stderr.contains("other_schema="), "{what}: {}", r.stderr);
        eprintln!(
            "{what}: rebuilt {} windows by column name, equal to the live ones; {} alert events",
            rebuilt_rows.len(),
            live_alerts.len()
        );
    }
}
