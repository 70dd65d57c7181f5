//! `[model]`: where the fitted model lives.
//!
//! `train` writes the artifact and `run` loads it; when it is absent `run`
//! fits the model in memory. The artifact's own checks (finite
//! coefficients, bounded predictions) are the model's business
//! (`crate::model`), made when it is loaded.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Check, ConfigError};

/// The model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// Artifact written by `train` and loaded by `run`; fitted in memory when absent.
    pub artifact: PathBuf,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            artifact: PathBuf::from("models/diabetes_linear.json"),
        }
    }
}

impl Check for ModelSettings {
    /// Any path will do here: whether it can be read is found when it is.
    fn check(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
