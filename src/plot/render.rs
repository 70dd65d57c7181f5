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
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::model::baseline::Baseline;
use crate::plot::histogram::{Bar, ErrorHistogram};
use crate::plot::kde::Kde;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

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
    // A unique temporary file per render (a periodic and the final render
    // may overlap); a link, FIFO or device at `path` is refused.
    let mut problem = None;
    crate::core::output_file::replace_with(path, |tmp| {
        draw(tmp).map_err(|e| {
            problem = Some(e.to_string());
            std::io::Error::other("drawing failed")
        })
    })
    .map_err(|e| err(problem.take().unwrap_or_else(|| e.to_string())))
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

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The picture, back to front: the ranges, the chart and its mesh, the
/// bars, the density curve, the training MAE, the legend, the summary.
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
    draw_bars(&mut chart, &bars, bar_width)?;
    if !curve.is_empty() {
        let style = KDE_COLOR.stroke_width(3);
        chart
            .draw_series(LineSeries::new(curve, style))?
            .label("density (Gaussian KDE, Scott's bandwidth)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
    }
    if let Some(mae) = training_mae {
        draw_training_mae(&mut chart, mae, y_top)?;
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

/// The non-empty bars, filled (with their legend entry), then outlined.
fn draw_bars(
    chart: &mut Chart<'_, '_>,
    bars: &[Bar],
    bar_width: f64,
) -> Result<(), Box<dyn std::error::Error>> {
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
    Ok(())
}

/// The training MAE: a dashed vertical line (with its legend entry) and
/// its value written above it.
fn draw_training_mae(
    chart: &mut Chart<'_, '_>,
    mae: f64,
    y_top: f64,
) -> Result<(), Box<dyn std::error::Error>> {
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
    Ok(())
}

/// Decoding pictures in tests, as a reader would see them.
#[cfg(test)]
pub(crate) mod test_png {
    use plotters::style::RGBColor;
    use std::path::Path;

    /// A decoded RGB picture.
    pub struct Image {
        pub width: u32,
        pub height: u32,
        rgb: Vec<u8>,
    }

    pub fn decode(path: &Path) -> Image {
        let mut decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        rgb.truncate(frame.buffer_size());
        Image {
            width: frame.width,
            height: frame.height,
            rgb,
        }
    }

    impl Image {
        /// (column, row) of every pixel exactly `color` left of column `x_end`.
        pub fn pixels(&self, color: RGBColor, x_end: u32) -> Vec<(u32, u32)> {
            let mut out = Vec::new();
            for y in 0..self.height {
                for x in 0..x_end.min(self.width) {
                    let i = ((y * self.width + x) * 3) as usize;
                    if self.rgb[i..i + 3] == [color.0, color.1, color.2] {
                        out.push((x, y));
                    }
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::baseline::Band;

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
        // and so do the smallest and the most lopsided sizes the config allows
        for (width, height) in [(200, 150), (8000, 150), (200, 8000)] {
            let spec = PlotSpec {
                width,
                height,
                bins: 1000,
            };
            render_png(&h, spec, None, &path).unwrap();
            let img = test_png::decode(&path);
            assert_eq!((img.width, img.height), (width, height));
        }
    }

    /// |N(0, 40)|-like errors from a fixed LCG and Box-Muller.
    fn half_normal(n: usize) -> ErrorHistogram {
        let mut state: u64 = 7;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut h = ErrorHistogram::new();
        for _ in 0..n {
            let (u, v) = (uniform(), uniform());
            h.add((40.0 * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()).abs());
        }
        h
    }

    #[test]
    fn the_density_curve_is_on_the_scale_of_the_bars() {
        let h = half_normal(20_000);
        let bars = h.bars(40);
        let bw = bars[0].hi - bars[0].lo;
        let curve = density_curve(&h, bw).unwrap();
        assert_eq!(curve.len(), KDE_GRID);
        assert!(
            curve[0].0 < 0.1 && curve[KDE_GRID - 1].0 == h.max(),
            "cut = 0"
        );
        // Its area in bars is the number of errors, less what the Gaussian
        // kernels spill below 0 and past the largest error (a few percent).
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum();
        let in_bars = area / bw;
        assert!(
            in_bars > 0.9 * 20_000.0 && in_bars < 20_000.0,
            "curve holds {in_bars} errors"
        );
        // Away from 0, it runs through the tops of the bars.
        for b in &bars[3..15] {
            let mid = (b.lo + b.hi) / 2.0;
            let near = curve
                .iter()
                .min_by(|a, c| (a.0 - mid).abs().total_cmp(&(c.0 - mid).abs()))
                .unwrap();
            let rel = (near.1 - b.count as f64).abs() / b.count as f64;
            assert!(
                rel < 0.1,
                "bar at {mid:.1}: {} vs curve {:.0}",
                b.count,
                near.1
            );
        }
        // No spread, no curve.
        let mut one = ErrorHistogram::new();
        one.add(5.0);
        one.add(5.0);
        assert_eq!(density_curve(&one, 1.0), None);
    }

    #[test]
    fn the_picture_shows_the_curve_and_the_training_mae() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.png");
        // Errors spread evenly over [0, 100): every bar the same height.
        let mut h = ErrorHistogram::new();
        for i in 0..10_000 {
            h.add(i as f64 / 100.0);
        }
        let band = |mean| Band {
            mean,
            std: 1.0,
            p01: mean - 2.3,
            p99: mean + 2.3,
        };
        let baseline = Baseline {
            classification: None,
            window: 500,
            windows: 100,
            seed: 1,
            mae: band(30.0),
            rmse: band(40.0),
            r2: band(0.5),
            bias: band(0.0),
            max_error: band(99.0),
        };
        let spec = PlotSpec {
            width: 1000,
            height: 600,
            bins: 20,
        };
        render_png(&h, spec, Some(&baseline), &path).unwrap();
        let img = test_png::decode(&path);
        assert_eq!((img.width, img.height), (1000, 600));

        // The bars' span on the bottom row of bar pixels maps x to columns.
        let bar = img.pixels(BAR_COLOR, img.width);
        let floor = bar.iter().map(|p| p.1).max().unwrap();
        let on_floor: Vec<u32> = bar.iter().filter(|p| p.1 == floor).map(|p| p.0).collect();
        let (left, right) = (
            *on_floor.iter().min().unwrap(),
            *on_floor.iter().max().unwrap(),
        );
        let column = |x: f64| left as f64 + x / h.max() * (right - left) as f64;

        // The training MAE is a vertical line at 30.
        let red = img.pixels(BASELINE_COLOR, img.width);
        let mut per_column = std::collections::HashMap::new();
        for p in &red {
            *per_column.entry(p.0).or_insert(0) += 1;
        }
        let (&line_x, &tall) = per_column.iter().max_by_key(|e| *e.1).unwrap();
        assert!(tall > 150, "the line is {tall} pixels tall");
        assert!(
            (line_x as f64 - column(30.0)).abs() <= 3.0,
            "line at column {line_x}, 30.0 is at {:.0}",
            column(30.0)
        );

        // The density curve runs along the tops of the (equal) bars in the
        // middle of the range.
        let curve = img.pixels(KDE_COLOR, img.width);
        let x = column(52.5).round() as u32; // a bar's centre, not an edge
        let bar_top = bar.iter().filter(|p| p.0 == x).map(|p| p.1).min().unwrap();
        let curve_rows: Vec<u32> = curve.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
        assert!(!curve_rows.is_empty());
        assert!(
            curve_rows.iter().all(|&r| r.abs_diff(bar_top) <= 6),
            "curve rows {curve_rows:?}, bar top {bar_top}"
        );

        render_png(&h, spec, None, &path).unwrap();
        let img = test_png::decode(&path);
        assert!(img.pixels(BASELINE_COLOR, img.width).is_empty());
        assert!(!img.pixels(KDE_COLOR, img.width).is_empty());
    }
}
