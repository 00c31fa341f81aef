//! The data stage's one pass over the raw file.
//!
//! The structure check, the type check of every row and the row filters (date window, labelled
//! rows, `dataset.filters`) happen as the file streams by ([`leadflow_csv::Records`]); only the rows
//! that pass them (the *candidates*) are kept, and only their non-dropped columns, as text. A
//! 1.2-million-row file whose filters keep a quarter of it is never held in memory whole.
//! Columns whose role is inferred are the exception: inference looks at every row, so they are
//! kept for every row.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use leadflow_core::dataset::{self, DatasetParams, Role};
use leadflow_csv::{CsvError, Fault, Places, RecordSource, Records, ShapeError};

use crate::{Error, Result};

/// One column's text for a set of rows, in one buffer. An empty field reads as `None` (missing).
#[derive(Default)]
pub(crate) struct TextColumn {
    text: String,
    ends: Vec<usize>,
}

impl TextColumn {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let s = &self.text[start..self.ends[i]];
        (!s.is_empty()).then_some(s)
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Option<&str>> + Clone {
        (0..self.len()).map(|i| self.get(i))
    }

    pub(crate) fn collect<'a>(values: impl Iterator<Item = &'a str>) -> TextColumn {
        let mut c = TextColumn::default();
        for v in values {
            c.push(v);
        }
        c
    }

    fn append(&mut self, later: TextColumn) {
        let base = self.text.len();
        self.text.push_str(&later.text);
        self.ends.extend(later.ends.iter().map(|e| e + base));
    }

    /// The rows `rows` of this column.
    pub(crate) fn select(&self, rows: &[usize]) -> TextColumn {
        let mut out = TextColumn::default();
        for &i in rows {
            out.push(self.get(i).unwrap_or(""));
        }
        out
    }
}

