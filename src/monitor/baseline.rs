//! The training baseline: what a window of `window` rows looks like when
//! nothing is wrong.
//!
//! The pipeline's stream (without a scenario) samples the 442 training rows
//! with replacement, so a window of it is exactly a bootstrap window of the
//! training pairs `(y_true, y_pred)`: drawing `windows` of them (seeded)
//! gives the null distribution of every window metric. Per metric the
//! [`Band`] holds the mean, the standard deviation with ddof 1 (the spread
//! of one more window, estimated from a sample of windows) and the 1st and
//! 99th percentiles (numpy's default linear interpolation). NannyML's issue
//! #426 is why this is not "the reference cut into chunks": chunks of the
//! reference compared with the reference are not a null distribution of
//! windows of the stream.
//!
//! A window whose targets are all equal has no R² (see `rolling`): the R²
//! band is taken over the windows that have one; from [`WINDOW_RANGE`](crate::model::baseline::WINDOW_RANGE)'s
//! lower end of 10 rows on that is practically all of them.
//!
//! The baseline is stored in the model artifact by `modelwatch train`;
//! [`baseline_for`] returns the artifact's when it is for the monitor's
//! window and computes one in memory otherwise. The baseline as data, and
//! the check of one read from disk, are `model::baseline`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::data::Dataset;
use crate::model::baseline::{check, check_sizes, err, Band, Baseline, BaselineError};
use crate::model::LinearModel;

/// Bootstrap windows drawn by default (`train --baseline-windows`).
pub const DEFAULT_WINDOWS: usize = 2000;
/// The default seed (`train --baseline-seed`).
pub const DEFAULT_SEED: u64 = 42;
/// The default window (`monitor.window`'s default).
pub const DEFAULT_WINDOW: usize = 500;
/// The figures of one window, in [`METRICS`] order.
fn window_figures(pairs: &[(f64, f64)], idx: &[usize]) -> [f64; 5] {
    let n = idx.len() as f64;
    let (mut abs, mut sq, mut sum, mut max, mut sy) = (0.0, 0.0, 0.0, 0.0f64, 0.0);
    for &i in idx {
        let (y, p) = pairs[i];
        let e = p - y;
        abs += e.abs();
        sq += e * e;
        sum += e;
        max = max.max(e.abs());
        sy += y;
    }
    let mean_y = sy / n;
    let ss_tot: f64 = idx.iter().map(|&i| (pairs[i].0 - mean_y).powi(2)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - sq / ss_tot
    } else {
        f64::NAN
    };
    [abs / n, (sq / n).sqrt(), r2, sum / n, max]
}

/// The metrics a baseline has a band for, in the order of [`Baseline`].
pub const METRICS: [&str; 5] = ["mae", "rmse", "r2", "bias", "max_error"];

/// `numpy.percentile(values, q)` (linear) of sorted values.
fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    super::drift::quantile_sorted(sorted, q / 100.0)
}

