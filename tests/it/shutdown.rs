//! Shutdown and exit codes of the real binary when things go wrong: a second
//! signal during the drain, a broker that never answers, a full disk.
//!
//! Exit 0 must mean that everything was done and delivered; anything left
//! undone is exit 1 with one stderr line saying how much. None of these tests
//! needs RabbitMQ: the broker is an unreachable port. The full disk is a real
//! 2 MiB tmpfs when `mount` works here (root), unmounted by a guard; the
//! `append-file-write` fail point stands in for it otherwise, and has tests
//! of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::sandbox::*;

/// A port nothing listens on: the bridge keeps retrying and buffering.
const UNREACHABLE: &str = "amqp://guest:guest@127.0.0.1:5999/%2f";

/// The default `bridge.shutdown_timeout`: a signal must end a run within it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until `<logs>/pipeline.log` contains `needle`; panics after 20 s.
fn wait_log(logs: &Path, needle: &str) {
    wait_until(needle, Duration::from_secs(20), || {
        std::fs::read_to_string(logs.join("pipeline.log")).is_ok_and(|l| l.contains(needle))
    });
}

/// Panics if stderr or pipeline.log mentions a panic.
fn assert_no_panic(out: &Output, logs: &Path) {
    let log = std::fs::read_to_string(logs.join("pipeline.log")).unwrap_or_default();
    for (what, text) in [("stderr", &out.stderr), ("pipeline.log", &log)] {
        assert!(
            !text.to_lowercase().contains("panic"),
            "{what} mentions a panic:\n{text}"
        );
    }
}

/// The number just before `suffix` in `line` (e.g. "123 rows could not").
fn number_before(line: &str, suffix: &str) -> u64 {
    let head = &line[..line
        .find(suffix)
        .unwrap_or_else(|| panic!("no {suffix:?} in {line:?}"))];
    head.trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {suffix:?} in {line:?}"))
}

#[test]
fn a_second_signal_during_the_drain_exits_1_without_a_panic() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let cmd = sb.run_command(
        &logs,
        &["--rate", "0", "--count", "0", "--amqp-url", UNREACHABLE],
    );
    let run = Running::spawn(cmd);
    wait_log(&logs, "broker unreachable");
    thread::sleep(Duration::from_millis(500));
    run.signal("INT");
    // The bridge now waits for a broker that never answers (10 s).
    thread::sleep(Duration::from_millis(1500));
    run.signal("INT");
    let out = run.wait(Duration::from_secs(30));
    out.expect_code(1);
    assert_no_panic(&out, &logs);
    let line = one_error_line(&out);
    assert!(line.contains("second signal (SIGINT)"), "{line}");
    let left = number_before(&line, "messages not delivered");
    assert!(left > 0, "messages were buffered for the broker: {line}");
    // The metric's rows are whole: the first stop drained the local
    // pipeline, and the exit line counts what did not reach the file.
    let rows = read_metric_log(&logs);
    assert!(!rows.is_empty());
    assert_rows_are_model_outputs(&rows);
    let unwritten = number_before(&line, "rows not written");
    let made = Scrape::final_of(&logs).count("modelwatch_absolute_error_count", &[]);
    assert_eq!(rows.len() as u64 + unwritten, made, "{line}");
}

#[test]
fn a_run_stopped_with_messages_undelivered_exits_1_and_says_how_many() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(
        &logs,
        &["--rate", "0", "--count", "0", "--amqp-url", UNREACHABLE],
    );
    cmd.env("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", "1s");
    let run = Running::spawn(cmd);
    wait_log(&logs, "broker unreachable");
    run.signal("TERM");
    let out = run.wait(Duration::from_secs(30));
    out.expect_code(1);
    assert_no_panic(&out, &logs);
    let line = one_error_line(&out);
    let undelivered = number_before(&line, "messages not confirmed by the broker");
    let log = read_pipeline_log(&logs);
    let summary = log_line(&log, "bridge summary");
    assert_eq!(
        log_field(summary, "undelivered"),
        Some(undelivered.to_string().as_str()),
        "stderr and the log agree: {line}\n{summary}"
    );
    assert!(undelivered > 0, "{summary}");
    assert!(!read_metric_log(&logs).is_empty());
}