/// `2024-01-1` and `2024-01-01` both parse (chrono accepts one-digit days and months). The
/// common shape (4-digit year, 1-2 digit month and day) is read directly; anything else goes
/// to chrono, so both accept the same strings.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let b = s.as_bytes();
    let digits = |r: &[u8]| r.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')));
    if b.len() >= 8 && b.len() <= 10 && b[4] == b'-' {
        if let Some(dash) = b[5..].iter().position(|&c| c == b'-').map(|p| p + 5) {
            let (m, d) = (&b[5..dash], &b[dash + 1..]);
            if (1..=2).contains(&m.len()) && (1..=2).contains(&d.len()) {
                if let (Some(y), Some(m), Some(d)) = (digits(&b[..4]), digits(m), digits(d)) {
                    return NaiveDate::from_ymd_opt(y as i32, m, d);
                }
            }
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Every violation found, reported together.
pub(crate) struct Problems {
    list: Vec<Problem>,
    /// How the source numbers its rows (CSV lines, Parquet rows).
    places: Places,
}

struct Problem {
    column: String,
    what: String,
    count: usize,
    /// The first lines at fault; none for a summary (fractions, row counts).
    examples: Vec<(u64, String)>,
}

const EXAMPLES: usize = 3;

impl Problems {
    pub(crate) fn new() -> Self {
        Problems { list: Vec::new(), places: Places::Lines }
    }

    /// A bad value in `column` on `line`.
    pub(crate) fn at(&mut self, column: &str, what: &str, line: u64, value: &str) {
        if let Some(p) = self.list.iter_mut().find(|p| p.column == column && p.what == what) {
            p.count += 1;
            if p.examples.len() < EXAMPLES {
                p.examples.push((line, value.to_string()));
            }
            return;
        }
        self.list.push(Problem { column: column.into(), what: what.into(), count: 1, examples: vec![(line, value.into())] });
    }

    pub(crate) fn summary(&mut self, column: &str, what: String) {
        self.list.push(Problem { column: column.into(), what, count: 0, examples: Vec::new() });
    }

    /// `later`'s problems (lines counted from 1 after `lines` lines) after these.
    fn join(&mut self, later: Problems, lines: u64) {
        for p in later.list {
            match self.list.iter_mut().find(|q| q.column == p.column && q.what == p.what) {
                Some(q) => {
                    q.count += p.count;
                    let room = EXAMPLES.saturating_sub(q.examples.len());
                    q.examples.extend(p.examples.into_iter().take(room).map(|(l, v)| (l + lines, v)));
                }
                None => self.list.push(Problem { examples: p.examples.into_iter().map(|(l, v)| (l + lines, v)).collect(), ..p }),
            }
        }
    }

    /// Order the problems by column as `rank` says (stable: one column's keep their order).
    fn sort_by_column(&mut self, rank: impl Fn(&str) -> usize) {
        self.list.sort_by_key(|p| rank(&p.column));
    }

    pub(crate) fn into_error(self, path: &Path) -> Option<Error> {
        if self.list.is_empty() {
            return None;
        }
        let lines: Vec<String> = self
            .list
            .iter()
            .map(|p| {
                if p.examples.is_empty() {
                    return if p.column.is_empty() { p.what.clone() } else { format!("column `{}`: {}", p.column, p.what) };
                }
                let (line, value) = &p.examples[0];
                let mut s = format!("{}, column `{}`: {}, found {value:?}", self.places.describe(*line), p.column, p.what);
                if p.count > 1 {
                    let more: Vec<String> = p.examples[1..].iter().map(|(l, v)| format!("{}: {v:?}", self.places.describe(*l))).collect();
                    s.push_str(&format!(
                        " ({} such values in all; also {}{})",
                        p.count,
                        more.join(", "),
                        if p.count > p.examples.len() { ", ..." } else { "" }
                    ));
                }
                s
            })
            .collect();
        Some(Error::Invalid { path: path.into(), problems: lines })
    }
}

/// What the pass keeps: the candidate rows (every filter passed) and what the checks found.
pub(crate) struct Scan {
    pub header: Vec<String>,
    /// Data records in the file.
    pub records: usize,
    /// Per header column: the candidates' text (`None` for dropped columns).
    pub text: Vec<Option<TextColumn>>,
    /// Per header column not listed in params, when roles are inferred: every row's text.
    pub every_row: Vec<Option<TextColumn>>,
    /// The candidates' lines in the file and their record indices.
    pub lines: Vec<u64>,
    pub index: Vec<usize>,
    /// The candidates' class indices.
    pub target: Vec<u8>,
    /// Multiclass: the declared classes, else those found in the file (fixed order).
    pub classes: Vec<String>,
    /// The candidates' dates (datasets with a date column).
    pub dates: Option<Vec<NaiveDate>>,
    /// The candidates' values of the listed continuous columns, in `dataset.continuous` order.
    pub numeric: Vec<Vec<Option<f64>>>,
    /// Rows in the date window; rows also labelled (with an id); then also passing each filter.
    pub after_date: Option<usize>,
    pub after_target: usize,
    pub after_filter: Vec<usize>,
    /// Dates present in the window.
    pub min_date: Option<NaiveDate>,
    pub max_date: Option<NaiveDate>,
    /// Type problems on any row.
    pub problems: Problems,
}

/// A few values seen again and again (a target, a filter column): each decided once.
struct Memo<T> {
    seen: Vec<(Box<str>, T)>,
}

impl<T: Clone> Memo<T> {
    const MAX: usize = 64;

    fn new() -> Self {
        Memo { seen: Vec::new() }
    }

    fn get(&mut self, v: &str, decide: impl Fn(&str) -> T) -> T {
        if let Some((_, t)) = self.seen.iter().find(|(s, _)| &**s == v) {
            return t.clone();
        }
        let t = decide(v);
        if self.seen.len() < Self::MAX {
            self.seen.push((v.into(), t.clone()));
        }
        t
    }
}

/// Which header column is which, and how a row is judged: fixed before the first row.
struct Plan<'a> {
    ds: &'a DatasetParams,
    window: (NaiveDate, NaiveDate),
    kept_cols: Vec<usize>,
    inferred_cols: Vec<usize>,
    target: usize,
    id: Option<usize>,
    date: Option<usize>,
    numbers: Vec<usize>,
    booleans: Vec<usize>,
    filters: Vec<usize>,
    negative: String,
    /// Multiclass without declared classes: every labelled value is a class, known at the end.
    detect: bool,
    target_what: String,
    columns: usize,
}

impl Plan<'_> {
    /// `Some(Ok(class))`, `Some(Err)` for a value that is no class, `None` for an empty one.
    fn class_of(&self, v: &str) -> Option<Result<u8, ()>> {
        let ds = self.ds;
        if !ds.multiclass {
            return dataset::class_of(v, &ds.positive, &self.negative);
        }
        let v = v.trim();
        if v.is_empty() {
            return None;
        }
        if self.detect {
            return Some(Ok(0));
        }
        Some(ds.classes.iter().position(|c| dataset::same_value(c, v)).map(|i| i as u8).ok_or(()))
    }
}

