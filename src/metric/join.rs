//! Joins truths and predictions by id, whichever arrives first.
//!
//! An id waits in `pending` until its other half arrives. The wait is
//! bounded twice: an id older than the TTL is dropped by [`Joiner::expire`],
//! and when `max_pending` ids wait, the oldest is evicted to make room. Both
//! are counted, so a lost half is visible, never silent. Memory is bounded by
//! `max_pending` (the age queue is compacted when stale entries pile up).
//! Ids are our own (not chosen by an attacker in the one-process layout, and
//! bounded by `max_pending` in the split one), so the maps use the fast
//! Fx hash rather than SipHash (7% of a run's time in a profile).
//!
//! The joiner holds values only: in the split layout a waiting half is
//! already safe in the metric's journal ([`crate::metric::journal`]) and its
//! delivery acknowledged, so the join's capacity is `max_pending`, never the
//! broker's prefetch.

use std::collections::VecDeque;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::time::{Duration, Instant};

use crate::core::messages::{MetricRecord, SampleId};

/// One half of a sample: its true target or its prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Half {
    Truth(f64),
    Prediction(f64),
}

impl Half {
    /// The number it carries.
    pub fn value(self) -> f64 {
        match self {
            Half::Truth(y) | Half::Prediction(y) => y,
        }
    }
}

/// What the joiner has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinStats {
    pub matched: u64,
    /// Dropped for waiting longer than the TTL.
    pub expired: u64,
    /// Dropped to keep `max_pending`.
    pub evicted: u64,
    /// Second copy of a half that was already waiting (ignored).
    pub duplicates: u64,
}

/// What adding a half did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Added {
    /// Its other half was waiting: the sample is complete.
    Joined(MetricRecord),
    /// It waits for its other half.
    Waiting,
    /// The same half of this id was already waiting (ignored, counted).
    Duplicate,
}

/// The join state.
pub struct Joiner {
    pending: HashMap<SampleId, (Half, Instant)>,
    /// Ids in arrival order; may hold entries already matched (stale).
    order: VecDeque<(SampleId, Instant)>,
    max_pending: usize,
    /// Truths among the waiting halves (the rest are predictions).
    truths: usize,
    /// The newest id of each side taken in: (truths, predictions).
    newest: (SampleId, SampleId),
    ttl: Duration,
    /// With [`Joiner::tracking_dropped`]: ids expired or evicted, until taken.
    dropped: Option<Vec<SampleId>>,
    pub stats: JoinStats,
}

impl Joiner {
    pub fn new(max_pending: usize, ttl: Duration) -> Joiner {
        Joiner {
            pending: HashMap::default(),
            order: VecDeque::new(),
            max_pending: max_pending.max(1),
            truths: 0,
            newest: (0, 0),
            ttl,
            dropped: None,
            stats: JoinStats::default(),
        }
    }

    /// Remembers the ids it drops (expired, evicted) for
    /// [`Joiner::take_dropped`]: the journal records them.
    pub fn tracking_dropped(mut self) -> Joiner {
        self.dropped = Some(Vec::new());
        self
    }

