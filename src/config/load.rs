//! Loading: where the settings come from and how the layers combine.
//!
//! The built-in defaults, then a TOML file, then environment variables
//! `MODELWATCH__SECTION__KEY`, then `AMQP_URL`, then the command-line flags
//! ([`Overrides`]); every value is then checked ([`Settings::validate`]).
//! Before the `config` crate sees them, the file and the environment are
//! checked against the types of the built-in defaults, because `config`
//! would round a float into an integer key and silently ignore a variable
//! spelt with one underscore. A file is read bounded; a syntax error gives
//! the position, never the line (which may hold a password).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::redact::{sanitize, shown_path};
use super::{ConfigError, Overrides, Settings, CONFIG_ENV, ENV_PREFIX, IMPLICIT_CONFIG};

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

impl Settings {
    /// Reads `path`, applies `MODELWATCH__*` environment overrides and `overrides`,
    /// then checks every value.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(path, overrides, std::env::vars().collect())
    }

    /// As [`Settings::load`], from `source` (a file or the built-in defaults).
    pub fn load_from(
        source: &ConfigSource,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        Self::load_source(source.path(), overrides, std::env::vars().collect())
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
        let schema = toml::Value::try_from(Settings::default())
            .expect("settings always serialize")
            .try_into::<toml::Table>()
            .expect("settings serialize to a table");
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
        let env_map = env
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
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
                    .source(Some(env_map)),
            )
            .build()
            .map_err(|e| ConfigError::Load(sanitize(&e.to_string())))?;
        let mut settings: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(sanitize(&e.to_string())))?;
        // `AMQP_URL` is what the Python services read; a flag wins over it.
        if let Some((_, url)) = env.iter().find(|(k, _)| k == "AMQP_URL") {
            settings.bridge.url = url.clone();
            settings.bridge.enabled = true;
        }
        overrides.apply(&mut settings);
        settings.inbound.resolve_legacy();
        settings.validate()?;
        Ok(settings)
    }
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

/// The kind of value a key takes, from the built-in defaults (`source.seed`,
/// absent by default, is an integer). `None`: not a key (serde names it).
fn expected<'a>(schema: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    const SEED: toml::Value = toml::Value::Integer(0);
    if path == ["source", "seed"] {
        return Some(&SEED);
    }
    let (last, sections) = path.split_last()?;
    let mut table = schema;
    for s in sections {
        table = table.get(*s)?.as_table()?;
    }
    table.get(*last)
}

/// The file's values have the type of their key: a float in an integer key
/// is refused (the config crate would round it), so are a string in a
/// number key and the like. Unknown keys are left to serde, which names them.
fn check_file_types(
    schema: &toml::Table,
    table: &toml::Table,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = format!("{prefix}{k}");
        let path: Vec<&str> = key.split('.').collect();
        let Some(want) = expected(schema, &path) else {
            continue;
        };
        let ok = match (want, v) {
            (toml::Value::Table(_), toml::Value::Table(inner)) => {
                check_file_types(schema, inner, &format!("{key}."))?;
                true
            }
            (toml::Value::Integer(_), toml::Value::Integer(_)) => true,
            (toml::Value::Integer(_), toml::Value::Float(f)) => {
                return Err(ConfigError::invalid(
                    &key,
                    format!("must be a whole number, got {f}"),
                ))
            }
            (toml::Value::Float(_), toml::Value::Float(_) | toml::Value::Integer(_)) => true,
            (a, b) => a.same_type(b),
        };
        if !ok {
            return Err(ConfigError::invalid(
                &key,
                format!("must be {}, got {}", type_name(want), type_name(v)),
            ));
        }
    }
    Ok(())
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
