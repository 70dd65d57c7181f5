//! The cost of the monitor: the pipeline's samples/s with the monitor on
//! and off, alternated in the same invocation (issue target: on/off at
//! least 0.9), and how many of the records the monitor took in (it is an
//! observer on a low-priority thread: at full speed it gets the CPU the
//! pipeline leaves and misses the rest, counted, so the ratio alone would
//! flatter a monitor that drops everything); the rate at which it still
//! takes in every record; and the time of one drift evaluation of a
//! window, measured in-process (the registry's histogram times a
//! low-priority thread that may be preempted); and the peak RSS with the
//! monitor on and off (the monitor's hand-off queues and its time window
//! are most of a full-speed run's memory).

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
    let (mut rss_off, mut rss_on) = (vec![], vec![]);
    for _ in 0..opts.runs {
        let r = one_run(opts, count, false)?;
        off.push(r.rows() / r.secs().max(1e-9));
        rss_off.push(r.peak_rss_mib());
        let r = one_run(opts, count, true)?;
        on.push(r.rows() / r.secs().max(1e-9));
        rss_on.push(r.peak_rss_mib());
        taken.push(r.value("modelwatch_monitor_records_total"));
        windows.push(r.value("modelwatch_monitor_windows_total"));
    }
    let (off, on) = (median(off), median(on));
    let (taken, windows) = (median(taken), median(windows));
    let (rss_off, rss_on) = (median(rss_off), median(rss_on));
    let paced = if opts.quick { 20_000 } else { 200_000 };
    let rate = 100_000;
    let r = run_child(
        opts,
        &[
            "--count",
            &paced.to_string(),
            "--rate",
            &rate.to_string(),
            "--seed",
            "1",
        ],
        &[],
    )?;
    let paced_taken = r.value("modelwatch_monitor_records_total");
    let (eval_us, eval_n) = drift_evaluation_us(if opts.quick { 50 } else { 500 })?;
    Ok(vec![
        Figure::new(
            format!("pipeline, {count} samples: monitor on vs off"),
            format!("{on:.0} vs {off:.0} samples/s (ratio {:.3})", on / off),
            format!(
                "`MODELWATCH__MONITOR__ENABLED=true|false`, `--rate 0`, alternated; at full speed the monitor (nice 10) took in {taken:.0} of {count} records ({windows:.0} windows), the rest missed and counted"
            ),
        ),
        Figure::new(
            format!("monitor peak RSS, {count} samples at `--rate 0`: monitor on vs off"),
            format!("{rss_on:.1} MiB vs {rss_off:.1} MiB"),
            "VmHWM of the same alternated runs; the monitor's share is mostly its hand-off queues (batches waiting for it while it falls behind) and its time window (`monitor.max_period_rows`, 24 bytes a record)",
        ),
        Figure::new(
            format!("monitor at `--rate {rate}`: records taken in"),
            format!("{paced_taken:.0} of {paced}"),
            "a paced run: what the monitor keeps up with while the pipeline is not saturated",
        ),
        Figure::new(
            "monitor: one drift evaluation of a 500-row window",
            format!("{eval_us:.0} µs"),
            format!(
                "median of {eval_n} in-process evaluations: KS/chi² + PSI + Wasserstein for 10 features and the predictions against the 442 training rows"
            ),
        ),
    ])
}

/// Median time of `n` drift evaluations of one 500-row window drawn from
/// the data, in µs.
fn drift_evaluation_us(n: usize) -> anyhow::Result<(f64, usize)> {
    use crate::core::data::Dataset;
    use crate::monitor::drift::{DriftConfig, DriftDetector};
    let data = Dataset::embedded();
    let model = crate::model::LinearModel::fit(data)?;
    let detector = DriftDetector::from_training(&model, DriftConfig::default())?;
    let mut sampler = crate::source::sampler::Sampler::new(
        crate::source::sampler::Rows::Diabetes(data),
        crate::config::Order::Random,
        Some(1),
    );
    let rows: Vec<_> = (0..500)
        .map(|_| data.feature_row(sampler.next_row()))
        .collect();
    let predictions: Vec<f64> = rows.iter().map(|r| model.predict(r)).collect();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        std::hint::black_box(detector.evaluate(&rows, &predictions));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok((median(times), n))
}
