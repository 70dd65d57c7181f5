//! `modelwatch train --data FILE --target COLUMN` on data of the user's own:
//! the model the binary writes against scikit-learn fitted on the same
//! rows with the same preprocessing (tests/oracle/tabular.py, in the test
//! venv), and every bad input refused with exit 2 naming file, line and
//! column, nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support;
use crate::support::sandbox::{run_within, Sandbox};

const TRAIN: Duration = Duration::from_secs(120);

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/tabular.py")
}

/// The data sets the oracle writes (once per test run).
fn data_dir() -> &'static Path {
    // Under cargo's temp dir for tests (target/tmp), made again by each
    // test run: nothing is left in /tmp.
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train-own-data");
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut cmd = Command::new(support::provision::python_with_pika());
        cmd.arg(oracle()).arg("make").arg(&dir);
        support::provision::run_bounded("tabular.py make", cmd, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{e}"));
        dir
    })
}

/// Trains on `csv`, returns the artifact's path, stdout, and the oracle's figures.
fn train_and_check(
    sb: &Sandbox,
    csv: &str,
    target: &str,
) -> (serde_json::Value, String, serde_json::Value) {
    train_and_check_with(sb, csv, target, &[])
}

/// [`train_and_check`] with more flags for `train`.
fn train_and_check_with(
    sb: &Sandbox,
    csv: &str,
    target: &str,
    extra: &[&str],
) -> (serde_json::Value, String, serde_json::Value) {
    let data = data_dir().join(csv);
    let out = sb.join(&format!("{csv}.model.json"));
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&data)
        .args(["--target", target, "--out"])
        .arg(&out)
        .args(extra);
    let ran = run_within(cmd, TRAIN);
    ran.expect_code(0);
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("artifact written"))
            .expect("artifact is JSON");
    let mut cmd = Command::new(support::provision::python_with_pika());
    cmd.arg(oracle())
        .arg("check")
        .arg(&out)
        .arg(&data)
        .arg(target);
    let figures = support::provision::run_bounded("tabular.py check", cmd, TRAIN)
        .unwrap_or_else(|e| panic!("{e}"));
    let figures: serde_json::Value = serde_json::from_str(figures.trim()).expect("oracle JSON");
    println!("{csv}: {}\n{figures}", ran.stdout.trim());
    (artifact, ran.stdout.clone(), figures)
}

/// The artifact's monitor reference against numpy (the oracle's figures):
/// the distributions equal, and the band of every linear window metric
/// centred on the figure over all rows (|z| < 5 over 2,000 windows).
fn assert_reference(sk: &serde_json::Value, metrics: &[&str]) {
    let diff = sk["ref_max_diff"].as_f64().expect("ref_max_diff");
    assert!(diff < 1e-9, "reference distributions differ by {diff}");
    assert_eq!(sk["ref_counts_equal"], true, "{sk}");
    assert_eq!(sk["band_metrics"], serde_json::json!(metrics), "{sk}");
    let z = sk["band_z"].as_object().expect("band_z");
    assert!(!z.is_empty());
    for (metric, z) in z {
        let z = z.as_f64().unwrap();
        assert!(
            z.abs() < 5.0,
            "{metric}: the band's mean is {z} standard errors off"
        );
    }
}

const REGRESSION_METRICS: [&str; 5] = ["mae", "rmse", "r2", "bias", "max_error"];
/// A classifier's bands: those of a regression over the class indices its
/// records carry, then its own.
const CLASSIFIER_BANDS: [&str; 12] = [
    "mae",
    "rmse",
    "r2",
    "bias",
    "max_error",
    "accuracy",
    "log_loss",
    "roc_auc",
    "precision",
    "recall",
    "f1",
    "brier",
];

