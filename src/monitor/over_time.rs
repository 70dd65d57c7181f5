//! The series behind `logs/error_over_time.png`: rolling MAE and RMSE of
//! each closed window, and the alert events, kept in bounded memory however
//! long the run.
//!
//! The monitor actor pushes every [`WindowReport`] and [`AlertEvent`] as it
//! makes them and renders from this series (see
//! [`crate::monitor::render_over_time`]); at start it refills it once from the
//! earlier runs' `metrics_over_time.csv` and the tail of `alerts.jsonl`
//! ([`PastWindow`]s, see [`crate::monitor::log`]), so the picture covers
//! the whole history, and nothing is re-read after. When the series holds
//! `max_points` points, neighbours merge pairwise (their mean, minimum and
//! maximum are kept), and from then on each new point gathers twice as many
//! windows, so every point stands for the same number of windows, the whole
//! run stays on the picture, and the cost of a push and of a render is flat
//! in the length of the run. A spike that merging averages away still shows
//! in the min–max envelope.
//!
//! The x axis is the window's sequence number, not its wall-clock time: an
//! [`AlertEvent`] names the window that changed it (`seq`), so markers land
//! exactly on the window that fired; windows are evenly spaced whether the
//! source runs at 10 samples/s or at benchmark speed (where thousands close
//! within one millisecond); and the baseline band is a band of *windows* of
//! `Baseline::window` rows. The time span is kept per point and printed on
//! the picture.

use std::collections::VecDeque;

use super::report::{AlertEvent, WindowReport};

/// Alert markers kept (the most recent; older ones are counted as dropped).
pub const MAX_EVENTS: usize = 200;
/// Longest rule name kept for a marker's label, in characters.
pub const MAX_RULE_CHARS: usize = 48;
/// Bounds of `max_points` (it is also made even, so pairs merge cleanly).
pub const MIN_POINTS: usize = 4;
pub const MAX_POINTS: usize = 100_000;

/// One metric over the windows a point stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(v: f64) -> Spread {
        Spread {
            sum: v,
            min: v,
            max: v,
        }
    }

    fn merge(self, o: Spread) -> Spread {
        Spread {
            sum: self.sum + o.sum,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

/// One or more consecutive windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Windows merged into this point.
    pub windows: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// End times of the first and last window, ms since the Unix epoch.
    pub first_ms: u64,
    pub last_ms: u64,
    pub mae: Spread,
    pub rmse: Spread,
}

impl Point {
    fn of(w: &PastWindow) -> Point {
        Point {
            windows: 1,
            first_seq: w.seq,
            last_seq: w.seq,
            first_ms: w.end_ms,
            last_ms: w.end_ms,
            mae: Spread::of(w.mae),
            rmse: Spread::of(w.rmse),
        }
    }

    fn merge(self, o: Point) -> Point {
        Point {
            windows: self.windows + o.windows,
            first_seq: self.first_seq,
            last_seq: o.last_seq,
            first_ms: self.first_ms,
            last_ms: o.last_ms,
            mae: self.mae.merge(o.mae),
            rmse: self.rmse.merge(o.rmse),
        }
    }

    /// Where it is drawn: the middle of its windows' sequence numbers.
    pub fn x(&self) -> f64 {
        (self.first_seq as f64 + self.last_seq as f64) / 2.0
    }

    /// Mean MAE of its windows.
    pub fn mae(&self) -> f64 {
        self.mae.sum / self.windows as f64
    }

    /// Mean RMSE of its windows.
    pub fn rmse(&self) -> f64 {
        self.rmse.sum / self.windows as f64
    }
}

/// What the picture needs of one closed window: a [`WindowReport`]'s
/// count-based figures, or a row of `metrics_over_time.csv` read back at
/// start (see [`crate::monitor::log::read_over_time`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PastWindow {
    pub seq: u64,
    /// When it closed, ms since the Unix epoch.
    pub end_ms: u64,
    pub count: u64,
    pub mae: f64,
    pub rmse: f64,
}

impl PastWindow {
    pub fn of(r: &WindowReport) -> PastWindow {
        PastWindow {
            seq: r.seq,
            end_ms: r.end_ms,
            count: r.window.count,
            mae: r.window.mae,
            rmse: r.window.rmse,
        }
    }
}

/// An alert that fired or resolved, where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub seq: u64,
    pub at_ms: u64,
    pub fired: bool,
    /// The rule's name, cut to [`MAX_RULE_CHARS`].
    pub rule: String,
}

/// Rolling MAE/RMSE per window and alert markers, bounded.
#[derive(Debug, Clone)]
pub struct OverTime {
    max_points: usize,
    points: Vec<Point>,
    /// Windows gathered towards the next point (fewer than `stride`).
    pending: Option<Point>,
    /// Windows per stored point: doubles at each merge.
    stride: u64,
    events: VecDeque<Marker>,
    last_seq: u64,
    /// Rows in the last window pushed (for the picture's title).
    window_rows: u64,
    /// Reports ignored: out of order, repeated, or without finite figures.
    pub skipped_windows: u64,
    /// Events ignored: a state other than `fired` or `resolved`.
    pub skipped_events: u64,
    /// Older markers let go to keep [`MAX_EVENTS`].
    pub dropped_events: u64,
}

