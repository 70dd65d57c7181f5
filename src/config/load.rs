//! Loading: where the settings come from and how the layers combine.
//!
//! The built-in defaults, then a TOML file, then environment variables
//! `MODELWATCH__SECTION__KEY`, then `AMQP_URL`, then the command-line flags
//! ([`Overrides`]); every value is then checked ([`Settings::validate`]).
//! Before the `config` crate sees them, the file and the environment are
//! checked against the types of the built-in defaults, because `config`
//! would round a float into an integer key and silently ignore a variable
//! spelt with one underscore. A file is read bounded; a syntax error gives
//! the position, never the line (which may hold a password). An error about
//! a value that came from the environment names the variable and never
//! quotes the value, which may be a secret put in the wrong variable
//! ([`ConfigError::traced_to_env`]): `MODELWATCH__BRIDGE__ON_FULL (bridge.on_full):
//! not one of block, drop_oldest`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use super::monitor::{default_rules, RuleSettings};
use super::scenario::{parse_spec, ScenarioSettings};
use super::{ConfigError, Overrides, Settings, CONFIG_ENV, ENV_PREFIX, IMPLICIT_CONFIG};
use crate::core::data::FEATURE_NAMES;
use crate::core::text::{sanitize, shown_path};

/// Largest config file read; a config is a few KiB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Where the settings come from, in the order the program looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Named by `--config` or `MODELWATCH_CONFIG`: it must exist.
    Named(PathBuf),
    /// `config/default.toml` found in the current dir.
    Found(PathBuf),
    /// No file: the built-in defaults (plus environment and flags).
    BuiltIn,
}

impl ConfigSource {
    /// The named file, else `config/default.toml` if the current dir has
    /// one, else the built-in defaults: the program runs from any folder.
    pub fn resolve(named: Option<&Path>) -> ConfigSource {
        match named {
            Some(p) => ConfigSource::Named(p.to_owned()),
            None if Path::new(IMPLICIT_CONFIG).is_file() => {
                ConfigSource::Found(PathBuf::from(IMPLICIT_CONFIG))
            }
            None => ConfigSource::BuiltIn,
        }
    }

    /// The file read, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigSource::Named(p) | ConfigSource::Found(p) => Some(p),
            ConfigSource::BuiltIn => None,
        }
    }

    /// For the one INFO line that says where the settings came from.
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::Named(p) | ConfigSource::Found(p) => {
                format!("config file {}", shown_path(p))
            }
            ConfigSource::BuiltIn => format!(
                "the built-in defaults (no --config, no {CONFIG_ENV}, no ./{IMPLICIT_CONFIG})"
            ),
        }
    }
}

/// The features' own checks of what their sections mean (the alert rules,
/// the scenario against the data set), run after every shape check, their
/// errors named and traced to the environment like the shape checks'.
/// Given by the layer above the features (`pipeline::check::semantics`):
/// config checks the shape of values and never imports a feature.
pub type Semantics = fn(&Settings) -> Result<(), ConfigError>;

/// No semantic checks: the shape only (tests of the loader itself).
fn shape_only(_: &Settings) -> Result<(), ConfigError> {
    Ok(())
}

