//! `modelwatch run --data FILE --target COLUMN [--model ARTIFACT]`: the
//! pipeline on data of the user's own, through the real binary. The rows
//! it writes and the windows its monitor closes against scikit-learn,
//! scipy and numpy on the same rows (tests/oracle/run_own.py, in the test
//! venv); a categorical column whose mix moved fires that column's drift
//! and its unseen-level rule, and nothing else; every bad combination
//! exits 2 naming the key or column; `source.order = "sequential"` takes
//! each row once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support;
use crate::support::sandbox::{
    close, fired, full_windows, one_error_line, read_metric_log, run_within, Sandbox,
};

const LIMIT: Duration = Duration::from_secs(120);
/// Rows per monitor window in these runs (the artifact is trained for it).
pub(crate) const WINDOW: usize = 250;

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/run_own.py")
}

/// The data sets the oracle writes (once per test run).
pub(crate) fn data_dir() -> &'static Path {
    // Under cargo's temp dir for tests (target/tmp), made again by each
    // test run: nothing is left in /tmp.
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run-own-data");
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut cmd = Command::new(support::provision::python_with_pika());
        cmd.arg(oracle()).arg("make").arg(&dir);
        support::provision::run_bounded("run_own.py make", cmd, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{e}"));
        dir
    })
}

/// The oracle's predictions and window figures for a model fitted on
/// `train`, run over `run`.
pub(crate) fn expected(train: &str, run: &str) -> serde_json::Value {
    oracle_windows("windows", train, run)
}

