//! MonitorActor: the thin shell around a [`Monitor`]: it is fed records
//! (and features) as an observer, writes each closed window to
//! `metrics_over_time.csv`, each alert event to `alerts.jsonl` and as a
//! WARN line, updates the telemetry and the dashboard's [`Board`], sends
//! both to the exchange (routing keys `monitor` and `alerts`) when the
//! bridge is on, and renders `error_over_time.png` every `plot.interval`
//! and at shutdown.
//!
//! It is an observer (see [`crate::core::fanout`]): it runs on the observers'
//! thread, its mailbox is bounded, and when it falls behind it misses
//! batches (counted in `modelwatch_observer_dropped_total{observer="monitor"}`)
//! rather than slow the pipeline. In the split layout it runs with the
//! metric role (where the records are) and gets features from a queue of
//! its own (with `--legacy-inbound`, the model forwards the features it
//! consumed there). Features are matched to records by id: one that never
//! matches is dropped and counted, never used; a window without any
//! features has no drift figures, counted and said in one WARN line. A
//! restart, even after `kill -9`, continues from the last row of
//! `metrics_over_time.csv` and takes in the rows of `metric_log.csv` written
//! after that window (see [`crate::monitor::log::records_after`]).
//!
//! With history on, it starts with what the stream holds (read before it
//! opens by the pipeline's restore step, `history::backfill::monitor_history`,
//! and handed in: no broker I/O in the constructor): the board and the
//! picture get the earlier windows and alert events, and a monitor without
//! logs of its own numbers its windows after the stream's last. Opening
//! and writing the files is [`crate::monitor::files`], shared with
//! `replay --rebuild`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use anyhow::Context as _;

use crate::config::{MonitorSettings, Settings};
use crate::core::backlog::Backlog;
use crate::core::ids::IdGenerator;
use crate::core::log_paths::LogPaths;
use crate::core::messages::{Batch, Features, MetricRecord, Published, Scored};
use crate::metric::join::RecentIds;
use crate::model::baseline::Baseline;
use crate::model::{LinearModel, Model};
use crate::monitor::baseline;
use crate::monitor::engine::{Closed, Monitor, SEALED_WAIT_MS};
use crate::monitor::files::{self, MonitorFiles, Opened};
use crate::monitor::log::LastRow;
use crate::monitor::over_time::{OverTime, MAX_EVENTS};
use crate::monitor::report::{AlertEvent, Board, MonitorHistory, WindowReport};
use crate::monitor::telemetry::MonitorMetrics;
use crate::plot::render::PlotSpec;
use crate::plot::renderer::{Draw, Renderer};

/// Windows closed at start kept for the bridge (it starts later).
const MAX_UNSENT: usize = 1000;
/// Batches that may wait in the mailbox before the sender's copies are dropped.
const MAILBOX: usize = 1024;
/// Most bytes of rows kept for a file that cannot be written (then they
/// are dropped and counted, and the monitor carries on).
const MAX_PENDING_BYTES: usize = 4 << 20;

/// What the monitor judges against: the model (its predictions on the
/// training data are the reference for prediction drift) and the training
/// baseline for windows of `monitor.window` rows.
#[derive(Clone)]
pub struct Reference {
    pub model: Arc<Model>,
    pub baseline: Baseline,
}