// ---------------------------------------------------------------------------
// A full disk.

/// A 2 MiB tmpfs mounted on a fresh folder, unmounted (and the folder
/// removed) on drop, even when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `size` (as `mount -o size=` takes it); Err says why not
    /// (not root, no tmpfs), with mount's own message.
    fn mount_sized(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::Builder::new()
            .prefix("modelwatch-tmpfs-")
            .tempdir()
            .map_err(|e| format!("a folder for the tmpfs: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs -o size={size}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Where the logs of a full-disk run go, and what makes the disk full.
enum FullDisk {
    /// The logs dir is a 2 MiB tmpfs: writes fail with ENOSPC once it fills.
    Tmpfs(Tmpfs),
    /// Every write after the first two fails (`append-file-write`).
    FailPoint(PathBuf),
}

impl FullDisk {
    /// A real full disk: a 2 MiB tmpfs. These tests need root and fail,
    /// saying why, without it: no silent fallback (the fail-point variants
    /// are tests of their own).
    fn tmpfs() -> FullDisk {
        FullDisk::Tmpfs(
            Tmpfs::mount_sized("2m")
                .unwrap_or_else(|e| panic!("a real full disk needs a tmpfs mounted as root: {e}")),
        )
    }

    fn fail_point(sb: &Sandbox) -> FullDisk {
        FullDisk::FailPoint(sb.logs())
    }

    fn logs(&self) -> PathBuf {
        match self {
            FullDisk::Tmpfs(t) => t.path(),
            FullDisk::FailPoint(p) => p.clone(),
        }
    }

    /// `run --rate 0 --count 1000000` writing to the full disk.
    fn command(&self, sb: &Sandbox, env: &[(&str, &str)]) -> Command {
        let mut cmd = sb.run_command(&self.logs(), &["--rate", "0", "--count", "1000000"]);
        // Plain stderr: on the full tmpfs it is the only complete log.
        cmd.env("NO_COLOR", "1");
        if let FullDisk::FailPoint(_) = self {
            cmd.env("FAILPOINTS", "append-file-write=2*off->return");
        }
        cmd.envs(env.iter().copied());
        cmd
    }

    /// Waits until the metric has failed to write (the disk is full).
    /// On the tmpfs the log cannot be written either: watch the files fill it.
    fn wait_full(&self) {
        let logs = self.logs();
        match self {
            FullDisk::Tmpfs(_) => {
                wait_until("the tmpfs to fill", Duration::from_secs(20), || {
                    let size = |f: &str| std::fs::metadata(logs.join(f)).map_or(0, |m| m.len());
                    size("metric_log.csv") + size("labels_log.txt") > 1_500_000
                });
                // Let the metric hit the wall and go into its backoff.
                thread::sleep(Duration::from_secs(2));
            }
            FullDisk::FailPoint(_) => wait_log(&logs, "metric cannot write its logs"),
        }
    }
}

/// The exit line of a full-disk run: the rows written are whole in the
/// CSV, and the rows dropped are counted on stderr. Returns the count.
fn check_full_disk_exit(out: &Output, logs: &Path) -> u64 {
    out.expect_code(1);
    assert_no_panic(out, logs);
    let line = one_error_line(out);
    let dropped = number_before(&line, "rows could not be written");
    let written = number_before(&line, "rows before them are whole");
    assert!(dropped > 0, "{line}");
    // Strict parse: header once, four fields a row, no torn last line.
    let rows = read_metric_log(logs);
    assert_eq!(rows.len() as u64, written, "{line}");
    assert_unique_ids(&rows);
    assert_rows_are_model_outputs(&rows);
    // The log says so too when the metric gives up (more rows may be
    // dropped after it, while the run drains).
    let gave_up = log_line(&out.stderr, "metric gives up writing its logs");
    let at_give_up: u64 = log_field(gave_up, "unwritten_rows")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no unwritten_rows= in {gave_up:?}"));
    assert!(at_give_up <= dropped, "{gave_up}\n{line}");
    dropped
}

fn full_disk_stops_on_sigterm(disk: FullDisk, sb: &Sandbox) {
    let run = Running::spawn(disk.command(sb, &[]));
    disk.wait_full();
    let signalled = Instant::now();
    run.signal("TERM");
    // Killed and failed past the limit: the old code never exited.
    let out = run.wait(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    let took = signalled.elapsed();
    assert!(
        took <= SHUTDOWN_TIMEOUT,
        "exit {took:?} after SIGTERM, more than the shutdown timeout"
    );
    check_full_disk_exit(&out, &disk.logs());
}

fn full_disk_ends_by_itself(disk: FullDisk, sb: &Sandbox) {
    let run = Running::spawn(disk.command(sb, &[("MODELWATCH__METRIC__MAX_RESTARTS", "2")]));
    // Backoff 100 ms, then 200 ms: ends in about a second once full.
    let out = run.wait(Duration::from_secs(60));
    check_full_disk_exit(&out, &disk.logs());
    assert_eq!(
        out.stderr.matches("metric actor restarting").count(),
        2,
        "metric.max_restarts = 2 restarts, then it gives up:\n{}",
        out.stderr
    );
}

#[test]
fn a_full_disk_run_stops_on_sigterm_within_the_shutdown_timeout() {
    let sb = Sandbox::new();
    full_disk_stops_on_sigterm(FullDisk::tmpfs(), &sb);
}

#[test]
fn a_full_disk_run_left_alone_ends_with_exit_1_and_whole_rows() {
    let sb = Sandbox::new();
    full_disk_ends_by_itself(FullDisk::tmpfs(), &sb);
}

#[test]
fn failing_writes_stop_on_sigterm_within_the_shutdown_timeout() {
    let sb = Sandbox::new();
    full_disk_stops_on_sigterm(FullDisk::fail_point(&sb), &sb);
}

#[test]
fn failing_writes_end_the_run_after_max_restarts() {
    let sb = Sandbox::new();
    let disk = FullDisk::fail_point(&sb);
    let logs = disk.logs();
    full_disk_ends_by_itself(disk, &sb);
    // The registry counts the rows that reached the file, not those that
    // were formatted and then dropped.
    assert_eq!(
        Scrape::final_of(&logs).count("modelwatch_rows_written_total", &[]),
        read_metric_log(&logs).len() as u64
    );
}

// ---------------------------------------------------------------------------
// A final flush that fails: the rows it could not write are counted on the
// exit line, and the file stays whole.

/// The exit line of a run whose final flush failed: exit 1, the counts of
/// the rows dropped and of those before them, which are whole in the CSV.
/// Returns `(dropped, written)`.
fn check_counted_exit(out: &Output, logs: &Path) -> (u64, u64) {
    out.expect_code(1);
    assert_no_panic(out, logs);
    let line = one_error_line(out);
    let dropped = number_before(&line, "rows could not be written");
    let written = number_before(&line, "rows before them are whole");
    // Strict parse: header once, four fields a row, no torn last line.
    let rows = read_metric_log(logs);
    assert_eq!(rows.len() as u64, written, "{line}");
    assert_unique_ids(&rows);
    assert_rows_are_model_outputs(&rows);
    (dropped, written)
}

#[test]
fn a_final_flush_that_fails_counts_the_rows_it_could_not_write() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    // Every write fails, and nothing is written before the end (the rows
    // wait for the 1 minute flush): only the final flush tries.
    let mut cmd = sb.run_command(
        &logs,
        &[
            "--count",
            "3000",
            "--rate",
            "0",
            "--seed",
            "8",
            "--no-monitor",
        ],
    );
    cmd.env("MODELWATCH__METRIC__FLUSH_INTERVAL", "1m")
        .env("FAILPOINTS", "append-file-write=return")
        .env("NO_COLOR", "1");
    let out = run_within(cmd, Duration::from_secs(60));
    let (dropped, written) = check_counted_exit(&out, &logs);
    assert_eq!((dropped, written), (3000, 0), "{}", out.stderr);
    let line = one_error_line(&out);
    assert_eq!(
        number_before(&line, "lines of the labels log"),
        6000,
        "{line}"
    );
}

#[test]
fn writes_that_mostly_fail_lose_no_row_without_a_count() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(
        &logs,
        &[
            "--count",
            "5000",
            "--rate",
            "0",
            "--seed",
            "8",
            "--no-monitor",
        ],
    );
    cmd.env("FAILPOINTS", "append-file-write=90%return")
        .env("NO_COLOR", "1");
    let out = run_within(cmd, Duration::from_secs(120));
    let emitted = Scrape::final_of(&logs).count("modelwatch_samples_emitted_total", &[]);
    match out.code() {
        Some(0) => assert_eq!(read_metric_log(&logs).len() as u64, emitted),
        _ => {
            let (dropped, written) = check_counted_exit(&out, &logs);
            assert_eq!(
                dropped + written,
                emitted,
                "every sample emitted is a row written or a row counted as dropped"
            );
        }
    }
}

#[test]
fn a_disk_full_at_the_final_flush_counts_the_rows_and_tears_none() {
    let sb = Sandbox::new();
    // A real full disk: 3 MB of tmpfs (this test needs root and fails
    // without it rather than pretend).
    let disk = Tmpfs::mount_sized("3m")
        .unwrap_or_else(|e| panic!("mount -t tmpfs (as root) for a real full disk: {e}"));
    let logs = disk.path();
    let mut cmd = sb.run_command(&logs, &["--count", "3000", "--rate", "1000", "--seed", "9"]);
    cmd.env("MODELWATCH__METRIC__FLUSH_INTERVAL", "1m")
        .env("NO_COLOR", "1");
    let run = Running::spawn(cmd);
    thread::sleep(Duration::from_millis(2500));
    // Fill what is left of the disk.
    let mut filler = std::fs::File::create(logs.join("filler")).unwrap();
    let block = vec![b'x'; 64 * 1024];
    loop {
        use std::io::Write as _;
        match filler.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let out = run.wait(Duration::from_secs(60));
    let (dropped, written) = check_counted_exit(&out, &logs);
    assert_eq!(dropped + written, 3000, "{}", one_error_line(&out));
    assert!(dropped > 0);
}

#[test]
fn a_failed_final_flush_with_the_monitor_counts_its_rows_too_and_tears_none() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "3000", "--rate", "0", "--seed", "8"]);
    cmd.env("MODELWATCH__METRIC__FLUSH_INTERVAL", "1m")
        .env("FAILPOINTS", "append-file-write=return")
        .env("NO_COLOR", "1");
    let out = run_within(cmd, Duration::from_secs(60));
    let (dropped, written) = check_counted_exit(&out, &logs);
    assert_eq!((dropped, written), (3000, 0), "{}", out.stderr);
    // 3000 records: six windows of 500 (and any alert event), none written.
    let line = one_error_line(&out);
    let rows = number_before(&line, "rows (windows and alert events) dropped");
    let windows = Scrape::final_of(&logs).count("modelwatch_monitor_windows_total", &[]);
    assert_eq!(windows, 6);
    assert!(rows >= windows, "{line}");
    assert_eq!(
        std::fs::read_to_string(logs.join("alerts.jsonl")).unwrap(),
        ""
    );
    let over_time = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
    assert_eq!(over_time.lines().count(), 1, "only the header: {over_time}");
}
