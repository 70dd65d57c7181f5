//! Wires the actors together, runs them, and shuts them down in order.
//!
//! [`prepare`] does everything that can fail because of bad input (logs
//! folder, log files, model artifact, existing log) before any actor starts,
//! so such a failure exits with code 2 and touches nothing. [`run`] starts
//! the actors under supervisors, waits for the end of `count` or a signal,
//! and then drains: stop the source, wait for every in-flight sample to be
//! handled, flush and sync the files, render the last plot, wait for the
//! broker's confirms. The run also ends when the metric gives up writing its
//! logs. A second signal abandons the drain with an error. What was not
//! done (rows not written, messages not delivered, inbound work abandoned)
//! makes the run fail: [`RunReport::shortfall`] says what.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::actors::metric::{FlushAndReport, MetricFiles, MetricReport, RestartLink};
use crate::actors::plot::FinalRender;
use crate::actors::source::SourceReport;
use crate::actors::{Fanout, FeatureSource, MetricActor, ModelActor, PlotActor};
use crate::amqp::{Bridge, BridgeActor, BridgeReport};
use crate::append_file::AppendFile;
use crate::config::{Role, Settings};
use crate::data::Dataset;
use crate::join::RecentIds;
use crate::journal::Journal;
use crate::log_format::read_metric_log;
use crate::log_format::METRIC_HEADER;
use crate::messages::{Features, Kind, MetricRecord, Prediction, Truth};
use crate::model::{LinearModel, ModelError};
use crate::render::PlotSpec;
use crate::sampler::Sampler;

/// The files a run writes, all in `logs.dir`.
#[derive(Debug, Clone)]
pub struct LogPaths {
    pub dir: PathBuf,
    pub metric_csv: PathBuf,
    pub labels: PathBuf,
    pub pipeline_log: PathBuf,
    pub plot_png: PathBuf,
    /// The metric's waiting halves, in the split layout.
    pub pending_journal: PathBuf,
}

impl LogPaths {
    pub fn new(dir: &Path) -> LogPaths {
        LogPaths {
            dir: dir.to_owned(),
            metric_csv: dir.join("metric_log.csv"),
            labels: dir.join("labels_log.txt"),
            pipeline_log: dir.join("pipeline.log"),
            plot_png: dir.join("error_distribution.png"),
            pending_journal: dir.join("pending_halves.journal"),
        }
    }

    /// Creates the folder; an error names it.
    pub fn create_dir(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("logs.dir {}: cannot create", self.dir.display()))
    }
}

/// What start-up opened and checked, for the roles this process runs.
pub struct Prepared {
    pub settings: Settings,
    pub paths: LogPaths,
    model: Option<Arc<LinearModel>>,
    metric: Option<(MetricFiles, Option<RecentIds>)>,
    plot: Option<PlotActor>,
}

/// Loads the model artifact, or fits the model in memory when there is none.
pub fn load_or_fit_model(path: &Path) -> Result<LinearModel, ModelError> {
    if path.exists() {
        let m = LinearModel::load(path)?;
        if m.training.data_sha256 != Dataset::embedded().sha256 {
            tracing::warn!(artifact = %path.display(), "model was fitted on other data than the embedded set");
        }
        tracing::info!(artifact = %path.display(), r2 = m.training.r2, "model loaded");
        Ok(m)
    } else {
        let m = LinearModel::fit(Dataset::embedded())?;
        tracing::info!(
            artifact = %path.display(),
            r2 = m.training.r2,
            "no model artifact; fitted in memory (`modelwatch train` writes one)"
        );
        Ok(m)
    }
}

/// Opens one log file for appending, logging a repaired torn line.
fn open_log(path: &Path, header: Option<&str>) -> anyhow::Result<AppendFile> {
    let (file, report) = AppendFile::open(path, header)?;
    if report.repaired_bytes > 0 {
        tracing::warn!(
            bytes = report.repaired_bytes,
            file = %path.display(),
            "cut a torn last line left by an earlier crash"
        );
    }
    Ok(file)
}

