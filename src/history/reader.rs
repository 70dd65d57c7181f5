//! Reading the history stream over AMQP 0-9-1, the one place that knows
//! how: per-consumer `basic.qos` (a stream consumer must have one), manual
//! acks (for a stream they are credit, not deletion: acking every half
//! prefetch keeps the deliveries flowing), `x-stream-offset` to attach, and
//! the `x-stream-offset` header of every delivery recorded.
//!
//! Exactly once by offset: the broker attaches at a whole chunk, so the
//! first deliveries after `--from <offset>` or after a reconnect may come
//! before the offset asked for; they are skipped (counted), and a reconnect
//! resumes at the offset after the last one handed on. A message the bridge
//! published twice (a resend after a lost connection) has two offsets:
//! that duplicate is passed on, and removed by id where it matters
//! (`--rebuild`).
//!
//! The end (`--until now`): [`end_of_stream`] finds it before reading
//! (see there how, and why it is exact), on every connection until it is
//! found; reading stops at that offset. A start past the end (a `--from`
//! time after the last message) delivers nothing: [`IDLE_END`] without any
//! delivery ends such a read. A pause of [`STALL`] after deliveries, or
//! before the first one where a delivery is due (a start at or before the
//! known end), reconnects instead: a slow broker makes a read late, never
//! short.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use tokio_util::sync::CancellationToken;

use super::position::{Start, Until};
use crate::amqp::connection;
use crate::amqp::consume::decode::batch_elements;
use crate::config::BridgeSettings;
use crate::core::text::bounded_text;
use crate::core::text::redact_url;

/// Longest a replay without `--follow` keeps trying to reach a broker that
/// went away mid-read before it gives up (exit 1).
pub const RECONNECT_LIMIT: Duration = Duration::from_secs(60);

/// Longest a replay without `--follow` tries to reach a broker it has not
/// read anything from yet (exit 1): a broker that is down is said soon.
pub const FIRST_CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// One message of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its offset in the stream.
    pub offset: u64,
    /// Its routing key, one of [`super::position::KEYS`].
    pub key: &'static str,
    /// The `id` of the JSON body, else the `message_id` property.
    pub id: Option<u64>,
    /// The AMQP `timestamp` (seconds since the epoch; when the bridge took it).
    pub timestamp: Option<u64>,
    /// The `body` of the JSON envelope (the whole JSON if it has none:
    /// the features of a run of the user's own data, by column name).
    pub body: serde_json::Value,
    /// The schema's fingerprint (header `x-modelwatch-schema`) of a run
    /// of the user's own data; bounded.
    pub schema: Option<String>,
    /// The last (or only) entry of its message: once it is out, the
    /// message's offset is done (a batch message's entries share one).
    pub ends_message: bool,
}

/// The stream to read and how.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub bridge: BridgeSettings,
    /// The stream queue (`history.queue`).
    pub queue: String,
    /// The history keys the stream is expected to be declared with: the
    /// check that it is a stream declares it with them, which a stream
    /// made with them accepts without a refusal (see
    /// [`crate::amqp::topology::not_a_stream`]).
    pub history: crate::config::HistorySettings,
    /// Unacknowledged deliveries at most (`inbound.prefetch`).
    pub prefetch: u16,
    /// Larger bodies are skipped, counted (`inbound.max_body_bytes`).
    pub max_body_bytes: usize,
    /// Larger batch bodies are skipped, counted (`inbound.max_batch_bytes`).
    pub max_batch_bytes: usize,
}

impl StreamSource {
    /// The history of `settings`: the bridge's broker, `history.queue`,
    /// the inbound prefetch and body bound.
    pub fn of(settings: &crate::config::Settings) -> StreamSource {
        StreamSource {
            bridge: settings.bridge.clone(),
            queue: settings.history.queue.clone(),
            history: settings.history.clone(),
            prefetch: settings.inbound.prefetch,
            max_body_bytes: settings.inbound.max_body_bytes,
            max_batch_bytes: settings.inbound.max_batch_bytes,
        }
    }
}

/// Where a read stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// At the end of the stream as it was at the start, or at a time.
    At(Until),
    /// Never (until cancelled): `--follow`.
    Follow,
}

