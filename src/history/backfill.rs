//! Backfill: the last messages of some routing keys, for an observer that
//! starts after the pipeline did (the monitor's window, the dashboard's
//! history), so a page opened after a restart is not empty.
//!
//! Bounded twice: at most `last` messages are kept (a ring, oldest
//! dropped), and the whole read ends at `deadline` with what the last read
//! that reached the end found (a read cut short holds messages from
//! somewhere before the end, not the last ones: it is dropped; so a
//! deadline hit during the first read gives nothing). It
//! reads only the tail: from a little before the end (`last` times the
//! number of keys, plus a margin, since the keys are interleaved), and
//! further back, four times as far each time, only while it found fewer
//! than `last` and the stream holds more.
//!
//! [`monitor_history`] is what a starting monitor reads: the last
//! [`BOARD_WINDOWS`] `monitor` and [`BOARD_EVENTS`] `alerts` messages, on a
//! thread and runtime of its own (start-up is not async), both reads at
//! once, within one deadline.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::position::{Start, Until, KEYS};
use super::reader::{self, Entry, ReadError, Stop, StreamSource};
use crate::monitor::report::{AlertEvent, WindowReport, BOARD_EVENTS, BOARD_WINDOWS};

/// Longest a starting monitor waits for the history (then it starts with
/// what it has, or nothing).
pub const START_DEADLINE: Duration = Duration::from_secs(3);

/// What the history holds of the monitor's recent output.
#[derive(Debug, Clone, Default)]
pub struct MonitorHistory {
    /// The last closed windows, oldest first.
    pub windows: Vec<WindowReport>,
    /// The last alert events, oldest first.
    pub events: Vec<AlertEvent>,
    /// Messages of those keys whose body is not a window or an event.
    pub malformed: u64,
    /// Both reads ended before the deadline (else: what they had by then).
    pub complete: bool,
}

/// The last windows and alert events in the stream of `source`, read
/// within `within` (blocking the caller at most that long, plus the
/// time to stop the reads' runtime).
pub fn monitor_history(source: StreamSource, within: Duration) -> Result<MonitorHistory, ReadError> {
    let deadline = Instant::now() + within;
    let read = move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("backfill")
            .enable_all()
            .build()
            .map_err(|e| ReadError::Lost {
                queue: source.queue.escape_debug().to_string(),
                secs: 0,
                error: format!("starting a runtime: {e}"),
            })?;
        let both = runtime.block_on(async {
            tokio::join!(
                read_recent(&source, &["monitor"], BOARD_WINDOWS, deadline),
                read_recent(&source, &["alerts"], BOARD_EVENTS, deadline),
            )
        });
        runtime.shutdown_background();
        Ok::<_, ReadError>(both)
    };
    // A thread of its own: the caller may be inside a runtime already.
    let (windows, events) = std::thread::Builder::new()
        .name("backfill".into())
        .spawn(read)
        .map_err(|e| ReadError::Lost {
            queue: String::new(),
            secs: 0,
            error: format!("starting a thread: {e}"),
        })?
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let (windows, events) = (windows?, events?);
    let complete = Instant::now() < deadline;
    let mut out = MonitorHistory {
        complete,
        ..Default::default()
    };
    for e in windows {
        match serde_json::from_value::<WindowReport>(e.body) {
            Ok(w) => out.windows.push(w),
            Err(_) => out.malformed += 1,
        }
    }
    for e in events {
        match serde_json::from_value::<AlertEvent>(e.body) {
            Ok(a) => out.events.push(a),
            Err(_) => out.malformed += 1,
        }
    }
    Ok(out)
}

/// The last `last` messages of `keys` (oldest first) in the stream of
/// `source`, read until `deadline` at the latest (then what was found).
pub async fn read_recent(
    source: &StreamSource,
    keys: &[&'static str],
    last: usize,
    deadline: Instant,
) -> Result<Vec<Entry>, ReadError> {
    if last == 0 {
        return Ok(Vec::new());
    }
    let end = match tokio::time::timeout_at(deadline.into(), reader::find_end(source)).await {
        Ok(end) => end?,
        Err(_) => return Ok(Vec::new()),
    };
    let Some(end) = end else {
        return Ok(Vec::new());
    };
    let mut span = (last as u64).saturating_mul(KEYS.len() as u64) + 64;
    let mut best = VecDeque::new();
    loop {
        let from = end.saturating_sub(span);
        let mut ring: VecDeque<Entry> = VecDeque::with_capacity(last.min(1 << 16));
        let cancel = CancellationToken::new();
        let mut keep = |e: &Entry| {
            if ring.len() == last {
                ring.pop_front();
            }
            ring.push_back(e.clone());
            Ok(())
        };
        let read = reader::read(
            source,
            Start::Offset(from),
            Stop::At(Until::Now),
            keys,
            &cancel,
            &mut keep,
        );
        let finished = tokio::time::timeout_at(deadline.into(), read).await;
        match finished {
            // A read that reached the end holds the tail: the longest yet.
            Ok(Ok(_)) => best = ring,
            // One cut by the deadline holds messages from somewhere before
            // the end, not the last ones: the last complete read stands.
            Err(_) => return Ok(best.into()),
            Ok(Err(e)) => return Err(e),
        }
        if best.len() >= last || from == 0 {
            return Ok(best.into());
        }
        span = span.saturating_mul(4);
    }
}
