//! The whole pipeline started and stopped inside the test process, the way
//! `cli.rs` does it but without signals: `pipeline::prepare`, then
//! `pipeline::run(prepared, shutdown)` inside an actix `System`, stopped by
//! `Shutdown::drain`. Its figures come from the registry handle, not from
//! log text, and must agree with the CSV it wrote.

use crate::support;
use std::time::Duration;

use modelwatch::config::Settings;
use modelwatch::core::shutdown::Shutdown;
use modelwatch::pipeline;

#[test]
fn a_pipeline_runs_in_process_and_stops_on_a_drain_with_every_row_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::default();
    settings.logs.dir = dir.path().join("logs");
    // No artifact: fitted in memory.
    settings.model.artifact = dir.path().join("no-model.json");
    settings.source.count = 0;
    settings.source.rate = 2000.0;
    settings.http.listen = "off".into();

    let prepared = pipeline::prepare(settings).expect("prepare");
    let telemetry = prepared.telemetry.clone();
    let csv = prepared.paths.metric_csv.clone();
    let shutdown = Shutdown::new();
    let stopper = shutdown.clone();
    let system = actix::System::new();
    let result = system.block_on(async move {
        actix::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stopper.drain("test");
        });
        tokio::time::timeout(Duration::from_secs(30), pipeline::run(prepared, shutdown)).await
    });
    let report = result
        .expect("the run did not end within 30 s of the drain")
        .expect("the run failed");

    let rows = support::sandbox::read_metric_log(csv.parent().unwrap()).len() as u64;
    assert!(rows > 0, "nothing written in a second at 2000 samples/s");
    let m = &telemetry.metrics;
    assert_eq!(report.metric.as_ref().map(|r| r.rows_written), Some(rows));
    assert_eq!(m.rows_written.get(), rows, "registry rows_written vs CSV");
    assert_eq!(
        m.samples_emitted.get(),
        rows,
        "every sample emitted was written"
    );
    assert_eq!(report.source.map(|s| s.emitted), Some(rows));
    assert!(report.shortfall().is_none(), "{:?}", report.shortfall());
}