impl Settings {
    /// Reads `path`, applies `MODELWATCH__*` environment overrides and `overrides`,
    /// then checks every value.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(path, overrides, std::env::vars().collect())
    }

    /// As [`Settings::load`], from `source` (a file or the built-in
    /// defaults), with the features' `semantics` checked too.
    pub fn load_from(
        source: &ConfigSource,
        overrides: &Overrides,
        semantics: Semantics,
    ) -> Result<Settings, ConfigError> {
        let result = Self::load_source_with(
            source.path(),
            overrides,
            std::env::vars().collect(),
            semantics,
        );
        // A file named by `MODELWATCH_CONFIG` (not by `--config`) is named
        // by the variable: the environment's values are not quoted back.
        let from_env = match source {
            ConfigSource::Named(p) => {
                std::env::var_os(CONFIG_ENV).is_some_and(|v| p == Path::new(&v))
            }
            _ => false,
        };
        match result {
            Err(e) if from_env => Err(e.file_named_by(&format!("named by {CONFIG_ENV}"))),
            other => other,
        }
    }

    /// As [`Settings::load`], with an explicit environment (for tests).
    pub fn load_with_env(
        path: &Path,
        overrides: &Overrides,
        env: Vec<(String, String)>,
    ) -> Result<Settings, ConfigError> {
        Self::load_source(Some(path), overrides, env)
    }

    /// The built-in defaults, the file at `path` if any, the environment
    /// `env`, then `overrides`; every value checked.
    pub fn load_source(
        path: Option<&Path>,
        overrides: &Overrides,
        env: Vec<(String, String)>,
    ) -> Result<Settings, ConfigError> {
        Self::load_source_with(path, overrides, env, shape_only)
    }

    /// As [`Settings::load_source`], with the features' `semantics`
    /// checked after the shape of every value.
    pub fn load_source_with(
        path: Option<&Path>,
        overrides: &Overrides,
        env: Vec<(String, String)>,
        semantics: Semantics,
    ) -> Result<Settings, ConfigError> {
        let sources = env_sources(&env, overrides);
        Self::load_layers(path, overrides, env, semantics).map_err(|e| e.traced_to_env(&sources))
    }

    /// The layers of [`Settings::load_source`], before errors are traced
    /// back to the environment.
    fn load_layers(
        path: Option<&Path>,
        overrides: &Overrides,
        env: Vec<(String, String)>,
        semantics: Semantics,
    ) -> Result<Settings, ConfigError> {
        let schema = schema();
        let text = match path {
            Some(path) => {
                let text = read_config_file(path)?;
                let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                    ConfigError::file(path, syntax_error(&text, &e))
                })?;
                check_file_types(&schema, &table, "")?;
                Some(text)
            }
            None => None,
        };
        check_env_names(&env)?;
        check_env_values(&schema, &env)?;
        let env_scenario = env_scenario(&env)?;
        let env_map = env
            .iter()
            .filter(|(k, _)| {
                k.starts_with(&format!("{ENV_PREFIX}__")) && !k.eq_ignore_ascii_case(SCENARIO_ENV)
            })
            .cloned()
            .collect();
        let mut builder = config::Config::builder();
        if let Some(text) = &text {
            builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
        }
        let raw = builder
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("roles")
                    .with_list_parse_key("data.categorical")
                    .source(Some(env_map)),
            )
            .build()
            .map_err(ConfigError::from_crate)?;
        let mut settings: Settings = raw.try_deserialize().map_err(ConfigError::from_crate)?;
        if env_scenario.is_some() {
            settings.source.scenario = env_scenario;
        }
        // `AMQP_URL` is what the Python services read; a flag wins over it.
        if let Some((_, url)) = env.iter().find(|(k, _)| k == "AMQP_URL") {
            settings.bridge.url = url.clone();
            settings.bridge.enabled = true;
        }
        overrides.apply(&mut settings)?;
        settings.inbound.resolve_legacy();
        settings.validate()?;
        semantics(&settings)?;
        Ok(settings)
    }
}

/// A key whose value came from an environment variable.
#[derive(Debug)]
pub(super) struct EnvSource {
    /// The key, dotted (`bridge.on_full`).
    key: String,
    /// The variable (`MODELWATCH__BRIDGE__ON_FULL`).
    var: String,
    /// Its value, never to be quoted in a message.
    value: String,
}

/// The keys the environment sets (`MODELWATCH__SECTION__KEY`, and
/// `AMQP_URL` for `bridge.url`), except those a flag sets again (the flag
/// wins, and an error is the flag's).
fn env_sources(env: &[(String, String)], overrides: &Overrides) -> Vec<EnvSource> {
    let prefix = format!("{ENV_PREFIX}__");
    let by_flag = |key: &str| match key {
        "bridge.url" => overrides.amqp_url.is_some(),
        "roles" => overrides.roles.is_some(),
        "http.listen" => overrides.http_listen.is_some(),
        "source.scenario" => overrides.scenario.is_some(),
        "logs.dir" => overrides.logs_dir.is_some(),
        _ => false,
    };
    env.iter()
        .filter_map(|(var, value)| {
            let key = match var.strip_prefix(&prefix) {
                Some(rest) => rest
                    .to_ascii_lowercase()
                    .split("__")
                    .collect::<Vec<_>>()
                    .join("."),
                None if var == "AMQP_URL" => "bridge.url".to_owned(),
                None => return None,
            };
            (!by_flag(&key)).then(|| EnvSource {
                key,
                var: var.clone(),
                value: value.clone(),
            })
        })
        .collect()
}

