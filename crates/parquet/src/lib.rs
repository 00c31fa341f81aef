//! Parquet inputs read as the text records a CSV gives, so that every check, message and
//! transform downstream is the one CSV inputs get.
//!
//! [`ParquetRecords`] reads a file a chunk of rows at a time (polars decodes only the row groups
//! a chunk overlaps, in parallel), turns each cell into the text a CSV of the same table holds,
//! and hands the rows out one by one ([`leadflow_csv::RecordSource`]). Memory is bounded by the
//! chunk, whatever the file's size. A record's number is its row (1-based) and messages name the
//! row group too ([`Places::Rows`]).
//!
//! | Parquet type | text |
//! |---|---|
//! | string, categorical, integer | as written (`-3`, `.dk`) |
//! | boolean | `True` / `False`, as pandas writes them to a CSV (columns read as yes/no accept any case; a boolean kept as a category keeps the CSV's levels) |
//! | float | shortest text that reads back as the same number; integral values without `.0` (a pandas column of integers with gaps is float: `3.0` reads as `3`, as the CSV had it); NaN as missing |
//! | date | `YYYY-MM-DD` |
//! | timestamp | `YYYY-MM-DD` when every value is at midnight (pandas' parsed dates), else `YYYY-MM-DD HH:MM:SS[.f]` |
//! | null | empty (missing) |
//! | list, struct, binary | refused, naming the column |

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leadflow_csv::{CsvError, Places, Record, RecordSource};
use polars::prelude::*;

type Result<T, E = CsvError> = std::result::Result<T, E>;

/// Rows decoded at a time unless the caller says otherwise.
pub const CHUNK_ROWS: usize = 16_384;

/// Whether `path` names a Parquet file (by its extension, `.parquet` or `.pq`).
pub fn is_parquet(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
}

fn format_err(path: &Path, what: impl Into<String>) -> impl FnOnce(PolarsError) -> CsvError + '_ {
    let what = what.into();
    move |e| CsvError::Format { path: path.into(), what, source: Some(Box::new(e)) }
}

/// One column of a chunk as text: cell `i` is `text[ends[i-1]..ends[i]]`.
#[derive(Default)]
struct Text {
    text: String,
    ends: Vec<usize>,
}

