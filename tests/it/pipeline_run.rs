//! End-to-end runs of `modelwatch run` and `modelwatch train`: what lands in
//! the logs folder, repeatability, appending, repair, pacing, signals, the
//! model artifact and the printed configuration.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support;
use crate::support::sandbox::*;
use modelwatch::metric::log_format::METRIC_HEADER;

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
    let _timing = support::serial::timing_lock();
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

// ---------------------------------------------------------------------------
// Log rotation: SIGHUP after a rename (logrotate), and the size bound.

/// `(kind, id)` of every line of a labels file, checked whole.
fn label_keys(path: &Path) -> Vec<(String, u64)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{}: torn",
        path.display()
    );
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "{}: {l:?}", path.display());
            let id = f[2].strip_prefix("id=").and_then(|i| i.parse().ok());
            (f[1].to_owned(), id.unwrap_or_else(|| panic!("{l:?}")))
        })
        .collect()
}

/// The `seq` column of a `metrics_over_time.csv` (header first, checked).
fn window_seqs(path: &Path) -> Vec<u64> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("seq,")),
        "{}: no header first",
        path.display()
    );
    lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// `name`, `name.1`, … of a log in `logs`, oldest first (the current last).
fn log_family(logs: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut old: Vec<(u32, std::path::PathBuf)> = fs::read_dir(logs)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix(name)?
                .strip_prefix('.')?;
            Some((n.parse().ok()?, p))
        })
        .collect();
    old.sort_by_key(|b| std::cmp::Reverse(b.0));
    let mut all: Vec<_> = old.into_iter().map(|(_, p)| p).collect();
    all.push(logs.join(name));
    all
}

/// Panics unless no file of the family is longer than `max` by more than
/// its longest line (a file ends between two rows, at most one row late).
fn assert_bounded(files: &[std::path::PathBuf], max: u64) {
    for f in files {
        let text = fs::read_to_string(f).unwrap();
        let longest = text.lines().map(|l| l.len() as u64 + 1).max().unwrap_or(0);
        let len = text.len() as u64;
        assert!(
            len <= max || len <= max + longest && text.lines().count() <= 2,
            "{} is {len} bytes, over logs.max_bytes {max} by more than one row",
            f.display()
        );
        assert!(text.ends_with('\n'), "{} torn", f.display());
    }
}

#[test]
fn sighup_after_a_rename_continues_in_new_files_losing_and_doubling_nothing() {
    // Every window counted: the monitor (an observer) must keep up.
    let _timing = support::serial::timing_lock();
    let sb = Sandbox::new();
    let logs = sb.logs();
    let csv = logs.join("metric_log.csv");
    let mut child = Running::spawn(
        sb.run_command(&logs, &["--count", "3000", "--rate", "1000", "--seed", "4"]),
    );
    wait_until("rows and a closed window", Duration::from_secs(20), || {
        assert!(child.is_running(), "modelwatch exited before the rename");
        let rows = fs::read_to_string(&csv).map_or(0, |t| t.lines().count());
        let windows =
            fs::read_to_string(logs.join("metrics_over_time.csv")).map_or(0, |t| t.lines().count());
        rows > 600 && windows > 1
    });
    let names = [
        "metric_log.csv",
        "labels_log.txt",
        "metrics_over_time.csv",
        "pipeline.log",
    ];
    // What logrotate does by default: rename, then `postrotate` sends SIGHUP.
    for name in names {
        fs::rename(logs.join(name), logs.join(format!("{name}.rotated"))).unwrap();
    }
    child.signal("HUP");
    let out = child.wait(TIMEOUT);
    out.expect_code(0);

    let old = parse_metric_log(&fs::read_to_string(logs.join("metric_log.csv.rotated")).unwrap())
        .unwrap_or_else(|e| panic!("old file: {e}"));
    // Strict: the new file starts with the header.
    let new = parse_metric_log(&fs::read_to_string(&csv).unwrap())
        .unwrap_or_else(|e| panic!("new file: {e}"));
    assert!(
        !old.is_empty() && !new.is_empty(),
        "{} + {}",
        old.len(),
        new.len()
    );
    let all: Vec<Row> = old.iter().chain(&new).copied().collect();
    assert_eq!(all.len(), 3000, "rows lost or doubled across the two files");
    assert_unique_ids(&all);
    assert_rows_are_model_outputs(&all);
    let last_old = old.iter().map(|r| r.id).max().unwrap();
    assert!(
        new.iter().all(|r| r.id > last_old),
        "rows written after the reopen went to the renamed file"
    );

    let mut labels = label_keys(&logs.join("labels_log.txt.rotated"));
    let new_labels = label_keys(&logs.join("labels_log.txt"));
    assert!(!new_labels.is_empty());
    labels.extend(new_labels);
    assert_eq!(labels.len(), 6000);
    assert_eq!(
        labels.iter().collect::<HashSet<_>>().len(),
        6000,
        "a label twice"
    );

    // The monitor's numbering goes on in the new file, after the old one's.
    let old_seqs = window_seqs(&logs.join("metrics_over_time.csv.rotated"));
    let new_seqs = window_seqs(&logs.join("metrics_over_time.csv"));
    let seqs: Vec<u64> = old_seqs.iter().chain(&new_seqs).copied().collect();
    assert_eq!(
        seqs,
        (1..=6).collect::<Vec<_>>(),
        "{old_seqs:?} + {new_seqs:?}"
    );

    let log = read_pipeline_log(&logs);
    assert!(
        log.contains("SIGHUP") && log.contains("run finished"),
        "{log}"
    );
    let old_log = fs::read_to_string(logs.join("pipeline.log.rotated")).unwrap();
    assert!(!old_log.contains("run finished"), "{old_log}");
}

