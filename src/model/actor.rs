//! ModelActor: predicts each batch of features and emits the predictions.
//!
//! An ONNX model is run once per batch ([`crate::model::onnx`]). Should it
//! fail on a batch, each row is run alone, and a row it cannot predict
//! (ONNX Runtime fails, or the value is not finite or beyond bounds) gets no
//! prediction: it is logged and counted, and the metric counts its truth as
//! unmatched (the run then exits 1), instead of the process stopping on
//! one bad row.
//!
//! It may also pass the features it predicted on to more recipients
//! ([`ModelActor::forwarding`]): with `--legacy-inbound` the features come
//! from the Python services' queue, so the monitor (elsewhere) sees them
//! only if the model forwards them. Those recipients are work recipients:
//! the inbound batch is acknowledged once the predictions and the forwarded
//! features are both confirmed by the broker (at least once).

use std::sync::Arc;

use actix::prelude::*;

use crate::core::actor::fatal_dead_actor;
use crate::core::fanout::Fanout;
use crate::core::messages::{Batch, Features, Prediction, Probabilities, Scored};
use crate::model::Model;

/// Holds the fitted model; never sees the truth.
pub struct ModelActor {
    model: Arc<Model>,
    out: Fanout<Batch<Prediction>>,
    /// Who else gets the features (empty unless forwarding).
    forward: Fanout<Batch<Features>>,
    /// Who gets a classifier's features with its class probabilities (the
    /// monitor, in one process; empty otherwise).
    scored: Fanout<Batch<Scored>>,
    predicted: u64,
    /// Rows an ONNX model could not predict (process-wide: the exit line
    /// and `/metrics` read it).
    unpredicted: prometheus_client::metrics::counter::Counter,
    /// Batches an ONNX model failed on, for a bounded warning.
    failed_batches: u64,
}

impl ModelActor {
    pub fn new(model: Arc<Model>, out: Fanout<Batch<Prediction>>) -> ModelActor {
        ModelActor {
            model,
            out,
            forward: Fanout::default(),
            scored: Fanout::default(),
            predicted: 0,
            unpredicted: crate::core::metrics::model_unpredicted(),
            failed_batches: 0,
        }
    }

    /// Also sends every batch of features it takes to `forward` (awaited).
    pub fn forwarding(mut self, forward: Fanout<Batch<Features>>) -> ModelActor {
        self.forward = forward;
        self
    }

    /// Also sends a classifier's class probabilities, with the features, to
    /// `scored` (see [`Scored`]).
    pub fn scoring(mut self, scored: Fanout<Batch<Scored>>) -> ModelActor {
        self.scored = scored;
        self
    }
}

impl Actor for ModelActor {
    type Context = Context<Self>;
}

impl Supervised for ModelActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(predicted = self.predicted, "model actor restarting");
    }
}

impl Handler<Batch<Features>> for ModelActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, batch: Batch<Features>, _: &mut Context<Self>) -> Self::Result {
        fail::fail_point!("model-predict");
        let model = Arc::clone(&self.model);
        let (predictions, scored) = match &*model {
            Model::Tabular(m) if m.is_onnx() => self.predict_onnx(m, &batch),
            _ => self.predict_each(&batch),
        };
        // The local monitor observes it (never awaited); the bridge, for a
        // monitor in another process, is a work recipient: awaited, and
        // the inbound features are acked only once the broker has it.
        let scored = scored.map(|s| self.scored.send(s));
        self.predicted += predictions.len() as u64;
        let out = Batch::new(predictions, batch.emitted_at).with_done(batch.done.clone());
        // Forwarded features first: they reach the broker before the
        // predictions, so the monitor has them when the records come.
        let forwarded = (!self.forward.is_empty()).then(|| self.forward.send(batch));
        let sent = self.out.send(out);
        Box::pin(async move {
            if let Err(e) = sent.await {
                fatal_dead_actor("model", e);
            }
            if let Some(Err(e)) = futures::future::OptionFuture::from(forwarded).await {
                fatal_dead_actor("model (forwarding features)", e);
            }
            if let Some(Err(e)) = futures::future::OptionFuture::from(scored).await {
                fatal_dead_actor("model (scored features)", e);
            }
        })
    }
}

impl ModelActor {
    /// The built-in models: row by row (a dot product each).
    fn predict_each(&self, batch: &Batch<Features>) -> (Vec<Prediction>, Option<Batch<Scored>>) {
        if self.scored.is_empty() {
            let predictions: Vec<Prediction> = batch
                .items
                .iter()
                .map(|f| Prediction {
                    id: f.id,
                    y: self.model.predict(&f.x),
                })
                .collect();
            (predictions, None)
        } else {
            let mut predictions = Vec::with_capacity(batch.len());
            let mut scored = Vec::with_capacity(batch.len());
            for f in batch.items.iter() {
                let mut p = Probabilities::new();
                let y = self.model.predict_scored(&f.x, &mut p);
                predictions.push(Prediction { id: f.id, y });
                scored.push(Scored {
                    id: f.id,
                    x: f.x.clone(),
                    p,
                });
            }
            let scored = Batch::new(scored, batch.emitted_at).with_done(batch.done.clone());
            (predictions, Some(scored))
        }
    }

    /// An ONNX model: one run for the batch; on failure, a run per row,
    /// and the rows that still fail left without a prediction. A
    /// classifier's scored features only when someone takes them.
    fn predict_onnx(
        &mut self,
        m: &crate::model::tabular::TabularModel,
        batch: &Batch<Features>,
    ) -> (Vec<Prediction>, Option<Batch<Scored>>) {
        let rows: Vec<&[f64]> = batch.items.iter().map(|f| &f.x[..]).collect();
        let mut predictions = Vec::with_capacity(rows.len());
        let wants_scored = !self.scored.is_empty();
        let mut scored = Vec::new();
        // A regression's probabilities are empty: `p` is None for it.
        let mut take = |f: &Features, y: f64, p: Option<Probabilities>| {
            predictions.push(Prediction { id: f.id, y });
            if let Some(p) = p.filter(|_| wants_scored) {
                scored.push(Scored {
                    id: f.id,
                    x: f.x.clone(),
                    p,
                });
            }
        };
        match m.predict_rows(&rows) {
            Ok((ys, ps)) => {
                let mut ps = ps.into_iter();
                for (f, y) in batch.items.iter().zip(ys) {
                    take(f, y, ps.next());
                }
            }
            Err(batch_error) => {
                self.failed_batches += 1;
                if worth_logging(self.failed_batches) {
                    tracing::warn!(error = %batch_error, rows = rows.len(), failed_batches = self.failed_batches, "ONNX model failed on a batch; running its rows one by one");
                }
                for (f, row) in batch.items.iter().zip(&rows) {
                    match m.predict_rows(std::slice::from_ref(row)) {
                        Ok((y, mut p)) => take(f, y[0], p.pop()),
                        Err(e) => {
                            let unpredicted = self.unpredicted.inc() + 1;
                            if worth_logging(unpredicted) {
                                tracing::error!(
                                    id = f.id,
                                    error = %e,
                                    unpredicted,
                                    "ONNX model: no prediction for this row (its truth stays unmatched)"
                                );
                            }
                        }
                    }
                }
            }
        }
        let scored = wants_scored
            .then(|| Batch::new(scored, batch.emitted_at).with_done(batch.done.clone()));
        (predictions, scored)
    }
}

/// Whether the `n`-th of a repeated event is logged: the first ten, then
/// every 1000th (a bounded log, whatever the count).
fn worth_logging(n: u64) -> bool {
    n <= 10 || n.is_multiple_of(1000)
}
