//! An append-only log file that never loses or tears a row, bounded by size
//! and reopened on request (log rotation).
//!
//! Rows are formatted into an in-memory buffer and written out on `flush`.
//! Progress is tracked to the byte: a failed or partial write keeps exactly
//! the bytes that did not reach the file, and the next flush (after the file
//! is reopened) continues from there, so a write error neither loses nor
//! duplicates a row. At open, a torn last line left by a crash is cut off and
//! the header is written only to a new or empty file; an existing file whose
//! first line is not the expected header is refused rather than mixed.
//!
//! With a [`Rotation`], a file that a row would take past `max_bytes` is
//! renamed to `name.1` (`name.1` to `name.2` and so on, `name.keep` dropped)
//! and a new one started with the header, always between two rows; and a
//! [`Reopen`] request (SIGHUP, after logrotate renamed the file) makes the
//! next flush finish the current row in the old file and go on in a file
//! opened anew by its path. Only regular files are opened, renamed or
//! removed: a symbolic link, FIFO, device or folder at one of those names is
//! refused with an error naming it, never followed or replaced.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::core::reopen::Reopen;

/// Errors opening or writing a log file, with its path.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: first line is {found:?}, expected the header {expected:?}; refusing to append to another file")]
    Header {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// What opening found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes of a torn last line cut off.
    pub repaired_bytes: u64,
    /// The header was written (the file was new or empty).
    pub wrote_header: bool,
}

/// How a log file is bounded and when it is reopened (`logs.max_bytes`,
/// `logs.keep`, SIGHUP). The default bounds nothing and is never asked to
/// reopen.
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    /// Start a new file rather than let a row take this one past this size
    /// (0: no bound).
    pub max_bytes: u64,
    /// Old files kept: `name.1` (the newest) to `name.keep`.
    pub keep: u32,
    /// Reopen the file by its path at the next flush.
    pub reopen: Reopen,
}

impl Rotation {
    /// The old files this rotation keeps of `path` that exist, oldest first.
    pub fn old_files(&self, path: &Path) -> Vec<PathBuf> {
        (1..=self.keep)
            .rev()
            .map(|k| numbered(path, k))
            .filter(|p| p.symlink_metadata().is_ok_and(|m| m.is_file()))
            .collect()
    }
}

