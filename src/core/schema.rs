//! The schema of a run of the user's own data on the wire: its feature
//! columns by name (numeric, or categorical with the model's levels), its
//! target and, for a classifier, its classes; and the schema's
//! fingerprint, sent with every message of such a run in the
//! [`SCHEMA_HEADER`] header.
//!
//! Why: a role of another schema (another model, another data set, the
//! diabetes default) must refuse such messages, dead-lettered with a
//! reason, rather than mix values of other columns, or predictions of
//! another model, into its windows. The fingerprint is a function of what
//! the roles must agree on (the columns in the model's order, their types
//! and levels, the target and classes, and the fitted model itself: two
//! models of one data set must not mix either), not of the file streamed,
//! so every process given the same artifact agrees.
//!
//! Inside a process a row is a [`FeatureVector`](crate::core::data::FeatureVector) in the model's column
//! order: a numeric column's value, or a categorical column's index into
//! the model's levels (NaN: missing). A level the model never saw is an
//! index past them, so that its text survives onto the wire (a model
//! process sends it on in the `scored` message): first the levels known at
//! start ([`WireSchema::extra`]: the data file's levels the model did not
//! have, and a scenario's new level), then those first read from the wire,
//! remembered per column up to [`MAX_NEW_LEVELS`] (each at most
//! [`MAX_LEVEL_BYTES`]); past that a new level is [`UNKNOWN_LEVEL`]. The
//! model reads any index past its levels as no level, and the monitor
//! counts it as unseen.
//!
//! The body of a features message of a schema is
//! `{"id": <id>, "features": {"<column>": <number or level>, ...}}`, and a
//! classifier's scored message (features and probabilities, for the
//! monitor) adds `"probabilities": {"<class>": <p>, ...}`; the diabetes
//! default keeps its array body (see `docs/wire.md`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::messages::{ByName, SampleId};
use crate::core::table::{Allowed, ColumnKind, ColumnSchema, MAX_ABS_CELL, MAX_LEVEL_BYTES};

/// The AMQP header that carries a schema's fingerprint.
pub const SCHEMA_HEADER: &str = "x-modelwatch-schema";

/// New levels per column a process remembers from the wire.
pub const MAX_NEW_LEVELS: usize = 1000;

/// The text sent for a level never seen whose text was not kept (past
/// [`MAX_NEW_LEVELS`], or longer than [`MAX_LEVEL_BYTES`]). It starts with
/// a control character, which no level of a model can have.
pub const UNKNOWN_LEVEL: &str = "\u{1}unknown level";

/// Hex digits of a fingerprint (64 bits of its sha256).
pub const FINGERPRINT_HEX: usize = 16;

/// The wire schema of a run of the user's own data.
#[derive(Debug)]
pub struct WireSchema {
    /// The feature columns in the model's order.
    pub features: Vec<ColumnSchema>,
    /// Per feature column, levels past the model's (index `levels.len() + k`).
    pub extra: Vec<Vec<String>>,
    /// A classifier's classes, in the order of its probabilities.
    pub classes: Option<Vec<String>>,
    /// Per feature column, the largest |value| taken from the wire for a
    /// numeric one: beyond it the model's output could overflow
    /// ([`WireSchema::with_bounds`]).
    pub max_abs: Vec<f64>,
    /// Per feature column, the values the config declares it may hold
    /// (`[[data.columns]]`): a value from the wire outside is refused, as
    /// one in the data file is.
    pub declared: Vec<Option<Allowed>>,
    /// [`FINGERPRINT_HEX`] hex digits of the sha256 of the model's part
    /// (not of `extra`, `max_abs` or `declared`).
    pub fingerprint: String,
    by_name: HashMap<String, usize>,
    by_level: Vec<HashMap<String, usize>>,
    /// Per column, the new levels read from the wire (after `extra`).
    new_levels: Mutex<Vec<Vec<String>>>,
}

/// The part of the schema the fingerprint is taken of.
#[derive(Serialize)]
struct Fingerprinted<'a> {
    features: &'a [ColumnSchema],
    target: &'a str,
    classes: &'a Option<Vec<String>>,
    model: &'a str,
}

