//! Wires the actors together, runs them, and shuts them down in order.
//!
//! [`prepare`] does everything that can fail because of bad input (logs
//! folder, log files, model artifact, existing log) before any actor starts,
//! so such a failure exits with code 2 and touches nothing. [`run`] starts
//! the actors under supervisors, waits for the end of `count` or a signal,
//! and then drains: stop the source, wait for every in-flight sample to be
//! handled, flush and sync the files, render the last plot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::actors::metric::{FlushAndReport, MetricFiles, MetricReport};
use crate::actors::plot::FinalRender;
use crate::actors::source::SourceReport;
use crate::actors::{Fanout, FeatureSource, MetricActor, ModelActor, PlotActor};
use crate::append_file::AppendFile;
use crate::bridge::{Bridge, BridgeActor, BridgeReport};
use crate::config::Settings;
use crate::data::Dataset;
use crate::log_format::METRIC_HEADER;
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
}

impl LogPaths {
    pub fn new(dir: &Path) -> LogPaths {
        LogPaths {
            dir: dir.to_owned(),
            metric_csv: dir.join("metric_log.csv"),
            labels: dir.join("labels_log.txt"),
            pipeline_log: dir.join("pipeline.log"),
            plot_png: dir.join("error_distribution.png"),
        }
    }

    /// Creates the folder; an error names it.
    pub fn create_dir(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("logs.dir {}: cannot create", self.dir.display()))
    }
}

/// What start-up opened and checked.
pub struct Prepared {
    pub settings: Settings,
    pub paths: LogPaths,
    model: Arc<LinearModel>,
    files: MetricFiles,
    plot: PlotActor,
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

/// Opens the log files and the model; nothing runs yet.
pub fn prepare(settings: Settings) -> anyhow::Result<Prepared> {
    let paths = LogPaths::new(&settings.logs.dir);
    paths.create_dir()?;
    let model = load_or_fit_model(&settings.model.artifact)?;
    let plot = PlotActor::load(
        &paths.metric_csv,
        paths.plot_png.clone(),
        PlotSpec {
            width: settings.plot.width,
            height: settings.plot.height,
            bins: settings.plot.bins,
        },
        settings.plot.interval,
    )
    .with_context(|| format!("reading the existing {}", paths.metric_csv.display()))?;
    let (csv, report) = AppendFile::open(&paths.metric_csv, Some(METRIC_HEADER))?;
    if report.repaired_bytes > 0 {
        tracing::warn!(
            bytes = report.repaired_bytes,
            file = %paths.metric_csv.display(),
            "cut a torn last line left by an earlier crash"
        );
    }
    let labels = if settings.metric.labels_log {
        let (labels, report) = AppendFile::open(&paths.labels, None)?;
        if report.repaired_bytes > 0 {
            tracing::warn!(bytes = report.repaired_bytes, file = %paths.labels.display(), "cut a torn last line");
        }
        Some(labels)
    } else {
        None
    };
    Ok(Prepared {
        settings,
        paths,
        model: Arc::new(model),
        files: MetricFiles { csv, labels },
        plot,
    })
}

/// Figures of a finished run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub source: SourceReport,
    pub metric: MetricReport,
    pub elapsed: Duration,
    /// With the bridge on: its counters and what was not delivered.
    pub bridge: Option<BridgeReport>,
}

impl RunReport {
    pub fn samples_per_sec(&self) -> f64 {
        self.metric.rows_written as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the pipeline until `count` samples are done or a signal arrives.
/// Must be called inside an actix `System`.
pub async fn run(p: Prepared) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let Prepared {
        settings,
        model,
        files,
        plot,
        ..
    } = p;

    let bridge = if settings.bridge.enabled {
        Some(Bridge::start(settings.bridge.clone()).context("starting the AMQP runtime")?)
    } else {
        None
    };
    let bridge_addr = bridge.as_ref().map(|b| b.actor.clone());
    let b = bridge_addr.as_ref();

    let plot = Supervisor::start(move |_| plot);
    // The metric does the file I/O: give it its own thread.
    let metric_arbiter = Arbiter::new();
    let metric_settings = settings.metric.clone();
    let metric_out = with_bridge(plot.clone().recipient(), b);
    let metric = Supervisor::start_in_arbiter(&metric_arbiter.handle(), move |_| {
        MetricActor::new(files, metric_out, metric_settings)
    });
    let model_out = with_bridge(metric.clone().recipient(), b);
    let model = Supervisor::start(move |_| ModelActor::new(model, model_out));

    let stop = CancellationToken::new();
    let (done_tx, done_rx) = oneshot::channel();
    let sampler = Sampler::new(Dataset::embedded(), settings.source.seed);
    let source_settings = settings.source.clone();
    let (features, truths) = (
        with_bridge(model.clone().recipient(), b),
        with_bridge(metric.clone().recipient(), b),
    );
    let stop_source = stop.clone();
    let _source = Supervisor::start(move |_| {
        FeatureSource::new(
            sampler,
            features,
            truths,
            source_settings,
            stop_source,
            done_tx,
        )
    });

    let mut done_rx = done_rx;
    let source_report = tokio::select! {
        r = &mut done_rx => r.context("the source ended without a report")?,
        sig = shutdown_signal() => {
            tracing::info!(signal = sig, "stopping: draining in-flight samples");
            stop.cancel();
            if let Some(b) = &bridge {
                // A full outbox must not hold the drain up: count instead of wait.
                b.stop_blocking();
            }
            tokio::select! {
                r = done_rx => r.context("the source ended without a report")?,
                sig = shutdown_signal() => {
                    tracing::error!(signal = sig, "second signal: exiting without draining");
                    std::process::exit(crate::exit::FAILURE);
                }
            }
        }
    };
    let mut report = finish(source_report, metric, plot, metric_arbiter, started).await?;
    if let Some(b) = bridge {
        report.bridge = Some(b.shutdown().await);
        // The run ends when the broker has confirmed (or the deadline passed).
        report.elapsed = started.elapsed();
    }
    Ok(report)
}

async fn finish(
    source: SourceReport,
    metric: Addr<MetricActor>,
    plot: Addr<PlotActor>,
    metric_arbiter: Arbiter,
    started: Instant,
) -> anyhow::Result<RunReport> {
    let metric_report = metric
        .send(FlushAndReport)
        .await
        .context("metric actor gone at shutdown")?
        .map_err(|e| anyhow::anyhow!("final flush of the logs failed: {e}"))?;
    let plotted = plot
        .send(FinalRender)
        .await
        .context("plot actor gone at shutdown")?;
    if let Err(e) = &plotted {
        tracing::error!(error = %e, "final plot render failed");
    }
    metric_arbiter.stop();
    let report = RunReport {
        source,
        metric: metric_report,
        elapsed: started.elapsed(),
        bridge: None,
    };
    Ok(report)
}

/// The local recipient of a message kind, plus the bridge when it is on.
fn with_bridge<M>(local: Recipient<M>, bridge: Option<&Addr<BridgeActor>>) -> Fanout<M>
where
    M: actix::Message<Result = ()> + Send + Clone + 'static,
    BridgeActor: Handler<M>,
{
    let mut out = Fanout::of([local]);
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
