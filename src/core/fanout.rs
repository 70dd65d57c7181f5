//! The recipients of one kind of message, and sending to all of them.
//!
//! Two kinds of recipient, and the difference is the point of this module:
//! - **work** recipients (the next actor of the pipeline, the bridge with
//!   `on_full = "block"`) are awaited: the sender goes on only once each has
//!   handled the message, so a slow one slows the source (backpressure) and
//!   nothing is lost;
//! - **observers** (monitors, dashboards, taps) get a bounded, non-blocking
//!   hand-off: the message goes into the observer's mailbox with
//!   `try_send`, and when that mailbox is full the observer simply misses
//!   it, counted in `modelwatch_observer_dropped_total{observer}`. An
//!   observer that falls behind can never slow the pipeline.

use actix::{Message, Recipient};
use futures::future::join_all;
use prometheus_client::metrics::counter::Counter;
use std::future::Future;

use crate::core::messages::Batch;
use crate::core::metrics::{Metrics, ObserverLabel};

/// How many samples a message carries (what an observer's drop counts).
pub trait Items {
    fn items(&self) -> u64;
}

impl<T> Items for Batch<T> {
    fn items(&self) -> u64 {
        self.items.len() as u64
    }
}

/// An observer: a recipient that is never waited for.
struct Observer<M: Message + Send>
where
    M::Result: Send,
{
    name: &'static str,
    recipient: Recipient<M>,
    dropped: Counter,
}

/// Every recipient of messages of type `M`, wired at start-up.
pub struct Fanout<M: Message + Send>
where
    M::Result: Send,
{
    work: Vec<Recipient<M>>,
    observers: Vec<Observer<M>>,
}

impl<M> Default for Fanout<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn default() -> Self {
        Fanout {
            work: Vec::new(),
            observers: Vec::new(),
        }
    }
}

impl<M> Fanout<M>
where
    M: Message<Result = ()> + Items + Send + Clone + 'static,
{
    /// A fanout with these work recipients.
    pub fn of(work: impl IntoIterator<Item = Recipient<M>>) -> Self {
        Fanout {
            work: work.into_iter().collect(),
            observers: Vec::new(),
        }
    }

    /// Adds a work recipient (awaited).
    pub fn add(&mut self, r: Recipient<M>) {
        self.work.push(r);
    }

    /// With an observer (never awaited; misses what it has no room for).
    pub fn observed_by(mut self, name: &'static str, r: Recipient<M>, metrics: &Metrics) -> Self {
        let dropped = metrics
            .observer_dropped
            .get_or_create(&ObserverLabel { observer: name })
            .clone();
        self.observers.push(Observer {
            name,
            recipient: r,
            dropped,
        });
        self
    }

    /// With an observer, if there is one (it may not run in this process).
    pub fn maybe_observed_by(
        self,
        name: &'static str,
        r: Option<Recipient<M>>,
        metrics: &Metrics,
    ) -> Self {
        match r {
            Some(r) => self.observed_by(name, r, metrics),
            None => self,
        }
    }

    pub fn len(&self) -> usize {
        self.work.len() + self.observers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands `msg` to every recipient; resolves once every work recipient
    /// has handled it. Queueing happens now, in wiring order (observers
    /// first: a copy each, or a counted miss); waiting happens in the future.
    pub fn send(&self, msg: M) -> impl Future<Output = Result<(), actix::MailboxError>> + 'static {
        for o in &self.observers {
            if o.recipient.try_send(msg.clone()).is_err() {
                o.dropped.inc_by(msg.items());
                tracing::trace!(
                    observer = o.name,
                    "observer behind; message not handed over"
                );
            }
        }
        let sends: Vec<_> = self.work.iter().map(|r| r.send(msg.clone())).collect();
        async move {
            for r in join_all(sends).await {
                r?;
            }
            Ok(())
        }
    }
}
