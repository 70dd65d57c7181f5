//! The stop signal of a run, passed in as a value (tokio-rs/mini-redis's
//! `server::run(listener, shutdown)` is the model).
//!
//! A run stops in two steps. [`Shutdown::drain`] (the first SIGINT or
//! SIGTERM, or a test that has seen enough) asks it to stop taking work and
//! finish what is in flight: flush the files, render the last plot, wait for
//! the broker's confirms. [`Shutdown::abort`] (a second signal) gives up on
//! the drain: the run returns at once with an error that says what was left
//! undone. Signals become these calls in `cli.rs` only; the pipeline just
//! awaits them, so a test can start and stop a whole pipeline in-process.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Cheap to clone; every clone sees the same two steps.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    drain: CancellationToken,
    abort: CancellationToken,
    why: Arc<Mutex<(Option<String>, Option<String>)>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the run to stop and drain; `why` is logged (e.g. "SIGTERM").
    pub fn drain(&self, why: &str) {
        let mut w = self.why.lock().expect("not poisoned");
        w.0.get_or_insert_with(|| why.to_owned());
        self.drain.cancel();
    }

    /// Gives up on the drain (implies [`Shutdown::drain`]).
    pub fn abort(&self, why: &str) {
        self.drain(why);
        let mut w = self.why.lock().expect("not poisoned");
        w.1.get_or_insert_with(|| why.to_owned());
        self.abort.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Resolves once a drain is asked for, with its reason.
    pub async fn drained(&self) -> String {
        self.drain.cancelled().await;
        let w = self.why.lock().expect("not poisoned");
        w.0.clone().unwrap_or_default()
    }

    /// Resolves once the drain is given up, with its reason.
    pub async fn aborted(&self) -> String {
        self.abort.cancelled().await;
        let w = self.why.lock().expect("not poisoned");
        w.1.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_steps_with_their_reasons() {
        let s = Shutdown::new();
        let c = s.clone();
        assert!(!c.is_draining());
        s.drain("SIGTERM");
        assert_eq!(c.drained().await, "SIGTERM");
        s.drain("again"); // the first reason stays
        assert_eq!(c.drained().await, "SIGTERM");
        s.abort("SIGINT");
        assert_eq!(c.aborted().await, "SIGINT");
    }
}