/// What a read did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Deliveries received (all keys, skipped ones included).
    pub delivered: u64,
    /// Messages handed on (of the keys asked for).
    pub kept: u64,
    /// Deliveries before the start offset (the head of a chunk) or already
    /// handed on before a reconnect: skipped.
    pub skipped: u64,
    /// Deliveries whose body is not JSON, too large, or whose routing key is
    /// not a history key: skipped.
    pub malformed: u64,
    /// Connections lost and made again.
    pub reconnects: u64,
    /// The offset of the last delivery handled, if any.
    pub last_offset: Option<u64>,
    /// The end of the stream found at the start (`--until`), if any.
    pub end: Option<u64>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Refused for good: the caller exits 2.
    #[error("{0}")]
    Refused(String),
    /// The broker went away and did not come back in time: exit 1.
    #[error("history.queue {queue}: the broker connection was lost and not regained within {secs} s: {error}")]
    Lost {
        queue: String,
        secs: u64,
        error: String,
    },
    /// The consumer of the entries failed (stdout, the rebuild's files).
    #[error(transparent)]
    Sink(anyhow::Error),
}

/// The `x-stream-offset` argument for `start`.
fn offset_argument(start: Start) -> AMQPValue {
    match start {
        Start::First => AMQPValue::LongString(LongString::from("first")),
        Start::Last => AMQPValue::LongString(LongString::from("last")),
        Start::Next => AMQPValue::LongString(LongString::from("next")),
        Start::Offset(o) => AMQPValue::LongLongInt(o.min(i64::MAX as u64) as i64),
        Start::Time(t) => AMQPValue::Timestamp(t),
    }
}

/// The `x-stream-offset` header of a delivery.
fn delivery_offset(d: &lapin::message::Delivery) -> Option<u64> {
    let headers = d.properties.headers().as_ref()?;
    match headers.inner().get("x-stream-offset")? {
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(*v as u64),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

/// Turns a delivery into its [`Entry`]s, in order: one, or one per sample
/// of a batch message (`bridge.batch`, all at the delivery's offset);
/// `None` for one that is not a history message (unknown key, not JSON,
/// too large), for the whole delivery or for one sample of a batch.
fn entries(d: &lapin::message::Delivery, offset: u64, source: &StreamSource) -> Vec<Option<Entry>> {
    if !crate::amqp::consume::inbound::is_batch(d) {
        return vec![entry(d, &d.data, offset, source.max_body_bytes)];
    }
    match batch_elements(&d.data, source.max_batch_bytes) {
        Ok(elements) => {
            let last = elements.len() - 1;
            elements
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    entry(d, e.get().as_bytes(), offset, source.max_body_bytes).map(|entry| Entry {
                        ends_message: i == last,
                        ..entry
                    })
                })
                .collect()
        }
        Err(_) => vec![None],
    }
}

