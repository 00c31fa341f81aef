//! Structural check of a CSV file before any value is parsed.
//!
//! CSV readers repair what they should refuse: polars renames a duplicated header column and pads
//! a short row with nulls, the `csv` crate reads an unterminated quote as one field running to the
//! end of the file. [`check`] reads the file once, as a stream, and refuses each structural fault
//! with the line it is on:
//!
//! | fault | decision |
//! |---|---|
//! | a column named twice in the header | refused |
//! | a row with more or fewer fields than the header | refused |
//! | a quote that is never closed | refused (names the line it opened on) |
//! | a NUL byte (binary or UTF-16 data) | refused |
//! | bytes that are not UTF-8 | refused |
//! | a bare CR (old Mac line ending) | refused: readers disagree on it |
//! | LF and CRLF line endings mixed | accepted: every reader ends a line at either |
//! | a blank line | refused: some readers skip it, polars reads it as a row of empty values |
//! | a UTF-8 byte-order mark before the header | accepted and ignored |
//! | a quoted field spanning lines | accepted; later errors still name the right line |
//!
//! [`Records`] is the same check as a reader: in the same pass it gives each accepted record's
//! fields (quotes removed), so a file is read once, not checked and then read again. Lines
//! without quotes (nearly all of them) are cut at their commas in place, eight bytes at a time.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a CSV file could not be checked: it could not be read, or its structure is at fault.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// Another format's reader (Parquet) could not give records; the cause when it has one.
    #[error("{path}: {what}")]
    Format {
        path: PathBuf,
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

type Result<T, E = CsvError> = std::result::Result<T, E>;

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> CsvError + '_ {
    move |source| CsvError::Io { path: path.into(), source }
}

/// What is wrong with a CSV file's structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("{found} fields, header has {expected}")]
    FieldCount { found: usize, expected: usize },
    #[error("column `{name}` appears twice in the header (columns {first} and {second})")]
    DuplicateColumn { name: String, first: usize, second: usize },
    #[error("a quoted field opened on this line is never closed (reached the end of the file)")]
    UnterminatedQuote,
    #[error("NUL byte (0x00): the file looks binary or UTF-16 encoded; expected UTF-8 text")]
    Nul,
    #[error("not valid UTF-8 (byte 0x{byte:02X} at column {column}); save the file as UTF-8")]
    InvalidUtf8 { byte: u8, column: usize },
    #[error("a bare carriage return (CR) ends a line; expected LF or CRLF line endings")]
    BareCr,
    #[error("blank line; a CSV row cannot be empty (remove the line)")]
    BlankLine,
}

/// A structural fault, with the file and line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: line {line}: {fault}")]
pub struct ShapeError {
    pub path: PathBuf,
    pub line: u64,
    /// Part of the message, not a cause: not a `#[source]`, so it is printed once.
    pub fault: Fault,
}

/// How a source numbers its records in messages: each record has one number (its
/// [`Record::line`]), told as a CSV line or as a Parquet row and row group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Places {
    /// The line a record starts on; the header is line 1.
    #[default]
    Lines,
    /// The row (1-based); `group_ends[g]` is the number of rows in groups `0..=g`.
    Rows { group_ends: std::sync::Arc<Vec<u64>> },
}

impl Places {
    /// What number `at` is called in a message: `line 7`, or `row 7 (row group 1)`.
    pub fn describe(&self, at: u64) -> String {
        match self {
            Places::Lines => format!("line {at}"),
            Places::Rows { group_ends } => {
                let g = group_ends.partition_point(|&end| end < at);
                format!("row {at} (row group {})", g + 1)
            }
        }
    }

    /// The number of data record `i` when no record spans lines: `i + 2` for a CSV line (the
    /// header is line 1), `i + 1` for a Parquet row.
    fn of(&self, i: usize) -> u64 {
        match self {
            Places::Lines => i as u64 + 2,
            Places::Rows { .. } => i as u64 + 1,
        }
    }
}

