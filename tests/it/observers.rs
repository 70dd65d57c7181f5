//! Observers are off the backpressure path: a deliberately stalled observer
//! (`FAILPOINTS=observer-stall=sleep(1000)`: each batch costs it a second)
//! misses batches, counted in `modelwatch_observer_dropped_total`, and the
//! pipeline runs as fast as without it and writes every row.
//!
//! Throughput is rows over the span of the ids, which are the emission
//! times in microseconds. The bound is loose (70 %) because a test on a
//! shared machine is not a benchmark; `modelwatch bench` measures the ratio.
//! Were the observer awaited like a work recipient, the stalled run would
//! take a second per batch (about 400 s) and fail its time limit.

use crate::support::openmetrics::Scrape;
use crate::support::sandbox::*;

const N: usize = 200_000;

/// Runs `N` samples as fast as the pipeline takes them; returns rows per
/// second of emission time and the final registry. Checks every row is there.
fn run_once(stall: bool) -> (f64, Scrape) {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(
        &logs,
        &["--count", &N.to_string(), "--rate", "0", "--seed", "11"],
    );
    if stall {
        cmd.env("FAILPOINTS", "observer-stall=sleep(1000)");
    }
    run(cmd).expect_code(0);
    let rows = read_metric_log(&logs);
    assert_eq!(rows.len(), N, "stalled observer: {stall}");
    let (lo, hi) = rows
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), r| (lo.min(r.id), hi.max(r.id)));
    let secs = (hi - lo).max(1) as f64 / 1e6;
    let fin = Scrape::final_of(&logs);
    assert_eq!(fin.count("modelwatch_rows_written_total", &[]), N as u64);
    assert_eq!(fin.count("modelwatch_samples_emitted_total", &[]), N as u64);
    (N as f64 / secs, fin)
}

#[test]
fn a_stalled_observer_drops_and_counts_and_does_not_slow_the_pipeline() {
    // Three of each, interleaved, best of each: other work on the machine
    // slows a run, never speeds it up.
    let mut free = Vec::new();
    let mut stalled = Vec::new();
    for _ in 0..3 {
        free.push(run_once(false).0);
        let (rate, fin) = run_once(true);
        let dropped = fin.count(
            "modelwatch_observer_dropped_total",
            &[("observer", "throughput")],
        );
        assert!(dropped > 0, "the stalled observer dropped nothing");
        assert!(dropped < N as u64, "{dropped} dropped of {N}");
        stalled.push(rate);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    eprintln!("samples/s: free {free:?}, observer stalled {stalled:?}");
    let (free, stalled) = (best(&free), best(&stalled));
    assert!(
        stalled >= 0.7 * free,
        "a stalled observer slowed the pipeline: {stalled:.0} samples/s vs {free:.0} without"
    );
}
