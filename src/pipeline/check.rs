//! Start-up, step 1: check the inputs. Everything that can fail because of
//! bad input and needs no broker: the settings' meaning (the features'
//! own checks, [`semantics`]), the logs folder and its lock, the HTTP
//! address, the model artifact and the baseline the monitor judges
//! against; with `data.path`, the user's data file, its model (loaded, or
//! fitted now) and the two lined up ([`own_data`]). A failure here exits 2
//! and touches nothing that matters; no actor exists yet, and nothing
//! waits on the network.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::{ConfigError, Role, Settings};
use crate::core::data::Dataset;
use crate::core::log_paths::{lock_logs_dir, LogPaths};
use crate::core::metrics::{MetricDecl, Telemetry};
use crate::core::reopen::Reopen;
use crate::core::schema::WireSchema;
use crate::model::tabular::TabularModel;
use crate::model::{load_or_fit_model, Model};
use crate::monitor::actor::Reference;
use crate::monitor::telemetry::MonitorMetrics;
use crate::source::own::OwnData;
use crate::source::sampler::Rows;

/// What the features check of their own sections: the alert rules
/// (`monitor::alerts`) and the scenario against the data set
/// (`source::scenario`). The settings loader runs it after the shape
/// checks (see [`crate::config::Semantics`]); so does [`inputs`], for
/// settings made in code.
pub fn semantics(s: &Settings) -> Result<(), ConfigError> {
    // A scenario of the user's data is checked once its file is read
    // (`own_data`).
    if !s.data.is_own() {
        crate::source::scenario::check_settings(&s.source)?;
    }
    // The columns of the user's data are known once its file is read:
    // rules naming them are checked then (`monitor::alerts::Rules::new`).
    let features = (!s.data.is_own()).then_some(&crate::core::data::FEATURE_NAMES[..]);
    crate::monitor::alerts::check_settings(&s.monitor, features)
}

/// The one registry: the pipeline's own metrics, then the monitor's
/// families (registered whether or not it runs here), then the build info.
/// The core registry cannot name the monitor (a layer above it), so the
/// wiring hands its group in.
pub fn telemetry(roles: &str) -> (Arc<Telemetry>, MonitorMetrics) {
    let monitor_metrics = MonitorMetrics::new();
    let telemetry = Telemetry::with_families(roles, &[&monitor_metrics]);
    (telemetry, monitor_metrics)
}

/// Every metric the program declares, in the order `/metrics` shows them:
/// what `modelwatch metrics` prints and `docs/metrics.md` is checked
/// against (`tests/it/metrics_doc.rs`).
pub fn metric_declarations() -> Vec<MetricDecl> {
    telemetry("").0.declarations().to_vec()
}

/// The inputs, checked and opened: what the restore step builds on.
pub struct Checked {
    pub settings: Settings,
    pub paths: LogPaths,
    pub telemetry: Arc<Telemetry>,
    /// The monitor's families in [`Checked::telemetry`], for its actor.
    pub monitor_metrics: MonitorMetrics,
    /// With the model role.
    pub model: Option<Arc<Model>>,
    /// The rows the source streams: the diabetes data or the user's own.
    pub rows: Rows,
    /// Where the model came from: the artifact's path, or "fitted in memory".
    pub model_origin: String,
    /// What the monitor and the histogram's baseline line judge against.
    pub reference: Option<Reference>,
    /// Held while the process runs: the logs dir's lock (metric role).
    pub logs_lock: Option<std::fs::File>,
    /// The HTTP server's listener, bound.
    pub http: Option<TcpListener>,
    /// The schema of the user's own data on the wire (`None`: diabetes).
    pub schema: Option<Arc<WireSchema>>,
}

