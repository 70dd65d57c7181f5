//! The diabetes data set, compiled into the binary.
//!
//! The 442 rows of Efron et al. exactly as scikit-learn ships them (raw,
//! unscaled columns plus the target) live in `data/diabetes.csv`. The pipeline
//! works on sklearn's *scaled* representation, which is what
//! `load_diabetes()` returns and what the Python services sent on the wire:
//! per column `(x - mean) / std / sqrt(n)` with the population std. Computing
//! it here from the raw file reproduces sklearn's matrix exactly.

use std::sync::OnceLock;

use ndarray::{Array1, Array2, Axis};
use sha2::{Digest, Sha256};

/// Number of feature columns.
pub const N_FEATURES: usize = 10;

/// Feature names in column order, as sklearn names them.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
];

/// The raw CSV, byte for byte as shipped.
pub const RAW_CSV: &str = include_str!("../../data/diabetes.csv");

/// One feature row, in the columns' order: inline (no allocation) for up
/// to [`N_FEATURES`] values, as the diabetes data has, on the heap for a
/// wider schema.
pub type FeatureVector = smallvec::SmallVec<[f64; N_FEATURES]>;

/// Errors reading a diabetes-shaped CSV.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("diabetes data: {0}")]
    Csv(#[from] csv::Error),
    #[error("diabetes data: header is {found:?}, expected age..s6,target")]
    Header { found: Vec<String> },
    #[error("diabetes data: row {row}: {problem}")]
    Row { row: usize, problem: String },
    #[error("diabetes data: no rows")]
    Empty,
}

/// The data set: raw columns, scaled features and targets.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Raw feature values, one row per patient.
    pub raw: Array2<f64>,
    /// sklearn's scaled features (what the model and the wire use).
    pub features: Array2<f64>,
    /// Disease progression one year after baseline.
    pub targets: Array1<f64>,
    /// The scaling that maps raw columns to `features`.
    pub scaling: Scaling,
    /// sha256 of the CSV text the rows were read from, hex.
    pub sha256: String,
}

/// sklearn's diabetes scaling: `(x - mean) / (std * sqrt(n))`, per column.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scaling {
    pub mean: Vec<f64>,
    /// `std * sqrt(n)`, the divisor applied after centring.
    pub scale: Vec<f64>,
}

impl Scaling {
    /// Computes the scaling of sklearn's `load_diabetes(scaled=True)`.
    pub fn fit(raw: &Array2<f64>) -> Scaling {
        let n = raw.nrows() as f64;
        let mean = raw.mean_axis(Axis(0)).expect("at least one row");
        let std = raw.std_axis(Axis(0), 0.0);
        Scaling {
            mean: mean.to_vec(),
            scale: std.iter().map(|s| s * n.sqrt()).collect(),
        }
    }

    /// Applies the scaling to raw rows.
    pub fn apply(&self, raw: &Array2<f64>) -> Array2<f64> {
        let mut out = raw.clone();
        for (j, mut col) in out.axis_iter_mut(Axis(1)).enumerate() {
            col.mapv_inplace(|x| (x - self.mean[j]) / self.scale[j]);
        }
        out
    }
}

impl Dataset {
    /// Parses a CSV with the columns `age,sex,bmi,bp,s1,...,s6,target`.
    pub fn from_csv(text: &str) -> Result<Dataset, DataError> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
        let expected: Vec<&str> = FEATURE_NAMES.iter().copied().chain(["target"]).collect();
        if header != expected {
            return Err(DataError::Header { found: header });
        }
        let mut values = Vec::new();
        let mut targets = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record?;
            let row: Result<Vec<f64>, _> = record.iter().map(str::parse::<f64>).collect();
            let row = row.map_err(|e| DataError::Row {
                row: i + 1,
                problem: e.to_string(),
            })?;
            if row.iter().any(|v| !v.is_finite()) {
                return Err(DataError::Row {
                    row: i + 1,
                    problem: "non-finite value".into(),
                });
            }
            values.extend_from_slice(&row[..N_FEATURES]);
            targets.push(row[N_FEATURES]);
        }
        if targets.is_empty() {
            return Err(DataError::Empty);
        }
        let raw = Array2::from_shape_vec((targets.len(), N_FEATURES), values)
            .expect("rows have N_FEATURES values (checked by the csv reader)");
        let scaling = Scaling::fit(&raw);
        let features = scaling.apply(&raw);
        Ok(Dataset {
            raw,
            features,
            targets: Array1::from(targets),
            scaling,
            sha256: sha256_hex(text.as_bytes()),
        })
    }

    /// The embedded data set (parsed once per process).
    pub fn embedded() -> &'static Dataset {
        static DATA: OnceLock<Dataset> = OnceLock::new();
        DATA.get_or_init(|| Dataset::from_csv(RAW_CSV).expect("embedded diabetes.csv is valid"))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there are no rows (never for a parsed data set).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The scaled features of row `i`.
    pub fn feature_row(&self, i: usize) -> FeatureVector {
        let row = self.features.row(i);
        FeatureVector::from_buf(std::array::from_fn(|j| row[j]))
    }
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_has_442_rows_and_the_documented_hash() {
        let d = Dataset::embedded();
        assert_eq!(d.len(), 442);
        assert_eq!(d.features.dim(), (442, 10));
        assert_eq!(
            d.sha256,
            "7dae9500120945f10f310cb7834fa7a4545e1aae0a4888012cd65f9102a828af"
        );
        assert_eq!(d.targets[0], 151.0);
    }

    #[test]
    fn scaled_row_zero_matches_sklearn() {
        let sklearn_x0 = [
            0.038075906433423,
            0.050680118739819,
            0.061696206518683,
            0.021872385514037,
            -0.044223498424446,
            -0.034820762837699,
            -0.043400845652025,
            -0.002592261998183,
            0.019907486170463,
            -0.017646125159804,
        ];
        let row = Dataset::embedded().feature_row(0);
        for (a, b) in row.iter().zip(sklearn_x0) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn scaled_columns_have_unit_norm_and_zero_mean() {
        let d = Dataset::embedded();
        for col in d.features.axis_iter(Axis(1)) {
            assert!(col.sum().abs() < 1e-9);
            assert!((col.dot(&col) - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn bad_csv_is_a_clear_error() {
        let err = Dataset::from_csv("a,b\n1,2\n").unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
        let text = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target\n1,2,3,4,5,6,7,8,9,x,1\n";
        let err = Dataset::from_csv(text).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
    }
}
