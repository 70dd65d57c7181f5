//! Inbound consumers: feed local actors from RabbitMQ when a process runs
//! only some roles (the original four-service layout).
//!
//! Each consumer reads one durable work queue bound to the exchange (model:
//! `features`; metric: `y_true` and `y_pred`, one queue each so neither can
//! starve the other; plot: `metrics`). Processes running the same role
//! share the queue and so the work (competing consumers). Deliveries are
//! decoded in batches and handed to the local actor with a completion token
//! ([`crate::core::done`]); a batch is acknowledged only when its work is done
//! (prediction confirmed by the broker, row written), with one `multiple`
//! ack for every run of finished batches. A failed batch is requeued. A
//! malformed message is published to the dead-letter exchange with the
//! reason in the `x-reject-reason` header (bounded, see [`super::decode`]),
//! then acknowledged: it never blocks the queue or stops the process. If
//! that publish fails (nack, closed channel), the message is rejected
//! without requeue instead, so the broker moves it to the work queue's own
//! dead-letter exchange: a message that cannot be dead-lettered with its
//! reason never comes back in a loop.
//!
//! A batch message (several samples, [`super::decode::BATCH_CONTENT_TYPE`]) is one
//! delivery: its samples are read one by one, and a bad one is
//! dead-lettered alone, as a message of its own with the reason and its
//! place in the batch (`x-batch-index`); the delivery is acked when the
//! work of the rest is done. If that copy cannot be published, the whole
//! delivery is rejected to the work queue's own dead-letter exchange, and
//! none of its samples is handed over (nothing is done twice). A batch
//! that cannot be split (not a JSON array, over `inbound.max_batch_bytes`,
//! of another schema) is dead-lettered whole. Repeated warnings (malformed
//! messages, failed dead-letters, lost connections) are logged at most once
//! per `bridge.stats_interval`, with a count. Work queues and the dead-letter
//! queue are bounded (`inbound.queue_max_length`); a work queue past its
//! bound dead-letters its oldest message. Runs on the bridge's runtime.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Recipient;
use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::watch;

use super::decode::{batch_elements, check_schema, decode_in, is_batch_content_type, Decode};
use super::throttle::Throttle;
use crate::amqp::{connection, topology};
use crate::config::{BridgeSettings, InboundSettings};
use crate::core::backlog::Hold;
use crate::core::done::{Done, Outcome};
use crate::core::messages::{Batch, Kind};
use crate::core::metrics::{Metrics, QueueReasonLabel};
use crate::core::schema::{WireSchema, SCHEMA_HEADER};
use crate::core::text::{bounded_text, redact_url};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Counters of one consumer: handles of the telemetry registry,
/// `modelwatch_inbound_messages_total{queue, event}` and
/// `modelwatch_inbound_dead_lettered_total{queue, reason}`.
#[derive(Debug, Default)]
pub struct InboundStats {
    pub received: Counter,
    pub acked: Counter,
    pub requeued: Counter,
    /// Deliveries the broker flagged `redelivered` (another consumer, or an
    /// earlier connection, had them unacked).
    pub redelivered: Counter,
    /// Malformed messages dead-lettered (all reasons; by reason in the registry).
    pub dead_lettered: Counter,
    by_reason: Family<QueueReasonLabel, Counter>,
    queue: String,
    /// Malformed messages whose dead-letter publish failed: rejected
    /// without requeue to the work queue's own dead-letter exchange.
    pub rejected: Counter,
    /// Deliveries whose work was given up at the shutdown deadline (they go
    /// back to the queue unacked; this run did not finish them).
    pub abandoned: Counter,
    /// Gauge: deliveries handed to the actor whose outcome is not settled yet.
    pub in_flight: AtomicU64,
}

