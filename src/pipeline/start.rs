//! Start-up, step 3: start the actors. The bridge (when on) on a runtime
//! of its own, then the local actors under supervisors from the end of the
//! pipeline to its start (each needs its recipients), wired by `Routes`
//! (who receives what, in one table), and the consumers that feed a local
//! role whose producer runs in another process. Every actor is made from
//! what the restore step read: none reads the broker as it is made.

use std::sync::Arc;

use actix::prelude::*;
use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::amqp::{BatchForm, Bridge, BridgeActor};
use crate::config::{InboundSettings, Role, Settings};
use crate::core::backlog::{Backlog, Hold, Side};
use crate::core::fanout::Fanout;
use crate::core::messages::{Batch, Features, Kind, MetricRecord, Prediction, Scored, Truth};
use crate::core::metrics::Metrics;
use crate::metric::actor::{MetricFiles, RestartLink};
use crate::metric::join::RecentIds;
use crate::metric::throughput::ThroughputObserver;
use crate::metric::MetricActor;
use crate::model::{Model, ModelActor};
use crate::monitor::actor::{MonitorActor, ToExchange};
use crate::plot::PlotActor;
use crate::source::actor::SourceReport;
use crate::source::sampler::{Rows, Sampler};
use crate::source::scenario::{Plan, Scenario};
use crate::source::FeatureSource;

/// Starts the bridge when it is on: the AMQP side on its own runtime.
/// With `schema` (the user's own data), its messages carry values by
/// column name and its fingerprint.
pub(super) fn bridge(
    settings: &Settings,
    metrics: &Metrics,
    schema: Option<std::sync::Arc<crate::core::schema::WireSchema>>,
) -> anyhow::Result<Option<Bridge>> {
    Ok(match settings.bridge.enabled {
        true => Some(
            Bridge::start(
                settings.bridge.clone(),
                settings.history.enabled.then(|| settings.history.clone()),
                schema,
                settings.bridge.batch.then_some(BatchForm {
                    max_samples: settings.bridge.batch_max,
                    max_bytes: settings.inbound.max_batch_bytes,
                }),
                metrics,
            )
            .context("starting the AMQP runtime")?,
        ),
        false => None,
    })
}

/// The prepared actors of the roles that run in this process.
pub(super) struct LocalRoles {
    /// The model (of the user's own data: whatever the roles, for the
    /// predict form and the monitor's wiring; its actor runs only with
    /// the model role).
    pub(super) model: Option<std::sync::Arc<Model>>,
    /// The rows the source streams.
    pub(super) rows: Rows,
    pub(super) metric: Option<(MetricFiles, Option<RecentIds>)>,
    pub(super) plot: Option<PlotActor>,
    pub(super) monitor: Option<MonitorActor>,
}

/// Who receives what. Each method is one line of the table: the work
/// recipients of a message (awaited: backpressure, nothing lost) and its
/// observers (a bounded hand-off that never slows the pipeline; see
/// [`crate::core::fanout`]). The bridge, when on, is a work recipient of
/// every message (it bounds itself: `bridge.on_full`). A role that does not
/// run here is `None`: its messages reach it through RabbitMQ.
///
/// Actors need their recipients when they start, so they start from the
/// end of the pipeline (plot, metric, model, source), filling these in.
pub(super) struct Routes {
    pub(super) metrics: Metrics,
    pub(super) bridge: Option<Addr<BridgeActor>>,
    pub(super) plot: Option<Addr<PlotActor>>,
    pub(super) metric: Option<Addr<MetricActor>>,
    pub(super) model: Option<Addr<ModelActor>>,
    pub(super) throughput: Addr<ThroughputObserver>,
    pub(super) monitor: Option<Addr<MonitorActor>>,
    /// The model is a classifier: the monitor takes the features from it,
    /// with the class probabilities ([`Scored`]), not from the source
    /// (from RabbitMQ, `scored`, when the model runs elsewhere).
    pub(super) monitor_takes_scored: bool,
    /// The metric's waiting halves by side and the monitor's waiting
    /// features, which hold back the inbound consumer of an input that
    /// runs ahead ([`crate::core::backlog`]).
    pub(super) join_backlog: Arc<Backlog>,
    /// Most features the monitor keeps waiting for their record.
    pub(super) monitor_features_bound: usize,
}