/// `name.k`: the k-th newest old file of `path`.
pub fn numbered(path: &Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

#[derive(Debug)]
pub struct AppendFile {
    path: PathBuf,
    file: Option<File>,
    pending: Vec<u8>,
    header: Option<String>,
    /// Bytes in the open file (as far as this process wrote or found them).
    size: u64,
    /// The last write ended inside a row (a partial write): the rest of
    /// that row must go to the same file.
    mid_row: bool,
    rotation: Rotation,
    /// The reopen generation this file last saw.
    seen: u64,
    /// Files started because of `max_bytes`.
    rotations: u64,
}

impl AppendFile {
    /// Opens (creating) `path`, repairs a torn last line, and writes `header`
    /// (one line, without newline) if the file is empty.
    pub fn open(
        path: &Path,
        header: Option<&str>,
    ) -> Result<(AppendFile, OpenReport), AppendError> {
        let io_err = |source| AppendError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = open_regular(path, true).map_err(io_err)?;
        let mut report = OpenReport {
            repaired_bytes: repair_torn_tail(&mut file).map_err(io_err)?,
            ..OpenReport::default()
        };
        if let Some(header) = header {
            if file.metadata().map_err(io_err)?.len() == 0 {
                file.write_all(format!("{header}\n").as_bytes())
                    .map_err(io_err)?;
                report.wrote_header = true;
            } else {
                let found = first_line(&mut file).map_err(io_err)?;
                if found != header {
                    return Err(AppendError::Header {
                        path: path.to_owned(),
                        found,
                        expected: header.to_owned(),
                    });
                }
            }
        }
        let size = file.metadata().map_err(io_err)?.len();
        let this = AppendFile {
            path: path.to_owned(),
            file: Some(file),
            pending: Vec::with_capacity(64 * 1024),
            header: header.map(str::to_owned),
            size,
            mid_row: false,
            rotation: Rotation::default(),
            seen: 0,
            rotations: 0,
        };
        Ok((this, report))
    }

    /// Bounds the file by size and reopens it on request (see [`Rotation`]).
    pub fn with_rotation(mut self, rotation: Rotation) -> AppendFile {
        self.seen = rotation.reopen.generation();
        self.rotation = rotation;
        self
    }

    /// Files started because of `max_bytes` since the open.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The buffer to format whole lines into; they reach the file on `flush`.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Writes everything buffered (rotating, or reopening when asked, on the
    /// way). On error the unwritten bytes stay buffered and the file is
    /// closed, to be reopened by the next flush.
    pub fn flush(&mut self) -> Result<(), AppendError> {
        let generation = self.rotation.reopen.generation();
        let reopen = generation != self.seen;
        if self.pending.is_empty() && !reopen {
            return Ok(());
        }
        fail::fail_point!("append-file-write", |_| {
            self.file = None;
            Err(self.io_err(io::Error::other("injected by failpoint append-file-write")))
        });
        self.write_buffered(reopen, generation)
    }

    /// [`AppendFile::flush`] without its fail point.
    fn write_buffered(&mut self, reopen: bool, generation: u64) -> Result<(), AppendError> {
        let mut written = 0;
        let result = self.write_out(&mut written, reopen, generation);
        self.pending.drain(..written);
        if let Err(e) = result {
            self.file = None;
            return Err(self.io_err(e));
        }
        Ok(())
    }

    fn io_err(&self, source: io::Error) -> AppendError {
        AppendError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes `pending[*written..]`, advancing `written` as bytes reach a
    /// file. A reopen first finishes a row begun in the old file.
    fn write_out(&mut self, written: &mut usize, reopen: bool, generation: u64) -> io::Result<()> {
        if reopen {
            if self.mid_row && self.file.is_some() {
                let end = row_end(&self.pending, 0);
                self.write_range(written, end)?;
            }
            self.file = None;
            self.seen = generation;
            self.open_by_path()?;
        }
        while *written < self.pending.len() {
            if self.file.is_none() {
                self.open_by_path()?;
            }
            match self.chunk_end(*written) {
                Some(end) => self.write_range(written, end)?,
                None => self.rotate()?,
            }
        }
        Ok(())
    }

    /// Writes `pending[*written..end]` to the open file.
    fn write_range(&mut self, written: &mut usize, end: usize) -> io::Result<()> {
        let file = self.file.as_mut().expect("opened before writing");
        while *written < end {
            match file.write(&self.pending[*written..end]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    *written += n;
                    self.size += n as u64;
                    self.mid_row = self.pending[*written - 1] != b'\n';
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Where the next write from `from` ends: the whole rows that fit under
    /// `max_bytes`, at least the rest of a row begun and one row in a file
    /// that holds no row yet; `None` when the file must rotate first.
    fn chunk_end(&self, from: usize) -> Option<usize> {
        let rest = &self.pending[from..];
        let max = self.rotation.max_bytes;
        if max == 0 || self.size + rest.len() as u64 <= max {
            return Some(self.pending.len());
        }
        if self.mid_row || self.size <= self.header_len() {
            return Some(row_end(&self.pending, from));
        }
        let room = max.saturating_sub(self.size).min(rest.len() as u64) as usize;
        rest[..room]
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|pos| from + pos + 1)
    }

    fn header_len(&self) -> u64 {
        self.header.as_ref().map_or(0, |h| h.len() as u64 + 1)
    }

    /// Opens the file by its path (creating it, with the header if it is
    /// new or empty). What an earlier write left in it stays as it is: the
    /// buffer continues it.
    fn open_by_path(&mut self) -> io::Result<()> {
        let mut file = open_regular(&self.path, false)?;
        let mut size = file.metadata()?.len();
        if size == 0 {
            if let Some(h) = &self.header {
                file.write_all(format!("{h}\n").as_bytes())?;
                size = h.len() as u64 + 1;
            }
            self.mid_row = false;
        }
        self.size = size;
        self.file = Some(file);
        Ok(())
    }

    /// Renames the full file to `name.1` (shifting the older ones, the
    /// oldest dropped); the next write starts a new file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.rotation.keep.max(1);
        remove_regular(&numbered(&self.path, keep))?;
        for k in (1..keep).rev() {
            rename_regular(&numbered(&self.path, k), &numbered(&self.path, k + 1))?;
        }
        rename_regular(&self.path, &numbered(&self.path, 1))?;
        self.rotations += 1;
        self.size = 0;
        Ok(())
    }

    /// Forgets what is buffered and the open handle: the next flush reopens
    /// the file by its path. For a file that was replaced whole (renamed
    /// over) with contents that include what was buffered.
    pub fn discard_and_reopen(&mut self) {
        self.pending.clear();
        self.file = None;
        self.mid_row = false;
    }

    /// Rows (newlines) in the buffer, not yet in the file.
    pub fn pending_rows(&self) -> u64 {
        self.pending.iter().filter(|&&b| b == b'\n').count() as u64
    }

    /// Gives up on the buffered bytes: drops them, and cuts the start of a
    /// row whose end was among them (left by a partial write), so every row
    /// in the file stays whole.
    pub fn discard_pending(&mut self) -> Result<(), AppendError> {
        self.pending.clear();
        self.file = None;
        self.mid_row = false;
        let cut = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path)
            .and_then(|mut f| match f.metadata()?.is_file() {
                true => repair_torn_tail(&mut f),
                false => Err(not_regular()),
            });
        match cut {
            Ok(_) => Ok(()),
            Err(source) => Err(AppendError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Flushes and asks the OS to put the data on disk.
    pub fn sync(&mut self) -> Result<(), AppendError> {
        self.flush()?;
        if let Some(f) = &self.file {
            f.sync_data().map_err(|source| AppendError::Io {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Unwritten bytes of `pipeline.log` kept while its disk fails; past them
/// the buffer is dropped and its lines counted (the same lines went to
/// stderr).
const LOG_BUFFER_MAX: usize = 1 << 20;

/// `pipeline.log` as tracing-appender's worker writes it (one event per
/// `write`), through an [`AppendFile`], so that it is bounded and reopened
/// like the other logs. A failing disk never blocks or fails the worker:
/// the lines wait in a bounded buffer. What cannot be written is never lost
/// silently: a name that holds something other than a regular file (a link
/// or FIFO planted after a rotation; never followed or replaced) drops the
/// lines at once, a failing disk past [`LOG_BUFFER_MAX`]; either way the
/// lines are counted in `dropped` and one line on stderr says so. (The
/// `append-file-write` fail point is not in this path: it stands for the
/// data files.)
#[derive(Debug)]
pub struct LogWriter {
    file: AppendFile,
    /// Lines dropped (`modelwatch_pipeline_log_dropped_total`).
    dropped: prometheus_client::metrics::counter::Counter,
    /// The stderr line was written (once per run, never per line).
    warned: bool,
}

impl LogWriter {
    pub fn open(
        path: &Path,
        rotation: Rotation,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> Result<LogWriter, AppendError> {
        let (file, _) = AppendFile::open(path, None)?;
        Ok(LogWriter {
            file: file.with_rotation(rotation),
            dropped,
            warned: false,
        })
    }

    fn write_out(&mut self) {
        let f = &mut self.file;
        let generation = f.rotation.reopen.generation();
        let reopen = generation != f.seen;
        if f.pending.is_empty() && !reopen {
            return;
        }
        let Err(e) = f.write_buffered(reopen, generation) else {
            return;
        };
        let refused = matches!(&e, AppendError::Io { source, .. } if source.kind() == io::ErrorKind::InvalidInput);
        if !refused && f.pending_bytes() <= LOG_BUFFER_MAX {
            return;
        }
        self.dropped.inc_by(f.pending_rows());
        if refused {
            // Nothing of it reached the refused file: nothing to cut there.
            f.pending.clear();
            f.mid_row = false;
        } else {
            let _ = f.discard_pending();
        }
        if !self.warned {
            self.warned = true;
            let what = match refused {
                true => "its lines are dropped from now on",
                false => "more than 1 MiB of its lines could not be written and were dropped",
            };
            eprintln!(
                "modelwatch: error: {e}; {what} (counted in modelwatch_pipeline_log_dropped_total and on the exit line: the run exits 1)"
            );
        }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.buffer().extend_from_slice(buf);
        self.write_out();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out();
        Ok(())
    }
}

/// The end of the row that `pending[from..]` starts (or continues).
fn row_end(pending: &[u8], from: usize) -> usize {
    pending[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(pending.len(), |pos| from + pos + 1)
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a regular file (a symbolic link, directory, FIFO, socket or device); refusing to follow or replace it",
    )
}

/// Opens `path` for appending, creating it; refuses (without following or
/// blocking on it) anything that is not a regular file. Also how the logs
/// dir's lock file is opened.
pub fn open_regular(path: &Path, read: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(read)
        .append(true)
        .create(true)
        // A symbolic link fails (ELOOP); a FIFO does not wait for a reader.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENXIO) => not_regular(),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Whether `path` is absent (Ok(false)) or a regular file (Ok(true));
/// anything else is refused.
fn regular_or_absent(path: &Path) -> io::Result<bool> {
    match path.symlink_metadata() {
        Ok(m) if m.is_file() => Ok(true),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {}", path.display(), not_regular()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn remove_regular(path: &Path) -> io::Result<()> {
    if regular_or_absent(path)? {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// Renames a regular file `from` (if there is one) to `to`, which must be
/// absent or a regular file.
fn rename_regular(from: &Path, to: &Path) -> io::Result<()> {
    if regular_or_absent(from)? {
        regular_or_absent(to)?;
        std::fs::rename(from, to)?;
    }
    Ok(())
}

/// Length of the file up to and including its last newline (0 if none).
/// Leaves the file position anywhere.
pub fn complete_lines_len(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(buf)?;
        if let Some(pos) = buf.iter().rposition(|&b| b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Cuts the file back to its last newline; returns the bytes removed.
fn repair_torn_tail(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let keep = complete_lines_len(file)?;
    if keep != len {
        file.set_len(keep)?;
    }
    Ok(len - keep)
}

fn first_line(file: &mut File) -> io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 4096];
    let n = file.read(&mut buf)?;
    let line = buf[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn discarding_counts_the_rows_and_cuts_a_torn_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.csv");
        let (mut f, _) = AppendFile::open(&p, Some("h")).unwrap();
        f.buffer().extend_from_slice(b"1\n");
        f.flush().unwrap();
        // As if a partial write of "2\n3\n" had put only its first byte in
        // the file: the rest stays buffered.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"2")
            .unwrap();
        f.buffer().extend_from_slice(b"\n3\n");
        assert_eq!(f.pending_rows(), 2);
        f.discard_pending().unwrap();
        assert_eq!(f.pending_bytes(), 0);
        assert_eq!(read(&p), "h\n1\n");
    }

    #[test]
    fn header_only_on_new_file_and_appends_after() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let (mut f, r) = AppendFile::open(&p, Some("h1,h2")).unwrap();
        assert!(r.wrote_header);
        f.buffer().extend_from_slice(b"1,2\n");
        f.flush().unwrap();
        drop(f);
        let (mut f, r) = AppendFile::open(&p, Some("h1,h2")).unwrap();
        assert!(!r.wrote_header);
        f.buffer().extend_from_slice(b"3,4\n");
        f.sync().unwrap();
        assert_eq!(read(&p), "h1,h2\n1,2\n3,4\n");
    }

    #[test]
    fn torn_last_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "h\n1,2\n3,").unwrap();
        let (_f, r) = AppendFile::open(&p, Some("h")).unwrap();
        assert_eq!(r.repaired_bytes, 2);
        assert_eq!(read(&p), "h\n1,2\n");
        // a file that is one torn line gets emptied, then a header
        std::fs::write(&p, "garbage").unwrap();
        let (_f, r) = AppendFile::open(&p, Some("h")).unwrap();
        assert_eq!((r.repaired_bytes, r.wrote_header), (7, true));
        assert_eq!(read(&p), "h\n");
    }

    #[test]
    fn foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "name,age\nx,1\n").unwrap();
        let err = AppendFile::open(&p, Some("id,y")).unwrap_err().to_string();
        assert!(err.contains("expected the header"), "{err}");
    }

    #[test]
    fn rotation_ends_files_between_rows_and_keeps_at_most_keep() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let rotation = Rotation {
            max_bytes: 20,
            keep: 2,
            reopen: Reopen::new(),
        };
        let (f, _) = AppendFile::open(&p, Some("h")).unwrap();
        let mut f = f.with_rotation(rotation.clone());
        for i in 0..12 {
            f.buffer()
                .extend_from_slice(format!("row{i:02}\n").as_bytes());
        }
        f.flush().unwrap();
        // 2 + 6 per row: three rows a file; the oldest two files are gone.
        assert_eq!(read(&p), "h\nrow09\nrow10\nrow11\n");
        assert_eq!(read(&numbered(&p, 1)), "h\nrow06\nrow07\nrow08\n");
        assert_eq!(read(&numbered(&p, 2)), "h\nrow03\nrow04\nrow05\n");
        assert!(!numbered(&p, 3).exists());
        assert_eq!(f.rotations(), 3);
        assert_eq!(
            rotation.old_files(&p),
            vec![numbered(&p, 2), numbered(&p, 1)]
        );
        // A row longer than the bound gets a file of its own.
        f.buffer().extend_from_slice(b"a-very-long-row-indeed\n");
        f.flush().unwrap();
        assert_eq!(read(&p), "h\na-very-long-row-indeed\n");
    }

    #[test]
    fn reopen_goes_on_in_a_new_file_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let reopen = Reopen::new();
        let (f, _) = AppendFile::open(&p, Some("h")).unwrap();
        let mut f = f.with_rotation(Rotation {
            reopen: reopen.clone(),
            ..Rotation::default()
        });
        f.buffer().extend_from_slice(b"1\n");
        f.flush().unwrap();
        let moved = dir.path().join("a.csv.old");
        std::fs::rename(&p, &moved).unwrap();
        f.buffer().extend_from_slice(b"2\n");
        reopen.request();
        f.flush().unwrap();
        assert_eq!(read(&moved), "h\n1\n");
        assert_eq!(read(&p), "h\n2\n");
    }

    #[test]
    fn what_is_not_a_regular_file_is_neither_followed_nor_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "v\n").unwrap();
        let p = dir.path().join("a.csv");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let err = AppendFile::open(&p, Some("h")).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&victim, numbered(&p, 1)).unwrap();
        let (f, _) = AppendFile::open(&p, Some("h")).unwrap();
        let mut f = f.with_rotation(Rotation {
            max_bytes: 4,
            keep: 3,
            reopen: Reopen::new(),
        });
        f.buffer().extend_from_slice(b"1\n2\n");
        let err = f.flush().unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(f.pending_rows(), 1, "the row that did not fit waits");
        assert_eq!(read(&victim), "v\n");
        assert_eq!(read(&p), "h\n1\n");
    }

    #[test]
    fn the_pipeline_log_counts_the_lines_a_planted_link_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipeline.log");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "v\n").unwrap();
        let reopen = Reopen::new();
        let dropped = prometheus_client::metrics::counter::Counter::default();
        let rotation = Rotation {
            reopen: reopen.clone(),
            ..Rotation::default()
        };
        let mut log = LogWriter::open(&p, rotation, dropped.clone()).unwrap();
        log.write_all(b"one\n").unwrap();
        // logrotate's rename, a link planted at the name, then SIGHUP.
        let moved = dir.path().join("pipeline.log.1");
        std::fs::rename(&p, &moved).unwrap();
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        reopen.request();
        for line in [&b"two\n"[..], b"three\n", b"four\n"] {
            log.write_all(line).unwrap();
        }
        log.flush().unwrap();
        assert_eq!(dropped.get(), 3);
        assert!(log.warned);
        assert_eq!(log.file.pending_bytes(), 0, "nothing kept for the link");
        assert_eq!(read(&victim), "v\n");
        assert!(p.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(read(&moved), "one\n");
        // A regular file back at the name (and SIGHUP): writes go on there.
        std::fs::remove_file(&p).unwrap();
        reopen.request();
        log.write_all(b"five\n").unwrap();
        assert_eq!(read(&p), "five\n");
        assert_eq!(dropped.get(), 3);
    }

    #[test]
    fn failed_write_keeps_the_bytes_for_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        let (mut f, _) = AppendFile::open(&p, None).unwrap();
        f.buffer().extend_from_slice(b"one\n");
        // replace the file by a folder: reopening fails until it is back
        f.file = None;
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        assert!(f.flush().is_err());
        assert_eq!(f.pending_bytes(), 4);
        std::fs::remove_dir(&p).unwrap();
        std::fs::write(&p, "").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&p), "one\n");
    }
}
