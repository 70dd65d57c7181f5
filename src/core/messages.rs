//! The messages of the pipeline: what actors send each other and what goes
//! on the wire.
//!
//! Four kinds flow through the pipeline: the features of a sample (source ->
//! model), its true target (source -> metric), the model's prediction (model
//! -> metric) and the joined metric record (metric -> plot). Between actors
//! they travel in batches (`Batch<T>`): one actix message per sample caps the
//! pipeline far below what the model and the files can do, so the source
//! groups up to `source.batch_size` samples per message.
//!
//! On RabbitMQ each sample is one message with the JSON body of the Python
//! services this replaces, `{"id": <id>, "body": <value>}`, routed by kind.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::core::data::FeatureVector;
use crate::core::done::Done;

/// A sample's id: microseconds since the Unix epoch, strictly increasing
/// within a process (see [`crate::core::ids`]), below 2^53 so JSON keeps it exact.
pub type SampleId = u64;

/// Largest |value| of a target, a prediction or a metric accepted from the
/// wire (larger values are dead-lettered at decode) and written to or read
/// from `metric_log.csv`. Any two such values differ by at most 2e100, so
/// `|y_true - y_pred|` is finite, and so is every sum the monitor keeps:
/// a squared error is at most 4e200, and a window would need 1e107 of them
/// to overflow `f64::MAX` (about 1.8e308). At 1e300 (the bound before
/// issue 18) truth 1e300 and prediction -1e300 overflowed the squares: an
/// RMSE of 0 and an empty R² for that window, and `rmse_high` could never
/// fire. Any real target is many orders of magnitude smaller.
pub const MAX_ABS_VALUE: f64 = 1e100;

/// Largest |value| of a (scaled) feature accepted from the wire. The
/// diabetes data's scaled features lie within ±0.25; a model artifact is
/// refused unless its predictions stay within [`MAX_ABS_VALUE`] / 10 for
/// every feature row in this range (which contains the data's range).
pub const MAX_ABS_FEATURE: f64 = 1e6;

/// The features of one sample, sklearn-scaled.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub id: SampleId,
    pub x: FeatureVector,
}

/// The true target of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    pub id: SampleId,
    pub y: f64,
}

/// The model's prediction for one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub id: SampleId,
    pub y: f64,
}

/// A classifier's probability of each class (in the model's class order)
/// for one sample. Inline up to four classes.
pub type Probabilities = smallvec::SmallVec<[f64; 4]>;

/// What a classifier said about one sample: the features it predicted on
/// and its class probabilities. In one process the monitor of a
/// classifier takes these from the model in place of the source's
/// features, so that a window's log loss, ROC AUC and Brier score are of
/// the probabilities the model gave (the metric's records carry the
/// predicted class only).
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub id: SampleId,
    pub x: FeatureVector,
    pub p: Probabilities,
}

/// A truth joined with its prediction: one row of `metric_log.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    pub id: SampleId,
    pub y_true: f64,
    pub y_pred: f64,
    pub absolute_error: f64,
}

impl MetricRecord {
    /// Joins a truth and a prediction of the same id.
    pub fn join(id: SampleId, y_true: f64, y_pred: f64) -> MetricRecord {
        MetricRecord {
            id,
            y_true,
            y_pred,
            absolute_error: (y_true - y_pred).abs(),
        }
    }
}

/// Messages of one kind travelling together between actors. The items are
/// shared (`Arc`), so handing a batch to several recipients copies nothing.
#[derive(Debug, Clone)]
pub struct Batch<T> {
    pub items: Arc<[T]>,
    /// When the source emitted the samples (for end-to-end latency).
    pub emitted_at: Instant,
    /// For batches read from RabbitMQ: held until their work is done, then
    /// the deliveries are acknowledged (see [`crate::core::done`]).
    pub done: Option<Done>,
}

impl<T> Batch<T> {
    pub fn new(items: Vec<T>, emitted_at: Instant) -> Batch<T> {
        Batch {
            items: items.into(),
            emitted_at,
            done: None,
        }
    }

    /// The same batch, carrying a completion token.
    pub fn with_done(mut self, done: Option<Done>) -> Batch<T> {
        self.done = done;
        self
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T: 'static> actix::Message for Batch<T> {
    type Result = ();
}

/// The kinds of wire message, with their AMQP routing keys: the four of
/// the pipeline, and the monitor's two (a closed window, an alert event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Features,
    YTrue,
    YPred,
    Metrics,
    Monitor,
    Alerts,
    /// A classifier's features with its class probabilities ([`Scored`]):
    /// published by the model for the monitor of the split layout.
    Scored,
}

impl Kind {
    /// The pipeline's four.
    pub const ALL: [Kind; 4] = [Kind::Features, Kind::YTrue, Kind::YPred, Kind::Metrics];
    /// Every routing key the program publishes.
    pub const PUBLISHED: [Kind; 7] = [
        Kind::Features,
        Kind::YTrue,
        Kind::YPred,
        Kind::Metrics,
        Kind::Monitor,
        Kind::Alerts,
        Kind::Scored,
    ];

