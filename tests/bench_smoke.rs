//! A smoke run of `modelwatch bench --quick`, so the bench command cannot rot:
//! every figure is produced (tiny sizes, one run) against the real broker.

use std::process::Command;

#[test]
fn bench_quick_produces_every_figure() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .current_dir(dir.path())
        .args(["bench", "--quick", "--runs", "1", "--config", config])
        .args(["--amqp-url", "amqp://guest:guest@127.0.0.1:5672/%2f"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for figure in [
        "pipeline, bridge off",
        "emit-to-row latency",
        "pipeline peak RSS",
        "plot update + render",
        "plot start-up",
        "bridge: mirrored msg/s",
        "plain lapin confirmed publish",
        "pika BlockingConnection publish, no confirms",
        "pika BlockingConnection publish, confirm_delivery",
        "broker unreachable",
        "split layout, 1 model worker",
        "split layout, 2 model worker",
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
}
