//! Draws the error histogram to a PNG with plotters.
//!
//! Pure drawing, no actor: the plot actor hands a snapshot of the histogram
//! to a blocking thread that calls [`render_png`]. Over the bars goes the
//! density curve the Python original drew (seaborn's `histplot(kde=True)`:
//! a Gaussian KDE with Scott's bandwidth, scaled to samples per bar, from
//! the smallest error to the largest), estimated from the histogram's fine
//! bins so a frame costs the same however long the run; and, when the model
//! artifact has a training baseline, a vertical line at its MAE. The font
//! (DejaVu Sans, shipped in `assets/`) is compiled in and registered with
//! plotters' `ab_glyph` backend, so neither building nor running needs
//! fontconfig. Every picture is written beside its final name and renamed
//! over it ([`write_png`]), so a viewer never sees half a PNG.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use plotters::prelude::*;

use crate::histogram::ErrorHistogram;
use crate::monitor::kde::Kde;
use crate::monitor::report::Baseline;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Bars of the histogram.
pub const BAR_COLOR: RGBColor = RGBColor(70, 130, 180);
/// The density curve.
pub const KDE_COLOR: RGBColor = RGBColor(8, 48, 107);
/// The training baseline's MAE.
pub const BASELINE_COLOR: RGBColor = RGBColor(200, 30, 30);
/// Points on the density curve (seaborn's `gridsize`).
pub const KDE_GRID: usize = 200;

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

/// Registers the bundled DejaVu Sans as plotters' "sans-serif" (once).
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| ())
            .expect("the bundled DejaVu Sans is a valid font");
    });
}

/// Runs `draw` on a unique temporary file beside `path`, then renames it
/// over `path`: a reader sees the old picture or the new one, never half.
pub(crate) fn write_png(
    path: &Path,
    draw: impl FnOnce(&Path) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), RenderError> {
    register_font();
    let err = |problem: String| RenderError {
        path: path.to_owned(),
        problem,
    };
    // A unique temporary name: a periodic and the final render may overlap.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{seq}.tmp.png", std::process::id()));
    if let Err(e) = draw(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e.to_string()));
    }
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

/// Renders `hist` as a bar chart with its density curve to `path` (PNG),
/// with a line at the training MAE when there is a `baseline`.
pub fn render_png(
    hist: &ErrorHistogram,
    spec: PlotSpec,
    baseline: Option<&Baseline>,
    path: &Path,
) -> Result<(), RenderError> {
    write_png(path, |tmp| draw(hist, spec, baseline, tmp))
}

/// The density curve in samples per bar of `bar_width` (seaborn scales the
/// KDE by the histogram's area, `n × bar_width` for equal bars counted),
/// on [`KDE_GRID`] points from the first non-empty fine bin to the largest
/// error. None while the errors have no spread (fewer than two distinct
/// fine bins): seaborn draws no curve then either.
pub fn density_curve(hist: &ErrorHistogram, bar_width: f64) -> Option<Vec<(f64, f64)>> {
    let (centres, counts): (Vec<f64>, Vec<u64>) = hist.fine_bins().unzip();
    let kde = Kde::from_counts(&centres, &counts).ok()?;
    let lo = centres[0].min(hist.max());
    let scale = hist.count() as f64 * bar_width;
    Some(
        kde.curve(lo, hist.max(), KDE_GRID)
            .into_iter()
            .map(|(x, d)| (x, d * scale))
            .collect(),
    )
}

fn draw(
    hist: &ErrorHistogram,
    spec: PlotSpec,
    baseline: Option<&Baseline>,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let bars = hist.bars(spec.bins);
    let bar_width = bars[0].hi - bars[0].lo;
    let curve = density_curve(hist, bar_width).unwrap_or_default();
    let training_mae = baseline
        .map(|b| b.mae.mean)
        .filter(|m| m.is_finite() && *m >= 0.0);
    let x_max = bars
        .last()
        .map_or(1.0, |b| b.hi)
        .max(training_mae.map_or(0.0, |m| m * 1.05));
    let y_top = bars
        .iter()
        .map(|b| b.count as f64)
        .chain(curve.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    // Headroom for the legend and the summary.
    let y_max = y_top * 1.25;

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
        .x_desc("absolute error |y_true - y_pred| (target units)")
        .y_desc("samples")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let fill = BAR_COLOR.filled();
    chart
        .draw_series(
            bars.iter()
                .filter(|b| b.count > 0)
                .map(|b| Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64)], fill)),
        )?
        .label(format!("errors per bar ({bar_width:.2} wide)"))
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], fill));
    chart.draw_series(
        bars.iter()
            .filter(|b| b.count > 0)
            .map(|b| Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64)], BLACK.stroke_width(1))),
    )?;
    if !curve.is_empty() {
        let style = KDE_COLOR.stroke_width(3);
        chart
            .draw_series(LineSeries::new(curve, style))?
            .label("density (Gaussian KDE, Scott's bandwidth)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
    }
    if let Some(mae) = training_mae {
        let style = BASELINE_COLOR.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                [(mae, 0.0), (mae, y_top * 1.05)],
                8,
                5,
                style,
            ))?
            .label(format!("training MAE {mae:.2}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
        chart.draw_series(std::iter::once(Text::new(
            format!("training MAE {mae:.2}"),
            (mae, y_top * 1.1),
            ("sans-serif", 15).into_font().color(&BASELINE_COLOR),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    let summary = format!(
        "n = {}   mean = {:.2}   max = {:.2}",
        hist.count(),
        hist.mean(),
        hist.max()
    );
    root.draw_text(
        &summary,
        &("sans-serif", 16).into_font().color(&BLACK),
        (90, 50),
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
        render_png(&h, spec, None, &path).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (640, 480));
        // an empty histogram renders too
        render_png(&ErrorHistogram::new(), spec, None, &path).unwrap();
    }
}
