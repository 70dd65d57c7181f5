//! Draws the error histogram to a PNG with plotters.
//!
//! Pure drawing, no actor: the plot actor hands a snapshot of the histogram
//! to a blocking thread that calls [`render_png`]. The font (DejaVu Sans,
//! shipped in `assets/`) is compiled in and registered with plotters'
//! `ab_glyph` backend, so neither building nor running needs fontconfig. The
//! picture is written beside its final name and renamed over it, so a viewer
//! never sees half a PNG.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use plotters::prelude::*;

use crate::histogram::ErrorHistogram;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Size and bar count of the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotSpec {
    pub width: u32,
    pub height: u32,
    pub bins: usize,
}

/// A failed render, with the file it was for.
#[derive(Debug, thiserror::Error)]
#[error("rendering {path}: {problem}")]
pub struct RenderError {
    pub path: PathBuf,
    pub problem: String,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| ())
            .expect("the bundled DejaVu Sans is a valid font");
    });
}

/// Renders `hist` as a bar chart to `path` (PNG).
pub fn render_png(hist: &ErrorHistogram, spec: PlotSpec, path: &Path) -> Result<(), RenderError> {
    register_font();
    let err = |problem: String| RenderError {
        path: path.to_owned(),
        problem,
    };
    // A unique temporary name: a periodic and the final render may overlap.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{seq}.tmp.png", std::process::id()));
    draw(hist, spec, &tmp).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

fn draw(
    hist: &ErrorHistogram,
    spec: PlotSpec,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let bars = hist.bars(spec.bins);
    let x_max = bars.last().map_or(1.0, |b| b.hi);
    let y_max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64 * 1.1;

    let root = BitMapBackend::new(path, (spec.width, spec.height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Distribution of absolute errors", ("sans-serif", 26))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("absolute error |y_true - y_pred|")
        .y_desc("samples")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let fill = RGBColor(70, 130, 180).filled();
    chart.draw_series(
        bars.iter()
            .filter(|b| b.count > 0)
            .map(|b| Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64)], fill)),
    )?;
    chart.draw_series(
        bars.iter()
            .filter(|b| b.count > 0)
            .map(|b| Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64)], BLACK.stroke_width(1))),
    )?;
    let summary = format!(
        "n = {}   mean = {:.2}   max = {:.2}",
        hist.count(),
        hist.mean(),
        hist.max()
    );
    root.draw_text(
        &summary,
        &("sans-serif", 16).into_font().color(&BLACK),
        (spec.width as i32 - 360, 50),
    )?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png_of_the_configured_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.png");
        let mut h = ErrorHistogram::new();
        for i in 0..1000 {
            h.add((i % 97) as f64);
        }
        let spec = PlotSpec {
            width: 640,
            height: 480,
            bins: 20,
        };
        render_png(&h, spec, &path).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (640, 480));
        // an empty histogram renders too
        render_png(&ErrorHistogram::new(), spec, &path).unwrap();
    }
}
