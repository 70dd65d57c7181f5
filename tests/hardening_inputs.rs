//! Inputs a hostile tester used to break the fixes of issue 8, through the
//! real binary (no broker needed: each is refused before anything starts):
//!
//! - an `amqps://` URL in a build without TLS (it connected in clear);
//! - exchange and queue names over 255 bytes (lapin panicked, exit 70) and
//!   broker URLs whose query lapin cannot use;
//! - a failed write to stdout (`>/dev/full`: a panic, exit 70);
//! - a model artifact that is a device, a FIFO or too large (memory grew
//!   without bound, or the run hung).

mod common;

use std::process::Stdio;
use std::time::Duration;

/// Bad input is refused within this time.
const QUICK: Duration = Duration::from_secs(20);

/// `run --print-config` with `env`: the config check alone.
fn config_check(env: &[(&str, &str)], extra: &[&str]) -> common::Output {
    let sb = common::Sandbox::new();
    let mut args = vec!["--print-config"];
    args.extend_from_slice(extra);
    let mut cmd = sb.run_command(&sb.logs(), &args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run_within(cmd, QUICK)
}

/// Exit 2 with one error line naming `key`; returns the line.
fn refused(out: &common::Output, key: &str) -> String {
    out.expect_code(2);
    let line = common::one_error_line(out);
    assert!(line.contains(key), "{key} not named in {line:?}");
    line
}

#[cfg(not(feature = "tls"))]
#[test]
fn amqps_without_the_tls_feature_is_refused_naming_bridge_url() {
    let secret = format!("pw-{}", std::process::id());
    let url = format!("amqps://guest:{secret}@127.0.0.1:5672/%2f");
    let sb = common::Sandbox::new();
    let cmd = sb.run_command(
        &sb.logs(),
        &["--count", "5", "--rate", "0", "--amqp-url", &url],
    );
    let out = common::run_within(cmd, QUICK);
    let line = refused(&out, "bridge.url");
    assert!(line.contains("--features tls"), "{line}");
    assert!(line.contains("guest:***@"), "{line}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains(&secret), "password shown: {all}");
    assert!(
        !sb.logs().join("metric_log.csv").exists(),
        "the pipeline ran"
    );
}

#[test]
fn names_over_255_bytes_are_refused_naming_the_key() {
    let long = "n".repeat(300);
    for key in [
        "bridge.exchange",
        "inbound.model_queue",
        "inbound.metric_truth_queue",
        "inbound.metric_prediction_queue",
        "inbound.plot_queue",
        "inbound.dead_letter_exchange",
        "inbound.dead_letter_queue",
    ] {
        let var = format!("MODELWATCH__{}", key.to_uppercase().replace('.', "__"));
        let line = refused(&config_check(&[(&var, &long)], &[]), key);
        assert!(line.contains("255 bytes"), "{line}");
    }
    // 255 bytes is still a name.
    let max = "n".repeat(255);
    config_check(&[("MODELWATCH__BRIDGE__EXCHANGE", &max)], &[]).expect_code(0);
}

/// A control character in a name: the broker strips a newline when it
/// declares the queue, then cannot find the name it was given to consume
/// (found by a hostile pass: a role that never consumed and looked ready).
#[test]
fn names_with_control_characters_are_refused_naming_the_key() {
    for (key, value) in [
        ("inbound.model_queue", "q.with\nnewline"),
        ("bridge.exchange", "x\rcr"),
        ("inbound.dead_letter_queue", "tab\there"),
    ] {
        let var = format!("MODELWATCH__{}", key.to_uppercase().replace('.', "__"));
        let line = refused(&config_check(&[(&var, value)], &[]), key);
        assert!(line.contains("control characters"), "{line}");
    }
    // Quotes, backslashes and non-ASCII are fine for the broker.
    config_check(&[("MODELWATCH__INBOUND__MODEL_QUEUE", "q.\"é\\")], &[]).expect_code(0);
}

#[test]
fn a_url_query_lapin_cannot_use_is_refused_naming_bridge_url() {
    for (query, needle) in [
        ("heartbeat=abc", "invalid digit"),
        ("frame_max=1", "frame_max"),
        ("frame_max=4095", "frame_max"),
    ] {
        let url = format!("amqp://guest:guest@127.0.0.1:5672/%2f?{query}");
        let line = refused(&config_check(&[], &["--amqp-url", &url]), "bridge.url");
        assert!(line.contains(needle), "{query}: {line}");
        assert!(!line.contains("guest:guest"), "password shown: {line}");
    }
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f?frame_max=4096&heartbeat=5";
    config_check(&[], &["--amqp-url", url]).expect_code(0);
}

#[test]
fn a_failed_write_to_stdout_exits_1_with_one_line_and_no_panic() {
    let sb = common::Sandbox::new();
    let config = common::default_config();
    let config = config.to_str().expect("utf-8 path");
    for args in [
        vec!["config", "--default"],
        vec!["config", "--config", config],
        vec!["completions", "bash"],
        vec!["run", "--config", config, "--print-config"],
        vec!["man"],
    ] {
        let mut cmd = sb.command(&args);
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        cmd.stdout(Stdio::from(full));
        let out = common::run_within(cmd, QUICK);
        assert_eq!(out.code(), Some(1), "{args:?}: {}", out.stderr);
        let line = common::one_error_line(&out);
        assert!(line.contains("stdout"), "{args:?}: {line}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
}

/// Runs with the artifact at `path` and expects exit 2 naming `model.artifact`.
fn artifact_refused(sb: &common::Sandbox, path: &std::path::Path, needle: &str) {
    let mut cmd = sb.run_command(&sb.logs(), &["--count", "10", "--rate", "0"]);
    cmd.env("MODELWATCH__MODEL__ARTIFACT", path);
    let out = common::run_within(cmd, QUICK);
    let line = refused(&out, "model.artifact");
    assert!(line.contains(needle), "{needle:?} not in {line:?}");
    assert!(
        !sb.logs().join("metric_log.csv").exists(),
        "rows were written before the artifact was refused"
    );
}

#[test]
fn an_artifact_that_is_a_device_a_fifo_or_too_large_exits_2() {
    let sb = common::Sandbox::new();
    artifact_refused(&sb, std::path::Path::new("/dev/zero"), "not a regular file");
    let fifo = sb.join("artifact.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    artifact_refused(&sb, &fifo, "not a regular file");
    let big = sb.join("big.json");
    std::fs::write(&big, vec![b' '; (1 << 20) + 1]).expect("writing a big file");
    artifact_refused(&sb, &big, "larger than");
}
