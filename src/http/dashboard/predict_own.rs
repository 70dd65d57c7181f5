//! `POST /api/predict` for a model of the user's own data: the raw values
//! by column name, as the data file has them, checked against the model's
//! schema; the artifact's preprocessing does the rest
//! ([`TabularModel::predict_row`]).
//!
//! The body is a JSON object with exactly the model's feature columns: a
//! number for a numeric column (finite, within ±[`MAX_ABS_CELL`]), one of
//! the training levels for a categorical one (a level it never saw is
//! refused, naming the known ones: a typo is told apart from a new level
//! here, where a person is asking). A key given twice, a key that is not a
//! column, a missing column: refused, naming the field. Pure logic; the
//! handler is in `super::routes`.

use crate::core::data::FeatureVector;
use crate::core::table::{names_of, ColumnKind, MAX_ABS_CELL};
use crate::model::tabular::{TabularModel, Task};
use crate::model::MAX_ABS_PREDICTION;

use super::predict::FieldError;

/// Most JSON values a body may hold (a column's value each, and the object).
const MAX_NODES: usize = 2_048;

/// The row the model takes for `body` (see the module doc).
pub fn parse_json(body: &[u8], model: &TabularModel) -> Result<FeatureVector, FieldError> {
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
    let shown = |k: &str| crate::core::text::sanitize(k);
    if let Some(k) = obj
        .keys()
        .find(|k| !model.features.iter().any(|f| &f.column.name == *k))
    {
        return Err(FieldError::new(
            shown(k),
            format!(
                "is not a column of the model; its columns are {}",
                names_of(model.features.iter().map(|f| f.column.name.as_str()))
            ),
        ));
    }
    let mut row = FeatureVector::with_capacity(model.features.len());
    for f in &model.features {
        let name = f.column.name.as_str();
        let v = obj
            .get(name)
            .ok_or_else(|| FieldError::new(shown(name), "is missing"))?;
        row.push(match &f.column.kind {
            ColumnKind::Numeric => {
                let n = v
                    .as_f64()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| FieldError::new(shown(name), "must be a JSON number"))?;
                if n.abs() > MAX_ABS_CELL {
                    return Err(FieldError::new(
                        shown(name),
                        format!("must be within ±{MAX_ABS_CELL:e}"),
                    ));
                }
                n
            }
            ColumnKind::Categorical { levels } => {
                let s = v
                    .as_str()
                    .ok_or_else(|| FieldError::new(shown(name), "must be a JSON string"))?;
                let i = levels.iter().position(|l| l == s.trim()).ok_or_else(|| {
                    FieldError::new(
                        shown(name),
                        format!(
                            "is not one of the levels the model knows: {}",
                            names_of(levels.iter().map(String::as_str))
                        ),
                    )
                })?;
                i as f64
            }
        });
    }
    Ok(row)
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
    let p = model.predict_row(row);
    if p.is_nan() || p.abs() > MAX_ABS_PREDICTION {
        return Err(FieldError::new(
            "body",
            format!("takes the prediction to {p:e}, beyond ±{MAX_ABS_PREDICTION:e}"),
        ));
    }
    let (prediction, probabilities) = match (&model.task, model.classes()) {
        (Task::Classification, Some(classes)) => {
            let mut probs = crate::core::messages::Probabilities::new();
            model.probabilities_row(row, &mut probs);
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