/// Mean, std (ddof 1), p01 and p99 of the finite values (at least two).
pub(crate) fn band(values: &mut Vec<f64>) -> Option<Band> {
    values.retain(|v| v.is_finite());
    if values.len() < 2 {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(Band {
        mean,
        std: var.sqrt(),
        p01: percentile_sorted(values, 1.0),
        p99: percentile_sorted(values, 99.0),
    })
}

/// Draws `windows` windows of `window` pairs with replacement from `pairs`
/// (seeded) and summarises each metric over them.
pub fn bootstrap(
    pairs: &[(f64, f64)],
    window: usize,
    windows: usize,
    seed: u64,
) -> Result<Baseline, BaselineError> {
    check_sizes(window, windows)?;
    if pairs.len() < 2 || pairs.iter().any(|(y, p)| !y.is_finite() || !p.is_finite()) {
        return Err(err(
            "training data",
            format!("{} pairs, at least 2 finite ones are needed", pairs.len()),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut idx = vec![0usize; window];
    let mut per_metric: [Vec<f64>; 5] = Default::default();
    for v in per_metric.iter_mut() {
        v.reserve_exact(windows);
    }
    for _ in 0..windows {
        for i in idx.iter_mut() {
            *i = rng.random_range(0..pairs.len());
        }
        for (v, f) in per_metric.iter_mut().zip(window_figures(pairs, &idx)) {
            v.push(f);
        }
    }
    let mut bands = Vec::with_capacity(5);
    for (name, values) in METRICS.iter().zip(per_metric.iter_mut()) {
        bands.push(band(values).ok_or_else(|| {
            err(
                "training data",
                format!("{name} is undefined in every window (constant targets)"),
            )
        })?);
    }
    let b = Baseline {
        window,
        windows,
        seed,
        mae: bands[0],
        rmse: bands[1],
        r2: bands[2],
        bias: bands[3],
        max_error: bands[4],
        classification: None,
    };
    check(&b)?;
    Ok(b)
}

/// The training pairs `(y_true, y_pred)` of `model` on the embedded data.
pub fn training_pairs(model: &LinearModel) -> Vec<(f64, f64)> {
    let data = Dataset::embedded();
    (0..data.len())
        .map(|i| (data.targets[i], model.predict(&data.feature_row(i))))
        .collect()
}

/// The baseline of `model` for windows of `window` rows.
pub fn from_model(
    model: &LinearModel,
    window: usize,
    windows: usize,
    seed: u64,
) -> Result<Baseline, BaselineError> {
    bootstrap(&training_pairs(model), window, windows, seed)
}

/// The artifact's baseline when it is for `window`, else one computed in
/// memory with [`DEFAULT_WINDOWS`] and [`DEFAULT_SEED`] (about 10 ms in
/// release for a window of 500).
pub fn baseline_for(model: &LinearModel, window: usize) -> Result<Baseline, BaselineError> {
    match &model.baseline {
        Some(b) if b.window == window => Ok(b.clone()),
        _ => from_model(model, window, DEFAULT_WINDOWS, DEFAULT_SEED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::rolling::CountWindow;

    fn model() -> LinearModel {
        LinearModel::fit(Dataset::embedded()).unwrap()
    }

    // From `/work/venv-sci/bin/python tests/oracle/baseline.py` (numpy 2.4.6):
    // per metric (mean, std ddof=1, p01, p99) over 200,000 bootstrap windows of
    // 500, then the Monte-Carlo standard error of each figure for an estimate
    // from 2,000 windows (the std of the figure across 100 batches of 2,000).
    const NUMPY: [([f64; 4], [f64; 4]); 5] = [
        (
            [
                43.27709422966184,
                1.4015886633377992,
                40.05196678524994,
                46.57392785713499,
            ],
            [
                0.031198872565575415,
                0.022112577694615946,
                0.11501949889381936,
                0.11259931638036175,
            ],
        ),
        (
            [
                53.45258540156985,
                1.567445492172655,
                49.8229307135012,
                57.114803453516075,
            ],
            [
                0.03522657608892847,
                0.024726320290704276,
                0.13378899027092694,
                0.12090180739570809,
            ],
        ),
        (
            [
                0.5161468918217639,
                0.0296645854355175,
                0.4432312892461376,
                0.5815063199943248,
            ],
            [
                0.0007169414770202938,
                0.00044800287437091196,
                0.0028883401136161335,
                0.001897952379538754,
            ],
        ),
        (
            [
                0.0022504051989566706,
                2.4009932673946652,
                -5.577574291751963,
                5.575608437576417,
            ],
            [
                0.045936230618660256,
                0.04321913347388325,
                0.21806367839867433,
                0.20789536382635948,
            ],
        ),
        (
            [
                153.35116196711652,
                4.776479789609286,
                130.94078367125684,
                155.8267661215517,
            ],
            [
                0.1113917466649529,
                0.18695464263358041,
                2.603899335092584,
                1.9995424926305773e-13,
            ],
        ),
    ];

    fn bands(b: &Baseline) -> [Band; 5] {
        [b.mae, b.rmse, b.r2, b.bias, b.max_error]
    }

    #[test]
    fn the_default_baseline_agrees_with_numpy_within_monte_carlo_error() {
        let b = from_model(&model(), 500, DEFAULT_WINDOWS, DEFAULT_SEED).unwrap();
        assert_eq!((b.window, b.windows, b.seed), (500, 2000, 42));
        for ((name, band), (want, se)) in METRICS.iter().zip(bands(&b)).zip(NUMPY) {
            let got = [band.mean, band.std, band.p01, band.p99];
            for k in 0..4 {
                // Four standard errors of a 2,000-window estimate (numpy's own
                // 200,000-window error is a tenth of that), and at least 1e-9
                // relative: the top of max_error's band is the largest training
                // residual in both.
                let tol = (4.0 * se[k]).max(1e-9 * want[k].abs());
                assert!(
                    (got[k] - want[k]).abs() <= tol,
                    "{name}[{k}]: {} vs numpy {} (tolerance {tol})",
                    got[k],
                    want[k]
                );
            }
        }
    }

    #[test]
    fn windows_of_a_fresh_stream_fall_in_the_band_about_98_percent_of_the_time() {
        let m = model();
        let b = from_model(&m, 500, DEFAULT_WINDOWS, DEFAULT_SEED).unwrap();
        let pairs = training_pairs(&m);
        // A stream like the source's: random rows, seeded apart from the
        // baseline, cut into 2,000 consecutive windows of 500.
        let mut rng = StdRng::seed_from_u64(7);
        let n = 2000;
        let mut inside = [0usize; 5];
        for _ in 0..n {
            let mut w = CountWindow::new(500);
            for _ in 0..500 {
                let (y, p) = pairs[rng.random_range(0..pairs.len())];
                w.push(y, p);
            }
            let s = w.stats();
            let figures = [s.mae, s.rmse, s.r2, s.bias, s.max_error];
            for (k, (f, band)) in figures.iter().zip(bands(&b)).enumerate() {
                inside[k] += (band.p01 <= *f && *f <= band.p99) as usize;
            }
        }
        let shares: Vec<f64> = inside.iter().map(|&c| c as f64 / n as f64).collect();
        println!("share of windows inside p01..p99: {shares:?} ({METRICS:?})");
        // max_error is discrete at the top: p99 is the largest training
        // residual itself, so only the lower 1% is outside (~0.99).
        for (k, s) in shares.iter().enumerate() {
            let want = if METRICS[k] == "max_error" {
                0.99
            } else {
                0.98
            };
            // Binomial SE of a share at 2,000 windows is 0.003, the band's
            // own estimation adds as much: 0.02 is over four of both.
            assert!((s - want).abs() <= 0.02, "{}: {s}", METRICS[k]);
        }
    }

    #[test]
    fn baseline_for_uses_the_artifacts_only_for_its_window() {
        let mut m = model();
        assert!(m.baseline.is_none());
        let computed = baseline_for(&m, 500).unwrap();
        assert_eq!(computed, from_model(&m, 500, 2000, 42).unwrap());
        let mut stored = from_model(&m, 500, 300, 9).unwrap();
        m.baseline = Some(stored.clone());
        assert_eq!(baseline_for(&m, 500).unwrap(), stored);
        let other = baseline_for(&m, 200).unwrap();
        assert_eq!((other.window, other.windows, other.seed), (200, 2000, 42));
        // A smaller window spreads wider.
        assert!(other.mae.std > stored.mae.std);
        stored.window = 5;
        assert_eq!(check(&stored).unwrap_err().key, "window");
    }

    #[test]
    fn bad_sizes_and_figures_are_refused_naming_them() {
        let m = model();
        assert_eq!(from_model(&m, 0, 2000, 1).unwrap_err().key, "window");
        assert_eq!(from_model(&m, 500, 10, 1).unwrap_err().key, "windows");
        assert_eq!(
            from_model(&m, 100_000, 100_000, 1).unwrap_err().key,
            "windows"
        );
        let good = from_model(&m, 50, 100, 1).unwrap();
        check(&good).unwrap();
        let mut b = good.clone();
        b.rmse.std = -1.0;
        assert_eq!(check(&b).unwrap_err().key, "rmse");
        let mut b = good.clone();
        b.bias.p99 = f64::INFINITY;
        assert_eq!(check(&b).unwrap_err().key, "bias");
        let mut b = good.clone();
        b.mae.p01 = b.mae.p99 + 1.0;
        assert_eq!(check(&b).unwrap_err().key, "mae");
        let mut b = good;
        b.r2.p99 = 1.5;
        assert_eq!(check(&b).unwrap_err().key, "r2");
        let constant = vec![(100.0, 90.0); 20];
        let e = bootstrap(&constant, 10, 100, 1).unwrap_err();
        assert!(e.problem.contains("r2"), "{e}");
    }
}
