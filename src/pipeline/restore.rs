//! Start-up, step 2: restore state. What earlier runs left, read back
//! before any actor starts, each read bounded: the broker's topology
//! (declared again, within `BROKER_OP_TIMEOUT`; a refusal for good is bad
//! configuration, exit 2), the metric's logs (a torn last line repaired)
//! and, in the split layout, the ids it wrote and its journal of waiting
//! halves; the histogram from the existing `metric_log.csv`; the
//! monitor's files, and what the history stream holds of its earlier
//! windows (within [`START_DEADLINE`]). The actors are built from what
//! this step read and do no broker I/O of their own when they are made.

use std::time::Instant;

use anyhow::Context as _;

use super::check::Checked;
use crate::config::{Role, Settings};
use crate::core::log_paths::LogPaths;
use crate::core::messages::SampleId;
use crate::core::metrics::Telemetry;
use crate::history::backfill::{monitor_history, START_DEADLINE};
use crate::history::StreamSource;
use crate::metric::actor::MetricFiles;
use crate::metric::join::Half;
use crate::metric::join::RecentIds;
use crate::metric::journal::Journal;
use crate::metric::log_format::{read_metric_log, METRIC_HEADER};
use crate::monitor::actor::{Backfilled, MonitorActor, Reference};
use crate::monitor::report::Board;
use crate::monitor::telemetry::MonitorMetrics;
use crate::plot::render::PlotSpec;
use crate::plot::PlotActor;

/// What start-up checked, opened and read back, for the roles this process
/// runs: [`super::run`] starts the actors from it.
pub struct Prepared {
    pub settings: Settings,
    pub paths: crate::core::log_paths::LogPaths,
    /// The registry every component updates; read it after the run.
    pub telemetry: std::sync::Arc<crate::core::metrics::Telemetry>,
    pub(super) model: Option<std::sync::Arc<crate::model::Model>>,
    /// The rows the source streams.
    pub(super) rows: crate::source::sampler::Rows,
    /// Where the model came from: the artifact's path, or "fitted in memory".
    pub(super) model_origin: String,
    pub(super) metric: Option<(MetricFiles, Option<RecentIds>)>,
    pub(super) plot: Option<PlotActor>,
    /// With the metric role and `monitor.enabled`.
    pub(super) monitor: Option<MonitorActor>,
    /// What the monitor said lately, for the dashboard (empty without one).
    pub(super) board: Board,
    /// Held while the process runs: the logs dir's lock (metric role).
    pub(super) _logs_lock: Option<std::fs::File>,
    /// The HTTP server's listener, bound.
    pub(super) http: Option<std::net::TcpListener>,
    /// The schema of the user's own data on the wire (`None`: diabetes).
    pub(super) schema: Option<std::sync::Arc<crate::core::schema::WireSchema>>,
}

/// Restores the state of the roles to run (see the module's doc).
pub fn state(c: Checked) -> anyhow::Result<Prepared> {
    let Checked {
        settings,
        paths,
        telemetry,
        monitor_metrics,
        model,
        rows,
        model_origin,
        reference,
        logs_lock,
        http,
        schema,
    } = c;
    if settings.bridge.enabled {
        // A refused login or vhost, or a declaration the broker refuses for
        // good (a queue that exists with another bound, a reserved name), is
        // bad configuration: exit 2 now, not retry for the whole run.
        let classifier = model.as_ref().is_some_and(|m| m.classes().is_some());
        crate::amqp::check_topology(&settings, classifier)?;
    }
    // The metric opens (and repairs) the log before the plot reads it.
    let metric = if settings.runs(Role::Metric) {
        Some(metric_files(&settings, &paths)?)
    } else {
        None
    };
    let plot = if settings.runs(Role::Plot) {
        Some(plot_actor(&settings, &paths, &telemetry)?)
    } else {
        None
    };
    let board = Board::default();
    let monitor = match &reference {
        Some(reference) if settings.runs(Role::Metric) => Some(monitor_actor(
            &settings,
            &paths,
            reference,
            board.clone(),
            monitor_metrics,
        )?),
        _ => None,
    };
    let plot = plot.map(|p| p.with_baseline(reference.map(|r| r.baseline)));
    Ok(Prepared {
        settings,
        paths,
        telemetry,
        model,
        rows,
        model_origin,
        metric,
        plot,
        monitor,
        board,
        _logs_lock: logs_lock,
        http,
        schema,
    })
}

