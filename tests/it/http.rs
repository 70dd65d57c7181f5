//! The HTTP server of one real `modelwatch` process: `/metrics`, `/health`
//! and `/ready` while it runs, the registry it leaves in
//! `logs/final_metrics.txt` against the CSV, the requests a hostile or
//! broken client sends (they get errors, the pipeline goes on), and an
//! address already in use (exit 2 before anything starts).
//!
//! Every socket goes to 127.0.0.1, every read and write is bounded, and
//! every process is killed by its guard if a test fails.

use crate::support;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::openmetrics::{http_addr, http_get, http_request, scrape, Scrape};
use crate::support::sandbox::*;

/// The JSON body of a response; panics with the response otherwise.
fn json_of(r: &support::openmetrics::Response) -> serde_json::Value {
    assert!(
        r.headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "not JSON: {r:?}"
    );
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("bad JSON ({e}): {r:?}"))
}

/// Rows of `metric_log.csv` now (complete lines, header excluded).
fn csv_rows_now(logs: &Path) -> usize {
    std::fs::read(logs.join("metric_log.csv"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count().saturating_sub(1))
        .unwrap_or(0)
}

/// Sends `bytes` as they are (whatever the server does meanwhile) and
/// reads what comes back until the server closes: `Some(status)` of the
/// response, `None` when it closed without one. Bounded by 5 s per I/O.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer and close before everything is sent: a write
    // error then is expected, the answer is what counts.
    for chunk in bytes.chunks(16 * 1024) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while raw.len() < 1 << 20 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&raw);
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|c| c.parse().ok())
}

/// Sockets the process `pid` holds open (its served connections, its
/// listener, any broker connection).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn metrics_health_and_ready_while_running_then_the_final_registry_matches_the_csv() {
    const N: usize = 3000;
    let sb = Sandbox::new();
    let logs = sb.logs();
    let app = Running::spawn(sb.run_command(
        &logs,
        &["--count", &N.to_string(), "--rate", "1000", "--seed", "3"],
    ));
    let addr = http_addr(&logs, TIMEOUT);
    assert!(addr.ip().is_loopback(), "{addr}");

    let raw = http_get(addr, "/metrics");
    assert!(
        raw.body.ends_with("# EOF\n"),
        "not one whole exposition: {raw:?}"
    );
    let first = scrape(addr);
    assert!(
        first.has("modelwatch_samples_emitted_total"),
        "{}",
        first.text
    );
    // The counter moves while the source runs (1000 samples/s).
    let mut second = first.clone();
    wait_until(
        "samples_emitted to rise between two scrapes",
        TIMEOUT,
        || {
            second = scrape(addr);
            second.get("modelwatch_samples_emitted_total", &[])
                > first.get("modelwatch_samples_emitted_total", &[])
        },
    );
    assert!(second.text.ends_with("# EOF\n"));

    let health = http_get(addr, "/health");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(json_of(&health)["status"], "alive", "{health:?}");
    let ready = http_get(addr, "/ready");
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(json_of(&ready)["status"], "ready", "{ready:?}");

    let out = app.wait(TIMEOUT);
    out.expect_code(0);
    let rows = read_metric_log(&logs);
    assert_eq!(rows.len(), N);
    let fin = Scrape::final_of(&logs);
    assert_eq!(
        fin.count("modelwatch_rows_written_total", &[]),
        rows.len() as u64
    );
    assert_eq!(
        fin.count("modelwatch_samples_emitted_total", &[]),
        rows.len() as u64
    );
    assert_eq!(
        fin.count("modelwatch_absolute_error_count", &[]),
        rows.len() as u64,
        "every row's error is in the histogram"
    );
}

