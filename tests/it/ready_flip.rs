//! `/ready` follows the broker: 200 while connected, 503 with a reason that
//! names the broker across `rabbitmqctl stop_app`, 200 again after
//! `start_app`, while `/health` stays 200 (the pipeline itself lives).
//!
//! Two processes with the bridge on: a busy one (every role, 50 samples/s,
//! so it publishes all the time) and an idle one (the metric role with
//! nothing feeding it: its publisher has nothing to publish and must still
//! notice the dead connection).
//!
//! The broker it stops is a [`PrivateBroker`] the test starts for itself
//! (its own node, port and data under `target/`, stopped and removed on
//! drop, pass or fail): the machine's broker is never touched.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::amqp::{wait_for_broker_at, PrivateBroker};
use crate::support::openmetrics::{http_addr, http_request, scrape};
use crate::support::split::{RoleProc, TestBroker, START, STOP};

/// `/ready` now: status and JSON body (`None` if the request failed).
fn ready(addr: SocketAddr) -> Option<(u16, serde_json::Value)> {
    let r = http_request(addr, "GET", "/ready", "").ok()?;
    let v = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("/ready: {e}: {r:?}"));
    Some((r.status, v))
}

/// Waits (bounded) until `/ready` of every process answers `status`;
/// returns the bodies.
async fn wait_ready_is(
    procs: &mut [(&mut RoleProc, SocketAddr)],
    status: u16,
    timeout: Duration,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let now: Vec<_> = procs.iter().map(|(_, a)| ready(*a)).collect();
        if now
            .iter()
            .all(|r| r.as_ref().is_some_and(|(s, _)| *s == status))
        {
            return now.into_iter().map(|r| r.unwrap().1).collect();
        }
        for (p, _) in procs.iter_mut() {
            assert!(p.is_running(), "{} exited\n{}", p.label, p.report());
        }
        assert!(
            Instant::now() < deadline,
            "/ready not {status} within {timeout:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_broker_is_stopped_and_200_when_it_is_back() {
    // Declared first, so it is dropped (stopped) last, after the processes
    // and the cleanup of `broker`.
    let node = PrivateBroker::start("ready-flip");
    wait_for_broker_at(&node.url(), Duration::from_secs(30)).await;
    let mut broker = TestBroker::new("readyflip");
    broker.url = node.url();
    broker
        .extra_env
        .push(("MODELWATCH__BRIDGE__BACKOFF_MAX".into(), "1s".into()));
    let mut idle = broker.spawn("idle-metric", "metric", &[]);
    let mut busy = broker.spawn(
        "busy",
        "features,model,metric,plot",
        &["--count", "0", "--rate", "50"],
    );
    let idle_addr = http_addr(&idle.logs_dir(), START);
    let busy_addr = http_addr(&busy.logs_dir(), START);
    let mut procs = [(&mut idle, idle_addr), (&mut busy, busy_addr)];
    wait_ready_is(&mut procs, 200, START).await;

    tokio::task::block_in_place(|| node.stop_app());
    let down = wait_ready_is(&mut procs, 503, Duration::from_secs(15)).await;
    for body in &down {
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("broker"),
            "503 without the broker as reason: {body}"
        );
    }
    for (p, addr) in procs.iter() {
        let s = scrape(*addr);
        assert_eq!(
            s.count("modelwatch_bridge_connected", &[]),
            0,
            "{}",
            p.label
        );
        let health = http_request(*addr, "GET", "/health", "").expect("/health");
        assert_eq!(
            health.status, 200,
            "{}: the pipeline died with the broker",
            p.label
        );
    }
    let rows_down = procs[1].0.csv_rows_now();

    tokio::task::block_in_place(|| node.start_app());
    wait_ready_is(&mut procs, 200, Duration::from_secs(30)).await;
    for (p, addr) in procs.iter() {
        assert_eq!(
            scrape(*addr).count("modelwatch_bridge_connected", &[]),
            1,
            "{}",
            p.label
        );
    }
    // The local pipeline went on while the broker was away.
    procs[1].0.wait_rows(rows_down + 1, START).await;

    busy.stop(STOP).await;
    idle.stop(STOP).await;
}
