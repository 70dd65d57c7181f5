//! Fault injection through the `fail` crate (`FAILPOINTS`): write errors the
//! metric actor must get past without losing or doubling a row, and a panic
//! that must end the process with the fatal exit code instead of a hang.

use std::fs;

use crate::support::sandbox::*;

#[test]
fn write_errors_restart_the_metric_actor_without_losing_a_row() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    // The fail point is in every appended file: the monitor's files would
    // take some of the injected failures (it has tests of its own).
    let cmd = sb
        .run_launch(
            &logs,
            &[
                "--count",
                "20000",
                "--rate",
                "0",
                "--seed",
                "3",
                "--no-monitor",
            ],
        )
        .failpoints("append-file-write=3*off->2*return->off")
        .command();
    run(cmd).expect_code(0);

    let text = fs::read_to_string(logs.join("metric_log.csv")).unwrap();
    // parse_metric_log refuses torn or malformed lines and a missing final newline
    let rows = parse_metric_log(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 20000);
    assert_unique_ids(&rows);
    assert_rows_are_model_outputs(&rows);
    assert_eq!(read_labels(&logs).len(), 40000, "labels lost or doubled");

    let log = read_pipeline_log(&logs);
    assert!(!log.contains('\u{1b}'), "ANSI codes in pipeline.log");
    assert!(
        log.contains("injected by failpoint append-file-write"),
        "the fail point never fired:\n{log}"
    );
    assert_eq!(
        log.matches("metric actor restarting").count(),
        2,
        "expected two restarts:\n{log}"
    );
    let reg = Scrape::final_of(&sb.logs());
    assert_eq!(
        reg.count("modelwatch_actor_restarts_total", &[("actor", "metric")]),
        2
    );
    assert_eq!(reg.count("modelwatch_rows_written_total", &[]), 20000);
}

#[test]
fn a_panic_in_the_model_exits_70() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    // An earlier run's registry: it must not pass for this run's.
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("final_metrics.txt"),
        "modelwatch_rows_written_total 1000\n# EOF\n",
    )
    .unwrap();
    let cmd = sb
        .run_launch(&logs, &["--count", "1000", "--rate", "0"])
        .failpoints("model-predict=panic")
        .command();
    let out = run(cmd);
    out.expect_code(70);
    assert!(out.stderr.contains("model-predict"), "{}", out.stderr);
    assert!(
        !logs.join("final_metrics.txt").exists(),
        "a panicked run leaves no registry, and no stale one"
    );
}
