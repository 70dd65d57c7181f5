//! The monitor's reference for a model of the user's own data, computed at
//! `train --data` time and stored in its artifact
//! ([`crate::model::tabular::Reference`]): the training distribution of
//! every feature and of the prediction, and the band of every window
//! metric over bootstrap windows of the training rows.
//!
//! - A numeric distribution keeps every training value sorted, or, past
//!   [`MAX_REFERENCE_VALUES`] rows, that many of them at evenly spaced
//!   ranks ([`thin_sorted`]: training values, never values between two, so
//!   a 0/1 column stays two-valued), so that a 10-million-row training set
//!   gives a reference of 16 KB per column. KS and PSI against
//!   the quantiles approximate those against every value to about
//!   1 / [`MAX_REFERENCE_VALUES`] in the distribution function.
//! - A categorical one keeps the training rows per level.
//! - Bands: regression windows as for the diabetes model
//!   ([`super::baseline::bootstrap`]: MAE, RMSE, R², bias, max error);
//!   classification windows the figures of [`super::classification`]
//!   (accuracy, log loss, ROC AUC, precision, recall, F1, Brier), each over
//!   `windows` windows of `window` rows drawn with replacement, seeded.
//!
//! `run --data` judges a regression's windows against these bands
//! (`Reference::regression_baseline`) and drift against these distributions
//! (`super::drift::DriftDetector::from_tabular`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::baseline::{band, bootstrap, METRICS};
use super::classification;
use crate::core::table::{Table, Values};
use crate::model::baseline::{check_sizes, err, BaselineError};
use crate::model::tabular::{
    thin_sorted, Distribution, MetricBand, Outputs, Reference, TabularModel,
    CLASSIFICATION_METRICS, DECISION_THRESHOLD, MAX_REFERENCE_VALUES,
};

/// The reference of `model` on its training `table`, with the model's
/// `outputs` on it (from the fit).
pub fn of_tabular(
    model: &TabularModel,
    table: &Table,
    outputs: Outputs,
    window: usize,
    windows: usize,
    seed: u64,
) -> Result<Reference, BaselineError> {
    check_sizes(window, windows)?;
    let mut features = Vec::with_capacity(model.features.len());
    for f in &model.features {
        let (_, c) = table
            .column(&f.column.name)
            .ok_or_else(|| err("training data", format!("no column {:?}", f.column.name)))?;
        features.push(match &c.values {
            Values::Numeric(v) => numeric(v.clone()),
            Values::Categorical(v) => {
                let levels = match &c.schema.kind {
                    crate::core::table::ColumnKind::Categorical { levels } => levels.len(),
                    crate::core::table::ColumnKind::Numeric => 0,
                };
                categorical(v.iter().map(|&i| i as usize), levels)
            }
        });
    }
    let (prediction, bands) = match outputs {
        Outputs::Regression { truth, predictions } => {
            let pairs: Vec<(f64, f64)> =
                truth.into_iter().zip(predictions.iter().copied()).collect();
            let bands = regression_bands(&pairs, window, windows, seed)?;
            (numeric(predictions), bands)
        }
        Outputs::Classification {
            truth,
            probabilities,
        } => {
            let k = probabilities.first().map_or(0, Vec::len);
            let predicted: Vec<usize> = probabilities
                .iter()
                .map(|p| classification::predicted_class(p, DECISION_THRESHOLD))
                .collect();
            // The records of a classifier carry class indices: their
            // window figures (mae, ...) get bands over the same.
            let pairs: Vec<(f64, f64)> = truth
                .iter()
                .zip(&predicted)
                .map(|(&t, &p)| (t as f64, p as f64))
                .collect();
            let mut bands = regression_bands(&pairs, window, windows, seed)?;
            bands.extend(classification_bands(
                &truth,
                &probabilities,
                window,
                windows,
                seed,
            )?);
            (categorical(predicted.into_iter(), k), bands)
        }
    };
    Ok(Reference {
        features,
        prediction,
        window,
        windows,
        seed,
        bands,
    })
}

