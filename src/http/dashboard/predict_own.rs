//! `/predict` and `POST /api/predict` for a model of the user's own data:
//! the raw values by column name, as the data file has them, checked
//! against the model's schema and the columns the config declares
//! (`[[data.columns]]`: a label and a unit for the form, a range a number
//! must be in); the artifact's preprocessing does the rest
//! ([`TabularModel::predict_row`]).
//!
//! The JSON body is an object with exactly the model's feature columns: a
//! number for a numeric column (finite, within ±[`MAX_ABS_CELL`] and the
//! declared range), one of the training levels for a categorical one (a
//! level it never saw is refused, naming the known ones: a typo is told
//! apart from a new level here, where a person is asking). A key given
//! twice, a key that is not a column, a missing column: refused, naming
//! the field. The form (`GET /predict`) has a field per column, a select
//! of the training levels for a categorical one, prefilled with the
//! training median or most common level; `POST /predict` checks every
//! field at once. Pure logic; the handlers are in `super::routes`.

use std::sync::Arc;

use crate::config::data::ColumnSettings;
use crate::core::data::FeatureVector;
use crate::core::table::{names_of, ColumnKind, MAX_ABS_CELL};
use crate::model::tabular::{Distribution, TabularModel, Task};
use crate::model::MAX_ABS_PREDICTION;

use super::predict::{FieldError, MAX_FIELD_CHARS};

/// Most JSON values a body may hold (a column's value each, and the object).
const MAX_NODES: usize = 2_048;

/// A model of the user's own data as the dashboard serves it.
#[derive(Debug, Clone)]
pub struct OwnModel {
    pub model: Arc<TabularModel>,
    /// Where it came from (a path, or "fitted in memory").
    pub origin: String,
    /// The columns the config declares (`[[data.columns]]`).
    pub columns: Vec<ColumnSettings>,
}

/// One field of the form and of the API: a model feature column.
#[derive(Debug, Clone)]
pub struct OwnField<'a> {
    pub name: &'a str,
    /// The declared label, else the name.
    pub label: &'a str,
    /// The declared unit, else what the field takes.
    pub hint: String,
    /// A categorical column's training levels.
    pub levels: Option<&'a [String]>,
    /// A numeric column's declared least and greatest value.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The largest |value| the model takes for it: the wire's bound
    /// ([`TabularModel::input_bounds`], ±1e30 for an ONNX model), at most
    /// [`MAX_ABS_CELL`].
    pub bound: f64,
}

/// A number as the form shows it: as written when short, else with an
/// exponent, so that every value fits a field of
/// [`MAX_FIELD_CHARS`] (and reads back the same).
pub fn short_number(v: f64) -> String {
    let plain = v.to_string();
    if plain.len() <= 24 {
        plain
    } else {
        format!("{v:e}")
    }
}

/// A declared range in words: "5 to 20", "at least 5", "at most 20".
fn range_text(min: Option<f64>, max: Option<f64>) -> Option<String> {
    match (min, max) {
        (Some(lo), Some(hi)) => Some(format!("{} to {}", short_number(lo), short_number(hi))),
        (Some(lo), None) => Some(format!("at least {}", short_number(lo))),
        (None, Some(hi)) => Some(format!("at most {}", short_number(hi))),
        (None, None) => None,
    }
}

