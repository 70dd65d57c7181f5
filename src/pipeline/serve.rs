//! Start-up, step 4: serve. `/metrics`, `/health`, `/ready` and the
//! dashboard on the listener the check step bound, reading only shared
//! state (the registry, the actors' liveness, the monitor's board).

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix::prelude::*;
use anyhow::Context as _;

use super::start::{Actors, Routes};
use crate::config::Settings;
use crate::core::metrics::{Metrics, Telemetry};
use crate::http::dashboard::Dashboard;
use crate::source::FeatureSource;

/// Serves `/metrics`, `/health`, `/ready` and the dashboard on the
/// listener bound at start, and writes its address to `addr_file`
/// (`logs/http.addr`) just before: the file is there only once the start
/// got this far.
pub(super) fn http(
    listener: TcpListener,
    addr_file: &Path,
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
    let bound = listener.local_addr()?;
    // The actors run already: a file that cannot be written (a full disk,
    // something put in its place since the check step) is said, and the
    // run goes on; the address is in the log line below too.
    if let Err(e) = crate::core::output_file::replace(addr_file, format!("{bound}\n").as_bytes()) {
        tracing::warn!(file = %addr_file.display(), addr = %bound, error = %e, "http server: cannot write its address to the file; serving anyway");
    }
    let server = crate::http::server::serve(
        listener,
        telemetry.clone(),
        Arc::new(status),
        limits,
        dashboard,
    )
    .context("starting the http server");
    match &server {
        Ok(_) => tracing::info!(addr = %bound, "http server: /metrics /health /ready"),
        // Not an address anybody answers at.
        Err(_) => {
            let _ = std::fs::remove_file(addr_file);
        }
    }
    server
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
