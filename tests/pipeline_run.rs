//! End-to-end runs of `modelwatch run` and `modelwatch train`: what lands in
//! the logs folder, repeatability, appending, repair, pacing, signals, the
//! model artifact and the printed configuration.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use modelwatch::data::Dataset;
use modelwatch::log_format::METRIC_HEADER;
use modelwatch::model::LinearModel;
use modelwatch::sampler::Sampler;

/// Runs `run --count <count> --rate 0 [extra]` into `logs`, expecting exit 0.
fn run_ok(sb: &Sandbox, logs: &Path, extra: &[&str]) -> Output {
    let out = run(sb.run_command(logs, extra));
    out.expect_code(0);
    out
}

fn pairs(rows: &[Row]) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.y_true, r.y_pred)).collect()
}

#[test]
fn run_writes_whole_unique_rows_of_model_outputs_labels_and_the_plot() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    run_ok(
        &sb,
        &logs,
        &["--count", "2000", "--rate", "0", "--seed", "7"],
    );

    let text = fs::read_to_string(logs.join("metric_log.csv")).unwrap();
    assert_eq!(
        text.lines().filter(|l| *l == METRIC_HEADER).count(),
        1,
        "exactly one header line"
    );
    let rows = read_metric_log(&logs);
    assert_eq!(rows.len(), 2000);
    assert_unique_ids(&rows);
    assert_rows_are_model_outputs(&rows);

    let labels = read_labels(&logs);
    assert_eq!(labels.len(), 4000, "a y_true and a y_pred line per sample");
    let truths = labels.iter().filter(|l| l.kind == "y_true").count();
    assert_eq!(truths, 2000);
    // each row's halves are in the labels log under its id
    let row_ids: HashSet<u64> = rows.iter().map(|r| r.id).collect();
    for l in &labels {
        assert!(row_ids.contains(&l.id), "label of unknown id: {l:?}");
    }

    assert_eq!(png_size(&logs.join("error_distribution.png")), (1000, 600));

    // the cwd is empty, so the model was fitted in memory, not loaded
    let log = read_pipeline_log(&logs);
    assert!(log.contains("fitted in memory"), "{log}");
    let finished = log_line(&log, "run finished");
    assert_eq!(log_field(finished, "rows"), Some("2000"), "{finished}");
    assert_eq!(log_field(finished, "unmatched"), Some("0"), "{finished}");
}

#[test]
fn plot_size_comes_from_the_environment() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "100", "--rate", "0"]);
    cmd.env("MODELWATCH__PLOT__WIDTH", "640")
        .env("MODELWATCH__PLOT__HEIGHT", "480");
    run(cmd).expect_code(0);
    assert_eq!(png_size(&logs.join("error_distribution.png")), (640, 480));
    assert_eq!(read_metric_log(&logs).len(), 100);
}

#[test]
fn same_seed_gives_the_same_sequence_and_another_seed_another() {
    let sb = Sandbox::new();
    let (a, b, c) = (sb.join("a"), sb.join("b"), sb.join("c"));
    let args = |seed| ["--count", "1000", "--rate", "0", "--seed", seed];
    run_ok(&sb, &a, &args("7"));
    run_ok(&sb, &b, &args("7"));
    run_ok(&sb, &c, &args("8"));
    let (ra, rb, rc) = (
        read_metric_log(&a),
        read_metric_log(&b),
        read_metric_log(&c),
    );
    assert_eq!(ra.len(), 1000);
    assert_eq!(rb.len(), 1000);
    assert_eq!(rc.len(), 1000);
    assert_eq!(pairs(&ra), pairs(&rb), "same seed, different sequence");
    assert_ne!(
        pairs(&ra),
        pairs(&rc),
        "seeds 7 and 8 gave the same sequence"
    );
    let ids_a: HashSet<u64> = ra.iter().map(|r| r.id).collect();
    assert!(
        rb.iter().all(|r| !ids_a.contains(&r.id)),
        "ids are time-based, so two runs share none"
    );

    // and the sequence is the rows the library's sampler draws for seed 7
    let data = Dataset::embedded();
    let model = LinearModel::fit(data).unwrap();
    let mut sampler = Sampler::new(data, Some(7));
    for (i, r) in ra.iter().enumerate() {
        let row = sampler.next_row();
        let expected = (data.targets[row], model.predict(&data.feature_row(row)));
        assert!(
            r.y_true == expected.0 && (r.y_pred - expected.1).abs() <= 1e-9,
            "row {i}: {r:?}, expected data row {row} {expected:?}"
        );
    }
}

