//! Inputs the model did not see in training, reported instead of hidden: values of a continuous
//! column outside the training range, and levels of a categorical column training never saw,
//! judged against the reference saved with the model. Counted per column (`predict`'s summary,
//! the server's `/metrics`) and, on request, listed per row. Scoring itself still does what
//! params say (continuous values clipped to the fitted bounds; unseen levels an error or zeros).

use std::collections::{BTreeMap, BTreeSet};

use leadflow_drift::reference::level;
use leadflow_drift::{Column, Reference};
use leadflow_features::table::Table;

#[derive(Debug)]
enum Check {
    Range { min: f64, max: f64 },
    Levels { levels: BTreeSet<String>, boolean: bool },
}

/// What each model input looked like in training.
#[derive(Debug)]
pub struct Watch {
    columns: Vec<(String, Check)>,
}

/// Per column, how many rows had a value outside the training range or an unseen level.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct InputReport {
    pub rows: usize,
    pub out_of_range: BTreeMap<String, usize>,
    pub unseen: BTreeMap<String, usize>,
}

/// One row's unusual input, for a client that asked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Warning {
    /// 1-based row of the request or file.
    pub row: usize,
    pub column: String,
    pub value: String,
    pub problem: String,
}

impl Watch {
    pub fn new(reference: &Reference) -> Watch {
        let columns = reference
            .columns
            .iter()
            .map(|c| match c {
                Column::Continuous { name, min, max, .. } => (name.clone(), Check::Range { min: *min, max: *max }),
                Column::Categorical { name, levels, boolean, .. } => {
                    (name.clone(), Check::Levels { levels: levels.keys().cloned().collect(), boolean: *boolean })
                }
            })
            .collect();
        Watch { columns }
    }

    /// Count (and, given `warnings`, list) the unusual inputs of a table of raw rows. Columns the
    /// table lacks (encoded rows) and cells that are not numbers (refused by scoring) are skipped.
    pub fn inspect(&self, table: &Table, mut warnings: Option<&mut Vec<Warning>>) -> InputReport {
        let mut report = InputReport { rows: table.rows.len(), ..Default::default() };
        for (name, check) in &self.columns {
            let Some(j) = table.column_index(name) else { continue };
            for (i, row) in table.rows.iter().enumerate() {
                let cell = row[j].trim();
                let problem = match check {
                    Check::Range { min, max } => match leadflow_features::parse_finite(cell) {
                        Some(v) if v < *min || v > *max => {
                            *report.out_of_range.entry(name.clone()).or_insert(0) += 1;
                            format!("outside the training range [{min}, {max}]")
                        }
                        _ => continue,
                    },
                    Check::Levels { levels, boolean } => match level(Some(cell), *boolean) {
                        Some(l) if !levels.contains(&l) => {
                            *report.unseen.entry(name.clone()).or_insert(0) += 1;
                            "a level training never saw".to_string()
                        }
                        _ => continue,
                    },
                };
                if let Some(w) = warnings.as_deref_mut() {
                    w.push(Warning { row: i + 1, column: name.clone(), value: cell.to_string(), problem });
                }
            }
        }
        report
    }
}

impl InputReport {
    pub fn merge(&mut self, other: &InputReport) {
        self.rows += other.rows;
        for (c, n) in &other.out_of_range {
            *self.out_of_range.entry(c.clone()).or_insert(0) += n;
        }
        for (c, n) in &other.unseen {
            *self.unseen.entry(c.clone()).or_insert(0) += n;
        }
    }

    /// One line for people, when anything was unusual.
    pub fn summary(&self) -> Option<String> {
        let list = |m: &BTreeMap<String, usize>| m.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.out_of_range.is_empty() {
            parts.push(format!("rows outside the training range: {}", list(&self.out_of_range)));
        }
        if !self.unseen.is_empty() {
            parts.push(format!("rows with levels training never saw: {}", list(&self.unseen)));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}
