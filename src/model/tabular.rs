//! A model of the user's own data: the schema, the preprocessing and the
//! fitted model in one artifact (`modelwatch train --data FILE --target
//! COLUMN`), so that whatever runs it takes raw values by column name.
//!
//! The preprocessing is scikit-learn's usual one and lives in the
//! artifact ([`Encoding`]): numeric columns standardised (`StandardScaler`:
//! population standard deviation; a constant column keeps scale 1),
//! categorical ones one-hot encoded over the training levels (a level never
//! seen encodes as all zeros, `handle_unknown="ignore"`).
//!
//! - Regression: ordinary least squares with intercept (linfa-linear) on
//!   that encoding with the first level of each categorical column dropped
//!   (`drop="first"`), which the intercept makes redundant; OLS predictions
//!   do not depend on which level is dropped nor on the scaling.
//! - Classification: logistic regression (linfa-logistic) with
//!   scikit-learn's default objective, `C = 1`: the summed log loss plus
//!   half the squared norm of the weights, the intercept not penalised;
//!   binary (one weight vector, the second class positive) or multinomial
//!   (softmax over every class), on the full one-hot encoding.
//!
//! Running such an artifact in the pipeline comes next (issue 20); today
//! `run` refuses it, saying so (`LinearModel::load`).

use linfa::traits::Fit;
use linfa::DatasetBase;
use ndarray::{Array1, Array2, ArrayView1, Axis};
use serde::{Deserialize, Serialize};

use crate::core::table::{names_of, quoted, ColumnKind, ColumnSchema, Table, Values};

/// Most model inputs (after one-hot encoding) a fit takes.
pub const MAX_INPUTS: usize = 2_000;

/// Most cells (rows x inputs) of the encoded training data: 2 GiB of f64,
/// which a fit holds about twice.
pub const MAX_CELLS: usize = 1 << 28;

/// The artifact format of a model of the user's own data.
pub const TABULAR_FORMAT: &str = "modelwatch-tabular/1";

/// What is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Classification,
}

/// How one feature column becomes model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Encoding {
    /// `(x - mean) / scale`: one input.
    Standardise { mean: f64, scale: f64 },
    /// One input per level of `levels[first..]`: 1 for the row's level.
    OneHot { first: usize },
}

/// A feature column with its encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    #[serde(flatten)]
    pub column: ColumnSchema,
    pub encoding: Encoding,
}

/// The fitted model on the encoded inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fitted {
    /// `intercept + coefficients · x`.
    Linear {
        intercept: f64,
        coefficients: Vec<f64>,
    },
    /// Binary: P(classes[1]) = σ(intercept + w · x). Multinomial:
    /// softmax over the classes of `intercepts[k] + weights[k] · x`.
    Logistic {
        classes: Vec<String>,
        intercepts: Vec<f64>,
        weights: Vec<Vec<f64>>,
    },
}

/// Facts about the fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub rows: usize,
    /// Rows left out for a missing value.
    pub omitted: usize,
    /// sha256 of the CSV.
    pub data_sha256: String,
    /// R² (regression) or accuracy (classification) on the training rows.
    pub score: f64,
    /// Mean log loss on the training rows (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_loss: Option<f64>,
    pub fitted_with: String,
}

/// The training distribution of one column (or of the prediction), as
/// the monitor compares windows with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// `quantiles`: every training value sorted when there are at most
    /// [`MAX_REFERENCE_VALUES`], else that many evenly spaced quantiles
    /// (`numpy.quantile`, linear); `std` with ddof 0 over every value.
    Numeric { quantiles: Vec<f64>, std: f64 },
    /// Training rows per level, in the levels' order.
    Categorical { counts: Vec<u64> },
}

/// Most values a numeric [`Distribution`] keeps.
pub const MAX_REFERENCE_VALUES: usize = 10_000;

/// A window metric's band over bootstrap windows of the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricBand {
    pub metric: String,
    #[serde(flatten)]
    pub band: super::baseline::Band,
}

/// The monitor's reference: the training distribution of every feature
/// (in the order of `features`) and of the prediction (a regression's
/// values; a classifier's predicted classes), and the band of every window
/// metric for windows of `window` rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub features: Vec<Distribution>,
    pub prediction: Distribution,
    pub window: usize,
    pub windows: usize,
    pub seed: u64,
    pub bands: Vec<MetricBand>,
}

