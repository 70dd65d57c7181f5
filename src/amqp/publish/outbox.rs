//! The bridge's bounded buffer between the pipeline and the broker.
//!
//! The pipeline pushes wire messages in; the publisher takes them out. It
//! holds at most `bridge.buffer` samples (a batch message, `bridge.batch`,
//! weighs its samples; one larger than the whole buffer still passes
//! alone). When full, `block` makes `push` wait for room (backpressure
//! that reaches the source through the actors' awaited sends) and
//! `drop_oldest` drops from the front and counts. Each full episode is
//! logged once. Once `close` is called (shutdown), pushes never wait: what
//! does not fit is counted as refused and reported. Every count is of
//! samples.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use super::stats::BridgeStats;
use crate::config::OnFull;
use crate::core::done::Done;
use crate::core::messages::{Kind, SampleId, WireMessage};

/// One message ready for the wire.
#[derive(Debug, Clone)]
pub struct OutMessage {
    pub kind: Kind,
    /// The sample's id; of a batch, its first sample's.
    pub id: SampleId,
    /// The JSON body: one sample's message, or of a batch a JSON array of
    /// them (`samples` > 1, see docs/wire.md).
    pub body: Vec<u8>,
    /// Samples in the body: 1, or a batch's count.
    pub samples: u32,
    /// A batch's last sample's id (its message id is `first..last`).
    pub last: SampleId,
    /// Seconds since the epoch when the bridge took it (AMQP `timestamp`).
    pub timestamp: u64,
    /// Times it was published before (0 for the first publish).
    pub attempts: u32,
    /// Completion token of the inbound batch it came from (dropped when the
    /// broker confirms it; failed when it is dropped unpublished).
    pub done: Option<Done>,
    /// Published straight to this queue (the default exchange) instead of
    /// the topic exchange: features the model consumed from a legacy queue,
    /// forwarded to the monitor's queue (the exchange would route them back
    /// into that legacy queue, a loop).
    pub queue: Option<Arc<str>>,
    /// The fingerprint of the run's schema (the [`SCHEMA_HEADER`] header),
    /// for a run of the user's own data.
    ///
    /// [`SCHEMA_HEADER`]: crate::core::schema::SCHEMA_HEADER
    pub schema: Option<Arc<str>>,
}

impl OutMessage {
    /// Gives up on this message: the inbound work behind it is redone.
    /// Answers the samples given up.
    pub fn abandon(self) -> u64 {
        if let Some(d) = &self.done {
            d.fail();
        }
        self.samples as u64
    }
}

impl State {
    /// `m` fits beside what is held (an empty outbox takes anything, so a
    /// batch larger than the whole buffer still passes, alone).
    fn fits(&self, m: &OutMessage, capacity: usize) -> bool {
        self.queue.is_empty() || self.held + m.samples as usize <= capacity
    }
}

impl OutMessage {
    /// `m`'s wire message, in a run of `schema` when there is one.
    pub fn from_wire<T: WireMessage>(
        m: &T,
        timestamp: u64,
        schema: Option<&crate::core::schema::WireSchema>,
    ) -> OutMessage {
        OutMessage {
            kind: T::KIND,
            id: m.id(),
            body: m.to_json_in(schema.map(|s| s as &dyn crate::core::messages::ByName)),
            samples: 1,
            last: m.id(),
            timestamp,
            attempts: 0,
            done: None,
            queue: None,
            schema: None,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct State {
    queue: VecDeque<OutMessage>,
    /// Samples in `queue`.
    held: usize,
    closed: bool,
    /// In a full episode (logged once at its start).
    full: bool,
    /// A producer waits for room.
    waiting: bool,
}

/// The bounded buffer.
pub struct Outbox {
    state: Mutex<State>,
    capacity: usize,
    policy: OnFull,
    room: Notify,
    items: Notify,
    stats: Arc<BridgeStats>,
}

impl Outbox {
    pub fn new(capacity: usize, policy: OnFull, stats: Arc<BridgeStats>) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(1 << 16)),
                held: 0,
                closed: false,
                full: false,
                waiting: false,
            }),
            capacity: capacity.max(1),
            policy,
            room: Notify::new(),
            items: Notify::new(),
            stats,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples buffered now.
    pub fn len(&self) -> usize {
        self.lock().held
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds messages, waiting for room under `block` until the outbox closes.
    pub async fn push(&self, msgs: Vec<OutMessage>) {
        let samples: u64 = msgs.iter().map(|m| m.samples as u64).sum();
        BridgeStats::add(&self.stats.accepted, samples);
        let mut rest = msgs.into_iter().peekable();
        while rest.peek().is_some() {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut s = self.lock();
                while let Some(m) = rest.next_if(|m| s.fits(m, self.capacity)) {
                    s.held += m.samples as usize;
                    s.queue.push_back(m);
                }
                if rest.peek().is_some() {
                    if !s.full {
                        s.full = true;
                        tracing::warn!(
                            capacity = self.capacity,
                            policy = ?self.policy,
                            "bridge buffer full (broker away or slow): {}",
                            match self.policy {
                                OnFull::Block => "slowing the source",
                                OnFull::DropOldest => "dropping the oldest messages (counted)",
                            }
                        );
                    }
                    if s.closed {
                        let refused: u64 = rest.by_ref().map(OutMessage::abandon).sum();
                        BridgeStats::add(&self.stats.refused_at_shutdown, refused);
                    } else if self.policy == OnFull::DropOldest {
                        for m in rest.by_ref() {
                            while !s.fits(&m, self.capacity) {
                                let Some(old) = s.queue.pop_front() else {
                                    break;
                                };
                                s.held -= old.samples as usize;
                                BridgeStats::add(&self.stats.dropped, old.abandon());
                            }
                            s.held += m.samples as usize;
                            s.queue.push_back(m);
                        }
                    } else {
                        s.waiting = true;
                    }
                }
            }
            self.items.notify_one();
            if rest.peek().is_some() {
                room.await;
            }
        }
    }

