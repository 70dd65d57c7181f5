//! The monitor itself: takes in features and joined records, closes a
//! window every `monitor.window` records, and says what it saw — the
//! window's figures, the period's, drift against the training data, and
//! the alert rules that changed state.
//!
//! Pure and synchronous (the actor in `actors::monitor` owns one, feeds it
//! and writes what it returns), so `modelwatch replay --rebuild` can run
//! the same monitor over a history and produce the same rows.
//!
//! Windows are tumbling for the report (one row per `window` records) and
//! rolling for the live gauges (the last `window` records, between
//! closes). Drift compares the closed window's predictions, and the last
//! `window` features whose ids are not past the window's last record, with
//! the training data. Features and records arrive independently (features
//! run ahead by the samples in flight; in the split layout they come on
//! another queue), so the features are kept by id, up to
//! [`FEATURES_KEPT`] of them, and a window's features are those up to its
//! end: a shift from sample N on shows in the window that holds sample N,
//! not earlier.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::alerts::{RuleError, Rules};
use super::drift::DriftDetector;
use super::report::{AlertEvent, Baseline, WindowReport, WindowStats};
use super::rolling::{CountWindow, PeriodWindow};
use crate::config::MonitorSettings;
use crate::data::FeatureVector;
use crate::messages::{Features, MetricRecord, SampleId};

/// Features kept at most, beyond `window`: how far features may run ahead
/// of records (the source's `max_in_flight` × `batch_size` in one process)
/// and still be matched to their window.
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

pub struct Monitor {
    window: CountWindow,
    period: PeriodWindow,
    size: usize,
    /// Features by arrival, with their ids (bounded: `window` + [`FEATURES_KEPT`]).
    features: VecDeque<(SampleId, FeatureVector)>,
    predictions: Vec<f64>,
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
            features: VecDeque::new(),
            predictions: Vec::with_capacity(settings.window),
            detector,
            rules: Rules::new(&settings.rules, baseline)?,
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

    /// The rule names, for the telemetry of active alerts.
    pub fn rule_names(&self) -> Vec<String> {
        self.rules.names()
    }

    pub fn observe_features<'a>(&mut self, xs: impl IntoIterator<Item = &'a Features>) {
        for f in xs {
            if self.features.len() == self.size + FEATURES_KEPT {
                self.features.pop_front();
            }
            self.features.push_back((f.id, f.x));
        }
    }

    /// Takes in one record; returns the window it closed, if it closed one.
    pub fn observe_record(&mut self, r: &MetricRecord, now_ms: u64) -> Option<Closed> {
        self.window.push(r.y_true, r.y_pred);
        self.period.push(now_ms, r.y_true, r.y_pred);
        self.predictions.push(r.y_pred);
        self.records_total += 1;
        (self.predictions.len() == self.size).then(|| self.close(r.id, now_ms))
    }

    /// The rolling figures now (count window, period window).
    pub fn rolling(&mut self, now_ms: u64) -> (WindowStats, WindowStats) {
        (self.window.stats(), self.period.stats(now_ms))
    }

    fn close(&mut self, end_id: SampleId, now_ms: u64) -> Closed {
        self.seq += 1;
        let started = Instant::now();
        // The last `window` features up to this window's last record.
        let mut features: Vec<FeatureVector> = self
            .features
            .iter()
            .rev()
            .filter(|(id, _)| *id <= end_id)
            .take(self.size)
            .map(|(_, x)| *x)
            .collect();
        features.reverse();
        let (drift, prediction, share, dataset) =
            self.detector.evaluate(&features, &self.predictions);
        let drift_took = started.elapsed();
        self.predictions.clear();
        let mut report = WindowReport {
            seq: self.seq,
            end_id,
            end_ms: now_ms,
            window: self.window.stats(),
            period: self.period.stats(now_ms),
            features: drift,
            prediction,
            drift_share: share,
            dataset_drift: dataset,
            active_alerts: Vec::new(),
        };
        let events = self.rules.observe(&report);
        report.active_alerts = self.rules.active();
        Closed {
            report,
            events,
            records_total: self.records_total,
            drift_took,
        }
    }
}
