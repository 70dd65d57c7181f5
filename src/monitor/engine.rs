//! The monitor itself: takes in features and joined records, closes a
//! window every `monitor.window` records, and says what it saw — the
//! window's figures, the period's, drift against the training data, and
//! the alert rules that changed state.
//!
//! Pure and synchronous (the actor in `monitor::actor` owns one, feeds it
//! and writes what it returns), so `modelwatch replay --rebuild` can run
//! the same monitor over a history and produce the same rows.
//!
//! Windows are tumbling for the report (one row per `window` records) and
//! rolling for the live gauges (the last `window` records, between
//! closes). Drift compares the closed window's predictions, and the
//! features of the window's own records (matched by id), with the training
//! data. Features and records arrive independently (features run ahead by
//! the samples in flight; in the split layout they come on another queue),
//! so a feature waits by id, up to [`FEATURES_KEPT`] of them, for its
//! record, and a record waits for its feature until its window closes. A
//! window whose records are all in but some of whose features are not yet
//! (they trail the records by a batch, or by a backlog when a restarted
//! metric process catches up) is sealed and closes when they come, or at
//! the latest [`SEALED_WAIT_MS`] later, when more than [`MAX_SEALED`]
//! windows or [`FEATURES_KEPT`] records wait, or at the end of the run; windows close in
//! order, and their figures are those of the moment they were sealed. A feature whose record never comes
//! (a queue that kept what earlier runs published, a record that went
//! elsewhere) is never used: it is dropped and counted
//! ([`Monitor::take_unmatched`]) once its id was older than every record
//! of the open and sealed windows (or, when they held none, not newer than
//! the newest taken in) [`SEALED_WAIT_MS`] ago: by then a record reordered
//! on its way (competing model workers) has come, so only a feature no
//! record will claim goes (checked as records come, on the actor's timer
//! and as features come); when newer ones push it out; or at the end. A
//! window none of
//! whose records had its features has no drift figures at all (no
//! `drift_share`, no dataset drift), never figures made up from other
//! samples.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::alerts::{RuleError, Rules};
use super::classification;
use super::drift::DriftDetector;
use super::report::{AlertEvent, WindowReport, WindowStats};
use super::rolling::{CountWindow, PeriodWindow};
use crate::config::MonitorSettings;
use crate::core::data::FeatureVector;
use crate::core::messages::{Features, MetricRecord, Probabilities, SampleId, Scored};
use crate::model::baseline::Baseline;
use crate::model::tabular::DECISION_THRESHOLD;

/// Features kept waiting for their record at most, beyond `window`: how
/// far features may run ahead of records (the source's `max_in_flight` ×
/// `batch_size` in one process) and still be matched to their record.
pub const FEATURES_KEPT: usize = 16_384;

/// A window that closed, and what it changed.
#[derive(Debug, Clone)]
pub struct Closed {
    pub report: WindowReport,
    pub events: Vec<AlertEvent>,
    /// Records taken in so far, across restarts.
    pub records_total: u64,
    /// How long the drift evaluation took.
    pub drift_took: Duration,
}

/// The records of one window and the features matched to them.
#[derive(Default)]
struct Gathered {
    /// The oldest id of its records (none yet: `None`).
    oldest: Option<SampleId>,
    /// The features of its records, matched so far.
    matched: Vec<FeatureVector>,
    /// A classifier's: the true class of its records matched so far, and
    /// the class probabilities the model gave them.
    scored: Vec<(usize, Probabilities)>,
    /// Its records whose features have not come yet, with their truth.
    waiting: HashMap<SampleId, f64>,
    predictions: Vec<f64>,
}

impl Gathered {
    /// Takes in the features (and a classifier's probabilities `p`) of a
    /// record whose truth is `y`. A truth that is not one of the classes
    /// (never from our own source) leaves the probabilities out.
    fn matched(&mut self, x: FeatureVector, p: Probabilities, y: f64) {
        self.matched.push(x);
        if !p.is_empty() && y >= 0.0 && y.fract() == 0.0 && (y as usize) < p.len() {
            self.scored.push((y as usize, p));
        }
    }
}

/// What the monitor matches to a record by id: its features, and a
/// classifier's class probabilities (empty for a regression).
struct Observed {
    x: FeatureVector,
    p: Probabilities,
}

