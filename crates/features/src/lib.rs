//! leadflow-features: how rows become model features, shared by the data stage (fitting), the
//! train stage (encoding) and `predict` (applying both to new raw rows); [`table`]: small CSV
//! tables (test splits, files to score) read into that matrix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use leadflow_core::dataset::{self, Derive, Encoding, Unseen};
use leadflow_core::error::{Error, Result};

pub use leadflow_core::dataset::parse_finite;

pub mod table;
pub use table::Table;

/// The one rule for a raw categorical cell, in the data stage and in serving: the value trimmed
/// (a boolean column's value as `true`/`false`); a missing (empty) cell becomes the column's
/// constant `fill` if it has one, else its training `mode`.
pub fn fill_categorical(raw: Option<&str>, mode: &str, fill: Option<&str>) -> String {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None => fill.unwrap_or(mode).to_string(),
    }
}

/// How a continuous column is scaled after clipping and imputation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// To `[0, 1]`: `(x - min) / (max - min)`, 0 when the range is 0.
    MinMax {
        min: f64,
        max: f64,
    },
    /// `(x - mean) / std`; a zero std scales by 1 (as scikit-learn).
    Standard {
        mean: f64,
        std: f64,
    },
    None,
}

/// One continuous column's fitted transform: clip to `[clip_lower, clip_upper]`, fill a missing
/// value with `fill`, then scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinuousTransform {
    pub name: String,
    /// Unbounded sides (no outlier clipping) are saved as `null`.
    #[serde(serialize_with = "finite_or_null", deserialize_with = "null_is_neg_inf")]
    pub clip_lower: f64,
    #[serde(serialize_with = "finite_or_null", deserialize_with = "null_is_inf")]
    pub clip_upper: f64,
    pub fill: f64,
    pub scale: Scale,
}

impl ContinuousTransform {
    pub fn clip(&self, x: f64) -> f64 {
        x.max(self.clip_lower).min(self.clip_upper)
    }

    pub fn scale(&self, x: f64) -> f64 {
        match self.scale {
            Scale::MinMax { min, max } => {
                let range = max - min;
                if range > 0.0 {
                    (x - min) / range
                } else {
                    0.0
                }
            }
            Scale::Standard { mean, std } => (x - mean) / if std > 0.0 { std } else { 1.0 },
            Scale::None => x,
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

fn finite_or_null<S: serde::Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    v.is_finite().then_some(*v).serialize(s)
}

fn null_is_neg_inf<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

fn null_is_inf<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// One categorical (or boolean, or ignored) column's fitted fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalFill {
    pub name: String,
    /// Most frequent value in the fitted rows; fills a missing cell unless `fill` is set.
    pub mode: String,
    pub fill: Option<String>,
    /// Values are yes/no, normalised to `true`/`false`.
    pub boolean: bool,
    /// Used as a feature (else carried along, e.g. the lead's `customer_code`).
    pub feature: bool,
}

impl CategoricalFill {
    /// The cleaned value of a raw cell; `Err` with a message when a boolean column holds
    /// something else.
    pub fn apply(&self, raw: Option<&str>) -> std::result::Result<String, String> {
        self.apply_ref(raw).map(str::to_string)
    }

    /// [`CategoricalFill::apply`] without copying the value.
    pub fn apply_ref<'a>(&'a self, raw: Option<&'a str>) -> std::result::Result<&'a str, String> {
        let v = match raw.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => s,
            None => self.fill.as_deref().unwrap_or(&self.mode),
        };
        if self.boolean {
            return dataset::parse_bool(v)
                .map(|b| if b { "true" } else { "false" })
                .ok_or_else(|| format!("expected yes/no (true/false, 1/0), found {v:?}"));
        }
        Ok(v)
    }
}

/// The dataset's target as the model was trained on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub column: String,
    /// Raw values of the positive and negative class (binary targets).
    pub positive: String,
    pub negative: String,
    /// Raw value of each class, index = class (binary: negative, positive).
    pub classes: Vec<String>,
    /// Display names, index = class (binary: negative first).
    pub labels: Vec<String>,
    /// Dataset name, what a row is ("lead") and what is predicted, in words.
    pub dataset: String,
    pub subject: String,
    pub description: String,
}

