//! The HTTP edge: the [`server`] (`/metrics`, `/health`, `/ready`), the
//! Prometheus text format of the registry ([`exposition`]) and the
//! [`dashboard`] with its predict form. Everything it serves is read from
//! shared state, so a request never blocks the pipeline.

pub mod dashboard;
pub mod exposition;
pub mod server;
