//! The monitor's telemetry: the figures of the last closed window, the
//! drift statistics per feature, the baseline, and the alerts, as gauges
//! and counters of the one registry (so Prometheus, the dashboard and the
//! tests read the same numbers as `metrics_over_time.csv`).
//!
//! Labels are bounded: `window` is `count` or `period`, `feature` is one of
//! the ten feature names or `prediction`, `metric` one of five, `rule` a
//! configured rule name (their number is bounded by the config check).
//!
//! Each metric is declared once, in the `declare_metrics!` group below
//! (see `core::metrics`): the struct, its registration and
//! `MonitorMetrics::DECLARATIONS` come from it. The group lives beside the
//! monitor, not in the core registry, which is below the monitor and gets
//! it handed in at start ([`crate::core::metrics::Families`]).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::report::{AlertEvent, Drift, WindowReport, WindowStats};
use crate::core::metrics::{declare_metrics, label_set, BatchHistogram, MetricDecl};
use crate::model::baseline::Baseline;

type F64Gauge = Gauge<f64, AtomicU64>;

label_set!(
    pub struct WindowLabel {
        pub window: &'static str,
    }
);

label_set!(
    pub struct FeatureLabel {
        pub feature: String,
    }
);

label_set!(
    pub struct MetricLabel {
        pub metric: &'static str,
    }
);

label_set!(
    pub struct FileLabel {
        pub file: String,
    }
);

label_set!(
    pub struct RuleLabel {
        pub rule: String,
    }
);

label_set!(
    pub struct RuleStateLabel {
        pub rule: String,
        pub state: String,
    }
);

/// Upper bounds of the drift evaluation time buckets, seconds.
pub const DRIFT_EVAL_BUCKETS: [f64; 9] = [
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1,
];

/// The end of the help text of every `window_*` metric.
macro_rules! over_window {
    () => {
        " over the last monitor.window records (window=count) or monitor.period (window=period)"
    };
}

/// The end of the help text of every per-feature `drift_*` metric.
macro_rules! of_last_window {
    () => {
        " of the last closed window against the training data, by feature (or prediction)"
    };
}

declare_metrics! {
    /// Every handle of the monitor, registered under `window_*`, `drift_*`,
    /// `baseline_*`, `alert*`, `monitor_*` and `over_time_*`. Cheap to clone.
    #[derive(Clone, Debug)]
    pub struct MonitorMetrics {
        mae: Family<WindowLabel, F64Gauge>
            => "window_mae", concat!("Mean absolute error", over_window!());
        rmse: Family<WindowLabel, F64Gauge>
            => "window_rmse", concat!("Root mean squared error", over_window!());
        r2: Family<WindowLabel, F64Gauge> => "window_r2", concat!("R squared", over_window!());
        bias: Family<WindowLabel, F64Gauge>
            => "window_bias", concat!("Mean of y_pred - y_true", over_window!());
        max_error: Family<WindowLabel, F64Gauge>
            => "window_max_error", concat!("Largest absolute error", over_window!());
        count: Family<WindowLabel, Gauge> => "window_records", concat!("Records", over_window!());
        /// A classifier's figures (none for a regression).
        classification: Family<MetricLabel, F64Gauge>
            => "window_classification", "A classifier's figure of the last closed window, by metric (accuracy, log_loss, roc_auc, precision, recall, f1, brier; NaN: none)";
        p_value: Family<FeatureLabel, F64Gauge>
            => "drift_p_value", concat!("Drift test p-value (KS, or chi-squared for sex)", of_last_window!());
        psi: Family<FeatureLabel, F64Gauge>
            => "drift_psi", concat!("Population stability index", of_last_window!());
        wasserstein: Family<FeatureLabel, F64Gauge>
            => "drift_wasserstein", concat!("Wasserstein distance / reference std", of_last_window!());
        drifted: Family<FeatureLabel, F64Gauge>
            => "drift_detected", concat!("1 when the drift test rejects (Bonferroni-corrected)", of_last_window!());
        /// The user's own data only (absent for the diabetes data).
        missing: Family<FeatureLabel, F64Gauge>
            => "drift_missing_share", concat!("Share of the rows missing the column's value (the user's own data)", of_last_window!());
        /// NaN (no value) after a window without features, as is
        /// `dataset_drift` and every feature's drift figures.
        drift_share: F64Gauge
            => "drift_share", "Share of features that drifted in the last closed window (NaN: it had no features)";
        dataset_drift: F64Gauge
            => "dataset_drift", "1 when at least monitor.drift_share of the features drifted (NaN: no features)";
        baseline_mean: Family<MetricLabel, F64Gauge>
            => "baseline_mean", "Training baseline: mean of the metric over bootstrap windows";
        baseline_std: Family<MetricLabel, F64Gauge>
            => "baseline_std", "Training baseline: standard deviation of the metric over bootstrap windows";
        alert_active: Family<RuleLabel, Gauge> => "alert_active", "1 while the alert rule fires";
        alert_events: Family<RuleStateLabel, Counter>
            => "alert_events", "Alert rule state changes (fired, resolved)";
        /// Windows closed (rows of metrics_over_time.csv).
        windows: Counter => "monitor_windows", "Windows the monitor closed";
        /// Records the monitor took in (restored ones included).
        records: Counter => "monitor_records", "Records the monitor took in";
        /// Failed writes of the monitor's files, by file name (two).
        write_failures: Family<FileLabel, Counter>
            => "monitor_write_failures", "Failed writes of the monitor's files (metrics_over_time.csv, alerts.jsonl)";
        /// Windows closed without the features of any of their records (no
        /// drift figures).
        windows_without_features: Counter
            => "monitor_windows_without_features", "Windows closed without the features of any of their records: no drift figures";
        /// Features dropped unused because no record of theirs came.
        features_unmatched: Counter
            => "monitor_features_unmatched", "Features dropped unused because no record with their id came (stale or foreign features)";
        /// Bytes of rows dropped because their file could not be written.
        dropped_bytes: Counter
            => "monitor_dropped" in bytes, "Rows of the monitor's files dropped because the file could not be written";
        drift_eval_seconds: BatchHistogram = BatchHistogram::new(&DRIFT_EVAL_BUCKETS)
            => "drift_evaluation" in seconds, "Time of one drift evaluation of a closed window";
        /// Windows `error_over_time.png` covers (earlier runs' included).
        over_time_windows: Gauge
            => "over_time_windows", "Windows error_over_time.png covers, earlier runs' read back at start included";
        /// Sequence number of the first window on the picture.
        over_time_first_window: Gauge
            => "over_time_first_window", "Sequence number of the first window on error_over_time.png";
        /// Alert markers on the picture.
        over_time_markers: Gauge
            => "over_time_markers", "Alert events marked on error_over_time.png";
    }
}

