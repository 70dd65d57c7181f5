//! Draws `logs/error_over_time.png`: the rolling MAE and RMSE of each
//! closed window, the training baseline's band for each (mean ± 3σ of
//! windows of the same size), and a vertical marker where an alert fired or
//! resolved.
//!
//! Pure drawing from an [`OverTime`] series, which is bounded, so a render
//! costs the same after an hour or a month. Same font and same
//! write-then-rename as the histogram ([`crate::plot::render`]). The legend and the
//! run's facts (windows, rows per window, time span, events) sit in a panel
//! to the right of the chart, so they never hide a line.
//!
//! Markers of one window in one state share a label ("6 fired: mae_high,
//! rmse_high, …", cut to fit); labels sit in lanes in a headroom above the
//! lines and never overlap: each takes the first lane where it clears its
//! neighbours, with the longest text that finds room, down to "6 fired".
//! With more markers than the lanes hold (dozens within a few pixels),
//! the lines stay and the panel says how many labels were left out.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::baseline::{Band, Baseline};
use crate::monitor::over_time::{Marker, OverTime, Point};

use crate::plot::render::{write_png, PlotSpec, RenderError};

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
/// Share of the chart's height above the lines kept for marker labels.
const LABEL_SHARE: f64 = 0.22;
/// Height of one lane of marker labels, pixels.
const LANE_PX: i32 = 17;
/// Space between the marker line and its label, and between labels.
const LABEL_GAP: i32 = 4;

/// The markers of one window in one state: they share a line and a label.
#[derive(Debug, Clone, PartialEq)]
struct Group<'a> {
    seq: u64,
    fired: bool,
    rules: Vec<&'a str>,
}

/// Markers grouped by window and state, in window order (fired before
/// resolved in the same window).
fn group_markers<'a>(markers: &[&'a Marker]) -> Vec<Group<'a>> {
    let mut sorted: Vec<&Marker> = markers.to_vec();
    sorted.sort_by_key(|m| (m.seq, !m.fired));
    let mut groups: Vec<Group> = Vec::new();
    for m in sorted {
        match groups.last_mut() {
            Some(g) if g.seq == m.seq && g.fired == m.fired => {
                if !g.rules.contains(&m.rule.as_str()) {
                    g.rules.push(&m.rule);
                }
            }
            _ => groups.push(Group {
                seq: m.seq,
                fired: m.fired,
                rules: vec![&m.rule],
            }),
        }
    }
    groups
}

/// The texts a group's label may take, longest first: every rule name,
/// then fewer and "…", then only the count and the state.
fn label_texts(g: &Group) -> Vec<String> {
    let state = if g.fired { "fired" } else { "resolved" };
    let n = g.rules.len();
    let head = if n == 1 {
        state.to_string()
    } else {
        format!("{n} {state}")
    };
    let mut out: Vec<String> = (1..=n)
        .rev()
        .map(|k| {
            let more = if k < n { ", …" } else { "" };
            format!("{head}: {}{more}", g.rules[..k].join(", "))
        })
        .collect();
    out.push(head);
    out
}

/// Where a label goes: its lane (0 at the top) and pixel columns.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    text: String,
    lane: usize,
    x0: i32,
    x1: i32,
}