/// A classifier's probabilities within 1e-4 of scikit-learn's, the printed
/// accuracy and log loss equal to its figures, and its reference checked.
fn assert_classifier_agrees(stdout: &str, sk: &serde_json::Value) {
    let diff = sk["max_pred_diff"].as_f64().unwrap();
    assert!(diff < 1e-4, "largest probability difference {diff}");
    let (acc, loss) = (figure(stdout, "accuracy "), figure(stdout, "log loss "));
    let (sk_acc, sk_loss) = (
        sk["accuracy"].as_f64().unwrap(),
        sk["log_loss"].as_f64().unwrap(),
    );
    assert!(
        (acc - sk_acc).abs() < 1e-6,
        "accuracy {acc} vs sklearn {sk_acc}"
    );
    assert!(
        (loss - sk_loss).abs() < 1e-5,
        "log loss {loss} vs sklearn {sk_loss}"
    );
    assert_reference(sk, &CLASSIFIER_BANDS);
}

/// The number after `label` in the training summary.
fn figure(stdout: &str, label: &str) -> f64 {
    let at = stdout
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {stdout}"));
    stdout[at + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|t| t.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {stdout}"))
}

#[test]
fn a_regression_with_categorical_columns_and_missing_cells_equals_sklearns_ols() {
    let sb = Sandbox::new();
    let (artifact, stdout, sk) = train_and_check(&sb, "reg.csv", "y");
    assert_eq!(artifact["format"], "modelwatch-tabular/1");
    assert_eq!(artifact["task"], "regression");
    // The schema: two numeric, two categorical columns with their levels.
    let kinds: Vec<(String, String)> = artifact["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                f["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("x1", "numeric"),
            ("color", "categorical"),
            ("x2", "numeric"),
            ("size", "categorical")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        artifact["features"][3]["levels"],
        serde_json::json!(["L", "M", "S", "XL"])
    );
    // Rows with a missing cell are left out, counted and said.
    let rows = sk["rows"].as_u64().unwrap();
    assert_eq!(artifact["training"]["rows"].as_u64(), Some(rows));
    let omitted = artifact["training"]["omitted"].as_u64().unwrap();
    assert_eq!(rows + omitted, 600);
    assert!(omitted > 0, "the data has missing cells");
    assert!(
        stdout.contains(&format!("({omitted} left out for a missing value)")),
        "{stdout}"
    );
    // Predictions equal scikit-learn's LinearRegression's to 1e-9.
    let diff = sk["max_pred_diff"].as_f64().unwrap();
    assert!(diff < 1e-9, "largest relative difference {diff}");
    let r2 = figure(&stdout, "R² ");
    let sk_r2 = sk["r2"].as_f64().unwrap();
    assert!((r2 - sk_r2).abs() < 1e-6, "R² {r2} vs sklearn {sk_r2}");
    assert_reference(&sk, &REGRESSION_METRICS);
    // The pipeline does not run such a model yet, and says so (exit 2).
    let mut cmd = sb.command(["run", "--count", "10", "--http-listen", "off"]);
    cmd.env("MODELWATCH__MODEL__ARTIFACT", sb.join("reg.csv.model.json"));
    let ran = run_within(cmd, TRAIN);
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("model of your own data"),
        "{}",
        ran.stderr
    );
}

/// A repeated column, one scaled and shifted, a constant one and a level
/// seen only in a row left out: OLS leaves the dependent inputs out, so
/// its predictions are those of scikit-learn's minimum-norm solution (a
/// hostile pass found coefficients of 1e14 and predictions 1.4% off).
#[test]
fn degenerate_columns_give_sklearns_minimum_norm_predictions() {
    let sb = Sandbox::new();
    let (artifact, _, sk) = train_and_check(&sb, "degenerate.csv", "y");
    let diff = sk["max_pred_diff"].as_f64().unwrap();
    assert!(diff < 1e-9, "largest relative difference {diff}");
    let coefficients = artifact["model"]["coefficients"].as_array().unwrap();
    let largest = coefficients
        .iter()
        .map(|c| c.as_f64().unwrap().abs())
        .fold(0.0, f64::max);
    assert!(largest < 100.0, "coefficients fit noise: {coefficients:?}");
    // The level only an omitted row had is no level of the schema.
    assert_eq!(
        artifact["features"][5]["levels"],
        serde_json::json!(["dark", "light"])
    );
    assert_reference(&sk, &REGRESSION_METRICS);
}

