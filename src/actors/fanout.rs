//! The recipients of one kind of message, and sending to all of them.

use actix::{Message, Recipient};
use futures::future::join_all;
use std::future::Future;

/// Every recipient of messages of type `M`, wired at start-up.
pub struct Fanout<M: Message + Send>
where
    M::Result: Send,
{
    recipients: Vec<Recipient<M>>,
}

impl<M> Default for Fanout<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn default() -> Self {
        Fanout {
            recipients: Vec::new(),
        }
    }
}

impl<M> Fanout<M>
where
    M: Message<Result = ()> + Send + Clone + 'static,
{
    /// Adds a recipient.
    pub fn add(&mut self, r: Recipient<M>) {
        self.recipients.push(r);
    }

    /// A fanout with these recipients.
    pub fn of(recipients: impl IntoIterator<Item = Recipient<M>>) -> Self {
        Fanout {
            recipients: recipients.into_iter().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.recipients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }

    /// Hands `msg` to every recipient; resolves once all have handled it.
    /// Queueing happens now, in wiring order; waiting happens in the future.
    pub fn send(&self, msg: M) -> impl Future<Output = Result<(), actix::MailboxError>> + 'static {
        let sends: Vec<_> = self
            .recipients
            .iter()
            .map(|r| r.send(msg.clone()))
            .collect();
        async move {
            for r in join_all(sends).await {
                r?;
            }
            Ok(())
        }
    }
}