impl Routes {
    //                                                   work recipients            observers
    fn records(&self) -> Fanout<Batch<MetricRecord>> {
        self.fanout(recipient(&self.plot))
            .observed_by(
                "throughput",
                self.throughput.clone().recipient(),
                &self.metrics,
            )
            .maybe_observed_by("monitor", recipient(&self.monitor), &self.metrics)
    }
    fn predictions(&self) -> Fanout<Batch<Prediction>> {
        self.fanout(recipient(&self.metric))
    }
    fn truths(&self) -> Fanout<Batch<Truth>> {
        self.fanout(recipient(&self.metric))
    }
    fn features(&self) -> Fanout<Batch<Features>> {
        let monitor = recipient(&self.monitor).filter(|_| !self.monitor_takes_scored);
        self.fanout(recipient(&self.model)).maybe_observed_by(
            "monitor_features",
            monitor,
            &self.metrics,
        )
    }
    fn scored(&self) -> Fanout<Batch<Scored>> {
        let monitor = recipient(&self.monitor).filter(|_| self.monitor_takes_scored);
        // On the exchange for a monitor in another process (only a
        // classifier's model scores).
        let bridge = self
            .bridge
            .as_ref()
            .filter(|_| self.monitor_takes_scored)
            .map(|b| b.clone().recipient());
        Fanout::of(bridge).maybe_observed_by("monitor_scored", monitor, &self.metrics)
    }

    /// `local` (if that role runs here) and the bridge (if on).
    fn fanout<M>(&self, local: Option<Recipient<M>>) -> Fanout<M>
    where
        M: actix::Message<Result = ()> + crate::core::fanout::Items + Send + Clone + 'static,
        BridgeActor: Handler<M>,
    {
        let mut out = Fanout::of(local);
        if let Some(b) = &self.bridge {
            out.add(b.clone().recipient());
        }
        out
    }
}

fn recipient<A, M>(addr: &Option<Addr<A>>) -> Option<Recipient<M>>
where
    A: Actor<Context = Context<A>> + Handler<M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    addr.as_ref().map(|a| a.clone().recipient())
}

/// The local actors of a run, and what the run needs to stop them.
pub(super) struct Actors {
    pub(super) routes: Routes,
    pub(super) source: Option<Addr<FeatureSource>>,
    /// The source's report, once its count is done or it is stopped.
    pub(super) done: oneshot::Receiver<SourceReport>,
    /// Cancelled when the run stops: the source stops, a failing metric
    /// stops retrying.
    pub(super) stop: CancellationToken,
    /// Cancelled by the metric when it gives up writing: the run must end.
    pub(super) gave_up: CancellationToken,
    pub(super) metric_thread: Arbiter,
    pub(super) observers_thread: Arbiter,
    pub(super) monitor_thread: Arbiter,
}

