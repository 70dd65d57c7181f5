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
//! `run --data FILE --target COLUMN --model ARTIFACT` runs one
//! ([`TabularModel::load`] reads and checks it). A row reaches
//! [`TabularModel::predict_row`] in the order of `features`: a numeric
//! column's raw value, a categorical one's index into its training levels
//! (an index past them for a level the training data did not have: it
//! encodes as all zeros, as scikit-learn's `handle_unknown="ignore"`).

use linfa::traits::Fit;
use linfa::DatasetBase;
use ndarray::{Array1, Array2, ArrayView1, Axis};
use serde::{Deserialize, Serialize};

use crate::core::messages::Probabilities;
use crate::core::schema::WireSchema;
use crate::core::table::{names_of, quoted, ColumnKind, ColumnSchema, Table, Values};

/// Largest artifact of this kind [`TabularModel::load`] reads: the
/// reference keeps up to [`MAX_REFERENCE_VALUES`] numbers per column (one
/// of 50 numeric columns is about 2.5 MB).
pub const MAX_TABULAR_ARTIFACT_BYTES: u64 = 64 << 20;

/// Most JSON values an artifact may hold (1,000 columns of 2,000 quantiles
/// is 2 million): a bound on the memory its parse takes (tens of bytes a
/// value), whatever the text.
pub const MAX_ARTIFACT_NODES: usize = 4_000_000;

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
// Unknown fields: see `TabularModel::load` (serde's `deny_unknown_fields`
// does not work with `flatten`).
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
    /// A model exported to ONNX, run by ONNX Runtime ([`super::onnx`]):
    /// it takes the raw values (the encodings above are the training
    /// data's statistics only: the prediction form's defaults and the
    /// wire's bounds).
    Onnx(super::onnx::OnnxModel),
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

/// `k` of the sorted `values` at evenly spaced ranks (the nearest rank to
/// `i (n - 1) / (k - 1)`, the first and the last included), or all of them
/// when there are at most `k`: training values only, so a column of few
/// values keeps those values.
pub fn thin_sorted(values: &[f64], k: usize) -> Vec<f64> {
    let n = values.len();
    if n <= k || k < 2 {
        return values.to_vec();
    }
    (0..k)
        .map(|i| values[(i * (n - 1) + (k - 1) / 2) / (k - 1)])
        .collect()
}

/// Most values of a numeric [`Distribution`] an artifact may hold: what
/// the build before [`MAX_REFERENCE_VALUES`] was lowered wrote. The monitor
/// thins them to [`MAX_REFERENCE_VALUES`].
pub const MAX_READ_REFERENCE_VALUES: usize = 10_000;

/// Most values a numeric [`Distribution`] keeps. Each window's KS test
/// and Wasserstein distance walk them (and statrs' KS copies and sorts
/// them): at 10,000, the drift of a 50-column window took most of a core
/// and the run a sixth of the diabetes rate (perf; BENCHMARKS.md). 2,000
/// quantiles put the distribution function within 1/2,000 of every
/// value's, thirty times below what a 500-row window's KS can tell apart
/// (its 5% critical D is about 0.06).
pub const MAX_REFERENCE_VALUES: usize = 2_000;

/// A window metric's band over bootstrap windows of the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Unknown fields: see `TabularModel::load`.
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

impl Reference {
    /// The bands as the monitor's [`super::baseline::Baseline`] (the
    /// diabetes model's form): exactly one band for each of mae, rmse, r2,
    /// bias and max_error, and for a classifier (`classifier`) one for each
    /// of its window figures too, and no other.
    pub fn baseline(&self, classifier: bool) -> Result<super::baseline::Baseline, String> {
        const REGRESSION: [&str; 5] = ["mae", "rmse", "r2", "bias", "max_error"];
        let names: Vec<&str> = match classifier {
            false => REGRESSION.to_vec(),
            true => REGRESSION
                .into_iter()
                .chain(CLASSIFICATION_METRICS)
                .collect(),
        };
        if self.bands.len() != names.len() {
            return Err(format!(
                "reference.bands has {} bands; a {}'s are {}{}",
                self.bands.len(),
                if classifier {
                    "classifier"
                } else {
                    "regression"
                },
                names.join(", "),
                if classifier {
                    " (an artifact of an earlier build: train it again)"
                } else {
                    ""
                }
            ));
        }
        let band = |name: &str| {
            self.bands
                .iter()
                .find(|b| b.metric == name)
                .map(|b| b.band)
                .ok_or_else(|| format!("reference.bands has no band for {name}"))
        };
        let classification = match classifier {
            false => None,
            true => Some(Box::new(super::baseline::ClassificationBands {
                accuracy: band("accuracy")?,
                log_loss: band("log_loss")?,
                roc_auc: band("roc_auc")?,
                precision: band("precision")?,
                recall: band("recall")?,
                f1: band("f1")?,
                brier: band("brier")?,
            })),
        };
        Ok(super::baseline::Baseline {
            window: self.window,
            windows: self.windows,
            seed: self.seed,
            mae: band("mae")?,
            rmse: band("rmse")?,
            r2: band("r2")?,
            bias: band("bias")?,
            max_error: band("max_error")?,
            classification,
        })
    }
}

/// The figures of a classifier's window that the reference keeps a band
/// for, in order (besides the five of a regression, over class indices).
pub const CLASSIFICATION_METRICS: [&str; 7] = [
    "accuracy",
    "log_loss",
    "roc_auc",
    "precision",
    "recall",
    "f1",
    "brier",
];

