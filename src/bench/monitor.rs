//! The cost of the monitor: the pipeline's samples/s with the monitor on
//! and off, alternated in the same invocation (issue target: on/off at
//! least 0.9), how many of the records the monitor took in (it is an
//! observer: when it falls behind it misses batches, counted, so the ratio
//! alone would flatter a monitor that drops everything), and the time of
//! one drift evaluation of a closed window, from the registry's histogram.

use anyhow::bail;

use super::pipeline::{run_child, ChildRun};
use super::{median, BenchOptions, Figure};

fn one_run(opts: &BenchOptions, count: u64, monitor: bool) -> anyhow::Result<ChildRun> {
    let enabled = if monitor { "true" } else { "false" };
    let r = run_child(
        opts,
        &["--count", &count.to_string(), "--rate", "0", "--seed", "1"],
        &[("MODELWATCH__MONITOR__ENABLED", enabled)],
    )?;
    if r.rows() as u64 != count {
        bail!(
            "run --count {count} (monitor {enabled}) wrote {} rows",
            r.rows()
        );
    }
    Ok(r)
}

pub fn bench(opts: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let count = if opts.quick { 20_000 } else { 1_000_000 };
    let (mut off, mut on, mut taken, mut windows) = (vec![], vec![], vec![], vec![]);
    let (mut eval_sum, mut eval_count) = (0.0, 0.0);
    for _ in 0..opts.runs {
        let r = one_run(opts, count, false)?;
        off.push(r.rows() / r.secs().max(1e-9));
        let r = one_run(opts, count, true)?;
        on.push(r.rows() / r.secs().max(1e-9));
        taken.push(r.value("modelwatch_monitor_records_total"));
        windows.push(r.value("modelwatch_monitor_windows_total"));
        eval_sum += r.value("modelwatch_drift_evaluation_seconds_sum");
        eval_count += r.value("modelwatch_drift_evaluation_seconds_count");
    }
    let (off, on) = (median(off), median(on));
    let (taken, windows) = (median(taken), median(windows));
    let per_eval_us = eval_sum / eval_count.max(1.0) * 1e6;
    Ok(vec![
        Figure::new(
            format!("pipeline, {count} samples: monitor on vs off"),
            format!("{on:.0} vs {off:.0} samples/s (ratio {:.3})", on / off),
            format!(
                "`MODELWATCH__MONITOR__ENABLED=true|false`, alternated; with it on the monitor took in {taken:.0} of {count} records ({windows:.0} windows; the rest were missed by the observer and counted)"
            ),
        ),
        Figure::new(
            "monitor: one drift evaluation of a closed window",
            format!("{per_eval_us:.0} µs"),
            format!(
                "mean of {eval_count:.0} evaluations (10 features and the predictions against the 442 training rows), from `modelwatch_drift_evaluation_seconds`"
            ),
        ),
    ])
}
