//! leadflow data stage: a raw CSV -> cleaned, imputed, scaled gold dataset, as `[dataset]` in
//! params describes it (the lead preset by default, which reproduces the lead notebook).
//!
//! Roles (listed or inferred), the date window, unlabelled rows, row filters, deduplication;
//! outlier clipping, imputation and scaling fitted on all rows or the training split; category
//! fills and derived columns. Inputs are validated up front (types on every row, then the
//! `[dataset.validation]` rules on the kept rows) and every violation is reported at once, with
//! line numbers, before anything is written; outputs go through
//! [`leadflow_core::artifacts::StageDir`], so a failed run leaves `artifacts/data/` untouched.

mod error;
pub mod generate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use leadflow_core::artifacts::{self as art, Layout, StageDir, StageId};
use leadflow_core::csv_shape::{self, Shape};
use leadflow_core::dataset::{self, DatasetParams, FitOn, Impute, Outliers, Processing, Role, Scaling};
use leadflow_core::features::{fill_categorical, CategoricalFill, ContinuousTransform, Preprocessing, Scale, Target};
use leadflow_core::fingerprint;
use leadflow_core::meta::RunClock;
use leadflow_core::Params;
use polars::prelude::*;

pub use error::{Error, Result};

/// What the data stage reads: the raw file (given to the fingerprint), the `dataset` params and,
/// when preprocessing is fitted on the training split, the split's `test_size` and `seed`.
pub const READS: fingerprint::Reads = fingerprint::Reads {
    stage: StageId::Data,
    artifacts: &[],
    params: |p| match p.dataset.processing.fit_on {
        FitOn::All => serde_json::json!({ "dataset": p.dataset }),
        FitOn::Train => serde_json::json!({ "dataset": p.dataset, "test_size": p.train.test_size, "seed": p.train.seed }),
    },
    data_version: false,
};

/// Environment variable that points the stage at a raw file (e.g. the real dataset).
pub const RAW_ENV: &str = "LEADFLOW_RAW";
/// The committed synthetic sample: the default input, so a fresh clone runs offline.
pub const DEFAULT_RAW: &str = "data/sample/raw_data.csv";

/// Resolve the raw input: explicit path, else `LEADFLOW_RAW`, else the committed sample.
pub fn resolve_raw(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(RAW_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_RAW),
    }
}

/// What one run of the stage did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub raw: PathBuf,
    pub data_version: String,
    /// Row counts after each step.
    pub rows: BTreeMap<String, usize>,
    /// Dates present after the window (datasets with a date column).
    pub min_date: Option<String>,
    pub max_date: Option<String>,
    /// Missing values per categorical column in the kept rows (before filling).
    pub missing: BTreeMap<String, usize>,
    /// Columns whose role was inferred, and why.
    pub inferred: BTreeMap<String, String>,
    pub out_dir: PathBuf,
}

/// Run the data stage: read `raw`, write `artifacts/data/`.
pub fn run(raw: &Path, layout: &Layout, params: &Params) -> Result<Summary> {
    let clock = RunClock::start();
    if !raw.is_file() {
        return Err(Error::MissingFile { path: raw.into() });
    }
    let fp = fingerprint::compute(&READS, layout, params, Some(raw), env!("CARGO_PKG_VERSION"))?;
    let today = chrono::Utc::now().date_naive();
    // The data version (sha256 of the raw file, a full read) is hashed beside the cleaning.
    let (cleaned, data_version) = std::thread::scope(|s| {
        let version = s.spawn(|| leadflow_core::hash::sha256_file(raw));
        let cleaned = clean(raw, params, today);
        let version = version
            .join()
            .unwrap_or_else(|_| Err(leadflow_core::Error::Invalid { path: raw.into(), message: "hashing the raw file panicked".into() }));
        (cleaned, version)
    });
    let (cleaned, data_version) = (cleaned?, data_version?);

    let out = StageDir::begin(layout.stage_dir(StageId::Data))?;
    write_outputs(&out, &cleaned)?;
    let mut meta = clock.finish(StageId::Data, env!("CARGO_PKG_VERSION"), data_version.clone(), params.hash(), cleaned.rows.clone());
    meta.extra.insert("raw_file".into(), raw.display().to_string().into());
    art::write_json(&out.path(&art::DATA_META), &meta)?;
    fingerprint::write(out.dir(), fp, None)?;
    let out_dir = out.commit()?;
    Ok(Summary {
        raw: raw.to_path_buf(),
        data_version,
        min_date: cleaned.min_date.map(|d| d.to_string()),
        max_date: cleaned.max_date.map(|d| d.to_string()),
        missing: cleaned.missing,
        inferred: cleaned.roles.iter().filter_map(|r| Some((r.column.clone(), format!("{:?}: {}", r.role, r.inferred.clone()?)))).collect(),
        rows: cleaned.rows,
        out_dir,
    })
}