#[test]
fn bad_requests_get_errors_and_the_pipeline_keeps_writing() {
    const LIMIT: usize = 50;
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "0", "--rate", "500"]);
    cmd.env("MODELWATCH__HTTP__MAX_CONNECTIONS", LIMIT.to_string())
        .env("MODELWATCH__HTTP__REQUEST_TIMEOUT", "1s");
    let mut app = Running::spawn(cmd);
    let addr = http_addr(&logs, TIMEOUT);
    wait_until("the first rows", TIMEOUT, || csv_rows_now(&logs) > 0);

    // A 200 KB header: refused with 431 (or 400), never served.
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 200 * 1024));
    big.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let status = raw_exchange(addr, &big);
    assert!(
        matches!(status, Some(431) | Some(400)),
        "200 KB header: {status:?}"
    );

    let r = http_get(addr, "/nothing-here");
    assert_eq!(r.status, 404, "{r:?}");
    for method in ["POST", "PUT", "DELETE"] {
        let r = http_request(addr, method, "/metrics", "Content-Length: 0\r\n")
            .unwrap_or_else(|e| panic!("{method} /metrics: {e}"));
        assert_eq!(r.status, 405, "{method} /metrics: {r:?}");
    }
    let garbage = raw_exchange(addr, b"\x00\x01\x02 \xff\xfe nonsense\r\n\r\n");
    assert_eq!(garbage, Some(400), "a garbage request line");

    // A slowloris client that sends nothing is closed after request_timeout.
    let mut idle = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match idle.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // a 408 before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    assert!(
        closed && t.elapsed() < Duration::from_secs(5),
        "an idle connection was not closed after http.request_timeout=1s ({:?})",
        t.elapsed()
    );

    // 1000 connections at once, each with an unfinished request head: the
    // server serves at most LIMIT of them; the others wait in the backlog.
    let pid = app.pid();
    let before = open_sockets(pid);
    let rows_before = csv_rows_now(&logs);
    // Counted from another thread from before the first connect: the
    // first ones are served (and timed out) while the others connect.
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(open_sockets(pid).saturating_sub(before));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let mut held = Vec::with_capacity(1000);
    let mut refused = 0;
    for _ in 0..1000 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.write_all(b"GET /health HTTP/1.1\r\n");
                held.push(s);
            }
            Err(_) => refused += 1,
        }
    }
    // Long enough for every held connection to be served or timed out.
    std::thread::sleep(Duration::from_millis(2500));
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().expect("the sampler");
    eprintln!(
        "1000 connections: {} held, {refused} refused, at most {peak} in service (limit {LIMIT})",
        held.len()
    );
    assert!(app.is_running(), "the process died under 1000 connections");
    assert!(
        peak <= LIMIT + 2,
        "{peak} connections in service at once, limit {LIMIT} ({} held, {refused} refused)",
        held.len()
    );
    assert!(peak >= LIMIT / 2, "the server served only {peak} at once");
    wait_until("rows written under the connection flood", TIMEOUT, || {
        csv_rows_now(&logs) > rows_before
    });
    drop(held);
    let mut health = None;
    wait_until("/health after the flood", TIMEOUT, || {
        health = http_request(addr, "GET", "/health", "").ok();
        health.as_ref().is_some_and(|r| r.status == 200)
    });
    let rows_mid = csv_rows_now(&logs);
    wait_until("rows still written after the flood", TIMEOUT, || {
        csv_rows_now(&logs) > rows_mid
    });

    app.signal("TERM");
    let out = app.wait(TIMEOUT);
    out.expect_code(0);
    let log = read_pipeline_log(&logs);
    assert!(!log.contains("panicked"), "a panic:\n{log}");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let fin = Scrape::final_of(&logs);
    let rows = read_metric_log(&logs).len() as u64;
    assert_eq!(fin.count("modelwatch_rows_written_total", &[]), rows);
    assert_eq!(fin.count("modelwatch_samples_emitted_total", &[]), rows);
}

