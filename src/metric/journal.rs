//! The split-layout metric's journal of the halves waiting for their partner.
//!
//! Why: in the split layout a truth and its prediction come from two work
//! queues whose heads can be far apart (competing model workers, a backlog
//! after a restart). If a waiting half stayed an unacknowledged delivery,
//! the join could hold at most `inbound.prefetch` halves per queue, and once
//! the heads were further apart than that nothing could ever match again.
//! Instead the metric appends each half that has to wait to this local
//! journal, fsyncs it, and only then acknowledges the delivery: the join's
//! capacity is `metric.max_pending`; the prefetch only bounds work in flight.
//!
//! When a journaled half leaves the join (its partner came, it expired, or
//! it was evicted) a `done` line says so: a half that expired stays expired
//! across restarts, and one whose row is written never comes back, however
//! small `metric.dedup_window` is. At start the journal is read back into the
//! join and rewritten with only the live halves; while running it is
//! rewritten the same way once it holds far more lines than halves are
//! waiting, and at every clean shutdown, so its size stays within a small
//! multiple of `metric.max_pending` (amortised O(1) per half). A rewrite goes
//! to a temporary file that is fsynced and renamed over the journal, so a
//! crash leaves either the old or the new journal, whole.
//!
//! Format: one line per event, `y_true <id> <value>` or `y_pred <id> <value>`
//! (shortest round-trip floats) for a half that waits, `done <id>` for one
//! that left. Lines are checked like inbound messages (ids below 2^53,
//! values within [`MAX_ABS_VALUE`], lines of at most [`MAX_LINE`] bytes):
//! the file is ours, but a disk or a person can change it. A torn last line
//! (a crash mid-write) is cut at open, like the logs; any other malformed
//! line is an error that names the file and the line (the halves it holds
//! would otherwise be lost silently).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::core::append_file::{AppendError, AppendFile};
use crate::core::messages::{SampleId, MAX_ABS_VALUE};
use crate::metric::join::Half;

/// Lines beyond twice the waiting halves before a rewrite is due.
const REWRITE_SLACK: usize = 16 * 1024;
/// Longest line quoted in an error.
const QUOTE_MAX: usize = 80;
/// Longest line of a journal (`y_pred`, a 16-digit id, a 24-character float).
pub const MAX_LINE: usize = 128;
/// Ids are below 2^53, as on the wire.
const MAX_ID: SampleId = 1 << 53;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: line {line} is not `y_true|y_pred <id> <value>` or `done <id>` (ids below 2^53, values within ±1e100, at most 128 bytes): {text:?}; move the file away to start without the halves it holds")]
    Corrupt {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    file: AppendFile,
    /// Lines in the file plus those buffered.
    lines: usize,
}

