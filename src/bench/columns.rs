//! The cost of a wider schema: samples/s of the diabetes default (10
//! numeric columns) against a generated data set of 50 columns (40 numeric,
//! 10 categorical of 6 levels; 100,000 rows), regression and a classifier
//! of three classes (the same rows, the target cut into classes), in the
//! same invocation, all with the defaults on (the monitor included). Each
//! is `modelwatch run --rate 0` as a child, alternated; the wide ones run
//! the artifacts `modelwatch train --data` wrote for them. The goal (issue
//! 20): the wide set at least 1/5 of the diabetes rate.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::pipeline::run_child;
use super::{median, BenchOptions, Figure};

/// Numeric and categorical columns of the wide set, and levels of each
/// categorical column.
const NUMERIC: usize = 40;
const CATEGORICAL: usize = 10;
const LEVELS: usize = 6;

/// Writes the wide data set: `rows` rows, seeded; the target is a linear
/// function of every column plus noise, or with `classes`, that value cut
/// into three classes (`low` below -1.5, `high` above 1.5, else `mid`).
fn write_wide(path: &Path, rows: usize, classes: bool) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(50);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let names: Vec<String> = (0..NUMERIC)
        .map(|j| format!("x{j}"))
        .chain((0..CATEGORICAL).map(|j| format!("c{j}")))
        .chain(["y".to_owned()])
        .collect();
    writeln!(out, "{}", names.join(","))?;
    let weights: Vec<f64> = (0..NUMERIC).map(|j| (j as f64 * 0.7).sin()).collect();
    let effects: Vec<f64> = (0..CATEGORICAL * LEVELS)
        .map(|k| (k as f64 * 1.3).cos())
        .collect();
    let mut line = String::new();
    for _ in 0..rows {
        line.clear();
        let mut y = 0.0;
        for w in &weights {
            let x: f64 = rng.random_range(-3.0..3.0);
            y += w * x;
            line += &format!("{x:.6},");
        }
        for j in 0..CATEGORICAL {
            let level = rng.random_range(0..LEVELS);
            y += effects[j * LEVELS + level];
            line += &format!("l{level},");
        }
        y += rng.random_range(-1.0..1.0);
        match classes {
            false => line += &format!("{y:.6}"),
            true if y < -1.5 => line += "low",
            true if y > 1.5 => line += "high",
            true => line += "mid",
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

pub fn bench(opts: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let (rows, count) = if opts.quick {
        (1_000, 5_000u64)
    } else {
        (100_000, 1_000_000)
    };
    let dir = tempfile::tempdir()?;
    let count_s = count.to_string();
    let plain = ["--count", &count_s, "--rate", "0", "--seed", "1"];
    let mut wide_args: Vec<Vec<String>> = Vec::new();
    for (name, classes) in [("wide", false), ("wide_classes", true)] {
        let data = dir.path().join(format!("{name}.csv"));
        let artifact = dir.path().join(format!("{name}.model.json"));
        write_wide(&data, rows, classes)?;
        train(opts, &data, &artifact)?;
        let mut args: Vec<String> = plain.iter().map(|s| s.to_string()).collect();
        for a in [
            "--data".as_ref(),
            data.as_os_str(),
            "--target".as_ref(),
            "y".as_ref(),
            "--model".as_ref(),
            artifact.as_os_str(),
        ] {
            args.push(a.to_str().context("temp path")?.to_owned());
        }
        wide_args.push(args);
    }
    let runs: Vec<Vec<&str>> = std::iter::once(plain.to_vec())
        .chain(
            wide_args
                .iter()
                .map(|a| a.iter().map(String::as_str).collect()),
        )
        .collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for _ in 0..opts.runs {
        for (args, out) in runs.iter().zip(rates.iter_mut()) {
            let r = run_child(opts, args, &[])?;
            if r.rows() as u64 != count {
                bail!("run {args:?} wrote {} rows of {count}", r.rows());
            }
            out.push(r.rows() / r.secs().max(1e-9));
        }
    }
    let mut rates = rates.into_iter().map(median);
    let (d, w, c) = (
        rates.next().unwrap_or(f64::NAN),
        rates.next().unwrap_or(f64::NAN),
        rates.next().unwrap_or(f64::NAN),
    );
    Ok(vec![Figure::new(
        format!(
            "pipeline, {count} samples: diabetes (10 columns) vs {} columns ({NUMERIC} numeric, {CATEGORICAL} categorical of {LEVELS} levels; {rows} rows), regression and 3-class classifier",
            NUMERIC + CATEGORICAL
        ),
        format!(
            "{d:.0} vs {w:.0} (ratio {:.3}) and {c:.0} samples/s (ratio {:.3})",
            w / d,
            c / d
        ),
        "`run --count N --rate 0 --seed 1`, and the same with `--data wide.csv --target y --model wide.model.json` (`train --data` wrote it; a regression, then a classifier of the same rows), alternated; the monitor on in all; goal: ratios ≥ 0.2",
    )])
}

/// `modelwatch train --data <data> --target y --out <artifact>`.
fn train(opts: &BenchOptions, data: &Path, artifact: &Path) -> anyhow::Result<()> {
    let status = Command::new(std::env::current_exe()?)
        .arg("train")
        .args(opts.config_args())
        .arg("--data")
        .arg(data)
        .args(["--target", "y", "--out"])
        .arg(artifact)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("modelwatch train")?;
    if !status.success() {
        bail!(
            "modelwatch train --data {} failed: {status}",
            data.display()
        );
    }
    Ok(())
}
