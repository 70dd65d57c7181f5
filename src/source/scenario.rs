//! The scenario: how the source changes the stream from sample `start` on
//! (`source.scenario`, see `crate::config::scenario`), so that the monitor
//! has something real to find.
//!
//! A row's raw features are changed in raw units (`x * scale + shift`),
//! then mapped with the data's own scaling (`Dataset::scaling`), so the
//! model predicts on exactly the features it is sent and the wire carries
//! them; unchanged columns keep the data set's scaled values bit for bit.
//! The true target gets `target_bias` and Gaussian noise of std
//! `target_noise` (its own seeded generator, so the rows picked are the
//! same with and without noise). A population restricts the rows drawn
//! from `start` on; without one the row picker draws exactly as it would
//! without a scenario. [`Plan::new`] checks everything that needs the data
//! (known features, `sex` left alone, a population that is not empty) and
//! is what the config check runs. A setting that changes nothing is refused
//! too, naming its key, alone or beside a real change: a shift of 0, a
//! scale of 1 (or any that leaves every raw value of the column as it is),
//! a `target_bias` or `target_noise` given that leaves every target as it
//! is (0 among them: a target setting not given is `None`, one given as 0
//! is refused), a population that holds every row. Such a
//! scenario runs as an unshifted stream while its user believes it shifted
//! (issue 18, 2.9). Pure logic: the sampler applies it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::scenario::{Cut, Population, ScenarioSettings};
use crate::config::{ConfigError, SourceSettings};
use crate::core::data::{Dataset, FeatureVector, FEATURE_NAMES};
use crate::source::own::OwnData;

/// What a scenario reads of the data it changes: the diabetes data set,
/// or the user's own rows ([`OwnData`]), column by column in raw values
/// (a categorical column's value is its level's index).
pub trait Columns {
    fn rows(&self) -> usize;
    fn names(&self) -> Vec<&str>;
    /// The raw value of column `j` in `row`.
    fn raw(&self, row: usize, j: usize) -> f64;
    fn target(&self, row: usize) -> f64;
    /// The levels of a categorical column (`None`: a numeric one).
    fn levels(&self, j: usize) -> Option<&[String]>;
    /// The levels of a categorical column past the model's (see
    /// [`OwnData::extra`]): level `k` is value `levels.len() + k`.
    fn extra_levels(&self, _j: usize) -> &[String] {
        &[]
    }
    /// Why column `j` cannot be shifted or scaled, if it cannot.
    fn fixed(&self, j: usize) -> Option<&'static str>;
    /// The feature row of `row` with the raw values of `changed` (by
    /// column, `None`: unchanged) in place of the data's.
    fn features_with(&self, row: usize, changed: &[Option<f64>]) -> FeatureVector;
}

impl Columns for Dataset {
    fn rows(&self) -> usize {
        self.len()
    }
    fn names(&self) -> Vec<&str> {
        FEATURE_NAMES.to_vec()
    }
    fn raw(&self, row: usize, j: usize) -> f64 {
        self.raw[[row, j]]
    }
    fn target(&self, row: usize) -> f64 {
        self.targets[row]
    }
    fn levels(&self, _: usize) -> Option<&[String]> {
        None
    }
    fn fixed(&self, j: usize) -> Option<&'static str> {
        (FEATURE_NAMES[j] == "sex").then_some(
            "sex is a category (1 or 2), not a quantity: it cannot be shifted or scaled (a population cut on sex changes its mix)",
        )
    }
    /// Changed raw values are mapped with the data's own scaling; the
    /// others keep the scaled values bit for bit.
    fn features_with(&self, row: usize, changed: &[Option<f64>]) -> FeatureVector {
        let mut x = self.feature_row(row);
        for (j, raw) in changed.iter().enumerate() {
            if let Some(raw) = raw {
                x[j] = (raw - self.scaling.mean[j]) / self.scaling.scale[j];
            }
        }
        x
    }
}

