//! What a hostile pass over replay and the predict API broke, kept as tests
//! of the fixes, through the real binary (every child killed by PID): a
//! FIFO offset file is refused (it blocked past SIGTERM), a replay against
//! a broker that is down fails within bounded time (it waited for ever and
//! exited 0), a rebuild into a running process's logs folder is refused, a
//! body sent a byte at a time is cut at its deadline, and an offset file
//! that cannot be saved is refused before anything is read.

use crate::support;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::process::{Launch, Proc};

/// Nothing listens on port 1: connections are refused at once.
const DOWN: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

/// `modelwatch replay --amqp-url <DOWN> <args>`, output discarded.
fn replay_down(args: &[&str]) -> Launch {
    Launch::new()
        .subcommand("replay")
        .broker(DOWN)
        .args(args)
        .quiet()
}

/// Runs `launch` to its end (killed past 30 s): its exit code and stderr.
fn output(launch: Launch) -> (Option<i32>, String) {
    let mut child = launch.spawn();
    let status = child.wait_for(Duration::from_secs(30));
    child.kill();
    let (_, stderr) = child.take_output();
    (status.and_then(|s| s.code()), stderr)
}

/// Waits up to `limit` for `child`; kills it by PID if it is still running.
fn wait_bounded(mut child: Proc, limit: Duration) -> Option<std::process::ExitStatus> {
    let status = child.wait_for(limit);
    child.kill();
    status
}

/// A FIFO given as `--from-offset-file` would block `open(2)` for ever,
/// past SIGTERM: it is refused (exit 2) like a directory is.
#[test]
fn a_fifo_as_offset_file_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("offset");
    let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(ok.success());
    let child = replay_down(&["--from-offset-file"]).args([&fifo]).spawn();
    let status = wait_bounded(child, Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "replay hung on a FIFO offset file (killed after 10 s)"
    );
}

/// `replay` without `--follow` against a broker that is not there gives up
/// within `FIRST_CONNECT_LIMIT` (10 s) with exit 1, and a SIGTERM before the
/// end exits 1, not 0: it did not read to the end.
#[test]
fn replay_to_a_broker_that_is_down_fails_within_bounded_time() {
    let child = replay_down(&[]).spawn();
    let status = wait_bounded(child, Duration::from_secs(30));
    let code = status.and_then(|s| s.code());
    assert!(
        matches!(code, Some(1) | Some(2)),
        "replay with the broker down: {code:?} (None = still waiting after 30 s)"
    );
}

#[test]
fn a_signal_before_the_end_of_a_replay_is_not_success() {
    let child = replay_down(&[]).spawn();
    std::thread::sleep(Duration::from_secs(2));
    let signalled = std::time::Instant::now();
    child.signal("TERM");
    let status = wait_bounded(child, Duration::from_secs(20));
    let after = signalled.elapsed();
    assert_eq!(status.and_then(|s| s.code()), Some(1));
    // Replay gives up on its own at FIRST_CONNECT_LIMIT (10 s from its
    // start, 8 s after the signal) with exit 1 too: only the time tells
    // that the signal, not the limit, ended it.
    assert!(
        after < Duration::from_secs(4),
        "replay exited {after:?} after SIGTERM: it ignored the signal (it gives up by \
         itself 10 s after its start)"
    );
}

/// A rebuild into the logs folder of a running process would be a second
/// writer of its files: exit 2 naming the folder, before any broker work.
#[test]
fn a_rebuild_into_a_running_process_s_logs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let mut run = Launch::new()
        .subcommand("run")
        .args(["--count", "0", "--rate", "10", "--http-listen", "off"])
        .logs(&logs)
        .cwd(dir.path())
        .quiet()
        .spawn();
    let t0 = Instant::now();
    while !logs.join("metric_log.csv").exists() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, stderr) = output(
        Launch::new()
            .subcommand("replay")
            .broker(DOWN)
            .args(["--rebuild".as_ref(), logs.as_os_str()])
            .cwd(dir.path()),
    );
    run.kill();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("in use by another modelwatch process"),
        "{stderr}"
    );
}

/// An offset file whose folder does not exist is refused before anything is
/// read (it used to fail after a thousand lines were printed).
#[test]
fn an_offset_file_that_cannot_be_saved_is_refused_first() {
    let (code, stderr) = output(
        Launch::new()
            .subcommand("replay")
            .broker(DOWN)
            .args(["--from-offset-file", "/nonexistent-modelwatch-dir/offset"]),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("offset"), "{stderr}");
}

/// A request body sent a byte at a time is cut at the body deadline (5 s)
/// with 408, instead of holding a connection for an hour.
#[test]
fn a_body_dripped_a_byte_at_a_time_is_cut_at_its_deadline() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let mut run = Launch::new()
        .subcommand("run")
        .args([
            "--count",
            "0",
            "--rate",
            "10",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .logs(&logs)
        .cwd(dir.path())
        .quiet()
        .spawn();
    let addr = support::openmetrics::http_addr(&logs, Duration::from_secs(20));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        s,
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        let _ = s.write_all(b" ");
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(800));
    }
    let took = started.elapsed();
    run.kill();
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 408"), "after {took:?}: {head:?}");
    assert!(took < Duration::from_secs(10), "cut after {took:?}");
}