/// Checks the inputs of the roles to run (see the module's doc).
pub fn inputs(settings: Settings) -> anyhow::Result<Checked> {
    semantics(&settings)?;
    // Its reopen is asked for through `Prepared::paths` (SIGHUP in cli.rs).
    let paths =
        LogPaths::new(&settings.logs.dir).with_rotation(settings.logs.rotation(&Reopen::new()));
    paths.create_dir()?;
    // One writer per logs dir: two metrics appending to one metric_log.csv
    // (and monitors to one metrics_over_time.csv) interleave their rows.
    let logs_lock = if settings.runs(Role::Metric) {
        Some(lock_logs_dir(&paths.dir)?)
    } else {
        None
    };
    // An earlier run's registry must not pass for this one's (a panic, exit
    // 70, writes none).
    match std::fs::remove_file(&paths.final_metrics) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e)
                .with_context(|| format!("{}: cannot remove", paths.final_metrics.display()));
        }
        _ => {}
    }
    let roles: Vec<String> = settings
        .roles
        .iter()
        .map(|r| format!("{r:?}").to_lowercase())
        .collect();
    let (telemetry, monitor_metrics) = telemetry(&roles.join(","));
    let http = bind_http(&settings, &paths)?;
    if settings.inbound.legacy && !settings.is_split() {
        // Said, not refused: the same command line serves both layouts.
        tracing::warn!(
            "inbound.legacy (--legacy-inbound) has no effect here: this process runs every role, so it reads no queue; run the model and metric roles in their own processes to read the Python services' queues"
        );
    }
    // The user's data: its model is needed whatever the roles (all four
    // run here: `config` keeps such a run in one process for now).
    let (own, rows, schema) = match settings.data.is_own() {
        true => {
            let (model, data, origin) = own_data(&settings)?;
            let schema = wire_schema(&model, &data, settings.source.scenario.as_ref())
                .with_declared(settings.data.allowed());
            // The roles of the split layout read each other's messages:
            // one that can be larger than they take would be refused.
            let need = schema.max_body_bytes();
            if settings.bridge.enabled
                && settings.is_split()
                && need > settings.inbound.max_body_bytes
            {
                return Err(crate::config::ConfigError::invalid(
                    "inbound.max_body_bytes",
                    format!(
                        "is {}, but a message of this model's schema can be up to {need} bytes (its columns' names and levels, every value at its longest): raise it to at least {need}, in every process of the split layout",
                        settings.inbound.max_body_bytes
                    ),
                )
                .into());
            }
            check_bounds(&data, &schema, &settings.data.path)?;
            tracing::info!(
                schema = %schema.fingerprint,
                "data: the schema's fingerprint, in the header x-modelwatch-schema of every message on the wire (docs/wire.md)"
            );
            let model = Arc::new(Model::Tabular(model));
            (
                Some((model, origin)),
                Rows::Own(Arc::new(data)),
                Some(Arc::new(schema)),
            )
        }
        false => (None, Rows::Diabetes(Dataset::embedded()), None),
    };
    let load_diabetes = || -> anyhow::Result<Arc<Model>> {
        Ok(Arc::new(Model::Linear(load_or_fit_model(
            &settings.model.artifact,
        )?)))
    };
    let model = match (&own, settings.runs(Role::Model)) {
        (Some((m, _)), _) => Some(m.clone()),
        (None, true) => Some(load_diabetes()?),
        (None, false) => None,
    };
    let model_origin = match &own {
        Some((_, origin)) => origin.clone(),
        None if settings.model.artifact.exists() => settings.model.artifact.display().to_string(),
        None => "fitted in memory".to_owned(),
    };
    // The monitor (with the metric role) and the histogram's baseline line
    // (with the plot role) judge against the model's training figures: this
    // process's model, or the artifact's when the model runs elsewhere.
    let reference = match settings.monitor.enabled
        && (settings.runs(Role::Metric) || settings.runs(Role::Plot))
    {
        true => {
            let m = match &model {
                Some(m) => m.clone(),
                None => load_diabetes()?,
            };
            Some(Reference::of(m, &settings.monitor)?)
        }
        false => None,
    };
    Ok(Checked {
        settings,
        paths,
        telemetry,
        monitor_metrics,
        model,
        rows,
        model_origin,
        reference,
        logs_lock,
        http,
        schema,
    })
}