impl Target {
    /// The target of a dataset whose classes are `classes` (multiclass) or its positive and
    /// negative values (binary, `classes` empty).
    pub fn of(d: &dataset::DatasetParams, classes: &[String]) -> Target {
        let binary = classes.is_empty();
        Target {
            column: d.target.clone(),
            positive: if binary { d.positive.clone() } else { String::new() },
            negative: if binary { d.negative() } else { String::new() },
            classes: if binary { vec![d.negative(), d.positive.clone()] } else { classes.to_vec() },
            labels: if binary { d.class_labels().to_vec() } else { classes.to_vec() },
            dataset: if d.name.is_empty() { d.target.clone() } else { d.name.clone() },
            subject: d.subject.clone(),
            description: d.description.clone(),
        }
    }

    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// "P(converted)" (binary) or "P(class)", for plots and cards.
    pub fn probability_of(&self) -> String {
        if self.n_classes() == 2 {
            format!("P({})", self.labels[1])
        } else {
            "P(class)".into()
        }
    }

    /// The plural of the subject for prose ("leads", "customers").
    pub fn subjects(&self) -> String {
        if self.subject.ends_with('s') {
            self.subject.clone()
        } else {
            format!("{}s", self.subject)
        }
    }
}

/// The min-max scaler alone (`scaler.json`), as the notebook saved it (or the standard scaler).
pub fn scaler_json(continuous: &[ContinuousTransform]) -> serde_json::Value {
    let kind = match continuous.first().map(|c| &c.scale) {
        Some(Scale::Standard { .. }) => "StandardScaler",
        Some(Scale::None) => "None",
        _ => "MinMaxScaler",
    };
    let columns: Vec<serde_json::Value> = continuous
        .iter()
        .map(|c| match c.scale {
            Scale::MinMax { min, max } => serde_json::json!({ "name": c.name, "min": min, "max": max }),
            Scale::Standard { mean, std } => serde_json::json!({ "name": c.name, "mean": mean, "scale": std }),
            Scale::None => serde_json::json!({ "name": c.name }),
        })
        .collect();
    match kind {
        "MinMaxScaler" => serde_json::json!({ "kind": kind, "feature_range": [0.0, 1.0], "columns": columns }),
        _ => serde_json::json!({ "kind": kind, "columns": columns }),
    }
}

/// Everything the data stage fitted, enough to clean a raw row at inference time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub target: Target,
    /// The id column, if the dataset has one.
    pub id: Option<String>,
    pub continuous: Vec<ContinuousTransform>,
    /// Categorical, boolean and carried-along columns, in gold order.
    pub categorical: Vec<CategoricalFill>,
    pub derive: Vec<Derive>,
    /// The rows the model was trained on: the data stage's row filters.
    pub filters: Vec<dataset::Filter>,
    /// Categorical features in encoding order (derived ones included).
    pub encoded: Vec<String>,
    pub encoding: Encoding,
    pub drop_first: bool,
    pub unseen: Unseen,
}

impl Preprocessing {
    /// Raw columns a row must have to be scored: continuous and categorical features, and the
    /// sources of derived features.
    pub fn raw_inputs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.continuous.iter().map(|c| c.name.as_str()).collect();
        for c in &self.encoded {
            // A derived feature needs the column it is derived from.
            let raw = self.derive.iter().find(|d| &d.name == c).map_or(c.as_str(), |d| d.from.as_str());
            if !out.contains(&raw) {
                out.push(raw);
            }
        }
        out
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
        for c in &self.categorical {
            let v = c
                .apply(get(&c.name).as_deref())
                .map_err(|m| Error::Invalid { path: row_label.into(), message: format!("column `{}`: {m}", c.name) })?;
            out.insert(c.name.clone(), v);
        }
        for d in &self.derive {
            let from = out.get(&d.from).cloned().unwrap_or_default();
            out.insert(d.name.clone(), d.apply(&from).to_string());
        }
        Ok(out)
    }
}

/// A categorical value the model never saw in training.
#[derive(Debug, Clone, PartialEq)]
pub struct UnseenValue {
    pub column: String,
    pub value: String,
}

/// One encoded categorical column: `levels` are all levels seen in training (sorted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedColumn {
    pub name: String,
    pub levels: Vec<String>,
}

/// How a gold row becomes a feature vector: numeric columns as they are, then each categorical
/// column one-hot (`<name>_<level>`, the first level dropped with `drop_first`) or ordinal (the
/// level's index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub numeric: Vec<String>,
    pub categorical: Vec<EncodedColumn>,
    pub target: String,
    pub encoding: Encoding,
    pub drop_first: bool,
    pub unseen: Unseen,
}