#[test]
fn an_address_in_use_exits_2_before_anything_starts_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let addr = taken.local_addr().unwrap().to_string();
    let sb = Sandbox::new();
    let logs = sb.logs();
    let out = run(sb.run_command(&logs, &["--count", "10", "--http-listen", &addr]));
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(
        line.contains("http.listen") && line.contains(&addr),
        "the error names neither the key nor {addr}: {line:?}"
    );
    // The OS error once, not twice (issue 18, 1.1).
    assert_eq!(
        line.matches("os error").count(),
        1,
        "the OS error is not said exactly once: {line:?}"
    );
    assert!(
        !logs.join("metric_log.csv").exists(),
        "the CSV was created before the bind failed"
    );
    drop(taken);
}

/// What a second hostile pass found: a client holding keep-alive
/// connections locked everyone else out; HEAD got 405; `/ready` said 200
/// while the metric could not write its logs.
#[test]
fn one_request_per_connection_head_works_and_ready_follows_failing_writes() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "0", "--rate", "200"]);
    // Every write fails; the metric retries (backoff up to 5 s) for long.
    cmd.env("FAILPOINTS", "append-file-write=return")
        .env("MODELWATCH__METRIC__MAX_RESTARTS", "1000");
    let run = Running::spawn(cmd);
    let addr = http_addr(&logs, Duration::from_secs(30));

    // A keep-alive request is answered, then the server closes.
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let closed = s.read_to_end(&mut raw).is_ok();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "the server kept the connection open: {text}");

    // HEAD is answered like GET, without a body.
    let head = http_request(addr, "HEAD", "/metrics", "").expect("HEAD /metrics");
    assert_eq!(head.status, 200, "{head:?}");
    assert!(head.body.is_empty(), "{head:?}");

    // Writing fails: not ready, and says why; alive all the same.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http_get(addr, "/ready");
        if r.status == 503 {
            let why = json_of(&r)["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(why.contains("cannot write its logs"), "{why}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready stayed {r:?} while every write failed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http_get(addr, "/health").status, 200);
    run.signal("TERM");
    let out = run.wait(Duration::from_secs(30));
    out.expect_code(1); // rows could not be written
}

/// VmRSS of `pid` in bytes (from /proc/PID/status); panics when absent.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    kb * 1024
}

/// Reads what the server sends on `s` until it closes (5 s bound): the
/// bytes, and whether it closed (EOF or reset) rather than kept it open.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (raw, true),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (raw, true),
            Err(_) => return (raw, false),
        }
    }
}

/// Responses in `raw` (status lines; bodies here hold no such line).
fn responses_in(raw: &[u8]) -> usize {
    String::from_utf8_lossy(raw).matches("HTTP/1.1 ").count()
}

