//! The dashboard in the split layout: the metric process (no model role)
//! shows the bridge and its inbound queues' counts, and refuses `/predict`
//! and `/api/predict` with 404 saying where the model runs; the model
//! process answers them. The histogram is on the dashboard of the process
//! with the plot role only.
//!
//! Needs the real RabbitMQ on 127.0.0.1:5672
//! (`cargo test --test it dashboard_split::`).
//! Broker objects are named for this test and deleted by [`TestBroker`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::openmetrics::{http_addr, http_get};
use crate::support::split::*;

/// `POST /api/predict` with a JSON body: (status, body).
fn post_json(addr: SocketAddr, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /api/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {raw:?}"));
    (
        status,
        raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned(),
    )
}

/// The first `/events` snapshot of the process at `addr`.
fn first_event(addr: SocketAddr) -> serde_json::Value {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk).expect("reading /events");
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(i) = text.find("\ndata: ") {
            if let Some(end) = text[i + 7..].find('\n') {
                return serde_json::from_str(&text[i + 7..i + 7 + end]).expect("JSON");
            }
        }
    }
}

const ROW0: &str = r#"{"age":59,"sex":2,"bmi":32.1,"bp":101,"s1":157,"s2":93.2,"s3":38,"s4":4,"s5":4.8598,"s6":87}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metric_process_shows_its_queues_and_sends_predictions_to_the_model_process() {
    const N: usize = 500;
    ensure_broker();
    let broker = TestBroker::new("dash");
    let mut metric = broker.spawn("metric", "metric,plot", &[]);
    let mut model = broker.spawn("model", "model", &[]);
    let metric_addr = http_addr(&metric.logs_dir(), START);
    let model_addr = http_addr(&model.logs_dir(), START);
    metric.wait_log("inbound consumer started", 2, START).await;
    model.wait_log("inbound consumer started", 1, START).await;
    let mut features = broker.spawn(
        "features",
        "features",
        &["--count", &N.to_string(), "--rate", "1000"],
    );
    features.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;

    let snap = first_event(metric_addr);
    assert!(snap["model"].is_null(), "{snap}");
    assert_eq!(snap["counters"]["bridge"]["connected"], true, "{snap}");
    let queues = snap["counters"]["inbound"].as_array().unwrap();
    for q in [&broker.truth_queue, &broker.pred_queue] {
        let row = queues
            .iter()
            .find(|v| v["queue"] == q.as_str())
            .unwrap_or_else(|| panic!("{q} not shown: {snap}"));
        assert!(row["delivered"].as_u64().unwrap() >= N as u64, "{row}");
    }
    // The histogram lives with the plot role: here, the plot's bars (what
    // it drew at its last render, so no more rows than were written) and
    // its density curve; the model process has none and says where it is.
    let h = &snap["histogram"];
    let counts: u64 = h["counts"]
        .as_array()
        .unwrap_or_else(|| panic!("no histogram: {snap}"))
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts, h["rows"].as_u64().unwrap(), "{h}");
    assert!(counts <= N as u64, "{h}");
    let model_snap = first_event(model_addr);
    assert!(model_snap["histogram"].is_null(), "{model_snap}");
    let model_page = http_get(model_addr, "/");
    assert!(
        model_page
            .body
            .contains("drawn by the process with the plot role"),
        "{}",
        model_page.body
    );
    let page = http_get(metric_addr, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("runs in another process"),
        "{}",
        page.body
    );

    // No model here: 404, saying where it runs.
    let form = http_get(metric_addr, "/predict");
    assert_eq!(form.status, 404, "{form:?}");
    assert!(
        form.body
            .contains("does not run the <code>model</code> role"),
        "{}",
        form.body
    );
    let (status, body) = post_json(metric_addr, ROW0);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("model role"), "{body}");
    // The model process answers: sklearn's prediction of row 0
    // (support/oracle.rs: 206.11667724...).
    let (status, body) = post_json(model_addr, ROW0);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        (v["prediction"].as_f64().unwrap() - 206.116_677_24).abs() < 1e-6,
        "{v}"
    );

    model.stop(STOP).await;
    metric.stop(STOP).await;
}
