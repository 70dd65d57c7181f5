//! The monitor's telemetry: the figures of the last closed window, the
//! drift statistics per feature, the baseline, and the alerts, as gauges
//! and counters of the one registry (so Prometheus, the dashboard and the
//! tests read the same numbers as `metrics_over_time.csv`).
//!
//! Labels are bounded: `window` is `count` or `period`, `feature` is one of
//! the ten feature names or `prediction`, `metric` one of five, `rule` a
//! configured rule name (their number is bounded by the config check).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::report::{AlertEvent, Drift, WindowReport, WindowStats};
use crate::core::metrics::BatchHistogram;
use crate::model::baseline::Baseline;

type F64Gauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabel {
    pub window: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureLabel {
    pub feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabel {
    pub metric: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabel {
    pub file: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleStateLabel {
    pub rule: String,
    pub state: String,
}

/// Upper bounds of the drift evaluation time buckets, seconds.
pub const DRIFT_EVAL_BUCKETS: [f64; 9] = [
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1,
];

/// Every handle of the monitor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MonitorMetrics {
    pub mae: Family<WindowLabel, F64Gauge>,
    pub rmse: Family<WindowLabel, F64Gauge>,
    pub r2: Family<WindowLabel, F64Gauge>,
    pub bias: Family<WindowLabel, F64Gauge>,
    pub max_error: Family<WindowLabel, F64Gauge>,
    pub count: Family<WindowLabel, Gauge>,
    pub p_value: Family<FeatureLabel, F64Gauge>,
    pub psi: Family<FeatureLabel, F64Gauge>,
    pub wasserstein: Family<FeatureLabel, F64Gauge>,
    pub drifted: Family<FeatureLabel, F64Gauge>,
    /// NaN (no value) after a window without features, as is
    /// `dataset_drift` and every feature's drift figures.
    pub drift_share: F64Gauge,
    pub dataset_drift: F64Gauge,
    pub baseline_mean: Family<MetricLabel, F64Gauge>,
    pub baseline_std: Family<MetricLabel, F64Gauge>,
    pub alert_active: Family<RuleLabel, Gauge>,
    pub alert_events: Family<RuleStateLabel, Counter>,
    /// Windows closed (rows of metrics_over_time.csv).
    pub windows: Counter,
    /// Records the monitor took in (restored ones included).
    pub records: Counter,
    pub drift_eval_seconds: BatchHistogram,
    /// Windows `error_over_time.png` covers (earlier runs' included).
    pub over_time_windows: Gauge,
    /// Sequence number of the first window on the picture.
    pub over_time_first_window: Gauge,
    /// Alert markers on the picture.
    pub over_time_markers: Gauge,
    /// Failed writes of the monitor's files, by file name (two).
    pub write_failures: Family<FileLabel, Counter>,
    /// Bytes of rows dropped because their file could not be written.
    pub dropped_bytes: Counter,
    /// Windows closed without the features of any of their records (no
    /// drift figures).
    pub windows_without_features: Counter,
    /// Features dropped unused because no record of theirs came.
    pub features_unmatched: Counter,
}

impl MonitorMetrics {
    pub fn new() -> MonitorMetrics {
        MonitorMetrics {
            mae: Family::default(),
            rmse: Family::default(),
            r2: Family::default(),
            bias: Family::default(),
            max_error: Family::default(),
            count: Family::default(),
            p_value: Family::default(),
            psi: Family::default(),
            wasserstein: Family::default(),
            drifted: Family::default(),
            drift_share: Gauge::default(),
            dataset_drift: Gauge::default(),
            baseline_mean: Family::default(),
            baseline_std: Family::default(),
            alert_active: Family::default(),
            alert_events: Family::default(),
            windows: Counter::default(),
            records: Counter::default(),
            drift_eval_seconds: BatchHistogram::new(&DRIFT_EVAL_BUCKETS),
            over_time_windows: Gauge::default(),
            over_time_first_window: Gauge::default(),
            over_time_markers: Gauge::default(),
            write_failures: Family::default(),
            dropped_bytes: Counter::default(),
            windows_without_features: Counter::default(),
            features_unmatched: Counter::default(),
        }
    }

    /// Registers every handle under `window_*`, `drift_*`, `baseline_*`,
    /// `alert*`, `monitor_*` and `over_time_*`.
    pub fn register(&self, r: &mut Registry) {
        let w =
            "over the last monitor.window records (window=count) or monitor.period (window=period)";
        r.register(
            "window_mae",
            format!("Mean absolute error {w}"),
            self.mae.clone(),
        );
        r.register(
            "window_rmse",
            format!("Root mean squared error {w}"),
            self.rmse.clone(),
        );
        r.register("window_r2", format!("R squared {w}"), self.r2.clone());
        r.register(
            "window_bias",
            format!("Mean of y_pred - y_true {w}"),
            self.bias.clone(),
        );
        r.register(
            "window_max_error",
            format!("Largest absolute error {w}"),
            self.max_error.clone(),
        );
        r.register("window_records", format!("Records {w}"), self.count.clone());
        let f = "of the last closed window against the training data, by feature (or prediction)";
        r.register(
            "drift_p_value",
            format!("Drift test p-value (KS, or chi-squared for sex) {f}"),
            self.p_value.clone(),
        );
        r.register(
            "drift_psi",
            format!("Population stability index {f}"),
            self.psi.clone(),
        );
        r.register(
            "drift_wasserstein",
            format!("Wasserstein distance / reference std {f}"),
            self.wasserstein.clone(),
        );
        r.register(
            "drift_detected",
            format!("1 when the drift test rejects (Bonferroni-corrected) {f}"),
            self.drifted.clone(),
        );
        r.register(
            "drift_share",
            "Share of features that drifted in the last closed window (NaN: it had no features)",
            self.drift_share.clone(),
        );
        r.register(
            "dataset_drift",
            "1 when at least monitor.drift_share of the features drifted (NaN: no features)",
            self.dataset_drift.clone(),
        );
        r.register(
            "baseline_mean",
            "Training baseline: mean of the metric over bootstrap windows",
            self.baseline_mean.clone(),
        );
        r.register(
            "baseline_std",
            "Training baseline: standard deviation of the metric over bootstrap windows",
            self.baseline_std.clone(),
        );
        r.register(
            "alert_active",
            "1 while the alert rule fires",
            self.alert_active.clone(),
        );
        r.register(
            "alert_events",
            "Alert rule state changes (fired, resolved)",
            self.alert_events.clone(),
        );
        r.register(
            "monitor_windows",
            "Windows the monitor closed",
            self.windows.clone(),
        );
        r.register(
            "monitor_records",
            "Records the monitor took in",
            self.records.clone(),
        );
        r.register(
            "monitor_write_failures",
            "Failed writes of the monitor's files (metrics_over_time.csv, alerts.jsonl)",
            self.write_failures.clone(),
        );
        r.register(
            "monitor_windows_without_features",
            "Windows closed without the features of any of their records: no drift figures",
            self.windows_without_features.clone(),
        );
        r.register(
            "monitor_features_unmatched",
            "Features dropped unused because no record with their id came (stale or foreign features)",
            self.features_unmatched.clone(),
        );
        r.register_with_unit(
            "monitor_dropped",
            "Rows of the monitor's files dropped because the file could not be written",
            Unit::Bytes,
            self.dropped_bytes.clone(),
        );
        r.register_with_unit(
            "drift_evaluation",
            "Time of one drift evaluation of a closed window",
            Unit::Seconds,
            self.drift_eval_seconds.clone(),
        );
        r.register(
            "over_time_windows",
            "Windows error_over_time.png covers, earlier runs' read back at start included",
            self.over_time_windows.clone(),
        );
        r.register(
            "over_time_first_window",
            "Sequence number of the first window on error_over_time.png",
            self.over_time_first_window.clone(),
        );
        r.register(
            "over_time_markers",
            "Alert events marked on error_over_time.png",
            self.over_time_markers.clone(),
        );
    }

    /// What `error_over_time.png` covers.
    pub fn set_over_time(&self, s: &super::over_time::OverTime) {
        self.over_time_windows.set(s.windows() as i64);
        self.over_time_first_window.set(s.first_seq() as i64);
        self.over_time_markers.set(s.events_len() as i64);
    }

    pub fn set_baseline(&self, b: &Baseline) {
        for (metric, band) in [
            ("mae", b.mae),
            ("rmse", b.rmse),
            ("r2", b.r2),
            ("bias", b.bias),
            ("max_error", b.max_error),
        ] {
            self.baseline_mean
                .get_or_create(&MetricLabel { metric })
                .set(band.mean);
            self.baseline_std
                .get_or_create(&MetricLabel { metric })
                .set(band.std);
        }
    }

    /// The rolling figures of one window kind (also between closes).
    pub fn set_window(&self, window: &'static str, s: &WindowStats) {
        let l = WindowLabel { window };
        self.mae.get_or_create(&l).set(s.mae);
        self.rmse.get_or_create(&l).set(s.rmse);
        self.r2.get_or_create(&l).set(s.r2);
        self.bias.get_or_create(&l).set(s.bias);
        self.max_error.get_or_create(&l).set(s.max_error);
        self.count.get_or_create(&l).set(s.count as i64);
    }

    /// A closed window: its figures, drift and active alerts.
    pub fn record_window(&self, w: &WindowReport, rules: &[String]) {
        self.windows.inc();
        self.set_window("count", &w.window);
        self.set_window("period", &w.period);
        if w.features.is_empty() {
            // No features: the last figures would be another window's.
            self.windows_without_features.inc();
            for feature in crate::core::data::FEATURE_NAMES {
                self.set_no_drift(feature);
            }
        }
        if w.prediction.is_none() {
            self.set_no_drift(super::drift::PREDICTION);
        }
        for d in w.features.iter().chain(w.prediction.as_ref()) {
            self.set_drift(d);
        }
        self.drift_share.set(w.drift_share.unwrap_or(f64::NAN));
        self.dataset_drift
            .set(w.dataset_drift.map_or(f64::NAN, |d| f64::from(u8::from(d))));
        for rule in rules {
            let on = w.active_alerts.iter().any(|a| a == rule);
            self.alert_active
                .get_or_create(&RuleLabel { rule: rule.clone() })
                .set(on as i64);
        }
    }

    fn set_drift(&self, d: &Drift) {
        let l = FeatureLabel {
            feature: d.name.clone(),
        };
        self.p_value.get_or_create(&l).set(d.p_value);
        self.psi.get_or_create(&l).set(d.psi);
        self.wasserstein.get_or_create(&l).set(d.wasserstein);
        self.drifted
            .get_or_create(&l)
            .set(f64::from(u8::from(d.drifted)));
    }

    /// No figures for `feature` in the last window: NaN, verdict included.
    fn set_no_drift(&self, feature: &str) {
        let l = FeatureLabel {
            feature: feature.to_owned(),
        };
        self.p_value.get_or_create(&l).set(f64::NAN);
        self.psi.get_or_create(&l).set(f64::NAN);
        self.wasserstein.get_or_create(&l).set(f64::NAN);
        self.drifted.get_or_create(&l).set(f64::NAN);
    }

    pub fn write_failure(&self, file: &str) {
        self.write_failures
            .get_or_create(&FileLabel {
                file: file.to_owned(),
            })
            .inc();
    }

    pub fn record_event(&self, e: &AlertEvent) {
        self.alert_events
            .get_or_create(&RuleStateLabel {
                rule: e.rule.clone(),
                state: e.state.clone(),
            })
            .inc();
    }
}

impl crate::core::metrics::Families for MonitorMetrics {
    fn register(&self, r: &mut Registry) {
        MonitorMetrics::register(self, r)
    }
}

impl Default for MonitorMetrics {
    fn default() -> Self {
        MonitorMetrics::new()
    }
}