/// Numbers as classes: `0`, `-0` and `0.0` are one class (a hostile pass
/// found the rows of `0` trained as class `-1`).
#[test]
fn numeric_classes_treat_minus_zero_as_zero() {
    let sb = Sandbox::new();
    let (artifact, _, sk) =
        train_and_check_with(&sb, "signed_zero.csv", "t", &["--task", "classification"]);
    assert_eq!(
        artifact["model"]["classes"],
        serde_json::json!(["-1", "0", "1"])
    );
    let diff = sk["max_pred_diff"].as_f64().unwrap();
    assert!(diff < 1e-4, "largest probability difference {diff}");
    assert_reference(&sk, &CLASSIFIER_BANDS);
}

#[test]
fn a_binary_classifier_gives_sklearns_logistic_probabilities() {
    let sb = Sandbox::new();
    let (artifact, stdout, sk) = train_and_check(&sb, "binary.csv", "label");
    assert_eq!(artifact["task"], "classification");
    assert_eq!(
        artifact["model"]["classes"],
        serde_json::json!(["benign", "malignant"])
    );
    assert_classifier_agrees(&stdout, &sk);
}

#[test]
fn a_multiclass_classifier_gives_sklearns_multinomial_probabilities() {
    let sb = Sandbox::new();
    let (artifact, stdout, sk) = train_and_check(&sb, "multi.csv", "label");
    assert_eq!(
        artifact["model"]["classes"],
        serde_json::json!(["class_0", "class_1", "class_2"])
    );
    assert_eq!(artifact["model"]["weights"].as_array().unwrap().len(), 3);
    assert_classifier_agrees(&stdout, &sk);
}

