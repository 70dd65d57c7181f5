//! Sample ids: microseconds since the Unix epoch, made strictly increasing.
//!
//! The Python services used `datetime.timestamp()` floats, which collide when
//! two samples share a microsecond. Here an id is the current time in µs, or
//! the previous id + 1 when the clock has not moved on. Ids therefore stay
//! unique across restarts (the clock has passed them) as long as the source
//! emits fewer than a million samples per second on average, and stay below
//! 2^53 (until the year 2255), so JSON carries them exactly.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::core::messages::SampleId;

/// Hands out strictly increasing ids.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: SampleId,
}

impl IdGenerator {
    pub fn new() -> IdGenerator {
        IdGenerator::default()
    }

    /// The next id.
    pub fn next_id(&mut self) -> SampleId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as SampleId)
            .unwrap_or(0);
        self.last = now.max(self.last + 1);
        self.last
    }

    /// `n` consecutive ids (one clock read).
    pub fn next_ids(&mut self, n: usize) -> std::ops::Range<SampleId> {
        let first = self.next_id();
        self.last = first + n.saturating_sub(1) as SampleId;
        first..first + n as SampleId
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_strictly_and_fit_in_a_double() {
        let mut g = IdGenerator::new();
        let mut prev = 0;
        for _ in 0..10_000 {
            let id = g.next_id();
            assert!(id > prev);
            prev = id;
        }
        let r = g.next_ids(1000);
        assert!(r.start > prev);
        assert_eq!(r.end - r.start, 1000);
        assert!(g.next_id() >= r.end);
        assert!(prev < (1 << 53));
    }
}
