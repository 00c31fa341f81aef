//! leadflow data stage: raw leads CSV -> cleaned, imputed, scaled gold dataset.
//!
//! Reproduces the lead notebook on polars: date window, column drops, empty-target and source
//! filters, mean ± σ·std clipping, mean/mode imputation, min-max scaling and `bin_source`.
//! Inputs are validated up front, so a bad file fails with the line and column at fault before
//! anything is written; outputs go through [`leadflow_core::artifacts::StageDir`], so a failed
//! run leaves the previous `artifacts/data/` untouched.

mod error;
pub mod generate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use leadflow_core::artifacts::{self as art, Layout, StageDir, StageId};
use leadflow_core::csv_shape::{self, Shape};
use leadflow_core::features::{fill_categorical, ContinuousTransform, Preprocessing, CUSTOMER_CODE_MISSING};
use leadflow_core::fingerprint;
use leadflow_core::meta::RunClock;
use leadflow_core::params::Impute;
use leadflow_core::{schema, Params};
use polars::prelude::*;

pub use error::{Error, Result};

/// What the data stage reads: the raw file (given to the fingerprint) and `data` params.
pub const READS: fingerprint::Reads =
    fingerprint::Reads { stage: StageId::Data, artifacts: &[], params: |p| serde_json::json!({ "data": p.data }), data_version: false };

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
    pub min_date: String,
    pub max_date: String,
    pub missing_customer_code: usize,
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
    let cleaned = clean(raw, params, today)?;
    let data_version = leadflow_core::hash::sha256_file(raw)?;

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
        rows: cleaned.rows,
        min_date: cleaned.min_date.to_string(),
        max_date: cleaned.max_date.to_string(),
        missing_customer_code: cleaned.missing_customer_code,
        out_dir,
    })
}

