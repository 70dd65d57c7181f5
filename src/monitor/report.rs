//! What the monitor tells the rest of the program, in one place: the
//! baseline band of a metric, a closed window's figures and drift, an alert
//! event, and the [`Board`] (the latest of these, bounded) that the
//! dashboard and `/events` read. Every type serialises to the JSON that
//! goes on the exchange (routing keys `monitor` and `alerts`) and into
//! `logs/alerts.jsonl`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::classification::ClassificationWindow;
use crate::core::messages::{envelope, Kind, Published, SampleId, WireMessage};
use crate::model::baseline::Baseline;

/// A figure that may be missing (NaN) goes on the wire as `null` (JSON has
/// no NaN) and comes back as NaN, so a reader of the `monitor` messages
/// (replay, backfill) gets what was sent.
mod nan_as_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// The quality metrics of one window of joined records.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WindowStats {
    pub count: u64,
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub mae: f64,
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub rmse: f64,
    /// R² of the window (NaN when the window's targets are all equal or it
    /// has fewer than two rows; serialised as null).
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub r2: f64,
    /// Mean of `y_pred - y_true`: positive when the model overestimates.
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub bias: f64,
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub max_error: f64,
}

/// How one feature (or the predictions) compares with the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// A feature name, or `"prediction"`.
    pub name: String,
    /// `"ks"` (two-sample Kolmogorov-Smirnov), `"chi2"` (two proportions,
    /// or the levels of a categorical column), or `"constant"` (a column
    /// constant in training: any other value is drift).
    pub test: String,
    /// The test's statistic (KS D, or chi²).
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub statistic: f64,
    /// The test's p-value, before correction.
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub p_value: f64,
    /// Population stability index on the reference's deciles.
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub psi: f64,
    /// Wasserstein-1 distance divided by the reference's standard deviation.
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub wasserstein: f64,
    /// The p-value is below the configured level (Bonferroni-corrected).
    pub drifted: bool,
    /// A categorical column of the user's data: the window's rows with a
    /// level the training data never had (absent for a numeric column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<u64>,
    /// A column of the user's data: the share of the window's rows whose
    /// value is missing (`data.missing = "keep"`, or `null` on the wire);
    /// absent for the diabetes data and the prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<f64>,
}

/// One closed window: a row of `metrics_over_time.csv`, a `monitor`
/// message on the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// Closed windows so far, this run (1 for the first).
    pub seq: u64,
    /// The id of the window's last record.
    pub end_id: SampleId,
    /// When it closed, milliseconds since the Unix epoch.
    pub end_ms: u64,
    /// The last `monitor.window` records.
    pub window: WindowStats,
    /// The records of the last `monitor.period`.
    pub period: WindowStats,
    /// One per feature, in data order (absent while too few features were seen).
    pub features: Vec<Drift>,
    pub prediction: Option<Drift>,
    /// Share of features that drifted; `None` (null) for a window without
    /// features, as `dataset_drift`: drift was not watched, not absent.
    pub drift_share: Option<f64>,
    pub dataset_drift: Option<bool>,
    /// Names of the rules firing after this window.
    pub active_alerts: Vec<String>,
    /// A classifier's figures over the window's records whose class
    /// probabilities came (absent for a regression, and for a window
    /// none of whose probabilities came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationWindow>,
}

/// An alert rule changing state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The rule's name.
    pub rule: String,
    /// `"fired"` or `"resolved"`.
    pub state: String,
    /// The metric the rule watches, e.g. `mae` or `drift.bmi`.
    pub metric: String,
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub value: f64,
    #[serde(deserialize_with = "nan_as_null::deserialize")]
    pub threshold: f64,
    /// The window that changed it.
    pub seq: u64,
    pub end_id: SampleId,
    pub at_ms: u64,
    /// One readable sentence.
    pub message: String,
}

/// Most windows and events the board keeps (what a page opened late shows).
pub const BOARD_WINDOWS: usize = 600;
pub const BOARD_EVENTS: usize = 100;

/// The latest of what the monitor said, bounded; shared with the dashboard.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BoardState {
    pub baseline: Option<Baseline>,
    pub windows: VecDeque<WindowReport>,
    pub events: VecDeque<AlertEvent>,
}

