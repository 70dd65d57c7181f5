//! The dashboard's HTTP side of one real `modelwatch` process, as plain
//! HTTP clients see it (the browser tests are in `browser`):
//! `POST /api/predict` with good and bad bodies against sklearn's figures,
//! the `/events` stream (its type, its rate, its bound on clients, and its
//! end when the server stops), the page without JavaScript, and the
//! vendored assets' caching.
//!
//! Every socket goes to 127.0.0.1, every read is bounded, and every process
//! is killed by its guard if a test fails.

use crate::support;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::openmetrics::{http_addr, http_get, http_request};
use crate::support::oracle;
use crate::support::sandbox::*;

/// `POST path` with a body; the response's status and body (one request
/// per connection: the server closes it).
pub(crate) fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn post_json(addr: SocketAddr, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (status, text) = post(
        addr,
        "/api/predict",
        "application/json",
        body.to_string().as_bytes(),
    );
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, json)
}

/// Row `i` of the data as the raw JSON object.
fn raw_json(i: usize) -> serde_json::Value {
    let names = [
        "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
    ];
    let row = oracle::rows()[i];
    serde_json::Value::Object(
        names
            .iter()
            .zip(row.raw)
            .map(|(n, v)| (n.to_string(), v.into()))
            .collect(),
    )
}

fn spawn(sb: &Sandbox, extra_env: &[(&str, &str)]) -> (Running, SocketAddr) {
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, &["--count", "0", "--rate", "200", "--seed", "5"]);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let app = Running::spawn(cmd);
    let addr = http_addr(&logs, TIMEOUT);
    (app, addr)
}

#[test]
fn the_json_api_predicts_sklearns_figures_and_names_the_bad_field() {
    let sb = Sandbox::new();
    let (app, addr) = spawn(&sb, &[]);

    for i in [0, 1, 441] {
        let want = oracle::rows()[i];
        let (status, got) = post_json(addr, &raw_json(i));
        assert_eq!(status, 200, "row {i}: {got}");
        let p = got["prediction"].as_f64().unwrap();
        assert!(
            (p - want.prediction).abs() < oracle::PREDICTION_TOLERANCE,
            "row {i}: {p} vs sklearn's {}",
            want.prediction
        );
        let scaled: Vec<f64> = serde_json::from_value(got["scaled"].clone()).unwrap();
        for (a, b) in scaled.iter().zip(want.scaled) {
            assert!(
                (a - b).abs() < oracle::FEATURE_TOLERANCE,
                "row {i}: {a} vs {b}"
            );
        }
        assert_eq!(got["model"]["origin"], "fitted in memory");
        // The same row sent scaled gives the same answer.
        let (status, again) = post_json(addr, &serde_json::json!({ "scaled": want.scaled }));
        assert_eq!(status, 200, "{again}");
        assert!((again["prediction"].as_f64().unwrap() - want.prediction).abs() < 1e-7);
    }
    // Row 0's nearest training rows in scaled space, and their targets:
    // /work/venv-sci/bin/python -c "import numpy as np;
    //   d=np.genfromtxt('data/diabetes.csv',delimiter=',',skip_header=1);
    //   X=d[:,:10];y=d[:,10];S=(X-X.mean(0))/(X.std(0)*np.sqrt(len(X)));
    //   o=np.argsort(np.sqrt(((S-S[0])**2).sum(1)),kind='stable')[:5];print(o,y[o])"
    // -> [0 51 2 341 271] [151. 225. 141. 263. 127.]
    let (_, got) = post_json(addr, &raw_json(0));
    let rows: Vec<u64> = got["nearest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [0, 51, 2, 341, 271]);
    let targets: Vec<f64> = got["nearest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["target"].as_f64().unwrap())
        .collect();
    assert_eq!(targets, [151.0, 225.0, 141.0, 263.0, 127.0]);

    let mut bad_sex = raw_json(0);
    bad_sex["sex"] = 3.into();
    let mut old = raw_json(0);
    old["age"] = 130.into();
    let mut unknown = raw_json(0);
    unknown["weight"] = 80.into();
    let mut missing = raw_json(0);
    missing.as_object_mut().unwrap().remove("s6");
    let mut text = raw_json(0);
    text["bmi"] = "32.1".into();
    let mut both = raw_json(0);
    both["scaled"] = serde_json::json!(oracle::rows()[0].scaled);
    for (body, field) in [
        (bad_sex, "sex"),
        (old, "age"),
        (unknown, "weight"),
        (missing, "s6"),
        (text, "bmi"),
        (both, "scaled"),
        (serde_json::json!({ "scaled": [0.0, 0.0] }), "scaled"),
        (serde_json::json!([1, 2]), "body"),
    ] {
        let (status, got) = post_json(addr, &body);
        assert_eq!(status, 422, "{body}: {got}");
        assert_eq!(got["field"], field, "{body}: {got}");
        assert!(got.get("prediction").is_none());
    }
    // NaN is not JSON; a body that is not JSON names the body.
    let (status, text) = post(addr, "/api/predict", "application/json", b"{\"age\": NaN}");
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("\"field\":\"body\""), "{text}");
    // Bodies are bounded.
    let big = vec![b' '; 64 * 1024 + 1];
    let (status, _) = post(addr, "/api/predict", "application/json", &big);
    assert_eq!(status, 413);
    // GET is not the API.
    let r = http_get(addr, "/api/predict");
    assert_eq!(r.status, 405, "{r:?}");
    drop(app);
}

/// Reads the SSE response from `s` until `n` events came or `timeout`;
/// returns (headers, the events' data lines, when each came).
fn read_events(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    n: usize,
    timeout: Duration,
) -> (Vec<String>, Vec<Instant>) {
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    let mut at = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut seen = 0;
    while data.len() < n && Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(e) => panic!("reading /events: {e}"),
        }
        let text = String::from_utf8_lossy(buf).into_owned();
        let found: Vec<&str> = text
            .match_indices("\ndata: ")
            .map(|(i, _)| &text[i + 7..])
            .collect();
        for d in found.iter().skip(seen) {
            if let Some(end) = d.find('\n') {
                data.push(d[..end].to_owned());
                at.push(Instant::now());
                seen += 1;
            }
        }
    }
    (data, at)
}

