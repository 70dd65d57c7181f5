//! History figures, against a real RabbitMQ, in the same invocation:
//! - the replay rate: messages/s that the replay's reader
//!   ([`crate::history::reader::read`], what `modelwatch replay` runs)
//!   takes from a history stream, from `first` to the end;
//! - beside it, the live consume rate: messages/s of a plain consumer of a
//!   classic durable queue bound to the same exchange (prefetch 1000, one
//!   `multiple` ack every 500), the same messages;
//! - the disk the stream takes per million samples (4 messages each), read
//!   from the broker's stream folder (`/var/lib/rabbitmq/mnesia/*/stream`;
//!   "n/a" where it cannot be read, e.g. a broker on another machine).
//!
//! Both queues are filled once per run by one confirmed lapin publish of
//! the pipeline's wire messages; the stream is deleted and declared again
//! before each run (a stream cannot be purged), and deleted at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use super::bridge::{empty_bound_queue, lapin_publish_to, wire_messages};
use super::{median, BenchOptions, Figure};
use crate::config::{BridgeSettings, HistorySettings};
use crate::history::reader::{self, Stop, StreamSource};
use crate::history::{Start, Until};

const EXCHANGE: &str = "modelwatch_bench.history";
const STREAM: &str = "modelwatch_bench.history";
const LIVE: &str = "modelwatch_bench.live";

/// Where a local RabbitMQ keeps its streams (Debian's package).
const BROKER_DATA: &str = "/var/lib/rabbitmq/mnesia";

/// The history settings of the bench stream: the defaults.
fn stream_settings() -> HistorySettings {
    HistorySettings {
        enabled: true,
        queue: STREAM.into(),
        ..HistorySettings::default()
    }
}

async fn prepare(conn: &Connection, url: &str) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    let _ = ch
        .queue_delete(STREAM.into(), QueueDeleteOptions::default())
        .await?;
    let bridge = BridgeSettings {
        url: url.into(),
        exchange: EXCHANGE.into(),
        ..BridgeSettings::default()
    };
    crate::amqp::topology::declare_history(conn, &bridge, &stream_settings())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    empty_bound_queue(&ch, LIVE, EXCHANGE, 1_000_000).await?;
    Ok(())
}

/// A plain live consumer of the classic queue: messages/s until `n` are in.
async fn live_consume(conn: &Connection, n: usize) -> anyhow::Result<f64> {
    let ch = conn.create_channel().await?;
    ch.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            LIVE.into(),
            "bench-live".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        let d = tokio::time::timeout(std::time::Duration::from_secs(30), consumer.next())
            .await
            .context("the live queue stopped delivering")?
            .context("the live consumer was closed")??;
        got += 1;
        if got % 500 == 0 || got == n {
            ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
                .await?;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = ch.close(200, "done".into()).await;
    Ok(rate)
}

/// The replay's reader over the stream, first to end: messages/s.
async fn replay_rate(url: &str, n: usize) -> anyhow::Result<f64> {
    let source = StreamSource {
        bridge: BridgeSettings {
            url: url.into(),
            exchange: EXCHANGE.into(),
            enabled: true,
            ..BridgeSettings::default()
        },
        queue: STREAM.into(),
        history: stream_settings(),
        prefetch: 1000,
        max_body_bytes: 65_536,
        max_batch_bytes: 1 << 20,
    };
    let mut got = 0usize;
    let mut count = |_: &crate::history::Entry| {
        got += 1;
        Ok::<(), anyhow::Error>(())
    };
    let start = Instant::now();
    let report = reader::read(
        &source,
        Start::First,
        Stop::At(Until::Now),
        &crate::history::KEYS,
        &CancellationToken::new(),
        &mut count,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The end is found by a probe before reading: timed as replay does it.
    let secs = start.elapsed().as_secs_f64();
    if got != n {
        bail!("the replay read {got} of {n} messages ({report:?})");
    }
    Ok(n as f64 / secs)
}

/// Bytes of the files of the stream `name` in the broker's data folder.
/// Its folder is named `<vhost>_<name>_<time>`, every character other than
/// a letter, a digit, `-` or `_` written `_` (`__modelwatch_bench_history_...`).
fn stream_bytes(name: &str) -> Option<u64> {
    let name: String = name
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect();
    let name = format!("_{name}_");
    let mut total = None;
    for node in std::fs::read_dir(BROKER_DATA).ok()?.flatten() {
        let streams = node.path().join("stream");
        let Ok(dirs) = std::fs::read_dir(&streams) else {
            continue;
        };
        for dir in dirs.flatten() {
            if dir.file_name().to_string_lossy().contains(&name) {
                *total.get_or_insert(0) += dir_bytes(&dir.path());
            }
        }
    }
    total
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut stack: Vec<PathBuf> = vec![dir.to_owned()];
    let mut total = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

pub fn bench(opts: &BenchOptions, url: &str) -> anyhow::Result<Vec<Figure>> {
    let samples = if opts.quick { 500 } else { 25_000 };
    let msgs = wire_messages(samples);
    let n = msgs.len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (mut replay, mut live, mut disk) = (vec![], vec![], vec![]);
    rt.block_on(async {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .context("connecting to the broker for the history bench")?;
        for _ in 0..opts.runs {
            prepare(&conn, url).await?;
            lapin_publish_to(&conn, EXCHANGE, &msgs).await?;
            live.push(live_consume(&conn, n).await?);
            replay.push(replay_rate(url, n).await?);
            if let Some(bytes) = stream_bytes(STREAM) {
                disk.push(bytes as f64 / samples as f64 * 1e6);
            }
        }
        let ch = conn.create_channel().await?;
        ch.queue_delete(STREAM.into(), QueueDeleteOptions::default())
            .await?;
        ch.queue_delete(LIVE.into(), QueueDeleteOptions::default())
            .await?;
        ch.exchange_delete(EXCHANGE.into(), ExchangeDeleteOptions::default())
            .await?;
        let _ = conn.close(200, "bench done".into()).await;
        Ok::<_, anyhow::Error>(())
    })?;
    rt.shutdown_background();
    let (r, l) = (median(replay), median(live));
    let disk = match disk.is_empty() {
        true => "n/a (the broker's data folder is not readable here)".to_string(),
        false => format!("{:.0} MB", median(disk) / 1e6),
    };
    Ok(vec![
        Figure::new(
            "history: replay rate, msg/s reading the stream (first to end)",
            format!("{r:.0} (live consume ratio {:.2})", r / l),
            format!("{n} messages of {samples} samples; `replay`'s reader, prefetch 1000, end found by a probe"),
        ),
        Figure::new(
            "live consume rate, msg/s of a classic queue, same messages",
            format!("{l:.0}"),
            "lapin, prefetch 1000, ack `multiple` every 500",
        ),
        Figure::new(
            "history: stream disk per million samples (4 messages each)",
            disk,
            format!("files of the stream in {BROKER_DATA}/*/stream after {samples} samples"),
        ),
    ])
}