impl WireSchema {
    /// The schema of a model's `features`, `target` and `classes`; `model`
    /// identifies the fitted model (its parameters, as text).
    pub fn new(
        features: Vec<ColumnSchema>,
        target: &str,
        classes: Option<Vec<String>>,
        model: &str,
    ) -> Self {
        let canonical = serde_json::to_vec(&Fingerprinted {
            features: &features,
            target,
            classes: &classes,
            model,
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
            declared: vec![None; features.len()],
            new_levels: Mutex::new(vec![Vec::new(); features.len()]),
            max_abs,
            by_level: Vec::new(),
            features,
            extra,
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

    /// The same schema with the values `allowed` declares for its columns.
    pub fn with_declared(mut self, allowed: Vec<Allowed>) -> Self {
        for a in allowed {
            if let Some(j) = self.position(&a.column) {
                self.declared[j] = Some(a);
            }
        }
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
    /// index among the model's levels and the extra ones, or past them
    /// for a new one (remembered, so that its text goes on: see the
    /// module's doc).
    pub fn level_value(&self, j: usize, level: &str) -> f64 {
        if let Some(&i) = self.by_level[j].get(level) {
            return i as f64;
        }
        let known = self.by_level[j].len();
        let mut new = self.new_levels.lock().unwrap_or_else(|e| e.into_inner());
        let column = &mut new[j];
        if let Some(k) = column.iter().position(|l| l == level) {
            return (known + k) as f64;
        }
        if column.len() < MAX_NEW_LEVELS && level.len() <= MAX_LEVEL_BYTES {
            column.push(level.to_owned());
            return (known + column.len() - 1) as f64;
        }
        // Unseen all the same; its text is not kept.
        (known + MAX_NEW_LEVELS) as f64
    }

    /// The text of value `v` of categorical column `j` (`None`: missing,
    /// NaN, or not a categorical column); [`UNKNOWN_LEVEL`] for a new level
    /// whose text was not kept. Borrowed but for a level first read from
    /// the wire (copied out of its lock).
    pub fn level_text(&self, j: usize, v: f64) -> Option<Cow<'_, str>> {
        let ColumnKind::Categorical { levels } = &self.features[j].kind else {
            return None;
        };
        if v.is_nan() {
            return None;
        }
        if v < 0.0 || v.fract() != 0.0 {
            return Some(Cow::Borrowed(UNKNOWN_LEVEL));
        }
        let i = v as usize;
        let Some(k) = i.checked_sub(levels.len()) else {
            return Some(Cow::Borrowed(&levels[i]));
        };
        if let Some(l) = self.extra[j].get(k) {
            return Some(Cow::Borrowed(l));
        }
        let new = self.new_levels.lock().unwrap_or_else(|e| e.into_inner());
        Some(match new[j].get(k - self.extra[j].len()) {
            Some(l) => Cow::Owned(l.clone()),
            None => Cow::Borrowed(UNKNOWN_LEVEL),
        })
    }

    /// The largest body, in bytes, a message of this schema can have: a
    /// features message, or for a classifier a scored one (the larger),
    /// with every value at its longest (a number's 24 characters, a level
    /// at the longest of the known ones and [`MAX_LEVEL_BYTES`], every
    /// character escaped). A role whose `inbound.max_body_bytes` is below
    /// it could refuse a message of its own schema.
    pub fn max_body_bytes(&self) -> usize {
        const NUMBER: usize = 24;
        let text = |bytes: usize| 2 * bytes + 2;
        let mut n = r#"{"id":9007199254740991,"features":{}}"#.len();
        for (c, extra) in self.features.iter().zip(&self.extra) {
            n += text(c.name.len()) + 2;
            n += match &c.kind {
                ColumnKind::Numeric => NUMBER,
                ColumnKind::Categorical { levels } => text(
                    levels
                        .iter()
                        .chain(extra)
                        .map(String::len)
                        .chain([MAX_LEVEL_BYTES, UNKNOWN_LEVEL.len() * 3])
                        .max()
                        .unwrap_or(0),
                ),
            };
        }
        if let Some(classes) = &self.classes {
            n += r#","probabilities":{}"#.len();
            n += classes
                .iter()
                .map(|c| text(c.len()) + 2 + NUMBER)
                .sum::<usize>();
        }
        n
    }

    /// The JSON object of a row by column name, in column order (a numeric
    /// value as a number, a level as its text, a missing value as null).
    fn row<'a>(&'a self, x: &'a [f64]) -> NamedRow<'a> {
        NamedRow { schema: self, x }
    }
}

impl ByName for WireSchema {
    /// The body `{"id": id, "features": {...}}` of a features message.
    fn features_body(&self, id: SampleId, x: &[f64]) -> Vec<u8> {
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
    fn scored_body(&self, id: SampleId, x: &[f64], p: &[f64]) -> Vec<u8> {
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
struct NamedRow<'a> {
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

/// A schema for tests: x1 numeric, color categorical (blue, red), target
/// y, a classifier of `classes` when given.
#[cfg(test)]
pub fn example(classes: Option<Vec<String>>) -> WireSchema {
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
        classes,
        "m",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> WireSchema {
        example(None)
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
        // One first read from the wire is remembered, and goes on as text.
        assert_eq!(s.level_value(1, "purple"), 3.0);
        assert_eq!(s.level_value(1, "purple"), 3.0);
        assert_eq!(s.level_text(1, 3.0).as_deref(), Some("purple"));
        assert_eq!(s.level_text(1, f64::NAN), None);
        assert_eq!(s.level_text(1, 4.0).as_deref(), Some(UNKNOWN_LEVEL));
        // Bounded: past MAX_NEW_LEVELS (or too long), the text is not kept.
        let long = "x".repeat(MAX_LEVEL_BYTES + 1);
        let past = (3 + MAX_NEW_LEVELS) as f64;
        assert_eq!(s.level_value(1, &long), past);
        for k in 0..MAX_NEW_LEVELS + 5 {
            s.level_value(1, &format!("level {k}"));
        }
        assert_eq!(s.level_value(1, "one more"), past);
        assert_eq!(s.level_text(1, past).as_deref(), Some(UNKNOWN_LEVEL));
        assert_eq!(s.new_levels.lock().unwrap()[1].len(), MAX_NEW_LEVELS);
    }

    #[test]
    fn the_fingerprint_is_of_the_model_not_of_the_file() {
        let a = schema();
        let b = schema().with_extra(vec![vec![], vec!["green".into()]]);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), FINGERPRINT_HEX);
        let mut other = schema();
        other.features.swap(0, 1);
        let other = WireSchema::new(other.features, "y", None, "m");
        assert_ne!(a.fingerprint, other.fingerprint);
        let classifier = WireSchema::new(schema().features, "y", Some(vec!["a".into()]), "m");
        assert_ne!(a.fingerprint, classifier.fingerprint);
        // Another model of the same columns.
        let refit = WireSchema::new(schema().features, "y", None, "m2");
        assert_ne!(a.fingerprint, refit.fingerprint);
    }
}