/// The values a scenario makes are within what `[[data.columns]]`
/// declares (as the data's are): a level it sets is declared, a column it
/// shifts or scales stays in its declared range on every row. Otherwise a
/// split run would refuse the rows one process runs.
fn scenario_within_declared(
    s: &crate::config::ScenarioSettings,
    plan: &crate::source::scenario::Plan,
    data: &OwnData,
    allowed: &[crate::core::table::Allowed],
) -> Result<(), crate::config::ConfigError> {
    let declared = |name: &str| allowed.iter().find(|a| a.column == name);
    for (name, level) in &s.set {
        if let Some(why) = declared(name).and_then(|a| a.refuses(level.trim(), None)) {
            return Err(crate::config::ConfigError::invalid(
                &format!("source.scenario.set.{name}"),
                format!("{why}: the scenario would make values the data may not hold"),
            ));
        }
    }
    for (j, change) in plan.changes.iter().enumerate() {
        let (Some((factor, offset)), Some(a)) = (change, declared(&data.names[j])) else {
            continue;
        };
        let outside = (0..data.len())
            .map(|i| data.value(i, j) * factor + offset)
            .filter(|v| !v.is_nan())
            .find_map(|v| a.refuses(&v.to_string(), Some(v)));
        if let Some(why) = outside {
            return Err(crate::config::ConfigError::invalid(
                &format!("source.scenario (column {})", data.names[j]),
                format!("{why}: the scenario would make values the data may not hold"),
            ));
        }
    }
    Ok(())
}

/// Every numeric value of `data` is within the schema's bound of its
/// column (the largest value the model takes from the wire: a prediction
/// stays finite), so that one process and the split layout take the same
/// rows.
fn check_bounds(data: &OwnData, schema: &WireSchema, path: &Path) -> anyhow::Result<()> {
    for (j, bound) in schema.max_abs.iter().enumerate() {
        if data.levels[j].is_some() {
            continue;
        }
        if let Some(i) = (0..data.len()).find(|&i| data.value(i, j).abs() > *bound) {
            anyhow::bail!(
                "data.path {}: row {} (of the rows read), column {}: {:e} is beyond ±{bound:e}, the largest value this model takes (its prediction could overflow)",
                crate::core::text::shown_path(path),
                i + 1,
                crate::core::table::quoted(&data.names[j]),
                data.value(i, j)
            );
        }
    }
    Ok(())
}

/// The wire schema of `model`, with the levels of `data` the model never
/// saw, and the level a `scenario` sets that neither has, past the model's
/// (where [`crate::source::scenario::Plan`] put it), so that their text
/// goes on the wire.
fn wire_schema(
    model: &TabularModel,
    data: &OwnData,
    scenario: Option<&crate::config::ScenarioSettings>,
) -> WireSchema {
    let mut extra = data.extra.clone();
    for (name, level) in scenario.into_iter().flat_map(|s| &s.set) {
        let level = level.trim();
        let at = data.names.iter().position(|n| n == name);
        if let Some((levels, extra)) =
            at.and_then(|j| Some((data.levels[j].as_ref()?, &mut extra[j])))
        {
            if !levels.iter().chain(extra.iter()).any(|l| l == level) {
                extra.push(level.to_owned());
            }
        }
    }
    model.wire_schema().with_extra(extra)
}

/// The artifact of `data.model`, with an ONNX model's file opened when
/// this process predicts (the model role): the runtime library is needed
/// only there.
fn load_artifact(settings: &Settings) -> anyhow::Result<TabularModel> {
    let path = &settings.data.model;
    if crate::model::onnx::is_onnx_file(path) {
        anyhow::bail!(
            "data.model (--model) {} is an ONNX file: wrap it first with `modelwatch train \
             --data TRAINING.csv --target {} --model {}` (it checks the model against the \
             columns and records the monitor's reference), then run the artifact it writes \
             (docs/onnx.md)",
            crate::core::text::shown_path(path),
            crate::core::table::quoted(&settings.data.target),
            crate::core::text::shown_path(path),
        );
    }
    let mut m = TabularModel::load(path).context("data.model (--model)")?;
    if settings.runs(crate::config::Role::Model) {
        m.open_onnx(
            path,
            &crate::model::onnx::RuntimeOptions::of(&settings.model),
        )
        .context("data.model (--model)")?;
    }
    Ok(m)
}