impl OverTime {
    /// A series of at most `max_points` stored points (made even and kept
    /// within [`MIN_POINTS`]..=[`MAX_POINTS`]) plus one being gathered.
    pub fn new(max_points: usize) -> OverTime {
        let max_points = max_points.clamp(MIN_POINTS, MAX_POINTS) & !1;
        OverTime {
            max_points,
            points: Vec::with_capacity(max_points),
            pending: None,
            stride: 1,
            events: VecDeque::new(),
            last_seq: 0,
            window_rows: 0,
            skipped_windows: 0,
            skipped_events: 0,
            dropped_events: 0,
        }
    }

    /// Adds one closed window (its count-based figures: the band is for
    /// windows of that many rows).
    pub fn push_window(&mut self, r: &WindowReport) {
        self.push(&PastWindow::of(r));
    }

    /// Adds one closed window given by its figures (a report, or a row of
    /// an earlier run read back at start). Skipped when out of order,
    /// repeated, empty, or without finite figures.
    pub fn push(&mut self, w: &PastWindow) {
        if w.seq <= self.last_seq || !w.mae.is_finite() || !w.rmse.is_finite() || w.count == 0 {
            self.skipped_windows += 1;
            return;
        }
        self.last_seq = w.seq;
        self.window_rows = w.count;
        let p = match self.pending.take() {
            Some(pending) => pending.merge(Point::of(w)),
            None => Point::of(w),
        };
        if p.windows < self.stride {
            self.pending = Some(p);
        } else if self.points.len() < self.max_points {
            self.points.push(p);
        } else {
            self.merge_pairs();
            // `p` now holds half a point's windows: it goes on gathering.
            self.pending = Some(p);
        }
    }

    fn merge_pairs(&mut self) {
        let n = self.points.len() / 2;
        for i in 0..n {
            self.points[i] = self.points[2 * i].merge(self.points[2 * i + 1]);
        }
        self.points.truncate(n);
        self.stride *= 2;
    }

    /// Adds an alert event (`fired` or `resolved`).
    pub fn push_event(&mut self, e: &AlertEvent) {
        let fired = match e.state.as_str() {
            "fired" => true,
            "resolved" => false,
            _ => {
                self.skipped_events += 1;
                return;
            }
        };
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(Marker {
            seq: e.seq,
            at_ms: e.at_ms,
            fired,
            rule: e.rule.chars().take(MAX_RULE_CHARS).collect(),
        });
    }

