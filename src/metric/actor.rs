//! MetricActor: joins truths and predictions, writes `metric_log.csv` and
//! `labels_log.txt`, and emits the joined records.
//!
//! Rows go to an in-memory buffer first and reach the files at least every
//! `metric.flush_interval` (and when the buffer passes 256 KiB), so `tail -f`
//! shows progress. A write error it cannot get past makes the actor log it
//! and stop; its `Supervisor` restarts it, keeping its state, so the rows not
//! yet written are written after the restart (never lost, never doubled).
//! While the file stays unwritable the actor waits with growing backoff and
//! reads no mail, so senders block instead of memory growing. It gives up
//! after `metric.max_restarts` restarts in a row without a successful write,
//! or at once when the run is stopping (a signal must not wait for a full
//! disk): it drops the unwritten rows, counting them, fails the inbound
//! batches behind them (requeued), tells the run through its
//! [`RestartLink`], and from then on reads its mail and counts instead of
//! writing, so the run can drain and exit 1. A final flush at shutdown that
//! still fails after a few tries ends the same way: the rows (and label
//! lines) not written are counted in the run's exit line, and a row cut by
//! a partial write is cut off, so the file stays whole.
//!
//! When its inputs come from RabbitMQ (split layout) a half whose partner
//! has not arrived yet goes to the journal of waiting halves
//! ([`crate::metric::journal`]); an inbound batch is acknowledged once its rows and
//! its waiting halves are written (the journal fsynced). So a half never
//! waits as an unacknowledged delivery, and the distance between the heads
//! of the two queues is bounded by `metric.max_pending`, not the prefetch.
//! A half that waits past `metric.pending_ttl`, or is evicted by
//! `metric.max_pending`, is counted and logged; it is never requeued.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use crate::config::MetricSettings;
use crate::core::actor::fatal_dead_actor;
use crate::core::append_file::AppendFile;
use crate::core::backlog::Backlog;
use crate::core::done::Done;
use crate::core::fanout::Fanout;
use crate::core::messages::{Batch, Kind, MetricRecord, Prediction, SampleId, Truth};
use crate::core::metrics::Metrics;
use crate::metric::join::{Added, Half, JoinStats, Joiner, RecentIds};
use crate::metric::journal::{Journal, JournalError};
use crate::metric::log_format::{write_label_line, write_metric_rows};

/// Buffered bytes that trigger a write before the flush timer.
const EAGER_FLUSH_BYTES: usize = 256 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The files the metric writes.
pub struct MetricFiles {
    pub csv: AppendFile,
    pub labels: Option<AppendFile>,
    /// With inputs from RabbitMQ: the journal of waiting halves, and the
    /// halves it held at start (put back into the join when the actor starts).
    pub journal: Option<(Journal, Vec<(SampleId, Half)>)>,
}

/// Final figures, returned by [`FlushAndReport`].
#[derive(Debug, Clone)]
pub struct MetricReport {
    pub rows_written: u64,
    pub join: JoinStats,
    /// Ids still waiting for their other half at the end.
    pub unmatched: usize,
    pub restarts: u64,
    /// Halves ignored because their id was already written (redeliveries).
    pub redelivered: u64,
    /// Halves read back from the journal at start (not yet written).
    pub restored: u64,
    /// Emit-to-row latency, microseconds.
    pub latency_us: Histogram<u64>,
}

/// Flush and sync both files, and report. Sent once at shutdown.
#[derive(Message)]
#[rtype(result = "Result<MetricReport, String>")]
pub struct FlushAndReport;

/// How the metric's restart policy talks to the run.
#[derive(Debug, Clone, Default)]
pub struct RestartLink {
    /// Cancelled by the run when it stops: a failing write is not retried.
    pub stopping: CancellationToken,
    /// Cancelled by the actor when it gives up writing: the run must end.
    pub gave_up: CancellationToken,
}

