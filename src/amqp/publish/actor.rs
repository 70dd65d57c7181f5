//! BridgeActor: the pipeline-side face of the bridge. It is one more
//! recipient of every batch; it turns each sample into its wire message and
//! pushes it into the bounded outbox, answering only once the messages are
//! in (so under `block` a full outbox slows the sender down).
//!
//! A second one, [`BridgeActor::to_queue`], shares the outbox and sends its
//! messages straight to one queue through the default exchange: the model
//! role forwards the features it consumed from the Python services' queue
//! `features` to the monitor's queue that way (see
//! [`crate::pipeline`]), since publishing them on the exchange under
//! `features` would route them back into that queue.

use std::sync::Arc;

use actix::prelude::*;

use super::outbox::{unix_seconds, OutMessage, Outbox};
use crate::core::messages::{Batch, WireMessage};
use crate::core::schema::WireSchema;

pub struct BridgeActor {
    outbox: Arc<Outbox>,
    /// Every message goes straight to this queue, not to the exchange.
    queue: Option<Arc<str>>,
    /// The run's schema (data of the user's own): features by column
    /// name, the fingerprint in a header of every message.
    schema: Option<Arc<WireSchema>>,
    fingerprint: Option<Arc<str>>,
}

impl BridgeActor {
    pub fn new(outbox: Arc<Outbox>, schema: Option<Arc<WireSchema>>) -> BridgeActor {
        BridgeActor {
            fingerprint: schema.as_ref().map(|s| s.fingerprint.as_str().into()),
            outbox,
            queue: None,
            schema,
        }
    }

    /// A bridge actor whose messages go to `queue` through the default
    /// exchange (same outbox, confirms and retries as the others).
    pub fn to_queue(
        outbox: Arc<Outbox>,
        queue: &str,
        schema: Option<Arc<WireSchema>>,
    ) -> BridgeActor {
        BridgeActor {
            queue: Some(queue.into()),
            ..BridgeActor::new(outbox, schema)
        }
    }
}

impl Actor for BridgeActor {
    type Context = Context<Self>;
}

impl Supervised for BridgeActor {}

impl<T: WireMessage> Handler<Batch<T>> for BridgeActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, batch: Batch<T>, _: &mut Context<Self>) -> Self::Result {
        let now = unix_seconds();
        let msgs: Vec<OutMessage> = batch
            .items
            .iter()
            .map(|m| OutMessage {
                done: batch.done.clone(),
                queue: self.queue.clone(),
                schema: self.fingerprint.clone(),
                ..OutMessage::from_wire(m, now, self.schema.as_deref())
            })
            .collect();
        let outbox = self.outbox.clone();
        Box::pin(async move { outbox.push(msgs).await })
    }
}
