//! The training table's profile: what a drift check needs of each input column, built once
//! and saved with the model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::quantile;

/// At most this many values of a continuous column are kept for the KS test: all of them when
/// there are fewer, else this many evenly spaced order statistics (a quantile sketch).
pub const SKETCH: usize = 5_000;

/// PSI bins of a continuous column: its deciles (edges that coincide are merged).
pub const BINS: usize = 10;

/// The profile of the table a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Rows of the training table (after the data stage's filters).
    pub rows: usize,
    pub columns: Vec<Column>,
    /// The model's scores on its test split: P(positive) (binary) or the predicted class
    /// (multiclass). Added when the model is exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Column>,
}

/// One column's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Column {
    Continuous {
        name: String,
        rows: usize,
        missing: usize,
        min: f64,
        max: f64,
        /// Sorted values (all, or [`SKETCH`] order statistics).
        sketch: Vec<f64>,
        /// Inner edges of the PSI bins: a value `v` is in bin `i` when `edges[i-1] < v <= edges[i]`.
        edges: Vec<f64>,
        /// Values per bin (`edges.len() + 1` bins).
        counts: Vec<usize>,
    },
    Categorical {
        name: String,
        rows: usize,
        missing: usize,
        /// Booleans are compared as `true`/`false` however they are spelled.
        #[serde(default)]
        boolean: bool,
        levels: BTreeMap<String, usize>,
    },
}

impl Column {
    pub fn name(&self) -> &str {
        match self {
            Column::Continuous { name, .. } | Column::Categorical { name, .. } => name,
        }
    }

    pub fn rows(&self) -> usize {
        match self {
            Column::Continuous { rows, .. } | Column::Categorical { rows, .. } => *rows,
        }
    }

    pub fn missing(&self) -> usize {
        match self {
            Column::Continuous { missing, .. } | Column::Categorical { missing, .. } => *missing,
        }
    }

    /// A continuous column's profile from its values (`None`: missing).
    pub fn continuous(name: &str, values: impl IntoIterator<Item = Option<f64>>) -> Column {
        let (rows, present) = sorted_present(values);
        let missing = rows - present.len();
        let mut edges: Vec<f64> = (1..BINS).map(|i| quantile(&present, i as f64 / BINS as f64)).filter(|e| e.is_finite()).collect();
        edges.dedup();
        let counts = bin_counts(&edges, &present);
        let sketch = if present.len() <= SKETCH {
            present.clone()
        } else {
            let last = (present.len() - 1) as f64;
            (0..SKETCH).map(|i| present[(i as f64 * last / (SKETCH - 1) as f64).round() as usize]).collect()
        };
        Column::Continuous {
            name: name.to_string(),
            rows,
            missing,
            min: present.first().copied().unwrap_or(f64::NAN),
            max: present.last().copied().unwrap_or(f64::NAN),
            sketch,
            edges,
            counts,
        }
    }

    /// A categorical column's profile from its cells (`None` or blank: missing).
    pub fn categorical<'a>(name: &str, boolean: bool, values: impl IntoIterator<Item = Option<&'a str>>) -> Column {
        let (rows, missing, levels) = count_levels(boolean, values);
        Column::Categorical { name: name.to_string(), rows, missing, boolean, levels }
    }
}

/// A categorical cell's level: trimmed; a boolean as `true`/`false` (read as the data stage
/// reads booleans; other spellings as they are); blank is missing.
pub fn level(v: Option<&str>, boolean: bool) -> Option<String> {
    let v = v.map(str::trim).filter(|s| !s.is_empty())?;
    match leadflow_core::dataset::parse_bool(v).filter(|_| boolean) {
        Some(b) => Some(b.to_string()),
        None => Some(v.to_string()),
    }
}

/// How many values, and the present (finite) ones sorted.
pub(crate) fn sorted_present(values: impl IntoIterator<Item = Option<f64>>) -> (usize, Vec<f64>) {
    let mut rows = 0;
    let mut present: Vec<f64> = Vec::new();
    for v in values {
        rows += 1;
        if let Some(v) = v.filter(|v| v.is_finite()) {
            present.push(v);
        }
    }
    present.sort_by(f64::total_cmp);
    (rows, present)
}

/// How many cells, how many missing, and the count of each level.
pub(crate) fn count_levels<'a>(
    boolean: bool,
    values: impl IntoIterator<Item = Option<&'a str>>,
) -> (usize, usize, BTreeMap<String, usize>) {
    let (mut rows, mut missing) = (0, 0);
    let mut levels = BTreeMap::new();
    for v in values {
        rows += 1;
        match level(v, boolean) {
            Some(l) => *levels.entry(l).or_insert(0) += 1,
            None => missing += 1,
        }
    }
    (rows, missing, levels)
}

/// Sorted values counted into the bins the inner `edges` make.
pub fn bin_counts(edges: &[f64], sorted: &[f64]) -> Vec<usize> {
    let mut counts = vec![0; edges.len() + 1];
    for &v in sorted {
        counts[edges.partition_point(|&e| e < v)] += 1;
    }
    counts
}
