//! BridgeActor: the pipeline-side face of the bridge. It is one more
//! recipient of every batch; it turns each sample into its wire message and
//! pushes it into the bounded outbox, answering only once the messages are
//! in (so under `block` a full outbox slows the sender down).

use std::sync::Arc;

use actix::prelude::*;

use super::outbox::{unix_seconds, OutMessage, Outbox};
use crate::messages::{Batch, WireMessage};

pub struct BridgeActor {
    outbox: Arc<Outbox>,
}

impl BridgeActor {
    pub fn new(outbox: Arc<Outbox>) -> BridgeActor {
        BridgeActor { outbox }
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
                ..OutMessage::from_wire(m, now)
            })
            .collect();
        let outbox = self.outbox.clone();
        Box::pin(async move { outbox.push(msgs).await })
    }
}