    /// The points in order, the one still gathering last.
    pub fn points(&self) -> impl Iterator<Item = &Point> + '_ {
        self.points.iter().chain(self.pending.as_ref())
    }

    /// Points held (at most `max_points + 1`).
    pub fn len(&self) -> usize {
        self.points.len() + usize::from(self.pending.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Windows each stored point stands for.
    pub fn windows_per_point(&self) -> u64 {
        self.stride
    }

    /// Windows on the picture (every one pushed and not skipped).
    pub fn windows(&self) -> u64 {
        self.points().map(|p| p.windows).sum()
    }

    /// Sequence number of the first window on the picture (0 when empty).
    pub fn first_seq(&self) -> u64 {
        self.points().next().map_or(0, |p| p.first_seq)
    }

    /// Sequence number of the last window pushed (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Markers kept (at most [`MAX_EVENTS`]).
    pub fn events_len(&self) -> usize {
        self.events.len()
    }

    /// Rows of the last window pushed (0 before the first).
    pub fn window_rows(&self) -> u64 {
        self.window_rows
    }

    /// The markers kept, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &Marker> + '_ {
        self.events.iter()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::monitor::report::WindowStats;

    pub(crate) fn report(seq: u64, mae: f64, rmse: f64) -> WindowReport {
        WindowReport {
            classification: None,
            seq,
            end_id: 1_000_000 + seq,
            end_ms: 1_700_000_000_000 + seq * 250,
            window: WindowStats {
                count: 500,
                mae,
                rmse,
                r2: 0.5,
                bias: 0.0,
                max_error: rmse * 3.0,
            },
            period: WindowStats::default(),
            features: Vec::new(),
            prediction: None,
            drift_share: None,
            dataset_drift: None,
            active_alerts: Vec::new(),
        }
    }

    /// A value that wanders, so means, minima and maxima are all different.
    fn mae_of(seq: u64) -> f64 {
        40.0 + ((seq * 7919) % 1000) as f64 / 100.0
    }

    #[test]
    fn stays_bounded_and_keeps_the_whole_run_across_millions_of_windows() {
        let mut s = OverTime::new(2000);
        let n: u64 = 3_000_001;
        let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for seq in 1..=n {
            let m = mae_of(seq);
            sum += m;
            min = min.min(m);
            max = max.max(m);
            s.push_window(&report(seq, m, m * 1.25));
            assert!(s.len() <= 2001, "{} points after {seq} windows", s.len());
        }
        let pts: Vec<&Point> = s.points().collect();
        // first and last windows are still there
        assert_eq!(pts[0].first_seq, 1);
        assert_eq!(pts[0].first_ms, 1_700_000_000_250);
        assert_eq!(pts.last().unwrap().last_seq, n);
        // every window is in exactly one point, in order, with no gap
        assert_eq!(pts.iter().map(|p| p.windows).sum::<u64>(), n);
        for w in pts.windows(2) {
            assert_eq!(w[1].first_seq, w[0].last_seq + 1);
        }
        // stored points all stand for the same number of windows
        let stride = s.windows_per_point();
        assert_eq!(stride, 2048, "3M windows in at most 2000 points");
        assert!(s.points.iter().all(|p| p.windows == stride));
        assert!(s.pending.is_none_or(|p| p.windows < stride));
        assert!(s.points.len() > 1000, "merging halves, never more");
        // merging keeps the mean, the extremes, and the per-point means
        let total: f64 = pts.iter().map(|p| p.mae() * p.windows as f64).sum();
        assert!((total / n as f64 - sum / n as f64).abs() < 1e-9);
        assert_eq!(
            pts.iter().map(|p| p.mae.min).fold(f64::INFINITY, f64::min),
            min
        );
        assert_eq!(pts.iter().map(|p| p.mae.max).fold(0.0, f64::max), max);
        let p = pts[7];
        let naive: f64 = (p.first_seq..=p.last_seq).map(mae_of).sum::<f64>() / p.windows as f64;
        assert!((p.mae() - naive).abs() < 1e-9);
        assert!((p.rmse() - naive * 1.25).abs() < 1e-9);
        assert_eq!(s.window_rows(), 500);
    }

    #[test]
    fn a_short_run_is_kept_window_by_window() {
        let mut s = OverTime::new(10);
        for seq in 1..=10 {
            s.push_window(&report(seq, seq as f64, 2.0 * seq as f64));
        }
        let xs: Vec<f64> = s.points().map(Point::x).collect();
        assert_eq!(xs, (1..=10).map(|i| i as f64).collect::<Vec<_>>());
        // the eleventh merges pairs: 5 points of 2, and 11 gathering
        s.push_window(&report(11, 11.0, 22.0));
        let pts: Vec<Point> = s.points().copied().collect();
        assert_eq!(pts.len(), 6);
        assert_eq!((pts[0].first_seq, pts[0].last_seq), (1, 2));
        assert_eq!(pts[0].mae(), 1.5);
        assert_eq!(pts[0].x(), 1.5);
        assert_eq!((pts[5].first_seq, pts[5].windows), (11, 1));
        s.push_window(&report(12, 12.0, 24.0));
        assert_eq!(s.len(), 6, "11 and 12 make one point of two");
        assert_eq!(s.points().last().unwrap().rmse(), 23.0);
    }

    #[test]
    fn skips_repeated_out_of_order_and_empty_windows() {
        let mut s = OverTime::new(100);
        s.push_window(&report(5, 1.0, 1.0));
        s.push_window(&report(5, 2.0, 2.0));
        s.push_window(&report(3, 2.0, 2.0));
        s.push_window(&report(6, f64::NAN, 2.0));
        let mut empty = report(7, 0.0, 0.0);
        empty.window.count = 0;
        s.push_window(&empty);
        assert_eq!(s.len(), 1);
        assert_eq!(s.skipped_windows, 4);
        s.push_window(&report(8, 1.0, 1.0));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn keeps_the_latest_events_bounded() {
        let mut s = OverTime::new(100);
        let mut e = AlertEvent {
            rule: "é".repeat(100),
            state: "fired".into(),
            metric: "mae".into(),
            value: 60.0,
            threshold: 50.0,
            seq: 0,
            end_id: 1,
            at_ms: 2,
            message: String::new(),
        };
        for i in 0..(MAX_EVENTS as u64 + 50) {
            e.seq = i;
            e.state = if i % 2 == 0 { "fired" } else { "resolved" }.into();
            s.push_event(&e);
        }
        e.state = "pending".into();
        s.push_event(&e);
        let kept: Vec<&Marker> = s.events().collect();
        assert_eq!(kept.len(), MAX_EVENTS);
        assert_eq!(kept[0].seq, 50);
        assert!(kept[0].fired && !kept[1].fired);
        assert_eq!(kept[0].rule.chars().count(), MAX_RULE_CHARS);
        assert_eq!((s.dropped_events, s.skipped_events), (50, 1));
    }

    #[test]
    fn max_points_is_bounded_and_even() {
        assert_eq!(OverTime::new(0).max_points, MIN_POINTS);
        assert_eq!(OverTime::new(2001).max_points, 2000);
        assert_eq!(OverTime::new(usize::MAX).max_points, MAX_POINTS);
    }
}
