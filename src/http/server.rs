//! The HTTP server inside the process: `/metrics`, `/health`, `/ready`.
//!
//! actix-web runs on actix's runtime beside the actors, with one worker
//! thread of its own, so a scrape never runs on the arbiter that routes
//! samples. What it serves is read from shared state only: the telemetry
//! registry ([`crate::core::metrics`]), the liveness of the local actors and the
//! readiness flags, so a request can never block or slow the pipeline.
//!
//! - `GET /metrics`: the registry in the OpenMetrics text format, or in
//!   the Prometheus text format 0.0.4 for a client that asks for
//!   `text/plain` only ([`crate::http::exposition`]; what promtool reads).
//! - `GET /health`: liveness; 200 while every local actor is alive, 503
//!   with a JSON reason naming the dead one otherwise.
//! - `GET /ready`: readiness; 200 once the model is loaded and the logs are
//!   open and, with the bridge on, the broker connection is up with the
//!   topology declared; 503 with the reason while it is not (for example
//!   while the broker is away; back to 200 when it returns).
//! - The dashboard (`/`, `/events`, `/assets/...`) and the predict form
//!   (`/predict`, `/api/predict`): see [`crate::http::dashboard`].
//!
//! Unknown paths get 404, other methods 405 with `Allow`. Connections are
//! bounded by `http.max_connections`; request heads by actix-http's limits
//! (431 past them), and a client that sends nothing times out. One request
//! per connection: a request pipelined behind the first is never answered
//! and the connection closes after the first response; a client that takes
//! nothing of a response for `http.write_timeout` is dropped ([`Guarded`]).
//! So no client can hold a connection or make responses queue up.
//!
//! The listener is bound at start-up ([`bind_listen`]), before any actor
//! starts: an address the user gave that is in use is a configuration
//! error (exit 2) that names it; `auto` falls back to a free port.

use std::cell::Cell;
use std::future::Future as _;
use std::net::TcpListener;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::{web, App, HttpResponse};
use prometheus_client::metrics::gauge::Gauge;

use super::{not_allowed, GET_HEAD};
use crate::config::http::{Listen, DEFAULT_ADDR};
use crate::core::metrics::{Telemetry, OPENMETRICS_CONTENT_TYPE};
use crate::http::dashboard::routes::MAX_BODY_BYTES;
use crate::http::dashboard::Dashboard;
use crate::http::exposition;

/// Binding the configured address failed.
#[derive(Debug, thiserror::Error)]
#[error("http.listen {addr}: {error}{hint}", hint = in_use_hint(error))]
pub struct BindError {
    pub addr: String,
    /// Not a `#[source]`: the message says it once, and a chain printed
    /// with `{:#}` must not say it again.
    pub error: std::io::Error,
}

fn in_use_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another process listens there: give this one another address, port 0 \
             for a free one, or \"auto\")"
        }
        _ => "",
    }
}

/// Binds `addr` (port 0 picks a free port; see [`TcpListener::local_addr`]).
pub fn bind(addr: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).map_err(|error| BindError {
        addr: addr.to_owned(),
        error,
    })
}