impl InboundStats {
    /// The registry's handles for `queue`.
    pub fn registered(m: &Metrics, queue: &str) -> InboundStats {
        InboundStats {
            received: m.inbound(queue, "delivered"),
            acked: m.inbound(queue, "acked"),
            requeued: m.inbound(queue, "requeued"),
            redelivered: m.inbound(queue, "redelivered"),
            dead_lettered: Counter::default(),
            by_reason: m.inbound_dead_lettered.clone(),
            queue: queue.to_owned(),
            rejected: m.inbound(queue, "rejected"),
            abandoned: m.inbound(queue, "abandoned"),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Counts one malformed message dead-lettered for `reason`.
    pub fn dead_letter(&self, reason: &'static str) {
        self.dead_lettered.inc();
        self.by_reason
            .get_or_create(&QueueReasonLabel {
                queue: self.queue.clone(),
                reason,
            })
            .inc();
    }
}

/// One consumer: a queue, the kind it carries and the actor it feeds.
pub struct Inbound<T: Decode> {
    pub queue: String,
    pub kind: Kind,
    pub target: Recipient<Batch<T>>,
    pub stats: Arc<InboundStats>,
    /// The run's schema (data of the user's own): messages of another
    /// schema, or of none, are dead-lettered.
    pub schema: Option<Arc<WireSchema>>,
    /// When to take no new deliveries: the metric's side of the join that
    /// runs too far ahead ([`crate::core::backlog`]).
    pub hold: Option<Hold>,
}

/// How often a held consumer looks again whether it may go on.
const HOLD_RECHECK: Duration = Duration::from_millis(5);

/// The delivery tags of a batch handed to the actor.
struct Handed {
    first: u64,
    last: u64,
    /// Dead-lettered (their copy is confirmed): acked with the batch.
    dead: Vec<u64>,
    /// Already rejected (their dead-letter publish failed): never acked.
    rejected: Vec<u64>,
}

/// A handed batch and whether its work succeeded, once known.
type Settled = lapin::Result<(Handed, bool)>;

/// The warnings an inbound consumer may repeat, each throttled; they live
/// across reconnects, so a loop of reconnects cannot flood the log either.
struct Warnings {
    malformed: Throttle,
    dead_letter_failed: Throttle,
    lost: Throttle,
}

/// The backoff and the failure streaks of one consumer across reconnects:
/// failed connects, and failed starts on a connection, each logged once
/// per streak, which ends only when a consumer really started (the
/// backoff too: a connect that works is not enough).
struct Streak {
    backoff: Duration,
    failures: u64,
    start_failures: u64,
}

impl Streak {
    /// Waits the backoff (or until shutdown changes), then doubles it up
    /// to `bridge.backoff_max`.
    async fn back_off(
        &mut self,
        bridge: &BridgeSettings,
        shutdown: &mut watch::Receiver<Option<Instant>>,
    ) {
        tokio::select! {
            _ = tokio::time::sleep(self.backoff) => {}
            _ = shutdown.changed() => {}
        }
        self.backoff = (self.backoff * 2).min(bridge.backoff_max);
    }
}

impl<T: Decode> Inbound<T>
where
    Batch<T>: actix::Message<Result = ()> + Send,
{
    /// Consumes until shutdown, reconnecting with backoff.
    pub async fn run(
        self,
        bridge: BridgeSettings,
        settings: InboundSettings,
        mut shutdown: watch::Receiver<Option<Instant>>,
    ) {
        let mut streak = Streak {
            backoff: bridge.backoff_min,
            failures: 0,
            start_failures: 0,
        };
        let mut warnings = Warnings {
            malformed: Throttle::new(bridge.stats_interval),
            dead_letter_failed: Throttle::new(bridge.stats_interval),
            lost: Throttle::new(bridge.stats_interval),
        };
        loop {
            if shutdown.borrow().is_some() {
                break;
            }
            let conn = match connection::bounded(connection::connect(&bridge, "modelwatch inbound"))
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    streak.failures += 1;
                    if streak.failures == 1 {
                        self.log_connect_failed(&bridge, &e);
                    }
                    streak.back_off(&bridge, &mut shutdown).await;
                    continue;
                }
            };
            let mut started = false;
            match self
                .consume_on(
                    &conn,
                    &bridge,
                    &settings,
                    &mut shutdown,
                    &mut warnings,
                    &mut started,
                )
                .await
            {
                Ok(()) => {
                    connection::close_quietly(&conn, 200, "modelwatch shutting down").await;
                    break;
                }
                Err(e) => {
                    connection::close_quietly(&conn, 320, "reconnecting").await;
                    if started {
                        // It consumed: a new streak begins (one line per
                        // interval, as before, for a flapping connection).
                        streak.failures = 0;
                        streak.start_failures = 0;
                        streak.backoff = bridge.backoff_min;
                        if let Some(count) = warnings.lost.note(Instant::now()) {
                            tracing::warn!(queue = %self.queue, error = %e, count, "inbound: connection lost; reconnecting (unacked deliveries come back)");
                        }
                    } else {
                        // A refused declaration, qos or consume fails the
                        // same way at every attempt: back off like a failed
                        // connect (never spin), one line per streak.
                        streak.start_failures += 1;
                        if streak.start_failures == 1 {
                            tracing::error!(queue = %self.queue, error = %format!("{e:#}"), "inbound: cannot start consuming; retrying with backoff (logged once until it works)");
                        }
                        streak.back_off(&bridge, &mut shutdown).await;
                    }
                }
            }
        }
        self.log_stopped();
    }

