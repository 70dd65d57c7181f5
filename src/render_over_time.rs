//! Draws `logs/error_over_time.png`: the rolling MAE and RMSE of each
//! closed window, the training baseline's band for each (mean ± 3σ of
//! windows of the same size), and a vertical marker where an alert fired or
//! resolved.
//!
//! Pure drawing from an [`OverTime`] series, which is bounded, so a render
//! costs the same after an hour or a month. Same font and same
//! write-then-rename as the histogram ([`crate::render`]). The legend and the
//! run's facts (windows, rows per window, time span, events) sit in a panel
//! to the right of the chart, so they never hide a line.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::monitor::over_time::{OverTime, Point};
use crate::monitor::report::{Band, Baseline};
use crate::render::{write_png, PlotSpec, RenderError};

pub const MAE_COLOR: RGBColor = RGBColor(31, 119, 180);
pub const RMSE_COLOR: RGBColor = RGBColor(230, 110, 0);
pub const MAE_BAND_COLOR: RGBColor = RGBColor(203, 223, 242);
pub const RMSE_BAND_COLOR: RGBColor = RGBColor(253, 221, 190);
pub const MAE_RANGE_COLOR: RGBColor = RGBColor(120, 170, 215);
pub const RMSE_RANGE_COLOR: RGBColor = RGBColor(240, 170, 110);
pub const FIRED_COLOR: RGBColor = RGBColor(214, 39, 40);
pub const RESOLVED_COLOR: RGBColor = RGBColor(44, 160, 44);
/// Half-width of the band, in baseline standard deviations (NannyML's 3σ).
pub const BAND_SIGMAS: f64 = 3.0;
/// Marker labels are written only up to this many markers (beyond, they
/// would overlap; the colours and the legend still tell).
const MAX_LABELS: usize = 12;

/// Width of the legend panel on the right of a picture `width` wide.
fn panel_width(width: u32) -> u32 {
    (width / 4).clamp(150, 300)
}

impl OverTime {
    /// Renders the series to `path` (PNG of `spec.width` × `spec.height`;
    /// `spec.bins` is not used), with the baseline's bands when there is one.
    pub fn render(
        &self,
        baseline: Option<&Baseline>,
        spec: PlotSpec,
        path: &Path,
    ) -> Result<(), RenderError> {
        write_png(path, |tmp| draw(self, baseline, spec, tmp))
    }
}

/// `[mean - 3σ, mean + 3σ]`, when both are finite.
fn band_range(b: &Band) -> Option<(f64, f64)> {
    let (lo, hi) = (b.mean - BAND_SIGMAS * b.std, b.mean + BAND_SIGMAS * b.std);
    (lo.is_finite() && hi.is_finite()).then_some((lo.max(0.0), hi))
}