impl Columns for OwnData {
    fn rows(&self) -> usize {
        self.len()
    }
    fn names(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }
    fn raw(&self, row: usize, j: usize) -> f64 {
        self.value(row, j)
    }
    fn target(&self, row: usize) -> f64 {
        OwnData::target(self, row)
    }
    fn levels(&self, j: usize) -> Option<&[String]> {
        self.levels[j].as_deref()
    }
    fn extra_levels(&self, j: usize) -> &[String] {
        &self.extra[j]
    }
    fn fixed(&self, _: usize) -> Option<&'static str> {
        None
    }
    fn features_with(&self, row: usize, changed: &[Option<f64>]) -> FeatureVector {
        let mut x = self.features(row);
        for (j, v) in changed.iter().enumerate() {
            if let Some(v) = v {
                x[j] = *v;
            }
        }
        x
    }
}

/// Largest |shift| (raw units) and |target_bias|, |target_noise|.
pub const MAX_OFFSET: f64 = 1e6;
/// Largest |scale|.
pub const MAX_FACTOR: f64 = 1e3;

/// A scenario setting that cannot be used, with its key below
/// `source.scenario` (e.g. `shift.bmi`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("source.scenario.{key}: {problem}")]
pub struct ScenarioError {
    pub key: String,
    pub problem: String,
}

fn error(key: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
    ScenarioError {
        key: crate::core::text::sanitize(&key.into()),
        problem: problem.into(),
    }
}

/// The scenario resolved against the data: per column the raw change, the
/// target change, the rows of the population.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub start: u64,
    /// Per column `(factor, offset)`: raw `x` becomes `x * factor + offset`.
    pub changes: Vec<Option<(f64, f64)>>,
    /// Per column the level every row takes (its value: the level's index
    /// among the model's levels, or past them for another).
    pub sets: Vec<Option<f64>>,
    pub target_bias: f64,
    pub target_noise: f64,
    /// The rows drawn from `start` on (`None`: all of them).
    pub rows: Option<Vec<usize>>,
}