/// Issue 18, 2.1: the server answered every request pipelined on one
/// connection, and a client that pipelined the uPlot asset and never read
/// pinned its connection and the responses queued for it (RSS 40 MB to
/// 3.4 GB, `/health` timing out). One request per connection means one;
/// the connection closes after it; memory stays bounded; `/health` answers
/// throughout.
#[test]
fn pipelined_requests_get_one_answer_and_clients_that_never_read_pin_nothing() {
    const CLIENTS: usize = 100;
    const PIPELINED: usize = 200;
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut app = Running::spawn(sb.run_command(&logs, &["--count", "0", "--rate", "200"]));
    let addr = http_addr(&logs, TIMEOUT);
    wait_until("the first rows", TIMEOUT, || csv_rows_now(&logs) > 0);
    let pid = app.pid();

    // 1000 requests in one write: one answer, then the server closes.
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    let one = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(one.repeat(1000).as_bytes()).unwrap();
    let (raw, closed) = read_until_closed(&mut s);
    assert_eq!(
        responses_in(&raw),
        1,
        "1000 pipelined requests: {} answers",
        responses_in(&raw)
    );
    assert!(closed, "the connection stayed open after its one answer");
    drop(s);

    let sockets_before = open_sockets(pid);
    let rss_before = rss_bytes(pid);
    let asset = format!("GET /assets/uplot-1.6.32.iife.min.js HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    assert_eq!(
        http_get(addr, "/assets/uplot-1.6.32.iife.min.js").status,
        200
    );
    let attack = asset.repeat(PIPELINED);
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        // The server may close before taking everything: that is the point.
        let _ = c.write_all(attack.as_bytes());
        clients.push(c);
    }
    // /health answers within 2 s throughout; RSS sampled meanwhile.
    let started = Instant::now();
    let mut peak = rss_before;
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(8) {
        peak = peak.max(rss_bytes(pid));
        let t = Instant::now();
        let r = http_request(addr, "GET", "/health", "");
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            r.as_ref().is_ok_and(|r| r.status == 200) && took < Duration::from_secs(2),
            "/health under {CLIENTS} pipelining clients that never read: {r:?} after {took:?}"
        );
        served += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let sockets_after = open_sockets(pid);
    let rss_after = rss_bytes(pid);
    eprintln!(
        "{CLIENTS} clients x {PIPELINED} pipelined asset requests: RSS {} -> peak {} -> {} MB, \
         /health {served} times, slowest {slowest:?}, server sockets {sockets_before} -> {sockets_after}",
        rss_before >> 20,
        peak >> 20,
        rss_after >> 20
    );
    // Every attacking connection is closed by the server (the clients still
    // hold theirs open): at most the listener's neighbours remain.
    assert!(
        sockets_after <= sockets_before + 2,
        "the server still holds {} connections of clients that never read",
        sockets_after.saturating_sub(sockets_before)
    );
    assert!(
        peak <= rss_before + (32 << 20),
        "RSS grew from {} to {} MB under the attack",
        rss_before >> 20,
        peak >> 20
    );
    // Each client got one answer (the asset, whole) and then the close.
    for (i, c) in clients.iter_mut().enumerate() {
        let (raw, closed) = read_until_closed(c);
        assert_eq!(
            responses_in(&raw),
            1,
            "client {i}: {} answers",
            responses_in(&raw)
        );
        assert!(closed, "client {i}: the server kept the connection open");
    }
    drop(clients);
    assert!(app.is_running(), "the process died under the attack");
    app.signal("TERM");
    app.wait(TIMEOUT).expect_code(0);
}

/// Issue 18, smaller items: `HEAD /events` gave 405; 405 carried no
/// `Allow`; `Expect: 100-continue` with a 1 MB body got `100 Continue`
/// (also pipelined behind another request) instead of 413.
#[test]
fn head_events_allow_on_405_and_an_oversized_expect_gets_413_before_continue() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let app = Running::spawn(sb.run_command(&logs, &["--count", "0", "--rate", "100"]));
    let addr = http_addr(&logs, TIMEOUT);

    let head = http_request(addr, "HEAD", "/events", "").expect("HEAD /events");
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(
        head.headers.get("content-type").map(String::as_str),
        Some("text/event-stream"),
        "{head:?}"
    );
    assert!(head.body.is_empty(), "{head:?}");

    for (method, path, allow) in [
        ("POST", "/metrics", "GET, HEAD"),
        ("DELETE", "/health", "GET, HEAD"),
        ("POST", "/events", "GET, HEAD"),
        ("PUT", "/", "GET, HEAD"),
        ("POST", "/assets/uplot-1.6.32.iife.min.js", "GET, HEAD"),
        ("DELETE", "/predict", "GET, HEAD, POST"),
        ("GET", "/api/predict", "POST"),
    ] {
        let r = http_request(addr, method, path, "Content-Length: 0\r\n")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(
            r.headers.get("allow").map(String::as_str),
            Some(allow),
            "{method} {path}: {r:?}"
        );
    }

    let big = format!(
        "POST /api/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: 1048576\r\n\r\n"
    );
    // Alone: 413, never 100 Continue.
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.write_all(big.as_bytes()).unwrap();
    let (raw, _) = read_until_closed(&mut s);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
    // Pipelined behind a request: that one is answered, nothing else.
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n{big}").as_bytes())
        .unwrap();
    let (raw, closed) = read_until_closed(&mut s);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(responses_in(&raw), 1, "{text}");
    assert!(!text.contains("100 Continue") && closed, "{text}");
    app.signal("TERM");
    app.wait(TIMEOUT).expect_code(0);
}