fn open_events(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    s
}

#[test]
fn events_come_once_a_second_with_rising_counters_are_bounded_and_end_when_the_server_stops() {
    let sb = Sandbox::new();
    let (app, addr) = spawn(&sb, &[("MODELWATCH__HTTP__MAX_EVENT_STREAMS", "2")]);

    let mut a = open_events(addr);
    let mut buf = Vec::new();
    let (events, at) = read_events(&mut a, &mut buf, 4, Duration::from_secs(10));
    let head = String::from_utf8_lossy(&buf).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    assert_eq!(events.len(), 4, "{head}");
    let snaps: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|err| panic!("{err}: {e}")))
        .collect();
    // At most one event per second, by the server's clock (each snapshot
    // carries the uptime it was taken at; the reader may be late and get
    // two in one read on a loaded machine).
    let taken: Vec<f64> = snaps
        .iter()
        .map(|s| s["counters"]["uptime_s"].as_f64().unwrap())
        .collect();
    for w in taken.windows(2) {
        assert!(
            w[1] - w[0] >= 0.9,
            "events {:.3} s apart: {taken:?}",
            w[1] - w[0]
        );
    }
    let samples: Vec<u64> = snaps
        .iter()
        .map(|s| s["counters"]["samples"].as_u64().unwrap())
        .collect();
    assert!(samples.windows(2).all(|w| w[0] <= w[1]), "{samples:?}");
    assert!(samples[3] > samples[0], "the counters rise: {samples:?}");
    let first = &snaps[0];
    assert_eq!(first["model"]["origin"], "fitted in memory");
    // Training R² of OLS with intercept on all 442 scaled rows (numpy):
    // /work/venv-sci/bin/python -c "import numpy as np;
    //   d=np.genfromtxt('data/diabetes.csv',delimiter=',',skip_header=1);X=d[:,:10];y=d[:,10];
    //   S=(X-X.mean(0))/(X.std(0)*np.sqrt(len(X)));A=np.c_[np.ones(len(S)),S];
    //   p=A@np.linalg.lstsq(A,y,rcond=None)[0];print(repr(1-((y-p)**2).sum()/((y-y.mean())**2).sum()))"
    // -> 0.5177484222203498
    assert!((first["model"]["r2"].as_f64().unwrap() - 0.517_748_422_220_349_8).abs() < 1e-9);
    // No monitor here yet: an empty board.
    assert_eq!(first["windows"], serde_json::json!([]));
    assert!(first["counters"]["bridge"].is_null());
    let hist: u64 = snaps[3]["histogram"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    let rows = snaps[3]["counters"]["rows"].as_u64().unwrap();
    assert!(
        hist > 0 && hist <= rows + 1000,
        "histogram of {hist} rows against {rows} rows written: {}",
        events[3]
    );
    println!(
        "sse: event sizes {:?} bytes, {} events in {:?}",
        events.iter().map(String::len).collect::<Vec<_>>(),
        events.len(),
        at[3] - at[0]
    );

    // Two streams at most: a third is refused, and gets its slot back later.
    let mut b = open_events(addr);
    let mut bbuf = Vec::new();
    assert_eq!(
        read_events(&mut b, &mut bbuf, 1, Duration::from_secs(5))
            .0
            .len(),
        1
    );
    let third = http_request(addr, "GET", "/events", "").unwrap();
    assert_eq!(third.status, 503, "{third:?}");
    assert!(third.body.contains("http.max_event_streams"), "{third:?}");
    drop(b);
    wait_until("the closed stream's slot to come back", TIMEOUT, || {
        let mut c = open_events(addr);
        let mut cbuf = Vec::new();
        let n = read_events(&mut c, &mut cbuf, 1, Duration::from_secs(2))
            .0
            .len();
        n == 1
    });

    // SIGTERM with a stream open: the stream ends cleanly (its last chunk),
    // and the process exits 0 without waiting out a hung stream.
    let asked = Instant::now();
    app.signal("TERM");
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    let _ = a.read_to_end(&mut rest);
    let ended = asked.elapsed();
    let tail = String::from_utf8_lossy(&rest).into_owned();
    assert!(
        tail.ends_with("0\r\n\r\n"),
        "no clean end of the stream: {tail:?}"
    );
    let out = app.wait(TIMEOUT);
    out.expect_code(0);
    println!(
        "sse: stream ended {ended:?} after SIGTERM; process exited at {:?}",
        asked.elapsed()
    );
    assert!(ended < Duration::from_secs(5), "{ended:?}");
}

