//! Alert rules: when a closed window's figure crosses a threshold for long
//! enough, say so once; when it is back for long enough, say that once.
//!
//! A rule watches one metric of a [`WindowReport`] (see [`Metric`] for the
//! names), compares it with `>` or `<` against a threshold given as an
//! absolute `value`, `relative` to the baseline mean (Evidently's ±10%
//! style) or in baseline standard deviations (`sigmas`, NannyML's ±3σ
//! style), resolved once against the [`Baseline`] when [`Rules::new`]
//! builds the set. It fires after `for` windows in a row breach and
//! resolves after `resolve_after` windows in a row do not: between the two
//! nothing is said, so a value that alternates around the threshold never
//! flaps. A value that is missing (NaN R², no drift figures yet, an empty
//! time window) neither breaches nor clears: the streaks are left as they
//! are. A `drift.*`-style metric expands to one rule per feature, named
//! `<name>:<feature>`.
//!
//! [`validate`] is what `[monitor]`'s config check runs: it refuses
//! unknown metrics and features, anything but exactly one threshold form,
//! `relative`/`sigmas` on a metric without a baseline band, thresholds
//! that can never be met (or are always met), and absurd hold counts.
//! Pure logic: the monitor actor owns a [`Rules`] and does the I/O.

use std::collections::HashSet;

use crate::config::monitor::{Op, RuleSettings};
use crate::config::{ConfigError, MonitorSettings};
use crate::model::baseline::{Band, Baseline};
use crate::monitor::classification::ClassificationWindow;
use crate::monitor::report::{AlertEvent, Drift, WindowReport, WindowStats};

/// Longest rule name: it is a Prometheus label and a CSV cell.
pub const MAX_NAME_BYTES: usize = 64;

/// Most windows a rule may wait to fire or resolve.
pub const MAX_HOLD: u32 = 1000;

/// Largest `relative` or `sigmas`.
pub const MAX_FACTOR: f64 = 100.0;

/// A rule that cannot be used: its index in the list, the field at fault
/// (empty: the rule as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule {index} ({field}): {problem}")]
pub struct RuleError {
    pub index: usize,
    pub field: &'static str,
    pub problem: String,
}

/// What bounds the values of some metrics: `count` is exactly `window` (a
/// count window closes when it holds `window` records, so a rule on it is
/// always or never met and is refused), `period.count` at most
/// `max_period_rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub window: usize,
    pub max_period_rows: usize,
}

impl Limits {
    /// No bound known (the baseline is checked, not the sizes).
    pub const NONE: Limits = Limits {
        window: usize::MAX,
        max_period_rows: usize::MAX,
    };
}

/// A figure of [`WindowStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Mae,
    Rmse,
    R2,
    Bias,
    MaxError,
    Count,
}

impl Stat {
    const ALL: [(&'static str, Stat); 6] = [
        ("mae", Stat::Mae),
        ("rmse", Stat::Rmse),
        ("r2", Stat::R2),
        ("bias", Stat::Bias),
        ("max_error", Stat::MaxError),
        ("count", Stat::Count),
    ];

    fn of(self, w: &WindowStats) -> f64 {
        match self {
            Stat::Mae => w.mae,
            Stat::Rmse => w.rmse,
            Stat::R2 => w.r2,
            Stat::Bias => w.bias,
            Stat::MaxError => w.max_error,
            Stat::Count => w.count as f64,
        }
    }

    fn band(self, b: &Baseline) -> Option<&Band> {
        match self {
            Stat::Mae => Some(&b.mae),
            Stat::Rmse => Some(&b.rmse),
            Stat::R2 => Some(&b.r2),
            Stat::Bias => Some(&b.bias),
            Stat::MaxError => Some(&b.max_error),
            Stat::Count => None,
        }
    }
}

/// A figure of a classifier's window ([`ClassificationWindow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassStat {
    Accuracy,
    LogLoss,
    RocAuc,
    Precision,
    Recall,
    F1,
    Brier,
}

impl ClassStat {
    /// In the order of [`crate::model::baseline::ClassificationBands::named`].
    const ALL: [(&'static str, ClassStat); 7] = [
        ("accuracy", ClassStat::Accuracy),
        ("log_loss", ClassStat::LogLoss),
        ("roc_auc", ClassStat::RocAuc),
        ("precision", ClassStat::Precision),
        ("recall", ClassStat::Recall),
        ("f1", ClassStat::F1),
        ("brier", ClassStat::Brier),
    ];

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|(_, s)| *s == self)
            .expect("listed")
    }

    fn of(self, w: &ClassificationWindow) -> f64 {
        w.figures()[self.index()].1.unwrap_or(f64::NAN)
    }
}

/// A figure of a feature's (or the predictions') [`Drift`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftStat {
    /// 1 when the test rejected (Bonferroni-corrected), else 0.
    Drift,
    PValue,
    Psi,
    Wasserstein,
    /// Rows of the window with a level of a categorical column the
    /// training data never had (none for a numeric column).
    Unseen,
    /// The share of the window's rows whose value of a column of the
    /// user's data is missing.
    Missing,
}

impl DriftStat {
    const ALL: [(&'static str, DriftStat); 6] = [
        ("drift", DriftStat::Drift),
        ("p_value", DriftStat::PValue),
        ("psi", DriftStat::Psi),
        ("wasserstein", DriftStat::Wasserstein),
        ("unseen", DriftStat::Unseen),
        ("missing", DriftStat::Missing),
    ];

    fn of(self, d: &Drift) -> f64 {
        match self {
            DriftStat::Drift => f64::from(u8::from(d.drifted)),
            DriftStat::PValue => d.p_value,
            DriftStat::Psi => d.psi,
            DriftStat::Wasserstein => d.wasserstein,
            DriftStat::Unseen => d.unseen.map_or(f64::NAN, |n| n as f64),
            DriftStat::Missing => d.missing.unwrap_or(f64::NAN),
        }
    }
}

/// Whose drift: a feature column (its name, interned:
/// [`crate::core::text::intern`]) or the predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Feature(&'static str),
    Prediction,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Feature(name) => name,
            Subject::Prediction => "prediction",
        }
    }
}

