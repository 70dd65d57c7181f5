//! `replay --rebuild DIR`: the metric's and the monitor's files made again
//! from the history, with the live run's own code, so they equal what a
//! live run wrote.
//!
//! - `metric_log.csv` from the `metrics` messages: the same header and
//!   opening (a torn last line repaired, the header only on a new file),
//!   the same rows ([`crate::metric::log_format::write_metric_rows`] over
//!   [`MetricRecord::join`]), the same dedup by id of the bridge's resends
//!   as the metric of the split layout ([`RecentIds`] of
//!   `metric.dedup_window`). The stream holds the rows in the order the
//!   metric wrote them, so the rebuilt CSV equals the live one row for row.
//! - `labels_log.txt` from the `y_true` and `y_pred` messages, one line per
//!   message ([`crate::metric::log_format::write_label_line`]), deduplicated by id
//!   the same way; the time is the message's AMQP `timestamp` (when the
//!   bridge took it; the live file has the time the metric received it,
//!   so a live run's `labels_log.txt` is not a rebuild's and is refused:
//!   its last line is compared whole with the line made for it).
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
//! Resumable and idempotent: the rebuild's files are a function of the
//! history, written in order, so a file of the folder that holds `n` rows
//! (after its torn last line is cut) holds this history's first `n`: they
//! are made again and not written ([`Held`], checked at the file's last
//! row). The monitor runs from the history's first row every time (its
//! windows, drift and alert states depend on every row before) and writes
//! only the windows and events past those its files hold. So a rebuild
//! stopped or killed at any point and run again ends with the files of
//! one uninterrupted rebuild, and one run again on a finished folder
//! writes nothing.
//!
//! More outputs plug in through [`RecordSink`], added with
//! [`Rebuild::with_sink`], fed every new row in order and every feature
//! vector.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;

use super::reader::Entry;
use crate::config::Settings;
use crate::core::append_file::AppendFile;
use crate::core::data::{FeatureVector, N_FEATURES};
use crate::core::log_paths::{open_log, LogPaths};
use crate::core::messages::{Features, Kind, MetricRecord, Scored};
use crate::core::schema::WireSchema;
use crate::metric::join::RecentIds;
use crate::metric::log_format::{
    read_metric_log, write_label_line, write_metric_rows, METRIC_HEADER,
};
use crate::model::baseline::Baseline;
use crate::model::load_or_fit_model;
use crate::monitor::engine::Monitor;
use crate::monitor::files::{self, MonitorFiles, Written};
use crate::monitor::log::LastRow;
use crate::monitor::over_time::OverTime;
use crate::plot::histogram::ErrorHistogram;
use crate::plot::render::{render_png, PlotSpec};

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
    /// A classifier's features with its probabilities (the `scored`
    /// messages of a run of the user's own data).
    fn scored(&mut self, _s: &Scored) -> anyhow::Result<()> {
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
///
/// The monitor always runs over every row of the history from window 1
/// (its windows, drift and alert states are what the rows before made
/// them), and writes only what its files do not hold yet: a rebuild into a
/// folder an earlier (finished, interrupted or killed) rebuild of the same
/// history wrote continues it, and the files end as one uninterrupted
/// rebuild writes them.
pub struct MonitorSink {
    monitor: Monitor,
    files: MonitorFiles,
    series: OverTime,
    baseline: Baseline,
    spec: PlotSpec,
    /// Feature ids seen lately (the stream may hold one twice).
    seen: RecentIds,
    /// What the files held at the start and is not written again.
    already: Written,
    /// The last row the files held: the window of that number made again
    /// must end at the same record (else the folder is another history's).
    last: Option<LastRow>,
    /// Lines `alerts.jsonl` held at the start.
    events_before: u64,
    paths: LogPaths,
    /// Windows closed by this rebuild (written or already there).
    pub windows: u64,
}

impl MonitorSink {
    /// Opens the monitor's files in `paths` as the live monitor does and
    /// counts what they hold: the rows and events made again by this
    /// rebuild that are already there are not written twice.
    pub fn open(
        settings: &Settings,
        paths: &LogPaths,
        model: &crate::model::Model,
        baseline: &Baseline,
    ) -> anyhow::Result<MonitorSink> {
        let opened = files::open_unresumed(&settings.monitor, paths, model, baseline)?;
        let events_before = count_lines(&paths.alerts)
            .with_context(|| format!("{}: cannot read", paths.alerts.display()))?;
        Ok(MonitorSink {
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
            already: Written {
                rows: opened.last.map_or(0, |l| l.seq),
                events: events_before,
            },
            last: opened.last,
            events_before,
            paths: paths.clone(),
            windows: 0,
        })
    }

    fn observe(&mut self, r: &MetricRecord, at_ms: u64) -> anyhow::Result<()> {
        let closed = self.monitor.observe_record(r, at_ms);
        self.write(closed)
    }

    /// Writes the closed windows the folder does not hold yet, after
    /// checking that a window it holds ends where this history's does.
    fn write(
        &mut self,
        closed: impl IntoIterator<Item = crate::monitor::engine::Closed>,
    ) -> anyhow::Result<()> {
        for c in closed {
            if let Some(last) = self.last.filter(|l| l.seq == c.report.seq) {
                if last.end_id != c.report.end_id {
                    anyhow::bail!(
                        "{}: window {} ends at id {} there and at id {} in this history: the folder holds another history's (or another --from's) windows; rebuild into an empty folder",
                        self.paths.over_time_csv.display(),
                        last.seq,
                        last.end_id,
                        c.report.end_id
                    );
                }
            }
            files::write_closed_after(&mut self.files, &mut self.series, &c, &mut self.already);
            self.windows += 1;
        }
        Ok(())
    }
}

/// Complete lines of the file at `path` (0 if there is none).
fn count_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let Some(mut file) = crate::monitor::log::open_regular(path)? else {
        return Ok(0);
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0u64;
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(lines),
            n => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
        }
    }
}

