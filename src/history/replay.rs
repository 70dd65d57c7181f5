//! `modelwatch replay`: reads the history stream and prints it as JSON
//! lines, or rebuilds the metric's files from it.
//!
//! One line per message, `{"offset":..,"key":..,"id":..,"body":..}`, in
//! offset order, to stdout. With `--from-offset-file FILE` the replay
//! starts right after the offset saved there (else at `--from`) and saves
//! its progress as it goes, after the lines or rows before it are written
//! (so a saved offset never runs ahead of the output), and at the end.
//!
//! Refusals exit 2 before anything is printed ([`ReplayError::Usage`]):
//! the bridge off, a bad `--from`/`--until`/`--key`, a time in the future,
//! an offset past the end, no stream of that name, a refused login,
//! `--from-offset-file` with `--rebuild`. Failures while reading exit 1
//! ([`ReplayError::Failed`]), a refusal after the first message read too
//! (with `--follow`, the stream deleted while it is read).

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::offset_file::OffsetFile;
use super::position::{parse_from, parse_keys, parse_until, Start};
use super::reader::{read, ReadError, ReadReport, Stop, StreamSource};
use super::rebuild::{Rebuild, RebuildReport};
use crate::config::Settings;

/// Kept messages between two saves of the offset file.
const SAVE_EVERY: u64 = 1000;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct ReplayRequest {
    pub from: String,
    pub until: String,
    pub follow: bool,
    pub keys: Vec<String>,
    pub rebuild: Option<PathBuf>,
    pub offset_file: Option<PathBuf>,
}

/// Why a replay did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Bad input or a refusal found before reading: exit 2.
    #[error("{0}")]
    Usage(String),
    /// A failure while reading or writing: exit 1.
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplaySummary {
    pub read: ReadReport,
    pub rebuild: Option<RebuildReport>,
    /// Where the replay started (after the offset file, if any).
    pub start: Option<Start>,
}

/// One output line.
#[derive(Serialize)]
struct Line<'a> {
    offset: u64,
    key: &'a str,
    id: Option<u64>,
    body: &'a serde_json::Value,
}

/// Runs a replay with `settings` (the bridge, `history.queue`, the inbound
/// prefetch and body bound, the metric and plot keys for a rebuild),
/// writing lines to `out`, until the end or `cancel`: the request checked
/// and resolved ([`plan`]), the stream read into the output, the output
/// finished and the offset saved, then the end judged and logged.
pub fn run(
    settings: &Settings,
    req: &ReplayRequest,
    cancel: CancellationToken,
    out: &mut dyn Write,
) -> Result<ReplaySummary, ReplayError> {
    let Plan {
        start,
        stop,
        keys,
        offset_file,
        rebuild,
    } = plan(settings, req)?;
    let source = StreamSource::of(settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("replay")
        .enable_all()
        .build()
        .map_err(|e| ReplayError::Failed(e.into()))?;
    let mut output = Output {
        out,
        rebuild,
        offset_file: offset_file.as_ref(),
        follow: req.follow,
        since_save: 0,
        taken: 0,
        line: Vec::with_capacity(256),
    };
    let mut sink = |e: &super::reader::Entry| output.take(e);
    let result = runtime.block_on(read(&source, start, stop, &keys, &cancel, &mut sink));
    runtime.shutdown_background();
    let report = match result {
        Ok(r) => r,
        Err(ReadError::Refused(why)) if output.taken == 0 => return Err(ReplayError::Usage(why)),
        Err(ReadError::Refused(why)) => {
            return Err(ReplayError::Failed(anyhow::anyhow!(
                "after {} messages read: {why}",
                output.taken
            )))
        }
        Err(e) => return Err(ReplayError::Failed(e.into())),
    };
    output
        .out
        .flush()
        .map_err(|e| ReplayError::Failed(anyhow::anyhow!("writing to stdout: {e}")))?;
    let rebuilt = match output.rebuild {
        Some(r) => Some(r.finish().map_err(ReplayError::Failed)?),
        None => None,
    };
    if let (Some(f), Some(last)) = (&offset_file, report.last_offset) {
        f.save(last).map_err(|e| ReplayError::Failed(e.into()))?;
    }
    // Without --follow the replay is done at the end it was asked for; a
    // signal before that leaves it unfinished (what was read is kept and
    // the offset file saved, but the exit code says so).
    if stop != Stop::Follow && cancel.is_cancelled() {
        return Err(ReplayError::Failed(anyhow::anyhow!(
            "interrupted before the end of the history: {} messages read{}",
            report.kept,
            report
                .last_offset
                .map_or(String::new(), |o| format!(", up to offset {o}"))
        )));
    }
    log_finished(&report, rebuilt);
    Ok(ReplaySummary {
        read: report,
        rebuild: rebuilt,
        start: Some(start),
    })
}

/// A replay request checked and resolved, before anything is read.
struct Plan {
    start: Start,
    stop: Stop,
    keys: Vec<&'static str>,
    offset_file: Option<OffsetFile>,
    rebuild: Option<Rebuild>,
}

/// Checks the request (exit 2 for each refusal, in this order: the bridge
/// off, `--from`, `--until`, `--key`, an offset file with `--rebuild`, an
/// offset file that cannot be written or read, a rebuild folder that
/// cannot be opened) and resolves where it starts and stops.
fn plan(settings: &Settings, req: &ReplayRequest) -> Result<Plan, ReplayError> {
    let usage = |e: &dyn std::fmt::Display| ReplayError::Usage(e.to_string());
    if !settings.bridge.enabled {
        return Err(ReplayError::Usage(
            "replay reads the history stream on RabbitMQ: turn the bridge on (bridge.enabled, --amqp-url or AMQP_URL)".into(),
        ));
    }
    let now = SystemTime::now();
    let mut start = parse_from(&req.from, now).map_err(|e| usage(&e))?;
    let until = parse_until(&req.until, start, now).map_err(|e| usage(&e))?;
    let keys = parse_keys(&req.keys).map_err(|e| usage(&e))?;
    if let (Some(_), Some(dir)) = (&req.offset_file, &req.rebuild) {
        // The monitor of a rebuild makes its windows from the first row of
        // the history on: started in the middle it would number and judge
        // them otherwise. A rebuild resumes by itself, from DIR's files.
        return Err(ReplayError::Usage(format!(
            "--from-offset-file goes with printed lines, not with --rebuild: a rebuild resumes by itself (run the same command again; what {} holds is not written twice)",
            dir.display()
        )));
    }
    let offset_file = req.offset_file.as_ref().map(OffsetFile::new);
    if let Some(f) = &offset_file {
        f.check_writable().map_err(|e| usage(&e))?;
        if let Some(saved) = f.load().map_err(|e| usage(&e))? {
            start = Start::Offset(saved.saturating_add(1));
            tracing::info!(saved, file = %f.path().display(), "replay resumes after the saved offset");
        }
    }
    let rebuild = match &req.rebuild {
        Some(dir) => Some(
            Rebuild::open(dir, settings)
                .map_err(|e| ReplayError::Usage(format!("--rebuild {}: {e:#}", dir.display())))?,
        ),
        None => None,
    };
    let stop = match (req.follow, until) {
        (true, _) => Stop::Follow,
        (false, u) => Stop::At(u),
    };
    Ok(Plan {
        start,
        stop,
        keys,
        offset_file,
        rebuild,
    })
}

/// Where the messages read go: printed as lines to `out`, or taken by the
/// rebuild; the offset saved every [`SAVE_EVERY`] after the output before
/// it is flushed.
struct Output<'a> {
    out: &'a mut dyn Write,
    rebuild: Option<Rebuild>,
    offset_file: Option<&'a OffsetFile>,
    follow: bool,
    since_save: u64,
    /// Messages handed to the output: a refusal after the first one is a
    /// failure while reading (exit 1), not bad input (exit 2).
    taken: u64,
    line: Vec<u8>,
}