/// Issue 18, 1.1: `http.listen = "auto"` (the default) falls back to a
/// free port when 127.0.0.1:9898 is taken, with one WARN line naming it and
/// the address in `logs/http.addr`; with the server off, an earlier run's
/// `logs/http.addr` is gone while the run is alive.
#[test]
fn auto_falls_back_when_9898_is_taken_and_off_leaves_no_stale_http_addr() {
    // Hold 9898 (or find it held by someone else: taken either way).
    let _held = TcpListener::bind("127.0.0.1:9898").ok();
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "0", "--rate", "100"]);
    cmd.env("MODELWATCH__HTTP__LISTEN", "auto");
    let app = Running::spawn(cmd);
    let addr = http_addr(&logs, TIMEOUT);
    assert_ne!(addr.port(), 9898, "{addr}");
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_eq!(http_get(addr, "/health").status, 200);
    app.signal("TERM");
    let out = app.wait(TIMEOUT);
    out.expect_code(0);
    let warns: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("is in use"))
        .collect();
    assert_eq!(warns.len(), 1, "{}", out.stderr);
    assert!(
        warns[0].contains("127.0.0.1:9898") && warns[0].contains(&addr.to_string()),
        "the WARN line names neither the default nor {addr}: {}",
        warns[0]
    );

    // The server off: the earlier run's http.addr goes at start.
    assert!(logs.join("http.addr").exists());
    let mut cmd = sb.run_command(&logs, &["--count", "0", "--rate", "100"]);
    cmd.env("MODELWATCH__HTTP__LISTEN", "off");
    let app = Running::spawn(cmd);
    let rows = csv_rows_now(&logs);
    wait_until("rows of the run with the server off", TIMEOUT, || {
        csv_rows_now(&logs) > rows
    });
    assert!(
        !logs.join("http.addr").exists(),
        "logs/http.addr of an earlier run is still there while a run with the server off is alive"
    );
    app.signal("TERM");
    app.wait(TIMEOUT).expect_code(0);

    // Something other than a regular file at logs/http.addr is neither
    // followed nor replaced: exit 2 naming it.
    let other = sb.join("other-logs");
    std::fs::create_dir_all(&other).unwrap();
    let target = sb.join("not-yours.txt");
    std::fs::write(&target, "keep me\n").unwrap();
    std::os::unix::fs::symlink(&target, other.join("http.addr")).unwrap();
    let out = run(sb.run_command(&other, &["--count", "10"]));
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(line.contains("http.addr"), "{line}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    assert!(std::fs::symlink_metadata(other.join("http.addr"))
        .unwrap()
        .file_type()
        .is_symlink());

    // A start that fails after the address is bound (here: data whose
    // every row lacks the target) leaves no http.addr, not even an
    // earlier run's: no address that nobody answers at.
    std::fs::write(logs.join("http.addr"), "127.0.0.1:1\n").unwrap();
    let data = sb.join("no-target.csv");
    std::fs::write(&data, "x1,x2,y\n1,2,\n3,4,\n5,6,\n").unwrap();
    let mut cmd = sb.run_command(&logs, &["--count", "10"]);
    cmd.arg("--data").arg(&data).args(["--target", "y"]);
    cmd.env("MODELWATCH__HTTP__LISTEN", "127.0.0.1:0");
    let out = run(cmd);
    out.expect_code(2);
    assert!(
        !logs.join("http.addr").exists(),
        "a failed start left logs/http.addr: {}",
        out.stderr
    );
}