/// The feature columns rules may name: the data's, once they are known;
/// `None` while they are not (the config of a run of the user's own data
/// is checked before its file is read: any name passes then, and
/// [`Rules::new`] checks it against the data).
pub type Features<'a> = Option<&'a [&'static str]>;

/// What a rule watches. Names: `mae rmse r2 bias max_error count` (the
/// count window), the same after `period.` (the time window),
/// `drift_share`, `dataset_drift` (0 or 1), and `drift.<name>` (0 or 1),
/// `p_value.<name>`, `psi.<name>`, `wasserstein.<name>` where `<name>` is
/// a feature or `prediction`, `unseen.<name>` (rows with a level the
/// training data never had, for a categorical column of the user's data),
/// `missing.<name>` (the share of rows missing the column's value),
/// and a classifier's window figures `accuracy log_loss roc_auc precision
/// recall f1 brier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Window(Stat),
    Period(Stat),
    DriftShare,
    DatasetDrift,
    Drift(DriftStat, Subject),
    /// A classifier's window figure.
    Class(ClassStat),
}

/// A metric as written: one, or `<stat>.*` for every feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    One(Metric),
    EachFeature(DriftStat),
}

/// Parses a metric name (see [`Metric`]) naming one of `features`; the
/// error says what is known.
pub fn parse_metric(name: &str, features: Features) -> Result<Pattern, String> {
    let stat = |s: &str| Stat::ALL.iter().find(|(n, _)| *n == s).map(|(_, v)| *v);
    if let Some(s) = stat(name) {
        return Ok(Pattern::One(Metric::Window(s)));
    }
    if let Some((_, c)) = ClassStat::ALL.iter().find(|(n, _)| *n == name) {
        return Ok(Pattern::One(Metric::Class(*c)));
    }
    match name {
        "drift_share" => return Ok(Pattern::One(Metric::DriftShare)),
        "dataset_drift" => return Ok(Pattern::One(Metric::DatasetDrift)),
        _ => {}
    }
    let shown = crate::core::text::sanitize(name);
    if let Some((head, tail)) = name.split_once('.') {
        if head == "period" {
            return stat(tail)
                .map(|s| Pattern::One(Metric::Period(s)))
                .ok_or_else(|| {
                    format!("unknown metric {shown:?}: after period. comes one of mae, rmse, r2, bias, max_error, count")
                });
        }
        if let Some((_, d)) = DriftStat::ALL.iter().find(|(n, _)| *n == head) {
            if tail == "*" {
                return Ok(Pattern::EachFeature(*d));
            }
            if tail == "prediction" {
                return Ok(Pattern::One(Metric::Drift(*d, Subject::Prediction)));
            }
            let found = match features {
                Some(names) => names.iter().find(|f| **f == tail).copied(),
                None => crate::core::text::intern(tail),
            };
            return found
                .map(|f| Pattern::One(Metric::Drift(*d, Subject::Feature(f))))
                .ok_or_else(|| {
                    let known = features.unwrap_or_default();
                    let mut listed = crate::core::text::bounded_text(&known.join(", "), 512);
                    if listed.is_empty() {
                        listed = "no feature".into();
                    }
                    format!(
                        "unknown feature in {shown:?}: after {head}. comes one of {listed}, prediction or *"
                    )
                });
        }
    }
    Err(format!(
        "unknown metric {shown:?}: one of mae, rmse, r2, bias, max_error, count, period.<that>, drift_share, dataset_drift, drift.<feature>, p_value.<feature>, psi.<feature>, wasserstein.<feature>, unseen.<feature>, missing.<feature> (a feature name, prediction or *), and a classifier's accuracy, log_loss, roc_auc, precision, recall, f1, brier"
    ))
}

impl Metric {
    /// The name rules and events use, e.g. `period.mae`, `drift.bmi`.
    pub fn name(&self) -> String {
        let stat = |s: Stat| Stat::ALL.iter().find(|(_, v)| *v == s).unwrap().0;
        match *self {
            Metric::Window(s) => stat(s).to_owned(),
            Metric::Period(s) => format!("period.{}", stat(s)),
            Metric::DriftShare => "drift_share".to_owned(),
            Metric::DatasetDrift => "dataset_drift".to_owned(),
            Metric::Class(c) => ClassStat::ALL[c.index()].0.to_owned(),
            Metric::Drift(d, who) => {
                let d = DriftStat::ALL.iter().find(|(_, v)| *v == d).unwrap().0;
                format!("{d}.{}", who.name())
            }
        }
    }

    /// The values the metric can take, `lo..=hi`.
    fn range(&self, limits: Limits) -> (f64, f64) {
        let stat = |s: Stat, most: usize| match s {
            Stat::Mae | Stat::Rmse | Stat::MaxError => (0.0, f64::INFINITY),
            Stat::R2 => (f64::NEG_INFINITY, 1.0),
            Stat::Bias => (f64::NEG_INFINITY, f64::INFINITY),
            Stat::Count => (0.0, most as f64),
        };
        match *self {
            // Every closed count window holds exactly `window` records.
            Metric::Window(Stat::Count) if limits.window != usize::MAX => {
                (limits.window as f64, limits.window as f64)
            }
            Metric::Window(s) => stat(s, limits.window),
            Metric::Period(s) => stat(s, limits.max_period_rows),
            Metric::DriftShare | Metric::DatasetDrift => (0.0, 1.0),
            Metric::Drift(DriftStat::Drift | DriftStat::PValue | DriftStat::Missing, _) => {
                (0.0, 1.0)
            }
            Metric::Drift(DriftStat::Psi | DriftStat::Wasserstein, _) => (0.0, f64::INFINITY),
            Metric::Drift(DriftStat::Unseen, _) => (0.0, limits.window as f64),
            Metric::Class(ClassStat::LogLoss) => (0.0, f64::INFINITY),
            Metric::Class(ClassStat::Brier) => (0.0, 2.0),
            Metric::Class(_) => (0.0, 1.0),
        }
    }

