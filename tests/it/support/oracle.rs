//! The tests' own oracle of what the model must predict, independent of the
//! code under test: the diabetes rows are read from `data/diabetes.csv` here
//! (checked against the sha256 that `../shared/data/README.md` publishes),
//! scaled as sklearn's `load_diabetes()` does (`(x - mean) / std /
//! sqrt(442)`, population std), and predicted with the intercept and
//! coefficients of sklearn's `LinearRegression().fit(X, y)` as that README
//! publishes them. Nothing here calls `modelwatch::core::data`, `model` or
//! `sampler`.
//!

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// sha256 of sklearn's diabetes data as `data/diabetes.csv` holds it.
const CSV_SHA256: &str = "7dae9500120945f10f310cb7834fa7a4545e1aae0a4888012cd65f9102a828af";
/// sklearn 1.9.1 `LinearRegression().fit(load_diabetes().data, target)`.
pub const SKLEARN_INTERCEPT: f64 = 152.13348416289597;
pub const SKLEARN_COEFFICIENTS: [f64; 10] = [
    -10.00986629981065,
    -239.815643672423,
    519.845920054461,
    324.3846455023232,
    -792.1756385522297,
    476.73902100525765,
    101.0432679380334,
    177.063237671346,
    751.2736995571038,
    67.62669218370499,
];
/// How far the program's prediction may be from sklearn's. The fits agree to
/// about 1e-11 here; a wrong model (no intercept, unscaled features, another
/// fit) is off by whole units.
pub const PREDICTION_TOLERANCE: f64 = 1e-7;
/// How far a scaled feature on the wire may be from sklearn's scaled value.
pub const FEATURE_TOLERANCE: f64 = 1e-12;

/// One row of the data set, with what sklearn's model predicts for it.
#[derive(Debug, Clone, Copy)]
pub struct OracleRow {
    pub raw: [f64; 10],
    /// As `load_diabetes()` returns them, and as the wire carries them.
    pub scaled: [f64; 10],
    pub target: f64,
    /// sklearn's prediction of the row.
    pub prediction: f64,
}

/// The 442 rows of the data set, in file order.
pub fn rows() -> &'static [OracleRow] {
    static ROWS: OnceLock<Vec<OracleRow>> = OnceLock::new();
    ROWS.get_or_init(load)
}

fn load() -> Vec<OracleRow> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, CSV_SHA256, "{path} is not sklearn's diabetes data");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target")
    );
    let parsed: Vec<([f64; 10], f64)> = lines
        .map(|l| {
            let v: Vec<f64> = l
                .split(',')
                .map(|s| s.parse().unwrap_or_else(|e| panic!("{l:?}: {e}")))
                .collect();
            assert_eq!(v.len(), 11, "{l:?}");
            (v[..10].try_into().unwrap(), v[10])
        })
        .collect();
    let n = parsed.len();
    assert_eq!(n, 442);
    let nf = n as f64;
    let mut mean = [0.0; 10];
    let mut std = [0.0; 10];
    for j in 0..10 {
        mean[j] = parsed.iter().map(|(x, _)| x[j]).sum::<f64>() / nf;
        let var = parsed
            .iter()
            .map(|(x, _)| (x[j] - mean[j]).powi(2))
            .sum::<f64>()
            / nf;
        std[j] = var.sqrt();
    }
    parsed
        .into_iter()
        .map(|(raw, target)| {
            let mut scaled = [0.0; 10];
            for j in 0..10 {
                scaled[j] = (raw[j] - mean[j]) / std[j] / nf.sqrt();
            }
            let prediction = SKLEARN_INTERCEPT
                + scaled
                    .iter()
                    .zip(SKLEARN_COEFFICIENTS)
                    .map(|(x, c)| x * c)
                    .sum::<f64>();
            OracleRow {
                raw,
                scaled,
                target,
                prediction,
            }
        })
        .collect()
}

/// The index of a row whose target is `y_true` exactly and whose sklearn
/// prediction is `y_pred` within [`PREDICTION_TOLERANCE`].
pub fn row_of_outputs(y_true: f64, y_pred: f64) -> Option<usize> {
    rows()
        .iter()
        .position(|r| r.target == y_true && (r.prediction - y_pred).abs() <= PREDICTION_TOLERANCE)
}

/// The index of the row whose scaled features are `xs`, within
/// [`FEATURE_TOLERANCE`] each.
pub fn row_of_features(xs: &[f64]) -> Option<usize> {
    if xs.len() != 10 {
        return None;
    }
    rows().iter().position(|r| {
        r.scaled
            .iter()
            .zip(xs)
            .all(|(a, b)| (a - b).abs() <= FEATURE_TOLERANCE)
    })
}

/// Panics unless (y_true, y_pred) is the target and sklearn's prediction of
/// some row; returns that row.
pub fn assert_model_output(y_true: f64, y_pred: f64, what: &str) -> usize {
    row_of_outputs(y_true, y_pred).unwrap_or_else(|| {
        let near = rows()
            .iter()
            .filter(|r| r.target == y_true)
            .map(|r| r.prediction)
            .collect::<Vec<_>>();
        panic!(
            "{what}: (y_true {y_true}, y_pred {y_pred}) is not (target, sklearn prediction) of \
             any data row; sklearn predicts {near:?} for the rows with that target"
        )
    })
}