impl ConfigError {
    /// An error of the `config` crate: with the key it names, if any, so
    /// that [`ConfigError::traced_to_env`] can trace it to a variable.
    fn from_crate(e: config::ConfigError) -> ConfigError {
        let key = match &e {
            config::ConfigError::At { key, .. } | config::ConfigError::Type { key, .. } => {
                key.clone()
            }
            _ => None,
        };
        let expected = match &e {
            config::ConfigError::Type { expected, .. } => Some(*expected),
            config::ConfigError::At { error, .. } => match error.as_ref() {
                config::ConfigError::Type { expected, .. } => Some(*expected),
                _ => None,
            },
            _ => None,
        };
        let text = sanitize(&e.to_string());
        match key {
            Some(key) => ConfigError::Parse {
                key: sanitize(&key),
                expected,
                text,
            },
            None => ConfigError::Load(text),
        }
    }

    /// The error as it is shown when the value at fault came from the
    /// environment: named by the variable, the value never quoted (it may
    /// be a secret put in the wrong variable), what the key takes instead.
    pub(super) fn traced_to_env(self, sources: &[EnvSource]) -> ConfigError {
        let find = |key: &str| {
            sources.iter().rev().find(|s| {
                key == s.key
                    || key
                        .strip_prefix(s.key.as_str())
                        .is_some_and(|rest| rest.starts_with(['[', '.']))
            })
        };
        let named = |s: &EnvSource, key: &str, problem: String| ConfigError::Invalid {
            key: format!("{} ({key})", s.var),
            problem,
        };
        match self {
            ConfigError::Parse {
                key,
                expected,
                text,
            } => match find(&key) {
                Some(s) => named(s, &key, expected_form(&s.key, expected)),
                None => ConfigError::Load(text),
            },
            ConfigError::Invalid { key, problem } => match find(&key) {
                Some(s) => {
                    let problem = without_value(&problem, &s.value)
                        .unwrap_or_else(|| expected_form(&s.key, None));
                    named(s, &key, problem)
                }
                None => ConfigError::Invalid { key, problem },
            },
            // No key named: the variable whose value the text quotes.
            ConfigError::Load(text) => {
                match sources
                    .iter()
                    .find(|s| contains_token(&text, s.value.trim()))
                {
                    Some(s) => named(s, &s.key, expected_form(&s.key, None)),
                    None => ConfigError::Load(text),
                }
            }
            other => other,
        }
    }
}

/// What `key` takes, for a value from the environment that did not parse.
fn expected_form(key: &str, expected: Option<&str>) -> String {
    let listed = |names: Vec<String>| names.join(", ");
    let enum_names = |v: toml::Value| match v {
        toml::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        toml::Value::String(s) => vec![s],
        _ => Vec::new(),
    };
    match key {
        "roles" => format!(
            "not a list of roles (comma-separated: {})",
            listed(enum_names(
                toml::Value::try_from(super::Role::ALL).unwrap_or(toml::Value::Array(Vec::new()))
            ))
        ),
        "bridge.on_full" => format!(
            "not one of {}",
            listed(
                [super::OnFull::Block, super::OnFull::DropOldest]
                    .into_iter()
                    .flat_map(|v| enum_names(
                        toml::Value::try_from(v).unwrap_or(toml::Value::Array(Vec::new()))
                    ))
                    .collect()
            )
        ),
        "inbound.queue_type" => "not one of \"classic\", \"quorum\"".to_owned(),
        _ => match expected {
            Some("a duration") => "not a duration (such as \"500ms\", \"2s\" or \"1m\")".to_owned(),
            Some(what) => format!("does not parse: {what} expected"),
            None if is_duration_key(key) => {
                "not a duration (such as \"500ms\", \"2s\" or \"1m\")".to_owned()
            }
            None => "does not parse (`modelwatch config --default` shows what each key takes)"
                .to_owned(),
        },
    }
}

/// `key`'s default is a duration (`"1m"`).
fn is_duration_key(key: &str) -> bool {
    let path: Vec<&str> = key.split('.').collect();
    expected(&schema(), &path)
        .and_then(toml::Value::as_str)
        .is_some_and(|d| humantime::parse_duration(d).is_ok())
}