pub struct MetricActor {
    metrics: Metrics,
    joiner: Joiner,
    /// Ids already written, when inputs come from RabbitMQ (redeliveries).
    recent: Option<RecentIds>,
    redelivered: u64,
    /// Completion tokens of inbound batches whose rows (and waiting halves)
    /// await the next flush.
    awaiting_flush: Vec<Done>,
    /// The join's waiting halves by side, for the inbound consumers
    /// ([`crate::core::backlog`]).
    backlog: Arc<Backlog>,
    files: MetricFiles,
    journal: Option<Journal>,
    /// Halves read from the journal at start, until the actor first starts.
    to_restore: Vec<(SampleId, Half)>,
    restored: u64,
    /// Rewrite the journal at the next flush (after restoring it).
    rewrite_journal: bool,
    out: Fanout<Batch<MetricRecord>>,
    settings: MetricSettings,
    rows: u64,
    restarts: u64,
    backoff: Duration,
    latency_us: Histogram<u64>,
    csv_path: PathBuf,
    /// Failed writes since the last successful one.
    failures: u32,
    link: RestartLink,
    /// Set when the actor gave up writing: why, and the rows dropped.
    gave_up: Option<String>,
    unwritten: u64,
    /// Lines of the labels log dropped (with the rows).
    unwritten_labels: u64,
}

impl MetricActor {
    /// `recent` enables deduplication by id (for inputs read from RabbitMQ,
    /// which may be delivered twice); seed it with the ids already logged.
    pub fn new(
        mut files: MetricFiles,
        out: Fanout<Batch<MetricRecord>>,
        settings: MetricSettings,
        recent: Option<RecentIds>,
        metrics: Metrics,
    ) -> Self {
        let (journal, to_restore) = match files.journal.take() {
            Some((j, halves)) => (Some(j), halves),
            None => (None, Vec::new()),
        };
        MetricActor {
            metrics,
            joiner: match journal {
                Some(_) => {
                    Joiner::new(settings.max_pending, settings.pending_ttl).tracking_dropped()
                }
                None => Joiner::new(settings.max_pending, settings.pending_ttl),
            },
            recent,
            redelivered: 0,
            awaiting_flush: Vec::new(),
            backlog: Arc::default(),
            csv_path: files.csv.path().to_owned(),
            files,
            rewrite_journal: journal.is_some(),
            journal,
            to_restore,
            restored: 0,
            out,
            settings,
            rows: 0,
            restarts: 0,
            backoff: BACKOFF_MIN,
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            failures: 0,
            link: RestartLink::default(),
            gave_up: None,
            unwritten: 0,
            unwritten_labels: 0,
        }
    }

    /// Publishes the join's waiting halves to `backlog`.
    pub fn with_backlog(mut self, backlog: Arc<Backlog>) -> Self {
        self.backlog = backlog;
        self
    }

    /// The join's waiting halves: the gauge and the backlog.
    fn note_waiting(&self) {
        self.metrics.join_waiting.set(self.joiner.pending() as i64);
        let (truths, predictions) = self.joiner.waiting_ahead();
        self.backlog.set_halves(truths, predictions);
    }

    /// Links the restart policy to the run (see [`RestartLink`]).
    pub fn with_link(mut self, link: RestartLink) -> Self {
        self.link = link;
        self
    }

    fn flush_files(&mut self) -> Result<(), JournalError> {
        self.write_csv(AppendFile::flush)?;
        if let Some(labels) = &mut self.files.labels {
            labels.flush()?;
        }
        if let Some(journal) = &mut self.journal {
            if self.rewrite_journal || journal.rewrite_due(self.joiner.pending()) {
                journal.rewrite(self.joiner.waiting())?;
                self.rewrite_journal = false;
            } else {
                journal.sync()?;
            }
        }
        // The rows are in the file and the waiting halves in the journal:
        // the inbound messages behind them are done.
        self.awaiting_flush.clear();
        Ok(())
    }

    /// Writes (or syncs) the CSV with `op`; rows count as written once they
    /// are in the file (a partial write leaves the rest of a row, and its
    /// newline, in the buffer).
    fn write_csv<E>(&mut self, op: impl FnOnce(&mut AppendFile) -> Result<(), E>) -> Result<(), E> {
        let buffered = self.files.csv.pending_rows();
        let result = op(&mut self.files.csv);
        let written = buffered - self.files.csv.pending_rows();
        self.metrics.rows_written.inc_by(written);
        result
    }

    /// Records in the journal the halves the join dropped (expired,
    /// evicted), so that they stay dropped across a restart.
    fn journal_dropped(&mut self) {
        let dropped = self.joiner.take_dropped();
        if let Some(journal) = &mut self.journal {
            for id in dropped {
                journal.done(id);
            }
        }
    }

