//! The cost of the HTTP server: the pipeline's samples/s with the server
//! off, and on while a scraper fetches `/metrics` every 100 ms, measured
//! alternately in the same invocation (issue target: within 5%).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{median, BenchOptions, Figure};

/// One `run --count N --rate 0`; with `scrape`, `/metrics` is fetched every
/// 100 ms while it runs. Returns (samples/s, scrapes made).
fn one_run(opts: &BenchOptions, count: u64, scrape: bool) -> anyhow::Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let listen = if scrape { "127.0.0.1:0" } else { "off" };
    let mut child = Command::new(std::env::current_exe()?)
        .arg("run")
        .args(opts.config_args())
        .arg("--logs-dir")
        .arg(dir.path())
        .args(["--count", &count.to_string(), "--rate", "0", "--seed", "1"])
        .args(["--http-listen", listen])
        .stderr(Stdio::null())
        .spawn()?;
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let scraper = scrape.then(|| {
        let (dir, stop, scrapes) = (dir.path().to_owned(), stop.clone(), scrapes.clone());
        std::thread::spawn(move || scrape_every_100ms(&dir, &stop, &scrapes))
    });
    let status = child.wait()?;
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = scraper {
        let _ = s.join();
    }
    if !status.success() {
        bail!("modelwatch run (http {listen}) failed: {status}");
    }
    let registry = std::fs::read_to_string(dir.path().join("final_metrics.txt"))
        .context("no final metrics")?;
    let value = |series: &str| super::pipeline::registry_value(&registry, series);
    let rows = value("modelwatch_rows_written_total");
    if rows as u64 != count {
        bail!("wrote {rows} of {count} rows");
    }
    Ok((
        rows / value("modelwatch_run_seconds").max(1e-9),
        scrapes.load(Ordering::Relaxed),
    ))
}

fn scrape_every_100ms(logs: &Path, stop: &AtomicBool, scrapes: &AtomicU64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(logs.join("http.addr")) {
            if let Ok(a) = a.trim().parse::<std::net::SocketAddr>() {
                break a;
            }
        }
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    while !stop.load(Ordering::Relaxed) {
        let got = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            write!(
                s,
                "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )?;
            let mut body = Vec::new();
            s.read_to_end(&mut body)?;
            Ok(body.starts_with(b"HTTP/1.1 200"))
        });
        if matches!(got, Ok(true)) {
            scrapes.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn bench(opts: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let count = if opts.quick { 20_000 } else { 1_000_000 };
    let (mut off, mut on, mut scrapes) = (vec![], vec![], 0);
    for _ in 0..opts.runs {
        off.push(one_run(opts, count, false)?.0);
        let (rate, n) = one_run(opts, count, true)?;
        on.push(rate);
        scrapes += n;
    }
    let (off, on) = (median(off), median(on));
    Ok(vec![Figure::new(
        format!("pipeline, {count} samples: HTTP server on and scraped every 100 ms vs off"),
        format!("{on:.0} vs {off:.0} samples/s (ratio {:.3})", on / off),
        format!(
            "`--http-listen 127.0.0.1:0` with a scraper vs `--http-listen off`, alternated; {scrapes} scrapes in all"
        ),
    )])
}
