//! Backfill: the last messages of some routing keys, for an observer that
//! starts after the pipeline did (the monitor's window, the dashboard's
//! history), so a page opened after a restart is not empty.
//!
//! Bounded twice: at most `last` messages are kept (a ring, oldest
//! dropped), and the whole read ends at `deadline` with what the complete
//! reads found (each read takes the offsets just before the ones read
//! already; one cut short holds messages from somewhere in its span, not
//! the last ones before them: it is dropped; so a deadline hit during the
//! first read gives nothing). It reads only the
//! tail: the end is probed once, then it reads from a little before it
//! (`last` times the number of keys, plus a margin, since the keys are
//! interleaved), then the offsets before those, as many as the density of
//! what it found says, only while it found fewer than `last`, the stream
//! holds more, and the rate of the last read says the next one fits before
//! the deadline.
//!
//! [`monitor_history`] is what a starting monitor reads: the last
//! [`BOARD_WINDOWS`] `monitor` messages and, of the same span of the
//! stream, the last [`BOARD_EVENTS`] `alerts` messages, on a
//! thread and runtime of its own (start-up is not async), both in the
//! same reads ([`read_tail`]), within one deadline.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::position::{Start, Until, KEYS};
use super::reader::{self, Entry, ReadError, Stop, StreamSource};
use crate::monitor::report::{
    AlertEvent, MonitorHistory, WindowReport, BOARD_EVENTS, BOARD_WINDOWS,
};

/// Longest a starting monitor waits for the history (then it starts with
/// what it has, or nothing).
pub const START_DEADLINE: Duration = Duration::from_secs(3);

/// How many offsets the next read of the tail takes (it ends where the
/// reads so far began), after reads that covered `covered` offsets and
/// found `found` of the `want` messages of the leading group, the last of
/// them `last_len` offsets in `took`, with `left` before the deadline.
/// `None` when it has them all or too little fits in the time left.
///
/// As far back as the density found says (with a quarter more; at least
/// twice, at most 64 times as far in all; 64 when it found none), capped by
/// what the rate of the last read says fits in three fifths of the time
/// left (a read cut by the deadline is lost). Other groups get what those
/// spans hold: a starting monitor wants the alert events of the windows it
/// shows, not older ones.
pub fn next_chunk(
    covered: u64,
    want: usize,
    found: usize,
    last_len: u64,
    took: Duration,
    left: Duration,
) -> Option<u64> {
    if found >= want {
        return None;
    }
    let factor = match found {
        0 => 64.0,
        n => want as f64 / n as f64 * 1.25,
    };
    let more = covered as f64 * (factor.clamp(2.0, 64.0) - 1.0);
    let fits = last_len as f64 / took.as_secs_f64().max(1e-3) * left.as_secs_f64() * 0.6;
    let chunk = more.min(fits) as u64;
    (chunk >= MIN_CHUNK).then_some(chunk)
}

/// Fewer offsets than this are not worth one more read (a connection each).
const MIN_CHUNK: u64 = 256;

