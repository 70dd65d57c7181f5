//! The AMQP side of the bridge: connect, declare, publish with confirms,
//! resend, reconnect. Runs on the bridge's own tokio runtime.
//!
//! Delivery is at-least-once. At most `confirm_window` publishes await their
//! confirm; each is kept until the broker acks it. A nack puts the message
//! back for another publish; a lost connection puts every unconfirmed
//! message back, and they are published again after the reconnect (counted
//! as `resent`; consumers deduplicate by `message_id`). Reconnects use
//! capped exponential backoff, and each state change (unreachable,
//! connected, lost) is logged once, not per attempt or per message.
//!
//! At shutdown, `bridge.shutdown_timeout` is a time *without progress*: each
//! confirm moves the deadline on, so a busy but healthy broker is waited
//! for until everything is delivered, and a silent one for that long only.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::watch;

use super::outbox::{OutMessage, Outbox};
use super::stats::BridgeStats;
use crate::amqp::consume::decode::BATCH_CONTENT_TYPE;
use crate::amqp::{connection, topology};
use crate::config::{BridgeSettings, HistorySettings};
use crate::core::text::redact_url;

/// How often legacy queues are checked against their bound.
const TRIM_INTERVAL: Duration = Duration::from_secs(5);
/// Messages taken from the outbox per lock.
const TAKE_CHUNK: usize = 256;
/// How often an idle publisher looks at its connection. With nothing to
/// publish, no publish or confirm fails when the broker goes away, so
/// without this look the bridge would report itself connected (and `/ready`
/// say 200) until the next message.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(250);

/// What the publisher has left when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftover {
    /// Messages never confirmed by the broker (buffered, awaiting retry or in flight).
    pub undelivered: u64,
}

/// Why publishing on a connection ended.
enum Ended {
    /// Shutdown finished (everything confirmed) or its deadline passed.
    Done,
    /// The connection or channel failed; reconnect.
    Lost(lapin::Error),
}

/// The publisher: owns the retry queue and the in-flight window.
pub struct Publisher {
    settings: BridgeSettings,
    /// The history stream, declared at every connect before publishing.
    history: Option<HistorySettings>,
    outbox: Arc<Outbox>,
    stats: Arc<BridgeStats>,
    /// `Some(when)` once shutdown was asked for.
    shutdown: watch::Receiver<Option<Instant>>,
    /// When the broker last confirmed a message (progress).
    last_confirm: Instant,
    /// Messages to publish again, before anything new.
    retry: VecDeque<OutMessage>,
    app_id: String,
}