/// A window whose records are all in, waiting (bounded) for the features
/// of some of them.
struct Sealed {
    gathered: Gathered,
    end_id: SampleId,
    end_ms: u64,
    window: WindowStats,
    period: WindowStats,
    records_total: u64,
}

/// Longest a sealed window waits for its records' features
/// ([`Monitor::close_overdue`]).
pub const SEALED_WAIT_MS: u64 = 2000;

/// Most sealed windows at once (each feature is looked up in each).
pub const MAX_SEALED: usize = 64;

/// Least time between two cut-offs kept for stale features.
const CUTOFF_STEP_MS: u64 = 250;
/// Most cut-offs kept (2 s at one per [`CUTOFF_STEP_MS`] is 8).
const MAX_CUTOFFS: usize = 64;

pub struct Monitor {
    window: CountWindow,
    period: PeriodWindow,
    size: usize,
    /// Features waiting for their record, by id (bounded: `window` +
    /// [`FEATURES_KEPT`]).
    features: HashMap<SampleId, Observed>,
    /// Their ids by arrival, oldest first (may name ids matched since).
    arrivals: VecDeque<SampleId>,
    /// The open window.
    open: Gathered,
    /// Windows complete but for some features, oldest first.
    sealed: VecDeque<Sealed>,
    /// Most sealed windows: [`FEATURES_KEPT`] records' worth, 1 to [`MAX_SEALED`].
    max_sealed: usize,
    /// Features dropped unmatched since the last [`Monitor::take_unmatched`].
    unmatched: u64,
    /// The newest record id taken in.
    newest: Option<SampleId>,
    /// The oldest id held (see [`Monitor::oldest_held`]) as seen at
    /// moments at least [`CUTOFF_STEP_MS`] apart, oldest first: they become
    /// the cut-off once [`SEALED_WAIT_MS`] old (at most [`MAX_CUTOFFS`]).
    cutoffs: VecDeque<(u64, SampleId)>,
    /// Waiting features with an id below it can match no record: dropped.
    stale_below: SampleId,
    detector: DriftDetector,
    rules: Rules,
    seq: u64,
    records_total: u64,
}

impl Monitor {
    /// A monitor for `settings`, judging windows against `baseline` and
    /// drift with `detector`. Fails only on rules the config check let
    /// through but the baseline cannot resolve.
    pub fn new(
        settings: &MonitorSettings,
        baseline: &Baseline,
        detector: DriftDetector,
    ) -> Result<Monitor, RuleError> {
        Ok(Monitor {
            window: CountWindow::new(settings.window),
            period: PeriodWindow::new(settings.period, settings.max_period_rows),
            size: settings.window,
            features: HashMap::new(),
            arrivals: VecDeque::new(),
            open: Gathered::default(),
            sealed: VecDeque::new(),
            max_sealed: (FEATURES_KEPT / settings.window.max(1)).clamp(1, MAX_SEALED),
            unmatched: 0,
            newest: None,
            cutoffs: VecDeque::new(),
            stale_below: 0,
            rules: Rules::new(
                &settings.rules,
                baseline,
                detector.names(),
                &detector.categorical_names(),
            )?,
            detector,
            seq: 0,
            records_total: 0,
        })
    }

    /// One line per rule, with its threshold resolved (logged at start).
    pub fn describe_rules(&self) -> Vec<String> {
        self.rules.describe()
    }

    /// Continues the numbering of an earlier run (its last row).
    pub fn resume(&mut self, seq: u64, records_total: u64) {
        self.seq = seq;
        self.records_total = records_total;
    }

    /// Takes back the rules an earlier run left firing (see
    /// [`Rules::restore_active`]); returns how many.
    pub fn restore_alerts<S: AsRef<str>>(&mut self, names: &[S]) -> usize {
        self.rules.restore_active(names)
    }

    /// The feature columns drift is watched on, in the order of a row.
    pub fn feature_names(&self) -> &[&'static str] {
        self.detector.names()
    }

    /// The rule names, for the telemetry of active alerts.
    pub fn rule_names(&self) -> Vec<String> {
        self.rules.names()
    }