/// The user's data (`data.path`) and its model: the artifact of
/// `data.model` (read and checked whole), or a model fitted on the data
/// now with the monitor's reference for `monitor.window`; then the data
/// lined up with the model ([`OwnData::new`]). Returns where the model
/// came from too. Every problem names the key or the file, line and
/// column.
pub fn own_data(settings: &Settings) -> anyhow::Result<(TabularModel, OwnData, String)> {
    use crate::core::table::{quoted, ColumnKind, ReadOptions, Table};
    let d = &settings.data;
    let artifact = match d.model.as_os_str().is_empty() {
        true => None,
        false => Some(load_artifact(settings)?),
    };
    // The model's categorical columns are read as such (a code column is
    // all numbers).
    let (mut model_categorical, mut model_numeric) = (Vec::new(), Vec::new());
    if let Some(m) = &artifact {
        if m.target.name != d.target {
            anyhow::bail!(
                "data.target (--target) is {}, but the model {} predicts {}",
                quoted(&d.target),
                crate::core::text::shown_path(&d.model),
                quoted(&m.target.name)
            );
        }
        let columns = m.features.iter().map(|f| &f.column).chain([&m.target]);
        for c in columns {
            match c.kind {
                ColumnKind::Categorical { .. } => model_categorical.push(c.name.clone()),
                ColumnKind::Numeric => model_numeric.push(c.name.clone()),
            }
        }
    }
    if d.missing == crate::core::table::Missing::Keep && artifact.is_none() {
        return Err(crate::config::ConfigError::invalid(
            "data.missing",
            "\"keep\" streams rows with a missing cell through a trained model, and a model fitted at start takes complete rows: train it first (modelwatch train --data) and run it with --model (data.model)",
        )
        .into());
    }
    let options = ReadOptions {
        delimiter: d.delimiter_byte(),
        max_bytes: d.max_bytes,
        max_levels: d.max_levels,
        missing: d.missing,
        skip: (!d.id.is_empty())
            .then(|| d.id.clone())
            .into_iter()
            .collect(),
        categorical: d.categorical_columns(),
        model_categorical,
        model_numeric: model_numeric
            .into_iter()
            .chain(d.numeric_columns())
            .collect(),
        // A classifier's target holds its classes: another value is
        // refused here, naming its line.
        allowed: d
            .allowed()
            .into_iter()
            .chain(artifact.as_ref().and_then(|m| {
                m.classes().map(|classes| crate::core::table::Allowed {
                    column: d.target.clone(),
                    range: None,
                    levels: classes.to_vec(),
                    levels_as_numbers: matches!(m.target.kind, ColumnKind::Numeric),
                    declared_by: "the model's classes",
                })
            }))
            .collect(),
        // A row without its truth is left out whatever data.missing says.
        required: vec![d.target.clone()],
        // A trained model's columns only: the file's others (an id, notes)
        // leave no row out and refuse nothing.
        only: artifact
            .as_ref()
            .map(|m| {
                m.feature_names()
                    .into_iter()
                    .chain([m.target.name.clone()])
                    .collect()
            })
            .unwrap_or_default(),
        ..ReadOptions::default()
    };
    let started = std::time::Instant::now();
    let table = Table::read(&d.path, &options).map_err(|e| anyhow::anyhow!("data.path {e}"))?;
    tracing::info!(
        rows = table.rows,
        omitted = table.omitted,
        columns = table.columns.len(),
        secs = started.elapsed().as_secs_f64(),
        "data: read {} rows of {} columns ({} left out for a missing value, data.missing)",
        table.rows,
        table.columns.len(),
        table.omitted
    );
    let (model, origin) = match artifact {
        Some(m) => (m, crate::core::text::shown_path(&d.model)),
        None => {
            let m = crate::monitor::reference::fit_with_reference(
                &table,
                &d.target,
                None,
                settings.monitor.window,
                settings.monitor.baseline_windows,
                crate::monitor::baseline::DEFAULT_SEED,
            )
            .map_err(|e| {
                anyhow::anyhow!("data.path {}: {e}", crate::core::text::shown_path(&d.path))
            })?;
            m.check().map_err(|e| {
                anyhow::anyhow!(
                    "data.path {}: the fit cannot be used: {e}",
                    crate::core::text::shown_path(&d.path)
                )
            })?;
            tracing::info!(
                score = m.training.score,
                "data: no data.model (--model): fitted on data.path at start (`modelwatch train --data` writes an artifact)"
            );
            (m, "fitted on data.path at start".to_owned())
        }
    };
    let data = OwnData::new(table, &model).map_err(|e| {
        anyhow::anyhow!("data.path {}: {e}", crate::core::text::shown_path(&d.path))
    })?;
    if let Some(s) = &settings.source.scenario {
        let plan = crate::source::scenario::Plan::new(s, &data).map_err(|e| e.as_config())?;
        scenario_within_declared(s, &plan, &data, &settings.data.allowed())?;
        let key = match (s.target_bias, s.target_noise) {
            (Some(_), _) => Some("source.scenario.target_bias"),
            (_, Some(_)) => Some("source.scenario.target_noise"),
            _ => None,
        };
        if let (Some(key), Some(_)) = (key, model.classes()) {
            return Err(crate::config::ConfigError::invalid(
                key,
                "shifts a number, and the model is a classifier: its target is a class (shift a feature, or set a categorical one to a level)",
            )
            .into());
        }
    }
    for (column, rows) in &data.missing {
        tracing::info!(
            column = %quoted(column),
            rows,
            "data: rows with this column missing, kept (data.missing = \"keep\"): the model reads a missing number as its training mean and a missing level as none; the monitor reports each column's missing share per window"
        );
    }
    for (column, rows) in &data.unseen {
        tracing::warn!(
            column = %quoted(column),
            rows,
            "data: rows with a level of this column the model was not trained on: the model reads them as no level, the monitor counts them (unseen)"
        );
    }
    Ok((model, data, origin))
}