impl OwnModel {
    /// The fields, in the order of the model's features.
    pub fn fields(&self) -> Vec<OwnField<'_>> {
        let bounds = self.model.input_bounds();
        self.model
            .features
            .iter()
            .zip(bounds)
            .map(|(f, bound)| {
                let name = f.column.name.as_str();
                let declared = self.columns.iter().find(|c| c.name == name);
                let label = declared
                    .filter(|c| !c.label.is_empty())
                    .map_or(name, |c| c.label.as_str());
                let (min, max) = declared.map_or((None, None), |c| (c.min, c.max));
                let levels = match &f.column.kind {
                    ColumnKind::Categorical { levels } => Some(levels.as_slice()),
                    ColumnKind::Numeric => None,
                };
                let unit = declared.map(|c| c.unit.as_str()).filter(|u| !u.is_empty());
                let hint = match (levels, unit, range_text(min, max)) {
                    (Some(l), Some(u), _) => format!("{u}; one of {}", l.len()),
                    (Some(l), None, _) => format!("one of {}", l.len()),
                    (None, Some(u), Some(r)) => format!("{u}; {r}"),
                    (None, Some(u), None) => u.to_owned(),
                    (None, None, Some(r)) => r,
                    (None, None, None) => "a number".to_owned(),
                };
                OwnField {
                    name,
                    label,
                    hint,
                    levels,
                    min,
                    max,
                    bound: bound.min(MAX_ABS_CELL),
                }
            })
            .collect()
    }

    /// What the form is prefilled with: each numeric column's training
    /// median (within its declared range), each categorical one's most
    /// common training level.
    pub fn defaults(&self) -> Vec<String> {
        let reference = self.model.reference.as_ref();
        let fields = self.fields();
        self.model
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let d = reference.and_then(|r| r.features.get(j));
                match (&f.column.kind, d) {
                    (ColumnKind::Numeric, Some(Distribution::Numeric { quantiles, .. }))
                        if !quantiles.is_empty() =>
                    {
                        let median = quantiles[quantiles.len() / 2];
                        let (lo, hi) = (fields[j].min, fields[j].max);
                        let v = median
                            .max(lo.unwrap_or(f64::NEG_INFINITY))
                            .min(hi.unwrap_or(f64::INFINITY));
                        short_number(v)
                    }
                    (
                        ColumnKind::Categorical { levels },
                        Some(Distribution::Categorical { counts }),
                    ) => {
                        let most =
                            (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i)));
                        most.and_then(|i| levels.get(i))
                            .cloned()
                            .unwrap_or_default()
                    }
                    (ColumnKind::Categorical { levels }, _) => {
                        levels.first().cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                }
            })
            .collect()
    }
}

