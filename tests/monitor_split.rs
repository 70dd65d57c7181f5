//! The monitor in the split layout: it runs with the metric role, gets the
//! features for its drift tests from a queue of its own, and, across a
//! `kill -9` of its process, puts every record in exactly one window (the
//! restarted process continues after the last window of
//! `metrics_over_time.csv` and takes in the rows of `metric_log.csv`
//! written after it). The real RabbitMQ; objects named per test, deleted
//! after.

mod split_support;

use split_support::*;

const N: usize = 6000;
const WINDOW: usize = 500;

/// `(seq, records_total, has drift figures)` per row of `metrics_over_time.csv`.
fn windows(p: &RoleProc) -> Vec<(u64, u64, bool)> {
    let text = std::fs::read_to_string(p.logs_dir().join("metrics_over_time.csv"))
        .expect("metrics_over_time.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (seq, total, bmi_p) = (col("seq"), col("records_total"), col("bmi_p"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "a whole row: {l}");
            (
                f[seq].parse().unwrap(),
                f[total].parse().unwrap(),
                !f[bmi_p].is_empty(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_takes_every_record_once_across_a_kill_9_of_its_process() {
    let broker = TestBroker::new("monitor9");
    let mut metric = broker.spawn("metric", "metric", &[]);
    // y_true, y_pred and the monitor's features.
    metric.wait_log("inbound consumer started", 3, START).await;
    let mut front = broker.spawn(
        "features+model",
        "features,model",
        &["--count", &N.to_string(), "--rate", "2000", "--seed", "5"],
    );
    metric.wait_rows(N / 3, RUN).await;
    metric.kill9();
    let mut metric = metric.respawn(&[], &broker.env());
    front.expect_exit_ok(RUN).await;
    metric.wait_rows(N, RUN).await;
    metric.stop(STOP).await;

    let rows = metric.csv();
    assert_ids_once(&rows, N, "metric_log.csv");
    let w = windows(&metric);
    let seqs: Vec<u64> = w.iter().map(|x| x.0).collect();
    let expected: Vec<u64> = (1..=(N / WINDOW) as u64).collect();
    assert_eq!(
        seqs,
        expected,
        "every window once, in order\n{}",
        metric.report()
    );
    for (i, (seq, total, _)) in w.iter().enumerate() {
        assert_eq!(*total, (i as u64 + 1) * WINDOW as u64, "window {seq}");
    }
    // The features reached the monitor through its queue: drift figures in
    // (nearly) every window; a window right after the restart may lack them
    // while the new process's feature window fills.
    let with_drift = w.iter().filter(|x| x.2).count();
    assert!(
        with_drift >= w.len() - 2,
        "{with_drift} of {} windows have drift figures",
        w.len()
    );
    // The restarted process did continue after a window of the first.
    let resumed = metric.line("monitor: continuing after the last closed window");
    assert!(resumed.contains("records="), "{resumed}");
    let reg = metric.registry();
    assert_eq!(
        reg.count(
            "modelwatch_observer_dropped_total",
            &[("observer", "monitor")]
        ),
        0
    );
    println!(
        "split monitor: {N} rows, {} windows, {with_drift} with drift figures, across a kill -9 at {} rows",
        w.len(),
        N / 3
    );
}
