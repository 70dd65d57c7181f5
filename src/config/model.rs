//! `[model]`: where the fitted model lives, and how an ONNX model runs.
//!
//! `train` writes the artifact and `run` loads it; when it is absent `run`
//! fits the model in memory. An ONNX model (an artifact of `train --model
//! FILE.onnx`, `crate::model::onnx`) is run by the ONNX Runtime library
//! `onnxruntime` names, on `threads` intra-op threads. The artifact's own checks (finite
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
    /// The ONNX Runtime library (`libonnxruntime.so`) an ONNX model runs
    /// on; empty: the environment's `ORT_DYLIB_PATH`.
    pub onnxruntime: PathBuf,
    /// ONNX Runtime's intra-op threads per model process.
    pub threads: usize,
    /// Most rows an ONNX model is run on at once: a batch of features is
    /// run in chunks of this many rows.
    pub batch_rows: usize,
}

/// Most intra-op threads `model.threads` may ask for.
pub const MAX_THREADS: usize = 256;

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            artifact: PathBuf::from("models/diabetes_linear.json"),
            onnxruntime: PathBuf::new(),
            threads: 1,
            batch_rows: 512,
        }
    }
}

impl Check for ModelSettings {
    /// Any path will do here: whether it can be read is found when it is.
    fn check(&self) -> Result<(), ConfigError> {
        super::in_range("model.batch_rows", self.batch_rows, 1, 65_536)?;
        super::in_range("model.threads", self.threads, 1, MAX_THREADS)
    }
}