/// Check `raw` against the params' dataset (structure, columns, types, validation rules) as the
/// stage would, writing nothing; the text says what the stage would keep and how it read the
/// columns.
pub fn validate(raw: &Path, params: &Params) -> Result<String> {
    if !raw.is_file() {
        return Err(Error::MissingFile { path: raw.into() });
    }
    let c = clean(raw, params, chrono::Utc::now().date_naive())?;
    let mut s = format!("{}: valid for dataset {:?}\nrows:", raw.display(), c.preprocessing.target.dataset);
    for (k, v) in &c.rows {
        s.push_str(&format!(" {k} {v},"));
    }
    s.pop();
    s.push_str("\ncolumns:\n");
    for r in &c.roles {
        let why = r.inferred.as_deref().map(|w| format!(" (inferred: {w})")).unwrap_or_default();
        s.push_str(&format!("  {:<24} {:?}{why}\n", r.column, r.role));
    }
    Ok(s.trim_end().to_string())
}

/// The cleaned data and everything fitted on the way, before anything is written.
pub struct Cleaned {
    pub gold: DataFrame,
    pub preprocessing: Preprocessing,
    pub outlier_summary: Vec<OutlierRow>,
    pub roles: Vec<ColumnRole>,
    pub rows: BTreeMap<String, usize>,
    pub min_date: Option<NaiveDate>,
    pub max_date: Option<NaiveDate>,
    pub missing: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutlierRow {
    pub column: String,
    pub count: usize,
    pub missing: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Read the raw file as text columns, after refusing any structural fault (duplicated header
/// column, ragged row, unterminated quote, NUL, non-UTF-8, bare CR; see
/// [`leadflow_core::csv_shape`]). The returned shape maps row indices to file lines.
fn read_raw(path: &Path, ds: &DatasetParams) -> Result<(DataFrame, Shape)> {
    let md = std::fs::metadata(path).map_err(|_| Error::MissingFile { path: path.into() })?;
    if md.len() == 0 {
        return Err(Error::EmptyFile { path: path.into() });
    }
    // The structural check and polars' read run side by side (both only read the file); the
    // check decides first: polars' result is used only for a file the check accepted.
    let csv_err = |e: PolarsError| Error::Polars { path: path.into(), source: e };
    // Columns params drop are never read (the lead drops 9 of 19): less memory and time. The
    // header is read alone first; if that fails, everything is read and the check reports why.
    let projection = csv::Reader::from_path(path).ok().and_then(|mut r| r.headers().ok().cloned()).map(|h| {
        std::sync::Arc::new(h.iter().enumerate().filter(|(_, n)| !ds.drop.iter().any(|d| d == n)).map(|(i, _)| i).collect::<Vec<_>>())
    });
    let (shape, df) = std::thread::scope(|s| {
        let read = s.spawn(|| {
            // Everything as text: parsing is ours, so errors can name the line and column.
            CsvReadOptions::default()
                .with_has_header(true)
                .with_projection(projection)
                .with_infer_schema_length(Some(0))
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
        });
        let shape = csv_shape::check(path);
        (shape, read.join())
    });
    let shape = shape.map_err(leadflow_core::Error::from)?;
    if shape.header.iter().all(|n| n.is_empty()) {
        return Err(Error::EmptyFile { path: path.into() });
    }
    let required = ds.required_columns();
    let missing: Vec<String> = required.iter().filter(|c| !shape.header.contains(c)).cloned().collect();
    if !missing.is_empty() {
        let unexpected: Vec<&str> =
            shape.header.iter().map(String::as_str).filter(|c| ds.listed_role(c).is_none() && !required.iter().any(|r| r == c)).collect();
        return Err(Error::MissingColumns {
            path: path.into(),
            missing,
            unexpected: unexpected.join(", "),
            found: shape.header.join(", "),
        });
    }
    if shape.records == 0 {
        return Err(Error::NoRows { path: path.into() });
    }
    let df = df
        .map_err(|_| Error::Csv {
            path: path.into(),
            message: "the CSV reader failed on a file the structure check accepted; please report this file".into(),
        })?
        .map_err(csv_err)?;
    if df.height() != shape.records {
        return Err(Error::Csv {
            path: path.into(),
            message: format!("read {} rows where the structure check counted {}; please report this file", df.height(), shape.records),
        });
    }
    Ok((df, shape))
}

fn text<'a>(df: &'a DataFrame, name: &str, path: &Path) -> Result<&'a StringChunked> {
    df.column(name).and_then(|c| c.str()).map_err(|e| Error::Csv { path: path.into(), message: format!("column `{name}`: {e}") })
}

/// `2024-01-1` and `2024-01-01` both parse (chrono accepts one-digit days and months).
fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

fn mean(v: impl Iterator<Item = f64>) -> (f64, usize) {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    (if n > 0 { s / n as f64 } else { f64::NAN }, n)
}

fn sample_std(v: &[Option<f64>], m: f64) -> f64 {
    let (ss, n) = v.iter().flatten().fold((0.0, 0usize), |(s, n), x| (s + (x - m) * (x - m), n + 1));
    if n > 1 {
        (ss / (n - 1) as f64).sqrt()
    } else {
        0.0
    }
}

fn median(v: &[Option<f64>]) -> f64 {
    let mut xs: Vec<f64> = v.iter().flatten().copied().collect();
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Most frequent value; ties go to the smallest (pandas' `mode()[0]`).
fn mode<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0))).map(|(v, _)| v.to_string())
}

