//! `roles`: which parts of the pipeline this process runs.
//!
//! All four (the default) is the whole pipeline in one process. With fewer,
//! the missing links go through RabbitMQ, so the bridge must be on: e.g.
//! `--roles features`, `--roles model` (as many as you like) and
//! `--roles metric,plot` as separate processes.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A part of the pipeline that a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Features,
    Model,
    Metric,
    Plot,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Features, Role::Model, Role::Metric, Role::Plot];
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.trim() {
            "features" => Ok(Role::Features),
            "model" => Ok(Role::Model),
            "metric" => Ok(Role::Metric),
            "plot" => Ok(Role::Plot),
            other => Err(format!(
                "unknown role {other:?} (roles are features, model, metric, plot)"
            )),
        }
    }
}

/// At least one role; fewer than all four only with the bridge on.
pub(super) fn check(roles: &[Role], bridge_enabled: bool) -> Result<(), ConfigError> {
    if roles.is_empty() {
        return Err(ConfigError::invalid("roles", "must name at least one role"));
    }
    let split = !Role::ALL.iter().all(|r| roles.contains(r));
    if split && !bridge_enabled {
        return Err(ConfigError::invalid(
            "roles",
            "running only some roles links them through RabbitMQ: turn the bridge on (bridge.enabled, --amqp-url or AMQP_URL)",
        ));
    }
    Ok(())
}