impl RecordSink for MonitorSink {
    fn record(&mut self, r: &MetricRecord, at_ms: u64) -> anyhow::Result<()> {
        self.observe(r, at_ms)?;
        if self.files.over_time_csv.pending_bytes() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn features(&mut self, f: &Features) -> anyhow::Result<()> {
        if !self.seen.contains(f.id) {
            self.seen.insert(f.id);
            let closed = self.monitor.observe_features(std::iter::once(f));
            self.write(closed)?;
        }
        Ok(())
    }

    fn scored(&mut self, s: &Scored) -> anyhow::Result<()> {
        if !self.seen.contains(s.id) {
            self.seen.insert(s.id);
            let closed = self.monitor.observe_scored(std::iter::once(s));
            self.write(closed)?;
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
        self.write(closed)?;
        // A folder that holds more than this history gives is not one this
        // history's rebuild wrote (or the history lost its oldest
        // segments since): its files and this rebuild's do not add up.
        let held = self.last.map_or(0, |l| l.seq);
        if self.windows < held || self.already.events > 0 {
            anyhow::bail!(
                "{} holds {held} windows and {} {} alert events, this history gives only {} windows and {} events: the folder holds another history's (or another --from's) files, or the stream dropped old segments since; rebuild into an empty folder",
                self.paths.over_time_csv.display(),
                self.paths.alerts.display(),
                self.events_before,
                self.windows,
                self.events_before - self.already.events,
            );
        }
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
    /// `metrics` messages whose id came before in the history (resent by
    /// the bridge after a lost connection): removed.
    pub duplicates: u64,
    /// Rows of the history already in the file (a resumed or repeated
    /// rebuild): not written again.
    pub already: u64,
    /// Lines written to `labels_log.txt`.
    pub labels: u64,
    /// `y_true` and `y_pred` messages whose id came before in the history:
    /// removed.
    pub label_duplicates: u64,
    /// Label lines of the history already in the file: not written again.
    pub labels_already: u64,
    /// Messages of a rebuilt key whose body is not the pipeline's.
    pub malformed: u64,
    /// Messages of another schema than the rebuild's (another model or
    /// data set, or the diabetes data's in a rebuild of your own): left out.
    pub other_schema: u64,
}

/// The files of a rebuild, open.
pub struct Rebuild {
    csv: AppendFile,
    labels: Option<AppendFile>,
    /// Ids of the history's rows taken so far (a resend is dropped).
    taken: RecentIds,
    truths: RecentIds,
    predictions: RecentIds,
    /// What `metric_log.csv` held at the start: its first rows are this
    /// history's first rows (checked at its last one), not written again.
    rows_held: Held<u64>,
    /// The same for `labels_log.txt` (its last line, whole: a line of
    /// another history or of a live run, whose times differ, is refused).
    labels_held: Held<Vec<u8>>,
    hist: ErrorHistogram,
    spec: PlotSpec,
    paths: LogPaths,
    sinks: Vec<Box<dyn RecordSink>>,
    /// The training baseline (the histogram's MAE line), with the monitor on.
    baseline: Option<Baseline>,
    /// The schema of a rebuild of the user's own data (`data.model`):
    /// messages of another are left out; features are read by name.
    schema: Option<WireSchema>,
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
        let lock = crate::core::log_paths::lock_logs_dir(&paths.dir)?;
        let csv = open_log(&paths.metric_csv, Some(METRIC_HEADER))?;
        let window = settings.metric.dedup_window;
        let mut labels_held = Held::default();
        let labels = match settings.metric.labels_log {
            true => {
                let file = open_log(&paths.labels, None)?;
                // The lines already there are not written again.
                labels_held = read_label_lines(&paths.labels)
                    .with_context(|| format!("reading the ids of {}", paths.labels.display()))?;
                Some(file)
            }
            false => None,
        };
        let mut hist = ErrorHistogram::new();
        let mut last_id = None;
        let rows_before = read_metric_log(&paths.metric_csv, |r| {
            last_id = Some(r.id);
            hist.add(r.absolute_error);
        })
        .with_context(|| format!("reading the ids of {}", paths.metric_csv.display()))?;
        let rows_held = Held {
            count: rows_before,
            last: last_id,
            seen: 0,
        };
        // The monitor's files, by the live monitor's code, judged against
        // the same reference as live (the artifact's model and baseline,
        // or the same in-memory fit).
        let model = match settings.data.is_own() {
            true => Some(own_model(settings)?),
            false => None,
        };
        let schema = model.as_ref().map(|m| m.wire_schema());
        let (baseline, sinks) = match settings.monitor.enabled {
            true => {
                let model = std::sync::Arc::new(match model {
                    Some(m) => crate::model::Model::Tabular(m),
                    None => {
                        crate::model::Model::Linear(load_or_fit_model(&settings.model.artifact)?)
                    }
                });
                let reference = crate::monitor::actor::Reference::of(model, &settings.monitor)?;
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
            taken: RecentIds::new(window),
            truths: RecentIds::new(window),
            predictions: RecentIds::new(window),
            rows_held,
            labels_held,
            hist,
            spec: PlotSpec {
                width: settings.plot.width,
                height: settings.plot.height,
                bins: settings.plot.bins,
            },
            paths,
            sinks,
            baseline,
            schema,
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
        let ours =
            crate::amqp::consume::decode::check_schema(self.schema.as_ref(), e.schema.as_deref());
        if ours.is_err() {
            self.report.other_schema += 1;
            return Ok(());
        }
        match e.key {
            "metrics" => self.row(e)?,
            "features" if self.schema.is_some() => self.named(e, false)?,
            "scored" => self.named(e, true)?,
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
        if self.taken.contains(id) {
            self.report.duplicates += 1;
            return Ok(());
        }
        let record = MetricRecord::join(id, y_true, y_pred);
        let values = [record.y_true, record.y_pred, record.absolute_error];
        if !values.iter().all(|v| v.is_finite()) {
            // write_metric_rows leaves such a record out: so do the others.
            self.report.malformed += 1;
            return Ok(());
        }
        self.taken.insert(id);
        if self.rows_held.take(|| id, &self.paths.metric_csv)? {
            // Written by an earlier rebuild into this folder: the monitor
            // still takes it in (it makes its windows again from the first
            // row), the CSV and the histogram have it.
            self.report.already += 1;
        } else {
            write_metric_rows(std::slice::from_ref(&record), self.csv.buffer());
            self.hist.add(record.absolute_error);
            self.report.rows += 1;
        }
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
            x: FeatureVector::from_elem(0.0, N_FEATURES),
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

    /// A message of the rebuild's schema: features by column name, or
    /// (`scored`) a classifier's with its probabilities, read as the
    /// split layout's consumers read them. A classifier's monitor takes
    /// the scored ones, another the features ([`Rebuild::features`]).
    fn named(&mut self, e: &Entry, scored: bool) -> anyhow::Result<()> {
        let Some(schema) = &self.schema else {
            self.report.malformed += 1;
            return Ok(());
        };
        if self.sinks.is_empty() || scored != schema.classes.is_some() {
            return Ok(());
        }
        let (Some(id), Some(obj)) = (e.id, e.body.as_object()) else {
            self.report.malformed += 1;
            return Ok(());
        };
        use crate::amqp::consume::decode::Decode;
        if scored {
            let Ok(s) = Scored::from_message(id, obj, Some(schema)) else {
                self.report.malformed += 1;
                return Ok(());
            };
            for sink in &mut self.sinks {
                sink.scored(&s)?;
            }
        } else {
            let Ok(f) = Features::from_message(id, obj, Some(schema)) else {
                self.report.malformed += 1;
                return Ok(());
            };
            for sink in &mut self.sinks {
                sink.features(&f)?;
            }
        }
        Ok(())
    }

    fn label(&mut self, e: &Entry, kind: Kind) -> anyhow::Result<()> {
        if self.labels.is_none() {
            return Ok(());
        }
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
        // The line this rebuild writes for the message, compared whole with
        // the file's last one (its time too: a live run's lines have the
        // time the metric received them, to the microsecond).
        let line = || {
            let mut line = Vec::with_capacity(96);
            write_label_line(&mut line, &time, kind, id, value);
            line.pop(); // the newline
            line
        };
        if self.labels_held.take(line, &self.paths.labels)? {
            self.report.labels_already += 1;
            return Ok(());
        }
        let Some(labels) = &mut self.labels else {
            return Ok(());
        };
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
        self.rows_held.all_seen(&self.paths.metric_csv, "rows")?;
        self.labels_held.all_seen(&self.paths.labels, "lines")?;
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

/// What a file of the folder held when the rebuild started: its first
/// `count` rows (or lines) are the first ones this history gives, not
/// written again. Counted, not looked up by id, so that a history of any
/// length is resumed exactly, in constant memory: the rebuild writes the
/// same rows in the same order every time. `last` (the file's last row)
/// checks it: the history's row of that number must be the same one.
#[derive(Debug, Clone)]
struct Held<T> {
    count: u64,
    last: Option<T>,
    /// Rows of the history taken so far against `count`.
    seen: u64,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held {
            count: 0,
            last: None,
            seen: 0,
        }
    }
}

impl<T: PartialEq + Shown> Held<T> {
    /// Takes the history's next row, `row()` (made only for the file's
    /// last one, the one compared): true if the file holds it already; an
    /// error if the file's last row is not the history's.
    fn take(&mut self, row: impl FnOnce() -> T, path: &Path) -> anyhow::Result<bool> {
        if self.seen >= self.count {
            return Ok(false);
        }
        self.seen += 1;
        if self.seen == self.count {
            let row = row();
            if self.last.as_ref() != Some(&row) {
                anyhow::bail!(
                    "{}: its row {} is {}, this history's is {}: the folder holds another history's (or another --from's, or a live run's) files; rebuild into an empty folder",
                    path.display(),
                    self.count,
                    self.last.as_ref().map_or("unreadable".to_owned(), Shown::shown),
                    row.shown()
                );
            }
        }
        Ok(true)
    }

    /// An error if the file held more than the history gave.
    fn all_seen(&self, path: &Path, what: &str) -> anyhow::Result<()> {
        if self.seen < self.count {
            anyhow::bail!(
                "{}: holds {} {what}, this history gives only {}: the folder holds another history's (or another --from's) files, or the stream dropped old segments since; rebuild into an empty folder",
                path.display(),
                self.count,
                self.seen
            );
        }
        Ok(())
    }
}

/// A row of a [`Held`] file, as an error message shows it.
trait Shown {
    fn shown(&self) -> String;
}

impl Shown for u64 {
    fn shown(&self) -> String {
        format!("id {self}")
    }
}

/// A label line (without its newline), quoted.
impl Shown for Vec<u8> {
    fn shown(&self) -> String {
        format!("{:?}", String::from_utf8_lossy(self))
    }
}

/// What an existing `labels_log.txt` holds: its complete lines, and the
/// last one, whole, without its newline (`None` if longer than a label
/// line can be). A missing file holds nothing; an unfinished last line
/// (cut at open) is not counted.
fn read_label_lines(path: &Path) -> std::io::Result<Held<Vec<u8>>> {
    use std::io::{BufRead, Read};
    let mut held = Held::default();
    let Some(file) = crate::monitor::log::open_regular(path)? else {
        return Ok(held);
    };
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        // A label line is short: only the start of a longer one is kept
        // (bounded memory), and the rest is read past.
        let read = (&mut reader).take(4096).read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(held);
        }
        if line.last() != Some(&b'\n') {
            let mut rest = Vec::new();
            if reader.read_until(b'\n', &mut rest)? == 0 || rest.last() != Some(&b'\n') {
                return Ok(held); // an unfinished last line
            }
            held.count += 1;
            held.last = None;
            continue;
        }
        held.count += 1;
        let last = held.last.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(&line[..line.len() - 1]); // without the newline
    }
}

/// The model of a rebuild of the user's own data: the artifact of
/// `data.model` (`--model`), which the run's messages were made with; a
/// model fitted at start cannot be made again without its data.
fn own_model(settings: &Settings) -> anyhow::Result<crate::model::tabular::TabularModel> {
    let path = &settings.data.model;
    if path.as_os_str().is_empty() {
        anyhow::bail!(
            "data.model (--model): a rebuild of a run of your own data (data.path) needs the artifact the run used (`modelwatch train --data` writes one)"
        );
    }
    let m = crate::model::tabular::TabularModel::load(path).context("data.model (--model)")?;
    if m.target.name != settings.data.target {
        anyhow::bail!(
            "data.target (--target) is {}, but the model {} predicts {}",
            crate::core::table::quoted(&settings.data.target),
            crate::core::text::shown_path(path),
            crate::core::table::quoted(&m.target.name)
        );
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_rows_are_skipped_and_checked_at_the_last() {
        let path = Path::new("metric_log.csv");
        let mut held = Held {
            count: 2,
            last: Some(20u64),
            seen: 0,
        };
        assert!(held.take(|| 10, path).unwrap());
        assert!(held.take(|| 20, path).unwrap());
        assert!(!held.take(|| 30, path).unwrap());
        held.all_seen(path, "rows").unwrap();

        let mut other = Held {
            count: 2,
            last: Some(20u64),
            seen: 0,
        };
        other.take(|| 10, path).unwrap();
        let e = other.take(|| 21, path).unwrap_err().to_string();
        assert!(
            e.contains("metric_log.csv") && e.contains("another history"),
            "{e}"
        );
        let short = Held {
            count: 3,
            last: Some(1u64),
            seen: 1,
        };
        assert!(short.all_seen(path, "rows").is_err());
    }

    #[test]
    fn label_lines_read_back_as_written() {
        let mut out = Vec::new();
        write_label_line(
            &mut out,
            "2026-12-02T00:00:00.000001Z",
            Kind::YPred,
            17,
            2.5,
        );
        write_label_line(
            &mut out,
            "2026-12-02T00:00:00.000002Z",
            Kind::YTrue,
            18,
            265.0,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels_log.txt");
        out.extend_from_slice(b"2026-12-02T00:00:00Z y_true id=19 val"); // torn
        std::fs::write(&path, &out).unwrap();
        let held = read_label_lines(&path).unwrap();
        let last = b"2026-12-02T00:00:00.000002Z y_true id=18 value=265".to_vec();
        assert_eq!((held.count, held.last.as_ref()), (2, Some(&last)));

        // The last line is compared whole: the same kind, id and value at
        // another time (a live run's line, to the microsecond, where the
        // rebuild writes whole seconds) is not this history's line.
        let live = b"2026-12-02T00:00:00.000002Z y_true id=18 value=265".to_vec();
        let rebuilt = b"2026-12-02T00:00:00.000000Z y_true id=18 value=265".to_vec();
        let mut same = held.clone();
        assert!(same.take(Vec::new, &path).unwrap());
        assert!(same.take(|| live.clone(), &path).unwrap());
        let mut other = held.clone();
        other.take(Vec::new, &path).unwrap();
        let e = other.take(|| rebuilt, &path).unwrap_err().to_string();
        assert!(
            e.contains("labels_log.txt") && e.contains("000000Z") && e.contains("000002Z"),
            "{e}"
        );
        assert_eq!(read_label_lines(&dir.path().join("none")).unwrap().count, 0);
    }
}
