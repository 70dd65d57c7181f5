//! `modelwatch run --data FILE --target COLUMN --model ARTIFACT` with a
//! classifier of the user's own data, through the real binary: the
//! predicted class of every row and every window's accuracy, log loss,
//! ROC AUC, precision, recall, F1, Brier score and predicted-class drift
//! against scikit-learn and scipy on the same rows
//! (tests/oracle/run_classifier.py, in the test venv), on scikit-learn's
//! breast cancer (binary) and wine (three classes) data; labels that go
//! wrong fire the classifier's rules and no drift rule; a class the model
//! does not know is refused with exit 2.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support;
use crate::support::sandbox::{
    close, fired, full_windows, one_error_line, read_metric_log, run_within, Sandbox,
};

const LIMIT: Duration = Duration::from_secs(120);

fn oracle(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle")
        .join(name)
}

/// The data sets the oracles write (once per test run).
pub(crate) fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run-classifier-data");
        std::fs::create_dir_all(&dir).expect("data dir");
        for (script, command) in [("tabular.py", "make"), ("run_classifier.py", "shuffle")] {
            let mut cmd = Command::new(support::provision::python_with_pika());
            cmd.arg(oracle(script)).arg(command).arg(&dir);
            support::provision::run_bounded(script, cmd, LIMIT).unwrap_or_else(|e| panic!("{e}"));
        }
        dir
    })
}

/// `train --data <csv> --target label` for windows of `window` rows.
pub(crate) fn train(sb: &Sandbox, csv: &str, window: usize) -> PathBuf {
    let out = sb.join(&format!("{csv}.model.json"));
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(data_dir().join(csv))
        .args([
            "--target",
            "label",
            "--baseline-window",
            &window.to_string(),
        ])
        .arg("--out")
        .arg(&out);
    run_within(cmd, LIMIT).expect_code(0);
    out
}

/// `run` of `model` over `csv`, each row once, windows of `window` rows.
fn run(sb: &Sandbox, logs: &Path, csv: &str, model: &Path, window: usize) -> Command {
    sb.run_launch(logs, &[])
        .args(["--data".as_ref(), data_dir().join(csv).as_os_str()])
        .args([
            "--target".as_ref(),
            "label".as_ref(),
            "--model".as_ref(),
            model.as_os_str(),
        ])
        .args(["--order", "sequential", "--rate", "5000"])
        .args([
            "--monitor-window",
            &window.to_string(),
            "--http-listen",
            "off",
        ])
        .command()
}