/// The probability of the positive class at which a binary classifier
/// predicts it (scikit-learn's `predict`; the bands are for it too).
pub const DECISION_THRESHOLD: f64 = 0.5;

impl Training {
    /// The facts of a model of `table`, before its score is known
    /// ([`TabularModel::score`]); `by` says what made it (with this
    /// build's version).
    fn of(table: &Table, by: &str) -> Training {
        Training {
            rows: table.rows,
            omitted: table.omitted,
            data_sha256: table.sha256.clone(),
            score: 0.0,
            log_loss: None,
            fitted_with: format!("{by} {}", env!("CARGO_PKG_VERSION")),
        }
    }
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
    /// An ONNX model's session, once opened ([`TabularModel::open_onnx`]).
    #[serde(skip)]
    pub session: super::onnx::Opened,
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
        let (t, target_col) = target_column(table, target)?;
        let task = task.unwrap_or(match target_col.schema.kind {
            ColumnKind::Numeric => Task::Regression,
            ColumnKind::Categorical { .. } => Task::Classification,
        });
        let y = target_of(target_col, task)?;
        let (features, inputs) = features_of(table, t, task);
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
        let m = TabularModel {
            format: TABULAR_FORMAT.to_owned(),
            task,
            target: target_col.schema.clone(),
            features,
            model,
            reference: None,
            session: Default::default(),
            training: Training::of(table, "modelwatch"),
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
        m.score(outputs)
    }

    /// Sets the training score (R², or accuracy and log loss) from the
    /// model's `outputs` on the training rows; refuses figures that are
    /// not finite.
    fn score(mut self, outputs: Outputs) -> Result<(TabularModel, Outputs), FitError> {
        let m = &mut self;
        match &outputs {
            Outputs::Regression { truth, predictions } => {
                m.training.score = super::artifact::r2_score(
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
                    .filter(|(c, p)| predicted_class(p, DECISION_THRESHOLD) == **c)
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
                "the fit gave non-finite figures: values too large or too far apart for it".into(),
            ));
        }
        Ok((self, outputs))
    }