/// The metric's logs, opened (a torn last line repaired), and in the split
/// layout the ids it wrote lately and its journal.
fn metric_files(
    settings: &Settings,
    paths: &LogPaths,
) -> anyhow::Result<(MetricFiles, Option<RecentIds>)> {
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
        let (recent, journal) = recent_and_journal(settings, paths)?;
        (Some(recent), Some(journal))
    } else {
        (None, None)
    };
    Ok((
        MetricFiles {
            csv,
            labels,
            journal,
        },
        recent,
    ))
}

/// The metric's journal, opened, with the waiting halves it holds.
type OpenedJournal = (Journal, Vec<(SampleId, Half)>);

/// The ids the metric wrote lately (from the newest rotated file and the
/// current one), and its journal with the waiting halves it holds.
fn recent_and_journal(
    settings: &Settings,
    paths: &LogPaths,
) -> anyhow::Result<(RecentIds, OpenedJournal)> {
    // The newest old file first: a rotation just before a restart
    // must not empty the window.
    let mut recent = RecentIds::new(settings.metric.dedup_window);
    let old = paths.rotation.old_files(&paths.metric_csv);
    for csv in old.last().into_iter().chain([&paths.metric_csv]) {
        read_metric_log(csv, |r| recent.insert(r.id))
            .with_context(|| format!("reading the ids of {}", csv.display()))?;
    }
    let journal = Journal::open(&paths.pending_journal)?;
    Ok((recent, journal))
}

/// The plot, with the histogram of the existing `metric_log.csv`.
fn plot_actor(
    settings: &Settings,
    paths: &LogPaths,
    telemetry: &Telemetry,
) -> anyhow::Result<PlotActor> {
    let spec = PlotSpec {
        width: settings.plot.width,
        height: settings.plot.height,
        bins: settings.plot.bins,
    };
    PlotActor::load(
        &paths.metric_csv,
        paths.plot_png.clone(),
        spec,
        settings.plot.interval,
        telemetry.metrics.clone(),
    )
    .with_context(|| format!("reading the existing {}", paths.metric_csv.display()))
}

/// The monitor: its files opened, what the history stream holds of it
/// read (bounded), and the actor built from both.
fn monitor_actor(
    settings: &Settings,
    paths: &LogPaths,
    reference: &Reference,
    board: Board,
    monitor_metrics: MonitorMetrics,
) -> anyhow::Result<MonitorActor> {
    let opened = crate::monitor::files::open(
        &settings.monitor,
        paths,
        &reference.model,
        &reference.baseline,
    )
    .context("starting the monitor")?;
    let history = monitor_backfill(settings);
    MonitorActor::open(
        settings,
        paths,
        reference.clone(),
        board,
        monitor_metrics,
        opened,
        history,
    )
    .context("starting the monitor")
}

/// With history on, the last windows and alert events of the monitor in
/// the stream, read within [`START_DEADLINE`]. A broker that is down or
/// slow costs at most that; then the monitor starts without them (a WARN
/// line says why).
fn monitor_backfill(settings: &Settings) -> Option<Backfilled> {
    if !(settings.bridge.enabled && settings.history.enabled) {
        return None;
    }
    let started = Instant::now();
    match monitor_history(StreamSource::of(settings), START_DEADLINE) {
        Ok(found) => Some(Backfilled {
            found,
            took: started.elapsed(),
        }),
        Err(e) => {
            tracing::warn!(
                error = %e,
                took_ms = started.elapsed().as_millis() as u64,
                "monitor: could not read the history stream; the board starts empty"
            );
            None
        }
    }
}