impl Actors {
    /// Starts the actors of the roles that run here, from the end of the
    /// pipeline to its start (each needs its recipients).
    pub(super) fn start(
        settings: &Settings,
        metrics: &Metrics,
        bridge: &Option<Bridge>,
        local: LocalRoles,
    ) -> Actors {
        let LocalRoles {
            model,
            rows,
            metric,
            plot,
            monitor,
        } = local;
        let stop = CancellationToken::new();
        let link = RestartLink {
            stopping: stop.clone(),
            gave_up: CancellationToken::new(),
        };
        let gave_up = link.gave_up.clone();
        // Observers run on a thread of their own: a stalled one stalls nothing else.
        let observers_thread = Arbiter::new();
        observers_thread.spawn_fn(crate::core::actor::lower_this_threads_priority);
        let rate = metrics.rows_per_second.clone();
        let mut routes = Routes {
            metrics: metrics.clone(),
            bridge: bridge.as_ref().map(|b| b.actor.clone()),
            plot: None,
            metric: None,
            model: None,
            throughput: ThroughputObserver::start_in_arbiter(
                &observers_thread.handle(),
                move |_| ThroughputObserver::new(rate),
            ),
            monitor: None,
            monitor_takes_scored: model.as_ref().is_some_and(|m| m.classes().is_some()),
            join_backlog: Arc::default(),
            monitor_features_bound: 1,
        };
        // The monitor's statistics cost more than the other observers':
        // a thread of its own, so it never starves them, at a low
        // scheduling priority, so that on a busy machine it takes only the
        // CPU the pipeline leaves (and misses, counted, what it cannot do).
        let monitor_thread = Arbiter::new();
        monitor_thread.spawn_fn(crate::core::actor::lower_this_threads_priority);
        let to_exchange = bridge.as_ref().map(|b| ToExchange {
            windows: b.actor.clone().recipient(),
            events: b.actor.clone().recipient(),
        });
        let backlog = routes.join_backlog.clone();
        routes.monitor_features_bound = monitor.as_ref().map_or(1, MonitorActor::features_bound);
        routes.monitor = monitor.map(|actor| {
            let actor = actor.with_bridge(to_exchange).with_backlog(backlog);
            MonitorActor::start_in_arbiter(&monitor_thread.handle(), move |_| actor)
        });
        routes.plot = plot.map(|actor| Supervisor::start(move |_| actor));
        // The metric does the file I/O: give it its own thread.
        let metric_thread = Arbiter::new();
        routes.metric = metric.map(|(files, recent)| {
            let (out, settings, m) = (routes.records(), settings.metric.clone(), metrics.clone());
            let backlog = routes.join_backlog.clone();
            Supervisor::start_in_arbiter(&metric_thread.handle(), move |_| {
                MetricActor::new(files, out, settings, recent, m)
                    .with_link(link)
                    .with_backlog(backlog)
            })
        });
        routes.model = model.filter(|_| settings.runs(Role::Model)).map(|m| {
            let (out, forward) = (routes.predictions(), forward_features(settings, bridge));
            let scored = routes.scored();
            Supervisor::start(move |_| ModelActor::new(m, out).forwarding(forward).scoring(scored))
        });
        let (done_tx, done) = oneshot::channel();
        let source = settings
            .runs(Role::Features)
            .then(|| start_source(settings, rows, metrics, &routes, &stop, done_tx));
        Actors {
            routes,
            source,
            done,
            stop,
            gave_up,
            metric_thread,
            observers_thread,
            monitor_thread,
        }
    }
}

/// The feature source: its sampler (with the scenario, when there is
/// one), feeding the routes' receivers of features and truths, stopped by
/// `stop`, its report sent on `done_tx`.
fn start_source(
    settings: &Settings,
    rows: Rows,
    metrics: &Metrics,
    routes: &Routes,
    stop: &CancellationToken,
    done_tx: oneshot::Sender<SourceReport>,
) -> Addr<FeatureSource> {
    let sampler = sampler(settings, rows);
    let (features, truths) = (routes.features(), routes.truths());
    let (source_settings, stop_source) = (settings.source.clone(), stop.clone());
    let emitted = metrics.samples_emitted.clone();
    Supervisor::start(move |_| {
        FeatureSource::new(
            sampler,
            features,
            truths,
            source_settings,
            stop_source,
            done_tx,
            emitted,
        )
    })
}

/// The sampler of `rows` in `source.order`, with the scenario of
/// `source.scenario` when there is one (the diabetes data only: the
/// config refuses one with data of the user's own).
fn sampler(settings: &Settings, rows: Rows) -> Sampler {
    // Checked when the settings were loaded (exit 2 there).
    let scenario = settings.source.scenario.as_ref().map(|s| {
        let plan = match &rows {
            Rows::Diabetes(d) => Plan::new(s, *d),
            Rows::Own(d) => Plan::new(s, d.as_ref()),
        }
        .expect("source.scenario is checked at start (pipeline::check)");
        tracing::info!(scenario = ?s, "scenario: the stream changes from sample {} on", s.start);
        Scenario::new(plan, settings.source.seed)
    });
    Sampler::new(rows, settings.source.order, settings.source.seed).with_scenario(scenario)
}

