//! `replay --rebuild DIR`: the metric's and the monitor's files made again
//! from the history, with the live run's own code, so they equal what a
//! live run wrote.
//!
//! - `metric_log.csv` from the `metrics` messages: the same header and
//!   opening (a torn last line repaired, the header only on a new file),
//!   the same rows ([`crate::log_format::write_metric_rows`] over
//!   [`MetricRecord::join`]), the same dedup by id as the metric of the
//!   split layout ([`RecentIds`] of `metric.dedup_window`, seeded with the
//!   ids already in the file, so a resumed rebuild never writes a row
//!   twice). The stream holds the rows in the order the metric wrote them,
//!   so the rebuilt CSV equals the live one row for row.
//! - `labels_log.txt` from the `y_true` and `y_pred` messages, one line per
//!   message ([`crate::log_format::write_label_line`]), deduplicated by id
//!   the same way; the time is the message's AMQP `timestamp` (when the
//!   bridge took it; the live file has the time the metric received it).
//! - `error_distribution.png`: the histogram of the rows
//!   ([`ErrorHistogram`], filled from the existing CSV first, as the plot
//!   actor does), rendered once at the end by [`render_png`], with the
//!   baseline MAE line when `monitor.enabled` (as the live one).
//! - With `monitor.enabled`, `metrics_over_time.csv`, `alerts.jsonl` and
//!   `error_over_time.png` by the live monitor's code ([`MonitorSink`]:
//!   [`crate::monitor::files`] and [`Monitor`]), fed the new rows in order
//!   and the `features` messages (deduplicated by id, matched to windows by
//!   id as live). The period window's clock is the message's AMQP
//!   `timestamp`, so the `end_time` and `period_*` columns differ from the
//!   live run's (they depend on the clock); every other column is equal.
//!
//! More outputs plug in through [`RecordSink`], added with
//! [`Rebuild::with_sink`], fed every new row in order and every feature
//! vector.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;

use super::reader::Entry;
use crate::append_file::AppendFile;
use crate::config::Settings;
use crate::data::N_FEATURES;
use crate::histogram::ErrorHistogram;
use crate::join::RecentIds;
use crate::log_format::{read_metric_log, write_label_line, write_metric_rows, METRIC_HEADER};
use crate::messages::{Features, Kind, MetricRecord};
use crate::monitor::engine::Monitor;
use crate::monitor::files::{self, MonitorFiles};
use crate::monitor::over_time::OverTime;
use crate::monitor::report::Baseline;
use crate::pipeline::{load_or_fit_model, open_log, LogPaths};
use crate::render::{render_png, PlotSpec};

/// Buffered bytes that trigger a write (as the metric's eager flush).
const FLUSH_BYTES: usize = 256 * 1024;

/// Another output of a rebuild, fed every new (deduplicated) row in order,
/// with when the bridge took it (ms since the epoch), and every feature
/// vector of the history (possibly twice: the bridge is at least once).
pub trait RecordSink {
    fn record(&mut self, r: &MetricRecord, at_ms: u64) -> anyhow::Result<()>;
    fn features(&mut self, _f: &Features) -> anyhow::Result<()> {
        Ok(())
    }
    /// Writes what is buffered (before an offset is saved).
    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Called once at the end: write what is left.
    fn finish(&mut self) -> anyhow::Result<()>;
}

/// The monitor's files rebuilt: the live monitor's code over the history.
pub struct MonitorSink {
    monitor: Monitor,
    files: MonitorFiles,
    series: OverTime,
    baseline: Baseline,
    spec: PlotSpec,
    /// Feature ids seen lately (the stream may hold one twice).
    seen: RecentIds,
    /// Windows closed by this rebuild.
    pub windows: u64,
}

impl MonitorSink {
    /// Opens the monitor's files in `paths` as the live monitor does (a
    /// resumed rebuild continues after their last row and takes in the
    /// rows of `metric_log.csv` written after it).
    pub fn open(
        settings: &Settings,
        paths: &LogPaths,
        model: &crate::model::LinearModel,
        baseline: &Baseline,
    ) -> anyhow::Result<MonitorSink> {
        let opened = files::open(&settings.monitor, paths, model, baseline)?;
        let mut sink = MonitorSink {
            monitor: opened.monitor,
            files: opened.files,
            series: OverTime::new(files::SERIES_POINTS),
            baseline: baseline.clone(),
            spec: PlotSpec {
                width: settings.plot.width,
                height: settings.plot.height,
                bins: settings.plot.bins,
            },
            seen: RecentIds::new(4 * settings.monitor.window),
            windows: 0,
        };
        if let Some(last) = opened.last {
            let now = std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            files::restore_after(&paths.metric_csv, last, |chunk| {
                for r in chunk {
                    sink.observe(r, now);
                }
            })?;
        }
        Ok(sink)
    }

