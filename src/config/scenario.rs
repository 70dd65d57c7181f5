//! `source.scenario`: shift the stream on purpose, from a given sample on,
//! so that the monitor can be seen to work (and tests can prove it does).
//!
//! Off by default (absent). In the file it is a table:
//!
//! ```toml
//! [source.scenario]
//! start = 20000            # 0-based count of samples emitted
//! target_bias = 10.0       # added to the true target
//! target_noise = 20.0      # std of Gaussian noise added to the true target
//! shift = { bmi = 5.0 }    # added to the raw value (raw units: kg/m²)
//! scale = { s5 = 1.2 }     # multiplies the raw value (before the shift)
//! set = { color = "blue" } # a categorical column of your own data takes this level
//! population = { feature = "age", above = "median" }   # or a number; `below` too
//! ```
//!
//! On the command line (`--scenario`) and in `MODELWATCH__SOURCE__SCENARIO`
//! it has a compact form, items separated by commas ([`parse_spec`]):
//! `start=20000,bmi+=5,s5*=1.2,target+=10,target~=20,age>median`.
//! `F+=X` / `F-=X` shift feature F, `F*=X` scales it, `F=LEVEL` gives a
//! categorical column of the user's own data that level, `target+=X` /
//! `target-=X` bias the target, `target~=X` adds noise of std X,
//! `F>X` / `F<X` (X a number or `median`) keep only that sub-population.
//!
//! The checks that need the data (known features, a non-empty population)
//! are `crate::source::scenario::Plan::new`'s; `start` against `source.count` is
//! checked with the source.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest compact spec accepted.
pub const MAX_SPEC_BYTES: usize = 1024;

/// A shift of the stream from sample `start` on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScenarioSettings {
    /// Samples emitted unchanged before the scenario begins (0-based).
    pub start: u64,
    /// Added to the true target (`None`: not given; a given one that
    /// changes nothing, such as 0, is refused by the check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_bias: Option<f64>,
    /// Standard deviation of the Gaussian noise added to the true target
    /// (`None`: not given; a given 0 is refused by the check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_noise: Option<f64>,
    /// Feature name -> offset added to its raw value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub shift: BTreeMap<String, f64>,
    /// Feature name -> factor its raw value is multiplied by (before the shift).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub scale: BTreeMap<String, f64>,
    /// Categorical column of the user's own data -> the level every row
    /// takes (one the model never saw is a new category, `unseen`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Sample only the rows of a sub-population.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
}

/// The rows whose raw `feature` is strictly above `above` and strictly
/// below `below` (either may be absent, not both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    pub feature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<Cut>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<Cut>,
}

/// A cut of a population: a raw value, or a word (only `"median"`, the
/// feature's median over the data set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cut {
    Value(f64),
    Word(String),
}

impl std::str::FromStr for ScenarioSettings {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_spec(s)
    }
}

/// Parses the compact form (see the module doc). Checks the syntax and
/// duplicates; what needs the data is checked later, like the file's.
pub fn parse_spec(spec: &str) -> Result<ScenarioSettings, String> {
    if spec.len() > MAX_SPEC_BYTES {
        return Err(format!("longer than {MAX_SPEC_BYTES} bytes"));
    }
    let mut s = ScenarioSettings::default();
    let mut seen = std::collections::HashSet::new();
    for item in spec.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("an empty item (two commas, or a comma at an end)".to_owned());
        }
        let shown = crate::core::text::sanitize(item);
        let (name, op, arg) = split_item(item, &shown)?;
        // Each target of each kind once.
        let slot = if op == "-=" { "+=" } else { op };
        if !seen.insert((name.to_owned(), slot)) {
            return Err(format!("{shown:?}: {name} {op} given twice"));
        }
        apply(&mut s, Item { name, op, arg }, &shown)?;
    }
    Ok(s)
}

/// One item of the compact form: `name op arg`.
struct Item<'a> {
    name: &'a str,
    op: &'static str,
    arg: &'a str,
}

/// Splits an item into its name, its operator and its argument (trimmed).
fn split_item<'a>(item: &'a str, shown: &str) -> Result<(&'a str, &'static str, &'a str), String> {
    let name_len = item
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| format!("{shown:?} has no operator (+=, -=, *=, ~=, =, >, <)"))?;
    let (name, rest) = item.split_at(name_len);
    let op = ["+=", "-=", "*=", "~=", "=", ">", "<"]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or_else(|| format!("{shown:?}: unknown operator (+=, -=, *=, ~=, =, >, <)"))?;
    Ok((name, op, rest[op.len()..].trim()))
}

