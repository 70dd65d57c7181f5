//! The exit code of a loaded features role against the real RabbitMQ
//! (127.0.0.1:5672): model and metric run in processes of their own, the
//! features role emits as fast as it can, and its shutdown has a short
//! `bridge.shutdown_timeout`. Exit 0 must mean that the broker confirmed
//! every message; otherwise exit 1 and stderr names the undelivered count.
//! The broker objects are the test's own (deleted at the end).

use std::time::{Duration, Instant};

use crate::support::split::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_features_role_exits_0_only_when_everything_was_delivered() {
    // Two messages per sample; the source outruns the broker, so a backlog
    // of tens of thousands of messages is left when the count is reached.
    const N: usize = 40_000;
    let t0 = Instant::now();
    // Fails loudly (never skips) when the broker is down.
    let conn = connect().await;
    let broker = TestBroker::new("loaded_features");
    let mut metric = broker.spawn("metric", "metric", &[]);
    let mut model = broker.spawn("model", "model", &[]);
    metric.wait_log("inbound consumer started", 2, START).await;
    model.wait_log("inbound consumer started", 1, START).await;

    let env: Vec<(String, String)> = broker
        .env()
        .into_iter()
        .chain([(
            "MODELWATCH__BRIDGE__SHUTDOWN_TIMEOUT".to_string(),
            "1s".to_string(),
        )])
        .collect();
    let mut features = RoleProc::spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "0"],
        &env,
    );
    let status = features.wait_exit(Duration::from_secs(240)).await;
    let reg = features.registry();
    let undelivered = reg.count("modelwatch_bridge_undelivered", &[]);
    let dropped = reg.count("modelwatch_bridge_messages_total", &[("event", "dropped")]);
    let summary = format!("undelivered={undelivered} dropped={dropped}");
    let stderr = features.stderr();
    println!(
        "features role, {N} samples: {status} after {:.1?}; {summary}",
        features.started.elapsed()
    );
    if undelivered == 0 && dropped == 0 {
        assert_eq!(
            status.code(),
            Some(0),
            "everything was confirmed, yet exit {status}\n{}",
            features.report()
        );
        // Delivered means delivered: every sample reaches the metric.
        metric.wait_rows(N, RUN).await;
    } else {
        assert_eq!(
            status.code(),
            Some(1),
            "{undelivered} messages undelivered, yet exit {status}\n{}",
            features.report()
        );
        assert!(
            stderr.contains(&format!(
                "modelwatch: error: not everything was delivered: {undelivered} messages not confirmed by the broker"
            )),
            "stderr names the undelivered count:\n{}",
            tail(&stderr, 10)
        );
    }

    for p in [&mut model, &mut metric] {
        p.stop(STOP).await;
    }
    println!("test took {:.1?}", t0.elapsed());
    drop(conn);
}

/// SIGTERM under full load with a healthy broker: the source's last batches
/// wait for room in the bridge's buffer while the broker keeps confirming,
/// so everything the pipeline handled is delivered and the run exits 0. (A
/// hostile pass found thousands of messages refused at the signal, and the
/// run reporting them as "not confirmed by the broker".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_with_a_healthy_broker_delivers_everything() {
    let _conn = connect().await;
    let broker = TestBroker::new("loadterm");
    let mut env = broker.env();
    // A small buffer, full at once: the source waits on the broker.
    env.push(("MODELWATCH__BRIDGE__BUFFER".into(), "2000".into()));
    let mut run = RoleProc::spawn(
        "all",
        "features,model,metric,plot",
        &["--rate", "0", "--count", "0"],
        &env,
    );
    // The deadline only bounds a failure: the broker's pace decides how
    // soon 20,000 rows come (CI, with other tests beside it: under 17,000
    // in 60 s).
    run.wait_rows(20_000, Duration::from_secs(180)).await;
    run.sigterm();
    let status = run.wait_exit(Duration::from_secs(60)).await;
    let reg = run.registry();
    let accepted = reg.count("modelwatch_bridge_messages_total", &[("event", "accepted")]);
    let confirmed = reg.count(
        "modelwatch_bridge_messages_total",
        &[("event", "confirmed")],
    );
    let refused = reg.count(
        "modelwatch_bridge_messages_total",
        &[("event", "refused_at_shutdown")],
    );
    let rows = run.csv().len() as u64;
    println!("SIGTERM under load: {status}; rows={rows} accepted={accepted} confirmed={confirmed} refused={refused}");
    assert!(status.success(), "{status}\n{}", run.report());
    assert_eq!(refused, 0, "nothing refused with a healthy broker");
    assert_eq!(reg.count("modelwatch_bridge_undelivered", &[]), 0);
    assert!(
        confirmed >= accepted,
        "accepted {accepted}, confirmed {confirmed}"
    );
    // Four messages per sample (features, y_true, y_pred, metrics), and
    // the monitor's: one per closed window and one per alert event.
    // No alert event: the family has no label set at all.
    let monitor = reg.count("modelwatch_monitor_windows_total", &[])
        + reg.count_or_zero("modelwatch_alert_events_total", &[]);
    assert_eq!(
        accepted,
        4 * rows + monitor,
        "every handled sample was mirrored"
    );
}