/// The role of one raw column, and why when it was inferred.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColumnRole {
    pub column: String,
    pub role: Role,
    /// `None` when params list the column; else what the data showed.
    pub inferred: Option<String>,
}

/// Most distinct values a text column may have to be inferred categorical (else ignored).
const MAX_TEXT_LEVELS: usize = 50;

/// Infer a column's role from its values (every row, trimmed, empty cells ignored).
fn infer_role(col: &StringChunked, numeric_levels_max: usize) -> (Role, String) {
    let values: Vec<&str> = col.iter().flatten().map(str::trim).filter(|s| !s.is_empty()).collect();
    if values.is_empty() {
        return (Role::Ignored, "every value is empty".into());
    }
    let mut distinct: Vec<&str> = values.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let k = distinct.len();
    let is_word_bool = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no");
    if values.iter().all(|v| is_word_bool(v)) {
        return (Role::Boolean, format!("only yes/no values ({})", distinct.join(", ")));
    }
    if values.iter().all(|v| leadflow_core::features::parse_finite(v).is_some()) {
        return if k <= numeric_levels_max {
            (Role::Categorical, format!("numbers with only {k} distinct values (at most {numeric_levels_max} make a category)"))
        } else {
            (Role::Continuous, format!("numbers, {k} distinct values"))
        };
    }
    if values.iter().all(|v| parse_date(v).is_some()) {
        return (Role::Ignored, "dates (YYYY-MM-DD); not used as features".into());
    }
    if k <= MAX_TEXT_LEVELS && k * 2 <= values.len() {
        (Role::Categorical, format!("text with {k} distinct values"))
    } else {
        (Role::Ignored, format!("text with {k} distinct values in {} rows: an identifier or free text", values.len()))
    }
}

/// Every header column's role: listed in params, else inferred (`dataset.infer`) or ignored.
fn resolve_roles(ds: &DatasetParams, header: &[String], df: &DataFrame, path: &Path) -> Result<Vec<ColumnRole>> {
    let mut out = Vec::new();
    for name in header {
        let name = name.to_string();
        let (role, inferred) = match ds.listed_role(&name) {
            Some(r) => (r, None),
            None if ds.infer => {
                let (r, why) = infer_role(text(df, &name, path)?, ds.numeric_levels_max);
                (r, Some(why))
            }
            None => (Role::Ignored, Some("not listed in params (dataset.infer = false): carried along, not a feature".into())),
        };
        out.push(ColumnRole { column: name, role, inferred });
    }
    Ok(out)
}

/// Every violation found in one pass, reported together.
struct Problems<'a> {
    shape: &'a Shape,
    list: Vec<Problem>,
}

struct Problem {
    column: String,
    what: String,
    count: usize,
    /// The first lines at fault; none for a summary (fractions, row counts).
    examples: Vec<(u64, String)>,
}

const EXAMPLES: usize = 3;

impl<'a> Problems<'a> {
    fn new(shape: &'a Shape) -> Self {
        Problems { shape, list: Vec::new() }
    }