/// What one part of the file gave; parts are read side by side and joined in file order.
/// Lines are the part's own (from 1), record indices too, until joined.
struct Part {
    records: usize,
    lines_read: u64,
    problems: Problems,
    text: Vec<Option<TextColumn>>,
    every_row: Vec<Option<TextColumn>>,
    lines: Vec<u64>,
    index: Vec<usize>,
    target: Vec<u8>,
    /// Detected classes: the distinct labelled values in order of appearance, and each
    /// candidate's value among them.
    found: Vec<String>,
    target_code: Vec<u32>,
    dates: Vec<NaiveDate>,
    numeric: Vec<Vec<Option<f64>>>,
    after_date: usize,
    after_target: usize,
    after_filter: Vec<usize>,
    min_date: Option<NaiveDate>,
    max_date: Option<NaiveDate>,
}

impl Part {
    fn new(plan: &Plan<'_>) -> Part {
        let cols = |pick: &[usize]| (0..plan.columns).map(|j| pick.contains(&j).then(TextColumn::default)).collect();
        Part {
            records: 0,
            lines_read: 0,
            problems: Problems::new(),
            text: cols(&plan.kept_cols),
            every_row: cols(&plan.inferred_cols),
            lines: Vec::new(),
            index: Vec::new(),
            target: Vec::new(),
            found: Vec::new(),
            target_code: Vec::new(),
            dates: Vec::new(),
            numeric: plan.numbers.iter().map(|_| Vec::new()).collect(),
            after_date: 0,
            after_target: 0,
            after_filter: vec![0; plan.filters.len()],
            min_date: None,
            max_date: None,
        }
    }

    /// `later` (the part after this one, whose lines start after `lines` lines and records
    /// after `records`) joined onto this one.
    fn join(&mut self, later: Part, lines: u64, records: usize) {
        self.records += later.records;
        self.lines_read += later.lines_read;
        self.problems.join(later.problems, lines);
        for (a, b) in self.text.iter_mut().zip(later.text).chain(self.every_row.iter_mut().zip(later.every_row)) {
            if let (Some(a), Some(b)) = (a.as_mut(), b) {
                a.append(b);
            }
        }
        self.lines.extend(later.lines.iter().map(|l| l + lines));
        self.index.extend(later.index.iter().map(|i| i + records));
        self.target.extend(later.target);
        let mut at: HashMap<String, u32> = self.found.iter().enumerate().map(|(i, v)| (v.clone(), i as u32)).collect();
        let codes: Vec<u32> = later
            .found
            .into_iter()
            .map(|v| {
                *at.entry(v.clone()).or_insert_with(|| {
                    self.found.push(v);
                    self.found.len() as u32 - 1
                })
            })
            .collect();
        self.target_code.extend(later.target_code.iter().map(|&c| codes[c as usize]));
        self.dates.extend(later.dates);
        for (a, b) in self.numeric.iter_mut().zip(later.numeric) {
            a.extend(b);
        }
        self.after_date += later.after_date;
        self.after_target += later.after_target;
        for (a, b) in self.after_filter.iter_mut().zip(later.after_filter) {
            *a += b;
        }
        self.min_date = match (self.min_date, later.min_date) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max_date = self.max_date.max(later.max_date);
    }
}

