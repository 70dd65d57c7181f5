//! The split layout where the model is the bottleneck: an ONNX random
//! forest (300 trees of depth 12 over 10 columns, exported by skl2onnx)
//! run by 1, 2 and 4 model processes on one work queue, against the same
//! data through the built-in linear model (the broker's pace: the model
//! costs next to nothing there), in one invocation.
//!
//! It needs what an ONNX model needs: `--python` with scikit-learn and
//! skl2onnx (the forest and its data are made by it, seeded), and the ONNX
//! Runtime library (`model.onnxruntime` or ORT_DYLIB_PATH, passed on to the
//! child processes). The goal (issue 21): 2 workers at least 1.6 times one.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use super::{median, BenchOptions, Figure};

/// Makes `forest.onnx`, `validation.csv` (2,000 rows the forest was not
/// fitted on: the monitor's reference) and `new.csv` (the stream) in the
/// folder given, for `trees` trees and `rows` new rows.
const MAKE_FOREST: &str = r#"
import csv, os, sys
import numpy as np
from sklearn.ensemble import RandomForestRegressor
from skl2onnx import to_onnx
out, trees, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
def data(n):
    x = rng.normal(size=(n, 10)).round(5)
    y = (x[:, :4].sum(1) + np.sin(3 * x[:, 4]) + x[:, 5] * x[:, 6] + rng.normal(0, 0.5, n)).round(5)
    return x, y
def write(path, x, y):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{j}" for j in range(10)] + ["y"])
        w.writerows([*map(repr, map(float, x[i])), repr(float(y[i]))] for i in range(len(y)))
x, y = data(20000)
xv, yv = data(2000)
xn, yn = data(rows)
model = RandomForestRegressor(n_estimators=trees, max_depth=12, random_state=0, n_jobs=-1).fit(x, y)
with open(os.path.join(out, "forest.onnx"), "wb") as f:
    f.write(to_onnx(model, x[:1].astype(np.float32)).SerializeToString())
write(os.path.join(out, "validation.csv"), xv, yv)
write(os.path.join(out, "new.csv"), xn, yn)
"#;

/// `modelwatch train --data validation.csv --target y [--model forest.onnx]
/// --out OUT` in `dir`.
fn wrap(opts: &BenchOptions, dir: &Path, onnx: bool, out: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("train")
        .args(opts.config_args())
        .arg("--data")
        .arg(dir.join("validation.csv"))
        .args(["--target", "y", "--out"])
        .arg(dir.join(out));
    if onnx {
        cmd.arg("--model").arg(dir.join("forest.onnx"));
    }
    let o = cmd.output().context("modelwatch train")?;
    if !o.status.success() {
        bail!(
            "modelwatch train{} failed: {}",
            if onnx { " --model forest.onnx" } else { "" },
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

pub fn bench(opts: &BenchOptions, url: &str) -> anyhow::Result<Vec<Figure>> {
    // Samples per run: one message per sample, then batch messages (the
    // same processes, many times faster: more samples to time them).
    let (trees, per_sample, batched) = if opts.quick {
        (10, 300, 300)
    } else {
        (300, 20_000, 100_000)
    };
    let dir = tempfile::tempdir()?;
    let made = Command::new(&opts.python)
        .args(["-c", MAKE_FOREST])
        .arg(dir.path())
        .args([trees.to_string(), batched.max(per_sample).to_string()])
        .output()
        .with_context(|| format!("running {}", opts.python))?;
    if !made.status.success() {
        bail!(
            "{} could not make the forest (it needs scikit-learn and skl2onnx): {}",
            opts.python,
            String::from_utf8_lossy(&made.stderr).trim()
        );
    }
    wrap(opts, dir.path(), true, "forest.model.json")?;
    wrap(opts, dir.path(), false, "linear.model.json")?;
    let data = dir.path().join("new.csv");
    let args = |model: &str| -> Vec<String> {
        vec![
            "--data".into(),
            data.display().to_string(),
            "--target".into(),
            "y".into(),
            "--model".into(),
            dir.path().join(model).display().to_string(),
            "--order".into(),
            "sequential".into(),
        ]
    };
    // The median run by rate, with the cores its parts used.
    let rate = |name: &str, model: &str, workers: usize, batch: bool| {
        let a = args(model);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let layout = super::split::Layout {
            models: workers,
            samples: if batch { batched } else { per_sample },
            args: &a,
            consumers: 3,
            batch,
        };
        let rates = (0..opts.runs)
            .map(|run| {
                let name = format!("{name}{}.{workers}.{run}", if batch { "b" } else { "" });
                super::split::once_with(opts, url, &name, layout)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mid = median(rates.iter().map(|r| r.rate).collect());
        anyhow::Ok(
            *rates
                .iter()
                .find(|r| r.rate == mid)
                .expect("the median is a run"),
        )
    };
    let mut figures = Vec::new();
    for batch in [false, true] {
        let (form, samples) = match batch {
            false => ("one message per sample", per_sample),
            true => ("batch messages (bridge.batch)", batched),
        };
        let light = rate("linear", "linear.model.json", 1, batch)?;
        figures.push(Figure::new(
            format!("split layout, {form}, 10 columns of your own data, linear model, 1 model worker (the pace without a heavy model)"),
            format!("{:.0} samples/s", light.rate),
            format!(
                "features + model + metric processes, {samples} samples; {}",
                light.cores()
            ),
        ));
        let mut one = f64::NAN;
        for workers in [1, 2, 4] {
            let r = rate("forest", "forest.model.json", workers, batch)?;
            if workers == 1 {
                one = r.rate;
            }
            figures.push(Figure::new(
                format!("split layout, {form}, ONNX forest of {trees} trees, {workers} model worker(s)"),
                format!("{:.0} samples/s ({:.2}x one worker)", r.rate, r.rate / one),
                format!(
                    "the same data and processes, the forest run by ONNX Runtime (1 thread per worker); {:.2}x the linear model's pace; {}",
                    r.rate / light.rate,
                    r.cores()
                ),
            ));
        }
    }
    Ok(figures)
}