#[test]
fn a_second_run_appends_under_the_same_header() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    run_ok(&sb, &logs, &["--count", "300", "--rate", "0"]);
    let first = read_metric_log(&logs);
    run_ok(&sb, &logs, &["--count", "300", "--rate", "0"]);

    let text = fs::read_to_string(logs.join("metric_log.csv")).unwrap();
    assert_eq!(text.lines().filter(|l| *l == METRIC_HEADER).count(), 1);
    let rows = read_metric_log(&logs);
    assert_eq!(rows.len(), 600);
    assert_eq!(rows[..300], first[..], "the first run's rows were changed");
    assert_unique_ids(&rows);
    assert_rows_are_model_outputs(&rows);
    assert_eq!(read_labels(&logs).len(), 1200);
    let log = read_pipeline_log(&logs);
    assert_eq!(log.matches("run finished").count(), 2, "{log}");
    let loaded = log_line(&log, "plot loaded the existing log");
    assert_eq!(log_field(loaded, "rows"), Some("300"), "{loaded}");
}

/// Runs 300 rows, appends `torn` (no newline) to metric_log.csv, runs 200
/// more, and checks the tear was cut and logged, and nothing else changed.
fn torn_last_line_is_repaired(torn: &str) {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let csv = logs.join("metric_log.csv");
    run_ok(&sb, &logs, &["--count", "300", "--rate", "0"]);
    let before = fs::read_to_string(&csv).unwrap();
    let prior = parse_metric_log(&before).unwrap();
    fs::write(&csv, format!("{before}{torn}")).unwrap();

    run_ok(&sb, &logs, &["--count", "200", "--rate", "0"]);

    let after = fs::read_to_string(&csv).unwrap();
    assert!(
        after.starts_with(&before),
        "the rows before the tear were changed"
    );
    assert!(!after.contains(torn), "the torn fragment is still there");
    let rows = parse_metric_log(&after).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 500);
    assert_eq!(rows[..300], prior[..]);
    assert_unique_ids(&rows);
    assert_rows_are_model_outputs(&rows[300..]);
    let log = read_pipeline_log(&logs);
    let repaired = log_line(&log, "torn last line");
    assert_eq!(
        log_field(repaired, "bytes"),
        Some(torn.len().to_string().as_str()),
        "{repaired}"
    );
}

#[test]
fn a_torn_last_line_is_repaired_by_the_next_run() {
    // what a crash in the middle of a row leaves: fewer than four fields
    torn_last_line_is_repaired("123,45.0,6");
}

#[test]
fn a_torn_last_line_with_four_fields_is_repaired_by_the_next_run() {
    // a tear inside the last field, which still reads as a four-field row
    torn_last_line_is_repaired("123,45.0,6.5,3");
}

#[test]
fn the_rate_is_respected() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let out = run_ok(&sb, &logs, &["--rate", "200", "--count", "100"]);
    // 100 samples at 200/s: the last one is due 99/200 s after the first
    assert!(
        out.elapsed >= Duration::from_millis(400),
        "finished in {:?}",
        out.elapsed
    );
    assert_eq!(read_metric_log(&logs).len(), 100);
    let log = read_pipeline_log(&logs);
    let finished = log_line(&log, "source finished");
    let secs: f64 = log_field(finished, "secs").unwrap().parse().unwrap();
    assert!(
        (0.45..5.0).contains(&secs),
        "the source took {secs} s for 100 samples at 200/s: {finished}"
    );
    assert_eq!(log_field(finished, "emitted"), Some("100"));
}

