//! Parsing and checking inbound wire messages.
//!
//! A message read from RabbitMQ is accepted only if it is a JSON object with
//! a usable `id` and a `body` of the right shape with finite numbers; anything
//! else is a [`Rejection`] whose text becomes the dead-letter reason. Ids may
//! be integers (this program's microsecond ids) or the float
//! `datetime.timestamp()` seconds of the original Python services, which are
//! converted to microseconds so that both join the same way.
//!
//! Values are bounded, not only finite: a feature within
//! [`MAX_ABS_FEATURE`], a target, prediction or metric within
//! [`MAX_ABS_VALUE`] (so that `y_true - y_pred` cannot overflow). A reason
//! quotes at most [`EXCERPT_BYTES`] of the input, as escaped JSON, and is
//! cut at [`MAX_REASON_BYTES`]: it goes into a header and a log line, and a
//! reason that repeated a 65 KB body once overflowed the broker's frame size.
//!
//! A batch message ([`BATCH_CONTENT_TYPE`], `bridge.batch`) is a JSON array
//! of such messages: [`batch_elements`] splits it (bounded in bytes and in
//! samples), and each element is then read as a message of its own, so
//! that a bad one costs only itself.

use crate::core::text::bounded_text;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::config::bridge::MAX_BATCH_SAMPLES;

use crate::core::data::{FeatureVector, N_FEATURES};
use crate::core::messages::{
    Features, Kind, MetricRecord, Prediction, Probabilities, SampleId, Scored, Truth,
    MAX_ABS_FEATURE, MAX_ABS_VALUE,
};
use crate::core::schema::{WireSchema, SCHEMA_HEADER};
use crate::core::table::{number_as_level, quoted, ColumnKind, MAX_ABS_CELL};

/// The content type of a batch message: a JSON array of per-sample
/// messages, each exactly the body it would have alone (docs/wire.md).
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.modelwatch.batch+json";

/// A content type that says "batch message": [`BATCH_CONTENT_TYPE`], in
/// any case, with or without parameters (`; charset=utf-8`), as media
/// types are compared.
pub fn is_batch_content_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case(BATCH_CONTENT_TYPE)
    })
}

/// The elements of a batch body, each as its JSON text, in order. The
/// whole body is refused when it is over `max_bytes`, not a JSON array,
/// empty, or of more than [`MAX_BATCH_SAMPLES`] samples; an element is
/// only split off here, and read (and maybe refused) on its own.
pub fn batch_elements(bytes: &[u8], max_bytes: usize) -> Result<Vec<&RawValue>, Rejection> {
    if bytes.len() > max_bytes {
        return Err(Rejection::TooLarge {
            size: bytes.len(),
            max: max_bytes,
        });
    }
    let elements: Elements = serde_json::from_slice(bytes).map_err(|e| {
        Rejection::NotJson(format!("a batch body is a JSON array of messages: {e}"))
    })?;
    if elements.0.is_empty() {
        return Err(Rejection::BadBody(
            "an empty batch (a batch message holds at least one sample)".into(),
        ));
    }
    Ok(elements.0)
}

/// A JSON array's elements, refused past [`MAX_BATCH_SAMPLES`] (before
/// they are all collected).
struct Elements<'a>(Vec<&'a RawValue>);

impl<'de> serde::Deserialize<'de> for Elements<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Elements<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_BATCH_SAMPLES} messages")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<&'de RawValue>()? {
                    if out.len() == MAX_BATCH_SAMPLES {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_BATCH_SAMPLES} samples"
                        )));
                    }
                    out.push(e);
                }
                Ok(Elements(out))
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// Most bytes of the input a reason quotes.
pub const EXCERPT_BYTES: usize = 120;
/// Most bytes of a reason (the `x-reject-reason` header and the log field).
pub const MAX_REASON_BYTES: usize = 300;

/// Why an inbound message was refused (the text goes into the DLQ header).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("body of {size} bytes is over the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object with \"id\" and \"body\"")]
    NotAnObject,
    /// A JSON array where one sample's object is expected: the hint for a
    /// batch sent without its content type.
    #[error("a JSON array, not an object with \"id\" and \"body\" (an array of samples is read as a batch only with content_type {BATCH_CONTENT_TYPE}; docs/wire.md)")]
    AnArray,
    #[error("no \"id\"")]
    NoId,
    #[error("bad \"id\": {0}")]
    BadId(String),
    #[error("bad \"body\": {0}")]
    BadBody(String),
    /// Of another schema than this role's (or of none, or without one when
    /// this role has one): see [`crate::core::schema`].
    #[error("schema: {0}")]
    Schema(String),
}