/// The artifact: schema, preprocessing, model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabularModel {
    pub format: String,
    pub task: Task,
    pub target: ColumnSchema,
    pub features: Vec<Feature>,
    pub model: Fitted,
    pub training: Training,
    /// What the monitor compares windows with (`monitor::reference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

/// Truths and model outputs of a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Outputs {
    Regression {
        truth: Vec<f64>,
        predictions: Vec<f64>,
    },
    Classification {
        /// Class index of each row.
        truth: Vec<usize>,
        /// One probability per class.
        probabilities: Vec<Vec<f64>>,
    },
}

/// Why a table cannot be fitted: the problem, naming the column.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FitError(pub String);

/// The target's classes (classification) or values (regression).
enum Target {
    Values(Array1<f64>),
    Classes(Vec<String>, Vec<usize>),
}

impl TabularModel {
    /// Fits a model predicting `target` from every other column of `table`.
    /// `task` defaults to classification for a categorical target and
    /// regression for a numeric one.
    ///
    /// Returns the model's outputs on the training rows too: the encoded
    /// inputs, the largest buffer of a fit, are dropped before the caller
    /// computes anything else from them.
    pub fn fit(
        table: &Table,
        target: &str,
        task: Option<Task>,
    ) -> Result<(TabularModel, Outputs), FitError> {
        let Some((t, target_col)) = table.column(target) else {
            return Err(FitError(format!(
                "--target {}: no such column; the columns are {}",
                quoted(target),
                table.names()
            )));
        };
        let task = task.unwrap_or(match target_col.schema.kind {
            ColumnKind::Numeric => Task::Regression,
            ColumnKind::Categorical { .. } => Task::Classification,
        });
        let y = target_of(target_col, task)?;
        let features: Vec<Feature> = table
            .columns
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != t)
            .map(|(_, c)| feature_of(c, task))
            .collect();
        let inputs: Vec<&Values> = table
            .columns
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != t)
            .map(|(_, c)| &c.values)
            .collect();
        let n_inputs: usize = features.iter().map(width).sum();
        if n_inputs > MAX_INPUTS || n_inputs.saturating_mul(table.rows) > MAX_CELLS {
            return Err(FitError(format!(
                "{} rows x {n_inputs} model inputs (numeric columns, plus one per level of \
                 each categorical column) is more than this fit takes: at most {MAX_INPUTS} \
                 inputs and {MAX_CELLS} cells (2 GiB); fewer rows, fewer levels (--max-levels) \
                 or an --id column",
                table.rows
            )));
        }
        let x = encode_columns(&features, &inputs, table.rows);
        let (model, x) = match &y {
            Target::Values(y) => fit_linear(x, y)?,
            Target::Classes(classes, y) => fit_logistic(x, classes, y)?,
        };
        let mut m = TabularModel {
            format: TABULAR_FORMAT.to_owned(),
            task,
            target: target_col.schema.clone(),
            features,
            model,
            reference: None,
            training: Training {
                rows: table.rows,
                omitted: table.omitted,
                data_sha256: table.sha256.clone(),
                score: 0.0,
                log_loss: None,
                fitted_with: format!("modelwatch {}", env!("CARGO_PKG_VERSION")),
            },
        };
        let outputs = match y {
            Target::Values(y) => Outputs::Regression {
                predictions: m.predict_encoded(&x).to_vec(),
                truth: y.to_vec(),
            },
            Target::Classes(_, truth) => Outputs::Classification {
                probabilities: m
                    .probabilities_encoded(&x)
                    .rows()
                    .into_iter()
                    .map(|r| r.to_vec())
                    .collect(),
                truth,
            },
        };
        drop(x);
        match &outputs {
            Outputs::Regression { truth, predictions } => {
                m.training.score = super::r2_score(
                    ArrayView1::from(truth.as_slice()),
                    ArrayView1::from(predictions.as_slice()),
                );
            }
            Outputs::Classification {
                truth,
                probabilities,
            } => {
                let n = truth.len() as f64;
                let right = truth
                    .iter()
                    .zip(probabilities)
                    .filter(|(c, p)| argmax(ArrayView1::from(p.as_slice())) == **c)
                    .count();
                let loss: f64 = truth
                    .iter()
                    .zip(probabilities)
                    .map(|(c, p)| -p[*c].max(1e-300).ln())
                    .sum();
                m.training.score = right as f64 / n;
                m.training.log_loss = Some(loss / n);
            }
        }
        let finite = match &outputs {
            Outputs::Regression { predictions, .. } => predictions.iter().all(|v| v.is_finite()),
            Outputs::Classification { probabilities, .. } => {
                probabilities.iter().flatten().all(|v| v.is_finite())
            }
        };
        if !finite
            || !m.training.score.is_finite()
            || m.training.log_loss.is_some_and(|l| !l.is_finite())
        {
            return Err(FitError(
                "the fit gave non-finite figures: values too large for it (|x| near 1e150 \
                 or more)"
                    .into(),
            ));
        }
        Ok((m, outputs))
    }

    /// Number of model inputs after encoding.
    pub fn n_inputs(&self) -> usize {
        self.features.iter().map(width).sum()
    }

    /// Regression predictions of encoded rows.
    pub fn predict_encoded(&self, x: &Array2<f64>) -> Array1<f64> {
        match &self.model {
            Fitted::Linear {
                intercept,
                coefficients,
            } => x.dot(&ArrayView1::from(coefficients)) + *intercept,
            Fitted::Logistic { .. } => {
                // The predicted class's index, as a number.
                self.probabilities_encoded(x)
                    .rows()
                    .into_iter()
                    .map(|r| argmax(r) as f64)
                    .collect()
            }
        }
    }

    /// Class probabilities of encoded rows (one column per class); for a
    /// regression model, one column of predictions.
    pub fn probabilities_encoded(&self, x: &Array2<f64>) -> Array2<f64> {
        match &self.model {
            Fitted::Linear { .. } => self.predict_encoded(x).insert_axis(Axis(1)),
            Fitted::Logistic {
                intercepts,
                weights,
                ..
            } => {
                let w = Array2::from_shape_fn((weights[0].len(), weights.len()), |(i, k)| {
                    weights[k][i]
                });
                let mut h = x.dot(&w) + ArrayView1::from(intercepts);
                if weights.len() == 1 {
                    let p1 = h.column(0).mapv(|z| 1.0 / (1.0 + (-z).exp()));
                    let mut out = Array2::zeros((x.nrows(), 2));
                    out.column_mut(1).assign(&p1);
                    out.column_mut(0).assign(&p1.mapv(|p| 1.0 - p));
                    return out;
                }
                for mut row in h.rows_mut() {
                    let max = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                    row.mapv_inplace(|z| (z - max).exp());
                    let sum = row.sum();
                    row.mapv_inplace(|e| e / sum);
                }
                h
            }
        }
    }

    /// Writes the artifact (beside and renamed; a link, FIFO or device at
    /// the path is refused).
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let json = serde_json::to_string_pretty(self).expect("a model always serializes");
        crate::core::output_file::replace(path, (json + "\n").as_bytes())
    }
}