/// The [`Entry`] of one message `body` of delivery `d`; `None` for one
/// that is not a history message (unknown key, not JSON, too large).
fn entry(d: &lapin::message::Delivery, body: &[u8], offset: u64, max_body: usize) -> Option<Entry> {
    let key = super::position::KEYS
        .iter()
        .find(|k| **k == d.routing_key.as_str())?;
    if body.len() > max_body {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message_id = d
        .properties
        .message_id()
        .as_ref()
        .and_then(|m| m.as_str().parse().ok());
    let (id, body) = match json {
        serde_json::Value::Object(mut map) if map.contains_key("body") => (
            map.get("id").and_then(|v| v.as_u64()).or(message_id),
            map.remove("body").unwrap_or_default(),
        ),
        // Values by column name: the whole JSON, its id if it has one.
        other => (
            other.get("id").and_then(|v| v.as_u64()).or(message_id),
            other,
        ),
    };
    let schema = crate::amqp::consume::inbound::schema_header(d);
    Some(Entry {
        offset,
        key,
        id,
        timestamp: *d.properties.timestamp(),
        body,
        schema,
        ends_message: true,
    })
}

/// Reads the stream of `source` from `start` until `stop`, handing each
/// message of `keys` to `sink` in offset order. Cancelling `cancel` ends the
/// read cleanly (what was handed on stays handed on).
pub async fn read(
    source: &StreamSource,
    start: Start,
    stop: Stop,
    keys: &[&'static str],
    cancel: &CancellationToken,
    sink: &mut dyn FnMut(&Entry) -> anyhow::Result<()>,
) -> Result<ReadReport, ReadError> {
    let req = Request {
        source,
        start,
        stop,
        keys,
        cancel,
    };
    let mut report = ReadReport::default();
    let mut backoff = source.bridge.backoff_min;
    let mut lost_since: Option<(Instant, String)> = None;
    let mut first_connect = true;
    // Until the end is found, every connection probes for it first: a read
    // without its end would take "no end" for "nothing to read".
    let mut end_found = false;
    loop {
        if cancel.is_cancelled() {
            return Ok(report);
        }
        let attempt = read_on_connection(req, sink, &mut report, &mut end_found).await;
        match attempt {
            Ok(()) => return Ok(report),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Lost { error, consumed }) => {
                if consumed || lost_since.is_none() {
                    if consumed || first_connect {
                        tracing::warn!(queue = %source.queue.escape_debug(), error = %error, last_offset = ?report.last_offset, "history: connection lost; reconnecting to continue after the last offset");
                    }
                    if consumed {
                        report.reconnects += 1;
                        backoff = source.bridge.backoff_min;
                    }
                    lost_since = Some((Instant::now(), error.clone()));
                }
                first_connect = false;
                let (since, _) = lost_since.as_ref().expect("set above");
                let limit = match report.delivered {
                    0 => FIRST_CONNECT_LIMIT,
                    _ => RECONNECT_LIMIT,
                };
                if stop != Stop::Follow && since.elapsed() >= limit {
                    return Err(ReadError::Lost {
                        queue: source.queue.escape_debug().to_string(),
                        secs: limit.as_secs(),
                        error,
                    });
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = cancel.cancelled() => return Ok(report),
                }
                backoff = (backoff * 2).min(source.bridge.backoff_max);
            }
        }
    }
}

/// How one connection's read ended, when it did not finish.
pub(crate) enum Attempt {
    /// No retry can help (exit 2), or the sink failed.
    Fatal(ReadError),
    /// The connection failed; `consumed` if it delivered something first.
    Lost { error: String, consumed: bool },
}

fn lost(e: impl std::fmt::Display) -> Attempt {
    Attempt::Lost {
        error: bounded_text(&e.to_string(), 300),
        consumed: false,
    }
}

/// A connection to the stream's broker: a refused login or vhost is
/// fatal (exit 2), anything else is lost (retried).
async fn connect(source: &StreamSource, name: &str) -> Result<lapin::Connection, Attempt> {
    connection::bounded(connection::connect(&source.bridge, name))
        .await
        .map_err(|e| match connection::permanent_refusal(&e) {
            Some(refusal) => Attempt::Fatal(ReadError::Refused(format!(
                "bridge.url {}: {refusal}",
                redact_url(&source.bridge.url)
            ))),
            None => lost(e),
        })
}

/// What one read asks for: the same on every connection it takes.
#[derive(Clone, Copy)]
struct Request<'a> {
    source: &'a StreamSource,
    start: Start,
    stop: Stop,
    keys: &'a [&'static str],
    cancel: &'a CancellationToken,
}

async fn read_on_connection(
    req: Request<'_>,
    sink: &mut dyn FnMut(&Entry) -> anyhow::Result<()>,
    report: &mut ReadReport,
    end_found: &mut bool,
) -> Result<(), Attempt> {
    let conn = connect(req.source, "modelwatch replay").await?;
    let result = consume(req, sink, report, end_found, &conn).await;
    connection::close_quietly(&conn, 200, "replay done").await;
    result
}