    /// The one line of a streak of failed connects: an error for a refusal
    /// (configuration), else a warning.
    fn log_connect_failed(&self, bridge: &BridgeSettings, e: &lapin::Error) {
        match connection::permanent_refusal(e) {
            Some(refusal) => {
                tracing::error!(queue = %self.queue, url = %redact_url(&bridge.url), error = %refusal, "inbound: the broker refused the connection (a configuration error); retrying with backoff")
            }
            None => {
                tracing::warn!(queue = %self.queue, url = %redact_url(&bridge.url), error = %e, "inbound: broker unreachable; retrying with backoff")
            }
        }
    }

    fn log_stopped(&self) {
        tracing::info!(
            queue = %self.queue,
            received = self.stats.received.get(),
            acked = self.stats.acked.get(),
            requeued = self.stats.requeued.get(),
            dead_lettered = self.stats.dead_lettered.get(),
            rejected = self.stats.rejected.get(),
            abandoned = self.stats.abandoned.get(),
            redelivered = self.stats.redelivered.get(),
            "inbound consumer stopped"
        );
    }

    /// Declares the work queue (within `BROKER_OP_TIMEOUT`) and answers a
    /// channel with `basic.qos`, the dead-letter channel, and a consumer.
    async fn start_consuming(
        &self,
        conn: &Connection,
        bridge: &BridgeSettings,
        settings: &InboundSettings,
    ) -> anyhow::Result<(Channel, Channel, lapin::Consumer)> {
        let q = topology::WorkQueue {
            key: settings.queue_key(&self.queue),
            name: &self.queue,
            kind: self.kind,
        };
        let declared = topology::declare_work_queue(conn, bridge, settings, q);
        match tokio::time::timeout(connection::BROKER_OP_TIMEOUT, declared).await {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("no answer from the broker to the declarations"),
        }
        let ch = conn.create_channel().await?;
        ch.basic_qos(settings.prefetch_for(bridge), BasicQosOptions::default())
            .await?;
        let dlq = open_dead_letter_channel(conn).await?;
        let consumer = ch
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((ch, dlq, consumer))
    }

