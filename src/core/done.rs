//! Completion tokens: knowing when the work caused by an inbound message is
//! finished, so that its AMQP delivery is acknowledged only then.
//!
//! An inbound consumer creates one [`Done`] per batch of deliveries and the
//! batch carries it through the actors. Whoever still has work to do for the
//! batch keeps a clone: the metric until the rows are written to the file,
//! the bridge until the broker confirms the published prediction. When the
//! last clone is dropped the consumer learns the outcome: success (ack), or
//! failure if any holder called [`Done::fail`] (for example the bridge
//! dropped the message from a full buffer), in which case the deliveries are
//! requeued. Local pipelines carry no token, and pay nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

struct Inner {
    failed: AtomicBool,
    tx: Mutex<Option<oneshot::Sender<bool>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let tx = self.tx.get_mut().map(Option::take).unwrap_or(None);
        if let Some(tx) = tx {
            let _ = tx.send(!self.failed.load(Ordering::Acquire));
        }
    }
}

/// A shared completion token; the outcome fires when the last clone drops.
#[derive(Clone)]
pub struct Done(Arc<Inner>);

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Done")
    }
}

/// Resolves to `true` when the work succeeded, `false` when it failed.
pub type Outcome = oneshot::Receiver<bool>;

impl Done {
    /// A new token and the receiver of its outcome.
    pub fn new() -> (Done, Outcome) {
        let (tx, rx) = oneshot::channel();
        let inner = Inner {
            failed: AtomicBool::new(false),
            tx: Mutex::new(Some(tx)),
        };
        (Done(Arc::new(inner)), rx)
    }

    /// Marks the work as failed: the deliveries will be requeued.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_when_the_last_clone_drops() {
        let (done, mut outcome) = Done::new();
        let a = done.clone();
        drop(done);
        assert!(outcome.try_recv().is_err(), "still held");
        drop(a);
        assert!(outcome.await.unwrap());
    }

    #[tokio::test]
    async fn any_failure_makes_the_outcome_false() {
        let (done, outcome) = Done::new();
        let a = done.clone();
        a.fail();
        drop((done, a));
        assert!(!outcome.await.unwrap());
    }
}