/// One connection's read: the end found (on the first connection that gets
/// that far), the stream attached after what was handed on already, then
/// each delivery acked (as credit) and handed on until the end, a cancel,
/// or a loss.
async fn consume(
    req: Request<'_>,
    sink: &mut dyn FnMut(&Entry) -> anyhow::Result<()>,
    report: &mut ReadReport,
    end_found: &mut bool,
    conn: &lapin::Connection,
) -> Result<(), Attempt> {
    if !*end_found {
        find_the_end(conn, req, report).await?;
        *end_found = true;
    }
    // Where this connection starts: after what was handed on already.
    let resume = match report.last_offset {
        Some(last) => Start::Offset(last + 1),
        None => req.start,
    };
    if nothing_left(req, report, resume) {
        return Ok(());
    }
    let (ch, mut consumer) = attach(conn, req, resume).await?;
    let ack_every = (req.source.prefetch as u64 / 2).max(1);
    let mut unacked = 0u64;
    let mut consumed = false;
    let skip_below = match resume {
        Start::Offset(o) => o,
        _ => 0,
    };
    // A known end at or after where this connection starts: something must
    // come, so a silence is a stall, not the end.
    let due =
        report.end.is_some() && matches!(resume, Start::First | Start::Last | Start::Offset(_));
    loop {
        let Some(delivery) = next_delivery(&mut consumer, req, report, consumed, due).await? else {
            return Ok(());
        };
        consumed = true;
        report.delivered += 1;
        unacked += 1;
        let tag = delivery.delivery_tag;
        if unacked >= ack_every {
            if let Err(e) = ch.basic_ack(tag, BasicAckOptions { multiple: true }).await {
                return Err(Attempt::Lost {
                    error: bounded_text(&e.to_string(), 300),
                    consumed,
                });
            }
            unacked = 0;
        }
        if hand_on(&delivery, req, sink, report, skip_below)? {
            return Ok(());
        }
    }
}

/// On the first connection: checks the stream is there and records where
/// the read ends (`--until now`: the end now); a `--from` offset past that
/// end is refused (exit 2).
async fn find_the_end(
    conn: &lapin::Connection,
    req: Request<'_>,
    report: &mut ReadReport,
) -> Result<(), Attempt> {
    match req.stop {
        Stop::At(Until::Offset(end)) => {
            stream_exists(conn, req.source).await?;
            report.end = Some(end);
        }
        Stop::At(_) => report.end = end_of_stream(conn, req.source).await?,
        Stop::Follow => {
            stream_exists(conn, req.source).await?;
        }
    }
    if let (Start::Offset(o), Stop::At(_)) = (req.start, req.stop) {
        let next = report.end.map_or(0, |e| e + 1);
        if o > next {
            return Err(Attempt::Fatal(ReadError::Refused(format!(
                "--from {o}: past the end of history.queue {} (its next offset is {next})",
                req.source.queue.escape_debug()
            ))));
        }
    }
    Ok(())
}

/// The read has handed on everything up to its end (an empty stream has
/// no end to reach).
fn finished(stop: Stop, report: &ReadReport) -> bool {
    match (stop, report.end, report.last_offset) {
        (Stop::At(_), None, _) => true,
        (Stop::At(_), Some(end), Some(last)) => last >= end,
        _ => false,
    }
}

/// Nothing is left to read from `resume`: the end was reached already, the
/// read starts at the next message and does not follow, or `resume` is
/// past the end.
fn nothing_left(req: Request<'_>, report: &ReadReport, resume: Start) -> bool {
    if finished(req.stop, report) || (req.start == Start::Next && req.stop != Stop::Follow) {
        return true;
    }
    matches!(
        (req.stop, report.end, resume),
        (Stop::At(_), Some(end), Start::Offset(o)) if o > end
    )
}

/// A channel with `basic.qos` and a consumer attached to the stream at
/// `resume`; a broker that refuses to read the queue as a stream is fatal.
async fn attach(
    conn: &lapin::Connection,
    req: Request<'_>,
    resume: Start,
) -> Result<(lapin::Channel, lapin::Consumer), Attempt> {
    let queue = req.source.queue.as_str();
    let ch = connection::bounded(conn.create_channel())
        .await
        .map_err(lost)?;
    connection::bounded(ch.basic_qos(req.source.prefetch.max(1), BasicQosOptions::default()))
        .await
        .map_err(lost)?;
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), offset_argument(resume));
    let consumer = match connection::bounded(ch.basic_consume(
        queue.into(),
        "modelwatch-replay".into(),
        BasicConsumeOptions::default(),
        args,
    ))
    .await
    {
        Ok(c) => c,
        Err(e) if is_protocol_error(&e) => {
            return Err(Attempt::Fatal(ReadError::Refused(format!(
                "history.queue {}: the broker refused to read it as a stream: {}",
                queue.escape_debug(),
                bounded_text(&e.to_string(), 300)
            ))))
        }
        Err(e) => return Err(lost(e)),
    };
    Ok((ch, consumer))
}