/// The last windows and (as far back as those go) alert events in the
/// stream of `source`, read within `within` (blocking the caller at most that long, plus the
/// time to stop the reads' runtime).
pub fn monitor_history(
    source: StreamSource,
    within: Duration,
) -> Result<MonitorHistory, ReadError> {
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
        let groups: [(&[&'static str], usize); 2] =
            [(&["monitor"], BOARD_WINDOWS), (&["alerts"], BOARD_EVENTS)];
        let found = runtime.block_on(read_tail(&source, &groups, deadline));
        runtime.shutdown_background();
        found
    };
    // A thread of its own: the caller may be inside a runtime already.
    let mut found = std::thread::Builder::new()
        .name("backfill".into())
        .spawn(read)
        .map_err(|e| ReadError::Lost {
            queue: String::new(),
            secs: 0,
            error: format!("starting a thread: {e}"),
        })?
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let complete = Instant::now() < deadline;
    let mut out = MonitorHistory {
        complete,
        ..Default::default()
    };
    let (events, windows) = (
        found.pop().unwrap_or_default(),
        found.pop().unwrap_or_default(),
    );
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
/// `source`, read until `deadline` at the latest (then what the last read
/// that reached the end found).
pub async fn read_recent(
    source: &StreamSource,
    keys: &[&'static str],
    last: usize,
    deadline: Instant,
) -> Result<Vec<Entry>, ReadError> {
    let mut found = read_tail(source, &[(keys, last)], deadline).await?;
    Ok(found.pop().unwrap_or_default())
}

/// For each group `(keys, last)`, the last `last` messages of those keys
/// (oldest first), all groups in the same reads, until `deadline` at the
/// latest. The first group leads: the reads go back until it has its
/// `last` (or the stream's start); the others keep what those spans hold.
///
/// The end is probed once. The first read takes a span of offsets as if
/// the keys were evenly interleaved; while the first group has fewer than
/// it wants, the next read takes the offsets before, as many as
/// [`next_chunk`] says: a read cut by the deadline is lost, so one that
/// does not fit is better not started.
pub async fn read_tail(
    source: &StreamSource,
    groups: &[(&[&'static str], usize)],
    deadline: Instant,
) -> Result<Vec<Vec<Entry>>, ReadError> {
    let empty = || groups.iter().map(|_| Vec::new()).collect::<Vec<_>>();
    let total: usize = groups.iter().map(|(_, last)| *last).sum();
    if groups.first().is_none_or(|(_, last)| *last == 0) {
        return Ok(empty());
    }
    let Some(end) = probe_end(source, deadline).await? else {
        return Ok(empty());
    };
    let mut keys: Vec<&'static str> = groups.iter().flat_map(|(k, _)| k.iter().copied()).collect();
    keys.sort_unstable();
    keys.dedup();
    let span = (total as u64).saturating_mul(KEYS.len() as u64) + 64;
    // Each read takes the offsets just before the ones read already, so a
    // read cut by the deadline loses only itself.
    let (mut from, mut upper) = (end.saturating_sub(span - 1), end);
    let mut best: Option<Vec<VecDeque<Entry>>> = None;
    loop {
        let (mut rings, took) =
            match read_span(source, groups, &keys, (from, upper), deadline).await {
                SpanRead::Done(rings, took) => (rings, took),
                // A read cut by the deadline holds messages from somewhere in
                // its span, not the last ones before what was read: dropped.
                SpanRead::Cut => break,
                SpanRead::Failed(e) if best.is_none() => return Err(e),
                SpanRead::Failed(_) => break,
            };
        // This read's messages come before those read already.
        if let Some(later) = best.take() {
            prepend(groups, &mut rings, later);
        }
        let (found, want) = (rings[0].len(), groups[0].1);
        best = Some(rings);
        if from == 0 {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match next_chunk(end - from + 1, want, found, upper - from + 1, took, left) {
            Some(chunk) => {
                upper = from - 1;
                from = from.saturating_sub(chunk);
            }
            None => break,
        }
    }
    Ok(match best {
        Some(rings) => rings.into_iter().map(Vec::from).collect(),
        None => empty(),
    })
}

/// The stream's last offset (`None`: empty), found once before
/// `deadline` (`Ok(None)` too when the deadline passes first).
async fn probe_end(source: &StreamSource, deadline: Instant) -> Result<Option<u64>, ReadError> {
    let probing = Instant::now();
    let end = match tokio::time::timeout_at(deadline.into(), reader::find_end(source)).await {
        Ok(end) => end?,
        Err(_) => return Ok(None),
    };
    tracing::debug!(
        ?end,
        took_ms = probing.elapsed().as_millis() as u64,
        "backfill: the end of the stream"
    );
    Ok(end)
}

/// How one read of a span ended.
enum SpanRead {
    /// Per group the last of its messages in the span, and how long the read took.
    Done(Vec<VecDeque<Entry>>, Duration),
    /// The deadline passed first.
    Cut,
    Failed(ReadError),
}

/// Reads the offsets `from..=upper` of `keys`, keeping per group the last
/// of its messages there, until `deadline` at the latest.
async fn read_span(
    source: &StreamSource,
    groups: &[(&[&'static str], usize)],
    keys: &[&'static str],
    (from, upper): (u64, u64),
    deadline: Instant,
) -> SpanRead {
    let mut rings: Vec<VecDeque<Entry>> = groups
        .iter()
        .map(|(_, last)| VecDeque::with_capacity((*last).min(1 << 16)))
        .collect();
    let cancel = CancellationToken::new();
    let mut keep = |e: &Entry| {
        if e.offset > upper {
            return Ok(()); // read already (the end is an offset seen, not a bound)
        }
        for ((group, last), ring) in groups.iter().zip(rings.iter_mut()) {
            if *last > 0 && group.contains(&e.key) {
                if ring.len() == *last {
                    ring.pop_front();
                }
                ring.push_back(e.clone());
            }
        }
        Ok(())
    };
    let started = Instant::now();
    let read = reader::read(
        source,
        Start::Offset(from),
        Stop::At(Until::Offset(upper)),
        keys,
        &cancel,
        &mut keep,
    );
    let finished = tokio::time::timeout_at(deadline.into(), read).await;
    let took = started.elapsed();
    tracing::debug!(
        from,
        upper,
        took_ms = took.as_millis() as u64,
        found = ?rings.iter().map(VecDeque::len).collect::<Vec<_>>(),
        complete = matches!(finished, Ok(Ok(_))),
        "backfill: one read of the tail"
    );
    match finished {
        Ok(Ok(_)) => SpanRead::Done(rings, took),
        Err(_) => SpanRead::Cut,
        Ok(Err(e)) => SpanRead::Failed(e),
    }
}

/// Puts `rings` (an earlier span) before `later` (read already), each
/// group kept to its last `last`.
fn prepend(
    groups: &[(&[&'static str], usize)],
    rings: &mut [VecDeque<Entry>],
    later: Vec<VecDeque<Entry>>,
) {
    for (((_, last), ring), later) in groups.iter().zip(rings.iter_mut()).zip(later) {
        ring.extend(later);
        while ring.len() > *last {
            ring.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_read_follows_the_density_and_fits_the_time_left() {
        let s = Duration::from_secs;
        // All found: no further read.
        assert_eq!(next_chunk(1000, 10, 10, 1000, s(1), s(10)), None);
        // 2 of 10 in 1000 offsets: 10/2 × 1.25 = 6.25 times as far in
        // all, 5,250 more.
        assert_eq!(next_chunk(1000, 10, 2, 1000, s(1), s(10)), Some(5250));
        // None found: 64 times as far in all.
        assert_eq!(next_chunk(1000, 10, 0, 1000, s(1), s(200)), Some(63_000));
        // 9 of 10: at least twice as far in all.
        assert_eq!(next_chunk(1000, 10, 9, 1000, s(1), s(10)), Some(1000));
        // The last read: 500 offsets a second; 5 s left: 1,500 fit (three fifths).
        assert_eq!(next_chunk(1000, 10, 1, 500, s(1), s(5)), Some(1500));
        // Too little fits: stop.
        assert_eq!(
            next_chunk(1000, 10, 1, 500, s(1), Duration::from_millis(800)),
            None
        );
    }
}