/// A value as given: a JSON value (the API) or the text of a form field.
#[derive(Debug, Clone, Copy)]
enum Given<'a> {
    Json(&'a serde_json::Value),
    Text(&'a str),
}

/// The model input of one field's value, or why it is refused.
fn value_of(field: &OwnField, given: Given) -> Result<f64, FieldError> {
    let shown = crate::core::text::sanitize(field.name);
    let refuse = |message: String| FieldError::new(shown.clone(), message);
    // A missing value (JSON null), as on the wire: the model reads a
    // missing number as its training mean and a missing level as none.
    if let Given::Json(serde_json::Value::Null) = given {
        return Ok(f64::NAN);
    }
    match field.levels {
        None => {
            let n = match given {
                Given::Json(v) => v
                    .as_f64()
                    .ok_or_else(|| refuse("must be a JSON number".into()))?,
                Given::Text(t) => {
                    let t = t.trim();
                    if t.is_empty() {
                        return Err(refuse("is empty: type a number".into()));
                    }
                    if t.chars().count() > MAX_FIELD_CHARS {
                        return Err(refuse(format!(
                            "is longer than {MAX_FIELD_CHARS} characters"
                        )));
                    }
                    t.parse::<f64>()
                        .map_err(|_| refuse("is not a number".into()))?
                }
            };
            if !n.is_finite() || n.abs() > field.bound {
                return Err(refuse(format!(
                    "must be within ±{:e}, the largest value this model takes",
                    field.bound
                )));
            }
            let below = field.min.is_some_and(|lo| n < lo);
            let above = field.max.is_some_and(|hi| n > hi);
            if below || above {
                let range = range_text(field.min, field.max).unwrap_or_default();
                return Err(refuse(format!("must be {range} (data.columns)")));
            }
            Ok(n)
        }
        Some(levels) => {
            let s = match given {
                Given::Json(v) => v
                    .as_str()
                    .ok_or_else(|| refuse("must be a JSON string".into()))?,
                Given::Text(t) => t,
            };
            let i = levels.iter().position(|l| l == s.trim()).ok_or_else(|| {
                refuse(format!(
                    "is not one of the levels the model knows: {}",
                    names_of(levels.iter().map(String::as_str))
                ))
            })?;
            Ok(i as f64)
        }
    }
}

/// The row the model takes for the JSON `body` (see the module doc).
pub fn parse_json(body: &[u8], own: &OwnModel) -> Result<FeatureVector, FieldError> {
    let text =
        std::str::from_utf8(body).map_err(|_| FieldError::new("body", "is not UTF-8 text"))?;
    let value = crate::core::json::parse_strict(text, MAX_NODES)
        .map_err(|e| FieldError::new("body", format!("is not JSON the API takes: {e}")))?;
    let obj = value.as_object().ok_or_else(|| {
        FieldError::new(
            "body",
            "must be a JSON object of the model's columns and their values",
        )
    })?;
    let model = &own.model;
    if let Some(k) = obj
        .keys()
        .find(|k| !model.features.iter().any(|f| &f.column.name == *k))
    {
        return Err(FieldError::new(
            crate::core::text::sanitize(k),
            format!(
                "is not a column of the model; its columns are {}",
                names_of(model.features.iter().map(|f| f.column.name.as_str()))
            ),
        ));
    }
    let mut row = FeatureVector::with_capacity(model.features.len());
    for field in own.fields() {
        let v = obj.get(field.name).ok_or_else(|| {
            FieldError::new(crate::core::text::sanitize(field.name), "is missing")
        })?;
        row.push(value_of(&field, Given::Json(v))?);
    }
    Ok(row)
}

/// The row of a form post: `typed` gives each field's text (`None`:
/// absent). Every refused field is named, in form order.
pub fn parse_form<'a>(
    own: &OwnModel,
    typed: impl Fn(&str) -> Option<&'a str>,
) -> Result<FeatureVector, Vec<FieldError>> {
    let mut row = FeatureVector::new();
    let mut errors = Vec::new();
    for field in own.fields() {
        match value_of(&field, Given::Text(typed(field.name).unwrap_or(""))) {
            Ok(v) => row.push(v),
            Err(e) => errors.push(e),
        }
    }
    match errors.is_empty() {
        true => Ok(row),
        false => Err(errors),
    }
}

/// The JSON answer: the prediction (a classifier's predicted class by
/// name, and its probability of each class under `probabilities`) and
/// what the model is; refused when the values take the
/// prediction beyond [`MAX_ABS_PREDICTION`] (each is within bounds, their
/// sum need not be).
pub fn answer(
    model: &TabularModel,
    row: &[f64],
    origin: &str,
) -> Result<serde_json::Value, FieldError> {
    // One run of the model (an ONNX model's session once) for the
    // prediction and a classifier's probabilities.
    let (p, mut probs) = model
        .predict_rows(&[row])
        .map_err(|e| FieldError::new("body", format!("the model gave no prediction: {e}")))?;
    let p = p[0];
    if p.is_nan() || p.abs() > MAX_ABS_PREDICTION {
        return Err(FieldError::new(
            "body",
            format!("takes the prediction to {p:e}, beyond ±{MAX_ABS_PREDICTION:e}"),
        ));
    }
    let (prediction, probabilities) = match (&model.task, model.classes()) {
        (Task::Classification, Some(classes)) => {
            let probs = probs.pop().unwrap_or_default();
            let by_class: serde_json::Map<String, serde_json::Value> = classes
                .iter()
                .zip(&probs)
                .map(|(c, v)| (c.clone(), serde_json::json!(v)))
                .collect();
            (
                serde_json::json!(classes.get(p as usize)),
                Some(serde_json::Value::Object(by_class)),
            )
        }
        _ => (serde_json::json!(p), None),
    };
    let mut answer = serde_json::json!({
        "prediction": prediction,
        "model": {
            "format": model.format,
            "kind": model.kind(),
            "origin": origin,
            "task": model.task,
            "target": model.target.name,
            "features": model.feature_names(),
            "training_score": model.training.score,
        },
    });
    if let Some(p) = probabilities {
        answer["probabilities"] = p;
    }
    Ok(answer)
}