/// Binds the HTTP server's address first: one the user gave that is in use
/// is bad configuration (exit 2); `auto` falls back to a free port. An
/// earlier run's `logs/http.addr` is removed: this run's is written when
/// its server serves (`pipeline::serve`), so a start that fails before
/// leaves no address that nobody answers at.
fn bind_http(settings: &Settings, paths: &LogPaths) -> anyhow::Result<Option<TcpListener>> {
    remove_http_addr(&paths.http_addr)?;
    let Some((listener, fell_back)) = crate::http::server::bind_listen(settings.http.listen())?
    else {
        return Ok(None);
    };
    if fell_back {
        let bound = listener.local_addr()?;
        tracing::warn!(
            taken = crate::config::http::DEFAULT_ADDR,
            addr = %bound,
            file = %paths.http_addr.display(),
            "http.listen auto: {} is in use by another process; serving on {bound} instead",
            crate::config::http::DEFAULT_ADDR
        );
    }
    Ok(Some(listener))
}

/// Removes an earlier run's `logs/http.addr`.
fn remove_http_addr(path: &Path) -> anyhow::Result<()> {
    // What is not a regular file there is neither followed nor removed.
    crate::core::output_file::check(path).map_err(|why| anyhow::anyhow!(why))?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("{}: cannot remove", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    //! The settings as the command line loads them: shape and meaning
    //! (these moved here from config's tests when the features' own
    //! checks left config).

    use clap::Parser;

    use super::*;
    use crate::config::Overrides;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_source_with(Some(&path), &Overrides::default(), env, semantics)
    }

    /// The flags as `run` parses them.
    #[derive(Debug, Parser)]
    struct Run {
        #[command(flatten)]
        overrides: Overrides,
    }

    fn settings_with(args: &[&str]) -> Result<Settings, ConfigError> {
        let run = Run::try_parse_from(std::iter::once("run").chain(args.iter().copied())).unwrap();
        Settings::load_source_with(None, &run.overrides, vec![], semantics)
    }

    #[test]
    fn bad_rules_and_scenarios_in_the_file_name_their_key() {
        let rule = |body: &str| format!("[[monitor.rules]]\nname = \"r\"\n{body}\n");
        for (toml, key) in [
            (
                rule("metric = \"mae\"\nop = \">\"\nvalue = 50\nfor = 2.5"),
                "monitor.rules[0].for",
            ),
            (
                rule("metric = \"mae\"\nop = \">\"\nvalue = \"high\""),
                "monitor.rules[0].value",
            ),
            (
                rule("metric = \"mae\"\nop = \">\"\nvalue = 50\nresolve_after = 0"),
                "monitor.rules[0].resolve_after",
            ),
            (
                rule("metric = \"drift.bmj\"\nop = \">\"\nvalue = 0.5"),
                "monitor.rules[0].metric",
            ),
            (
                rule("metric = \"r2\"\nop = \">\"\nvalue = 1.5"),
                "monitor.rules[0].value",
            ),
            (
                rule("metric = \"mae\"\nop = \">\"\nvalue = 1\nsigmas = 3"),
                "monitor.rules[0]",
            ),
            (
                rule("metric = \"mae\"\nop = \">\"\nvalue = 1\ncolour = 3"),
                "colour",
            ),
            ("[monitor]\nwindow = 0\n".to_owned(), "monitor.window"),
            (
                "[source.scenario]\nshift = { bmi = \"5\" }\n".to_owned(),
                "source.scenario.shift.bmi",
            ),
            (
                "[source.scenario]\nstart = 2.5\nshift = { bmi = 5 }\n".to_owned(),
                "source.scenario.start",
            ),
            (
                "[source.scenario]\nshift = { bmx = 5 }\n".to_owned(),
                "source.scenario.shift.bmx",
            ),
            (
                "[source.scenario]\nscale = { sex = 2 }\n".to_owned(),
                "source.scenario.scale.sex",
            ),
            (
                "[source]\ncount = 10\n[source.scenario]\nstart = 10\nshift = { bmi = 5 }\n"
                    .to_owned(),
                "source.scenario.start",
            ),
            (
                "[source.scenario]\npopulation = { feature = \"bmi\", above = 100 }\n".to_owned(),
                "source.scenario.population",
            ),
            (
                "[source.scenario]\nstart = 3\n".to_owned(),
                "source.scenario",
            ),
        ] {
            let err = load(&toml, &[]).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }

    #[test]
    fn the_scenario_has_a_compact_form_in_the_environment_and_rules_do_not() {
        let s = load(
            "",
            &[("MODELWATCH__SOURCE__SCENARIO", "start=5,bmi+=5,target~=2")],
        )
        .unwrap();
        let sc = s.source.scenario.unwrap();
        assert_eq!(
            (sc.start, sc.shift["bmi"], sc.target_noise),
            (5, 5.0, Some(2.0))
        );
        for (name, value, key) in [
            (
                "MODELWATCH__SOURCE__SCENARIO",
                "bmi+=",
                "MODELWATCH__SOURCE__SCENARIO",
            ),
            (
                "MODELWATCH__SOURCE__SCENARIO",
                "bmj+=5",
                "source.scenario.shift.bmj",
            ),
            (
                "MODELWATCH__SOURCE__SCENARIO__START",
                "5",
                "MODELWATCH__SOURCE__SCENARIO__START",
            ),
            (
                "MODELWATCH__MONITOR__RULES",
                "x",
                "MODELWATCH__MONITOR__RULES",
            ),
            ("MODELWATCH__MONITOR__WINDOW", "2.5", "monitor.window"),
        ] {
            let err = load("", &[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{name}={value}: {err}");
        }
        let s = load(
            "",
            &[
                ("MODELWATCH__MONITOR__WINDOW", "250"),
                ("MODELWATCH__MONITOR__ENABLED", "false"),
            ],
        )
        .unwrap();
        assert_eq!((s.monitor.window, s.monitor.enabled), (250, false));
    }

    #[test]
    fn a_flag_value_is_checked_like_the_key() {
        let err = settings_with(&["--http-listen", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("http.listen"), "{err}");
        let err = settings_with(&["--rate", "-1"]).unwrap_err();
        assert!(err.to_string().contains("source.rate"), "{err}");
        let err = settings_with(&["--scenario", "bmi/=2"]).unwrap_err();
        assert!(err.to_string().contains("--scenario"), "{err}");
        let err = settings_with(&["--scenario", "bmj+=2"]).unwrap_err();
        assert!(
            err.to_string().contains("source.scenario.shift.bmj"),
            "{err}"
        );
        let err = settings_with(&["--scenario", "start=10,bmi+=1", "--count", "10"]).unwrap_err();
        assert!(err.to_string().contains("source.scenario.start"), "{err}");
        let err = settings_with(&["--monitor-window", "0"]).unwrap_err();
        assert!(err.to_string().contains("monitor.window"), "{err}");
    }
}