/// Starts an endless run, waits for rows, sends `signal`, and checks the
/// drain: exit 0, whole files, a decodable plot, nothing in flight lost.
fn signal_drains_and_exits_0(signal: &str) {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let csv = logs.join("metric_log.csv");
    let mut child = Running::spawn(sb.run_command(&logs, &["--count", "0", "--rate", "500"]));
    wait_until("the first rows", Duration::from_secs(20), || {
        assert!(child.is_running(), "modelwatch exited before the signal");
        fs::read_to_string(&csv).is_ok_and(|t| t.lines().count() > 1)
    });
    child.signal(signal);
    let out = child.wait(TIMEOUT);
    out.expect_code(0);

    let text = fs::read_to_string(&csv).unwrap();
    assert!(text.ends_with('\n'), "last byte is not a newline");
    let rows = parse_metric_log(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(!rows.is_empty());
    assert_unique_ids(&rows);
    assert_rows_are_model_outputs(&rows);
    assert_eq!(png_size(&logs.join("error_distribution.png")), (1000, 600));

    let labels = read_labels(&logs);
    let truths: HashSet<u64> = labels
        .iter()
        .filter(|l| l.kind == "y_true")
        .map(|l| l.id)
        .collect();
    let preds: HashSet<u64> = labels
        .iter()
        .filter(|l| l.kind == "y_pred")
        .map(|l| l.id)
        .collect();
    let joined: HashSet<u64> = truths.intersection(&preds).copied().collect();
    let row_ids: HashSet<u64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(rows.len(), joined.len(), "rows vs ids with both halves");
    assert_eq!(row_ids, joined);
    assert_eq!(truths, preds, "samples left half-handled by the drain");

    let log = read_pipeline_log(&logs);
    let stopping = log_line(&log, "stopping: draining");
    assert_eq!(log_field(stopping, "signal"), Some(signal), "{stopping}");
    let finished = log_line(&log, "run finished");
    assert_eq!(
        log_field(finished, "rows"),
        Some(rows.len().to_string().as_str()),
        "{finished}"
    );
}

#[test]
fn sigterm_drains_and_exits_0() {
    signal_drains_and_exits_0("SIGTERM");
}

#[test]
fn sigint_drains_and_exits_0() {
    signal_drains_and_exits_0("SIGINT");
}

#[test]
fn train_writes_the_artifact_and_run_loads_it() {
    let sb = Sandbox::new();
    let artifact = sb.join("m.json");
    let mut train = sb.command(["train", "--config"]);
    train.arg(default_config()).arg("--out").arg(&artifact);
    let out = run(train);
    out.expect_code(0);
    assert!(out.stdout.contains("m.json"), "{}", out.stdout);

    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&artifact).unwrap()).unwrap();
    let intercept = json["intercept"].as_f64().expect("an intercept");
    let sklearn = 152.13348416289597;
    assert!(
        ((intercept - sklearn) / sklearn).abs() <= 1e-6,
        "intercept {intercept}"
    );
    let saved: LinearModel = serde_json::from_value(json).unwrap();
    let fitted = LinearModel::fit(Dataset::embedded()).unwrap();
    assert_eq!(saved.training.rows, 442);
    for (a, b) in saved.coefficients.iter().zip(&fitted.coefficients) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }

    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "50", "--rate", "0"]);
    cmd.env("MODELWATCH__MODEL__ARTIFACT", &artifact);
    run(cmd).expect_code(0);
    let log = read_pipeline_log(&logs);
    let loaded = log_line(&log, "model loaded");
    assert_eq!(
        log_field(loaded, "artifact"),
        Some(artifact.to_str().unwrap()),
        "{loaded}"
    );
    assert!(!log.contains("fitted in memory"), "{log}");
    let rows = read_metric_log(&logs);
    assert_eq!(rows.len(), 50);
    assert_rows_are_model_outputs(&rows);
}

#[test]
fn a_corrupt_artifact_is_refused_with_exit_2() {
    let sb = Sandbox::new();
    let artifact = sb.join("bad.json");
    fs::write(&artifact, "{oops").unwrap();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "50", "--rate", "0"]);
    cmd.env("MODELWATCH__MODEL__ARTIFACT", &artifact);
    let out = run(cmd);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(line.contains(artifact.to_str().unwrap()), "{line}");
    assert!(!logs.join("metric_log.csv").exists(), "rows were written");
}

#[test]
fn print_config_hides_the_amqp_password() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--print-config"]);
    cmd.env("AMQP_URL", "amqp://u:s3cret@host:5672/%2f");
    let out = run(cmd);
    out.expect_code(0);
    assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    assert!(out.stdout.contains("***"), "{}", out.stdout);
    let printed: toml::Value = toml::from_str(&out.stdout).expect("printed config is TOML");
    assert_eq!(
        printed["bridge"]["url"].as_str(),
        Some("amqp://u:***@host:5672/%2f")
    );
    assert_eq!(printed["bridge"]["enabled"].as_bool(), Some(true));
    assert_eq!(printed["logs"]["dir"].as_str(), logs.to_str());
    assert!(!logs.exists(), "--print-config created the logs dir");
}