    /// Consumes on one connection: batches handed over as they come, and
    /// settled in order as their work finishes; at shutdown no new
    /// deliveries, and what is in flight may finish until the deadline.
    async fn consume_on(
        &self,
        conn: &Connection,
        bridge: &BridgeSettings,
        settings: &InboundSettings,
        shutdown: &mut watch::Receiver<Option<Instant>>,
        warnings: &mut Warnings,
        started: &mut bool,
    ) -> anyhow::Result<()> {
        let (ch, mut dlq, mut consumer) = self.start_consuming(conn, bridge, settings).await?;
        *started = true;
        tracing::info!(queue = %self.queue, prefetch = settings.prefetch_for(bridge), "inbound consumer started");
        let mut in_flight: FuturesOrdered<_> = FuturesOrdered::new();
        // Deliveries of an earlier connection come back by themselves.
        self.stats.in_flight.store(0, Relaxed);
        let mut consuming = true;
        loop {
            let deadline = *shutdown.borrow();
            if let Some(d) = deadline {
                if consuming {
                    consuming = false;
                    // No new deliveries; what is in flight may still finish.
                    let _ = ch
                        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                        .await;
                }
                if in_flight.is_empty() || Instant::now() >= d {
                    self.stop_consuming(in_flight.len(), &ch, &dlq).await;
                    return Ok(());
                }
            }
            let held = self.hold.as_ref().is_some_and(Hold::holds);
            tokio::select! {
                delivery = consumer.next(), if consuming && !held => {
                    let Some(first) = delivery else {
                        anyhow::bail!("consumer stream ended");
                    };
                    // Up to `batch_size` deliveries, ending after a batch
                    // message: one hand-over holds at most `batch_size`
                    // samples and one batch message's.
                    let mut batch = vec![first?];
                    while batch.len() < settings.batch_size && !is_batch(&batch[batch.len() - 1]) {
                        match consumer.next().now_or_never() {
                            Some(Some(d)) => batch.push(d?),
                            _ => break,
                        }
                    }
                    self.stats.in_flight.fetch_add(batch.len() as u64, Relaxed);
                    let (handed, outcome) = self.hand_over(batch, settings, conn, &ch, &mut dlq, warnings).await?;
                    in_flight.push_back(async move {
                        let ok = match outcome {
                            Some(o) => o.await.unwrap_or(false),
                            None => true,
                        };
                        Ok((handed, ok)) as Settled
                    });
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let mut finished = vec![done];
                    while let Some(Some(d)) = in_flight.next().now_or_never() {
                        finished.push(d);
                    }
                    self.settle(&ch, finished).await?;
                }
                _ = shutdown.changed() => {}
                _ = connection::sleep_until_opt(deadline) => {}
                _ = tokio::time::sleep(HOLD_RECHECK), if held => {}
            }
        }
    }

    /// The end of a consumer at shutdown: `batches` still in flight are
    /// abandoned (counted, said; unacked they go back to the queue), then
    /// the channels closed.
    async fn stop_consuming(&self, batches: usize, ch: &Channel, dlq: &Channel) {
        if batches > 0 {
            let abandoned = self.stats.in_flight.swap(0, Relaxed);
            self.stats.abandoned.inc_by(abandoned);
            tracing::warn!(queue = %self.queue, batches, deliveries = abandoned, "inbound: shutdown deadline passed; unacked deliveries go back to the queue");
        }
        // Close channels before the connection, or their drop
        // races the connection close (lapin logs an error).
        let quick = Duration::from_secs(2);
        let _ = tokio::time::timeout(quick, ch.close(200, "done".into())).await;
        let _ = tokio::time::timeout(quick, dlq.close(200, "done".into())).await;
    }

