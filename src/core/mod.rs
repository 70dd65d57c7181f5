//! The vocabulary every layer above speaks: the messages that flow and
//! their ids, the data set, the files a run writes (append-only logs,
//! atomically replaced outputs), the stop signals (shutdown, reopen, done,
//! exit codes), the telemetry registry and the logging set-up.
//!
//! Why one folder: these are the words the features, the I/O edges and the
//! wiring share. Nothing here imports anything above it (see
//! `docs/architecture.md`), so any module may use them without a circle.

pub mod actor;
pub mod append_file;
pub mod backlog;
pub mod data;
pub mod done;
pub mod exit;
pub mod fanout;
pub mod ids;
pub mod json;
pub mod log_paths;
pub mod logging;
pub mod messages;
pub mod metrics;
pub mod output_file;
pub mod reopen;
pub mod schema;
pub mod shutdown;
pub mod table;
pub mod text;
