//! End-to-end runs of `modelwatch run` and `modelwatch train`: what lands in
//! the logs folder, repeatability, appending, repair, pacing, signals, the
//! model artifact and the printed configuration.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use modelwatch::log_format::METRIC_HEADER;

/// Runs `run --count <count> --rate 0 [extra]` into `logs`, expecting exit 0.
fn run_ok(sb: &Sandbox, logs: &Path, extra: &[&str]) -> Output {
    let out = run(sb.run_command(logs, extra));
    out.expect_code(0);
    out
}

fn pairs(rows: &[Row]) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.y_true, r.y_pred)).collect()
}

/// Panics unless every row has exactly one `y_true` and one `y_pred` label
/// under its id, with the row's values, and no label is of another id.
fn assert_labels_match_rows(labels: &[Label], rows: &[Row]) {
    let by_id: std::collections::HashMap<u64, &Row> = rows.iter().map(|r| (r.id, r)).collect();
    let mut seen: HashSet<(u64, &str)> = HashSet::new();
    for l in labels {
        let row = by_id
            .get(&l.id)
            .unwrap_or_else(|| panic!("label of an id with no row: {l:?}"));
        let expected = if l.kind == "y_true" {
            row.y_true
        } else {
            row.y_pred
        };
        assert_eq!(
            l.value.to_bits(),
            expected.to_bits(),
            "label {l:?} vs row {row:?}"
        );
        assert!(seen.insert((l.id, l.kind.as_str())), "label twice: {l:?}");
    }
    assert_eq!(seen.len(), 2 * rows.len(), "rows without both labels");
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
    assert_labels_match_rows(&labels, &rows);

    assert_eq!(
        assert_png_has_a_picture(&logs.join("error_distribution.png")),
        (1000, 600)
    );

    // the cwd is empty, so the model was fitted in memory, not loaded
    let log = read_pipeline_log(&logs);
    assert!(log.contains("fitted in memory"), "{log}");
    let reg = Scrape::final_of(&logs);
    assert_eq!(reg.count("modelwatch_rows_written_total", &[]), 2000);
    assert_eq!(reg.count("modelwatch_samples_emitted_total", &[]), 2000);
    assert_eq!(reg.count("modelwatch_join_waiting", &[]), 0);
    assert_eq!(reg.count("modelwatch_absolute_error_count", &[]), 2000);
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

    // and the sequence is real samples (sklearn's target and prediction of
    // a data row), drawn across the data set: 1000 uniform draws from 442
    // rows hit about 396 distinct rows (fewer than 360 has odds below 1e-6)
    assert_rows_are_model_outputs(&ra);
    let distinct: HashSet<usize> = ra
        .iter()
        .map(|r| oracle::row_of_outputs(r.y_true, r.y_pred).unwrap())
        .collect();
    assert!(
        distinct.len() >= 360,
        "1000 draws hit only {} distinct rows",
        distinct.len()
    );
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
    run_ok(&sb, &logs, &["--rate", "200", "--count", "100"]);
    let rows = read_metric_log(&logs);
    assert_eq!(rows.len(), 100);
    // The ids are the emission times in microseconds: sample i is due i/200 s
    // after the first, never earlier, and (allowing for a busy machine) at
    // most 100 ms late.
    let mut ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    for (i, id) in ids.iter().enumerate() {
        let at = (id - ids[0]) as f64 / 1e6;
        let due = i as f64 / 200.0;
        assert!(
            at >= due - 0.001 && at <= due + 0.1,
            "sample {i} emitted {at:.4} s after the first, due at {due:.4} s"
        );
    }
    let span = (ids[99] - ids[0]) as f64 / 1e6;
    assert!(
        (0.494..0.6).contains(&span),
        "100 samples at 200/s spanned {span} s, not 99/200 s"
    );
    let reg = Scrape::final_of(&logs);
    assert_eq!(reg.count("modelwatch_samples_emitted_total", &[]), 100);
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
    assert_eq!(
        assert_png_has_a_picture(&logs.join("error_distribution.png")),
        (1000, 600)
    );

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

    assert_labels_match_rows(&labels, &rows);

    let log = read_pipeline_log(&logs);
    // every sample the source emitted before it stopped was drained to a row
    let reg = Scrape::final_of(&logs);
    assert_eq!(
        reg.count("modelwatch_samples_emitted_total", &[]),
        rows.len() as u64,
        "samples emitted vs rows written"
    );
    assert_eq!(
        reg.count("modelwatch_rows_written_total", &[]),
        rows.len() as u64
    );
    let stopping = log_line(&log, "stopping: draining");
    assert_eq!(log_field(stopping, "signal"), Some(signal), "{stopping}");
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
    let sklearn = oracle::SKLEARN_INTERCEPT;
    assert!(
        ((intercept - sklearn) / sklearn).abs() <= 1e-9,
        "intercept {intercept}"
    );
    assert_eq!(json["training"]["rows"].as_u64(), Some(442));
    assert_eq!(
        json["format"].as_str(),
        Some("modelwatch-linear-regression/2")
    );
    // The baseline for the default window: 2,000 bootstrap windows of 500,
    // seed 42. Its MAE band against numpy's estimate of the same quantity
    // over 200,000 windows (`/work/venv-sci/bin/python tests/oracle/baseline.py`:
    // mean 43.27709422966184, std 1.4015886633377992), within four
    // Monte-Carlo standard errors of a 2,000-window estimate (0.0312 and 0.0221).
    let baseline = &json["baseline"];
    assert_eq!(baseline["window"].as_u64(), Some(500));
    assert_eq!(baseline["windows"].as_u64(), Some(2000));
    assert_eq!(baseline["seed"].as_u64(), Some(42));
    let mae_mean = baseline["mae"]["mean"].as_f64().expect("baseline.mae.mean");
    let mae_std = baseline["mae"]["std"].as_f64().expect("baseline.mae.std");
    assert!(
        (mae_mean - 43.27709422966184).abs() <= 4.0 * 0.0312,
        "{mae_mean}"
    );
    assert!(
        (mae_std - 1.4015886633377992).abs() <= 4.0 * 0.0221,
        "{mae_std}"
    );
    assert!(
        out.stdout
            .contains("baseline: 2000 bootstrap windows of 500 rows"),
        "{}",
        out.stdout
    );
    let coefficients: Vec<f64> = json["coefficients"]
        .as_array()
        .expect("coefficients")
        .iter()
        .map(|c| c.as_f64().expect("a number"))
        .collect();
    assert_eq!(coefficients.len(), 10);
    for (a, b) in coefficients.iter().zip(oracle::SKLEARN_COEFFICIENTS) {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs(),
            "coefficient {a} vs sklearn's {b}"
        );
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
fn train_takes_the_baseline_window_and_refuses_bad_ones() {
    let sb = Sandbox::new();
    let artifact = sb.join("m.json");
    let mut train = sb.command(["train", "--out"]);
    train.arg(&artifact).args([
        "--baseline-window",
        "50",
        "--baseline-windows",
        "300",
        "--baseline-seed",
        "7",
    ]);
    run(train).expect_code(0);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&artifact).unwrap()).unwrap();
    assert_eq!(json["baseline"]["window"].as_u64(), Some(50));
    assert_eq!(json["baseline"]["windows"].as_u64(), Some(300));
    assert_eq!(json["baseline"]["seed"].as_u64(), Some(7));

    for (flags, named) in [
        (["--baseline-window", "0"], "--baseline-window"),
        (["--baseline-windows", "99"], "--baseline-windows"),
        (["--baseline-window", "nope"], "--baseline-window"),
    ] {
        let mut train = sb.command(["train", "--out"]);
        train.arg(sb.join("never.json")).args(flags);
        let out = run(train);
        out.expect_code(2);
        assert!(out.stderr.contains(named), "{flags:?}: {}", out.stderr);
        assert!(!sb.join("never.json").exists());
    }
    // In range one by one, too many rows together.
    let mut train = sb.command(["train", "--out"]);
    train.arg(sb.join("never.json")).args([
        "--baseline-window",
        "100000",
        "--baseline-windows",
        "100000",
    ]);
    let out = run(train);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(line.contains("--baseline-windows"), "{line}");
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
