//! The monitor's statistics: one drift evaluation of a 500-row window, the
//! in-memory training baseline (`baseline_for` when the artifact has none for
//! the window), and a push into the rolling window.
//! `cargo bench --bench monitor`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use modelwatch::core::data::Dataset;
use modelwatch::model::LinearModel;
use modelwatch::monitor::baseline;
use modelwatch::monitor::drift::{DriftConfig, DriftDetector};
use modelwatch::monitor::rolling::CountWindow;

fn monitor(c: &mut Criterion) {
    let data = Dataset::embedded();
    let model = LinearModel::fit(data).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let picks: Vec<usize> = (0..500).map(|_| rng.random_range(0..data.len())).collect();
    let rows: Vec<_> = picks.iter().map(|&i| data.feature_row(i)).collect();
    let targets: Vec<f64> = picks.iter().map(|&i| data.targets[i]).collect();
    let preds: Vec<f64> = rows.iter().map(|r| model.predict(r)).collect();

    let mut g = c.benchmark_group("monitor");
    g.bench_function("drift_detector_new", |b| {
        b.iter(|| black_box(DriftDetector::from_training(&model, DriftConfig::default()).unwrap()))
    });
    let det = DriftDetector::from_training(&model, DriftConfig::default()).unwrap();
    g.bench_function("drift_evaluate_500_rows", |b| {
        b.iter(|| black_box(det.evaluate(black_box(&rows), black_box(&preds))))
    });
    g.sample_size(10);
    g.bench_function("baseline_500x2000", |b| {
        b.iter(|| black_box(baseline::baseline_for(&model, 500).unwrap()))
    });
    g.sample_size(100);
    let mut w = CountWindow::new(500);
    let mut i = 0usize;
    g.bench_function("count_window_push_and_stats", |b| {
        b.iter(|| {
            i = (i + 1) % preds.len();
            w.push(black_box(targets[i]), black_box(preds[i]));
            black_box(w.stats())
        })
    });
    g.finish();
}

criterion_group!(benches, monitor);
criterion_main!(benches);
