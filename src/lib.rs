//! modelwatch: run an ML model in a loop and watch how well it does, live.
//!
//! The modules are layers; a module imports only from layers below its
//! own (the table and the rule: `docs/architecture.md`, kept by
//! `tests/it/layout.rs`). Bottom to top:
//!
//! 1. [`core`]: the vocabulary (messages, ids, the data set, files, stop
//!    signals, the telemetry registry, logging);
//! 2. [`config`]: every setting and the shape of its value;
//! 3. [`model`]: the linear model, its artifact and its actor;
//! 4. the features, each in one folder with its pure logic and its actor:
//!    [`source`], [`metric`], [`plot`], [`monitor`];
//! 5. the I/O edges: [`amqp`] (the bridge, by direction), [`http`] (server
//!    and dashboard), [`history`] (the RabbitMQ stream read back);
//! 6. [`pipeline`], which checks the inputs, restores state, starts the
//!    actors and serves; then [`bench`] and [`cli`], the command line
//!    (`main.rs` only calls it).

pub mod amqp;
pub mod bench;
pub mod cli;
pub mod config;
pub mod core;
pub mod history;
pub mod http;
pub mod metric;
pub mod model;
pub mod monitor;
pub mod pipeline;
pub mod plot;
pub mod source;
