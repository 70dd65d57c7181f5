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
    /// Columns declared (`[[data.columns]]`, from the file only): their
    /// type, label and unit, and the values they may hold.
    pub columns: Vec<ColumnSettings>,
}

/// The type a column is declared to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Numeric,
    Categorical,
}

/// One declared column of the user's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnSettings {
    /// The column's name in the header.
    pub name: String,
    /// Numeric or categorical; absent: as `min`/`max` or `levels` say,
    /// else inferred from the values.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ColumnType>,
    /// What the predict form calls it (empty: its name).
    pub label: String,
    /// Its unit, shown beside the label.
    pub unit: String,
    /// A numeric column's least and greatest allowed value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A categorical column's allowed levels (empty: any).
    pub levels: Vec<String>,
}

/// Most columns `[[data.columns]]` may declare.
pub const MAX_DECLARED_COLUMNS: usize = 1000;
/// Longest label or unit, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

impl ColumnSettings {
    /// The declared type, or the one its range or levels imply.
    pub fn kind(&self) -> Option<ColumnType> {
        self.kind.or(if self.min.is_some() || self.max.is_some() {
            Some(ColumnType::Numeric)
        } else if !self.levels.is_empty() {
            Some(ColumnType::Categorical)
        } else {
            None
        })
    }

    /// The values it allows, for the reader.
    pub fn allowed(&self) -> crate::core::table::Allowed {
        let range = (self.min.is_some() || self.max.is_some()).then(|| {
            (
                self.min.unwrap_or(f64::NEG_INFINITY),
                self.max.unwrap_or(f64::INFINITY),
            )
        });
        crate::core::table::Allowed {
            column: self.name.clone(),
            range,
            levels: self.levels.clone(),
            levels_as_numbers: false,
            declared_by: "data.columns",
        }
    }

    fn check(&self, key: &str, max_levels: usize) -> Result<(), ConfigError> {
        let field = |f: &str| format!("{key}.{f}");
        check_name(&field("name"), &self.name)?;
        if self.name.is_empty() {
            return Err(ConfigError::invalid(
                &field("name"),
                "is needed: the column's name in the header",
            ));
        }
        for (f, text) in [("label", &self.label), ("unit", &self.unit)] {
            if text.chars().count() > MAX_LABEL_CHARS
                || text.chars().any(crate::core::text::needs_escape)
            {
                return Err(ConfigError::invalid(
                    &field(f),
                    format!("must be at most {MAX_LABEL_CHARS} characters, no control or invisible ones"),
                ));
            }
        }
        for (f, v) in [("min", self.min), ("max", self.max)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(ConfigError::invalid(&field(f), "must be a finite number"));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max) {
            if lo > hi {
                return Err(ConfigError::invalid(
                    &field("min"),
                    format!("{lo} is above max {hi}"),
                ));
            }
        }
        let ranged = self.min.is_some() || self.max.is_some();
        match self.kind {
            Some(ColumnType::Categorical) if ranged => {
                return Err(ConfigError::invalid(
                    &field(if self.min.is_some() { "min" } else { "max" }),
                    "is for a numeric column; this one is declared categorical (levels list its values)",
                ))
            }
            Some(ColumnType::Numeric) if !self.levels.is_empty() => {
                return Err(ConfigError::invalid(
                    &field("levels"),
                    "are for a categorical column; this one is declared numeric (min and max bound it)",
                ))
            }
            None if ranged && !self.levels.is_empty() => {
                return Err(ConfigError::invalid(
                    &field("levels"),
                    "and min/max together: a column is numeric (min, max) or categorical (levels)",
                ))
            }
            _ => {}
        }
        if self.levels.len() > max_levels {
            return Err(ConfigError::invalid(
                &field("levels"),
                format!(
                    "lists {} levels, more than data.max_levels ({max_levels})",
                    self.levels.len()
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, level) in self.levels.iter().enumerate() {
            let at = format!("{key}.levels[{i}]");
            check_name(&at, level)?;
            if level.is_empty() || crate::core::table::is_missing(level) || level.trim() != level {
                return Err(ConfigError::invalid(
                    &at,
                    "must be a value a cell can hold (not empty, NA or NaN, no spaces around it: cells are trimmed)",
                ));
            }
            if !seen.insert(level) {
                return Err(ConfigError::invalid(&at, "is listed twice"));
            }
        }
        Ok(())
    }
}

/// A column name (or level) from the config: bounded, printable.
fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.len() > MAX_NAME_BYTES || name.chars().any(crate::core::text::needs_escape) {
        return Err(ConfigError::invalid(
            key,
            format!(
                "must be a column name: at most {MAX_NAME_BYTES} bytes, no control or invisible characters"
            ),
        ));
    }
    Ok(())
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
            columns: Vec::new(),
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
            check_name(key, name)?;
        }
        if self.columns.len() > MAX_DECLARED_COLUMNS {
            return Err(ConfigError::invalid(
                "data.columns",
                format!("declares at most {MAX_DECLARED_COLUMNS} columns"),
            ));
        }
        let mut declared = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let key = format!("data.columns[{i}]");
            c.check(&key, self.max_levels)?;
            if !declared.insert(c.name.as_str()) {
                return Err(ConfigError::invalid(
                    &format!("{key}.name"),
                    "declares a column a second time",
                ));
            }
            if c.name == self.id {
                return Err(ConfigError::invalid(
                    &format!("{key}.name"),
                    "is data.id, which is not a feature",
                ));
            }
            if c.kind() == Some(ColumnType::Numeric) && self.categorical.contains(&c.name) {
                return Err(ConfigError::invalid(
                    &format!("{key}.type"),
                    "is numeric, but data.categorical names the column",
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
                ("data.columns", !self.columns.is_empty()),
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

impl DataSettings {
    /// The columns read as categorical: `categorical` and those declared so.
    pub fn categorical_columns(&self) -> Vec<String> {
        let declared = self
            .columns
            .iter()
            .filter(|c| c.kind() == Some(ColumnType::Categorical))
            .map(|c| c.name.clone());
        self.categorical.iter().cloned().chain(declared).collect()
    }

    /// The columns declared numeric (a value that is not a number is
    /// refused, naming its line).
    pub fn numeric_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.kind() == Some(ColumnType::Numeric))
            .map(|c| c.name.clone())
            .collect()
    }

    /// What the declared columns allow, for the reader.
    pub fn allowed(&self) -> Vec<crate::core::table::Allowed> {
        self.columns.iter().map(ColumnSettings::allowed).collect()
    }

    /// The declared column `name`, if any.
    pub fn declared(&self, name: &str) -> Option<&ColumnSettings> {
        self.columns.iter().find(|c| c.name == name)
    }
}