    /// The ids dropped since the last call (empty unless tracking).
    pub fn take_dropped(&mut self) -> Vec<SampleId> {
        self.dropped
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note_dropped(&mut self, id: SampleId) {
        if let Some(d) = &mut self.dropped {
            d.push(id);
        }
    }

    /// Ids waiting for their other half.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The waiting halves of the side that runs ahead (whose newest id is
    /// newer than the other side's), 0 for the other: (truths,
    /// predictions). A side that trails (a queue's backlog of older
    /// halves) is never counted ahead, so it is never held, and the two
    /// sides are never both ahead.
    pub fn waiting_ahead(&self) -> (usize, usize) {
        let (truths, predictions) = (self.truths, self.pending.len() - self.truths);
        match self.newest.0.cmp(&self.newest.1) {
            std::cmp::Ordering::Greater => (truths, 0),
            std::cmp::Ordering::Less => (0, predictions),
            std::cmp::Ordering::Equal => (0, 0),
        }
    }

    /// Forgets the waiting half of `id`.
    fn remove(&mut self, id: SampleId) {
        if let Some((Half::Truth(_), _)) = self.pending.remove(&id) {
            self.truths -= 1;
        }
    }

    /// Adds a true target; returns the record if its prediction was waiting.
    pub fn add_truth(&mut self, id: SampleId, y: f64, now: Instant) -> Option<MetricRecord> {
        match self.add(id, Half::Truth(y), now) {
            Added::Joined(r) => Some(r),
            _ => None,
        }
    }

    /// Adds a prediction; returns the record if its truth was waiting.
    pub fn add_prediction(&mut self, id: SampleId, y: f64, now: Instant) -> Option<MetricRecord> {
        match self.add(id, Half::Prediction(y), now) {
            Added::Joined(r) => Some(r),
            _ => None,
        }
    }

    /// Adds either half and says what became of it.
    pub fn add(&mut self, id: SampleId, half: Half, now: Instant) -> Added {
        match half {
            Half::Truth(_) => self.newest.0 = self.newest.0.max(id),
            Half::Prediction(_) => self.newest.1 = self.newest.1.max(id),
        }
        match (self.pending.get(&id).map(|(h, _)| *h), half) {
            (Some(Half::Truth(t)), Half::Prediction(p))
            | (Some(Half::Prediction(p)), Half::Truth(t)) => {
                self.remove(id);
                self.stats.matched += 1;
                self.compact_if_stale();
                Added::Joined(MetricRecord::join(id, t, p))
            }
            (Some(_), _) => {
                self.stats.duplicates += 1;
                Added::Duplicate
            }
            (None, _) => {
                while self.pending.len() >= self.max_pending {
                    if self.pop_oldest() {
                        self.stats.evicted += 1;
                    }
                }
                if let Half::Truth(_) = half {
                    self.truths += 1;
                }
                self.pending.insert(id, (half, now));
                self.order.push_back((id, now));
                Added::Waiting
            }
        }
    }

    /// Drops ids that waited longer than the TTL; returns how many.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut dropped = 0;
        while let Some(&(id, at)) = self.order.front() {
            if !self.is_live(id, at) {
                self.order.pop_front();
            } else if now.duration_since(at) > self.ttl {
                self.order.pop_front();
                self.remove(id);
                self.note_dropped(id);
                dropped += 1;
            } else {
                break;
            }
        }
        self.stats.expired += dropped;
        dropped
    }

    /// The waiting halves, oldest first (what the journal keeps on compaction).
    pub fn waiting(&self) -> impl Iterator<Item = (SampleId, Half)> + '_ {
        self.order
            .iter()
            .filter_map(|&(id, at)| match self.pending.get(&id) {
                Some(&(half, t)) if t == at => Some((id, half)),
                _ => None,
            })
    }

    fn is_live(&self, id: SampleId, at: Instant) -> bool {
        matches!(self.pending.get(&id), Some((_, t)) if *t == at)
    }

    /// Removes the oldest waiting id; false if none was left.
    fn pop_oldest(&mut self) -> bool {
        while let Some((id, at)) = self.order.pop_front() {
            if self.is_live(id, at) {
                self.remove(id);
                self.note_dropped(id);
                return true;
            }
        }
        false
    }

    /// Keeps the age queue within twice the live set (amortised O(1)).
    fn compact_if_stale(&mut self) {
        if self.order.len() > 2 * self.pending.len() + 1024 {
            let pending = &self.pending;
            self.order
                .retain(|(id, at)| matches!(pending.get(id), Some((_, t)) if t == at));
        }
    }
}

/// The ids most recently joined, bounded: a redelivered truth or prediction
/// of a sample whose row is already written is recognised and ignored.
#[derive(Debug)]
pub struct RecentIds {
    set: HashSet<SampleId>,
    order: VecDeque<SampleId>,
    capacity: usize,
}