impl Reference {
    /// The reference of the model a run predicts with: the diabetes
    /// model's (see [`Reference::of_linear`]), or a model of the user's
    /// own data, whose artifact carries its bands (`monitor::reference`),
    /// made for windows of `monitor.window` rows.
    pub fn of(model: Arc<Model>, s: &MonitorSettings) -> anyhow::Result<Reference> {
        let baseline = match model.as_ref() {
            Model::Linear(m) => Reference::of_linear(m, s)?,
            Model::Tabular(m) => {
                let r = m.reference.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "the model has no reference for the monitor: write it with `modelwatch train --data`"
                    )
                })?;
                if r.window != s.window {
                    anyhow::bail!(
                        "monitor.window is {}, but the model's reference is for windows of {} rows: run with --monitor-window {} (monitor.window), or train again with --baseline-window {}",
                        s.window,
                        r.window,
                        r.window,
                        s.window
                    );
                }
                r.baseline(m.task == crate::model::tabular::Task::Classification)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
            }
        };
        tracing::info!(
            mae = baseline.mae.mean,
            mae_std = baseline.mae.std,
            rmse = baseline.rmse.mean,
            r2 = baseline.r2.mean,
            "monitor: baseline for windows of {} records",
            baseline.window
        );
        Ok(Reference { model, baseline })
    }

    /// The diabetes artifact's baseline when it is for `monitor.window`,
    /// else one computed now from the training residuals
    /// (`monitor.baseline_windows` bootstrap windows, a fixed seed: every
    /// process computes the same).
    fn of_linear(model: &LinearModel, s: &MonitorSettings) -> anyhow::Result<Baseline> {
        let baseline = match &model.baseline {
            Some(b) if b.window == s.window => {
                tracing::info!(
                    window = b.window,
                    windows = b.windows,
                    "monitor: the artifact's baseline"
                );
                b.clone()
            }
            other => {
                let started = std::time::Instant::now();
                let b = baseline::from_model(
                    model,
                    s.window,
                    s.baseline_windows,
                    baseline::DEFAULT_SEED,
                )
                .context("computing the training baseline")?;
                tracing::info!(
                    window = s.window,
                    windows = s.baseline_windows,
                    artifact_window = other.as_ref().map(|b| b.window),
                    took_ms = started.elapsed().as_millis() as u64,
                    "monitor: baseline computed from the training residuals (`modelwatch train` stores one for monitor.window)"
                );
                b
            }
        };
        Ok(baseline)
    }
}

/// Renders the picture once more, flushes the files, and answers what it
/// could not write. Sent at shutdown.
#[derive(Message)]
#[rtype(result = "MonitorShortfall")]
pub struct FinalFlush;

/// What the monitor could not write (the run must then exit 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorShortfall {
    /// Files with rows still unwritten at the end.
    pub unwritten: Vec<String>,
    /// Rows dropped because a file could not be written for too long.
    pub dropped_bytes: u64,
    /// Rows (windows and alert events) dropped, those bytes and what the
    /// end could not write.
    pub dropped_rows: u64,
}

impl MonitorShortfall {
    pub fn is_empty(&self) -> bool {
        self.unwritten.is_empty() && self.dropped_bytes == 0
    }
}

impl std::fmt::Display for MonitorShortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the monitor could not write everything: {} rows (windows and alert events) dropped, {} bytes; not written to: {}",
            self.dropped_rows,
            self.dropped_bytes,
            if self.unwritten.is_empty() {
                "nothing".to_owned()
            } else {
                self.unwritten.join(", ")
            }
        )
    }
}

/// Longest the last render may take at shutdown before the drain goes on
/// without it.
const FINAL_RENDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the monitor's closed windows and alert events go on the exchange
/// (routing keys `monitor` and `alerts`): the bridge's mailbox, wired by
/// the pipeline, so the monitor needs nothing of the AMQP side.
#[derive(Clone)]
pub struct ToExchange {
    pub windows: Recipient<Batch<Published<WindowReport>>>,
    pub events: Recipient<Batch<Published<AlertEvent>>>,
}