    /// The baseline band of the metric, if it has one.
    fn band<'a>(&self, b: &'a Baseline) -> Option<&'a Band> {
        match *self {
            Metric::Window(s) | Metric::Period(s) => s.band(b),
            Metric::Class(c) => b
                .classification
                .as_ref()
                .map(|bands| bands.named()[c.index()].1),
            _ => None,
        }
    }

    fn has_band(&self) -> bool {
        matches!(self, Metric::Window(s) | Metric::Period(s) if *s != Stat::Count)
            || matches!(self, Metric::Class(_))
    }

    /// The metric's value in `r`; `None` when it has none (NaN R², an empty
    /// window, no drift figures yet).
    pub fn value(&self, r: &WindowReport) -> Option<f64> {
        let v = match *self {
            Metric::Window(s) => (r.window.count > 0 || s == Stat::Count).then(|| s.of(&r.window)),
            Metric::Period(s) => (r.period.count > 0 || s == Stat::Count).then(|| s.of(&r.period)),
            Metric::DriftShare => r.drift_share,
            Metric::DatasetDrift => r.dataset_drift.map(|d| f64::from(u8::from(d))),
            Metric::Class(c) => r.classification.as_ref().map(|w| c.of(w)),
            Metric::Drift(d, Subject::Prediction) => r.prediction.as_ref().map(|p| d.of(p)),
            Metric::Drift(d, Subject::Feature(name)) => {
                r.features.iter().find(|f| f.name == name).map(|f| d.of(f))
            }
        };
        v.filter(|v| !v.is_nan())
    }
}

/// The threshold as written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    Value(f64),
    Relative(f64),
    Sigmas(f64),
}

/// Why `m` never has a value, if it does not: levels never seen belong to
/// a categorical column, a Wasserstein distance to a numeric one.
fn never_has_a_value(m: Metric, categorical: &[&str]) -> Option<&'static str> {
    match m {
        Metric::Drift(DriftStat::Unseen, Subject::Prediction) => {
            Some("unseen levels are counted for a categorical feature column")
        }
        Metric::Drift(DriftStat::Missing, Subject::Prediction) => {
            Some("a prediction is never missing; missing shares are of the feature columns")
        }
        Metric::Drift(DriftStat::Unseen, Subject::Feature(f)) if !categorical.contains(&f) => {
            Some("the column is numeric; unseen levels are counted for a categorical one")
        }
        Metric::Drift(DriftStat::Wasserstein, Subject::Feature(f)) if categorical.contains(&f) => {
            Some("the column is categorical; it has no Wasserstein distance")
        }
        _ => None,
    }
}

/// The rule's metrics after wildcard expansion, with their names.
/// `*` stands for every one of `features` (none while they are unknown).
fn expand(name: &str, pattern: Pattern, features: Features) -> Vec<(String, Metric)> {
    match pattern {
        Pattern::One(m) => vec![(name.to_owned(), m)],
        Pattern::EachFeature(d) => features
            .unwrap_or_default()
            .iter()
            .map(|f| (format!("{name}:{f}"), Metric::Drift(d, Subject::Feature(f))))
            .collect(),
    }
}

/// A problem of one rule: the field it is in and what is wrong.
type Problem = (&'static str, String);

/// Checks one rule on its own; returns its metrics and threshold form.
/// The checks in order: the name, the metric, one threshold, the
/// threshold against the metric's range and band, the hold counts.
fn check_rule(
    index: usize,
    r: &RuleSettings,
    limits: Limits,
    features: Features,
) -> Result<(Vec<(String, Metric)>, Form), RuleError> {
    let err = |(field, problem): Problem| RuleError {
        index,
        field,
        problem,
    };
    check_name(&r.name).map_err(err)?;
    let pattern = parse_metric(&r.metric, features).map_err(|p| err(("metric", p)))?;
    let metrics = expand(&r.name, pattern, features);
    // Every expanded metric has the same range and band (`*` over no
    // known feature yet: checked as one).
    let m = match (metrics.first(), pattern) {
        (Some((_, m)), _) => *m,
        (None, Pattern::EachFeature(d)) => Metric::Drift(d, Subject::Prediction),
        (None, Pattern::One(m)) => m,
    };
    let form = match (r.value, r.relative, r.sigmas) {
        (Some(v), None, None) => Form::Value(v),
        (None, Some(v), None) => Form::Relative(v),
        (None, None, Some(v)) => Form::Sigmas(v),
        _ => {
            return Err(err((
                "",
                "give exactly one threshold: value, relative or sigmas".to_owned(),
            )))
        }
    };
    match form {
        Form::Value(v) => check_value(r, m, v, limits),
        Form::Relative(f) => check_factor(r, m, "relative", f, limits),
        Form::Sigmas(f) => check_factor(r, m, "sigmas", f, limits),
    }
    .map_err(err)?;
    check_hold(r).map_err(err)?;
    Ok((metrics, form))
}

/// A rule name: 1 to [`MAX_NAME_BYTES`] letters, digits, '_', '-' or '.'.
fn check_name(name: &str) -> Result<(), Problem> {
    if name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err((
            "name",
            format!(
                "must be 1 to {MAX_NAME_BYTES} letters, digits, '_', '-' or '.', got {:?}",
                crate::core::text::sanitize(name)
            ),
        ));
    }
    Ok(())
}

/// An absolute threshold `v`: finite, and neither never nor always met
/// within the range `m` can take.
fn check_value(r: &RuleSettings, m: Metric, v: f64, limits: Limits) -> Result<(), Problem> {
    let (lo, hi) = m.range(limits);
    let metric = &r.metric;
    let op = r.op.symbol();
    if !v.is_finite() {
        return Err(("value", format!("must be a finite number, got {v}")));
    }
    let (never, always) = match r.op {
        Op::Above => (v >= hi, v < lo),
        Op::Below => (v <= lo, v > hi),
    };
    if never || always {
        let how = if never { "never" } else { "always" };
        let range = if lo == hi {
            format!("{metric} is always {lo} (a count window closes when it holds monitor.window records; period.count varies)")
        } else {
            format!("{metric} lies between {lo} and {hi}")
        };
        return Err(("value", format!("{metric} {op} {v} is {how} true: {range}")));
    }
    Ok(())
}