    /// The routing key (and the AMQP `type` property).
    pub fn routing_key(self) -> &'static str {
        match self {
            Kind::Features => "features",
            Kind::YTrue => "y_true",
            Kind::YPred => "y_pred",
            Kind::Metrics => "metrics",
            Kind::Monitor => "monitor",
            Kind::Alerts => "alerts",
            Kind::Scored => "scored",
        }
    }

    /// The kind of a routing key, if it is one of ours.
    pub fn from_routing_key(key: &str) -> Option<Kind> {
        Kind::PUBLISHED.into_iter().find(|k| k.routing_key() == key)
    }
}

/// The JSON envelope of every wire message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<B> {
    pub id: SampleId,
    pub body: B,
}

/// The body of a `metrics` message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricBody {
    pub y_true: f64,
    pub y_pred: f64,
    pub absolute_error: f64,
}

/// How a run of the user's own data writes its messages: by column name
/// (implemented by [`crate::core::schema::WireSchema`]; a trait here, so
/// that the messages need not know the schema).
pub trait ByName {
    /// `{"id": id, "features": {...}}`.
    fn features_body(&self, id: SampleId, x: &[f64]) -> Vec<u8>;
    /// The features and `"probabilities": {"<class>": p, ...}`.
    fn scored_body(&self, id: SampleId, x: &[f64], p: &[f64]) -> Vec<u8>;
}

/// A pipeline message that has a wire form.
pub trait WireMessage: Send + Sync + 'static {
    const KIND: Kind;
    fn id(&self) -> SampleId;
    /// The JSON body exactly as the Python services sent it.
    fn to_json(&self) -> Vec<u8>;
    /// The JSON body in a run of `schema` (values by column name, see
    /// [`crate::core::schema`]); without one, [`Self::to_json`].
    fn to_json_in(&self, schema: Option<&dyn ByName>) -> Vec<u8> {
        let _ = schema;
        self.to_json()
    }
}

/// The wire body `{"id": <id>, "body": <body>}` of every message kind.
pub fn envelope<B: Serialize>(id: SampleId, body: B) -> Vec<u8> {
    serde_json::to_vec(&Envelope { id, body }).expect("finite numbers always serialize")
}

impl WireMessage for Features {
    const KIND: Kind = Kind::Features;
    fn id(&self) -> SampleId {
        self.id
    }
    fn to_json(&self) -> Vec<u8> {
        envelope(self.id, &self.x[..])
    }
    fn to_json_in(&self, schema: Option<&dyn ByName>) -> Vec<u8> {
        match schema {
            Some(s) => s.features_body(self.id, &self.x),
            None => self.to_json(),
        }
    }
}

impl WireMessage for Scored {
    const KIND: Kind = Kind::Scored;
    fn id(&self) -> SampleId {
        self.id
    }
    /// Without a schema (never published so: only a classifier of the
    /// user's own data scores), the features and probabilities as arrays.
    fn to_json(&self) -> Vec<u8> {
        envelope(self.id, (&self.x[..], &self.p[..]))
    }
    fn to_json_in(&self, schema: Option<&dyn ByName>) -> Vec<u8> {
        match schema {
            Some(s) => s.scored_body(self.id, &self.x, &self.p),
            None => self.to_json(),
        }
    }
}

impl WireMessage for Truth {
    const KIND: Kind = Kind::YTrue;
    fn id(&self) -> SampleId {
        self.id
    }
    fn to_json(&self) -> Vec<u8> {
        envelope(self.id, self.y)
    }
}

impl WireMessage for Prediction {
    const KIND: Kind = Kind::YPred;
    fn id(&self) -> SampleId {
        self.id
    }
    fn to_json(&self) -> Vec<u8> {
        envelope(self.id, self.y)
    }
}

impl WireMessage for MetricRecord {
    const KIND: Kind = Kind::Metrics;
    fn id(&self) -> SampleId {
        self.id
    }
    fn to_json(&self) -> Vec<u8> {
        envelope(
            self.id,
            MetricBody {
                y_true: self.y_true,
                y_pred: self.y_pred,
                absolute_error: self.absolute_error,
            },
        )
    }
}

/// A message of the monitor on the wire: `{"id": <id>, "body": <report or
/// event>}` under a fresh id of its own (two alerts of one window must not
/// share a `message_id`, or a consumer that deduplicates would drop one).
#[derive(Debug, Clone, PartialEq)]
pub struct Published<T> {
    pub id: SampleId,
    pub body: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bodies_match_the_python_services() {
        let f = Features {
            id: 1732865012345678,
            x: [0.5, -0.25, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0].into(),
        };
        assert_eq!(
            String::from_utf8(f.to_json()).unwrap(),
            r#"{"id":1732865012345678,"body":[0.5,-0.25,0.0,1.0,2.0,3.0,4.0,5.0,6.0,7.0]}"#
        );
        let t = Truth { id: 7, y: 151.0 };
        assert_eq!(t.to_json(), br#"{"id":7,"body":151.0}"#);
        let m = MetricRecord::join(7, 151.0, 206.5);
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(v["body"]["absolute_error"], 55.5);
        assert_eq!(v["body"]["y_pred"], 206.5);
        assert_eq!(v["id"], 7);
    }
}
