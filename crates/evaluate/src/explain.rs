//! The global view of the selected model's explanations on the test split: per input column the
//! mean |contribution| to the margin (XGBoost's TreeSHAP, or the logistic model's coefficient x
//! (value - training mean); one-hot levels summed), as JSON, a Markdown table and a
//! beeswarm-style picture (each test row a dot at its contribution). Binary models.

use std::fmt::Write as _;

use leadflow_core::artifacts::{self as art, Layout, StageDir};
use leadflow_features::table::Table;
use leadflow_features::FeatureSpec;
use leadflow_model::{Matrix, Model, ModelKind};
use serde::Serialize;

use crate::error::Result;
use crate::plots;

#[derive(Debug, Clone, Serialize)]
pub struct ColumnEffect {
    pub name: String,
    pub mean_abs: f64,
}

/// What `explanations.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Global {
    pub model: ModelKind,
    pub rows: usize,
    pub method: String,
    /// Largest mean |contribution| first.
    pub columns: Vec<ColumnEffect>,
}

/// The selected model's contributions on the test split, written; `None` for a multiclass model.
pub fn write(
    out: &StageDir,
    layout: &Layout,
    kind: ModelKind,
    model: &Model,
    x: &Matrix,
    features: &[String],
    k: usize,
) -> Result<Option<Global>> {
    if k != 2 {
        return Ok(None);
    }
    let means = match kind {
        ModelKind::Logistic => Some(train_means(layout, features)?),
        ModelKind::Xgboost | ModelKind::Boosted => None,
    };
    let c = model.contributions(x, means.as_deref())?;
    let spec: FeatureSpec = art::read_json(&layout.require(&art::FEATURE_SPEC)?, "a feature spec")?;
    let mut names: Vec<String> = Vec::new();
    let index: Vec<usize> = spec
        .feature_columns()
        .into_iter()
        .map(|col| match names.iter().position(|n| *n == col) {
            Some(i) => i,
            None => {
                names.push(col);
                names.len() - 1
            }
        })
        .collect();
    let mut per_column: Vec<Vec<f64>> = vec![Vec::with_capacity(x.n_rows); names.len()];
    for i in 0..x.n_rows {
        let mut sums = vec![0.0; names.len()];
        for (j, v) in c.row(i).iter().enumerate() {
            sums[index[j]] += v;
        }
        for (col, v) in per_column.iter_mut().zip(sums) {
            col.push(v);
        }
    }
    let n = x.n_rows.max(1) as f64;
    let mut columns: Vec<(ColumnEffect, Vec<f64>)> = names
        .into_iter()
        .zip(per_column)
        .map(|(name, values)| (ColumnEffect { name, mean_abs: values.iter().map(|v| v.abs()).sum::<f64>() / n }, values))
        .collect();
    columns.sort_by(|a, b| b.0.mean_abs.total_cmp(&a.0.mean_abs).then_with(|| a.0.name.cmp(&b.0.name)));
    let method = match kind {
        ModelKind::Xgboost | ModelKind::Boosted => "XGBoost TreeSHAP (pred_contribs), margin units",
        ModelKind::Logistic => "coefficient x (value - training mean), log-odds",
    };
    let global = Global { model: kind, rows: x.n_rows, method: method.into(), columns: columns.iter().map(|c| c.0.clone()).collect() };
    art::write_json(&out.path(&art::EXPLANATIONS_JSON), &global)?;
    let swarm: Vec<(String, Vec<f64>)> = columns.into_iter().map(|(e, v)| (e.name, v)).collect();
    plots::beeswarm(&out.path(&art::EXPLANATIONS_PNG), &format!("{}: contributions on the test split", kind.label()), method, &swarm)?;
    Ok(Some(global))
}

/// The training rows' mean of each feature, in model order.
fn train_means(layout: &Layout, features: &[String]) -> Result<Vec<f64>> {
    let path = layout.require(&art::X_TRAIN)?;
    let x = Table::read(&path)?.matrix(&path, features)?;
    let n = x.n_rows.max(1) as f64;
    Ok((0..x.n_cols).map(|j| (0..x.n_rows).map(|i| x.row(i)[j]).sum::<f64>() / n).collect())
}

impl Global {
    /// The report's section.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "\n## What drives the scores\n\n{} on the {} test rows: mean |contribution| per input ({}).\n\n| input | mean \\|contribution\\| |\n|---|---:|\n",
            self.model.label(),
            self.rows,
            self.method
        );
        for c in &self.columns {
            let _ = writeln!(s, "| {} | {:.4} |", c.name, c.mean_abs);
        }
        let _ = writeln!(s, "\n![Contributions]({})", art::EXPLANATIONS_PNG.name);
        s
    }
}