impl Journal {
    /// Opens (creating) the journal and returns the halves it holds, oldest
    /// first. A torn last line is cut off.
    pub fn open(path: &Path) -> Result<(Journal, Vec<(SampleId, Half)>), JournalError> {
        let (file, _) = AppendFile::open(path, None)?;
        let io_err = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
        // Waiting halves by id, with the order they came in.
        let mut waiting: HashMap<SampleId, (usize, Half)> = HashMap::new();
        let (mut n, mut line) = (0, Vec::with_capacity(MAX_LINE + 1));
        loop {
            line.clear();
            let read = reader
                .by_ref()
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(io_err)?;
            if read == 0 {
                break;
            }
            n += 1;
            let text = String::from_utf8_lossy(&line);
            let corrupt = || JournalError::Corrupt {
                path: path.to_owned(),
                line: n,
                text: crate::core::text::bounded_text(text.trim_end(), QUOTE_MAX),
            };
            if !line.ends_with(b"\n") {
                return Err(corrupt()); // longer than MAX_LINE (a torn tail was cut at open)
            }
            match parse_line(text.trim_end_matches('\n')).ok_or_else(corrupt)? {
                Event::Waiting(id, half) => {
                    waiting.insert(id, (n, half));
                }
                Event::Done(id) => {
                    waiting.remove(&id);
                }
            }
        }
        let mut halves: Vec<(usize, SampleId, Half)> = waiting
            .into_iter()
            .map(|(id, (at, h))| (at, id, h))
            .collect();
        halves.sort_unstable_by_key(|(at, _, _)| *at);
        let halves: Vec<(SampleId, Half)> = halves.into_iter().map(|(_, id, h)| (id, h)).collect();
        let lines = n;
        Ok((Journal { file, lines }, halves))
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Buffers one waiting half; it is durable after the next [`Journal::sync`].
    pub fn append(&mut self, id: SampleId, half: Half) {
        write_line(self.file.buffer(), id, half).expect("writing to a Vec");
        self.lines += 1;
    }

    /// Buffers that a journaled half left the join (joined, expired or
    /// evicted).
    pub fn done(&mut self, id: SampleId) {
        let buf = self.file.buffer();
        buf.extend_from_slice(b"done ");
        buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        buf.push(b'\n');
        self.lines += 1;
    }

    /// Halves buffered but not yet on disk.
    pub fn has_unsynced(&self) -> bool {
        self.file.pending_bytes() > 0
    }

    /// Writes what is buffered and fsyncs it (nothing to do if nothing is).
    pub fn sync(&mut self) -> Result<(), AppendError> {
        if self.has_unsynced() {
            self.file.sync()?;
        }
        Ok(())
    }

    /// Whether the file holds so many stale lines that a rewrite is due.
    pub fn rewrite_due(&self, waiting: usize) -> bool {
        self.lines > 2 * waiting + REWRITE_SLACK
    }

    /// Replaces the journal with exactly `waiting` (which must include every
    /// half buffered since the last sync), durably: temporary file, fsync,
    /// rename, fsync of the folder.
    pub fn rewrite(
        &mut self,
        waiting: impl Iterator<Item = (SampleId, Half)>,
    ) -> Result<(), JournalError> {
        let path = self.file.path().to_owned();
        let mut lines = 0;
        // A new temporary file (never a link planted at a fixed name),
        // fsynced, renamed over the journal, the folder fsynced; a link, FIFO
        // or device standing at the journal's path is refused, not replaced.
        crate::core::output_file::replace_durably(&path, |out| {
            let mut line = Vec::with_capacity(64);
            for (id, half) in waiting {
                line.clear();
                write_line(&mut line, id, half).expect("writing to a Vec");
                out.write_all(&line)?;
                lines += 1;
            }
            Ok(())
        })
        .map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        // The buffered halves are in the new file; appends go to it from now.
        self.file.discard_and_reopen();
        self.lines = lines;
        Ok(())
    }
}

fn write_line(out: &mut Vec<u8>, id: SampleId, half: Half) -> io::Result<()> {
    match half {
        Half::Truth(y) => writeln!(out, "y_true {id} {y}"),
        Half::Prediction(y) => writeln!(out, "y_pred {id} {y}"),
    }
}

enum Event {
    Waiting(SampleId, Half),
    Done(SampleId),
}

fn parse_line(line: &str) -> Option<Event> {
    let mut parts = line.split(' ');
    let (kind, id) = (parts.next()?, parts.next()?);
    let id: SampleId = id.parse().ok().filter(|&id| id < MAX_ID)?;
    if kind == "done" {
        return parts.next().is_none().then_some(Event::Done(id));
    }
    let y: f64 = parts
        .next()?
        .parse()
        .ok()
        .filter(|y: &f64| y.abs() <= MAX_ABS_VALUE)?;
    if parts.next().is_some() {
        return None;
    }
    match kind {
        "y_true" => Some(Event::Waiting(id, Half::Truth(y))),
        "y_pred" => Some(Event::Waiting(id, Half::Prediction(y))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_survive_a_reopen_in_order_and_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.journal");
        let (mut j, halves) = Journal::open(&p).unwrap();
        assert!(halves.is_empty());
        j.append(7, Half::Truth(151.0));
        j.append(3, Half::Prediction(0.1 + 0.2));
        assert!(j.has_unsynced());
        j.sync().unwrap();
        assert!(!j.has_unsynced());
        drop(j);
        let (_, halves) = Journal::open(&p).unwrap();
        assert_eq!(
            halves,
            vec![(7, Half::Truth(151.0)), (3, Half::Prediction(0.1 + 0.2))]
        );
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_bad_line_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.journal");
        std::fs::write(&p, "y_true 1 2.5\ny_pred 2 3").unwrap();
        let (_, halves) = Journal::open(&p).unwrap();
        assert_eq!(halves, vec![(1, Half::Truth(2.5))]);
        for bad in [
            "y_true 1 inf\n",
            "y_true 1 NaN\n",
            "y_true 1 1.7e308\n",
            "y_true 9007199254740992 1\n",
            "y_true 18446744073709551615 1\n",
            "y_true x 1\n",
            "z 1 1\n",
            "y_true 1 1 1\n",
            "done 1 2\n",
            &format!("y_true 1 1{}\n", "0".repeat(200)),
        ] {
            std::fs::write(&p, format!("y_pred 9 1\n{bad}")).unwrap();
            let err = Journal::open(&p).unwrap_err().to_string();
            assert!(err.contains("line 2"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_done_half_stays_gone_and_may_wait_again_later() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.journal");
        let (mut j, _) = Journal::open(&p).unwrap();
        j.append(1, Half::Truth(1.0));
        j.append(2, Half::Truth(2.0));
        j.done(1); // joined or expired
        j.append(3, Half::Prediction(3.0));
        j.done(2);
        j.append(2, Half::Prediction(4.0)); // its partner, after it expired
        j.sync().unwrap();
        drop(j);
        let (_, halves) = Journal::open(&p).unwrap();
        assert_eq!(
            halves,
            vec![(3, Half::Prediction(3.0)), (2, Half::Prediction(4.0))]
        );
    }

    #[test]
    fn rewrite_keeps_exactly_the_waiting_halves_and_appends_after() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.journal");
        let (mut j, _) = Journal::open(&p).unwrap();
        for id in 0..100 {
            j.append(id, Half::Truth(id as f64));
        }
        j.sync().unwrap();
        j.append(100, Half::Prediction(1.0)); // buffered, included below
        j.rewrite([(5, Half::Truth(5.0)), (100, Half::Prediction(1.0))].into_iter())
            .unwrap();
        assert!(!j.has_unsynced());
        j.append(101, Half::Truth(2.0));
        j.sync().unwrap();
        drop(j);
        let (j, halves) = Journal::open(&p).unwrap();
        assert_eq!(
            halves,
            vec![
                (5, Half::Truth(5.0)),
                (100, Half::Prediction(1.0)),
                (101, Half::Truth(2.0))
            ]
        );
        assert_eq!(j.lines, 3);
        assert!(!dir.path().join("p.journal.tmp").exists());
    }

    #[test]
    fn rewrite_is_due_only_when_stale_lines_pile_up() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(&dir.path().join("p.journal")).unwrap();
        for id in 0..(REWRITE_SLACK as u64 + 10) {
            j.append(id, Half::Truth(1.0));
        }
        assert!(j.rewrite_due(0));
        assert!(!j.rewrite_due(REWRITE_SLACK));
    }
}
