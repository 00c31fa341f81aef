//! Small CSV tables (test splits, files to score) with errors that name the file, line and column.

use std::path::Path;

use leadflow_core::error::{Error, Result};
use leadflow_core::model::Matrix;

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Where each row is in the file, for error messages.
    lines: leadflow_csv::Shape,
}

fn invalid(path: &Path, message: String) -> Error {
    Error::Invalid { path: path.into(), message }
}

impl Table {
    /// Read a CSV table after its structure check ([`leadflow_csv`]): a duplicated header
    /// column, a ragged row, an unterminated quote or bad encoding fails with the line.
    pub fn read(path: &Path) -> Result<Table> {
        // One pass: the structure check gives the fields of the records it accepts.
        let mut records = leadflow_csv::Records::open(path)?;
        let mut rows = Vec::new();
        while let Some(r) = records.next_record()? {
            rows.push((0..r.len()).map(|j| r.get(j).trim().to_string()).collect());
        }
        let shape = records.drain()?;
        if shape.header.iter().all(String::is_empty) {
            return Err(invalid(path, "file is empty; expected a CSV header".into()));
        }
        Ok(Table { header: shape.header.clone(), rows, lines: shape })
    }

    /// A table not read from a file (e.g. a request body); row `i` is reported as line
    /// `first_line + i`.
    pub fn from_rows(header: Vec<String>, rows: Vec<Vec<String>>, first_line: u64) -> Table {
        let lines = leadflow_csv::Shape::in_memory(header.clone(), rows.len(), first_line);
        Table { header, rows, lines }
    }

    /// Some rows (by index, in that order), each keeping the line it was read from.
    pub fn select(&self, rows: &[usize]) -> Table {
        Table { header: self.header.clone(), rows: rows.iter().map(|&i| self.rows[i].clone()).collect(), lines: self.lines.select(rows) }
    }

    /// The line (1-based) row `i` starts on in the file it was read from.
    pub fn line(&self, i: usize) -> u64 {
        self.lines.line(i)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The named columns, in that order, as a numeric matrix. Missing columns are reported all
    /// at once; a non-numeric cell names its line and column.
    pub fn matrix(&self, path: &Path, columns: &[String]) -> Result<Matrix> {
        let missing: Vec<&str> = columns.iter().filter(|c| self.column_index(c).is_none()).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(invalid(path, format!("missing column(s): {}", missing.join(", "))));
        }
        let idx: Vec<usize> = columns.iter().filter_map(|c| self.column_index(c)).collect();
        let mut m = Matrix::new(columns.len());
        let mut row = Vec::with_capacity(columns.len());
        for (i, r) in self.rows.iter().enumerate() {
            row.clear();
            for (&j, name) in idx.iter().zip(columns) {
                let v = &r[j];
                let x: f64 = crate::parse_finite(v).ok_or_else(|| {
                    invalid(path, format!("line {}, column `{name}`: expected a number, found {v:?}", self.lines.line(i)))
                })?;
                row.push(x);
            }
            m.push_row(&row);
        }
        Ok(m)
    }

    /// A 0/1 label column.
    /// Class indices `0..k` from `column` (`1.0` reads as 1).
    pub fn labels(&self, path: &Path, column: &str, k: usize) -> Result<Vec<u8>> {
        let j = self
            .column_index(column)
            .ok_or_else(|| invalid(path, format!("missing column `{column}` (found: {})", self.header.join(", "))))?;
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let v = r[j].trim();
                match v.parse::<f64>() {
                    Ok(x) if x.fract() == 0.0 && x >= 0.0 && (x as usize) < k => Ok(x as u8),
                    _ => Err(invalid(
                        path,
                        format!(
                            "line {}, column `{column}`: expected a class index 0 to {}, found {v:?}",
                            self.lines.line(i),
                            k.saturating_sub(1)
                        ),
                    )),
                }
            })
            .collect()
    }
}