/// Where the model forwards the features it consumed: with
/// `--legacy-inbound` it reads the Python services' queue `features`, which
/// no monitor sees, so it forwards each batch to the monitor's queue
/// (`inbound.monitor_features_queue`), straight to it through the default
/// exchange: on the exchange under `features` they would be routed back
/// into `features`, a loop. A work recipient, so the deliveries are acked
/// only once the broker has the forwarded copies too (at least once; the
/// monitor deduplicates by id). Nowhere otherwise.
fn forward_features(settings: &Settings, bridge: &Option<Bridge>) -> Fanout<Batch<Features>> {
    let forwards = settings
        .inbound
        .forwards_features(&settings.roles, settings.monitor.enabled);
    match bridge {
        Some(b) if forwards => {
            let queue = &settings.inbound.monitor_features_queue;
            tracing::info!(
                queue = %queue.escape_debug(),
                "model: forwarding the features it consumes from the legacy queue `features` to the monitor's queue"
            );
            Fanout::of([b.to_queue(queue).recipient()])
        }
        _ => Fanout::default(),
    }
}

/// What comes in from RabbitMQ: a local role's input whose producer runs
/// elsewhere (queue, kind, the actor it feeds).
pub(super) fn consume_remote_inputs(bridge: &mut Bridge, routes: &Routes, settings: &Settings) {
    let (q, remote) = (&settings.inbound, |role| !settings.runs(role));
    // A side of the join that runs ahead waits (in its queue).
    let hold = |side, bound| Some(Hold::new(routes.join_backlog.clone(), side, bound));
    let max_pending = settings.metric.max_pending;
    let features_hold = hold(Side::Features, routes.monitor_features_bound);
    if let (Some(model), true) = (&routes.model, remote(Role::Features)) {
        let to = model.clone().recipient();
        bridge.consume::<Features>(&q.model_queue, Kind::Features, to, q, None);
    }
    if let (Some(metric), true) = (&routes.metric, remote(Role::Features)) {
        let (to, queue) = (metric.clone().recipient(), &q.metric_truth_queue);
        bridge.consume::<Truth>(queue, Kind::YTrue, to, q, hold(Side::Truths, max_pending));
    }
    if let (Some(metric), true) = (&routes.metric, remote(Role::Model)) {
        let (to, queue) = (metric.clone().recipient(), &q.metric_prediction_queue);
        bridge.consume::<Prediction>(
            queue,
            Kind::YPred,
            to,
            q,
            hold(Side::Predictions, max_pending),
        );
    }
    if let (Some(plot), true) = (&routes.plot, remote(Role::Metric)) {
        let to = plot.clone().recipient();
        bridge.consume::<MetricRecord>(&q.plot_queue, Kind::Metrics, to, q, None);
    }
    // The monitor runs with the metric; its drift tests need the features,
    // and a classifier's windows its probabilities: the model's scored
    // features when the model runs elsewhere.
    let scored = InboundSettings::monitor_reads_scored(
        &settings.roles,
        routes.monitor.is_some(),
        routes.monitor_takes_scored,
    );
    if let (Some(monitor), true) = (&routes.monitor, scored) {
        bridge.consume::<Scored>(
            &q.monitor_scored_queue,
            Kind::Scored,
            monitor.clone().recipient(),
            q,
            features_hold,
        );
    } else if let (Some(monitor), true, false) = (
        &routes.monitor,
        remote(Role::Features),
        routes.monitor_takes_scored,
    ) {
        bridge.consume::<Features>(
            &q.monitor_features_queue,
            Kind::Features,
            monitor.clone().recipient(),
            q,
            features_hold,
        );
    }
}
