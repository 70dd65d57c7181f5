//! Wires the actors together, runs them, and shuts them down in order.
//!
//! [`prepare`] does everything that can fail because of bad input (logs
//! folder, log files, model artifact, existing log, the HTTP address)
//! before any actor starts, so such a failure exits with code 2 and touches
//! nothing. [`run`] starts the actors under supervisors, wired by
//! [`Routes`] (who receives what, in one table), serves HTTP, and waits for
//! the end of `count`, a [`Shutdown::drain`] or a metric that gave up; then
//! it drains: stop the source, wait for every in-flight sample to be
//! handled, flush and sync the files, render the last plot, wait for the
//! broker's confirms. [`Shutdown::abort`] abandons the drain with an error.
//! What was not done (rows not written, messages not delivered, inbound
//! work abandoned, lines of `pipeline.log` dropped) makes the run fail:
//! [`RunReport::shortfall`] says what.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::amqp::{Bridge, BridgeActor, BridgeReport};
use crate::config::{Role, Settings};
use crate::core::data::Dataset;
use crate::core::fanout::Fanout;
use crate::core::log_paths::{lock_logs_dir, LogPaths};
use crate::core::messages::{Batch, Features, Kind, MetricRecord, Prediction, Truth};
use crate::core::metrics::{Metrics, Telemetry};
use crate::core::reopen::Reopen;
use crate::core::shutdown::Shutdown;
use crate::http::dashboard::Dashboard;
use crate::metric::actor::{FlushAndReport, MetricFiles, MetricReport, RestartLink};
use crate::metric::join::RecentIds;
use crate::metric::journal::Journal;
use crate::metric::log_format::read_metric_log;
use crate::metric::log_format::METRIC_HEADER;
use crate::metric::throughput::ThroughputObserver;
use crate::metric::MetricActor;
use crate::model::ModelActor;
use crate::model::{load_or_fit_model, LinearModel};
use crate::monitor::actor::{FinalFlush, MonitorActor, Reference, ToExchange};
use crate::monitor::report::Board;
use crate::monitor::telemetry::MonitorMetrics;
use crate::plot::actor::FinalRender;
use crate::plot::render::PlotSpec;
use crate::plot::view::PlotView;
use crate::plot::PlotActor;
use crate::source::actor::SourceReport;
use crate::source::sampler::Sampler;
use crate::source::scenario::{Plan, Scenario};
use crate::source::FeatureSource;

/// What start-up opened and checked, for the roles this process runs.
pub struct Prepared {
    pub settings: Settings,
    pub paths: LogPaths,
    /// The registry every component updates; read it after the run.
    pub telemetry: Arc<Telemetry>,
    model: Option<Arc<LinearModel>>,
    /// Where the model came from: the artifact's path, or "fitted in memory".
    model_origin: String,
    metric: Option<(MetricFiles, Option<RecentIds>)>,
    plot: Option<PlotActor>,
    /// With the metric role and `monitor.enabled`.
    monitor: Option<MonitorActor>,
    /// What the monitor said lately, for the dashboard (empty without one).
    board: Board,
    /// Held while the process runs: the logs dir's lock (metric role).
    _logs_lock: Option<std::fs::File>,
    /// The HTTP server's listener, bound.
    http: Option<TcpListener>,
}

/// With the server off, removes an earlier run's `logs/http.addr`.
fn remove_http_addr(path: &Path) -> anyhow::Result<()> {
    // What is not a regular file there is neither followed nor removed.
    crate::core::output_file::check(path).map_err(|why| anyhow::anyhow!(why))?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("{}: cannot remove", path.display()))
        }
        _ => Ok(()),
    }
}