impl Publisher {
    pub fn new(
        settings: BridgeSettings,
        history: Option<HistorySettings>,
        outbox: Arc<Outbox>,
        stats: Arc<BridgeStats>,
        shutdown: watch::Receiver<Option<Instant>>,
    ) -> Publisher {
        Publisher {
            settings,
            history,
            outbox,
            stats,
            shutdown,
            retry: VecDeque::new(),
            last_confirm: Instant::now(),
            app_id: format!("modelwatch/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The shutdown deadline: `shutdown_timeout` after the later of the
    /// shutdown request and the last confirm.
    fn deadline(&self) -> Option<Instant> {
        let asked = (*self.shutdown.borrow())?;
        Some(idle_deadline(
            asked,
            self.last_confirm,
            self.settings.shutdown_timeout,
        ))
    }

    fn past_deadline(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Nothing left to deliver and shutdown asked for.
    fn drained(&self) -> bool {
        self.deadline().is_some() && self.retry.is_empty() && self.outbox.is_empty()
    }

    /// Runs until shutdown: drained, or its deadline passed.
    pub async fn run(mut self) -> Leftover {
        let shown_url = redact_url(&self.settings.url);
        let mut backoff = self.settings.backoff_min;
        let mut failures: u64 = 0;
        let mut ever_connected = false;
        let mut last_refusal = None;
        loop {
            if self.drained() || self.past_deadline() {
                break;
            }
            let conn = match self.connect().await {
                Ok(c) => c,
                Err(e) => {
                    failures += 1;
                    // Logged once per kind of failure, not per attempt.
                    let refusal = connection::permanent_refusal(&e);
                    if refusal.is_some() && refusal != last_refusal {
                        tracing::error!(
                            url = %shown_url,
                            error = %e,
                            "broker refused the connection: a configuration error, not an outage; retrying with backoff, messages are buffered"
                        );
                    } else if failures == 1 && refusal.is_none() {
                        tracing::warn!(
                            url = %shown_url,
                            error = %e,
                            "broker unreachable; the pipeline goes on, messages are buffered, retrying with backoff"
                        );
                    } else {
                        tracing::debug!(attempt = failures, error = %e, "reconnect failed");
                    }
                    last_refusal = refusal;
                    self.sleep_or_shutdown(backoff).await;
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                    continue;
                }
            };
            if ever_connected {
                BridgeStats::add(&self.stats.reconnects, 1);
            }
            ever_connected = true;
            tracing::info!(
                url = %shown_url,
                failed_attempts = failures,
                retrying = self.retry.len(),
                buffered = self.outbox.len(),
                "bridge connected; topology declared"
            );
            failures = 0;
            last_refusal = None;
            backoff = self.settings.backoff_min;
            self.stats.connected.set(1);
            let ended = self.publish_on(&conn).await;
            self.stats.connected.set(0);
            match ended {
                Ended::Done => {
                    connection::close_quietly(&conn, 200, "modelwatch shutting down").await;
                    break;
                }
                Ended::Lost(e) => {
                    tracing::warn!(
                        error = %e,
                        to_resend = self.retry.len(),
                        "broker connection lost; reconnecting, unconfirmed messages will be resent"
                    );
                    connection::close_quietly(&conn, 320, "reconnecting").await;
                }
            }
        }
        // What is left is given up: inbound work behind it will be redone.
        let mut undelivered = 0;
        for m in self.retry.drain(..).chain(self.outbox.take(usize::MAX)) {
            undelivered += m.abandon();
        }
        Leftover { undelivered }
    }

    async fn connect(&self) -> lapin::Result<Connection> {
        connection::bounded(async {
            let conn = connection::connect(&self.settings, "modelwatch bridge").await?;
            topology::declare(&conn, &self.settings).await?;
            if let Some(h) = &self.history {
                topology::declare_history(&conn, &self.settings, h)
                    .await
                    .map_err(|e| e.error)?;
            }
            Ok(conn)
        })
        .await
    }

    async fn sleep_or_shutdown(&mut self, d: Duration) {
        let until = match self.deadline() {
            Some(deadline) => deadline.min(Instant::now() + d),
            None => Instant::now() + d,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = self.shutdown.changed() => {}
        }
    }

    /// A message's properties: of a batch (`samples` > 1), the batch
    /// content type and the message id `first..last` (docs/wire.md).
    fn properties(&self, m: &OutMessage) -> BasicProperties {
        let (content_type, message_id) = match m.samples {
            1 => ("application/json", m.id.to_string()),
            _ => (BATCH_CONTENT_TYPE, format!("{}..{}", m.id, m.last)),
        };
        let props = BasicProperties::default()
            .with_content_type(content_type.into())
            .with_delivery_mode(2)
            .with_message_id(message_id.into())
            .with_type(m.kind.routing_key().into())
            .with_timestamp(m.timestamp)
            .with_app_id(self.app_id.as_str().into());
        match &m.schema {
            Some(fingerprint) => {
                let mut headers = lapin::types::FieldTable::default();
                headers.insert(
                    crate::core::schema::SCHEMA_HEADER.into(),
                    lapin::types::AMQPValue::LongString(fingerprint.as_ref().into()),
                );
                props.with_headers(headers)
            }
            None => props,
        }
    }

    /// Publishes until shutdown completes or the connection fails: a
    /// confirm channel, the loop of [`Self::publish_loop`], then what was
    /// not confirmed given back to be resent, and the channel closed when
    /// done.
    async fn publish_on(&mut self, conn: &Connection) -> Ended {
        let channel = match connection::bounded(open_confirm_channel(conn)).await {
            Ok(c) => c,
            Err(e) => return Ended::Lost(e),
        };
        let mut flight = InFlight {
            unconfirmed: HashMap::new(),
            samples: 0,
            confirms: FuturesUnordered::new(),
            seq: 0,
            pending_new: VecDeque::new(),
        };
        let result = self.publish_loop(conn, &channel, &mut flight).await;
        self.give_back(&mut flight);
        if let Ended::Done = result {
            if !self.retry.is_empty() {
                tracing::warn!(
                    left = self.retry.len(),
                    "shutdown deadline passed before every confirm arrived"
                );
            }
            // Close it ourselves, or its drop races the connection close.
            let _ = tokio::time::timeout(Duration::from_secs(2), channel.close(200, "done".into()))
                .await;
        }
        result
    }

    /// Keeps the confirm window full and takes the confirms in, until
    /// everything is confirmed at shutdown, the deadline passes, or the
    /// connection fails (a publish, a confirm, the trim of the legacy
    /// queues, or the liveness check).
    async fn publish_loop(
        &mut self,
        conn: &Connection,
        channel: &Channel,
        flight: &mut InFlight,
    ) -> Ended {
        let window = self.settings.confirm_window;
        let mut trim = tokio::time::interval(TRIM_INTERVAL);
        trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut liveness = tokio::time::interval(LIVENESS_INTERVAL);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Fill the window: retries first, then new messages.
            if let Some(e) = self.fill_window(channel, flight, window).await {
                return Ended::Lost(e);
            }
            if flight.unconfirmed.is_empty() && flight.pending_new.is_empty() && self.drained() {
                return Ended::Done;
            }
            if self.past_deadline() {
                return Ended::Done;
            }
            let held = flight.samples + samples(&flight.pending_new) + samples(&self.retry);
            self.stats
                .held
                .store(held as u64, std::sync::atomic::Ordering::Relaxed);
            let window_open = flight.unconfirmed.len() < window;
            let deadline = self.deadline();
            tokio::select! {
                Some((id, result)) = flight.confirms.next() => {
                    if let Err(e) = self.confirmed(flight, id, result) {
                        return Ended::Lost(e);
                    }
                }
                _ = self.outbox.wait_items(), if window_open && flight.pending_new.is_empty() => {}
                _ = self.shutdown.changed() => {}
                _ = trim.tick() => {
                    if let Err(e) = connection::bounded(topology::trim_legacy_queues(conn, &self.settings, &self.stats)).await {
                        return Ended::Lost(e);
                    }
                }
                _ = liveness.tick() => {
                    if let Some(e) = connection_gone(conn, channel) {
                        return Ended::Lost(e);
                    }
                }
                _ = connection::sleep_until_opt(deadline) => {}
            }
        }
    }

    /// Publishes until `window` messages are unconfirmed or there is
    /// nothing to send: retries first, then new messages from the outbox.
    /// A publish that fails puts its message back first and answers the
    /// error.
    async fn fill_window(
        &mut self,
        channel: &Channel,
        flight: &mut InFlight,
        window: usize,
    ) -> Option<lapin::Error> {
        while flight.unconfirmed.len() < window {
            if flight.pending_new.is_empty() && self.retry.is_empty() {
                flight.pending_new.extend(
                    self.outbox
                        .take(TAKE_CHUNK.min(window - flight.unconfirmed.len())),
                );
            }
            let Some(msg) = self
                .retry
                .pop_front()
                .or_else(|| flight.pending_new.pop_front())
            else {
                break;
            };
            // Straight to a queue through the default exchange, or
            // to the exchange under the kind's routing key.
            let (exchange, key) = match &msg.queue {
                Some(q) => ("", q.as_ref()),
                None => (self.settings.exchange.as_str(), msg.kind.routing_key()),
            };
            let publish = channel
                .basic_publish(
                    exchange.into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    &msg.body,
                    self.properties(&msg),
                )
                .await;
            match publish {
                Ok(confirm) => {
                    let n = msg.samples as u64;
                    BridgeStats::add(&self.stats.published, n);
                    if msg.attempts > 0 {
                        BridgeStats::add(&self.stats.resent, n);
                    }
                    flight.seq += 1;
                    let id = flight.seq;
                    flight.samples += msg.samples as usize;
                    flight.unconfirmed.insert(id, msg);
                    flight
                        .confirms
                        .push(futures::future::join(futures::future::ready(id), confirm));
                }
                Err(e) => {
                    // It may or may not have left: count a later publish as a resend.
                    let mut msg = msg;
                    msg.attempts += 1;
                    self.retry.push_front(msg);
                    return Some(e);
                }
            }
        }
        None
    }

    /// The confirm of message `id`: an ack counts it confirmed, a nack
    /// sends it to be resent, an error (the channel lost) too, and is
    /// answered.
    fn confirmed(
        &mut self,
        flight: &mut InFlight,
        id: u64,
        result: lapin::Result<Confirmation>,
    ) -> Result<(), lapin::Error> {
        let Some(mut msg) = flight.unconfirmed.remove(&id) else {
            return Ok(());
        };
        flight.samples -= msg.samples as usize;
        let n = msg.samples as u64;
        match result {
            Ok(Confirmation::Ack(_)) => {
                BridgeStats::add(&self.stats.confirmed, n);
                self.last_confirm = Instant::now();
            }
            Ok(Confirmation::Nack(_)) => {
                BridgeStats::add(&self.stats.nacked, n);
                msg.attempts += 1;
                self.retry.push_back(msg);
            }
            Ok(Confirmation::NotRequested) => {
                BridgeStats::add(&self.stats.confirmed, n);
                self.last_confirm = Instant::now();
            }
            Err(e) => {
                msg.attempts += 1;
                self.retry.push_back(msg);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whatever was not confirmed goes back, oldest first, to be resent,
    /// before what was taken from the outbox and not published yet.
    fn give_back(&mut self, flight: &mut InFlight) {
        flight.samples = 0;
        let mut back: Vec<(u64, OutMessage)> = std::mem::take(&mut flight.unconfirmed)
            .into_iter()
            .collect();
        back.sort_by_key(|(id, _)| *id);
        for (_, mut msg) in back.into_iter().rev() {
            msg.attempts += 1;
            self.retry.push_front(msg);
        }
        for msg in std::mem::take(&mut flight.pending_new).into_iter().rev() {
            self.retry.push_front(msg);
        }
    }
}

/// A confirm awaited, with the id of its message.
type Confirming = futures::future::Join<futures::future::Ready<u64>, lapin::PublisherConfirm>;

/// What one channel has in flight: published and not confirmed yet (by
/// id, numbered in publish order; `samples` in them), their confirms, and
/// what was taken from the outbox and not published yet.
struct InFlight {
    unconfirmed: HashMap<u64, OutMessage>,
    samples: usize,
    confirms: FuturesUnordered<Confirming>,
    seq: u64,
    pending_new: VecDeque<OutMessage>,
}

/// The samples in `msgs`.
fn samples(msgs: &VecDeque<OutMessage>) -> usize {
    msgs.iter().map(|m| m.samples as usize).sum()
}

/// A shutdown deadline measured as time without progress: `timeout` after
/// the later of the shutdown request (`asked`) and the last progress.
pub fn idle_deadline(asked: Instant, last_progress: Instant, timeout: Duration) -> Instant {
    asked.max(last_progress) + timeout
}

/// `Some(error)` once the connection or the channel is no longer open
/// (closed by the broker, e.g. `rabbitmqctl stop_app`, or errored).
fn connection_gone(conn: &Connection, channel: &Channel) -> Option<lapin::Error> {
    if conn.status().connected() && channel.status().connected() {
        return None;
    }
    Some(lapin::Error::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        if conn.status().connected() {
            "the publishing channel closed"
        } else {
            "the broker connection closed"
        },
    )))
}

async fn open_confirm_channel(conn: &Connection) -> lapin::Result<Channel> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_counts_from_the_later_of_request_and_progress() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(10);
        // Progress before the request does not extend the wait.
        let before = t0 - Duration::from_secs(30);
        assert_eq!(idle_deadline(t0, before, timeout), t0 + timeout);
        // Each confirm after the request moves the deadline on.
        let later = t0 + Duration::from_secs(25);
        assert_eq!(idle_deadline(t0, later, timeout), later + timeout);
    }
}
