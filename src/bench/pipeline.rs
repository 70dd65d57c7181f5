//! In-process pipeline figures: samples/s, emit-to-row latency and peak RSS
//! of `modelwatch run --rate 0`, run as a child process like a user runs it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use super::{median, BenchOptions, Figure};

/// The fields of the last line of `pipeline.log` containing `marker`.
pub fn summary_fields(log: &Path, marker: &str) -> anyhow::Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let line = text
        .lines()
        .rfind(|l| l.contains(marker))
        .with_context(|| format!("no {marker:?} line in {}", log.display()))?;
    Ok(line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect())
}

/// Runs `modelwatch run` with `args` and `env` in a fresh logs dir; returns
/// the fields of its "run finished" line and of its "bridge summary" line.
pub fn run_child(
    opts: &BenchOptions,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<(HashMap<String, String>, HashMap<String, String>)> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let status = Command::new(exe)
        .arg("run")
        .args(opts.config_args())
        .arg("--logs-dir")
        .arg(dir.path())
        .args(args)
        .env("MODELWATCH__HTTP__LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::null())
        .status()?;
    let log = dir.path().join("pipeline.log");
    let run = summary_fields(&log, "run finished");
    let bridge = summary_fields(&log, "bridge summary").unwrap_or_default();
    // Exit 1 with a summary: the run finished but left messages undelivered
    // (e.g. the broker-unreachable figure); its figures still stand.
    let undelivered = |k: &str| bridge.get(k).is_some_and(|v| v != "0");
    let incomplete = status.code() == Some(1)
        && run.is_ok()
        && (undelivered("undelivered") || undelivered("dropped"));
    if !status.success() && !incomplete {
        bail!("modelwatch run {args:?} failed: {status}");
    }
    Ok((run?, bridge))
}

pub fn num(fields: &HashMap<String, String>, key: &str) -> anyhow::Result<f64> {
    fields
        .get(key)
        .with_context(|| format!("no {key} in the summary"))?
        .parse()
        .with_context(|| format!("{key} is not a number"))
}

struct Run {
    rate: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    rss_mib: f64,
}

fn measure(opts: &BenchOptions, count: u64) -> anyhow::Result<Run> {
    let mut runs = Vec::new();
    for _ in 0..opts.runs {
        let (f, _) = run_child(
            opts,
            &["--count", &count.to_string(), "--rate", "0", "--seed", "1"],
            &[],
        )?;
        if num(&f, "rows")? as u64 != count {
            bail!("run --count {count} wrote {} rows", num(&f, "rows")?);
        }
        runs.push(f);
    }
    let med = |k: &str| -> anyhow::Result<f64> {
        Ok(median(
            runs.iter()
                .map(|f| num(f, k))
                .collect::<anyhow::Result<_>>()?,
        ))
    };
    Ok(Run {
        rate: med("samples_per_sec")?,
        p50: med("latency_p50_us")?,
        p99: med("latency_p99_us")?,
        p999: med("latency_p999_us")?,
        rss_mib: med("peak_rss_kib")? / 1024.0,
    })
}

pub fn bench(opts: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let (small, large) = if opts.quick {
        (2_000, 20_000)
    } else {
        (100_000, 1_000_000)
    };
    let s = measure(opts, small)?;
    let l = measure(opts, large)?;
    let cmd = |n: u64| format!("`modelwatch run --count {n} --rate 0 --seed 1`");
    Ok(vec![
        Figure::new(
            format!("pipeline, bridge off, {large} samples: samples/s"),
            format!("{:.0}", l.rate),
            cmd(large),
        ),
        Figure::new(
            format!("pipeline, {large} samples: emit-to-row latency p50 / p99 / p99.9"),
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                l.p50 / 1e3,
                l.p99 / 1e3,
                l.p999 / 1e3
            ),
            "HdrHistogram in the metric actor",
        ),
        Figure::new(
            format!("pipeline peak RSS, {small} vs {large} samples"),
            format!(
                "{:.1} MiB vs {:.1} MiB (ratio {:.2})",
                s.rss_mib,
                l.rss_mib,
                l.rss_mib / s.rss_mib
            ),
            format!("VmHWM; {small} samples ran at {:.0}/s", s.rate),
        ),
    ])
}