/// Fits a model of `table` predicting `target` (see
/// [`TabularModel::fit`]) and gives it its reference for windows of
/// `window` rows: what `train --data` writes, and what `run --data`
/// without an artifact fits at start.
pub fn fit_with_reference(
    table: &Table,
    target: &str,
    task: Option<crate::model::tabular::Task>,
    window: usize,
    windows: usize,
    seed: u64,
) -> Result<TabularModel, FitOrReferenceError> {
    let (mut model, outputs) =
        TabularModel::fit(table, target, task).map_err(FitOrReferenceError::Fit)?;
    model.reference = Some(
        of_tabular(&model, table, outputs, window, windows, seed)
            .map_err(FitOrReferenceError::Reference)?,
    );
    Ok(model)
}

/// Why [`fit_with_reference`] failed: the fit (the data), or the
/// reference (its sizes, `key` naming which).
#[derive(Debug, thiserror::Error)]
pub enum FitOrReferenceError {
    #[error("{0}")]
    Fit(crate::model::tabular::FitError),
    #[error("{0}")]
    Reference(BaselineError),
}

/// Sorted values, or [`MAX_REFERENCE_VALUES`] evenly spaced quantiles of them.
fn numeric(mut values: Vec<f64>) -> Distribution {
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    Distribution::Numeric {
        quantiles: thin_sorted(&values, MAX_REFERENCE_VALUES),
        std,
    }
}

fn categorical(values: impl Iterator<Item = usize>, levels: usize) -> Distribution {
    let mut counts = vec![0u64; levels];
    for v in values {
        if let Some(c) = counts.get_mut(v) {
            *c += 1;
        }
    }
    Distribution::Categorical { counts }
}

/// Bands of the regression metrics (`super::baseline::METRICS`) of
/// (truth, prediction) `pairs` over bootstrap windows.
fn regression_bands(
    pairs: &[(f64, f64)],
    window: usize,
    windows: usize,
    seed: u64,
) -> Result<Vec<MetricBand>, BaselineError> {
    let b = bootstrap(pairs, window, windows, seed)?;
    let bands = [b.mae, b.rmse, b.r2, b.bias, b.max_error];
    Ok(METRICS
        .iter()
        .zip(bands)
        .map(|(m, band)| MetricBand {
            metric: (*m).to_owned(),
            band,
        })
        .collect())
}

/// Bands of the classification metrics over bootstrap windows.
fn classification_bands(
    truth: &[usize],
    probabilities: &[Vec<f64>],
    window: usize,
    windows: usize,
    seed: u64,
) -> Result<Vec<MetricBand>, BaselineError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut per_metric: [Vec<f64>; 7] = Default::default();
    let (mut t, mut p) = (Vec::with_capacity(window), Vec::with_capacity(window));
    for _ in 0..windows {
        t.clear();
        p.clear();
        for _ in 0..window {
            let i = rng.random_range(0..truth.len());
            t.push(truth[i]);
            p.push(probabilities[i].clone());
        }
        let w = classification::evaluate(&t, &p, DECISION_THRESHOLD)
            .map_err(|e| err("training data", e.to_string()))?;
        let figures = [
            w.accuracy,
            w.log_loss,
            w.roc_auc.unwrap_or(f64::NAN),
            w.precision,
            w.recall,
            w.f1,
            w.brier,
        ];
        for (v, f) in per_metric.iter_mut().zip(figures) {
            v.push(f);
        }
    }
    CLASSIFICATION_METRICS
        .iter()
        .zip(per_metric.iter_mut())
        .map(|(name, values)| {
            band(values)
                .map(|band| MetricBand {
                    metric: (*name).to_owned(),
                    band,
                })
                .ok_or_else(|| {
                    err(
                        "training data",
                        format!("{name} is undefined in every window"),
                    )
                })
        })
        .collect()
}
