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
//! Each metric is declared once, in a [`declare_metrics!`] group: its
//! handle's field and type (which give its type and label names), its
//! initial value, its name, unit and help. The group's struct, its
//! construction, its registration and its [`MetricDecl`] list are generated
//! from that; `modelwatch metrics` prints the lists and a test keeps
//! `docs/metrics.md` equal to them. A feature above this layer declares its
//! own group beside it (`monitor::telemetry`) and is handed in at start
//! ([`Families`]), so this module never names it.
//!
//! [`BatchHistogram`] exists because prometheus-client's `Histogram` takes a
//! mutex per observation; the metric records a whole batch of errors and
//! latencies at once, lock-free, at a million rows per second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Metric, Registry, Unit};

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

/// One metric as declared: the name given to the registry (without the
/// `modelwatch_` prefix and the unit), its help text, its type and label
/// names (both read from the handle's Rust type, so they cannot disagree
/// with what is exposed), and its unit. `/metrics` is registered from these
/// declarations and `docs/metrics.md` is checked against them
/// (`modelwatch metrics` prints them; `tests/it/metrics_doc.rs`).
#[derive(Clone, Copy, Debug)]
pub struct MetricDecl {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub labels: &'static [&'static str],
    /// `""`, `"seconds"` or `"bytes"`: the suffix of the exposed name.
    pub unit: &'static str,
}

impl MetricDecl {
    /// The family's name in the exposition: `modelwatch_NAME[_UNIT]`.
    pub fn family(&self) -> String {
        match self.unit {
            "" => format!("modelwatch_{}", self.name),
            u => format!("modelwatch_{}_{u}", self.name),
        }
    }

    /// The name a query uses: a counter's series end in `_total`, an info's
    /// in `_info`; a gauge or histogram family is named as it is.
    pub fn series(&self) -> String {
        match self.kind {
            MetricType::Counter => format!("{}_total", self.family()),
            MetricType::Info => format!("{}_info", self.family()),
            _ => self.family(),
        }
    }
}

/// The label names of a label set, declared with [`label_set!`].
pub trait LabelNames {
    const NAMES: &'static [&'static str];
}

/// The label names of a metric handle's type: none for a plain handle, its
/// label set's for a `Family` or an `Info`.
pub trait Labels {
    const LABELS: &'static [&'static str];
}

impl<N, A> Labels for Counter<N, A> {
    const LABELS: &'static [&'static str] = &[];
}

impl<N, A> Labels for Gauge<N, A> {
    const LABELS: &'static [&'static str] = &[];
}

impl Labels for BatchHistogram {
    const LABELS: &'static [&'static str] = &[];
}

impl<S: LabelNames, M> Labels for Family<S, M> {
    const LABELS: &'static [&'static str] = S::NAMES;
}

impl<S: LabelNames> Labels for Info<S> {
    const LABELS: &'static [&'static str] = S::NAMES;
}

/// Registers `metric` under `name` with `help`, and `unit` when not `""`.
pub fn register_as(r: &mut Registry, d: &MetricDecl, metric: impl Metric) {
    match d.unit {
        "" => r.register(d.name, d.help, metric),
        "seconds" => r.register_with_unit(d.name, d.help, Unit::Seconds, metric),
        "bytes" => r.register_with_unit(d.name, d.help, Unit::Bytes, metric),
        other => r.register_with_unit(d.name, d.help, Unit::Other(other.into()), metric),
    }
}

/// A label set whose label names are known as [`LabelNames::NAMES`]:
/// `label_set!(pub struct KindLabel { pub kind: &'static str })`.
macro_rules! label_set {
    ($(#[$m:meta])* pub struct $name:ident { $(pub $f:ident: $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
        pub struct $name {
            $(pub $f: $t),*
        }

        impl $crate::core::metrics::LabelNames for $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($f)),*];
        }
    };
}
pub(crate) use label_set;

