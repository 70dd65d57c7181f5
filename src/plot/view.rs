//! What the plot last drew, shared with the dashboard: the histogram's bars
//! and its density curve, the same figures as `error_distribution.png`, so
//! the page and the picture agree.
//!
//! Why a shared snapshot rather than a second histogram: the plot actor
//! already keeps the errors (2048 fine bins) and estimates the curve from
//! them once per `plot.interval`, off the message path, on its renderer's
//! thread. It publishes a small [`HistogramView`] (a few hundred numbers)
//! behind an `Arc` each time it renders; `/events` takes the `Arc` (one
//! reference count, no copy) and serialises it, so the dashboard costs
//! nothing per sample and nothing big per tick. In the split layout the view
//! lives with the plot role; a process without it has none.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::plot::histogram::ErrorHistogram;
use crate::plot::render::density_curve;

/// The histogram as the picture draws it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramView {
    /// Renders published so far (1 for the first).
    pub version: u64,
    /// Rows counted.
    pub rows: u64,
    pub mean: f64,
    pub max: f64,
    /// Width of every bar; bar `i` spans `[i × bar_width, (i + 1) × bar_width)`.
    pub bar_width: f64,
    /// Rows per bar (`plot.bins` bars from 0 to just past `max`).
    pub counts: Vec<u64>,
    /// The density curve in rows per bar; `None` while the errors have no
    /// spread (the picture draws no curve then either).
    pub density: Option<Density>,
}

/// A curve on evenly spaced points: `y[i]` is at `lo + i × (hi − lo) / (n − 1)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Density {
    pub lo: f64,
    pub hi: f64,
    /// Four significant digits: enough to draw, and a quarter of the bytes.
    pub y: Vec<f64>,
}

/// `v` to four significant digits (0 and non-finite values as they are).
pub fn four_digits(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let k = 3 - v.abs().log10().floor() as i32;
    if k >= 0 {
        let p = 10f64.powi(k);
        (v * p).round() / p
    } else {
        let p = 10f64.powi(-k);
        (v / p).round() * p
    }
}

impl HistogramView {
    /// The bars and the curve of `hist` with `bins` bars, as
    /// [`crate::plot::render::render_png`] draws them.
    pub fn of(hist: &ErrorHistogram, bins: usize, version: u64) -> HistogramView {
        let bars = hist.bars(bins);
        let bar_width = bars[0].hi - bars[0].lo;
        let density = density_curve(hist, bar_width).map(|curve| Density {
            lo: curve[0].0,
            hi: curve[curve.len() - 1].0,
            y: curve.iter().map(|p| four_digits(p.1)).collect(),
        });
        HistogramView {
            version,
            rows: hist.count(),
            mean: hist.mean(),
            max: hist.max(),
            bar_width,
            counts: bars.iter().map(|b| b.count).collect(),
            density,
        }
    }
}

/// The latest view, written by the plot, read by the dashboard.
#[derive(Debug, Clone, Default)]
pub struct PlotView(Arc<Mutex<Option<Arc<HistogramView>>>>);

impl PlotView {
    /// Replaces the view with a view of `hist`; returns its version.
    pub fn publish(&self, hist: &ErrorHistogram, bins: usize) -> u64 {
        let version = self.latest().map_or(0, |v| v.version) + 1;
        let view = Arc::new(HistogramView::of(hist, bins, version));
        *self.lock() = Some(view);
        version
    }

    /// The latest view (a reference count, not a copy), if the plot drew one.
    pub fn latest(&self) -> Option<Arc<HistogramView>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<HistogramView>>> {
        // A writer that panicked leaves a whole value: keep serving it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_significant_digits() {
        assert_eq!(four_digits(123.456_78), 123.5);
        assert_eq!(four_digits(0.000_123_456), 0.000_123_5);
        assert_eq!(four_digits(98_765.4), 98_770.0);
        assert_eq!(four_digits(-2.345_67), -2.346);
        assert_eq!(four_digits(0.0), 0.0);
        assert_eq!(
            serde_json::to_string(&four_digits(0.1 + 0.2)).unwrap(),
            "0.3"
        );
    }

    /// The view's bars and curve are the picture's, and the curve is
    /// scipy's KDE of the fine-bin centres repeated by their counts, scaled
    /// to rows per bar.
    #[test]
    fn the_view_has_the_pictures_bars_and_scipys_density() {
        let mut h = ErrorHistogram::new();
        // Errors on fine-bin centres (width 1/128), so the binned KDE is the
        // KDE of these very values.
        let values = [0.5, 1.5, 1.5, 2.5, 2.5, 2.5, 3.5, 3.5, 4.5, 6.5, 8.5, 12.5];
        for v in values {
            h.add(v + 1.0 / 256.0);
        }
        let view = HistogramView::of(&h, 4, 7);
        assert_eq!(view.version, 7);
        assert_eq!(view.rows, 12);
        assert_eq!(view.counts, [6, 3, 2, 1]);
        let bars = h.bars(4);
        assert_eq!(
            view.counts,
            bars.iter().map(|b| b.count).collect::<Vec<_>>()
        );
        let d = view.density.expect("a curve");
        assert_eq!(d.y.len(), crate::plot::render::KDE_GRID);
        let c = 1.0 / 256.0;
        assert!((d.lo - (0.5 + c)).abs() < 1e-12 && (d.hi - (12.5 + c)).abs() < 1e-12);
        // /work/venv-sci/bin/python -c "import numpy as np; from scipy.stats import gaussian_kde
        //   c=1/256; v=np.array([0.5,1.5,1.5,2.5,2.5,2.5,3.5,3.5,4.5,6.5,8.5,12.5])+c; k=gaussian_kde(v)
        //   w=(12.5+c)*(1+1e-9)/4; x=np.linspace(0.5+c,12.5+c,200)
        //   print(repr(k(x[0])[0]*12*w), repr(k(x[50])[0]*12*w), repr(k(x[199])[0]*12*w))
        //   print(np.histogram(v,bins=4,range=(0,(12.5+c)*(1+1e-9)))[0])"
        // -> 3.3227021934944934 4.52143791218709 0.7016307512113055 / [6 3 2 1]
        let want = [
            3.322_702_193_494_493_4,
            4.521_437_912_187_09,
            0.701_630_751_211_305_5,
        ];
        for (i, w) in [0usize, 50, 199].into_iter().zip(want) {
            assert!(
                (d.y[i] - w).abs() <= w * 1e-3,
                "y[{i}] = {} vs scipy {w}",
                d.y[i]
            );
        }
    }

    #[test]
    fn publishing_counts_versions_and_shares_without_copying() {
        let view = PlotView::default();
        assert!(view.latest().is_none());
        let mut h = ErrorHistogram::new();
        h.add(3.0);
        assert_eq!(view.publish(&h, 10), 1);
        h.add(5.0);
        assert_eq!(view.publish(&h, 10), 2);
        let a = view.latest().unwrap();
        let b = view.latest().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "readers share one view");
        assert_eq!((a.version, a.rows), (2, 2));
        assert!(a.density.is_some());
    }
}
