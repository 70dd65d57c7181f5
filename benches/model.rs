//! Model prediction cost: one row at a time, and batches through ndarray.
//! `cargo bench --bench model`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;

use modelwatch::core::data::Dataset;
use modelwatch::model::LinearModel;

fn predict(c: &mut Criterion) {
    let data = Dataset::embedded();
    let model = LinearModel::fit(data).unwrap();
    let rows: Vec<_> = (0..data.len()).map(|i| data.feature_row(i)).collect();

    let mut g = c.benchmark_group("predict");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single_row", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % rows.len();
            black_box(model.predict(black_box(&rows[i])))
        })
    });
    for n in [64usize, 512, 4096] {
        let x = Array2::from_shape_fn((n, 10), |(r, c)| rows[r % rows.len()][c]);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("ndarray_batch", n), &x, |b, x| {
            b.iter(|| black_box(model.predict_batch(x.view())))
        });
        g.bench_with_input(BenchmarkId::new("row_loop_batch", n), &n, |b, &n| {
            b.iter(|| {
                let mut s = 0.0;
                for r in 0..n {
                    s += model.predict(&rows[r % rows.len()]);
                }
                black_box(s)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, predict);
criterion_main!(benches);
