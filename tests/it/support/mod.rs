//! Support of the integration tests, one tree for the one test binary
//! (`tests/it/main.rs`): every test starts the real `modelwatch` binary and
//! reads back what it wrote, so the helpers for that live here once.
//!
//! - [`process`]: the one way a test starts the binary (a builder, and a
//!   child killed and cleaned up on drop);
//! - [`serial`]: the locks of the few tests that must not overlap;
//! - [`sandbox`]: a run of the binary in a temporary folder, and the strict
//!   readers of the files it writes;
//! - [`amqp`], [`split`], [`history`]: the shared RabbitMQ (unique queues,
//!   exchanges and streams, deleted after), the split layout (one role per
//!   process) and `replay`;
//! - [`openmetrics`], [`oracle`], [`private_broker`], [`provision`],
//!   [`browser`]: `/metrics` and `final_metrics.txt`, the expected figures
//!   computed without the code under test, a RabbitMQ node of a test's own,
//!   the tools the tests install, and a headless Chromium.
//!
//! Here too: the broker address, a connection that fails loudly, and the
//! strict reader of `metric_log.csv` the broker tests use.

use std::path::Path;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

pub use modelwatch::metric::log_format::METRIC_HEADER;

pub mod amqp;
pub mod browser;
pub mod history;
pub mod openmetrics;
pub mod oracle;
pub mod private_broker;
pub mod process;
pub mod provision;
pub mod sandbox;
pub mod serial;
pub mod split;

/// The RabbitMQ these tests run against.
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Connects to [`BROKER_URL`] (starting RabbitMQ first if it is installed
/// but down, see [`provision::ensure_broker`]); panics, never skips, when
/// there is no broker.
pub async fn connect() -> Connection {
    provision::ensure_broker();
    connect_to(BROKER_URL).await
}

/// Connects to `url` (the shared broker or a test's
/// [`private_broker::PrivateBroker`]); panics when it cannot.
pub async fn connect_to(url: &str) -> Connection {
    match tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "cannot connect to RabbitMQ at {url}: {e}. These tests need the broker: \
             `rabbitmq-server -detached`, then `rabbitmqctl await_startup`."
        ),
        Err(_) => panic!("RabbitMQ at {url}: no connection within 10 s"),
    }
}

/// One row of `metric_log.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub id: u64,
    pub y_true: f64,
    pub y_pred: f64,
    pub absolute_error: f64,
}

/// Reads `metric_log.csv`: header first and only once, four fields a row.
pub fn read_metric_csv(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(METRIC_HEADER),
        "{}: first line",
        path.display()
    );
    lines
        .enumerate()
        .map(|(i, line)| {
            let at = || format!("{} line {}: bad row {line:?}", path.display(), i + 2);
            assert_ne!(line, METRIC_HEADER, "header repeated: {}", at());
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 4, "{}", at());
            let num = |s: &str| s.parse::<f64>().unwrap_or_else(|_| panic!("{}", at()));
            Row {
                id: f[0].parse().unwrap_or_else(|_| panic!("{}", at())),
                y_true: num(f[1]),
                y_pred: num(f[2]),
                absolute_error: num(f[3]),
            }
        })
        .collect()
}
