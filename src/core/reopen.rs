//! The "reopen your log files" request of a run, passed in as a value like
//! [`crate::core::shutdown::Shutdown`].
//!
//! logrotate renames a log and then, in its `postrotate` script, sends the
//! program SIGHUP: from then on the program must write to a new file under
//! the old name, or its rows keep going into the renamed one. `cli.rs` turns
//! SIGHUP into [`Reopen::request`]; every log file holds a clone and, at its
//! next write, sees that the generation moved, finishes the row it was in
//! the middle of in the old file, and opens the path anew (a new file gets
//! its header). Nothing else about signals reaches the pipeline, so a test
//! can ask for a reopen in-process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Cheap to clone; every clone sees the same requests.
#[derive(Clone, Debug, Default)]
pub struct Reopen(Arc<AtomicU64>);

impl Reopen {
    pub fn new() -> Reopen {
        Reopen::default()
    }

    /// Asks every holder to reopen its file at its next write.
    pub fn request(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Requests so far; a holder compares it with the one it last saw.
    pub fn generation(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_see_the_requests() {
        let r = Reopen::new();
        let c = r.clone();
        assert_eq!(c.generation(), 0);
        r.request();
        r.request();
        assert_eq!(c.generation(), 2);
    }
}
