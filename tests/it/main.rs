//! The integration tests, in one binary: one module per area (the former
//! `tests/<area>.rs` binaries, same names, so `cargo test --test it history::`
//! selects what `cargo test --test history` did) and one [`support`] tree.
//!
//! One binary links once instead of 33 times, and its tests can overlap:
//! most of their time is spent waiting on the processes they start, brokers
//! and timers, not on the CPU.

mod support;

mod bad_input;
mod bench_smoke;
mod bridge;
mod bridge_restart;
mod browser;
mod dashboard;
mod dashboard_split;
mod docker;
mod docs;
mod examples;
mod faults;
mod hardening_amqp;
mod hardening_inputs;
mod history;
mod history_hostile;
mod history_restart;
mod http;
mod http_split;
mod in_process;
mod install;
mod interop;
mod layout;
mod metrics_doc;
mod monitor;
mod monitor_config;
mod monitor_hostile;
mod monitor_split;
mod observers;
mod onnx;
mod pipeline_run;
mod prometheus;
mod readme;
mod ready_flip;
mod run_classifier;
mod run_own;
mod scenario_wire;
mod shutdown;
mod shutdown_split;
mod split;
mod split_batch;
mod split_join;
mod split_own;
mod train_own;
