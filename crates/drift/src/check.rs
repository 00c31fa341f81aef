//! A batch compared with the reference, column by column, judged by [`Thresholds`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::reference::{bin_counts, count_levels, sorted_present, Column, Reference};
use crate::stats;

/// When a column counts as drifted: the `[drift]` params section, validated there.
pub use leadflow_core::params::DriftParams as Thresholds;

/// A batch's values of one column, as the check needs them.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Continuous { rows: usize, missing: usize, sorted: Vec<f64> },
    Categorical { rows: usize, missing: usize, levels: BTreeMap<String, usize> },
}

impl Values {
    pub fn continuous(values: impl IntoIterator<Item = Option<f64>>) -> Values {
        let (rows, sorted) = sorted_present(values);
        Values::Continuous { rows, missing: rows - sorted.len(), sorted }
    }

    pub fn categorical<'a>(boolean: bool, values: impl IntoIterator<Item = Option<&'a str>>) -> Values {
        let (rows, missing, levels) = count_levels(boolean, values);
        Values::Categorical { rows, missing, levels }
    }

    fn rows_missing(&self) -> (usize, usize) {
        match self {
            Values::Continuous { rows, missing, .. } | Values::Categorical { rows, missing, .. } => (*rows, *missing),
        }
    }
}

/// A batch: each reference column's values, by name.
pub type Batch = BTreeMap<String, Values>;

/// One column's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub name: String,
    pub kind: String,
    pub psi: f64,
    /// `ks` (continuous) or `chi2` (categorical).
    pub test: String,
    pub statistic: f64,
    pub p_value: f64,
    pub missing_reference: f64,
    pub missing_batch: f64,
    /// Share of the batch's values outside the training range (continuous).
    pub out_of_range: f64,
    /// Share of the batch's values that are unseen levels (categorical), and the first of them.
    pub unseen: f64,
    pub unseen_levels: Vec<String>,
    pub drifted: bool,
    /// Why it counts as drifted.
    pub reasons: Vec<String>,
    /// Bin or level labels, and the reference's and the batch's shares in each (for the chart).
    pub bins: Vec<String>,
    pub reference_shares: Vec<f64>,
    pub batch_shares: Vec<f64>,
}

/// A batch against a reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub rows_reference: usize,
    /// Batch rows compared: those in the model's population (the training table's filters).
    pub rows_batch: usize,
    /// Batch rows outside that population, left out of the comparison.
    #[serde(default)]
    pub rows_left_out: usize,
    pub thresholds: Thresholds,
    pub columns: Vec<ColumnDrift>,
    /// The model's scores on the batch against its scores on its test split.
    pub prediction: Option<ColumnDrift>,
    /// Names of the drifted columns (and `prediction` when the scores drifted).
    pub drifted: Vec<String>,
}

