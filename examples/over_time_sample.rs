//! Draws the monitor's two pictures from synthetic data, to look at them
//! without running a pipeline: `error_over_time.png` for a run whose MAE
//! steps up (an alert fires three windows later and resolves after the step
//! ends), and `error_distribution.png` with its density curve and the
//! training MAE line.
//!
//!     cargo run --example over_time_sample -- target/
//!
//! writes `target/over_time_sample.png`, `target/histogram_sample.png` and
//! `target/over_time_long_sample.png` (400,000 windows in 500 points).

use std::path::PathBuf;
use std::time::Instant;

use modelwatch::model::baseline::{Band, Baseline};
use modelwatch::monitor::over_time::OverTime;
use modelwatch::monitor::report::{AlertEvent, WindowReport, WindowStats};
use modelwatch::plot::histogram::ErrorHistogram;
use modelwatch::plot::render::{density_curve, render_png, PlotSpec};

/// A deterministic uniform in (0, 1) (a 64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next(), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn band(mean: f64, std: f64) -> Band {
    Band {
        mean,
        std,
        p01: mean - 2.33 * std,
        p99: mean + 2.33 * std,
    }
}

fn event(state: &str, seq: u64, value: f64) -> AlertEvent {
    AlertEvent {
        rule: "mae_above_baseline".into(),
        state: state.into(),
        metric: "mae".into(),
        value,
        threshold: 47.3,
        seq,
        end_id: seq * 500,
        at_ms: 1_764_428_400_000 + seq * 2_000,
        message: String::new(),
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target".into()));
    std::fs::create_dir_all(&dir)?;
    // Figures of the diabetes model's training residuals, roughly.
    let baseline = Baseline {
        classification: None,
        window: 500,
        windows: 1000,
        seed: 1,
        mae: band(43.3, 1.35),
        rmse: band(53.8, 1.6),
        r2: band(0.51, 0.03),
        bias: band(0.0, 2.4),
        max_error: band(150.0, 9.0),
    };
    let mut rng = Lcg(42);
    let mut series = OverTime::new(2000);
    let mut hist = ErrorHistogram::new();
    for seq in 1..=300u64 {
        let shifted = (120..220).contains(&seq);
        let (mae, rmse) = if shifted { (55.0, 69.0) } else { (43.3, 53.8) };
        let report = WindowReport {
            classification: None,
            seq,
            end_id: seq * 500,
            end_ms: 1_764_428_400_000 + seq * 2_000,
            window: WindowStats {
                count: 500,
                mae: mae + 1.35 * rng.normal(),
                rmse: rmse + 1.6 * rng.normal(),
                r2: 0.5,
                bias: 0.0,
                max_error: 150.0,
            },
            period: WindowStats::default(),
            features: Vec::new(),
            prediction: None,
            drift_share: None,
            dataset_drift: None,
            active_alerts: Vec::new(),
        };
        series.push_window(&report);
        if seq == 123 {
            series.push_event(&event("fired", seq, report.window.mae));
        }
        if seq == 226 {
            series.push_event(&event("resolved", seq, report.window.mae));
        }
        // Half-normal absolute errors with the window's MAE.
        for _ in 0..500 {
            hist.add((mae * (std::f64::consts::PI / 2.0).sqrt() * rng.normal()).abs());
        }
    }
    let spec = PlotSpec {
        width: 1000,
        height: 600,
        bins: 40,
    };
    let over_time = dir.join("over_time_sample.png");
    // Twice: the first call also registers the font.
    series.render(Some(&baseline), spec, &over_time)?;
    let t = Instant::now();
    series.render(Some(&baseline), spec, &over_time)?;
    println!("over time, 300 points: {:.1} ms", ms(t));
    let histogram = dir.join("histogram_sample.png");
    let t = Instant::now();
    render_png(&hist, spec, Some(&baseline), &histogram)?;
    println!(
        "histogram with its curve, {} errors: {:.1} ms",
        hist.count(),
        ms(t)
    );
    let bars = hist.bars(spec.bins);
    let t = Instant::now();
    let curve = density_curve(&hist, bars[0].hi - bars[0].lo);
    println!(
        "of which the curve ({} kernels x {} points): {:.2} ms",
        hist.fine_bins().count(),
        curve.map_or(0, |c| c.len()),
        ms(t)
    );

    // A long run: 400,000 windows kept in 500 points (each the mean of
    // 1024 windows, with their min-max range), shifted from 150,000 to 250,000.
    let mut long = OverTime::new(500);
    for seq in 1..=400_000u64 {
        let shifted = (150_000..250_000).contains(&seq);
        let mae = if shifted { 50.0 } else { 43.3 } + 1.35 * rng.normal();
        let rmse = if shifted { 62.0 } else { 53.8 } + 1.6 * rng.normal();
        let mut report = WindowReport {
            classification: None,
            seq,
            end_id: seq * 500,
            end_ms: 1_764_428_400_000 + seq * 2_000,
            window: WindowStats {
                count: 500,
                mae,
                rmse,
                ..WindowStats::default()
            },
            period: WindowStats::default(),
            features: Vec::new(),
            prediction: None,
            drift_share: None,
            dataset_drift: None,
            active_alerts: Vec::new(),
        };
        report.window.r2 = 0.5;
        long.push_window(&report);
        if seq == 150_003 {
            long.push_event(&event("fired", seq, mae));
        }
        if seq == 250_004 {
            long.push_event(&event("resolved", seq, mae));
        }
    }
    let merged = dir.join("over_time_long_sample.png");
    let t = Instant::now();
    long.render(Some(&baseline), spec, &merged)?;
    println!(
        "over time, {} points of 400,000 windows: {:.1} ms",
        long.len(),
        ms(t)
    );
    println!(
        "{}\n{}\n{}",
        over_time.display(),
        histogram.display(),
        merged.display()
    );
    Ok(())
}