    /// Takes up to `max` messages from the front.
    pub fn take(&self, max: usize) -> Vec<OutMessage> {
        let mut s = self.lock();
        let n = max.min(s.queue.len());
        let out: Vec<OutMessage> = s.queue.drain(..n).collect();
        s.held -= out.iter().map(|m| m.samples as usize).sum::<usize>();
        if s.full && s.held <= self.capacity / 2 {
            s.full = false;
            tracing::info!(buffered = s.held, "bridge buffer has room again");
        }
        if s.waiting && n > 0 {
            s.waiting = false;
            drop(s);
            self.room.notify_waiters();
        }
        out
    }

    /// Resolves when messages may be available. (Not on close: the
    /// publisher learns of shutdown from its own signal; returning at once
    /// on a closed, empty outbox would make its loop spin.)
    pub async fn wait_items(&self) {
        if !self.is_empty() {
            return;
        }
        self.items.notified().await;
    }

    /// Stops blocking producers: from now on what does not fit is refused.
    pub fn close(&self) {
        self.lock().closed = true;
        self.room.notify_waiters();
        self.items.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::messages::Truth;
    use std::time::Duration;

    fn msgs(ids: std::ops::Range<u64>) -> Vec<OutMessage> {
        ids.map(|id| OutMessage::from_wire(&Truth { id, y: 1.0 }, 0, None))
            .collect()
    }

    #[tokio::test]
    async fn block_waits_for_room_and_loses_nothing() {
        let stats = Arc::new(BridgeStats::default());
        let outbox = Arc::new(Outbox::new(10, OnFull::Block, stats.clone()));
        let o = outbox.clone();
        let producer = tokio::spawn(async move { o.push(msgs(0..25)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!producer.is_finished());
        assert_eq!(outbox.len(), 10);
        let mut got = vec![];
        while got.len() < 25 {
            got.extend(outbox.take(4).into_iter().map(|m| m.id));
            tokio::task::yield_now().await;
        }
        producer.await.unwrap();
        assert_eq!(got, (0..25).collect::<Vec<_>>());
        assert_eq!(stats.snapshot().dropped, 0);
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest_and_counts() {
        let stats = Arc::new(BridgeStats::default());
        let outbox = Outbox::new(10, OnFull::DropOldest, stats.clone());
        outbox.push(msgs(0..25)).await;
        let ids: Vec<u64> = outbox.take(100).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, (15..25).collect::<Vec<_>>());
        assert_eq!(stats.snapshot().dropped, 15);
        assert_eq!(stats.snapshot().accepted, 25);
    }

    /// A batch message of `n` samples from `first`.
    fn batch(first: u64, n: u32) -> OutMessage {
        OutMessage {
            samples: n,
            last: first + n as u64 - 1,
            ..OutMessage::from_wire(&Truth { id: first, y: 1.0 }, 0, None)
        }
    }

    #[tokio::test]
    async fn batches_weigh_their_samples() {
        let stats = Arc::new(BridgeStats::default());
        let outbox = Outbox::new(10, OnFull::DropOldest, stats.clone());
        // Larger than the whole buffer: it passes, alone.
        outbox.push(vec![batch(0, 25)]).await;
        assert_eq!(outbox.len(), 25);
        // The next one makes room by dropping the first (25 samples).
        outbox.push(vec![batch(100, 4), batch(200, 4)]).await;
        assert_eq!(outbox.len(), 8);
        assert_eq!(stats.snapshot().dropped, 25);
        // 8 + 4 > 10: the oldest (4) goes.
        outbox.push(vec![batch(300, 4)]).await;
        let ids: Vec<u64> = outbox.take(100).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![200, 300]);
        assert_eq!(outbox.len(), 0);
        assert_eq!(stats.snapshot().dropped, 29);
        assert_eq!(stats.snapshot().accepted, 37);
    }

    #[tokio::test]
    async fn close_releases_a_blocked_producer_and_counts_the_refused() {
        let stats = Arc::new(BridgeStats::default());
        let outbox = Arc::new(Outbox::new(5, OnFull::Block, stats.clone()));
        let o = outbox.clone();
        let producer = tokio::spawn(async move { o.push(msgs(0..8)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        outbox.close();
        tokio::time::timeout(Duration::from_secs(2), producer)
            .await
            .expect("producer released")
            .unwrap();
        assert_eq!(stats.snapshot().refused_at_shutdown, 3);
        assert_eq!(outbox.len(), 5);
    }
}