    /// A bad value in `column` at row `i`.
    fn at(&mut self, column: &str, what: &str, i: usize, value: &str) {
        let line = self.shape.line(i);
        if let Some(p) = self.list.iter_mut().find(|p| p.column == column && p.what == what) {
            p.count += 1;
            if p.examples.len() < EXAMPLES {
                p.examples.push((line, value.to_string()));
            }
            return;
        }
        self.list.push(Problem { column: column.into(), what: what.into(), count: 1, examples: vec![(line, value.into())] });
    }

    fn summary(&mut self, column: &str, what: String) {
        self.list.push(Problem { column: column.into(), what, count: 0, examples: Vec::new() });
    }

    fn into_error(self, path: &Path) -> Option<Error> {
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
                let mut s = format!("line {line}, column `{}`: {}, found {value:?}", p.column, p.what);
                if p.count > 1 {
                    let more: Vec<String> = p.examples[1..].iter().map(|(l, v)| format!("line {l}: {v:?}")).collect();
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

/// Validate and clean the raw file (no output written).
pub fn clean(path: &Path, params: &Params, today: NaiveDate) -> Result<Cleaned> {
    let ds = &params.dataset;
    let (df, shape) = read_raw(path, ds)?;
    let n = df.height();
    let mut rows = BTreeMap::new();
    rows.insert("raw".to_string(), n);
    let roles = resolve_roles(ds, &shape.header, &df, path)?;
    let with_role = |r: Role| -> Vec<String> {
        let listed: &[String] = match r {
            Role::Continuous => &ds.continuous,
            Role::Boolean => &ds.boolean,
            Role::Ignored => &ds.ignore,
            _ => &[],
        };
        let listed = listed.iter().cloned();
        let inferred = roles.iter().filter(|c| c.role == r && c.inferred.is_some()).map(|c| c.column.clone());
        listed.chain(inferred).collect()
    };
    let continuous = with_role(Role::Continuous);
    let booleans = with_role(Role::Boolean);
    let ignored = with_role(Role::Ignored);
    let derived: Vec<&str> = ds.derived().collect();
    // Categorical features from the file: listed (not derived) then inferred; encoded in the
    // listed order (derived ones included), then booleans, then inferred.
    let inferred_cat: Vec<String> =
        roles.iter().filter(|c| c.role == Role::Categorical && c.inferred.is_some()).map(|c| c.column.clone()).collect();
    let raw_categorical: Vec<String> =
        ds.categorical.iter().filter(|c| !derived.contains(&c.as_str())).cloned().chain(inferred_cat.iter().cloned()).collect();
    let encoded: Vec<String> = ds.categorical.iter().cloned().chain(booleans.iter().cloned()).chain(inferred_cat.iter().cloned()).collect();
    let mut problems = Problems::new(&shape);

    // --- types, every row ------------------------------------------------------------------
    let negative = ds.negative();
    let target_raw = text(&df, &ds.target, path)?;
    // Multiclass: the declared classes, else those found (fixed order, saved with the model).
    let classes: Vec<String> = match (ds.multiclass, ds.classes.is_empty()) {
        (false, _) => Vec::new(),
        (true, false) => ds.classes.clone(),
        (true, true) => dataset::detect_classes(target_raw.iter().flatten()),
    };
    if ds.multiclass && !(2..=dataset::MAX_CLASSES).contains(&classes.len()) {
        return Err(Error::Invalid {
            path: path.into(),
            problems: vec![format!(
                "column `{}`: {} distinct values ({}); a multiclass target needs 2 to {}",
                ds.target,
                classes.len(),
                classes.iter().take(12).cloned().collect::<Vec<_>>().join(", "),
                dataset::MAX_CLASSES
            )],
        });
    }
    let target_what = if ds.multiclass {
        format!("expected one of {} or empty (dataset.classes)", classes.join(", "))
    } else {
        format!("expected {:?}, {:?} or empty (dataset.positive / dataset.negative)", ds.positive, negative)
    };
    let class_of = |v: &str| -> Option<Result<u8, ()>> {
        if !ds.multiclass {
            return dataset::class_of(v, &ds.positive, &negative);
        }
        let v = v.trim();
        (!v.is_empty()).then(|| classes.iter().position(|c| dataset::same_value(c, v)).map(|i| i as u8).ok_or(()))
    };
    let target: Vec<Option<u8>> = target_raw
        .iter()
        .enumerate()
        .map(|(i, v)| match v.and_then(class_of) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(())) => {
                problems.at(&ds.target, &target_what, i, v.unwrap_or("").trim());
                None
            }
        })
        .collect();
    let dates: Option<Vec<Option<NaiveDate>>> = if ds.date.is_empty() {
        None
    } else {
        let col = text(&df, &ds.date, path)?;
        Some(
            col.iter()
                .enumerate()
                .map(|(i, v)| match v.map(str::trim) {
                    None | Some("") => None,
                    Some(s) => {
                        let d = parse_date(s);
                        if d.is_none() {
                            problems.at(&ds.date, "expected a date YYYY-MM-DD", i, s);
                        }
                        d
                    }
                })
                .collect(),
        )
    };
    let mut numeric: Vec<Vec<Option<f64>>> = Vec::new();
    for c in &continuous {
        let col = text(&df, c, path)?;
        numeric.push(
            col.iter()
                .enumerate()
                .map(|(i, v)| match v.map(str::trim) {
                    None | Some("") => None,
                    Some(s) => {
                        let x = leadflow_core::features::parse_finite(s);
                        if x.is_none() {
                            problems.at(c, "expected a number", i, s);
                        }
                        x
                    }
                })
                .collect(),
        );
    }
    for c in &booleans {
        for (i, v) in text(&df, c, path)?.iter().enumerate() {
            if let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) {
                if dataset::parse_bool(s).is_none() {
                    problems.at(c, "expected yes/no (true/false, 1/0)", i, s);
                }
            }
        }
    }