impl Rejection {
    /// The kind of rejection, a fixed set: the `reason` label of
    /// `modelwatch_inbound_dead_lettered_total` (the text is not a label).
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::NotJson(_) => "not_json",
            Rejection::NotAnObject | Rejection::AnArray => "not_an_object",
            Rejection::NoId => "no_id",
            Rejection::BadId(_) => "bad_id",
            Rejection::BadBody(_) => "bad_body",
            Rejection::Schema(_) => "schema",
        }
    }

    /// The reason as a header or log field: control characters escaped,
    /// at most [`MAX_REASON_BYTES`].
    pub fn reason(&self) -> String {
        bounded_text(&self.to_string(), MAX_REASON_BYTES)
    }
}

/// A JSON value as quoted in a reason: its JSON text (escaped), at most
/// [`EXCERPT_BYTES`]; a longer one is cut and marked. Never renders more
/// than that, however large the value.
fn excerpt(v: &Value) -> String {
    struct Capped(Vec<u8>);
    impl std::io::Write for Capped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = EXCERPT_BYTES + 1 - self.0.len();
            if room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let n = buf.len().min(room);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Capped(Vec::with_capacity(EXCERPT_BYTES + 1));
    let complete = serde_json::to_writer(&mut w, v).is_ok() && w.0.len() <= EXCERPT_BYTES;
    let mut bytes = w.0;
    if complete {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    bytes.truncate(EXCERPT_BYTES);
    // Cut on a character boundary.
    let valid = match std::str::from_utf8(&bytes) {
        Ok(s) => s.len(),
        Err(e) => e.valid_up_to(),
    };
    bytes.truncate(valid);
    format!("{}...", String::from_utf8_lossy(&bytes))
}

/// A message kind that can be read from the wire.
pub trait Decode: Sized + Send + Sync + 'static {
    const KIND: Kind;
    /// The message of `id` from its `body` (the diabetes data's form).
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection>;
    /// The message of `id` from its JSON object, in a run of `schema`
    /// (the user's own data) when there is one.
    fn from_message(
        id: SampleId,
        obj: &Map<String, Value>,
        schema: Option<&WireSchema>,
    ) -> Result<Self, Rejection> {
        let _ = schema;
        Self::from_body(id, body(obj)?)
    }
}

fn body(obj: &Map<String, Value>) -> Result<&Value, Rejection> {
    obj.get("body")
        .ok_or_else(|| Rejection::BadBody("missing".into()))
}

/// Parses and checks one message body (the diabetes data's roles).
pub fn decode<T: Decode>(bytes: &[u8], max_bytes: usize) -> Result<T, Rejection> {
    decode_in(bytes, max_bytes, None, None)
}

/// Parses and checks one message body for a role of `schema` (`None`: the
/// diabetes data), whose [`SCHEMA_HEADER`] header is `header`: a message
/// of another schema, or without one when the role has one (and the
/// reverse), is refused before its body is read.
pub fn decode_in<T: Decode>(
    bytes: &[u8],
    max_bytes: usize,
    schema: Option<&WireSchema>,
    header: Option<&str>,
) -> Result<T, Rejection> {
    if bytes.len() > max_bytes {
        return Err(Rejection::TooLarge {
            size: bytes.len(),
            max: max_bytes,
        });
    }
    check_schema(schema, header)?;
    let v: Value = match schema {
        None => serde_json::from_slice(bytes).map_err(|e| Rejection::NotJson(e.to_string()))?,
        // Values by name: a key given twice is refused (serde_json would
        // keep the last), and the values are bounded in number.
        Some(s) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| Rejection::NotJson(format!("not UTF-8: {e}")))?;
            let nodes = 4 * (s.features.len() + s.classes.as_ref().map_or(0, Vec::len)) + 64;
            crate::core::json::parse_strict(text, nodes)
                .map_err(|e| Rejection::NotJson(e.to_string()))?
        }
    };
    let obj = match &v {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(Rejection::AnArray),
        _ => return Err(Rejection::NotAnObject),
    };
    let id = parse_id(obj.get("id").ok_or(Rejection::NoId)?)?;
    T::from_message(id, obj, schema)
}

/// The message's schema (its header) is the role's: the same fingerprint,
/// or neither has one (also the rule of `replay --rebuild`).
pub fn check_schema(schema: Option<&WireSchema>, header: Option<&str>) -> Result<(), Rejection> {
    let shown = |h: &str| bounded_text(h, 2 * crate::core::schema::FINGERPRINT_HEX);
    match (schema, header) {
        (None, None) => Ok(()),
        (Some(s), Some(h)) if h == s.fingerprint => Ok(()),
        (Some(s), Some(h)) => Err(Rejection::Schema(format!(
            "the message is of schema {}, this role's is {} (another model or data set)",
            shown(h),
            s.fingerprint
        ))),
        (Some(s), None) => Err(Rejection::Schema(format!(
            "the message has no {SCHEMA_HEADER} header: it is not from a run of this role's schema {} (the diabetes data, or another producer)",
            s.fingerprint
        ))),
        (None, Some(h)) => Err(Rejection::Schema(format!(
            "the message is of schema {} (data of a user's own), and this role runs the diabetes data",
            shown(h)
        ))),
    }
}

