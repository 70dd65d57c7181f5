//! Rolling quality metrics over the latest joined records: the last N
//! records ([`CountWindow`]) or the records of the last period of time
//! ([`PeriodWindow`]).
//!
//! The monitor asks for the figures of a window at every record it closes, so
//! each push and each [`WindowStats`] must cost O(1) amortised, and memory
//! must stay bounded by the window. Both windows keep their records in a ring
//! buffer with running sums, and a monotonic deque each for the largest
//! absolute error and the smallest and largest target (a window of constant
//! targets has no R²).
//!
//! Running sums drift when values are added and taken away for ever: the
//! sums are compensated (Neumaier) and, every `capacity` pushes, re-summed
//! from the buffer (O(capacity) once per capacity pushes, so still O(1)
//! amortised). A unit test checks a million pushes against a naive
//! recomputation to 1e-9 relative. The target sums are kept about a shift
//! (the window's mean at the last re-sum), so that the total sum of squares
//! does not lose digits to cancellation.
//!
//! Every figure stays finite because its inputs are bounded where they
//! enter the program: truths and predictions within
//! [`crate::core::messages::MAX_ABS_VALUE`] (1e100), so a squared error is at
//! most 4e200 and no sum of a window can overflow (a unit test pushes the
//! extremes). At 1e300 the squares overflowed: an RMSE of 0 and no R².
//!
//! R² is NaN when the window has fewer than two rows or all its targets are
//! equal (sklearn's `r2_score(..., force_finite=False)` gives NaN or -inf
//! there; NaN says "undefined" without pretending). An empty window has
//! count 0 and NaN for every other metric.

use std::collections::VecDeque;
use std::time::Duration;

use super::report::WindowStats;

/// A compensated (Neumaier) sum: adding and removing terms for ever keeps
/// the error at a few ulps of the largest partial sum.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    carry: f64,
}

impl Sum {
    #[inline]
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.carry += (self.sum - t) + x;
        } else {
            self.carry += (x - t) + self.sum;
        }
        self.sum = t;
    }

    #[inline]
    fn value(&self) -> f64 {
        self.sum + self.carry
    }
}

/// One joined record.
#[derive(Debug, Clone, Copy)]
struct Rec {
    y: f64,
    p: f64,
}

/// A monotonic deque over a stream of `(seq, value)`: its front is the
/// largest value (by `better`) among the records still in the window.
#[derive(Debug, Clone, Default)]
struct Extremum {
    q: VecDeque<(u64, f64)>,
}

impl Extremum {
    /// Pushes record `seq`; `better(a, b)` is true when `a` dominates `b`
    /// (for the max: `a >= b`), so `b` can never be the extremum again.
    #[inline]
    fn push(&mut self, seq: u64, v: f64, better: impl Fn(f64, f64) -> bool) {
        while let Some(&(_, back)) = self.q.back() {
            if better(v, back) {
                self.q.pop_back();
            } else {
                break;
            }
        }
        self.q.push_back((seq, v));
    }

    /// Drops entries older than `first_seq` (the oldest record still kept).
    #[inline]
    fn expire(&mut self, first_seq: u64) {
        while let Some(&(s, _)) = self.q.front() {
            if s < first_seq {
                self.q.pop_front();
            } else {
                break;
            }
        }
    }

    fn front(&self) -> Option<f64> {
        self.q.front().map(|&(_, v)| v)
    }

    fn clear(&mut self) {
        self.q.clear();
    }
}

/// The ring of records and everything derived from it incrementally.
#[derive(Debug, Clone)]
struct Core {
    recs: VecDeque<Rec>,
    /// Sequence number of `recs[0]`.
    first_seq: u64,
    /// Pushes since the last re-sum.
    since_resum: usize,
    /// Re-sum after this many pushes.
    resum_every: usize,
    /// The targets are summed as `y - shift`.
    shift: f64,
    abs_err: Sum,
    sq_err: Sum,
    err: Sum,
    y: Sum,
    y2: Sum,
    max_abs_err: Extremum,
    max_y: Extremum,
    min_y: Extremum,
}

