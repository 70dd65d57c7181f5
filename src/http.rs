//! The HTTP server inside the process: `/metrics`, `/health`, `/ready`.
//!
//! actix-web runs on actix's runtime beside the actors, with one worker
//! thread of its own, so a scrape never runs on the arbiter that routes
//! samples. What it serves is read from shared state only: the telemetry
//! registry ([`crate::metrics`]), the liveness of the local actors and the
//! readiness flags, so a request can never block or slow the pipeline.
//!
//! - `GET /metrics`: the registry in the OpenMetrics text format, or in
//!   the Prometheus text format 0.0.4 for a client that asks for
//!   `text/plain` only ([`crate::exposition`]; what promtool reads).
//! - `GET /health`: liveness; 200 while every local actor is alive, 503
//!   with a JSON reason naming the dead one otherwise.
//! - `GET /ready`: readiness; 200 once the model is loaded and the logs are
//!   open and, with the bridge on, the broker connection is up with the
//!   topology declared; 503 with the reason while it is not (for example
//!   while the broker is away; back to 200 when it returns).
//! - The dashboard (`/`, `/events`, `/assets/...`) and the predict form
//!   (`/predict`, `/api/predict`): see [`crate::dashboard`].
//!
//! Unknown paths get 404, other methods 405. Connections are bounded by
//! `http.max_connections`; request heads by actix-http's limits (431 past
//! them), and a client that sends nothing times out.
//!
//! The listener is bound at start-up ([`bind`]), before any actor starts,
//! so an address in use is a configuration error (exit 2) that names it.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus_client::metrics::gauge::Gauge;

use crate::dashboard::Dashboard;
use crate::exposition;
use crate::metrics::{Telemetry, OPENMETRICS_CONTENT_TYPE};

/// Binding the configured address failed.
#[derive(Debug, thiserror::Error)]
#[error("http.listen {addr}: {source}")]
pub struct BindError {
    pub addr: String,
    pub source: std::io::Error,
}

/// Binds `addr` (port 0 picks a free port; see [`TcpListener::local_addr`]).
pub fn bind(addr: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).map_err(|source| BindError {
        addr: addr.to_owned(),
        source,
    })
}

/// Is something alive? (An actor's `Addr::connected`, typically.)
pub type Probe = Box<dyn Fn() -> bool + Send + Sync>;

/// What `/health` and `/ready` look at.
#[derive(Default)]
pub struct Status {
    /// Local actors, by name.
    actors: Vec<(&'static str, Probe)>,
    /// The model is loaded and the log files are open.
    pub started: AtomicBool,
    /// `Some` with the bridge on: 1 while connected with the topology
    /// declared (`modelwatch_bridge_connected`).
    pub broker: Option<Gauge>,
    /// `Some` with the metric role: its failed writes in a row
    /// (`modelwatch_metric_write_failures`).
    pub writes: Option<Gauge>,
}

impl Status {
    pub fn new(broker: Option<Gauge>) -> Status {
        Status {
            broker,
            ..Status::default()
        }
    }

    /// Adds an actor to the liveness check.
    pub fn watch(&mut self, name: &'static str, alive: Probe) {
        self.actors.push((name, alive));
    }

    /// `None` when every actor lives, else the first dead one.
    pub fn dead_actor(&self) -> Option<&'static str> {
        self.actors
            .iter()
            .find(|(_, alive)| !alive())
            .map(|(n, _)| *n)
    }

    /// `None` when ready, else why not.
    pub fn not_ready(&self) -> Option<String> {
        if let Some(actor) = self.dead_actor() {
            return Some(format!("actor {actor} is not running"));
        }
        if !self.started.load(Ordering::Acquire) {
            return Some("starting: model and logs not ready yet".into());
        }
        if let Some(failures) = self.writes.as_ref().map(Gauge::get).filter(|&n| n > 0) {
            return Some(format!(
                "the metric cannot write its logs ({failures} failed writes in a row)"
            ));
        }
        match &self.broker {
            Some(up) if up.get() != 1 => {
                Some("the broker is not connected (or its topology not declared)".into())
            }
            _ => None,
        }
    }
}

/// Server limits from config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub request_timeout: Duration,
}

struct State {
    telemetry: Arc<Telemetry>,
    status: Arc<Status>,
}

/// A running server: stop it with [`Server::stop`].
pub struct Server {
    handle: actix_web::dev::ServerHandle,
    /// Ends the dashboard's event streams.
    streams: tokio_util::sync::CancellationToken,
}

impl Server {
    /// Ends the open event streams, then stops the server gracefully
    /// (requests in flight finish; bounded by a 1 s shutdown timeout).
    pub async fn stop(self) {
        self.streams.cancel();
        self.handle.stop(true).await;
    }
}

/// Starts serving on `listener` (inside an actix System); stop it with the
/// returned [`Server`].
pub fn serve(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    status: Arc<Status>,
    limits: Limits,
    dashboard: Dashboard,
) -> std::io::Result<Server> {
    let state = web::Data::new(State { telemetry, status });
    let streams = dashboard.stop.clone();
    let server = HttpServer::new(move || {
        let dashboard = dashboard.clone();
        App::new()
            .app_data(state.clone())
            .configure(move |cfg| crate::dashboard::routes::configure(cfg, dashboard))
            .service(
                web::resource("/metrics")
                    .route(web::get().to(metrics))
                    .route(web::head().to(metrics)),
            )
            .service(
                web::resource("/health")
                    .route(web::get().to(health))
                    .route(web::head().to(health)),
            )
            .service(
                web::resource("/ready")
                    .route(web::get().to(ready))
                    .route(web::head().to(ready)),
            )
    })
    .workers(1)
    // One request per connection: a client cannot hold a slot by keeping
    // its connection alive (scrapes are seconds apart anyway).
    .keep_alive(actix_web::http::KeepAlive::Disabled)
    .max_connections(limits.max_connections)
    .client_request_timeout(limits.request_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "http server failed");
        }
    });
    Ok(Server { handle, streams })
}

async fn metrics(req: actix_web::HttpRequest, state: web::Data<State>) -> HttpResponse {
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let registry = state.telemetry.encode();
    let (content_type, body) = if exposition::wants_text(accept) {
        (
            exposition::TEXT_CONTENT_TYPE,
            exposition::from_openmetrics(&registry),
        )
    } else {
        (OPENMETRICS_CONTENT_TYPE, registry)
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "no-store"))
        .insert_header(("vary", "accept"))
        .body(body)
}

async fn health(state: web::Data<State>) -> HttpResponse {
    match state.status.dead_actor() {
        None => HttpResponse::Ok().json(serde_json::json!({"status": "alive"})),
        Some(actor) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "dead",
            "reason": format!("actor {actor} is not running"),
        })),
    }
}

async fn ready(state: web::Data<State>) -> HttpResponse {
    match state.status.not_ready() {
        None => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Some(reason) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not ready", "reason": reason})),
    }
}