pub(crate) fn expected(model: &Path, csv: &str, window: usize) -> serde_json::Value {
    let mut cmd = Command::new(support::provision::python_with_pika());
    cmd.arg(oracle("run_classifier.py"))
        .arg("windows")
        .arg(model)
        .arg(data_dir().join(csv))
        .arg("label")
        .arg(window.to_string());
    let out = support::provision::run_bounded("run_classifier.py windows", cmd, LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(out.trim()).expect("oracle JSON")
}

/// Every row's predicted class, and every full window's figures in
/// `metrics_over_time.csv`, against the oracle; returns the windows checked.
fn assert_agrees(logs: &Path, sk: &serde_json::Value, window: usize) -> usize {
    assert_agrees_in(logs, sk, window, true)
}

/// [`assert_agrees`], the oracle's rows in id order (`by_id`) or in the
/// order the metric wrote them (an oracle run over the rows so ordered).
pub(crate) fn assert_agrees_in(
    logs: &Path,
    sk: &serde_json::Value,
    window: usize,
    by_id: bool,
) -> usize {
    let mut rows = read_metric_log(logs);
    if by_id {
        rows.sort_by_key(|r| r.id);
    }
    let predicted = sk["predicted"].as_array().unwrap();
    assert_eq!(rows.len(), predicted.len(), "every row once");
    for (i, (r, p)) in rows.iter().zip(predicted).enumerate() {
        assert_eq!(r.y_pred, p.as_f64().unwrap(), "row {i}: predicted class");
    }
    let windows = sk["windows"].as_array().unwrap();
    let (_, rows) = full_windows(logs, window);
    for row in &rows {
        let seq = row.seq;
        let w = &windows[seq - 1];
        for stat in [
            "accuracy",
            "log_loss",
            "roc_auc",
            "precision",
            "recall",
            "f1",
            "brier",
        ] {
            match w[stat].as_f64() {
                Some(want) => close(&format!("window {seq} {stat}"), row.num(stat), want, 1e-9),
                None => assert_eq!(row.cell(stat), "", "window {seq} {stat}: no figure"),
            }
        }
        let d = &w["prediction"];
        close(
            &format!("window {seq} prediction_p"),
            row.num("prediction_p"),
            d["p"].as_f64().unwrap(),
            1e-6,
        );
        close(
            &format!("window {seq} prediction_psi"),
            row.num("prediction_psi"),
            d["psi"].as_f64().unwrap(),
            1e-6,
        );
    }
    assert_eq!(rows.len(), windows.len(), "every full window closed");
    rows.len()
}

#[test]
fn a_binary_classifier_runs_agrees_with_sklearn_and_alerts_when_its_labels_go_wrong() {
    const WINDOW: usize = 100;
    let sb = Sandbox::new();
    let model = train(&sb, "binary.csv", WINDOW);
    let logs = sb.join("logs");
    let ran = run_within(run(&sb, &logs, "binary_flipped.csv", &model, WINDOW), LIMIT);
    ran.expect_code(0);
    let sk = expected(&model, "binary_flipped.csv", WINDOW);
    let windows = assert_agrees(&logs, &sk, WINDOW);
    println!(
        "{} rows and {windows} windows agree with scikit-learn",
        sk["rows"]
    );
    // Rows 300..500 have the wrong label: the accuracy and the log loss
    // leave their bands (and so do the error figures over class indices);
    // the inputs and the predictions did not move: no drift rule.
    let fired = fired(&logs);
    for rule in ["accuracy_low", "log_loss_high"] {
        assert!(fired.iter().any(|f| f == rule), "{rule} fired: {fired:?}");
    }
    assert!(
        !fired.iter().any(|f| f.contains("drift")),
        "no drift rule: {fired:?}"
    );
    // The two rules said so at start with their thresholds.
    assert!(
        ran.stderr.contains("accuracy_low: accuracy <"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_multiclass_classifier_runs_and_agrees_with_sklearn_and_scipy() {
    const WINDOW: usize = 40;
    let sb = Sandbox::new();
    let model = train(&sb, "multi.csv", WINDOW);
    let logs = sb.join("logs");
    run_within(run(&sb, &logs, "multi_shuffled.csv", &model, WINDOW), LIMIT).expect_code(0);
    let sk = expected(&model, "multi_shuffled.csv", WINDOW);
    let windows = assert_agrees(&logs, &sk, WINDOW);
    assert_eq!(windows, 178 / WINDOW);
    // The rows it was trained on, shuffled: nothing to alert on.
    assert_eq!(fired(&logs), Vec::<String>::new());
}

#[test]
fn a_class_the_model_does_not_know_is_refused_naming_its_row() {
    let sb = Sandbox::new();
    let model = train(&sb, "multi.csv", 40);
    let text = std::fs::read_to_string(data_dir().join("multi.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let at = 5;
    let last = lines[at].rfind(',').unwrap();
    lines[at] = format!("{},class_9", &lines[at][..last]);
    let bad = sb.join("unknown_class.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let logs = sb.join("logs");
    let cmd = sb
        .run_launch(&logs, &[])
        .args(["--data".as_ref(), bad.as_os_str()])
        .args([
            "--target".as_ref(),
            "label".as_ref(),
            "--model".as_ref(),
            model.as_os_str(),
        ])
        .args(["--monitor-window", "40", "--http-listen", "off"])
        .command();
    let out = run_within(cmd, LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    // Line 6 of the file: the header, then the fifth row.
    assert!(
        line.contains("line 6, column \"label\"")
            && line.contains("\"class_9\" is not one of the model's classes"),
        "{line}"
    );
    assert!(!logs.join("metric_log.csv").exists(), "nothing written");
}

/// What a hostile pass found: an artifact whose classes were swapped or
/// whose band's mean is beyond its figure's range, and a scenario that
/// shifts a classifier's target, exit 2 naming what; nothing is written.
#[test]
fn swapped_classes_impossible_bands_and_target_shifts_are_refused() {
    let sb = Sandbox::new();
    let model = train(&sb, "binary.csv", 100);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    let tampered = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut j = json.clone();
        edit(&mut j);
        let path = sb.join(name);
        std::fs::write(&path, j.to_string()).unwrap();
        path
    };
    let swapped = tampered("swapped.json", &|j| {
        let classes = j["model"]["classes"].as_array_mut().unwrap();
        classes.reverse();
    });
    let band = tampered("band.json", &|j| {
        for b in j["reference"]["bands"].as_array_mut().unwrap() {
            if b["metric"] == "accuracy" {
                b["mean"] = serde_json::json!(1.5);
            }
        }
    });
    let run = |model: &Path, logs: &Path, extra: &[&str]| {
        sb.run_launch(logs, &[])
            .args(["--data".as_ref(), data_dir().join("binary.csv").as_os_str()])
            .args([
                "--target".as_ref(),
                "label".as_ref(),
                "--model".as_ref(),
                model.as_os_str(),
            ])
            .args(["--monitor-window", "100", "--http-listen", "off"])
            .args(extra)
            .command()
    };
    let cases: [(&Path, &[&str], &str); 4] = [
        (&swapped, &[], "model.classes"),
        (&band, &[], "reference band accuracy"),
        (
            &model,
            &["--scenario", "start=10,target+=1"],
            "source.scenario.target_bias",
        ),
        (
            &model,
            &["--scenario", "start=10,target~=0.5"],
            "source.scenario.target_noise",
        ),
    ];
    for (i, (model, extra, says)) in cases.into_iter().enumerate() {
        let logs = sb.join(&format!("logs{i}"));
        let out = run_within(run(model, &logs, extra), LIMIT);
        out.expect_code(2);
        let line = one_error_line(&out);
        assert!(line.contains(says), "{says}: {line}");
        assert!(
            !logs.join("metric_log.csv").exists(),
            "{says}: nothing written"
        );
    }
}