/// Sets on `s` what one item says (`shown`: the item as errors quote it).
fn apply(s: &mut ScenarioSettings, item: Item<'_>, shown: &str) -> Result<(), String> {
    let Item { name, op, arg } = item;
    let number = || -> Result<f64, String> {
        arg.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{shown:?}: {arg:?} is not a finite number"))
    };
    match (name, op) {
        ("start", "=") => {
            s.start = arg
                .parse()
                .map_err(|_| format!("{shown:?}: start must be a whole number"))?
        }
        ("target", "+=") => s.target_bias = Some(number()?),
        ("target", "-=") => s.target_bias = Some(-number()?),
        ("target", "~=") => s.target_noise = Some(number()?),
        ("start" | "target", _) => return Err(format!("{shown:?}: {name} does not take {op}")),
        (_, "+=") => {
            s.shift.insert(name.to_owned(), number()?);
        }
        (_, "-=") => {
            s.shift.insert(name.to_owned(), -number()?);
        }
        (_, "*=") => {
            s.scale.insert(name.to_owned(), number()?);
        }
        (_, "=") => {
            s.set.insert(name.to_owned(), arg.to_owned());
        }
        (_, ">" | "<") => {
            let cut = if arg == "median" {
                Cut::Word(arg.to_owned())
            } else {
                Cut::Value(number()?)
            };
            let p = s.population.get_or_insert_with(|| Population {
                feature: name.to_owned(),
                above: None,
                below: None,
            });
            if p.feature != name {
                return Err(format!(
                    "{shown:?}: the population is cut on one feature ({} already)",
                    p.feature
                ));
            }
            if op == ">" {
                p.above = Some(cut);
            } else {
                p.below = Some(cut);
            }
        }
        _ => {
            return Err(format!(
                "{shown:?}: a feature takes +=, -=, *=, =, > or <, not {op}"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compact_form_sets_every_field() {
        let s = parse_spec("start=1000, bmi+=5,s5*=1.2,bp-=2.5,target+=10,target~=20,age>median")
            .unwrap();
        assert_eq!(s.start, 1000);
        assert_eq!(
            s.shift,
            BTreeMap::from([("bmi".into(), 5.0), ("bp".into(), -2.5)])
        );
        assert_eq!(s.scale, BTreeMap::from([("s5".into(), 1.2)]));
        assert_eq!((s.target_bias, s.target_noise), (Some(10.0), Some(20.0)));
        assert_eq!(
            s.population,
            Some(Population {
                feature: "age".into(),
                above: Some(Cut::Word("median".into())),
                below: None
            })
        );
        let s = parse_spec("age>40,age<60,target-=3").unwrap();
        let p = s.population.unwrap();
        assert_eq!(
            (p.above, p.below),
            (Some(Cut::Value(40.0)), Some(Cut::Value(60.0)))
        );
        assert_eq!((s.target_bias, s.target_noise), (Some(-3.0), None));
        // A target setting given is told from one not given, even as 0
        // (the check refuses it: it changes nothing).
        let s = parse_spec("s5*=1.2,target+=0,target~=0").unwrap();
        assert_eq!((s.target_bias, s.target_noise), (Some(0.0), Some(0.0)));
        let s = parse_spec("s5*=1.2").unwrap();
        assert_eq!((s.target_bias, s.target_noise), (None, None));
    }

    #[test]
    fn the_compact_form_refuses_what_it_cannot_read() {
        for (spec, needle) in [
            ("", "empty"),
            ("bmi+=5,", "empty"),
            ("bmi", "no operator"),
            ("bmi/=2", "unknown operator"),
            ("bmi+=x", "not a finite number"),
            ("bmi+=inf", "not a finite number"),
            ("start=1.5", "whole number"),
            ("start=-1", "whole number"),
            ("target*=2", "does not take"),
            ("bmi~=5", "a feature takes"),
            ("bmi+=5,bmi-=1", "twice"),
            ("age>median,bmi<30", "one feature"),
        ] {
            let err = parse_spec(spec).unwrap_err();
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
        assert!(parse_spec(&"a".repeat(2000))
            .unwrap_err()
            .contains("longer"));
    }

    #[test]
    fn the_table_form_reads_numbers_and_median() {
        let s: ScenarioSettings = toml::from_str(
            "start = 5\nshift = { bmi = 5 }\npopulation = { feature = \"age\", above = \"median\", below = 70 }\n",
        )
        .unwrap();
        assert_eq!(s.shift["bmi"], 5.0);
        let p = s.population.unwrap();
        assert_eq!(p.above, Some(Cut::Word("median".into())));
        assert_eq!(p.below, Some(Cut::Value(70.0)));
        assert_eq!((s.target_bias, s.target_noise), (None, None));
        let s: ScenarioSettings = toml::from_str(
            "shift = { bmi = 1.0 }
target_bias = 0.0
target_noise = 0.0
",
        )
        .unwrap();
        assert_eq!((s.target_bias, s.target_noise), (Some(0.0), Some(0.0)));
    }
}
