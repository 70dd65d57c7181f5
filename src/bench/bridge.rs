//! Bridge figures, against a real RabbitMQ:
//! - mirrored messages/s of `run --rate 0` with the bridge on, beside a plain
//!   lapin confirmed publish (window 1000) of the same messages, and beside
//!   pika `BlockingConnection` (the original services' client) with and
//!   without `confirm_delivery`, all in the same invocation;
//! - peak RSS with the broker unreachable and 10x more messages than the
//!   buffer holds, beside the same run with the bridge off.
//!
//! Every publisher sends persistent messages to the same durable topic
//! exchange (`modelwatch_bench`) with one durable queue bound with `#`
//! (bounded with `x-max-length`), purged before each measurement.

use std::collections::VecDeque;
use std::io::Write;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use futures::stream::{FuturesUnordered, StreamExt};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use super::pipeline::run_child;
use super::{median, BenchOptions, Figure};
use crate::core::data::Dataset;
use crate::core::messages::{Kind, MetricRecord, WireMessage};
use crate::model::LinearModel;
use crate::source::sampler::Sampler;

const EXCHANGE: &str = "modelwatch_bench";
const QUEUE: &str = "modelwatch_bench";
const PIKA_SCRIPT: &str = include_str!("../../benches/pika_publish.py");

/// The wire messages of `samples` samples, as the pipeline mirrors them.
pub fn wire_messages(samples: usize) -> Vec<(Kind, Vec<u8>)> {
    let data = Dataset::embedded();
    let model = LinearModel::fit(data).expect("the embedded data fits");
    let mut sampler = Sampler::new(
        crate::source::sampler::Rows::Diabetes(data),
        crate::config::Order::Random,
        Some(1),
    );
    let (features, truths) = sampler.batch(samples);
    let mut out = Vec::with_capacity(samples * 4);
    for (f, t) in features.items.iter().zip(truths.items.iter()) {
        let p = crate::core::messages::Prediction {
            id: f.id,
            y: model.predict(&f.x),
        };
        out.push((Kind::Features, f.to_json()));
        out.push((Kind::YTrue, t.to_json()));
        out.push((Kind::YPred, p.to_json()));
        out.push((Kind::Metrics, MetricRecord::join(f.id, t.y, p.y).to_json()));
    }
    out
}

async fn prepare(url: &str) -> anyhow::Result<Connection> {
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    crate::amqp::topology::exchange(&ch, EXCHANGE).await?;
    empty_bound_queue(&ch, QUEUE, EXCHANGE, 200_000).await?;
    Ok(conn)
}

/// A durable queue of at most `max_len` messages bound to `exchange` with
/// `#`, emptied: where a bench's messages land, or are consumed from.
pub(super) async fn empty_bound_queue(
    ch: &lapin::Channel,
    queue: &str,
    exchange: &str,
    max_len: i32,
) -> lapin::Result<()> {
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(max_len));
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await?;
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_purge(queue.into(), QueuePurgeOptions::default())
        .await?;
    Ok(())
}

async fn purge(conn: &Connection) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    ch.queue_purge(QUEUE.into(), QueuePurgeOptions::default())
        .await?;
    Ok(())
}

/// Plain lapin: publish every message with confirms, 1000 in flight.
async fn lapin_publish(conn: &Connection, msgs: &[(Kind, Vec<u8>)]) -> anyhow::Result<f64> {
    lapin_publish_to(conn, EXCHANGE, msgs).await
}

/// [`lapin_publish`] to `exchange`; returns messages/s.
pub async fn lapin_publish_to(
    conn: &Connection,
    exchange: &str,
    msgs: &[(Kind, Vec<u8>)],
) -> anyhow::Result<f64> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let start = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut queue: VecDeque<_> = msgs.iter().enumerate().collect();
    while !queue.is_empty() || !in_flight.is_empty() {
        while in_flight.len() < 1000 {
            let Some((i, (kind, body))) = queue.pop_front() else {
                break;
            };
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_message_id(i.to_string().into())
                .with_type(kind.routing_key().into());
            let confirm = ch
                .basic_publish(
                    exchange.into(),
                    kind.routing_key().into(),
                    BasicPublishOptions::default(),
                    body,
                    props,
                )
                .await?;
            in_flight.push(confirm);
        }
        if let Some(c) = in_flight.next().await {
            if !c?.is_ack() {
                bail!("the broker nacked a bench message");
            }
        }
    }
    Ok(msgs.len() as f64 / start.elapsed().as_secs_f64())
}