impl FeatureSpec {
    /// Fit on the categorical levels seen in the gold rows, with the encoding the data stage saved.
    pub fn fit(numeric: &[&str], categorical: &[(&str, Vec<String>)], pre: &Preprocessing) -> FeatureSpec {
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
            target: pre.target.column.clone(),
            encoding: pre.encoding,
            drop_first: pre.drop_first,
            unseen: pre.unseen,
        }
    }

    fn kept_levels<'a>(&self, c: &'a EncodedColumn) -> &'a [String] {
        let skip = usize::from(self.drop_first).min(c.levels.len());
        &c.levels[skip..]
    }

    /// Feature names in model order: numeric columns, then the encoded categorical ones.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.numeric.clone();
        for c in &self.categorical {
            match self.encoding {
                Encoding::OneHot => names.extend(self.kept_levels(c).iter().map(|level| format!("{}_{}", c.name, level))),
                Encoding::Ordinal => names.push(c.name.clone()),
            }
        }
        names
    }

    /// The column each feature comes from, in feature order: a numeric feature's own name, a
    /// categorical column's name for each of its one-hot levels (or its ordinal code). Summing
    /// per-feature contributions over this gives them per column.
    pub fn feature_columns(&self) -> Vec<String> {
        let mut columns = self.numeric.clone();
        for c in &self.categorical {
            let n = match self.encoding {
                Encoding::OneHot => self.kept_levels(c).len(),
                Encoding::Ordinal => 1,
            };
            columns.extend(std::iter::repeat_n(c.name.clone(), n));
        }
        columns
    }

    pub fn n_features(&self) -> usize {
        self.numeric.len()
            + self
                .categorical
                .iter()
                .map(|c| match self.encoding {
                    Encoding::OneHot => self.kept_levels(c).len(),
                    Encoding::Ordinal => 1,
                })
                .sum::<usize>()
    }

    /// Encode one row; `get` returns a column's text.
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
        self.encode_values(&numeric, &categorical, &mut out).map_err(|u| Error::Invalid {
            path: row_label.into(),
            message: format!(
                "column `{}`: {:?} was never seen in training (known: {}); set dataset.processing.unseen = \"zeros\" to encode it as no known level",
                u.column,
                u.value,
                self.categorical.iter().find(|c| c.name == u.column).map(|c| c.levels.join(", ")).unwrap_or_default()
            ),
        })?;
        Ok(out)
    }

    /// The one encoding (train's matrix and serving both use it): numeric values as they are,
    /// then each categorical value encoded, appended to `out`. A level not seen in training is
    /// refused (`unseen = error`) or encodes as no level: all dummies 0 (with `drop_first`, the
    /// same as the first level), ordinal -1.
    pub fn encode_values<S: AsRef<str>>(
        &self,
        numeric: &[f64],
        categorical: &[S],
        out: &mut Vec<f64>,
    ) -> std::result::Result<(), UnseenValue> {
        out.extend_from_slice(numeric);
        for (c, v) in self.categorical.iter().zip(categorical) {
            let v = v.as_ref();
            let known = c.levels.binary_search_by(|l| l.as_str().cmp(v));
            if known.is_err() && self.unseen == Unseen::Error {
                return Err(UnseenValue { column: c.name.clone(), value: v.to_string() });
            }
            match self.encoding {
                Encoding::OneHot => {
                    for level in self.kept_levels(c) {
                        out.push(if level == v { 1.0 } else { 0.0 });
                    }
                }
                Encoding::Ordinal => out.push(known.map(|i| i as f64).unwrap_or(-1.0)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(encoding: Encoding, drop_first: bool, unseen: Unseen) -> Preprocessing {
        Preprocessing {
            target: Target::of(&leadflow_core::dataset::lead(), &[]),
            id: None,
            continuous: Vec::new(),
            categorical: Vec::new(),
            derive: Vec::new(),
            filters: Vec::new(),
            encoded: Vec::new(),
            encoding,
            drop_first,
            unseen,
        }
    }

    fn spec(encoding: Encoding, drop_first: bool, unseen: Unseen) -> FeatureSpec {
        FeatureSpec::fit(
            &["purchases"],
            &[("customer_group", vec!["2".into(), "1".into(), "3".into(), "2".into()]), ("source", vec!["signup".into()])],
            &pre(encoding, drop_first, unseen),
        )
    }

    fn row(group: &'static str) -> impl Fn(&str) -> Option<String> {
        let row: BTreeMap<&str, &str> = [("purchases", "0.5"), ("customer_group", group), ("source", "signup")].into();
        move |k: &str| row.get(k).map(|s| s.to_string())
    }

    #[test]
    fn drop_first_encoding() {
        let spec = spec(Encoding::OneHot, true, Unseen::Zeros);
        assert_eq!(spec.feature_names(), vec!["purchases", "customer_group_2", "customer_group_3"]);
        assert_eq!(spec.encode(&row("3"), "row 1").unwrap(), vec![0.5, 0.0, 1.0]);
        assert_eq!(spec.encode(&row("9"), "row 1").unwrap(), vec![0.5, 0.0, 0.0], "unseen: all zeros");
    }

    #[test]
    fn full_one_hot_and_ordinal() {
        let spec = spec(Encoding::OneHot, false, Unseen::Zeros);
        assert_eq!(spec.feature_names(), vec!["purchases", "customer_group_1", "customer_group_2", "customer_group_3", "source_signup"]);
        assert_eq!(spec.encode(&row("1"), "r").unwrap(), vec![0.5, 1.0, 0.0, 0.0, 1.0]);
        let spec = spec_ordinal();
        assert_eq!(spec.feature_names(), vec!["purchases", "customer_group", "source"]);
        assert_eq!(spec.encode(&row("3"), "r").unwrap(), vec![0.5, 2.0, 0.0]);
        assert_eq!(spec.encode(&row("7"), "r").unwrap(), vec![0.5, -1.0, 0.0]);
    }

    fn spec_ordinal() -> FeatureSpec {
        spec(Encoding::Ordinal, false, Unseen::Zeros)
    }

    #[test]
    fn unseen_values_can_be_refused() {
        let spec = spec(Encoding::OneHot, false, Unseen::Error);
        let err = spec.encode(&row("7"), "x.csv line 4").unwrap_err().to_string();
        assert!(
            err.contains("x.csv line 4") && err.contains("`customer_group`") && err.contains("\"7\"") && err.contains("1, 2, 3"),
            "{err}"
        );
        assert!(spec.encode(&row("2"), "r").is_ok());
    }

    #[test]
    fn non_finite_values_are_refused_by_every_path() {
        // The data stage refuses NaN/inf (tested in the data crate); serving must agree.
        let t = ContinuousTransform {
            name: "x".into(),
            clip_lower: 0.0,
            clip_upper: 10.0,
            fill: 4.0,
            scale: Scale::MinMax { min: 0.0, max: 8.0 },
        };
        let mut p = pre(Encoding::OneHot, true, Unseen::Zeros);
        p.continuous = vec![t];
        for bad in ["NaN", "inf", "-inf", "x"] {
            let get = |k: &str| (k == "x").then(|| bad.to_string());
            assert!(p.apply_raw(&get, "row 1").is_err(), "{bad} accepted by apply_raw");
            let spec = FeatureSpec::fit(&["x"], &[], &p);
            assert!(spec.encode(&get, "row 1").is_err(), "{bad} accepted by encode");
        }
    }

    #[test]
    fn unbounded_clips_round_trip_through_json() {
        let t = ContinuousTransform {
            name: "x".into(),
            clip_lower: f64::NEG_INFINITY,
            clip_upper: f64::INFINITY,
            fill: 1.0,
            scale: Scale::None,
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"clip_lower\":null") && json.contains("\"clip_upper\":null"), "{json}");
        assert_eq!(serde_json::from_str::<ContinuousTransform>(&json).unwrap(), t);
    }

    #[test]
    fn continuous_transform_chain() {
        let mut t = ContinuousTransform {
            name: "x".into(),
            clip_lower: 0.0,
            clip_upper: 10.0,
            fill: 4.0,
            scale: Scale::MinMax { min: 0.0, max: 8.0 },
        };
        assert_eq!(t.apply(Some(20.0)), 1.25);
        assert_eq!(t.apply(None), 0.5);
        assert_eq!(t.apply(Some(-3.0)), 0.0);
        t.scale = Scale::Standard { mean: 2.0, std: 4.0 };
        assert_eq!(t.apply(Some(10.0)), 2.0);
        t.scale = Scale::Standard { mean: 2.0, std: 0.0 };
        assert_eq!(t.apply(Some(3.0)), 1.0);
        t.scale = Scale::None;
        assert_eq!(t.apply(None), 4.0);
    }

    #[test]
    fn booleans_and_derived_columns_in_serving() {
        let mut p = pre(Encoding::OneHot, true, Unseen::Zeros);
        p.categorical = vec![CategoricalFill { name: "paperless".into(), mode: "true".into(), fill: None, boolean: true, feature: true }];
        p.derive = leadflow_core::dataset::lead().derive.iter().map(|d| Derive { from: "paperless".into(), ..d.clone() }).collect();
        let get = |k: &str| (k == "paperless").then(|| "No".to_string());
        let out = p.apply_raw(&get, "r").unwrap();
        assert_eq!((out["paperless"].as_str(), out["bin_source"].as_str()), ("false", "Others"));
        let get = |k: &str| (k == "paperless").then(|| "maybe".to_string());
        assert!(p.apply_raw(&get, "r").unwrap_err().to_string().contains("expected yes/no"));
    }
}
