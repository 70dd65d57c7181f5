//! Wires the actors together, runs them, and shuts them down in order.
//!
//! Start-up is four named steps, one file each:
//!
//! 1. [`check`]: the inputs. Everything that can fail because of bad input
//!    and needs no broker (the settings' meaning, the logs folder and its
//!    lock, the HTTP address, the model artifact, the baseline);
//! 2. [`restore`]: the state earlier runs left, each read bounded (the
//!    broker's topology, the metric's logs and journal, the histogram, the
//!    monitor's files and the history backfill);
//! 3. [`start`]: the actors, under supervisors, wired by one table of who
//!    receives what; none reads the broker as it is made;
//! 4. [`serve`]: the HTTP server.
//!
//! [`prepare`] is steps 1–2: a failure there exits 2 before any actor
//! runs. [`run`] is steps 3–4, then waits for the end of `count`, a
//! [`Shutdown::drain`] or a metric that gave up, and [`drain`]s: stop the
//! source, wait for every in-flight sample to be handled, flush and sync
//! the files, render the last plot, wait for the broker's confirms.
//! [`Shutdown::abort`] abandons the drain with an error. What was not done
//! (rows not written, messages not delivered, inbound work abandoned,
//! lines of `pipeline.log` dropped) makes the run fail:
//! [`RunReport::shortfall`] says what.

pub mod check;
pub mod drain;
pub mod restore;
pub mod serve;
pub mod start;

use std::time::Instant;

use crate::amqp::{Bridge, BridgeProbe};
use crate::config::{Role, Settings};
use crate::core::metrics::Metrics;
use crate::core::shutdown::Shutdown;
use crate::http::dashboard::Dashboard;
use crate::plot::view::PlotView;
pub use drain::RunReport;
pub use restore::Prepared;
use start::{Actors, LocalRoles};

/// Steps 1 and 2: checks the inputs and restores the state of the roles
/// to run; nothing runs yet.
pub fn prepare(settings: Settings) -> anyhow::Result<Prepared> {
    let checked = check::inputs(settings)?;
    restore::state(checked)
}

/// Runs the pipeline until `count` samples are done, `shutdown` asks for a
/// drain, or the metric gives up writing. Must be called inside an actix
/// `System`. The steps, in order:
///
/// 3. start the bridge (if on) and the local actors, wired by
///    `start::Routes`, and feed local roles whose producer runs elsewhere
///    from RabbitMQ ([`start`]);
/// 4. serve HTTP ([`serve`]);
/// 5. wait for the end of the source's count, a drain, or a metric that
///    gave up; drain in order: inbound consumers, the metric's files, the
///    last plot, the broker's confirms ([`drain`]).
///
/// [`Shutdown::abort`] during step 5 gives up with an error that says
/// how many messages were left undelivered.
pub async fn run(p: Prepared, shutdown: Shutdown) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let Prepared {
        settings,
        telemetry,
        model,
        rows,
        model_origin,
        metric,
        plot,
        monitor,
        board,
        http,
        schema,
        paths,
        ..
    } = p;
    // The monitor's board: empty in a process without the monitor (the
    // dashboard says "no windows yet").
    let mut dashboard = Dashboard::new(
        telemetry.metrics.clone(),
        board,
        settings.http.max_event_streams,
    );
    // The predict form and `POST /api/predict`: the diabetes model's, or
    // by column name for a model of the user's own data.
    match model.as_deref() {
        Some(crate::model::Model::Linear(m)) => {
            dashboard = dashboard.with_model(std::sync::Arc::new(m.clone()), &model_origin);
        }
        // The form of your own model is served by the process that runs it.
        Some(crate::model::Model::Tabular(m)) if settings.runs(crate::config::Role::Model) => {
            dashboard = dashboard.with_own_model(
                std::sync::Arc::new(m.clone()),
                &model_origin,
                settings.data.columns.clone(),
            );
        }
        _ => {}
    }
    // With the plot role, the dashboard's histogram is what the plot drew.
    let plot = plot.map(|p| {
        let view = PlotView::default();
        dashboard.histogram = Some(view.clone());
        p.with_view(view)
    });
    // 3. Start the actors: the bridge, the local roles, the consumers.
    let mut bridge = start::bridge(&settings, &telemetry.metrics, schema)?;
    let local = LocalRoles {
        model,
        rows,
        metric,
        plot,
        monitor,
    };
    let mut actors = Actors::start(&settings, &telemetry.metrics, &bridge, local);
    if let Some(b) = bridge.as_mut() {
        start::consume_remote_inputs(b, &actors.routes, &settings);
    }
    // 4. Serve.
    let server = match http {
        Some(listener) => Some(serve::http(
            listener,
            &paths.http_addr,
            &actors,
            &telemetry,
            &settings,
            dashboard,
        )?),
        None => None,
    };

    let probe = bridge.as_ref().map(Bridge::probe);
    // Rows the metric made (each observed once in the error histogram)
    // and rows that reached the file: the difference is what an abort loses.
    let metrics = telemetry.metrics.clone();
    let has_metric = settings.runs(Role::Metric);
    let aborted = |why: String| abort_error(why, probe.as_ref(), &metrics, has_metric);
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
        unpredicted: metrics.model_unpredicted.get(),
        ..r
    })
}

/// A second signal during the drain: the process is leaving (the exit
/// code is set), an ERROR line says what is lost, and the error names it:
/// the messages not delivered to the broker, and the rows not written to
/// `metric_log.csv` (with the metric role), the rows made and observed
/// less those that reached the file.
fn abort_error(
    why: String,
    probe: Option<&BridgeProbe>,
    metrics: &Metrics,
    has_metric: bool,
) -> anyhow::Error {
    crate::core::exit::leave();
    let left = probe.map_or(0, |p| p.undelivered_now());
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
}