/// Opens the log files and the model of the roles to run; nothing runs yet.
pub fn prepare(settings: Settings) -> anyhow::Result<Prepared> {
    // Its reopen is asked for through `Prepared::paths` (SIGHUP in cli.rs).
    let paths =
        LogPaths::new(&settings.logs.dir).with_rotation(settings.logs.rotation(&Reopen::new()));
    paths.create_dir()?;
    // One writer per logs dir: two metrics appending to one metric_log.csv
    // (and monitors to one metrics_over_time.csv) interleave their rows.
    let logs_lock = if settings.runs(Role::Metric) {
        Some(lock_logs_dir(&paths.dir)?)
    } else {
        None
    };
    // An earlier run's registry must not pass for this one's (a panic, exit
    // 70, writes none).
    match std::fs::remove_file(&paths.final_metrics) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e)
                .with_context(|| format!("{}: cannot remove", paths.final_metrics.display()));
        }
        _ => {}
    }
    let roles: Vec<String> = settings
        .roles
        .iter()
        .map(|r| format!("{r:?}").to_lowercase())
        .collect();
    // The monitor's families are registered whether or not it runs here.
    let monitor_metrics = MonitorMetrics::new();
    let telemetry = Telemetry::with_families(&roles.join(","), &[&monitor_metrics]);
    // Bound first: an address the user gave that is in use is bad
    // configuration (exit 2); `auto` falls back to a free port.
    let http = match crate::http::server::bind_listen(settings.http.listen())? {
        Some((listener, fell_back)) => {
            let bound = listener.local_addr()?;
            crate::core::output_file::replace(&paths.http_addr, format!("{bound}\n").as_bytes())
                .with_context(|| format!("{}: cannot write", paths.http_addr.display()))?;
            if fell_back {
                tracing::warn!(
                    taken = crate::config::http::DEFAULT_ADDR,
                    addr = %bound,
                    file = %paths.http_addr.display(),
                    "http.listen auto: {} is in use by another process; serving on {bound} instead",
                    crate::config::http::DEFAULT_ADDR
                );
            }
            tracing::info!(addr = %bound, "http server: /metrics /health /ready");
            Some(listener)
        }
        None => {
            // An earlier run's address must not pass for this run's.
            remove_http_addr(&paths.http_addr)?;
            None
        }
    };
    if settings.inbound.legacy && !settings.is_split() {
        // Said, not refused: the same command line serves both layouts.
        tracing::warn!(
            "inbound.legacy (--legacy-inbound) has no effect here: this process runs every role, so it reads no queue; run the model and metric roles in their own processes to read the Python services' queues"
        );
    }
    if settings.bridge.enabled {
        // A refused login or vhost, or a declaration the broker refuses for
        // good (a queue that exists with another bound, a reserved name), is
        // bad configuration: exit 2 now, not retry for the whole run.
        crate::amqp::check_topology(&settings)?;
    }
    let model = if settings.runs(Role::Model) {
        Some(Arc::new(load_or_fit_model(&settings.model.artifact)?))
    } else {
        None
    };
    let model_origin = if settings.model.artifact.exists() {
        settings.model.artifact.display().to_string()
    } else {
        "fitted in memory".to_owned()
    };
    // The metric opens (and repairs) the log before the plot reads it.
    let metric = if settings.runs(Role::Metric) {
        let csv = paths.open_log(&paths.metric_csv, Some(METRIC_HEADER))?;
        let labels = if settings.metric.labels_log {
            Some(paths.open_log(&paths.labels, None)?)
        } else {
            None
        };
        // Inputs read from RabbitMQ may come twice: remember what is
        // written; and a half that waits for its partner is journaled so
        // that its delivery can be acknowledged.
        let (recent, journal) = if !settings.runs(Role::Features) || !settings.runs(Role::Model) {
            // The newest old file first: a rotation just before a restart
            // must not empty the window.
            let mut recent = RecentIds::new(settings.metric.dedup_window);
            let old = paths.rotation.old_files(&paths.metric_csv);
            for csv in old.last().into_iter().chain([&paths.metric_csv]) {
                read_metric_log(csv, |r| recent.insert(r.id))
                    .with_context(|| format!("reading the ids of {}", csv.display()))?;
            }
            let journal = Journal::open(&paths.pending_journal)?;
            (Some(recent), Some(journal))
        } else {
            (None, None)
        };
        Some((
            MetricFiles {
                csv,
                labels,
                journal,
            },
            recent,
        ))
    } else {
        None
    };
    // The monitor (with the metric role) and the histogram's baseline line
    // (with the plot role) judge against the model's training figures: this
    // process's model, or the artifact's when the model runs elsewhere.
    let baseline = match settings.monitor.enabled
        && (settings.runs(Role::Metric) || settings.runs(Role::Plot))
    {
        true => {
            let m = match &model {
                Some(m) => m.clone(),
                None => Arc::new(load_or_fit_model(&settings.model.artifact)?),
            };
            Some(Reference::of(m, &settings.monitor)?)
        }
        false => None,
    };
    let plot = if settings.runs(Role::Plot) {
        let spec = PlotSpec {
            width: settings.plot.width,
            height: settings.plot.height,
            bins: settings.plot.bins,
        };
        let actor = PlotActor::load(
            &paths.metric_csv,
            paths.plot_png.clone(),
            spec,
            settings.plot.interval,
            telemetry.metrics.clone(),
        )
        .with_context(|| format!("reading the existing {}", paths.metric_csv.display()))?;
        Some(actor)
    } else {
        None
    };
    let board = Board::default();
    let monitor = match &baseline {
        Some(baseline) if settings.runs(Role::Metric) => Some(
            MonitorActor::open(
                &settings,
                &paths,
                baseline.clone(),
                board.clone(),
                monitor_metrics.clone(),
            )
            .context("starting the monitor")?,
        ),
        _ => None,
    };
    let plot = plot.map(|p| p.with_baseline(baseline.map(|b| b.baseline)));
    Ok(Prepared {
        settings,
        paths,
        telemetry,
        model,
        model_origin,
        metric,
        plot,
        monitor,
        board,
        _logs_lock: logs_lock,
        http,
    })
}