/// A threshold relative to the baseline band (`field` is `relative` or
/// `sigmas`, `f` its factor): a metric with a band, a factor in range, and
/// for `relative` a band mean that is not 0 and a bound that can be met.
fn check_factor(
    r: &RuleSettings,
    m: Metric,
    field: &'static str,
    f: f64,
    limits: Limits,
) -> Result<(), Problem> {
    let (lo, _) = m.range(limits);
    let metric = &r.metric;
    if !m.has_band() {
        return Err((
            field,
            format!("{metric} has no baseline band: give an absolute value (the band metrics are mae, rmse, r2, bias, max_error and their period. forms)"),
        ));
    }
    if !(f.is_finite() && f > 0.0 && f <= MAX_FACTOR) {
        return Err((
            field,
            format!("must be a number above 0 and at most {MAX_FACTOR}, got {f}"),
        ));
    }
    if field == "relative" {
        if matches!(m, Metric::Window(Stat::Bias) | Metric::Period(Stat::Bias)) {
            return Err((
                field,
                "the baseline bias is 0 (least squares with an intercept), so a share of it is 0: use sigmas or value".to_owned(),
            ));
        }
        if r.op == Op::Below && lo >= 0.0 && f >= 1.0 {
            return Err((
                field,
                format!("{metric} < mean × (1 − {f}) is never true: {metric} is never below 0"),
            ));
        }
    }
    Ok(())
}

/// `for` and `resolve_after`: between 1 and [`MAX_HOLD`] windows.
fn check_hold(r: &RuleSettings) -> Result<(), Problem> {
    if !(1..=MAX_HOLD).contains(&r.for_windows) {
        return Err((
            "for",
            format!(
                "must be between 1 and {MAX_HOLD} windows, got {}",
                r.for_windows
            ),
        ));
    }
    if let Some(n) = r.resolve_after {
        if !(1..=MAX_HOLD).contains(&n) {
            return Err((
                "resolve_after",
                format!("must be between 1 and {MAX_HOLD} windows, got {n}"),
            ));
        }
    }
    Ok(())
}

/// Checks every rule (see the module doc); the first problem is the error.
pub fn validate(
    rules: &[RuleSettings],
    limits: Limits,
    features: Features,
) -> Result<(), RuleError> {
    let mut names = HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        check_rule(i, r, limits, features)?;
        if !names.insert(r.name.as_str()) {
            return Err(RuleError {
                index: i,
                field: "name",
                problem: format!("{:?} is the name of an earlier rule", r.name),
            });
        }
    }
    Ok(())
}

/// The meaning of `monitor.rules` (each names a known metric and can be
/// met within the window sizes), as a configuration error naming the key
/// (`monitor.rules[i].field`): run by the settings loader after the shape
/// checks ([`crate::config::Semantics`]), with the data's `features`
/// when they are known then (the diabetes data's).
pub fn check_settings(s: &MonitorSettings, features: Features) -> Result<(), ConfigError> {
    let limits = Limits {
        window: s.window,
        max_period_rows: s.max_period_rows,
    };
    validate(&s.rules, limits, features).map_err(|e| e.as_config())
}

impl RuleError {
    /// The error as a configuration error naming its key,
    /// `monitor.rules[i].field`.
    pub fn as_config(&self) -> ConfigError {
        ConfigError::invalid(
            &format!("monitor.rules[{}].{}", self.index, self.field),
            &self.problem,
        )
    }
}

/// The threshold of a rule with `op` and `form` against the metric's
/// baseline `band`, and how it was obtained (for the messages).
fn resolve(op: Op, form: Form, band: Option<&Band>) -> (f64, String) {
    let sign = match op {
        Op::Above => 1.0,
        Op::Below => -1.0,
    };
    match (form, band) {
        (Form::Value(v), _) => (v, "value".to_owned()),
        (Form::Relative(f), Some(b)) => (
            b.mean * (1.0 + sign * f),
            format!(
                "baseline mean {} × {}",
                short(b.mean),
                short(1.0 + sign * f)
            ),
        ),
        (Form::Sigmas(k), Some(b)) => (
            b.mean + sign * k * b.std,
            format!(
                "baseline mean {} {} {}σ, σ = {}",
                short(b.mean),
                if sign > 0.0 { '+' } else { '−' },
                short(k),
                short(b.std)
            ),
        ),
        (_, None) => unreachable!("check_rule refuses relative/sigmas without a band"),
    }
}

/// A threshold the baseline put outside what the metric can take (r2 >
/// 1.03, mae < -95) can never be met: bad config; nor can one that is not
/// finite. (An absolute value was checked on its own.)
fn check_resolved(
    op: Op,
    form: Form,
    metric: Metric,
    threshold: f64,
    basis: &str,
) -> Result<(), String> {
    let (lo, hi) = metric.range(Limits::NONE);
    let never = match op {
        Op::Above => threshold >= hi,
        Op::Below => threshold <= lo,
    };
    if never && !matches!(form, Form::Value(_)) {
        return Err(format!(
            "resolves to {} {} {} with this baseline ({basis}), which {} can never be",
            metric.name(),
            op.symbol(),
            short(threshold),
            metric.name()
        ));
    }
    if !threshold.is_finite() {
        return Err(format!(
            "the baseline band of {} is not finite",
            metric.name()
        ));
    }
    Ok(())
}

/// One expanded rule with its resolved threshold and its state.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    metric: Metric,
    op: Op,
    threshold: f64,
    /// How the threshold was obtained, for the messages.
    basis: String,
    fire_after: u32,
    resolve_after: u32,
    breaches: u32,
    clears: u32,
    active: bool,
}

impl Rule {
    fn breached(&self, v: f64) -> bool {
        match self.op {
            Op::Above => v > self.threshold,
            Op::Below => v < self.threshold,
        }
    }
}

/// The alert rules with their thresholds resolved and their states.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    /// The rules left out because the model has no such figure (a
    /// classifier's rules on a regression), one line each.
    not_watched: Vec<String>,
}

