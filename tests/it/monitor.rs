//! The monitor through the real binary: an unshifted stream fires nothing,
//! a shifted one fires the drift and quality alerts within three windows,
//! the alert reaches a consumer on the real RabbitMQ, and a restart of the
//! process continues the windows where they stopped.
//!
//! Numbers come from the files the run writes (`metrics_over_time.csv`,
//! `alerts.jsonl`) and from the registry at exit (`final_metrics.txt`),
//! never from log text.

use crate::support;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::sandbox::{run_within, Sandbox, Scrape};
use statrs::distribution::{Binomial, DiscreteCDF};

const FEATURES: [&str; 10] = [
    "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
];

/// One row of `metrics_over_time.csv`, by column name.
struct Window(BTreeMap<String, String>);

impl Window {
    fn num(&self, col: &str) -> f64 {
        self.0[col]
            .parse()
            .unwrap_or_else(|_| panic!("{col} = {:?} is not a number", self.0[col]))
    }
    fn seq(&self) -> u64 {
        self.num("seq") as u64
    }
    fn drifted(&self, feature: &str) -> bool {
        self.0[&format!("{feature}_drift")] == "1"
    }
}

fn read_windows(logs: &Path) -> Vec<Window> {
    let text =
        std::fs::read_to_string(logs.join("metrics_over_time.csv")).expect("metrics_over_time.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            assert_eq!(fields.len(), header.len(), "a whole row: {l}");
            Window(
                header
                    .iter()
                    .zip(fields)
                    .map(|(h, f)| (h.to_string(), f.to_string()))
                    .collect(),
            )
        })
        .collect()
}

