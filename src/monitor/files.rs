//! The monitor with its files, as the live actor and `replay --rebuild`
//! both use it: one place that opens a [`Monitor`] where the files of a
//! logs folder say an earlier run stopped, and one that writes a closed
//! window (its row of `metrics_over_time.csv`, its alert events in
//! `alerts.jsonl` and as WARN lines, the points of `error_over_time.png`).
//!
//! Why shared: a rebuilt `metrics_over_time.csv` must equal the live one,
//! so the rebuild runs this code, not a second copy of it. What only a
//! live process does (telemetry, the dashboard's board, the exchange)
//! stays in `monitor::actor`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::drift::{DriftConfig, DriftDetector};
use super::engine::{Closed, Monitor};
use super::log::{last_row, write_event, write_row, LastRow, Resumed};
use super::over_time::OverTime;
use crate::config::MonitorSettings;
use crate::core::append_file::AppendFile;
use crate::core::log_paths::LogPaths;
use crate::core::messages::MetricRecord;
use crate::model::baseline::Baseline;
use crate::model::Model;

/// Points of `error_over_time.png` kept (neighbours merge when full).
pub const SERIES_POINTS: usize = 2000;

/// Rows of `metric_log.csv` taken in at a time when a monitor restores.
const RESTORE_CHUNK: usize = 4096;

/// The monitor's outputs.
pub struct MonitorFiles {
    pub over_time_csv: AppendFile,
    pub alerts: AppendFile,
    pub png: PathBuf,
    /// The feature columns, in the order of the CSV's drift columns.
    pub names: Vec<&'static str>,
    /// The CSV's optional columns: a classifier's figures, the missing
    /// shares of the user's own data.
    pub layout: super::log::Layout,
}

/// A monitor opened in a logs folder.
pub struct Opened {
    pub monitor: Monitor,
    pub files: MonitorFiles,
    /// The last closed window of an earlier run (the monitor continues
    /// after it), if `metrics_over_time.csv` has one.
    pub last: Option<LastRow>,
}

/// Builds the monitor for `settings` against `model` (the drift
/// reference) and `baseline`, opens (creating, repairing) its files in
/// `paths`, and continues the numbering after their last row.
pub fn open(
    settings: &MonitorSettings,
    paths: &LogPaths,
    model: &Model,
    baseline: &Baseline,
) -> anyhow::Result<Opened> {
    let mut opened = open_unresumed(settings, paths, model, baseline)?;
    if let Some(last) = opened.last {
        opened.monitor.resume(last.seq, last.records_total);
    }
    Ok(opened)
}

/// [`open`] without continuing the numbering: the monitor starts at
/// window 1 whatever the files hold (`last` says what they hold). A
/// rebuild runs the monitor over the whole history again and writes only
/// what its files do not hold yet ([`write_closed_after`]).
pub fn open_unresumed(
    settings: &MonitorSettings,
    paths: &LogPaths,
    model: &Model,
    baseline: &Baseline,
) -> anyhow::Result<Opened> {
    let drift = DriftConfig {
        p_value: settings.drift_p_value,
        drift_share: settings.drift_share,
    };
    let detector =
        DriftDetector::for_model(model, drift).context("building the drift reference")?;
    // A rule whose threshold this baseline makes impossible is bad
    // configuration, named like the config check names it.
    let monitor = Monitor::new(settings, baseline, detector)
        .map_err(|e| anyhow::anyhow!("monitor.rules[{}].{}: {}", e.index, e.field, e.problem))?;
    for rule in monitor.describe_rules() {
        tracing::info!("monitor: rule {rule}");
    }
    // A FIFO, a device or a directory cannot be the monitor's log (opening
    // a FIFO would wait for a writer for ever).
    for path in [&paths.over_time_csv, &paths.alerts] {
        super::log::open_regular(path)
            .with_context(|| format!("{}: cannot be the monitor's log", path.display()))?;
    }
    // Just after a rotation the file holds only its header: the last
    // window is the newest old file's last row.
    let mut last = None;
    let newest_old = paths.rotation.old_files(&paths.over_time_csv).pop();
    for path in [Some(&paths.over_time_csv), newest_old.as_ref()]
        .into_iter()
        .flatten()
    {
        last = last_row(path).with_context(|| format!("{}: cannot read", path.display()))?;
        if last.is_some() {
            break;
        }
    }
    let names = monitor.feature_names().to_vec();
    let layout = super::log::Layout {
        classifier: baseline.classification.is_some(),
        missing: matches!(model, Model::Tabular(_)),
    };
    let header = super::log::header(&names, layout);
    let files = MonitorFiles {
        over_time_csv: paths.open_log(&paths.over_time_csv, Some(&header))?,
        alerts: paths.open_log(&paths.alerts, None)?,
        png: paths.over_time_png.clone(),
        names,
        layout,
    };
    Ok(Opened {
        monitor,
        files,
        last,
    })
}