impl Text {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    fn push_fmt(&mut self, v: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        let _ = self.text.write_fmt(v);
        self.ends.push(self.text.len());
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// The text of a float cell: integral values as integers, others as the shortest text that
/// reads back as the same number, NaN as missing.
fn float_text(out: &mut Text, v: Option<f64>) {
    match v {
        None => out.push(""),
        Some(x) if x.is_nan() => out.push(""),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => out.push_fmt(format_args!("{}", x as i64)),
        Some(x) => out.push_fmt(format_args!("{x}")),
    }
}

/// A polars column of a chunk as CSV text.
fn column_text(path: &Path, c: &Column) -> Result<Text> {
    let s = c.as_materialized_series();
    let name = s.name().to_string();
    let mut out = Text { text: String::with_capacity(s.len() * 8), ends: Vec::with_capacity(s.len()) };
    let unreadable = |dtype: &DataType| CsvError::Format {
        path: path.into(),
        what: format!("column `{name}` is of Parquet type {dtype}, which has no one-value-per-cell text; give a table of plain columns"),
        source: None,
    };
    match s.dtype() {
        DataType::Float64 | DataType::Float32 => {
            let f = s.cast(&DataType::Float64).map_err(format_err(path, format!("column `{name}`")))?;
            for v in f.f64().map_err(format_err(path, format!("column `{name}`")))?.iter() {
                float_text(&mut out, v);
            }
        }
        DataType::Boolean => {
            for v in s.bool().map_err(format_err(path, format!("column `{name}`")))?.iter() {
                out.push(match v {
                    Some(true) => "True",
                    Some(false) => "False",
                    None => "",
                });
            }
        }
        DataType::String => {
            for v in s.str().map_err(format_err(path, format!("column `{name}`")))?.iter() {
                out.push(v.unwrap_or(""));
            }
        }
        DataType::Datetime(_, _) => {
            let date = s.cast(&DataType::Date).map_err(format_err(path, format!("column `{name}`")))?;
            let back = date.cast(s.dtype()).map_err(format_err(path, format!("column `{name}`")))?;
            let midnight = back.equal_missing(s).map_err(format_err(path, format!("column `{name}`")))?.all();
            let text = if midnight { date } else { s.clone() };
            return column_text(path, &text.cast(&DataType::String).map_err(format_err(path, format!("column `{name}`")))?.into());
        }
        d if d.is_nested() || matches!(d, DataType::Binary | DataType::BinaryOffset) => return Err(unreadable(d)),
        _ => {
            let text = s.cast(&DataType::String).map_err(|_| unreadable(s.dtype()))?;
            for v in text.str().map_err(format_err(path, format!("column `{name}`")))?.iter() {
                out.push(v.unwrap_or(""));
            }
        }
    }
    Ok(out)
}

/// A Parquet file's rows as text records, read a chunk at a time.
pub struct ParquetRecords {
    path: PathBuf,
    metadata: Arc<polars::io::parquet::read::FileMetadata>,
    header: Vec<String>,
    places: Places,
    rows: usize,
    chunk_rows: usize,
    /// Rows decoded from the file so far.
    fetched: usize,
    /// The current chunk, by column, and the next row of it to hand out.
    chunk: Vec<Text>,
    chunk_len: usize,
    next: usize,
    records: usize,
    /// The current record's text and field spans.
    data: String,
    spans: Vec<(usize, usize)>,
}

impl ParquetRecords {
    /// Open `path` and read its schema and row-group layout; rows are decoded `chunk_rows` at a
    /// time.
    pub fn open(path: &Path, chunk_rows: usize) -> Result<ParquetRecords> {
        let file = File::open(path).map_err(|source| CsvError::Io { path: path.into(), source })?;
        let mut reader = ParquetReader::new(file);
        let not_parquet = "not a readable Parquet file";
        let schema = reader.schema().map_err(format_err(path, not_parquet))?;
        let metadata = reader.get_metadata().map_err(format_err(path, not_parquet))?.clone();
        let header: Vec<String> = schema.iter_names().map(|n| n.trim().to_string()).collect();
        for (j, n) in header.iter().enumerate() {
            if let Some(k) = header[..j].iter().position(|m| m == n) {
                return Err(CsvError::Format {
                    path: path.into(),
                    what: format!("column `{n}` appears twice (columns {} and {})", k + 1, j + 1),
                    source: None,
                });
            }
        }
        let mut ends = Vec::with_capacity(metadata.row_groups.len());
        let mut total = 0u64;
        for g in &metadata.row_groups {
            total += g.num_rows() as u64;
            ends.push(total);
        }
        Ok(ParquetRecords {
            path: path.into(),
            rows: metadata.num_rows,
            metadata,
            header,
            places: Places::Rows { group_ends: Arc::new(ends) },
            chunk_rows: chunk_rows.max(1),
            fetched: 0,
            chunk: Vec::new(),
            chunk_len: 0,
            next: 0,
            records: 0,
            data: String::new(),
            spans: Vec::new(),
        })
    }

    /// Rows in the file.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Decode the next chunk; false at the end of the file.
    fn fetch(&mut self) -> Result<bool> {
        if self.fetched >= self.rows {
            return Ok(false);
        }
        let file = File::open(&self.path).map_err(|source| CsvError::Io { path: self.path.clone(), source })?;
        let mut reader = ParquetReader::new(file).with_slice(Some((self.fetched, self.chunk_rows)));
        reader.set_metadata(self.metadata.clone());
        let first = self.fetched + 1;
        let df = reader.finish().map_err(format_err(&self.path, format!("reading rows from {first}")))?;
        self.chunk = df.columns().iter().map(|c| column_text(&self.path, c)).collect::<Result<_>>()?;
        self.chunk_len = df.height();
        self.fetched += df.height();
        self.next = 0;
        Ok(self.chunk_len > 0)
    }
}

impl RecordSource for ParquetRecords {
    fn header(&self) -> &[String] {
        &self.header
    }

    fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        if self.next >= self.chunk_len && !self.fetch()? {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        self.data.clear();
        self.spans.clear();
        for c in &self.chunk {
            let start = self.data.len();
            self.data.push_str(c.get(i));
            self.spans.push((start, self.data.len()));
        }
        let index = self.records;
        self.records += 1;
        Ok(Some(Record::new(&self.data, &self.spans, index, index as u64 + 1)))
    }

    fn records_read(&self) -> usize {
        self.records
    }

    fn places(&self) -> Places {
        self.places.clone()
    }
}