fn read_alerts(logs: &Path) -> Vec<serde_json::Value> {
    match std::fs::read_to_string(logs.join("alerts.jsonl")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The largest number of windows with a false drift flag that the
/// configured level allows, at 99.9% confidence: with `n` windows each
/// flagged with probability at most `p`, more than this happens less than
/// once in a thousand runs.
fn allowed_false_flags(n: u64, p: f64) -> u64 {
    let b = Binomial::new(p, n).unwrap();
    (0..=n).find(|&k| b.cdf(k) >= 0.999).unwrap()
}

/// 200,000 samples of the unshifted stream: 400 windows, every record in
/// one, no alert, and drift flags no more often than the level allows.
#[test]
fn an_unshifted_stream_fires_no_alert() {
    // The monitor (an observer) must keep up with 20,000 samples/s.
    let _timing = crate::support::serial::timing_lock();
    let sb = Sandbox::new();
    let logs = sb.logs();
    // Paced so that the debug build's monitor keeps up (it is an observer:
    // behind, it would miss batches, counted, and the windows would not add up).
    let out = run_within(
        sb.run_command(
            &logs,
            &["--count", "200000", "--rate", "20000", "--seed", "7"],
        ),
        Duration::from_secs(60),
    );
    out.expect_code(0);
    let reg = Scrape::final_of(&logs);
    // The monitor is an observer: on a loaded machine it may miss batches
    // (counted). Every record is either taken in or counted as missed, and
    // the windows are made of what was taken in.
    let taken = reg.count("modelwatch_monitor_records_total", &[]);
    let missed = reg.count(
        "modelwatch_observer_dropped_total",
        &[("observer", "monitor")],
    );
    assert_eq!(taken + missed, 200_000);
    assert!(taken >= 150_000, "the monitor missed {missed} records");
    let windows = read_windows(&logs);
    assert_eq!(windows.len() as u64, taken / 500);
    for (i, w) in windows.iter().enumerate() {
        assert_eq!(w.seq(), i as u64 + 1);
        assert_eq!(w.num("count"), 500.0);
        assert_eq!(w.num("records_total"), 500.0 * (i + 1) as f64);
        assert_eq!(w.0["active_alerts"], "", "window {} has an alert", w.seq());
    }
    assert_eq!(
        reg.count("modelwatch_monitor_windows_total", &[]),
        windows.len() as u64
    );
    assert!(read_alerts(&logs).is_empty(), "{:?}", read_alerts(&logs));
    // No alert event: the family has no label set at all.
    assert_eq!(reg.get_or_zero("modelwatch_alert_events_total", &[]), 0.0);

    // Family-wise: a window is a false positive when any feature is flagged;
    // Bonferroni keeps that at most drift_p_value (0.05) per window.
    let flagged = windows
        .iter()
        .filter(|w| FEATURES.iter().any(|f| w.drifted(f)))
        .count() as u64;
    let n = windows.len() as u64;
    let allowed = allowed_false_flags(n, 0.05);
    println!("unshifted: {flagged} of {n} windows had a drift flag (allowed {allowed}); missed {missed} records");
    assert!(
        flagged <= allowed,
        "{flagged} windows flagged, {allowed} allowed"
    );
    // And the figures are those of the unshifted model: every window within
    // the baseline's ±4σ on MAE (3σ is the alert; 4σ leaves no room for luck).
    let mean = reg.get("modelwatch_baseline_mean", &[("metric", "mae")]);
    let std = reg.get("modelwatch_baseline_std", &[("metric", "mae")]);
    assert!(mean > 40.0 && std > 0.5, "baseline mae {mean} ± {std}");
    for w in &windows {
        let z = (w.num("mae") - mean) / std;
        assert!(z.abs() < 4.0, "window {}: mae z = {z}", w.seq());
    }
}

/// bmi + 10 (raw units) from sample 20,000: the windows before are quiet;
/// the bmi drift and the MAE alert fire within the next three windows
/// (41 to 43), every other feature stays quiet, and each fire is in
/// `alerts.jsonl` and the registry.
#[test]
fn a_bmi_shift_fires_its_drift_and_the_mae_alert_within_three_windows() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let out = run_within(
        sb.run_command(
            &logs,
            &[
                "--count",
                "30000",
                "--rate",
                "20000",
                "--seed",
                "11",
                "--scenario",
                "start=20000,bmi+=10",
            ],
        ),
        Duration::from_secs(60),
    );
    out.expect_code(0);
    check_shift_outcome(&logs);
}

fn check_shift_outcome(logs: &Path) {
    let windows = read_windows(logs);
    // The first window holding a shifted sample: the one that closes at or
    // after the id of sample 20,000 (rows are in emission order here).
    let rows = support::sandbox::read_metric_log(logs);
    assert_eq!(rows.len(), 30_000);
    let shift_id = rows[20_000].id;
    let k = windows
        .iter()
        .find(|w| w.num("end_id") as u64 >= shift_id)
        .expect("a window after the shift")
        .seq();
    let alerts = read_alerts(logs);
    let fired = |rule: &str| -> Vec<u64> {
        alerts
            .iter()
            .filter(|a| a["rule"] == rule && a["state"] == "fired")
            .map(|a| a["seq"].as_u64().unwrap())
            .collect()
    };
    for rule in ["feature_drift:bmi", "mae_high"] {
        let at = fired(rule);
        assert_eq!(at.len(), 1, "{rule} fires once: {alerts:?}");
        assert!(
            (k..k + 3).contains(&at[0]),
            "{rule} fired at window {}, the shift is in window {k}",
            at[0]
        );
        println!(
            "{rule} fired at window {} (the shift begins in window {k})",
            at[0]
        );
    }
    for a in &alerts {
        let seq = a["seq"].as_u64().unwrap();
        assert!(seq >= k, "an alert before the shift: {a}");
        let rule = a["rule"].as_str().unwrap();
        assert!(
            !(rule.starts_with("feature_drift:") && rule != "feature_drift:bmi"),
            "another feature's drift alert: {a}"
        );
    }
    for w in windows.iter().filter(|w| w.seq() < k) {
        assert!(
            !w.drifted("bmi"),
            "bmi drifted before the shift: window {}",
            w.seq()
        );
    }
    for w in windows.iter().filter(|w| w.seq() > k) {
        assert!(
            w.drifted("bmi"),
            "bmi quiet after the shift: window {}",
            w.seq()
        );
    }
    let others = windows
        .iter()
        .filter(|w| FEATURES.iter().any(|f| *f != "bmi" && w.drifted(f)))
        .count() as u64;
    let allowed = allowed_false_flags(windows.len() as u64, 0.05);
    assert!(
        others <= allowed,
        "{others} windows flag another feature, {allowed} allowed"
    );
    let reg = Scrape::final_of(logs);
    for rule in ["feature_drift:bmi", "mae_high"] {
        assert_eq!(
            reg.count(
                "modelwatch_alert_events_total",
                &[("rule", rule), ("state", "fired")]
            ),
            1
        );
        assert_eq!(reg.count("modelwatch_alert_active", &[("rule", rule)]), 1);
    }
    assert_eq!(
        reg.count("modelwatch_drift_detected", &[("feature", "bmi")]),
        1
    );
    let log = support::sandbox::read_pipeline_log(logs);
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ") && l.contains("alert fired") && l.contains("mae_high")),
        "no WARN line for mae_high"
    );
}

