//! The connection to RabbitMQ shared by both directions: connecting with
//! heartbeats and a connect timeout, bounding every broker operation,
//! closing quietly, and telling a permanent refusal (wrong login or virtual
//! host: a configuration error) from a transient one (unreachable broker).

use std::time::Instant;

use super::topology;
use crate::config::{BridgeSettings, HistorySettings, InboundSettings, Role, Settings};

/// Longest wait for a connection (TCP, handshake, declarations) or a close.
/// lapin can wait forever for a reply that a cut socket will never bring.
pub const BROKER_OP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs a broker operation, failing it after [`BROKER_OP_TIMEOUT`].
pub async fn bounded<T>(
    op: impl std::future::Future<Output = lapin::Result<T>>,
) -> lapin::Result<T> {
    match tokio::time::timeout(BROKER_OP_TIMEOUT, op).await {
        Ok(r) => r,
        Err(_) => Err(lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer from the broker",
        ))),
    }
}

/// Closes a connection without ever waiting long for the broker.
pub async fn close_quietly(conn: &lapin::Connection, code: u16, why: &str) {
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        conn.close(code, why.into()),
    )
    .await;
}

/// A refusal by the broker that no retry can fix: the login (ACCESS_REFUSED,
/// 403) or the virtual host (NOT_ALLOWED, 530) was refused. `None` for
/// everything else (unreachable, reset, timed out: transient).
pub fn permanent_refusal(e: &lapin::Error) -> Option<Refusal> {
    use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
    let lapin::ErrorKind::ProtocolError(amqp) = e.kind() else {
        return None;
    };
    // The broker's text (a short string: at most 255 bytes) names the
    // mechanism or the vhost, never the password.
    let detail = amqp.get_message().as_str().escape_debug().to_string();
    match amqp.kind() {
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
        | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)
            if detail.contains("vhost") =>
        {
            Some(Refusal::Vhost(detail))
        }
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => Some(Refusal::Login(detail)),
        AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => Some(Refusal::Vhost(detail)),
        _ => None,
    }
}

/// What the broker refused for good, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the broker refused the login (check the user and password): {0}")]
    Login(String),
    #[error(
        "the broker refused the virtual host (check that it exists and the user may use it): {0}"
    )]
    Vhost(String),
}

/// Why the bridge cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerCheckError {
    #[error("bridge.url {url}: {refusal}")]
    Refused { url: String, refusal: Refusal },
    /// A declaration the broker refuses for good (406, 403): an object that
    /// exists with other properties, a reserved `amq.` name, no permission.
    #[error("{key}: the broker refused to declare {object}: {reason}{hint}")]
    Declaration {
        key: &'static str,
        object: String,
        /// The broker's reason, escaped and bounded.
        reason: String,
        hint: &'static str,
    },
    #[error("bridge.url: cannot start the check: {0}")]
    Runtime(std::io::Error),
}

/// What the start-up check declares besides the exchange and legacy queues.
struct Plan {
    inbound: InboundSettings,
    roles: Vec<Role>,
    /// The monitor runs (its features queue, in the split layout).
    monitor: bool,
    /// The model is a classifier (the monitor's queue of scored features).
    classifier: bool,
    history: Option<HistorySettings>,
}

/// How the check went, before it is turned into a result.
enum Outcome {
    Ok,
    Connect(lapin::Error),
    Declare(topology::DeclareError),
}

/// Connects once at start-up, before any actor runs: a refused login or
/// virtual host is a configuration error (the caller exits 2); an
/// unreachable broker is not (it may come later), so it is only logged and
/// the bridge retries as usual. Bounded by [`BROKER_OP_TIMEOUT`]. Runs on a
/// thread and runtime of its own, so it can be called from anywhere.
///
/// Then every declaration this process will make (the
/// exchange, the legacy queues, the history stream, and for a split layout its roles' work
/// queues and the dead-letter objects, through [`topology`]): one the broker
/// refuses for good (PRECONDITION_FAILED, ACCESS_REFUSED) can never succeed
/// later, so it is a configuration error naming the key. Declaring early is
/// harmless: the bridge and the consumers declare the same objects anyway.
pub fn check_topology(settings: &Settings, classifier: bool) -> Result<(), BrokerCheckError> {
    let plan = Plan {
        inbound: settings.inbound.clone(),
        roles: settings.roles.clone(),
        monitor: settings.monitor.enabled,
        classifier,
        history: settings.history.enabled.then(|| settings.history.clone()),
    };
    check(&settings.bridge, Some(plan))
}