/// Opens the log files and the model of the roles to run; nothing runs yet.
pub fn prepare(settings: Settings) -> anyhow::Result<Prepared> {
    let paths = LogPaths::new(&settings.logs.dir);
    paths.create_dir()?;
    if settings.bridge.enabled {
        // A refused login or vhost is bad configuration: exit 2 now, not
        // retry for the whole run.
        crate::amqp::check_broker(&settings.bridge)?;
    }
    let model = if settings.runs(Role::Model) {
        Some(Arc::new(load_or_fit_model(&settings.model.artifact)?))
    } else {
        None
    };
    // The metric opens (and repairs) the log before the plot reads it.
    let metric = if settings.runs(Role::Metric) {
        let csv = open_log(&paths.metric_csv, Some(METRIC_HEADER))?;
        let labels = if settings.metric.labels_log {
            Some(open_log(&paths.labels, None)?)
        } else {
            None
        };
        // Inputs read from RabbitMQ may come twice: remember what is
        // written; and a half that waits for its partner is journaled so
        // that its delivery can be acknowledged.
        let (recent, journal) = if !settings.runs(Role::Features) || !settings.runs(Role::Model) {
            let mut recent = RecentIds::new(settings.metric.dedup_window);
            read_metric_log(&paths.metric_csv, |r| recent.insert(r.id))
                .with_context(|| format!("reading the ids of {}", paths.metric_csv.display()))?;
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
        )
        .with_context(|| format!("reading the existing {}", paths.metric_csv.display()))?;
        Some(actor)
    } else {
        None
    };
    Ok(Prepared {
        settings,
        paths,
        model,
        metric,
        plot,
    })
}

/// Figures of a finished run (each part only if this process ran that role).
#[derive(Debug, Clone)]
pub struct RunReport {
    pub source: Option<SourceReport>,
    pub metric: Option<MetricReport>,
    pub elapsed: Duration,
    /// With the bridge on: its counters and what was not delivered.
    pub bridge: Option<BridgeReport>,
}

impl RunReport {
    /// What this run did not deliver, if anything (then it must exit 1).
    pub fn shortfall(&self) -> Option<String> {
        let b = self.bridge?;
        if b.complete() {
            return None;
        }
        Some(format!(
            "not everything was delivered: {} messages not confirmed by the broker, {} dropped from the full buffer, {} inbound deliveries abandoned at the shutdown deadline",
            b.undelivered, b.stats.dropped, b.inbound_abandoned
        ))
    }

