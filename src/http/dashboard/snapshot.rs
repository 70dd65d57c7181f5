//! The compact snapshot the dashboard shows: the counters of the telemetry
//! registry, the model, and what the monitor's [`Board`] holds. One
//! snapshot is built per `/events` tick (once a second at most) and is also
//! what the server renders into the page, so the page without JavaScript and
//! the live page show the same numbers.
//!
//! Counters are read from the registry's handles (the same atomics
//! `/metrics` encodes); label families are read with `Family::get`, which
//! never creates a series, so watching the dashboard does not change
//! `/metrics`. Windows are sent incrementally: an event carries the
//! windows whose `seq` is past the one the client last got (the first event
//! carries everything the board keeps, so a page opened late has its
//! history at once). The histogram is the plot's [`HistogramView`], shared
//! by reference.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::core::metrics::{EventLabel, Metrics, QueueEventLabel, ReasonLabel};
use crate::model::baseline::Baseline;
use crate::model::LinearModel;
use crate::monitor::classification::ClassificationWindow;
use crate::monitor::report::{AlertEvent, BoardState, Drift, WindowReport};
use crate::plot::view::HistogramView;

/// Reasons a half is dropped by the join (the `reason` label's values).
pub const DROP_REASONS: [&str; 4] = ["expired", "evicted", "duplicate", "redelivered"];

/// Recent alert events a snapshot carries.
pub const SNAPSHOT_EVENTS: usize = 20;

/// The model this process serves.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The training score (on all rows): R², or a classifier's accuracy.
    pub r2: f64,
    /// What the score is: `"R²"` or `"accuracy"`.
    pub score: &'static str,
    pub mae: f64,
    /// The artifact path, or `"fitted in memory"`.
    pub origin: String,
}

impl ModelInfo {
    pub fn of(model: &LinearModel, origin: &str) -> ModelInfo {
        ModelInfo {
            r2: model.training.r2,
            score: "R²",
            mae: model.training.mae,
            origin: crate::core::text::sanitize(origin),
        }
    }
}

/// The bridge's state.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct BridgeView {
    pub connected: bool,
    pub buffered: i64,
    pub resent: u64,
    pub dropped: u64,
}

/// One inbound queue's counts (split layout).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueView {
    pub queue: String,
    pub delivered: u64,
    pub acked: u64,
    pub requeued: u64,
}

/// The counters, from the registry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Counters {
    pub uptime_s: f64,
    /// Rows per second over the last ten seconds.
    pub rate: f64,
    pub samples: u64,
    pub rows: u64,
    pub waiting: i64,
    /// Halves dropped by the join, per reason (absent reasons are 0).
    pub expired: u64,
    pub evicted: u64,
    pub duplicate: u64,
    pub redelivered: u64,
    pub bridge: Option<BridgeView>,
    pub inbound: Vec<QueueView>,
}

/// One window, compact: what the charts plot.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Point {
    pub seq: u64,
    /// Seconds since the Unix epoch (uPlot's x unit).
    pub t: f64,
    pub mae: f64,
    pub rmse: f64,
    /// `None` (JSON null) when the window's R² is undefined.
    pub r2: Option<f64>,
    pub bias: f64,
    /// A classifier's figures (absent for a regression, null when the
    /// window had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_loss: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brier: Option<Option<f64>>,
    /// An alert fired with this window.
    pub alert: bool,
}

impl Point {
    /// The point of `w`, with a `classifier`'s figures.
    pub fn of(w: &WindowReport, classifier: bool) -> Point {
        let c = w.classification.as_ref();
        let figure =
            |f: fn(&ClassificationWindow) -> Option<f64>| classifier.then(|| c.and_then(f));
        Point {
            accuracy: figure(|c| Some(c.accuracy)),
            log_loss: figure(|c| Some(c.log_loss)),
            roc_auc: figure(|c| c.roc_auc),
            brier: figure(|c| Some(c.brier)),
            seq: w.seq,
            t: w.end_ms as f64 / 1000.0,
            mae: w.window.mae,
            rmse: w.window.rmse,
            r2: w.window.r2.is_finite().then_some(w.window.r2),
            bias: w.window.bias,
            alert: !w.active_alerts.is_empty(),
        }
    }
}

/// Writes the shared view as itself (serde has no `Arc` without its `rc` feature).
fn shared_view<S: serde::Serializer>(
    v: &Option<Arc<HistogramView>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    v.as_deref().serialize(s)
}

/// What one `/events` message carries.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub counters: Counters,
    pub model: Option<ModelInfo>,
    /// Sent with the first event only (it does not change during a run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// Windows new since the client's last event (all kept, in the first).
    pub windows: Vec<Point>,
    /// The drift of the latest window, per feature and the prediction.
    pub drift: Vec<Drift>,
    pub drift_share: Option<f64>,
    /// The latest window had no features: drift is not watched.
    pub no_features: bool,
    pub active_alerts: Vec<String>,
    /// The latest alert events, newest last.
    pub events: Vec<AlertEvent>,
    /// The error histogram and its density curve as the plot last drew
    /// them (`null` in a process without the plot role, or before its
    /// first render).
    #[serde(serialize_with = "shared_view")]
    pub histogram: Option<Arc<HistogramView>>,
}