    // --- filters ------------------------------------------------------------------------------
    let mut keep = vec![true; n];
    let fail_filtered = |problems: Problems<'_>, step: &'static str, hint: String| -> Error {
        problems.into_error(path).unwrap_or(Error::AllFiltered { path: path.into(), step, hint })
    };
    let (mut dmin, mut dmax) = (None, None);
    if let Some(dates) = &dates {
        let (min, max) = params.date_window(today);
        for (k, d) in keep.iter_mut().zip(dates) {
            *k = d.is_some_and(|d| d >= min && d <= max);
        }
        let after = keep.iter().filter(|&&b| b).count();
        rows.insert("after_date_filter".into(), after);
        if after == 0 {
            return Err(fail_filtered(
                problems,
                "the date window",
                format!("no {} within [{min}, {max}] (params dataset.min_date / dataset.max_date)", ds.date),
            ));
        }
        let window = dates.iter().zip(&keep).filter(|(_, &k)| k).filter_map(|(d, _)| *d);
        dmin = window.clone().min();
        dmax = window.max();
    }
    let ids = if ds.id.is_empty() { None } else { Some(text(&df, &ds.id, path)?) };
    for (i, k) in keep.iter_mut().enumerate() {
        *k = *k && target[i].is_some() && ids.is_none_or(|ids| ids.get(i).is_some_and(|s| !s.trim().is_empty()));
    }
    let after = keep.iter().filter(|&&b| b).count();
    rows.insert("after_target_filter".into(), after);
    if after == 0 {
        let what = if ds.id.is_empty() { format!("an empty {}", ds.target) } else { format!("an empty {} or {}", ds.target, ds.id) };
        return Err(fail_filtered(problems, "dropping unlabelled rows", format!("every row left has {what}")));
    }
    for f in &ds.filters {
        let col = text(&df, &f.column, path)?;
        for (i, k) in keep.iter_mut().enumerate() {
            *k = *k && col.get(i).map(str::trim).is_some_and(|v| f.equals.iter().any(|e| e == v));
        }
        let after = keep.iter().filter(|&&b| b).count();
        if after == 0 {
            return Err(fail_filtered(
                problems,
                "a filter",
                format!("no labelled row has {} in {:?} (params dataset.filters)", f.column, f.equals),
            ));
        }
    }
    if !ds.filters.is_empty() {
        rows.insert("after_filters".into(), keep.iter().filter(|&&b| b).count());
    }
    if ds.processing.drop_duplicates {
        let kept_cols: Vec<&StringChunked> =
            roles.iter().filter(|c| c.role != Role::Dropped).map(|c| text(&df, &c.column, path)).collect::<Result<_>>()?;
        let mut seen = std::collections::HashSet::new();
        for (i, k) in keep.iter_mut().enumerate() {
            if *k {
                let key: Vec<&str> = kept_cols.iter().map(|c| c.get(i).map(str::trim).unwrap_or("")).collect();
                *k = seen.insert(key);
            }
        }
        rows.insert("after_drop_duplicates".into(), keep.iter().filter(|&&b| b).count());
    }
    let kept: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
    rows.insert("gold".into(), kept.len());