/// The monitor writes; readers either take a copy ([`Board::snapshot`]) or
/// look inside under the lock and copy only what they need
/// ([`Board::read`]: `/events` takes the windows newer than the ones it sent).
#[derive(Debug, Clone, Default)]
pub struct Board(Arc<Mutex<BoardState>>);

impl Board {
    pub fn set_baseline(&self, b: Baseline) {
        self.lock().baseline = Some(b);
    }

    pub fn push_window(&self, w: WindowReport) {
        let mut s = self.lock();
        if s.windows.len() == BOARD_WINDOWS {
            s.windows.pop_front();
        }
        s.windows.push_back(w);
    }

    pub fn push_event(&self, e: AlertEvent) {
        let mut s = self.lock();
        if s.events.len() == BOARD_EVENTS {
            s.events.pop_front();
        }
        s.events.push_back(e);
    }

    /// A copy of the whole board.
    pub fn snapshot(&self) -> BoardState {
        self.lock().clone()
    }

    /// Runs `f` on the board under its lock and returns what `f` made of
    /// it. Keep `f` short and free of I/O: the monitor waits for it.
    pub fn read<T>(&self, f: impl FnOnce(&BoardState) -> T) -> T {
        f(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState> {
        // A writer that panicked leaves whole values: keep serving them.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the history holds of the monitor's recent output: read by
/// `history::backfill::monitor_history` in the pipeline's restore step and
/// handed to the monitor as it opens.
#[derive(Debug, Clone, Default)]
pub struct MonitorHistory {
    /// The last closed windows, oldest first.
    pub windows: Vec<WindowReport>,
    /// The last alert events, oldest first.
    pub events: Vec<AlertEvent>,
    /// Messages of those keys whose body is not a window or an event.
    pub malformed: u64,
    /// Both reads ended before the deadline (else: what they had by then).
    pub complete: bool,
}

// The monitor's messages on the exchange (routing keys `monitor` and
// `alerts`): declared here, beside the types, so that the vocabulary in
// `core::messages` does not import the monitor back.
impl WireMessage for Published<WindowReport> {
    const KIND: Kind = Kind::Monitor;
    fn id(&self) -> SampleId {
        self.id
    }
    fn to_json(&self) -> Vec<u8> {
        // serde_json writes a NaN (the R² of a constant window) as null.
        envelope(self.id, &self.body)
    }
}

impl WireMessage for Published<AlertEvent> {
    const KIND: Kind = Kind::Alerts;
    fn id(&self) -> SampleId {
        self.id
    }
    fn to_json(&self) -> Vec<u8> {
        envelope(self.id, &self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_sees_the_board_in_place_and_copies_only_what_it_takes() {
        let board = Board::default();
        for seq in 1..=BOARD_WINDOWS as u64 + 5 {
            board.push_window(WindowReport {
                classification: None,
                seq,
                end_id: seq,
                end_ms: seq,
                window: WindowStats::default(),
                period: WindowStats::default(),
                features: Vec::new(),
                prediction: None,
                drift_share: None,
                dataset_drift: None,
                active_alerts: Vec::new(),
            });
        }
        let newer: Vec<u64> = board.read(|s| {
            s.windows
                .iter()
                .filter(|w| w.seq > BOARD_WINDOWS as u64 + 2)
                .map(|w| w.seq)
                .collect()
        });
        let last = BOARD_WINDOWS as u64 + 5;
        assert_eq!(newer, [last - 2, last - 1, last]);
        let (len, first) = board.read(|s| (s.windows.len(), s.windows[0].seq));
        assert_eq!((len, first), (BOARD_WINDOWS, 6), "bounded: the oldest left");
    }

    #[test]
    fn a_missing_figure_goes_out_as_null_and_comes_back_as_nan() {
        let w = WindowStats {
            count: 1,
            mae: 2.0,
            rmse: 2.0,
            r2: f64::NAN,
            bias: -2.0,
            max_error: 2.0,
        };
        let json = serde_json::to_string(&w).unwrap();
        assert!(json.contains("\"r2\":null"), "{json}");
        let back: WindowStats = serde_json::from_str(&json).unwrap();
        assert!(back.r2.is_nan());
        assert_eq!((back.mae, back.bias, back.count), (2.0, -2.0, 1));
    }
}