/// The cleaned data and everything fitted on the way, before anything is written.
pub struct Cleaned {
    pub gold: DataFrame,
    pub preprocessing: Preprocessing,
    pub outlier_summary: Vec<OutlierRow>,
    pub rows: BTreeMap<String, usize>,
    pub min_date: NaiveDate,
    pub max_date: NaiveDate,
    pub missing_customer_code: usize,
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
fn read_raw(path: &Path) -> Result<(DataFrame, Shape)> {
    let md = std::fs::metadata(path).map_err(|_| Error::MissingFile { path: path.into() })?;
    if md.len() == 0 {
        return Err(Error::EmptyFile { path: path.into() });
    }
    let shape = csv_shape::check(path).map_err(leadflow_core::Error::from)?;
    if shape.header.iter().all(|n| n.is_empty()) {
        return Err(Error::EmptyFile { path: path.into() });
    }
    for &col in schema::PROTECTED_COLUMNS {
        if !shape.header.iter().any(|n| n == col) {
            return Err(Error::MissingColumn { path: path.into(), column: col.into(), found: shape.header.join(", ") });
        }
    }
    if shape.records == 0 {
        return Err(Error::NoRows { path: path.into() });
    }
    let csv_err = |e: PolarsError| Error::Polars { path: path.into(), source: e };
    // Everything as text: parsing is ours, so errors can name the line and column.
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .map_err(csv_err)?
        .finish()
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

fn parse_numbers(col: &StringChunked, name: &str, path: &Path, shape: &Shape) -> Result<Vec<Option<f64>>> {
    col.iter()
        .enumerate()
        .map(|(i, v)| match v.map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => leadflow_core::features::parse_finite(s).map(Some).ok_or_else(|| Error::NotNumeric {
                path: path.into(),
                line: shape.line(i),
                column: name.into(),
                value: s.into(),
            }),
        })
        .collect()
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

/// Validate and clean the raw file (no output written).
pub fn clean(path: &Path, params: &Params, today: NaiveDate) -> Result<Cleaned> {
    let (df, shape) = read_raw(path)?;
    let n = df.height();
    let mut rows = BTreeMap::new();
    rows.insert("raw".to_string(), n);

    // --- validate every row up front -------------------------------------------------------
    let dates_raw = text(&df, schema::DATE, path)?;
    let mut dates: Vec<Option<NaiveDate>> = Vec::with_capacity(n);
    for (i, v) in dates_raw.iter().enumerate() {
        dates.push(match v.map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(parse_date(s).ok_or_else(|| Error::BadDate { path: path.into(), line: shape.line(i), value: s.into() })?),
        });
    }
    let target_raw = text(&df, schema::TARGET, path)?;
    let mut target: Vec<Option<&'static str>> = Vec::with_capacity(n);
    for (i, v) in target_raw.iter().enumerate() {
        target.push(match v.map(str::trim) {
            None | Some("") => None,
            Some("0") | Some("0.0") => Some("0"),
            Some("1") | Some("1.0") => Some("1"),
            Some(s) => return Err(Error::BadTarget { path: path.into(), line: shape.line(i), value: s.into() }),
        });
    }
    let mut numeric: Vec<Vec<Option<f64>>> = Vec::new();
    for &c in schema::CONTINUOUS {
        numeric.push(parse_numbers(text(&df, c, path)?, c, path, &shape)?);
    }

    // --- filters ------------------------------------------------------------------------------
    let (min, max) = params.date_window(today);
    let in_window: Vec<bool> = dates.iter().map(|d| d.is_some_and(|d| d >= min && d <= max)).collect();
    let after_window = in_window.iter().filter(|&&b| b).count();
    rows.insert("after_date_filter".into(), after_window);
    if after_window == 0 {
        return Err(Error::AllFiltered {
            path: path.into(),
            step: "the date window",
            hint: format!("no date_part within [{min}, {max}] (params data.min_date / data.max_date)"),
        });
    }
    let window_dates = dates.iter().zip(&in_window).filter(|(_, &k)| k).filter_map(|(d, _)| *d);
    let (mut dmin, mut dmax) = (NaiveDate::MAX, NaiveDate::MIN);
    for d in window_dates {
        dmin = dmin.min(d);
        dmax = dmax.max(d);
    }

    let ids = text(&df, schema::ID, path)?;
    let mut keep: Vec<bool> =
        (0..n).map(|i| in_window[i] && target[i].is_some() && ids.get(i).is_some_and(|s| !s.trim().is_empty())).collect();
    let after_target = keep.iter().filter(|&&b| b).count();
    rows.insert("after_target_filter".into(), after_target);
    if after_target == 0 {
        return Err(Error::AllFiltered {
            path: path.into(),
            step: "dropping rows with an empty lead_indicator or lead_id",
            hint: "no labelled rows in the date window".into(),
        });
    }
    let filter = params.data.source_filter.as_str();
    if !filter.is_empty() {
        let source = text(&df, schema::SOURCE, path)?;
        for (i, k) in keep.iter_mut().enumerate() {
            *k = *k && source.get(i).map(str::trim) == Some(filter);
        }
    }
    let kept: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
    rows.insert("after_source_filter".into(), kept.len());
    if kept.is_empty() {
        return Err(Error::AllFiltered {
            path: path.into(),
            step: "the source filter",
            hint: format!("no labelled row has source == {filter:?} (params data.source_filter)"),
        });
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    let polars_err = |e: PolarsError| Error::Polars { path: path.into(), source: e };

    // --- continuous: clip, summarise, impute, scale -----------------------------------------
    let sigma = params.data.outlier_sigma;
    let mut transforms = Vec::new();
    let mut outlier_summary = Vec::new();
    let mut scaled_cols = Vec::new();
    for (c, values) in schema::CONTINUOUS.iter().zip(&numeric) {
        let vals: Vec<Option<f64>> = kept.iter().map(|&i| values[i]).collect();
        let (m, _) = mean(vals.iter().flatten().copied());
        let sd = sample_std(&vals, m);
        let (lo, hi) = if m.is_finite() { (m - sigma * sd, m + sigma * sd) } else { (f64::NEG_INFINITY, f64::INFINITY) };
        // Fitted in three steps (clip bounds, then the fill on clipped values, then the scaler on
        // imputed ones) into the one transform that is saved and applied everywhere.
        let mut t = ContinuousTransform { name: c.to_string(), clip_lower: lo, clip_upper: hi, fill: 0.0, min: 0.0, max: 0.0 };
        let clipped: Vec<Option<f64>> = vals.iter().map(|v| v.map(|x| t.clip(x))).collect();
        let (cm, count) = mean(clipped.iter().flatten().copied());
        let cmin = clipped.iter().flatten().copied().fold(f64::INFINITY, f64::min);
        let cmax = clipped.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
        outlier_summary.push(OutlierRow { column: c.to_string(), count, missing: vals.len() - count, mean: cm, min: cmin, max: cmax });
        let fill = match params.data.impute {
            Impute::Mean => cm,
            Impute::Median => median(&clipped),
        };
        t.fill = if fill.is_finite() { fill } else { 0.0 };
        let imputed: Vec<f64> = clipped.iter().map(|v| v.unwrap_or(t.fill)).collect();
        t.min = imputed.iter().copied().fold(f64::INFINITY, f64::min);
        t.max = imputed.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // The gold values are the fitted transform applied to the raw values, exactly as serving
        // applies it to new rows.
        let scaled: Vec<f64> = vals.iter().map(|&v| t.apply(v)).collect();
        scaled_cols.push(Column::new((*c).into(), scaled));
        transforms.push(t);
    }

    // --- categorical: customer_code None, mode imputation ------------------------------------
    let cat = df.select(schema::CATEGORICAL.iter().copied()).and_then(|d| d.filter(&mask)).map_err(polars_err)?;
    let mut modes = BTreeMap::new();
    let mut cat_cols = Vec::new();
    let mut missing_customer_code = 0;
    for &c in schema::CATEGORICAL {
        let col = text(&cat, c, path)?;
        let is_missing = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
        // The mode is fitted on the values present (customer_code: after its missing token), then
        // every cell is filled by the same rule serving applies (`features::fill_categorical`).
        let (m, filled): (String, Vec<String>) = if c == schema::TARGET {
            let values: Vec<&str> = kept.iter().filter_map(|&i| target[i]).collect();
            (mode(values.iter().copied()).unwrap_or_default(), values.iter().map(|s| s.to_string()).collect())
        } else {
            if c == schema::CUSTOMER_CODE {
                missing_customer_code = col.iter().filter(|v| is_missing(*v)).count();
            }
            let present =
                col.iter().map(|v| fill_categorical(c, v, "", CUSTOMER_CODE_MISSING)).filter(|s| !s.is_empty()).collect::<Vec<_>>();
            let m = mode(present.iter().map(String::as_str)).unwrap_or_default();
            let filled = col.iter().map(|v| fill_categorical(c, v, &m, CUSTOMER_CODE_MISSING)).collect();
            (m, filled)
        };
        modes.insert(c.to_string(), m);
        cat_cols.push(Column::new(c.into(), filled));
    }
    // Raw columns that are neither dropped (params data.drop_columns) nor known pass through as
    // categorical text with mode imputation; the train stage ignores them.
    let known: Vec<&str> = schema::CATEGORICAL.iter().chain(schema::CONTINUOUS).chain([&schema::DATE]).copied().collect();
    let extra: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|c| !known.contains(&c.as_str()) && !params.data.drop_columns.contains(c))
        .collect();
    let mut extra_cols = Vec::new();
    if !extra.is_empty() {
        let ex = df.select(extra.iter().map(String::as_str)).and_then(|d| d.filter(&mask)).map_err(polars_err)?;
        for c in &extra {
            let col = text(&ex, c, path)?;
            let m = mode(col.iter().flatten().map(str::trim).filter(|s| !s.is_empty())).unwrap_or_default();
            let filled: Vec<String> = col.iter().map(|v| fill_categorical(c, v, &m, CUSTOMER_CODE_MISSING)).collect();
            modes.insert(c.clone(), m);
            extra_cols.push(Column::new(c.as_str().into(), filled));
        }
    }
    let date_col: Vec<String> = kept.iter().map(|&i| dates[i].map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()).collect();
    let bin: Vec<&str> = {
        let src = cat_cols
            .iter()
            .find(|c| c.name().as_str() == schema::SOURCE)
            .and_then(|c| c.str().ok())
            .ok_or_else(|| Error::Csv { path: path.into(), message: "source column lost".into() })?;
        src.iter().map(|s| schema::bin_source(s.unwrap_or(""))).collect()
    };

    let mut columns = cat_cols;
    columns.extend(extra_cols);
    columns.push(Column::new(schema::DATE.into(), date_col));
    columns.extend(scaled_cols);
    columns.push(Column::new(schema::BIN_SOURCE.into(), bin));
    let gold = DataFrame::new(kept.len(), columns).map_err(polars_err)?;

    Ok(Cleaned {
        gold,
        preprocessing: Preprocessing {
            continuous: transforms,
            categorical_modes: modes,
            customer_code_missing: CUSTOMER_CODE_MISSING.into(),
        },
        outlier_summary,
        rows,
        min_date: dmin,
        max_date: dmax,
        missing_customer_code,
    })
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
        &serde_json::json!({ "min_date": c.min_date.to_string(), "max_date": c.max_date.to_string() }),
    )?;
    let mut s = String::from("column,count,missing,mean,min,max\n");
    for r in &c.outlier_summary {
        s.push_str(&format!("{},{},{},{},{},{}\n", r.column, r.count, r.missing, r.mean, r.min, r.max));
    }
    write_text(&out.path(&art::OUTLIER_SUMMARY), &s)?;
    let modes = &c.preprocessing.categorical_modes;
    let header: Vec<&str> = schema::CATEGORICAL.to_vec();
    let values: Vec<String> = header.iter().map(|k| csv_field(modes.get(*k).map(String::as_str).unwrap_or(""))).collect();
    write_text(&out.path(&art::CAT_MISSING_IMPUTE), &format!("{}\n{}\n", header.join(","), values.join(",")))?;
    art::write_json(&out.path(&art::SCALER), &c.preprocessing.scaler())?;
    art::write_json(&out.path(&art::PREPROCESSING), &c.preprocessing)?;

    let mut gold = c.gold.clone();
    let mut training = gold.drop(schema::BIN_SOURCE).map_err(|e| Error::Write { path: out.path(&art::TRAINING_DATA), source: e.into() })?;
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