    // --- rules on the kept rows ---------------------------------------------------------------
    let v = &ds.validation;
    if kept.len() < v.min_rows {
        problems.summary("", format!("{} rows after filtering, validation.min_rows requires at least {}", kept.len(), v.min_rows));
    }
    let y: Vec<u8> = kept.iter().map(|&i| target[i].unwrap_or(0)).collect();
    let target_info = Target::of(ds, &classes);
    let labels = &target_info.labels;
    // Binary: the positive class first (as before); multiclass: in class order.
    let order: Vec<u8> = if ds.multiclass { (0..labels.len() as u8).collect() } else { vec![1, 0] };
    for class in order {
        let count = y.iter().filter(|&&c| c == class).count();
        if count < v.min_rows_per_class {
            problems.summary(
                &ds.target,
                format!(
                    "{count} rows of class {:?}, validation.min_rows_per_class requires at least {}",
                    labels[class as usize], v.min_rows_per_class
                ),
            );
        }
    }
    for (c, [lo, hi]) in &v.range {
        let Some(j) = continuous.iter().position(|x| x == c) else {
            problems.summary(c, "validation.range applies to continuous columns only".into());
            continue;
        };
        for &i in &kept {
            if let Some(x) = numeric[j][i] {
                if x < *lo || x > *hi {
                    problems.at(c, &format!("outside the allowed range [{lo}, {hi}]"), i, &x.to_string());
                }
            }
        }
    }
    for (c, allowed) in &v.allowed {
        let col = text(&df, c, path)?;
        let what = format!("not one of the allowed values ({})", allowed.join(", "));
        for &i in &kept {
            if let Some(s) = col.get(i).map(str::trim).filter(|s| !s.is_empty()) {
                if !allowed.iter().any(|a| a == s) {
                    problems.at(c, &what, i, s);
                }
            }
        }
    }
    if !v.max_missing.is_empty() {
        for r in roles.iter().filter(|r| r.role != Role::Dropped) {
            let Some(&max) = v.max_missing.get(&r.column).or_else(|| v.max_missing.get("*")) else { continue };
            let col = text(&df, &r.column, path)?;
            let missing = kept.iter().filter(|&&i| col.get(i).is_none_or(|s| s.trim().is_empty())).count();
            let frac = missing as f64 / kept.len().max(1) as f64;
            if frac > max {
                problems.summary(
                    &r.column,
                    format!(
                        "{:.1}% missing ({missing} of {} rows), validation.max_missing allows at most {:.1}%",
                        100.0 * frac,
                        kept.len(),
                        100.0 * max
                    ),
                );
            }
        }
    }
    if let Some(e) = problems.into_error(path) {
        return Err(e);
    }

    // --- the rows preprocessing is fitted on --------------------------------------------------
    let fit: Vec<usize> = match ds.processing.fit_on {
        FitOn::All => kept.clone(),
        FitOn::Train => {
            let (train, _) = leadflow_core::split::train_test_of(&y, params.train.test_size, params.train.seed);
            train.iter().map(|&p| kept[p]).collect()
        }
    };
    rows.insert("fitted_on".into(), fit.len());
    let polars_err = |e: PolarsError| Error::Polars { path: path.into(), source: e };

    // --- continuous: clip, summarise, impute, scale -----------------------------------------
    let mut transforms = Vec::new();
    let mut outlier_summary = Vec::new();
    let mut scaled_cols = Vec::new();
    for (c, values) in continuous.iter().zip(&numeric) {
        let (t, row) = fit_continuous(c, &fit.iter().map(|&i| values[i]).collect::<Vec<_>>(), &ds.processing);
        outlier_summary.push(row);
        // The gold values are the fitted transform applied to the raw values, exactly as serving
        // applies it to new rows.
        let scaled: Vec<f64> = kept.iter().map(|&i| t.apply(values[i])).collect();
        scaled_cols.push(Column::new(c.as_str().into(), scaled));
        transforms.push(t);
    }