fn check(settings: &BridgeSettings, plan: Option<Plan>) -> Result<(), BrokerCheckError> {
    let settings = settings.clone();
    let url = crate::core::text::redact_url(&settings.url);
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok::<_, std::io::Error>(rt.block_on(async {
            let conn = match bounded(connect(&settings, "modelwatch start-up check")).await {
                Ok(conn) => conn,
                Err(e) => return Outcome::Connect(e),
            };
            let declared = match plan {
                None => Ok(()),
                Some(plan) => {
                    tokio::time::timeout(BROKER_OP_TIMEOUT, declare_all(&conn, &settings, &plan))
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            close_quietly(&conn, 200, "start-up check done").await;
            match declared {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::Declare(e),
            }
        }))
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the broker check panicked")));
    match outcome {
        Err(e) => Err(BrokerCheckError::Runtime(e)),
        Ok(Outcome::Ok) => {
            tracing::info!(url = %url, "broker reachable; login and virtual host accepted");
            Ok(())
        }
        Ok(Outcome::Connect(e)) => match permanent_refusal(&e) {
            Some(refusal) => Err(BrokerCheckError::Refused { url, refusal }),
            None => {
                // The publisher warns once when it fails to connect too:
                // one warning for one outage.
                tracing::debug!(url = %url, error = %e, "start-up check: broker not reachable; the bridge will retry");
                Ok(())
            }
        },
        Ok(Outcome::Declare(d)) if d.is_refusal() || d.is_history_refusal() => {
            let reason = crate::core::text::sanitize(&d.error.to_string());
            let hint = if d.key == "history.queue" && reason.contains("inequivalent arg") {
                " (a queue of that name exists and is not a stream: name another history.queue, or delete that queue)"
            } else if d.key == "history.queue" {
                " (the broker cannot make a stream: history needs RabbitMQ 3.9+ with the stream_queue feature flag, `rabbitmqctl enable_feature_flag stream_queue`)"
            } else if reason.contains("x-queue-type") {
                " (inbound.queue_type differs from the existing queue's type: set it back, or delete the queue to change it)"
            } else if reason.contains("x-max-length") {
                " (inbound.queue_max_length differs from the existing queue's: set it back, or delete the queue)"
            } else {
                ""
            };
            Err(BrokerCheckError::Declaration {
                key: d.key,
                object: d.object,
                reason,
                hint,
            })
        }
        Ok(Outcome::Declare(d)) => {
            // Not a refusal (the connection dropped, say): transient, the
            // bridge and the consumers retry.
            tracing::debug!(url = %url, error = %d, "start-up check: a declaration failed; the bridge will retry");
            Ok(())
        }
    }
}

/// Declares what this process will declare, in the order it would.
async fn declare_all(
    conn: &lapin::Connection,
    settings: &BridgeSettings,
    plan: &Plan,
) -> Result<(), topology::DeclareError> {
    topology::declare_checked(conn, settings).await?;
    if let Some(h) = &plan.history {
        topology::declare_history(conn, settings, h).await?;
    }
    for (key, name, kind) in plan
        .inbound
        .work_queues(&plan.roles, plan.monitor, plan.classifier)
    {
        let q = topology::WorkQueue { key, name, kind };
        topology::declare_work_queue(conn, settings, &plan.inbound, q).await?;
    }
    Ok(())
}

/// Sleeps until `deadline`, or forever when there is none (a `select!` arm
/// for the shutdown deadline of the publisher and the consumers).
pub(crate) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Connects to the broker of `settings` with heartbeats and a connect
/// timeout unless the URL sets its own; `name` shows in the management UI.
pub async fn connect(settings: &BridgeSettings, name: &str) -> lapin::Result<lapin::Connection> {
    let mut uri: lapin::uri::AMQPUri = settings
        .url
        .parse()
        .map_err(|e: String| lapin::Error::from(std::io::Error::other(e)))?;
    if uri.query.heartbeat.is_none() && settings.heartbeat > 0 {
        uri.query.heartbeat = Some(settings.heartbeat);
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(5_000);
    }
    let props = lapin::ConnectionProperties::default().with_connection_name(name.into());
    lapin::Connection::connect_uri(uri, props).await
}