fn shares(counts: &[usize]) -> Vec<f64> {
    let n = counts.iter().sum::<usize>().max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

fn rate(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Compare one column. `None` when the batch's values are of the other kind.
pub fn compare_column(reference: &Column, values: &Values, t: &Thresholds) -> Option<ColumnDrift> {
    let (rows, missing) = values.rows_missing();
    let mut d = match (reference, values) {
        (Column::Continuous { name, min, max, sketch, edges, counts, .. }, Values::Continuous { sorted, .. }) => {
            let batch_counts = bin_counts(edges, sorted);
            let statistic = stats::ks_statistic(sketch, sorted);
            let outside = sorted.iter().filter(|&&v| v < *min || v > *max).count();
            let mut bins: Vec<String> = Vec::new();
            for (i, e) in edges.iter().enumerate() {
                bins.push(if i == 0 { format!("<= {e:.4}") } else { format!("({:.4}, {e:.4}]", edges[i - 1]) });
            }
            bins.push(edges.last().map_or("all".to_string(), |e| format!("> {e:.4}")));
            ColumnDrift {
                name: name.clone(),
                kind: "continuous".into(),
                psi: stats::psi(counts, &batch_counts),
                test: "ks".into(),
                statistic,
                p_value: stats::ks_p_value(statistic, sketch.len(), sorted.len()),
                out_of_range: rate(outside, sorted.len()),
                unseen: 0.0,
                unseen_levels: Vec::new(),
                bins,
                reference_shares: shares(counts),
                batch_shares: shares(&batch_counts),
                ..blank(reference)
            }
        }
        (Column::Categorical { name, levels, .. }, Values::Categorical { levels: batch, .. }) => {
            let all: Vec<&String> = levels.keys().chain(batch.keys().filter(|k| !levels.contains_key(*k))).collect();
            let r: Vec<usize> = all.iter().map(|l| levels.get(*l).copied().unwrap_or(0)).collect();
            let b: Vec<usize> = all.iter().map(|l| batch.get(*l).copied().unwrap_or(0)).collect();
            let (statistic, _, p_value) = stats::chi_squared(&r, &b);
            let unseen: Vec<(&String, usize)> = batch.iter().filter(|(k, _)| !levels.contains_key(*k)).map(|(k, &c)| (k, c)).collect();
            ColumnDrift {
                name: name.clone(),
                kind: "categorical".into(),
                psi: stats::psi(&r, &b),
                test: "chi2".into(),
                statistic,
                p_value,
                out_of_range: 0.0,
                unseen: rate(unseen.iter().map(|u| u.1).sum(), b.iter().sum()),
                unseen_levels: unseen.iter().take(10).map(|u| u.0.clone()).collect(),
                bins: all.iter().map(|l| (*l).clone()).collect(),
                reference_shares: shares(&r),
                batch_shares: shares(&b),
                ..blank(reference)
            }
        }
        _ => return None,
    };
    d.missing_batch = rate(missing, rows);
    judge(&mut d, t);
    Some(d)
}

fn blank(reference: &Column) -> ColumnDrift {
    ColumnDrift {
        name: String::new(),
        kind: String::new(),
        psi: 0.0,
        test: String::new(),
        statistic: 0.0,
        p_value: 1.0,
        missing_reference: rate(reference.missing(), reference.rows()),
        missing_batch: 0.0,
        out_of_range: 0.0,
        unseen: 0.0,
        unseen_levels: Vec::new(),
        drifted: false,
        reasons: Vec::new(),
        bins: Vec::new(),
        reference_shares: Vec::new(),
        batch_shares: Vec::new(),
    }
}

fn judge(d: &mut ColumnDrift, t: &Thresholds) {
    if d.psi >= t.psi && d.p_value < t.p_value {
        d.reasons.push(format!("distribution: PSI {:.3} >= {} and {} p = {:.2e} < {}", d.psi, t.psi, d.test, d.p_value, t.p_value));
    }
    if d.out_of_range > t.max_out_of_range {
        d.reasons.push(format!("{:.1} % outside the training range (> {:.1} %)", 100.0 * d.out_of_range, 100.0 * t.max_out_of_range));
    }
    if d.unseen > t.max_unseen {
        d.reasons.push(format!(
            "{:.1} % unseen levels (> {:.1} %): {}",
            100.0 * d.unseen,
            100.0 * t.max_unseen,
            d.unseen_levels.join(", ")
        ));
    }
    let rise = d.missing_batch - d.missing_reference;
    if rise > t.max_missing_increase {
        d.reasons.push(format!(
            "missing {:.1} % -> {:.1} % (+{:.1} points > {:.1})",
            100.0 * d.missing_reference,
            100.0 * d.missing_batch,
            100.0 * rise,
            100.0 * t.max_missing_increase
        ));
    }
    d.drifted = !d.reasons.is_empty();
}

/// Compare every reference column with the batch's, and the scores when both sides have them.
/// A reference column absent from the batch is an error naming it.
pub fn compare(reference: &Reference, batch: &Batch, predictions: Option<&Values>, t: &Thresholds) -> Result<Report, String> {
    let mut columns = Vec::new();
    let mut rows_batch = 0;
    for c in &reference.columns {
        let v = batch.get(c.name()).ok_or_else(|| format!("the batch has no column `{}` (the model's inputs are checked)", c.name()))?;
        rows_batch = rows_batch.max(v.rows_missing().0);
        columns.push(compare_column(c, v, t).ok_or_else(|| format!("column `{}`: a {} column in training", c.name(), kind(c)))?);
    }
    let prediction = match (&reference.prediction, predictions) {
        (Some(r), Some(p)) => compare_column(r, p, t),
        _ => None,
    };
    let drifted = columns.iter().chain(&prediction).filter(|d| d.drifted).map(|d| d.name.clone()).collect();
    Ok(Report { rows_reference: reference.rows, rows_batch, rows_left_out: 0, thresholds: *t, columns, prediction, drifted })
}

fn kind(c: &Column) -> &'static str {
    match c {
        Column::Continuous { .. } => "continuous",
        Column::Categorical { .. } => "categorical",
    }
}

impl Report {
    /// The report as Markdown: a table of every column, then a chart (Mermaid) of each drifted
    /// one, reference and batch shares side by side.
    pub fn markdown(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {title}\n");
        let verdict = if self.drifted.is_empty() { "no drift".to_string() } else { format!("**drift in {}**", self.drifted.join(", ")) };
        let _ = writeln!(s, "{} batch rows against {} training rows: {verdict}.\n", self.rows_batch, self.rows_reference);
        if self.rows_left_out > 0 {
            let _ = writeln!(
                s,
                "{} more batch rows are outside the population the model was trained on (the dataset's filters) and were left out.\n",
                self.rows_left_out
            );
        }
        let t = &self.thresholds;
        let _ = writeln!(
            s,
            "A column drifts when PSI >= {} with a test p-value < {}, or more than {:.0} % of its values are out of range or unseen levels, or its missing share rises by more than {:.0} points.\n",
            t.psi,
            t.p_value,
            100.0 * t.max_out_of_range.max(t.max_unseen),
            100.0 * t.max_missing_increase
        );
        let _ = writeln!(
            s,
            "| column | kind | PSI | test | statistic | p-value | missing (train -> batch) | out of range | unseen | drifted |"
        );
        let _ = writeln!(s, "|---|---|---:|---|---:|---:|---:|---:|---:|---|");
        for d in self.columns.iter().chain(&self.prediction) {
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} | {} | {:.4} | {:.3e} | {:.1} % -> {:.1} % | {:.1} % | {:.1} % | {} |",
                d.name,
                d.kind,
                d.psi,
                d.test,
                d.statistic,
                d.p_value,
                100.0 * d.missing_reference,
                100.0 * d.missing_batch,
                100.0 * d.out_of_range,
                100.0 * d.unseen,
                if d.drifted { format!("**yes**: {}", d.reasons.join("; ")) } else { "no".into() }
            );
        }
        for d in self.columns.iter().chain(&self.prediction).filter(|d| d.drifted) {
            let _ = writeln!(
                s,
                "\n## {}\n\nShare of rows per {} (bars: training, line: batch).\n",
                d.name,
                if d.kind == "continuous" { "bin" } else { "level" }
            );
            let labels: Vec<String> = d.bins.iter().take(20).map(|b| format!("\"{}\"", b.replace('"', "'"))).collect();
            let nums = |v: &[f64]| v.iter().take(20).map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(s, "```mermaid\nxychart-beta\n    x-axis [{}]\n    y-axis \"share of rows\"", labels.join(", "));
            let _ = writeln!(s, "    bar [{}]\n    line [{}]\n```", nums(&d.reference_shares), nums(&d.batch_shares));
        }
        s
    }
}
