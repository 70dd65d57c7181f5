//! ONNX models through the real binary on a real ONNX Runtime (the library
//! of the test venv's `onnxruntime` wheel): six scikit-learn models exported
//! by skl2onnx (tests/oracle/onnx_models.py) are wrapped by `train --model
//! FILE.onnx` and run on new rows; every prediction agrees with
//! onnxruntime-python's to 1e-5 relative and with scikit-learn's to 1e-4,
//! a classifier's every window log loss too, in one process and in the
//! split layout on the real RabbitMQ (where only the model's process has
//! the library). A corrupt file, a model with
//! the wrong inputs, a ZipMap output, a missing or wrong runtime library, a
//! bare .onnx given to `run` and a file replaced after wrapping all exit 2
//! with a message naming the problem.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support;
use crate::support::sandbox::{full_windows, one_error_line, read_metric_log, run_within, Sandbox};

const LIMIT: Duration = Duration::from_secs(120);
pub(crate) const WINDOW: usize = 200;

/// The models and data the oracle exports (once per test run).
pub(crate) fn models() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-models");
        std::fs::create_dir_all(&dir).expect("models dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/onnx_models.py");
        let mut cmd = Command::new(support::provision::python_with_pika());
        cmd.arg(script).arg(&dir);
        support::provision::run_bounded("onnx_models.py", cmd, LIMIT)
            .unwrap_or_else(|e| panic!("{e}"));
        dir
    })
}

/// `cmd` with the test venv's ONNX Runtime as ORT_DYLIB_PATH.
pub(crate) fn with_runtime(mut cmd: Command) -> Command {
    cmd.env("ORT_DYLIB_PATH", support::provision::onnxruntime_library());
    cmd
}

/// `train --data <task's csv> --target .. --id id --model NAME.onnx`.
pub(crate) fn train(sb: &Sandbox, name: &str, classifier: bool) -> (Command, PathBuf) {
    let out = sb.join(&format!("{name}.model.json"));
    let (csv, target) = data(classifier, "train");
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(csv)
        .args(["--target", target, "--id", "id", "--baseline-window"])
        .arg(WINDOW.to_string())
        .arg("--model")
        .arg(models().join(format!("{name}.onnx")))
        .arg("--out")
        .arg(&out);
    (cmd, out)
}

fn data(classifier: bool, which: &str) -> (PathBuf, &'static str) {
    match classifier {
        true => (models().join(format!("{which}_cls.csv")), "kind"),
        false => (models().join(format!("{which}_reg.csv")), "y"),
    }
}

/// `run` of the artifact over the new rows, in file order, as fast as it goes.
fn run(sb: &Sandbox, logs: &Path, artifact: &Path, classifier: bool) -> Command {
    let (csv, target) = data(classifier, "new");
    sb.run_launch(logs, &[])
        .args(["--data".as_ref(), csv.as_os_str()])
        .args([
            "--target".as_ref(),
            target.as_ref(),
            "--model".as_ref(),
            artifact.as_os_str(),
        ])
        .args(["--order", "sequential", "--rate", "0", "--monitor-window"])
        .args([WINDOW.to_string().as_str(), "--http-listen", "off"])
        .command()
}

/// The oracle's columns of NAME.expected.csv, one row per new row.
fn expected(name: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(models().join(format!("{name}.expected.csv"))).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect()
}

fn relative(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-12)
}

/// The log loss of rows (truth, probabilities) as the monitor and
/// scikit-learn compute it (clipped to [eps, 1 - eps], renormalised).
fn log_loss(rows: &[(usize, &[f64])]) -> f64 {
    let eps = f64::EPSILON;
    let sum: f64 = rows
        .iter()
        .map(|(t, p)| {
            let c: Vec<f64> = p.iter().map(|v| v.clamp(eps, 1.0 - eps)).collect();
            -(c[*t] / c.iter().sum::<f64>()).ln()
        })
        .sum();
    sum / rows.len() as f64
}

