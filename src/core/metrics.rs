//! Typed telemetry: one Prometheus registry that every component updates
//! directly, and that everyone reads: `GET /metrics`, the end-of-run
//! summary, `modelwatch bench` and the tests.
//!
//! Why one registry: counters used to exist only as log text, so the
//! summary, the bench and the tests each parsed log lines. Now a component
//! holds clones of the handles it updates (a prometheus-client handle is an
//! `Arc` around an atomic), and a reader encodes the registry in the
//! OpenMetrics text format or reads a handle.
//!
//! Labels only where a dimension exists and is bounded (kind, reason, queue,
//! actor, event): never per id. The queue label is a configured queue name,
//! the reason label a fixed set (see [`crate::amqp::decode::Rejection::kind`]).
//!
//! [`BatchHistogram`] exists because prometheus-client's `Histogram` takes a
//! mutex per observation; the metric records a whole batch of errors and
//! latencies at once, lock-free, at a million rows per second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// The content type of `GET /metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the absolute-error buckets: the diabetes target runs from
/// 25 to 346, so errors stay within 0–350 (the last bucket is +Inf).
pub const ERROR_BUCKETS: [f64; 16] = [
    5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 75.0, 100.0, 125.0, 150.0, 175.0, 200.0, 250.0, 300.0,
    350.0,
];

/// Upper bounds of the emit-to-row latency buckets, seconds (100 µs to 60 s).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0, 60.0,
];

