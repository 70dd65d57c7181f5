//! Logging a repeated event once per interval, with a count.
//!
//! A poison message redelivered in a loop, or a broker that keeps refusing,
//! can raise the same warning thousands of times a second; one line per
//! event once filled the disk (issue 8, item 2). A [`Throttle`] lets the
//! first event through, then at most one line per interval carrying how
//! many events happened since the last line. Pure logic: the caller logs.

use std::time::{Duration, Instant};

/// Lets one event per `every` through, counting the others.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    since: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            since: 0,
        }
    }

    /// Counts one event at `now`; returns `Some(events since the last line,
    /// this one included)` when a line is due.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.since += 1;
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_then_one_line_per_interval_with_the_count() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(30));
        assert_eq!(t.note(t0), Some(1));
        for i in 1..1000 {
            assert_eq!(t.note(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(t.note(t0 + Duration::from_secs(30)), Some(1000));
        assert_eq!(t.note(t0 + Duration::from_secs(31)), None);
        assert_eq!(t.note(t0 + Duration::from_secs(61)), Some(2));
    }
}