/// `problem` without the value it quotes: what follows its last "got",
/// and every quoted part of `value`; `None` if the value is still in it.
fn without_value(problem: &str, value: &str) -> Option<String> {
    let value = value.trim();
    let mut p = match [", got ", "; got ", " got "]
        .iter()
        .filter_map(|m| problem.rfind(m))
        .max()
    {
        Some(at) => problem[..at].to_owned(),
        None => problem.to_owned(),
    };
    // Quoted parts of the value (a scenario's items): removed.
    let mut out = String::with_capacity(p.len());
    let mut rest = p.as_str();
    while let Some(open) = rest.find('"') {
        let Some(len) = rest[open + 1..].find('"') else {
            break;
        };
        let inner = &rest[open + 1..open + 1 + len];
        out.push_str(&rest[..open]);
        if !inner.is_empty() && value.contains(inner.replace("\\\"", "\"").as_str()) {
            out.push_str("(a part of the value)");
        } else {
            out.push_str(&rest[open..open + len + 2]);
        }
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    p = out;
    let p = p.trim_end_matches([',', ';', ':', ' ']).to_owned();
    let shown = sanitize(value);
    if p.is_empty() || contains_token(&p, value) || contains_token(&p, &shown) {
        None
    } else {
        Some(p)
    }
}

/// `needle` occurs in `hay` not inside a longer word.
fn contains_token(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    hay.match_indices(needle).any(|(at, _)| {
        !word(hay[..at].chars().next_back()) && !word(hay[at + needle.len()..].chars().next())
    })
}

/// `MODELWATCH_SOURCE__RATE` (one underscore after the prefix) would be ignored
/// by the environment source: refuse it instead of silently using the default.
fn check_env_names(env: &[(String, String)]) -> Result<(), ConfigError> {
    let single = format!("{ENV_PREFIX}_");
    let double = format!("{ENV_PREFIX}__");
    for (k, _) in env {
        if k.starts_with(&single) && !k.starts_with(&double) && k != CONFIG_ENV {
            return Err(ConfigError::invalid(
                k,
                format!("environment overrides are spelt {double}SECTION__KEY (two underscores)"),
            ));
        }
    }
    Ok(())
}

/// Reads a config file, refusing a directory, an unreadable or a huge file.
fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing(shown_path(path)))
        }
        Err(e) => return Err(ConfigError::file(path, format!("cannot read: {e}"))),
    };
    if meta.is_dir() {
        return Err(ConfigError::IsDirectory(shown_path(path)));
    }
    // Bounded even when the size is unknown (a pipe, /dev/zero).
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::file(
            path,
            format!("larger than {MAX_CONFIG_BYTES} bytes: not a config"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        ConfigError::file(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// A TOML syntax error as position and parser message, never the quoted
/// line (which may hold a password).
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(
                "TOML syntax error at line {line}, column {column}: {}",
                e.message().trim()
            )
        }
        None => format!("TOML syntax error: {}", e.message().trim()),
    }
}

/// The kind of value every key takes: the built-in defaults, plus the keys
/// that are absent by default (`source.seed`, `source.scenario`) and the
/// fields of a rule, every one of them present.
fn schema() -> toml::Table {
    let mut schema = toml::Value::try_from(Settings::default())
        .expect("settings always serialize")
        .try_into::<toml::Table>()
        .expect("settings serialize to a table");
    let every_feature: BTreeMap<String, f64> =
        FEATURE_NAMES.iter().map(|f| (f.to_string(), 1.0)).collect();
    let scenario = ScenarioSettings {
        shift: every_feature.clone(),
        scale: every_feature,
        ..ScenarioSettings::default()
    };
    let rule = RuleSettings {
        value: Some(0.0),
        relative: Some(0.0),
        sigmas: Some(0.0),
        resolve_after: Some(1),
        ..default_rules().remove(0)
    };
    let section = |schema: &mut toml::Table, name: &str, key: &str, value: toml::Value| {
        schema
            .get_mut(name)
            .and_then(toml::Value::as_table_mut)
            .expect("every section serializes as a table")
            .insert(key.to_owned(), value);
    };
    section(&mut schema, "source", "seed", toml::Value::Integer(0));
    section(
        &mut schema,
        "source",
        "scenario",
        toml::Value::try_from(scenario).expect("a scenario serializes"),
    );
    section(
        &mut schema,
        "monitor",
        "rules",
        toml::Value::Array(vec![toml::Value::try_from(rule).expect("a rule serializes")]),
    );
    let column = super::data::ColumnSettings {
        name: "c".into(),
        kind: Some(super::data::ColumnType::Numeric),
        min: Some(0.0),
        max: Some(1.0),
        levels: vec!["a".into()],
        ..Default::default()
    };
    section(
        &mut schema,
        "data",
        "columns",
        toml::Value::Array(vec![
            toml::Value::try_from(column).expect("a column serializes")
        ]),
    );
    schema
}

/// The kind of value a key takes, from [`schema`]. `None`: not a key (serde names it).
fn expected<'a>(schema: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, sections) = path.split_last()?;
    let mut table = schema;
    for s in sections {
        table = table.get(*s)?.as_table()?;
    }
    table.get(*last)
}