/// Upper bounds of the plot render time buckets, seconds.
pub const RENDER_BUCKETS: [f64; 8] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabel {
    pub actor: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueEventLabel {
    pub queue: String,
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueReasonLabel {
    pub queue: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObserverLabel {
    pub observer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub roles: String,
}

/// Every handle of the registry. Cheap to clone (all `Arc`s).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub samples_emitted: Counter,
    pub rows_written: Counter,
    pub halves_received: Family<KindLabel, Counter>,
    /// Halves that wrote no row: expired, evicted, duplicate, redelivered.
    pub join_dropped: Family<ReasonLabel, Counter>,
    pub join_waiting: Gauge,
    /// Failed writes of the metric's logs in a row (0 when writing works):
    /// `/ready` is 503 while it is not 0.
    pub metric_write_failures: Gauge,
    /// Halves read back from the split-layout metric's journal at start.
    pub journal_restored: Counter,
    /// Lines of `pipeline.log` that could not be written (a link, FIFO or
    /// other non-regular file at its name, or a disk failing for more than
    /// a MiB of them): the run exits 1 with the count. One per process, as
    /// the log it counts ([`crate::core::logging::pipeline_log_dropped`]).
    pub pipeline_log_dropped: Counter,
    pub actor_restarts: Family<ActorLabel, Counter>,
    pub plot_renders: Counter,
    pub plot_render_seconds: BatchHistogram,
    pub absolute_error: BatchHistogram,
    pub latency_seconds: BatchHistogram,
    /// accepted, published, confirmed, nacked, resent, dropped, refused.
    pub bridge_messages: Family<EventLabel, Counter>,
    pub bridge_buffered: Gauge,
    pub bridge_reconnects: Counter,
    pub bridge_connected: Gauge,
    /// Set at shutdown: messages the broker never confirmed (exit 1 if > 0).
    pub bridge_undelivered: Gauge,
    /// delivered, acked, requeued.
    pub inbound_messages: Family<QueueEventLabel, Counter>,
    pub inbound_dead_lettered: Family<QueueReasonLabel, Counter>,
    pub legacy_purged: Family<QueueLabel, Counter>,
    pub observer_dropped: Family<ObserverLabel, Counter>,
    pub rows_per_second: Gauge<f64, AtomicU64>,
    pub resident_memory_bytes: Gauge,
    pub peak_resident_memory_bytes: Gauge,
    /// Set at the end of a run: from start to the end of the drain.
    pub run_seconds: Gauge<f64, AtomicU64>,
}

/// A feature's own metric families: it holds their handles and registers
/// them in the one registry ([`Telemetry::with_families`]), so this
/// module, below every feature, never names the feature's types.
pub trait Families {
    fn register(&self, r: &mut Registry);
}

/// The registry and its handles.
pub struct Telemetry {
    pub metrics: Metrics,
    registry: Registry,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Telemetry {
    /// A registry with every family registered under `modelwatch_`.
    pub fn new(roles: &str) -> Arc<Telemetry> {
        Telemetry::with_families(roles, &[])
    }

    /// As [`Telemetry::new`], with the families a feature declares itself
    /// (the monitor's, `monitor::telemetry::MonitorMetrics`) registered in
    /// the same registry, after the pipeline's own.
    pub fn with_families(roles: &str, features: &[&dyn Families]) -> Arc<Telemetry> {
        let m = Metrics {
            samples_emitted: Counter::default(),
            rows_written: Counter::default(),
            halves_received: Family::default(),
            join_dropped: Family::default(),
            join_waiting: Gauge::default(),
            metric_write_failures: Gauge::default(),
            journal_restored: Counter::default(),
            pipeline_log_dropped: crate::core::logging::pipeline_log_dropped(),
            actor_restarts: Family::default(),
            plot_renders: Counter::default(),
            plot_render_seconds: BatchHistogram::new(&RENDER_BUCKETS),
            absolute_error: BatchHistogram::new(&ERROR_BUCKETS),
            latency_seconds: BatchHistogram::new(&LATENCY_BUCKETS),
            bridge_messages: Family::default(),
            bridge_buffered: Gauge::default(),
            bridge_reconnects: Counter::default(),
            bridge_connected: Gauge::default(),
            bridge_undelivered: Gauge::default(),
            inbound_messages: Family::default(),
            inbound_dead_lettered: Family::default(),
            legacy_purged: Family::default(),
            observer_dropped: Family::default(),
            rows_per_second: Gauge::default(),
            resident_memory_bytes: Gauge::default(),
            peak_resident_memory_bytes: Gauge::default(),
            run_seconds: Gauge::default(),
        };
        let mut r = Registry::with_prefix("modelwatch");
        r.register(
            "pipeline_log_dropped",
            "Lines of pipeline.log that could not be written (not a regular file at its name, or a failing disk): exit 1",
            m.pipeline_log_dropped.clone(),
        );
        r.register(
            "samples_emitted",
            "Samples the source emitted",
            m.samples_emitted.clone(),
        );
        r.register(
            "rows_written",
            "Rows written to metric_log.csv",
            m.rows_written.clone(),
        );
        r.register(
            "halves_received",
            "Truths (y_true) and predictions (y_pred) the metric received",
            m.halves_received.clone(),
        );
        r.register(
            "join_dropped",
            "Halves that wrote no row, by reason (expired, evicted, duplicate, redelivered)",
            m.join_dropped.clone(),
        );
        r.register(
            "join_waiting",
            "Halves waiting for their other half",
            m.join_waiting.clone(),
        );
        r.register(
            "metric_write_failures",
            "Failed writes of the metric's logs in a row (0 while writing works)",
            m.metric_write_failures.clone(),
        );
        r.register(
            "journal_restored",
            "Halves read back from the metric's journal of waiting halves at start",
            m.journal_restored.clone(),
        );
        r.register(
            "actor_restarts",
            "Restarts of an actor by its supervisor",
            m.actor_restarts.clone(),
        );
        r.register(
            "plot_renders",
            "Renders of error_distribution.png",
            m.plot_renders.clone(),
        );
        r.register_with_unit(
            "plot_render",
            "Time to render error_distribution.png",
            Unit::Seconds,
            m.plot_render_seconds.clone(),
        );
        r.register(
            "absolute_error",
            "Absolute error |y_true - y_pred| of every row written",
            m.absolute_error.clone(),
        );
        r.register_with_unit(
            "latency",
            "Time from a sample's emission to its row in the log",
            Unit::Seconds,
            m.latency_seconds.clone(),
        );
        r.register(
            "bridge_messages",
            "Messages through the outbound bridge, by event",
            m.bridge_messages.clone(),
        );
        r.register(
            "bridge_buffered",
            "Messages the bridge holds for the broker",
            m.bridge_buffered.clone(),
        );
        r.register(
            "bridge_reconnects",
            "Connections of the bridge after the first",
            m.bridge_reconnects.clone(),
        );
        r.register(
            "bridge_connected",
            "1 while the bridge is connected with its topology declared",
            m.bridge_connected.clone(),
        );
        r.register(
            "bridge_undelivered",
            "Messages the broker had not confirmed when the bridge stopped (set at shutdown)",
            m.bridge_undelivered.clone(),
        );
        r.register(
            "inbound_messages",
            "Deliveries of the inbound consumers, by queue and event (delivered, acked, requeued)",
            m.inbound_messages.clone(),
        );
        r.register(
            "inbound_dead_lettered",
            "Malformed deliveries dead-lettered, by queue and reason",
            m.inbound_dead_lettered.clone(),
        );
        r.register(
            "legacy_queue_purged",
            "Messages purged from legacy queues nobody reads, past their bound",
            m.legacy_purged.clone(),
        );
        r.register(
            "observer_dropped",
            "Messages an observer fell behind on and did not get",
            m.observer_dropped.clone(),
        );
        r.register(
            "rows_per_second",
            "Rows written per second over the last ten seconds",
            m.rows_per_second.clone(),
        );
        r.register_with_unit(
            "resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            m.resident_memory_bytes.clone(),
        );
        r.register_with_unit(
            "peak_resident_memory",
            "Peak resident memory of the process (VmHWM)",
            Unit::Bytes,
            m.peak_resident_memory_bytes.clone(),
        );
        r.register_with_unit(
            "run",
            "Duration of the finished run, from start to the end of the drain (set at the end)",
            Unit::Seconds,
            m.run_seconds.clone(),
        );
        for f in features {
            f.register(&mut r);
        }
        r.register(
            "build",
            "Version and roles of this process",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                roles: roles.to_owned(),
            }),
        );
        Arc::new(Telemetry {
            metrics: m,
            registry: r,
        })
    }

    /// The registry in the OpenMetrics text format (what `/metrics` serves).
    pub fn encode(&self) -> String {
        if let Some(rss) = status_kib("VmRSS:") {
            self.metrics.resident_memory_bytes.set(rss as i64 * 1024);
        }
        if let Some(peak) = status_kib("VmHWM:") {
            self.metrics
                .peak_resident_memory_bytes
                .set(peak as i64 * 1024);
        }
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

impl Metrics {
    pub fn inc_kind(family: &Family<KindLabel, Counter>, kind: &'static str, n: u64) {
        family.get_or_create(&KindLabel { kind }).inc_by(n);
    }

    pub fn join_dropped(&self, reason: &'static str, n: u64) {
        if n > 0 {
            self.join_dropped
                .get_or_create(&ReasonLabel { reason })
                .inc_by(n);
        }
    }

    pub fn bridge(&self, event: &'static str) -> Counter {
        self.bridge_messages
            .get_or_create(&EventLabel { event })
            .clone()
    }

    pub fn inbound(&self, queue: &str, event: &'static str) -> Counter {
        self.inbound_messages
            .get_or_create(&QueueEventLabel {
                queue: queue.to_owned(),
                event,
            })
            .clone()
    }

    pub fn restart(&self, actor: &'static str) {
        self.actor_restarts
            .get_or_create(&ActorLabel { actor })
            .inc();
    }
}

/// Peak resident memory of this process in KiB (Linux `VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// A `/proc/self/status` field in KiB (Linux: `VmRSS:`, `VmHWM:`).
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A histogram with fixed buckets whose counts are atomics: observing a
/// value takes no lock, and [`BatchHistogram::observe_many`] adds a whole
/// batch with one atomic add per touched bucket. Encoded by
/// prometheus-client's own histogram encoder.
#[derive(Clone, Debug)]
pub struct BatchHistogram(Arc<BatchInner>);

#[derive(Debug)]
struct BatchInner {
    bounds: Vec<f64>,
    /// One per bound, then the +Inf bucket (not cumulative).
    counts: Vec<AtomicU64>,
    /// Sum of the observations, as f64 bits.
    sum: AtomicU64,
}

impl BatchHistogram {
    pub fn new(bounds: &[f64]) -> BatchHistogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        BatchHistogram(Arc::new(BatchInner {
            bounds: bounds.to_vec(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }

    fn bucket(&self, v: f64) -> usize {
        self.0.bounds.partition_point(|&b| b < v)
    }

    pub fn observe(&self, v: f64) {
        self.0.counts[self.bucket(v)].fetch_add(1, Relaxed);
        self.add_sum(v);
    }

    /// Observes every value of `values`.
    pub fn observe_many(&self, values: impl Iterator<Item = f64>) {
        let mut local = [0u64; 32];
        let mut overflow = Vec::new();
        let mut sum = 0.0;
        for v in values {
            let b = self.bucket(v);
            match local.get_mut(b) {
                Some(c) => *c += 1,
                None => overflow.push(b),
            }
            sum += v;
        }
        for (b, &n) in local.iter().enumerate().filter(|(_, &n)| n > 0) {
            self.0.counts[b].fetch_add(n, Relaxed);
        }
        for b in overflow {
            self.0.counts[b].fetch_add(1, Relaxed);
        }
        self.add_sum(sum);
    }

    /// Observes `v` `n` times.
    pub fn observe_n(&self, v: f64, n: u64) {
        self.0.counts[self.bucket(v)].fetch_add(n, Relaxed);
        self.add_sum(v * n as f64);
    }

    fn add_sum(&self, v: f64) {
        let _ = self.0.sum.fetch_update(Relaxed, Relaxed, |bits| {
            Some((f64::from_bits(bits) + v).to_bits())
        });
    }

    pub fn count(&self) -> u64 {
        self.0.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.0.sum.load(Relaxed))
    }

    /// `(upper bound, count)` per bucket, not cumulative; the last is +Inf.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.0
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.0.counts.iter().map(|c| c.load(Relaxed)))
            .collect()
    }
}

impl TypedMetric for BatchHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for BatchHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets = self.buckets();
        let count = buckets.iter().map(|(_, c)| c).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_histogram_buckets_are_upper_bound_inclusive_like_prometheus() {
        let h = BatchHistogram::new(&[1.0, 10.0]);
        h.observe_many([0.5, 1.0, 1.5, 10.0, 11.0, f64::INFINITY].into_iter());
        h.observe(2.0);
        h.observe_n(100.0, 3);
        assert_eq!(h.buckets(), vec![(1.0, 2), (10.0, 3), (f64::INFINITY, 5)]);
        assert_eq!(h.count(), 10);
    }

    #[test]
    fn the_registry_encodes_as_openmetrics_with_every_family() {
        let t = Telemetry::new("features,model,metric,plot");
        t.metrics.samples_emitted.inc_by(3);
        t.metrics
            .absolute_error
            .observe_many([4.0, 400.0].into_iter());
        t.metrics.inbound("q", "acked").inc();
        let text = t.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        for needle in [
            "# TYPE modelwatch_samples_emitted counter",
            "modelwatch_samples_emitted_total 3",
            "modelwatch_absolute_error_bucket{le=\"5.0\"} 1",
            "modelwatch_absolute_error_bucket{le=\"+Inf\"} 2",
            "modelwatch_absolute_error_sum 404.0",
            "modelwatch_inbound_messages_total{queue=\"q\",event=\"acked\"} 1",
            "modelwatch_build_info{version=",
            "# UNIT modelwatch_latency_seconds seconds",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
    }
}