/// A group of metrics, each declared once:
/// `field: Type [= initial value] => "name" [in unit], "help";`.
/// Generates the struct of handles, `DECLARATIONS` (in registration
/// order), `declared()` (every handle at its initial value, `Default` when
/// none is given) and `register_declared` (each handle under its
/// declaration).
macro_rules! declare_metrics {
    (
        $(#[$sm:meta])*
        pub struct $group:ident {
            $(
                $(#[$fm:meta])*
                $field:ident: $ty:ty $(= $init:expr)? => $name:literal $(in $unit:ident)?, $help:expr;
            )*
        }
    ) => {
        $(#[$sm])*
        pub struct $group {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $group {
            /// Every metric of the group, in the order they are registered.
            pub const DECLARATIONS: &'static [$crate::core::metrics::MetricDecl] = &[$(
                $crate::core::metrics::MetricDecl {
                    name: $name,
                    help: $help,
                    kind: <$ty as prometheus_client::metrics::TypedMetric>::TYPE,
                    labels: <$ty as $crate::core::metrics::Labels>::LABELS,
                    unit: declare_metrics!(@unit $($unit)?),
                },
            )*];

            /// Every handle at its declared initial value.
            fn declared() -> $group {
                $group {
                    $($field: declare_metrics!(@init $($init)?),)*
                }
            }

            /// Registers every handle under its declaration.
            fn register_declared(&self, r: &mut prometheus_client::registry::Registry) {
                let mut d = Self::DECLARATIONS.iter();
                $($crate::core::metrics::register_as(
                    r,
                    d.next().expect("one declaration per field"),
                    self.$field.clone(),
                );)*
            }
        }
    };
    (@unit) => { "" };
    (@unit $unit:ident) => { stringify!($unit) };
    (@init) => { Default::default() };
    (@init $init:expr) => { $init };
}
pub(crate) use declare_metrics;

label_set!(
    pub struct KindLabel {
        pub kind: &'static str,
    }
);

label_set!(
    pub struct ReasonLabel {
        pub reason: &'static str,
    }
);

label_set!(
    pub struct ActorLabel {
        pub actor: &'static str,
    }
);

label_set!(
    pub struct EventLabel {
        pub event: &'static str,
    }
);

label_set!(
    pub struct QueueEventLabel {
        pub queue: String,
        pub event: &'static str,
    }
);

label_set!(
    pub struct QueueReasonLabel {
        pub queue: String,
        pub reason: &'static str,
    }
);

label_set!(
    pub struct QueueLabel {
        pub queue: String,
    }
);

label_set!(
    pub struct ObserverLabel {
        pub observer: &'static str,
    }
);

label_set!(
    pub struct BuildLabels {
        pub version: &'static str,
        pub roles: String,
    }
);

/// Rows the model of this process could not predict. One counter per
/// process, as the model: the model actor counts in it, the registry and
/// the exit line read it.
pub fn model_unpredicted() -> Counter {
    static UNPREDICTED: std::sync::LazyLock<Counter> = std::sync::LazyLock::new(Counter::default);
    UNPREDICTED.clone()
}

declare_metrics! {
    /// Every handle of the registry. Cheap to clone (all `Arc`s).
    #[derive(Clone, Debug)]
    pub struct Metrics {
        /// Lines of `pipeline.log` that could not be written (a link, FIFO or
        /// other non-regular file at its name, or a disk failing for more than
        /// a MiB of them): the run exits 1 with the count. One per process, as
        /// the log it counts ([`crate::core::logging::pipeline_log_dropped`]).
        pipeline_log_dropped: Counter = crate::core::logging::pipeline_log_dropped()
            => "pipeline_log_dropped", "Lines of pipeline.log that could not be written (not a regular file at its name, or a failing disk): exit 1";
        /// Rows the model could not predict (an ONNX model that fails on a
        /// row or gives a value out of bounds): their truths stay unmatched
        /// and the run exits 1 with the count ([`model_unpredicted`]).
        model_unpredicted: Counter = model_unpredicted()
            => "model_unpredicted", "Rows the model could not predict (an ONNX model failing or giving a value out of bounds): exit 1";
        samples_emitted: Counter => "samples_emitted", "Samples the source emitted";
        rows_written: Counter => "rows_written", "Rows written to metric_log.csv";
        halves_received: Family<KindLabel, Counter>
            => "halves_received", "Truths (y_true) and predictions (y_pred) the metric received";
        /// Halves that wrote no row: expired, evicted, duplicate, redelivered.
        join_dropped: Family<ReasonLabel, Counter>
            => "join_dropped", "Halves that wrote no row, by reason (expired, evicted, duplicate, redelivered)";
        join_waiting: Gauge => "join_waiting", "Halves waiting for their other half";
        /// Failed writes of the metric's logs in a row (0 when writing works):
        /// `/ready` is 503 while it is not 0.
        metric_write_failures: Gauge
            => "metric_write_failures", "Failed writes of the metric's logs in a row (0 while writing works)";
        /// Halves read back from the split-layout metric's journal at start.
        journal_restored: Counter
            => "journal_restored", "Halves read back from the metric's journal of waiting halves at start";
        actor_restarts: Family<ActorLabel, Counter>
            => "actor_restarts", "Restarts of an actor by its supervisor";
        plot_renders: Counter => "plot_renders", "Renders of error_distribution.png";
        plot_render_seconds: BatchHistogram = BatchHistogram::new(&RENDER_BUCKETS)
            => "plot_render" in seconds, "Time to render error_distribution.png";
        absolute_error: BatchHistogram = BatchHistogram::new(&ERROR_BUCKETS)
            => "absolute_error", "Absolute error |y_true - y_pred| of every row written";
        latency_seconds: BatchHistogram = BatchHistogram::new(&LATENCY_BUCKETS)
            => "latency" in seconds, "Time from a sample's emission to its row in the log";
        /// accepted, published, confirmed, nacked, resent, dropped, refused.
        bridge_messages: Family<EventLabel, Counter>
            => "bridge_messages", "Messages through the outbound bridge, by event (samples: a batch message counts its samples)";
        bridge_buffered: Gauge => "bridge_buffered", "Messages (samples) the bridge holds for the broker";
        bridge_reconnects: Counter
            => "bridge_reconnects", "Connections of the bridge after the first";
        bridge_connected: Gauge
            => "bridge_connected", "1 while the bridge is connected with its topology declared";
        /// Set at shutdown: messages the broker never confirmed (exit 1 if > 0).
        bridge_undelivered: Gauge
            => "bridge_undelivered", "Messages (samples) the broker had not confirmed when the bridge stopped (set at shutdown)";
        /// delivered, acked, requeued.
        inbound_messages: Family<QueueEventLabel, Counter>
            => "inbound_messages", "Deliveries of the inbound consumers, by queue and event (delivered, acked, requeued)";
        inbound_dead_lettered: Family<QueueReasonLabel, Counter>
            => "inbound_dead_lettered", "Malformed deliveries dead-lettered, by queue and reason";
        legacy_purged: Family<QueueLabel, Counter>
            => "legacy_queue_purged", "Messages purged from legacy queues nobody reads, past their bound";
        observer_dropped: Family<ObserverLabel, Counter>
            => "observer_dropped", "Messages an observer fell behind on and did not get";
        rows_per_second: Gauge<f64, AtomicU64>
            => "rows_per_second", "Rows written per second over the last ten seconds";
        resident_memory_bytes: Gauge
            => "resident_memory" in bytes, "Resident memory of the process";
        peak_resident_memory_bytes: Gauge
            => "peak_resident_memory" in bytes, "Peak resident memory of the process (VmHWM)";
        /// Set at the end of a run: from start to the end of the drain.
        run_seconds: Gauge<f64, AtomicU64>
            => "run" in seconds, "Duration of the finished run, from start to the end of the drain (set at the end)";
    }
}

/// The process's version and roles, registered last (after every feature's
/// families): its value is only known at start, so it is no handle of
/// [`Metrics`].
pub const BUILD: MetricDecl = MetricDecl {
    name: "build",
    help: "Version and roles of this process",
    kind: MetricType::Info,
    labels: BuildLabels::NAMES,
    unit: "",
};

/// A feature's own metric families: it holds their handles and registers
/// them in the one registry ([`Telemetry::with_families`]), so this
/// module, below every feature, never names the feature's types.
pub trait Families {
    /// What [`Families::register`] registers, in its order.
    fn declarations(&self) -> &'static [MetricDecl];
    fn register(&self, r: &mut Registry);
}

/// The registry and its handles.
pub struct Telemetry {
    pub metrics: Metrics,
    registry: Registry,
    declarations: Vec<MetricDecl>,
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
        let metrics = Metrics::declared();
        let mut registry = Registry::with_prefix("modelwatch");
        metrics.register_declared(&mut registry);
        let mut declarations = Metrics::DECLARATIONS.to_vec();
        for f in features {
            f.register(&mut registry);
            declarations.extend_from_slice(f.declarations());
        }
        let build = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            roles: roles.to_owned(),
        });
        register_as(&mut registry, &BUILD, build);
        declarations.push(BUILD);
        Arc::new(Telemetry {
            metrics,
            registry,
            declarations,
        })
    }

    /// Every metric registered, in registration order: the pipeline's own,
    /// the features' (as given to [`Telemetry::with_families`]), [`BUILD`].
    pub fn declarations(&self) -> &[MetricDecl] {
        &self.declarations
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
    fn every_declaration_is_registered_with_its_help_type_and_unit() {
        let t = Telemetry::new("test");
        Metrics::inc_kind(&t.metrics.halves_received, "y_true", 1);
        let text = t.encode();
        let line = |d: &MetricDecl| format!("# HELP {} {}.", d.family(), d.help);
        // A family shows once one of its label sets is used; the rest always.
        for d in t.declarations() {
            if !d.labels.is_empty() && d.kind != MetricType::Info && d.name != "halves_received" {
                continue;
            }
            let family = d.family();
            for want in [line(d), format!("# TYPE {family} {}", d.kind.as_str())] {
                assert!(text.lines().any(|l| l == want), "no {want:?} in\n{text}");
            }
            let unit = format!("# UNIT {family} {}", d.unit);
            assert_eq!(
                text.lines().any(|l| l == unit),
                !d.unit.is_empty(),
                "{unit}"
            );
        }
        // Nothing is registered that is not declared.
        for help in text.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(t.declarations().iter().any(|d| line(d) == help), "{help}");
        }
        assert_eq!(BUILD.labels, ["version", "roles"]);
        let halves = Metrics::DECLARATIONS
            .iter()
            .find(|d| d.name == "halves_received")
            .expect("declared");
        assert_eq!(halves.labels, ["kind"]);
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