/// The file's values have the type of their key: a float in an integer key
/// is refused (the config crate would round it), so are a string in a
/// number key and the like, down into tables and lists of tables (a rule
/// of `monitor.rules`). Unknown keys are left to serde, which names them.
fn check_file_types(
    schema: &toml::Table,
    table: &toml::Table,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        if let Some(want) = schema.get(k) {
            check_type(want, v, &format!("{prefix}{k}"))?;
        }
    }
    Ok(())
}

/// `v`, the value of `key`, has the type of `want`.
fn check_type(want: &toml::Value, v: &toml::Value, key: &str) -> Result<(), ConfigError> {
    let ok = match (want, v) {
        (toml::Value::Table(want), toml::Value::Table(inner)) => {
            check_file_types(want, inner, &format!("{key}."))?;
            true
        }
        (toml::Value::Array(want), toml::Value::Array(items)) => {
            if let Some(item_type) = want.first() {
                for (i, item) in items.iter().enumerate() {
                    check_type(item_type, item, &format!("{key}[{i}]"))?;
                }
            }
            true
        }
        (toml::Value::Integer(_), toml::Value::Integer(_)) => true,
        (toml::Value::Integer(_), toml::Value::Float(f)) => {
            return Err(ConfigError::invalid(
                key,
                format!("must be a whole number, got {f}"),
            ))
        }
        (toml::Value::Float(_), toml::Value::Float(_) | toml::Value::Integer(_)) => true,
        (a, b) => a.same_type(b),
    };
    if !ok {
        return Err(ConfigError::invalid(
            key,
            format!("must be {}, got {}", type_name(want), type_name(v)),
        ));
    }
    Ok(())
}

/// `MODELWATCH__SOURCE__SCENARIO`, the compact form of `--scenario`.
const SCENARIO_ENV: &str = "MODELWATCH__SOURCE__SCENARIO";

/// The scenario of [`SCENARIO_ENV`], if set. Lists and tables below it do
/// not fit a variable: `MODELWATCH__SOURCE__SCENARIO__*` and
/// `MODELWATCH__MONITOR__RULES*` are refused with that advice (the config
/// crate would otherwise fail on them with a less helpful message).
fn env_scenario(env: &[(String, String)]) -> Result<Option<ScenarioSettings>, ConfigError> {
    let mut found = None;
    for (k, v) in env {
        let upper = k.to_ascii_uppercase();
        if upper == SCENARIO_ENV {
            // The problem without the value's quoted items.
            found = Some(parse_spec(v).map_err(|p| {
                let problem = without_value(&sanitize(&p), v)
                    .unwrap_or_else(|| expected_form("source.scenario", None));
                ConfigError::invalid(&format!("{k} (source.scenario)"), problem)
            })?);
        } else if upper.starts_with(&format!("{SCENARIO_ENV}__")) {
            return Err(ConfigError::invalid(
                k,
                format!("set the whole scenario in its compact form, {SCENARIO_ENV}=start=1000,bmi+=5 (as --scenario), or in the config file"),
            ));
        } else if upper.starts_with(&format!("{ENV_PREFIX}__MONITOR__RULES")) {
            return Err(ConfigError::invalid(
                k,
                "alert rules are a list: they come from the config file ([[monitor.rules]]), not the environment",
            ));
        } else if upper.starts_with(&format!("{ENV_PREFIX}__DATA__COLUMNS")) {
            return Err(ConfigError::invalid(
                k,
                "declared columns are a list: they come from the config file ([[data.columns]]), not the environment",
            ));
        }
    }
    Ok(found)
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::Integer(_) => "a whole number",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::String(_) => "a string",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a section",
        toml::Value::Datetime(_) => "a date",
    }
}

/// Environment values of number and boolean keys must parse as such: a
/// float in an integer key is refused (the config crate would round it).
/// Values that do not parse are not quoted (they may be a secret put in the
/// wrong variable).
fn check_env_values(schema: &toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    let prefix = format!("{ENV_PREFIX}__");
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let path: Vec<&str> = lower.split("__").collect();
        let Some(want) = expected(schema, &path) else {
            continue;
        };
        let key = format!("{name} ({})", path.join("."));
        let v = value.trim();
        let number = v.parse::<f64>().ok().filter(|f| f.is_finite());
        let problem = match want {
            toml::Value::Integer(_) if v.parse::<i64>().is_err() => Some(match number {
                Some(f) => format!("must be a whole number, got {f}"),
                None => "must be a whole number".to_owned(),
            }),
            toml::Value::Float(_) if v.parse::<f64>().is_err() => {
                Some("must be a number".to_owned())
            }
            toml::Value::Boolean(_)
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
            {
                Some("must be true or false".to_owned())
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(ConfigError::invalid(&key, problem));
        }
    }
    Ok(())
}
