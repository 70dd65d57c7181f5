//! BridgeActor: the pipeline-side face of the bridge. It is one more
//! recipient of every batch; it turns each sample into its wire message and
//! pushes it into the bounded outbox, answering only once the messages are
//! in (so under `block` a full outbox slows the sender down).
//!
//! With `bridge.batch` ([`BatchForm`]) the samples of a pipeline batch go
//! as batch messages of up to `bridge.batch_max` samples and
//! `inbound.max_batch_bytes` bytes (the batch form of docs/wire.md, read by
//! modelwatch's own consumers); a lone sample keeps the per-sample form.
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

/// Bounds of a batch message: most samples, and most body bytes (what a
/// consumer takes, `inbound.max_batch_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct BatchForm {
    pub max_samples: usize,
    pub max_bytes: usize,
}

pub struct BridgeActor {
    outbox: Arc<Outbox>,
    /// Batch messages (`bridge.batch`), or one message per sample.
    batch: Option<BatchForm>,
    /// Every message goes straight to this queue, not to the exchange.
    queue: Option<Arc<str>>,
    /// The run's schema (data of the user's own): features by column
    /// name, the fingerprint in a header of every message.
    schema: Option<Arc<WireSchema>>,
    fingerprint: Option<Arc<str>>,
}

impl BridgeActor {
    pub fn new(
        outbox: Arc<Outbox>,
        schema: Option<Arc<WireSchema>>,
        batch: Option<BatchForm>,
    ) -> BridgeActor {
        BridgeActor {
            batch,
            fingerprint: schema.as_ref().map(|s| s.fingerprint.as_str().into()),
            outbox,
            queue: None,
            schema,
        }
    }

    /// A bridge actor whose messages go to `queue` through the default
    /// exchange (same outbox, confirms and retries as the others), one
    /// per sample (it forwards what the Python services sent).
    pub fn to_queue(
        outbox: Arc<Outbox>,
        queue: &str,
        schema: Option<Arc<WireSchema>>,
    ) -> BridgeActor {
        BridgeActor {
            queue: Some(queue.into()),
            ..BridgeActor::new(outbox, schema, None)
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
        let mut msgs: Vec<OutMessage> = batch
            .items
            .iter()
            .map(|m| OutMessage {
                done: batch.done.clone(),
                queue: self.queue.clone(),
                schema: self.fingerprint.clone(),
                ..OutMessage::from_wire(m, now, self.schema.as_deref())
            })
            .collect();
        if let Some(form) = self.batch {
            msgs = batched(msgs, form);
        }
        let outbox = self.outbox.clone();
        Box::pin(async move { outbox.push(msgs).await })
    }
}

/// `msgs` (one sample each, of one kind) joined into batch messages of at
/// most `form.max_samples` samples and `form.max_bytes` bytes, in order;
/// a group of one stays a per-sample message.
pub fn batched(msgs: Vec<OutMessage>, form: BatchForm) -> Vec<OutMessage> {
    let mut out = Vec::new();
    let mut group: Vec<OutMessage> = Vec::new();
    // The body the group would make: `[`, the bodies, commas, `]`.
    let mut bytes = 1;
    for m in msgs {
        let grown = bytes + m.body.len() + 1;
        if !group.is_empty() && (group.len() == form.max_samples || grown > form.max_bytes) {
            out.push(join(std::mem::take(&mut group)));
            bytes = 1;
        }
        bytes += m.body.len() + 1;
        group.push(m);
    }
    if !group.is_empty() {
        out.push(join(group));
    }
    out
}

/// One message of `group` (not empty): itself alone, else the batch form.
fn join(mut group: Vec<OutMessage>) -> OutMessage {
    if group.len() == 1 {
        return group.pop().expect("one message");
    }
    let size = group.iter().map(|m| m.body.len() + 1).sum::<usize>() + 1;
    let mut body = Vec::with_capacity(size);
    body.push(b'[');
    for (i, m) in group.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&m.body);
    }
    body.push(b']');
    let last = group[group.len() - 1].id;
    let samples = group.len() as u32;
    let first = group.swap_remove(0);
    OutMessage {
        body,
        samples,
        last,
        ..first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::messages::Truth;

    fn msgs(n: u64) -> Vec<OutMessage> {
        (0..n)
            .map(|id| OutMessage::from_wire(&Truth { id, y: 1.5 }, 0, None))
            .collect()
    }

    #[test]
    fn batches_hold_every_sample_in_order_within_both_bounds() {
        let one = msgs(1)[0].body.len();
        let form = BatchForm {
            max_samples: 4,
            max_bytes: 3 * (one + 1) + 1,
        };
        let out = batched(msgs(10), form);
        let sizes: Vec<u32> = out.iter().map(|m| m.samples).collect();
        assert_eq!(sizes, vec![3, 3, 3, 1]);
        let mut ids = vec![];
        for m in &out {
            assert!(m.body.len() <= form.max_bytes);
            let v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
            let items = match v {
                serde_json::Value::Array(a) => a,
                one => vec![one],
            };
            assert_eq!(items.len() as u32, m.samples);
            assert_eq!(items[0]["id"].as_u64(), Some(m.id));
            assert_eq!(items[items.len() - 1]["id"].as_u64(), Some(m.last));
            ids.extend(items.iter().map(|i| i["id"].as_u64().unwrap()));
        }
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        let by_count = batched(
            msgs(10),
            BatchForm {
                max_samples: 4,
                max_bytes: 1 << 20,
            },
        );
        let sizes: Vec<u32> = by_count.iter().map(|m| m.samples).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
    }
}