    /// Decodes a batch, dead-letters the bad ones, hands the good ones over.
    /// A bad one whose dead-letter publish fails is rejected at once
    /// (without requeue: the queue's own dead-letter exchange takes it).
    async fn hand_over(
        &self,
        deliveries: Vec<Delivery>,
        settings: &InboundSettings,
        conn: &Connection,
        ch: &Channel,
        dlq: &mut Channel,
        warnings: &mut Warnings,
    ) -> lapin::Result<(Handed, Option<Outcome>)> {
        let first = deliveries[0].delivery_tag;
        let last = deliveries[deliveries.len() - 1].delivery_tag;
        self.stats.received.inc_by(deliveries.len() as u64);
        let redelivered = deliveries.iter().filter(|d| d.redelivered).count();
        self.stats.redelivered.inc_by(redelivered as u64);
        // Each sample with its delivery's tag.
        let mut items: Vec<(u64, T)> = Vec::with_capacity(deliveries.len());
        let mut copies: Vec<(&Delivery, DeadLetter)> = Vec::new();
        for d in &deliveries {
            let header = schema_header(d);
            let mut bad = |body, place, rejection: super::decode::Rejection| {
                let reason = rejection.reason();
                if let Some(count) = warnings.malformed.note(Instant::now()) {
                    tracing::warn!(queue = %self.queue, reason, count, "inbound: malformed messages dead-lettered");
                }
                copies.push((
                    d,
                    DeadLetter {
                        body,
                        place,
                        reason,
                        kind: rejection.kind(),
                    },
                ));
            };
            // The messages in it: itself, or a batch message's samples.
            let parts: Vec<(&[u8], Option<Place>)> = match is_batch(d) {
                false => vec![(&d.data, None)],
                true => match check_schema(self.schema.as_deref(), header.as_deref())
                    .and_then(|()| batch_elements(&d.data, settings.max_batch_bytes))
                {
                    Err(rejection) => {
                        bad(&d.data, None, rejection);
                        continue;
                    }
                    Ok(elements) => {
                        let size = elements.len();
                        elements
                            .into_iter()
                            .enumerate()
                            .map(|(index, e)| (e.get().as_bytes(), Some(Place { index, size })))
                            .collect()
                    }
                },
            };
            for (body, place) in parts {
                match decode_in::<T>(
                    body,
                    settings.max_body_bytes,
                    self.schema.as_deref(),
                    header.as_deref(),
                ) {
                    Ok(item) => items.push((d.delivery_tag, item)),
                    // An array inside a batch: the batch's content type is
                    // there already, so the hint about it does not apply.
                    Err(super::decode::Rejection::AnArray) if place.is_some() => {
                        bad(body, place, super::decode::Rejection::NotAnObject)
                    }
                    Err(rejection) => bad(body, place, rejection),
                }
            }
        }
        let mut sent = Vec::with_capacity(copies.len());
        for (d, copy) in &copies {
            sent.push((
                d.delivery_tag,
                copy.kind,
                if dlq.status().connected() {
                    dead_letter(dlq, settings, &self.queue, d, copy).await
                } else {
                    Err(lapin::Error::from(std::io::Error::other(
                        "the dead-letter channel is closed",
                    )))
                },
            ));
        }
        let mut handed = Handed {
            first,
            last,
            dead: Vec::new(),
            rejected: Vec::new(),
        };
        let channel_broken = self
            .settle_dead_letters(ch, sent, &items, &mut handed, warnings)
            .await?;
        if channel_broken || !dlq.status().connected() {
            *dlq = open_dead_letter_channel(conn).await?;
        }
        // A rejected delivery is whole in the queue's dead-letter exchange:
        // none of its samples is done here.
        let items: Vec<T> = items
            .into_iter()
            .filter(|(tag, _)| !handed.rejected.contains(tag))
            .map(|(_, item)| item)
            .collect();
        if items.is_empty() {
            return Ok((handed, None));
        }
        let (done, outcome) = Done::new();
        let batch = Batch::new(items, Instant::now()).with_done(Some(done));
        if let Err(e) = self.target.send(batch).await {
            crate::core::actor::fatal_dead_actor("inbound", e);
        }
        Ok((handed, Some(outcome)))
    }

