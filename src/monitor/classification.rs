//! The window metrics of a classifier: how well a window of predictions
//! (class probabilities) matched the classes that came true.
//!
//! Pure functions over one window, each equal to scikit-learn's on the same
//! rows (the unit tests' expected figures come from
//! `tests/oracle/classification.py`):
//!
//! - accuracy of the predicted class (the most probable one; for two classes
//!   the positive one when its probability is at least the threshold);
//! - log loss (`log_loss`, probabilities clipped to [eps, 1 - eps] with
//!   eps the f64 machine epsilon, as scikit-learn does);
//! - ROC AUC: binary, of the positive class's probability
//!   (`roc_auc_score`); multiclass, one-vs-rest, the unweighted mean over
//!   the classes (`multi_class="ovr", average="macro"`). Ties count half
//!   (average ranks), as the trapezoids of scikit-learn's curve do. A class
//!   absent from the window (or present in every row) has no AUC; with
//!   none left there is no figure;
//! - precision, recall and F1 at the decision threshold: binary, of the
//!   positive class; multiclass, the unweighted mean over the classes
//!   (`average="macro"`, a class never predicted has precision 0, as
//!   scikit-learn's `zero_division` default gives with a warning);
//! - the Brier score: binary, the mean squared difference of the positive
//!   class's probability from 0/1 (`brier_score_loss(y, p1)`); multiclass,
//!   the mean over rows of the summed squared differences over the classes
//!   (`brier_score_loss` of the probability matrix);
//! - the share of each predicted class, to set beside the training share.
//!
//! The monitor's windows of a classifier are these (the report's
//! `classification`), and so are the bands its rules judge them against
//! (`super::reference`).

/// One window's figures (in the report's `classification`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassificationWindow {
    pub rows: usize,
    pub accuracy: f64,
    pub log_loss: f64,
    /// `None` when no class has both positives and negatives in the window.
    pub roc_auc: Option<f64>,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub brier: f64,
    /// Share of the rows predicted as each class.
    pub predicted_share: Vec<f64>,
}

impl ClassificationWindow {
    /// The seven figures a band is kept for, named and in the order of
    /// [`CLASSIFICATION_METRICS`] (ROC AUC `None` when the window has none).
    pub fn figures(&self) -> [(&'static str, Option<f64>); 7] {
        let values = [
            Some(self.accuracy),
            Some(self.log_loss),
            self.roc_auc,
            Some(self.precision),
            Some(self.recall),
            Some(self.f1),
            Some(self.brier),
        ];
        std::array::from_fn(|i| (CLASSIFICATION_METRICS[i], values[i]))
    }
}

/// Why a window has no figures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowError {
    #[error("an empty window")]
    Empty,
    #[error("row {row}: {problem}")]
    Row { row: usize, problem: String },
}

pub use crate::model::tabular::predicted_class;
use crate::model::tabular::CLASSIFICATION_METRICS;

