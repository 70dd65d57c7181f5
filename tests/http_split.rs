//! The HTTP server in the split layout: a metric process and a model
//! process with the bridge on, fed by a features process, each serve their
//! own port (from their own `logs/http.addr`); `/ready` is 200 once they are
//! connected, and the metric's `/metrics` counts what came in on each of
//! its two work queues.
//!
//! Needs the real RabbitMQ on 127.0.0.1:5672; run under the shared lock
//! (`flock -s /tmp/modelwatch-broker.lock cargo test --test http_split`).
//! Broker objects are named for this test and deleted by [`TestBroker`].

// split_support includes the OpenMetrics reader privately; this file
// includes it again to use it (as tests/hardening_amqp.rs does).
#![allow(clippy::duplicate_mod)]

#[path = "common/openmetrics.rs"]
mod openmetrics;
mod split_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use openmetrics::{http_addr, http_get, scrape};
use split_support::*;

/// Waits until `GET /ready` is 200 (bounded); returns its body.
async fn wait_ready(p: &mut RoleProc, addr: SocketAddr) -> String {
    let deadline = Instant::now() + START;
    loop {
        let r = http_get(addr, "/ready");
        if r.status == 200 {
            return r.body;
        }
        assert!(
            p.is_running() && Instant::now() < deadline,
            "{}: /ready still {} ({}) after {START:?}\n{}",
            p.label,
            r.status,
            r.body,
            p.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_serves_its_own_port_ready_once_connected_with_inbound_counters() {
    const N: usize = 2000;
    ensure_broker();
    let broker = TestBroker::new("http");
    let mut metric = broker.spawn("metric", "metric", &[]);
    let mut model = broker.spawn("model", "model", &[]);
    let metric_addr = http_addr(&metric.logs_dir(), START);
    let model_addr = http_addr(&model.logs_dir(), START);
    assert_ne!(metric_addr, model_addr, "two processes on one port");
    for body in [
        wait_ready(&mut metric, metric_addr).await,
        wait_ready(&mut model, model_addr).await,
    ] {
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["status"], "ready", "{body}");
    }
    let health = http_get(metric_addr, "/health");
    assert_eq!(health.status, 200, "{health:?}");
    // The consumers run before anything is published.
    metric.wait_log("inbound consumer started", 2, START).await;
    model.wait_log("inbound consumer started", 1, START).await;

    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "1000"],
    );
    let features_addr = http_addr(&features.logs_dir(), START);
    assert!(![metric_addr, model_addr].contains(&features_addr));
    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;

    let m = scrape(metric_addr);
    for queue in [&broker.truth_queue, &broker.pred_queue] {
        let delivered = m.count(
            "modelwatch_inbound_messages_total",
            &[("queue", queue), ("event", "delivered")],
        );
        assert!(
            delivered >= N as u64,
            "{queue}: {delivered} delivered\n{}",
            m.text
        );
    }
    assert_eq!(m.count("modelwatch_rows_written_total", &[]), N as u64);
    assert_eq!(m.count("modelwatch_bridge_connected", &[]), 1);
    let md = scrape(model_addr);
    let delivered = md.count(
        "modelwatch_inbound_messages_total",
        &[("queue", &broker.model_queue), ("event", "delivered")],
    );
    assert!(
        delivered >= N as u64,
        "model: {delivered} delivered\n{}",
        md.text
    );

    model.stop(STOP).await;
    metric.stop(STOP).await;
    assert_ids_once(&metric.csv(), N, "metric");
}