#[test]
fn six_exported_models_predict_as_onnxruntime_and_scikit_learn_do() {
    let models_run = [
        ("lin", false),
        ("ridge", false),
        ("forest", false),
        ("boost", false),
        ("logistic", true),
        ("forest_cls", true),
    ];
    let mut report = Vec::new();
    for (name, classifier) in models_run {
        let sb = Sandbox::new();
        let (cmd, artifact) = train(&sb, name, classifier);
        let out = run_within(with_runtime(cmd), LIMIT);
        out.expect_code(0);
        assert!(
            out.stdout.contains("(ONNX model \"")
                && out.stdout.contains(&format!("{name}.onnx\")")),
            "{}",
            out.stdout
        );
        let logs = sb.join("logs");
        let out = run_within(with_runtime(run(&sb, &logs, &artifact, classifier)), LIMIT);
        out.expect_code(0);
        let mut rows = read_metric_log(&logs);
        assert_eq!(rows.len(), 1000, "{name}: every new row predicted");
        // Ids are given in file order (`--order sequential`).
        rows.sort_by_key(|r| r.id);
        let want = expected(name);
        if !classifier {
            let (mut ort, mut skl) = (0f64, 0f64);
            for (r, w) in rows.iter().zip(&want) {
                ort = ort.max(relative(r.y_pred, w[0]));
                skl = skl.max(relative(r.y_pred, w[1]));
            }
            assert!(ort <= 1e-5, "{name}: {ort:e} from onnxruntime-python");
            assert!(skl <= 1e-4, "{name}: {skl:e} from scikit-learn");
            report.push(format!(
                "{name}: max relative {ort:.1e} (onnxruntime) {skl:.1e} (scikit-learn)"
            ));
            continue;
        }
        let (checked, ties, ort, skl) = assert_classifier_agrees(&logs, &want);
        report.push(format!(
            "{name}: {checked} classes exact ({ties} near ties), window log loss max relative \
             {ort:.1e} (onnxruntime) {skl:.1e} (scikit-learn)"
        ));
    }
    eprintln!("{}", report.join("\n"));
}

/// The file row of each id in `logs`' metric log: row k of the file has
/// the k-th smallest id (`--order sequential`). Ids are not row numbers
/// plus a constant: a batch's first id is the clock's microsecond when that
/// is past the last id (core::ids), so a slow batch leaves a gap.
fn file_rows(logs: &Path) -> std::collections::HashMap<u64, usize> {
    let mut ids: Vec<u64> = read_metric_log(logs).iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "a record for every row, once");
    ids.iter().enumerate().map(|(k, id)| (*id, k)).collect()
}

/// The predicted class of each row of `logs` (oracle row [`file_rows`]) is
/// the most probable of onnxruntime's probabilities (near ties aside), and
/// each full window's log loss is theirs and scikit-learn's, the windows
/// over the rows in the order `metric_log.csv` holds them. Returns (rows
/// checked, near ties, largest relative log-loss difference from
/// onnxruntime, from scikit-learn).
fn assert_classifier_agrees(logs: &Path, want: &[Vec<f64>]) -> (usize, usize, f64, f64) {
    let rows = file_rows(logs);
    let index = |id: u64| rows[&id];
    let joined = read_metric_log(logs);
    assert_eq!(joined.len(), want.len(), "every row predicted");
    let k = want[0].len() / 2;
    let (mut checked, mut ties) = (0, 0);
    for r in &joined {
        let p = &want[index(r.id)][..k];
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
        if p[order[0]] - p[order[1]] < 1e-6 {
            ties += 1;
            continue;
        }
        assert_eq!(r.y_pred as usize, order[0], "row {}", index(r.id));
        checked += 1;
    }
    assert!(
        checked >= want.len() * 9 / 10,
        "{checked} rows checked, {ties} ties"
    );
    let (_, windows) = full_windows(logs, WINDOW);
    assert_eq!(windows.len(), want.len() / WINDOW, "windows");
    let (mut ort, mut skl) = (0f64, 0f64);
    for (w, chunk) in windows.iter().zip(joined.chunks(WINDOW)) {
        let of = |at: usize| -> f64 {
            let rows: Vec<(usize, &[f64])> = chunk
                .iter()
                .map(|r| (r.y_true as usize, &want[index(r.id)][at..at + k]))
                .collect();
            log_loss(&rows)
        };
        ort = ort.max(relative(w.num("log_loss"), of(0)));
        skl = skl.max(relative(w.num("log_loss"), of(k)));
    }
    assert!(ort <= 1e-5, "log loss {ort:e} from onnxruntime-python");
    assert!(skl <= 1e-4, "log loss {skl:e} from scikit-learn");
    (checked, ties, ort, skl)
}