/// Reads the counters from the registry's handles.
pub fn counters(
    m: &Metrics,
    started: Instant,
    bridge: bool,
    inbound_queues: &[String],
) -> Counters {
    let dropped = |reason: &'static str| {
        m.join_dropped
            .get(&ReasonLabel { reason })
            .map_or(0, |c| c.get())
    };
    let bridge_event = |event: &'static str| {
        m.bridge_messages
            .get(&EventLabel { event })
            .map_or(0, |c| c.get())
    };
    let inbound = inbound_queues
        .iter()
        .filter_map(|q| {
            let get = |event: &'static str| {
                m.inbound_messages
                    .get(&QueueEventLabel {
                        queue: q.clone(),
                        event,
                    })
                    .map(|c| c.get())
            };
            let delivered = get("delivered")?;
            Some(QueueView {
                queue: q.clone(),
                delivered,
                acked: get("acked").unwrap_or(0),
                requeued: get("requeued").unwrap_or(0),
            })
        })
        .collect();
    Counters {
        uptime_s: started.elapsed().as_secs_f64(),
        rate: m.rows_per_second.get(),
        samples: m.samples_emitted.get(),
        rows: m.rows_written.get(),
        waiting: m.join_waiting.get(),
        expired: dropped(DROP_REASONS[0]),
        evicted: dropped(DROP_REASONS[1]),
        duplicate: dropped(DROP_REASONS[2]),
        redelivered: dropped(DROP_REASONS[3]),
        bridge: bridge.then(|| BridgeView {
            connected: m.bridge_connected.get() == 1,
            buffered: m.bridge_buffered.get(),
            resent: bridge_event("resent"),
            dropped: bridge_event("dropped"),
        }),
        inbound,
    }
}

/// A snapshot with the windows past `after_seq` (`None`: all of them, and
/// the baseline).
pub fn build(
    counters: Counters,
    model: Option<ModelInfo>,
    board: &BoardState,
    histogram: Option<Arc<HistogramView>>,
    after_seq: Option<u64>,
) -> Snapshot {
    let latest = board.windows.back();
    let classifier = board
        .baseline
        .as_ref()
        .is_some_and(|b| b.classification.is_some());
    let mut drift: Vec<Drift> = latest.map(|w| w.features.clone()).unwrap_or_default();
    if let Some(p) = latest.and_then(|w| w.prediction.clone()) {
        drift.push(p);
    }
    let skip = board.events.len().saturating_sub(SNAPSHOT_EVENTS);
    Snapshot {
        counters,
        model,
        baseline: if after_seq.is_none() {
            board.baseline.clone()
        } else {
            None
        },
        windows: board
            .windows
            .iter()
            .filter(|w| after_seq.is_none_or(|s| w.seq > s))
            .map(|w| Point::of(w, classifier))
            .collect(),
        drift,
        drift_share: latest.and_then(|w| w.drift_share),
        no_features: latest.is_some_and(|w| w.features.is_empty()),
        active_alerts: latest.map(|w| w.active_alerts.clone()).unwrap_or_default(),
        events: board.events.iter().skip(skip).cloned().collect(),
        histogram,
    }
}