fn argmax(row: ArrayView1<f64>) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 {
                (i, p)
            } else {
                best
            }
        })
        .0
}

/// The target as values or classes, refused when it cannot be learned.
fn target_of(c: &crate::core::table::Column, task: Task) -> Result<Target, FitError> {
    let name = quoted(&c.schema.name);
    match (task, &c.values, &c.schema.kind) {
        (Task::Regression, Values::Numeric(v), _) => {
            let first = v[0];
            if v.iter().all(|x| *x == first) {
                return Err(FitError(format!(
                    "target {name} is constant ({first}): nothing to learn"
                )));
            }
            Ok(Target::Values(Array1::from(v.clone())))
        }
        (Task::Regression, Values::Categorical(_), _) => Err(FitError(format!(
            "target {name} is not numeric: --task regression needs numbers \
             (--task classification for classes)"
        ))),
        (Task::Classification, Values::Categorical(v), ColumnKind::Categorical { levels }) => {
            classes_of(
                &name,
                levels.clone(),
                v.iter().map(|&i| i as usize).collect(),
            )
        }
        (Task::Classification, Values::Numeric(v), _) => {
            // Numbers as classes: each distinct value is one, in numeric order.
            // -0 and 0 are one class (`+ 0.0` makes -0 into 0).
            let v: Vec<f64> = v.iter().map(|x| x + 0.0).collect();
            let mut distinct: Vec<f64> = v.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if distinct.len() > 100 {
                return Err(FitError(format!(
                    "target {name} has {} distinct numbers: too many classes (at most 100); \
                     --task regression?",
                    distinct.len()
                )));
            }
            let idx = v
                .iter()
                .map(|x| {
                    distinct
                        .binary_search_by(|d| d.total_cmp(x))
                        .expect("every value is among the distinct ones")
                })
                .collect();
            classes_of(&name, distinct.iter().map(|d| d.to_string()).collect(), idx)
        }
        (Task::Classification, Values::Categorical(_), ColumnKind::Numeric) => {
            unreachable!("a categorical column has levels")
        }
    }
}

