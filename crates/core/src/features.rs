//! How rows become model features, shared by the data stage (fitting), the train stage
//! (encoding) and `predict` (applying both to new raw rows).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema;

/// A finite number, or `None` ("NaN", "inf" and text are not numbers here, as in the data stage
/// and the gold reader of train).
pub fn parse_finite(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// What a missing `customer_code` becomes (the notebook's `None`), before mode imputation.
pub const CUSTOMER_CODE_MISSING: &str = "None";

/// The one rule for a raw categorical cell, in the data stage and in serving: the value trimmed;
/// a missing (empty) cell becomes `customer_code_missing` for `customer_code`, else the column's
/// training `mode`.
pub fn fill_categorical(column: &str, raw: Option<&str>, mode: &str, customer_code_missing: &str) -> String {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None if column == schema::CUSTOMER_CODE => customer_code_missing.to_string(),
        None => mode.to_string(),
    }
}

/// One continuous column's fitted transform: clip to `[clip_lower, clip_upper]`, fill a missing
/// value with `fill`, then min-max scale with `[min, max]` to `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinuousTransform {
    pub name: String,
    pub clip_lower: f64,
    pub clip_upper: f64,
    pub fill: f64,
    pub min: f64,
    pub max: f64,
}

impl ContinuousTransform {
    pub fn clip(&self, x: f64) -> f64 {
        x.max(self.clip_lower).min(self.clip_upper)
    }

    pub fn scale(&self, x: f64) -> f64 {
        let range = self.max - self.min;
        if range > 0.0 {
            (x - self.min) / range
        } else {
            0.0
        }
    }

    /// The full transform of one raw value (`None` = missing).
    pub fn apply(&self, x: Option<f64>) -> f64 {
        let v = match x {
            Some(v) if v.is_finite() => self.clip(v),
            _ => self.fill,
        };
        self.scale(v)
    }
}

/// The min-max scaler alone (`scaler.json`), as the notebook saved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub kind: String,
    pub feature_range: [f64; 2],
    pub columns: Vec<ScalerColumn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalerColumn {
    pub name: String,
    pub min: f64,
    pub max: f64,
}

/// Everything the data stage fitted, enough to clean a raw row at inference time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub continuous: Vec<ContinuousTransform>,
    /// Mode of each categorical column, used to fill missing values.
    pub categorical_modes: BTreeMap<String, String>,
    /// Value that replaces a missing `customer_code` (before mode imputation).
    pub customer_code_missing: String,
}

impl Preprocessing {
    pub fn scaler(&self) -> Scaler {
        Scaler {
            kind: "MinMaxScaler".into(),
            feature_range: [0.0, 1.0],
            columns: self.continuous.iter().map(|c| ScalerColumn { name: c.name.clone(), min: c.min, max: c.max }).collect(),
        }
    }

    /// Clean one raw row (column name -> raw text, empty = missing) into gold-row values.
    /// Numbers come back formatted, so the result feeds [`FeatureSpec::encode`].
    pub fn apply_raw(&self, get: &dyn Fn(&str) -> Option<String>, row_label: &str) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for t in &self.continuous {
            let raw = get(&t.name).filter(|s| !s.trim().is_empty());
            // As the data stage: a value that is not a finite number is an error, not a gap.
            let v = match raw {
                None => None,
                Some(s) => Some(parse_finite(&s).ok_or_else(|| Error::Invalid {
                    path: row_label.into(),
                    message: format!("column `{}`: expected a number, found {s:?}", t.name),
                })?),
            };
            out.insert(t.name.clone(), t.apply(v).to_string());
        }
        for (col, mode) in &self.categorical_modes {
            out.insert(col.clone(), fill_categorical(col, get(col).as_deref(), mode, &self.customer_code_missing));
        }
        let source = out.get(schema::SOURCE).cloned().unwrap_or_default();
        out.insert(schema::BIN_SOURCE.into(), schema::bin_source(&source).into());
        Ok(out)
    }
}

/// One one-hot encoded categorical column: `levels` are all levels seen in training (sorted);
/// the first is dropped, each other level becomes a `<name>_<level>` feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedColumn {
    pub name: String,
    pub levels: Vec<String>,
}

/// How a gold row becomes a feature vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub numeric: Vec<String>,
    pub categorical: Vec<EncodedColumn>,
    pub target: String,
}