    // --- categorical, boolean, carried-along: fill, mode -------------------------------------
    let mut fills = Vec::new();
    let mut cat_cols = Vec::new();
    let mut missing = BTreeMap::new();
    for (c, boolean, feature) in raw_categorical
        .iter()
        .map(|c| (c, false, true))
        .chain(booleans.iter().map(|c| (c, true, true)))
        .chain(ignored.iter().map(|c| (c, false, false)))
    {
        let col = text(&df, c, path)?;
        let fill = ds.fill.get(c).cloned();
        missing.insert(c.clone(), kept.iter().filter(|&&i| col.get(i).is_none_or(|s| s.trim().is_empty())).count());
        let norm = |s: &str| if boolean { dataset::parse_bool(s).map(|b| b.to_string()).unwrap_or_default() } else { s.to_string() };
        // The mode is fitted on the values present (after a constant fill), then every cell is
        // filled by the same rule serving applies (`CategoricalFill::apply`).
        let present: Vec<String> =
            fit.iter().map(|&i| norm(&fill_categorical(col.get(i), "", fill.as_deref()))).filter(|s| !s.is_empty()).collect();
        let mode = mode(present.iter().map(String::as_str)).unwrap_or_default();
        let f = CategoricalFill { name: c.clone(), mode, fill, boolean, feature };
        let filled: Vec<String> = kept.iter().map(|&i| f.apply(col.get(i)).unwrap_or_default()).collect();
        cat_cols.push(Column::new(c.as_str().into(), filled));
        fills.push(f);
    }
    let mut derived_cols = Vec::new();
    for d in &ds.derive {
        let src = cat_cols.iter().find(|c| c.name().as_str() == d.from).and_then(|c| c.str().ok()).ok_or_else(|| Error::Csv {
            path: path.into(),
            message: format!("`{}` (the source of derived `{}`) is not a categorical column", d.from, d.name),
        })?;
        let vals: Vec<&str> = src.iter().map(|s| d.apply(s.unwrap_or(""))).collect();
        derived_cols.push(Column::new(d.name.as_str().into(), vals));
    }

    // Gold order: id, target, categorical and boolean, carried-along, date, continuous, derived.
    let mut columns = Vec::new();
    if let Some(ids) = ids {
        let v: Vec<String> = kept.iter().map(|&i| ids.get(i).unwrap_or("").trim().to_string()).collect();
        columns.push(Column::new(ds.id.as_str().into(), v));
    }
    columns.push(Column::new(ds.target.as_str().into(), y.iter().map(|c| c.to_string()).collect::<Vec<_>>()));
    columns.extend(cat_cols);
    if let Some(dates) = &dates {
        let v: Vec<String> = kept.iter().map(|&i| dates[i].map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()).collect();
        columns.push(Column::new(ds.date.as_str().into(), v));
    }
    columns.extend(scaled_cols);
    columns.extend(derived_cols);
    let gold = DataFrame::new(kept.len(), columns).map_err(polars_err)?;

    Ok(Cleaned {
        gold,
        preprocessing: Preprocessing {
            target: target_info,
            id: (!ds.id.is_empty()).then(|| ds.id.clone()),
            continuous: transforms,
            categorical: fills,
            derive: ds.derive.clone(),
            filters: ds.filters.clone(),
            encoded,
            encoding: ds.processing.encoding,
            drop_first: ds.processing.drop_first,
            unseen: ds.processing.unseen,
        },
        outlier_summary,
        roles,
        rows,
        min_date: dmin,
        max_date: dmax,
        missing,
    })
}

/// Linear-interpolation quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Fit one continuous column on the fit rows' values: clip bounds, then the fill on clipped
/// values, then the scaler on imputed ones, into the one transform saved and applied everywhere.
fn fit_continuous(name: &str, vals: &[Option<f64>], p: &Processing) -> (ContinuousTransform, OutlierRow) {
    let (m, _) = mean(vals.iter().flatten().copied());
    let (lo, hi) = match p.outliers {
        _ if !m.is_finite() => (f64::NEG_INFINITY, f64::INFINITY),
        Outliers::None => (f64::NEG_INFINITY, f64::INFINITY),
        Outliers::Sigma(k) => {
            let sd = sample_std(vals, m);
            (m - k * sd, m + k * sd)
        }
        Outliers::Iqr(k) => {
            let mut xs: Vec<f64> = vals.iter().flatten().copied().collect();
            xs.sort_by(f64::total_cmp);
            let (q1, q3) = (quantile(&xs, 0.25), quantile(&xs, 0.75));
            (q1 - k * (q3 - q1), q3 + k * (q3 - q1))
        }
    };
    let mut t = ContinuousTransform { name: name.to_string(), clip_lower: lo, clip_upper: hi, fill: 0.0, scale: Scale::None };
    let clipped: Vec<Option<f64>> = vals.iter().map(|v| v.map(|x| t.clip(x))).collect();
    let (cm, count) = mean(clipped.iter().flatten().copied());
    let cmin = clipped.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    let cmax = clipped.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let row = OutlierRow { column: name.to_string(), count, missing: vals.len() - count, mean: cm, min: cmin, max: cmax };
    let fill = match p.impute {
        Impute::Mean => cm,
        Impute::Median => median(&clipped),
        Impute::Mode => numeric_mode(&clipped),
        Impute::Constant(v) => v,
    };
    t.fill = if fill.is_finite() { fill } else { 0.0 };
    let imputed: Vec<f64> = clipped.iter().map(|v| v.unwrap_or(t.fill)).collect();
    t.scale = match p.scaling {
        Scaling::MinMax => Scale::MinMax {
            min: imputed.iter().copied().fold(f64::INFINITY, f64::min),
            max: imputed.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        },
        Scaling::Standard => {
            let (mu, k) = mean(imputed.iter().copied());
            let var = if k > 0 { imputed.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / k as f64 } else { 0.0 };
            Scale::Standard { mean: if mu.is_finite() { mu } else { 0.0 }, std: var.sqrt() }
        }
        Scaling::None => Scale::None,
    };
    (t, row)
}