/// Classes present in the data (levels that no row has are dropped).
fn classes_of(name: &str, levels: Vec<String>, idx: Vec<usize>) -> Result<Target, FitError> {
    let mut used = vec![false; levels.len()];
    for &i in &idx {
        used[i] = true;
    }
    let mut new_index = vec![0; levels.len()];
    let mut classes = Vec::new();
    for (i, l) in levels.into_iter().enumerate() {
        if used[i] {
            new_index[i] = classes.len();
            classes.push(l);
        }
    }
    if classes.len() < 2 {
        return Err(FitError(format!(
            "target {name} has one class ({}): a classifier needs at least two",
            names_of(classes.iter().map(String::as_str))
        )));
    }
    Ok(Target::Classes(
        classes,
        idx.into_iter().map(|i| new_index[i]).collect(),
    ))
}

/// The encoding of a feature column, from its training values.
fn feature_of(c: &crate::core::table::Column, task: Task) -> Feature {
    let encoding = match &c.values {
        Values::Numeric(v) => {
            let col = ArrayView1::from(v);
            let mean = col.mean().unwrap_or(0.0);
            let std = col.std(0.0);
            Encoding::Standardise {
                mean,
                scale: if std > 0.0 { std } else { 1.0 },
            }
        }
        Values::Categorical(_) => Encoding::OneHot {
            first: usize::from(task == Task::Regression),
        },
    };
    Feature {
        column: c.schema.clone(),
        encoding,
    }
}

/// Inputs one feature takes.
fn width(f: &Feature) -> usize {
    match (&f.encoding, &f.column.kind) {
        (Encoding::Standardise { .. }, _) => 1,
        (Encoding::OneHot { first }, ColumnKind::Categorical { levels }) => {
            levels.len().saturating_sub(*first)
        }
        (Encoding::OneHot { .. }, ColumnKind::Numeric) => 0,
    }
}

/// The design matrix: every feature's inputs side by side.
fn encode_columns(features: &[Feature], values: &[&Values], rows: usize) -> Array2<f64> {
    let n: usize = features.iter().map(width).sum();
    let mut x = Array2::zeros((rows, n));
    let mut at = 0;
    for (f, v) in features.iter().zip(values) {
        match (&f.encoding, v) {
            (Encoding::Standardise { mean, scale }, Values::Numeric(v)) => {
                for (r, value) in v.iter().enumerate() {
                    x[[r, at]] = (value - mean) / scale;
                }
            }
            (Encoding::OneHot { first }, Values::Categorical(v)) => {
                for (r, &level) in v.iter().enumerate() {
                    let level = level as usize;
                    if level != u32::MAX as usize && level >= *first {
                        x[[r, at + level - first]] = 1.0;
                    }
                }
            }
            _ => unreachable!("an encoding matches its column's type"),
        }
        at += width(f);
    }
    x
}

/// Fits OLS on `x` (moved in, and handed back: it is the largest buffer).
///
/// Inputs that are constant (a constant column, a level no kept row has)
/// or a linear combination of the inputs before them (a column repeated,
/// or scaled and shifted) are left out of the fit with a coefficient of 0
/// ([`independent_inputs`]). OLS predictions are the projection of the
/// target on the span of the inputs, which those do not change, so the
/// predictions equal those of scikit-learn's minimum-norm solution; linfa's
/// QR would divide by a zero pivot instead (coefficients of 1e14 fitting
/// rounding noise, or "non-invertible").
fn fit_linear(x: Array2<f64>, y: &Array1<f64>) -> Result<(Fitted, Array2<f64>), FitError> {
    let kept = independent_inputs(&x);
    let p = x.ncols();
    let ols = |data: &DatasetBase<Array2<f64>, Array1<f64>>| {
        linfa_linear::LinearRegression::new()
            .fit(data)
            .map_err(|e| FitError(format!("the least-squares fit failed: {e}")))
    };
    let (coefficients, intercept, x) = if kept.is_empty() {
        // Every input constant: the mean predicts best.
        (vec![0.0; p], y.mean().unwrap_or(0.0), x)
    } else if kept.len() == p {
        let data = DatasetBase::new(x, y.clone());
        let fit = ols(&data)?;
        (fit.params().to_vec(), fit.intercept(), data.records)
    } else {
        let data = DatasetBase::new(x.select(Axis(1), &kept), y.clone());
        let fit = ols(&data)?;
        let mut coefficients = vec![0.0; p];
        for (&j, c) in kept.iter().zip(fit.params()) {
            coefficients[j] = *c;
        }
        (coefficients, fit.intercept(), x)
    };
    if coefficients.iter().any(|c| !c.is_finite()) || !intercept.is_finite() {
        return Err(FitError(
            "the least-squares fit gave non-finite coefficients (values too large?)".into(),
        ));
    }
    Ok((
        Fitted::Linear {
            intercept,
            coefficients,
        },
        x,
    ))
}

