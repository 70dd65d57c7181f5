//! A smoke run of `modelwatch bench --quick`, so the bench command cannot rot:
//! every figure is produced (tiny sizes, one run), with the test venv's
//! Python for the pika baseline, within a time limit (killed past it).
//!
//! The bench publishes to fixed names (`modelwatch_bench`, its history
//! stream) and deletes or empties them, so it runs against a
//! [`PrivateBroker`] of this test's own (its own node, port and data under
//! `target/`, stopped and removed after, pass or fail): the machine's broker
//! and its queues are never touched. (Its data folder is not the one the
//! bench reads the stream's disk use from, so that figure may read "n/a",
//! which the check below already accepted.)

use std::time::Duration;

use crate::support::private_broker::PrivateBroker;
use crate::support::provision::python_with_pika;
use crate::support::sandbox::*;

/// A quick bench takes well under a minute here; a hang is killed at this.
const BENCH_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn bench_quick_produces_every_figure() {
    // It measures speeds: not beside another timing test.
    let _timing = crate::support::serial::timing_lock();
    let python = python_with_pika();
    let broker = PrivateBroker::start("bench-smoke");
    let url = broker.url();
    let sb = Sandbox::new();
    let mut cmd = sb.command(["bench", "--quick", "--runs", "1", "--config"]);
    cmd.arg(default_config())
        .args(["--amqp-url", &url, "--python"])
        .arg(&python)
        .env(
            "ORT_DYLIB_PATH",
            crate::support::provision::onnxruntime_library(),
        );
    // Killed (and the test failed) past the limit; killed on drop too.
    let out = Running::spawn(cmd).wait(BENCH_TIMEOUT);
    out.expect_code(0);
    let stdout = &out.stdout;
    for figure in [
        "pipeline, bridge off",
        "emit-to-row latency",
        "pipeline peak RSS",
        "diabetes (10 columns) vs 50 columns",
        "monitor peak RSS",
        "plot update + render",
        "plot start-up",
        "bridge: mirrored msg/s",
        "plain lapin confirmed publish",
        "pika BlockingConnection publish, no confirms",
        "pika BlockingConnection publish, confirm_delivery",
        "broker unreachable",
        "split layout, one message per sample, 1 model worker",
        "split layout, one message per sample, 2 model worker",
        "split layout, batch messages (bridge.batch, up to 512 samples each), 1 model worker",
        "split layout, batch messages (bridge.batch, up to 512 samples each), 2 model worker",
        "one message per sample, 10 columns of your own data, linear model, 1 model worker",
        "batch messages (bridge.batch), 10 columns of your own data, linear model, 1 model worker",
        "one message per sample, ONNX forest of 10 trees, 1 model worker",
        "one message per sample, ONNX forest of 10 trees, 2 model worker",
        "one message per sample, ONNX forest of 10 trees, 4 model worker",
        "batch messages (bridge.batch), ONNX forest of 10 trees, 1 model worker",
        "batch messages (bridge.batch), ONNX forest of 10 trees, 2 model worker",
        "batch messages (bridge.batch), ONNX forest of 10 trees, 4 model worker",
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