/// The shape of a structurally sound CSV file (or of records read from another format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Header names, trimmed.
    pub header: Vec<String>,
    /// Data records.
    pub records: usize,
    /// The line each data record starts on, kept only when it is not simply `index + 2` (a
    /// quoted field spans lines, or the records are some of a file's).
    lines: Option<Vec<u64>>,
    /// What the numbers are called.
    pub places: Places,
}

impl Shape {
    /// The shape of `records` rows not read from a file (e.g. an HTTP body), row `i` counted as
    /// line `first_line + i`.
    pub fn in_memory(header: Vec<String>, records: usize, first_line: u64) -> Shape {
        Shape { header, records, lines: Some((0..records as u64).map(|i| first_line + i).collect()), places: Places::Lines }
    }

    /// The shape of records read from a source numbered as `places` says, record `i` at
    /// `lines[i]` (e.g. a chunk of a file).
    pub fn at(header: Vec<String>, lines: Vec<u64>, places: Places) -> Shape {
        Shape { header, records: lines.len(), lines: Some(lines), places }
    }

    /// The shape of some of these records (by index, in that order), each keeping its line.
    pub fn select(&self, records: &[usize]) -> Shape {
        Shape::at(self.header.clone(), records.iter().map(|&i| self.line(i)).collect(), self.places.clone())
    }

    /// The number of data record `i`: the line (1-based, the header is line 1) it starts on,
    /// or its row (see [`Places`]).
    pub fn line(&self, i: usize) -> u64 {
        match &self.lines {
            Some(v) => v.get(i).copied().unwrap_or_else(|| self.places.of(i)),
            None => self.places.of(i),
        }
    }

    /// Where data record `i` is, for a message: `line 7` or `row 6 (row group 1)`.
    pub fn place(&self, i: usize) -> String {
        self.places.describe(self.line(i))
    }
}

/// Check the structure of the CSV file at `path` (comma-separated, `"` quotes). An empty file
/// gives an empty header and no records; the caller decides whether that is an error.
pub fn check(path: &Path) -> Result<Shape> {
    Records::open(path)?.drain()
}

fn fail(path: &Path, line: u64, fault: Fault) -> CsvError {
    CsvError::Shape(ShapeError { path: path.into(), line, fault })
}

/// [`check`] on any reader; `path` names the source in errors.
pub fn check_reader(r: impl Read, path: &Path) -> Result<Shape> {
    Records::new(r, path)?.drain()
}

/// One pass over a CSV file: the structure check of [`check`] and, for each record it accepts,
/// the record's fields (quotes removed, `""` read as `"`). Reading a file this way costs one
/// pass, not a check and then a second reader. A fault stops the reading with its line; the
/// records given before it belong to a file that is refused as a whole, so a caller acts on
/// what it read only once [`Records::next_record`] has given `None`.
pub struct Records<R> {
    r: R,
    path: PathBuf,
    /// Read-ahead: bytes `pos..end` of `buf` are not consumed yet; `eof` once `r` is exhausted.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    line_no: u64,
    header: Vec<String>,
    /// The current record when it spans lines or has quotes: its fields decoded into `data`.
    data: Vec<u8>,
    /// The current record's fields: byte ranges in its line or in `data`.
    spans: Vec<(usize, usize)>,
    record_line: u64,
    records: usize,
    lines: Option<Vec<u64>>,
    /// A reader of a file's middle part: no header, no byte-order mark, no line map.
    part: bool,
    /// Bytes read from `r` so far.
    read: u64,
}

/// One data record: its fields, its index among the data records and the line it starts on.
pub struct Record<'a> {
    data: &'a str,
    spans: &'a [(usize, usize)],
    pub index: usize,
    pub line: u64,
}

impl<'a> Record<'a> {
    /// A record of another source: fields `spans` of `data`, numbered as its [`Places`] say.
    pub fn new(data: &'a str, spans: &'a [(usize, usize)], index: usize, line: u64) -> Record<'a> {
        Record { data, spans, index, line }
    }
}