/// The oracle's `command` (`windows`, or `windows-keep` for
/// `data.missing = "keep"`) for a model fitted on `train`, run over `run`.
fn oracle_windows(command: &str, train: &str, run: &str) -> serde_json::Value {
    let mut cmd = Command::new(support::provision::python_with_pika());
    cmd.arg(oracle())
        .arg(command)
        .arg(data_dir().join(train))
        .arg(data_dir().join(run))
        .arg("y")
        .arg(WINDOW.to_string());
    let out = support::provision::run_bounded("run_own.py windows", cmd, LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(out.trim()).expect("oracle JSON")
}

/// `train --data train.csv --target y` for windows of [`WINDOW`] rows.
pub(crate) fn train(sb: &Sandbox) -> PathBuf {
    let out = sb.join("train.model.json");
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(data_dir().join("train.csv"))
        .args(["--target", "y", "--baseline-window", &WINDOW.to_string()])
        .arg("--out")
        .arg(&out);
    run_within(cmd, LIMIT).expect_code(0);
    out
}

/// A config file: the default one with a rule on unseen levels of "color".
fn config_with_unseen_rule(sb: &Sandbox) -> PathBuf {
    let path = sb.join("own.toml");
    let text = std::fs::read_to_string(support::process::default_config()).unwrap()
        + "\n[[monitor.rules]]\nname = \"unseen_color\"\nmetric = \"unseen.color\"\nop = \">\"\nvalue = 0\n";
    std::fs::write(&path, text).unwrap();
    path
}

/// A config file: the default one declaring x1 (label, unit, range) and
/// color (its levels).
fn config_declaring_x1(sb: &Sandbox) -> PathBuf {
    let path = sb.join("declared.toml");
    let text = std::fs::read_to_string(support::process::default_config()).unwrap()
        + "\n[[data.columns]]\nname = \"x1\"\nlabel = \"Engine size\"\nunit = \"litres\"\nmin = -20\nmax = 40\n\n[[data.columns]]\nname = \"color\"\nlevels = [\"red\", \"green\", \"blue\", \"purple\"]\n";
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `run --data <data> --target y` with `extra`, each row once.
fn run(sb: &Sandbox, logs: &Path, data: &str, extra: &[&str]) -> support::sandbox::Output {
    let window = WINDOW.to_string();
    let cmd = sb
        .run_launch(logs, &[])
        .config(config_with_unseen_rule(sb))
        .args(["--data"])
        .args([data_dir().join(data)])
        .args(["--target", "y", "--order", "sequential", "--rate", "5000"])
        .args(["--monitor-window", &window, "--http-listen", "off"])
        .args(extra)
        .command();
    run_within(cmd, LIMIT)
}

/// `run --data <data> --target y --model <model>` for windows of
/// [`WINDOW`] rows, HTTP off, with `extra`.
fn own_run(sb: &Sandbox, logs: &Path, data: &Path, model: &Path, extra: &[&str]) -> Command {
    let window = WINDOW.to_string();
    sb.run_launch(logs, &[])
        .args(["--data".as_ref(), data.as_os_str()])
        .args([
            "--target".as_ref(),
            "y".as_ref(),
            "--model".as_ref(),
            model.as_os_str(),
        ])
        .args(["--monitor-window", &window, "--http-listen", "off"])
        .args(extra)
        .command()
}

/// Runs `cmd`, which must exit 2 with one error line; returns the line.
fn refused(cmd: Command) -> String {
    let out = run_within(cmd, LIMIT);
    out.expect_code(2);
    one_error_line(&out)
}

/// The rows of `metric_log.csv` against the oracle's predictions (in file
/// order: sequential ids), and the count windows of
/// `metrics_over_time.csv` against its figures.
fn assert_agrees(logs: &Path, sk: &serde_json::Value) -> usize {
    assert_agrees_in(logs, sk, true)
}

/// [`assert_agrees`], the oracle's rows in id order (`by_id`) or in the
/// order the metric wrote them (an oracle run over the rows so ordered).
pub(crate) fn assert_agrees_in(logs: &Path, sk: &serde_json::Value, by_id: bool) -> usize {
    let mut rows = read_metric_log(logs);
    if by_id {
        rows.sort_by_key(|r| r.id);
    }
    let predictions = sk["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), predictions.len(), "every row once");
    for (i, (r, p)) in rows.iter().zip(predictions).enumerate() {
        close(
            &format!("row {i} prediction"),
            r.y_pred,
            p.as_f64().unwrap(),
            1e-9,
        );
        close(
            &format!("row {i} error"),
            r.absolute_error,
            (r.y_true - r.y_pred).abs(),
            1e-12,
        );
    }
    let (header, rows) = full_windows(logs, WINDOW);
    let windows = sk["windows"].as_array().unwrap();
    // The same columns both ways: none left out, none added.
    let ours: std::collections::BTreeSet<&str> = header
        .iter()
        .filter_map(|h| h.strip_suffix("_wasserstein"))
        .collect();
    let theirs: std::collections::BTreeSet<&str> = windows[0]["drift"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(ours, theirs, "the drift columns");
    for row in &rows {
        let seq = row.seq;
        let w = &windows[seq - 1];
        for stat in ["mae", "rmse", "r2", "bias", "max_error"] {
            close(
                &format!("window {seq} {stat}"),
                row.num(stat),
                w[stat].as_f64().unwrap(),
                1e-9,
            );
        }
        for (column, d) in w["drift"].as_object().unwrap() {
            let flag = format!("{column}_drift");
            assert_eq!(
                row.cell(&flag),
                d["drift"].to_string(),
                "window {seq} {flag} (p {})",
                d["p"]
            );
            for (ours, theirs) in [("p", "p"), ("psi", "psi"), ("wasserstein", "wasserstein")] {
                let name = format!("{column}_{ours}");
                match d.get(theirs) {
                    Some(v) => close(
                        &format!("window {seq} {name}"),
                        row.num(&name),
                        v.as_f64().unwrap(),
                        1e-6,
                    ),
                    // A categorical column has no Wasserstein distance.
                    None => assert_eq!(row.cell(&name), "", "window {seq} {name}"),
                }
            }
        }
    }
    assert_eq!(rows.len(), windows.len(), "every full window closed");
    rows.len()
}

#[test]
fn a_model_of_your_own_data_runs_on_new_rows_and_agrees_with_sklearn_and_scipy() {
    let sb = Sandbox::new();
    let artifact = train(&sb);
    let logs = sb.join("logs");
    let model = artifact.to_str().unwrap();
    run(&sb, &logs, "shifted.csv", &["--model", model]).expect_code(0);
    let sk = expected("train.csv", "shifted.csv");
    let windows = assert_agrees(&logs, &sk);
    println!(
        "{} rows and {windows} windows agree with scikit-learn/scipy",
        sk["rows"]
    );
    // Only "color" moved (and has a level training never had).
    assert_eq!(fired(&logs), ["feature_drift:color", "unseen_color"]);
    // The unseen count of the window where its rule fired, as the oracle
    // counts it.
    let text = std::fs::read_to_string(logs.join("alerts.jsonl")).unwrap();
    let event: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["rule"] == "unseen_color" && e["state"] == "fired")
        .unwrap();
    let seq = event["seq"].as_u64().unwrap() as usize;
    assert_eq!(
        event["value"].as_f64().unwrap(),
        sk["windows"][seq - 1]["drift"]["color"]["unseen"]
            .as_f64()
            .unwrap(),
        "unseen rows of window {seq}"
    );
    let unseen: u64 = sk["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["drift"]["color"]["unseen"].as_u64().unwrap())
        .sum();
    assert!(unseen > 0, "the oracle saw no unseen level");
    let pipeline_log = support::sandbox::read_pipeline_log(&logs);
    assert!(
        pipeline_log.contains("rows with a level of this column the model was not trained on"),
        "{pipeline_log}"
    );
}

#[test]
fn without_an_artifact_the_model_is_fitted_at_start_and_nothing_drifts_on_its_own_rows() {
    let sb = Sandbox::new();
    let logs = sb.join("logs");
    let out = run(&sb, &logs, "train.csv", &[]);
    out.expect_code(0);
    let sk = expected("train.csv", "train.csv");
    assert_agrees(&logs, &sk);
    assert_eq!(fired(&logs), Vec::<String>::new());
    let pipeline_log = support::sandbox::read_pipeline_log(&logs);
    assert!(
        pipeline_log.contains("fitted on data.path at start"),
        "{pipeline_log}"
    );
}

#[test]
fn bad_combinations_exit_2_naming_the_key_or_the_column() {
    let sb = Sandbox::new();
    let artifact = train(&sb);
    let model = artifact.to_str().unwrap().to_owned();
    let data = data_dir().join("train.csv");
    let data = data.to_str().unwrap();
    let no_color = sb.join("no_color.csv");
    let text = std::fs::read_to_string(data).unwrap();
    let cut: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{},{}\n", f[0], f[2], f[3], f[4], f[5])
        })
        .collect();
    std::fs::write(&no_color, cut).unwrap();
    // A value the model predicts on within bounds, but past the largest
    // the wire takes (a split run would refuse it): refused in one
    // process too, so both take the same rows.
    let huge = sb.join("huge.csv");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let rest = lines[3].split_once(',').unwrap().1.to_owned();
    lines[3] = format!("5e97,{rest}");
    std::fs::write(&huge, lines.join("\n") + "\n").unwrap();
    let bad_rule = sb.join("bad_rule.toml");
    std::fs::write(
        &bad_rule,
        "[[monitor.rules]]\nname = \"r\"\nmetric = \"drift.nope\"\nop = \">\"\nvalue = 0.5\n",
    )
    .unwrap();
    let window = WINDOW.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--data", data], "data.target"),
        (
            vec!["--target", "y"],
            "data.target: is for a data file of your own",
        ),
        (
            vec!["--data", data, "--target", "nope"],
            "--target \"nope\": no such column",
        ),
        (
            vec!["--data", data, "--target", "x1", "--model", &model],
            "but the model",
        ),
        (
            vec![
                "--data",
                no_color.to_str().unwrap(),
                "--target",
                "y",
                "--model",
                &model,
                "--monitor-window",
                &window,
            ],
            "the model's feature \"color\" is not a column of the data",
        ),
        (
            vec!["--data", data, "--target", "y", "--model", &model],
            "monitor.window is 500, but the model's reference is for windows of 250",
        ),
        (
            vec![
                "--data",
                huge.to_str().unwrap(),
                "--target",
                "y",
                "--model",
                &model,
                "--monitor-window",
                &window,
            ],
            "column \"x1\": 5e97 is beyond",
        ),
        (
            vec![
                "--data",
                data,
                "--target",
                "y",
                "--amqp-url",
                "amqp://127.0.0.1:1/%2f",
                "--legacy-inbound",
            ],
            "inbound.legacy: reads the Python services' queues",
        ),
        (
            vec![
                "--data",
                data,
                "--target",
                "y",
                "--scenario",
                "start=10,bmi+=1",
            ],
            "source.scenario",
        ),
    ];
    for (args, says) in cases {
        let logs = sb.join("logs-bad");
        let cmd = sb
            .run_launch(&logs, &args)
            .args(["--http-listen", "off"])
            .command();
        let out = run_within(cmd, LIMIT);
        out.expect_code(2);
        let line = one_error_line(&out);
        assert!(line.contains(says), "{args:?}: {line}");
        assert!(!logs.join("metric_log.csv").exists(), "{args:?} wrote rows");
    }
    // A rule naming a column the data does not have: named by its key.
    let logs = sb.join("logs-rule");
    let cmd = sb
        .run_launch(&logs, &["--data", data, "--target", "y"])
        .config(&bad_rule)
        .args(["--http-listen", "off"])
        .command();
    let out = run_within(cmd, LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(line.contains("monitor.rules[0].metric"), "{line}");
    assert!(line.contains("x1, color, x2, size, region"), "{line}");
}

#[test]
fn a_classifier_fitted_at_start_runs_and_its_windows_have_its_figures() {
    let sb = Sandbox::new();
    let csv = sb.join("cls.csv");
    let mut text = String::from("a,b,label\n");
    for i in 0..200 {
        let a = (i as f64 * 0.37).sin();
        let b = (i as f64 * 0.11).cos();
        text += &format!("{a},{b},{}\n", if a + b > 0.2 { "yes" } else { "no" });
    }
    std::fs::write(&csv, text).unwrap();
    let logs = sb.join("logs");
    let cmd = sb
        .run_launch(
            &logs,
            &["--data", csv.to_str().unwrap(), "--target", "label"],
        )
        .args([
            "--order",
            "sequential",
            "--rate",
            "5000",
            "--monitor-window",
            "50",
        ])
        .args(["--http-listen", "off"])
        .command();
    run_within(cmd, LIMIT).expect_code(0);
    let text = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header
        .iter()
        .position(|h| *h == "accuracy")
        .expect("an accuracy column");
    let accuracies: Vec<f64> = lines
        .map(|l| l.split(',').nth(at).unwrap().parse().expect("a figure"))
        .collect();
    assert_eq!(accuracies.len(), 4, "200 rows, windows of 50");
    // The rows it was fitted on: (nearly) linearly separable.
    assert!(
        accuracies.iter().all(|a| *a > 0.8 && *a <= 1.0),
        "{accuracies:?}"
    );
}

#[test]
fn sequential_order_takes_each_diabetes_row_once_then_stops() {
    let sb = Sandbox::new();
    let logs = sb.join("logs");
    let cmd = sb
        .run_launch(&logs, &["--order", "sequential", "--rate", "0"])
        .args(["--http-listen", "off"])
        .command();
    run_within(cmd, LIMIT).expect_code(0);
    let mut rows = read_metric_log(&logs);
    rows.sort_by_key(|r| r.id);
    let data = modelwatch::core::data::Dataset::embedded();
    assert_eq!(rows.len(), data.len());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.y_true, data.targets[i], "row {i} in file order");
    }
    // With a count below the rows: that many, from the first.
    let logs = sb.join("logs-100");
    let cmd = sb
        .run_launch(
            &logs,
            &["--order", "sequential", "--count", "100", "--rate", "0"],
        )
        .args(["--http-listen", "off"])
        .command();
    run_within(cmd, LIMIT).expect_code(0);
    assert_eq!(read_metric_log(&logs).len(), 100);
}