/// The prepared actors of the roles that run in this process.
struct LocalRoles {
    model: Option<Arc<LinearModel>>,
    metric: Option<(MetricFiles, Option<RecentIds>)>,
    plot: Option<PlotActor>,
    monitor: Option<MonitorActor>,
}

/// Figures of a finished run (each part only if this process ran that role).
#[derive(Debug, Clone)]
pub struct RunReport {
    pub source: Option<SourceReport>,
    pub metric: Option<MetricReport>,
    pub elapsed: Duration,
    /// With the bridge on: its counters and what was not delivered.
    pub bridge: Option<BridgeReport>,
    /// What the monitor could not write, if it ran.
    pub monitor: Option<crate::monitor::actor::MonitorShortfall>,
    /// Lines of `pipeline.log` that could not be written, by the end of the
    /// drain ([`crate::core::logging::pipeline_log_dropped`]).
    pub pipeline_log_dropped: u64,
}

impl RunReport {
    /// What this run did not deliver, if anything (then it must exit 1).
    pub fn shortfall(&self) -> Option<String> {
        let parts: Vec<String> = [
            self.monitor
                .as_ref()
                .filter(|m| !m.is_empty())
                .map(ToString::to_string),
            self.bridge.and_then(bridge_shortfall),
            match self.pipeline_log_dropped {
                0 => None,
                n => Some(format!(
                    "{n} lines of pipeline.log could not be written and were dropped (the error on stderr says why)"
                )),
            },
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Rows written per second (0 without the metric role).
    pub fn samples_per_sec(&self) -> f64 {
        let rows = self.metric.as_ref().map_or(0, |m| m.rows_written);
        rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What the bridge did not deliver, if anything.
fn bridge_shortfall(b: BridgeReport) -> Option<String> {
    if b.complete() {
        return None;
    }
    let refused = match b.stats.refused_at_shutdown {
        0 => String::new(),
        n => format!(
            "; {n} of the unconfirmed were never handed to the broker (refused at shutdown after bridge.shutdown_timeout without a confirm)"
        ),
    };
    Some(format!(
        "not everything was delivered: {} messages not confirmed by the broker, {} dropped from the full buffer, {} inbound deliveries abandoned at the shutdown deadline{refused}",
        b.undelivered, b.stats.dropped, b.inbound_abandoned
    ))
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
struct Routes {
    metrics: Metrics,
    bridge: Option<Addr<BridgeActor>>,
    plot: Option<Addr<PlotActor>>,
    metric: Option<Addr<MetricActor>>,
    model: Option<Addr<ModelActor>>,
    throughput: Addr<ThroughputObserver>,
    monitor: Option<Addr<MonitorActor>>,
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
        self.fanout(recipient(&self.model)).maybe_observed_by(
            "monitor_features",
            recipient(&self.monitor),
            &self.metrics,
        )
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

/// Runs the pipeline until `count` samples are done, `shutdown` asks for a
/// drain, or the metric gives up writing. Must be called inside an actix
/// `System`. The steps, in order:
///
/// 1. start the bridge (if on) and the local actors, wired by [`Routes`];
/// 2. feed local roles whose producer runs elsewhere from RabbitMQ;
/// 3. serve HTTP;
/// 4. wait for the end of the source's count, a drain, or a metric that
///    gave up;
/// 5. drain in order: inbound consumers, the metric's files, the last plot,
///    the broker's confirms.
///
/// [`Shutdown::abort`] during steps 4–5 gives up with an error that says
/// how many messages were left undelivered.
pub async fn run(p: Prepared, shutdown: Shutdown) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let Prepared {
        settings,
        telemetry,
        model,
        model_origin,
        metric,
        plot,
        monitor,
        board,
        http,
        ..
    } = p;
    // The monitor's board: empty in a process without the monitor (the
    // dashboard says "no windows yet").
    let mut dashboard = Dashboard::new(
        telemetry.metrics.clone(),
        board,
        settings.http.max_event_streams,
    );
    if let Some(m) = &model {
        dashboard = dashboard.with_model(m.clone(), &model_origin);
    }
    // With the plot role, the dashboard's histogram is what the plot drew.
    let plot = plot.map(|p| {
        let view = PlotView::default();
        dashboard.histogram = Some(view.clone());
        p.with_view(view)
    });
    let mut bridge = match settings.bridge.enabled {
        true => Some(
            Bridge::start(
                settings.bridge.clone(),
                settings.history.enabled.then(|| settings.history.clone()),
                &telemetry.metrics,
            )
            .context("starting the AMQP runtime")?,
        ),
        false => None,
    };
    let local = LocalRoles {
        model,
        metric,
        plot,
        monitor,
    };
    let mut actors = Actors::start(&settings, &telemetry.metrics, &bridge, local);
    if let Some(b) = bridge.as_mut() {
        consume_remote_inputs(b, &actors.routes, &settings);
    }
    let server = match http {
        Some(listener) => Some(serve_http(
            listener, &actors, &telemetry, &settings, dashboard,
        )?),
        None => None,
    };

    let probe = bridge.as_ref().map(Bridge::probe);
    // Rows the metric made (each observed once in the error histogram)
    // and rows that reached the file: the difference is what an abort loses.
    let metrics = telemetry.metrics.clone();
    let has_metric = settings.runs(Role::Metric);
    let aborted = |why: String| {
        crate::core::exit::leave();
        let left = probe.as_ref().map_or(0, |p| p.undelivered_now());
        let unwritten = metrics
            .absolute_error
            .count()
            .saturating_sub(metrics.rows_written.get());
        tracing::error!(
            signal = why,
            undelivered = left,
            unwritten_rows = unwritten,
            "second signal: exiting without finishing the drain"
        );
        let rows = match has_metric {
            true => format!("; {unwritten} rows not written to metric_log.csv"),
            false => String::new(),
        };
        anyhow::anyhow!(
            "second signal ({why}) during the shutdown: stopped without finishing it; {left} messages not delivered to the broker{rows}"
        )
    };
    let report = tokio::select! {
        report = async {
            let source = actors.wait_for_end(&shutdown, &bridge, &settings).await?;
            actors.drain(bridge, source, started).await
        } => report,
        why = shutdown.aborted() => Err(aborted(why)),
    };
    if let Some(server) = server {
        server.stop().await;
    }
    report.map(|r| RunReport {
        pipeline_log_dropped: metrics.pipeline_log_dropped.get(),
        ..r
    })
}

/// The local actors of a run, and what the run needs to stop them.
struct Actors {
    routes: Routes,
    source: Option<Addr<FeatureSource>>,
    /// The source's report, once its count is done or it is stopped.
    done: oneshot::Receiver<SourceReport>,
    /// Cancelled when the run stops: the source stops, a failing metric
    /// stops retrying.
    stop: CancellationToken,
    /// Cancelled by the metric when it gives up writing: the run must end.
    gave_up: CancellationToken,
    metric_thread: Arbiter,
    observers_thread: Arbiter,
    monitor_thread: Arbiter,
}

impl Actors {
    /// Starts the actors of the roles that run here, from the end of the
    /// pipeline to its start (each needs its recipients).
    fn start(
        settings: &Settings,
        metrics: &Metrics,
        bridge: &Option<Bridge>,
        local: LocalRoles,
    ) -> Actors {
        let LocalRoles {
            model,
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
        routes.monitor = monitor.map(|actor| {
            let actor = actor.with_bridge(to_exchange);
            MonitorActor::start_in_arbiter(&monitor_thread.handle(), move |_| actor)
        });
        routes.plot = plot.map(|actor| Supervisor::start(move |_| actor));
        // The metric does the file I/O: give it its own thread.
        let metric_thread = Arbiter::new();
        routes.metric = metric.map(|(files, recent)| {
            let (out, settings, m) = (routes.records(), settings.metric.clone(), metrics.clone());
            Supervisor::start_in_arbiter(&metric_thread.handle(), move |_| {
                MetricActor::new(files, out, settings, recent, m).with_link(link)
            })
        });
        routes.model = model.map(|m| {
            let (out, forward) = (routes.predictions(), forward_features(settings, bridge));
            Supervisor::start(move |_| ModelActor::new(m, out).forwarding(forward))
        });
        let (done_tx, done) = oneshot::channel();
        let source = settings.runs(Role::Features).then(|| {
            // Checked when the settings were loaded (exit 2 there).
            let scenario = settings.source.scenario.as_ref().map(|s| {
                let plan = Plan::new(s, Dataset::embedded())
                    .expect("source.scenario is checked when the settings load");
                tracing::info!(scenario = ?s, "scenario: the stream changes from sample {} on", s.start);
                Scenario::new(plan, settings.source.seed)
            });
            let sampler = Sampler::new(Dataset::embedded(), settings.source.seed)
                .with_scenario(scenario);
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
        });
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

    /// Waits for the end of the source's count, a drain, or a metric that
    /// gave up; then stops the source and waits for its report.
    async fn wait_for_end(
        &mut self,
        shutdown: &Shutdown,
        bridge: &Option<Bridge>,
        settings: &Settings,
    ) -> anyhow::Result<Option<SourceReport>> {
        let mut report = None;
        let mut running = self.source.is_some();
        tokio::select! {
            r = &mut self.done, if running => {
                report = Some(r.context("the source ended without a report")?);
                running = false;
            }
            why = shutdown.drained() => tracing::info!(signal = why, "stopping: draining in-flight work"),
            _ = self.gave_up.cancelled() => tracing::error!("stopping: the metric cannot write its logs"),
        }
        if report.is_none() || self.gave_up.is_cancelled() {
            // Stopped early: the source and a failing metric stop retrying.
            self.stop.cancel();
        }
        if !running {
            return Ok(report);
        }
        // The source's last batches may wait for room in a full outbox: the
        // broker takes them as long as it confirms (a healthy broker under
        // load); only when it has confirmed nothing for
        // `bridge.shutdown_timeout` does the bridge refuse (and count)
        // instead of wait, so the drain cannot hang on a dead broker.
        let stalled = async {
            let Some(p) = bridge.as_ref().map(Bridge::probe) else {
                return std::future::pending().await;
            };
            let (mut last, mut since) = (p.confirmed(), Instant::now());
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if p.confirmed() != last {
                    (last, since) = (p.confirmed(), Instant::now());
                } else if since.elapsed() >= settings.bridge.shutdown_timeout {
                    return;
                }
            }
        };
        tokio::select! {
            r = &mut self.done => return Ok(Some(r.context("the source ended without a report")?)),
            _ = stalled => {
                tracing::warn!("the broker confirmed nothing for bridge.shutdown_timeout: the bridge refuses what it has no room for (counted)");
                if let Some(b) = bridge {
                    b.stop_blocking();
                }
            }
        }
        Ok(Some(
            (&mut self.done)
                .await
                .context("the source ended without a report")?,
        ))
    }

    /// Drains in order: no new inbound work (what is in flight finishes and
    /// is acked), the metric's final flush, the last plot, then the broker's
    /// confirms (even when the logs failed: wait for the broker and count).
    async fn drain(
        self,
        mut bridge: Option<Bridge>,
        source: Option<SourceReport>,
        started: Instant,
    ) -> anyhow::Result<RunReport> {
        if let Some(b) = bridge.as_mut() {
            b.stop_consumers().await;
        }
        let metric = match &self.routes.metric {
            Some(metric) => Some(
                metric
                    .send(FlushAndReport)
                    .await
                    .context("metric actor gone at shutdown")?
                    .map_err(|e| anyhow::anyhow!("final flush of the logs failed: {e}")),
            ),
            None => None,
        };
        if let Some(plot) = &self.routes.plot {
            let plotted = plot
                .send(FinalRender)
                .await
                .context("plot actor gone at shutdown")?;
            if let Err(e) = &plotted {
                tracing::error!(error = %e, "final plot render failed");
            }
        }
        let monitor = match &self.routes.monitor {
            // Behind whatever it still has in its mailbox.
            Some(monitor) => Some(monitor.send(FinalFlush).await.unwrap_or_else(|_| {
                tracing::error!(
                    "monitor gone at shutdown: its last window and picture are not written"
                );
                crate::monitor::actor::MonitorShortfall {
                    unwritten: vec!["the monitor's files (the monitor is gone)".into()],
                    ..Default::default()
                }
            })),
            None => None,
        };
        self.metric_thread.stop();
        self.observers_thread.stop();
        self.monitor_thread.stop();
        let bridge = match bridge {
            Some(b) => Some(b.shutdown().await),
            None => None,
        };
        // A failed metric ends the run with its error; what the monitor
        // could not write is counted on the same line.
        let metric = match metric.transpose() {
            Ok(m) => m,
            Err(e) => match monitor.as_ref().filter(|m| !m.is_empty()) {
                Some(m) => return Err(anyhow::anyhow!("{e:#}; {m}")),
                None => return Err(e),
            },
        };
        Ok(RunReport {
            source,
            metric,
            // With the bridge on, the run ends when the broker has confirmed.
            elapsed: started.elapsed(),
            bridge,
            monitor,
            // Read by `run` once the drain is over.
            pipeline_log_dropped: 0,
        })
    }
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
fn consume_remote_inputs(bridge: &mut Bridge, routes: &Routes, settings: &Settings) {
    let (q, remote) = (&settings.inbound, |role| !settings.runs(role));
    if let (Some(model), true) = (&routes.model, remote(Role::Features)) {
        bridge.consume::<Features>(&q.model_queue, Kind::Features, model.clone().recipient(), q);
    }
    if let (Some(metric), true) = (&routes.metric, remote(Role::Features)) {
        bridge.consume::<Truth>(
            &q.metric_truth_queue,
            Kind::YTrue,
            metric.clone().recipient(),
            q,
        );
    }
    if let (Some(metric), true) = (&routes.metric, remote(Role::Model)) {
        bridge.consume::<Prediction>(
            &q.metric_prediction_queue,
            Kind::YPred,
            metric.clone().recipient(),
            q,
        );
    }
    if let (Some(plot), true) = (&routes.plot, remote(Role::Metric)) {
        bridge.consume::<MetricRecord>(&q.plot_queue, Kind::Metrics, plot.clone().recipient(), q);
    }
    // The monitor runs with the metric; its drift tests need the features.
    if let (Some(monitor), true) = (&routes.monitor, remote(Role::Features)) {
        bridge.consume::<Features>(
            &q.monitor_features_queue,
            Kind::Features,
            monitor.clone().recipient(),
            q,
        );
    }
}

/// Serves `/metrics`, `/health`, `/ready` and the dashboard on the
/// listener bound at start.
fn serve_http(
    listener: TcpListener,
    actors: &Actors,
    telemetry: &Arc<Telemetry>,
    settings: &Settings,
    mut dashboard: Dashboard,
) -> anyhow::Result<crate::http::server::Server> {
    let status = status_of(
        &actors.routes,
        actors.source.as_ref(),
        &telemetry.metrics,
        settings.bridge.enabled,
    );
    let limits = crate::http::server::Limits {
        max_connections: settings.http.max_connections,
        request_timeout: settings.http.request_timeout,
        write_timeout: settings.http.write_timeout,
    };
    dashboard.bridge = settings.bridge.enabled;
    if settings.bridge.enabled {
        // Every queue this process may consume; the dashboard shows those
        // with deliveries.
        let q = &settings.inbound;
        dashboard.inbound_queues = [
            q.model_queue.as_str(),
            &q.metric_truth_queue,
            &q.metric_prediction_queue,
            &q.plot_queue,
            "features",
            "y_true",
            "y_pred",
        ]
        .map(str::to_owned)
        .to_vec();
    }
    crate::http::server::serve(
        listener,
        telemetry.clone(),
        Arc::new(status),
        limits,
        dashboard,
    )
    .context("starting the http server")
}

/// What `/health` and `/ready` look at: every local actor, and the broker.
fn status_of(
    routes: &Routes,
    source: Option<&Addr<FeatureSource>>,
    metrics: &Metrics,
    bridge: bool,
) -> crate::http::server::Status {
    let mut status =
        crate::http::server::Status::new(bridge.then(|| metrics.bridge_connected.clone()));
    fn probe<A: Actor>(a: &Addr<A>) -> crate::http::server::Probe {
        let a = a.clone();
        Box::new(move || a.connected())
    }
    if let Some(a) = source {
        status.watch("source", probe(a));
    }
    if let Some(a) = &routes.model {
        status.watch("model", probe(a));
    }
    if let Some(a) = &routes.metric {
        status.watch("metric", probe(a));
        status.writes = Some(metrics.metric_write_failures.clone());
    }
    if let Some(a) = &routes.plot {
        status.watch("plot", probe(a));
    }
    if let Some(a) = &routes.bridge {
        status.watch("bridge", probe(a));
    }
    status.watch("throughput", probe(&routes.throughput));
    if let Some(a) = &routes.monitor {
        status.watch("monitor", probe(a));
    }
    status
        .started
        .store(true, std::sync::atomic::Ordering::Release);
    status
}