/// After logrotate's rename, something that is not a regular file is
/// planted at `pipeline.log` before the SIGHUP: it is neither followed nor
/// replaced, one stderr line names it (not one per log line), the lines are
/// counted, and the run ends with exit 1 and the count on its exit line.
/// Returns the path of `pipeline.log`.
fn pipeline_log_replaced_by(sb: &Sandbox, plant: impl FnOnce(&Path)) -> std::path::PathBuf {
    let logs = sb.logs();
    let csv = logs.join("metric_log.csv");
    let mut child = Running::spawn(
        sb.run_command(&logs, &["--count", "3000", "--rate", "1000", "--seed", "4"]),
    );
    wait_until("rows", Duration::from_secs(20), || {
        assert!(child.is_running(), "modelwatch exited before the rename");
        fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) > 600
    });
    let log = logs.join("pipeline.log");
    fs::rename(&log, logs.join("pipeline.log.rotated")).unwrap();
    plant(&log);
    child.signal("HUP");
    let out = child.wait(TIMEOUT);
    out.expect_code(1);

    let refused: Vec<&str> = plain_stderr_lines(&out.stderr)
        .into_iter()
        .filter(|l| l.contains("not a regular file"))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "one line, not one per log line:\n{}",
        out.stderr
    );
    assert!(
        refused[0].starts_with("modelwatch: error:")
            && refused[0].contains(&*log.to_string_lossy()),
        "{}",
        refused[0]
    );
    let exit_line = plain_stderr_lines(&out.stderr)
        .last()
        .copied()
        .unwrap_or_default()
        .to_owned();
    let n: u64 = exit_line
        .split(" lines of pipeline.log could not be written and were dropped")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count on the exit line: {exit_line}\n{}", out.stderr));
    assert!(n > 0, "{exit_line}");
    let counted = Scrape::final_of(&logs).count("modelwatch_pipeline_log_dropped_total", &[]);
    assert!(counted >= n, "{counted} counted, {n} on the exit line");
    // The data logs are whole; the old pipeline.log ends before the SIGHUP
    // (its line went to what was planted, i.e. nowhere).
    assert_eq!(read_metric_log(&logs).len(), 3000);
    let old = fs::read_to_string(logs.join("pipeline.log.rotated")).unwrap();
    assert!(
        !old.contains("SIGHUP") && !old.contains("run finished"),
        "{old}"
    );
    assert!(out.stderr.contains("SIGHUP"), "{}", out.stderr);
    log
}

#[test]
fn a_fifo_planted_at_pipeline_log_after_a_rename_is_refused_counted_and_exits_1() {
    let sb = Sandbox::new();
    let log = pipeline_log_replaced_by(&sb, |log| {
        let made = std::process::Command::new("mkfifo")
            .arg(log)
            .status()
            .unwrap();
        assert!(made.success());
    });
    let kind = fs::symlink_metadata(&log).unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&kind),
        "the FIFO was replaced"
    );
}

#[test]
fn a_symlink_planted_at_pipeline_log_after_a_rename_is_not_followed_counted_and_exits_1() {
    let sb = Sandbox::new();
    let victim = sb.join("victim.txt");
    fs::write(&victim, "not modelwatch's\n").unwrap();
    let log =
        pipeline_log_replaced_by(&sb, |log| std::os::unix::fs::symlink(&victim, log).unwrap());
    assert!(
        fs::symlink_metadata(&log).unwrap().file_type().is_symlink(),
        "the link was replaced"
    );
    assert_eq!(fs::read_link(&log).unwrap(), victim);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "not modelwatch's\n");
}