impl Output<'_> {
    fn take(&mut self, e: &super::reader::Entry) -> anyhow::Result<()> {
        match &mut self.rebuild {
            Some(r) => r.take(e)?,
            None => {
                self.line.clear();
                serde_json::to_writer(
                    &mut self.line,
                    &Line {
                        offset: e.offset,
                        key: e.key,
                        id: e.id,
                        body: &e.body,
                    },
                )?;
                self.line.push(b'\n');
                self.out
                    .write_all(&self.line)
                    .and_then(|()| match self.follow {
                        // Each line as it comes: a follower is watched live.
                        true => self.out.flush(),
                        false => Ok(()),
                    })
                    .map_err(|err| anyhow::anyhow!("writing to stdout: {err}"))?;
            }
        }
        self.since_save += 1;
        self.taken += 1;
        // Only a message whose entries are all out (the last of a batch
        // message's): resuming after a batch's offset skips all of it.
        if let (Some(f), true) = (self.offset_file, e.ends_message) {
            if self.since_save >= SAVE_EVERY {
                match &mut self.rebuild {
                    Some(r) => r.flush()?,
                    None => self.out.flush()?,
                }
                f.save(e.offset)?;
                self.since_save = 0;
            }
        }
        Ok(())
    }
}

/// The one INFO line of a replay that finished.
fn log_finished(report: &ReadReport, rebuilt: Option<RebuildReport>) {
    tracing::info!(
        kept = report.kept,
        delivered = report.delivered,
        skipped = report.skipped,
        malformed = report.malformed,
        reconnects = report.reconnects,
        first_end = ?report.end,
        last_offset = ?report.last_offset,
        rows = rebuilt.map(|r| r.rows),
        duplicates = rebuilt.map(|r| r.duplicates),
        already = rebuilt.map(|r| r.already),
        other_schema = rebuilt.map(|r| r.other_schema),
        "replay finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::reader::Entry;

    fn entry(offset: u64, ends_message: bool) -> Entry {
        Entry {
            offset,
            key: "y_true",
            id: Some(offset),
            timestamp: None,
            body: serde_json::json!(1.0),
            schema: None,
            ends_message,
        }
    }

    /// A batch message's entries share its offset: the offset is saved
    /// only once its last entry is out, so a replay that stops inside it
    /// resumes at its start, never after it.
    #[test]
    fn the_offset_of_a_batch_is_saved_only_when_all_of_it_is_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = OffsetFile::new(dir.path().join("offset"));
        let mut sink = Vec::new();
        let mut out = Output {
            out: &mut sink,
            rebuild: None,
            offset_file: Some(&file),
            follow: false,
            since_save: 0,
            taken: 0,
            line: Vec::new(),
        };
        for i in 0..SAVE_EVERY - 1 {
            out.take(&entry(i, true)).unwrap();
        }
        // A batch of 30 at offset 5000: the 1000th entry is inside it.
        for i in 0..30 {
            out.take(&entry(5000, i == 29)).unwrap();
            let saved = file.load().unwrap();
            match i {
                29 => assert_eq!(saved, Some(5000)),
                _ => assert_eq!(saved, None, "saved inside the batch, at entry {i}"),
            }
        }
    }
}
