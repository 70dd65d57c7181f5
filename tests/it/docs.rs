//! The configuration reference, `docs/configuration.md`, kept equal to
//! `config/default.toml`, the file the binary compiles in as its defaults.
//!
//! Why: the table was a hand copy that nothing checked (issue 19, item 3);
//! a key added, renamed or re-defaulted in one place and not the other now
//! fails here. The checks:
//!
//! - every key of `config/default.toml` (a dotted path such as
//!   `bridge.url`; `monitor.rules`, an array of tables, is one key) is a row
//!   of the table "Every key" with the same default (compared as TOML
//!   values); a key whose line is commented out (`# seed = 7`,
//!   `# [source.scenario]`) is a row whose default reads "absent";
//! - every row of the table is a key of the file;
//! - a file made of the table's defaults is accepted by the program
//!   (`modelwatch config --config FILE`, exit 0) and prints the same
//!   effective settings as `config/default.toml` (so the table holds no key
//!   the loader refuses and no default it would read otherwise);
//! - the comparison itself fails when a key is taken out of either side or a
//!   default changes (tested on edited copies of the two texts).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// A key's default: set (its value), commented out (absent by default), or
/// a list of tables (counted).
#[derive(Debug, Clone, PartialEq)]
enum KeyDefault {
    Value(toml::Value),
    Absent,
    Tables(usize),
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(MANIFEST).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, KeyDefault>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
                out.insert(key, KeyDefault::Tables(a.len()));
            }
            v => {
                out.insert(key, KeyDefault::Value(v.clone()));
            }
        }
    }
}

/// `# name = ...` with a key-like name (not `# 0 = no bound`).
fn commented_key(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    let (name, _) = rest.split_once(" = ")?;
    let first = name.chars().next()?;
    (first.is_ascii_lowercase()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    .then_some(name)
}

/// Every key of the file: set keys with their values, commented-out keys
/// and tables as absent.
fn file_keys(text: &str) -> Result<BTreeMap<String, KeyDefault>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("default.toml: {e}"))?;
    let mut keys = BTreeMap::new();
    flatten("", &table, &mut keys);
    let mut section = String::new();
    let mut in_commented_table = false;
    for line in text.lines() {
        let line = line.trim_end();
        if !line.starts_with('#') {
            in_commented_table = false;
        }
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            section = name.to_owned();
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some(name) = line
            .strip_prefix("# [[")
            .and_then(|l| l.strip_suffix("]]"))
            .or_else(|| line.strip_prefix("# [").and_then(|l| l.strip_suffix(']')))
        {
            keys.entry(name.to_owned()).or_insert(KeyDefault::Absent);
            in_commented_table = true;
        } else if let Some(name) = commented_key(line) {
            if !in_commented_table {
                let key = if section.is_empty() {
                    name.to_owned()
                } else {
                    format!("{section}.{name}")
                };
                keys.entry(key).or_insert(KeyDefault::Absent);
            }
        }
    }
    Ok(keys)
}

/// A row of the table: its key, its default, and the default's text.
struct Row {
    key: String,
    default: KeyDefault,
    text: String,
    line: usize,
}