/// Records one at a time, from a CSV file ([`Records`]) or another format read as text.
pub trait RecordSource {
    /// Header names, trimmed.
    fn header(&self) -> &[String];
    /// The next data record, or `None` after the last one.
    fn next_record(&mut self) -> Result<Option<Record<'_>>>;
    /// Data records read so far.
    fn records_read(&self) -> usize;
    /// How the records' numbers are told in messages.
    fn places(&self) -> Places;
}

impl<R: Read> RecordSource for Records<R> {
    fn header(&self) -> &[String] {
        Records::header(self)
    }
    fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        Records::next_record(self)
    }
    fn records_read(&self) -> usize {
        Records::records_read(self)
    }
    fn places(&self) -> Places {
        Places::Lines
    }
}

impl Record<'_> {
    /// Field `j` (0-based, header order), untrimmed.
    pub fn get(&self, j: usize) -> &str {
        let (start, end) = self.spans[j];
        &self.data[start..end]
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl Records<std::fs::File> {
    /// Open `path` and read its header (an empty file has an empty header and no records).
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(io_at(path))?;
        Records::new(file, path)
    }
}

/// How a physical line ended.
#[derive(Clone, Copy)]
enum Ending {
    Lf,
    CrLf,
    Eof,
}

const READ_AHEAD: usize = 1 << 20;

/// Where [`Records::read_record`] left the record: one line in `buf`, or decoded in `data`.
enum Kept {
    Line(usize, usize),
    Decoded,
}

/// The checks every line gets, UTF-8 and no NUL byte; the line as text.
fn line_text<'a>(bytes: &'a [u8], path: &Path, line: u64) -> Result<&'a str> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        fail(path, line, Fault::InvalidUtf8 { byte: bytes[at], column: at + 1 })
    })?;
    if memchr::memchr(0, bytes).is_some() {
        return Err(fail(path, line, Fault::Nul));
    }
    Ok(text)
}

/// The fields of a line without quotes: cut at its commas (found eight bytes at a time).
fn split_commas(line: &[u8], spans: &mut Vec<(usize, usize)>) {
    const LO7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const COMMAS: u64 = 0x2C2C_2C2C_2C2C_2C2C;
    let mut field = 0;
    let mut words = line.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ COMMAS;
        // 0x80 exactly in the bytes of `x` that are zero (no carry crosses bytes).
        let mut zero = !(((x & LO7) + LO7) | x | LO7);
        while zero != 0 {
            let p = base + (zero.trailing_zeros() / 8) as usize;
            spans.push((field, p));
            field = p + 1;
            zero &= zero - 1;
        }
        base += 8;
    }
    for (k, &b) in words.remainder().iter().enumerate() {
        if b == b',' {
            spans.push((field, base + k));
            field = base + k + 1;
        }
    }
    spans.push((field, line.len()));
}

impl<R: Read> Records<R> {
    fn unread(r: R, path: &Path) -> Self {
        Records {
            r,
            path: path.into(),
            buf: vec![0; READ_AHEAD],
            pos: 0,
            end: 0,
            eof: false,
            line_no: 0,
            header: Vec::new(),
            data: Vec::with_capacity(1024),
            spans: Vec::new(),
            record_line: 0,
            records: 0,
            lines: None,
            part: false,
            read: 0,
        }
    }

    /// Read the header from `r`; `path` names the source in errors.
    pub fn new(r: R, path: &Path) -> Result<Self> {
        let mut me = Records::unread(r, path);
        if let Some(kind) = me.read_record()? {
            // Names are decoded like any record (quotes removed), then trimmed.
            let bytes = match kind {
                Kept::Line(start, end) => {
                    let line = &me.buf[start..end];
                    line_text(line, path, me.line_no)?;
                    split_commas(line, &mut me.spans);
                    line
                }
                Kept::Decoded => &me.data[..],
            };
            let names: Vec<String> = me.spans.iter().map(|&(a, b)| String::from_utf8_lossy(&bytes[a..b]).trim().to_string()).collect();
            for (j, n) in names.iter().enumerate() {
                if let Some(k) = names[..j].iter().position(|m| m == n) {
                    return Err(fail(path, me.record_line, Fault::DuplicateColumn { name: n.clone(), first: k + 1, second: j + 1 }));
                }
            }
            me.header = names;
        }
        Ok(me)
    }