    /// Rows written per second (0 without the metric role).
    pub fn samples_per_sec(&self) -> f64 {
        let rows = self.metric.as_ref().map_or(0, |m| m.rows_written);
        rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the pipeline until `count` samples are done or a signal arrives.
/// Must be called inside an actix `System`.
///
/// Each role runs if `roles` names it. A link between two local roles is an
/// actor recipient; a link to a role elsewhere goes through RabbitMQ: the
/// bridge publishes what local actors emit, and inbound consumers feed local
/// actors from their work queues.
pub async fn run(p: Prepared) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let Prepared {
        settings,
        model,
        metric,
        plot,
        ..
    } = p;

    let mut bridge = if settings.bridge.enabled {
        Some(Bridge::start(settings.bridge.clone()).context("starting the AMQP runtime")?)
    } else {
        None
    };
    let bridge_addr = bridge.as_ref().map(|b| b.actor.clone());
    let b = bridge_addr.as_ref();

    let stop = CancellationToken::new();
    let link = RestartLink {
        stopping: stop.clone(),
        gave_up: CancellationToken::new(),
    };
    let gave_up = link.gave_up.clone();
    let plot = plot.map(|actor| Supervisor::start(move |_| actor));
    // The metric does the file I/O: give it its own thread.
    let mut metric_arbiter = None;
    let metric = metric.map(|(files, recent)| {
        let arbiter = Arbiter::new();
        let out = with_bridge(plot.as_ref().map(|p| p.clone().recipient()), b);
        let settings = settings.metric.clone();
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            MetricActor::new(files, out, settings, recent).with_link(link)
        });
        metric_arbiter = Some(arbiter);
        addr
    });
    let model = model.map(|m| {
        let out = with_bridge(metric.as_ref().map(|a| a.clone().recipient()), b);
        Supervisor::start(move |_| ModelActor::new(m, out))
    });

    let (done_tx, mut done_rx) = oneshot::channel();
    if settings.runs(Role::Features) {
        let sampler = Sampler::new(Dataset::embedded(), settings.source.seed);
        let source_settings = settings.source.clone();
        let features = with_bridge(model.as_ref().map(|a| a.clone().recipient()), b);
        let truths = with_bridge(metric.as_ref().map(|a| a.clone().recipient()), b);
        let stop_source = stop.clone();
        Supervisor::start(move |_| {
            FeatureSource::new(
                sampler,
                features,
                truths,
                source_settings,
                stop_source,
                done_tx,
            )
        });
    }

    if let Some(bridge) = bridge.as_mut() {
        let inbound = &settings.inbound;
        let remote = |role| !settings.runs(role);
        if let (Some(model), true) = (&model, remote(Role::Features)) {
            bridge.consume::<Features>(
                &inbound.model_queue,
                Kind::Features,
                model.clone().recipient(),
                inbound,
            );
        }
        if let Some(metric) = &metric {
            if remote(Role::Features) {
                bridge.consume::<Truth>(
                    &inbound.metric_truth_queue,
                    Kind::YTrue,
                    metric.clone().recipient(),
                    inbound,
                );
            }
            if remote(Role::Model) {
                bridge.consume::<Prediction>(
                    &inbound.metric_prediction_queue,
                    Kind::YPred,
                    metric.clone().recipient(),
                    inbound,
                );
            }
        }
        if let (Some(plot), true) = (&plot, remote(Role::Metric)) {
            bridge.consume::<MetricRecord>(
                &inbound.plot_queue,
                Kind::Metrics,
                plot.clone().recipient(),
                inbound,
            );
        }
    }

    // Run until the count is done, a signal comes, or the metric gives up.
    let mut source_report = None;
    let mut source_running = settings.runs(Role::Features);
    tokio::select! {
        r = &mut done_rx, if source_running => {
            source_report = Some(r.context("the source ended without a report")?);
            source_running = false;
        }
        sig = shutdown_signal() => tracing::info!(signal = sig, "stopping: draining in-flight work"),
        _ = gave_up.cancelled() => tracing::error!("stopping: the metric cannot write its logs"),
    }
    if source_report.is_none() || gave_up.is_cancelled() {
        // Stopped early: the source and a failing metric stop retrying.
        stop.cancel();
    }
    let probe = bridge.as_ref().map(Bridge::probe);
    let second_signal = |sig: &str| {
        let left = probe.as_ref().map_or(0, |p| p.undelivered_now());
        tracing::error!(
            signal = sig,
            undelivered = left,
            "second signal: exiting without finishing the drain"
        );
        anyhow::anyhow!(
            "second signal ({sig}) during the shutdown: stopped without finishing it; {left} messages not delivered to the broker"
        )
    };
    if source_running {
        if let Some(b) = &bridge {
            // A full outbox must not hold the drain up: count instead of wait.
            b.stop_blocking();
        }
        tokio::select! {
            r = done_rx => source_report = Some(r.context("the source ended without a report")?),
            sig = shutdown_signal() => return Err(second_signal(sig)),
        }
    }
    // Drain in order; a signal during the drain gives up on it.
    let drain = async move {
        let mut bridge = bridge;
        if let Some(b) = bridge.as_mut() {
            // No new inbound work; what is in flight finishes and is acked.
            b.stop_consumers().await;
        }

        let metric_report = match metric {
            Some(metric) => Some(
                metric
                    .send(FlushAndReport)
                    .await
                    .context("metric actor gone at shutdown")?
                    .map_err(|e| anyhow::anyhow!("final flush of the logs failed: {e}")),
            ),
            None => None,
        };
        if let Some(plot) = plot {
            let plotted = plot
                .send(FinalRender)
                .await
                .context("plot actor gone at shutdown")?;
            if let Err(e) = &plotted {
                tracing::error!(error = %e, "final plot render failed");
            }
        }
        if let Some(arbiter) = metric_arbiter {
            arbiter.stop();
        }
        // Even when the logs failed: wait for the broker and count.
        let bridge_report = match bridge {
            Some(b) => Some(b.shutdown().await),
            None => None,
        };
        Ok(RunReport {
            source: source_report,
            metric: metric_report.transpose()?,
            // With the bridge on, the run ends when the broker has confirmed.
            elapsed: started.elapsed(),
            bridge: bridge_report,
        })
    };
    tokio::select! {
        report = drain => report,
        sig = shutdown_signal() => Err(second_signal(sig)),
    }
}

/// The local recipient of a message kind (if that role runs here), plus the
/// bridge when it is on.
fn with_bridge<M>(local: Option<Recipient<M>>, bridge: Option<&Addr<BridgeActor>>) -> Fanout<M>
where
    M: actix::Message<Result = ()> + Send + Clone + 'static,
    BridgeActor: Handler<M>,
{
    let mut out = Fanout::of(local);
    if let Some(b) = bridge {
        out.add(b.clone().recipient());
    }
    out
}

/// Resolves on SIGINT or SIGTERM, with the signal's name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