/// An input is left out when all but this share of its variance is
/// explained by the inputs before it (and the intercept).
const DEPENDENT_SHARE: f64 = 1e-9;

/// The inputs that are not a linear combination of the intercept and the
/// inputs kept before them, in order: an incremental Cholesky
/// factorisation of the centred Gram matrix `XᵀX - n·μμᵀ`, an input kept
/// when its residual variance after the kept ones is more than
/// [`DEPENDENT_SHARE`] of its variance.
fn independent_inputs(x: &Array2<f64>) -> Vec<usize> {
    let (n, p) = x.dim();
    let Some(mean) = x.mean_axis(Axis(0)) else {
        return Vec::new();
    };
    let mut g = x.t().dot(x);
    for i in 0..p {
        for j in 0..p {
            g[[i, j]] -= n as f64 * mean[i] * mean[j];
        }
    }
    let mut kept: Vec<usize> = Vec::new();
    // Row a of the Cholesky factor over the kept inputs (a + 1 entries).
    let mut l: Vec<Vec<f64>> = Vec::new();
    for j in 0..p {
        let variance = g[[j, j]];
        let mut z = Vec::with_capacity(kept.len() + 1);
        for (a, &ka) in kept.iter().enumerate() {
            let v = g[[ka, j]] - (0..a).map(|b| l[a][b] * z[b]).sum::<f64>();
            z.push(v / l[a][a]);
        }
        let residual = variance - z.iter().map(|v| v * v).sum::<f64>();
        if variance > 0.0 && residual > DEPENDENT_SHARE * variance {
            z.push(residual.sqrt());
            l.push(z);
            kept.push(j);
        }
    }
    kept
}

/// Gradient tolerance and iteration bound of the logistic fits: far
/// tighter than linfa's defaults (1e-4, 100), so that the probabilities
/// are those of the optimum, as scikit-learn's are to its own tolerance.
const LOGISTIC_TOLERANCE: f64 = 1e-9;
const LOGISTIC_MAX_ITERATIONS: u64 = 10_000;

/// Fits the logistic regression on `x` (moved in, and handed back).
fn fit_logistic(
    x: Array2<f64>,
    classes: &[String],
    y: &[usize],
) -> Result<(Fitted, Array2<f64>), FitError> {
    let failed = |e: linfa_logistic::error::Error| {
        FitError(format!("the logistic regression fit failed: {e}"))
    };
    if classes.len() == 2 {
        let data = DatasetBase::new(x, Array1::from(y.to_vec()));
        let fit = linfa_logistic::LogisticRegression::default()
            .alpha(1.0)
            .gradient_tolerance(LOGISTIC_TOLERANCE)
            .max_iterations(LOGISTIC_MAX_ITERATIONS)
            .fit(&data)
            .map_err(failed)?;
        // linfa calls the larger class (by count) positive: weights for
        // P(classes[1]) are the negated ones when class 0 is.
        let sign = if fit.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        let fitted = Fitted::Logistic {
            classes: classes.to_vec(),
            intercepts: vec![sign * fit.intercept()],
            weights: vec![fit.params().iter().map(|w| sign * w).collect()],
        };
        return Ok((fitted, data.records));
    }
    let data = DatasetBase::new(x, Array1::from(y.to_vec()));
    let fit = linfa_logistic::MultiLogisticRegression::default()
        .alpha(1.0)
        .gradient_tolerance(LOGISTIC_TOLERANCE)
        .max_iterations(LOGISTIC_MAX_ITERATIONS)
        .fit(&data)
        .map_err(failed)?;
    // linfa's classes are the distinct targets in order: 0..k here.
    let params = fit.params();
    let fitted = Fitted::Logistic {
        classes: classes.to_vec(),
        intercepts: fit.intercept().to_vec(),
        weights: (0..classes.len())
            .map(|k| params.column(k).to_vec())
            .collect(),
    };
    Ok((fitted, data.records))
}
