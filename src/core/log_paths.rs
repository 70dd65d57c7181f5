//! The files a run writes, all in `logs.dir` ([`LogPaths`]), how a log is
//! opened for appending (a torn last line repaired and said), and the
//! folder's lock (one writer per logs dir).
//!
//! Vocabulary rather than wiring: the pipeline, the monitor's files and
//! `replay --rebuild` open the same files the same way.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::core::append_file::{AppendFile, Rotation};

/// The files a run writes, all in `logs.dir`.
#[derive(Debug, Clone)]
pub struct LogPaths {
    pub dir: PathBuf,
    pub metric_csv: PathBuf,
    pub labels: PathBuf,
    pub pipeline_log: PathBuf,
    pub plot_png: PathBuf,
    /// The metric's waiting halves, in the split layout.
    pub pending_journal: PathBuf,
    /// The address the HTTP server got (useful with port 0).
    pub http_addr: PathBuf,
    /// The telemetry registry at exit, in the OpenMetrics text format.
    pub final_metrics: PathBuf,
    /// The monitor's closed windows, its alert events, its picture.
    pub over_time_csv: PathBuf,
    pub alerts: PathBuf,
    pub over_time_png: PathBuf,
    /// How the appended logs are bounded and reopened (`logs.max_bytes`,
    /// `logs.keep`, SIGHUP); none unless [`LogPaths::with_rotation`].
    pub rotation: Rotation,
}

impl LogPaths {
    pub fn new(dir: &Path) -> LogPaths {
        LogPaths {
            dir: dir.to_owned(),
            metric_csv: dir.join("metric_log.csv"),
            labels: dir.join("labels_log.txt"),
            pipeline_log: dir.join("pipeline.log"),
            plot_png: dir.join("error_distribution.png"),
            pending_journal: dir.join("pending_halves.journal"),
            http_addr: dir.join("http.addr"),
            final_metrics: dir.join("final_metrics.txt"),
            over_time_csv: dir.join("metrics_over_time.csv"),
            alerts: dir.join("alerts.jsonl"),
            over_time_png: dir.join("error_over_time.png"),
            rotation: Rotation::default(),
        }
    }

    /// Bounds and reopens the logs opened through these paths.
    pub fn with_rotation(mut self, rotation: Rotation) -> LogPaths {
        self.rotation = rotation;
        self
    }

    /// Opens one of these logs for appending (see [`open_log`]), with the
    /// rotation.
    pub fn open_log(&self, path: &Path, header: Option<&str>) -> anyhow::Result<AppendFile> {
        Ok(open_log(path, header)?.with_rotation(self.rotation.clone()))
    }

    /// Creates the folder; an error names it.
    pub fn create_dir(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("logs.dir {}: cannot create", self.dir.display()))
    }
}

/// Takes the logs dir's lock (`.modelwatch.lock`, an exclusive `flock`
/// released when the process ends, even by `kill -9`); held by another
/// process, it is bad configuration (exit 2) naming the folder.
pub fn lock_logs_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join(".modelwatch.lock");
    // A link planted there is not followed, a FIFO not waited on.
    let file = crate::core::append_file::open_regular(&path, false)
        .with_context(|| format!("logs.dir: cannot create {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd as _;
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            anyhow::bail!(
                "logs.dir {}: in use by another modelwatch process (a run with the metric role or a replay --rebuild; one writer per logs dir: give each its own folder)",
                dir.display()
            );
        }
    }
    Ok(file)
}

/// Opens one log file for appending, logging a repaired torn line.
pub fn open_log(path: &Path, header: Option<&str>) -> anyhow::Result<AppendFile> {
    let (file, report) = AppendFile::open(path, header)?;
    if report.repaired_bytes > 0 {
        tracing::warn!(
            bytes = report.repaired_bytes,
            file = %path.display(),
            "cut a torn last line left by an earlier crash"
        );
    }
    Ok(file)
}
