//! `[data]`: the data the source streams, when it is the user's own.
//!
//! Empty `path` (the default): the diabetes data built into the binary,
//! and its linear model (`[model]`). A `path` names a CSV file with a
//! header line (docs/own-data.md): the source streams its rows, the model
//! predicts `target` from the other columns (the artifact `model`, written
//! by `modelwatch train --data`, or fitted when the run starts), and the
//! monitor compares each column with its training distribution. The read
//! takes the same bounds and choices as `train --data`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{in_range, Check, ConfigError};
use crate::core::table::{Missing, MAX_NAME_BYTES};

/// Largest `data.max_bytes`: 64 GiB.
pub const MAX_DATA_BYTES: u64 = 64 << 30;

/// The user's own data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSettings {
    /// The CSV file; empty: the built-in diabetes data.
    pub path: PathBuf,
    /// The column the model predicts (needed with `path`).
    pub target: String,
    /// The artifact of `modelwatch train --data` to run; empty: the model
    /// is fitted on `path` when the run starts.
    pub model: PathBuf,
    /// A column that identifies rows (left out of the features); empty: none.
    pub id: String,
    /// Columns that are categorical even when every value is a number.
    pub categorical: Vec<String>,
    /// The field delimiter: one ASCII character.
    pub delimiter: String,
    /// Rows with a missing value: `omit` (left out, counted) or `refuse`.
    pub missing: Missing,
    /// Largest file read, in bytes.
    pub max_bytes: u64,
    /// Most levels of a categorical column.
    pub max_levels: usize,
}

impl Default for DataSettings {
    fn default() -> Self {
        DataSettings {
            path: PathBuf::new(),
            target: String::new(),
            model: PathBuf::new(),
            id: String::new(),
            categorical: Vec::new(),
            delimiter: ",".to_owned(),
            missing: Missing::Omit,
            max_bytes: 1 << 30,
            max_levels: 100,
        }
    }
}

impl DataSettings {
    /// True when the run streams the user's own data.
    pub fn is_own(&self) -> bool {
        !self.path.as_os_str().is_empty()
    }

    /// The delimiter as the CSV reader takes it (checked by [`Check`]).
    pub fn delimiter_byte(&self) -> u8 {
        match self.delimiter.as_str() {
            "\\t" => b'\t',
            d => d.as_bytes().first().copied().unwrap_or(b','),
        }
    }
}

impl Check for DataSettings {
    fn check(&self) -> Result<(), ConfigError> {
        let d = self.delimiter.as_str();
        let one_ascii = d == "\\t"
            || (d.len() == 1 && d.as_bytes()[0].is_ascii() && !matches!(d, "\"" | "\n" | "\r"));
        if !one_ascii {
            return Err(ConfigError::invalid(
                "data.delimiter",
                format!(
                    "must be one ASCII character other than a quote or a line break (\\t for a tab), got {d:?}"
                ),
            ));
        }
        if self.max_bytes == 0 || self.max_bytes > MAX_DATA_BYTES {
            return Err(ConfigError::invalid(
                "data.max_bytes",
                format!(
                    "must be between 1 and {MAX_DATA_BYTES} (64 GiB), got {}",
                    self.max_bytes
                ),
            ));
        }
        in_range("data.max_levels", self.max_levels, 2, 10_000)?;
        for (key, name) in [("data.target", &self.target), ("data.id", &self.id)]
            .into_iter()
            .chain(self.categorical.iter().map(|c| ("data.categorical", c)))
        {
            if name.len() > MAX_NAME_BYTES || name.chars().any(crate::core::text::needs_escape) {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "must be a column name: at most {MAX_NAME_BYTES} bytes, no control or invisible characters"
                    ),
                ));
            }
        }
        if self.categorical.len() > 1000 {
            return Err(ConfigError::invalid(
                "data.categorical",
                "names at most 1000 columns",
            ));
        }
        if !self.is_own() {
            let given = [
                ("data.target", !self.target.is_empty()),
                ("data.model", !self.model.as_os_str().is_empty()),
                ("data.id", !self.id.is_empty()),
                ("data.categorical", !self.categorical.is_empty()),
            ];
            if let Some((key, _)) = given.iter().find(|(_, on)| *on) {
                return Err(ConfigError::invalid(
                    key,
                    "is for a data file of your own: set data.path (--data) too",
                ));
            }
            return Ok(());
        }
        if self.target.is_empty() {
            return Err(ConfigError::invalid(
                "data.target",
                "is needed with data.path: the column the model predicts (--target)",
            ));
        }
        if self.id == self.target {
            return Err(ConfigError::invalid(
                "data.id",
                "is the target column: the id identifies rows, the target is predicted",
            ));
        }
        Ok(())
    }
}