impl Core {
    fn new(resum_every: usize, reserve: usize) -> Core {
        Core {
            recs: VecDeque::with_capacity(reserve),
            first_seq: 0,
            since_resum: 0,
            resum_every: resum_every.max(1),
            shift: 0.0,
            abs_err: Sum::default(),
            sq_err: Sum::default(),
            err: Sum::default(),
            y: Sum::default(),
            y2: Sum::default(),
            max_abs_err: Extremum::default(),
            max_y: Extremum::default(),
            min_y: Extremum::default(),
        }
    }

    fn len(&self) -> usize {
        self.recs.len()
    }

    #[inline]
    fn add_sums(&mut self, r: Rec, sign: f64) {
        let e = r.p - r.y;
        let dy = r.y - self.shift;
        self.abs_err.add(sign * e.abs());
        self.sq_err.add(sign * e * e);
        self.err.add(sign * e);
        self.y.add(sign * dy);
        self.y2.add(sign * dy * dy);
    }

    fn push_back(&mut self, y: f64, p: f64) {
        if self.recs.is_empty() {
            // Start afresh (an emptied window may keep rounding residue of
            // the old shift) and centre on the first target.
            self.resum();
            self.shift = y;
        }
        let seq = self.first_seq + self.recs.len() as u64;
        let r = Rec { y, p };
        self.recs.push_back(r);
        self.add_sums(r, 1.0);
        self.max_abs_err.push(seq, (p - y).abs(), |a, b| a >= b);
        self.max_y.push(seq, y, |a, b| a >= b);
        self.min_y.push(seq, y, |a, b| a <= b);
        self.since_resum += 1;
    }

    fn pop_front(&mut self) {
        if let Some(r) = self.recs.pop_front() {
            self.add_sums(r, -1.0);
            self.first_seq += 1;
            self.max_abs_err.expire(self.first_seq);
            self.max_y.expire(self.first_seq);
            self.min_y.expire(self.first_seq);
        }
    }

    /// Re-sums from the buffer when due (call after each push and its
    /// evictions), re-centring the target shift on the window's mean.
    fn maybe_resum(&mut self) {
        if self.since_resum < self.resum_every {
            return;
        }
        self.since_resum = 0;
        self.resum();
    }

    fn resum(&mut self) {
        let n = self.recs.len();
        if n == 0 {
            self.abs_err = Sum::default();
            self.sq_err = Sum::default();
            self.err = Sum::default();
            self.y = Sum::default();
            self.y2 = Sum::default();
            self.max_abs_err.clear();
            self.max_y.clear();
            self.min_y.clear();
            return;
        }
        let mut mean = Sum::default();
        for r in &self.recs {
            mean.add(r.y);
        }
        self.shift = mean.value() / n as f64;
        let (mut a, mut s, mut e, mut y, mut y2) = (
            Sum::default(),
            Sum::default(),
            Sum::default(),
            Sum::default(),
            Sum::default(),
        );
        for r in &self.recs {
            let err = r.p - r.y;
            let dy = r.y - self.shift;
            a.add(err.abs());
            s.add(err * err);
            e.add(err);
            y.add(dy);
            y2.add(dy * dy);
        }
        (self.abs_err, self.sq_err, self.err, self.y, self.y2) = (a, s, e, y, y2);
    }

    fn stats(&self) -> WindowStats {
        let n = self.recs.len();
        if n == 0 {
            return WindowStats {
                count: 0,
                mae: f64::NAN,
                rmse: f64::NAN,
                r2: f64::NAN,
                bias: f64::NAN,
                max_error: f64::NAN,
            };
        }
        let nf = n as f64;
        // Sums of non-negative terms can only come out negative by rounding.
        let sq_err = self.sq_err.value().max(0.0);
        let constant = self.min_y.front() == self.max_y.front();
        let r2 = if n < 2 || constant {
            f64::NAN
        } else {
            let sy = self.y.value();
            let ss_tot = self.y2.value() - sy * sy / nf;
            if ss_tot > 0.0 {
                1.0 - sq_err / ss_tot
            } else {
                f64::NAN
            }
        };
        WindowStats {
            count: n as u64,
            mae: self.abs_err.value().max(0.0) / nf,
            rmse: (sq_err / nf).sqrt(),
            r2,
            bias: self.err.value() / nf,
            max_error: self.max_abs_err.front().unwrap_or(f64::NAN),
        }
    }
}