pub struct MonitorActor {
    monitor: Monitor,
    /// Its waiting features, for the inbound consumer of features.
    backlog: Arc<Backlog>,
    files: MonitorFiles,
    series: OverTime,
    baseline: Baseline,
    spec: PlotSpec,
    interval: Duration,
    board: Board,
    metrics: MonitorMetrics,
    bridge: Option<ToExchange>,
    ids: IdGenerator,
    rules: Vec<String>,
    /// Feature ids seen lately, when features come from a queue (at least once).
    seen_features: Option<RecentIds>,
    renderer: Option<Addr<Renderer>>,
    /// A render is in flight: the next waits for it (renders never queue up).
    rendering: bool,
    /// Bytes of rows dropped because their file could not be written.
    dropped_bytes: u64,
    /// Those rows.
    dropped_rows: u64,
    /// Windows closed by the restore at start, before the bridge was set
    /// (the most recent [`MAX_UNSENT`]).
    unsent: std::collections::VecDeque<(WindowReport, Vec<AlertEvent>)>,
    changed: bool,
    /// Failed writes in a row, per file (over_time_csv, alerts).
    write_failures: [u64; 2],
    /// A window without features was reported (the WARN line is once).
    warned_no_features: bool,
}

impl MonitorActor {
    /// Opens the monitor's files, builds its statistics, and continues
    /// where an earlier run stopped: the sequence after the last row of
    /// `metrics_over_time.csv`, and the rows of `metric_log.csv` written
    /// after that window's last record taken in again (so every record is
    /// in exactly one window, across restarts and `kill -9`).
    ///
    /// `opened` is what [`files::open`] opened; `history` what the history
    /// stream held of earlier windows and events, read by the caller
    /// (bounded, with a deadline; `None` without history or when it could
    /// not be read): the board and the picture start with them, and a
    /// monitor without logs of its own continues their numbering. No broker
    /// I/O here.
    pub fn open(
        settings: &Settings,
        paths: &LogPaths,
        reference: Reference,
        board: Board,
        metrics: MonitorMetrics,
        opened: Opened,
        history: Option<Backfilled>,
    ) -> anyhow::Result<MonitorActor> {
        let Opened {
            mut monitor,
            files,
            last,
        } = opened;
        let earlier = history.map_or_else(Earlier::default, |h| earlier_of(h, last));
        if let (None, Some(seq)) = (last, earlier.last_seq) {
            monitor.resume(seq, 0);
            tracing::info!(
                window = seq,
                "monitor: no metrics_over_time.csv here; continuing the window sequence after the last one in the history stream"
            );
        }
        let mut actor =
            MonitorActor::new(settings, monitor, files, reference.baseline, board, metrics);
        actor.read_back_history(paths);
        for e in &earlier.events {
            actor.series.push_event(e);
            actor.board.push_event(e.clone());
        }
        for w in earlier.windows {
            actor.series.push_window(&w);
            actor.board.push_window(w);
        }
        if let Some(last) = last {
            files::restore_after(&paths.metric_csv, last, |chunk| actor.restore(chunk))?;
        }
        Ok(actor)
    }