    /// Puts the halves the journal held at start back into the join; those
    /// whose partner is among them complete now.
    fn restore(&mut self, ctx: &mut Context<Self>) {
        let halves = std::mem::take(&mut self.to_restore);
        if halves.is_empty() {
            return;
        }
        let now = Instant::now();
        let (mut records, mut skipped) = (Vec::new(), 0u64);
        for (id, half) in halves {
            if self.recent.as_ref().is_some_and(|r| r.contains(id)) {
                skipped += 1;
                continue;
            }
            self.restored += 1;
            if let Added::Joined(record) = self.joiner.add(id, half, now) {
                if let Some(recent) = &mut self.recent {
                    recent.insert(id);
                }
                records.push(record);
            }
        }
        // (The journal is rewritten at the first flush, with what waits.)
        self.journal_dropped();
        self.metrics.journal_restored.inc_by(self.restored);
        self.note_waiting();
        tracing::info!(
            restored = self.restored,
            already_written = skipped,
            joined = records.len(),
            waiting = self.joiner.pending(),
            journal = %self.journal.as_ref().map_or_else(Default::default, |j| j.path().display().to_string()),
            "metric: waiting halves restored from the journal"
        );
        self.accept(&mut records, now, ctx);
        ctx.spawn(self.forward(records, now).into_actor(self));
    }

