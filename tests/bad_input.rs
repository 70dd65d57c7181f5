//! Bad input found before anything starts: exit code 2, quickly, with one
//! `modelwatch: error:` line on stderr naming the problem, and nothing
//! written to the logs dir.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

/// Bad input must be refused fast: no model fitting, no pipeline.
const QUICK: Duration = Duration::from_secs(10);

/// Runs `cmd`, expects exit 2 within [`QUICK`] and one error line
/// containing every `needle`; returns that line.
fn refused(cmd: std::process::Command, needles: &[&str]) -> String {
    let out = run_within(cmd, QUICK);
    out.expect_code(2);
    let line = one_error_line(&out);
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not named in {line:?}");
    }
    line
}

/// A sandbox with `contents` written to `<sandbox>/bad.toml`; runs
/// `run --config bad.toml --logs-dir <logs> --count 10` (no `--rate`, which
/// would override the file's `source.rate`).
fn with_config(contents: &str) -> (Sandbox, std::process::Command) {
    let sb = Sandbox::new();
    let config = sb.join("bad.toml");
    fs::write(&config, contents).unwrap();
    let mut cmd = sb.command(["run", "--config"]);
    cmd.arg(&config)
        .arg("--logs-dir")
        .arg(sb.logs())
        .args(["--count", "10"]);
    (sb, cmd)
}

fn assert_nothing_written(logs: &Path) {
    assert!(
        !logs.join("metric_log.csv").exists(),
        "metric_log.csv was created"
    );
    assert!(!logs.exists(), "the logs dir was created");
}

#[test]
fn an_unknown_key_in_the_config_file_is_named() {
    let (sb, cmd) = with_config("[source]\nspeed = 3\n");
    refused(cmd, &["speed"]);
    assert_nothing_written(&sb.logs());
}

#[test]
fn a_negative_rate_in_the_config_file_is_named() {
    let (sb, cmd) = with_config("[source]\nrate = -1\n");
    refused(cmd, &["source.rate"]);
    assert_nothing_written(&sb.logs());
}

#[test]
fn a_rate_that_is_not_a_number_in_the_environment_is_named() {
    let sb = Sandbox::new();
    // no --rate flag: the environment is what sets source.rate
    let mut cmd = sb.run_command(&sb.logs(), &["--count", "10"]);
    cmd.env("MODELWATCH__SOURCE__RATE", "fast");
    refused(cmd, &["source.rate"]);
    assert_nothing_written(&sb.logs());
}

#[test]
fn a_single_underscore_environment_variable_is_named() {
    let sb = Sandbox::new();
    let mut cmd = sb.run_command(&sb.logs(), &["--count", "10", "--rate", "0"]);
    cmd.env("MODELWATCH_SOURCE_RATE", "5");
    refused(cmd, &["MODELWATCH_SOURCE_RATE"]);
    assert_nothing_written(&sb.logs());
}

#[test]
fn an_unwritable_logs_dir_is_named() {
    let sb = Sandbox::new();
    // tests run as root, which permission bits do not stop: put the logs dir
    // under a regular file instead
    let file = sb.join("afile");
    fs::write(&file, "not a folder\n").unwrap();
    let logs = file.join("logs");
    let cmd = sb.run_command(&logs, &["--count", "10", "--rate", "0"]);
    refused(cmd, &[logs.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&file).unwrap(), "not a folder\n");
    assert!(
        fs::read_dir(sb.path()).unwrap().all(|e| !e
            .unwrap()
            .path()
            .join("metric_log.csv")
            .exists()),
        "metric_log.csv was created somewhere"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let sb = Sandbox::new();
    let missing = sb.join("nowhere.toml");
    let mut cmd = sb.command(["run", "--config"]);
    cmd.arg(&missing)
        .arg("--logs-dir")
        .arg(sb.logs())
        .args(["--count", "10", "--rate", "0"]);
    refused(cmd, &[missing.to_str().unwrap()]);
    assert_nothing_written(&sb.logs());
}
