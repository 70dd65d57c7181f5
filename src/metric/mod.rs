//! The metric feature: truths and predictions joined by id ([`join`]),
//! the rows of `metric_log.csv` and `labels_log.txt` ([`log_format`]), the
//! split layout's journal of waiting halves ([`journal`]), the
//! [`MetricActor`] that writes them, and the [`throughput`] observer of
//! its rows (`modelwatch_rows_per_second`).

pub mod actor;
pub mod join;
pub mod journal;
pub mod log_format;
pub mod throughput;

pub use actor::MetricActor;
