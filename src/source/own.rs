//! The user's own data as the source streams it (`data.path`): the typed
//! columns of the CSV file ([`crate::core::table`]) lined up with a model
//! of that data ([`TabularModel`]), so that a row comes out in the order of
//! the model's features, as [`TabularModel::predict_row`] takes it.
//!
//! A numeric column's values are the file's; a categorical column's are
//! indices into the model's training levels, and a level the training data
//! did not have is an index past them, into the column's
//! [`OwnData::extra`] levels (it is counted per column and said at start;
//! the model encodes it as all zeros, the monitor counts it as unseen, and
//! the wire carries its text: [`crate::core::schema`]). Columns of the file
//! the model does not use are dropped.
//! The rows are kept row by row (8 bytes a cell), so that a sample is one
//! contiguous read: gathered from 50 columns at a random row, a row cost 50
//! cache misses, an eighth of a whole run (perf). The typed columns become
//! rows one at a time, each dropped as it goes: the peak is the rows plus
//! the columns not yet moved.
//!
//! Checked here, as an error naming the column (the caller exits 2): a
//! feature of the model or the target missing from the file, a column whose
//! type differs from the model's (a numeric feature with a value that is
//! not a number), a target beyond [`MAX_ABS_VALUE`], and a row whose
//! prediction is not finite or beyond [`MAX_ABS_PREDICTION`] (all rows are
//! predicted once at load, which bounds every prediction of the run).

use crate::core::data::FeatureVector;
use crate::core::messages::MAX_ABS_VALUE;
use crate::core::table::{quoted, ColumnKind, Table, Values, MISSING_CODE};
use crate::model::tabular::TabularModel;
use crate::model::MAX_ABS_PREDICTION;

/// The rows of the user's data, lined up with the model.
#[derive(Debug)]
pub struct OwnData {
    /// Row after row, `width` values each, in the order of the model's
    /// features.
    cells: Vec<f64>,
    width: usize,
    targets: Vec<f64>,
    /// The feature columns' names, in the order of a row.
    pub names: Vec<String>,
    /// The model's levels of each categorical column (`None`: numeric).
    pub levels: Vec<Option<Vec<String>>>,
    /// sha256 of the file.
    pub sha256: String,
    /// Rows left out for a missing value.
    pub omitted: usize,
    /// Per feature column with a level the model never saw: its name and
    /// the rows with such a level.
    pub unseen: Vec<(String, usize)>,
    /// Per feature column, the file's levels the model never saw, in the
    /// file's order: level `k` is value `levels.len() + k`.
    pub extra: Vec<Vec<String>>,
    /// Per feature column with missing cells (`data.missing = "keep"`):
    /// its name and how many; such a cell is NaN.
    pub missing: Vec<(String, usize)>,
}

/// A classifier's target as class indices into `classes` (the model's
/// order): a level by its name, a number as training wrote it (`-0` as
/// `0`). A value that is not one of the classes is refused, naming its row.
fn class_indices(
    name: &str,
    classes: &[String],
    values: Values,
    kind: &ColumnKind,
) -> Result<Vec<f64>, String> {
    let index = |shown: &str| classes.iter().position(|c| c == shown);
    let refuse = |row: usize, shown: &str| {
        format!(
            "target {} of row {} is {}, not one of the model's classes ({})",
            quoted(name),
            row + 1,
            quoted(shown),
            crate::core::table::names_of(classes.iter().map(String::as_str))
        )
    };
    match (values, kind) {
        (Values::Numeric(v), _) => v
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let shown = crate::core::table::number_as_level(*x);
                index(&shown)
                    .map(|k| k as f64)
                    .ok_or_else(|| refuse(i, &shown))
            })
            .collect(),
        (Values::Categorical(codes), ColumnKind::Categorical { levels }) => {
            let to_class: Vec<Option<usize>> = levels.iter().map(|l| index(l)).collect();
            codes
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    to_class[c as usize]
                        .map(|k| k as f64)
                        .ok_or_else(|| refuse(i, &levels[c as usize]))
                })
                .collect()
        }
        (Values::Categorical(_), ColumnKind::Numeric) => {
            unreachable!("a categorical column has levels")
        }
    }
}