impl MonitorMetrics {
    pub fn new() -> MonitorMetrics {
        MonitorMetrics::declared()
    }

    /// Registers every handle under its declaration ([`Self::DECLARATIONS`]).
    pub fn register(&self, r: &mut Registry) {
        self.register_declared(r)
    }

    /// What `error_over_time.png` covers.
    pub fn set_over_time(&self, s: &super::over_time::OverTime) {
        self.over_time_windows.set(s.windows() as i64);
        self.over_time_first_window.set(s.first_seq() as i64);
        self.over_time_markers.set(s.events_len() as i64);
    }

    pub fn set_baseline(&self, b: &Baseline) {
        let regression = [
            ("mae", b.mae),
            ("rmse", b.rmse),
            ("r2", b.r2),
            ("bias", b.bias),
            ("max_error", b.max_error),
        ];
        let classifier = b
            .classification
            .iter()
            .flat_map(|c| c.named())
            .map(|(metric, band, _)| (metric, *band));
        for (metric, band) in regression.into_iter().chain(classifier) {
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
    /// `classifier`: the model is one (a window without its figures sets
    /// them to NaN).
    pub fn record_window(
        &self,
        w: &WindowReport,
        rules: &[String],
        features: &[&str],
        classifier: bool,
    ) {
        self.windows.inc();
        self.set_window("count", &w.window);
        self.set_window("period", &w.period);
        if classifier {
            let figures = w.classification.as_ref().map(|c| c.figures());
            for (i, metric) in crate::model::tabular::CLASSIFICATION_METRICS
                .into_iter()
                .enumerate()
            {
                let v = figures.and_then(|f| f[i].1);
                self.classification
                    .get_or_create(&MetricLabel { metric })
                    .set(v.unwrap_or(f64::NAN));
            }
        }
        if w.features.is_empty() {
            // No features: the last figures would be another window's.
            self.windows_without_features.inc();
            for feature in features {
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
        if let Some(m) = d.missing {
            self.missing.get_or_create(&l).set(m);
        }
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
        if let Some(m) = self.missing.get(&l) {
            m.set(f64::NAN);
        }
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
    fn declarations(&self) -> &'static [MetricDecl] {
        MonitorMetrics::DECLARATIONS
    }

    fn register(&self, r: &mut Registry) {
        MonitorMetrics::register(self, r)
    }
}

impl Default for MonitorMetrics {
    fn default() -> Self {
        MonitorMetrics::new()
    }
}