/// A restart continues: the windows of two runs over one logs dir number
/// on, and the records total counts both runs.
#[test]
fn a_restart_continues_the_windows_where_they_stopped() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let mut missed = 0;
    let mut after_first = 0;
    for run in 0..2 {
        run_within(
            sb.run_command(
                &logs,
                &["--count", "1250", "--rate", "20000", "--seed", "3"],
            ),
            Duration::from_secs(30),
        )
        .expect_code(0);
        missed += Scrape::final_of(&logs).count(
            "modelwatch_observer_dropped_total",
            &[("observer", "monitor")],
        );
        if run == 0 {
            after_first = read_windows(&logs).len() as u64;
        }
    }
    let windows = read_windows(&logs);
    // The second run's windows number on from the first's, every window
    // is whole, and the records total counts both runs.
    for (i, w) in windows.iter().enumerate() {
        assert_eq!(w.seq(), i as u64 + 1);
        assert_eq!(w.num("records_total"), 500.0 * (i + 1) as f64);
    }
    assert!(
        windows.len() as u64 > after_first,
        "the second run closed no window"
    );
    if missed == 0 {
        // 2,500 records: the 250 left open by the first run are taken in
        // again from metric_log.csv by the second, so five whole windows.
        assert_eq!(windows.len(), 5);
    }
    let text = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
    assert_eq!(text.matches("seq,end_id").count(), 1, "one header");
}