fn clock(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

fn draw(
    series: &OverTime,
    baseline: Option<&Baseline>,
    spec: PlotSpec,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let points: Vec<&Point> = series.points().collect();
    let markers: Vec<_> = series.events().collect();
    let mae_band = baseline.and_then(|b| band_range(&b.mae));
    let rmse_band = baseline.and_then(|b| band_range(&b.rmse));
    let merged = points.iter().any(|p| p.windows > 1);

    // x: window sequence numbers, covering the windows and the markers.
    let seqs = points
        .iter()
        .flat_map(|p| [p.first_seq as f64, p.last_seq as f64])
        .chain(markers.iter().map(|m| m.seq as f64));
    let (mut x_lo, mut x_hi) = seqs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if x_lo > x_hi {
        (x_lo, x_hi) = (0.0, 1.0);
    } else if x_hi - x_lo < 1.0 {
        (x_lo, x_hi) = (x_lo - 0.5, x_hi + 0.5);
    }

    // y: the lines (with their min–max when merged) and the bands.
    let ys = points
        .iter()
        .flat_map(|p| {
            if merged {
                [p.mae.min, p.mae.max, p.rmse.min, p.rmse.max]
            } else {
                [p.mae(), p.mae(), p.rmse(), p.rmse()]
            }
        })
        .chain(mae_band.into_iter().flat_map(|(a, b)| [a, b]))
        .chain(rmse_band.into_iter().flat_map(|(a, b)| [a, b]));
    let (y_lo, y_hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    let (y_lo, y_hi) = if y_lo > y_hi {
        (0.0, 1.0)
    } else {
        let pad = ((y_hi - y_lo) * 0.08).max(y_hi.abs() * 0.02).max(1e-6);
        ((y_lo - pad).max(0.0), y_hi + pad * 2.5)
    };

    let root = BitMapBackend::new(path, (spec.width, spec.height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, panel) = root.split_horizontally(spec.width - panel_width(spec.width));

    let rows = baseline
        .map(|b| b.window as u64)
        .filter(|&r| r > 0)
        .unwrap_or(series.window_rows());
    let title = if rows > 0 {
        format!("Model error over time (windows of {rows} rows)")
    } else {
        "Model error over time".to_string()
    };
    let mut chart = ChartBuilder::on(&left)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("window number (seq)")
        .y_desc("error (target units)")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if y_hi - y_lo >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;

    // Bands first, so every line is drawn over them.
    for (band, mean, color, line) in [
        (
            rmse_band,
            baseline.map(|b| b.rmse.mean),
            RMSE_BAND_COLOR,
            RMSE_COLOR,
        ),
        (
            mae_band,
            baseline.map(|b| b.mae.mean),
            MAE_BAND_COLOR,
            MAE_COLOR,
        ),
    ] {
        if let (Some((lo, hi)), Some(mean)) = (band, mean) {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x_lo, lo), (x_hi, hi)],
                color.filled(),
            )))?;
            chart.draw_series(DashedLineSeries::new(
                [(x_lo, mean), (x_hi, mean)],
                6,
                6,
                line.mix(0.6).stroke_width(1),
            ))?;
        }
    }
    if merged {
        // Thin lines at the smallest and largest window of each point: a
        // spike that the mean of merged windows hides still shows, and the
        // band stays visible between them.
        for (spread, color) in [
            (
                points.iter().map(|p| (p.x(), p.rmse)).collect::<Vec<_>>(),
                RMSE_RANGE_COLOR,
            ),
            (
                points.iter().map(|p| (p.x(), p.mae)).collect(),
                MAE_RANGE_COLOR,
            ),
        ] {
            let style = color.stroke_width(1);
            chart.draw_series(LineSeries::new(
                spread.iter().map(|(x, s)| (*x, s.min)),
                style,
            ))?;
            chart.draw_series(LineSeries::new(
                spread.iter().map(|(x, s)| (*x, s.max)),
                style,
            ))?;
        }
    }
    for (values, color) in [
        (
            points.iter().map(|p| (p.x(), p.rmse())).collect::<Vec<_>>(),
            RMSE_COLOR,
        ),
        (points.iter().map(|p| (p.x(), p.mae())).collect(), MAE_COLOR),
    ] {
        if values.len() == 1 {
            chart.draw_series(std::iter::once(Circle::new(values[0], 4, color.filled())))?;
        } else {
            chart.draw_series(LineSeries::new(values, color.stroke_width(2)))?;
        }
    }

    // Markers over everything: fired solid red, resolved dashed green.
    let label_font = ("sans-serif", 13).into_font();
    let plot_top = y_hi - (y_hi - y_lo) * 0.01;
    for (i, m) in markers.iter().enumerate() {
        let x = m.seq as f64;
        let line = [(x, y_lo), (x, y_hi)];
        if m.fired {
            chart.draw_series(std::iter::once(PathElement::new(
                line,
                FIRED_COLOR.stroke_width(2),
            )))?;
        } else {
            chart.draw_series(DashedLineSeries::new(
                line,
                7,
                4,
                RESOLVED_COLOR.stroke_width(2),
            ))?;
        }
        if markers.len() <= MAX_LABELS {
            let color = if m.fired { FIRED_COLOR } else { RESOLVED_COLOR };
            let state = if m.fired { "fired" } else { "resolved" };
            // Right of the line, or left of it in the right part of the
            // chart, so a label never runs into the legend.
            let (text, anchor) = if (x - x_lo) / (x_hi - x_lo) < 0.6 {
                (format!(" {} {state}", m.rule), HPos::Left)
            } else {
                (format!("{} {state} ", m.rule), HPos::Right)
            };
            // Stagger labels over three rows so neighbours do not overlap.
            let y = plot_top - (y_hi - y_lo) * 0.045 * (i % 3) as f64;
            let style = label_font
                .clone()
                .color(&color)
                .pos(Pos::new(anchor, VPos::Top));
            chart.draw_series(std::iter::once(Text::new(text, (x, y), style)))?;
        }
    }
    if points.is_empty() {
        left.draw_text(
            "no closed window yet",
            &("sans-serif", 18).into_font().color(&BLACK),
            (spec.width as i32 / 3, spec.height as i32 / 2),
        )?;
    }

    draw_panel(&panel, series, &points, baseline.is_some(), merged)?;
    root.present()?;
    Ok(())
}

