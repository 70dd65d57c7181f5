//! The linear model and its artifact.
//!
//! `train` fits ordinary least squares with intercept (linfa-linear) on all
//! 442 scaled rows, exactly like the `LinearRegression().fit(X, y)` pickle of
//! the Python service it replaces, and writes a JSON artifact: coefficients,
//! intercept, feature names, the preprocessing (raw -> scaled), training R²
//! and MAE, the sha256 of the training data and (format `/2`) the training
//! baseline of the monitor's windows. `run` loads that artifact,
//! or fits in memory when there is none. Prediction is a dot product, so it
//! is done here directly (single rows and batches through ndarray).
//! The [`ModelActor`] that answers features with predictions is [`actor`].

pub mod actor;
pub mod artifact;
pub mod baseline;
pub mod onnx;
pub mod tabular;
pub use actor::ModelActor;
use artifact::read_bounded;
pub use artifact::{mean_absolute_error, r2_score, ModelError, MAX_ARTIFACT_BYTES};

use std::path::Path;

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_linear::LinearRegression;
use ndarray::{Array1, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::core::data::{Dataset, Scaling, FEATURE_NAMES, N_FEATURES};
use crate::core::messages::{Probabilities, MAX_ABS_FEATURE, MAX_ABS_VALUE};
use baseline::Baseline;

/// Largest |prediction| an artifact may produce for any accepted feature
/// row: a tenth of [`MAX_ABS_VALUE`], so that rounding never carries a
/// prediction past the bound the metric accepts, and `y_true - y_pred`
/// stays finite.
pub const MAX_ABS_PREDICTION: f64 = MAX_ABS_VALUE / 10.0;

/// The artifact format this build writes (and reads).
pub const ARTIFACT_FORMAT: &str = "modelwatch-linear-regression/2";

/// The previous format, still read: the same fields without a baseline. It
/// loads as a model of the current format with `baseline: None`.
pub const ARTIFACT_FORMAT_V1: &str = "modelwatch-linear-regression/1";

/// The model a run predicts with: the diabetes linear model, or a model of
/// the user's own data ([`tabular`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    Linear(LinearModel),
    Tabular(tabular::TabularModel),
}

impl Model {
    /// The prediction for one feature row (see [`LinearModel::predict`],
    /// [`tabular::TabularModel::predict_row`]).
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Model::Linear(m) => m.predict(x),
            Model::Tabular(m) => m.predict_row(x),
        }
    }

    /// The prediction for one row, and a classifier's class probabilities
    /// into `p` (left empty for a regression): its prediction is the
    /// predicted class's index.
    pub fn predict_scored(&self, x: &[f64], p: &mut Probabilities) -> f64 {
        match self {
            Model::Tabular(m) if m.classes().is_some() => {
                m.probabilities_row(x, p);
                tabular::predicted_class(p, tabular::DECISION_THRESHOLD) as f64
            }
            _ => {
                p.clear();
                self.predict(x)
            }
        }
    }

    /// A classifier's classes (`None` for a regression).
    pub fn classes(&self) -> Option<&[String]> {
        match self {
            Model::Linear(_) => None,
            Model::Tabular(m) => m.classes(),
        }
    }

    /// The feature columns' names, in the order of a row.
    pub fn feature_names(&self) -> Vec<String> {
        match self {
            Model::Linear(m) => m.feature_names.clone(),
            Model::Tabular(m) => m.feature_names(),
        }
    }
}

/// Facts about the fit, kept in the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    pub rows: usize,
    pub r2: f64,
    pub mae: f64,
    /// sha256 of the CSV the model was fitted on.
    pub data_sha256: String,
    pub fitted_with: String,
}

/// The preprocessing a raw feature row goes through before the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Always `"sklearn_diabetes_scaling"`: `(x - mean) / scale` per column.
    pub kind: String,
    #[serde(flatten)]
    pub scaling: Scaling,
}

