//! A smoke run of `modelwatch bench --quick`, so the bench command cannot rot:
//! every figure is produced (tiny sizes, one run) against the real broker,
//! with the test venv's Python for the pika baseline, within a time limit
//! (killed past it), and the broker is left as it was found: the bench's
//! `modelwatch_bench` exchange and queue are deleted after, pass or fail,
//! unless they were there before (then the queue is only purged); the
//! history bench deletes its own stream, queue and exchange.

mod common;

use std::time::Duration;

use common::provision::{ensure_broker, python_with_pika};
use common::*;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions, QueuePurgeOptions};
use lapin::{Connection, ConnectionProperties};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The fixed names `modelwatch bench` publishes to (src/bench/bridge.rs).
const BENCH_EXCHANGE: &str = "modelwatch_bench";
const BENCH_QUEUE: &str = "modelwatch_bench";
/// A quick bench takes well under a minute here; a hang is killed at this.
const BENCH_TIMEOUT: Duration = Duration::from_secs(300);

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

async fn connect() -> Connection {
    tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(URL, ConnectionProperties::default()),
    )
    .await
    .expect("connecting to RabbitMQ within 10 s")
    .unwrap_or_else(|e| panic!("connecting to RabbitMQ: {e}"))
}

/// Whether the bench's queue and exchange exist; on drop, deletes those that
/// did not and purges the queue if it did.
struct BenchObjects {
    queue_existed: bool,
    exchange_existed: bool,
}

impl BenchObjects {
    fn take() -> BenchObjects {
        block_on(async {
            let conn = connect().await;
            // A failed passive declare closes its channel: one each.
            let ch = conn.create_channel().await.expect("channel");
            let queue_existed = modelwatch::amqp::topology::passive(&ch, BENCH_QUEUE)
                .await
                .is_ok();
            let ch = conn.create_channel().await.expect("channel");
            let exchange_existed = ch
                .exchange_declare(
                    BENCH_EXCHANGE.into(),
                    lapin::ExchangeKind::Topic,
                    lapin::options::ExchangeDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .is_ok();
            let _ = conn.close(200, "checked".into()).await;
            BenchObjects {
                queue_existed,
                exchange_existed,
            }
        })
    }
}

impl Drop for BenchObjects {
    fn drop(&mut self) {
        let restore = async {
            let conn = connect().await;
            let ch = conn.create_channel().await.expect("channel");
            if self.queue_existed {
                let _ = ch
                    .queue_purge(BENCH_QUEUE.into(), QueuePurgeOptions::default())
                    .await;
            } else {
                let _ = ch
                    .queue_delete(BENCH_QUEUE.into(), QueueDeleteOptions::default())
                    .await;
            }
            if !self.exchange_existed {
                let ch = conn.create_channel().await.expect("channel");
                let _ = ch
                    .exchange_delete(BENCH_EXCHANGE.into(), ExchangeDeleteOptions::default())
                    .await;
            }
            let _ = conn.close(200, "restored".into()).await;
        };
        let done = block_on(async { tokio::time::timeout(Duration::from_secs(30), restore).await });
        if done.is_err() {
            eprintln!("bench_smoke: restoring {BENCH_QUEUE} took more than 30 s");
        }
    }
}

#[test]
fn bench_quick_produces_every_figure() {
    ensure_broker();
    let python = python_with_pika();
    let _objects = BenchObjects::take();
    let sb = Sandbox::new();
    let mut cmd = sb.command(["bench", "--quick", "--runs", "1", "--config"]);
    cmd.arg(default_config())
        .args(["--amqp-url", URL, "--python"])
        .arg(&python);
    // Killed (and the test failed) past the limit; killed on drop too.
    let out = Running::spawn(cmd).wait(BENCH_TIMEOUT);
    out.expect_code(0);
    let stdout = &out.stdout;
    for figure in [
        "pipeline, bridge off",
        "emit-to-row latency",
        "pipeline peak RSS",
        "monitor peak RSS",
        "plot update + render",
        "plot start-up",
        "bridge: mirrored msg/s",
        "plain lapin confirmed publish",
        "pika BlockingConnection publish, no confirms",
        "pika BlockingConnection publish, confirm_delivery",
        "broker unreachable",
        "split layout, 1 model worker",
        "split layout, 2 model worker",
        "history: replay rate",
        "live consume rate",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.contains(figure))
            .unwrap_or_else(|| panic!("no {figure:?} row in:\n{stdout}"));
        let value = row.split('|').nth(2).unwrap().trim();
        let first: f64 = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{figure}: {value:?} does not start with a number"));
        assert!(first.is_finite() && first > 0.0, "{figure}: {value}");
    }
    // A number where the broker's data folder is readable (root, here).
    let disk = stdout
        .lines()
        .find(|l| l.contains("history: stream disk per million samples"))
        .unwrap_or_else(|| panic!("no stream disk row in:\n{stdout}"));
    assert!(disk.contains(" MB ") || disk.contains("n/a"), "{disk}");
}
