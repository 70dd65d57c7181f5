//! The source feature: what plays the client. The pure logic that picks
//! rows of the data set ([`sampler`]; the user's own data lined up with its
//! model: [`own`]) and shifts them on purpose
//! ([`scenario`], `source.scenario`), and the [`FeatureSource`] actor that
//! paces them and sends features to the model and truths to the metric.

pub mod actor;
pub mod own;
pub mod sampler;
pub mod scenario;

pub use actor::FeatureSource;