    /// Refills the picture's series with the earlier runs' windows (every
    /// row of `metrics_over_time.csv`, merged into at most
    /// [`SERIES_POINTS`] points as it goes) and their latest alert events
    /// (the last [`MAX_EVENTS`] lines of `alerts.jsonl`), so a restarted
    /// run's `error_over_time.png` still shows the whole history, as the
    /// histogram does; and takes back the rules the last row left firing,
    /// so they resolve rather than fire a second time. A file that cannot
    /// be read costs only that past: a warning, and the run goes on.
    fn read_back_history(&mut self, paths: &LogPaths) {
        let started = std::time::Instant::now();
        let series = &mut self.series;
        match crate::monitor::log::read_over_time(&paths.over_time_csv, |w| series.push(w)) {
            Ok(back) => {
                if back.rows > 0 || back.skipped > 0 {
                    tracing::info!(
                        rows = back.rows,
                        skipped = back.skipped,
                        points = self.series.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "monitor: error_over_time.png continues the earlier windows"
                    );
                }
                let restored = self.monitor.restore_alerts(&back.last_active);
                for rule in &self.rules {
                    let on = back.last_active.contains(rule);
                    self.metrics
                        .alert_active
                        .get_or_create(&crate::monitor::telemetry::RuleLabel { rule: rule.clone() })
                        .set(on as i64);
                }
                if restored > 0 {
                    tracing::info!(
                        rules = restored,
                        "monitor: alerts still firing when the last run stopped stay fired (they resolve, not fire again)"
                    );
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                file = %paths.over_time_csv.display(),
                "monitor: cannot read the earlier windows back; the picture starts with this run"
            ),
        }
        // Events of windows not in the file (written after its last row by a
        // crash) would come again from the records taken in after it.
        let last_seq = self.series.last_seq();
        match crate::monitor::log::read_alerts_tail(&paths.alerts, MAX_EVENTS) {
            Ok(tail) => {
                let mut later = 0u64;
                for e in &tail.events {
                    if e.seq <= last_seq {
                        self.series.push_event(e);
                    } else {
                        later += 1;
                    }
                }
                self.series.dropped_events += tail.older;
                if !tail.events.is_empty() || tail.skipped > 0 {
                    tracing::info!(
                        events = tail.events.len() as u64 - later,
                        older = tail.older,
                        skipped = tail.skipped,
                        after_last_window = later,
                        "monitor: error_over_time.png marks the earlier alert events"
                    );
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                file = %paths.alerts.display(),
                "monitor: cannot read the earlier alert events back"
            ),
        }
        self.metrics.set_over_time(&self.series);
    }

    /// Sends closed windows and alert events to the exchange too (those
    /// the restore at start closed first).
    pub fn with_bridge(mut self, bridge: Option<ToExchange>) -> MonitorActor {
        self.bridge = bridge;
        let unsent = std::mem::take(&mut self.unsent);
        if self.bridge.is_some() {
            for (report, events) in unsent {
                self.send_to_bridge(report, events);
            }
        }
        self
    }

    fn send_to_bridge(&mut self, report: WindowReport, events: Vec<AlertEvent>) {
        let Some(bridge) = &self.bridge else {
            if self.unsent.len() == MAX_UNSENT {
                self.unsent.pop_front();
            }
            self.unsent.push_back((report, events));
            return;
        };
        let now = std::time::Instant::now();
        let report = Published {
            id: self.ids.next_id(),
            body: report,
        };
        bridge.windows.do_send(Batch::new(vec![report], now));
        if !events.is_empty() {
            let events: Vec<_> = events
                .into_iter()
                .map(|body| Published {
                    id: self.ids.next_id(),
                    body,
                })
                .collect();
            bridge.events.do_send(Batch::new(events, now));
        }
    }

    /// The actor around `monitor` and its `files`, without a bridge yet
    /// ([`Self::with_bridge`] sets it). From `settings` it takes the
    /// picture's size and interval, and whether features come from a
    /// queue (then ids seen lately, 4 windows of them, are kept to drop
    /// a feature delivered twice).
    fn new(
        settings: &Settings,
        monitor: Monitor,
        files: MonitorFiles,
        baseline: Baseline,
        board: Board,
        metrics: MonitorMetrics,
    ) -> MonitorActor {
        let dedup_features =
            (!settings.runs(crate::config::Role::Features)).then_some(4 * settings.monitor.window);
        let spec = PlotSpec {
            width: settings.plot.width,
            height: settings.plot.height,
            bins: settings.plot.bins,
        };
        board.set_baseline(baseline.clone());
        metrics.set_baseline(&baseline);
        let rules = monitor.rule_names();
        MonitorActor {
            backlog: Arc::default(),
            monitor,
            files,
            series: OverTime::new(files::SERIES_POINTS),
            baseline,
            spec,
            interval: settings.plot.interval,
            board,
            metrics,
            bridge: None,
            ids: IdGenerator::new(),
            rules,
            seen_features: dedup_features.map(RecentIds::new),
            renderer: None,
            rendering: false,
            dropped_bytes: 0,
            dropped_rows: 0,
            unsent: Default::default(),
            changed: true,
            write_failures: [0; 2],
            warned_no_features: false,
        }
    }

    /// Takes in records read back from `metric_log.csv` at start (no output
    /// but the windows they close).
    pub fn restore(&mut self, records: &[MetricRecord]) {
        let now = now_ms();
        let closed: Vec<Closed> = records
            .iter()
            .flat_map(|r| self.monitor.observe_record(r, now))
            .collect();
        self.metrics.records.inc_by(records.len() as u64);
        for c in closed {
            self.publish(c);
        }
        self.flush();
    }

    fn publish(&mut self, c: Closed) {
        self.metrics
            .drift_eval_seconds
            .observe(c.drift_took.as_secs_f64());
        if c.report.features.is_empty() && !self.warned_no_features {
            self.warned_no_features = true;
            tracing::warn!(
                window = c.report.seq,
                "monitor: a window closed without the features of any of its records: no drift figures, drift is not watched (features come with the source in one process; in the split layout on inbound.monitor_features_queue, where the model forwards them with --legacy-inbound, and a classifier's of your own data with its probabilities on inbound.monitor_scored_queue, from the model). Logged once; counted in modelwatch_monitor_windows_without_features_total"
            );
        }
        files::write_closed(&mut self.files, &mut self.series, &c);
        let Closed { report, events, .. } = c;
        for e in &events {
            self.metrics.record_event(e);
            self.board.push_event(e.clone());
        }
        let classifier = self.baseline.classification.is_some();
        self.metrics
            .record_window(&report, &self.rules, &self.files.names, classifier);
        self.metrics.set_over_time(&self.series);
        self.board.push_window(report.clone());
        self.changed = true;
        self.send_to_bridge(report, events);
    }

    /// Writes what is buffered. A file that cannot be written keeps its
    /// rows (up to [`MAX_PENDING_BYTES`], then they are dropped and
    /// counted); each file's failures are logged once per streak and
    /// counted in `modelwatch_monitor_write_failures_total{file}`.
    fn flush(&mut self) {
        let [csv_failures, alerts_failures] = &mut self.write_failures;
        let files = [
            (&mut self.files.over_time_csv, csv_failures),
            (&mut self.files.alerts, alerts_failures),
        ];
        for (file, failures) in files {
            if file.pending_bytes() == 0 {
                continue;
            }
            let name = file
                .path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            if let Err(e) = file.flush() {
                *failures += 1;
                self.metrics.write_failure(&name);
                if *failures == 1 {
                    tracing::error!(error = %e, "monitor: cannot write its log; keeping what fits in memory");
                }
                if file.pending_bytes() > MAX_PENDING_BYTES {
                    let bytes = file.pending_bytes() as u64;
                    self.dropped_rows += file.pending_rows();
                    let _ = file.discard_pending();
                    self.dropped_bytes += bytes;
                    self.metrics.dropped_bytes.inc_by(bytes);
                    tracing::error!(file = %file.path().display(), bytes, "monitor: dropped unwritten rows (the file cannot be written)");
                }
            } else if *failures > 0 {
                tracing::info!(
                    failures = *failures,
                    file = %file.path().display(),
                    "monitor: writing its log again"
                );
                *failures = 0;
            }
        }
    }

    /// Publishes windows closed by features or a timer, then flushes.
    fn publish_all(&mut self, closed: impl IntoIterator<Item = Closed>) {
        let mut any = false;
        for c in closed {
            self.publish(c);
            any = true;
        }
        if any {
            self.flush();
        }
    }

    /// Counts the features dropped because no record of theirs came (at
    /// the end: all still waiting).
    fn count_unmatched(&mut self, at_end: bool) {
        let n = self.monitor.take_unmatched(at_end);
        self.metrics.features_unmatched.inc_by(n);
        self.backlog.set_features(self.monitor.features_ahead());
    }

    /// Publishes the features waiting for their record to `backlog`
    /// ([`crate::core::backlog`]).
    pub fn with_backlog(mut self, backlog: Arc<Backlog>) -> MonitorActor {
        self.backlog = backlog;
        self
    }

    /// Most features that wait for their record.
    pub fn features_bound(&self) -> usize {
        self.monitor.features_bound()
    }

    /// What is left unwritten at the end: counted and dropped, and a row
    /// cut by a partial write cut off, so the files stay whole.
    fn shortfall(&mut self) -> MonitorShortfall {
        let mut unwritten = Vec::new();
        for file in [&mut self.files.over_time_csv, &mut self.files.alerts] {
            if file.pending_bytes() == 0 {
                continue;
            }
            unwritten.push(file.path().display().to_string());
            self.dropped_rows += file.pending_rows();
            self.dropped_bytes += file.pending_bytes() as u64;
            if let Err(e) = file.discard_pending() {
                tracing::error!(error = %e, "monitor: cutting a torn row off its log");
            }
        }
        MonitorShortfall {
            unwritten,
            dropped_bytes: self.dropped_bytes,
            dropped_rows: self.dropped_rows,
        }
    }

    /// A render of the picture now, unless nothing changed or one is in
    /// flight (renders never queue up).
    fn render(&mut self) -> Option<Request<Renderer, Draw>> {
        if !self.changed || self.rendering {
            return None;
        }
        self.changed = false;
        self.rendering = true;
        Some(self.draw())
    }

    /// Sends the picture of the series now to the renderer thread.
    fn draw(&mut self) -> Request<Renderer, Draw> {
        let (series, baseline, spec, path) = (
            self.series.clone(),
            self.baseline.clone(),
            self.spec,
            self.files.png.clone(),
        );
        Renderer::of(&mut self.renderer).send(Draw::new(move || {
            series.render(Some(&baseline), spec, &path)
        }))
    }
}

/// What the history stream held of earlier windows and events, for a
/// monitor that starts.
#[derive(Default)]
struct Earlier {
    /// Those the board and the picture start with: all of them, or with
    /// logs here, only those up to the last row of `metrics_over_time.csv`
    /// (the later ones the restore closes again: never shown twice).
    windows: Vec<WindowReport>,
    events: Vec<AlertEvent>,
    /// The sequence number of the last window in the stream.
    last_seq: Option<u64>,
}

/// What a monitor read from the history stream at start, and how long
/// that took (the pipeline's restore step reads it, within
/// `history::backfill::START_DEADLINE`).
pub struct Backfilled {
    pub found: MonitorHistory,
    pub took: Duration,
}

/// The windows and events of `h` the board and the picture start with: all
/// of them, or with logs here, only those up to `last` (the later ones the
/// restore closes again: never shown twice).
fn earlier_of(h: Backfilled, last: Option<LastRow>) -> Earlier {
    let found = h.found;
    let last_seq = found.windows.last().map(|w| w.seq);
    let upto = last.map_or(u64::MAX, |l| l.seq);
    let windows: Vec<WindowReport> = found
        .windows
        .into_iter()
        .filter(|w| w.seq <= upto)
        .collect();
    let events: Vec<AlertEvent> = found.events.into_iter().filter(|e| e.seq <= upto).collect();
    tracing::info!(
        windows = windows.len(),
        events = events.len(),
        last_window = last_seq,
        malformed = found.malformed,
        complete = found.complete,
        took_ms = h.took.as_millis() as u64,
        "monitor: backfilled the board from the history stream"
    );
    Earlier {
        windows,
        events,
        last_seq,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Actor for MonitorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        // A sealed window waits for its features at most SEALED_WAIT_MS;
        // features that can match no record any more are dropped and
        // counted here too (not only when records or features come).
        ctx.run_interval(Duration::from_millis(SEALED_WAIT_MS / 4), |act, _| {
            let closed = act.monitor.close_overdue(now_ms());
            act.count_unmatched(false);
            act.publish_all(closed);
        });
        ctx.run_interval(self.interval, |act, ctx| {
            if let Some(req) = act.render() {
                ctx.spawn(
                    async move {
                        if let Ok(Err(e)) = req.await {
                            tracing::error!(error = %e, "rendering error_over_time.png failed");
                        }
                    }
                    .into_actor(act)
                    .map(|_, act, _| act.rendering = false),
                );
            }
        });
    }
}

impl Handler<Batch<MetricRecord>> for MonitorActor {
    type Result = ();

    fn handle(&mut self, batch: Batch<MetricRecord>, _: &mut Context<Self>) {
        let now = now_ms();
        let closed: Vec<Closed> = batch
            .items
            .iter()
            .flat_map(|r| self.monitor.observe_record(r, now))
            .collect();
        self.metrics.records.inc_by(batch.items.len() as u64);
        self.count_unmatched(false);
        let (window, period) = self.monitor.rolling(now);
        self.metrics.set_window("count", &window);
        self.metrics.set_window("period", &period);
        if !closed.is_empty() {
            for c in closed {
                self.publish(c);
            }
            self.flush();
        }
    }
}

impl Handler<Batch<Features>> for MonitorActor {
    type Result = ();

    fn handle(&mut self, batch: Batch<Features>, _: &mut Context<Self>) {
        let closed = match &mut self.seen_features {
            None => self.monitor.observe_features(batch.items.iter()),
            Some(seen) => {
                let fresh: Vec<Features> = batch
                    .items
                    .iter()
                    .filter(|f| !seen.contains(f.id))
                    .cloned()
                    .collect();
                for f in batch.items.iter() {
                    seen.insert(f.id);
                }
                self.monitor.observe_features(fresh.iter())
            }
        };
        self.count_unmatched(false);
        self.publish_all(closed);
    }
}

/// A classifier's features with its class probabilities, from the model
/// in the same process (never from the broker: no copies to drop).
impl Handler<Batch<Scored>> for MonitorActor {
    type Result = ();

    fn handle(&mut self, batch: Batch<Scored>, _: &mut Context<Self>) {
        let closed = self.monitor.observe_scored(batch.items.iter());
        self.count_unmatched(false);
        self.publish_all(closed);
    }
}

impl Handler<FinalFlush> for MonitorActor {
    type Result = ResponseActFuture<Self, MonitorShortfall>;

    fn handle(&mut self, _: FinalFlush, _: &mut Context<Self>) -> Self::Result {
        // Windows still waiting for features close with what they have.
        let closed = self.monitor.close_sealed();
        self.publish_all(closed);
        self.count_unmatched(true);
        let unmatched = self.metrics.features_unmatched.get();
        if unmatched > 0 {
            tracing::warn!(
                features = unmatched,
                "monitor: features that matched no record were dropped, not used for drift (stale ones from an earlier run, rows the model could not predict, or their records went elsewhere)"
            );
        }
        self.flush();
        let _ = self.files.over_time_csv.sync();
        let _ = self.files.alerts.sync();
        // The last picture, after any render in flight (the renderer runs
        // them in order), bounded in time.
        let req = self.draw();
        Box::pin(
            async move {
                match tokio::time::timeout(FINAL_RENDER_TIMEOUT, req).await {
                    Ok(Ok(Err(e))) => {
                        tracing::error!(error = %e, "the last render of error_over_time.png failed")
                    }
                    Err(_) => tracing::error!(
                        "the last render of error_over_time.png took longer than {FINAL_RENDER_TIMEOUT:?}; the drain goes on without it"
                    ),
                    _ => {}
                }
            }
            .into_actor(self)
            .map(|_, act, _| act.shortfall()),
        )
    }
}