/// The last `capacity` joined records.
#[derive(Debug, Clone)]
pub struct CountWindow {
    capacity: usize,
    core: Core,
}

impl CountWindow {
    /// A window of the last `capacity` records (at least 1).
    pub fn new(capacity: usize) -> CountWindow {
        let capacity = capacity.max(1);
        CountWindow {
            capacity,
            core: Core::new(capacity, capacity),
        }
    }

    /// Adds a record, evicting the oldest when full.
    pub fn push(&mut self, y_true: f64, y_pred: f64) {
        if self.core.len() == self.capacity {
            self.core.pop_front();
        }
        self.core.push_back(y_true, y_pred);
        self.core.maybe_resum();
    }

    /// The figures of the records in the window.
    pub fn stats(&self) -> WindowStats {
        self.core.stats()
    }

    pub fn len(&self) -> usize {
        self.core.len()
    }

    pub fn is_empty(&self) -> bool {
        self.core.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True once the window holds `capacity` records.
    pub fn is_full(&self) -> bool {
        self.core.len() == self.capacity
    }
}

/// The records of the last `period`, at most `max_rows` of them.
///
/// Times are milliseconds passed in by the caller (the monitor's clock), so
/// the window is deterministic under test. A record pushed with a time
/// earlier than the previous one is filed at the previous one's time (the
/// window stays ordered, so expiry is a pop from the front). `stats(now)`
/// keeps the records with `at > now - period`.
#[derive(Debug, Clone)]
pub struct PeriodWindow {
    period_ms: u64,
    max_rows: usize,
    times: VecDeque<u64>,
    core: Core,
    evicted_over_max: u64,
}

impl PeriodWindow {
    /// A window of the last `period` (at least 1 ms), bounded by `max_rows`
    /// (at least 1).
    pub fn new(period: Duration, max_rows: usize) -> PeriodWindow {
        let max_rows = max_rows.max(1);
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        // Re-sum once per window's worth of pushes (a re-sum costs at most
        // `max_rows`), but never more often than every 1024 pushes.
        let resum_every = max_rows.max(1024);
        PeriodWindow {
            period_ms,
            max_rows,
            times: VecDeque::new(),
            core: Core::new(resum_every, 0),
            evicted_over_max: 0,
        }
    }

    /// Adds a record made at `at_ms`; when `max_rows` are held already, the
    /// oldest goes first (counted in [`PeriodWindow::evicted_over_max`]).
    pub fn push(&mut self, at_ms: u64, y_true: f64, y_pred: f64) {
        let at = self.times.back().map_or(at_ms, |&last| at_ms.max(last));
        if self.core.len() == self.max_rows {
            self.core.pop_front();
            self.times.pop_front();
            self.evicted_over_max += 1;
        }
        self.core.push_back(y_true, y_pred);
        self.times.push_back(at);
        self.expire(at);
        self.core.maybe_resum();
    }