/// The rows of the section "Every key" of the doc.
fn doc_rows(doc: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut in_section = false;
    for (i, line) in doc.lines().enumerate() {
        if line.starts_with("## ") {
            in_section = line == "## Every key";
            continue;
        }
        if !in_section || !line.starts_with("| `") {
            continue;
        }
        let at = || format!("docs/configuration.md:{}", i + 1);
        let cells: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
        let [_, key, default, _] = cells[..] else {
            return Err(format!("{}: not a row of three cells", at()));
        };
        let key = key
            .strip_prefix('`')
            .and_then(|k| k.strip_suffix('`'))
            .filter(|k| !k.contains('`'))
            .ok_or_else(|| format!("{}: the key cell must be one `key`: {key}", at()))?;
        let parsed = if let Some(v) = default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) {
            let t: toml::Table = toml::from_str(&format!("v = {v}"))
                .map_err(|e| format!("{}: default {v} is not a TOML value: {e}", at()))?;
            KeyDefault::Value(t["v"].clone())
        } else if default.starts_with("absent") {
            KeyDefault::Absent
        } else if let Some(n) = default.strip_suffix(" rules") {
            KeyDefault::Tables(
                n.parse()
                    .map_err(|_| format!("{}: {default}: not `N rules`", at()))?,
            )
        } else {
            return Err(format!(
                "{}: default {default:?}: a `value`, \"absent\" or \"N rules\"",
                at()
            ));
        };
        rows.push(Row {
            key: key.to_owned(),
            default: parsed,
            text: default.to_owned(),
            line: i + 1,
        });
    }
    if rows.is_empty() {
        return Err("docs/configuration.md: no table under \"## Every key\"".into());
    }
    Ok(rows)
}

/// What differs between the file and the doc's table; empty when equal.
fn compare(file: &str, doc: &str) -> Vec<String> {
    let keys = match file_keys(file) {
        Ok(k) => k,
        Err(e) => return vec![e],
    };
    let rows = match doc_rows(doc) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    let mut seen = BTreeMap::new();
    for row in &rows {
        if let Some(first) = seen.insert(row.key.clone(), row.line) {
            errors.push(format!(
                "docs/configuration.md:{}: `{}` again (first at line {first})",
                row.line, row.key
            ));
        }
        match keys.get(&row.key) {
            None => errors.push(format!(
                "docs/configuration.md:{}: `{}` is not a key of config/default.toml",
                row.line, row.key
            )),
            Some(d) if *d != row.default => errors.push(format!(
                "docs/configuration.md:{}: `{}` defaults to {} in the doc, {d:?} in config/default.toml",
                row.line, row.key, row.text
            )),
            Some(_) => {}
        }
    }
    for key in keys.keys() {
        if !seen.contains_key(key) {
            errors.push(format!(
                "config/default.toml: `{key}` has no row in docs/configuration.md (\"Every key\")"
            ));
        }
    }
    errors
}

#[test]
fn the_configuration_table_equals_config_default_toml() {
    let errors = compare(&read("config/default.toml"), &read("docs/configuration.md"));
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn a_key_taken_out_of_either_side_or_a_changed_default_is_caught() {
    let file = read("config/default.toml");
    let doc = read("docs/configuration.md");
    assert!(compare(&file, &doc).is_empty());

    let without = |text: &str, line: &str| {
        assert!(text.contains(line), "{line:?} not found");
        text.replacen(line, "", 1)
    };
    // A key out of the file.
    let errors = compare(&without(&file, "\nmax_in_flight = 4\n"), &doc);
    assert!(
        errors.iter().any(|e| e.contains("`source.max_in_flight`")),
        "{errors:?}"
    );
    // A commented-out key out of the file.
    let errors = compare(&without(&file, "\n# seed = 7\n"), &doc);
    assert!(
        errors.iter().any(|e| e.contains("`source.seed`")),
        "{errors:?}"
    );
    // A row out of the doc.
    let row = doc
        .lines()
        .find(|l| l.starts_with("| `http.write_timeout` |"))
        .expect("the row of http.write_timeout");
    let errors = compare(&file, &without(&doc, &format!("{row}\n")));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`http.write_timeout` has no row")),
        "{errors:?}"
    );
    // A default changed in the doc.
    let errors = compare(
        &file,
        &doc.replacen("| `plot.bins` | `40` |", "| `plot.bins` | `41` |", 1),
    );
    assert!(
        errors.iter().any(|e| e.contains("`plot.bins` defaults to")),
        "{errors:?}"
    );
    // A rule more in the file.
    let errors = compare(
        &format!(
            "{file}\n[[monitor.rules]]\nname = \"x\"\nmetric = \"mae\"\nop = \">\"\nvalue = 99.0\n"
        ),
        &doc,
    );
    assert!(
        errors.iter().any(|e| e.contains("`monitor.rules`")),
        "{errors:?}"
    );
}

