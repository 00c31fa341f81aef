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

use std::io::BufRead;
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

/// The shape of a structurally sound CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Header names, trimmed.
    pub header: Vec<String>,
    /// Data records.
    pub records: usize,
    /// The line each data record starts on, kept only when it is not simply `index + 2` (a
    /// quoted field spans lines).
    lines: Option<Vec<u64>>,
}

impl Shape {
    /// The shape of `records` rows not read from a file (e.g. an HTTP body), row `i` counted as
    /// line `first_line + i`.
    pub fn in_memory(header: Vec<String>, records: usize, first_line: u64) -> Shape {
        Shape { header, records, lines: Some((0..records as u64).map(|i| first_line + i).collect()) }
    }

    /// The line (1-based, the header is line 1) data record `i` starts on.
    pub fn line(&self, i: usize) -> u64 {
        match &self.lines {
            Some(v) => v.get(i).copied().unwrap_or(i as u64 + 2),
            None => i as u64 + 2,
        }
    }
}

/// Check the structure of the CSV file at `path` (comma-separated, `"` quotes). An empty file
/// gives an empty header and no records; the caller decides whether that is an error.
pub fn check(path: &Path) -> Result<Shape> {
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    check_reader(std::io::BufReader::with_capacity(1 << 16, file), path)
}

fn fail(path: &Path, line: u64, fault: Fault) -> CsvError {
    CsvError::Shape(ShapeError { path: path.into(), line, fault })
}

/// [`check`] on any reader; `path` names the source in errors.
pub fn check_reader(mut r: impl BufRead, path: &Path) -> Result<Shape> {
    let mut buf = Vec::with_capacity(1024);
    let mut line_no: u64 = 0;
    // Quote state carries across lines: a quoted field may contain line breaks.
    let mut in_quotes = false;
    let mut field_start = true;
    let mut fields = 1usize;
    let mut record_line = 0u64;
    let mut quote_line = 0u64;
    let mut header_raw: Vec<u8> = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut records = 0usize;
    let mut lines: Option<Vec<u64>> = None;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf).map_err(io_at(path))? == 0 {
            break;
        }
        line_no += 1;
        let mut body: &[u8] = &buf;
        if line_no == 1 {
            body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        }
        if let Err(e) = std::str::from_utf8(body) {
            let at = e.valid_up_to();
            return Err(fail(path, line_no, Fault::InvalidUtf8 { byte: body[at], column: at + 1 }));
        }
        if body.contains(&0) {
            return Err(fail(path, line_no, Fault::Nul));
        }
        body = body.strip_suffix(b"\n").unwrap_or(body);
        body = body.strip_suffix(b"\r").unwrap_or(body);
        if !in_quotes {
            if body.is_empty() {
                return Err(fail(path, line_no, Fault::BlankLine));
            }
            record_line = line_no;
            fields = 1;
            field_start = true;
        }
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            if in_quotes {
                if b == b'"' {
                    if body.get(i + 1) == Some(&b'"') {
                        i += 1;
                    } else {
                        in_quotes = false;
                    }
                }
            } else {
                match b {
                    b'"' if field_start => {
                        in_quotes = true;
                        quote_line = line_no;
                        field_start = false;
                    }
                    b',' => {
                        fields += 1;
                        field_start = true;
                    }
                    b'\r' => return Err(fail(path, line_no, Fault::BareCr)),
                    _ => field_start = false,
                }
            }
            i += 1;
        }
        if header.is_none() {
            header_raw.extend_from_slice(body);
            if in_quotes {
                header_raw.push(b'\n');
                continue;
            }
            let names = decode_header(&header_raw);
            for (j, n) in names.iter().enumerate() {
                if let Some(k) = names[..j].iter().position(|m| m == n) {
                    return Err(fail(path, record_line, Fault::DuplicateColumn { name: n.clone(), first: k + 1, second: j + 1 }));
                }
            }
            header = Some(names);
            continue;
        }
        if in_quotes {
            continue;
        }
        let expected = header.as_ref().map_or(0, Vec::len);
        if fields != expected {
            return Err(fail(path, record_line, Fault::FieldCount { found: fields, expected }));
        }
        if lines.is_none() && record_line != records as u64 + 2 {
            lines = Some((0..records as u64).map(|i| i + 2).collect());
        }
        if let Some(v) = lines.as_mut() {
            v.push(record_line);
        }
        records += 1;
    }
    if in_quotes {
        return Err(fail(path, quote_line, Fault::UnterminatedQuote));
    }
    Ok(Shape { header: header.unwrap_or_default(), records, lines })
}

fn decode_header(raw: &[u8]) -> Vec<String> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(raw);
    let mut rec = csv::StringRecord::new();
    match rdr.read_record(&mut rec) {
        Ok(true) => rec.iter().map(|s| s.trim().to_string()).collect(),
        _ => Vec::new(),
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
