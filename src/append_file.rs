//! An append-only log file that never loses or tears a row.
//!
//! Rows are formatted into an in-memory buffer and written out on `flush`.
//! Progress is tracked to the byte: a failed or partial write keeps exactly
//! the bytes that did not reach the file, and the next flush (after the file
//! is reopened) continues from there, so a write error neither loses nor
//! duplicates a row. At open, a torn last line left by a crash is cut off and
//! the header is written only to a new or empty file; an existing file whose
//! first line is not the expected header is refused rather than mixed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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

/// A log file opened for appending whole lines.
#[derive(Debug)]
pub struct AppendFile {
    path: PathBuf,
    file: Option<File>,
    pending: Vec<u8>,
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
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err)?;
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
        let this = AppendFile {
            path: path.to_owned(),
            file: Some(file),
            pending: Vec::with_capacity(64 * 1024),
        };
        Ok((this, report))
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

    /// Writes everything buffered. On error the unwritten bytes stay buffered
    /// and the file is closed, to be reopened by the next flush.
    pub fn flush(&mut self) -> Result<(), AppendError> {
        let io_err = |source| AppendError::Io {
            path: self.path.clone(),
            source,
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        fail::fail_point!("append-file-write", |_| {
            self.file = None;
            Err(io_err(io::Error::other(
                "injected by failpoint append-file-write",
            )))
        });
        if self.file.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .open(&self.path)
                .map_err(io_err)?;
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened above");
        let mut written = 0;
        let result = loop {
            if written == self.pending.len() {
                break Ok(());
            }
            match file.write(&self.pending[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.pending.drain(..written);
        if let Err(e) = result {
            self.file = None;
            return Err(io_err(e));
        }
        Ok(())
    }

    /// Forgets what is buffered and the open handle: the next flush reopens
    /// the file by its path. For a file that was replaced whole (renamed
    /// over) with contents that include what was buffered.
    pub fn discard_and_reopen(&mut self) {
        self.pending.clear();
        self.file = None;
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