    /// Writes what is buffered; on failure logs, waits `backoff` without
    /// reading mail (or until the run stops), and stops so that the
    /// supervisor restarts the actor; past `metric.max_restarts` failures in
    /// a row, or when the run is stopping, gives up instead.
    fn flush_or_restart(&mut self, ctx: &mut Context<Self>) {
        if self.gave_up.is_some() {
            self.drop_unwritten();
            return;
        }
        match self.flush_files() {
            Ok(()) => {
                self.backoff = BACKOFF_MIN;
                self.failures = 0;
                self.metrics.metric_write_failures.set(0);
            }
            Err(e) => {
                self.failures += 1;
                self.metrics.metric_write_failures.set(self.failures as i64);
                if self.failures > self.settings.max_restarts || self.link.stopping.is_cancelled() {
                    self.give_up(e);
                    return;
                }
                let delay = self.backoff;
                self.backoff = (delay * 2).min(BACKOFF_MAX);
                tracing::error!(
                    error = %e,
                    buffered_bytes = self.files.csv.pending_bytes(),
                    retry_in_ms = delay.as_millis() as u64,
                    failures = self.failures,
                    max_restarts = self.settings.max_restarts,
                    "metric cannot write its logs; stopping for a restart"
                );
                let stopping = self.link.stopping.clone();
                let wait = async move {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopping.cancelled() => {}
                    }
                };
                ctx.wait(
                    wait.into_actor(self)
                        .map(|_, _, ctx: &mut Context<Self>| ctx.stop()),
                );
            }
        }
    }

    /// Stops writing for good: the rows not written are counted and
    /// dropped, and the run is told to end (with exit code 1).
    fn give_up(&mut self, e: JournalError) {
        let why = format!("{e}");
        self.gave_up = Some(why.clone());
        self.drop_unwritten();
        tracing::error!(
            error = %why,
            failures = self.failures,
            restarts = self.restarts,
            unwritten_rows = self.unwritten,
            rows_written = self.rows.saturating_sub(self.unwritten),
            file = %self.csv_path.display(),
            "metric gives up writing its logs; the run ends"
        );
        self.link.gave_up.cancel();
    }

    /// After giving up: counts and drops the buffered rows (and label
    /// lines), cuts a row torn by a partial write, and fails the inbound
    /// batches behind them (requeued). Returns what this call dropped.
    fn drop_unwritten(&mut self) -> (u64, u64) {
        let rows = self.files.csv.pending_rows();
        if self.files.csv.pending_bytes() > 0 {
            self.unwritten += rows;
            if let Err(e) = self.files.csv.discard_pending() {
                tracing::error!(error = %e, "cutting a torn row off the metric log");
            }
        }
        let mut labels_dropped = 0;
        if let Some(labels) = &mut self.files.labels {
            if labels.pending_bytes() > 0 {
                labels_dropped = labels.pending_rows();
                self.unwritten_labels += labels_dropped;
                if let Err(e) = labels.discard_pending() {
                    tracing::error!(error = %e, "cutting a torn line off the labels log");
                }
            }
        }
        for done in self.awaiting_flush.drain(..) {
            done.fail();
        }
        (rows, labels_dropped)
    }

    /// The exit line of a run whose rows could not all be written: how
    /// many were dropped, and how many before them are whole in the file.
    fn unwritten_message(&self, why: &str) -> String {
        let mut text = format!(
            "{} rows could not be written to {} and were dropped ({why}); the {} rows before them are whole in the file",
            self.unwritten,
            self.csv_path.display(),
            self.rows.saturating_sub(self.unwritten)
        );
        if self.unwritten_labels > 0 {
            text += &format!(
                "; {} lines of the labels log were dropped too",
                self.unwritten_labels
            );
        }
        text
    }

    fn accept(
        &mut self,
        records: &mut [MetricRecord],
        emitted_at: Instant,
        ctx: &mut Context<Self>,
    ) {
        if records.is_empty() {
            return;
        }
        let not_finite = write_metric_rows(records, self.files.csv.buffer());
        if not_finite > 0 {
            // Unreachable while decode and the artifact check hold; never an inf row.
            tracing::error!(
                rows = not_finite,
                "metric rows with a non-finite number were not written"
            );
        }
        let written = (records.len() - not_finite) as u64;
        self.rows += written;
        self.metrics.absolute_error.observe_many(
            records
                .iter()
                .map(|r| r.absolute_error)
                .filter(|e| e.is_finite()),
        );
        let latency = emitted_at.elapsed();
        let us = latency.as_micros().max(1) as u64;
        let _ = self.latency_us.record_n(us, records.len() as u64);
        self.metrics
            .latency_seconds
            .observe_n(latency.as_secs_f64(), written);
        if self.files.csv.pending_bytes() >= EAGER_FLUSH_BYTES {
            self.flush_or_restart(ctx);
        }
    }

    fn label_lines<T>(&mut self, kind: Kind, items: &[T], half: &impl Fn(&T) -> (SampleId, Half)) {
        if let Some(labels) = &mut self.files.labels {
            let time = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
            let buf = labels.buffer();
            for item in items {
                let (id, h) = half(item);
                write_label_line(buf, &time, kind, id, h.value());
            }
        }
    }

    /// Joins a batch of truths (`YTrue`) or predictions (`YPred`), writes
    /// the rows that complete, and forwards them.
    fn take_halves<T>(
        &mut self,
        batch: &Batch<T>,
        kind: Kind,
        half: impl Fn(&T) -> (SampleId, Half),
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<()> {
        let now = Instant::now();
        self.label_lines(kind, &batch.items, &half);
        Metrics::inc_kind(
            &self.metrics.halves_received,
            kind.routing_key(),
            batch.items.len() as u64,
        );
        let before = self.joiner.stats;
        let redelivered_before = self.redelivered;
        let mut records = Vec::new();
        for item in batch.items.iter() {
            let (id, half) = half(item);
            if self.recent.as_ref().is_some_and(|r| r.contains(id)) {
                self.redelivered += 1;
                continue;
            }
            match self.joiner.add(id, half, now) {
                Added::Joined(record) => {
                    if let Some(recent) = &mut self.recent {
                        recent.insert(id);
                    }
                    if let Some(journal) = &mut self.journal {
                        journal.done(id); // its partner was journaled
                    }
                    records.push(record);
                }
                Added::Waiting => {
                    if let Some(journal) = &mut self.journal {
                        journal.append(id, half);
                    }
                }
                Added::Duplicate => {}
            }
        }
        self.journal_dropped();
        // This batch is done once its rows and waiting halves are written.
        self.awaiting_flush.extend(batch.done.clone());
        warn_evicted(before.evicted, &self.joiner);
        let after = self.joiner.stats;
        self.metrics
            .join_dropped("evicted", after.evicted - before.evicted);
        self.metrics
            .join_dropped("duplicate", after.duplicates - before.duplicates);
        self.metrics
            .join_dropped("redelivered", self.redelivered - redelivered_before);
        self.note_waiting();
        self.accept(&mut records, batch.emitted_at, ctx);
        if batch.done.is_some() {
            // Inbound deliveries are acked once their rows are in the file:
            // write now rather than at the next timer tick.
            self.flush_or_restart(ctx);
        }
        self.forward(records, batch.emitted_at)
    }

    fn forward(&self, records: Vec<MetricRecord>, emitted_at: Instant) -> ResponseFuture<()> {
        if records.is_empty() || self.out.is_empty() {
            return Box::pin(async {});
        }
        let sent = self.out.send(Batch::new(records, emitted_at));
        Box::pin(async move {
            if let Err(e) = sent.await {
                fatal_dead_actor("metric", e);
            }
        })
    }
}