impl RecentIds {
    pub fn new(capacity: usize) -> RecentIds {
        RecentIds {
            set: Default::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn contains(&self, id: SampleId) -> bool {
        self.set.contains(&id)
    }

    /// Remembers `id`, forgetting the oldest beyond the capacity.
    pub fn insert(&mut self, id: SampleId) {
        if self.set.insert(id) {
            self.order.push_back(id);
            if self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_are_bounded_and_forget_the_oldest() {
        let mut r = RecentIds::new(3);
        for id in 1..=5 {
            r.insert(id);
        }
        assert_eq!(r.len(), 3);
        assert!(!r.contains(2) && r.contains(3) && r.contains(5));
        r.insert(5);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn waiting_lists_the_live_halves_oldest_first() {
        let mut j = Joiner::new(10, Duration::from_secs(1));
        let now = Instant::now();
        j.add_truth(1, 1.0, now);
        j.add_prediction(2, 2.0, now);
        j.add_truth(3, 3.0, now);
        j.add_prediction(1, 1.5, now); // 1 joins and leaves
        let w: Vec<_> = j.waiting().collect();
        assert_eq!(w, vec![(2, Half::Prediction(2.0)), (3, Half::Truth(3.0))]);
        assert_eq!(j.add(2, Half::Prediction(2.0), now), Added::Duplicate);
    }

    #[test]
    fn joins_in_either_order() {
        let mut j = Joiner::new(10, Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(j.add_truth(1, 10.0, now), None);
        let r = j.add_prediction(1, 13.5, now).unwrap();
        assert_eq!(r, MetricRecord::join(1, 10.0, 13.5));
        assert_eq!(r.absolute_error, 3.5);
        assert_eq!(j.add_prediction(2, 5.0, now), None);
        assert_eq!(j.add_truth(2, 9.0, now).unwrap().absolute_error, 4.0);
        assert_eq!(j.pending(), 0);
        assert_eq!(j.stats.matched, 2);
    }

    #[test]
    fn duplicates_are_counted_not_joined_with_themselves() {
        let mut j = Joiner::new(10, Duration::from_secs(1));
        let now = Instant::now();
        j.add_truth(1, 10.0, now);
        assert_eq!(j.add_truth(1, 10.0, now), None);
        assert_eq!(j.stats.duplicates, 1);
        assert_eq!(j.pending(), 1);
    }

    #[test]
    fn pending_is_bounded_and_evictions_counted() {
        let mut j = Joiner::new(100, Duration::from_secs(60));
        let now = Instant::now();
        for id in 0..1000 {
            j.add_truth(id, 1.0, now);
        }
        assert_eq!(j.pending(), 100);
        assert_eq!(j.stats.evicted, 900);
        // the newest survive
        assert!(j.add_prediction(999, 1.0, now).is_some());
        assert!(j.add_prediction(0, 1.0, now).is_none());
    }

    #[test]
    fn dropped_ids_are_handed_back_when_tracking() {
        let mut j = Joiner::new(2, Duration::from_millis(10)).tracking_dropped();
        let t0 = Instant::now();
        j.add_truth(1, 1.0, t0);
        j.add_truth(2, 1.0, t0);
        j.add_truth(3, 1.0, t0 + Duration::from_millis(9)); // evicts 1
        assert_eq!(j.take_dropped(), vec![1]);
        j.expire(t0 + Duration::from_millis(15)); // 2 expires, 3 does not
        assert_eq!(j.take_dropped(), vec![2]);
        assert!(j.take_dropped().is_empty());
        let mut untracked = Joiner::new(1, Duration::from_millis(10));
        untracked.add_truth(1, 1.0, t0);
        untracked.add_truth(2, 1.0, t0);
        assert!(untracked.take_dropped().is_empty());
    }

    #[test]
    fn old_ids_age_out() {
        let mut j = Joiner::new(100, Duration::from_millis(10));
        let t0 = Instant::now();
        j.add_truth(1, 1.0, t0);
        j.add_truth(2, 1.0, t0 + Duration::from_millis(8));
        assert_eq!(j.expire(t0 + Duration::from_millis(15)), 1);
        assert_eq!(j.pending(), 1);
        assert_eq!(j.stats.expired, 1);
        assert!(j.add_prediction(2, 1.0, t0).is_some());
    }

    #[test]
    fn age_queue_stays_bounded_when_everything_matches() {
        let mut j = Joiner::new(1000, Duration::from_secs(60));
        let now = Instant::now();
        j.add_truth(u64::MAX, 0.0, now); // never matched, stays at the front
        for id in 0..100_000 {
            j.add_truth(id, 1.0, now);
            j.add_prediction(id, 1.0, now);
        }
        assert!(j.order.len() <= 2 * j.pending() + 1025, "{}", j.order.len());
    }

    #[test]
    fn only_the_side_whose_newest_id_is_ahead_counts_its_waiting_halves() {
        let t = Instant::now();
        let mut j = Joiner::new(100, Duration::from_secs(60));
        for id in 10..20 {
            j.add_truth(id, 1.0, t);
        }
        assert_eq!(j.waiting_ahead(), (10, 0), "truths ahead");
        for id in 10..13 {
            j.add_prediction(id, 2.0, t);
        }
        assert_eq!(j.waiting_ahead(), (7, 0));
        // Predictions newer than every truth: they run ahead now, and the
        // older truths still waiting are a backlog, not ahead.
        j.add_prediction(50, 2.0, t);
        assert_eq!(j.waiting_ahead(), (0, 1));
    }
}