/// Lays the groups' labels out without overlap: each goes right of its
/// marker (left of it when it would run out of the chart), in the first
/// lane from the top where it clears the labels already there, with the
/// longest text that is at most `max_width` wide and finds room. When
/// markers are crowded a label also ends before the marker `lanes` further
/// on, so that the ones after it find a lane too (shorter labels for all
/// rather than long ones for a few). A group
/// that finds no room in any of `lanes` lanes gets `None` (the panel counts
/// them). `anchors` are the markers' pixel columns, `columns` the chart's.
/// Cost: groups × texts × lanes, all bounded.
fn place_labels(
    groups: &[Group],
    anchors: &[i32],
    columns: std::ops::Range<i32>,
    lanes: usize,
    max_width: i32,
    measure: impl Fn(&str) -> i32,
) -> Vec<Option<Slot>> {
    // Rightmost column used in each lane: labels are placed left to right.
    let mut ends = vec![i32::MIN; lanes];
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&i| anchors[i]);
    let mut out = vec![None; groups.len()];
    for (k, &i) in order.iter().enumerate() {
        let x = anchors[i];
        // Crowded: a label ends before the marker `lanes` on, so each
        // of the next ones finds a lane too (they cycle through the lanes).
        let room = order
            .get(k + lanes)
            .map_or(max_width, |&j| (anchors[j] - x - LABEL_GAP).min(max_width));
        let texts = label_texts(&groups[i]);
        let shortest = texts.last().cloned();
        let tries = texts
            .into_iter()
            .map(|t| (t, room))
            // Too crowded even for the count: it may still find a free lane.
            .chain(shortest.map(|t| (t, max_width)));
        'texts: for (text, room) in tries {
            let w = measure(&text);
            if w > room {
                continue;
            }
            let x0 = if x + LABEL_GAP + w <= columns.end {
                x + LABEL_GAP
            } else if x - LABEL_GAP - w >= columns.start {
                x - LABEL_GAP - w
            } else {
                continue;
            };
            for (lane, end) in ends.iter_mut().enumerate() {
                if *end == i32::MIN || x0 >= *end + LABEL_GAP {
                    *end = x0 + w;
                    out[i] = Some(Slot {
                        text,
                        lane,
                        x0,
                        x1: x0 + w,
                    });
                    break 'texts;
                }
            }
        }
    }
    out
}

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

type Error = Box<dyn std::error::Error>;
type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The chart's ranges: x in window numbers, y in error.
#[derive(Clone, Copy)]
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
}

