//! The flat `key: value` YAML that MLflow's file store uses for `meta.yaml`.
//!
//! Only what that layout needs: one mapping level, scalar values (strings quoted when YAML would
//! read them as something else), and `[]` for empty lists.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    EmptyList,
}

pub fn emit(entries: &[(&str, Value)]) -> String {
    let mut out = String::new();
    for (k, v) in entries {
        out.push_str(k);
        out.push(':');
        match v {
            Value::Int(i) => out.push_str(&format!(" {i}")),
            Value::EmptyList => out.push_str(" []"),
            Value::Str(s) if s.is_empty() => out.push_str(" ''"),
            Value::Str(s) if needs_quotes(s) => {
                out.push_str(" '");
                out.push_str(&s.replace('\'', "''"));
                out.push('\'');
            }
            Value::Str(s) => {
                out.push(' ');
                out.push_str(s);
            }
        }
        out.push('\n');
    }
    out
}

fn needs_quotes(s: &str) -> bool {
    let plain_ok = s.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:@+".contains(c))
        && !s.starts_with(|c: char| "-:@".contains(c))
        && !s.contains(": ");
    let ambiguous = s.parse::<f64>().is_ok()
        || matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n");
    !plain_ok || ambiguous
}

/// Parse a flat mapping; `None` for anything this module does not write.
pub fn parse(text: &str) -> Option<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('-') {
            // Nested content (e.g. a non-empty tag list written by MLflow itself): skip it.
            continue;
        }
        let (k, v) = line.split_once(':')?;
        let v = v.trim();
        let v = if let Some(inner) = v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            inner.replace("''", "'")
        } else if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            inner.to_string()
        } else if v == "[]" || v == "null" || v == "~" {
            String::new()
        } else {
            v.to_string()
        };
        map.insert(k.trim().to_string(), v);
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let text = emit(&[
            ("name", Value::Str("lead-conversion".into())),
            ("experiment_id", Value::Str("1".into())),
            ("creation_time", Value::Int(17)),
            ("tags", Value::EmptyList),
            ("desc", Value::Str("it's: odd".into())),
            ("empty", Value::Str(String::new())),
        ]);
        assert!(text.contains("experiment_id: '1'"), "{text}");
        let m = parse(&text).unwrap();
        assert_eq!(m["name"], "lead-conversion");
        assert_eq!(m["experiment_id"], "1");
        assert_eq!(m["creation_time"], "17");
        assert_eq!(m["desc"], "it's: odd");
        assert_eq!(m["empty"], "");
    }
}
