//! Backfill: the last messages of some routing keys, for an observer that
//! starts after the pipeline did (the monitor's window, the dashboard's
//! history), so a page opened after a restart is not empty.
//!
//! Bounded twice: at most `last` messages are kept (a ring, oldest
//! dropped), and the whole read ends at `deadline` with what it has. It
//! reads only the tail: from a little before the end (`last` times the
//! number of keys, plus a margin, since the keys are interleaved), and
//! further back, four times as far each time, only while it found fewer
//! than `last` and the stream holds more.

use std::collections::VecDeque;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::position::{Start, Until, KEYS};
use super::reader::{self, Entry, ReadError, Stop, StreamSource};

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
        if ring.len() >= best.len() {
            best = ring;
        }
        match finished {
            Ok(Ok(_)) if best.len() < last && from > 0 => span = span.saturating_mul(4),
            Ok(Ok(_)) | Err(_) => return Ok(best.into()),
            Ok(Err(e)) => return Err(e),
        }
    }
}