/// The split layout with an ONNX classifier: the source, the model and the
/// metric with its monitor in three processes on the real RabbitMQ (objects
/// named for the test, deleted after); only the model's process has
/// ORT_DYLIB_PATH. Its scored features carry the probabilities to the
/// monitor; every class and window agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onnx_classifier_runs_split_and_only_its_model_process_needs_the_library() {
    use crate::support::split::*;
    let sb = Sandbox::new();
    let (cmd, artifact) = train(&sb, "forest_cls", true);
    run_within(with_runtime(cmd), LIMIT).expect_code(0);
    let (data, target) = data(true, "new");
    let broker = TestBroker::new("onnx");
    let window = WINDOW.to_string();
    let own = [
        "--data",
        data.to_str().unwrap(),
        "--target",
        target,
        "--model",
        artifact.to_str().unwrap(),
        "--monitor-window",
        &window,
    ];
    let library = support::provision::onnxruntime_library();
    let model_env = [("ORT_DYLIB_PATH".to_owned(), library.display().to_string())];
    let (mut metric, mut model) =
        crate::split_own::run_split(&broker, &own, &[], &model_env, 1000, 3).await;
    model.stop(STOP).await;
    metric.stop(STOP).await;
    let (checked, ties, ort, skl) =
        assert_classifier_agrees(&metric.logs_dir(), &expected("forest_cls"));
    println!(
        "split ONNX classifier: {checked} classes exact ({ties} near ties), window log loss \
         {ort:.1e} (onnxruntime) {skl:.1e} (scikit-learn)"
    );
}