#[test]
fn logs_rotate_by_size_keeping_at_most_keep_old_files() {
    const MAX: u64 = 4096;
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "5000", "--rate", "0", "--seed", "6"]);
    cmd.env("MODELWATCH__LOGS__MAX_BYTES", MAX.to_string())
        .env("MODELWATCH__LOGS__KEEP", "1000");
    run(cmd).expect_code(0);

    // Every row is in exactly one file; every file starts with the header.
    let csvs = log_family(&logs, "metric_log.csv");
    assert!(
        csvs.len() > 60,
        "{} files of 5000 rows of ~60 bytes",
        csvs.len()
    );
    assert_bounded(&csvs, MAX);
    let mut rows = Vec::new();
    for f in &csvs {
        let text = fs::read_to_string(f).unwrap();
        rows.extend(parse_metric_log(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
    }
    assert_eq!(rows.len(), 5000);
    assert_unique_ids(&rows);
    assert!(
        rows.windows(2).all(|w| w[0].id < w[1].id),
        "the files, oldest first, are not in the order the rows were written"
    );
    assert_rows_are_model_outputs(&rows);

    let labels_files = log_family(&logs, "labels_log.txt");
    assert_bounded(&labels_files, MAX);
    let labels: Vec<_> = labels_files.iter().flat_map(|f| label_keys(f)).collect();
    assert_eq!(labels.iter().collect::<HashSet<_>>().len(), 10000);

    let windows = log_family(&logs, "metrics_over_time.csv");
    assert!(windows.len() > 1, "10 windows of ~1.2 KB did not rotate");
    let seqs: Vec<u64> = windows.iter().flat_map(|f| window_seqs(f)).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());

    let pipeline = log_family(&logs, "pipeline.log");
    assert!(pipeline.len() > 1, "pipeline.log did not rotate");
    assert_bounded(&pipeline, MAX);
    assert!(read_pipeline_log(&logs).contains("run finished"));

    // keep = 2: the oldest go, at most two old files of each log stay.
    let logs = sb.join("keep2");
    let mut cmd = sb.run_command(&logs, &["--count", "3000", "--rate", "0", "--seed", "6"]);
    cmd.env("MODELWATCH__LOGS__MAX_BYTES", MAX.to_string())
        .env("MODELWATCH__LOGS__KEEP", "2");
    run(cmd).expect_code(0);
    for name in ["metric_log.csv", "labels_log.txt"] {
        let family = log_family(&logs, name);
        assert_eq!(family.len(), 3, "{name}: {family:?}");
        assert_bounded(&family, MAX);
    }
    let kept: Vec<Row> = log_family(&logs, "metric_log.csv")
        .iter()
        .flat_map(|f| parse_metric_log(&fs::read_to_string(f).unwrap()).unwrap())
        .collect();
    assert!(kept.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        Scrape::final_of(&logs).count("modelwatch_rows_written_total", &[]),
        3000
    );

    // A bound below one row per file is refused before anything starts.
    let mut cmd = sb.run_command(&sb.join("tiny"), &["--count", "10"]);
    cmd.env("MODELWATCH__LOGS__MAX_BYTES", "100");
    let out = run(cmd);
    out.expect_code(2);
    assert!(
        one_error_line(&out).contains("logs.max_bytes"),
        "{}",
        out.stderr
    );
}

#[test]
fn logs_never_follow_or_replace_what_is_not_a_regular_file() {
    let sb = Sandbox::new();
    let victim = sb.join("victim.txt");
    fs::write(&victim, "not modelwatch's\n").unwrap();

    // A symbolic link where the log goes: refused at start, not followed.
    let logs = sb.join("linked");
    fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(&victim, logs.join("metric_log.csv")).unwrap();
    let out = run(sb.run_command(&logs, &["--count", "100", "--rate", "0"]));
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(
        line.contains("metric_log.csv") && line.contains("not a regular file"),
        "{line}"
    );

    // A symbolic link where a rotation would rename to: the rotation is
    // refused (never replaced), the run ends with exit 1 counting the rows.
    let logs = sb.join("rotating");
    fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(&victim, logs.join("metric_log.csv.1")).unwrap();
    let mut cmd = sb.run_command(&logs, &["--count", "3000", "--rate", "0", "--no-monitor"]);
    cmd.env("MODELWATCH__LOGS__MAX_BYTES", "4096")
        .env("MODELWATCH__METRIC__MAX_RESTARTS", "1");
    let out = run(cmd);
    out.expect_code(1);
    let line = one_error_line(&out);
    assert!(line.contains("rows could not be written"), "{line}");
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "not modelwatch's\n");
    assert!(fs::symlink_metadata(logs.join("metric_log.csv.1"))
        .unwrap()
        .file_type()
        .is_symlink());
    // What was written is whole.
    assert!(!read_metric_log(&logs).is_empty());
}

#[test]
fn the_monitor_numbering_goes_on_after_a_rotation_and_a_restart() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let args = ["--count", "1000", "--rate", "0", "--seed", "7"];
    run_ok(&sb, &logs, &args);
    assert_eq!(window_seqs(&logs.join("metrics_over_time.csv")), [1, 2]);
    // As a rotation leaves it: the windows in `.1`, a new file with only
    // its header.
    let current = logs.join("metrics_over_time.csv");
    fs::rename(&current, logs.join("metrics_over_time.csv.1")).unwrap();
    let header = fs::read_to_string(logs.join("metrics_over_time.csv.1"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    fs::write(&current, format!("{header}\n")).unwrap();
    run_ok(&sb, &logs, &args);
    assert_eq!(
        window_seqs(&current),
        [3, 4],
        "the numbering restarted after a rotation"
    );
}
