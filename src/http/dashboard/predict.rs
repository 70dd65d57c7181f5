//! One prediction asked for by a person: the checks on what they typed, the
//! scaling from raw units to what the model sees, and the training rows
//! nearest to the input.
//!
//! People know a patient in raw units (age in years, sex 1 or 2, bmi, blood
//! pressure, six serum measurements), not sklearn's scaled values, so the
//! form and the JSON API take raw values and scale them with the model
//! artifact's own `preprocessing.scaling`. The JSON API also takes the scaled
//! vector the wire carries; it is mapped back to raw units and held to the
//! same ranges, so both forms refuse the same patients.
//!
//! Every value is bounded ([`RANGES`]): a typo (an extra digit, a unit
//! mix-up) is refused next to its field instead of giving a confident
//! nonsense prediction. The bounds are physiological limits, wide of the
//! data (whose ranges are in the table's comments, from
//! `numpy.min/max` over `data/diabetes.csv`), so no real patient is refused.
//! Pure logic; the HTTP handlers are in `crate::http::dashboard::routes`.

use serde::Serialize;

use crate::core::data::{Dataset, FeatureVector, FEATURE_NAMES, N_FEATURES};
use crate::model::LinearModel;

/// What a field holds, and what it may hold.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    /// The label a person reads.
    pub label: &'static str,
    pub unit: &'static str,
    pub min: f64,
    pub max: f64,
    /// The input's step in the form (`any` for decimals).
    pub step: &'static str,
}

/// The ten fields in data order, with their accepted ranges.
pub const RANGES: [FieldSpec; N_FEATURES] = [
    // data: 19..79
    FieldSpec {
        name: "age",
        label: "Age",
        unit: "years",
        min: 0.0,
        max: 120.0,
        step: "1",
    },
    // data: 1, 2 (checked apart: exactly 1 or 2)
    FieldSpec {
        name: "sex",
        label: "Sex",
        unit: "1 or 2",
        min: 1.0,
        max: 2.0,
        step: "1",
    },
    // data: 18.0..42.2
    FieldSpec {
        name: "bmi",
        label: "Body mass index",
        unit: "kg/m²",
        min: 10.0,
        max: 80.0,
        step: "any",
    },
    // data: 62..133
    FieldSpec {
        name: "bp",
        label: "Mean blood pressure",
        unit: "mm Hg",
        min: 30.0,
        max: 250.0,
        step: "any",
    },
    // data: 97..301
    FieldSpec {
        name: "s1",
        label: "s1: total serum cholesterol (tc)",
        unit: "mg/dL",
        min: 20.0,
        max: 800.0,
        step: "any",
    },
    // data: 41.6..242.4
    FieldSpec {
        name: "s2",
        label: "s2: low-density lipoproteins (ldl)",
        unit: "mg/dL",
        min: 0.0,
        max: 600.0,
        step: "any",
    },
    // data: 22..99
    FieldSpec {
        name: "s3",
        label: "s3: high-density lipoproteins (hdl)",
        unit: "mg/dL",
        min: 0.0,
        max: 300.0,
        step: "any",
    },
    // data: 2..9.09
    FieldSpec {
        name: "s4",
        label: "s4: cholesterol / HDL (tch)",
        unit: "ratio",
        min: 0.0,
        max: 30.0,
        step: "any",
    },
    // data: 3.2581..6.107
    FieldSpec {
        name: "s5",
        label: "s5: log of triglycerides (ltg)",
        unit: "ln mg/dL",
        min: 0.0,
        max: 10.0,
        step: "any",
    },
    // data: 58..124
    FieldSpec {
        name: "s6",
        label: "s6: blood sugar level (glu)",
        unit: "mg/dL",
        min: 20.0,
        max: 600.0,
        step: "any",
    },
];

/// Longest text accepted in one field (a number is far shorter).
pub const MAX_FIELD_CHARS: usize = 32;

/// Training rows shown beside a prediction.
pub const NEAREST: usize = 5;

/// A refused field: its name and why, for a person to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks one value against its field's range.
fn check_value(spec: &FieldSpec, field: &str, v: f64) -> Result<f64, FieldError> {
    if !v.is_finite() {
        return Err(FieldError::new(field, "must be a finite number"));
    }
    if spec.name == "sex" {
        if v == 1.0 || v == 2.0 {
            return Ok(v);
        }
        return Err(FieldError::new(field, "must be 1 or 2"));
    }
    if v < spec.min || v > spec.max {
        return Err(FieldError::new(
            field,
            format!(
                "must be between {} and {} {}",
                spec.min, spec.max, spec.unit
            ),
        ));
    }
    Ok(v)
}

