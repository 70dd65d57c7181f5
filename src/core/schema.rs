//! The schema of a run of the user's own data on the wire: its feature
//! columns by name (numeric, or categorical with the model's levels), its
//! target and, for a classifier, its classes; and the schema's
//! fingerprint, sent with every message of such a run in the
//! [`SCHEMA_HEADER`] header.
//!
//! Why: a role of another schema (another model, another data set, the
//! diabetes default) must refuse such messages, dead-lettered with a
//! reason, rather than mix values of other columns into its windows. The
//! fingerprint is a function of what the roles must agree on (the columns
//! in the model's order, their types and levels, the target and classes),
//! not of the file streamed, so every process given the same artifact
//! agrees.
//!
//! Inside a process a row is a [`FeatureVector`] in the model's column
//! order: a numeric column's value, or a categorical column's index into
//! the model's levels. A level the model never saw is an index past them
//! (`levels.len() + k`, `k` into [`WireSchema::extra`]: the data file's
//! levels the model did not have, and a scenario's new level), so that its
//! text survives onto the wire; the model reads any index past its levels
//! as no level, and the monitor counts it as unseen.
//!
//! The body of a features message of a schema is
//! `{"id": <id>, "features": {"<column>": <number or level>, ...}}`, and a
//! classifier's scored message (features and probabilities, for the
//! monitor) adds `"probabilities": {"<class>": <p>, ...}`; the diabetes
//! default keeps its array body (see `docs/wire.md`).

use std::collections::HashMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::data::FeatureVector;
use crate::core::messages::SampleId;
use crate::core::table::{ColumnKind, ColumnSchema, MAX_ABS_CELL};

/// The AMQP header that carries a schema's fingerprint.
pub const SCHEMA_HEADER: &str = "x-modelwatch-schema";

/// Hex digits of a fingerprint (64 bits of its sha256).
pub const FINGERPRINT_HEX: usize = 16;

/// The wire schema of a run of the user's own data.
#[derive(Debug, Clone, PartialEq)]
pub struct WireSchema {
    /// The feature columns in the model's order.
    pub features: Vec<ColumnSchema>,
    /// Per feature column, levels past the model's (index `levels.len() + k`).
    pub extra: Vec<Vec<String>>,
    /// The target column's name.
    pub target: String,
    /// A classifier's classes, in the order of its probabilities.
    pub classes: Option<Vec<String>>,
    /// Per feature column, the largest |value| taken from the wire for a
    /// numeric one: beyond it the model's output could overflow
    /// ([`WireSchema::with_bounds`]).
    pub max_abs: Vec<f64>,
    /// [`FINGERPRINT_HEX`] hex digits of the sha256 of the model's part
    /// (not of `extra` or `max_abs`).
    pub fingerprint: String,
    by_name: HashMap<String, usize>,
    by_level: Vec<HashMap<String, usize>>,
}

/// The part of the schema the fingerprint is taken of.
#[derive(Serialize)]
struct Fingerprinted<'a> {
    features: &'a [ColumnSchema],
    target: &'a str,
    classes: &'a Option<Vec<String>>,
}

impl WireSchema {
    /// The schema of a model's `features`, `target` and `classes`.
    pub fn new(features: Vec<ColumnSchema>, target: &str, classes: Option<Vec<String>>) -> Self {
        let canonical = serde_json::to_vec(&Fingerprinted {
            features: &features,
            target,
            classes: &classes,
        })
        .expect("names and levels always serialize");
        let digest = Sha256::digest(&canonical);
        let fingerprint: String = digest
            .iter()
            .take(FINGERPRINT_HEX / 2)
            .map(|b| format!("{b:02x}"))
            .collect();
        let by_name = features
            .iter()
            .enumerate()
            .map(|(j, c)| (c.name.clone(), j))
            .collect();
        let extra = vec![Vec::new(); features.len()];
        let max_abs = vec![MAX_ABS_CELL; features.len()];
        let mut s = WireSchema {
            max_abs,
            by_level: Vec::new(),
            features,
            extra,
            target: target.to_owned(),
            classes,
            fingerprint,
            by_name,
        };
        s.index_levels();
        s
    }

    /// The same schema with `extra` levels past the model's, per column
    /// (the fingerprint does not change).
    pub fn with_extra(mut self, extra: Vec<Vec<String>>) -> Self {
        assert_eq!(extra.len(), self.features.len(), "one list per column");
        self.extra = extra;
        self.index_levels();
        self
    }

    /// The same schema with these bounds of the numeric columns' values
    /// (each at most [`MAX_ABS_CELL`]).
    pub fn with_bounds(mut self, max_abs: Vec<f64>) -> Self {
        assert_eq!(max_abs.len(), self.features.len(), "one bound per column");
        self.max_abs = max_abs.into_iter().map(|b| b.min(MAX_ABS_CELL)).collect();
        self
    }

    fn index_levels(&mut self) {
        self.by_level = self
            .features
            .iter()
            .zip(&self.extra)
            .map(|(c, extra)| match &c.kind {
                ColumnKind::Categorical { levels } => levels
                    .iter()
                    .chain(extra)
                    .enumerate()
                    .map(|(i, l)| (l.clone(), i))
                    .collect(),
                ColumnKind::Numeric => HashMap::new(),
            })
            .collect();
    }