/// A fitted linear model as stored on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearModel {
    pub format: String,
    pub feature_names: Vec<String>,
    pub preprocessing: Preprocessing,
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    pub training: TrainingInfo,
    /// What a window of the monitor looks like when nothing is wrong
    /// (`monitor::baseline`); absent in `/1` artifacts and when fitted in
    /// memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

impl LinearModel {
    /// Fits OLS with intercept on every row of `data` (scaled features).
    pub fn fit(data: &Dataset) -> Result<LinearModel, ModelError> {
        let dataset = DatasetBase::new(data.features.clone(), data.targets.clone());
        let fitted = LinearRegression::new()
            .fit(&dataset)
            .map_err(|e| ModelError::Fit(e.to_string()))?;
        let mut model = LinearModel {
            format: ARTIFACT_FORMAT.to_owned(),
            feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            preprocessing: Preprocessing {
                kind: "sklearn_diabetes_scaling".to_owned(),
                scaling: data.scaling.clone(),
            },
            intercept: fitted.intercept(),
            coefficients: fitted.params().to_vec(),
            training: TrainingInfo {
                rows: data.len(),
                r2: 0.0,
                mae: 0.0,
                data_sha256: data.sha256.clone(),
                fitted_with: "linfa-linear 0.8.1 LinearRegression (OLS, intercept)".to_owned(),
            },
            baseline: None,
        };
        let predictions = model.predict_batch(data.features.view());
        model.training.r2 = r2_score(data.targets.view(), predictions.view());
        model.training.mae = mean_absolute_error(data.targets.view(), predictions.view());
        Ok(model)
    }

    /// Predicts one scaled feature row.
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.intercept
            + x.iter()
                .zip(&self.coefficients)
                .map(|(a, b)| a * b)
                .sum::<f64>()
    }

    /// Predicts many scaled rows at once (`rows x 10`).
    pub fn predict_batch(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let w = Array1::from(self.coefficients.clone());
        x.dot(&w) + self.intercept
    }

    /// Reads and checks an artifact.
    pub fn load(path: &Path) -> Result<LinearModel, ModelError> {
        let shown = crate::core::text::sanitize(&path.display().to_string());
        let bounds = artifact::Bounds {
            key: "model.artifact",
            limit: MAX_ARTIFACT_BYTES,
            why: "an artifact is a few KB",
            follow_links: true,
        };
        let text = read_bounded(path, &shown, &bounds)?;
        // A model of the user's own data reads as what it is, not as a
        // diabetes artifact with unknown fields.
        #[derive(Deserialize)]
        struct Format {
            format: String,
        }
        if serde_json::from_str::<Format>(&text).is_ok_and(|f| f.format == tabular::TABULAR_FORMAT)
        {
            return Err(ModelError::Mismatch {
                path: shown,
                problem: format!(
                    "it is a {:?} model of your own data (`train --data`): run it with its data, \
                     `--data FILE.csv --target COLUMN --model ARTIFACT` (docs/own-data.md)",
                    tabular::TABULAR_FORMAT
                ),
            });
        }
        let mut model: LinearModel =
            serde_json::from_str(&text).map_err(|source| ModelError::Corrupt {
                path: shown.clone(),
                source,
            })?;
        model.check().map_err(|problem| ModelError::Mismatch {
            path: shown,
            problem,
        })?;
        model.format = ARTIFACT_FORMAT.to_owned();
        Ok(model)
    }

    /// Writes the artifact as pretty JSON (creating parent folders).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let json = serde_json::to_string_pretty(self).expect("a model always serializes");
        // Written beside and renamed, so a reader never sees half an
        // artifact; a link, FIFO or device at the path is refused.
        crate::core::output_file::replace(path, (json + "\n").as_bytes()).map_err(io)
    }

    /// Checks that the artifact fits this pipeline's features.
    fn check(&self) -> Result<(), String> {
        if self.format == ARTIFACT_FORMAT_V1 {
            if self.baseline.is_some() {
                return Err(format!(
                    "a {ARTIFACT_FORMAT_V1:?} artifact has no baseline (write it as {ARTIFACT_FORMAT:?})"
                ));
            }
        } else if self.format != ARTIFACT_FORMAT {
            return Err(format!(
                "format is {:?}, this build reads {ARTIFACT_FORMAT:?} and {ARTIFACT_FORMAT_V1:?}",
                self.format
            ));
        }
        if let Some(b) = &self.baseline {
            baseline::check(b).map_err(|e| format!("baseline.{e}"))?;
        }
        if self.feature_names != FEATURE_NAMES {
            return Err(format!(
                "feature_names are {:?}, the pipeline sends {:?}",
                self.feature_names, FEATURE_NAMES
            ));
        }
        let lens = [
            ("coefficients", self.coefficients.len()),
            ("preprocessing.mean", self.preprocessing.scaling.mean.len()),
            (
                "preprocessing.scale",
                self.preprocessing.scaling.scale.len(),
            ),
        ];
        for (name, len) in lens {
            if len != N_FEATURES {
                return Err(format!("{name} has {len} values, expected {N_FEATURES}"));
            }
        }
        let all = self.coefficients.iter().chain([&self.intercept]);
        if !all.into_iter().all(|v| v.is_finite()) {
            return Err("intercept or coefficients are not finite".into());
        }
        let worst = self.worst_abs_prediction();
        if worst.is_nan() || worst > MAX_ABS_PREDICTION {
            return Err(format!(
                "coefficients too large: a prediction can reach {worst:e} for features within \
                 ±{MAX_ABS_FEATURE:e} (a range that contains the data's), beyond the limit of \
                 {MAX_ABS_PREDICTION:e} (absolute errors could overflow to inf)"
            ));
        }
        Ok(())
    }

    /// The largest |prediction| for any feature row with every |x| at most
    /// [`MAX_ABS_FEATURE`]: `|intercept| + sum |c| * MAX_ABS_FEATURE`
    /// (`inf` if even that overflows).
    fn worst_abs_prediction(&self) -> f64 {
        self.intercept.abs()
            + self
                .coefficients
                .iter()
                .map(|c| c.abs() * MAX_ABS_FEATURE)
                .sum::<f64>()
    }
}

