//! Parsing and checking inbound wire messages.
//!
//! A message read from RabbitMQ is accepted only if it is a JSON object with
//! a usable `id` and a `body` of the right shape with finite numbers; anything
//! else is a [`Rejection`] whose text becomes the dead-letter reason. Ids may
//! be integers (this program's microsecond ids) or the float
//! `datetime.timestamp()` seconds of the original Python services, which are
//! converted to microseconds so that both join the same way.

use serde_json::Value;

use crate::data::N_FEATURES;
use crate::messages::{Features, Kind, MetricRecord, Prediction, SampleId, Truth};

/// Why an inbound message was refused (the text goes into the DLQ header).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("body of {size} bytes is over the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object with \"id\" and \"body\"")]
    NotAnObject,
    #[error("no \"id\"")]
    NoId,
    #[error("bad \"id\": {0}")]
    BadId(String),
    #[error("bad \"body\": {0}")]
    BadBody(String),
}

/// A message kind that can be read from the wire.
pub trait Decode: Sized + Send + Sync + 'static {
    const KIND: Kind;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection>;
}

/// Parses and checks one message body.
pub fn decode<T: Decode>(bytes: &[u8], max_bytes: usize) -> Result<T, Rejection> {
    if bytes.len() > max_bytes {
        return Err(Rejection::TooLarge {
            size: bytes.len(),
            max: max_bytes,
        });
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| Rejection::NotJson(e.to_string()))?;
    let obj = v.as_object().ok_or(Rejection::NotAnObject)?;
    let id = parse_id(obj.get("id").ok_or(Rejection::NoId)?)?;
    let body = obj
        .get("body")
        .ok_or_else(|| Rejection::BadBody("missing".into()))?;
    T::from_body(id, body)
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
        .ok_or_else(|| Rejection::BadId(format!("{v} is not a non-negative number")))?;
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

fn finite(v: &Value, what: &str) -> Result<f64, Rejection> {
    let x = v
        .as_f64()
        .ok_or_else(|| Rejection::BadBody(format!("{what} is {v}, not a number")))?;
    if !x.is_finite() {
        return Err(Rejection::BadBody(format!("{what} is not finite")));
    }
    Ok(x)
}

impl Decode for Features {
    const KIND: Kind = Kind::Features;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection> {
        let arr = body.as_array().ok_or_else(|| {
            Rejection::BadBody(format!("expected {N_FEATURES} numbers, got {body}"))
        })?;
        if arr.len() != N_FEATURES {
            return Err(Rejection::BadBody(format!(
                "expected {N_FEATURES} features, got {}",
                arr.len()
            )));
        }
        let mut x = [0.0; N_FEATURES];
        for (i, v) in arr.iter().enumerate() {
            x[i] = finite(v, &format!("feature {i}"))?;
        }
        Ok(Features { id, x })
    }
}

impl Decode for Truth {
    const KIND: Kind = Kind::YTrue;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection> {
        Ok(Truth {
            id,
            y: finite(body, "y_true")?,
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
}

impl Decode for MetricRecord {
    const KIND: Kind = Kind::Metrics;
    fn from_body(id: SampleId, body: &Value) -> Result<Self, Rejection> {
        let field = |k: &str| {
            body.get(k)
                .ok_or_else(|| Rejection::BadBody(format!("no {k}")))
                .and_then(|v| finite(v, k))
        };
        Ok(MetricRecord {
            id,
            y_true: field("y_true")?,
            y_pred: field("y_pred")?,
            absolute_error: field("absolute_error")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::WireMessage;

    #[test]
    fn our_own_messages_round_trip() {
        let f = Features {
            id: 1795941769771967,
            x: [0.1; 10],
        };
        assert_eq!(decode::<Features>(&f.to_json(), 65536).unwrap(), f);
        let m = MetricRecord::join(5, 151.0, 206.25);
        assert_eq!(decode::<MetricRecord>(&m.to_json(), 65536).unwrap(), m);
    }

    #[test]
    fn python_float_ids_become_microseconds() {
        let t: Truth = decode(br#"{"id": 1732865012.345678, "body": 151.0}"#, 1000).unwrap();
        assert_eq!(t.id, 1732865012345678);
        assert_eq!(t.y, 151.0);
    }

    #[test]
    fn every_kind_of_bad_message_has_a_reason() {
        let features: [(&[u8], &str); 6] = [
            (b"not json", "not JSON"),
            (b"[1,2]", "not a JSON object"),
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
}
