//! The training baseline as data: what each window metric looks like over
//! a window of `window` rows when nothing is wrong ([`Band`]s), stored in
//! the model artifact, and [`check`], which bounds one read from disk.
//!
//! It lives with the model because the artifact carries it; computing one
//! from the training residuals is the monitor's (`monitor::baseline`).

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// What a metric looks like over a window of `Baseline::window` rows when
/// nothing is wrong: the distribution over bootstrap windows of the
/// training residuals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub mean: f64,
    pub std: f64,
    /// 1st and 99th percentiles over the bootstrap windows.
    pub p01: f64,
    pub p99: f64,
}

/// The training baseline, stored in the model artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Rows per window the bands are for (`monitor.window` at training).
    pub window: usize,
    /// Bootstrap windows drawn.
    pub windows: usize,
    pub seed: u64,
    pub mae: Band,
    pub rmse: Band,
    pub r2: Band,
    pub bias: Band,
    pub max_error: Band,
    /// A classifier's: the bands of its window figures (`mae` and the
    /// others above are then over the class indices: see
    /// docs/own-data.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Box<ClassificationBands>>,
}

/// The bands of a classifier's window figures
/// (`monitor::classification`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationBands {
    pub accuracy: Band,
    pub log_loss: Band,
    pub roc_auc: Band,
    pub precision: Band,
    pub recall: Band,
    pub f1: Band,
    pub brier: Band,
}

impl ClassificationBands {
    /// Every band with its figure's name and the range the figure lies in.
    pub fn named(&self) -> [(&'static str, &Band, (f64, f64)); 7] {
        let share = (0.0, 1.0);
        [
            ("accuracy", &self.accuracy, share),
            ("log_loss", &self.log_loss, (0.0, f64::INFINITY)),
            ("roc_auc", &self.roc_auc, share),
            ("precision", &self.precision, share),
            ("recall", &self.recall, share),
            ("f1", &self.f1, share),
            ("brier", &self.brier, (0.0, 2.0)),
        ]
    }
}

/// Rows per window a baseline can be made for.
pub const WINDOW_RANGE: RangeInclusive<usize> = 10..=100_000;
/// Bootstrap windows a baseline can be made of.
pub const WINDOWS_RANGE: RangeInclusive<usize> = 100..=100_000;
/// Most rows drawn in all (window x windows): about a second in release.
pub const MAX_DRAWS: usize = 200_000_000;

/// Errors making or checking a baseline; `key` names the setting at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{key}: {problem}")]
pub struct BaselineError {
    pub key: &'static str,
    pub problem: String,
}

pub(crate) fn err(key: &'static str, problem: String) -> BaselineError {
    BaselineError { key, problem }
}

pub(crate) fn check_sizes(window: usize, windows: usize) -> Result<(), BaselineError> {
    if !WINDOW_RANGE.contains(&window) {
        return Err(err(
            "window",
            format!("{window} rows is not in {WINDOW_RANGE:?}"),
        ));
    }
    if !WINDOWS_RANGE.contains(&windows) {
        return Err(err(
            "windows",
            format!("{windows} windows is not in {WINDOWS_RANGE:?}"),
        ));
    }
    if window.saturating_mul(windows) > MAX_DRAWS {
        return Err(err(
            "windows",
            format!("{windows} windows of {window} rows draw more than {MAX_DRAWS} rows"),
        ));
    }
    Ok(())
}

/// Checks a baseline (one read from an artifact is outside input): sizes in
/// range, every figure finite, spreads not negative, p01 <= p99, error
/// magnitudes not negative, R² at most 1.
pub fn check(b: &Baseline) -> Result<(), BaselineError> {
    check_sizes(b.window, b.windows)?;
    let bands = [
        ("mae", &b.mae),
        ("rmse", &b.rmse),
        ("r2", &b.r2),
        ("bias", &b.bias),
        ("max_error", &b.max_error),
    ];
    for (name, band) in bands {
        let figures = [band.mean, band.std, band.p01, band.p99];
        if !figures.iter().all(|v| v.is_finite()) {
            return Err(err(name, format!("{band:?} has a non-finite figure")));
        }
        if band.std < 0.0 {
            return Err(err(name, format!("std {} is negative", band.std)));
        }
        if band.p01 > band.p99 {
            return Err(err(name, format!("p01 {} > p99 {}", band.p01, band.p99)));
        }
        let magnitude = matches!(name, "mae" | "rmse" | "max_error");
        if magnitude && band.p01 < 0.0 {
            return Err(err(
                name,
                format!("p01 {} of an error size is negative", band.p01),
            ));
        }
        if name == "r2" && band.p99 > 1.0 {
            return Err(err(name, format!("p99 {} is above 1", band.p99)));
        }
    }
    for (name, band, (lo, hi)) in b.classification.iter().flat_map(|c| c.named()) {
        let figures = [band.mean, band.std, band.p01, band.p99];
        if !figures.iter().all(|v| v.is_finite()) {
            return Err(err(name, format!("{band:?} has a non-finite figure")));
        }
        let inside = |v: f64| (lo..=hi).contains(&v);
        if band.std < 0.0
            || band.std > hi - lo
            || band.p01 > band.p99
            || !inside(band.p01)
            || !inside(band.p99)
            || !inside(band.mean)
        {
            return Err(err(
                name,
                format!(
                    "{band:?}: a negative std or one wider than the range, p01 > p99, or a figure beyond [{lo}, {hi}]"
                ),
            ));
        }
    }
    Ok(())
}
