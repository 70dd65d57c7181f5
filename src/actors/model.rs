//! ModelActor: predicts each batch of features and emits the predictions.

use std::sync::Arc;

use actix::prelude::*;

use super::{fatal_dead_actor, Fanout};
use crate::messages::{Batch, Features, Prediction};
use crate::model::LinearModel;

/// Holds the fitted model; never sees the truth.
pub struct ModelActor {
    model: Arc<LinearModel>,
    out: Fanout<Batch<Prediction>>,
    predicted: u64,
}

impl ModelActor {
    pub fn new(model: Arc<LinearModel>, out: Fanout<Batch<Prediction>>) -> ModelActor {
        ModelActor {
            model,
            out,
            predicted: 0,
        }
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
        let predictions: Vec<Prediction> = batch
            .items
            .iter()
            .map(|f| Prediction {
                id: f.id,
                y: self.model.predict(&f.x),
            })
            .collect();
        self.predicted += predictions.len() as u64;
        let out = Batch::new(predictions, batch.emitted_at).with_done(batch.done.clone());
        let sent = self.out.send(out);
        Box::pin(async move {
            if let Err(e) = sent.await {
                fatal_dead_actor("model", e);
            }
        })
    }
}
