//! Output files written whole: the model artifact, the PNG renders, the
//! replay offset file, `logs/http.addr`, `logs/final_metrics.txt` and the
//! split metric's journal when it is rewritten.
//!
//! Each is written to a new temporary file beside it and renamed over the
//! path, so a reader never sees half of one. A rename replaces whatever is
//! at the path, though: a symbolic link, a FIFO or a device would silently
//! become a regular file (as root, `train --out /dev/full` replaced the
//! system's `/dev/full`). So the path must hold nothing or a regular file
//! (checked without following a link); anything else is refused and left
//! as it is. [`check`] is what the command line runs before anything
//! starts (exit 2); [`replace`] checks again at each write. The temporary
//! file is created exclusively (`O_EXCL`, a random name), so a link planted
//! where it goes is not followed either.

use std::io::{self, Write as _};
use std::path::Path;

/// What is at `path`, if it is something a rename must not replace.
fn not_regular(path: &Path) -> io::Result<Option<&'static str>> {
    let kind = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(meta) => meta.file_type(),
    };
    use std::os::unix::fs::FileTypeExt as _;
    Ok(if kind.is_file() {
        None
    } else if kind.is_symlink() {
        Some("a symbolic link")
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    })
}

/// `path` holds nothing or a regular file; else the reason, for a message
/// that names the path (`<path> is a FIFO, not a regular file: ...`).
pub fn check(path: &Path) -> Result<(), String> {
    let shown = crate::core::text::sanitize(&path.display().to_string());
    match not_regular(path) {
        Ok(None) => Ok(()),
        Ok(Some(what)) => Err(format!(
            "{shown} is {what}, not a regular file: refusing to replace it (remove it or choose another path)"
        )),
        Err(e) => Err(format!("{shown}: cannot inspect: {e}")),
    }
}

/// Writes `bytes` to `path` through a new temporary file in the same
/// folder and a rename; refuses (`InvalidInput`) when something other
/// than a regular file is at `path`.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = temporary_beside(path)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    persist(tmp, path)
}

/// As [`replace`], with the temporary file written by `write` (through a
/// buffer), fsynced, renamed, and the folder fsynced: durable.
pub fn replace_durably(
    path: &Path,
    write: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temporary_beside(path)?;
    let mut out = io::BufWriter::new(tmp.as_file());
    write(&mut out)?;
    out.flush()?;
    drop(out);
    tmp.as_file().sync_all()?;
    persist(tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// As [`replace`], with the temporary file filled by `fill` (given its
/// path: a renderer that opens the file by name).
pub fn replace_with(path: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let tmp = temporary_beside(path)?;
    fill(tmp.path())?;
    persist(tmp, path)
}

/// A new temporary file in `path`'s folder, after checking `path`.
fn temporary_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    refuse_non_regular(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The path's extension last: a renderer picks the format by it.
    let suffix = match path.extension() {
        Some(ext) => format!(".tmp.{}", ext.to_string_lossy()),
        None => ".tmp".to_owned(),
    };
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(&suffix)
        .tempfile_in(dir)
}

/// Renames `tmp` over `path`, checking `path` again just before (it may
/// have changed while the file was written).
fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    refuse_non_regular(path)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn refuse_non_regular(path: &Path) -> io::Result<()> {
    match not_regular(path)? {
        None => Ok(()),
        Some(what) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} is there, not a regular file: refusing to replace it"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_file_or_creates_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        replace(&p, b"one").unwrap();
        replace(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary file left"
        );
    }

    #[test]
    fn refuses_a_link_a_fifo_and_a_directory_and_leaves_them() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"kept").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = replace(&link, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(check(&link).unwrap_err().contains("symbolic link"));
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"kept");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(check(&fifo).unwrap_err().contains("FIFO"));
        assert!(replace(&fifo, b"x").is_err());
        assert!(check(dir.path()).unwrap_err().contains("directory"));
        assert!(check(&dir.path().join("absent")).is_ok());
    }
}
