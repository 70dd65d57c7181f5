//! The monitor: how well the model does over time, against what it did in
//! training, and whether its inputs still look like the training data.
//!
//! One folder for the whole feature: the pure logic, and the [`actor`]
//! that owns a [`Monitor`](engine::Monitor) and [`render_over_time`], its picture. The
//! logic: the rolling windows, the training baseline, the
//! drift statistics, the alert rules, and what the pictures need: the
//! density curve of the errors (`plot::kde`, shared with the histogram) and the bounded series of window
//! figures that `error_over_time.png` draws ([`over_time`]). [`report`]
//! holds the types that leave the monitor: one [`report::WindowReport`] per
//! closed window, one [`report::AlertEvent`] per fire or resolve, and the
//! [`report::Board`] the dashboard reads. [`files`] opens a monitor with
//! its files and writes a closed window: the actor and `replay --rebuild`
//! share it. [`categorical`] (χ², PSI and unseen levels of a categorical
//! column) and [`classification`] (a classifier's window metrics) are the
//! statistics of "watch your own model", checked against scipy and
//! scikit-learn, not wired into the pipeline yet.

pub mod actor;
pub mod alerts;
pub mod baseline;
pub mod categorical;
pub mod classification;
pub mod drift;
pub mod engine;
pub mod files;
pub mod log;
pub mod over_time;
pub mod reference;
pub mod render_over_time;
pub mod report;
pub mod rolling;
pub mod telemetry;