/// Read one part: check and filter every row, keep the candidates.
fn scan_part(records: &mut impl RecordSource, plan: &Plan<'_>) -> std::result::Result<Part, CsvError> {
    let ds = plan.ds;
    let mut part = Part::new(plan);
    part.problems.places = records.places();
    let mut target_memo = Memo::new();
    let mut filter_memo: Vec<Memo<bool>> = ds.filters.iter().map(|_| Memo::new()).collect();
    let mut found_at: HashMap<String, u32> = HashMap::new();
    let mut row_numbers: Vec<Option<f64>> = vec![None; plan.numbers.len()];
    let problems = &mut part.problems;

    while let Some(r) = records.next_record()? {
        let line = r.line;
        // --- types, every row ----------------------------------------------------------------
        let raw_target = r.get(plan.target);
        let mut code = 0;
        if plan.detect && !raw_target.trim().is_empty() {
            let v = raw_target.trim();
            code = match found_at.get(v) {
                Some(&c) => c,
                None => {
                    part.found.push(v.to_string());
                    found_at.insert(v.to_string(), part.found.len() as u32 - 1);
                    part.found.len() as u32 - 1
                }
            };
        }
        let class = match target_memo.get(raw_target, |v| plan.class_of(v)) {
            Some(Err(())) => {
                problems.at(&ds.target, &plan.target_what, line, raw_target.trim());
                None
            }
            Some(Ok(c)) => Some(c),
            None => None,
        };
        let date = check_values(plan, &r, line, problems, &mut row_numbers);
        for &j in &plan.inferred_cols {
            if let Some(c) = part.every_row[j].as_mut() {
                c.push(r.get(j));
            }
        }
        // --- filters -------------------------------------------------------------------------
        let mut keep = true;
        if plan.date.is_some() {
            keep = date.is_some_and(|d| d >= plan.window.0 && d <= plan.window.1);
            if keep {
                part.after_date += 1;
                part.min_date = part.min_date.min(date).or(date);
                part.max_date = part.max_date.max(date);
            }
        }
        keep = keep && class.is_some() && plan.id.is_none_or(|j| !r.get(j).trim().is_empty());
        if !keep {
            continue;
        }
        part.after_target += 1;
        for (k, f) in ds.filters.iter().enumerate() {
            let v = r.get(plan.filters[k]);
            keep = !v.is_empty() && filter_memo[k].get(v, |v| f.keeps(v));
            if !keep {
                break;
            }
            part.after_filter[k] += 1;
        }
        if !keep {
            continue;
        }
        // --- a candidate ---------------------------------------------------------------------
        part.lines.push(line);
        part.index.push(r.index);
        part.target.push(class.unwrap_or(0));
        if plan.detect {
            part.target_code.push(code);
        }
        if let Some(d) = date {
            part.dates.push(d);
        }
        for (k, x) in row_numbers.iter().enumerate() {
            part.numeric[k].push(*x);
        }
        for &j in &plan.kept_cols {
            if let Some(c) = part.text[j].as_mut() {
                c.push(r.get(j));
            }
        }
    }
    part.records = records.records_read();
    Ok(part)
}

/// Files smaller than this are read in one part.
const PART_BYTES: u64 = 4 << 20;

/// Byte offsets where the parts of `path`'s data (from `start` to `len`) begin: each just after
/// a line break, about evenly spaced.
fn part_starts(path: &Path, start: u64, len: u64, parts: usize, min_bytes: u64) -> std::io::Result<Vec<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut starts = vec![start];
    if parts <= 1 || len.saturating_sub(start) < min_bytes {
        return Ok(starts);
    }
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    for k in 1..parts {
        let mut at = start + (len - start) * k as u64 / parts as u64;
        at = at.max(*starts.last().unwrap_or(&start));
        f.seek(SeekFrom::Start(at))?;
        // The next line break after `at` (a part never starts at `at` itself: it may be mid-line).
        let next = loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break None;
            }
            if let Some(p) = memchr::memchr(b'\n', &buf[..n]) {
                break Some(at + p as u64 + 1);
            }
            at += n as u64;
        };
        match next {
            Some(b) if b < len && b > *starts.last().unwrap_or(&start) => starts.push(b),
            _ => break,
        }
    }
    Ok(starts)
}