/// Parses one form field as a person typed it.
pub fn parse_field(spec: &FieldSpec, text: &str) -> Result<f64, FieldError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(FieldError::new(spec.name, "is required"));
    }
    if t.chars().count() > MAX_FIELD_CHARS {
        return Err(FieldError::new(
            spec.name,
            format!("is longer than {MAX_FIELD_CHARS} characters"),
        ));
    }
    // Rust's parser takes "inf", "NaN" and "1e5": the first two are refused
    // below as not finite, and exponents are numbers too.
    let v: f64 = t
        .parse()
        .map_err(|_| FieldError::new(spec.name, "is not a number"))?;
    check_value(spec, spec.name, v)
}

/// Parses the ten form fields (by name; `get` returns what was sent). Every
/// bad field is reported, so the form shows them all at once.
pub fn parse_form<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<[f64; N_FEATURES], Vec<FieldError>> {
    let mut raw = [0.0; N_FEATURES];
    let mut errors = Vec::new();
    for (spec, out) in RANGES.iter().zip(raw.iter_mut()) {
        match parse_field(spec, get(spec.name).unwrap_or("")) {
            Ok(v) => *out = v,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(raw)
    } else {
        Err(errors)
    }
}

/// An input of `POST /api/predict`, already checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Raw([f64; N_FEATURES]),
    Scaled(FeatureVector),
}

/// Parses the JSON body of `POST /api/predict`: either the ten raw fields
/// by name or `{"scaled": [10 numbers]}`, never both, nothing else. The
/// first problem is returned, naming its field.
pub fn parse_json(body: &[u8], model: &LinearModel) -> Result<Input, FieldError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| FieldError::new("body", format!("is not JSON: {e}")))?;
    // serde_json keeps the last of two equal keys, the form the first: a
    // key given twice is refused rather than either silently chosen.
    if let Some(key) = duplicate_key(body) {
        return Err(FieldError::new(
            crate::core::text::sanitize(&key),
            "is given twice",
        ));
    }
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
    for key in obj.keys() {
        if key != "scaled" && !FEATURE_NAMES.contains(&key.as_str()) {
            let shown = crate::core::text::sanitize(key);
            return Err(FieldError::new(
                shown,
                "is not a field (expected age, sex, bmi, bp, s1..s6, or scaled alone)",
            ));
        }
    }
    if let Some(scaled) = obj.get("scaled") {
        if obj.len() > 1 {
            return Err(FieldError::new(
                "scaled",
                "comes alone: send either the ten raw fields or scaled, not both",
            ));
        }
        let list = scaled
            .as_array()
            .ok_or_else(|| FieldError::new("scaled", "must be an array of 10 numbers"))?;
        if list.len() != N_FEATURES {
            return Err(FieldError::new(
                "scaled",
                format!("must hold 10 numbers, got {}", list.len()),
            ));
        }
        let mut x = FeatureVector::from_elem(0.0, N_FEATURES);
        for (i, (v, out)) in list.iter().zip(x.iter_mut()).enumerate() {
            let field = format!("scaled[{i}]");
            let n = v
                .as_f64()
                .ok_or_else(|| FieldError::new(&field, "is not a number"))?;
            if !n.is_finite() {
                return Err(FieldError::new(&field, "must be a finite number"));
            }
            // Held to the raw ranges: back to raw units and checked there.
            let s = &model.preprocessing.scaling;
            let mut raw = n * s.scale[i] + s.mean[i];
            if RANGES[i].name == "sex" && (raw - raw.round()).abs() < 1e-9 {
                raw = raw.round(); // the round trip through the scaling
            }
            check_value(&RANGES[i], &field, raw).map_err(|e| {
                FieldError::new(
                    field.clone(),
                    format!(
                        "is {raw} in raw units ({} {}); it {}",
                        RANGES[i].name, RANGES[i].unit, e.message
                    ),
                )
            })?;
            *out = n;
        }
        return Ok(Input::Scaled(x));
    }
    let mut raw = [0.0; N_FEATURES];
    for (spec, out) in RANGES.iter().zip(raw.iter_mut()) {
        let v = obj
            .get(spec.name)
            .ok_or_else(|| FieldError::new(spec.name, "is missing"))?;
        let n = v
            .as_f64()
            .ok_or_else(|| FieldError::new(spec.name, "must be a JSON number"))?;
        *out = check_value(spec, spec.name, n)?;
    }
    Ok(Input::Raw(raw))
}