/// `v` as a user wrote it: plain when that is short, else in `e` notation
/// (`{}` prints 1e-300 with 300 zeros).
fn shown(v: f64) -> String {
    if v == 0.0 || (1e-4..1e15).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// The index of a feature name.
fn feature<D: Columns + ?Sized>(data: &D, key: &str, name: &str) -> Result<usize, ScenarioError> {
    let names = data.names();
    names.iter().position(|f| *f == name).ok_or_else(|| {
        error(
            key,
            format!(
                "unknown feature {:?}: one of {}",
                crate::core::text::sanitize(name),
                crate::core::text::bounded_text(&names.join(", "), 512)
            ),
        )
    })
}

/// A numeric column's index: a categorical one takes a level (`set`).
fn numeric<D: Columns + ?Sized>(data: &D, key: &str, name: &str) -> Result<usize, ScenarioError> {
    let j = feature(data, key, name)?;
    if data.levels(j).is_some() {
        return Err(error(
            key,
            format!(
                "{} is categorical: give it a level (set, {0}=LEVEL on the command line)",
                crate::core::text::sanitize(name)
            ),
        ));
    }
    Ok(j)
}

/// The median of a raw column (the mean of the two middle values for an
/// even count, as numpy's `median`).
pub fn median<D: Columns + ?Sized>(data: &D, column: usize) -> f64 {
    let mut v: Vec<f64> = (0..data.rows()).map(|i| data.raw(i, column)).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The meaning of `source.scenario` against the diabetes data set (known
/// features, a population that exists), as a configuration error naming
/// the key (`source.scenario.<key>`): run by the settings loader after the
/// shape checks ([`crate::config::Semantics`]). A scenario of the user's
/// own data is checked once its file is read ([`ScenarioError::as_config`]).
pub fn check_settings(s: &SourceSettings) -> Result<(), ConfigError> {
    if let Some(scenario) = &s.scenario {
        Plan::new(scenario, Dataset::embedded()).map_err(|e| e.as_config())?;
    }
    Ok(())
}

impl ScenarioError {
    /// The error as a configuration error naming `source.scenario.<key>`.
    pub fn as_config(&self) -> ConfigError {
        ConfigError::invalid(&format!("source.scenario.{}", self.key), &self.problem)
    }
}

/// Per column the `(factor, offset)` of `scale` and `shift`, each checked
/// (scales first, then shifts, each map in its order).
fn feature_changes<D: Columns + ?Sized>(
    s: &ScenarioSettings,
    data: &D,
) -> Result<Vec<Option<(f64, f64)>>, ScenarioError> {
    let mut changes = vec![None; data.names().len()];
    for (kind, map) in [("scale", &s.scale), ("shift", &s.shift)] {
        for (name, &v) in map {
            let j = checked_change(kind, name, v, data)?;
            let (factor, offset) = changes[j].unwrap_or((1.0, 0.0));
            changes[j] = Some(if kind == "scale" {
                (v, offset)
            } else {
                (factor, v)
            });
        }
    }
    Ok(changes)
}

/// The column of one `scale.<name>` or `shift.<name>` (`kind`) of `v`:
/// a known numeric feature that may change (not diabetes' `sex`), a finite
/// value within its bound, and a change that moves at least one raw value.
fn checked_change<D: Columns + ?Sized>(
    kind: &str,
    name: &str,
    v: f64,
    data: &D,
) -> Result<usize, ScenarioError> {
    let key = format!("{kind}.{name}");
    let j = numeric(data, &key, name)?;
    if let Some(why) = data.fixed(j) {
        return Err(error(key, why));
    }
    let bound = if kind == "scale" {
        MAX_FACTOR
    } else {
        MAX_OFFSET
    };
    if !(v.is_finite() && v.abs() <= bound) {
        return Err(error(
            key,
            format!("must be a finite number within ±{bound}, got {}", shown(v)),
        ));
    }
    // A change that leaves every raw value of the column as it
    // is (0 added, times 1, or too small to move a value).
    let change = if kind == "scale" { (v, 0.0) } else { (1.0, v) };
    if (0..data.rows())
        .map(|i| data.raw(i, j))
        .all(|x| x * change.0 + change.1 == x)
    {
        return Err(error(
            key,
            format!(
                "{} {name} by {} changes no value of it: the scenario would run unshifted",
                if kind == "scale" {
                    "scaling"
                } else {
                    "shifting"
                },
                shown(v)
            ),
        ));
    }
    Ok(j)
}

/// The level each `set.<name>` gives its categorical column, as the value
/// the model reads (its index, or an index past the model's levels for a
/// level it never saw, which the model reads as none: a
/// new category), and that it changes at least one row.
fn level_sets<D: Columns + ?Sized>(
    s: &ScenarioSettings,
    data: &D,
) -> Result<Vec<Option<f64>>, ScenarioError> {
    let mut sets = vec![None; data.names().len()];
    for (name, level) in &s.set {
        let key = format!("set.{name}");
        let j = feature(data, &key, name)?;
        let Some(levels) = data.levels(j) else {
            return Err(error(
                key,
                format!(
                    "{} is numeric: shift or scale it (+=, -=, *= on the command line)",
                    crate::core::text::sanitize(name)
                ),
            ));
        };
        let level = level.trim();
        if level.is_empty() || level.len() > crate::core::table::MAX_LEVEL_BYTES {
            return Err(error(
                key,
                format!(
                    "must be a level of 1 to {} bytes",
                    crate::core::table::MAX_LEVEL_BYTES
                ),
            ));
        }
        // A level the model never saw: its index past the model's levels
        // (the data's own, or the next one: see `WireSchema::extra`).
        let extra = data.extra_levels(j);
        let v = levels
            .iter()
            .chain(extra)
            .position(|l| l == level)
            .unwrap_or(levels.len() + extra.len()) as f64;
        if (0..data.rows()).all(|i| data.raw(i, j) == v) {
            return Err(error(
                key,
                "every row already has this level: the scenario would run unshifted",
            ));
        }
        sets[j] = Some(v);
    }
    Ok(sets)
}

/// `target_bias` (0 when not given), checked when given.
fn target_bias<D: Columns + ?Sized>(given: Option<f64>, data: &D) -> Result<f64, ScenarioError> {
    if let Some(b) = given {
        if !(b.is_finite() && b.abs() <= MAX_OFFSET) {
            return Err(error(
                "target_bias",
                format!(
                    "must be a finite number within ±{MAX_OFFSET}, got {}",
                    shown(b)
                ),
            ));
        }
        if (0..data.rows()).map(|i| data.target(i)).all(|y| y + b == y) {
            return Err(error(
                "target_bias",
                format!(
                    "{} changes no target (as target+={0} on the command line): the scenario would run unshifted",
                    shown(b + 0.0) // -0 shown as 0
                ),
            ));
        }
    }
    Ok(given.unwrap_or(0.0))
}

/// `target_noise` (0 when not given), checked when given.
fn target_noise<D: Columns + ?Sized>(given: Option<f64>, data: &D) -> Result<f64, ScenarioError> {
    if let Some(n) = given {
        if !(n.is_finite() && (0.0..=MAX_OFFSET).contains(&n)) {
            return Err(error(
                "target_noise",
                format!(
                    "must be a standard deviation between 0 and {MAX_OFFSET}, got {}",
                    shown(n)
                ),
            ));
        }
        // A draw of [`standard_normal`] is within ±8.6 (its u1 is at
        // least 2^-53): noise that cannot move any target (0 among
        // them) changes nothing.
        if (0..data.rows())
            .map(|i| data.target(i))
            .all(|y| y + 8.6 * n == y && y - 8.6 * n == y)
        {
            return Err(error(
                "target_noise",
                format!(
                    "{} changes no target (as target~={0} on the command line): the scenario would run unshifted",
                    shown(n)
                ),
            ));
        }
    }
    Ok(given.unwrap_or(0.0))
}

/// One cut of `population.<key>` on column `j`: a finite number, or
/// `"median"` (the column's median).
fn cut<D: Columns + ?Sized>(
    key: &str,
    c: &Option<Cut>,
    data: &D,
    j: usize,
) -> Result<Option<f64>, ScenarioError> {
    match c {
        None => Ok(None),
        Some(Cut::Value(v)) if v.is_finite() => Ok(Some(*v)),
        Some(Cut::Value(v)) => Err(error(
            format!("population.{key}"),
            format!("must be a finite number or \"median\", got {}", shown(*v)),
        )),
        Some(Cut::Word(w)) if w == "median" => Ok(Some(median(data, j))),
        Some(Cut::Word(w)) => Err(error(
            format!("population.{key}"),
            format!(
                "must be a number or \"median\", got {:?}",
                crate::core::text::sanitize(w)
            ),
        )),
    }
}

/// The rows of the population: at least one cut, and neither none nor
/// every row of the data.
fn population_rows<D: Columns + ?Sized>(
    p: &Population,
    data: &D,
) -> Result<Vec<usize>, ScenarioError> {
    let j = numeric(data, "population.feature", &p.feature)?;
    let above = cut("above", &p.above, data, j)?;
    let below = cut("below", &p.below, data, j)?;
    if above.is_none() && below.is_none() {
        return Err(error(
            "population",
            "give above, below or both (a number or \"median\")",
        ));
    }
    let rows: Vec<usize> = (0..data.rows())
        .filter(|&i| {
            let x = data.raw(i, j);
            above.is_none_or(|a| x > a) && below.is_none_or(|b| x < b)
        })
        .collect();
    // The population as the data names it, e.g. "bmi > 31.2".
    let condition = [
        above.map(|a| format!("> {}", shown(a))),
        below.map(|b| format!("< {}", shown(b))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    if rows.is_empty() {
        return Err(error(
            "population",
            format!(
                "no row of the data has {} {condition}: the population is empty",
                p.feature
            ),
        ));
    }
    if rows.len() == data.rows() {
        return Err(error(
            "population",
            format!(
                "every row of the data has {} {condition}: the population is the whole data set, and the scenario would run unshifted",
                p.feature
            ),
        ));
    }
    Ok(rows)
}

impl Plan {
    /// Checks `s` against `data` and resolves it: the feature changes, the
    /// target's bias and noise, the population, in that order (the first
    /// error found is the one answered), and then that something changes.
    pub fn new<D: Columns + ?Sized>(s: &ScenarioSettings, data: &D) -> Result<Plan, ScenarioError> {
        let changes = feature_changes(s, data)?;
        let sets = level_sets(s, data)?;
        // A target setting that was given is checked even beside a real
        // change elsewhere: one that changes nothing (0, or too small to
        // move a target) is refused naming its own key.
        let bias = target_bias(s.target_bias, data)?;
        let noise = target_noise(s.target_noise, data)?;
        let rows = match &s.population {
            None => None,
            Some(p) => Some(population_rows(p, data)?),
        };
        if changes.iter().all(Option::is_none)
            && sets.iter().all(Option::is_none)
            && bias == 0.0
            && noise == 0.0
            && rows.is_none()
        {
            return Err(error(
                "shift",
                "the scenario changes nothing: give a shift, scale, set, target_bias, target_noise or population",
            ));
        }
        Ok(Plan {
            start: s.start,
            changes,
            sets,
            target_bias: bias,
            target_noise: noise,
            rows,
        })
    }

    /// The features of `row` (as the model reads them) with the changes
    /// applied.
    pub fn features<D: Columns + ?Sized>(&self, data: &D, row: usize) -> FeatureVector {
        let changed: Vec<Option<f64>> = self
            .changes
            .iter()
            .zip(&self.sets)
            .enumerate()
            .map(|(j, (change, set))| match (change, set) {
                (Some((factor, offset)), _) => Some(data.raw(row, j) * factor + offset),
                (None, Some(v)) => Some(*v),
                (None, None) => None,
            })
            .collect();
        data.features_with(row, &changed)
    }

    /// The row to draw: from the population if there is one, else any row
    /// (the same draw as without a scenario).
    pub fn pick_row(&self, rng: &mut StdRng, n_rows: usize) -> usize {
        match &self.rows {
            Some(rows) => rows[rng.random_range(0..rows.len())],
            None => rng.random_range(0..n_rows),
        }
    }
}

/// A [`Plan`] with the generator of its target noise.
#[derive(Debug)]
pub struct Scenario {
    pub plan: Plan,
    noise: StdRng,
}

impl Scenario {
    /// The noise is seeded from `seed` (a stream of its own), random without.
    pub fn new(plan: Plan, seed: Option<u64>) -> Scenario {
        let noise = match seed {
            // Any fixed change of the seed gives a stream independent of the row picker's.
            Some(s) => StdRng::seed_from_u64(s ^ 0x5CE4_A210_0000_0001),
            None => StdRng::from_os_rng(),
        };
        Scenario { plan, noise }
    }

    /// The changed truth of a sample whose true target is `y`.
    pub fn target(&mut self, y: f64) -> f64 {
        let mut out = y + self.plan.target_bias;
        if self.plan.target_noise > 0.0 {
            out += self.plan.target_noise * standard_normal(&mut self.noise);
        }
        out
    }
}

/// One draw of N(0, 1) (Box–Muller).
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    // 1 - [0, 1) is (0, 1]: the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::scenario::{parse_spec, Population};
    use crate::core::data::N_FEATURES;

    fn plan(spec: &str) -> Result<Plan, ScenarioError> {
        Plan::new(&parse_spec(spec).unwrap(), Dataset::embedded())
    }

    #[test]
    fn a_shifted_bmi_is_the_scaled_raw_plus_five() {
        let d = Dataset::embedded();
        let p = plan("bmi+=5").unwrap();
        let bmi = FEATURE_NAMES.iter().position(|f| *f == "bmi").unwrap();
        for row in [0, 17, 441] {
            let x = p.features(d, row);
            // The data's own scaling of the raw row with bmi + 5.
            let mut raw = d.raw.row(row).to_owned().insert_axis(ndarray::Axis(0));
            raw[[0, bmi]] += 5.0;
            let expected = d.scaling.apply(&raw);
            for j in 0..N_FEATURES {
                assert!((x[j] - expected[[0, j]]).abs() < 1e-15, "row {row} col {j}");
                if j != bmi {
                    assert_eq!(x[j], d.features[[row, j]], "unchanged columns are exact");
                }
            }
            // 5 raw units of bmi are 5 / (std · √n) scaled units.
            let step = x[bmi] - d.features[[row, bmi]];
            assert!((step - 5.0 / d.scaling.scale[bmi]).abs() < 1e-12);
        }
    }

    #[test]
    fn scale_applies_before_shift() {
        let d = Dataset::embedded();
        let p = plan("s5*=1.2,s5+=0.1").unwrap();
        let j = 8;
        let raw = d.raw[[3, j]] * 1.2 + 0.1;
        assert_eq!(
            p.features(d, 3)[j],
            (raw - d.scaling.mean[j]) / d.scaling.scale[j]
        );
    }

    #[test]
    fn the_population_is_the_rows_above_the_median() {
        let d = Dataset::embedded();
        // /work/venv-sci/bin/python -c "import numpy as np;
        //   a=np.loadtxt('data/diabetes.csv',delimiter=',',skiprows=1)[:,0];
        //   print(np.median(a), (a>np.median(a)).sum())"  ->  50.0 215
        assert_eq!(median(d, 0), 50.0);
        let p = plan("age>median").unwrap();
        let rows = p.rows.as_ref().unwrap();
        assert_eq!(rows.len(), 215);
        assert!(rows.iter().all(|&r| d.raw[[r, 0]] > 50.0));
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            assert!(d.raw[[p.pick_row(&mut rng, d.len()), 0]] > 50.0);
        }
        // Without a population the draw is the sampler's own.
        let p = plan("bmi+=1").unwrap();
        let (mut a, mut b) = (StdRng::seed_from_u64(9), StdRng::seed_from_u64(9));
        for _ in 0..100 {
            assert_eq!(p.pick_row(&mut a, 442), b.random_range(0..442));
        }
    }

    #[test]
    fn the_target_gets_bias_and_seeded_noise_of_the_given_std() {
        let p = plan("target+=10").unwrap();
        let mut s = Scenario::new(p, Some(1));
        assert_eq!(s.target(151.0), 161.0);
        let p = plan("target~=20").unwrap();
        let (mut a, mut b) = (Scenario::new(p.clone(), Some(4)), Scenario::new(p, Some(4)));
        let n = 100_000;
        let draws: Vec<f64> = (0..n).map(|_| a.target(100.0) - 100.0).collect();
        assert!(
            draws.iter().all(|d| *d == b.target(100.0) - 100.0),
            "seeded"
        );
        let mean = draws.iter().sum::<f64>() / n as f64;
        let std = (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        // Standard errors: 20/√n = 0.063 for the mean, 20/√(2n) = 0.045 for the std.
        assert!(mean.abs() < 0.3, "{mean}");
        assert!((std - 20.0).abs() < 0.25, "{std}");
    }

    #[test]
    fn bad_scenarios_name_their_key() {
        for (spec, key) in [
            ("bmj+=5", "shift.bmj"),
            ("sex+=1", "shift.sex"),
            ("sex*=2", "scale.sex"),
            ("bmi+=1e9", "shift.bmi"),
            ("bmi*=1e9", "scale.bmi"),
            ("target~=-1", "target_noise"),
            ("target+=1e300", "target_bias"),
            ("agx>median", "population.feature"),
            ("age>1000", "population"),
            ("age>1e300", "population"),
            ("age>60,age<40", "population"),
            ("start=5", "shift"),
            // Issue 18, 2.9: settings that change nothing.
            ("bmi+=0", "shift.bmi"),
            ("bmi-=0", "shift.bmi"),
            ("bmi*=1", "scale.bmi"),
            ("bmi+=1e-300", "shift.bmi"),
            ("bmi*=1,bmi+=5", "scale.bmi"),
            ("target+=1e-300", "target_bias"),
            ("target~=1e-300", "target_noise"),
            // A target setting that changes nothing is refused on its own
            // and beside a real change, naming its own key.
            ("target+=0", "target_bias"),
            ("target-=0", "target_bias"),
            ("target~=0", "target_noise"),
            ("s5*=1.2,target+=0", "target_bias"),
            ("bmi+=1,target~=0", "target_noise"),
            ("age>median,target-=0", "target_bias"),
            ("age>-1", "population"),
            ("age<1000", "population"),
            // A level for a numeric column (the diabetes data has none).
            ("bmi=5", "set.bmi"),
        ] {
            let e = plan(spec).unwrap_err();
            assert_eq!(e.key, key, "{spec}: {e}");
            assert!(e.to_string().len() < 300, "{spec}: {e}");
        }
        let s = ScenarioSettings {
            population: Some(Population {
                feature: "age".into(),
                above: Some(Cut::Word("mean".into())),
                below: None,
            }),
            shift: BTreeMap::new(),
            ..ScenarioSettings::default()
        };
        let e = Plan::new(&s, Dataset::embedded()).unwrap_err();
        assert_eq!(e.key, "population.above");
        let s = ScenarioSettings {
            population: Some(Population {
                feature: "age".into(),
                above: None,
                below: None,
            }),
            ..ScenarioSettings::default()
        };
        assert_eq!(
            Plan::new(&s, Dataset::embedded()).unwrap_err().key,
            "population"
        );
    }
}