    /// Waits for the confirms of the dead-letter copies: each confirmed
    /// copy is counted dead-lettered (by its reason); a delivery whose
    /// copies are all confirmed and that has no sample in `items` is acked
    /// with its batch (`handed.dead`); one with a copy that failed is
    /// rejected now (`handed.rejected`), once, and counted there. True when
    /// the dead-letter channel broke.
    async fn settle_dead_letters(
        &self,
        ch: &Channel,
        publishes: Vec<(u64, &'static str, lapin::Result<lapin::PublisherConfirm>)>,
        items: &[(u64, T)],
        handed: &mut Handed,
        warnings: &mut Warnings,
    ) -> lapin::Result<bool> {
        // Acked only once the broker holds their dead-lettered copies.
        let confirms = publishes
            .into_iter()
            .map(|(tag, kind, publish)| async move {
                let confirmed = match publish {
                    Ok(confirm) => connection::bounded(confirm).await,
                    Err(e) => Err(e),
                };
                (tag, kind, confirmed)
            });
        let results = futures::future::join_all(confirms).await;
        // Counted first: a reject below that fails ends this early.
        for (_, kind, confirmed) in &results {
            if let Ok(Confirmation::Ack(_)) | Ok(Confirmation::NotRequested) = confirmed {
                // The broker holds the copy.
                self.stats.dead_letter(kind);
            }
        }
        let mut channel_broken = false;
        for (tag, _, confirmed) in results {
            if handed.rejected.contains(&tag) {
                continue;
            }
            let failure = match confirmed {
                Ok(Confirmation::Ack(_)) | Ok(Confirmation::NotRequested) => {
                    if !handed.dead.contains(&tag) && !items.iter().any(|(t, _)| *t == tag) {
                        handed.dead.push(tag);
                    }
                    continue;
                }
                Ok(Confirmation::Nack(_)) => {
                    "the broker refused (nack) the dead-letter copy".to_owned()
                }
                Err(e) => {
                    channel_broken = true;
                    e.to_string()
                }
            };
            ch.basic_reject(tag, BasicRejectOptions { requeue: false })
                .await?;
            handed.dead.retain(|t| *t != tag);
            handed.rejected.push(tag);
            self.stats.rejected.inc_by(1);
            // A batch message's good samples go with it, not handed on.
            let good = items.iter().filter(|(t, _)| *t == tag).count();
            if let Some(count) = warnings.dead_letter_failed.note(Instant::now()) {
                tracing::error!(queue = %self.queue, error = %failure, count, good_samples_with_it = good, "inbound: dead-letter publish failed; rejected the message to the queue's own dead-letter exchange (no requeue), with the good samples of a batch message in it");
            }
        }
        Ok(channel_broken)
    }

    /// Acks (multiple) every finished batch in order; requeues failed ones.
    /// Rejected tags are settled already: no ack names them.
    async fn settle(&self, ch: &Channel, finished: Vec<Settled>) -> lapin::Result<()> {
        let mut ack_upto = None;
        for f in finished {
            let (h, ok) = f?;
            let _ = self.stats.in_flight.fetch_update(Relaxed, Relaxed, |n| {
                Some(n.saturating_sub(h.last - h.first + 1))
            });
            if ok {
                // The highest tag still unsettled acks the rest with it.
                if let Some(t) = (h.first..=h.last).rev().find(|t| !h.rejected.contains(t)) {
                    ack_upto = Some(t);
                }
                let n = h.last - h.first + 1 - h.rejected.len() as u64;
                self.stats.acked.inc_by(n);
            } else {
                if let Some(t) = ack_upto.take() {
                    ch.basic_ack(t, BasicAckOptions { multiple: true }).await?;
                }
                // Dead-lettered ones are done (their copy is in the DLQ);
                // only the work that failed goes back to the queue.
                for tag in h.first..=h.last {
                    if h.rejected.contains(&tag) {
                        continue;
                    }
                    if h.dead.contains(&tag) {
                        ch.basic_ack(tag, BasicAckOptions { multiple: false })
                            .await?;
                        continue;
                    }
                    ch.basic_nack(
                        tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        },
                    )
                    .await?;
                    self.stats.requeued.inc_by(1);
                }
            }
        }
        if let Some(t) = ack_upto {
            ch.basic_ack(t, BasicAckOptions { multiple: true }).await?;
        }
        Ok(())
    }
}