/// Raw units to what the model sees, with the artifact's scaling.
pub fn scale(model: &LinearModel, raw: &[f64; N_FEATURES]) -> FeatureVector {
    let s = &model.preprocessing.scaling;
    (0..N_FEATURES)
        .map(|j| (raw[j] - s.mean[j]) / s.scale[j])
        .collect()
}

/// A training row near the input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neighbour {
    /// Row index in `data/diabetes.csv` (0 is the first data row).
    pub row: usize,
    /// Euclidean distance in scaled space.
    pub distance: f64,
    pub target: f64,
}

/// The `k` training rows nearest to `x` in scaled space (ties by row
/// order), nearest first.
pub fn nearest(data: &Dataset, x: &FeatureVector, k: usize) -> Vec<Neighbour> {
    let mut all: Vec<Neighbour> = data
        .features
        .rows()
        .into_iter()
        .enumerate()
        .map(|(row, r)| Neighbour {
            row,
            distance: r
                .iter()
                .zip(x)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt(),
            target: data.targets[row],
        })
        .collect();
    all.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.row.cmp(&b.row)));
    all.truncate(k);
    all
}

/// A prediction with what explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub prediction: f64,
    /// Raw units (`None` when the input was the scaled vector).
    pub raw: Option<[f64; N_FEATURES]>,
    pub scaled: FeatureVector,
    pub nearest: Vec<Neighbour>,
}

/// Predicts a checked input.
pub fn answer(model: &LinearModel, data: &Dataset, input: Input) -> Answer {
    let (raw, scaled) = match input {
        Input::Raw(r) => (Some(r), scale(model, &r)),
        Input::Scaled(x) => (None, x),
    };
    Answer {
        prediction: model.predict(&scaled),
        raw,
        nearest: nearest(data, &scaled, NEAREST),
        scaled,
    }
}