/// The figures of a window: `truth[i]` is the class of row `i`,
/// `probabilities[i]` its predicted probabilities (one per class, summing
/// to 1 within 1e-6), `threshold` the binary decision threshold.
pub fn evaluate<P: AsRef<[f64]>>(
    truth: &[usize],
    probabilities: &[P],
    threshold: f64,
) -> Result<ClassificationWindow, WindowError> {
    let probabilities: Vec<&[f64]> = probabilities.iter().map(AsRef::as_ref).collect();
    let probabilities = probabilities.as_slice();
    let n = truth.len();
    if n == 0 {
        return Err(WindowError::Empty);
    }
    let k = probabilities.first().map_or(0, |p| p.len());
    check_rows(truth, probabilities, k)?;
    let predicted: Vec<usize> = probabilities
        .iter()
        .map(|p| predicted_class(p, threshold))
        .collect();
    let right = truth.iter().zip(&predicted).filter(|(t, p)| t == p).count();
    let eps = f64::EPSILON;
    let log_loss = truth
        .iter()
        .zip(probabilities)
        .map(|(&t, p)| {
            // scikit-learn clips, then renormalises each row.
            let clipped: Vec<f64> = p.iter().map(|v| v.clamp(eps, 1.0 - eps)).collect();
            let sum: f64 = clipped.iter().sum();
            -(clipped[t] / sum).ln()
        })
        .sum::<f64>()
        / n as f64;
    let brier = if k == 2 {
        truth
            .iter()
            .zip(probabilities)
            .map(|(&t, p)| (p[1] - t as f64).powi(2))
            .sum::<f64>()
            / n as f64
    } else {
        truth
            .iter()
            .zip(probabilities)
            .map(|(&t, p)| {
                p.iter()
                    .enumerate()
                    .map(|(c, v)| (v - f64::from(u8::from(c == t))).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n as f64
    };
    let (precision, recall, f1) = precision_recall_f1(truth, &predicted, k);
    let mut predicted_share = vec![0.0; k];
    for &p in &predicted {
        predicted_share[p] += 1.0 / n as f64;
    }
    Ok(ClassificationWindow {
        rows: n,
        accuracy: right as f64 / n as f64,
        log_loss,
        roc_auc: roc_auc(truth, probabilities, k),
        precision,
        recall,
        f1,
        brier,
        predicted_share,
    })
}

fn check_rows(truth: &[usize], probabilities: &[&[f64]], k: usize) -> Result<(), WindowError> {
    let bad = |row: usize, problem: String| Err(WindowError::Row { row, problem });
    if probabilities.len() != truth.len() {
        return bad(
            probabilities.len().min(truth.len()),
            format!(
                "{} truths, {} predictions",
                truth.len(),
                probabilities.len()
            ),
        );
    }
    if k < 2 {
        return bad(0, format!("{k} class probabilities, at least 2 needed"));
    }
    for (row, (&t, p)) in truth.iter().zip(probabilities).enumerate() {
        if p.len() != k {
            return bad(
                row,
                format!("{} probabilities, the first row has {k}", p.len()),
            );
        }
        if t >= k {
            return bad(row, format!("class {t} of {k}"));
        }
        if p.iter().any(|v| !(0.0..=1.0).contains(v)) || (p.iter().sum::<f64>() - 1.0).abs() > 1e-6
        {
            return bad(
                row,
                "probabilities outside [0, 1] or not summing to 1".into(),
            );
        }
    }
    Ok(())
}

/// Binary: of the positive class; multiclass: macro averages.
fn precision_recall_f1(truth: &[usize], predicted: &[usize], k: usize) -> (f64, f64, f64) {
    let per_class = |c: usize| {
        let tp = truth
            .iter()
            .zip(predicted)
            .filter(|(t, p)| **t == c && **p == c)
            .count() as f64;
        let predicted_c = predicted.iter().filter(|p| **p == c).count() as f64;
        let actual_c = truth.iter().filter(|t| **t == c).count() as f64;
        let precision = if predicted_c > 0.0 {
            tp / predicted_c
        } else {
            0.0
        };
        let recall = if actual_c > 0.0 { tp / actual_c } else { 0.0 };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        (precision, recall, f1)
    };
    if k == 2 {
        return per_class(1);
    }
    let (mut p, mut r, mut f) = (0.0, 0.0, 0.0);
    for c in 0..k {
        let (pc, rc, fc) = per_class(c);
        p += pc;
        r += rc;
        f += fc;
    }
    let k = k as f64;
    (p / k, r / k, f / k)
}

/// The AUC of `scores` for the rows where `positive` holds (Mann-Whitney
/// with average ranks); `None` without both kinds of row.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|p| **p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1, averaged over the tie.
        let rank = (i + j + 2) as f64 / 2.0;
        rank_sum += rank * order[i..=j].iter().filter(|&&r| positive[r]).count() as f64;
        i = j + 1;
    }
    let (p, q) = (n_pos as f64, n_neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

fn roc_auc(truth: &[usize], probabilities: &[&[f64]], k: usize) -> Option<f64> {
    let of_class = |c: usize| {
        let scores: Vec<f64> = probabilities.iter().map(|p| p[c]).collect();
        let positive: Vec<bool> = truth.iter().map(|t| *t == c).collect();
        auc(&scores, &positive)
    };
    if k == 2 {
        return of_class(1);
    }
    let aucs: Vec<f64> = (0..k).filter_map(of_class).collect();
    (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of tests/oracle/classification.py: 40 rows, classes from a
    /// fixed sequence, probabilities from a fixed formula (with ties).
    fn binary() -> (Vec<usize>, Vec<Vec<f64>>) {
        let truth: Vec<usize> = (0..40).map(|i| usize::from((i * 7 + 3) % 5 < 2)).collect();
        let probs = (0..40)
            .map(|i| {
                let p1 = (((i * 13) % 17) as f64 + 0.5) / 18.0;
                vec![1.0 - p1, p1]
            })
            .collect();
        (truth, probs)
    }

    fn multi() -> (Vec<usize>, Vec<Vec<f64>>) {
        let truth: Vec<usize> = (0..40).map(|i| (i * 5 + 1) % 3).collect();
        let probs = (0..40)
            .map(|i| {
                let raw = [
                    ((i * 3) % 7) as f64 + 1.0,
                    ((i * 5) % 11) as f64 + 1.0,
                    ((i * 2) % 5) as f64 + 1.0,
                ];
                let s: f64 = raw.iter().sum();
                raw.iter().map(|r| r / s).collect()
            })
            .collect();
        (truth, probs)
    }

    fn close(what: &str, a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{what}: {a} vs sklearn {b}");
    }

    // Expected: tests/oracle/classification.py (scikit-learn 1.9.1).
    #[test]
    fn binary_figures_equal_sklearns() {
        let (t, p) = binary();
        let w = evaluate(&t, &p, 0.5).unwrap();
        close("accuracy", w.accuracy, 0.575);
        close("log_loss", w.log_loss, 0.8951662589750464);
        close("roc_auc", w.roc_auc.unwrap(), 0.5325520833333334);
        close("precision", w.precision, 0.47368421052631576);
        close("recall", w.recall, 0.5625);
        close("f1", w.f1, 0.5142857142857142);
        close("brier", w.brier, 0.3061728395061728);
        close("share 1", w.predicted_share[1], 0.475);
    }

    #[test]
    fn multiclass_figures_equal_sklearns() {
        let (t, p) = multi();
        let w = evaluate(&t, &p, 0.5).unwrap();
        close("accuracy", w.accuracy, 0.3);
        close("log_loss", w.log_loss, 1.2711321425928674);
        close("roc_auc", w.roc_auc.unwrap(), 0.46745692579025916);
        close("precision", w.precision, 0.1987179487179487);
        close("recall", w.recall, 0.29120879120879123);
        close("f1", w.f1, 0.22999999999999998);
        close("brier", w.brier, 0.774100660253828);
        close("share 0", w.predicted_share[0], 0.3);
    }

    #[test]
    fn bad_windows_are_refused() {
        assert_eq!(evaluate::<Vec<f64>>(&[], &[], 0.5), Err(WindowError::Empty));
        let e = evaluate(&[2], &[vec![0.5, 0.5]], 0.5).unwrap_err();
        assert!(e.to_string().contains("class 2 of 2"), "{e}");
        let e = evaluate(&[0], &[vec![0.5, 0.6]], 0.5).unwrap_err();
        assert!(e.to_string().contains("not summing to 1"), "{e}");
        // One class only: no AUC, the rest still computed.
        let w = evaluate(&[1, 1], &[vec![0.2, 0.8], vec![0.6, 0.4]], 0.5).unwrap();
        assert_eq!((w.roc_auc, w.accuracy), (None, 0.5));
    }
}