/// Binds what `http.listen` says: `None` when it is `off`. `auto` takes
/// [`DEFAULT_ADDR`] or, when another process holds it, a free port on
/// 127.0.0.1 (then the flag is true: the caller says so in one WARN line);
/// an address the user gave is bound as it is (in use: an error, exit 2).
pub fn bind_listen(listen: Listen) -> Result<Option<(TcpListener, bool)>, BindError> {
    match listen {
        Listen::Off => Ok(None),
        Listen::At(addr) => bind(&addr.to_string()).map(|l| Some((l, false))),
        Listen::Auto => match bind(DEFAULT_ADDR) {
            Ok(l) => Ok(Some((l, false))),
            Err(e) if e.error.kind() == std::io::ErrorKind::AddrInUse => {
                bind("127.0.0.1:0").map(|l| Some((l, true)))
            }
            Err(e) => Err(e),
        },
    }
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
    /// A write the client does not take within this time drops the
    /// connection.
    pub write_timeout: Duration,
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
///
/// actix-web's `HttpServer` serves every request pipelined on a connection
/// (its keep-alive switch only adds `connection: close`) and has no write
/// deadline, so a client that pipelines and never reads held its connection
/// and the responses queued for it. Hence the server is put together here
/// from actix-http's HTTP/1 service over a [`Guarded`] stream: one request
/// per connection, and a write the client does not take within
/// `write_timeout` drops the connection.
pub fn serve(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    status: Arc<Status>,
    limits: Limits,
    dashboard: Dashboard,
) -> std::io::Result<Server> {
    use actix_service::{fn_service, map_config, IntoServiceFactory as _, ServiceFactoryExt as _};
    use actix_web::dev::Service as _;

    let state = web::Data::new(State { telemetry, status });
    let streams = dashboard.stop.clone();
    let server = actix_server::Server::build()
        .workers(1)
        .max_concurrent_connections(limits.max_connections)
        .disable_signals()
        .shutdown_timeout(1)
        .listen("http", listener, move || {
            let dashboard = dashboard.clone();
            let app = App::new()
                .wrap_fn(|req, srv| {
                    // A request pipelined behind the first is not served:
                    // its future never ends, and the connection closes once
                    // the first response is out ([`Guarded`]).
                    let admitted = req.conn_data::<ConnRef>().is_none_or(|c| c.0.admit());
                    let call = admitted.then(|| srv.call(req));
                    async move {
                        match call {
                            Some(call) => call.await,
                            None => std::future::pending().await,
                        }
                    }
                })
                .app_data(state.clone())
                .configure(move |cfg| crate::http::dashboard::routes::configure(cfg, dashboard))
                .configure(probe_routes);
            let app = map_config(
                app.into_factory()
                    .map_err(|e: actix_web::Error| e.error_response()),
                |_| actix_web::dev::AppConfig::default(),
            );
            let http = actix_http::HttpService::build()
                // One request per connection: a client cannot hold a slot
                // by keeping its connection alive (scrapes are seconds
                // apart anyway).
                .keep_alive(actix_http::KeepAlive::Disabled)
                .client_request_timeout(limits.request_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .on_connect_ext(|io: &Guarded, ext: &mut actix_http::Extensions| {
                    ext.insert(ConnRef(io.conn.clone()));
                })
                .expect(fn_service(expect))
                .h1(app);
            let write_timeout = limits.write_timeout;
            fn_service(move |io: actix_rt::net::TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok::<_, actix_http::error::DispatchError>((
                    Guarded::new(io, write_timeout),
                    peer,
                )))
            })
            .and_then(http)
        })?
        .run();
    let handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "http server failed");
        }
    });
    Ok(Server { handle, streams })
}

/// `/metrics`, `/health` and `/ready`: GET and HEAD, anything else 405.
fn probe_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .route(web::head().to(metrics))
            .default_service(not_allowed(GET_HEAD)),
    )
    .service(
        web::resource("/health")
            .route(web::get().to(health))
            .route(web::head().to(health))
            .default_service(not_allowed(GET_HEAD)),
    )
    .service(
        web::resource("/ready")
            .route(web::get().to(ready))
            .route(web::head().to(ready))
            .default_service(not_allowed(GET_HEAD)),
    );
}

/// `Expect: 100-continue`: refuses a body over the limit every route has
/// ([`MAX_BODY_BYTES`]) with 413 before the client sends it, and a request
/// pipelined behind the first one (never answered) before `100 Continue`.
async fn expect(
    req: actix_http::Request,
) -> Result<actix_http::Request, actix_http::Response<BoxBody>> {
    if req
        .conn_data::<ConnRef>()
        .is_some_and(|c| c.0.requests.get() > 0)
    {
        if let Some(c) = req.conn_data::<ConnRef>() {
            c.0.over.set(true);
        }
        return std::future::pending().await;
    }
    let declared = actix_http::HttpMessage::headers(&req)
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > MAX_BODY_BYTES as u64 => {
            let mut res = actix_http::Response::with_body(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                BoxBody::new(format!(
                    "a request body takes at most {MAX_BODY_BYTES} bytes\n"
                )),
            );
            res.headers_mut().insert(
                actix_web::http::header::CONNECTION,
                actix_web::http::header::HeaderValue::from_static("close"),
            );
            Err(res)
        }
        _ => Ok(req),
    }
}

