//! JSON from outside, parsed strictly and in bounded memory.
//!
//! serde_json keeps the last of two equal keys (so `"intercept": 1,
//! "intercept": 1e6` reads as 1e6, whatever a reviewer of the file saw
//! first), and a `serde_json::Value` costs tens of bytes per node however
//! small its text (`[]` is 2 bytes of text, 32 of memory): a 100 MB file of
//! empty arrays took 4 GB. [`parse_strict`] refuses a key given twice in
//! one object and stops past `max_nodes` values.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// `text` as a [`Value`]: every object's keys distinct, at most
/// `max_nodes` values in all. The error says what is wrong and where
/// (serde_json's line and column).
pub fn parse_strict(text: &str, max_nodes: usize) -> Result<Value, serde_json::Error> {
    let budget = Cell::new(max_nodes);
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict { budget: &budget }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct Strict<'a> {
    budget: &'a Cell<usize>,
}

impl Strict<'_> {
    fn spend<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.budget.get() {
            0 => Err(E::custom("too many values (more than this file can hold)")),
            n => {
                self.budget.set(n - 1);
                Ok(())
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key {} is given twice",
                    crate::core::text::sanitize(&key)
                )));
            }
            let v = map.next_value_seed(self)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        let e = parse_strict(r#"{"a": {"b": 1, "b": 2}}"#, 100).unwrap_err();
        assert!(e.to_string().contains("the key b is given twice"), "{e}");
        assert_eq!(
            parse_strict(r#"{"a": [1, {"b": 2.5}], "c": null}"#, 100).unwrap(),
            serde_json::json!({"a": [1, {"b": 2.5}], "c": null})
        );
    }

    #[test]
    fn the_node_budget_bounds_memory() {
        let text = format!("[{}[]]", "[],".repeat(1000));
        assert!(parse_strict(&text, 2000).is_ok());
        let e = parse_strict(&text, 500).unwrap_err();
        assert!(e.to_string().contains("too many values"), "{e}");
    }
}