/// A row by column name (`{"<column>": value, ...}`, every column of
/// `schema` once, no other): a numeric column's number within the
/// schema's bound of that column, a categorical column's level (a string,
/// or a number for levels that are numbers), as
/// [`WireSchema::level_value`] gives it, or `null` for a missing value
/// (NaN).
fn named_row(v: &Value, schema: &WireSchema) -> Result<FeatureVector, Rejection> {
    let obj = v.as_object().ok_or_else(|| {
        Rejection::BadBody(format!(
            "\"features\" is {}, not an object of values by column name",
            excerpt(v)
        ))
    })?;
    let n = schema.features.len();
    if obj.len() != n {
        let missing = schema
            .features
            .iter()
            .find(|c| !obj.contains_key(&c.name))
            .map(|c| format!(": no {}", quoted(&c.name)))
            .unwrap_or_default();
        return Err(Rejection::BadBody(format!(
            "\"features\" has {} columns, the schema {}{missing}",
            obj.len(),
            n
        )));
    }
    let mut x = FeatureVector::from_elem(0.0, n);
    for (name, value) in obj {
        let j = schema.position(name).ok_or_else(|| {
            Rejection::BadBody(format!(
                "\"features\" has {}, not a column of the schema",
                quoted(name)
            ))
        })?;
        let what = format!("column {}", quoted(name));
        // What the config declares the column may hold (`[[data.columns]]`).
        let declared = |cell: &str, number: Option<f64>| match &schema.declared[j] {
            Some(a) => a.refuses(cell, number).map_or(Ok(()), |why| {
                Err(Rejection::BadBody(format!("{what}: {why}")))
            }),
            None => Ok(()),
        };
        x[j] = match (&schema.features[j].kind, value) {
            // A missing value: the model reads it as the training mean (a
            // number) or no level, the monitor counts it per window.
            (_, Value::Null) => f64::NAN,
            (ColumnKind::Numeric, v) => {
                let x = bounded_number(v, &what, schema.max_abs[j])?;
                declared(&x.to_string(), Some(x))?;
                x
            }
            (ColumnKind::Categorical { .. }, Value::String(level)) => {
                declared(level, None)?;
                schema.level_value(j, level)
            }
            (ColumnKind::Categorical { .. }, Value::Number(_)) => {
                let n = bounded_number(value, &what, MAX_ABS_CELL)?;
                let level = number_as_level(n);
                declared(&level, Some(n))?;
                schema.level_value(j, &level)
            }
            (ColumnKind::Categorical { .. }, v) => {
                return Err(Rejection::BadBody(format!(
                    "{what} is {}, not a level (a string)",
                    excerpt(v)
                )))
            }
        };
    }
    Ok(x)
}

/// A classifier's class index: an integer below the number of classes.
fn class_index(v: &Value, what: &str, classes: &[String]) -> Result<f64, Rejection> {
    let y = finite(v, what)?;
    if y < 0.0 || y.fract() != 0.0 || y >= classes.len() as f64 {
        return Err(Rejection::BadBody(format!(
            "{what} is {y}, not a class index of this classifier (0 to {})",
            classes.len() - 1
        )));
    }
    Ok(y)
}

/// A target or prediction: a class index for a classifier's schema.
fn target_value(v: &Value, what: &str, schema: Option<&WireSchema>) -> Result<f64, Rejection> {
    match schema.and_then(|s| s.classes.as_deref()) {
        Some(classes) => class_index(v, what, classes),
        None => finite(v, what),
    }
}

/// Largest id JSON carries exactly.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

fn parse_id(v: &Value) -> Result<SampleId, Rejection> {
    if let Some(n) = v.as_u64() {
        if n as f64 >= MAX_EXACT {
            return Err(Rejection::BadId(format!("{n} is not below 2^53")));
        }
        return Ok(n);
    }
    let x = v
        .as_f64()
        .ok_or_else(|| Rejection::BadId(format!("{} is not a non-negative number", excerpt(v))))?;
    if !x.is_finite() || x < 0.0 {
        return Err(Rejection::BadId(format!(
            "{x} is not a non-negative number"
        )));
    }
    // Python's datetime.timestamp(): seconds with microseconds.
    let us = if x < 1e12 {
        (x * 1e6).round()
    } else {
        x.round()
    };
    if us >= MAX_EXACT {
        return Err(Rejection::BadId(format!("{x} is too large")));
    }
    Ok(us as SampleId)
}