/// Legend entries and facts about the run, top to bottom.
fn draw_panel(
    panel: &DrawingArea<BitMapBackend<'_>, Shift>,
    series: &OverTime,
    points: &[&Point],
    banded: bool,
    merged: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    let small = ("sans-serif", 13).into_font().color(&RGBColor(60, 60, 60));
    let mut y = 60;
    let step = 24;
    let swatch_line =
        |y: i32, color: RGBColor, dashed: bool| -> Result<(), Box<dyn std::error::Error>> {
            if dashed {
                for x in (5..35).step_by(10) {
                    panel.draw(&PathElement::new(
                        [(x, y), (x + 6, y)],
                        color.stroke_width(2),
                    ))?;
                }
            } else {
                panel.draw(&PathElement::new([(5, y), (35, y)], color.stroke_width(2)))?;
            }
            Ok(())
        };
    let swatch_box = |y: i32, color: RGBColor| {
        panel.draw(&Rectangle::new([(5, y - 7), (35, y + 7)], color.filled()))
    };
    swatch_line(y, MAE_COLOR, false)?;
    panel.draw_text("rolling MAE", &font, (45, y - 8))?;
    y += step;
    swatch_line(y, RMSE_COLOR, false)?;
    panel.draw_text("rolling RMSE", &font, (45, y - 8))?;
    y += step;
    if banded {
        swatch_box(y, MAE_BAND_COLOR)?;
        panel.draw_text("training MAE ±3σ", &font, (45, y - 8))?;
        y += step;
        swatch_box(y, RMSE_BAND_COLOR)?;
        panel.draw_text("training RMSE ±3σ", &font, (45, y - 8))?;
        y += step;
    }
    if merged {
        panel.draw(&PathElement::new(
            [(5, y - 4), (35, y - 4)],
            MAE_RANGE_COLOR.stroke_width(1),
        ))?;
        panel.draw(&PathElement::new(
            [(5, y + 4), (35, y + 4)],
            MAE_RANGE_COLOR.stroke_width(1),
        ))?;
        panel.draw_text("min, max in a point", &font, (45, y - 8))?;
        y += step;
    }
    swatch_line(y, FIRED_COLOR, false)?;
    panel.draw_text("alert fired", &font, (45, y - 8))?;
    y += step;
    swatch_line(y, RESOLVED_COLOR, true)?;
    panel.draw_text("alert resolved", &font, (45, y - 8))?;
    y += step + 14;

    let mut facts = Vec::new();
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        facts.push(format!("windows {} – {}", first.first_seq, last.last_seq));
        if series.window_rows() > 0 {
            facts.push(format!("{} rows per window", series.window_rows()));
        }
        if merged {
            facts.push(format!("1 point = {} windows", series.windows_per_point()));
        }
        facts.push("from".to_string());
        facts.push(format!("  {}", clock(first.first_ms)));
        facts.push("to".to_string());
        facts.push(format!("  {}", clock(last.last_ms)));
    }
    let (fired, resolved) =
        series.events().fold(
            (0, 0),
            |(f, r), m| if m.fired { (f + 1, r) } else { (f, r + 1) },
        );
    facts.push(format!("alerts: {fired} fired, {resolved} resolved"));
    if series.dropped_events > 0 {
        facts.push(format!("({} older not shown)", series.dropped_events));
    }
    for line in facts {
        panel.draw_text(&line, &small, (8, y))?;
        y += 19;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::over_time::tests::report;
    use crate::monitor::report::AlertEvent;
    use crate::render::test_png::{decode, Image};

    /// (column, row) of the chart's pixels (left of the panel) in `color`.
    fn pixels(img: &Image, color: RGBColor) -> Vec<(u32, u32)> {
        img.pixels(color, img.width - panel_width(img.width))
    }

    fn baseline() -> Baseline {
        let band = |mean: f64, std: f64| Band {
            mean,
            std,
            p01: mean - 2.3 * std,
            p99: mean + 2.3 * std,
        };
        Baseline {
            window: 500,
            windows: 1000,
            seed: 7,
            mae: band(43.0, 1.5),
            rmse: band(54.0, 2.0),
            r2: band(0.5, 0.03),
            bias: band(0.0, 2.0),
            max_error: band(150.0, 10.0),
        }
    }

    fn event(rule: &str, state: &str, seq: u64) -> AlertEvent {
        AlertEvent {
            rule: rule.into(),
            state: state.into(),
            metric: "mae".into(),
            value: 60.0,
            threshold: 47.5,
            seq,
            end_id: seq,
            at_ms: 1_700_000_000_000 + seq * 250,
            message: String::new(),
        }
    }

    /// 200 windows at the baseline, then 200 with MAE and RMSE up by
    /// about a third (a shifted feature), an alert firing 3 windows
    /// into it and resolving when the shift ends at 400.
    fn step_series(max_points: usize) -> OverTime {
        let mut s = OverTime::new(max_points);
        for seq in 1..=600u64 {
            let wobble = ((seq * 37) % 11) as f64 / 10.0 - 0.5;
            let (mae, rmse) = if (201..=400).contains(&seq) {
                (58.0 + wobble, 72.0 + wobble)
            } else {
                (43.0 + wobble, 54.0 + wobble)
            };
            s.push_window(&report(seq, mae, rmse));
            if seq == 203 {
                s.push_event(&event("mae_high", "fired", seq));
            }
            if seq == 405 {
                s.push_event(&event("mae_high", "resolved", seq));
            }
        }
        s
    }

    const SPEC: PlotSpec = PlotSpec {
        width: 1000,
        height: 600,
        bins: 40,
    };

    #[test]
    fn the_band_the_lines_and_the_markers_are_where_they_belong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("error_over_time.png");
        let s = step_series(2000);
        s.render(Some(&baseline()), SPEC, &path).unwrap();
        let img = decode(&path);
        assert_eq!((img.width, img.height), (1000, 600));

        let band = pixels(&img, MAE_BAND_COLOR);
        let line = pixels(&img, MAE_COLOR);
        let fired = pixels(&img, FIRED_COLOR);
        let resolved = pixels(&img, RESOLVED_COLOR);
        assert!(band.len() > 10_000, "MAE band: {} pixels", band.len());
        assert!(!pixels(&img, RMSE_BAND_COLOR).is_empty());

        // The band spans the chart from the first window to the last.
        let (bx0, bx1) = (
            band.iter().map(|p| p.0).min().unwrap(),
            band.iter().map(|p| p.0).max().unwrap(),
        );
        let (lx0, lx1) = (
            line.iter().map(|p| p.0).min().unwrap(),
            line.iter().map(|p| p.0).max().unwrap(),
        );
        assert!(
            bx0 <= lx0 + 2 && bx1 + 2 >= lx1,
            "band {bx0}..{bx1}, line {lx0}..{lx1}"
        );
        let col = |seq: f64| lx0 as f64 + (seq - 1.0) / 599.0 * (lx1 - lx0) as f64;
        let band_rows = |x: u32| {
            let rows: Vec<u32> = band.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
            (*rows.iter().min().unwrap(), *rows.iter().max().unwrap())
        };
        let line_rows =
            |x: u32| -> Vec<u32> { line.iter().filter(|p| p.0 == x).map(|p| p.1).collect() };
        // Before the shift the MAE line runs inside its band; during it,
        // above (smaller rows); after it, inside again.
        for seq in [50.0, 150.0, 450.0, 550.0] {
            let x = col(seq).round() as u32;
            let (top, bottom) = band_rows(x);
            let rows = line_rows(x);
            assert!(!rows.is_empty(), "no MAE line at window {seq}");
            assert!(
                rows.iter().all(|&r| r > top && r < bottom),
                "window {seq}: line rows {rows:?} outside band {top}..{bottom}"
            );
        }
        for seq in [250.0, 350.0] {
            let x = col(seq).round() as u32;
            let (top, _) = band_rows(x);
            let rows = line_rows(x);
            assert!(
                !rows.is_empty() && rows.iter().all(|&r| r < top),
                "window {seq}"
            );
        }
        // One vertical fired line at window 203, one resolved at 405, each
        // over most of the chart's height.
        for (px, seq) in [(&fired, 203.0), (&resolved, 405.0)] {
            let x = col(seq);
            let on: Vec<&(u32, u32)> = px
                .iter()
                .filter(|p| (p.0 as f64 - x).abs() <= 2.0)
                .collect();
            let span =
                on.iter().map(|p| p.1).max().unwrap() - on.iter().map(|p| p.1).min().unwrap();
            assert!(span > 400, "marker at window {seq}: spans {span} rows");
        }
    }

    #[test]
    fn no_baseline_no_band() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.png");
        step_series(2000).render(None, SPEC, &path).unwrap();
        let img = decode(&path);
        assert!(pixels(&img, MAE_BAND_COLOR).is_empty());
        assert!(pixels(&img, RMSE_BAND_COLOR).is_empty());
        assert!(pixels(&img, MAE_COLOR).len() > 500);
    }

    #[test]
    fn merged_points_show_their_range_and_keep_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.png");
        let s = step_series(64);
        assert!(s.windows_per_point() > 1);
        s.render(
            Some(&baseline()),
            PlotSpec {
                width: 640,
                height: 400,
                bins: 1,
            },
            &path,
        )
        .unwrap();
        let img = decode(&path);
        assert_eq!((img.width, img.height), (640, 400));
        assert!(!pixels(&img, MAE_RANGE_COLOR).is_empty());
        assert!(pixels(&img, FIRED_COLOR).len() > 200);
    }

    #[test]
    fn the_smallest_and_largest_configured_sizes_render() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.png");
        let s = step_series(2000);
        for (width, height) in [(200, 150), (8000, 150), (200, 8000)] {
            let spec = PlotSpec {
                width,
                height,
                bins: 1,
            };
            s.render(Some(&baseline()), spec, &path).unwrap();
            let img = decode(&path);
            assert_eq!((img.width, img.height), (width, height));
        }
    }

    #[test]
    fn an_empty_series_renders_and_replaces_the_old_picture() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.png");
        step_series(2000).render(None, SPEC, &path).unwrap();
        OverTime::new(100)
            .render(Some(&baseline()), SPEC, &path)
            .unwrap();
        let img = decode(&path);
        assert!(pixels(&img, MAE_COLOR).is_empty());
        assert!(!pixels(&img, MAE_BAND_COLOR).is_empty());
        // nothing but the picture is left in the folder
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
