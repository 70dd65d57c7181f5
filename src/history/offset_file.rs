//! `--from-offset-file FILE`: where a replay left off, so the next one
//! resumes right after it (the stream-protocol's "offset tracking", kept
//! by the consumer in a file of its own).
//!
//! The file holds one line, the offset of the last message handled. It is
//! replaced atomically (a temporary file in the same folder, fsynced, then
//! renamed over it), so a crash leaves the old offset or the new one, never
//! a torn one; a replay that dies between handling a message and saving
//! reads that message again (at-least-once, like every consumer here).

use std::path::{Path, PathBuf};

/// Longest offset file read: one number and a newline.
const MAX_BYTES: u64 = 64;

/// A problem with the offset file.
#[derive(Debug, thiserror::Error)]
pub enum OffsetFileError {
    #[error("--from-offset-file {path}: cannot read: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("--from-offset-file {path}: not an offset (one whole number expected)")]
    NotAnOffset { path: String },
    #[error("--from-offset-file {path}: cannot save the offset: {error}")]
    Write { path: String, error: std::io::Error },
}

/// The offset file of a replay.
#[derive(Debug, Clone)]
pub struct OffsetFile {
    path: PathBuf,
}

impl OffsetFile {
    pub fn new(path: impl Into<PathBuf>) -> OffsetFile {
        OffsetFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        crate::core::text::sanitize(&self.path.display().to_string())
    }

    /// The offset saved last, or `None` when the file does not exist yet
    /// (the replay then starts at `--from`).
    pub fn load(&self) -> Result<Option<u64>, OffsetFileError> {
        use std::io::Read as _;
        // A FIFO would block the open for ever (past SIGTERM); a device or
        // a directory is not an offset file either.
        let file = match crate::monitor::log::open_regular(&self.path) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(error) => {
                return Err(OffsetFileError::Read {
                    path: self.shown(),
                    error,
                })
            }
        };
        let mut text = String::new();
        file.take(MAX_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|error| OffsetFileError::Read {
                path: self.shown(),
                error,
            })?;
        let number = text.trim();
        if text.len() as u64 > MAX_BYTES || number.is_empty() {
            return Err(OffsetFileError::NotAnOffset { path: self.shown() });
        }
        number
            .parse()
            .map(Some)
            .map_err(|_| OffsetFileError::NotAnOffset { path: self.shown() })
    }

    /// Replaces the file with `offset`, atomically.
    /// Whether the file can be saved where it is (its folder takes a new
    /// file): checked before anything is read, so a replay does not print
    /// a thousand lines and then fail.
    pub fn check_writable(&self) -> Result<(), OffsetFileError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // A link, FIFO or device there would be replaced by the rename.
        crate::core::output_file::check(&self.path).map_err(|why| OffsetFileError::Write {
            path: self.shown(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
        })?;
        tempfile::NamedTempFile::new_in(dir)
            .map(drop)
            .map_err(|error| OffsetFileError::Write {
                path: self.shown(),
                error,
            })
    }

    pub fn save(&self, offset: u64) -> Result<(), OffsetFileError> {
        let err = |error| OffsetFileError::Write {
            path: self.shown(),
            error,
        };
        crate::core::output_file::replace(&self.path, format!("{offset}\n").as_bytes()).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = OffsetFile::new(dir.path().join("replay.offset"));
        assert_eq!(f.load().unwrap(), None);
        f.save(41).unwrap();
        assert_eq!(f.load().unwrap(), Some(41));
        f.save(12_345_678_901).unwrap();
        assert_eq!(f.load().unwrap(), Some(12_345_678_901));
        assert_eq!(std::fs::read_to_string(f.path()).unwrap(), "12345678901\n");
        // only the file itself: the temporary files were renamed away
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_what_is_not_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o");
        for bad in ["", "x\n", "-1\n", "1 2\n", &"9".repeat(100)] {
            std::fs::write(&p, bad).unwrap();
            let e = OffsetFile::new(&p).load().unwrap_err();
            assert!(
                matches!(e, OffsetFileError::NotAnOffset { .. }),
                "{bad:?}: {e}"
            );
        }
        let e = OffsetFile::new(dir.path()).load().unwrap_err();
        assert!(e.to_string().contains("--from-offset-file"), "{e}");
    }
}