/// A finite number with `|x| <= max`.
fn bounded_number(v: &Value, what: &str, max: f64) -> Result<f64, Rejection> {
    let x = v
        .as_f64()
        .ok_or_else(|| Rejection::BadBody(format!("{what} is {}, not a number", excerpt(v))))?;
    if !x.is_finite() {
        return Err(Rejection::BadBody(format!("{what} is not finite")));
    }
    if x.abs() > max {
        return Err(Rejection::BadBody(format!(
            "{what} is {x:e}, beyond the limit of ±{max:e}"
        )));
    }
    Ok(x)
}

/// A target, prediction or metric value: within [`MAX_ABS_VALUE`].
fn finite(v: &Value, what: &str) -> Result<f64, Rejection> {
    bounded_number(v, what, MAX_ABS_VALUE)
}

impl Decode for Features {
    const KIND: Kind = Kind::Features;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection> {
        let arr = body.as_array().ok_or_else(|| {
            Rejection::BadBody(format!(
                "expected {N_FEATURES} numbers, got {}",
                excerpt(body)
            ))
        })?;
        if arr.len() != N_FEATURES {
            return Err(Rejection::BadBody(format!(
                "expected {N_FEATURES} features, got {}",
                arr.len()
            )));
        }
        let mut x = FeatureVector::from_elem(0.0, N_FEATURES);
        for (i, v) in arr.iter().enumerate() {
            x[i] = bounded_number(v, &format!("feature {i}"), MAX_ABS_FEATURE)?;
        }
        Ok(Features { id, x })
    }
    fn from_message(
        id: SampleId,
        obj: &Map<String, Value>,
        schema: Option<&WireSchema>,
    ) -> Result<Self, Rejection> {
        match schema {
            None => Self::from_body(id, body(obj)?),
            Some(s) => {
                let v = obj
                    .get("features")
                    .ok_or_else(|| Rejection::BadBody("no \"features\"".into()))?;
                Ok(Features {
                    id,
                    x: named_row(v, s)?,
                })
            }
        }
    }
}

impl Decode for Scored {
    const KIND: Kind = Kind::Scored;
    fn from_body(_: SampleId, _: &Value) -> Result<Self, Rejection> {
        Err(Rejection::Schema(
            "a scored message is for a classifier of a user's own data, and this role runs the diabetes data".into(),
        ))
    }
    fn from_message(
        id: SampleId,
        obj: &Map<String, Value>,
        schema: Option<&WireSchema>,
    ) -> Result<Self, Rejection> {
        let (Some(s), Some(classes)) = (schema, schema.and_then(|s| s.classes.as_deref())) else {
            return Self::from_body(id, &Value::Null);
        };
        let x = named_row(
            obj.get("features")
                .ok_or_else(|| Rejection::BadBody("no \"features\"".into()))?,
            s,
        )?;
        let by_class = obj
            .get("probabilities")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                Rejection::BadBody("no \"probabilities\" object of the classes".into())
            })?;
        if by_class.len() != classes.len() {
            return Err(Rejection::BadBody(format!(
                "\"probabilities\" has {} classes, the classifier {}",
                by_class.len(),
                classes.len()
            )));
        }
        let mut p = Probabilities::new();
        for c in classes {
            let v = by_class.get(c).ok_or_else(|| {
                Rejection::BadBody(format!("\"probabilities\" has no class {}", quoted(c)))
            })?;
            let what = format!("the probability of {}", quoted(c));
            let q = bounded_number(v, &what, f64::MAX)?;
            if !(0.0..=1.0).contains(&q) {
                return Err(Rejection::BadBody(format!(
                    "{what} is {q}, not between 0 and 1"
                )));
            }
            p.push(q);
        }
        let sum: f64 = p.iter().sum();
        if (sum - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
            return Err(Rejection::BadBody(format!(
                "the probabilities sum to {sum}, not 1"
            )));
        }
        Ok(Scored { id, x, p })
    }
}

/// How far from 1 the probabilities of a scored message may sum.
pub const PROBABILITY_SUM_TOLERANCE: f64 = 1e-6;

impl Decode for Truth {
    const KIND: Kind = Kind::YTrue;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection> {
        Ok(Truth {
            id,
            y: finite(body, "y_true")?,
        })
    }
    fn from_message(
        id: SampleId,
        obj: &Map<String, Value>,
        schema: Option<&WireSchema>,
    ) -> Result<Self, Rejection> {
        Ok(Truth {
            id,
            y: target_value(body(obj)?, "y_true", schema)?,
        })
    }
}

impl Decode for Prediction {
    const KIND: Kind = Kind::YPred;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection> {
        Ok(Prediction {
            id,
            y: finite(body, "y_pred")?,
        })
    }
    fn from_message(
        id: SampleId,
        obj: &Map<String, Value>,
        schema: Option<&WireSchema>,
    ) -> Result<Self, Rejection> {
        Ok(Prediction {
            id,
            y: target_value(body(obj)?, "y_pred", schema)?,
        })
    }
}

