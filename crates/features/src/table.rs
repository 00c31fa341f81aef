//! Tables of text cells (test splits, files to score), read from CSV or Parquet whole or a chunk
//! of rows at a time ([`TableChunks`]), with errors that name the file, line (or Parquet row) and
//! column.

use std::path::Path;

use leadflow_core::error::{Error, Result};
use leadflow_core::model::Matrix;
use leadflow_csv::RecordSource;

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
    /// Read a whole table: a CSV after its structure check ([`leadflow_csv`]: a duplicated
    /// header column, a ragged row, an unterminated quote or bad encoding fails with the line),
    /// or a Parquet file (`.parquet`, `.pq`) as the text a CSV of it holds ([`leadflow_parquet`]).
    pub fn read(path: &Path) -> Result<Table> {
        let mut chunks = TableChunks::open(path)?;
        let header = chunks.header().to_vec();
        Ok(chunks.next_chunk(usize::MAX)?.unwrap_or_else(|| Table::from_rows(header, Vec::new(), 2)))
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

    /// The line (1-based) row `i` starts on in the file it was read from (a Parquet file's row).
    pub fn line(&self, i: usize) -> u64 {
        self.lines.line(i)
    }

    /// Where row `i` is, for a message: `line 7`, or `row 6 (row group 1)` of a Parquet file.
    pub fn place(&self, i: usize) -> String {
        self.lines.place(i)
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
                let x: f64 = crate::parse_finite(v)
                    .ok_or_else(|| invalid(path, format!("{}, column `{name}`: expected a number, found {v:?}", self.lines.place(i))))?;
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
                            "{}, column `{column}`: expected a class index 0 to {}, found {v:?}",
                            self.lines.place(i),
                            k.saturating_sub(1)
                        ),
                    )),
                }
            })
            .collect()
    }
}

/// A CSV or Parquet file read a chunk of rows at a time: memory holds one chunk, whatever the
/// file's size. Rows keep their line (Parquet: row) in the file for messages.
pub struct TableChunks {
    records: Box<dyn RecordSource + Send>,
    path: std::path::PathBuf,
    places: leadflow_csv::Places,
}

impl TableChunks {
    /// Open `path` (Parquet by its extension, else CSV) and read its header; an empty file
    /// (no header) is an error.
    pub fn open(path: &Path) -> Result<TableChunks> {
        let records: Box<dyn RecordSource + Send> = if leadflow_parquet::is_parquet(path) {
            Box::new(leadflow_parquet::ParquetRecords::open(path, leadflow_parquet::CHUNK_ROWS)?)
        } else {
            Box::new(leadflow_csv::Records::open(path)?)
        };
        if records.header().iter().all(String::is_empty) {
            return Err(invalid(path, "file is empty; expected a CSV header".into()));
        }
        let places = records.places();
        Ok(TableChunks { records, path: path.into(), places })
    }

    pub fn header(&self) -> &[String] {
        self.records.header()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next up to `rows` rows (cells trimmed), or `None` after the last one. A structural
    /// fault of the file is an error with its line.
    pub fn next_chunk(&mut self, rows: usize) -> Result<Option<Table>> {
        let mut cells: Vec<Vec<String>> = Vec::new();
        let mut lines = Vec::new();
        while cells.len() < rows {
            let Some(r) = self.records.next_record()? else { break };
            lines.push(r.line);
            cells.push((0..r.len()).map(|j| r.get(j).trim().to_string()).collect());
        }
        if cells.is_empty() {
            return Ok(None);
        }
        let header = self.records.header().to_vec();
        let shape = leadflow_csv::Shape::at(header.clone(), lines, self.places.clone());
        Ok(Some(Table { header, rows: cells, lines: shape }))
    }
}