#[test]
fn the_json_api_predicts_a_row_by_column_name_and_names_the_bad_field() {
    use crate::dashboard::post;
    use crate::support::openmetrics::http_addr;
    let sb = Sandbox::new();
    let artifact = train(&sb);
    let logs = sb.join("logs");
    let window = WINDOW.to_string();
    let cmd = sb
        .run_launch(&logs, &[])
        .args(["--data"])
        .args([data_dir().join("shifted.csv")])
        .args(["--target", "y", "--model"])
        .args([&artifact])
        .args(["--rate", "50", "--count", "0", "--monitor-window", &window])
        .config(config_declaring_x1(&sb))
        .command();
    let app = support::sandbox::Running::spawn(cmd);
    let addr = http_addr(&logs, support::sandbox::TIMEOUT);
    // The first row of the file, as the oracle predicts it.
    let sk = expected("train.csv", "shifted.csv");
    let text = std::fs::read_to_string(data_dir().join("shifted.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let first = lines
        .find(|l| !l.split(',').any(|c| ["", "NA", "NaN"].contains(&c.trim())))
        .unwrap();
    let mut body = serde_json::Map::new();
    for (name, cell) in header.iter().zip(first.split(',')) {
        let v = match cell.parse::<f64>() {
            Ok(n) => serde_json::json!(n),
            Err(_) => serde_json::json!(cell),
        };
        if *name != "y" {
            body.insert(name.to_string(), v);
        }
    }
    assert_ne!(
        body["color"], "purple",
        "the first row has a training level"
    );
    // The API's answer to a row it takes (200).
    let predict = |row: &serde_json::Map<String, serde_json::Value>| {
        let (status, answer) = post(
            addr,
            "/api/predict",
            "application/json",
            serde_json::Value::Object(row.clone())
                .to_string()
                .as_bytes(),
        );
        assert_eq!(status, 200, "{answer}");
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()
    };
    let answer = predict(&body);
    close(
        "the API's prediction",
        answer["prediction"].as_f64().unwrap(),
        sk["predictions"][0].as_f64().unwrap(),
        1e-9,
    );
    assert_eq!(answer["model"]["target"], "y");
    // A missing value (null), as on the wire: x1 reads as its training
    // mean, color as no level (as the first, dropped, level).
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&artifact).unwrap()).unwrap();
    let of = |name: &str| {
        model["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    let (mut gaps, mut filled) = (body.clone(), body.clone());
    gaps.insert("x1".into(), serde_json::Value::Null);
    gaps.insert("color".into(), serde_json::Value::Null);
    filled.insert("x1".into(), of("x1")["encoding"]["mean"].clone());
    filled.insert("color".into(), of("color")["levels"][0].clone());
    close(
        "a row with missing values",
        predict(&gaps)["prediction"].as_f64().unwrap(),
        predict(&filled)["prediction"].as_f64().unwrap(),
        1e-12,
    );
    let mut bad = body.clone();
    bad.insert("nope".into(), serde_json::json!(1));
    let cases = [
        (serde_json::Value::Object(bad).to_string(), "nope"),
        (
            serde_json::Value::Object(body.clone())
                .to_string()
                .replacen('{', "{\"x1\": 1, ", 1),
            "given twice",
        ),
        (
            serde_json::json!({"x1": 1, "x2": 2, "size": "S", "color": "mauve"}).to_string(),
            "is not one of the levels the model knows",
        ),
        (
            serde_json::json!({"x1": "1", "x2": 2, "size": "S", "color": "red"}).to_string(),
            "must be a JSON number",
        ),
        (
            serde_json::json!({"x2": 2, "size": "S", "color": "red"}).to_string(),
            "is missing",
        ),
    ];
    for (body, says) in cases {
        let (status, text) = post(addr, "/api/predict", "application/json", body.as_bytes());
        assert_eq!(status, 422, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    // The page says which model runs (not "runs in another process").
    let page = crate::support::openmetrics::http_get(addr, "/");
    assert!(page.body.contains("Model R² (training)"), "{}", page.body);
    // The JSON API holds x1 to its declared range too.
    let mut out_of_range = body.clone();
    out_of_range.insert("x1".into(), serde_json::json!(99.0));
    let (status, text) = post(
        addr,
        "/api/predict",
        "application/json",
        serde_json::Value::Object(out_of_range)
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("must be -20 to 40 (data.columns)"), "{text}");
    // The form: built from the schema, labelled as declared, a select of
    // the training levels for a categorical column.
    let r = crate::support::openmetrics::http_get(addr, "/predict");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("Engine size <span class=\"muted\">(litres; -20 to 40)</span>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<select id=\"f-1\" name=\"color\">"),
        "{}",
        r.body
    );
    for level in ["red", "green", "blue"] {
        assert!(r.body.contains(&format!("value=\"{level}\"")), "{}", r.body);
    }
    assert!(
        !r.body.contains(">purple<"),
        "a level training never had is not offered"
    );
    // Posted with the first row: the API's prediction.
    let form: String = body
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), String::from)))
        .collect::<Vec<_>>()
        .join("&");
    let (status, page) = post(
        addr,
        "/predict",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(status, 200, "{page}");
    let shown = page
        .split("<output id=\"prediction\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap_or_else(|| panic!("no prediction in {page}"));
    close(
        "the form's prediction",
        shown.parse().unwrap(),
        answer["prediction"].as_f64().unwrap(),
        1e-5,
    );
    // Every bad field at once, named, nothing predicted.
    let (status, page) = post(
        addr,
        "/predict",
        "application/x-www-form-urlencoded",
        b"x1=99&color=mauve&x2=abc&size=S&region=north",
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("3 fields need a fix"), "{page}");
    assert!(page.contains("Engine size must be -20 to 40"), "{page}");
    assert!(!page.contains("<output"), "{page}");
    // A field given twice is refused, as the API refuses a key twice.
    let (status, page) = post(
        addr,
        "/predict",
        "application/x-www-form-urlencoded",
        format!("{form}&x2=abc").as_bytes(),
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("x2 is given twice"), "{page}");
    app.signal("INT");
    app.wait(LIMIT).expect_code(0);
}

#[test]
fn tampered_artifacts_and_bad_cells_are_refused_naming_what() {
    let sb = Sandbox::new();
    let artifact = train(&sb);
    let text = std::fs::read_to_string(&artifact).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let write = |name: &str, text: String| {
        let p = sb.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut negative_std = json.clone();
    negative_std["reference"]["bands"][0]["std"] = serde_json::json!(-1.0);
    let mut null_std = json.clone();
    null_std["reference"]["prediction"]["std"] = serde_json::Value::Null;
    let mut unknown = json.clone();
    unknown["features"][0]["note"] = serde_json::json!("hi");
    let link = sb.join("link.json");
    std::os::unix::fs::symlink(&artifact, &link).unwrap();
    let cases = [
        (
            write(
                "dup.json",
                text.replacen("\"intercept\":", "\"intercept\": 1e6, \"intercept\":", 1),
            ),
            "the key intercept is given twice",
        ),
        (
            write("std.json", negative_std.to_string()),
            "a std of at least 0",
        ),
        (
            write("null.json", null_std.to_string()),
            "reference.prediction: invalid type: null",
        ),
        (
            write("unknown.json", unknown.to_string()),
            ".features[0].note is not a field",
        ),
        (link, "a symbolic link"),
    ];
    let data = data_dir().join("shifted.csv");
    for (path, says) in cases {
        let line = refused(own_run(&sb, &sb.join("logs"), &data, &path, &[]));
        assert!(line.contains(says), "{}: {line}", path.display());
    }
    // A cell that is not a number, in a column the model reads as numbers.
    let bad = sb.join("bad_cell.csv");
    let mut rows: Vec<String> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let cells: Vec<&str> = rows[5].split(',').collect();
    rows[5] = format!("abc,{}", cells[1..].join(","));
    std::fs::write(&bad, rows.join("\n") + "\n").unwrap();
    let line = refused(own_run(&sb, &sb.join("logs-cell"), &bad, &artifact, &[]));
    assert!(
        line.contains("line 6, column \"x1\": \"abc\" is not a number"),
        "{line}"
    );
}

#[test]
fn a_categorical_scenario_fires_that_columns_drift_and_nothing_else() {
    let sb = Sandbox::new();
    let artifact = train(&sb);
    // From sample 1,000 on every row is in the "west" region (a quarter of
    // the training rows; the region has no effect on the target, so the
    // model's errors stay as they were).
    let logs = sb.join("logs");
    let train_csv = data_dir().join("train.csv");
    let scenario = [
        "--scenario",
        "start=1000,region=west",
        "--count",
        "3000",
        "--rate",
        "5000",
        "--seed",
        "4",
    ];
    run_within(own_run(&sb, &logs, &train_csv, &artifact, &scenario), LIMIT).expect_code(0);
    assert_eq!(fired(&logs), ["feature_drift:region"]);
    // The windows before the start saw the training mix, those after it
    // only "west"; every other column kept its drift flag at 0.
    let text = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let seq: usize = f[col("seq")].parse().unwrap();
        let after = seq > 1000 / WINDOW;
        assert_eq!(
            f[col("region_drift")],
            if after { "1" } else { "0" },
            "window {seq}"
        );
        for other in ["x1", "color", "x2", "size"] {
            assert_eq!(
                f[col(&format!("{other}_drift"))],
                "0",
                "window {seq} {other}"
            );
        }
    }
    // A level the model never saw, and a scenario that names a column
    // the data does not have or shifts a categorical one: exit 2 naming
    // the key.
    for (spec, says) in [
        ("start=10,color=mauve", None),
        ("start=10,colour=blue", Some("source.scenario.set.colour")),
        ("start=10,color+=1", Some("source.scenario.shift.color")),
        ("start=10,x1=blue", Some("source.scenario.set.x1")),
    ] {
        let logs = sb.join(&format!("logs-{}", spec.len()));
        let extra = ["--scenario", spec, "--count", "500", "--rate", "0"];
        let cmd = own_run(&sb, &logs, &train_csv, &artifact, &extra);
        match says {
            // A new category: runs, the model reads it as no level, and
            // the window that has it has drifted.
            None => {
                run_within(cmd, LIMIT).expect_code(0);
                let text = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
                let mut lines = text.lines();
                let header: Vec<&str> = lines.next().unwrap().split(',').collect();
                let at = header.iter().position(|h| *h == "color_drift").unwrap();
                let flags: Vec<&str> = lines.map(|l| l.split(',').nth(at).unwrap()).collect();
                assert!(
                    !flags.is_empty() && flags.iter().all(|f| *f == "1"),
                    "{flags:?}"
                );
            }
            Some(key) => {
                let line = refused(cmd);
                assert!(line.contains(key), "{spec}: {line}");
            }
        }
    }
}

/// `[[data.columns]]`: a value outside a declared range, a level not
/// declared, a declared column the file lacks: exit 2 naming the file, the
/// line and the column (run and train alike), nothing written; a
/// declaration that contradicts itself names its key; the environment
/// cannot hold the list.
#[test]
fn declared_columns_bound_the_data_naming_line_and_column() {
    let sb = Sandbox::new();
    let data = data_dir().join("train.csv");
    let declare = |name: &str, body: &str| {
        let path = sb.join(name);
        let text = std::fs::read_to_string(support::process::default_config()).unwrap()
            + "\n[[data.columns]]\n"
            + body;
        std::fs::write(&path, text).unwrap();
        path
    };
    // The first x1 above 15, and the first row whose color is not red or green.
    let text = std::fs::read_to_string(&data).unwrap();
    let line_of = |pred: &dyn Fn(&[&str]) -> bool| {
        text.lines()
            .enumerate()
            .skip(1)
            .find(|(_, l)| {
                let f: Vec<&str> = l.split(',').collect();
                !f.iter().any(|c| ["", "NA", "NaN"].contains(&c.trim())) && pred(&f)
            })
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    let high = line_of(&|f| f[0].parse::<f64>().unwrap() > 15.0);
    let blue = line_of(&|f| f[1] == "blue");
    let cases = [
        (
            "x1 = 15",
            "name = \"x1\"\nmax = 15\n",
            format!("line {high}, column \"x1\""),
            "is outside the declared range",
        ),
        (
            "color",
            "name = \"color\"\nlevels = [\"red\", \"green\"]\n",
            format!("line {blue}, column \"color\""),
            "is not one of data.columns \"red\", \"green\"",
        ),
        (
            "absent",
            "name = \"weight\"\n",
            "no column \"weight\" (data.columns)".to_owned(),
            "the columns are",
        ),
    ];
    for (i, (what, body, place, says)) in cases.into_iter().enumerate() {
        let config = declare(&format!("c{i}.toml"), body);
        let logs = sb.join(&format!("logs{i}"));
        let run = sb
            .run_launch(&logs, &[])
            .config(&config)
            .args(["--data".as_ref(), data.as_os_str()])
            .args(["--target", "y", "--http-listen", "off"])
            .command();
        let line = refused(run);
        assert!(
            line.contains(&place) && line.contains(says),
            "{what}: {line}"
        );
        assert!(
            !logs.join("metric_log.csv").exists(),
            "{what}: nothing written"
        );
        let out = sb.join(&format!("m{i}.json"));
        let mut train = sb.command(["train", "--config"]);
        train
            .arg(&config)
            .arg("--data")
            .arg(&data)
            .args(["--target", "y", "--out"])
            .arg(&out);
        let line = refused(train);
        assert!(
            line.contains(&place) && line.contains(says),
            "train, {what}: {line}"
        );
        assert!(!out.exists(), "train, {what}: nothing written");
    }
    // A scenario that would make values the declarations do not allow.
    let wide = declare(
        "wide.toml",
        "name = \"x1\"\nmin = -100\nmax = 100\n\n[[data.columns]]\nname = \"color\"\nlevels = [\"red\", \"green\", \"blue\"]\n",
    );
    for (scenario, says) in [
        ("start=10,x1+=200", "source.scenario (column x1):"),
        ("start=10,color=orange", "source.scenario.set.color:"),
    ] {
        let run = sb
            .run_launch(&sb.join("logs-scenario"), &[])
            .config(&wide)
            .args(["--data".as_ref(), data.as_os_str()])
            .args([
                "--target",
                "y",
                "--http-listen",
                "off",
                "--scenario",
                scenario,
            ])
            .command();
        let line = refused(run);
        assert!(line.contains(says), "{scenario}: {line}");
    }
    // Declarations that contradict themselves, named by key.
    for (body, key) in [
        (
            "name = \"color\"\ntype = \"categorical\"\nmin = 1\n",
            "data.columns[0].min",
        ),
        (
            "name = \"x1\"\ntype = \"numeric\"\nlevels = [\"a\"]\n",
            "data.columns[0].levels",
        ),
        (
            "name = \"color\"\nlevels = [\" red\"]\n",
            "data.columns[0].levels[0]",
        ),
        ("name = \"x1\"\nmin = 5\nmax = 1\n", "data.columns[0].min"),
        (
            "name = \"x1\"\nlabel = \"a\\u0007b\"\n",
            "data.columns[0].label",
        ),
        ("name = \"x1\"\ncolour = \"red\"\n", "colour"),
    ] {
        let config = declare("bad.toml", body);
        let cmd = sb
            .run_launch(&sb.join("logs-bad"), &[])
            .config(&config)
            .args(["--data".as_ref(), data.as_os_str()])
            .args(["--target", "y", "--http-listen", "off"])
            .command();
        let line = refused(cmd);
        assert!(line.contains(key), "{body}: {line}");
    }
    let mut cmd = sb
        .run_launch(&sb.join("logs-env"), &[])
        .args(["--data".as_ref(), data.as_os_str()])
        .args(["--target", "y", "--http-listen", "off"])
        .command();
    cmd.env("MODELWATCH__DATA__COLUMNS", "x1");
    let line = refused(cmd);
    assert!(
        line.contains("they come from the config file ([[data.columns]])"),
        "{line}"
    );
}

/// `train --config` takes the config's `[data]` as `run` does: its path
/// and target without `--data` (a hostile pass found it fitting the
/// diabetes model instead), and its missing-value policy (train took
/// rows run refused).
#[test]
fn train_takes_the_configs_data_section_as_run_does() {
    let sb = Sandbox::new();
    let data = data_dir().join("train.csv");
    let config = |name: &str, extra: &str| {
        let path = sb.join(name);
        let text = std::fs::read_to_string(support::process::default_config())
            .unwrap()
            .replacen(
                "path = \"\"",
                &format!("path = {:?}", data.to_str().unwrap()),
                1,
            )
            .replacen("target = \"\"", "target = \"y\"", 1)
            .replacen("missing = \"omit\"", extra, 1);
        std::fs::write(&path, text).unwrap();
        path
    };
    let out = sb.join("from_config.json");
    let mut cmd = sb.command(["train", "--config"]);
    cmd.arg(config("own.toml", "missing = \"omit\""))
        .arg("--out")
        .arg(&out);
    run_within(cmd, LIMIT).expect_code(0);
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(artifact["format"], "modelwatch-tabular/1");
    assert_eq!(artifact["target"]["name"], "y");
    // The first row with a missing cell: line 9 (the header is line 1).
    let refuse = config("refuse.toml", "missing = \"refuse\"");
    let mut cmd = sb.command(["train", "--config"]);
    cmd.arg(&refuse).arg("--out").arg(sb.join("refused.json"));
    let line = refused(cmd);
    assert!(
        line.contains("line 9") && line.contains("a missing value"),
        "{line}"
    );
    let run = sb
        .run_launch(&sb.join("logs"), &[])
        .config(&refuse)
        .args(["--http-listen", "off"])
        .command();
    let same = refused(run);
    assert!(
        same.contains("line 9") && same.contains("a missing value"),
        "{same}"
    );
}

/// `data.missing = "keep"`: the rows of gaps.csv with missing cells are
/// streamed (those missing their target left out); every prediction
/// equals scikit-learn's with `SimpleImputer(strategy="mean")` and an
/// all-zero encoding of a missing level, every window's drift figures are
/// of the values that are there (scipy), and each column's missing share
/// is the oracle's; a rule on `missing.x1` fires once x1 goes missing.
#[test]
fn kept_missing_cells_are_imputed_and_each_columns_missing_share_is_reported() {
    let sb = Sandbox::new();
    let artifact = train(&sb);
    let config = sb.join("keep.toml");
    let text = std::fs::read_to_string(support::process::default_config()).unwrap();
    assert!(text.contains("missing = \"omit\""));
    let text = text.replace("missing = \"omit\"", "missing = \"keep\"")
        + "\n[[monitor.rules]]\nname = \"x1_missing\"\nmetric = \"missing.x1\"\nop = \">\"\nvalue = 0.1\n";
    std::fs::write(&config, text).unwrap();
    let logs = sb.join("logs");
    let data = data_dir().join("gaps.csv");
    let window = WINDOW.to_string();
    let cmd = sb
        .run_launch(&logs, &[])
        .config(&config)
        .args(["--data".as_ref(), data.as_os_str()])
        .args([
            "--target".as_ref(),
            "y".as_ref(),
            "--model".as_ref(),
            artifact.as_os_str(),
        ])
        .args(["--order", "sequential", "--rate", "5000"])
        .args(["--monitor-window", &window, "--http-listen", "off"])
        .command();
    let out = run_within(cmd, LIMIT);
    out.expect_code(0);
    let sk = oracle_windows("windows-keep", "train.csv", "gaps.csv");
    let windows = assert_agrees(&logs, &sk);
    let (_, rows) = full_windows(&logs, WINDOW);
    let mut shares = 0;
    for row in &rows {
        let w = &sk["windows"][row.seq - 1];
        for (column, d) in w["drift"].as_object().unwrap() {
            if let Some(want) = d.get("missing") {
                close(
                    &format!("window {} {column}_missing", row.seq),
                    row.num(&format!("{column}_missing")),
                    want.as_f64().unwrap(),
                    1e-12,
                );
                shares += 1;
            }
        }
    }
    assert!(shares >= 5 * windows, "{shares} shares compared");
    let late = rows.last().unwrap().num("x1_missing");
    assert!(late > 0.2, "x1 goes missing: {late}");
    assert!(
        fired(&logs).contains(&"x1_missing".to_owned()),
        "{:?}",
        fired(&logs)
    );
    let pipeline_log = support::sandbox::read_pipeline_log(&logs);
    assert!(
        pipeline_log.contains("rows with this column missing, kept"),
        "{pipeline_log}"
    );
    // A role of the split layout whose body bound is below what this
    // schema's messages can be would refuse them: said at start.
    let cmd = sb
        .run_launch(&sb.join("logs-body"), &[])
        .env("MODELWATCH__INBOUND__MAX_BODY_BYTES", "200")
        .args(["--data".as_ref(), data.as_os_str()])
        .args([
            "--target".as_ref(),
            "y".as_ref(),
            "--model".as_ref(),
            artifact.as_os_str(),
        ])
        .args(["--monitor-window", &window, "--http-listen", "off"])
        .args(["--roles", "model", "--amqp-url", "amqp://127.0.0.1:1/%2f"])
        .command();
    let line = refused(cmd);
    assert!(
        line.contains(
            "inbound.max_body_bytes: is 200, but a message of this model's schema can be up to"
        ),
        "{line}"
    );
    // A model fitted at start takes complete rows: "keep" needs an artifact.
    let cmd = sb
        .run_launch(&sb.join("logs-fit"), &[])
        .config(&config)
        .args(["--data".as_ref(), data.as_os_str()])
        .args(["--target", "y", "--http-listen", "off"])
        .command();
    let line = refused(cmd);
    assert!(line.contains("data.missing: \"keep\""), "{line}");
    println!("data.missing = keep: {} rows and {windows} windows agree with scikit-learn/scipy, {shares} missing shares", sk["rows"]);
}
