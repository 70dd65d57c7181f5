//! The plot feature: the streaming error [`histogram`], its density curve
//! ([`kde`], also drawn by the monitor's picture), how it is drawn
//! ([`render`]: `error_distribution.png`, the shared font and PNG output),
//! what the dashboard reads of the last picture ([`view`]), the
//! [`PlotActor`] that owns the histogram, and the [`renderer`] thread that
//! draws pictures off the threads that route messages (the monitor uses it
//! too).

pub mod actor;
pub mod histogram;
pub mod kde;
pub mod render;
pub mod renderer;
pub mod view;

pub use actor::PlotActor;
