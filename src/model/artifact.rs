//! What every model artifact shares: its bounded read from disk, the
//! errors of loading and checking one, and the fit figures it records (R²,
//! MAE). Apart from the models (`super::LinearModel`, `super::tabular`) so
//! that both import it and neither imports the other's file.

use std::path::Path;

/// Errors fitting, loading or checking a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("fitting the linear regression failed: {0}")]
    Fit(String),
    #[error("model artifact {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("model artifact {path} is not a valid artifact: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    #[error("model artifact {path} does not match this pipeline: {problem}")]
    Mismatch { path: String, problem: String },
    #[error("{key}: {path} is not a regular file ({kind})")]
    NotAFile {
        key: &'static str,
        path: String,
        kind: &'static str,
    },
    #[error("{key}: {path} is larger than {limit} bytes ({why})")]
    TooLarge {
        key: &'static str,
        path: String,
        limit: u64,
        why: &'static str,
    },
}

/// Largest artifact `load` reads: one is a few KB, so a bigger file (or a
/// device such as `/dev/zero`) is not an artifact.
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 20;

/// How [`read_bounded`] reads: the key that names the file in errors, the
/// bound and why it is that, and whether a symbolic link is followed.
pub(super) struct Bounds {
    pub key: &'static str,
    pub limit: u64,
    pub why: &'static str,
    /// The diabetes artifact follows links, as it always has (a ConfigMap
    /// mount is a link); an artifact of the user's own data does not.
    pub follow_links: bool,
}

/// Reads the artifact at `path`: a regular file of at most `b.limit`
/// bytes, read with that bound (a file that grows while it is read cannot
/// exhaust memory either). A FIFO, a device or a socket (and, unless
/// `b.follow_links`, a symbolic link) is refused before it is opened, so
/// nothing can block on it.
pub(super) fn read_bounded(path: &Path, shown: &str, b: &Bounds) -> Result<String, ModelError> {
    let bytes = read_bounded_bytes(path, shown, b)?;
    String::from_utf8(bytes).map_err(|_| ModelError::Io {
        path: shown.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })
}

/// [`read_bounded`] for a file of any bytes (an ONNX model).
pub(super) fn read_bounded_bytes(
    path: &Path,
    shown: &str,
    b: &Bounds,
) -> Result<Vec<u8>, ModelError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| ModelError::Io {
        path: shown.to_owned(),
        source,
    };
    let meta = match b.follow_links {
        true => std::fs::metadata(path),
        false => std::fs::symlink_metadata(path),
    }
    .map_err(io)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else if meta.file_type().is_symlink() {
            "a symbolic link: name the file itself"
        } else {
            "a device, FIFO or socket"
        };
        return Err(ModelError::NotAFile {
            key: b.key,
            path: shown.to_owned(),
            kind,
        });
    }
    let too_large = || ModelError::TooLarge {
        key: b.key,
        path: shown.to_owned(),
        limit: b.limit,
        why: b.why,
    };
    if meta.len() > b.limit {
        return Err(too_large());
    }
    let mut flags = libc::O_NONBLOCK;
    if !b.follow_links {
        flags |= libc::O_NOFOLLOW; // nor a link put there in between
    }
    let mut text = Vec::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(io)?
        .take(b.limit + 1)
        .read_to_end(&mut text)
        .map_err(io)?;
    if text.len() as u64 > b.limit {
        return Err(too_large());
    }
    Ok(text)
}

/// Coefficient of determination, as sklearn's `r2_score`.
pub fn r2_score(y: ndarray::ArrayView1<f64>, pred: ndarray::ArrayView1<f64>) -> f64 {
    let mean = y.mean().unwrap_or(0.0);
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
    1.0 - ss_res / ss_tot
}

/// Mean absolute error.
pub fn mean_absolute_error(y: ndarray::ArrayView1<f64>, pred: ndarray::ArrayView1<f64>) -> f64 {
    y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64
}
