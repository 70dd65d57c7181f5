//! A streaming histogram of absolute errors, bounded in memory.
//!
//! Errors are counted in 2048 fine bins of equal width starting at 0. When a
//! value falls past the last bin, the width doubles and neighbouring bins
//! merge, so any range fits in the same memory and no value is ever re-read.
//! The plot asks for `n` bars over `[0, max]`; each bar adds up the fine bins
//! whose centres fall in it (exact to one fine bin, 1/2048 of the range).

/// Fine bins kept.
const FINE_BINS: usize = 2048;
/// Width of a fine bin before any doubling.
const INITIAL_WIDTH: f64 = 1.0 / 128.0;

/// One bar of the rendered histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// Counts of absolute errors, with their count, mean and maximum.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorHistogram {
    width: f64,
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    max: f64,
    /// Negative, NaN or infinite values offered (not counted in the bins).
    pub rejected: u64,
}

impl Default for ErrorHistogram {
    fn default() -> Self {
        ErrorHistogram::new()
    }
}

impl ErrorHistogram {
    pub fn new() -> ErrorHistogram {
        ErrorHistogram {
            width: INITIAL_WIDTH,
            counts: vec![0; FINE_BINS],
            count: 0,
            sum: 0.0,
            max: 0.0,
            rejected: 0,
        }
    }

    /// Counts one absolute error.
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            self.rejected += 1;
            return;
        }
        let mut idx = (value / self.width) as usize;
        while idx >= FINE_BINS {
            self.double_width();
            idx = (value / self.width) as usize;
        }
        self.counts[idx] += 1;
        self.count += 1;
        self.sum += value;
        self.max = self.max.max(value);
    }

    fn double_width(&mut self) {
        for i in 0..FINE_BINS / 2 {
            self.counts[i] = self.counts[2 * i] + self.counts[2 * i + 1];
        }
        self.counts[FINE_BINS / 2..].fill(0);
        self.width *= 2.0;
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean of the values counted (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Largest value counted.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The non-empty fine bins as (centre, count), in order: what the
    /// density curve is estimated from (at most 2048 pairs, however many
    /// values were counted).
    pub fn fine_bins(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let width = self.width;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(move |(i, &c)| ((i as f64 + 0.5) * width, c))
    }

    /// `n` equal bars from 0 to just past the largest value.
    pub fn bars(&self, n: usize) -> Vec<Bar> {
        let n = n.max(1);
        let upper = if self.max > 0.0 {
            self.max * (1.0 + 1e-9)
        } else {
            1.0
        };
        let bar_width = upper / n as f64;
        let mut bars: Vec<Bar> = (0..n)
            .map(|i| Bar {
                lo: i as f64 * bar_width,
                hi: (i + 1) as f64 * bar_width,
                count: 0,
            })
            .collect();
        for (i, &c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let centre = (i as f64 + 0.5) * self.width;
            let bar = ((centre / bar_width) as usize).min(n - 1);
            bars[bar].count += c;
        }
        bars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_mean_and_max() {
        let mut h = ErrorHistogram::new();
        for v in [1.0, 2.0, 3.0, 10.0] {
            h.add(v);
        }
        assert_eq!(h.count(), 4);
        assert_eq!(h.mean(), 4.0);
        assert_eq!(h.max(), 10.0);
        let bars = h.bars(10);
        assert_eq!(bars.iter().map(|b| b.count).sum::<u64>(), 4);
        // bars are [0,1), [1,2), ...: 1.0 opens the second, 10.0 is in the last
        let counts: Vec<u64> = bars.iter().map(|b| b.count).collect();
        assert_eq!(counts, [0, 1, 1, 1, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn wide_ranges_fit_in_the_same_memory() {
        let mut h = ErrorHistogram::new();
        for i in 0..100_000 {
            h.add(i as f64 * 0.37);
        }
        h.add(1e9);
        assert_eq!(h.counts.len(), FINE_BINS);
        assert_eq!(h.count(), 100_001);
        let bars = h.bars(40);
        assert_eq!(bars.iter().map(|b| b.count).sum::<u64>(), 100_001);
        assert_eq!(bars[39].count, 1);
    }

    #[test]
    fn bars_match_an_exact_histogram_within_a_fine_bin() {
        let mut h = ErrorHistogram::new();
        let values: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 1600) as f64 / 10.0 + 0.05)
            .collect();
        for &v in &values {
            h.add(v);
        }
        let bars = h.bars(16);
        let bw = bars[0].hi - bars[0].lo;
        for b in &bars {
            let exact = values.iter().filter(|&&v| v >= b.lo && v < b.hi).count() as i64;
            let near_edge = values
                .iter()
                .filter(|&&v| (v - b.lo).abs() < h.width || (v - b.hi).abs() < h.width)
                .count() as i64;
            assert!(
                (b.count as i64 - exact).abs() <= near_edge,
                "{b:?} vs {exact} (bw {bw})"
            );
        }
    }

    #[test]
    fn rejects_invalid_values() {
        let mut h = ErrorHistogram::new();
        h.add(f64::NAN);
        h.add(-1.0);
        h.add(f64::INFINITY);
        assert_eq!(h.count(), 0);
        assert_eq!(h.rejected, 3);
        assert_eq!(h.bars(5).len(), 5);
    }
}
