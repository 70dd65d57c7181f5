//! Cost growth of the plot: loading an existing log once at start, and one
//! update-and-render, with a small and a large log already written; and
//! what publishing the dashboard's view (bars and density curve) adds to a
//! render.

use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::{median, BenchOptions, Figure};
use crate::core::append_file::AppendFile;
use crate::core::messages::MetricRecord;
use crate::metric::log_format::{read_metric_log, write_metric_rows, METRIC_HEADER};
use crate::plot::histogram::ErrorHistogram;
use crate::plot::render::{render_png, PlotSpec};
use crate::plot::PlotActor;

fn write_log(path: &std::path::Path, rows: u64) -> anyhow::Result<()> {
    let (mut f, _) = AppendFile::open(path, Some(METRIC_HEADER))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut batch = Vec::with_capacity(4096);
    for id in 0..rows {
        let y = rng.random_range(25.0..346.0);
        let p = rng.random_range(25.0..346.0);
        batch.push(MetricRecord::join(id, y, p));
        if batch.len() == 4096 || id + 1 == rows {
            write_metric_rows(&batch, f.buffer());
            f.flush()?;
            batch.clear();
        }
    }
    Ok(())
}

struct Cost {
    load_ms: f64,
    frame_ms: f64,
    view_ms: f64,
}

fn measure(opts: &BenchOptions, rows: u64) -> anyhow::Result<Cost> {
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("metric_log.csv");
    let png = dir.path().join("error_distribution.png");
    write_log(&csv, rows)?;
    let spec = PlotSpec {
        width: 1000,
        height: 600,
        bins: 40,
    };
    let mut loads = Vec::new();
    let mut frames = Vec::new();
    let mut views = Vec::new();
    let view = crate::plot::view::PlotView::default();
    for _ in 0..opts.runs {
        let t = Instant::now();
        let _actor = PlotActor::load(
            &csv,
            png.clone(),
            spec,
            std::time::Duration::from_secs(2),
            crate::core::metrics::Telemetry::new("plot").metrics.clone(),
        )?;
        loads.push(t.elapsed().as_secs_f64() * 1e3);

        let mut hist = ErrorHistogram::new();
        read_metric_log(&csv, |r| hist.add(r.absolute_error))?;
        let t = Instant::now();
        for i in 0..512 {
            hist.add((i % 150) as f64);
        }
        render_png(&hist, spec, None, &png)?;
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        view.publish(&hist, spec.bins);
        views.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Cost {
        load_ms: median(loads),
        frame_ms: median(frames),
        view_ms: median(views),
    })
}

pub fn bench(opts: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let (small, large) = if opts.quick {
        (1_000, 20_000)
    } else {
        (1_000, 1_000_000)
    };
    let s = measure(opts, small)?;
    let l = measure(opts, large)?;
    Ok(vec![
        Figure::new(
            format!("plot update + render, {small} vs {large} rows logged"),
            format!(
                "{:.1} ms vs {:.1} ms (ratio {:.2})",
                s.frame_ms,
                l.frame_ms,
                l.frame_ms / s.frame_ms
            ),
            "512 new records and one 1000x600 PNG",
        ),
        Figure::new(
            format!("plot's dashboard view, {large} rows logged"),
            format!("{:.2} ms per render", l.view_ms),
            format!(
                "40 bars and the 200-point density curve, published after each render ({small} rows: {:.2} ms)",
                s.view_ms
            ),
        ),
        Figure::new(
            format!("plot start-up with a {large}-row log"),
            format!("{:.0} ms", l.load_ms),
            format!("read once at start ({small} rows: {:.1} ms)", s.load_ms),
        ),
    ])
}