/// `train --model FILE` of a bad file exits 2 with `says`, writing nothing.
fn refused_train(name: &str, classifier: bool, says: &[&str]) {
    let sb = Sandbox::new();
    let (cmd, artifact) = train(&sb, name, classifier);
    let out = run_within(with_runtime(cmd), LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    for s in says {
        assert!(line.contains(s), "{name}: {line:?} does not say {s:?}");
    }
    assert!(!artifact.exists(), "{name}: nothing written");
}

#[test]
fn bad_onnx_files_exit_2_naming_what_is_wrong() {
    refused_train("corrupt", false, &["corrupt.onnx", "is not an ONNX model"]);
    refused_train(
        "wrong_inputs",
        false,
        &[
            "input \"X\"",
            "(dyn, 3)",
            "[rows, 4]",
            "\"x1\", \"x2\", \"x3\", \"x4\"",
        ],
    );
    refused_train("zipmap", true, &["ZipMap", "'zipmap': False"]);
    // A regression's file for a classification target.
    refused_train("forest", true, &["class probabilities", "[rows, classes]"]);
}

#[test]
fn a_missing_or_wrong_runtime_library_and_a_bare_or_replaced_file_exit_2() {
    let sb = Sandbox::new();
    let (cmd, artifact) = train(&sb, "lin", false);
    run_within(with_runtime(cmd), LIMIT).expect_code(0);
    let logs = sb.join("logs");

    // No library: how to get one.
    let out = run_within(run(&sb, &logs, &artifact, false), LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    for s in [
        "no ONNX Runtime library",
        "ORT_DYLIB_PATH",
        "pip install onnxruntime",
        "model.onnxruntime",
    ] {
        assert!(line.contains(s), "{line:?} does not say {s:?}");
    }
    // A file that is not the library, by the config key: named, and the
    // env value never shown.
    let mut cmd = run(&sb, &logs, &artifact, false);
    let not_a_library = models().join("new_reg.csv");
    cmd.env("MODELWATCH__MODEL__ONNXRUNTIME", &not_a_library);
    let out = run_within(cmd, LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(
        line.contains("model.onnxruntime") && line.contains("cannot be loaded as ONNX Runtime"),
        "{line:?}"
    );
    let mut cmd = run(&sb, &logs, &artifact, false);
    cmd.env("ORT_DYLIB_PATH", &not_a_library);
    let out = run_within(cmd, LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(line.contains("ORT_DYLIB_PATH cannot be loaded"), "{line:?}");
    assert!(
        !out.stderr.contains("new_reg.csv"),
        "the env value is not shown: {}",
        out.stderr
    );

    // The .onnx itself given to run: wrap it first.
    let out = run_within(
        with_runtime(run(&sb, &logs, &models().join("lin.onnx"), false)),
        LIMIT,
    );
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(
        line.contains("is an ONNX file: wrap it first") && line.contains("modelwatch train"),
        "{line:?}"
    );

    // Another model under the artifact's file name: refused, not run
    // against the reference of the first.
    let wrapped = sb.join("lin.onnx");
    std::fs::copy(models().join("lin.onnx"), &wrapped).unwrap();
    let (cmd, beside) = {
        let mut cmd = sb.command(["train", "--data"]);
        let beside = sb.join("beside.model.json");
        cmd.arg(models().join("train_reg.csv"))
            .args(["--target", "y", "--id", "id", "--model"])
            .arg(&wrapped)
            .arg("--out")
            .arg(&beside);
        (cmd, beside)
    };
    run_within(with_runtime(cmd), LIMIT).expect_code(0);
    let text = std::fs::read_to_string(&beside).unwrap();
    assert!(
        text.contains("\"file\": \"lin.onnx\""),
        "named beside the artifact: {text}"
    );
    std::fs::copy(models().join("ridge.onnx"), &wrapped).unwrap();
    let out = run_within(with_runtime(run(&sb, &logs, &beside, false)), LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(line.contains("sha256 differs"), "{line:?}");
    assert!(!logs.join("metric_log.csv").exists(), "nothing run");
}

/// `POST /api/predict` and the dashboard with an ONNX classifier: each of
/// the first rows of the new data gets onnxruntime-python's probabilities
/// (1e-5), by class name; the page names the model.
#[test]
fn the_json_api_answers_with_the_onnx_models_probabilities() {
    use crate::dashboard::post;
    use crate::support::openmetrics::http_addr;
    let sb = Sandbox::new();
    let (cmd, artifact) = train(&sb, "logistic", true);
    run_within(with_runtime(cmd), LIMIT).expect_code(0);
    let logs = sb.join("logs");
    let (data, target) = data(true, "new");
    let mut cmd = sb
        .run_launch(&logs, &[])
        .args(["--data".as_ref(), data.as_os_str()])
        .args([
            "--target".as_ref(),
            target.as_ref(),
            "--model".as_ref(),
            artifact.as_os_str(),
        ])
        .args([
            "--rate",
            "20",
            "--count",
            "0",
            "--http-listen",
            "127.0.0.1:0",
            "--monitor-window",
            &WINDOW.to_string(),
        ])
        .command();
    cmd.env("ORT_DYLIB_PATH", support::provision::onnxruntime_library());
    let app = support::sandbox::Running::spawn(cmd);
    let addr = http_addr(&logs, support::sandbox::TIMEOUT);
    let want = expected("logistic");
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut worst = 0f64;
    for (i, line) in lines.take(20).enumerate() {
        let mut body = serde_json::Map::new();
        for (name, cell) in header.iter().zip(line.split(',')) {
            if name.starts_with('x') {
                body.insert(
                    name.to_string(),
                    serde_json::json!(cell.parse::<f64>().unwrap()),
                );
            }
        }
        let body = serde_json::Value::Object(body).to_string();
        let (status, answer) = post(addr, "/api/predict", "application/json", body.as_bytes());
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        for (j, class) in ["alpha", "beta", "gamma"].iter().enumerate() {
            let got = answer["probabilities"][class]
                .as_f64()
                .expect("by class name");
            worst = worst.max(relative(got, want[i][j]));
        }
        assert!(answer["prediction"].is_string(), "{answer}");
        assert_eq!(answer["model"]["kind"], "onnx", "{answer}");
    }
    assert!(worst <= 1e-5, "{worst:e} from onnxruntime-python");
    let page = crate::support::openmetrics::http_get(addr, "/predict");
    assert!(page.body.contains("An ONNX classifier of"), "{}", page.body);
    app.signal("INT");
    app.wait(LIMIT).expect_code(0);
    println!(
        "/api/predict of an ONNX classifier: 20 rows within {worst:.1e} of onnxruntime-python"
    );
}

/// A model that gives NaN for some rows (sqrt(x2 - 0.05), wrapped on rows
/// where it is defined): the run goes on, every other row is written, the
/// rows it cannot predict are counted, and the run exits 1 with that count.
#[test]
fn rows_the_model_cannot_predict_are_counted_and_the_run_exits_1() {
    let sb = Sandbox::new();
    let artifact = sb.join("sqrt.model.json");
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(models().join("train_sqrt.csv"))
        .args(["--target", "y", "--id", "id", "--baseline-window"])
        .arg(WINDOW.to_string())
        .arg("--model")
        .arg(models().join("sqrt.onnx"))
        .arg("--out")
        .arg(&artifact);
    run_within(with_runtime(cmd), LIMIT).expect_code(0);
    // The same model on rows where it is not defined: refused at train,
    // naming a row.
    let (cmd, _) = train(&sb, "sqrt", false);
    let out = run_within(with_runtime(cmd), LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(
        line.contains("NaN: not a finite prediction") && line.contains("for row "),
        "{line:?}"
    );

    let (data, _) = data(false, "new");
    let undefined = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2).unwrap().parse::<f64>().unwrap() < 0.05)
        .count();
    assert!(undefined > 10, "{undefined} rows with x2 < 0.05");
    let logs = sb.join("logs");
    let out = run_within(with_runtime(run(&sb, &logs, &artifact, false)), LIMIT);
    out.expect_code(1);
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("{undefined} rows the model could not predict")),
        "{line:?}"
    );
    assert_eq!(
        read_metric_log(&logs).len(),
        1000 - undefined,
        "every other row written"
    );
    let metrics = std::fs::read_to_string(logs.join("final_metrics.txt")).unwrap();
    assert!(
        metrics.contains(&format!("modelwatch_model_unpredicted_total {undefined}\n")),
        "{metrics}"
    );
}

#[test]
fn an_artifact_over_its_model_and_a_truncated_library_are_refused() {
    let sb = Sandbox::new();
    // --out naming the ONNX file: the model is kept.
    let onnx = sb.join("lin.onnx");
    std::fs::copy(models().join("lin.onnx"), &onnx).unwrap();
    let before = std::fs::read(&onnx).unwrap();
    let mut cmd = sb.command(["train", "--data"]);
    cmd.arg(models().join("train_reg.csv"))
        .args(["--target", "y", "--id", "id", "--model"])
        .arg(&onnx)
        .arg("--out")
        .arg(&onnx);
    let out = run_within(with_runtime(cmd), LIMIT);
    out.expect_code(2);
    assert!(
        one_error_line(&out).contains("is the --model file"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&onnx).unwrap(),
        before,
        "the ONNX file is untouched"
    );

    // A library cut short: refused before it is opened (dlopen of it dies
    // of SIGBUS).
    let lib = std::fs::read(support::provision::onnxruntime_library()).unwrap();
    let half = sb.join("libonnxruntime.so.half");
    std::fs::write(&half, &lib[..lib.len() / 2]).unwrap();
    let (mut cmd, artifact) = train(&sb, "lin", false);
    cmd.env("MODELWATCH__MODEL__ONNXRUNTIME", &half);
    let out = run_within(cmd, LIMIT);
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(
        line.contains("model.onnxruntime") && line.contains("cut short"),
        "{line:?}"
    );
    assert!(!artifact.exists());
}