impl OwnData {
    /// Lines `table` up with `model` (see the module doc for what is
    /// refused). Consumes the table: its columns are kept, not copied.
    pub fn new(table: Table, model: &TabularModel) -> Result<OwnData, String> {
        let Table {
            mut columns,
            omitted,
            sha256,
            ..
        } = table;
        let mut take = |name: &str, what: &str| {
            let at = columns
                .iter()
                .position(|c| c.schema.name == name)
                .ok_or_else(|| {
                    format!(
                        "the model's {what} {} is not a column of the data",
                        quoted(name)
                    )
                })?;
            Ok::<_, String>(columns.swap_remove(at))
        };
        let target = take(&model.target.name, "target")?;
        let targets = match (model.classes(), target.values) {
            (None, Values::Numeric(v)) => v,
            (None, Values::Categorical(_)) => {
                return Err(format!(
                    "target {} has a value that is not a number; the model is a regression",
                    quoted(&model.target.name)
                ))
            }
            (Some(classes), values) => {
                class_indices(&model.target.name, classes, values, &target.schema.kind)?
            }
        };
        if let Some(i) = targets.iter().position(|y| y.abs() > MAX_ABS_VALUE) {
            return Err(format!(
                "target {} of row {} is {:e}, beyond ±{MAX_ABS_VALUE:e}",
                quoted(&model.target.name),
                i + 1,
                targets[i]
            ));
        }
        let width = model.features.len();
        let mut cells = vec![0.0; targets.len() * width];
        let mut unseen = Vec::new();
        let mut extra = vec![Vec::new(); width];
        for (j, f) in model.features.iter().enumerate() {
            let c = take(&f.column.name, "feature")?;
            let name = quoted(&f.column.name);
            let mut put = |values: &mut dyn Iterator<Item = f64>| {
                for (i, v) in values.enumerate() {
                    cells[i * width + j] = v;
                }
            };
            match (&f.column.kind, c.values, &c.schema.kind) {
                (ColumnKind::Numeric, Values::Numeric(v), _) => put(&mut v.into_iter()),
                (ColumnKind::Numeric, Values::Categorical(_), _) => {
                    return Err(format!(
                        "column {name} is numeric in the model, but the data reads it as \
                         categorical (data.categorical names it)"
                    ))
                }
                (
                    ColumnKind::Categorical { levels: trained },
                    Values::Categorical(codes),
                    ColumnKind::Categorical { levels },
                ) => {
                    let to_model: Vec<f64> = levels
                        .iter()
                        .map(|l| {
                            let i = trained.iter().position(|t| t == l).unwrap_or_else(|| {
                                extra[j].push(l.clone());
                                trained.len() + extra[j].len() - 1
                            });
                            i as f64
                        })
                        .collect();
                    // A missing cell (data.missing = "keep") is NaN.
                    let value = |c: u32| match c {
                        MISSING_CODE => f64::NAN,
                        c => to_model[c as usize],
                    };
                    let past = trained.len() as f64;
                    let n = codes.iter().filter(|&&c| value(c) >= past).count();
                    if n > 0 {
                        unseen.push((f.column.name.clone(), n));
                    }
                    put(&mut codes.iter().map(|&c| value(c)));
                }
                (ColumnKind::Categorical { .. }, _, _) => {
                    return Err(format!(
                        "column {name} is categorical in the model: name it in data.categorical \
                         so that the data reads it so"
                    ))
                }
            }
        }
        let missing = (0..width)
            .filter_map(|j| {
                let n = (0..targets.len())
                    .filter(|i| cells[i * width + j].is_nan())
                    .count();
                (n > 0).then(|| (model.features[j].column.name.clone(), n))
            })
            .collect();
        let data = OwnData {
            cells,
            width,
            targets,
            names: model.feature_names(),
            levels: model
                .features
                .iter()
                .map(|f| match &f.column.kind {
                    ColumnKind::Categorical { levels } => Some(levels.clone()),
                    ColumnKind::Numeric => None,
                })
                .collect(),
            sha256,
            omitted,
            unseen,
            extra,
            missing,
        };
        data.check_predictions(model)?;
        Ok(data)
    }

    /// Every row's prediction is finite and within [`MAX_ABS_PREDICTION`].
    /// Not for an ONNX model: it is opened in the model's process only, and
    /// a row it cannot predict is left without a prediction there
    /// (`crate::model::actor`), counted unmatched.
    fn check_predictions(&self, model: &TabularModel) -> Result<(), String> {
        if model.is_onnx() {
            return Ok(());
        }
        for i in 0..self.len() {
            let p = model.predict_row(self.row(i));
            if p.is_nan() || p.abs() > MAX_ABS_PREDICTION {
                return Err(format!(
                    "the model's prediction for row {} is {p:e}, beyond ±{MAX_ABS_PREDICTION:e}: \
                     values too large for this model",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there are no rows (never: the reader refuses an empty file).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Row `i` in the order of the model's features.
    pub fn features(&self, i: usize) -> FeatureVector {
        FeatureVector::from_slice(self.row(i))
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.cells[i * self.width..(i + 1) * self.width]
    }

    /// The value of column `j` in row `i`.
    pub fn value(&self, i: usize, j: usize) -> f64 {
        self.cells[i * self.width + j]
    }

    /// The target of row `i`.
    pub fn target(&self, i: usize) -> f64 {
        self.targets[i]
    }
}