impl Decode for MetricRecord {
    const KIND: Kind = Kind::Metrics;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection> {
        let field = |k: &str| {
            body.get(k)
                .ok_or_else(|| Rejection::BadBody(format!("no {k}")))
                .and_then(|v| finite(v, k))
        };
        let absolute_error = field("absolute_error")?;
        if absolute_error < 0.0 {
            return Err(Rejection::BadBody(format!(
                "absolute_error is {absolute_error}, below 0"
            )));
        }
        Ok(MetricRecord {
            id,
            y_true: field("y_true")?,
            y_pred: field("y_pred")?,
            absolute_error,
        })
    }
    /// In a run of a schema (made by this program's metric): a
    /// classifier's class indices, and the error |y_true - y_pred|.
    fn from_message(
        id: SampleId,
        obj: &Map<String, Value>,
        schema: Option<&WireSchema>,
    ) -> Result<Self, Rejection> {
        let body = body(obj)?;
        let r = Self::from_body(id, body)?;
        if schema.is_some() {
            let field = |k: &str| body.get(k).unwrap_or(&Value::Null);
            target_value(field("y_true"), "y_true", schema)?;
            target_value(field("y_pred"), "y_pred", schema)?;
            let e = (r.y_true - r.y_pred).abs();
            if (r.absolute_error - e).abs() > 1e-9 * e.max(1.0) {
                return Err(Rejection::BadBody(format!(
                    "absolute_error is {}, but |y_true - y_pred| is {e}",
                    r.absolute_error
                )));
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::messages::WireMessage;

    #[test]
    fn our_own_messages_round_trip() {
        let f = Features {
            id: 1795941769771967,
            x: [0.1; 10].into(),
        };
        assert_eq!(decode::<Features>(&f.to_json(), 65536).unwrap(), f);
        let m = MetricRecord::join(5, 151.0, 206.25);
        assert_eq!(decode::<MetricRecord>(&m.to_json(), 65536).unwrap(), m);
    }

    /// x1 numeric (bounded at 100), color categorical (blue, red; green
    /// past them), a classifier of classes a and b.
    fn schema() -> WireSchema {
        crate::core::schema::example(Some(vec!["a".into(), "b".into()]))
            .with_extra(vec![vec![], vec!["green".into()]])
            .with_bounds(vec![100.0, f64::INFINITY])
    }

    fn in_schema<T: Decode>(body: &str, header: Option<&str>) -> Result<T, Rejection> {
        let s = schema();
        decode_in(body.as_bytes(), 65536, Some(&s), header)
    }

    #[test]
    fn a_schemas_features_round_trip_by_name_with_new_levels_as_text() {
        let s = schema();
        for x in [[1.5, 1.0], [-100.0, 2.0], [0.0, 0.0]] {
            let f = Features {
                id: 9,
                x: FeatureVector::from_slice(&x),
            };
            let back: Features = decode_in(
                &f.to_json_in(Some(&s)),
                65536,
                Some(&s),
                Some(&s.fingerprint),
            )
            .unwrap();
            assert_eq!(back, f);
        }
        // A level neither the model nor the file had: past them all.
        let f: Features = in_schema(
            r#"{"id": 1, "features": {"color": "purple", "x1": 2}}"#,
            Some(&s.fingerprint),
        )
        .unwrap();
        assert_eq!(&f.x[..], &[2.0, 3.0]);
        // A level first read from the wire goes on as its text (the model
        // process's scored message), and reads back as unseen.
        let f: Features = decode_in(
            br#"{"id": 2, "features": {"color": "brand new", "x1": 2}}"#,
            65536,
            Some(&s),
            Some(&s.fingerprint),
        )
        .unwrap();
        let scored = Scored {
            id: 2,
            x: f.x.clone(),
            p: [0.5, 0.5].into_iter().collect(),
        };
        let body = String::from_utf8(scored.to_json_in(Some(&s))).unwrap();
        assert!(body.contains(r#""color":"brand new""#), "{body}");
        let back: Scored =
            decode_in(body.as_bytes(), 65536, Some(&s), Some(&s.fingerprint)).unwrap();
        assert!(back.x[1] >= 2.0, "unseen: past the model's two levels");
        // The largest body of the schema bounds every body it makes.
        assert!(
            s.max_body_bytes() >= body.len(),
            "{} < {}",
            s.max_body_bytes(),
            body.len()
        );
        // A missing value, either kind, is null on the wire and NaN here.
        let f: Features = in_schema(
            r#"{"id": 1, "features": {"color": null, "x1": null}}"#,
            Some(&s.fingerprint),
        )
        .unwrap();
        assert!(f.x.iter().all(|v| v.is_nan()), "{f:?}");
        let body = String::from_utf8(f.to_json_in(Some(&s))).unwrap();
        assert_eq!(body, r#"{"id":1,"features":{"x1":null,"color":null}}"#);
        let p = Scored {
            id: 3,
            x: FeatureVector::from_slice(&[1.0, 0.0]),
            p: [0.25, 0.75].into_iter().collect(),
        };
        let back: Scored = decode_in(
            &p.to_json_in(Some(&s)),
            65536,
            Some(&s),
            Some(&s.fingerprint),
        )
        .unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn a_message_of_another_schema_or_of_none_is_refused_and_says_which() {
        let s = schema();
        let body = r#"{"id": 1, "features": {"x1": 1, "color": "red"}}"#;
        let other = in_schema::<Features>(body, Some("0123456789abcdef")).unwrap_err();
        assert_eq!(other.kind(), "schema");
        assert!(
            other.reason().contains("0123456789abcdef") && other.reason().contains(&s.fingerprint),
            "{other}"
        );
        let none = in_schema::<Truth>(r#"{"id": 1, "body": 1}"#, None).unwrap_err();
        assert!(
            none.reason().contains("no x-modelwatch-schema header"),
            "{none}"
        );
        // A diabetes role refuses a schema's message, whatever its body.
        let diabetes =
            decode_in::<Features>(body.as_bytes(), 65536, None, Some(&s.fingerprint)).unwrap_err();
        assert!(diabetes.reason().contains("diabetes"), "{diabetes}");
        // A huge header is quoted bounded.
        let long = "f".repeat(10_000);
        let r = in_schema::<Features>(body, Some(&long))
            .unwrap_err()
            .reason();
        assert!(r.len() <= MAX_REASON_BYTES, "{r}");
    }

    #[test]
    fn every_bad_field_of_a_schemas_message_is_named() {
        let fp = schema().fingerprint;
        let h = Some(fp.as_str());
        let features: [(&str, &str); 7] = [
            (r#"{"id": 1, "body": [1, 2]}"#, "no \"features\""),
            (r#"{"id": 1, "features": [1, 2]}"#, "not an object"),
            (r#"{"id": 1, "features": {"x1": 1}}"#, "no \"color\""),
            (
                r#"{"id": 1, "features": {"x1": 1, "colour": "red"}}"#,
                "\"colour\", not a column",
            ),
            (
                r#"{"id": 1, "features": {"x1": 1, "color": "red", "z": 0}}"#,
                "has 3 columns",
            ),
            (
                r#"{"id": 1, "features": {"x1": 101, "color": "red"}}"#,
                "limit of ±1e2",
            ),
            (
                r#"{"id": 1, "features": {"x1": "1", "color": "red"}}"#,
                "not a number",
            ),
        ];
        for (body, want) in features {
            let r = in_schema::<Features>(body, h).unwrap_err().reason();
            assert!(r.contains(want), "{body} -> {r}");
        }
        for (body, want) in [
            (r#"{"id": 1, "body": 2}"#, "not a class index"),
            (r#"{"id": 1, "body": 0.5}"#, "not a class index"),
            (r#"{"id": 1, "body": -1}"#, "not a class index"),
        ] {
            let r = in_schema::<Truth>(body, h).unwrap_err().reason();
            assert!(r.contains(want), "{body} -> {r}");
            let r = in_schema::<Prediction>(body, h).unwrap_err().reason();
            assert!(r.contains(want), "{body} -> {r}");
        }
        let x = r#""features": {"x1": 1, "color": "red"}"#;
        for (p, want) in [
            (r#"{"a": 0.5}"#, "has 1 classes"),
            (r#"{"a": 0.5, "c": 0.5}"#, "no class \"b\""),
            (r#"{"a": 0.6, "b": 0.6}"#, "sum to 1.2"),
            (r#"{"a": -0.5, "b": 1.5}"#, "is -0.5, not between 0 and 1"),
            (r#"{"a": 1.5, "b": -0.5}"#, "is 1.5, not between 0 and 1"),
            (r#"{"a": "x", "b": 1}"#, "not a number"),
        ] {
            let body = format!(r#"{{"id": 1, {x}, "probabilities": {p}}}"#);
            let r = in_schema::<Scored>(&body, h).unwrap_err().reason();
            assert!(r.contains(want), "{body} -> {r}");
        }
        // What the config declares a column may hold bounds the wire too.
        let declared = schema().with_declared(vec![
            crate::core::table::Allowed {
                column: "x1".into(),
                range: Some((0.0, 10.0)),
                declared_by: "data.columns",
                ..Default::default()
            },
            crate::core::table::Allowed {
                column: "color".into(),
                levels: vec!["red".into()],
                declared_by: "data.columns",
                ..Default::default()
            },
        ]);
        for (body, want) in [
            (
                r#"{"id": 1, "features": {"x1": 11, "color": "red"}}"#,
                "outside the declared range",
            ),
            (
                r#"{"id": 1, "features": {"x1": 1, "color": "blue"}}"#,
                "not one of data.columns",
            ),
        ] {
            let r = decode_in::<Features>(body.as_bytes(), 65536, Some(&declared), h)
                .unwrap_err()
                .reason();
            assert!(r.contains(want), "{body} -> {r}");
        }
        let ok = r#"{"id": 1, "features": {"x1": 10, "color": "red"}}"#;
        assert!(decode_in::<Features>(ok.as_bytes(), 65536, Some(&declared), h).is_ok());
        let diabetes_scored = decode::<Scored>(br#"{"id": 1, "body": 1}"#, 1000).unwrap_err();
        assert_eq!(diabetes_scored.kind(), "schema");
        // A key given twice: serde_json would keep the last; refused.
        for body in [
            r#"{"id": 1, "features": {"x1": 1, "x1": 2, "color": "red"}}"#,
            r#"{"id": 1, "id": 2, "features": {"x1": 1, "color": "red"}}"#,
        ] {
            let r = in_schema::<Features>(body, h).unwrap_err().reason();
            assert!(
                r.contains("twice") || r.contains("duplicate"),
                "{body} -> {r}"
            );
        }
        // A metric row: class indices, and the error of its own two values.
        for (body, want) in [
            (
                r#"{"id": 1, "body": {"y_true": 1, "y_pred": 0, "absolute_error": 5}}"#,
                "but |y_true - y_pred| is 1",
            ),
            (
                r#"{"id": 1, "body": {"y_true": 0.5, "y_pred": 0, "absolute_error": 0.5}}"#,
                "not a class index",
            ),
        ] {
            let r = in_schema::<MetricRecord>(body, h).unwrap_err().reason();
            assert!(r.contains(want), "{body} -> {r}");
        }
        let ok = r#"{"id": 1, "body": {"y_true": 1, "y_pred": 0, "absolute_error": 1}}"#;
        assert!(in_schema::<MetricRecord>(ok, h).is_ok());
        // Negative errors are refused for the diabetes data too.
        let r = decode::<MetricRecord>(
            br#"{"id": 1, "body": {"y_true": 1, "y_pred": 0, "absolute_error": -5}}"#,
            1000,
        )
        .unwrap_err();
        assert!(r.reason().contains("below 0"), "{r}");
    }

    #[test]
    fn python_float_ids_become_microseconds() {
        let t: Truth = decode(br#"{"id": 1732865012.345678, "body": 151.0}"#, 1000).unwrap();
        assert_eq!(t.id, 1732865012345678);
        assert_eq!(t.y, 151.0);
    }

    #[test]
    fn every_kind_of_bad_message_has_a_reason() {
        let features: [(&[u8], &str); 7] = [
            (b"not json", "not JSON"),
            (
                b"[1,2]",
                "with content_type application/vnd.modelwatch.batch+json",
            ),
            (b"\"x\"", "not a JSON object"),
            (br#"{"body": 1.0}"#, "no \"id\""),
            (br#"{"id": "x", "body": 1.0}"#, "bad \"id\""),
            (br#"{"id": 1, "body": [1,2,3]}"#, "expected 10 features"),
            (br#"{"id": 1}"#, "bad \"body\""),
        ];
        for (bytes, want) in features {
            let err = decode::<Features>(bytes, 1000).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{} -> {err}",
                String::from_utf8_lossy(bytes)
            );
        }
        let truths: [(&[u8], &str); 3] = [
            (br#"{"id": -3, "body": 1.0}"#, "bad \"id\""),
            (br#"{"id": 1, "body": "x"}"#, "not a number"),
            (br#"{"id": 1, "body": NaN}"#, "not JSON"),
        ];
        for (bytes, want) in truths {
            let err = decode::<Truth>(bytes, 1000).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{} -> {err}",
                String::from_utf8_lossy(bytes)
            );
        }
        let big = vec![b' '; 2000];
        assert!(matches!(
            decode::<Truth>(&big, 1000),
            Err(Rejection::TooLarge { .. })
        ));
        let inf = br#"{"id": 1, "body": 1e999}"#;
        assert!(decode::<Truth>(inf, 1000).is_err());
    }

    #[test]
    fn a_reason_quotes_a_bounded_escaped_excerpt_of_a_huge_body() {
        // Issue 8 item 2: 13,000 ids in an array, 65 KB.
        let ids = vec!["9E15"; 13_000].join(",");
        let poison = format!(r#"{{"id":[{ids}],"body":1}}"#);
        let err = decode::<Features>(poison.as_bytes(), 65536).unwrap_err();
        let reason = err.reason();
        assert!(reason.starts_with("bad \"id\": [9"), "{reason}");
        assert!(reason.len() <= MAX_REASON_BYTES, "{} bytes", reason.len());
        let body = format!(
            r#"{{"id": 1, "body": {{"x": "{}\n\u0007"}}}}"#,
            "é".repeat(5000)
        );
        let reason = decode::<Features>(body.as_bytes(), 65536)
            .unwrap_err()
            .reason();
        assert!(reason.len() <= MAX_REASON_BYTES, "{} bytes", reason.len());
        assert!(reason.ends_with("..."), "{reason}");
        let ctl = bounded_text("a\nb\u{7}c", 100);
        assert_eq!(ctl, "a\\nb\\u{7}c");
        assert!(!ctl.chars().any(char::is_control));
    }

    #[test]
    fn values_whose_error_could_overflow_are_refused_with_the_bound() {
        // Issue 8 item 6: 1.7e308 - (-1.7e308) is inf.
        for (body, what) in [
            ("1.7e308", "y_true"),
            ("-1.7e308", "y_true"),
            ("1e101", "y_true"),
            // Issue 18, 2.5: accepted before, and its squared error overflowed.
            ("1e300", "y_true"),
        ] {
            let msg = format!(r#"{{"id": 1, "body": {body}}}"#);
            let reason = decode::<Truth>(msg.as_bytes(), 1000).unwrap_err().reason();
            assert!(
                reason.contains(what) && reason.contains("limit"),
                "{reason}"
            );
        }
        let t: Truth = decode(br#"{"id": 1, "body": -1e100}"#, 1000).unwrap();
        assert_eq!(t.y, -MAX_ABS_VALUE);
        let p = decode::<Prediction>(br#"{"id": 1, "body": -1.7e308}"#, 1000).unwrap_err();
        assert!(p.reason().contains("y_pred"), "{p}");
        let m = br#"{"id": 1, "body": {"y_true": 1e101, "y_pred": 0, "absolute_error": 1}}"#;
        assert!(decode::<MetricRecord>(m, 1000).is_err());
        let f = br#"{"id": 1, "body": [0,0,0,0,0,0,0,0,0,1e7]}"#;
        let reason = decode::<Features>(f, 1000).unwrap_err().reason();
        assert!(reason.contains("feature 9"), "{reason}");
    }

    #[test]
    fn the_batch_content_type_is_read_as_media_types_are() {
        for yes in [
            BATCH_CONTENT_TYPE,
            "Application/VND.modelwatch.batch+JSON",
            "application/vnd.modelwatch.batch+json; charset=utf-8",
            " application/vnd.modelwatch.batch+json ;x=1",
        ] {
            assert!(is_batch_content_type(Some(yes)), "{yes}");
        }
        for no in ["application/json", "application/vnd.modelwatch.batch", ""] {
            assert!(!is_batch_content_type(Some(no)), "{no}");
        }
        assert!(!is_batch_content_type(None));
    }

    #[test]
    fn a_batch_is_split_into_its_messages_and_refused_whole_only_when_unsplittable() {
        let body = br#"[{"id": 1, "body": 151.0}, {"id": 2, "body": "x"}, 3]"#;
        let parts = batch_elements(body, 1000).unwrap();
        let texts: Vec<&str> = parts.iter().map(|p| p.get()).collect();
        assert_eq!(
            texts,
            [
                r#"{"id": 1, "body": 151.0}"#,
                r#"{"id": 2, "body": "x"}"#,
                "3"
            ]
        );
        // Each is then read alone: a bad one costs only itself.
        let read: Vec<Result<Truth, Rejection>> = parts
            .iter()
            .map(|p| decode::<Truth>(p.get().as_bytes(), 1000))
            .collect();
        assert_eq!(read[0].as_ref().unwrap().id, 1);
        assert!(read[1].is_err() && read[2].is_err());
        for (bad, why) in [
            (&b"{\"id\": 1, \"body\": 1.0}"[..], "JSON array"),
            (b"[]", "empty batch"),
            (b"[{\"id\": 1", "JSON array"),
            (b"[1, 2] 3", "JSON array"),
        ] {
            let reason = batch_elements(bad, 1000).unwrap_err().reason();
            assert!(
                reason.contains(why),
                "{}: {reason}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!("[{}]", vec!["1"; 600].join(","));
        assert_eq!(
            batch_elements(big.as_bytes(), 1000).unwrap_err().kind(),
            "too_large"
        );
        let many = format!("[{}]", vec!["1"; MAX_BATCH_SAMPLES + 1].join(","));
        let reason = batch_elements(many.as_bytes(), 1 << 20)
            .unwrap_err()
            .reason();
        assert!(reason.contains("more than 65536 samples"), "{reason}");
        assert_eq!(
            batch_elements(
                format!("[{}]", vec!["1"; MAX_BATCH_SAMPLES].join(",")).as_bytes(),
                1 << 20
            )
            .unwrap()
            .len(),
            MAX_BATCH_SAMPLES
        );
    }
}