/// Most frequent value present (ties: the smallest).
fn numeric_mode(v: &[Option<f64>]) -> f64 {
    let mut xs: Vec<f64> = v.iter().flatten().copied().collect();
    xs.sort_by(f64::total_cmp);
    let (mut best, mut best_n, mut i) = (f64::NAN, 0, 0);
    while i < xs.len() {
        let j = xs[i..].iter().take_while(|&&x| x == xs[i]).count();
        if j > best_n {
            (best, best_n) = (xs[i], j);
        }
        i += j;
    }
    best
}

fn write_csv(df: &mut DataFrame, path: &Path) -> Result<()> {
    // Streamed, not atomic: the file is inside the stage's temporary directory, renamed with it.
    let _permit = art::write_permit();
    let file = std::fs::File::create(path).map_err(|e| Error::Write { path: path.into(), source: e.into() })?;
    let mut w = std::io::BufWriter::new(file);
    CsvWriter::new(&mut w).include_header(true).finish(df).map_err(|e| Error::Write { path: path.into(), source: e.into() })
}

fn write_text(path: &Path, s: &str) -> Result<()> {
    Ok(art::write_atomic(path, s.as_bytes())?)
}

fn write_outputs(out: &StageDir, c: &Cleaned) -> Result<()> {
    art::write_json(
        &out.path(&art::DATE_LIMITS),
        &serde_json::json!({ "min_date": c.min_date.map(|d| d.to_string()), "max_date": c.max_date.map(|d| d.to_string()) }),
    )?;
    let mut s = String::from("column,count,missing,mean,min,max\n");
    for r in &c.outlier_summary {
        s.push_str(&format!("{},{},{},{},{},{}\n", csv_field(&r.column), r.count, r.missing, r.mean, r.min, r.max));
    }
    write_text(&out.path(&art::OUTLIER_SUMMARY), &s)?;
    let fills = &c.preprocessing.categorical;
    let header: Vec<String> = fills.iter().map(|f| csv_field(&f.name)).collect();
    let values: Vec<String> = fills.iter().map(|f| csv_field(f.fill.as_deref().unwrap_or(&f.mode))).collect();
    write_text(&out.path(&art::CAT_MISSING_IMPUTE), &format!("{}\n{}\n", header.join(","), values.join(",")))?;
    art::write_json(&out.path(&art::SCALER), &leadflow_core::features::scaler_json(&c.preprocessing.continuous))?;
    art::write_json(&out.path(&art::ROLES), &c.roles)?;
    art::write_json(&out.path(&art::PREPROCESSING), &c.preprocessing)?;

    let mut gold = c.gold.clone();
    let derived: Vec<String> = c.preprocessing.derive.iter().map(|d| d.name.clone()).collect();
    let mut training = gold.drop_many(derived);
    let cols: Vec<String> = training.get_column_names().iter().map(|s| s.to_string()).collect();
    art::write_json(&out.path(&art::COLUMNS_DRIFT), &cols)?;
    write_csv(&mut training, &out.path(&art::TRAINING_DATA))?;
    write_csv(&mut gold, &out.path(&art::GOLD))?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_digit_days_parse() {
        assert_eq!(parse_date("2024-01-1"), NaiveDate::from_ymd_opt(2024, 1, 1));
        assert_eq!(parse_date("2024-01-31"), NaiveDate::from_ymd_opt(2024, 1, 31));
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn mode_ties_go_to_smallest() {
        assert_eq!(mode(["b", "a", "b", "a", "c"].into_iter()), Some("a".into()));
        assert_eq!(mode(["x", "y", "y"].into_iter()), Some("y".into()));
    }
}
