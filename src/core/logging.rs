//! Logging: `tracing` to stderr and to `logs/pipeline.log`, and the panic
//! policy.
//!
//! The file writer runs on its own thread and never drops lines (it blocks
//! instead), unless the disk fails for more than a MiB of them or the name
//! `pipeline.log` holds something other than a regular file (a link or FIFO
//! planted after a rotation, never followed): then it says so once on
//! stderr and counts the lines it drops in [`pipeline_log_dropped`], and
//! the run exits 1 with the count. The level
//! comes from `logs.level`, or `RUST_LOG` when set. Colour (ANSI escapes)
//! only on stderr, only when it is a terminal and `NO_COLOR` is unset or
//! empty (no-color.org): `2>run.log` and the file log stay plain text.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;

use tracing_appender::non_blocking::WorkerGuard;

use crate::core::append_file::Rotation;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, EnvFilter};

/// Lines of `pipeline.log` that could not be written. One counter per
/// process, as the subscriber that writes the log is: the writer counts in
/// it from the start, and the registry (`modelwatch_pipeline_log_dropped_total`)
/// and the exit line read it.
pub fn pipeline_log_dropped() -> Counter {
    static DROPPED: LazyLock<Counter> = LazyLock::new(Counter::default);
    DROPPED.clone()
}

/// Keeps the file writer alive; drop it last so the last lines are written.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the subscriber. `file` is the pipeline log (appended, bounded
/// and reopened like the other logs), if any.
pub fn init(level: &str, file: Option<(&Path, Rotation)>) -> std::io::Result<LogGuard> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(level).map(quiet_libraries))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let stderr = fmt::layer()
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let (file_layer, guard) = match file {
        Some((path, rotation)) => {
            let f =
                crate::core::append_file::LogWriter::open(path, rotation, pipeline_log_dropped())
                    .map_err(|e| match e {
                    crate::core::append_file::AppendError::Io { source, .. } => source,
                    other => std::io::Error::other(other.to_string()),
                })?;
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(f);
            let layer = fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init();
    Ok(LogGuard(guard))
}

/// Colour on a terminal, unless `NO_COLOR` holds anything (no-color.org:
/// any non-empty value, whatever it is, turns colour off).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// actix-server's own lifecycle lines (workers starting and stopping) are
/// noise at `info`; its warnings and errors still show. actix-http logs an
/// ERROR line per malformed request a client sends: the client gets its
/// 4xx, and the log must not be a way to fill the disk, so those are off.
/// lapin logs every connection-level error itself ("Connection error"),
/// also the benign race of a channel still closing when its connection
/// closes at the end of a replay (an ERROR line in a clean run, CI), and
/// hands the same error to the call or consumer that meets it, which the
/// program reports with its context: that target is off. `RUST_LOG`
/// (e.g. `RUST_LOG=info,lapin=debug`) still shows it.
fn quiet_libraries(filter: EnvFilter) -> EnvFilter {
    ["actix_server=warn", "actix_http=off", "lapin::channels=off"]
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, |f, d| f.add_directive(d))
}

/// A panic anywhere ends the process with [`crate::core::exit::FATAL`]: actix does
/// not restart a panicked actor (it just disappears), and running on without
/// it would lose data silently. The outer supervisor restarts the process.
pub fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic; exiting so that the process is restarted");
        default(info);
        std::process::exit(crate::core::exit::FATAL);
    }));
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(true, Some("0".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("".into())));
    }
}