/// An alert firing when the process stops is still firing after the
/// restart: it does not fire a second time (the last row's active alerts
/// are restored), and it resolves once when the stream is back to normal.
#[test]
fn an_alert_firing_across_a_restart_fires_once_and_resolves_once() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    let run = |args: &[&str]| -> u64 {
        let mut all = vec!["--rate", "10000", "--monitor-window", "100", "--seed", "13"];
        all.extend_from_slice(args);
        run_within(sb.run_command(&logs, &all), Duration::from_secs(30)).expect_code(0);
        read_windows(&logs).len() as u64
    };
    // Shifted from sample 1,000 on; still shifted in the second run; back
    // to normal in the third.
    let first = run(&["--count", "3000", "--scenario", "start=1000,bmi+=10"]);
    let second = run(&["--count", "2000", "--scenario", "start=0,bmi+=10"]);
    run(&["--count", "3000"]);
    let events: Vec<(String, u64)> = read_alerts(&logs)
        .iter()
        .filter(|a| a["rule"] == "mae_high")
        .map(|a| {
            (
                a["state"].as_str().unwrap().to_owned(),
                a["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let states: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(states, ["fired", "resolved"], "{events:?}");
    // Fired in the first run, resolved in the third.
    assert!(
        events[0].1 <= first && events[1].1 > second,
        "{events:?}: the runs ended at windows {first} and {second}"
    );
}

/// `error_over_time.png` covers the whole history: after a restart the
/// picture still holds the first run's windows and alert markers (read
/// back from `metrics_over_time.csv` and `alerts.jsonl`), not only the
/// second run's. What it covers is read from the registry
/// (`modelwatch_over_time_*`), checked against the files.
#[test]
fn a_restarted_run_s_picture_still_shows_the_earlier_windows_and_alerts() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    // Run 1: bmi shifted from sample 1,000: alerts fire in windows 3 to 6.
    run_within(
        sb.run_command(
            &logs,
            &[
                "--count",
                "3000",
                "--rate",
                "5000",
                "--seed",
                "11",
                "--scenario",
                "start=1000,bmi+=10",
            ],
        ),
        Duration::from_secs(60),
    )
    .expect_code(0);
    // The monitor is an observer: on a loaded machine it may miss a batch
    // (and so close fewer windows), so counts come from the files.
    let n1 = read_windows(&logs).len() as u64;
    assert!(n1 >= 4, "run 1 closed {n1} windows");
    let first = Scrape::final_of(&logs);
    let events = read_alerts(&logs).len() as u64;
    assert!(events >= 2, "the shift fires alerts: {events}");
    assert_eq!(first.count("modelwatch_over_time_windows", &[]), n1);
    assert_eq!(first.count("modelwatch_over_time_first_window", &[]), 1);
    assert_eq!(first.count("modelwatch_over_time_markers", &[]), events);

    // Run 2, unshifted, into the same logs dir: three more windows.
    run_within(
        sb.run_command(
            &logs,
            &["--count", "1500", "--rate", "5000", "--seed", "12"],
        ),
        Duration::from_secs(60),
    )
    .expect_code(0);
    let windows = read_windows(&logs);
    let n = windows.len() as u64;
    assert!(n > n1 + 1, "run 2 closed {} windows", n - n1);
    let second = Scrape::final_of(&logs);
    assert_eq!(
        second.count("modelwatch_monitor_windows_total", &[]),
        n - n1,
        "this run closed only its own"
    );
    assert_eq!(
        second.count("modelwatch_over_time_windows", &[]),
        windows.len() as u64,
        "the picture covers both runs"
    );
    assert_eq!(second.count("modelwatch_over_time_first_window", &[]), 1);
    assert_eq!(
        second.count("modelwatch_over_time_markers", &[]),
        read_alerts(&logs).len() as u64,
        "every event of both runs is marked"
    );
    support::sandbox::assert_png_has_a_picture(&logs.join("error_over_time.png"));

    // The rules run 1 left firing are taken back: run 2 does not fire them
    // again, it resolves them (the shift is gone). Per rule, fired and
    // resolved alternate across both runs, starting with fired.
    let alerts = read_alerts(&logs);
    let last_of_run1 = windows[n1 as usize - 1].0["active_alerts"].clone();
    let left_firing: Vec<&str> = last_of_run1.split(';').filter(|s| !s.is_empty()).collect();
    assert!(!left_firing.is_empty(), "run 1 ends with alerts firing");
    let mut state: BTreeMap<String, &str> = BTreeMap::new();
    for a in &alerts {
        let rule = a["rule"].as_str().unwrap().to_string();
        let now = a["state"].as_str().unwrap();
        let before = state.insert(rule.clone(), now).unwrap_or("resolved");
        assert_ne!(before, now, "{rule} {now} twice in a row: {alerts:?}");
    }
    for rule in &left_firing {
        let resolved_in_run2 = alerts.iter().any(|a| {
            a["rule"] == *rule && a["state"] == "resolved" && a["seq"].as_u64().unwrap() > n1
        });
        assert!(resolved_in_run2, "{rule} resolves in run 2: {alerts:?}");
    }
    assert!(
        windows.last().unwrap().0["active_alerts"].is_empty(),
        "all resolved"
    );
}