    /// A reader of part of a file that starts at a record's first byte (so that parts can be
    /// read side by side): `header` is the file's, lines are counted from 1 at the part's start
    /// (add the lines before it), record indices from 0. [`Records::lines_read`] says how many
    /// lines the part had. A part that starts inside a quoted field reads wrongly: the caller
    /// knows a part's start is sound when the part before it ended outside quotes, that is
    /// when reading it gave no [`Fault::UnterminatedQuote`].
    pub fn part(r: R, path: &Path, header: Vec<String>) -> Self {
        Records { header, part: true, ..Records::unread(r, path) }
    }

    /// Data records read so far.
    pub fn records_read(&self) -> usize {
        self.records
    }

    /// Physical lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Bytes of the input consumed so far (after the header: where the first record starts).
    pub fn offset(&self) -> u64 {
        self.read - (self.end - self.pos) as u64
    }

    /// Header names, trimmed (empty for an empty file).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The next data record, or `None` after the last one. A structural fault is an error with
    /// its line.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        let Some(kind) = self.read_record()? else { return Ok(None) };
        let data: &str = match kind {
            Kept::Line(start, end) => {
                let bytes = &self.buf[start..end];
                let line = line_text(bytes, &self.path, self.line_no)?;
                split_commas(bytes, &mut self.spans);
                line
            }
            // Each line was checked; decoded fields are cut at ASCII delimiters: still UTF-8.
            Kept::Decoded => line_text(&self.data, &self.path, self.record_line)?,
        };
        let expected = self.header.len();
        if self.spans.len() != expected {
            return Err(fail(&self.path, self.record_line, Fault::FieldCount { found: self.spans.len(), expected }));
        }
        if !self.part && self.lines.is_none() && self.record_line != self.records as u64 + 2 {
            self.lines = Some((0..self.records as u64).map(|i| i + 2).collect());
        }
        if let Some(v) = self.lines.as_mut() {
            v.push(self.record_line);
        }
        let index = self.records;
        self.records += 1;
        Ok(Some(Record { data, spans: &self.spans, index, line: self.record_line }))
    }

    /// Read every remaining record; the file's shape.
    pub fn drain(mut self) -> Result<Shape> {
        while self.next_record()?.is_some() {}
        Ok(Shape { header: self.header, records: self.records, lines: self.lines, places: Places::Lines })
    }

    /// The next physical line: its byte range in `buf` without the line break, and the break.
    fn next_line(&mut self) -> Result<Option<(usize, usize, Ending)>> {
        loop {
            if let Some(k) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                let (start, nl) = (self.pos, self.pos + k);
                self.pos = nl + 1;
                self.line_no += 1;
                return Ok(Some(if nl > start && self.buf[nl - 1] == b'\r' {
                    (start, nl - 1, Ending::CrLf)
                } else {
                    (start, nl, Ending::Lf)
                }));
            }
            if self.eof {
                if self.pos == self.end {
                    return Ok(None);
                }
                let (start, mut end) = (self.pos, self.end);
                self.pos = self.end;
                self.line_no += 1;
                if self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                return Ok(Some((start, end, Ending::Eof)));
            }
            // Keep the unfinished line, make room (a line longer than the buffer grows it), read.
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = loop {
                match self.r.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_at(&self.path)(e)),
                }
            };
            if n == 0 {
                self.eof = true;
            } else {
                self.end += n;
                self.read += n as u64;
            }
        }
    }

    fn check_line(&self, start: usize, end: usize) -> Result<()> {
        line_text(&self.buf[start..end], &self.path, self.line_no).map(drop)
    }

    /// Read one record (one or more physical lines); `None` at the end of the input. A record
    /// that is one line without quotes is left in `buf` (its checks and fields are the caller's:
    /// checked once, where its text is used); any other is checked line by line and decoded.
    fn read_record(&mut self) -> Result<Option<Kept>> {
        self.data.clear();
        self.spans.clear();
        let Some((mut start, end, mut ending)) = self.next_line()? else { return Ok(None) };
        if self.line_no == 1 && !self.part && self.buf[start..end].starts_with(b"\xEF\xBB\xBF") {
            start += 3;
        }
        if start == end {
            return Err(fail(&self.path, self.line_no, Fault::BlankLine));
        }
        self.record_line = self.line_no;
        if memchr::memchr2(b'"', b'\r', &self.buf[start..end]).is_none() {
            return Ok(Some(Kept::Line(start, end)));
        }
        self.check_line(start, end)?;
        // Quotes carry across lines: a quoted field may contain line breaks.
        let (mut in_quotes, mut field_start, mut quote_line, mut field) = (false, true, 0, 0);
        let mut body_range = (start, end);
        loop {
            let body = &self.buf[body_range.0..body_range.1];
            let data = &mut self.data;
            let mut i = 0;
            while i < body.len() {
                if in_quotes {
                    match memchr::memchr(b'"', &body[i..]) {
                        None => {
                            data.extend_from_slice(&body[i..]);
                            i = body.len();
                        }
                        Some(k) => {
                            let q = i + k;
                            data.extend_from_slice(&body[i..q]);
                            if body.get(q + 1) == Some(&b'"') {
                                data.push(b'"');
                                i = q + 2;
                            } else {
                                in_quotes = false;
                                i = q + 1;
                            }
                        }
                    }
                    continue;
                }
                if field_start && body[i] == b'"' {
                    in_quotes = true;
                    quote_line = self.line_no;
                    field_start = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr3(b',', b'"', b'\r', &body[i..]) {
                    None => {
                        data.extend_from_slice(&body[i..]);
                        field_start = false;
                        i = body.len();
                    }
                    Some(k) => {
                        let p = i + k;
                        data.extend_from_slice(&body[i..p]);
                        match body[p] {
                            b',' => {
                                self.spans.push((field, data.len()));
                                field = data.len();
                                field_start = true;
                            }
                            b'"' => {
                                data.push(b'"');
                                field_start = false;
                            }
                            _ => return Err(fail(&self.path, self.line_no, Fault::BareCr)),
                        }
                        i = p + 1;
                    }
                }
            }
            if !in_quotes {
                self.spans.push((field, data.len()));
                return Ok(Some(Kept::Decoded));
            }
            // A quoted field runs on: its line break is part of its value.
            match ending {
                Ending::Lf => data.push(b'\n'),
                Ending::CrLf => data.extend_from_slice(b"\r\n"),
                Ending::Eof => {}
            }
            let Some((s, e, k)) = self.next_line()? else {
                return Err(fail(&self.path, quote_line, Fault::UnterminatedQuote));
            };
            self.check_line(s, e)?;
            body_range = (s, e);
            ending = k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(s: &[u8]) -> std::result::Result<Shape, (u64, Fault)> {
        check_reader(s, Path::new("t.csv")).map_err(|e| match e {
            CsvError::Shape(ShapeError { line, fault, .. }) => (line, fault),
            other => panic!("{other}"),
        })
    }

    #[test]
    fn sound_files() {
        let s = shape(b"a,b\n1,2\r\n3,4\n5,\"x\n\ny\"\n6,7").unwrap();
        assert_eq!(s.header, ["a", "b"]);
        assert_eq!(s.records, 4);
        assert_eq!((s.line(0), s.line(1), s.line(2), s.line(3)), (2, 3, 4, 7));
        let s = shape(b"\xEF\xBB\xBFa,\"b,c\"\n1,\"say \"\"hi\"\"\"\n").unwrap();
        assert_eq!(s.header, ["a", "b,c"]);
        assert_eq!((s.records, s.line(0)), (1, 2));
        assert_eq!(shape(b"").unwrap().records, 0);
    }

    fn records(s: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut r = Records::new(s, Path::new("t.csv")).unwrap();
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push((rec.line, (0..rec.len()).map(|j| rec.get(j).to_string()).collect()));
        }
        out
    }

    #[test]
    fn records_give_fields_unquoted() {
        let got = records(b"a,b,c\n1,,x y\r\n\"q,\"\"r\"\"\",\"multi\r\nline\",\"\"\n\"x\"y, \"z,3\n");
        let want: Vec<(u64, Vec<&str>)> =
            vec![(2, vec!["1", "", "x y"]), (3, vec!["q,\"r\"", "multi\r\nline", ""]), (5, vec!["xy", " \"z", "3"])];
        let want: Vec<(u64, Vec<String>)> = want.into_iter().map(|(l, v)| (l, v.into_iter().map(String::from).collect())).collect();
        assert_eq!(got, want);
        // Commas found eight bytes at a time: every position in a word, and in the remainder.
        let line = "a,bb,,ccc,dddd,e,ffffffff,,g,".to_string();
        let header: String = (0..line.split(',').count()).map(|j| format!("h{j}")).collect::<Vec<_>>().join(",");
        let got = records(format!("{header}\n{line}\n").as_bytes());
        assert_eq!(got[0].1, line.split(',').map(String::from).collect::<Vec<_>>());
        // No final line break; a header-only file.
        assert_eq!(records(b"a\n1"), vec![(2, vec!["1".to_string()])]);
        assert!(records(b"a,b\n").is_empty());
    }

    #[test]
    fn records_read_what_the_csv_crate_wrote() {
        use rand::{Rng, SeedableRng};
        // Random fields made of what CSV quoting is about; the csv crate quotes them as needed.
        let pieces = ["a", "bc", " ", ",", "\"", "\n", "\r\n", "é", "1.5", ""];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let cols = rng.gen_range(1..6);
            let header: Vec<String> = (0..cols).map(|j| format!("c{j}")).collect();
            let rows: Vec<Vec<String>> = (0..rng.gen_range(1..20))
                .map(|_| (0..cols).map(|_| (0..rng.gen_range(0..4)).map(|_| pieces[rng.gen_range(0..pieces.len())]).collect()).collect())
                .collect();
            let mut w = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Necessary).from_writer(Vec::new());
            w.write_record(&header).unwrap();
            for r in &rows {
                w.write_record(r).unwrap();
            }
            let bytes = w.into_inner().unwrap();
            let got: Vec<Vec<String>> = records(&bytes).into_iter().map(|(_, f)| f).collect();
            assert_eq!(got, rows, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn faults_name_their_line() {
        assert_eq!(shape(b"a,b,c\n1,2,3\n1,2\n").unwrap_err(), (3, Fault::FieldCount { found: 2, expected: 3 }));
        assert_eq!(shape(b"a,b\n1,2,3\n").unwrap_err(), (2, Fault::FieldCount { found: 3, expected: 2 }));
        assert_eq!(shape(b"a,b, a\n1,2,3\n").unwrap_err(), (1, Fault::DuplicateColumn { name: "a".into(), first: 1, second: 3 }));
        assert_eq!(shape(b"a,b\n1,2\n3,\"x\n4,5\n").unwrap_err(), (3, Fault::UnterminatedQuote));
        assert_eq!(shape(b"a,b\n1,2\n3,\x004\n").unwrap_err(), (3, Fault::Nul));
        assert_eq!(shape(b"a,b\n1,2\n3,\xE94\n").unwrap_err(), (3, Fault::InvalidUtf8 { byte: 0xE9, column: 3 }));
        assert_eq!(shape(b"a,b\n1,2\r3,4\n").unwrap_err(), (2, Fault::BareCr));
        assert_eq!(shape(b"a,b\n1,2\n\n3,4\n").unwrap_err(), (3, Fault::BlankLine));
        assert_eq!(shape(b"a,b\n1,2\n\n").unwrap_err(), (3, Fault::BlankLine));
    }
}