fn pika_publish(
    opts: &BenchOptions,
    url: &str,
    msgs: &[(Kind, Vec<u8>)],
    confirm: bool,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("pika_publish.py");
    std::fs::write(&script, PIKA_SCRIPT)?;
    let file = dir.path().join("messages.tsv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
    for (kind, body) in msgs {
        writeln!(
            f,
            "{}\t{}",
            kind.routing_key(),
            String::from_utf8_lossy(body)
        )?;
    }
    f.flush()?;
    drop(f);
    let mut cmd = Command::new(&opts.python);
    cmd.arg(&script).arg(&file).arg(url).arg(EXCHANGE);
    if confirm {
        cmd.arg("--confirm");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", opts.python))?;
    if !out.status.success() {
        bail!(
            "pika_publish.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .context("pika_publish.py printed no rate")
}

/// One run of the pipeline of `samples` at `--rate 0` with the bridge on:
/// the messages confirmed per second, until every one is confirmed.
fn mirrored_rate(opts: &BenchOptions, url: &str, samples: usize) -> anyhow::Result<f64> {
    let bridge_env = [
        ("MODELWATCH__BRIDGE__EXCHANGE", EXCHANGE),
        ("MODELWATCH__BRIDGE__LEGACY_QUEUES", "false"),
        ("MODELWATCH__METRIC__LABELS_LOG", "false"),
        // Measured until every message is confirmed, however long that takes.
        ("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", "10m"),
    ];
    let n = samples.to_string();
    let run = run_child(
        opts,
        &[
            "--count",
            &n,
            "--rate",
            "0",
            "--seed",
            "1",
            "--amqp-url",
            url,
        ],
        &bridge_env,
    )?;
    let confirmed = run.bridge("confirmed");
    if confirmed < (samples * 4) as f64 {
        bail!(
            "the bridge confirmed {confirmed} of {} messages",
            samples * 4
        );
    }
    Ok(confirmed / run.secs())
}

pub fn bench(opts: &BenchOptions, url: &str) -> anyhow::Result<Vec<Figure>> {
    let samples = if opts.quick { 500 } else { 25_000 };
    let pika_samples = if opts.quick { 250 } else { 5_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let conn = rt
        .block_on(prepare(url))
        .context("connecting to the broker for the bridge bench")?;
    let msgs = wire_messages(samples);
    let (mut mirrored, mut plain, mut pika, mut pika_confirm) = (vec![], vec![], vec![], vec![]);
    for _ in 0..opts.runs {
        rt.block_on(purge(&conn))?;
        mirrored.push(mirrored_rate(opts, url, samples)?);
        rt.block_on(purge(&conn))?;
        plain.push(rt.block_on(lapin_publish(&conn, &msgs))?);
        rt.block_on(purge(&conn))?;
        pika.push(pika_publish(opts, url, &msgs[..pika_samples * 4], false)?);
        rt.block_on(purge(&conn))?;
        pika_confirm.push(pika_publish(opts, url, &msgs[..pika_samples * 4], true)?);
    }
    rt.block_on(purge(&conn))?;
    let (m, p, py, pyc) = (
        median(mirrored),
        median(plain),
        median(pika),
        median(pika_confirm),
    );
    let mut figures = vec![
        Figure::new(
            "bridge: mirrored msg/s, pipeline at --rate 0 (4 msgs per sample)",
            format!("{m:.0}"),
            format!("`run --count {samples} --rate 0 --amqp-url ...`, until every confirm"),
        ),
        Figure::new(
            "plain lapin confirmed publish, window 1000, same messages",
            format!("{p:.0} (bridge ratio {:.2})", m / p),
            format!("{} messages", msgs.len()),
        ),
        Figure::new(
            "pika BlockingConnection publish, no confirms",
            format!("{py:.0} (bridge ratio {:.1})", m / py),
            format!("first {} of the same messages", pika_samples * 4),
        ),
        Figure::new(
            "pika BlockingConnection publish, confirm_delivery",
            format!("{pyc:.0} (bridge ratio {:.1})", m / pyc),
            format!("first {} of the same messages", pika_samples * 4),
        ),
    ];
    figures.push(unreachable_memory(opts)?);
    Ok(figures)
}

/// Peak RSS with the broker unreachable, 10x the buffer in messages.
fn unreachable_memory(opts: &BenchOptions) -> anyhow::Result<Figure> {
    let buffer: usize = if opts.quick { 1_000 } else { 100_000 };
    let samples = (buffer * 10 / 4).to_string();
    let buf = buffer.to_string();
    let env = [
        ("MODELWATCH__BRIDGE__BUFFER", buf.as_str()),
        ("MODELWATCH__BRIDGE__ON_FULL", "drop_oldest"),
        ("MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT", "1s"),
    ];
    let (mut on, mut off) = (vec![], vec![]);
    for _ in 0..opts.runs {
        let args = ["--count", samples.as_str(), "--rate", "0", "--seed", "1"];
        let run = run_child(
            opts,
            &[
                &args[..],
                &["--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2f"],
            ]
            .concat(),
            &env,
        )?;
        on.push(run.peak_rss_mib());
        let run = run_child(opts, &args, &[])?;
        off.push(run.peak_rss_mib());
    }
    let avg_body = wire_messages(100)
        .iter()
        .map(|(_, b)| b.len())
        .sum::<usize>() as f64
        / 400.0;
    let per_msg = avg_body + std::mem::size_of::<crate::amqp::publish::outbox::OutMessage>() as f64;
    let bound_mib = buffer as f64 * per_msg / (1024.0 * 1024.0);
    let (on, off) = (median(on), median(off));
    Ok(Figure::new(
        format!(
            "peak RSS, broker unreachable, buffer {buffer}, {} messages",
            buffer * 10
        ),
        format!(
            "{on:.1} MiB (bridge off: {off:.1} MiB; growth {:.1} MiB)",
            on - off
        ),
        format!("buffer content ≈ {buffer} x {per_msg:.0} B = {bound_mib:.1} MiB"),
    ))
}
