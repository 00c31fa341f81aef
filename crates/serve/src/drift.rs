//! `leadflow model drift`: a batch of raw rows — a CSV of the training table's columns, or the
//! server's prediction log (the same columns plus what was predicted) — against the reference
//! saved with the model, and the model's scores on the batch against its scores on its test split.

use std::path::Path;

use leadflow_core::artifacts as art;
use leadflow_drift::{Batch, Reference, Report, Thresholds, Values};
use leadflow_features::table::Table;

use crate::batch::{InputKind, ModelDir};
use crate::error::{Error, Result};

/// The reference saved in a model directory.
pub fn reference(model_dir: &Path) -> Result<Reference> {
    let path = model_dir.join(art::MODEL_REFERENCE.name);
    if !path.is_file() {
        return Err(Error::Input {
            path,
            message: "this model directory has no drift reference (it was exported before leadflow wrote one); re-run the pipeline".into(),
        });
    }
    Ok(art::read_json(&path, "a drift reference")?)
}

/// The batch's values of every reference column. A continuous cell that is not a number is an
/// error naming its line and column, as the data stage would refuse it.
pub fn batch_of(table: &Table, path: &Path, reference: &Reference) -> Result<Batch> {
    let mut batch = Batch::new();
    for column in &reference.columns {
        let name = column.name();
        let j = table.column_index(name).ok_or_else(|| Error::Input {
            path: path.into(),
            message: format!(
                "no column `{name}`; the model's inputs are {}",
                reference.columns.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
            ),
        })?;
        let values = match column {
            leadflow_drift::Column::Continuous { .. } => {
                let mut v = Vec::with_capacity(table.rows.len());
                for (i, row) in table.rows.iter().enumerate() {
                    let cell = row[j].trim();
                    v.push(if cell.is_empty() {
                        None
                    } else {
                        Some(leadflow_features::parse_finite(cell).ok_or_else(|| Error::Input {
                            path: path.into(),
                            message: format!("line {}, column `{name}`: expected a number, found {cell:?}", table.line(i)),
                        })?)
                    });
                }
                Values::continuous(v)
            }
            leadflow_drift::Column::Categorical { boolean, .. } => {
                Values::categorical(*boolean, table.rows.iter().map(|r| Some(r[j].as_str())))
            }
        };
        batch.insert(name.to_string(), values);
    }
    Ok(batch)
}

/// The model's scores on the batch, in the reference's terms: P(positive), or the predicted class.
fn scores(model: &ModelDir, table: &Table, path: &Path) -> Result<Values> {
    let p = model.predict_table(table, path, InputKind::Raw)?;
    let target = &model.preprocessing.target;
    let k = target.n_classes();
    if k == 2 {
        return Ok(Values::continuous(p.into_iter().map(Some)));
    }
    let classes = leadflow_metrics::predict_classes(&p, k, model.spec.threshold);
    Ok(Values::categorical(false, classes.iter().map(|&c| Some(target.labels[c as usize].as_str()))))
}

/// Check `input` against the model directory's reference.
pub fn check(model_dir: &Path, input: &Path, thresholds: &Thresholds) -> Result<Report> {
    let model = ModelDir::open(model_dir)?;
    let reference = reference(model_dir)?;
    let all = Table::read(input)?;
    let table = in_population(&all, input, &model)?;
    if table.rows.is_empty() {
        let message = if all.rows.is_empty() { "no rows to check" } else { "no row is in the model's population (the dataset's filters)" };
        return Err(Error::Input { path: input.into(), message: message.into() });
    }
    let batch = batch_of(&table, input, &reference)?;
    let predictions = scores(&model, &table, input)?;
    let mut report = leadflow_drift::compare(&reference, &batch, Some(&predictions), thresholds)
        .map_err(|message| Error::Input { path: input.into(), message })?;
    report.rows_left_out = all.rows.len() - table.rows.len();
    Ok(report)
}

/// The rows the model was trained to score: those the dataset's filters keep (a lead model
/// trained on signups is not judged on other sources' rows). The date window does not apply.
fn in_population(table: &Table, path: &Path, model: &ModelDir) -> Result<Table> {
    let mut columns = Vec::new();
    for f in &model.preprocessing.filters {
        let j = table.column_index(&f.column).ok_or_else(|| Error::Input {
            path: path.into(),
            message: format!("no column `{}`, which the dataset's filters read", f.column),
        })?;
        columns.push((f, j));
    }
    let keep: Vec<usize> = (0..table.rows.len()).filter(|&i| columns.iter().all(|(f, j)| f.keeps(&table.rows[i][*j]))).collect();
    Ok(if keep.len() == table.rows.len() { table.clone() } else { table.select(&keep) })
}