/// The first key given twice at the top level of a JSON object, if any
/// (the body is bounded, so are its keys).
fn duplicate_key(body: &[u8]) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys(Option<String>);
    struct KeysVisitor;
    impl<'de> Visitor<'de> for KeysVisitor {
        type Value = Keys;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut twice = None;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) && twice.is_none() {
                    twice = Some(key);
                }
            }
            Ok(Keys(twice))
        }
    }
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            d.deserialize_map(KeysVisitor)
        }
    }
    serde_json::from_slice::<Keys>(body).ok().and_then(|k| k.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> LinearModel {
        LinearModel::fit(Dataset::embedded()).unwrap()
    }

    /// Row 0 of data/diabetes.csv.
    const ROW0: [f64; 10] = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0];

    #[test]
    fn row_0_in_raw_units_scales_to_the_data_and_predicts_sklearns_figure() {
        let m = model();
        let data = Dataset::embedded();
        let a = answer(&m, data, Input::Raw(ROW0));
        for (got, want) in a.scaled.iter().zip(data.feature_row(0)) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        // sklearn LinearRegression().fit(load_diabetes()).predict(X[:1]),
        // tests/it/support/oracle.rs: 206.11667724
        assert!(
            (a.prediction - 206.116_677_24).abs() < 1e-6,
            "{}",
            a.prediction
        );
    }

    #[test]
    fn the_nearest_rows_are_numpys() {
        // /work/venv-sci/bin/python -c "import numpy as np;
        //   d=np.genfromtxt('data/diabetes.csv',delimiter=',',skip_header=1);
        //   X=d[:,:10];y=d[:,10];S=(X-X.mean(0))/(X.std(0)*np.sqrt(len(X)));
        //   dist=np.sqrt(((S-S[0])**2).sum(1));o=np.argsort(dist,kind='stable')[:5];
        //   print(o,dist[o],y[o])"
        // -> [0 51 2 341 271] [0. 0.05781498 0.06139612 0.07172609 0.07405718]
        //    [151. 225. 141. 263. 127.]
        let data = Dataset::embedded();
        let n = nearest(data, &data.feature_row(0), NEAREST);
        let rows: Vec<usize> = n.iter().map(|x| x.row).collect();
        assert_eq!(rows, [0, 51, 2, 341, 271]);
        let targets: Vec<f64> = n.iter().map(|x| x.target).collect();
        assert_eq!(targets, [151.0, 225.0, 141.0, 263.0, 127.0]);
        for (got, want) in n
            .iter()
            .map(|x| x.distance)
            .zip([0.0, 0.05781498, 0.06139612, 0.07172609, 0.07405718])
        {
            assert!((got - want).abs() < 5e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn form_fields_are_refused_with_a_reason() {
        let spec = |n: &str| *RANGES.iter().find(|s| s.name == n).unwrap();
        for (field, text, why) in [
            ("age", "", "is required"),
            ("age", "   ", "is required"),
            ("age", "abc", "is not a number"),
            ("age", "NaN", "must be a finite number"),
            ("age", "inf", "must be a finite number"),
            ("age", "-1", "must be between 0 and 120 years"),
            ("age", "121", "must be between 0 and 120 years"),
            ("sex", "3", "must be 1 or 2"),
            ("sex", "1.5", "must be 1 or 2"),
            ("bmi", "321", "must be between 10 and 80 kg/m²"),
            ("s5", &"9".repeat(33), "is longer than 32 characters"),
        ] {
            let e = parse_field(&spec(field), text).unwrap_err();
            assert_eq!(e.field, field);
            assert_eq!(e.message, why, "{field}={text:?}");
        }
        assert_eq!(parse_field(&spec("age"), " 0 "), Ok(0.0));
        assert_eq!(parse_field(&spec("age"), "120"), Ok(120.0));
        assert_eq!(parse_field(&spec("s4"), "4e0"), Ok(4.0));
    }

    #[test]
    fn a_form_reports_every_bad_field_at_once() {
        let errors = parse_form(|name| match name {
            "age" => Some("abc"),
            "sex" => Some("3"),
            _ => Some("50"),
        })
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        // s4 (0..30) and s5 (0..10) refuse 50 as well.
        assert_eq!(fields, ["age", "sex", "s4", "s5"]);
    }

    #[test]
    fn json_raw_and_scaled_agree_and_bad_bodies_name_the_field() {
        let m = model();
        let raw = br#"{"age":59,"sex":2,"bmi":32.1,"bp":101,"s1":157,"s2":93.2,"s3":38,"s4":4,"s5":4.8598,"s6":87}"#;
        let Input::Raw(r) = parse_json(raw, &m).unwrap() else {
            panic!("raw expected")
        };
        assert_eq!(r, ROW0);
        let scaled = Dataset::embedded().feature_row(0);
        let body = serde_json::to_vec(&serde_json::json!({ "scaled": scaled })).unwrap();
        assert_eq!(
            parse_json(&body, &m).unwrap(),
            Input::Scaled(scaled.clone())
        );

        // Row 0 scaled, with one value replaced.
        let with = |i: usize, v: serde_json::Value| {
            let mut list: Vec<serde_json::Value> = scaled.iter().map(|x| (*x).into()).collect();
            list[i] = v;
            serde_json::to_vec(&serde_json::json!({ "scaled": list })).unwrap()
        };
        let (not_a_number, too_old, sex_3) = (
            with(9, "x".into()),
            with(0, 5.0.into()),
            with(1, 0.2.into()),
        );
        for (body, field) in [
            (&not_a_number[..], "scaled[9]"),
            (&too_old, "scaled[0]"),
            (&sex_3, "scaled[1]"),
            (&b"not json"[..], "body"),
            (b"[1,2]", "body"),
            (br#"{"age":59}"#, "sex"),
            (br#"{"age":"59","sex":2}"#, "age"),
            (br#"{"age":59,"sex":3,"bmi":32.1,"bp":101,"s1":157,"s2":93.2,"s3":38,"s4":4,"s5":4.8598,"s6":87}"#, "sex"),
            (br#"{"age":59,"sex":2,"bmi":32.1,"bp":101,"s1":157,"s2":93.2,"s3":38,"s4":4,"s5":4.8598,"s6":87,"weight":3}"#, "weight"),
            (br#"{"scaled":[0,0,0,0,0,0,0,0,0,0],"age":3}"#, "scaled"),
            (br#"{"scaled":[0,0,0]}"#, "scaled"),
            // Given twice: refused, whichever value comes last.
            (br#"{"age":200,"age":59,"sex":2,"bmi":32.1,"bp":101,"s1":157,"s2":93.2,"s3":38,"s4":4,"s5":4.8598,"s6":87}"#, "age"),
            (br#"{"age":59,"sex":2,"bmi":32.1,"bp":101,"s1":157,"s2":93.2,"s3":38,"s4":4,"s5":4.8598,"s6":87,"s6":87}"#, "s6"),
        ] {
            let e = parse_json(body, &m).unwrap_err();
            assert_eq!(e.field, field, "{}: {e}", String::from_utf8_lossy(body));
        }
    }
}
