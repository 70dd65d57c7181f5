//! The consumer examples of the README work against the real broker: the
//! Rust one (`examples/consume.rs`, run as the compiled example) and the
//! Python one (`examples/consume.py`, pika), both bound before a pipeline
//! run with the bridge on starts, each stopping after 50 `metrics` samples:
//! one message each, and with batch messages (`bridge.batch`), each sample
//! of a batch on its own line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use crate::support::amqp::*;

const MESSAGES: usize = 50;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The compiled `consume` example beside the test binary
/// (`target/<profile>/examples/consume`). `cargo test` builds examples,
/// `cargo test --test it examples::` does not: then (or when it is older than
/// its source) it is built here with `cargo build --example consume`.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/examples-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("examples").join("consume");
    let source = manifest_dir().join("examples/consume.rs");
    let fresh = matches!((modified(&bin), modified(&source)), (Some(b), Some(s)) if b >= s);
    if !fresh {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--example", "consume"])
            .current_dir(manifest_dir());
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo
            .status()
            .expect("running cargo build --example consume");
        assert!(status.success(), "cargo build --example consume: {status}");
    }
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// The consumer's output after its "waiting for messages" line: lines
/// `metrics <JSON>` of rows of the run, one sample each: `MESSAGES` of them
/// one message per sample, more with batch messages (a consumer stops after
/// the message that takes it to `MESSAGES`, and prints all of it).
fn check_output(name: &str, lines: &[String], rows: &HashMap<u64, Row>, batch: bool) {
    let msgs: Vec<&String> = lines
        .iter()
        .skip_while(|l| !l.contains("waiting for messages"))
        .skip(1)
        .collect();
    match batch {
        false => assert_eq!(msgs.len(), MESSAGES, "{name}: {lines:#?}"),
        true => assert!(msgs.len() > MESSAGES, "{name}: {} lines", msgs.len()),
    }
    let mut seen = std::collections::HashSet::new();
    for line in msgs {
        let (key, body) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{name}: {line:?} is not `<routing key> <body>`"));
        assert_eq!(key, "metrics", "{name}: {line}");
        let v: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{name}: body {body:?} is not JSON: {e}"));
        let id = v["id"].as_u64().unwrap_or_else(|| panic!("{name}: {line}"));
        assert!(seen.insert(id), "{name}: id {id} printed twice");
        let row = rows
            .get(&id)
            .unwrap_or_else(|| panic!("{name}: id {id} is not in the run's CSV"));
        assert_eq!(
            v["body"]["y_true"].as_f64(),
            Some(row.y_true),
            "{name}: {line}"
        );
        assert_eq!(
            v["body"]["y_pred"].as_f64(),
            Some(row.y_pred),
            "{name}: {line}"
        );
        assert_eq!(
            v["body"]["absolute_error"].as_f64(),
            Some(row.absolute_error),
            "{name}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_consumers_print_live_metrics() {
    consumers_print_live_metrics(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_consumers_print_each_sample_of_batch_messages() {
    consumers_print_live_metrics(true).await;
}

async fn consumers_print_live_metrics(batch: bool) {
    let started = Instant::now();
    // The consumers read `metrics` of `ml_pipeline`: no other run at once.
    let _serial = broker_lock().await;
    wait_for_broker(Duration::from_secs(20)).await;
    let bin = tokio::task::spawn_blocking(example_binary).await.unwrap();

    let mut rust = Command::new(bin);
    rust.args(["metrics", "--max", &MESSAGES.to_string()])
        .env("AMQP_URL", BROKER_URL);
    let mut python = Command::new(python_with_pika());
    python
        .arg(manifest_dir().join("examples/consume.py"))
        .args(["metrics", &MESSAGES.to_string()])
        .env("AMQP_URL", BROKER_URL);
    // Both bound (they say so) before the producer starts.
    let (rust, python) = tokio::task::spawn_blocking(move || {
        let mut rust = LineChild::spawn("examples/consume.rs", rust);
        let mut python = LineChild::spawn("examples/consume.py", python);
        rust.wait_for_line("waiting for messages", Duration::from_secs(20));
        python.wait_for_line("waiting for messages", Duration::from_secs(20));
        (rust, python)
    })
    .await
    .unwrap();

    // With batch messages as fast as it goes: the source's batches of 512.
    let rate = if batch { "0" } else { "1000" };
    let app = App::builder()
        .args(&["--count", "3000", "--rate", rate, "--amqp-url", BROKER_URL])
        .env(
            "MODELWATCH__BRIDGE__BATCH",
            if batch { "true" } else { "false" },
        )
        .start();
    let ((rust_status, rust_lines), (python_status, python_lines)) =
        tokio::task::spawn_blocking(move || {
            (
                rust.finish(Duration::from_secs(60)),
                python.finish(Duration::from_secs(60)),
            )
        })
        .await
        .unwrap();
    let run = app.finish(Duration::from_secs(120)).await;
    run.assert_exit_ok();
    let rows: HashMap<u64, Row> = run.rows().into_iter().map(|r| (r.id, r)).collect();
    assert_eq!(rows.len(), 3000);

    assert!(rust_status.success(), "Rust consumer: {rust_status}");
    assert!(python_status.success(), "Python consumer: {python_status}");
    check_output("examples/consume.rs", &rust_lines, &rows, batch);
    check_output("examples/consume.py", &python_lines, &rows, batch);
    eprintln!(
        "first lines:\n  rust:   {}\n  python: {}",
        rust_lines[1], python_lines[1]
    );
    eprintln!("examples: {:.1} s", started.elapsed().as_secs_f64());
}