/// During a scenario run (`bmi += 10` from sample 3,000, 2,000 rows/s, a
/// window every 500 rows): across the events every window comes exactly
/// once and in order (the first event has the history, later ones only the
/// new windows), the drift table turns bmi drifted with its alerts active,
/// and the histogram is the plot's, with its density curve; events stay
/// small and come once a second. Prints the sizes and the rate.
#[test]
fn during_a_scenario_events_carry_each_window_once_the_drift_and_the_density() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let app = Running::spawn(sb.run_command(
        &logs,
        &[
            "--count",
            "0",
            "--rate",
            "2000",
            "--seed",
            "11",
            "--scenario",
            "start=3000,bmi+=10",
        ],
    ));
    let addr = http_addr(&logs, TIMEOUT);
    let mut a = open_events(addr);
    let mut buf = Vec::new();
    let (events, _) = read_events(&mut a, &mut buf, 8, Duration::from_secs(20));
    assert_eq!(events.len(), 8, "{}", String::from_utf8_lossy(&buf));
    let snaps: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|err| panic!("{err}: {e}")))
        .collect();

    // Every window once, in order, from the first.
    let seqs: Vec<u64> = snaps
        .iter()
        .flat_map(|s| s["windows"].as_array().unwrap().clone())
        .map(|w| w["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.len() >= 10, "{seqs:?}");
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // The baseline comes until the stream has sent a window, then no more.
    assert!(snaps[0]["baseline"]["mae"]["mean"].is_f64());
    let first_with_windows = snaps
        .iter()
        .position(|s| !s["windows"].as_array().unwrap().is_empty())
        .unwrap();
    assert!(snaps[first_with_windows]["baseline"].is_object());
    assert!(snaps[first_with_windows + 1..]
        .iter()
        .all(|s| s.get("baseline").is_none()));

    // The drift and the alerts of the last event.
    let last = &snaps[7];
    let bmi = last["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "bmi")
        .expect("a bmi row");
    assert_eq!(bmi["drifted"], true, "{bmi}");
    let active: Vec<&str> = last["active_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        active.contains(&"feature_drift:bmi") && active.contains(&"mae_high"),
        "{active:?}"
    );

    // The plot's histogram: plot.bins bars that add up to its rows (no
    // more than were written), and a density curve on 200 points.
    let h = &last["histogram"];
    let counts: Vec<u64> = h["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 40, "plot.bins");
    let rows = h["rows"].as_u64().unwrap();
    assert_eq!(counts.iter().sum::<u64>(), rows);
    assert!(rows > 0 && rows <= last["counters"]["rows"].as_u64().unwrap());
    let y = h["density"]["y"].as_array().expect("a density curve");
    assert_eq!(y.len(), 200);
    assert!(y.iter().all(|v| v.as_f64().unwrap() >= 0.0));
    let (lo, hi) = (
        h["density"]["lo"].as_f64().unwrap(),
        h["density"]["hi"].as_f64().unwrap(),
    );
    let max = h["max"].as_f64().unwrap();
    assert!(
        lo >= 0.0 && lo < hi && (hi - max).abs() <= 1e-9 * max,
        "{lo} {hi} {max}"
    );

    // Small and once a second, by the server's clock.
    let sizes: Vec<usize> = events.iter().map(String::len).collect();
    // Bounded: 20 alert events, 11 drift rows, the 40 bars and 200-point
    // curve, a few windows: well under 16 KB.
    assert!(sizes[1..].iter().all(|n| *n < 16 * 1024), "{sizes:?}");
    let t: Vec<f64> = snaps
        .iter()
        .map(|s| s["counters"]["uptime_s"].as_f64().unwrap())
        .collect();
    assert!(t.windows(2).all(|w| w[1] - w[0] >= 0.9), "{t:?}");
    let per_event: Vec<usize> = snaps
        .iter()
        .map(|s| s["windows"].as_array().unwrap().len())
        .collect();
    println!(
        "sse during a scenario: event sizes {sizes:?} bytes, windows per event {per_event:?}, {} events in {:.2} s (server clock)",
        snaps.len(),
        t[7] - t[0]
    );
    drop(a);
    drop(app);
}

#[test]
fn the_page_reads_without_javascript_and_assets_are_cached() {
    let sb = Sandbox::new();
    let (app, addr) = spawn(&sb, &[]);
    wait_until("a row written", TIMEOUT, || {
        support::openmetrics::scrape(addr).get("modelwatch_rows_written_total", &[]) > 0.0
    });
    let page = http_get(addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.headers.get("content-type").map(String::as_str),
        Some("text/html; charset=utf-8")
    );
    // Server-rendered numbers (no script needed) and a graceful empty board.
    assert!(page.body.contains("data-k=\"rows\""), "{}", page.body);
    assert!(page.body.contains("no windows yet"));
    assert!(page.body.contains("fitted in memory"));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no CDN, no external fonts"
    );

    let form = http_get(addr, "/predict");
    assert_eq!(form.status, 200);
    for (name, value) in [
        ("age", "59"),
        ("sex", "2"),
        ("bmi", "32.1"),
        ("s5", "4.8598"),
    ] {
        assert!(
            form.body.contains(&format!("name=\"{name}\" type=\"text\" inputmode=\"decimal\" autocomplete=\"off\" maxlength=\"32\" value=\"{value}\"")),
            "{name}: {}",
            form.body
        );
        assert!(form.body.contains(&format!("<label for=\"f-{name}\">")));
    }
    // A plain form POST (no JavaScript) with a bad field: 422, the message
    // next to it, no prediction.
    let (status, body) = post(
        addr,
        "/predict",
        "application/x-www-form-urlencoded",
        b"age=abc&sex=2&bmi=32.1&bp=101&s1=157&s2=93.2&s3=38&s4=4&s5=4.8598&s6=87",
    );
    assert_eq!(status, 422);
    assert!(
        body.contains("<span class=\"error\" id=\"e-age\">Age is not a number</span>"),
        "{body}"
    );
    assert!(!body.contains("id=\"prediction\""));

    // uPlot, vendored and versioned: cached for a year; the page's own
    // script revalidates with its ETag.
    let js = http_get(addr, "/assets/uplot-1.6.32.iife.min.js");
    assert_eq!(js.status, 200);
    let on_disk = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/uplot/uPlot.iife.min.js"
    ))
    .unwrap();
    assert_eq!(js.body.len(), on_disk.len());
    assert_eq!(
        js.headers.get("cache-control").map(String::as_str),
        Some("public, max-age=31536000, immutable")
    );
    let own = http_get(addr, "/assets/dashboard.js");
    assert_eq!(
        own.headers.get("cache-control").map(String::as_str),
        Some("no-cache")
    );
    let etag = own.headers.get("etag").expect("an ETag").clone();
    let again = http_request(
        addr,
        "GET",
        "/assets/dashboard.js",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .unwrap();
    assert_eq!(again.status, 304, "{again:?}");
    assert!(again.body.is_empty());
    assert_eq!(http_get(addr, "/assets/nothing.js").status, 404);

    let css = http_get(addr, "/assets/dashboard.css");
    let uplot_css = http_get(addr, "/assets/uplot-1.6.32.min.css");
    println!(
        "page weight: html {} + js {} (uPlot {} + own {}) + css {} (uPlot {} + own {}) = {} bytes",
        page.body.len(),
        js.body.len() + own.body.len(),
        js.body.len(),
        own.body.len(),
        css.body.len() + uplot_css.body.len(),
        uplot_css.body.len(),
        css.body.len(),
        page.body.len() + js.body.len() + own.body.len() + css.body.len() + uplot_css.body.len()
    );
    drop(app);
}

/// The docs' `/api/predict` example (docs/monitor.md; it was the
/// README's) is what the binary answers: the same request gives the
/// artifact format, origin, prediction (to the digits shown) and top-level
/// fields the page prints (it once showed format `/1` while the binary
/// answered `/2`).
#[test]
fn the_readmes_predict_example_is_what_the_binary_answers() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/monitor.md"))
        .expect("docs/monitor.md");
    let section = readme
        .split("- `POST /api/predict`")
        .nth(1)
        .expect("docs/monitor.md's /api/predict item");
    let (request, rest) = section
        .split_once("/api/predict -d '")
        .and_then(|(_, r)| r.split_once('\''))
        .expect("the README's curl example");
    let shown = rest.split("curl").next().unwrap();
    let quoted = |key: &str| -> String {
        let start = shown
            .find(&format!("\"{key}\":\""))
            .unwrap_or_else(|| panic!("{key} not in the README's answer: {shown}"))
            + key.len()
            + 4;
        shown[start..].split('"').next().unwrap().to_owned()
    };
    let sb = Sandbox::new();
    let (app, addr) = spawn(&sb, &[]);
    let (status, text) = post(addr, "/api/predict", "application/json", request.as_bytes());
    assert_eq!(status, 200, "{text}");
    let got: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(quoted("format"), got["model"]["format"], "README: {shown}");
    assert_eq!(quoted("origin"), got["model"]["origin"], "README: {shown}");
    let digits = shown
        .split("\"prediction\":")
        .nth(1)
        .and_then(|t| t.split("...").next())
        .expect("the README's prediction");
    assert!(
        got["prediction"].to_string().starts_with(digits),
        "README {digits} vs {}",
        got["prediction"]
    );
    for key in got
        .as_object()
        .unwrap()
        .keys()
        .chain(got["model"].as_object().unwrap().keys())
    {
        assert!(
            shown.contains(&format!("\"{key}\":")),
            "{key} not in the README's answer"
        );
    }
    drop(app);
}