    /// The column named `name`: its position in a row.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The value a row holds for `level` of categorical column `j`: its
    /// index among the model's levels and the extra ones, or the first
    /// index past them all for a level neither has (unseen, text lost).
    pub fn level_value(&self, j: usize, level: &str) -> f64 {
        match self.by_level[j].get(level) {
            Some(&i) => i as f64,
            None => self.by_level[j].len() as f64,
        }
    }

    /// The text of value `v` of categorical column `j` (`None`: an index
    /// past every known level).
    pub fn level_text(&self, j: usize, v: f64) -> Option<&str> {
        let ColumnKind::Categorical { levels } = &self.features[j].kind else {
            return None;
        };
        if v.is_nan() || v < 0.0 || v.fract() != 0.0 {
            return None;
        }
        let i = v as usize;
        match i.checked_sub(levels.len()) {
            None => Some(&levels[i]),
            Some(k) => self.extra[j].get(k).map(String::as_str),
        }
    }

    /// The JSON object of a row by column name, in column order (a numeric
    /// value as a number, a level as its text, an unknown level as null).
    pub fn row<'a>(&'a self, x: &'a [f64]) -> NamedRow<'a> {
        NamedRow { schema: self, x }
    }

    /// The body `{"id": id, "features": {...}}` of a features message.
    pub fn features_body(&self, id: SampleId, x: &[f64]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            id: SampleId,
            features: NamedRow<'a>,
        }
        serde_json::to_vec(&Body {
            id,
            features: self.row(x),
        })
        .expect("finite numbers always serialize")
    }

    /// The body of a classifier's scored message: the features and
    /// `"probabilities": {"<class>": p, ...}`.
    pub fn scored_body(&self, id: SampleId, x: &[f64], p: &[f64]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            id: SampleId,
            features: NamedRow<'a>,
            probabilities: ByClass<'a>,
        }
        serde_json::to_vec(&Body {
            id,
            features: self.row(x),
            probabilities: ByClass {
                classes: self.classes.as_deref().unwrap_or_default(),
                p,
            },
        })
        .expect("finite numbers always serialize")
    }
}

/// A row serialized as a JSON object by column name.
pub struct NamedRow<'a> {
    schema: &'a WireSchema,
    x: &'a [f64],
}

impl Serialize for NamedRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.x.len()))?;
        for (j, (c, &v)) in self.schema.features.iter().zip(self.x).enumerate() {
            match c.kind {
                ColumnKind::Numeric if v.is_finite() => map.serialize_entry(&c.name, &v)?,
                ColumnKind::Numeric => map.serialize_entry(&c.name, &())?,
                ColumnKind::Categorical { .. } => {
                    map.serialize_entry(&c.name, &self.schema.level_text(j, v))?
                }
            }
        }
        map.end()
    }
}

/// Probabilities serialized as a JSON object by class name.
struct ByClass<'a> {
    classes: &'a [String],
    p: &'a [f64],
}

impl Serialize for ByClass<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.p.len()))?;
        for (c, p) in self.classes.iter().zip(self.p) {
            map.serialize_entry(c, p)?;
        }
        map.end()
    }
}

/// A row of `n` values, all 0 (filled by the decoder).
pub fn empty_row(n: usize) -> FeatureVector {
    FeatureVector::from_elem(0.0, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> WireSchema {
        WireSchema::new(
            vec![
                ColumnSchema {
                    name: "x1".into(),
                    kind: ColumnKind::Numeric,
                },
                ColumnSchema {
                    name: "color".into(),
                    kind: ColumnKind::Categorical {
                        levels: vec!["blue".into(), "red".into()],
                    },
                },
            ],
            "y",
            None,
        )
    }

    #[test]
    fn a_row_goes_out_by_name_with_its_levels_as_text() {
        let s = schema().with_extra(vec![vec![], vec!["green".into()]]);
        let body = String::from_utf8(s.features_body(7, &[1.5, 1.0])).unwrap();
        assert_eq!(body, r#"{"id":7,"features":{"x1":1.5,"color":"red"}}"#);
        // A level the model never saw keeps its text.
        let body = String::from_utf8(s.features_body(8, &[-2.0, 2.0])).unwrap();
        assert_eq!(body, r#"{"id":8,"features":{"x1":-2.0,"color":"green"}}"#);
        assert_eq!(s.level_value(1, "green"), 2.0);
        assert_eq!(s.level_value(1, "purple"), 3.0);
        assert_eq!(s.level_text(1, 3.0), None);
        assert_eq!(s.level_text(1, -1.0), None);
    }

    #[test]
    fn the_fingerprint_is_of_the_model_not_of_the_file() {
        let a = schema();
        let b = schema().with_extra(vec![vec![], vec!["green".into()]]);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), FINGERPRINT_HEX);
        let mut other = schema();
        other.features.swap(0, 1);
        let other = WireSchema::new(other.features, "y", None);
        assert_ne!(a.fingerprint, other.fingerprint);
        let classifier = WireSchema::new(schema().features, "y", Some(vec!["a".into()]));
        assert_ne!(a.fingerprint, classifier.fingerprint);
    }
}