/// The picture, back to front: the ranges, the chart and its mesh, the
/// bands, the min–max lines, the lines, the markers and their labels, then
/// the panel on the right.
fn draw(
    series: &OverTime,
    baseline: Option<&Baseline>,
    spec: PlotSpec,
    path: &Path,
) -> Result<(), Error> {
    let points: Vec<&Point> = series.points().collect();
    let markers: Vec<_> = series.events().collect();
    let mae_band = baseline.and_then(|b| band_range(&b.mae));
    let rmse_band = baseline.and_then(|b| band_range(&b.rmse));
    let merged = points.iter().any(|p| p.windows > 1);
    let frame = Frame {
        x: x_range(&points, &markers),
        y: y_range(&points, [mae_band, rmse_band], merged, markers.is_empty()),
    };

    let root = BitMapBackend::new(path, (spec.width, spec.height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, panel) = root.split_horizontally(spec.width - panel_width(spec.width));
    let mut chart = chart_on(&left, &title(series, baseline), frame)?;

    // Bands first, so every line is drawn over them.
    draw_bands(&mut chart, frame, baseline, [mae_band, rmse_band])?;
    if merged {
        draw_spread(&mut chart, &points)?;
    }
    draw_lines(&mut chart, &points)?;
    // Markers over everything, then their labels.
    draw_markers(&mut chart, frame, &markers)?;
    let hidden = draw_labels(&left, &chart, frame, &markers)?;
    if points.is_empty() {
        left.draw_text(
            "no closed window yet",
            &("sans-serif", 18).into_font().color(&BLACK),
            (spec.width as i32 / 3, spec.height as i32 / 2),
        )?;
    }

    draw_panel(&panel, series, &points, baseline.is_some(), merged, hidden)?;
    root.present()?;
    Ok(())
}

/// x: window sequence numbers, covering the windows and the markers.
fn x_range(points: &[&Point], markers: &[&Marker]) -> (f64, f64) {
    let seqs = points
        .iter()
        .flat_map(|p| [p.first_seq as f64, p.last_seq as f64])
        .chain(markers.iter().map(|m| m.seq as f64));
    let (x_lo, x_hi) = seqs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if x_lo > x_hi {
        (0.0, 1.0)
    } else if x_hi - x_lo < 1.0 {
        (x_lo - 0.5, x_hi + 0.5)
    } else {
        (x_lo, x_hi)
    }
}

/// y: the lines (with their min–max when merged) and the bands, padded,
/// with the labels' headroom on top when there are markers.
fn y_range(
    points: &[&Point],
    bands: [Option<(f64, f64)>; 2],
    merged: bool,
    no_markers: bool,
) -> (f64, f64) {
    let [mae_band, rmse_band] = bands;
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
    if y_lo > y_hi {
        (0.0, 1.0)
    } else {
        let pad = ((y_hi - y_lo) * 0.08).max(y_hi.abs() * 0.02).max(1e-6);
        let (lo, top) = ((y_lo - pad).max(0.0), y_hi + pad);
        if no_markers {
            (lo, y_hi + pad * 2.5)
        } else {
            // The top LABEL_SHARE of the chart is the labels' headroom.
            (lo, top + (top - lo) * LABEL_SHARE / (1.0 - LABEL_SHARE))
        }
    }
}

/// The caption, with the rows per window when they are known.
fn title(series: &OverTime, baseline: Option<&Baseline>) -> String {
    let rows = baseline
        .map(|b| b.window as u64)
        .filter(|&r| r > 0)
        .unwrap_or(series.window_rows());
    if rows > 0 {
        format!("Model error over time (windows of {rows} rows)")
    } else {
        "Model error over time".to_string()
    }
}

/// The chart on `left` with its caption, axes and labels.
fn chart_on<'a, 'b>(left: &'a Area<'b>, title: &str, frame: Frame) -> Result<Chart<'a, 'b>, Error> {
    let ((x_lo, x_hi), (y_lo, y_hi)) = (frame.x, frame.y);
    let mut chart = ChartBuilder::on(left)
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
    Ok(chart)
}

/// The baseline's bands (RMSE, then MAE) with their means dashed.
fn draw_bands(
    chart: &mut Chart<'_, '_>,
    frame: Frame,
    baseline: Option<&Baseline>,
    [mae_band, rmse_band]: [Option<(f64, f64)>; 2],
) -> Result<(), Error> {
    let (x_lo, x_hi) = frame.x;
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
    Ok(())
}

/// Thin lines at the smallest and largest window of each point: a spike
/// that the mean of merged windows hides still shows, and the band stays
/// visible between them.
fn draw_spread(chart: &mut Chart<'_, '_>, points: &[&Point]) -> Result<(), Error> {
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
    Ok(())
}

/// The RMSE and MAE lines (a dot for a single point).
fn draw_lines(chart: &mut Chart<'_, '_>, points: &[&Point]) -> Result<(), Error> {
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
    Ok(())
}

/// A vertical line per marker: fired solid red, resolved dashed green.
fn draw_markers(chart: &mut Chart<'_, '_>, frame: Frame, markers: &[&Marker]) -> Result<(), Error> {
    let (y_lo, y_hi) = frame.y;
    for m in markers {
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
    }
    Ok(())
}

/// The markers' labels, one per window and state, in lanes in the
/// headroom above the lines (see `place_labels`). Answers how many found
/// no room.
fn draw_labels(
    left: &Area<'_>,
    chart: &Chart<'_, '_>,
    frame: Frame,
    markers: &[&Marker],
) -> Result<usize, Error> {
    let label_font: TextStyle = ("sans-serif", 13).into_font().into();
    let groups = group_markers(markers);
    let (px, py) = chart.plotting_area().get_pixel_range();
    let lanes = if markers.is_empty() {
        0
    } else {
        ((py.end - py.start) as f64 * LABEL_SHARE) as usize / LANE_PX as usize
    };
    let measure = |t: &str| {
        left.estimate_text_size(t, &label_font)
            .map_or(t.len() as i32 * 8, |(w, _)| w as i32)
    };
    let anchors: Vec<i32> = groups
        .iter()
        .map(|g| chart.backend_coord(&(g.seq as f64, frame.y.0)).0)
        .collect();
    let max_width = ((px.end - px.start) / 2).min(480);
    let placed = place_labels(&groups, &anchors, px.clone(), lanes, max_width, measure);
    let mut hidden = 0;
    for (g, slot) in groups.iter().zip(&placed) {
        let Some(slot) = slot else {
            hidden += 1;
            continue;
        };
        let y = py.start + 2 + slot.lane as i32 * LANE_PX;
        left.draw(&Rectangle::new(
            [(slot.x0 - 1, y), (slot.x1 + 1, y + LANE_PX - 2)],
            WHITE.mix(0.85).filled(),
        ))?;
        let color = if g.fired { FIRED_COLOR } else { RESOLVED_COLOR };
        let style = label_font
            .clone()
            .color(&color)
            .pos(Pos::new(HPos::Left, VPos::Top));
        left.draw(&Text::new(slot.text.clone(), (slot.x0, y + 1), style))?;
    }
    Ok(hidden)
}

/// Legend entries and facts about the run, top to bottom.
fn draw_panel(
    panel: &Area<'_>,
    series: &OverTime,
    points: &[&Point],
    banded: bool,
    merged: bool,
    hidden_labels: usize,
) -> Result<(), Error> {
    let small = ("sans-serif", 13).into_font().color(&RGBColor(60, 60, 60));
    let mut y = draw_legend(panel, banded, merged)?;
    for line in facts(series, points, merged, hidden_labels) {
        panel.draw_text(&line, &small, (8, y))?;
        y += 19;
    }
    Ok(())
}

/// The legend: a swatch and a name per line, band and marker drawn.
/// Answers where the facts start.
fn draw_legend(panel: &Area<'_>, banded: bool, merged: bool) -> Result<i32, Error> {
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    let mut y = 60;
    let step = 24;
    let swatch_line = |y: i32, color: RGBColor, dashed: bool| -> Result<(), Error> {
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
    Ok(y + step + 14)
}

/// The run's facts, a line each: windows, rows, time span, alerts, and
/// what the picture left out.
fn facts(series: &OverTime, points: &[&Point], merged: bool, hidden_labels: usize) -> Vec<String> {
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
    if hidden_labels > 0 {
        facts.push(format!("{hidden_labels} labels left out"));
        facts.push("  (markers too close)".to_string());
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::over_time::tests::report;
    use crate::monitor::report::AlertEvent;
    use crate::plot::render::test_png::{decode, Image};

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
            classification: None,
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

    fn marker(seq: u64, fired: bool, rule: &str) -> Marker {
        Marker {
            seq,
            at_ms: 0,
            fired,
            rule: rule.into(),
        }
    }

    /// No two labels in one lane share a column, each is inside the chart
    /// and touches its marker (right of it, or left of it).
    fn assert_laid_out(slots: &[Option<Slot>], anchors: &[i32], columns: std::ops::Range<i32>) {
        for (i, a) in slots.iter().enumerate() {
            let Some(a) = a else { continue };
            assert!(a.x0 >= columns.start && a.x1 <= columns.end, "{a:?}");
            let x = anchors[i];
            assert!(
                a.x0 == x + LABEL_GAP || a.x1 == x - LABEL_GAP,
                "{a:?} at {x}"
            );
            for b in slots[i + 1..].iter().flatten() {
                assert!(
                    a.lane != b.lane || a.x1 + LABEL_GAP <= b.x0 || b.x1 + LABEL_GAP <= a.x0,
                    "{a:?} overlaps {b:?}"
                );
            }
        }
    }

    /// 7 pixels a character (the layout does not depend on the font).
    fn width(t: &str) -> i32 {
        7 * t.chars().count() as i32
    }

    #[test]
    fn a_window_s_alerts_share_one_label_cut_to_fit() {
        // The bmi shift: four rules fire in window 21, two in 22 (3 px on),
        // one resolves in 40.
        let rules21 = ["mae_high", "rmse_high", "r2_low", "feature_drift:bmi"];
        let mut ms: Vec<Marker> = rules21.iter().map(|r| marker(21, true, r)).collect();
        ms.push(marker(22, true, "bias_high"));
        ms.push(marker(22, true, "prediction_drift"));
        ms.push(marker(22, true, "bias_high")); // a repeat is named once
        ms.push(marker(40, false, "bias_high"));
        let refs: Vec<&Marker> = ms.iter().collect();
        let groups = group_markers(&refs);
        assert_eq!(groups.len(), 3);
        assert_eq!((groups[0].seq, groups[0].rules.len()), (21, 4));
        assert_eq!(groups[1].rules, ["bias_high", "prediction_drift"]);
        assert!(!groups[2].fired);

        let anchors = [300, 303, 600];
        let slots = place_labels(&groups, &anchors, 80..800, 3, 260, width);
        assert_laid_out(&slots, &anchors, 80..800);
        let texts: Vec<&str> = slots
            .iter()
            .map(|s| s.as_ref().unwrap().text.as_str())
            .collect();
        // 260 px hold 37 characters: two of the four names, then "…"
        assert_eq!(
            texts,
            [
                "4 fired: mae_high, rmse_high, …",
                "2 fired: bias_high, prediction_drift",
                "resolved: bias_high"
            ]
        );
        let lanes: Vec<usize> = slots.iter().map(|s| s.as_ref().unwrap().lane).collect();
        assert_eq!(lanes, [0, 1, 0], "the neighbour goes a lane down");

        // Near the right edge a label goes left of its line.
        let m = marker(9, true, "mae_high");
        let one = group_markers(&[&m]);
        let slots = place_labels(&one, &[690], 80..700, 3, 260, width);
        assert_eq!(slots[0].as_ref().unwrap().x1, 690 - LABEL_GAP);
        assert_eq!(slots[0].as_ref().unwrap().text, "fired: mae_high");
    }

    #[test]
    fn fifty_markers_never_overlap_and_the_crowded_ones_are_counted() {
        // 50 windows each firing two rules, spread evenly (12 px apart) and
        // then all within 50 px: labels shrink to "2 fired", then drop.
        for spacing in [12, 1] {
            let ms: Vec<Marker> = (0..50u64)
                .flat_map(|i| [marker(i, true, "mae_high"), marker(i, true, "rmse_high")])
                .collect();
            let refs: Vec<&Marker> = ms.iter().collect();
            let groups = group_markers(&refs);
            assert_eq!(groups.len(), 50);
            let anchors: Vec<i32> = (0..50).map(|i| 100 + spacing * i).collect();
            let slots = place_labels(&groups, &anchors, 80..800, 6, 300, width);
            assert_laid_out(&slots, &anchors, 80..800);
            let placed = slots.iter().flatten().count();
            let short = slots
                .iter()
                .flatten()
                .filter(|s| s.text == "2 fired")
                .count();
            eprintln!("spacing {spacing}: {placed} placed, {short} short");
            if spacing == 1 {
                // Within 50 px only one label fits per lane.
                assert_eq!(placed, 6);
            } else {
                // 72 px between a marker and the one six on: every one
                // gets a label, the short one, rather than a few a long
                // one (the last six have nothing six on: more room).
                assert_eq!(placed, 50);
                assert!(short >= 44, "{short} short");
            }
        }
        // No lane at all (a tiny picture): nothing placed, nothing drawn.
        let m = marker(1, true, "mae_high");
        let one = group_markers(&[&m]);
        assert_eq!(place_labels(&one, &[100], 80..800, 0, 300, width), [None]);
    }

    #[test]
    fn labels_stay_in_the_headroom_above_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.png");
        let mut s = step_series(2000);
        for seq in (210..400).step_by(4) {
            for rule in ["mae_high", "rmse_high", "feature_drift:bmi"] {
                s.push_event(&event(rule, "fired", seq));
            }
        }
        s.render(Some(&baseline()), SPEC, &path).unwrap();
        let img = decode(&path);
        let top_line = pixels(&img, RMSE_COLOR)
            .into_iter()
            .chain(pixels(&img, MAE_COLOR))
            .map(|p| p.1)
            .min()
            .unwrap();
        // Marker lines are whole columns of red: the label pixels are the
        // red ones in columns that are not.
        let red = pixels(&img, FIRED_COLOR);
        let mut per_column = std::collections::HashMap::new();
        for p in &red {
            *per_column.entry(p.0).or_insert(0u32) += 1;
        }
        let text: Vec<&(u32, u32)> = red.iter().filter(|p| per_column[&p.0] < 100).collect();
        assert!(text.len() > 20, "labels drawn: {} pixels", text.len());
        let lowest = text.iter().map(|p| p.1).max().unwrap();
        assert!(
            lowest < top_line,
            "a label reaches row {lowest}, the lines start at row {top_line}"
        );
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
