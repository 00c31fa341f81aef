//! The table a pipeline learns from, described in params (`[dataset]`): the target and its
//! positive class, the role of each column, row filters, derived columns, how the data stage
//! processes them (`[dataset.processing]`) and what it refuses (`[dataset.validation]`).
//!
//! Built-in presets live here and nowhere else: [`lead`] is the default dataset. A params file
//! either omits `[dataset]` (the lead preset), writes `preset = "lead"` and overrides some keys,
//! or describes its own table from the generic defaults of [`DatasetParams::default`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most classes a target may have (class indices are stored as bytes).
pub const MAX_CLASSES: usize = 255;

/// The classes of a multiclass target found in `values` (trimmed, empty ones skipped): distinct
/// values sorted numerically when all are numbers (`1` and `1.0` are one class), else as text.
pub fn detect_classes<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut found: Vec<&str> = values.map(str::trim).filter(|v| !v.is_empty()).collect();
    if found.iter().all(|v| parse_finite(v).is_some()) {
        found.sort_by(|a, b| parse_finite(a).unwrap_or(0.0).total_cmp(&parse_finite(b).unwrap_or(0.0)));
        found.dedup_by(|a, b| same_value(a, b));
    } else {
        found.sort_unstable();
        found.dedup();
    }
    found.into_iter().map(String::from).collect()
}