impl Rules {
    /// Expands wildcards over `features` (the data's columns) and resolves
    /// every threshold against `baseline`. Fails on a rule [`validate`]
    /// refuses (one naming a column the data does not have), or on a
    /// baseline band that is not finite.
    pub fn new(
        settings: &[RuleSettings],
        baseline: &Baseline,
        features: &[&'static str],
        categorical: &[&'static str],
    ) -> Result<Rules, RuleError> {
        validate(settings, Limits::NONE, Some(features))?;
        let (mut rules, mut not_watched) = (Vec::new(), Vec::new());
        for (index, r) in settings.iter().enumerate() {
            let (metrics, form) = check_rule(index, r, Limits::NONE, Some(features))?;
            let wildcard = r.metric.ends_with(".*");
            for (name, metric) in metrics {
                if let Some(why) = never_has_a_value(metric, categorical) {
                    if wildcard {
                        continue; // `unseen.*` over the categorical columns only, ...
                    }
                    return Err(RuleError {
                        index,
                        field: "metric",
                        problem: format!("{} never has a value: {why}", metric.name()),
                    });
                }
                if matches!(metric, Metric::Class(_)) && baseline.classification.is_none() {
                    // One config for both kinds of model: the default
                    // file has rules for each.
                    not_watched.push(format!(
                        "{name}: not watched: {} is a classifier's figure, and the model is a regression",
                        metric.name()
                    ));
                    continue;
                }
                let (threshold, basis) = resolve(r.op, form, metric.band(baseline));
                let resolved = check_resolved(r.op, form, metric, threshold, &basis);
                if let (Err(problem), Metric::Class(_), Form::Sigmas(_) | Form::Relative(_)) =
                    (&resolved, metric, form)
                {
                    // A classifier's band (a small window, a weak model)
                    // may put `mean − 3σ` below 0: the shipped rules must
                    // not stop such a run. Said at start.
                    not_watched.push(format!("{name}: not watched for this model: {problem}"));
                    continue;
                }
                resolved.map_err(|problem| RuleError {
                    index,
                    field: if matches!(form, Form::Relative(_)) {
                        "relative"
                    } else {
                        "sigmas"
                    },
                    problem,
                })?;
                rules.push(Rule {
                    name,
                    metric,
                    op: r.op,
                    threshold,
                    basis,
                    fire_after: r.for_windows,
                    resolve_after: r.resolve_windows(),
                    breaches: 0,
                    clears: 0,
                    active: false,
                });
            }
        }
        Ok(Rules { rules, not_watched })
    }

    /// Number of rules after expansion.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Names of the expanded rules, in order (for labels set up front).
    pub fn names(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.name.clone()).collect()
    }

    /// One line per rule with its resolved threshold, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        let watched = self.rules.iter().map(|r| {
            format!(
                "{}: {} {} {} ({}), fires after {} window{}, resolves after {}",
                r.name,
                r.metric.name(),
                r.op.symbol(),
                short(r.threshold),
                r.basis,
                r.fire_after,
                if r.fire_after == 1 { "" } else { "s" },
                r.resolve_after
            )
        });
        watched.chain(self.not_watched.iter().cloned()).collect()
    }

    /// Takes a closed window; returns the rules that fired or resolved
    /// with it, in rule order.
    pub fn observe(&mut self, report: &WindowReport) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        for r in &mut self.rules {
            let Some(v) = r.metric.value(report) else {
                continue;
            };
            let state = if r.breached(v) {
                r.breaches = r.breaches.saturating_add(1);
                r.clears = 0;
                (!r.active && r.breaches >= r.fire_after).then_some(true)
            } else {
                r.clears = r.clears.saturating_add(1);
                r.breaches = 0;
                (r.active && r.clears >= r.resolve_after).then_some(false)
            };
            let Some(fired) = state else {
                continue;
            };
            r.active = fired;
            let metric = r.metric.name();
            let message = if fired {
                format!(
                    "Alert {} fired: {metric} = {} {} {} ({}) for {} window{} in a row, up to window {} (last id {}).",
                    r.name,
                    short(v),
                    r.op.symbol(),
                    short(r.threshold),
                    r.basis,
                    r.breaches,
                    plural(r.breaches),
                    report.seq,
                    report.end_id
                )
            } else {
                format!(
                    "Alert {} resolved: {metric} = {} has not been {} {} ({}) for {} window{} in a row, up to window {} (last id {}).",
                    r.name,
                    short(v),
                    r.op.symbol(),
                    short(r.threshold),
                    r.basis,
                    r.clears,
                    plural(r.clears),
                    report.seq,
                    report.end_id
                )
            };
            events.push(AlertEvent {
                rule: r.name.clone(),
                state: if fired { "fired" } else { "resolved" }.to_owned(),
                metric,
                value: v,
                threshold: r.threshold,
                seq: report.seq,
                end_id: report.end_id,
                at_ms: report.end_ms,
                message,
            });
        }
        events
    }

    /// Takes back the rules an earlier run left firing (the
    /// `active_alerts` of its last window), so a restart neither fires them
    /// again nor leaves them never resolved: each resolves after
    /// `resolve_after` clear windows, as if the run had not stopped. Names
    /// that are no longer rules (the config changed) are ignored; returns
    /// how many were taken back.
    pub fn restore_active<S: AsRef<str>>(&mut self, names: &[S]) -> usize {
        let mut restored = 0;
        for r in &mut self.rules {
            if names.iter().any(|n| n.as_ref() == r.name) {
                r.active = true;
                r.breaches = r.fire_after;
                r.clears = 0;
                restored += 1;
            }
        }
        restored
    }

    /// Names of the rules firing now, in rule order.
    pub fn active(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.active)
            .map(|r| r.name.clone())
            .collect()
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A number for a sentence: four significant digits, scientific when tiny
/// or huge.
fn short(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || (1e-3..1e6).contains(&a) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::data::FEATURE_NAMES;

    /// A classifier's figures are named and ordered alike everywhere: the
    /// rules', the bands', the window's (`figures`), the artifact's.
    #[test]
    fn the_classifier_figures_are_one_list() {
        let names = crate::model::tabular::CLASSIFICATION_METRICS;
        assert_eq!(ClassStat::ALL.map(|(n, _)| n), names);
        let band = Band {
            mean: 0.5,
            std: 0.1,
            p01: 0.2,
            p99: 0.8,
        };
        let bands = crate::model::baseline::ClassificationBands {
            accuracy: band,
            log_loss: band,
            roc_auc: band,
            precision: band,
            recall: band,
            f1: band,
            brier: band,
        };
        assert_eq!(bands.named().map(|(n, _, _)| n), names);
        let w = crate::monitor::classification::evaluate(&[0, 1], &[[0.7, 0.3], [0.2, 0.8]], 0.5)
            .unwrap();
        assert_eq!(w.figures().map(|(n, _)| n), names);
        for (stat, (_, v)) in ClassStat::ALL.iter().zip(w.figures()) {
            assert_eq!(Some(stat.1.of(&w)), v);
        }
    }

    /// Shape (config) and meaning (here) of a `[monitor]` section.
    fn with_rules(toml_rules: &str) -> Result<MonitorSettings, String> {
        use crate::config::Check as _;
        let m: MonitorSettings =
            toml::from_str(&format!("{toml_rules}\n")).map_err(|e| e.to_string())?;
        m.check().map_err(|e| e.to_string())?;
        check_settings(&m, Some(&FEATURE_NAMES))
            .map(|()| m)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_bad_rule_is_named_by_its_index_and_field() {
        let ok = "[[rules]]\nname = \"a\"\nmetric = \"mae\"\nop = \">\"\nvalue = 50\n";
        let m = with_rules(ok).unwrap();
        assert_eq!(m.rules[0].for_windows, 2);
        assert_eq!(m.rules[0].resolve_windows(), 2);
        let bad = format!("{ok}[[rules]]\nname = \"b\"\nmetric = \"mea\"\nop = \">\"\nvalue = 1\n");
        let err = with_rules(&bad).unwrap_err();
        assert!(err.contains("monitor.rules[1].metric"), "{err}");
        let err = with_rules("[[rules]]\nname = \"a\"\nmetric = \"mae\"\nop = \">=\"\nvalue = 1\n")
            .unwrap_err();
        assert!(err.contains("op"), "{err}");
    }

    use crate::config::monitor::default_rules;

    fn band(mean: f64, std: f64) -> Band {
        Band {
            mean,
            std,
            p01: mean - 2.33 * std,
            p99: mean + 2.33 * std,
        }
    }

    /// Window-of-500 figures of the shape the real baseline has (MAE about
    /// 43 ± 1.4); the tests only need known numbers.
    fn baseline() -> Baseline {
        Baseline {
            classification: None,
            window: 500,
            windows: 2000,
            seed: 1,
            mae: band(43.0, 1.5),
            rmse: band(54.0, 1.6),
            r2: band(0.5, 0.03),
            bias: band(0.0, 2.4),
            max_error: band(150.0, 8.0),
        }
    }

    fn drift(name: &str, drifted: bool, p: f64) -> Drift {
        Drift {
            name: name.to_owned(),
            test: "ks".to_owned(),
            statistic: 0.1,
            p_value: p,
            psi: 0.05,
            wasserstein: 0.02,
            drifted,
            unseen: None,
            missing: None,
        }
    }

    /// A window with MAE `mae` and no drift figures.
    fn report(seq: u64, mae: f64) -> WindowReport {
        let stats = WindowStats {
            count: 500,
            mae,
            rmse: 54.0,
            r2: 0.5,
            bias: 0.0,
            max_error: 150.0,
        };
        WindowReport {
            classification: None,
            seq,
            end_id: 1000 + seq,
            end_ms: 5000 + seq,
            window: stats,
            period: stats,
            features: vec![],
            prediction: None,
            drift_share: None,
            dataset_drift: None,
            active_alerts: vec![],
        }
    }

    fn mae_rule(form: (&str, f64), for_windows: u32, resolve_after: Option<u32>) -> RuleSettings {
        let mut r = RuleSettings {
            name: "mae_high".to_owned(),
            metric: "mae".to_owned(),
            op: Op::Above,
            value: None,
            relative: None,
            sigmas: None,
            for_windows,
            resolve_after,
        };
        match form.0 {
            "value" => r.value = Some(form.1),
            "relative" => r.relative = Some(form.1),
            _ => r.sigmas = Some(form.1),
        }
        r
    }

    /// Feeds MAEs; returns (seq, state) of every event.
    fn run(rules: &mut Rules, maes: &[f64]) -> Vec<(u64, String)> {
        maes.iter()
            .enumerate()
            .flat_map(|(i, m)| rules.observe(&report(i as u64 + 1, *m)))
            .map(|e| (e.seq, e.state))
            .collect()
    }

    #[test]
    fn fires_after_exactly_for_and_resolves_after_exactly_resolve_after() {
        let mut r = Rules::new(
            &[mae_rule(("value", 50.0), 3, Some(2))],
            &baseline(),
            &FEATURE_NAMES,
            &[],
        )
        .unwrap();
        let events = run(
            &mut r,
            &[
                51.0, 52.0, 40.0, 51.0, 51.0, 51.0, 51.0, 40.0, 51.0, 40.0, 40.0, 40.0,
            ],
        );
        assert_eq!(
            events,
            [(6, "fired".to_owned()), (11, "resolved".to_owned())]
        );
        assert!(r.active().is_empty());
    }

    #[test]
    fn restored_rules_do_not_fire_again_and_resolve_as_usual() {
        let mut r = Rules::new(
            &[mae_rule(("value", 50.0), 2, Some(3))],
            &baseline(),
            &FEATURE_NAMES,
            &[],
        )
        .unwrap();
        assert_eq!(r.restore_active(&["mae_high", "gone_from_the_config"]), 1);
        assert_eq!(r.active(), ["mae_high"]);
        // Still breaching: no second fire; then three clear windows.
        let events = run(&mut r, &[51.0, 52.0, 40.0, 40.0, 51.0, 40.0, 40.0, 40.0]);
        assert_eq!(events, [(8, "resolved".to_owned())]);
        assert!(r.active().is_empty());
    }

    #[test]
    fn resolve_after_defaults_to_for() {
        let mut r = Rules::new(
            &[mae_rule(("value", 50.0), 2, None)],
            &baseline(),
            &FEATURE_NAMES,
            &[],
        )
        .unwrap();
        let events = run(&mut r, &[51.0, 51.0, 40.0, 40.0]);
        assert_eq!(
            events,
            [(2, "fired".to_owned()), (4, "resolved".to_owned())]
        );
    }

    #[test]
    fn an_alternating_series_never_flaps() {
        let mut r = Rules::new(
            &[mae_rule(("value", 50.0), 2, None)],
            &baseline(),
            &FEATURE_NAMES,
            &[],
        )
        .unwrap();
        let alternating: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 51.0 } else { 49.0 })
            .collect();
        assert!(run(&mut r, &alternating).is_empty());
        // Once firing, alternating never resolves it either.
        let mut r = Rules::new(
            &[mae_rule(("value", 50.0), 2, None)],
            &baseline(),
            &FEATURE_NAMES,
            &[],
        )
        .unwrap();
        let mut series = vec![51.0, 51.0];
        series.extend(&alternating);
        assert_eq!(run(&mut r, &series), [(2, "fired".to_owned())]);
        assert_eq!(r.active(), ["mae_high"]);
    }

    #[test]
    fn a_missing_value_neither_breaches_nor_clears() {
        let rule = RuleSettings {
            name: "r2_low".to_owned(),
            metric: "r2".to_owned(),
            op: Op::Below,
            value: Some(0.3),
            relative: None,
            sigmas: None,
            for_windows: 2,
            resolve_after: None,
        };
        let mut rules = Rules::new(&[rule], &baseline(), &FEATURE_NAMES, &[]).unwrap();
        let with_r2 = |seq, r2: f64| {
            let mut w = report(seq, 43.0);
            w.window.r2 = r2;
            w
        };
        // breach, NaN (skipped), breach: two breaches in a row -> fires.
        assert!(rules.observe(&with_r2(1, 0.1)).is_empty());
        assert!(rules.observe(&with_r2(2, f64::NAN)).is_empty());
        let e = rules.observe(&with_r2(3, 0.1));
        assert_eq!((e.len(), e[0].state.as_str(), e[0].seq), (1, "fired", 3));
        // NaNs alone never resolve it.
        for seq in 4..20 {
            assert!(rules.observe(&with_r2(seq, f64::NAN)).is_empty());
        }
        assert_eq!(rules.active(), ["r2_low"]);
        // An empty window has no MAE either.
        let mut m = Rules::new(
            &[mae_rule(("value", 50.0), 1, None)],
            &baseline(),
            &FEATURE_NAMES,
            &[],
        )
        .unwrap();
        let mut empty = report(1, 0.0);
        empty.window = WindowStats::default();
        assert!(m.observe(&empty).is_empty());
    }

    #[test]
    fn each_threshold_form_resolves_against_the_baseline() {
        // value: 50; relative 0.1: 43 × 1.1 = 47.3; sigmas 3: 43 + 3 × 1.5 = 47.5.
        for (form, threshold) in [
            (("value", 50.0), 50.0),
            (("relative", 0.1), 43.0 * 1.1),
            (("sigmas", 3.0), 43.0 + 3.0 * 1.5),
        ] {
            let mut r =
                Rules::new(&[mae_rule(form, 1, None)], &baseline(), &FEATURE_NAMES, &[]).unwrap();
            assert!(
                r.observe(&report(1, threshold)).is_empty(),
                "{form:?}: equal is no breach"
            );
            let e = r.observe(&report(2, threshold + 1e-9));
            assert_eq!(e.len(), 1, "{form:?}");
            assert_eq!(e[0].threshold, threshold);
            assert_eq!(
                (e[0].metric.as_str(), e[0].value),
                ("mae", threshold + 1e-9)
            );
            assert!(
                e[0].message.starts_with("Alert mae_high fired: mae = "),
                "{}",
                e[0].message
            );
        }
        // `<` takes the other side: 0.5 × 0.9 and 0.5 − 3 × 0.03.
        for (form, threshold) in [(("relative", 0.1), 0.45), (("sigmas", 3.0), 0.41)] {
            let mut s = mae_rule(form, 1, None);
            s.metric = "period.r2".to_owned();
            s.op = Op::Below;
            let r = Rules::new(&[s], &baseline(), &FEATURE_NAMES, &[]).unwrap();
            assert!((r.rules[0].threshold - threshold).abs() < 1e-12);
        }
    }

    #[test]
    fn a_wildcard_expands_to_one_rule_per_feature() {
        let rule = RuleSettings {
            name: "feature_drift".to_owned(),
            metric: "drift.*".to_owned(),
            op: Op::Above,
            value: Some(0.5),
            relative: None,
            sigmas: None,
            for_windows: 1,
            resolve_after: None,
        };
        let mut rules = Rules::new(&[rule], &baseline(), &FEATURE_NAMES, &[]).unwrap();
        assert_eq!(rules.len(), FEATURE_NAMES.len());
        assert_eq!(rules.names()[2], "feature_drift:bmi");
        let mut w = report(1, 43.0);
        w.features = FEATURE_NAMES
            .iter()
            .map(|f| drift(f, *f == "bmi", 0.5))
            .collect();
        let e = rules.observe(&w);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].rule.as_str(), e[0].metric.as_str()),
            ("feature_drift:bmi", "drift.bmi")
        );
        assert_eq!(rules.active(), ["feature_drift:bmi"]);
    }

    #[test]
    fn drift_figures_feed_rules_and_their_absence_is_missing() {
        let mk = |metric: &str, op, value| RuleSettings {
            name: metric.replace(['.', '*'], "_"),
            metric: metric.to_owned(),
            op,
            value: Some(value),
            relative: None,
            sigmas: None,
            for_windows: 1,
            resolve_after: None,
        };
        let settings = [
            mk("p_value.prediction", Op::Below, 0.01),
            mk("drift_share", Op::Above, 0.4),
            mk("dataset_drift", Op::Above, 0.5),
            mk("psi.s5", Op::Above, 0.2),
        ];
        let mut rules = Rules::new(&settings, &baseline(), &FEATURE_NAMES, &[]).unwrap();
        // No drift figures yet: nothing is decided.
        assert!(rules.observe(&report(1, 43.0)).is_empty());
        let mut w = report(2, 43.0);
        w.features = FEATURE_NAMES
            .iter()
            .map(|f| drift(f, true, 0.001))
            .collect();
        w.features[8].psi = 0.3;
        w.prediction = Some(drift("prediction", true, 0.001));
        w.drift_share = Some(1.0);
        w.dataset_drift = Some(true);
        let fired: Vec<_> = rules.observe(&w).into_iter().map(|e| e.rule).collect();
        assert_eq!(
            fired,
            [
                "p_value_prediction",
                "drift_share",
                "dataset_drift",
                "psi_s5"
            ]
        );
    }

    fn invalid(r: RuleSettings) -> RuleError {
        validate(
            &[r],
            Limits {
                window: 500,
                max_period_rows: 1000,
            },
            Some(&FEATURE_NAMES),
        )
        .unwrap_err()
    }

    #[test]
    fn validation_names_the_field_at_fault() {
        let base = mae_rule(("value", 50.0), 2, None);
        type Change = Box<dyn Fn(&mut RuleSettings)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|r| r.metric = "mea".into()), "metric"),
            (Box::new(|r| r.metric = "drift.bmj".into()), "metric"),
            (Box::new(|r| r.metric = "period.drift".into()), "metric"),
            (Box::new(|r| r.name = String::new()), "name"),
            (Box::new(|r| r.name = "a b".into()), "name"),
            (Box::new(|r| r.name = "x".repeat(65)), "name"),
            (Box::new(|r| r.relative = Some(0.1)), ""),
            (Box::new(|r| r.value = None), ""),
            (Box::new(|r| r.value = Some(f64::NAN)), "value"),
            (Box::new(|r| r.value = Some(-1.0)), "value"),
            (
                Box::new(|r| {
                    r.op = Op::Below;
                    r.value = Some(0.0)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "r2".into();
                    r.value = Some(1.0)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "p_value.age".into();
                    r.op = Op::Below;
                    r.value = Some(1.5)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "drift.*".into();
                    r.value = Some(1.0)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "count".into();
                    r.value = Some(500.0)
                }),
                "value",
            ),
            // Issue 18, 2.10: a count window always holds `window` records.
            (
                Box::new(|r| {
                    r.metric = "count".into();
                    r.value = Some(499.0)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "count".into();
                    r.op = Op::Below;
                    r.value = Some(500.0)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "count".into();
                    r.op = Op::Below;
                    r.value = Some(501.0)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "period.count".into();
                    r.value = Some(1000.0)
                }),
                "value",
            ),
            (
                Box::new(|r| {
                    r.metric = "count".into();
                    r.value = None;
                    r.sigmas = Some(3.0)
                }),
                "sigmas",
            ),
            (
                Box::new(|r| {
                    r.metric = "psi.bmi".into();
                    r.value = None;
                    r.relative = Some(0.1)
                }),
                "relative",
            ),
            (
                Box::new(|r| {
                    r.metric = "bias".into();
                    r.value = None;
                    r.relative = Some(0.1)
                }),
                "relative",
            ),
            (
                Box::new(|r| {
                    r.op = Op::Below;
                    r.value = None;
                    r.relative = Some(1.0)
                }),
                "relative",
            ),
            (
                Box::new(|r| {
                    r.value = None;
                    r.sigmas = Some(0.0)
                }),
                "sigmas",
            ),
            (
                Box::new(|r| {
                    r.value = None;
                    r.sigmas = Some(f64::INFINITY)
                }),
                "sigmas",
            ),
            (Box::new(|r| r.for_windows = 0), "for"),
            (Box::new(|r| r.for_windows = 1_000_000), "for"),
            (Box::new(|r| r.resolve_after = Some(0)), "resolve_after"),
        ];
        for (i, (change, field)) in cases.into_iter().enumerate() {
            let mut r = base.clone();
            change(&mut r);
            let e = invalid(r.clone());
            assert_eq!((e.index, e.field), (0, field), "case {i}: {r:?}: {e}");
        }
        // Duplicate names.
        let e = validate(
            &[base.clone(), base.clone()],
            Limits::NONE,
            Some(&FEATURE_NAMES),
        )
        .unwrap_err();
        assert_eq!((e.index, e.field), (1, "name"));
    }

    #[test]
    fn the_default_rules_are_valid_and_expand() {
        validate(&default_rules(), Limits::NONE, Some(&FEATURE_NAMES)).unwrap();
        let rules = Rules::new(&default_rules(), &baseline(), &FEATURE_NAMES, &[]).unwrap();
        // 5 window rules, 10 features, prediction, dataset.
        assert_eq!(rules.len(), 5 + FEATURE_NAMES.len() + 2);
        // On a window that looks like the baseline nothing fires.
        let mut rules = rules;
        for seq in 1..10 {
            let mut w = report(seq, 43.0);
            w.features = FEATURE_NAMES.iter().map(|f| drift(f, false, 0.5)).collect();
            w.prediction = Some(drift("prediction", false, 0.5));
            assert!(rules.observe(&w).is_empty());
        }
    }

    #[test]
    fn metric_names_round_trip() {
        for name in [
            "mae",
            "period.max_error",
            "count",
            "drift_share",
            "dataset_drift",
            "drift.prediction",
            "wasserstein.s6",
            "p_value.age",
        ] {
            match parse_metric(name, Some(&FEATURE_NAMES)).unwrap() {
                Pattern::One(m) => assert_eq!(m.name(), name),
                p => panic!("{name}: {p:?}"),
            }
        }
        assert_eq!(
            parse_metric("psi.*", Some(&FEATURE_NAMES)).unwrap(),
            Pattern::EachFeature(DriftStat::Psi)
        );
    }
}
