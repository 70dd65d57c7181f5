//! In-process pipeline figures: samples/s, emit-to-row latency and peak RSS
//! of `modelwatch run --rate 0`, run as a child process like a user runs it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use super::{median, BenchOptions, Figure};

/// The fields of the last line of `pipeline.log` containing `marker`
/// (only for the latency quantiles of the metric's HdrHistogram, which the
/// registry's coarse buckets cannot give).
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

/// A sample of an exposition by its exact series (0 if absent).
pub fn registry_value(registry: &str, series: &str) -> f64 {
    registry
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// What a child run left: its registry at exit (`final_metrics.txt`) and
/// its summary line.
pub struct ChildRun {
    registry: String,
    summary: HashMap<String, String>,
}

impl ChildRun {
    /// A sample of the registry by its exact series, e.g.
    /// `modelwatch_rows_written_total` or
    /// `modelwatch_bridge_messages_total{event="confirmed"}` (0 if absent:
    /// a counter nobody touched is not exposed).
    pub fn value(&self, series: &str) -> f64 {
        registry_value(&self.registry, series)
    }

    /// A field of the summary line (the latency quantiles).
    pub fn summary(&self, key: &str) -> anyhow::Result<f64> {
        self.summary
            .get(key)
            .with_context(|| format!("no {key} in the summary"))?
            .parse()
            .with_context(|| format!("{key} is not a number"))
    }

    pub fn rows(&self) -> f64 {
        self.value("modelwatch_rows_written_total")
    }

    /// From start to the end of the drain (the broker's confirms included).
    pub fn secs(&self) -> f64 {
        self.value("modelwatch_run_seconds")
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.value("modelwatch_peak_resident_memory_bytes") / (1024.0 * 1024.0)
    }

    pub fn bridge(&self, event: &str) -> f64 {
        self.value(&format!(
            "modelwatch_bridge_messages_total{{event=\"{event}\"}}"
        ))
    }
}

/// Runs `modelwatch run` with `args` and `env` in a fresh logs dir.
pub fn run_child(
    opts: &BenchOptions,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<ChildRun> {
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
    let registry = std::fs::read_to_string(dir.path().join("final_metrics.txt"))
        .with_context(|| format!("modelwatch run {args:?} ({status}) left no final metrics"))?;
    let summary = summary_fields(&dir.path().join("pipeline.log"), "run finished")?;
    let run = ChildRun { registry, summary };
    // Exit 1 with a summary: the run finished but left messages undelivered
    // (e.g. the broker-unreachable figure); its figures still stand.
    let incomplete = status.code() == Some(1)
        && (run.value("modelwatch_bridge_undelivered") > 0.0 || run.bridge("dropped") > 0.0);
    if !status.success() && !incomplete {
        bail!("modelwatch run {args:?} failed: {status}");
    }
    Ok(run)
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
        let r = run_child(
            opts,
            &["--count", &count.to_string(), "--rate", "0", "--seed", "1"],
            &[],
        )?;
        if r.rows() as u64 != count {
            bail!("run --count {count} wrote {} rows", r.rows());
        }
        runs.push(r);
    }
    let med = |f: &dyn Fn(&ChildRun) -> anyhow::Result<f64>| -> anyhow::Result<f64> {
        Ok(median(runs.iter().map(f).collect::<anyhow::Result<_>>()?))
    };
    Ok(Run {
        rate: med(&|r| Ok(r.rows() / r.secs().max(1e-9)))?,
        p50: med(&|r| r.summary("latency_p50_us"))?,
        p99: med(&|r| r.summary("latency_p99_us"))?,
        p999: med(&|r| r.summary("latency_p999_us"))?,
        rss_mib: med(&|r| Ok(r.peak_rss_mib()))?,
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
            format!("pipeline peak RSS (monitor as configured: on by default), {small} vs {large} samples"),
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