    fn observe(&mut self, r: &MetricRecord, at_ms: u64) {
        let closed = self.monitor.observe_record(r, at_ms);
        self.write(closed);
    }

    fn write(&mut self, closed: impl IntoIterator<Item = crate::monitor::engine::Closed>) {
        for c in closed {
            files::write_closed(&mut self.files, &mut self.series, &c);
            self.windows += 1;
        }
    }
}

impl RecordSink for MonitorSink {
    fn record(&mut self, r: &MetricRecord, at_ms: u64) -> anyhow::Result<()> {
        self.observe(r, at_ms);
        if self.files.over_time_csv.pending_bytes() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn features(&mut self, f: &Features) -> anyhow::Result<()> {
        if !self.seen.contains(f.id) {
            self.seen.insert(f.id);
            let closed = self.monitor.observe_features(std::iter::once(f));
            self.write(closed);
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.files.over_time_csv.flush()?;
        self.files.alerts.flush()?;
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        // Windows still waiting for features close with what they have.
        let closed = self.monitor.close_sealed();
        self.write(closed);
        self.files.over_time_csv.flush()?;
        self.files.alerts.flush()?;
        self.files.over_time_csv.sync()?;
        self.files.alerts.sync()?;
        self.series
            .render(Some(&self.baseline), self.spec, &self.files.png)?;
        tracing::info!(
            windows = self.windows,
            "rebuild: metrics_over_time.csv, alerts.jsonl and error_over_time.png written by the monitor"
        );
        Ok(())
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Rows written to `metric_log.csv` by this rebuild.
    pub rows: u64,
    /// Rows already in the file when it started (a resumed rebuild).
    pub rows_before: u64,
    /// `metrics` messages whose id was already written (resent by the
    /// bridge after a lost connection, or read twice): removed.
    pub duplicates: u64,
    /// Lines written to `labels_log.txt`.
    pub labels: u64,
    /// `y_true` and `y_pred` messages whose id was already logged: removed.
    pub label_duplicates: u64,
    /// Messages of a rebuilt key whose body is not the pipeline's.
    pub malformed: u64,
}

/// The files of a rebuild, open.
pub struct Rebuild {
    csv: AppendFile,
    labels: Option<AppendFile>,
    written: RecentIds,
    truths: RecentIds,
    predictions: RecentIds,
    hist: ErrorHistogram,
    spec: PlotSpec,
    paths: LogPaths,
    sinks: Vec<Box<dyn RecordSink>>,
    /// The training baseline (the histogram's MAE line), with the monitor on.
    baseline: Option<Baseline>,
    report: RebuildReport,
    /// The folder's lock, held while rebuilding.
    _lock: std::fs::File,
}

impl Rebuild {
    /// Opens (creating) `dir` and its files as the live metric opens them.
    pub fn open(dir: &Path, settings: &Settings) -> anyhow::Result<Rebuild> {
        let paths = LogPaths::new(dir);
        paths.create_dir()?;
        // The folder of a running process is that process's: a rebuild
        // there would be a second writer of its files.
        let lock = crate::pipeline::lock_logs_dir(&paths.dir)?;
        let csv = open_log(&paths.metric_csv, Some(METRIC_HEADER))?;
        let labels = match settings.metric.labels_log {
            true => Some(open_log(&paths.labels, None)?),
            false => None,
        };
        let mut written = RecentIds::new(settings.metric.dedup_window);
        let mut hist = ErrorHistogram::new();
        let rows_before = read_metric_log(&paths.metric_csv, |r| {
            written.insert(r.id);
            hist.add(r.absolute_error);
        })
        .with_context(|| format!("reading the ids of {}", paths.metric_csv.display()))?;
        let window = settings.metric.dedup_window;
        // The monitor's files, by the live monitor's code, judged against
        // the same reference as live (the artifact's model and baseline,
        // or the same in-memory fit).
        let (baseline, sinks) = match settings.monitor.enabled {
            true => {
                let model = std::sync::Arc::new(load_or_fit_model(&settings.model.artifact)?);
                let reference = crate::actors::monitor::Reference::of(model, &settings.monitor)?;
                let sink =
                    MonitorSink::open(settings, &paths, &reference.model, &reference.baseline)
                        .context("opening the monitor's files")?;
                let sinks: Vec<Box<dyn RecordSink>> = vec![Box::new(sink)];
                (Some(reference.baseline), sinks)
            }
            false => (None, Vec::new()),
        };
        Ok(Rebuild {
            _lock: lock,
            csv,
            labels,
            written,
            truths: RecentIds::new(window),
            predictions: RecentIds::new(window),
            hist,
            spec: PlotSpec {
                width: settings.plot.width,
                height: settings.plot.height,
                bins: settings.plot.bins,
            },
            paths,
            sinks,
            baseline,
            report: RebuildReport {
                rows_before,
                ..Default::default()
            },
        })
    }

    /// Adds an output fed every new row (the monitor's `metrics_over_time.csv`).
    pub fn with_sink(mut self, sink: Box<dyn RecordSink>) -> Rebuild {
        self.sinks.push(sink);
        self
    }

    /// Takes one message of the history; keys it does not rebuild from
    /// (`monitor`, `alerts`: the monitor makes them again) are ignored.
    pub fn take(&mut self, e: &Entry) -> anyhow::Result<()> {
        match e.key {
            "metrics" => self.row(e)?,
            "features" => self.features(e)?,
            "y_true" => self.label(e, Kind::YTrue)?,
            "y_pred" => self.label(e, Kind::YPred)?,
            _ => {}
        }
        if self.csv.pending_bytes() >= FLUSH_BYTES {
            self.csv.flush()?;
        }
        if let Some(l) = &mut self.labels {
            if l.pending_bytes() >= FLUSH_BYTES {
                l.flush()?;
            }
        }
        Ok(())
    }

    fn row(&mut self, e: &Entry) -> anyhow::Result<()> {
        let (Some(id), Some(body)) = (e.id, e.body.as_object()) else {
            self.report.malformed += 1;
            return Ok(());
        };
        let num = |k: &str| body.get(k).and_then(|v| v.as_f64());
        let (Some(y_true), Some(y_pred)) = (num("y_true"), num("y_pred")) else {
            self.report.malformed += 1;
            return Ok(());
        };
        if self.written.contains(id) {
            self.report.duplicates += 1;
            return Ok(());
        }
        let record = MetricRecord::join(id, y_true, y_pred);
        if write_metric_rows(std::slice::from_ref(&record), self.csv.buffer()) > 0 {
            self.report.malformed += 1;
            return Ok(());
        }
        self.written.insert(id);
        self.hist.add(record.absolute_error);
        self.report.rows += 1;
        let at_ms = e.timestamp.unwrap_or(0).saturating_mul(1000);
        for s in &mut self.sinks {
            s.record(&record, at_ms)?;
        }
        Ok(())
    }

    fn features(&mut self, e: &Entry) -> anyhow::Result<()> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        let x = e.body.as_array().filter(|a| a.len() == N_FEATURES);
        let (Some(id), Some(x)) = (e.id, x) else {
            self.report.malformed += 1;
            return Ok(());
        };
        let mut f = Features {
            id,
            x: [0.0; N_FEATURES],
        };
        for (slot, v) in f.x.iter_mut().zip(x) {
            match v.as_f64() {
                Some(v) if v.is_finite() => *slot = v,
                _ => {
                    self.report.malformed += 1;
                    return Ok(());
                }
            }
        }
        for s in &mut self.sinks {
            s.features(&f)?;
        }
        Ok(())
    }

    fn label(&mut self, e: &Entry, kind: Kind) -> anyhow::Result<()> {
        let Some(labels) = &mut self.labels else {
            return Ok(());
        };
        let (Some(id), Some(value)) = (e.id, e.body.as_f64()) else {
            self.report.malformed += 1;
            return Ok(());
        };
        let seen = match kind {
            Kind::YTrue => &mut self.truths,
            _ => &mut self.predictions,
        };
        if seen.contains(id) {
            self.report.label_duplicates += 1;
            return Ok(());
        }
        seen.insert(id);
        let at = UNIX_EPOCH + Duration::from_secs(e.timestamp.unwrap_or(0));
        let time = humantime::format_rfc3339_micros(at).to_string();
        write_label_line(labels.buffer(), &time, kind, id, value);
        self.report.labels += 1;
        Ok(())
    }

    /// Writes what is buffered to the files (before an offset is saved).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.csv.flush()?;
        if let Some(l) = &mut self.labels {
            l.flush()?;
        }
        for s in &mut self.sinks {
            s.flush()?;
        }
        Ok(())
    }

    /// Writes and syncs the files, renders the picture, finishes the sinks.
    pub fn finish(mut self) -> anyhow::Result<RebuildReport> {
        self.csv.sync()?;
        if let Some(l) = &mut self.labels {
            l.sync()?;
        }
        for s in &mut self.sinks {
            s.finish()?;
        }
        render_png(
            &self.hist,
            self.spec,
            self.baseline.as_ref(),
            &self.paths.plot_png,
        )?;
        Ok(self.report)
    }
}