/// Read the raw file once: check its structure and every row's types, apply the row filters,
/// keep the candidates. `window` is the date window (datasets with a date column). Large files
/// are read in parts side by side (the results are the same for any number of parts).
pub(crate) fn scan(path: &Path, ds: &DatasetParams, window: (NaiveDate, NaiveDate)) -> Result<Scan> {
    if leadflow_parquet::is_parquet(path) {
        return scan_parquet(path, ds, window);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    scan_in_parts(path, ds, window, threads, PART_BYTES)
}

fn shape_err(e: CsvError) -> Error {
    Error::from(leadflow_core::Error::from(e))
}

/// The columns params require that `header` lacks, as the error to give (none: all there).
fn missing_columns(path: &Path, header: &[String], ds: &DatasetParams) -> Option<Error> {
    let required = ds.required_columns();
    let missing: Vec<String> = required.iter().filter(|c| !header.contains(c)).cloned().collect();
    if missing.is_empty() {
        return None;
    }
    let unexpected: Vec<&str> =
        header.iter().map(String::as_str).filter(|c| ds.listed_role(c).is_none() && !required.iter().any(|r| r == c)).collect();
    Some(Error::MissingColumns { path: path.into(), missing, unexpected: unexpected.join(", "), found: header.join(", ") })
}

/// [`scan`] of a Parquet file: its rows as the text a CSV of the same table holds, read a chunk
/// at a time (polars decodes each chunk's row groups in parallel), checked as CSV rows are.
fn scan_parquet(path: &Path, ds: &DatasetParams, window: (NaiveDate, NaiveDate)) -> Result<Scan> {
    if !path.is_file() {
        return Err(Error::MissingFile { path: path.into() });
    }
    let mut records = leadflow_parquet::ParquetRecords::open(path, leadflow_parquet::CHUNK_ROWS).map_err(shape_err)?;
    let header = records.header().to_vec();
    if header.is_empty() {
        return Err(Error::EmptyFile { path: path.into() });
    }
    if let Some(e) = missing_columns(path, &header, ds) {
        return Err(e);
    }
    let plan = Plan::new(ds, &header, window);
    let part = scan_part(&mut records, &plan).map_err(shape_err)?;
    if part.records == 0 {
        return Err(Error::NoRows { path: path.into() });
    }
    Ok(finish(part, &plan, header))
}

/// [`scan`] in up to `parts` parts of at least `min_bytes`.
fn scan_in_parts(path: &Path, ds: &DatasetParams, window: (NaiveDate, NaiveDate), parts: usize, min_bytes: u64) -> Result<Scan> {
    let md = std::fs::metadata(path).map_err(|_| Error::MissingFile { path: path.into() })?;
    if md.len() == 0 {
        return Err(Error::EmptyFile { path: path.into() });
    }
    let io_err = |e: std::io::Error| shape_err(CsvError::Io { path: path.into(), source: e });
    let head = Records::open(path).map_err(shape_err)?;
    let header = head.header().to_vec();
    let missing = missing_columns(path, &header, ds);
    if header.iter().all(|n| n.is_empty()) || missing.is_some() {
        // A structural fault anywhere in the file is reported first.
        let shape = head.drain().map_err(shape_err)?;
        if shape.header.iter().all(|n| n.is_empty()) {
            return Err(Error::EmptyFile { path: path.into() });
        }
        return Err(missing.unwrap_or(Error::EmptyFile { path: path.into() }));
    }
    let (header_lines, data_start) = (head.lines_read(), head.offset());
    drop(head);
    let plan = Plan::new(ds, &header, window);
    let read_parts = |starts: &[u64]| -> Vec<std::result::Result<Part, CsvError>> {
        let read = |k: usize| -> std::result::Result<Part, CsvError> {
            use std::io::{Read, Seek, SeekFrom};
            let end = starts.get(k + 1).copied().unwrap_or(md.len());
            let mut f = std::fs::File::open(path).map_err(|e| CsvError::Io { path: path.into(), source: e })?;
            f.seek(SeekFrom::Start(starts[k])).map_err(|e| CsvError::Io { path: path.into(), source: e })?;
            let mut records = Records::part(f.take(end - starts[k]), path, header.clone());
            let mut part = scan_part(&mut records, &plan)?;
            part.lines_read = records.lines_read();
            Ok(part)
        };
        std::thread::scope(|s| {
            let later: Vec<_> = (1..starts.len()).map(|k| s.spawn(move || read(k))).collect();
            let mut out = vec![read(0)];
            out.extend(later.into_iter().map(|h| h.join().unwrap_or_else(|_| panic!("reading part of {} panicked", path.display()))));
            out
        })
    };
    let starts = part_starts(path, data_start, md.len(), parts, min_bytes).map_err(io_err)?;
    let mut results = read_parts(&starts);
    // A part ending inside a quoted field means the next one started mid-record: read the file
    // again in one part (quoted line breaks are rare; the result is the same either way).
    let quote_open =
        |r: &std::result::Result<Part, CsvError>| matches!(r, Err(CsvError::Shape(ShapeError { fault: Fault::UnterminatedQuote, .. })));
    if results.len() > 1 && results[..results.len() - 1].iter().any(quote_open) {
        results = read_parts(&starts[..1]);
    }
    let mut part = Part::new(&plan);
    let (mut lines, mut records) = (header_lines, 0usize);
    for r in results {
        let next = r.map_err(|e| match e {
            CsvError::Shape(mut s) => {
                s.line += lines;
                shape_err(CsvError::Shape(s))
            }
            e => shape_err(e),
        })?;
        let (l, n) = (next.lines_read, next.records);
        part.join(next, lines, records);
        lines += l;
        records += n;
    }
    if part.records == 0 {
        return Err(Error::NoRows { path: path.into() });
    }
    Ok(finish(part, &plan, header))
}

/// A row's date, numbers and booleans checked (each problem noted with its line); the numbers
/// are left in `row_numbers` and the date returned.
#[inline]
fn check_values(
    plan: &Plan<'_>,
    r: &leadflow_csv::Record<'_>,
    line: u64,
    problems: &mut Problems,
    row_numbers: &mut [Option<f64>],
) -> Option<NaiveDate> {
    let ds = plan.ds;
    let date = match plan.date {
        None => None,
        Some(j) => {
            let s = r.get(j).trim();
            if s.is_empty() {
                None
            } else {
                let d = parse_date(s);
                if d.is_none() {
                    problems.at(&ds.date, "expected a date YYYY-MM-DD", line, s);
                }
                d
            }
        }
    };
    for (k, &j) in plan.numbers.iter().enumerate() {
        let s = r.get(j).trim();
        row_numbers[k] = if s.is_empty() {
            None
        } else {
            let x = leadflow_features::parse_finite(s);
            if x.is_none() {
                problems.at(&ds.continuous[k], "expected a number", line, s);
            }
            x
        };
    }
    for (k, &j) in plan.booleans.iter().enumerate() {
        let s = r.get(j).trim();
        if !s.is_empty() && dataset::parse_bool(s).is_none() {
            problems.at(&ds.boolean[k], "expected yes/no (true/false, 1/0)", line, s);
        }
    }
    date
}

impl<'a> Plan<'a> {
    /// What each row is checked for, by column position in `header`.
    fn new(ds: &'a DatasetParams, header: &[String], window: (NaiveDate, NaiveDate)) -> Plan<'a> {
        let col = |name: &str| header.iter().position(|h| h == name).unwrap_or(usize::MAX);
        let negative = ds.negative();
        Plan {
            ds,
            window,
            kept_cols: (0..header.len()).filter(|&j| ds.listed_role(&header[j]) != Some(Role::Dropped)).collect(),
            inferred_cols: if ds.infer {
                (0..header.len()).filter(|&j| ds.listed_role(&header[j]).is_none()).collect()
            } else {
                Vec::new()
            },
            target: col(&ds.target),
            id: (!ds.id.is_empty()).then(|| col(&ds.id)),
            date: (!ds.date.is_empty()).then(|| col(&ds.date)),
            numbers: ds.continuous.iter().map(|c| col(c)).collect(),
            booleans: ds.boolean.iter().map(|c| col(c)).collect(),
            filters: ds.filters.iter().map(|f| col(&f.column)).collect(),
            detect: ds.multiclass && ds.classes.is_empty(),
            target_what: if ds.multiclass {
                format!("expected one of {} or empty (dataset.classes)", ds.classes.join(", "))
            } else {
                format!("expected {:?}, {:?} or empty (dataset.positive / dataset.negative)", ds.positive, negative)
            },
            negative,
            columns: header.len(),
        }
    }
}

/// The joined parts as the scan's result: detected classes resolved, problems ordered by column.
fn finish(part: Part, plan: &Plan<'_>, header: Vec<String>) -> Scan {
    let ds = plan.ds;
    let mut target = part.target;
    // Detected classes come from every labelled row, kept or not.
    let classes = if plan.detect {
        let classes = dataset::detect_classes(part.found.iter().map(String::as_str));
        for (t, &code) in target.iter_mut().zip(&part.target_code) {
            *t = classes.iter().position(|c| dataset::same_value(c, &part.found[code as usize])).unwrap_or(0) as u8;
        }
        classes
    } else {
        ds.classes.clone()
    };
    // Problems by column, in the order the columns are checked.
    let rank = |c: &str| -> usize {
        if c == ds.target {
            0
        } else if c == ds.date {
            1
        } else if let Some(k) = ds.continuous.iter().position(|x| x == c) {
            2 + k
        } else {
            2 + ds.continuous.len() + ds.boolean.iter().position(|x| x == c).unwrap_or(0)
        }
    };
    let mut problems = part.problems;
    problems.sort_by_column(rank);
    let dated = plan.date.is_some();
    Scan {
        header,
        records: part.records,
        text: part.text,
        every_row: part.every_row,
        lines: part.lines,
        index: part.index,
        target,
        classes,
        dates: dated.then_some(part.dates),
        numeric: part.numeric,
        after_date: dated.then_some(part.after_date),
        after_target: part.after_target,
        after_filter: part.after_filter,
        min_date: part.min_date,
        max_date: part.max_date,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a scan found, as text (for comparing scans).
    fn summary(s: Scan) -> String {
        let text: Vec<Vec<Option<String>>> =
            s.text.iter().chain(&s.every_row).flatten().map(|c| c.iter().map(|v| v.map(String::from)).collect()).collect();
        format!(
            "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            s.records,
            s.lines,
            s.index,
            s.target,
            s.classes,
            s.dates,
            s.numeric,
            s.after_date,
            s.after_target,
            s.after_filter,
            (s.min_date, s.max_date),
            text,
            s.problems.into_error(Path::new("f")).map(|e| e.to_string()),
            s.header,
        )
    }

    #[test]
    fn parts_read_side_by_side_give_what_one_part_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut csv = String::from("id,date,y,x,src,note,extra\n");
        for i in 0..400 {
            let date = if i % 37 == 0 { "2024-02-30".to_string() } else { format!("2024-0{}-{}", 1 + i % 3, 1 + i % 28) };
            let y = ["1", "0", "", "maybe"][i % 4];
            let x = if i % 53 == 0 { "n/a".to_string() } else { format!("{}.5", i % 17) };
            let src = ["a", "b", " a ", ""][i % 4 / 2 + i % 2];
            // Quoted fields with line breaks, so that some parts start mid-record.
            let note = if i % 3 == 0 { format!("\"line one\nline \"\"{i}\"\"\"") } else { format!("n{i}") };
            csv.push_str(&format!("{i},{date},{y},{x},{src},{note},{}\n", i % 7));
        }
        std::fs::write(&path, &csv).unwrap();
        let window = (NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2024, 2, 28).unwrap());
        let mut ds = DatasetParams {
            target: "y".into(),
            positive: "1".into(),
            id: "id".into(),
            date: "date".into(),
            continuous: vec!["x".into()],
            categorical: vec!["src".into()],
            ignore: vec!["note".into()],
            filters: vec![dataset::Filter { column: "src".into(), equals: vec!["a".into()] }],
            ..Default::default()
        };
        for infer in [false, true] {
            ds.infer = infer;
            let one = summary(scan_in_parts(&path, &ds, window, 1, 0).unwrap());
            assert!(one.contains("3 problems") && one.contains("line 6, column `y`"), "{one}");
            for parts in [2, 3, 5, 16] {
                assert_eq!(summary(scan_in_parts(&path, &ds, window, parts, 0).unwrap()), one, "{parts} parts");
            }
        }
        // Without line breaks in quotes (every part starts where a record does).
        std::fs::write(&path, csv.replace("line one\n", "line one ")).unwrap();
        let one = summary(scan_in_parts(&path, &ds, window, 1, 0).unwrap());
        assert_eq!(summary(scan_in_parts(&path, &ds, window, 4, 0).unwrap()), one);
        // A structural fault in a later part is reported with its line in the file.
        let bad = csv.replace("\n300,", "\n300,extra,");
        std::fs::write(&path, &bad).unwrap();
        let line = bad[..bad.find("\n300,").unwrap()].matches('\n').count() + 2;
        for parts in [1, 4] {
            let err = scan_in_parts(&path, &ds, window, parts, 0).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(&format!("line {line}: 8 fields, header has 7")), "{parts} parts: {err}");
        }
    }

    #[test]
    fn dates_parse_as_chrono_does() {
        for s in [
            "2024-01-1",
            "2024-01-31",
            " 2024-1-05 ",
            "2024-13-01",
            "2024-02-30",
            "yesterday",
            "2024-01-",
            "02024-01-01",
            "+2024-01-01",
            "2024-001-01",
        ] {
            assert_eq!(parse_date(s), NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(), "{s}");
        }
        assert_eq!(parse_date("2024-01-1"), NaiveDate::from_ymd_opt(2024, 1, 1));
    }
}