/// The last window's `seq` on the board (what the next event starts after).
pub fn last_seq(board: &BoardState) -> Option<u64> {
    board.windows.back().map(|w| w.seq)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::baseline::Band;
    use crate::monitor::report::WindowStats;

    pub fn band(mean: f64) -> Band {
        Band {
            mean,
            std: mean / 10.0,
            p01: mean * 0.8,
            p99: mean * 1.2,
        }
    }

    pub fn window(seq: u64, alerts: &[&str]) -> WindowReport {
        WindowReport {
            classification: None,
            seq,
            end_id: 1_700_000_000_000_000 + seq,
            end_ms: 1_700_000_000_000 + seq * 1000,
            window: WindowStats {
                count: 100,
                mae: 40.0 + seq as f64,
                rmse: 50.0 + seq as f64,
                r2: if seq == 2 { f64::NAN } else { 0.5 },
                bias: -1.5,
                max_error: 150.0,
            },
            period: WindowStats::default(),
            features: vec![
                Drift {
                    name: "age".into(),
                    test: "ks".into(),
                    statistic: 0.1,
                    p_value: 0.4,
                    psi: 0.02,
                    wasserstein: 0.03,
                    drifted: false,
                    unseen: None,
                    missing: None,
                },
                Drift {
                    name: "bmi".into(),
                    test: "ks".into(),
                    statistic: 0.6,
                    p_value: 1e-9,
                    psi: 0.9,
                    wasserstein: 0.7,
                    drifted: true,
                    unseen: None,
                    missing: None,
                },
            ],
            prediction: None,
            drift_share: Some(0.5),
            dataset_drift: Some(true),
            active_alerts: alerts.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn board() -> BoardState {
        let mut b = BoardState {
            baseline: Some(Baseline {
                classification: None,
                window: 100,
                windows: 1000,
                seed: 1,
                mae: band(43.0),
                rmse: band(54.0),
                r2: band(0.5),
                bias: band(0.0),
                max_error: band(150.0),
            }),
            ..BoardState::default()
        };
        for seq in 1..=3 {
            b.windows
                .push_back(window(seq, if seq == 3 { &["mae_high"] } else { &[] }));
        }
        b.events.push_back(AlertEvent {
            rule: "mae_high".into(),
            state: "fired".into(),
            metric: "mae".into(),
            value: 43.0,
            threshold: 42.0,
            seq: 3,
            end_id: 1,
            at_ms: 1_700_000_003_000,
            message: "MAE <b>43</b> above 42".into(),
        });
        b
    }

    #[test]
    fn the_first_snapshot_has_every_window_and_the_baseline_later_ones_only_new_windows() {
        let b = board();
        let m = Telemetry::new("test");
        let c = counters(&m.metrics, Instant::now(), false, &[]);
        let first = build(c.clone(), None, &b, None, None);
        assert_eq!(
            first.windows.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(first.baseline.is_some());
        assert_eq!(first.windows[1].r2, None, "NaN R² is null");
        assert!(first.windows[2].alert && !first.windows[0].alert);
        assert_eq!(first.active_alerts, ["mae_high"]);
        assert_eq!(first.drift.len(), 2);
        assert_eq!(first.drift_share, Some(0.5));
        let next = build(c, None, &b, None, last_seq(&b).map(|s| s - 1));
        assert_eq!(next.windows.iter().map(|p| p.seq).collect::<Vec<_>>(), [3]);
        assert!(next.baseline.is_none());
        let json = serde_json::to_string(&next).unwrap();
        assert!(!json.contains("NaN"), "{json}");
    }

    use crate::core::metrics::Telemetry;

    #[test]
    fn a_full_board_makes_a_bounded_first_event_and_small_later_ones() {
        use crate::monitor::report::BOARD_WINDOWS;
        let mut b = board();
        b.windows.clear();
        for seq in 1..=BOARD_WINDOWS as u64 + 50 {
            if b.windows.len() == BOARD_WINDOWS {
                b.windows.pop_front();
            }
            let mut w = window(seq, &["mae_high"]);
            w.features = (0..10).map(|_| w.features[1].clone()).collect();
            b.windows.push_back(w);
        }
        let t = Telemetry::new("test");
        let c = counters(&t.metrics, Instant::now(), true, &[]);
        // A histogram of a long run, as the plot publishes it.
        let mut h = crate::plot::histogram::ErrorHistogram::new();
        for i in 0..100_000u64 {
            h.add((i % 997) as f64 * 0.173 + (i % 13) as f64);
        }
        let view = Some(Arc::new(HistogramView::of(&h, 40, 1)));
        let first = build(c.clone(), None, &b, view.clone(), None);
        assert_eq!(first.windows.len(), BOARD_WINDOWS);
        let first_len = serde_json::to_string(&first).unwrap().len();
        let next = build(c, None, &b, view, last_seq(&b).map(|s| s - 1));
        let next_len = serde_json::to_string(&next).unwrap().len();
        println!("first event {first_len} bytes, next {next_len} bytes");
        assert!(first_len < 128 * 1024, "{first_len}");
        assert!(next_len < 4 * 1024, "{next_len}");
    }

    #[test]
    fn counters_come_from_the_registry_without_creating_series() {
        let t = Telemetry::new("test");
        let m = &t.metrics;
        m.samples_emitted.inc_by(7);
        m.rows_written.inc_by(5);
        m.join_dropped("expired", 2);
        m.bridge("resent").inc_by(3);
        m.inbound("q.model", "delivered").inc_by(9);
        m.inbound("q.model", "acked").inc_by(8);
        // Memory gauges move between two encodings: compare the rest.
        let stable = |t: &Telemetry| {
            t.encode()
                .lines()
                .filter(|l| !l.contains("resident_memory"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let before = stable(&t);
        let c = counters(
            m,
            Instant::now(),
            true,
            &["q.model".into(), "q.other".into()],
        );
        assert_eq!((c.samples, c.rows, c.expired, c.evicted), (7, 5, 2, 0));
        let b = c.bridge.unwrap();
        assert_eq!((b.connected, b.resent, b.dropped), (false, 3, 0));
        assert_eq!(
            c.inbound,
            [QueueView {
                queue: "q.model".into(),
                delivered: 9,
                acked: 8,
                requeued: 0
            }]
        );
        assert_eq!(stable(&t), before, "reading created a series");
    }
}
