//! Drift of a categorical column: does a window's mix of levels still look
//! like the training data's?
//!
//! Per column, against the training counts of each level:
//!
//! - Pearson's chi-squared test of the 2 x L table (training counts,
//!   window counts) over the levels seen in either, without Yates'
//!   correction: `scipy.stats.chi2_contingency(table, correction=False)`,
//!   the p-value from statrs' χ²(L - 1) survival function;
//! - PSI over the levels, an empty level's share replaced by
//!   [`PSI_EMPTY_BIN`] (Evidently), as [`psi`] does for a numeric column's
//!   bins;
//! - levels the training data never had: counted, and their share of the
//!   window, a signal of their own (they take no part in the two above).
//!
//! The expected figures of the tests come from
//! `tests/oracle/categorical.py`. [`super::drift`] runs it for each
//! categorical column of a model of the user's own data.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Share given to an empty bin or level in PSI (Evidently's choice).
pub const PSI_EMPTY_BIN: f64 = 1e-4;

/// Population stability index of current shares against reference shares
/// (neither has a zero): over a numeric column's bins
/// ([`super::drift`]) or a categorical column's levels.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| (c - r) * (c / r).ln())
        .sum()
}

/// What a window of one categorical column shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoricalDrift {
    /// Rows of the window with a training level.
    pub rows: u64,
    pub chi2: f64,
    pub p_value: f64,
    pub psi: f64,
    /// Rows with a level the training data never had, and their share of
    /// the window.
    pub unseen: u64,
    pub unseen_share: f64,
}

/// Compares `window` counts (one per training level) and `unseen` rows
/// against the training counts `reference`. A window without a training
/// level has no test: p-value 1, PSI 0.
pub fn evaluate(reference: &[u64], window: &[u64], unseen: u64) -> CategoricalDrift {
    assert_eq!(
        reference.len(),
        window.len(),
        "one count per training level"
    );
    let rows: u64 = window.iter().sum();
    let total = rows + unseen;
    let unseen_share = if total == 0 {
        0.0
    } else {
        unseen as f64 / total as f64
    };
    let ref_rows: u64 = reference.iter().sum();
    if rows == 0 || ref_rows == 0 {
        return CategoricalDrift {
            rows,
            chi2: 0.0,
            p_value: 1.0,
            psi: 0.0,
            unseen,
            unseen_share,
        };
    }
    let (chi2, p_value) = chi2_levels(reference, window);
    let shares = |counts: &[u64], n: u64| -> Vec<f64> {
        counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    PSI_EMPTY_BIN
                } else {
                    c as f64 / n as f64
                }
            })
            .collect()
    };
    CategoricalDrift {
        rows,
        chi2,
        p_value,
        psi: psi(&shares(reference, ref_rows), &shares(window, rows)),
        unseen,
        unseen_share,
    }
}

/// Pearson's chi-squared of the 2 x L table, levels empty in both left
/// out: (statistic, p-value); (0, 1) with fewer than two levels left.
pub fn chi2_levels(reference: &[u64], window: &[u64]) -> (f64, f64) {
    let cols: Vec<(u64, u64)> = reference
        .iter()
        .zip(window)
        .map(|(&r, &w)| (r, w))
        .filter(|(r, w)| r + w > 0)
        .collect();
    if cols.len() < 2 {
        return (0.0, 1.0);
    }
    let r_total: u64 = cols.iter().map(|c| c.0).sum();
    let w_total: u64 = cols.iter().map(|c| c.1).sum();
    let total = (r_total + w_total) as f64;
    let mut stat = 0.0;
    for &(r, w) in &cols {
        let col = (r + w) as f64;
        for (observed, row) in [(r, r_total), (w, w_total)] {
            let expected = row as f64 * col / total;
            stat += (observed as f64 - expected).powi(2) / expected;
        }
    }
    let dist = ChiSquared::new((cols.len() - 1) as f64).expect("at least one degree of freedom");
    (stat, dist.sf(stat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(what: &str, a: f64, b: f64) {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "{what}: {a} vs scipy {b}"
        );
    }

    // Expected: tests/oracle/categorical.py (scipy 1.17.1, numpy 2.4.6).
    #[test]
    fn a_shifted_mix_equals_scipys_chi2_and_numpys_psi() {
        let reference = [120, 80, 40, 10];
        let window = [30, 50, 20, 0];
        let d = evaluate(&reference, &window, 7);
        close("chi2", d.chi2, CHI2);
        close("p", d.p_value, P);
        close("psi", d.psi, PSI);
        assert_eq!((d.rows, d.unseen), (100, 7));
        close("unseen share", d.unseen_share, 7.0 / 107.0);
    }

    #[test]
    fn the_same_mix_shows_nothing_and_an_empty_window_has_no_test() {
        let d = evaluate(&[10, 20, 30], &[1, 2, 3], 0);
        assert!(
            d.chi2.abs() < 1e-12 && (d.p_value - 1.0).abs() < 1e-12,
            "{d:?}"
        );
        assert!(d.psi.abs() < 1e-12);
        let d = evaluate(&[10, 20], &[0, 0], 4);
        assert_eq!((d.p_value, d.psi, d.unseen_share), (1.0, 0.0, 1.0));
    }

    const CHI2: f64 = 16.297435897435896;
    const P: f64 = 0.0009853660940315132;
    const PSI: f64 = 0.41291750921952475;
}