/// Loads the model artifact, or fits the model in memory when there is none.
pub fn load_or_fit_model(path: &Path) -> Result<LinearModel, ModelError> {
    if path.exists() {
        let m = LinearModel::load(path)?;
        if m.training.data_sha256 != Dataset::embedded().sha256 {
            tracing::warn!(artifact = %path.display(), "model was fitted on other data than the embedded set");
        }
        tracing::info!(artifact = %path.display(), r2 = m.training.r2, "model loaded");
        Ok(m)
    } else {
        let m = LinearModel::fit(Dataset::embedded())?;
        tracing::info!(
            artifact = %path.display(),
            r2 = m.training.r2,
            "no model artifact; fitted in memory (`modelwatch train` writes one)"
        );
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKLEARN_INTERCEPT: f64 = 152.13348416289597;
    const SKLEARN_COEF: [f64; 10] = [
        -10.00986629981065,
        -239.815643672423,
        519.845920054461,
        324.3846455023232,
        -792.1756385522297,
        476.73902100525765,
        101.0432679380334,
        177.063237671346,
        751.2736995571038,
        67.62669218370499,
    ];

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }

    #[test]
    fn fit_matches_sklearn() {
        let m = LinearModel::fit(Dataset::embedded()).unwrap();
        assert!(
            close(m.intercept, SKLEARN_INTERCEPT, 1e-6),
            "{}",
            m.intercept
        );
        for (a, b) in m.coefficients.iter().zip(SKLEARN_COEF) {
            assert!(close(*a, b, 1e-6), "{a} vs {b}");
        }
        assert!(
            (m.training.r2 - 0.5177484).abs() < 1e-6,
            "{}",
            m.training.r2
        );
        assert!((m.training.mae - 43.27745202531507).abs() < 1e-6);
        assert_eq!(m.training.rows, 442);
    }

    #[test]
    fn single_and_batch_predictions_agree() {
        let d = Dataset::embedded();
        let m = LinearModel::fit(d).unwrap();
        let batch = m.predict_batch(d.features.view());
        for i in 0..d.len() {
            assert!((m.predict(&d.feature_row(i)) - batch[i]).abs() < 1e-9);
        }
    }

    #[test]
    fn artifact_round_trips_and_bad_ones_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m/model.json");
        let m = LinearModel::fit(Dataset::embedded()).unwrap();
        m.save(&path).unwrap();
        assert_eq!(LinearModel::load(&path).unwrap(), m);

        std::fs::write(&path, "{not json").unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid artifact"), "{err}");

        let mut short = m.clone();
        short.coefficients.pop();
        short.save(&path).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("coefficients has 9 values"), "{err}");

        let mut renamed = m.clone();
        renamed.feature_names[0] = "height".into();
        renamed.save(&path).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("feature_names"), "{err}");

        // Issue 8 item 6: finite coefficients whose predictions overflow.
        let mut huge = m.clone();
        huge.coefficients = vec![1.7e308; 10];
        huge.save(&path).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("coefficients too large"), "{err}");
        let d = Dataset::embedded();
        let worst = m.worst_abs_prediction();
        assert!(
            worst <= MAX_ABS_PREDICTION,
            "the real model passes: {worst}"
        );
        for i in 0..d.len() {
            assert!(m.predict(&d.feature_row(i)).abs() <= worst);
            assert!(d.feature_row(i).iter().all(|x| x.abs() <= MAX_ABS_FEATURE));
        }

        let err = LinearModel::load(&dir.path().join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("none.json"), "{err}");
    }

    #[test]
    fn artifacts_carry_a_checked_baseline_and_v1_ones_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let mut m = LinearModel::fit(Dataset::embedded()).unwrap();
        let b = crate::monitor::baseline::from_model(&m, 500, 200, 42).unwrap();
        m.baseline = Some(b.clone());
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(ARTIFACT_FORMAT) && text.contains("\"baseline\""));
        assert_eq!(LinearModel::load(&path).unwrap(), m);

        // A `/1` artifact: no baseline key, the old format string.
        let mut v1: serde_json::Value = serde_json::from_str(&text).unwrap();
        v1.as_object_mut().unwrap().remove("baseline");
        v1["format"] = ARTIFACT_FORMAT_V1.into();
        std::fs::write(&path, v1.to_string()).unwrap();
        let loaded = LinearModel::load(&path).unwrap();
        assert_eq!(loaded.baseline, None);
        assert_eq!(loaded.format, ARTIFACT_FORMAT);
        assert_eq!(loaded.coefficients, m.coefficients);

        // ... but a `/1` artifact with a baseline is not one.
        v1["baseline"] = serde_json::to_value(&b).unwrap();
        std::fs::write(&path, v1.to_string()).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("has no baseline"), "{err}");

        let mut unknown = v1.clone();
        unknown["format"] = "modelwatch-linear-regression/3".into();
        std::fs::write(&path, unknown.to_string()).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("/3"), "{err}");

        // The baseline is outside input: its figures are checked.
        let mut bad = m.clone();
        bad.baseline.as_mut().unwrap().rmse.std = -0.5;
        bad.save(&path).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("baseline.rmse: std -0.5 is negative"), "{err}");
        let mut bad = m.clone();
        bad.baseline.as_mut().unwrap().window = 1 << 40;
        bad.save(&path).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("baseline.window"), "{err}");
        // A NaN is written as null, which is not a number: refused too.
        let mut bad = m.clone();
        bad.baseline.as_mut().unwrap().mae.mean = f64::NAN;
        bad.save(&path).unwrap();
        assert!(LinearModel::load(&path).is_err());
        // An unknown key inside the baseline.
        let mut extra: serde_json::Value = serde_json::from_str(&text).unwrap();
        extra["baseline"]["surprise"] = 1.into();
        std::fs::write(&path, extra.to_string()).unwrap();
        let err = LinearModel::load(&path).unwrap_err().to_string();
        assert!(err.contains("surprise"), "{err}");
    }
}
