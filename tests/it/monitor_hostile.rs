//! What a hostile pass over the monitor broke, kept as tests of the fixes:
//! rules whose resolved threshold can never be met are refused (exit 2), a
//! monitor file that is not a regular file (a device, a FIFO) is refused
//! at start instead of hanging or failing silently, a damaged last row does
//! not restart the numbering, and a `kill -9` in one process does not stop
//! the next run from going on. The real binary, as a user or an operator
//! would run it.

use std::fs;
use std::time::Duration;

use crate::support::sandbox::*;

/// The rows of `metrics_over_time.csv` as (seq, end_id, records_total).
fn windows(logs: &std::path::Path) -> Vec<(u64, u64, u64)> {
    let text = fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect()
}

/// A threshold that can never be met exits 2 naming the key, also when it
/// is `relative` or in `sigmas` and only the baseline makes it impossible:
/// `r2 > mean × 2` (= 1.03) and `mae < mean − 100σ` (= −95.6).
#[test]
fn a_resolved_threshold_that_can_never_be_met_is_refused() {
    for (body, what) in [
        ("metric = \"r2\"\nop = \">\"\nrelative = 1.0\n", "r2 > 1.03"),
        (
            "metric = \"mae\"\nop = \"<\"\nsigmas = 100\n",
            "mae < -95.6",
        ),
    ] {
        let sb = Sandbox::new();
        let cfg = sb.join("c.toml");
        fs::write(&cfg, format!("[[monitor.rules]]\nname = \"r\"\n{body}")).unwrap();
        let mut cmd = sb.command(["run", "--config"]);
        cmd.arg(&cfg)
            .arg("--logs-dir")
            .arg(sb.logs())
            .args(["--count", "100", "--rate", "0"]);
        let out = run(cmd);
        assert_eq!(
            out.code(),
            Some(2),
            "{what}: a rule that can never fire was accepted\n{}",
            out.stderr
        );
        assert!(one_error_line(&out).contains("monitor.rules[0]"));
    }
}

/// A monitor file that cannot be one (here `/dev/full`) is refused at start
/// with exit 2 naming it, not written to in vain while the run exits 0.
#[test]
fn an_alerts_file_that_is_a_device_is_refused_at_start() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink("/dev/full", logs.join("alerts.jsonl")).unwrap();
    let out = run(sb.run_command(&logs, &["--count", "600", "--rate", "0", "--seed", "5"]));
    out.expect_code(2);
    assert!(
        out.stderr.contains("alerts.jsonl") && out.stderr.contains("not a regular file"),
        "{}",
        out.stderr
    );
}

/// `seq` counts windows across restarts: a last line that is not a row
/// (edited by hand, a note appended) is skipped with a warning, and the
/// next run goes on after the last row, not at seq 1.
#[test]
fn an_unreadable_last_row_does_not_restart_the_numbering() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let args = ["--count", "1000", "--rate", "0", "--seed", "5"];
    run(sb.run_command(&logs, &args)).expect_code(0);
    let path = logs.join("metrics_over_time.csv");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}# checked by ops\n")).unwrap();
    let out = run(sb.run_command(&logs, &args));
    // Skipped with a warning naming the file, and the run goes on (exit
    // 0): a panic or any other exit is a failure, not an acceptable end.
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("the last lines of the file are not rows")
            && out.stderr.contains("metrics_over_time.csv"),
        "no warning naming the file:\n{}",
        out.stderr
    );
    let w = windows(&logs);
    let last = w.last().unwrap();
    assert!(
        last.0 > 2,
        "after an edited last line the numbering restarted: {w:?}"
    );
}

/// In one process the monitor sees records before the metric has written
/// them (metric.flush_interval), so a `kill -9` can leave windows whose
/// last record never reached metric_log.csv (README, "Watching the
/// model"); the next run still goes on from the last window, with the
/// logged rows of later ids.
#[test]
fn after_a_kill_9_in_one_process_the_restart_takes_in_the_later_rows() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let first =
        Running::spawn(sb.run_command(&logs, &["--count", "0", "--rate", "3000", "--seed", "1"]));
    wait_until("ten windows", Duration::from_secs(30), || {
        fs::read_to_string(logs.join("metrics_over_time.csv"))
            .map(|t| t.lines().count() > 10)
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_millis(700));
    first.signal("KILL");
    let _ = first.wait(Duration::from_secs(10));
    let before = windows(&logs);
    let last_seq = before.last().unwrap().0;
    // The windows the monitor closed may end on rows the metric never
    // flushed (README: one process, kill -9); the next run goes on from
    // the last window anyway, with the logged rows of later ids.
    run(sb.run_command(&logs, &["--count", "1000", "--rate", "3000", "--seed", "2"]))
        .expect_code(0);
    let after = windows(&logs);
    let seqs: Vec<u64> = after.iter().map(|w| w.0).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "the numbering goes on");
    assert!(
        after.len() as u64 > last_seq,
        "the second run closed windows"
    );
}

/// A FIFO in place of metrics_over_time.csv is refused at start (exit 2
/// naming it); opening it would wait for a writer for ever.
#[test]
fn a_fifo_for_metrics_over_time_is_refused_at_start() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    fs::create_dir_all(&logs).unwrap();
    let fifo = logs.join("metrics_over_time.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = run_within(
        sb.run_command(&logs, &["--count", "100", "--rate", "0"]),
        Duration::from_secs(15),
    );
    // Refused: exit 2 naming the file (a panic is not a refusal).
    out.expect_code(2);
    assert!(
        out.stderr.contains("metrics_over_time.csv") && out.stderr.contains("FIFO"),
        "{}",
        out.stderr
    );
}

/// Issue 18: a hand-edited `seq` of 18446744073709551615 (u64::MAX) in
/// the last row wrapped to 0 at the next window. The numbering cannot go on
/// after it: the next start exits 2 naming the file and the line, and
/// leaves the file as it was.
#[test]
fn a_last_seq_the_numbering_cannot_go_on_from_is_refused_naming_file_and_line() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let args = ["--count", "1000", "--rate", "0", "--seed", "5"];
    run(sb.run_command(&logs, &args)).expect_code(0);
    let path = logs.join("metrics_over_time.csv");
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two windows");
    let last = lines[2].split_once(',').unwrap().1;
    let edited = format!("{}\n{}\n18446744073709551615,{last}\n", lines[0], lines[1]);
    fs::write(&path, &edited).unwrap();
    let out = run_within(sb.run_command(&logs, &args), Duration::from_secs(30));
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(
        line.contains("metrics_over_time.csv") && line.contains("line 3"),
        "{line}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        edited,
        "the file was changed"
    );
}
