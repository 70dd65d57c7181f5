//! modelwatch: run an ML model in a loop and watch how well it does, live.
//!
//! Read top-down: [`messages`] (what flows), [`config`] (every setting),
//! the pure logic ([`data`], [`model`], [`sampler`], [`join`],
//! [`histogram`], [`scenario`], [`log_format`], [`append_file`],
//! [`output_file`], [`render`],
//! [`monitor`], [`render_over_time`]), the [`actors`] that wrap it, and
//! [`pipeline`], which wires and runs them; [`http`] serves the registry
//! and the [`dashboard`]; [`history`] reads back what the bridge kept in a
//! RabbitMQ stream.
//! [`cli`] is the command line; `main.rs` only calls it.

pub mod actors;
pub mod amqp;
pub mod append_file;
pub mod bench;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod data;
pub mod done;
pub mod exit;
pub mod exposition;
pub mod histogram;
pub mod history;
pub mod http;
pub mod ids;
pub mod join;
pub mod journal;
pub mod log_format;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod output_file;
pub mod pipeline;
pub mod plot_view;
pub mod render;
pub mod render_over_time;
pub mod reopen;
pub mod sampler;
pub mod scenario;
pub mod shutdown;
pub mod telemetry;