/// The [`SCHEMA_HEADER`] header of a delivery (a work queue's or the
/// history stream's), as bounded, escaped text: 64 bytes at most, which
/// any fingerprint fits; a value that is not a string or bytes never
/// matches one.
pub fn schema_header(d: &Delivery) -> Option<String> {
    let headers = d.properties.headers().as_ref()?;
    let text = match headers.inner().get(SCHEMA_HEADER)? {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        _ => "(a value that is not a string)".to_owned(),
    };
    Some(bounded_text(&text, 64))
}

/// A delivery in the batch form ([`super::decode::BATCH_CONTENT_TYPE`]).
pub fn is_batch(d: &Delivery) -> bool {
    is_batch_content_type(d.properties.content_type().as_ref().map(|c| c.as_str()))
}

/// A sample's place in its batch message.
#[derive(Debug, Clone, Copy)]
struct Place {
    index: usize,
    size: usize,
}

/// A dead-letter copy to publish: a whole delivery's body, or one
/// sample's of a batch (`place`), and why.
struct DeadLetter<'a> {
    body: &'a [u8],
    place: Option<Place>,
    reason: String,
    /// The reason's label in `modelwatch_inbound_dead_lettered_total`.
    kind: &'static str,
}

/// A channel with publisher confirms, for dead-letter copies.
async fn open_dead_letter_channel(conn: &Connection) -> lapin::Result<Channel> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

/// Publishes a malformed delivery, or one sample of a batch delivery
/// (as a per-sample message, with `x-batch-index` and `x-batch-size`), to
/// the dead-letter exchange with the reason; the returned future resolves
/// when the broker confirms it.
async fn dead_letter(
    dlq: &Channel,
    s: &InboundSettings,
    queue: &str,
    d: &Delivery,
    copy: &DeadLetter<'_>,
) -> lapin::Result<lapin::PublisherConfirm> {
    let mut headers = FieldTable::default();
    headers.insert(
        "x-reject-reason".into(),
        AMQPValue::LongString(copy.reason.as_str().into()),
    );
    if let Some(place) = copy.place {
        headers.insert(
            "x-batch-index".into(),
            AMQPValue::LongLongInt(place.index as i64),
        );
        headers.insert(
            "x-batch-size".into(),
            AMQPValue::LongLongInt(place.size as i64),
        );
    }
    headers.insert(
        "x-original-queue".into(),
        AMQPValue::LongString(queue.into()),
    );
    headers.insert(
        "x-original-routing-key".into(),
        AMQPValue::LongString(d.routing_key.as_str().into()),
    );
    // The schema it came with, so that the reason can be checked.
    if let Some(h) = schema_header(d) {
        headers.insert(SCHEMA_HEADER.into(), AMQPValue::LongString(h.into()));
    }
    let mut props = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2);
    // The message's own id and kind, so that the copy can be matched.
    if let Some(id) = d.properties.message_id() {
        props = props.with_message_id(id.clone());
    }
    if let Some(kind) = d.properties.kind() {
        props = props.with_type(kind.clone());
    }
    // A sample of a batch is a per-sample message.
    let props = props.with_content_type(match copy.place {
        Some(_) => "application/json".into(),
        None => d
            .properties
            .content_type()
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
    });
    dlq.basic_publish(
        s.dead_letter_exchange.as_str().into(),
        d.routing_key.as_str().into(),
        BasicPublishOptions::default(),
        copy.body,
        props,
    )
    .await
}