    /// The figures of the records of the period ending at `now_ms`
    /// (older records are dropped for good).
    pub fn stats(&mut self, now_ms: u64) -> WindowStats {
        self.expire(now_ms);
        self.core.stats()
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some(&t) = self.times.front() {
            if t.saturating_add(self.period_ms) <= now_ms {
                self.times.pop_front();
                self.core.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records dropped because the window held `max_rows` (not by age).
    pub fn evicted_over_max(&self) -> u64 {
        self.evicted_over_max
    }

    pub fn len(&self) -> usize {
        self.core.len()
    }

    pub fn is_empty(&self) -> bool {
        self.core.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Two-pass figures straight from the records.
    fn naive(recs: &[(f64, f64)]) -> WindowStats {
        let n = recs.len() as f64;
        let mean_y = recs.iter().map(|r| r.0).sum::<f64>() / n;
        let ss_tot: f64 = recs.iter().map(|r| (r.0 - mean_y).powi(2)).sum();
        let ss_res: f64 = recs.iter().map(|r| (r.0 - r.1).powi(2)).sum();
        WindowStats {
            count: recs.len() as u64,
            mae: recs.iter().map(|r| (r.1 - r.0).abs()).sum::<f64>() / n,
            rmse: (ss_res / n).sqrt(),
            r2: 1.0 - ss_res / ss_tot,
            bias: recs.iter().map(|r| r.1 - r.0).sum::<f64>() / n,
            max_error: recs.iter().map(|r| (r.1 - r.0).abs()).fold(0.0, f64::max),
        }
    }

    fn assert_close(what: &str, got: f64, want: f64, scale: f64, rel: f64) {
        let tol = rel * want.abs().max(scale);
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got:.17e}, want {want:.17e} (tolerance {tol:e})"
        );
    }

    fn assert_stats(got: WindowStats, want: WindowStats, rel: f64) {
        assert_eq!(got.count, want.count);
        assert_close("mae", got.mae, want.mae, 0.0, rel);
        assert_close("rmse", got.rmse, want.rmse, 0.0, rel);
        assert_close("r2", got.r2, want.r2, 0.0, rel);
        // The bias is a sum of terms of both signs: relative to the size of
        // the terms (the MAE), not to a result that may be near zero.
        assert_close("bias", got.bias, want.bias, want.mae, rel);
        assert_eq!(got.max_error, want.max_error, "max_error");
    }

    /// A normal draw by Box-Muller (rand 0.9 has no distributions).
    fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Issue 18, 2.5: truth and prediction at the opposite ends of what
    /// is accepted give finite figures, equal to the naive ones.
    #[test]
    fn the_largest_accepted_values_give_finite_figures() {
        use crate::core::messages::MAX_ABS_VALUE as M;
        let mut w = CountWindow::new(500);
        let mut p = PeriodWindow::new(Duration::from_secs(60), 1_000_000);
        let mut recs = Vec::new();
        for i in 0..500u32 {
            let (y, pred) = if i % 50 == 0 {
                (M, -M)
            } else {
                (100.0 + f64::from(i % 7), 110.0)
            };
            w.push(y, pred);
            p.push(1000, y, pred);
            recs.push((y, pred));
        }
        for s in [w.stats(), p.stats(1000)] {
            for v in [s.mae, s.rmse, s.r2, s.bias, s.max_error] {
                assert!(v.is_finite(), "{s:?}");
            }
            assert_stats(s, naive(&recs), 1e-9);
            assert_eq!(s.max_error, 2.0 * M);
            // The ten extreme rows dominate: RMSE = 2M * sqrt(10/500).
            assert_close(
                "rmse",
                s.rmse,
                2.0 * M * (10.0f64 / 500.0).sqrt(),
                0.0,
                1e-12,
            );
        }
    }

    #[test]
    fn a_million_pushes_stay_exact() {
        // Values like the data: targets 25..346, predictions ~ N(target, 55).
        let mut rng = StdRng::seed_from_u64(7);
        for capacity in [500usize, 37] {
            let mut w = CountWindow::new(capacity);
            let mut checked = 0;
            for i in 0..1_000_000u32 {
                let y = rng.random_range(25..=346) as f64;
                let p = normal(&mut rng, y, 55.0);
                w.push(y, p);
                if i % 997 == 0 || i == 999_999 {
                    let recs: Vec<_> = w.core.recs.iter().map(|r| (r.y, r.p)).collect();
                    assert_eq!(recs.len(), capacity.min(i as usize + 1));
                    if recs.len() >= 2 {
                        assert_stats(w.stats(), naive(&recs), 1e-9);
                        checked += 1;
                    }
                }
            }
            assert!(checked > 1000, "{checked}");
            assert!(w.core.max_abs_err.q.len() <= capacity);
            assert!(w.core.recs.capacity() < 2 * capacity + 8);
        }
    }

    #[test]
    fn huge_errors_leave_no_residue_once_they_have_left() {
        // Bursts of errors of 1e8 (squares 1e16) through a window of small
        // errors (about 1e-2): plain running sums keep rounding residue of
        // the huge terms after they are gone, larger than the small sums.
        let mut rng = StdRng::seed_from_u64(5);
        let mut w = CountWindow::new(1000);
        let mut checked = 0;
        for i in 0..300_000u32 {
            let y = rng.random_range(25..=346) as f64;
            let huge = i % 20_000 < 3;
            let e = if huge {
                1e8 * (1.0 + rng.random::<f64>())
            } else {
                normal(&mut rng, 0.0, 1e-2)
            };
            w.push(y, y + e);
            if i % 20_000 == 1500 || i % 20_000 == 10_000 || i % 20_000 == 999 {
                let recs: Vec<_> = w.core.recs.iter().map(|r| (r.y, r.p)).collect();
                assert_stats(w.stats(), naive(&recs), 1e-9);
                checked += 1;
            }
        }
        assert_eq!(checked, 45);
    }

    #[test]
    fn large_offsets_do_not_cancel() {
        // Targets near 1e6 with a spread of 1: the shifted sums keep R².
        let mut rng = StdRng::seed_from_u64(3);
        let mut w = CountWindow::new(100);
        let mut recs = Vec::new();
        for _ in 0..5000 {
            let y = 1e6 + rng.random::<f64>();
            let p = y + 0.1 * (rng.random::<f64>() - 0.5);
            w.push(y, p);
            recs.push((y, p));
        }
        assert_stats(w.stats(), naive(&recs[recs.len() - 100..]), 1e-9);
    }

    // Expected values:
    // /work/venv-sci/bin/python -c "import numpy as np; y=np.array([151.,75,141,206,135,97,138,63,110,310]); p=np.array([206.1,68.2,176.9,166.1,128.4,106.3,73.9,118.8,158.8,213.9]); e=p-y; print(*map(float, [np.abs(e).mean(), np.sqrt((e**2).mean()), 1-(e**2).sum()/((y-y.mean())**2).sum(), e.mean(), np.abs(e).max()]))"
    // -> 41.839999999999996 49.93217399633227 0.4608363752746396 -0.859999999999998 96.1
    // and for the last 4 rows (a window of 4 after 10 pushes):
    // /work/venv-sci/bin/python -c "import numpy as np; y=np.array([138.,63,110,310]); p=np.array([73.9,118.8,158.8,213.9]); e=p-y; print(*map(float, [np.abs(e).mean(), np.sqrt((e**2).mean()), 1-(e**2).sum()/((y-y.mean())**2).sum(), e.mean(), np.abs(e).max()]))"
    // -> 66.19999999999999 68.62780048930608 0.4586893277111723 -13.899999999999995 96.1
    const Y: [f64; 10] = [151., 75., 141., 206., 135., 97., 138., 63., 110., 310.];
    const P: [f64; 10] = [
        206.1, 68.2, 176.9, 166.1, 128.4, 106.3, 73.9, 118.8, 158.8, 213.9,
    ];

    #[test]
    fn known_series_match_numpy() {
        let mut all = CountWindow::new(10);
        let mut last4 = CountWindow::new(4);
        for (y, p) in Y.iter().zip(P) {
            all.push(*y, p);
            last4.push(*y, p);
        }
        let s = all.stats();
        assert_eq!(s.count, 10);
        assert_close("mae", s.mae, 41.839999999999996, 0.0, 1e-12);
        assert_close("rmse", s.rmse, 49.93217399633227, 0.0, 1e-12);
        assert_close("r2", s.r2, 0.4608363752746396, 0.0, 1e-12);
        assert_close("bias", s.bias, -0.859999999999998, 41.84, 1e-12);
        assert_eq!(s.max_error, 96.1);
        let s = last4.stats();
        assert_eq!(s.count, 4);
        assert_close("mae", s.mae, 66.19999999999999, 0.0, 1e-12);
        assert_close("rmse", s.rmse, 68.62780048930608, 0.0, 1e-12);
        assert_close("r2", s.r2, 0.4586893277111723, 0.0, 1e-12);
        assert_close("bias", s.bias, -13.899999999999995, 0.0, 1e-12);
        assert_eq!(s.max_error, 96.1);
    }

    #[test]
    fn r2_is_nan_for_one_row_or_constant_targets() {
        let mut w = CountWindow::new(3);
        let s = w.stats();
        assert_eq!(s.count, 0);
        assert!(s.mae.is_nan() && s.r2.is_nan() && s.max_error.is_nan());
        w.push(100.0, 110.0);
        let s = w.stats();
        assert_eq!((s.count, s.mae, s.bias, s.max_error), (1, 10.0, 10.0, 10.0));
        assert!(s.r2.is_nan());
        w.push(100.0, 80.0);
        w.push(100.0, 95.0);
        let s = w.stats();
        assert!(s.r2.is_nan(), "constant targets: {}", s.r2);
        assert_eq!(s.max_error, 20.0);
        // One different target evicts a 100 and R² is defined again.
        w.push(130.0, 120.0);
        assert!(w.stats().r2.is_finite());
        // The max leaves with its record: 20 was the second push.
        w.push(130.0, 131.0);
        w.push(130.0, 131.0);
        assert_eq!(w.stats().max_error, 10.0);
        w.push(130.0, 131.0);
        assert_eq!(w.stats().max_error, 1.0);
    }

    #[test]
    fn period_window_expires_by_time_and_caps_rows() {
        let mut w = PeriodWindow::new(Duration::from_millis(1000), 5);
        // Four records at 0, 300, 600 and 900 ms.
        for (i, (y, p)) in Y.iter().zip(P).enumerate().take(4) {
            w.push(i as u64 * 300, *y, p);
        }
        // At 900 every record (0..900) is within the last second.
        assert_eq!(w.stats(900).count, 4);
        // At 1000 the record made at 0 is exactly a period old: gone.
        assert_eq!(w.stats(1000).count, 3);
        // At 1850 only 900 is left... and nothing once 1900 has passed.
        assert_eq!(w.stats(1850).count, 1);
        assert_eq!(w.stats(1900).count, 0);
        assert_eq!(w.evicted_over_max(), 0);
        // Emptied, then filled again: only the new records count.
        w.push(2000, 1e6, 1e6 + 3.0);
        w.push(2001, 1e6 + 2.0, 1e6 - 1.0);
        let want = naive(&[(1e6, 1e6 + 3.0), (1e6 + 2.0, 1e6 - 1.0)]);
        assert_stats(w.stats(2001), want, 1e-12);

        // All ten at the same instant through a window capped at 5: the
        // last five remain, five were evicted by the cap.
        let mut w = PeriodWindow::new(Duration::from_secs(60), 5);
        for (y, p) in Y.iter().zip(P) {
            w.push(5_000, *y, p);
        }
        assert_eq!(w.evicted_over_max(), 5);
        let want = naive(
            &Y[5..]
                .iter()
                .copied()
                .zip(P[5..].iter().copied())
                .collect::<Vec<_>>(),
        );
        assert_stats(w.stats(5_000), want, 1e-12);
        // A record from the past is filed at the latest time seen.
        w.push(1, 100.0, 100.0);
        assert_eq!(w.stats(64_999).count, 5);
        assert_eq!(w.stats(65_000).count, 0);
    }

    #[test]
    fn period_window_matches_naive_over_a_long_stream() {
        let mut rng = StdRng::seed_from_u64(11);
        // Alternate dense stretches (about 500 records per 250 ms: the cap
        // of 300 binds) and sparse ones (about 100: expiry by time binds).
        let mut w = PeriodWindow::new(Duration::from_millis(250), 300);
        let mut all: Vec<(u64, f64, f64)> = Vec::new();
        let mut t = 0u64;
        for i in 0..200_000u32 {
            t += if (i / 5000) % 2 == 0 {
                rng.random_range(0..2)
            } else {
                rng.random_range(0..6)
            };
            let y = rng.random_range(25..=346) as f64;
            let p = normal(&mut rng, y, 55.0);
            w.push(t, y, p);
            all.push((t, y, p));
            if i % 1009 == 0 {
                let kept: Vec<_> = all
                    .iter()
                    .filter(|r| r.0 + 250 > t)
                    .map(|r| (r.1, r.2))
                    .collect();
                let start = kept.len().saturating_sub(300);
                let s = w.stats(t);
                if kept.len() - start >= 2 {
                    assert_stats(s, naive(&kept[start..]), 1e-9);
                }
                // Keep the naive list short.
                all.retain(|r| r.0 + 250 > t);
            }
        }
        assert!(w.evicted_over_max() > 0, "the cap was exercised");
    }
}
