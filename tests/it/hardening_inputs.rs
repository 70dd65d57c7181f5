//! Inputs a hostile tester used to break the fixes of issue 8, through the
//! real binary (no broker needed: each is refused before anything starts):
//!
//! - an `amqps://` URL in a build without TLS (it connected in clear);
//! - exchange and queue names over 255 bytes (lapin panicked, exit 70) and
//!   broker URLs whose query lapin cannot use;
//! - a failed write to stdout (`>/dev/full`: a panic, exit 70);
//! - a model artifact that is a device, a FIFO or too large (memory grew
//!   without bound, or the run hung).
//!
//! And of issue 18: `--version` and `--help` to `/dev/full` exited 0; `train
//! --out` (and every file written by a rename) replaced a link, a FIFO or a
//! device with a regular file; stderr carried colour escapes into a file.

use crate::support;
use std::process::Stdio;
use std::time::Duration;

/// Bad input is refused within this time.
const QUICK: Duration = Duration::from_secs(20);

/// `run --print-config` with `env`: the config check alone.
fn config_check(env: &[(&str, &str)], extra: &[&str]) -> support::sandbox::Output {
    let sb = support::sandbox::Sandbox::new();
    let mut args = vec!["--print-config"];
    args.extend_from_slice(extra);
    let mut cmd = sb.run_command(&sb.logs(), &args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    support::sandbox::run_within(cmd, QUICK)
}

/// Exit 2 with one error line naming `key`; returns the line.
fn refused(out: &support::sandbox::Output, key: &str) -> String {
    out.expect_code(2);
    let line = support::sandbox::one_error_line(out);
    assert!(line.contains(key), "{key} not named in {line:?}");
    line
}

#[cfg(not(feature = "tls"))]
#[test]
fn amqps_without_the_tls_feature_is_refused_naming_bridge_url() {
    let secret = format!("pw-{}", std::process::id());
    let url = format!("amqps://guest:{secret}@127.0.0.1:5672/%2f");
    let sb = support::sandbox::Sandbox::new();
    let cmd = sb.run_command(
        &sb.logs(),
        &["--count", "5", "--rate", "0", "--amqp-url", &url],
    );
    let out = support::sandbox::run_within(cmd, QUICK);
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
    let sb = support::sandbox::Sandbox::new();
    let config = support::sandbox::default_config();
    let config = config.to_str().expect("utf-8 path");
    for args in [
        vec!["config", "--default"],
        vec!["config", "--config", config],
        vec!["completions", "bash"],
        vec!["run", "--config", config, "--print-config"],
        vec!["man"],
        vec!["metrics"],
        vec!["--version"],
        vec!["--help"],
        vec!["-h"],
        vec!["run", "--help"],
        vec!["help", "train"],
    ] {
        let mut cmd = sb.command(&args);
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        cmd.stdout(Stdio::from(full));
        let out = support::sandbox::run_within(cmd, QUICK);
        assert_eq!(out.code(), Some(1), "{args:?}: {}", out.stderr);
        let line = support::sandbox::one_error_line(&out);
        assert!(line.contains("stdout"), "{args:?}: {line}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
}

/// Runs with the artifact at `path` and expects exit 2 naming `model.artifact`.
fn artifact_refused(sb: &support::sandbox::Sandbox, path: &std::path::Path, needle: &str) {
    let mut cmd = sb.run_command(&sb.logs(), &["--count", "10", "--rate", "0"]);
    cmd.env("MODELWATCH__MODEL__ARTIFACT", path);
    let out = support::sandbox::run_within(cmd, QUICK);
    let line = refused(&out, "model.artifact");
    assert!(line.contains(needle), "{needle:?} not in {line:?}");
    assert!(
        !sb.logs().join("metric_log.csv").exists(),
        "rows were written before the artifact was refused"
    );
}

#[test]
fn an_artifact_that_is_a_device_a_fifo_or_too_large_exits_2() {
    let sb = support::sandbox::Sandbox::new();
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

/// A link (to a regular file), a FIFO and a character device made in the
/// sandbox, each at `<sandbox>/<prefix>.{link,fifo,chr}`; the link's target
/// holds `kept`. Returns the three paths and the target.
fn non_regular_files(
    sb: &support::sandbox::Sandbox,
    prefix: &str,
) -> (Vec<std::path::PathBuf>, std::path::PathBuf) {
    let target = sb.join(&format!("{prefix}.target"));
    std::fs::write(&target, "kept\n").unwrap();
    let link = sb.join(&format!("{prefix}.link"));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fifo = sb.join(&format!("{prefix}.fifo"));
    let chr = sb.join(&format!("{prefix}.chr"));
    for (tool, args) in [
        ("mkfifo", vec![fifo.as_os_str().to_owned()]),
        // The same device numbers as /dev/full, made here: the system's own
        // device is never put at risk by the test.
        (
            "mknod",
            vec![
                chr.as_os_str().to_owned(),
                "c".into(),
                "1".into(),
                "7".into(),
            ],
        ),
    ] {
        let made = std::process::Command::new(tool)
            .args(&args)
            .status()
            .expect(tool);
        assert!(made.success(), "{tool} failed (the tests run as root)");
    }
    (vec![link, fifo, chr], target)
}

/// Each of the three is still what it was, and the link's target unchanged.
fn untouched(paths: &[std::path::PathBuf], target: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().file_type();
    assert!(kind(&paths[0]).is_symlink(), "{:?} replaced", paths[0]);
    assert!(kind(&paths[1]).is_fifo(), "{:?} replaced", paths[1]);
    assert!(kind(&paths[2]).is_char_device(), "{:?} replaced", paths[2]);
    assert_eq!(std::fs::read_to_string(target).unwrap(), "kept\n");
}

#[test]
fn train_out_that_is_a_link_a_fifo_or_a_device_exits_2_and_leaves_it() {
    let sb = support::sandbox::Sandbox::new();
    let (paths, target) = non_regular_files(&sb, "artifact");
    for (path, what) in paths
        .iter()
        .zip(["symbolic link", "FIFO", "character device"])
    {
        let mut cmd = sb.command(["train", "--out"]);
        cmd.arg(path);
        let out = support::sandbox::run_within(cmd, QUICK);
        let line = refused(&out, "--out");
        assert!(line.contains(what), "{what} not named in {line:?}");
        assert!(line.contains(&path.display().to_string()), "{line}");
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    untouched(&paths, &target);
    // model.artifact from the environment, the same.
    let mut cmd = sb.command(["train"]);
    cmd.env("MODELWATCH__MODEL__ARTIFACT", &paths[0]);
    refused(&support::sandbox::run_within(cmd, QUICK), "model.artifact");
    untouched(&paths, &target);
    // A regular file is replaced, and no temporary file is left beside it.
    let out = sb.join("model.json");
    std::fs::write(&out, "old").unwrap();
    let mut cmd = sb.command(["train", "--out"]);
    cmd.arg(&out);
    support::sandbox::run_within(cmd, Duration::from_secs(60)).expect_code(0);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("modelwatch-linear-regression/2"));
    let strays: Vec<_> = std::fs::read_dir(sb.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(strays.is_empty(), "temporary files left: {strays:?}");
}

/// The other files written by a rename: the PNG renders, `http.addr`,
/// `final_metrics.txt` (refused by `run` at start, exit 2, nothing run) and
/// the replay's offset file (refused before the broker is reached).
#[test]
fn run_and_replay_outputs_that_are_a_link_a_fifo_or_a_device_exit_2() {
    for name in [
        "error_distribution.png",
        "error_over_time.png",
        "http.addr",
        "final_metrics.txt",
    ] {
        let sb = support::sandbox::Sandbox::new();
        let (paths, target) = non_regular_files(&sb, "out");
        let logs = sb.logs();
        std::fs::create_dir_all(&logs).unwrap();
        for path in &paths {
            let at = logs.join(name);
            std::fs::rename(path, &at).unwrap();
            let out = support::sandbox::run_within(
                sb.run_command(&logs, &["--count", "10", "--rate", "0"]),
                QUICK,
            );
            let line = refused(&out, name);
            assert!(line.contains("not a regular file"), "{line}");
            assert!(
                !logs.join("metric_log.csv").exists(),
                "{name}: the run started"
            );
            std::fs::rename(&at, path).unwrap();
        }
        untouched(&paths, &target);
    }
    // A FIFO to append to would block the run: refused too.
    let sb = support::sandbox::Sandbox::new();
    let (paths, _) = non_regular_files(&sb, "csv");
    let logs = sb.logs();
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::rename(&paths[1], logs.join("metric_log.csv")).unwrap();
    let out = support::sandbox::run_within(
        sb.run_command(&logs, &["--count", "10", "--rate", "0"]),
        QUICK,
    );
    refused(&out, "metric_log.csv");
    // The offset file: checked before anything is read (no broker needed).
    let sb = support::sandbox::Sandbox::new();
    let (paths, target) = non_regular_files(&sb, "offset");
    for path in &paths {
        let mut cmd = sb.command([
            "replay",
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:1/%2f",
            "--from-offset-file",
        ]);
        cmd.arg(path);
        let out = support::sandbox::run_within(cmd, QUICK);
        let line = refused(&out, "--from-offset-file");
        assert!(line.contains("not a regular file"), "{line}");
    }
    untouched(&paths, &target);
}

/// The logs dir's lock file is opened like the logs: a link planted there
/// (even a dangling one, whose target would be created) is not followed,
/// a FIFO is not waited on (the run hung), a device is refused; exit 2,
/// the reason said once, the thing left as it was.
#[test]
fn a_lock_file_that_is_a_link_a_fifo_or_a_device_exits_2_and_leaves_it() {
    let sb = support::sandbox::Sandbox::new();
    let (paths, target) = non_regular_files(&sb, "lock");
    let logs = sb.logs();
    std::fs::create_dir_all(&logs).unwrap();
    let at = logs.join(".modelwatch.lock");
    for path in &paths {
        std::fs::rename(path, &at).unwrap();
        let out = support::sandbox::run_within(
            sb.run_command(&logs, &["--count", "10", "--rate", "0"]),
            QUICK,
        );
        let line = refused(&out, ".modelwatch.lock");
        assert_eq!(line.matches("not a regular file").count(), 1, "{line}");
        assert!(!logs.join("metric_log.csv").exists(), "the run started");
        std::fs::rename(&at, path).unwrap();
    }
    untouched(&paths, &target);
    let nowhere = sb.join("lock.nowhere");
    std::os::unix::fs::symlink(&nowhere, &at).unwrap();
    let out = support::sandbox::run_within(
        sb.run_command(&logs, &["--count", "10", "--rate", "0"]),
        QUICK,
    );
    refused(&out, ".modelwatch.lock");
    assert!(!nowhere.exists(), "a dangling link was followed");
}

/// Colour only on a terminal: stderr to a pipe and the file log have no
/// escape at all; on a pseudo-terminal (`script`) the levels are coloured,
/// unless `NO_COLOR` is set to anything non-empty (no-color.org).
#[test]
fn stderr_is_coloured_only_on_a_terminal_and_never_with_no_color() {
    const ESC: char = '\u{1b}';
    let sb = support::sandbox::Sandbox::new();
    let logs = sb.logs();
    let out = support::sandbox::run_within(
        sb.run_command(&logs, &["--count", "20", "--rate", "0"]),
        QUICK,
    );
    out.expect_code(0);
    assert!(
        out.stderr.contains("INFO"),
        "no log line on stderr: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(ESC),
        "escape codes on a pipe: {:?}",
        out.stderr
    );
    let file = std::fs::read_to_string(logs.join("pipeline.log")).unwrap();
    assert!(file.contains("INFO") && !file.contains(ESC), "{file:?}");
    // The same on a pseudo-terminal: coloured, and plain with NO_COLOR.
    let bin = env!("CARGO_BIN_EXE_modelwatch");
    let config = support::sandbox::default_config();
    for (no_color, coloured) in [
        (None, true),
        (Some(""), true),
        (Some("1"), false),
        (Some("false"), false),
    ] {
        let logs = sb.join(&format!("logs-pty-{}", no_color.unwrap_or("unset")));
        let line = format!(
            "'{bin}' run --config '{}' --logs-dir '{}' --count 20 --rate 0",
            config.display(),
            logs.display()
        );
        let mut cmd = sb.command_of(std::path::Path::new("script"), ["-qec", &line, "/dev/null"]);
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = support::sandbox::run_within(cmd, QUICK);
        out.expect_code(0);
        assert!(
            out.stdout.contains("INFO"),
            "{no_color:?}: {:?}",
            out.stdout
        );
        assert_eq!(
            out.stdout.contains(ESC),
            coloured,
            "NO_COLOR={no_color:?}: {:?}",
            out.stdout
        );
        let file = std::fs::read_to_string(logs.join("pipeline.log")).unwrap();
        assert!(!file.contains(ESC), "colour in the file log: {file:?}");
    }
}