/// Hands `take` the rows of `metric_csv` written after `last`'s window, in
/// chunks (see [`Resumed`]), so that every record is in exactly one window
/// across restarts (and, in the split layout, `kill -9`). Logs what it did.
pub fn restore_after(
    metric_csv: &Path,
    last: LastRow,
    mut take: impl FnMut(&[MetricRecord]),
) -> anyhow::Result<()> {
    let mut chunk = Vec::with_capacity(RESTORE_CHUNK);
    let found = super::log::records_after(metric_csv, last.end_id, |r| {
        chunk.push(*r);
        if chunk.len() == chunk.capacity() {
            take(&chunk);
            chunk.clear();
        }
    })
    .with_context(|| format!("reading {}", metric_csv.display()))?;
    take(&chunk);
    match found {
        Resumed::AfterItsRow(n) => tracing::info!(
            window = last.seq,
            records = n,
            "monitor: continuing after the last closed window; took in the rows written after it"
        ),
        Resumed::LaterIds(n) => tracing::warn!(
            window = last.seq,
            end_id = last.end_id,
            records = n,
            "monitor: the last window's record is not in metric_log.csv (rows lost by a crash before the metric flushed them); took in the rows with later ids"
        ),
    }
    Ok(())
}

/// What the monitor's files already hold, counted from their start: a
/// rebuild makes those rows and events again and must not write them
/// twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows of `metrics_over_time.csv` (windows).
    pub rows: u64,
    /// Lines of `alerts.jsonl` (events).
    pub events: u64,
}

/// Writes one closed window: its row, its alert events (a WARN line for a
/// fire, an INFO line for a resolve, a line of `alerts.jsonl`), and its
/// points in `series` (events first, then the window).
pub fn write_closed(files: &mut MonitorFiles, series: &mut OverTime, c: &Closed) {
    write_closed_after(files, series, c, &mut Written::default());
}

/// [`write_closed`] for a monitor that makes again what its files hold:
/// the first `already.rows` rows and `already.events` events are not
/// written (nor logged) but counted down; `series` gets every point.
pub fn write_closed_after(
    files: &mut MonitorFiles,
    series: &mut OverTime,
    c: &Closed,
    already: &mut Written,
) {
    match already.rows {
        0 => write_row(
            files.over_time_csv.buffer(),
            &c.report,
            c.records_total,
            &files.names,
            files.layout,
        ),
        _ => already.rows -= 1,
    }
    for e in &c.events {
        if already.events > 0 {
            already.events -= 1;
            series.push_event(e);
            continue;
        }
        if e.state == "fired" {
            tracing::warn!(
                rule = %e.rule,
                metric = %e.metric,
                value = e.value,
                threshold = e.threshold,
                window = e.seq,
                "alert fired: {}",
                e.message
            );
        } else {
            tracing::info!(rule = %e.rule, metric = %e.metric, value = e.value, window = e.seq, "alert resolved: {}", e.message);
        }
        write_event(files.alerts.buffer(), e);
        series.push_event(e);
    }
    series.push_window(&c.report);
}