impl FeatureSpec {
    /// Fit on the categorical levels seen in training rows.
    pub fn fit(numeric: &[&str], categorical: &[(&str, Vec<String>)], target: &str) -> FeatureSpec {
        FeatureSpec {
            numeric: numeric.iter().map(|s| s.to_string()).collect(),
            categorical: categorical
                .iter()
                .map(|(name, seen)| {
                    let mut levels = seen.clone();
                    levels.sort();
                    levels.dedup();
                    EncodedColumn { name: name.to_string(), levels }
                })
                .collect(),
            target: target.into(),
        }
    }

    /// Feature names in model order: numeric columns, then the kept dummies.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.numeric.clone();
        for c in &self.categorical {
            for level in c.levels.iter().skip(1) {
                names.push(format!("{}_{}", c.name, level));
            }
        }
        names
    }

    pub fn n_features(&self) -> usize {
        self.numeric.len() + self.categorical.iter().map(|c| c.levels.len().saturating_sub(1)).sum::<usize>()
    }

    /// Encode one row; `get` returns a column's text. A level not seen in training encodes as the
    /// dropped first level (all dummies zero).
    pub fn encode(&self, get: &dyn Fn(&str) -> Option<String>, row_label: &str) -> Result<Vec<f64>> {
        let mut numeric = Vec::with_capacity(self.numeric.len());
        for n in &self.numeric {
            let s = get(n).ok_or_else(|| Error::Invalid { path: row_label.into(), message: format!("column `{n}` is missing") })?;
            let v = parse_finite(&s).ok_or_else(|| Error::Invalid {
                path: row_label.into(),
                message: format!("column `{n}`: expected a number, found {s:?}"),
            })?;
            numeric.push(v);
        }
        let mut categorical = Vec::with_capacity(self.categorical.len());
        for c in &self.categorical {
            categorical.push(
                get(&c.name)
                    .ok_or_else(|| Error::Invalid { path: row_label.into(), message: format!("column `{}` is missing", c.name) })?,
            );
        }
        let mut out = Vec::with_capacity(self.n_features());
        self.encode_values(&numeric, &categorical, &mut out);
        Ok(out)
    }

    /// The one encoding (train's matrix and serving both use it): numeric values as they are,
    /// then the kept dummies of each categorical value, appended to `out`.
    pub fn encode_values<S: AsRef<str>>(&self, numeric: &[f64], categorical: &[S], out: &mut Vec<f64>) {
        out.extend_from_slice(numeric);
        for (c, v) in self.categorical.iter().zip(categorical) {
            for level in c.levels.iter().skip(1) {
                out.push(if level == v.as_ref() { 1.0 } else { 0.0 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_first_encoding() {
        let spec = FeatureSpec::fit(
            &["purchases"],
            &[("customer_group", vec!["2".into(), "1".into(), "3".into(), "2".into()]), ("source", vec!["signup".into()])],
            "lead_indicator",
        );
        assert_eq!(spec.feature_names(), vec!["purchases", "customer_group_2", "customer_group_3"]);
        let row: BTreeMap<&str, &str> = [("purchases", "0.5"), ("customer_group", "3"), ("source", "signup")].into();
        let get = |k: &str| row.get(k).map(|s| s.to_string());
        assert_eq!(spec.encode(&get, "row 1").unwrap(), vec![0.5, 0.0, 1.0]);
    }

    #[test]
    fn non_finite_values_are_refused_by_every_path() {
        // The data stage refuses NaN/inf (tested in the data crate); serving must agree.
        let t = ContinuousTransform { name: "x".into(), clip_lower: 0.0, clip_upper: 10.0, fill: 4.0, min: 0.0, max: 8.0 };
        let pre = Preprocessing { continuous: vec![t], categorical_modes: BTreeMap::new(), customer_code_missing: "None".into() };
        for bad in ["NaN", "inf", "-inf", "x"] {
            let get = |k: &str| (k == "x").then(|| bad.to_string());
            assert!(pre.apply_raw(&get, "row 1").is_err(), "{bad} accepted by apply_raw");
            let spec = FeatureSpec::fit(&["x"], &[], "y");
            assert!(spec.encode(&get, "row 1").is_err(), "{bad} accepted by encode");
        }
    }

    #[test]
    fn continuous_transform_chain() {
        let t = ContinuousTransform { name: "x".into(), clip_lower: 0.0, clip_upper: 10.0, fill: 4.0, min: 0.0, max: 8.0 };
        assert_eq!(t.apply(Some(20.0)), 1.25);
        assert_eq!(t.apply(None), 0.5);
        assert_eq!(t.apply(Some(-3.0)), 0.0);
    }
}