/// The next delivery, or `None` when the read ends here (cancelled, or
/// nothing at all delivered before [`IDLE_END`]: a start past the end). A
/// pause of [`STALL`] after deliveries or where deliveries are `due` (the
/// start is at or before the known end), a consumer error or its close is
/// a loss (reconnect).
async fn next_delivery(
    consumer: &mut lapin::Consumer,
    req: Request<'_>,
    report: &ReadReport,
    consumed: bool,
    due: bool,
) -> Result<Option<lapin::message::Delivery>, Attempt> {
    // Without --follow: nothing at all delivered is a start past the
    // end; a pause after deliveries, before the end, is a stall.
    let stall = consumed || due;
    let idle_for = if stall { STALL } else { IDLE_END };
    let idle = async {
        match req.stop {
            Stop::Follow => std::future::pending().await,
            Stop::At(_) => tokio::time::sleep(idle_for).await,
        }
    };
    let next = tokio::select! {
        d = consumer.next() => d,
        _ = req.cancel.cancelled() => return Ok(None),
        _ = idle => {
            if stall {
                let error = match consumed {
                    true => format!("no delivery for {} s before the end of the stream", STALL.as_secs()),
                    false => format!(
                        "no delivery for {} s from a start before the end of the stream (offset {})",
                        STALL.as_secs(),
                        report.end.unwrap_or_default()
                    ),
                };
                return Err(Attempt::Lost { error, consumed });
            }
            tracing::debug!(queue = %req.source.queue.escape_debug(), end = ?report.end, "history: nothing delivered: the start is past the end");
            return Ok(None);
        }
    };
    match next {
        Some(Ok(d)) => Ok(Some(d)),
        Some(Err(e)) => Err(Attempt::Lost {
            error: bounded_text(&e.to_string(), 300),
            consumed,
        }),
        None => Err(Attempt::Lost {
            error: "the broker closed the consumer".into(),
            consumed,
        }),
    }
}

/// Hands one delivery to `sink` if it is new (not below `skip_below`, after
/// the last offset handed on) and of the keys asked for, counting it
/// otherwise. True when the read is finished: past `--until <time>`, or
/// the end reached.
fn hand_on(
    delivery: &lapin::message::Delivery,
    req: Request<'_>,
    sink: &mut dyn FnMut(&Entry) -> anyhow::Result<()>,
    report: &mut ReadReport,
    skip_below: u64,
) -> Result<bool, Attempt> {
    let Some(offset) = delivery_offset(delivery) else {
        report.malformed += 1;
        return Ok(false);
    };
    if offset < skip_below || report.last_offset.is_some_and(|l| offset <= l) {
        report.skipped += 1;
        return Ok(false);
    }
    if let (Stop::At(Until::Time(t)), Some(ts)) = (req.stop, *delivery.properties.timestamp()) {
        if ts > t {
            return Ok(true);
        }
    }
    for e in entries(delivery, offset, req.source) {
        match e {
            Some(e) if req.keys.contains(&e.key) => {
                sink(&e).map_err(|e| Attempt::Fatal(ReadError::Sink(e)))?;
                report.kept += 1;
            }
            Some(_) => {}
            None => report.malformed += 1,
        }
    }
    report.last_offset = Some(offset);
    Ok(finished(req.stop, report))
}

fn is_protocol_error(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(_))
}

/// Checks that `queue` exists (a passive declare on a channel of its own:
/// a refusal closes it).
async fn stream_exists(conn: &lapin::Connection, source: &StreamSource) -> Result<u32, Attempt> {
    let queue = source.queue.as_str();
    let ch = connection::bounded(conn.create_channel())
        .await
        .map_err(lost)?;
    match connection::bounded(crate::amqp::topology::passive(&ch, queue)).await {
        Ok(q) => {
            let _ = ch.close(200, "checked".into()).await;
            if let Ok(Some(e)) =
                tokio::time::timeout(connection::BROKER_OP_TIMEOUT, crate::amqp::topology::not_a_stream(conn, queue, &source.history)).await
            {
                return Err(Attempt::Fatal(ReadError::Refused(format!(
                    "history.queue {}: not a stream (a queue of another type has that name; reading it would take its messages away): {}",
                    queue.escape_debug(),
                    bounded_text(&e.to_string(), 200)
                ))));
            }
            Ok(q.message_count())
        }
        Err(e) if is_protocol_error(&e) => Err(Attempt::Fatal(ReadError::Refused(format!(
            "history.queue {}: no such stream on the broker (is history.enabled on where the pipeline runs? {})",
            queue.escape_debug(),
            bounded_text(&e.to_string(), 200)
        )))),
        Err(e) => Err(lost(e)),
    }
}