/// What one connection has seen, shared by its [`Guarded`] stream and the
/// services that read its requests.
#[derive(Default)]
struct Conn {
    /// Requests admitted (the first) or refused (any pipelined behind it).
    requests: Cell<u32>,
    /// A second request came: end the connection once the first response
    /// is written, and read nothing more.
    over: Cell<bool>,
}

impl Conn {
    /// Whether this request, the next on the connection, is served: only
    /// the first one is.
    fn admit(&self) -> bool {
        let n = self.requests.get().saturating_add(1);
        self.requests.set(n);
        if n > 1 {
            self.over.set(true);
        }
        n == 1
    }
}

/// A connection's [`Conn`], in its requests' connection data.
#[derive(Clone)]
struct ConnRef(Rc<Conn>);

/// How long a closed connection with unread bytes is drained before it is
/// dropped, so that the kernel does not answer them with a reset that may
/// destroy the response the client has not read yet (RFC 9112 9.6).
const LINGER: Duration = Duration::from_secs(1);

/// Connections draining at once, at most (each holds a descriptor outside
/// `http.max_connections` for up to [`LINGER`]); past it, they close at once.
const MAX_LINGERING: usize = 64;

/// Connections draining now.
static LINGERING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A served TCP connection: a write that makes no progress for
/// `write_timeout` fails (the dispatcher then drops the connection), and
/// once a request pipelined behind the first was seen, nothing more is read
/// and the flush that follows the first response ends the connection.
struct Guarded {
    io: Option<actix_rt::net::TcpStream>,
    conn: Rc<Conn>,
    write_timeout: Duration,
    /// Armed while writes are blocked (the client does not read).
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Guarded {
    fn new(io: actix_rt::net::TcpStream, write_timeout: Duration) -> Guarded {
        Guarded {
            io: Some(io),
            conn: Rc::default(),
            write_timeout,
            stalled: None,
        }
    }

    fn io(&mut self) -> Pin<&mut actix_rt::net::TcpStream> {
        Pin::new(self.io.as_mut().expect("the stream is there until dropped"))
    }

    /// A write is blocked: pending until `write_timeout`, then an error.
    fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client took nothing within http.write_timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.conn.over.get() {
            // Nothing pipelined is served: read no more of it.
            return Poll::Pending;
        }
        self.io().poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.io().poll_write(cx, buf) {
            Poll::Pending => self.blocked(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // The dispatcher flushes once everything it had is written: with a
        // request pipelined behind the first, that is the first response.
        match self.io().poll_flush(cx) {
            Poll::Ready(Ok(())) if self.conn.over.get() => {
                let _ = self.io().poll_shutdown(cx);
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "one request per connection: a pipelined request is not served",
                )))
            }
            Poll::Pending => self.blocked(cx),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io().poll_shutdown(cx) {
            Poll::Pending => self.blocked(cx),
            done => done,
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let Some(io) = self.io.take() else { return };
        // Unread bytes (a pipelined request) would make the close a reset:
        // drain them for at most LINGER first. Nothing unread: close now.
        let mut buf = [0u8; 4096];
        let unread = matches!(io.try_read(&mut buf), Ok(n) if n > 0);
        if !unread {
            return;
        }
        {
            use std::os::fd::AsRawFd as _;
            // SAFETY: shutdown(2) of the write half of a socket this owns.
            unsafe { libc::shutdown(io.as_raw_fd(), libc::SHUT_WR) };
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if LINGERING.fetch_add(1, Ordering::AcqRel) >= MAX_LINGERING {
            LINGERING.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        rt.spawn(async move {
            let _ = tokio::time::timeout(LINGER, async {
                let mut buf = [0u8; 4096];
                loop {
                    if io.readable().await.is_err() {
                        return;
                    }
                    match io.try_read(&mut buf) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                }
            })
            .await;
            drop(io);
            LINGERING.fetch_sub(1, Ordering::AcqRel);
        });
    }
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