/// Names of the built-in presets (`[dataset] preset = "..."`).
pub const PRESETS: &[&str] = &["lead"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetParams {
    /// Short name of the dataset, used in the report and the model card.
    pub name: String,
    /// What one row is ("lead", "customer"), for the report's wording.
    pub subject: String,
    /// What the model predicts, in words, for the model card.
    pub description: String,
    /// The column to predict.
    pub target: String,
    /// The target value of the positive class (compared trimmed, case-insensitively, and as a
    /// number when both sides are numbers: `1` matches `1.0`).
    pub positive: String,
    /// The other class's value; empty derives it from `positive` (1/0, yes/no, true/false).
    pub negative: String,
    /// Display names of the two classes ("converted" / "not converted").
    pub positive_label: String,
    pub negative_label: String,
    /// More than two classes. `classes` lists their values in order (saved with the model);
    /// empty takes the distinct values found, sorted (numerically when all are numbers).
    pub multiclass: bool,
    pub classes: Vec<String>,
    /// Optional id column: rows without an id are dropped and predictions carry it.
    pub id: String,
    /// Optional date column and the window of rows kept (`YYYY-MM-DD`; empty `max_date` = today).
    pub date: String,
    pub min_date: String,
    pub max_date: String,
    /// Roles. `categorical` may name derived columns; its order is the encoding order.
    pub continuous: Vec<String>,
    pub categorical: Vec<String>,
    /// Yes/no columns (true/false, yes/no, 1/0), encoded as a categorical `true`/`false`.
    pub boolean: Vec<String>,
    /// Kept in the gold data, not used as features.
    pub ignore: Vec<String>,
    /// Removed before anything else.
    pub drop: Vec<String>,
    /// Unlisted columns: `true` infers their role from the data (reported), `false` keeps them
    /// as ignored columns.
    pub infer: bool,
    /// Inference: a numeric column with at most this many distinct values is categorical, with
    /// more it is continuous; 0 makes every numeric column continuous (pixels, counts).
    pub numeric_levels_max: usize,
    /// A missing categorical value in these columns becomes this value (else the column's mode).
    pub fill: BTreeMap<String, String>,
    /// Keep only rows whose column (trimmed) equals one of the values.
    pub filters: Vec<Filter>,
    /// Categorical columns derived from another by a value map.
    pub derive: Vec<Derive>,
    pub processing: Processing,
    pub validation: Validation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub column: String,
    pub equals: Vec<String>,
}

impl Filter {
    /// Whether a row whose cell in `column` is `value` is kept: a non-empty cell whose trimmed
    /// text is one of `equals`.
    pub fn keeps(&self, value: &str) -> bool {
        !value.is_empty() && self.equals.iter().any(|e| e == value.trim())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derive {
    pub name: String,
    pub from: String,
    pub map: BTreeMap<String, String>,
    /// Value for anything the map does not list.
    pub default: String,
}

impl Derive {
    pub fn apply<'a>(&'a self, value: &str) -> &'a str {
        self.map.get(value).map(String::as_str).unwrap_or(&self.default)
    }
}

/// How the data stage cleans and scales; fitted values are saved and applied everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Processing {
    pub outliers: Outliers,
    pub impute: Impute,
    pub scaling: Scaling,
    /// Rows the clip bounds, fills, scalers and modes are fitted on.
    pub fit_on: FitOn,
    pub encoding: Encoding,
    /// One-hot only: drop each column's first (sorted) level.
    pub drop_first: bool,
    /// Drop rows identical to an earlier row in every kept column (after the filters).
    pub drop_duplicates: bool,
    /// A categorical value at prediction time that training never saw.
    pub unseen: Unseen,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outliers {
    None,
    /// Clip to mean ± k · std (sample std).
    Sigma(f64),
    /// Clip to [Q1 - k · IQR, Q3 + k · IQR] (linear quantiles, as numpy).
    Iqr(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    Mean,
    Median,
    /// Most frequent value (ties: the smallest).
    Mode,
    Constant(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// To [0, 1] with the fitted min and max.
    MinMax,
    /// (x - mean) / std (population std, as scikit-learn's StandardScaler).
    Standard,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitOn {
    /// Every kept row (the lead notebook's behaviour): test rows leak into the fitted values.
    All,
    /// The training split only (the split train makes, computed from the same seed).
    Train,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    OneHot,
    /// One number per column: the level's index in the saved, sorted level list.
    Ordinal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unseen {
    /// Refuse the row, naming the column and value.
    Error,
    /// Encode as no known level: all dummies 0 (one-hot), -1 (ordinal).
    Zeros,
}

/// Rules checked on the rows the stage keeps (after the date window, filters and deduplication);
/// every violation is reported at once and nothing is written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Validation {
    /// Columns that must be present (role columns always are).
    pub required: Vec<String>,
    pub min_rows: usize,
    pub min_rows_per_class: usize,
    /// Largest fraction of missing values per column; `"*"` applies to every column.
    pub max_missing: BTreeMap<String, f64>,
    /// Allowed `[min, max]` of continuous columns.
    pub range: BTreeMap<String, [f64; 2]>,
    /// Allowed values of categorical columns.
    pub allowed: BTreeMap<String, Vec<String>>,
}

impl Default for Processing {
    /// Generic defaults: no outlier clipping, median imputation, standard scaling fitted on the
    /// training split only (no leakage), one-hot without dropping a level, unseen values refused.
    fn default() -> Self {
        Processing {
            outliers: Outliers::None,
            impute: Impute::Median,
            scaling: Scaling::Standard,
            fit_on: FitOn::Train,
            encoding: Encoding::OneHot,
            drop_first: false,
            drop_duplicates: false,
            unseen: Unseen::Error,
        }
    }
}

impl Default for DatasetParams {
    /// A table of one's own: only `target` is required; unlisted columns are inferred.
    fn default() -> Self {
        DatasetParams {
            name: String::new(),
            subject: "row".into(),
            description: String::new(),
            target: String::new(),
            positive: "1".into(),
            negative: String::new(),
            positive_label: String::new(),
            negative_label: String::new(),
            multiclass: false,
            classes: Vec::new(),
            id: String::new(),
            date: String::new(),
            min_date: String::new(),
            max_date: String::new(),
            continuous: Vec::new(),
            categorical: Vec::new(),
            boolean: Vec::new(),
            ignore: Vec::new(),
            drop: Vec::new(),
            infer: true,
            numeric_levels_max: 10,
            fill: BTreeMap::new(),
            filters: Vec::new(),
            derive: Vec::new(),
            processing: Processing::default(),
            validation: Validation::default(),
        }
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The lead-conversion dataset, as the lead notebook cleans it.
pub fn lead() -> DatasetParams {
    DatasetParams {
        name: "lead".into(),
        subject: "lead".into(),
        description: "the probability that a website signup becomes a paying customer".into(),
        target: "lead_indicator".into(),
        positive: "1".into(),
        negative: "0".into(),
        positive_label: "converted".into(),
        negative_label: "not converted".into(),
        multiclass: false,
        classes: Vec::new(),
        id: "lead_id".into(),
        date: "date_part".into(),
        min_date: "2024-01-01".into(),
        max_date: "2024-01-31".into(),
        continuous: s(&["purchases", "time_spent", "n_visits"]),
        categorical: s(&["customer_group", "onboarding", "bin_source", "source"]),
        boolean: Vec::new(),
        ignore: s(&["customer_code"]),
        drop: s(&[
            "is_active",
            "marketing_consent",
            "first_booking",
            "existing_customer",
            "last_seen",
            "domain",
            "country",
            "visited_learn_more_before_booking",
            "visited_faq",
        ]),
        infer: false,
        numeric_levels_max: 10,
        fill: [("customer_code".to_string(), "None".to_string())].into(),
        filters: vec![Filter { column: "source".into(), equals: s(&["signup"]) }],
        derive: vec![Derive {
            name: "bin_source".into(),
            from: "source".into(),
            map: [("li", "socials"), ("fb", "socials"), ("organic", "group1"), ("signup", "group1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            default: "Others".into(),
        }],
        processing: Processing {
            outliers: Outliers::Sigma(2.0),
            impute: Impute::Mean,
            scaling: Scaling::MinMax,
            fit_on: FitOn::All,
            encoding: Encoding::OneHot,
            drop_first: true,
            drop_duplicates: false,
            unseen: Unseen::Zeros,
        },
        validation: Validation::default(),
    }
}

/// A preset by name.
pub fn preset(name: &str) -> Option<DatasetParams> {
    match name {
        "lead" => Some(lead()),
        _ => None,
    }
}

/// The class of a target cell: `None` when empty, `Some(Ok(1|0))`, or `Some(Err(()))` for any
/// other value.
pub fn class_of(value: &str, positive: &str, negative: &str) -> Option<Result<u8, ()>> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    Some(if same_value(v, positive) {
        Ok(1)
    } else if same_value(v, negative) {
        Ok(0)
    } else {
        Err(())
    })
}

/// A finite number, or `None` ("NaN", "inf" and text are not numbers here, as in the data stage
/// and the gold reader of train).
pub fn parse_finite(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Equal ignoring case, or equal as finite numbers (`1` and `1.0`).
pub fn same_value(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    match (parse_finite(a), parse_finite(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A yes/no cell as `true`/`false`; `None` for anything else.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "t" | "1" | "1.0" => Some(true),
        "false" | "no" | "n" | "f" | "0" | "0.0" => Some(false),
        _ => None,
    }
}

/// What a column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Target,
    Id,
    Date,
    Continuous,
    Categorical,
    Boolean,
    Ignored,
    Dropped,
}

fn bad(key: &str, message: impl Into<String>) -> Error {
    Error::ParamValue { key: format!("dataset.{key}"), message: message.into() }
}

impl DatasetParams {
    /// The negative class's value: as given, or the opposite of `positive`.
    pub fn negative(&self) -> String {
        if !self.negative.is_empty() {
            return self.negative.clone();
        }
        let p = self.positive.trim().to_ascii_lowercase();
        match p.as_str() {
            "1" | "1.0" => "0",
            "0" | "0.0" => "1",
            "yes" => "no",
            "no" => "yes",
            "true" => "false",
            "false" => "true",
            "y" => "n",
            "n" => "y",
            _ => "",
        }
        .to_string()
    }

    /// Display names of the classes, negative first (index = class).
    pub fn class_labels(&self) -> [String; 2] {
        let pos = if self.positive_label.is_empty() { format!("{} = {}", self.target, self.positive) } else { self.positive_label.clone() };
        let neg = if self.negative_label.is_empty() {
            if self.positive_label.is_empty() {
                format!("{} = {}", self.target, self.negative())
            } else {
                format!("not {}", self.positive_label)
            }
        } else {
            self.negative_label.clone()
        };
        [neg, pos]
    }

    /// Derived column names.
    pub fn derived(&self) -> impl Iterator<Item = &str> {
        self.derive.iter().map(|d| d.name.as_str())
    }

    /// The role a listed column has, if it is listed.
    pub fn listed_role(&self, column: &str) -> Option<Role> {
        let c = column.to_string();
        if c == self.target {
            Some(Role::Target)
        } else if !self.id.is_empty() && c == self.id {
            Some(Role::Id)
        } else if !self.date.is_empty() && c == self.date {
            Some(Role::Date)
        } else if self.drop.contains(&c) {
            Some(Role::Dropped)
        } else if self.continuous.contains(&c) {
            Some(Role::Continuous)
        } else if self.categorical.contains(&c) {
            Some(Role::Categorical)
        } else if self.boolean.contains(&c) {
            Some(Role::Boolean)
        } else if self.ignore.contains(&c) {
            Some(Role::Ignored)
        } else {
            None
        }
    }

    /// Raw columns the params name and the file must therefore have.
    pub fn required_columns(&self) -> Vec<String> {
        let derived: Vec<&str> = self.derived().collect();
        let mut out: Vec<String> = Vec::new();
        let mut add = |c: &String| {
            if !c.is_empty() && !derived.contains(&c.as_str()) && !out.contains(c) {
                out.push(c.clone());
            }
        };
        add(&self.target);
        add(&self.id);
        add(&self.date);
        for c in self.continuous.iter().chain(&self.categorical).chain(&self.boolean).chain(&self.ignore) {
            add(c);
        }
        for f in &self.filters {
            add(&f.column);
        }
        for d in &self.derive {
            add(&d.from);
        }
        for c in &self.validation.required {
            add(c);
        }
        for c in self.validation.range.keys().chain(self.validation.allowed.keys()) {
            add(c);
        }
        for c in self.validation.max_missing.keys().filter(|c| *c != "*") {
            add(c);
        }
        out
    }

    pub fn validate(&self) -> Result<()> {
        self.validate_target()?;
        self.validate_roles()?;
        self.validate_rules()
    }

    /// The target, its classes, and the date window.
    fn validate_target(&self) -> Result<()> {
        if self.target.trim().is_empty() {
            return Err(bad("target", "is required: name the column to predict"));
        }
        if !self.classes.is_empty() && !self.multiclass {
            return Err(bad(
                "classes",
                "lists classes of a multiclass target: set dataset.multiclass = true (two classes use positive/negative)",
            ));
        }
        if self.multiclass {
            if self.classes.len() == 1 || self.classes.len() > MAX_CLASSES {
                return Err(bad(
                    "classes",
                    format!("must list 2 to {MAX_CLASSES} classes (or none, to take them from the data), got {}", self.classes.len()),
                ));
            }
            for (i, c) in self.classes.iter().enumerate() {
                if c.trim().is_empty() || self.classes[..i].iter().any(|o| same_value(o, c)) {
                    return Err(bad("classes", format!("{c:?} is empty or listed twice")));
                }
            }
        } else {
            if self.positive.trim().is_empty() {
                return Err(bad("positive", "must name the positive class's value"));
            }
            let neg = self.negative();
            if neg.is_empty() {
                return Err(bad(
                    "negative",
                    format!("cannot be derived from positive = {:?}; give the other class's value", self.positive),
                ));
            }
            if same_value(&neg, &self.positive) {
                return Err(bad("negative", format!("equals the positive class ({:?})", self.positive)));
            }
        }
        if self.date.is_empty() && (!self.min_date.is_empty() || !self.max_date.is_empty()) {
            return Err(bad("min_date", "a date window needs `dataset.date` (the date column)"));
        }
        if !self.date.is_empty() && self.min_date.is_empty() {
            return Err(bad("min_date", "is required with a date column (YYYY-MM-DD)"));
        }
        Ok(())
    }

    /// Every column has at most one role (a derived column is also listed as categorical).
    fn validate_roles(&self) -> Result<()> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let lists: [(&str, &Vec<String>); 6] = [
            ("continuous", &self.continuous),
            ("categorical", &self.categorical),
            ("boolean", &self.boolean),
            ("ignore", &self.ignore),
            ("drop", &self.drop),
            ("derive", &self.derive.iter().map(|d| d.name.clone()).collect()),
        ];
        let singles = [("target", &self.target), ("id", &self.id), ("date", &self.date)];
        for (key, c) in singles {
            if !c.is_empty() {
                if let Some(prev) = seen.insert(c, key) {
                    return Err(bad(key, format!("`{c}` is already the {prev} column")));
                }
            }
        }
        for (key, list) in lists {
            for c in list {
                if let Some(prev) = seen.insert(c, key) {
                    // A derived column is also listed as categorical (where it is encoded).
                    let derived_and_encoded = matches!((key, prev), ("derive", "categorical") | ("categorical", "derive"));
                    if !derived_and_encoded {
                        return Err(bad(key, format!("`{c}` is already listed as {prev}")));
                    }
                }
            }
        }
        if seen.contains_key("") {
            return Err(bad("columns", "a role list names an empty column"));
        }
        Ok(())
    }

    /// Derived columns, filters, fills, processing and validation rules.
    fn validate_rules(&self) -> Result<()> {
        for d in &self.derive {
            if !self.categorical.contains(&d.name) {
                return Err(bad("derive", format!("`{}` must also be listed in dataset.categorical (where it is encoded)", d.name)));
            }
            if self.drop.contains(&d.from) {
                return Err(bad("derive", format!("`{}` is derived from `{}`, which dataset.drop removes", d.name, d.from)));
            }
        }
        for f in &self.filters {
            if f.equals.is_empty() {
                return Err(bad("filters", format!("the filter on `{}` keeps no value (`equals` is empty)", f.column)));
            }
            if self.drop.contains(&f.column) {
                return Err(bad("filters", format!("filters on `{}`, which dataset.drop removes", f.column)));
            }
        }
        for c in self.fill.keys() {
            if self.continuous.contains(c) {
                return Err(bad("fill", format!("`{c}` is continuous; use dataset.processing.impute for numbers")));
            }
        }
        let p = &self.processing;
        match p.outliers {
            Outliers::Sigma(k) | Outliers::Iqr(k) if !(k.is_finite() && k > 0.0) => {
                return Err(bad("processing.outliers", format!("k must be a positive number, got {k}")));
            }
            _ => {}
        }
        if let Impute::Constant(v) = p.impute {
            if !v.is_finite() {
                return Err(bad("processing.impute", format!("the constant must be a finite number, got {v}")));
            }
        }
        let v = &self.validation;
        for (c, f) in &v.max_missing {
            if !(f.is_finite() && (0.0..=1.0).contains(f)) {
                return Err(bad("validation.max_missing", format!("`{c}` must be a fraction in [0, 1], got {f}")));
            }
        }
        for (c, [lo, hi]) in &v.range {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(bad("validation.range", format!("`{c}` must be [min, max] with min <= max, got [{lo}, {hi}]")));
            }
            if !self.continuous.contains(c) && !self.infer {
                return Err(bad("validation.range", format!("`{c}` is not a continuous column")));
            }
        }
        Ok(())
    }
}