/// How long the end probe waits for the first delivery of the last chunk:
/// a stream that holds messages answers a consumer attached at `last` at
/// once (the broker sends a chunk as soon as it is attached).
const PROBE_FIRST: Duration = Duration::from_secs(2);
/// The same wait when the broker's message count says the stream holds
/// messages: then an empty answer would be wrong, not just late (a busy
/// broker has taken over 2 s to send the last chunk, and the replay read
/// nothing), and retention never removes a stream's last segment.
const PROBE_FIRST_HOLDING: Duration = Duration::from_secs(20);
/// After the first delivery, how long the probe waits for the rest of the
/// last chunk (the broker sends a chunk's messages back to back).
const PROBE_TAIL: Duration = Duration::from_millis(300);
/// Without `--follow`: no delivery at all for this long means there is
/// nothing to read (a `--from` time after the last message attaches at the
/// end, where nothing comes).
pub const IDLE_END: Duration = Duration::from_secs(2);
/// Without `--follow`: no delivery for this long after some, before the
/// end, is a stalled connection: it is made again, resuming after the last
/// offset (never a silent stop short of the end).
pub const STALL: Duration = Duration::from_secs(30);

/// The offset of the last message of the stream now, `None` if it holds
/// none. AMQP 0-9-1 has no call that returns a stream's committed offset
/// (the message count of a passive declare lags by seconds: it is the
/// broker's periodic statistic), so a probe consumer attaches at `last`:
/// the broker delivers the whole last chunk at once, and the largest
/// offset in it is the end. Offsets are not dense (each new segment file
/// takes one for its tracking snapshot), so the end is an offset seen, not
/// a count.
pub(crate) async fn end_of_stream(
    conn: &lapin::Connection,
    source: &StreamSource,
) -> Result<Option<u64>, Attempt> {
    let queue = source.queue.as_str();
    let held = stream_exists(conn, source).await?;
    let ch = connection::bounded(conn.create_channel())
        .await
        .map_err(lost)?;
    connection::bounded(ch.basic_qos(1000, BasicQosOptions::default()))
        .await
        .map_err(lost)?;
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), offset_argument(Start::Last));
    let mut probe = connection::bounded(ch.basic_consume(
        queue.into(),
        "modelwatch-replay-end".into(),
        BasicConsumeOptions::default(),
        args,
    ))
    .await
    .map_err(|e| match is_protocol_error(&e) {
        true => Attempt::Fatal(ReadError::Refused(format!(
            "history.queue {}: the broker refused to read it as a stream: {}",
            queue.escape_debug(),
            bounded_text(&e.to_string(), 300)
        ))),
        false => lost(e),
    })?;
    let mut end = None;
    let mut wait = match held {
        0 => PROBE_FIRST,
        _ => PROBE_FIRST_HOLDING,
    };
    while let Ok(next) = tokio::time::timeout(wait, probe.next()).await {
        let d = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(lost(e)),
            None => return Err(lost("the broker closed the end probe")),
        };
        let _ = ch
            .basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
            .await;
        if let Some(o) = delivery_offset(&d) {
            end = end.max(Some(o));
        }
        wait = PROBE_TAIL;
    }
    let _ = ch.close(200, "end found".into()).await;
    if end.is_none() && held > 0 {
        // The broker counts messages but sent none: a broker too slow to
        // answer, not an empty stream (retried, never a read of nothing).
        return Err(lost(format!(
            "the end probe got no message in {} s though the broker counts {held} in the stream",
            PROBE_FIRST_HOLDING.as_secs()
        )));
    }
    Ok(end)
}

/// The offset of the last message of the stream of `source` (see
/// [`end_of_stream`]), on a connection of its own.
pub async fn find_end(source: &StreamSource) -> Result<Option<u64>, ReadError> {
    let end = match connect(source, "modelwatch history end").await {
        Ok(conn) => {
            let end = end_of_stream(&conn, source).await;
            connection::close_quietly(&conn, 200, "end found").await;
            end
        }
        Err(a) => Err(a),
    };
    end.map_err(|a| match a {
        Attempt::Fatal(e) => e,
        Attempt::Lost { error, .. } => ReadError::Lost {
            queue: source.queue.escape_debug().to_string(),
            secs: 0,
            error,
        },
    })
}