    /// Wraps the ONNX model at `onnx` (exported from a model fitted on
    /// `table`) as a model of `table` predicting `target`: its inputs and
    /// output checked against the columns, run over every row for the
    /// outputs the reference is made of. `out` is where the artifact will
    /// be: the file is named relative to it when beside it. The task is a
    /// classification for a categorical target or a model with a
    /// probabilities output, unless `task` says.
    pub fn wrap_onnx(
        table: &Table,
        target: &str,
        task: Option<Task>,
        onnx: &std::path::Path,
        out: &std::path::Path,
        options: &super::onnx::RuntimeOptions,
    ) -> Result<(TabularModel, Outputs), FitError> {
        use super::onnx::{OnnxModel, Session};
        let (t, target_col) = target_column(table, target)?;
        let shown = crate::core::text::shown_path(onnx);
        let fail = |e: super::onnx::OnnxError| FitError(format!("--model {e}"));
        let (bytes, sha256) = Session::read(onnx, "--model").map_err(|e| FitError(e.0))?;
        let columns: Vec<(String, ColumnKind)> = table
            .columns
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != t)
            .map(|(_, c)| (c.schema.name.clone(), c.schema.kind.clone()))
            .collect();
        let signature = Session::inspect(&bytes, &shown, &columns, options).map_err(fail)?;
        let task = task.unwrap_or(match (&target_col.schema.kind, &signature.probabilities) {
            (ColumnKind::Categorical { .. }, _) | (_, Some(_)) => Task::Classification,
            _ => Task::Regression,
        });
        let y = target_of(target_col, task)?;
        let output = match (&y, &signature.probabilities, &signature.value) {
            (Target::Classes(classes, _), Some((name, k)), _) => {
                if *k != 0 && *k != classes.len() {
                    return Err(FitError(format!(
                        "--model {shown}: output {} has {k} probability columns, but target {} \
                         has {} classes ({})",
                        quoted(name),
                        quoted(target),
                        classes.len(),
                        names_of(classes.iter().map(String::as_str))
                    )));
                }
                name.clone()
            }
            (Target::Values(_), _, Some(name)) => name.clone(),
            (Target::Classes(..), None, _) => {
                return Err(FitError(format!(
                    "--model {shown}: a classifier needs an output of class probabilities, a \
                     float tensor [rows, classes]; this model has none (--task regression?)"
                )))
            }
            (Target::Values(_), _, None) => {
                return Err(FitError(format!(
                    "--model {shown}: a regression needs an output of values, a float tensor \
                     [rows] or [rows, 1]; this model has none (--task classification?)"
                )))
            }
        };
        let onnx_model = OnnxModel {
            file: stored_path(onnx, out)?,
            sha256,
            inputs: signature.inputs,
            output,
            classes: match &y {
                Target::Classes(classes, _) => Some(classes.clone()),
                Target::Values(_) => None,
            },
        };
        // The model ONNX Runtime loaded for the inspection (loading a large
        // forest takes a second or more): not loaded twice.
        let session =
            Session::from_committed(&onnx_model, signature.committed, &shown, &columns, options)
                .map_err(fail)?
                .with_label(signature.label);
        let (features, inputs) = features_of(table, t, task);
        // What reaches the model from outside is bounded: so is what
        // trains it (a value past the bound would be refused by `run`).
        for (c, v) in columns.iter().zip(&inputs) {
            if let Values::Numeric(x) = v {
                if let Some(i) = x
                    .iter()
                    .position(|x| x.abs() > super::onnx::MAX_ABS_ONNX_INPUT)
                {
                    return Err(FitError(format!(
                        "--data: column {} has {:e} in row {} (of the rows read): beyond ±{:e}, \
                         the largest value an ONNX model is given",
                        quoted(&c.0),
                        x[i],
                        i + 1,
                        super::onnx::MAX_ABS_ONNX_INPUT
                    )));
                }
            }
        }
        // Every training row through the model, a chunk at a time.
        let mut flat = Vec::new();
        let mut row_buf: Vec<Vec<f64>> = Vec::new();
        for start in (0..table.rows).step_by(4096) {
            let end = (start + 4096).min(table.rows);
            row_buf.clear();
            row_buf.extend((start..end).map(|i| {
                inputs
                    .iter()
                    .map(|v| match v {
                        Values::Numeric(x) => x[i],
                        Values::Categorical(l) => l[i] as f64,
                    })
                    .collect()
            }));
            let rows: Vec<&[f64]> = row_buf.iter().map(Vec::as_slice).collect();
            let (values, labels) = session.run_with_labels(&rows).map_err(fail)?;
            check_outputs(&shown, &y, &values, start)?;
            if let (Target::Classes(classes, _), Some(labels)) = (&y, labels) {
                check_class_order(&shown, classes, &values, &labels)?;
            }
            flat.extend(values);
        }
        let outputs = match y {
            Target::Values(y) => Outputs::Regression {
                predictions: flat,
                truth: y.to_vec(),
            },
            // As `run` reads them (a tree ensemble's f32 sums can pass 1).
            Target::Classes(classes, truth) => Outputs::Classification {
                probabilities: flat
                    .chunks_exact(classes.len())
                    .map(|p| normalised(p).to_vec())
                    .collect(),
                truth,
            },
        };
        let m = TabularModel {
            format: TABULAR_FORMAT.to_owned(),
            task,
            target: target_col.schema.clone(),
            features,
            model: Fitted::Onnx(onnx_model),
            reference: None,
            session: super::onnx::Opened::new(session.with_label(None)),
            training: Training::of(table, "ONNX, wrapped by modelwatch"),
        };
        m.score(outputs)
    }

    /// The feature columns' names and kinds, in order.
    pub fn columns(&self) -> Vec<(String, ColumnKind)> {
        self.features
            .iter()
            .map(|f| (f.column.name.clone(), f.column.kind.clone()))
            .collect()
    }

    /// Opens an ONNX model's file for inference (a no-op for the built-in
    /// models): the file named by the artifact at `artifact`, checked to
    /// be the one it was made with and to take the artifact's columns.
    pub fn open_onnx(
        &mut self,
        artifact: &std::path::Path,
        options: &super::onnx::RuntimeOptions,
    ) -> Result<(), super::onnx::OnnxError> {
        if let Fitted::Onnx(m) = &self.model {
            let session = super::onnx::Session::open(m, artifact, &self.columns(), options)?;
            self.session = super::onnx::Opened::new(session);
        }
        Ok(())
    }

    /// What fitted it: `linear`, `logistic` or `onnx` (the artifact's
    /// `model.kind`).
    pub fn kind(&self) -> &'static str {
        match self.model {
            Fitted::Linear { .. } => "linear",
            Fitted::Logistic { .. } => "logistic",
            Fitted::Onnx(_) => "onnx",
        }
    }

    /// Whether the model is run by ONNX Runtime.
    pub fn is_onnx(&self) -> bool {
        matches!(self.model, Fitted::Onnx(_))
    }

    /// Number of model inputs after encoding.
    pub fn n_inputs(&self) -> usize {
        self.features.iter().map(width).sum()
    }

    /// The prediction for one row of raw values in the order of
    /// `features` (see the module doc): the regression's value, or a
    /// classifier's predicted class index. Allocates nothing for a
    /// regression.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        match &self.model {
            Fitted::Linear {
                intercept,
                coefficients,
            } => {
                let mut sum = *intercept;
                self.for_each_input(row, |i, x| sum += coefficients[i] * x);
                sum
            }
            Fitted::Logistic { .. } => {
                let mut p = Probabilities::new();
                self.probabilities_row(row, &mut p);
                predicted_class(&p, DECISION_THRESHOLD) as f64
            }
            Fitted::Onnx(_) => match self.predict_rows(&[row]) {
                Ok((y, _)) => y[0],
                Err(e) => {
                    tracing::warn!(error = %e, "ONNX model: no prediction");
                    f64::NAN
                }
            },
        }
    }

    /// Predictions of `rows` (raw values, see [`TabularModel::predict_row`])
    /// and, for a classifier, their class probabilities: an ONNX model is
    /// run once for all of them. An error (the ONNX model failed, or gave
    /// a value that is not finite or beyond the bound of a prediction)
    /// says which.
    pub fn predict_rows(
        &self,
        rows: &[&[f64]],
    ) -> Result<(Vec<f64>, Vec<Probabilities>), super::onnx::OnnxError> {
        use super::onnx::OnnxError;
        let Fitted::Onnx(_) = &self.model else {
            let mut probabilities = Vec::new();
            let predictions = rows
                .iter()
                .map(|r| match self.classes() {
                    Some(_) => {
                        let mut p = Probabilities::new();
                        self.probabilities_row(r, &mut p);
                        let y = predicted_class(&p, DECISION_THRESHOLD) as f64;
                        probabilities.push(p);
                        y
                    }
                    None => self.predict_row(r),
                })
                .collect();
            return Ok((predictions, probabilities));
        };
        let Some(session) = self.session.get() else {
            return Err(OnnxError("the ONNX model was not opened".into()));
        };
        let flat = session.run(rows)?;
        let k = session.classes();
        if let Some((_, what)) = bad_output(&flat, k) {
            return Err(OnnxError(format!("the ONNX model gives {what}")));
        }
        if k == 0 {
            return Ok((flat, Vec::new()));
        }
        let mut predictions = Vec::with_capacity(rows.len());
        let mut probabilities = Vec::with_capacity(rows.len());
        for row in flat.chunks_exact(k) {
            let p = normalised(row);
            predictions.push(predicted_class(&p, DECISION_THRESHOLD) as f64);
            probabilities.push(p);
        }
        Ok((predictions, probabilities))
    }

    /// A classifier's class probabilities for one row of raw values (in
    /// the order of `features`) into `out`, in the order of its classes;
    /// `out` is left empty for a regression. The same figures as
    /// [`TabularModel::probabilities_encoded`], summed input by input.
    pub fn probabilities_row(&self, row: &[f64], out: &mut Probabilities) {
        out.clear();
        if let Fitted::Onnx(m) = &self.model {
            if m.classes.is_some() {
                match self.predict_rows(&[row]) {
                    Ok((_, mut p)) => *out = p.pop().unwrap_or_default(),
                    Err(e) => tracing::warn!(error = %e, "ONNX model: no probabilities"),
                }
            }
            return;
        }
        let Fitted::Logistic {
            intercepts,
            weights,
            ..
        } = &self.model
        else {
            return;
        };
        out.extend(intercepts.iter().copied());
        self.for_each_input(row, |i, x| {
            for (h, w) in out.iter_mut().zip(weights) {
                *h += w[i] * x;
            }
        });
        if weights.len() == 1 {
            let p1 = 1.0 / (1.0 + (-out[0]).exp());
            out[0] = 1.0 - p1;
            out.push(p1);
            return;
        }
        let max = out.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        out.iter_mut().for_each(|z| *z = (*z - max).exp());
        let sum: f64 = out.iter().sum();
        out.iter_mut().for_each(|e| *e /= sum);
    }

    /// A classifier's classes, in the order of its probabilities.
    pub fn classes(&self) -> Option<&[String]> {
        match &self.model {
            Fitted::Logistic { classes, .. } => Some(classes),
            Fitted::Linear { .. } => None,
            Fitted::Onnx(m) => m.classes.as_deref(),
        }
    }

    /// The model inputs of one row (see [`TabularModel::predict_row`]).
    pub fn encode_row(&self, row: &[f64]) -> Vec<f64> {
        let mut x = vec![0.0; self.n_inputs()];
        self.for_each_input(row, |i, v| x[i] = v);
        x
    }

    /// Calls `f(input, value)` for every input of `row` that is not 0 by
    /// construction: a numeric column's standardised value (none for a
    /// missing one, NaN: it reads as the training mean, as scikit-learn's
    /// `SimpleImputer(strategy="mean")` before the scaler), the input of a
    /// categorical column's level (1; none for the dropped first level, a
    /// level never seen or a missing one).
    fn for_each_input(&self, row: &[f64], mut f: impl FnMut(usize, f64)) {
        let mut at = 0;
        for (feature, &v) in self.features.iter().zip(row) {
            let w = width(feature);
            match feature.encoding {
                // A missing value (NaN) reads as the training mean: input 0.
                Encoding::Standardise { .. } if v.is_nan() => {}
                Encoding::Standardise { mean, scale } => f(at, (v - mean) / scale),
                Encoding::OneHot { first } => {
                    if let Some(k) = level_input(v, first, w) {
                        f(at + k, 1.0);
                    }
                }
            }
            at += w;
        }
    }

    /// The schema of this model's messages on the wire, with the bound of
    /// each numeric column's value ([`TabularModel::input_bounds`]).
    pub fn wire_schema(&self) -> WireSchema {
        // The fitted model, as the artifact writes it: its preprocessing
        // and parameters.
        let fitted = serde_json::to_string(&(&self.features, &self.model))
            .expect("a checked model always serializes");
        WireSchema::new(
            self.features.iter().map(|f| f.column.clone()).collect(),
            &self.target.name,
            self.classes().map(<[String]>::to_vec),
            &fitted,
        )
        .with_bounds(self.input_bounds())
    }

    /// Per feature column, the largest |value| whose term in the model's
    /// sum stays within its share of the output's bound: a regression's
    /// prediction within [`MAX_ABS_PREDICTION`] / 2 from its other terms,
    /// a classifier's scores finite. A value from outside (the wire) past
    /// it is refused, so that no prediction overflows. Categorical columns
    /// (and a numeric column the model gives no weight): no bound.
    ///
    /// [`MAX_ABS_PREDICTION`]: super::MAX_ABS_PREDICTION
    pub fn input_bounds(&self) -> Vec<f64> {
        if let Fitted::Onnx(_) = &self.model {
            // What the model does with a value is its own: the bound keeps
            // every value finite in the model's f32 inputs, and a prediction
            // beyond bounds is refused where it is made.
            return self
                .features
                .iter()
                .map(|f| match f.column.kind {
                    ColumnKind::Numeric => super::onnx::MAX_ABS_ONNX_INPUT,
                    ColumnKind::Categorical { .. } => f64::INFINITY,
                })
                .collect();
        }
        let n = self.features.len().max(1) as f64;
        let (total, weight): (f64, Box<dyn Fn(usize) -> f64 + '_>) = match &self.model {
            Fitted::Linear { coefficients, .. } => (
                super::MAX_ABS_PREDICTION / 2.0,
                Box::new(|i| coefficients[i].abs()),
            ),
            Fitted::Logistic { weights, .. } => (
                1e100,
                Box::new(move |i| weights.iter().map(|w| w[i].abs()).fold(0.0, f64::max)),
            ),
            Fitted::Onnx(_) => unreachable!("returned above"),
        };
        let mut at = 0;
        self.features
            .iter()
            .map(|f| {
                let bound = match f.encoding {
                    Encoding::Standardise { mean, scale } if weight(at) > 0.0 => {
                        mean.abs() + total / n * scale / weight(at)
                    }
                    _ => f64::INFINITY,
                };
                at += width(f);
                bound
            })
            .collect()
    }

    /// The feature columns' names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features
            .iter()
            .map(|f| f.column.name.clone())
            .collect()
    }

    /// Reads an artifact written by `train --data` and checks it whole
    /// ([`TabularModel::check`]): a regular file of at most
    /// [`MAX_TABULAR_ARTIFACT_BYTES`].
    pub fn load(path: &std::path::Path) -> Result<TabularModel, super::artifact::ModelError> {
        let shown = crate::core::text::sanitize(&path.display().to_string());
        let text = super::artifact::read_bounded(
            path,
            &shown,
            &super::artifact::Bounds {
                key: "data.model",
                limit: MAX_TABULAR_ARTIFACT_BYTES,
                why: "more than an artifact of this kind can be",
                follow_links: false,
            },
        )?;
        let corrupt = |source| super::artifact::ModelError::Corrupt {
            path: shown.clone(),
            source,
        };
        let value = crate::core::json::parse_strict(&text, MAX_ARTIFACT_NODES).map_err(corrupt)?;
        // A field of the wrong type is named by its path.
        let model: TabularModel = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            super::artifact::ModelError::Mismatch {
                path: shown.clone(),
                problem: format!(
                    "{}: {}",
                    crate::core::text::bounded_text(&e.path().to_string(), 128),
                    crate::core::text::bounded_text(&e.inner().to_string(), 200)
                ),
            }
        })?;
        // serde cannot refuse unknown fields beside a flattened one: a
        // field this build does not write is found here instead.
        let written = serde_json::to_value(&model).expect("a model always serializes");
        if let Some(at) = unknown_field(&value, &written, "") {
            return Err(super::artifact::ModelError::Mismatch {
                path: shown,
                problem: format!(
                    "{} is not a field of a {TABULAR_FORMAT:?} artifact",
                    crate::core::text::bounded_text(&at, 128)
                ),
            });
        }
        model
            .check()
            .map_err(|problem| super::artifact::ModelError::Mismatch {
                path: shown,
                problem,
            })?;
        Ok(model)
    }

    /// Everything a run relies on, checked: the format, the schema (names
    /// bounded and distinct, levels bounded and distinct), encodings that
    /// fit their columns, weights of the right sizes, every number finite,
    /// and a reference that matches the features.
    pub fn check(&self) -> Result<(), String> {
        use std::collections::HashSet;
        if self.format != TABULAR_FORMAT {
            return Err(format!(
                "format is {}, this build reads {TABULAR_FORMAT:?}",
                quoted(&self.format)
            ));
        }
        if self.features.is_empty() || self.features.len() > 1000 {
            return Err(format!(
                "has {} feature columns, expected 1 to 1000",
                self.features.len()
            ));
        }
        let mut names = HashSet::new();
        for c in self
            .features
            .iter()
            .map(|f| &f.column)
            .chain([&self.target])
        {
            check_column(c)?;
            if !names.insert(c.name.as_str()) {
                return Err(format!("column {} appears twice", quoted(&c.name)));
            }
        }
        for f in &self.features {
            let ok = match (&f.encoding, &f.column.kind) {
                (Encoding::Standardise { mean, scale }, ColumnKind::Numeric) => {
                    mean.is_finite() && scale.is_finite() && *scale > 0.0
                }
                (Encoding::OneHot { first }, ColumnKind::Categorical { levels }) => {
                    *first <= 1 && *first <= levels.len()
                }
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "the encoding of column {} does not fit it (a numeric column is standardised \
                     with a finite mean and a scale above 0, a categorical one one-hot with a \
                     first of 0 or 1)",
                    quoted(&f.column.name)
                ));
            }
        }
        let n = self.n_inputs();
        if n > MAX_INPUTS {
            return Err(format!("has {n} model inputs, more than {MAX_INPUTS}"));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        match (&self.model, self.task) {
            (
                Fitted::Linear {
                    intercept,
                    coefficients,
                },
                Task::Regression,
            ) => {
                if coefficients.len() != n || !finite(coefficients) || !intercept.is_finite() {
                    return Err(format!(
                        "needs {n} finite coefficients and a finite intercept"
                    ));
                }
                if self.target.kind != ColumnKind::Numeric {
                    return Err("a regression's target must be numeric".into());
                }
            }
            (
                Fitted::Logistic {
                    classes,
                    intercepts,
                    weights,
                },
                Task::Classification,
            ) => {
                let k = if classes.len() == 2 { 1 } else { classes.len() };
                if classes.len() < 2
                    || classes.len() > 10_000
                    || intercepts.len() != k
                    || weights.len() != k
                    || weights.iter().any(|w| w.len() != n || !finite(w))
                    || !finite(intercepts)
                {
                    return Err(format!(
                        "a classifier of {} classes needs {k} finite intercepts and {k} weight vectors of {n}",
                        classes.len()
                    ));
                }
                check_classes(classes, &self.target.kind)?;
            }
            (Fitted::Onnx(m), task) => {
                m.check(&self.columns())?;
                match (&m.classes, task) {
                    (Some(classes), Task::Classification)
                        if (2..=10_000).contains(&classes.len()) =>
                    {
                        check_classes(classes, &self.target.kind)?
                    }
                    (None, Task::Regression) if self.target.kind == ColumnKind::Numeric => {}
                    _ => {
                        return Err(
                            "an ONNX classifier needs 2 to 10000 classes, a regression a numeric \
                             target and none"
                                .into(),
                        )
                    }
                }
            }
            _ => return Err("the model does not fit the task".into()),
        }
        if let Some(r) = &self.reference {
            check_reference(self, r)?;
        }
        let t = &self.training;
        let text_ok = |s: &str| s.len() <= 256 && !s.chars().any(crate::core::text::needs_escape);
        // R² is at most 1, an accuracy between 0 and 1.
        let score_ok = match self.task {
            Task::Regression => t.score <= 1.0,
            Task::Classification => (0.0..=1.0).contains(&t.score),
        };
        if !t.score.is_finite()
            || !score_ok
            || t.log_loss.is_some_and(|l| !l.is_finite() || l < 0.0)
            || !text_ok(&t.data_sha256)
            || !text_ok(&t.fitted_with)
        {
            return Err(
                "training needs a score that is an R² (at most 1) or an accuracy (0 to 1), a \
                 finite log loss of at least 0, and a data_sha256 and fitted_with of at most 256 \
                 plain characters"
                    .into(),
            );
        }
        Ok(())
    }

    /// Regression predictions of encoded rows (not of an ONNX model: NaN).
    fn predict_encoded(&self, x: &Array2<f64>) -> Array1<f64> {
        match &self.model {
            Fitted::Onnx(_) => Array1::from_elem(x.nrows(), f64::NAN),
            Fitted::Linear {
                intercept,
                coefficients,
            } => x.dot(&ArrayView1::from(coefficients)) + *intercept,
            Fitted::Logistic { .. } => {
                // The predicted class's index, as a number.
                self.probabilities_encoded(x)
                    .rows()
                    .into_iter()
                    .map(|r| {
                        predicted_class(
                            r.as_slice().expect("rows of a standard-layout array"),
                            DECISION_THRESHOLD,
                        ) as f64
                    })
                    .collect()
            }
        }
    }

    /// Class probabilities of encoded rows (one column per class); for a
    /// regression model, one column of predictions.
    fn probabilities_encoded(&self, x: &Array2<f64>) -> Array2<f64> {
        match &self.model {
            Fitted::Linear { .. } | Fitted::Onnx(_) => self.predict_encoded(x).insert_axis(Axis(1)),
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

/// The path of the first field of `read` that `written` (the same artifact
/// as this build writes it) does not have, if any.
fn unknown_field(
    read: &serde_json::Value,
    written: &serde_json::Value,
    at: &str,
) -> Option<String> {
    use serde_json::Value;
    match (read, written) {
        (Value::Object(r), Value::Object(w)) => r.iter().find_map(|(k, v)| match w.get(k) {
            // An absent optional field written as null.
            None if v.is_null() => None,
            None => Some(format!("{at}.{k}")),
            Some(wv) => unknown_field(v, wv, &format!("{at}.{k}")),
        }),
        (Value::Array(r), Value::Array(w)) => r
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (rv, wv))| unknown_field(rv, wv, &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// The column `target` of `table` and its index, or an error naming the
/// columns there are.
fn target_column<'a>(
    table: &'a Table,
    target: &str,
) -> Result<(usize, &'a crate::core::table::Column), FitError> {
    table.column(target).ok_or_else(|| {
        FitError(format!(
            "--target {}: no such column; the columns are {}",
            quoted(target),
            table.names()
        ))
    })
}

/// Every column of `table` but the target's (index `t`): its encoding
/// from the training values, and its values.
fn features_of(table: &Table, t: usize, task: Task) -> (Vec<Feature>, Vec<&Values>) {
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != t)
        .map(|(_, c)| (feature_of(c, task), &c.values))
        .unzip()
}

/// How an artifact at `out` names the ONNX file `onnx`: its file name when
/// the two are in one folder (they move together), else its absolute path.
fn stored_path(onnx: &std::path::Path, out: &std::path::Path) -> Result<String, FitError> {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    let file = canonical(onnx).ok_or_else(|| {
        FitError(format!(
            "--model {}: cannot be resolved",
            crate::core::text::shown_path(onnx)
        ))
    })?;
    let out_dir = match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => canonical(p),
        None => canonical(std::path::Path::new(".")),
    };
    let name = match (file.parent(), out_dir) {
        (Some(a), Some(b)) if a == b => file.file_name().map(std::path::PathBuf::from),
        _ => Some(file.clone()),
    };
    name.and_then(|n| n.to_str().map(str::to_owned))
        .filter(|n| !n.chars().any(crate::core::text::needs_escape) && n.len() <= 4096)
        .ok_or_else(|| {
            FitError(format!(
                "--model {}: its path is not printable text of at most 4096 bytes",
                crate::core::text::shown_path(onnx)
            ))
        })
}

/// The outputs of an ONNX model on the training rows from `start` on
/// ([`bad_output`], as `run` requires of every row), else the first row
/// that is not, named.
fn check_outputs(shown: &str, y: &Target, values: &[f64], start: usize) -> Result<(), FitError> {
    let k = match y {
        Target::Values(_) => 0,
        Target::Classes(classes, _) => classes.len(),
    };
    match bad_output(values, k) {
        None => Ok(()),
        Some((i, what)) => Err(FitError(format!(
            "--model {shown}: for row {} of the rows read it gives {what}",
            start + i + 1
        ))),
    }
}

/// The first row of an ONNX model's outputs `values` (one value a row for
/// a regression, `k` = 0; `k` class probabilities a row for a classifier)
/// that is not a finite prediction within [`super::MAX_ABS_PREDICTION`], or
/// not probabilities in [0, 1] summing to 1 (give or take f32 rounding:
/// 1e-6 a value, 1e-3 the sum), and what it gives. One rule for `train`
/// and `run`.
fn bad_output(values: &[f64], k: usize) -> Option<(usize, String)> {
    if k == 0 {
        let max = super::MAX_ABS_PREDICTION;
        let i = values
            .iter()
            .position(|v| !v.is_finite() || v.abs() > max)?;
        return Some((
            i,
            format!("{:e}: not a finite prediction within ±{max:e}", values[i]),
        ));
    }
    values.chunks_exact(k).enumerate().find_map(|(i, p)| {
        let sum: f64 = p.iter().sum();
        let ok = p
            .iter()
            .all(|v| v.is_finite() && (-1e-6..=1.0 + 1e-6).contains(v))
            && (sum - 1.0).abs() <= 1e-3;
        (!ok).then(|| {
            (
                i,
                format!(
                    "{:?} as class probabilities: not in [0, 1] or not summing to 1 (raw \
                     scores? export the probabilities)",
                    &p[..k.min(10)]
                ),
            )
        })
    })
}

/// An ONNX classifier's probabilities of one row (checked to be within
/// [0, 1] and to sum to 1, give or take f32 rounding) as the monitor takes
/// them: clamped to [0, 1] and divided by their sum in f64, so that its
/// checks hold exactly.
fn normalised(row: &[f64]) -> Probabilities {
    let clamped = || row.iter().map(|p| p.clamp(0.0, 1.0));
    let sum: f64 = clamped().sum();
    clamped().map(|p| p / sum).collect()
}

/// A classifier's probability columns are the classes in their order:
/// every row whose label output names a class is a row where that class is
/// the most probable (rows with two classes about equally probable aside).
fn check_class_order(
    shown: &str,
    classes: &[String],
    probabilities: &[f64],
    labels: &[String],
) -> Result<(), FitError> {
    let k = classes.len();
    // Labels that are not classes at all: the model was fitted on other
    // values of the target (class numbers for names, say).
    if let Some(label) = labels.iter().find(|l| !classes.contains(l)) {
        let mut seen: Vec<&str> = labels.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.truncate(20);
        return Err(FitError(format!(
            "--model {shown}: it labels rows {} (its labels: {}), which is not a class of the \
             target ({}): the target column must hold the values the model was fitted on",
            quoted(label),
            names_of(seen.into_iter()),
            names_of(classes.iter().map(String::as_str))
        )));
    }
    for (p, label) in probabilities.chunks_exact(k).zip(labels) {
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
        if p[order[0]] - p[order[1]] < 1e-4 {
            continue;
        }
        if classes[order[0]] != *label {
            return Err(FitError(format!(
                "--model {shown}: it labels a row {} where its probabilities make {} the most \
                 probable: its probability columns are not the target's classes in order ({}); \
                 fit it on the same target",
                quoted(label),
                quoted(&classes[order[0]]),
                names_of(classes.iter().map(String::as_str))
            )));
        }
    }
    Ok(())
}

/// The input of a categorical value `v` (a level index; one past the
/// levels, negative or missing: none) among the `w` inputs of a one-hot column without its `first` levels.
fn level_input(v: f64, first: usize, w: usize) -> Option<usize> {
    if v.is_nan() || v < 0.0 {
        return None; // unseen (or missing)
    }
    (v as usize)
        .checked_sub(first)
        .filter(|k| *k < w && v.fract() == 0.0)
}

/// A column of an artifact: a bounded name, bounded distinct levels.
fn check_column(c: &ColumnSchema) -> Result<(), String> {
    use crate::core::table::{MAX_LEVEL_BYTES, MAX_NAME_BYTES};
    if c.name.is_empty()
        || c.name.len() > MAX_NAME_BYTES
        || c.name.chars().any(crate::core::text::needs_escape)
        || crate::core::table::RESERVED_NAMES.contains(&c.name.as_str())
    {
        return Err(format!(
            "column name {} is empty, longer than {MAX_NAME_BYTES} bytes, reserved or has a \
             control or invisible character",
            quoted(&c.name)
        ));
    }
    if let ColumnKind::Categorical { levels } = &c.kind {
        let mut seen = std::collections::HashSet::new();
        let bad = levels.is_empty()
            || levels.len() > 10_000
            || levels
                .iter()
                .any(|l| l.is_empty() || l.len() > MAX_LEVEL_BYTES || !seen.insert(l.as_str()));
        if bad {
            return Err(format!(
                "column {} needs 1 to 10000 distinct levels of at most {MAX_LEVEL_BYTES} bytes",
                quoted(&c.name)
            ));
        }
    }
    Ok(())
}

/// The reference matches the features (one distribution each, of its
/// type), every figure finite, the quantiles sorted.
fn check_reference(m: &TabularModel, r: &Reference) -> Result<(), String> {
    if r.features.len() != m.features.len() {
        return Err(format!(
            "reference.features has {} distributions for {} features",
            r.features.len(),
            m.features.len()
        ));
    }
    let distribution = |d: &Distribution, kind: &ColumnKind, what: &str| -> Result<(), String> {
        let ok = match (d, kind) {
            (Distribution::Numeric { quantiles, std }, ColumnKind::Numeric) => {
                !quantiles.is_empty()
                    && quantiles.len() <= MAX_READ_REFERENCE_VALUES
                    && quantiles.iter().all(|q| q.is_finite())
                    && quantiles.windows(2).all(|w| w[0] <= w[1])
                    && std.is_finite()
                    && *std >= 0.0
            }
            (Distribution::Categorical { counts }, ColumnKind::Categorical { levels }) => {
                counts.len() == levels.len() && counts.iter().any(|c| *c > 0)
            }
            _ => false,
        };
        match ok {
            true => Ok(()),
            false => Err(format!(
                "reference of {what} does not fit it (a numeric column: 1 to \
                 {MAX_READ_REFERENCE_VALUES} finite values in order and a std of at least 0; a \
                 categorical one: a count per level, not all 0)"
            )),
        }
    };
    for (d, f) in r.features.iter().zip(&m.features) {
        distribution(d, &f.column.kind, &quoted(&f.column.name))?;
    }
    let prediction_kind = match m.classes() {
        None => ColumnKind::Numeric,
        Some(classes) => ColumnKind::Categorical {
            levels: classes.to_vec(),
        },
    };
    distribution(&r.prediction, &prediction_kind, "the prediction")?;
    super::baseline::check_sizes(r.window, r.windows)
        .map_err(|e| format!("reference.{}: {}", e.key, e.problem))?;
    for b in &r.bands {
        let f = [b.band.mean, b.band.std, b.band.p01, b.band.p99];
        if b.metric.len() > 32
            || f.iter().any(|v| !v.is_finite())
            || b.band.std < 0.0
            || b.band.p01 > b.band.p99
        {
            return Err(format!(
                "reference band {} needs finite figures, a std of at least 0 and p01 <= p99",
                quoted(&b.metric)
            ));
        }
    }
    let baseline = r.baseline(m.task == Task::Classification)?;
    super::baseline::check(&baseline)
        .map_err(|e| format!("reference band {}: {}", e.key, e.problem))?;
    Ok(())
}

/// `model.classes` as the fit writes them: distinct, each a level of the
/// target (short, printable), in the target's order: its levels' order,
/// or ascending numbers for a numeric target (written as the fit writes
/// them). A list swapped or edited by hand would relabel every prediction.
fn check_classes(classes: &[String], target: &ColumnKind) -> Result<(), String> {
    let bad = |why: String| Err(format!("model.classes: {why}"));
    for c in classes {
        if c.is_empty()
            || c.len() > crate::core::table::MAX_LEVEL_BYTES
            || c.chars().any(crate::core::text::needs_escape)
        {
            return bad(format!(
                "{} is not a level a data file can hold (1 to {} bytes, printable)",
                quoted(c),
                crate::core::table::MAX_LEVEL_BYTES
            ));
        }
    }
    match target {
        ColumnKind::Categorical { levels } => {
            let mut at = 0;
            for c in classes {
                match levels[at..].iter().position(|l| l == c) {
                    Some(i) => at += i + 1,
                    None => {
                        return bad(format!(
                            "{} is not a level of the target after the classes before it (the target's levels, in order)",
                            quoted(c)
                        ))
                    }
                }
            }
        }
        ColumnKind::Numeric => {
            let mut last = f64::NEG_INFINITY;
            for c in classes {
                let v = c.parse::<f64>().ok().filter(|v| v.is_finite());
                match v {
                    Some(v) if v > last && crate::core::table::number_as_level(v) == *c => last = v,
                    _ => {
                        return bad(format!(
                            "{} is not the next of ascending numbers as the fit writes them",
                            quoted(c)
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

/// The predicted class of one row of probabilities: for two classes the
/// positive one when its probability is at least `threshold`, else the
/// most probable (the first of equals).
pub fn predicted_class(p: &[f64], threshold: f64) -> usize {
    if p.len() == 2 {
        return usize::from(p[1] >= threshold);
    }
    let mut best = 0;
    for (k, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = k;
        }
    }
    best
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
            let names = distinct
                .iter()
                .map(|&d| crate::core::table::number_as_level(d))
                .collect();
            classes_of(&name, names, idx)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_probabilities_are_clamped_and_sum_to_one() {
        for row in [
            [0.2, 0.800_000_25, 0.0],
            [1.000_000_4, 0.0, 0.0],
            [-1e-7, 0.5, 0.5],
        ] {
            let p = normalised(&row);
            assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "{p:?}");
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15, "{p:?}");
        }
    }

    #[test]
    fn labels_that_are_not_classes_say_what_the_model_was_fitted_on() {
        let classes: Vec<String> = ["setosa", "versicolor"].map(String::from).to_vec();
        let p = [0.9, 0.1, 0.2, 0.8];
        let numbers = ["0", "1"].map(String::from);
        let e = check_class_order("m.onnx", &classes, &p, &numbers)
            .unwrap_err()
            .0;
        assert!(
            e.contains("its labels: \"0\", \"1\"")
                && e.contains("the values the model was fitted on"),
            "{e}"
        );
        // The right labels pass; swapped columns are caught.
        let names = ["setosa", "versicolor"].map(String::from);
        assert!(check_class_order("m.onnx", &classes, &p, &names).is_ok());
        let swapped = ["versicolor", "setosa"].map(String::from);
        let e = check_class_order("m.onnx", &classes, &p, &swapped)
            .unwrap_err()
            .0;
        assert!(e.contains("not the target's classes in order"), "{e}");
    }
}