/// Bad input: exit 2, one line naming the file, the line and the column
/// where there is one, nothing written.
#[test]
fn bad_data_exits_2_naming_where_and_writes_nothing() {
    let sb = Sandbox::new();
    // (file, its bytes, extra flags, what the error line names)
    type Case<'a> = (&'a str, &'a [u8], &'a [&'a str], &'a [&'a str]);
    let cases: [Case; 9] = [
        (
            "ragged.csv",
            b"a,b,y\n1,2,3\n4,5\n",
            &[],
            &["line 3", "2 fields, the header has 3"],
        ),
        (
            "utf8.csv",
            b"a,b,y\n1,x,3\n4,\xff\xfe,5\n",
            &[],
            &["line 3", "not UTF-8"],
        ),
        (
            "absent.csv",
            b"a,b,z\n1,2,3\n",
            &[],
            &["--target \"y\": no such column", "\"z\""],
        ),
        (
            "constant.csv",
            b"a,y\n1,5\n2,5\n3,5\n",
            &[],
            &["target \"y\" is constant"],
        ),
        (
            "oneclass.csv",
            b"a,y\n1,yes\n2,yes\n",
            &[],
            &["one class", "\"yes\""],
        ),
        (
            "levels.csv",
            b"c,y\na,1\nb,2\nc,3\n",
            &["--max-levels", "2"],
            &["line 4, column \"c\"", "more than 2 levels"],
        ),
        (
            "missing.csv",
            b"a,y\n1,2\nNA,3\n",
            &["--missing", "refuse"],
            &["line 3, column \"a\": a missing value"],
        ),
        (
            "big.csv",
            b"a,y\n1,2\n3,4\n",
            &["--max-bytes", "5"],
            &["more than --max-bytes (5)"],
        ),
        (
            "regress.csv",
            b"a,y\n1,no\n2,yes\n",
            &["--task", "regression"],
            &["target \"y\" is not numeric"],
        ),
    ];
    for (name, text, extra, needles) in cases {
        let data = sb.join(name);
        std::fs::write(&data, text).unwrap();
        let out = sb.join(&format!("{name}.json"));
        let mut cmd = sb.command(["train", "--data"]);
        cmd.arg(&data)
            .args(["--target", "y", "--out"])
            .arg(&out)
            .args(extra);
        let ran = run_within(cmd, TRAIN);
        assert_eq!(ran.code(), Some(2), "{name}: {}", ran.stderr);
        let line = support::sandbox::one_error_line(&ran);
        assert!(line.contains(name), "{name}: the file is not named: {line}");
        for n in needles {
            assert!(line.contains(n), "{name}: {n:?} not in {line}");
        }
        assert!(!out.exists(), "{name}: an artifact was written");
    }
    // Inputs past the fit's bound (one per level): refused before the
    // matrix is made (a hostile pass made it allocate 20 GB and abort).
    let wide = sb.join("wide.csv");
    let mut text = String::from("a,b,c,y\n");
    for i in 0..3000 {
        text += &format!(
            "a{},b{},c{},{i}\n",
            i % 1000,
            (i * 7) % 1000,
            (i * 13) % 1000
        );
    }
    std::fs::write(&wide, text).unwrap();
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&wide)
        .args(["--target", "y", "--max-levels", "5000"]);
    let ran = run_within(cmd, TRAIN);
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    let line = support::sandbox::one_error_line(&ran);
    assert!(
        line.contains("2997 model inputs") && line.contains("at most 2000"),
        "{line}"
    );
    // A line over 16 MB: refused, its record never held whole.
    let long = sb.join("long.csv");
    std::fs::write(&long, vec![b'x'; 17 << 20]).unwrap();
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&long).args(["--target", "y"]);
    let ran = run_within(cmd, TRAIN);
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    assert!(support::sandbox::one_error_line(&ran).contains("a line longer than 16 MB"));
    // Values too large for the fit: refused, not an artifact with NaN in it.
    let huge = sb.join("huge.csv");
    std::fs::write(&huge, "a,y\n1,1e200\n2,-3e200\n3,2e200\n").unwrap();
    let huge_out = sb.join("huge.json");
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&huge)
        .args(["--target", "y", "--out"])
        .arg(&huge_out);
    let ran = run_within(cmd, TRAIN);
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    let line = support::sandbox::one_error_line(&ran);
    assert!(
        line.contains("line 2, column \"y\": \"1e200\" is beyond ±1e100"),
        "{line}"
    );
    assert!(!huge_out.exists());
    // --out naming the data file (through another path): refused, the data kept.
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&huge)
        .args(["--target", "y", "--out"])
        .arg(sb.path().join(".").join("huge.csv"));
    let ran = run_within(cmd, TRAIN);
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    assert!(support::sandbox::one_error_line(&ran).contains("is the --data file"));
    assert!(std::fs::read_to_string(&huge).unwrap().starts_with("a,y\n"));
    // Numbers declared categorical are one-hot encoded, levels as written.
    let codes = sb.join("codes.csv");
    std::fs::write(
        &codes,
        b"code,a,y\n07,1,2\n7,2,4.5\n07,3,5.5\n12,4,8\n7,5,9\n",
    )
    .unwrap();
    let codes_out = sb.join("codes.json");
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&codes)
        .args(["--target", "y", "--categorical", "code", "--out"])
        .arg(&codes_out);
    run_within(cmd, TRAIN).expect_code(0);
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&codes_out).unwrap()).unwrap();
    assert_eq!(artifact["features"][0]["type"], "categorical");
    assert_eq!(
        artifact["features"][0]["levels"],
        serde_json::json!(["07", "12", "7"])
    );
    // An id column is no feature, whatever it holds; one not in the header is named.
    let data = sb.join("ids.csv");
    std::fs::write(&data, b"row,a,y\nr1,1,2\nr2,2,4.5\nr3,3,5.5\nr4,4,8\n").unwrap();
    let out = sb.join("ids.json");
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&data)
        .args(["--target", "y", "--id", "row", "--max-levels", "2", "--out"])
        .arg(&out);
    run_within(cmd, TRAIN).expect_code(0);
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(artifact["features"].as_array().unwrap().len(), 1);
    assert_eq!(artifact["features"][0]["name"], "a");
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&data).args(["--target", "y", "--id", "nope"]);
    let ran = run_within(cmd, TRAIN);
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    assert!(support::sandbox::one_error_line(&ran).contains("no column \"nope\" (--id, data.id)"));
    // A FIFO is refused before it is opened (nothing blocks on it).
    let fifo = sb.join("fifo.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(&fifo).args(["--target", "y"]);
    let ran = run_within(cmd, Duration::from_secs(20));
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    assert!(support::sandbox::one_error_line(&ran).contains("not a regular file"));
}
