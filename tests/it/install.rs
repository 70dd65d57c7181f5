//! A user's install: the binary alone, run from any folder (issue 13).
//!
//! - a copy of the built binary, run from an empty folder with no config
//!   file anywhere, runs on the built-in defaults (and says so once), writes
//!   its CSV and PNG to `./logs` and exits 0;
//! - a config named by `--config` or `MODELWATCH_CONFIG` is used, and one
//!   that does not exist is an error (exit 2);
//! - `modelwatch config --default` prints a complete file that loads to the
//!   built-in defaults;
//! - completions and the man page come from the clap definitions;
//! - `--version` names the git commit of the build.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::sandbox::*;
use modelwatch::config::{Overrides, Settings};

/// The built binary copied into `<sandbox>/bin`: nothing of the repository
/// is reachable from its path.
fn installed(sb: &Sandbox) -> std::path::PathBuf {
    let bin = sb.join("bin");
    fs::create_dir(&bin).unwrap();
    let exe = bin.join("modelwatch");
    fs::copy(env!("CARGO_BIN_EXE_modelwatch"), &exe).expect("copying the binary");
    exe
}

#[test]
fn a_copied_binary_runs_from_an_empty_folder_on_the_built_in_defaults() {
    let sb = Sandbox::new();
    let exe = installed(&sb);
    assert_eq!(fs::read_dir(sb.cwd()).unwrap().count(), 0, "cwd not empty");
    let out = run(sb.command_of(&exe, ["run", "--count", "100", "--rate", "0"]));
    out.expect_code(0);
    let logs = sb.cwd().join("logs");
    let rows = read_metric_log(&logs);
    assert_eq!(rows.len(), 100);
    assert_rows_are_model_outputs(&rows);
    let (w, h) = png_size(&logs.join("error_distribution.png"));
    let defaults = Settings::default();
    assert_eq!((w, h), (defaults.plot.width, defaults.plot.height));
    let log = read_pipeline_log(&logs);
    log_line(&log, "settings from the built-in defaults");
}

#[test]
fn a_named_config_is_used_and_a_missing_one_is_an_error() {
    let sb = Sandbox::new();
    let config = sb.join("mine.toml");
    fs::write(&config, "[source]\ncount = 7\nrate = 0\n").unwrap();
    // MODELWATCH_CONFIG names the file.
    let mut cmd = sb.command(["run", "--logs-dir"]);
    cmd.arg(sb.logs()).env("MODELWATCH_CONFIG", &config);
    run(cmd).expect_code(0);
    assert_eq!(read_metric_log(&sb.logs()).len(), 7);
    let log = read_pipeline_log(&sb.logs());
    log_line(&log, config.to_str().unwrap());

    // A named file that does not exist: exit 2 naming it, by flag or by env
    // (the variable is named, not its value: an environment value that does
    // not resolve is never quoted back).
    let missing = sb.join("nowhere.toml");
    let mut by_flag = sb.command(["run", "--config"]);
    by_flag.arg(&missing);
    let mut by_env = sb.command(["run"]);
    by_env.env("MODELWATCH_CONFIG", &missing);
    for (cmd, named, quoted) in [
        (by_flag, missing.to_str().unwrap(), true),
        (by_env, "MODELWATCH_CONFIG", false),
    ] {
        let out = run(cmd);
        out.expect_code(2);
        let line = one_error_line(&out);
        assert!(line.contains(named), "{line}");
        assert_eq!(line.contains(missing.to_str().unwrap()), quoted, "{line}");
        assert!(line.contains("not found"), "{line}");
    }
    assert!(!sb.cwd().join("logs").exists(), "a run started");
}

#[test]
fn the_default_config_printout_round_trips() {
    let sb = Sandbox::new();
    let out = run(sb.command(["config", "--default"]));
    out.expect_code(0);
    let file = sb.join("my.toml");
    fs::write(&file, &out.stdout).unwrap();
    // Complete and commented: every section, with comments.
    for section in [
        "[source]",
        "[model]",
        "[metric]",
        "[plot]",
        "[logs]",
        "[bridge]",
        "[inbound]",
        "[http]",
        "[monitor]",
        "[[monitor.rules]]",
    ] {
        assert!(out.stdout.contains(section), "{section} missing");
    }
    assert!(out.stdout.lines().filter(|l| l.starts_with('#')).count() > 50);
    // It loads, and equals the built-in defaults ...
    let loaded = Settings::load_with_env(&file, &Overrides::default(), vec![]).unwrap();
    assert_eq!(loaded, Settings::default());
    // ... also as the binary sees it: the same effective settings as with
    // no file at all.
    let mut with_file = sb.command(["run", "--print-config", "--config"]);
    with_file.arg(&file);
    let with_file = run(with_file);
    with_file.expect_code(0);
    let without = run(sb.command(["run", "--print-config"]));
    without.expect_code(0);
    assert_eq!(with_file.stdout, without.stdout);
    assert!(without.stdout.contains("[inbound]"), "{}", without.stdout);
}

#[test]
fn completions_and_the_man_page_name_every_command() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(sb.command(["completions", shell]));
        out.expect_code(0);
        for word in ["run", "train", "bench", "replay", "legacy-inbound"] {
            assert!(out.stdout.contains(word), "{shell}: {word} missing");
        }
    }
    let out = run(sb.command(["completions", "tcsh"]));
    out.expect_code(2);
    let out = run(sb.command(["man"]));
    out.expect_code(0);
    assert!(out.stdout.starts_with(".ie") || out.stdout.contains(".TH modelwatch"));
    for word in ["run", "train", "bench", "replay", "MODELWATCH_CONFIG"] {
        assert!(out.stdout.contains(word), "man: {word} missing");
    }
}

#[test]
fn version_names_the_git_commit_of_the_build() {
    let sb = Sandbox::new();
    let out = run(sb.command(["--version"]));
    out.expect_code(0);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.stdout.trim(),
        format!("modelwatch {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}