    /// Takes in features: each joins the window of its record if that
    /// record is there already, else waits for its record (the oldest
    /// waiting one is dropped, counted, past the bound); one below the
    /// stale cut-off (see [`Monitor::drop_stale`]) is dropped and counted at
    /// once. Returns the sealed windows it completed (in order: none
    /// before an older one).
    pub fn observe_features<'a>(
        &mut self,
        xs: impl IntoIterator<Item = &'a Features>,
    ) -> Vec<Closed> {
        self.observe(xs.into_iter().map(|f| (f.id, &f.x, Probabilities::new())))
    }

    /// [`Monitor::observe_features`] for a classifier: the features with
    /// the class probabilities the model gave.
    pub fn observe_scored<'a>(&mut self, xs: impl IntoIterator<Item = &'a Scored>) -> Vec<Closed> {
        self.observe(xs.into_iter().map(|s| (s.id, &s.x, s.p.clone())))
    }

    fn observe<'a>(
        &mut self,
        xs: impl Iterator<Item = (SampleId, &'a FeatureVector, Probabilities)>,
    ) -> Vec<Closed> {
        let mut closed = Vec::new();
        for (id, x, p) in xs {
            if let Some(s) = self
                .sealed
                .iter_mut()
                .find(|s| s.gathered.waiting.contains_key(&id))
            {
                let y = s.gathered.waiting.remove(&id).expect("found");
                s.gathered.matched(x.clone(), p, y);
                closed.extend(self.close_complete());
                continue;
            }
            if let Some(y) = self.open.waiting.remove(&id) {
                self.open.matched(x.clone(), p, y);
                continue;
            }
            if id < self.stale_below {
                // Its record, if it ever came, is in a closed window.
                self.unmatched += 1;
                continue;
            }
            let seen = Observed { x: x.clone(), p };
            if self.features.insert(id, seen).is_some() {
                // The same id again: it keeps its place.
                continue;
            }
            self.arrivals.push_back(id);
            while self.arrivals.len() > self.size + FEATURES_KEPT {
                let oldest = self.arrivals.pop_front().expect("not empty");
                if self.features.remove(&oldest).is_some() {
                    self.unmatched += 1;
                }
            }
        }
        closed
    }

    /// The oldest record id of the open and sealed windows (`None` before
    /// the first record).
    /// When they hold none, the id after the newest record taken in.
    fn oldest_held(&self) -> Option<SampleId> {
        self.sealed
            .iter()
            .filter_map(|s| s.gathered.oldest)
            .chain(self.open.oldest)
            .min()
            .or(self.newest.map(|n| n.saturating_add(1)))
    }

    /// Drops (and counts) the waiting features that were older than every
    /// record held [`SEALED_WAIT_MS`] ago: they can match no record any
    /// more. A feature older than the records held now but not then may
    /// still meet a record that was reordered on its way: it stays.
    fn drop_stale(&mut self, now_ms: u64) {
        let due = self
            .cutoffs
            .back()
            .is_none_or(|&(at, _)| now_ms.saturating_sub(at) >= CUTOFF_STEP_MS);
        if let Some(oldest) = self.oldest_held().filter(|_| due) {
            if self.cutoffs.len() == MAX_CUTOFFS {
                self.cutoffs.pop_front();
            }
            self.cutoffs.push_back((now_ms, oldest));
        }
        let was = self.stale_below;
        while let Some(&(at, oldest)) = self.cutoffs.front() {
            if now_ms.saturating_sub(at) < SEALED_WAIT_MS {
                break;
            }
            self.stale_below = self.stale_below.max(oldest);
            self.cutoffs.pop_front();
        }
        if self.stale_below == was {
            // Nothing new can be stale (those that came since were checked).
            return;
        }
        let stale_below = self.stale_below;
        let before = self.features.len();
        self.features.retain(|&id, _| id >= stale_below);
        self.unmatched += (before - self.features.len()) as u64;
        if self.features.is_empty() {
            self.arrivals.clear();
        }
    }

    /// Features waiting for their record while they run ahead of the
    /// records (the newest waiting is newer than every record taken in, or
    /// no record came yet); 0 when they trail them (a queue's backlog of
    /// older features, which newer ones push out or which go stale).
    pub fn features_ahead(&self) -> usize {
        match (self.arrivals.back(), self.newest) {
            (Some(&feature), Some(record)) if feature <= record => 0,
            _ => self.features.len(),
        }
    }

    /// Most features that wait for their record: past it the oldest go.
    pub fn features_bound(&self) -> usize {
        self.size + FEATURES_KEPT
    }

    /// Features dropped because no record of theirs came, since the last
    /// call; `at_end` drops (and counts) those still waiting too.
    pub fn take_unmatched(&mut self, at_end: bool) -> u64 {
        if at_end {
            self.unmatched += self.features.len() as u64;
            self.features.clear();
            self.arrivals.clear();
        }
        std::mem::take(&mut self.unmatched)
    }

    /// Takes in one record; returns the windows it closed. A window whose
    /// records are all in closes at once if every feature of theirs came
    /// (and no older one waits), else it is sealed and waits for them: until
    /// they come, [`SEALED_WAIT_MS`] pass ([`Monitor::close_overdue`]), too
    /// many windows wait, or the run ends ([`Monitor::close_sealed`]).
    pub fn observe_record(&mut self, r: &MetricRecord, now_ms: u64) -> Vec<Closed> {
        match self.features.remove(&r.id) {
            Some(o) => self.open.matched(o.x, o.p, r.y_true),
            None => {
                self.open.waiting.insert(r.id, r.y_true);
            }
        }
        self.open.oldest = Some(self.open.oldest.map_or(r.id, |o| o.min(r.id)));
        self.newest = Some(self.newest.map_or(r.id, |n| n.max(r.id)));
        self.window.push(r.y_true, r.y_pred);
        self.period.push(now_ms, r.y_true, r.y_pred);
        self.open.predictions.push(r.y_pred);
        self.records_total += 1;
        let mut closed = Vec::new();
        if self.open.predictions.len() == self.size {
            self.sealed.push_back(Sealed {
                gathered: std::mem::take(&mut self.open),
                end_id: r.id,
                end_ms: now_ms,
                window: self.window.stats(),
                period: self.period.stats(now_ms),
                records_total: self.records_total,
            });
            while self.sealed.len() > self.max_sealed {
                closed.extend(self.close_oldest());
            }
            closed.extend(self.close_complete());
        }
        self.drop_stale(now_ms);
        closed
    }

    /// Closes the oldest sealed windows as long as they have every feature.
    fn close_complete(&mut self) -> Vec<Closed> {
        let mut closed = Vec::new();
        while self
            .sealed
            .front()
            .is_some_and(|s| s.gathered.waiting.is_empty())
        {
            closed.extend(self.close_oldest());
        }
        closed
    }

    fn close_oldest(&mut self) -> Option<Closed> {
        let s = self.sealed.pop_front()?;
        Some(self.close(s))
    }

    /// Closes the sealed windows that waited [`SEALED_WAIT_MS`] by
    /// `now_ms` (and the complete ones after them), and drops the features
    /// that can match no record any more (see [`Monitor::observe_features`]).
    pub fn close_overdue(&mut self, now_ms: u64) -> Vec<Closed> {
        self.drop_stale(now_ms);
        let mut closed = Vec::new();
        while self
            .sealed
            .front()
            .is_some_and(|s| now_ms.saturating_sub(s.end_ms) >= SEALED_WAIT_MS)
        {
            closed.extend(self.close_oldest());
            closed.extend(self.close_complete());
        }
        closed
    }

    /// Closes every sealed window now, with the features it has (at the
    /// end of a run).
    pub fn close_sealed(&mut self) -> Vec<Closed> {
        let mut closed = Vec::new();
        while let Some(c) = self.close_oldest() {
            closed.push(c);
        }
        closed
    }

    /// The rolling figures now (count window, period window).
    pub fn rolling(&mut self, now_ms: u64) -> (WindowStats, WindowStats) {
        (self.window.stats(), self.period.stats(now_ms))
    }

    fn close(&mut self, sealed: Sealed) -> Closed {
        self.seq += 1;
        let started = Instant::now();
        // The features of this window's own records; those still missing
        // come too late for it.
        let Sealed {
            gathered,
            end_id,
            end_ms,
            window,
            period,
            records_total,
        } = sealed;
        let (drift, prediction, share, dataset) = self
            .detector
            .evaluate(&gathered.matched, &gathered.predictions);
        // No feature figures: no share and no dataset verdict (not 0).
        let (share, dataset) = match drift.is_empty() {
            true => (None, None),
            false => (Some(share), Some(dataset)),
        };
        let drift_took = started.elapsed();
        let (truth, probabilities): (Vec<usize>, Vec<Probabilities>) =
            gathered.scored.into_iter().unzip();
        // None for a regression, and for a window none of whose
        // probabilities came.
        let classification =
            classification::evaluate(&truth, &probabilities, DECISION_THRESHOLD).ok();
        let mut report = WindowReport {
            seq: self.seq,
            end_id,
            end_ms,
            window,
            period,
            features: drift,
            prediction,
            drift_share: share,
            dataset_drift: dataset,
            active_alerts: Vec::new(),
            classification,
        };
        let events = self.rules.observe(&report);
        report.active_alerts = self.rules.active();
        Closed {
            report,
            events,
            records_total,
            drift_took,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::data::{Dataset, N_FEATURES};
    use crate::model::LinearModel;
    use crate::monitor::drift::DriftConfig;

    const WINDOW: usize = 50;

    fn monitor() -> Monitor {
        let model = LinearModel::fit(Dataset::embedded()).unwrap();
        let settings = MonitorSettings {
            window: WINDOW,
            rules: Vec::new(),
            ..Default::default()
        };
        let baseline = super::super::baseline::from_model(&model, WINDOW, 200, 1).unwrap();
        let config = DriftConfig {
            p_value: settings.drift_p_value,
            drift_share: settings.drift_share,
        };
        let detector = DriftDetector::from_training(&model, config).unwrap();
        Monitor::new(&settings, &baseline, detector).unwrap()
    }

    fn record(id: SampleId) -> MetricRecord {
        let y_pred = 150.0 + (id % 13) as f64;
        MetricRecord {
            id,
            y_true: 150.0,
            y_pred,
            absolute_error: y_pred - 150.0,
        }
    }

    fn features(ids: std::ops::Range<SampleId>, shift: f64) -> Vec<Features> {
        let data = Dataset::embedded();
        ids.map(|id| Features {
            id,
            x: data
                .feature_row(id as usize % data.len())
                .iter()
                .map(|v| v + shift)
                .collect(),
        })
        .collect()
    }

    #[test]
    fn features_of_no_record_are_never_used_and_are_counted() {
        let mut m = monitor();
        // Ahead of every record: they may still meet theirs.
        assert!(m
            .observe_features(features(5000..5080, 1.0).iter())
            .is_empty());
        let closed: Vec<Closed> = (1000..1000 + WINDOW as u64)
            .flat_map(|id| m.observe_record(&record(id), 0))
            .collect();
        assert!(closed.is_empty(), "sealed: waiting for its features");
        let c = m.close_sealed().pop().expect("the sealed window");
        assert!(c.report.features.is_empty());
        assert!(c.report.prediction.is_some());
        assert_eq!(c.report.drift_share, None);
        assert_eq!(c.report.dataset_drift, None);
        assert_eq!(m.take_unmatched(false), 0, "still waiting for a record");
        assert_eq!(m.take_unmatched(true), 80);
    }

    #[test]
    fn features_older_than_every_record_held_two_seconds_ago_are_dropped_while_the_run_goes_on() {
        let mut m = monitor();
        let first = 1000;
        let w = WINDOW as u64;
        // Left by an earlier run: ids a little older than this run's
        // records, far fewer than the bound that would push them out.
        m.observe_features(features(first - 200..first, 1.0).iter());
        // The first window's own features, but for its last 10 records
        // (they trail).
        m.observe_features(features(first..first + w - 10, 0.0).iter());
        let closed: Vec<Closed> = (first..first + w)
            .flat_map(|id| m.observe_record(&record(id), 0))
            .collect();
        assert!(closed.is_empty(), "sealed: 10 features trail");
        assert_eq!(m.take_unmatched(false), 0, "not before the wait");
        // The trailing ones close their window with every feature.
        let closed = m.observe_features(features(first + w - 10..first + w, 0.0).iter());
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].report.features.len(), N_FEATURES);
        assert_eq!(closed[0].report.dataset_drift, Some(false));
        assert!(m.close_overdue(SEALED_WAIT_MS - 1).is_empty());
        assert_eq!(m.take_unmatched(false), 0, "not before the wait");
        assert!(m.close_overdue(SEALED_WAIT_MS).is_empty());
        assert_eq!(
            m.take_unmatched(false),
            200,
            "older than every record held two seconds ago: dropped, before the end"
        );
        // A stale one that comes now is dropped at once.
        m.observe_features(features(first - 300..first - 299, 1.0).iter());
        assert_eq!(m.take_unmatched(false), 1);
        // Reordered on the way (competing model workers): the second
        // window's later half of records comes first, its earlier half
        // 1.5 s later. Their features, older than every record held when
        // they wait, are kept and matched.
        let next = first + w;
        let t = 10 * SEALED_WAIT_MS;
        m.observe_features(features(next..next + w, 0.0).iter());
        let late: Vec<u64> = (next..next + w / 2).collect();
        for id in next + w / 2..next + w {
            assert!(m.observe_record(&record(id), t).is_empty());
        }
        assert!(m.close_overdue(t + 1000).is_empty());
        let mut closed = Vec::new();
        for &id in &late {
            closed.extend(m.observe_record(&record(id), t + 1500));
        }
        assert_eq!(closed.len(), 1, "the second window closes complete");
        assert_eq!(closed[0].report.features.len(), N_FEATURES);
        assert_eq!(m.take_unmatched(false), 0, "no feature of theirs dropped");
        m.close_overdue(t + 5000);
        assert_eq!(m.take_unmatched(true), 0);
    }

    #[test]
    fn a_sealed_window_closes_when_its_last_features_come_or_when_overdue() {
        let mut m = monitor();
        m.observe_features(features(0..40, 0.0).iter());
        let closed: Vec<Closed> = (0..WINDOW as u64)
            .flat_map(|id| m.observe_record(&record(id), 5))
            .collect();
        assert!(closed.is_empty(), "10 features missing");
        assert!(m.close_overdue(5 + SEALED_WAIT_MS - 1).is_empty());
        let closed = m.observe_features(features(40..50, 0.0).iter());
        assert_eq!(closed.len(), 1);
        let r = &closed[0].report;
        assert_eq!((r.seq, r.end_id, r.end_ms), (1, WINDOW as u64 - 1, 5));
        assert_eq!(r.features.len(), N_FEATURES);
        assert!(r.drift_share.is_some() && r.dataset_drift.is_some());
        assert_eq!(closed[0].records_total, WINDOW as u64);
        // The next one: its features never come; time closes it.
        let closed: Vec<Closed> = (100..100 + WINDOW as u64)
            .flat_map(|id| m.observe_record(&record(id), 10))
            .collect();
        assert!(closed.is_empty());
        let c = m.close_overdue(10 + SEALED_WAIT_MS).pop().expect("overdue");
        assert_eq!(c.report.seq, 2);
        assert!(c.report.features.is_empty());
        assert_eq!(m.take_unmatched(true), 0);
    }

    #[test]
    fn windows_close_in_order_and_no_more_wait_than_features_kept() {
        let mut m = monitor();
        // Two windows sealed; the second's features come first: it waits
        // for the first.
        let closed: Vec<Closed> = (0..2 * WINDOW as u64)
            .flat_map(|id| m.observe_record(&record(id), 0))
            .collect();
        assert!(closed.is_empty());
        assert!(m
            .observe_features(features(WINDOW as u64..2 * WINDOW as u64, 0.0).iter())
            .is_empty());
        let closed = m.observe_features(features(0..WINDOW as u64, 0.0).iter());
        let seqs: Vec<u64> = closed.iter().map(|c| c.report.seq).collect();
        assert_eq!(seqs, [1, 2]);
        assert!(closed.iter().all(|c| c.report.features.len() == N_FEATURES));
        // Without features, at most MAX_SEALED windows wait.
        let most = (FEATURES_KEPT / WINDOW).min(MAX_SEALED);
        let closed: Vec<Closed> = (10_000..10_000 + ((most + 1) * WINDOW) as u64)
            .flat_map(|id| m.observe_record(&record(id), 0))
            .collect();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].report.seq, 3);
        assert_eq!(m.close_sealed().len(), most);
    }
}