impl Actor for MetricActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restore(ctx);
        ctx.run_interval(self.settings.flush_interval, |act, ctx| {
            act.flush_or_restart(ctx)
        });
        ctx.run_interval(Duration::from_secs(1), |act, _| {
            let dropped = act.joiner.expire(Instant::now());
            act.journal_dropped();
            act.metrics.join_dropped("expired", dropped);
            act.note_waiting();
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    total_expired = act.joiner.stats.expired,
                    ttl_ms = act.settings.pending_ttl.as_millis() as u64,
                    "ids waited longer than the TTL for their other half and were dropped"
                );
            }
        });
        if self.restarts > 0 || self.rewrite_journal {
            self.flush_or_restart(ctx);
        }
    }
}

impl Supervised for MetricActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts += 1;
        self.metrics.restart("metric");
        tracing::warn!(
            restarts = self.restarts,
            file = %self.csv_path.display(),
            "metric actor restarting"
        );
    }
}

impl Handler<Batch<Truth>> for MetricActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, batch: Batch<Truth>, ctx: &mut Context<Self>) -> Self::Result {
        self.take_halves(&batch, Kind::YTrue, |t| (t.id, Half::Truth(t.y)), ctx)
    }
}

impl Handler<Batch<Prediction>> for MetricActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, batch: Batch<Prediction>, ctx: &mut Context<Self>) -> Self::Result {
        self.take_halves(&batch, Kind::YPred, |p| (p.id, Half::Prediction(p.y)), ctx)
    }
}

fn warn_evicted(before: u64, joiner: &Joiner) {
    let now = joiner.stats.evicted;
    if now > before {
        tracing::warn!(
            evicted = now - before,
            total_evicted = now,
            "metric.max_pending ids were waiting; the oldest were dropped"
        );
    }
}

impl Handler<FlushAndReport> for MetricActor {
    type Result = Result<MetricReport, String>;

    fn handle(&mut self, _: FlushAndReport, _: &mut Context<Self>) -> Self::Result {
        if let Some(why) = self.gave_up.clone() {
            self.drop_unwritten();
            return Err(self.unwritten_message(&why));
        }
        let mut last_err = None;
        for attempt in 0..5 {
            let synced = self
                .write_csv(AppendFile::sync)
                .and_then(|_| self.files.labels.as_mut().map_or(Ok(()), |l| l.sync()));
            let waiting = self.joiner.waiting();
            let synced = synced
                .map_err(JournalError::from)
                // A clean end leaves the journal with only what waits.
                .and_then(|_| self.journal.as_mut().map_or(Ok(()), |j| j.rewrite(waiting)));
            match synced {
                Ok(()) => {
                    last_err = None;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, "final flush of the metric logs failed");
                    last_err = Some(e.to_string());
                    std::thread::sleep(BACKOFF_MIN * (attempt + 1));
                }
            }
        }
        if let Some(e) = last_err {
            // Given up at the end: what is still buffered is dropped and
            // counted, and a row cut by a partial write is cut off.
            let (rows, labels) = self.drop_unwritten();
            tracing::error!(
                error = %e,
                unwritten_rows = rows,
                unwritten_label_lines = labels,
                file = %self.csv_path.display(),
                "final flush of the metric logs failed; the rows not written are dropped"
            );
            return Err(self.unwritten_message(&e));
        }
        self.note_waiting();
        Ok(MetricReport {
            rows_written: self.rows,
            join: self.joiner.stats,
            unmatched: self.joiner.pending(),
            restarts: self.restarts,
            redelivered: self.redelivered,
            restored: self.restored,
            latency_us: self.latency_us.clone(),
        })
    }
}