/// `modelwatch config --config FILE` in `dir`, without the caller's
/// `MODELWATCH*` and `AMQP_URL`: its stdout.
fn effective(dir: &Path, file: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelwatch"));
    cmd.arg("config").arg("--config").arg(file).current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MODELWATCH") || k == "AMQP_URL" {
            cmd.env_remove(&k);
        }
    }
    let out = cmd.output().expect("running modelwatch config");
    assert!(
        out.status.success(),
        "modelwatch config --config {}: {}\n{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_program_accepts_the_tables_defaults_and_reads_them_as_config_default_toml() {
    let rows = doc_rows(&read("docs/configuration.md")).unwrap_or_else(|e| panic!("{e}"));
    let mut top = String::new();
    let mut sections: BTreeMap<&str, String> = BTreeMap::new();
    for row in &rows {
        let KeyDefault::Value(_) = row.default else {
            continue;
        };
        let value = row.text.trim_matches('`');
        match row.key.rsplit_once('.') {
            None => top.push_str(&format!("{} = {value}\n", row.key)),
            Some((section, key)) => sections
                .entry(section)
                .or_default()
                .push_str(&format!("{key} = {value}\n")),
        }
    }
    let mut text = top;
    for (section, body) in sections {
        text.push_str(&format!("\n[{section}]\n{body}"));
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let from_doc = dir.path().join("from_doc.toml");
    std::fs::write(&from_doc, &text).unwrap();
    let doc = effective(dir.path(), &from_doc);
    let file = effective(dir.path(), &Path::new(MANIFEST).join("config/default.toml"));
    assert_eq!(
        doc, file,
        "the table's defaults read otherwise than config/default.toml; the file made of them:\n{text}"
    );
}

/// A heading's anchor as GitHub makes it: lower case, spaces to `-`,
/// punctuation other than `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of the headings of a markdown text (outside fenced blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fence = 0;
    let mut out = Vec::new();
    for line in text.lines() {
        let ticks = line.chars().take_while(|&c| c == '`').count();
        if ticks >= 3 && (fence == 0 || (ticks >= fence && line.trim_end().len() == ticks)) {
            fence = if fence == 0 { ticks } else { 0 };
            continue;
        }
        if fence == 0 && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn the_links_between_the_readme_and_the_docs_resolve() {
    let mut pages = vec!["README.md".to_owned()];
    for e in std::fs::read_dir(Path::new(MANIFEST).join("docs"))
        .expect("docs/")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            pages.push(format!("docs/{name}"));
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = read(page);
        let dir = Path::new(page).parent().unwrap_or(Path::new(""));
        for (i, piece) in text.split("](").enumerate().skip(1) {
            let Some(target) = piece.split(')').next() else {
                continue;
            };
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if file.is_empty() {
                Path::new(page).to_path_buf()
            } else {
                // Relative to the page; normalise `docs/../X` to `X`.
                let mut p = std::path::PathBuf::new();
                for c in dir.join(file).components() {
                    match c {
                        std::path::Component::ParentDir => {
                            p.pop();
                        }
                        c => p.push(c),
                    }
                }
                p
            };
            let rel = resolved.to_string_lossy().into_owned();
            checked += 1;
            let Ok(target_text) = std::fs::read(Path::new(MANIFEST).join(&resolved)) else {
                broken.push(format!("{page} (link {i}): {target}: no file {rel}"));
                continue;
            };
            if !anchor.is_empty() {
                let target_text = String::from_utf8_lossy(&target_text);
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    broken.push(format!(
                        "{page} (link {i}): {target}: no heading #{anchor} in {rel}"
                    ));
                }
            }
        }
    }
    assert!(checked > 10, "only {checked} links found");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
