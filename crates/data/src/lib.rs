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
mod scan;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use leadflow_core::artifacts::{self as art, Layout, StageDir, StageId};
use leadflow_core::dataset::{self, DatasetParams, FitOn, Impute, Outliers, Processing, Role, Scaling};
use leadflow_core::fingerprint;
use leadflow_core::meta::RunClock;
use leadflow_core::Params;
use leadflow_features::{CategoricalFill, ContinuousTransform, Preprocessing, Scale, Target};

pub use error::{Error, Result};
use scan::{parse_date, Scan, TextColumn};

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
    pub gold: Gold,
    pub preprocessing: Preprocessing,
    pub outlier_summary: Vec<OutlierRow>,
    pub roles: Vec<ColumnRole>,
    pub rows: BTreeMap<String, usize>,
    pub min_date: Option<NaiveDate>,
    pub max_date: Option<NaiveDate>,
    pub missing: BTreeMap<String, usize>,
    /// The kept rows' profile per model input, before any fill or transform (drift checks).
    pub reference: leadflow_drift::Reference,
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
    let mut counts: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
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
fn infer_role(col: &TextColumn, numeric_levels_max: usize) -> (Role, String) {
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
    if values.iter().all(|v| leadflow_features::parse_finite(v).is_some()) {
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
fn resolve_roles(ds: &DatasetParams, scan: &Scan) -> Result<Vec<ColumnRole>> {
    let mut out = Vec::new();
    for (j, name) in scan.header.iter().enumerate() {
        let name = name.to_string();
        let (role, inferred) = match (ds.listed_role(&name), scan.every_row[j].as_ref()) {
            (Some(r), _) => (r, None),
            (None, Some(col)) => {
                let (r, why) = infer_role(col, ds.numeric_levels_max);
                (r, Some(why))
            }
            (None, None) => (Role::Ignored, Some("not listed in params (dataset.infer = false): carried along, not a feature".into())),
        };
        out.push(ColumnRole { column: name, role, inferred });
    }
    Ok(out)
}

/// Validate and clean the raw file (no output written).
pub fn clean(path: &Path, params: &Params, today: NaiveDate) -> Result<Cleaned> {
    let ds = &params.dataset;
    let (min, max) = params.date_window(today);
    let mut scan = scan::scan(path, ds, (min, max))?;
    let mut rows = BTreeMap::new();
    rows.insert("raw".to_string(), scan.records);
    let roles = resolve_roles(ds, &scan)?;
    let RoleColumns { continuous, booleans, ignored, raw_categorical, encoded } = role_columns(ds, &roles);

    // Inferred columns were kept for every row; from here on only the candidates' rows count.
    for (j, r) in roles.iter().enumerate() {
        if let Some(all) = scan.every_row[j].take() {
            if r.role != Role::Dropped {
                scan.text[j] = Some(all.select(&scan.index));
            }
        }
    }
    let cols = Columns { header: &scan.header, text: &scan.text, path };
    let text = |name: &str| cols.text(name);
    let mut problems = std::mem::replace(&mut scan.problems, scan::Problems::new());

    // --- classes -----------------------------------------------------------------------------
    let classes = scan.classes.clone();
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
    // Values of inferred continuous columns: every one is a number (that is how it was inferred).
    let mut numeric = std::mem::take(&mut scan.numeric);
    for c in &continuous[ds.continuous.len()..] {
        numeric.push(text(c)?.iter().map(|v| v.and_then(|s| leadflow_features::parse_finite(s.trim()))).collect());
    }

    check_filters(&scan, ds, &mut problems, &mut rows, path, (min, max))?;
    let m = scan.lines.len();
    let mut kept: Vec<usize> = (0..m).collect();
    if ds.processing.drop_duplicates {
        let kept_cols: Vec<&TextColumn> =
            roles.iter().filter(|c| c.role != Role::Dropped).map(|c| text(&c.column)).collect::<Result<_>>()?;
        let mut seen = std::collections::HashSet::new();
        kept.retain(|&i| seen.insert(kept_cols.iter().map(|c| c.get(i).map(str::trim).unwrap_or("")).collect::<Vec<&str>>()));
        rows.insert("after_drop_duplicates".into(), kept.len());
    }
    rows.insert("gold".into(), kept.len());

    let y: Vec<u8> = kept.iter().map(|&i| scan.target[i]).collect();
    let target_info = Target::of(ds, &classes);
    let kept_rows = KeptRows { kept: &kept, lines: &scan.lines, cols: &cols };
    check_rules(&mut problems, ds, &kept_rows, &y, &target_info.labels, &continuous, &numeric, &roles)?;
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

    let fitted = fit_columns(ds, &kept_rows, &fit, &continuous, &numeric, &raw_categorical, &booleans, &ignored)?;
    let Fits { transforms, outlier_summary, scaled_cols, fills, cat_cols, missing } = fitted;
    let gold = gold_columns(path, ds, &scan, &kept_rows, &y, cat_cols, scaled_cols)?;
    let preprocessing = Preprocessing {
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
    };
    let reference = drift_reference(&preprocessing, &kept_rows, &continuous, &numeric)?;
    Ok(Cleaned { gold, preprocessing, outlier_summary, roles, rows, min_date: scan.min_date, max_date: scan.max_date, missing, reference })
}

/// The kept rows' raw values of every model input (what serving reads), profiled for drift
/// checks: continuous columns as parsed numbers, the others as text (booleans as true/false).
fn drift_reference(
    pre: &Preprocessing,
    rows: &KeptRows<'_>,
    continuous: &[String],
    numeric: &[Vec<Option<f64>>],
) -> Result<leadflow_drift::Reference> {
    let mut columns = Vec::new();
    for name in pre.raw_inputs() {
        if let Some(values) = continuous.iter().position(|c| c == name).and_then(|j| numeric.get(j)) {
            columns.push(leadflow_drift::Column::continuous(name, rows.kept.iter().map(|&i| values[i])));
        } else {
            let boolean = pre.categorical.iter().any(|f| f.name == name && f.boolean);
            let col = rows.cols.text(name)?;
            columns.push(leadflow_drift::Column::categorical(name, boolean, rows.kept.iter().map(|&i| col.get(i))));
        }
    }
    Ok(leadflow_drift::Reference { rows: rows.kept.len(), columns, prediction: None })
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

/// The gold table, columns in gold order; the last `derived` columns are derived (the training
/// data is the gold table without them).
pub struct Gold {
    columns: Vec<(String, GoldColumn)>,
    derived: usize,
    rows: usize,
}

enum GoldColumn {
    Text(TextColumn),
    Number(Vec<f64>),
}

impl Gold {
    /// Column names, in gold order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Write the training data (without derived columns) and the gold table, formatting each
    /// row once. The format is polars' CSV writer's (the data stage's writer before): floats
    /// in their shortest round-trip form by `zmij` (what polars uses), strings quoted only when
    /// they hold a comma, quote or line break (an empty string as `""`), `\n` line endings.
    fn write(&self, training: &Path, gold: &Path) -> Result<()> {
        use std::io::Write;
        // Streamed, not atomic: the files are inside the stage's temporary directory, renamed
        // with it.
        let _permit = art::write_permit();
        let create = |p: &Path| -> Result<std::io::BufWriter<std::fs::File>> {
            let f = std::fs::File::create(p).map_err(|e| Error::Write { path: p.into(), source: e.into() })?;
            Ok(std::io::BufWriter::with_capacity(1 << 20, f))
        };
        let (mut t, mut g) = (create(training)?, create(gold)?);
        fn write_err(p: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
            move |e| Error::Write { path: p.into(), source: e.into() }
        }
        let kept = self.columns.len() - self.derived;
        let mut line: Vec<u8> = Vec::with_capacity(1024);
        let mut number = zmij::Buffer::new();
        for i in 0..=self.rows {
            line.clear();
            for (k, (name, c)) in self.columns.iter().enumerate() {
                if k == kept {
                    line.push(b'\n');
                    t.write_all(&line).map_err(write_err(training))?;
                    line.pop();
                }
                if k > 0 {
                    line.push(b',');
                }
                match (i, c) {
                    (0, _) => push_csv_text(&mut line, name),
                    (_, GoldColumn::Text(c)) => push_csv_text(&mut line, c.get(i - 1).unwrap_or("")),
                    (_, GoldColumn::Number(v)) => line.extend_from_slice(number.format(v[i - 1]).as_bytes()),
                }
            }
            line.push(b'\n');
            if self.derived == 0 {
                t.write_all(&line).map_err(write_err(training))?;
            }
            g.write_all(&line).map_err(write_err(gold))?;
        }
        t.flush().map_err(write_err(training))?;
        g.flush().map_err(write_err(gold))
    }
}

/// A CSV field as polars writes it (quote style "necessary").
fn push_csv_text(line: &mut Vec<u8>, s: &str) {
    if s.is_empty() {
        line.extend_from_slice(b"\"\"");
    } else if memchr::memchr3(b',', b'\n', b'\r', s.as_bytes()).is_some() || s.contains('"') {
        line.push(b'"');
        line.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        line.push(b'"');
    } else {
        line.extend_from_slice(s.as_bytes());
    }
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
    art::write_json(&out.path(&art::SCALER), &leadflow_features::scaler_json(&c.preprocessing.continuous))?;
    art::write_json(&out.path(&art::ROLES), &c.roles)?;
    art::write_json(&out.path(&art::PREPROCESSING), &c.preprocessing)?;
    art::write_json(&out.path(&art::DRIFT_REFERENCE), &c.reference)?;

    let names = c.gold.names();
    art::write_json(&out.path(&art::COLUMNS_DRIFT), &names[..names.len() - c.gold.derived])?;
    c.gold.write(&out.path(&art::TRAINING_DATA), &out.path(&art::GOLD))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The columns the pass read, by name.
struct Columns<'a> {
    header: &'a [String],
    text: &'a [Option<TextColumn>],
    path: &'a Path,
}

impl<'a> Columns<'a> {
    fn text(&self, name: &str) -> Result<&'a TextColumn> {
        self.header
            .iter()
            .position(|h| h == name)
            .and_then(|j| self.text[j].as_ref())
            .ok_or_else(|| Error::Csv { path: self.path.into(), message: format!("column `{name}` is not read (it is dropped or absent)") })
    }
}

/// The rows the stage keeps (indices into the pass's candidates) and their file lines.
struct KeptRows<'a> {
    kept: &'a [usize],
    lines: &'a [u64],
    cols: &'a Columns<'a>,
}

/// What each filter left (applied as the file was read): a step that left nothing fails with
/// the problems found so far, or says which step and why.
fn check_filters(
    scan: &Scan,
    ds: &DatasetParams,
    problems: &mut scan::Problems,
    rows: &mut BTreeMap<String, usize>,
    path: &Path,
    (min, max): (NaiveDate, NaiveDate),
) -> Result<()> {
    let fail_filtered = |problems: &mut scan::Problems, step: &'static str, hint: String| -> Error {
        std::mem::replace(problems, scan::Problems::new()).into_error(path).unwrap_or(Error::AllFiltered { path: path.into(), step, hint })
    };
    if let Some(after) = scan.after_date {
        rows.insert("after_date_filter".into(), after);
        if after == 0 {
            return Err(fail_filtered(
                problems,
                "the date window",
                format!("no {} within [{min}, {max}] (params dataset.min_date / dataset.max_date)", ds.date),
            ));
        }
    }
    rows.insert("after_target_filter".into(), scan.after_target);
    if scan.after_target == 0 {
        let what = if ds.id.is_empty() { format!("an empty {}", ds.target) } else { format!("an empty {} or {}", ds.target, ds.id) };
        return Err(fail_filtered(problems, "dropping unlabelled rows", format!("every row left has {what}")));
    }
    for (f, &after) in ds.filters.iter().zip(&scan.after_filter) {
        if after == 0 {
            return Err(fail_filtered(
                problems,
                "a filter",
                format!("no labelled row has {} in {:?} (params dataset.filters)", f.column, f.equals),
            ));
        }
    }
    if let Some(&after) = scan.after_filter.last() {
        rows.insert("after_filters".into(), after);
    }
    Ok(())
}

/// The params' validation rules on the kept rows (row counts, classes, ranges, allowed values,
/// missing shares): every violation is added to `problems`.
#[allow(clippy::too_many_arguments)]
fn check_rules(
    problems: &mut scan::Problems,
    ds: &DatasetParams,
    rows: &KeptRows<'_>,
    y: &[u8],
    labels: &[String],
    continuous: &[String],
    numeric: &[Vec<Option<f64>>],
    roles: &[ColumnRole],
) -> Result<()> {
    let v = &ds.validation;
    let kept = rows.kept;
    let line = |i: usize| rows.lines[i];
    let text = |name: &str| rows.cols.text(name);
    if kept.len() < v.min_rows {
        problems.summary("", format!("{} rows after filtering, validation.min_rows requires at least {}", kept.len(), v.min_rows));
    }
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
        for &i in kept {
            if let Some(x) = numeric[j][i] {
                if x < *lo || x > *hi {
                    problems.at(c, &format!("outside the allowed range [{lo}, {hi}]"), line(i), &x.to_string());
                }
            }
        }
    }
    for (c, allowed) in &v.allowed {
        let col = text(c)?;
        let what = format!("not one of the allowed values ({})", allowed.join(", "));
        for &i in kept {
            if let Some(s) = col.get(i).map(str::trim).filter(|s| !s.is_empty()) {
                if !allowed.iter().any(|a| a == s) {
                    problems.at(c, &what, line(i), s);
                }
            }
        }
    }
    if !v.max_missing.is_empty() {
        for r in roles.iter().filter(|r| r.role != Role::Dropped) {
            let Some(&max) = v.max_missing.get(&r.column).or_else(|| v.max_missing.get("*")) else { continue };
            let col = text(&r.column)?;
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
    Ok(())
}

/// Each column fitted on the fit rows and applied to the kept rows.
struct Fits {
    transforms: Vec<ContinuousTransform>,
    outlier_summary: Vec<OutlierRow>,
    scaled_cols: Vec<(String, GoldColumn)>,
    fills: Vec<CategoricalFill>,
    cat_cols: Vec<(String, GoldColumn)>,
    missing: BTreeMap<String, usize>,
}

/// Continuous columns: clip, summarise, impute, scale; categorical, boolean and carried-along
/// ones: fill and mode. Each column is fitted on its own, side by side.
#[allow(clippy::too_many_arguments)]
fn fit_columns(
    ds: &DatasetParams,
    rows: &KeptRows<'_>,
    fit: &[usize],
    continuous: &[String],
    numeric: &[Vec<Option<f64>>],
    raw_categorical: &[String],
    booleans: &[String],
    ignored: &[String],
) -> Result<Fits> {
    let kept = rows.kept;
    let text = |name: &str| rows.cols.text(name);
    enum Fitted {
        Continuous(ContinuousTransform, OutlierRow, Vec<f64>),
        Categorical(CategoricalFill, usize, TextColumn),
    }
    let categorical: Vec<(&String, bool, bool)> = raw_categorical
        .iter()
        .map(|c| (c, false, true))
        .chain(booleans.iter().map(|c| (c, true, true)))
        .chain(ignored.iter().map(|c| (c, false, false)))
        .collect();
    let fit_one = |job: usize| -> Result<Fitted> {
        if let Some((c, values)) = continuous.get(job).zip(numeric.get(job)) {
            let (t, row) = fit_continuous(c, &fit.iter().map(|&i| values[i]).collect::<Vec<_>>(), &ds.processing);
            // The gold values are the fitted transform applied to the raw values, exactly as
            // serving applies it to new rows.
            let scaled: Vec<f64> = kept.iter().map(|&i| t.apply(values[i])).collect();
            return Ok(Fitted::Continuous(t, row, scaled));
        }
        let (c, boolean, feature) = categorical[job - continuous.len()];
        let col = text(c)?;
        let fill = ds.fill.get(c).cloned();
        let missing = kept.iter().filter(|&&i| col.get(i).is_none_or(|s| s.trim().is_empty())).count();
        // The mode is fitted on the values present (after a constant fill), then every cell is
        // filled by the same rule serving applies (`CategoricalFill::apply`).
        let present = fit.iter().filter_map(|&i| {
            let v = col.get(i).map(str::trim).filter(|s| !s.is_empty()).or(fill.as_deref())?;
            if boolean {
                dataset::parse_bool(v).map(|b| if b { "true" } else { "false" })
            } else {
                Some(v).filter(|v| !v.is_empty())
            }
        });
        let mode = mode(present).unwrap_or_default();
        let f = CategoricalFill { name: c.clone(), mode, fill, boolean, feature };
        let filled = TextColumn::collect(kept.iter().map(|&i| f.apply_ref(col.get(i)).unwrap_or_default()));
        Ok(Fitted::Categorical(f, missing, filled))
    };
    let fitted: Vec<Result<Fitted>> = {
        use rayon::prelude::*;
        (0..continuous.len() + categorical.len()).into_par_iter().map(fit_one).collect()
    };
    let (mut transforms, mut outlier_summary, mut scaled_cols) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fills, mut cat_cols, mut missing) = (Vec::new(), Vec::new(), BTreeMap::new());
    for f in fitted {
        match f? {
            Fitted::Continuous(t, row, scaled) => {
                outlier_summary.push(row);
                scaled_cols.push((t.name.clone(), GoldColumn::Number(scaled)));
                transforms.push(t);
            }
            Fitted::Categorical(f, n, filled) => {
                missing.insert(f.name.clone(), n);
                cat_cols.push((f.name.clone(), GoldColumn::Text(filled)));
                fills.push(f);
            }
        }
    }
    Ok(Fits { transforms, outlier_summary, scaled_cols, fills, cat_cols, missing })
}

/// The gold table, in its column order: id, target, categorical and boolean, carried-along,
/// date, continuous, derived.
fn gold_columns(
    path: &Path,
    ds: &DatasetParams,
    scan: &Scan,
    rows: &KeptRows<'_>,
    y: &[u8],
    cat_cols: Vec<(String, GoldColumn)>,
    scaled_cols: Vec<(String, GoldColumn)>,
) -> Result<Gold> {
    let kept = rows.kept;
    let text = |name: &str| rows.cols.text(name);
    let mut derived_cols = Vec::new();
    for d in &ds.derive {
        let src = cat_cols.iter().find_map(|(name, c)| match c {
            GoldColumn::Text(t) if *name == d.from => Some(t),
            _ => None,
        });
        let src = src.ok_or_else(|| Error::Csv {
            path: path.into(),
            message: format!("`{}` (the source of derived `{}`) is not a categorical column", d.from, d.name),
        })?;
        let vals = TextColumn::collect((0..src.len()).map(|i| d.apply(src.get(i).unwrap_or(""))));
        derived_cols.push((d.name.clone(), GoldColumn::Text(vals)));
    }

    // Gold order: id, target, categorical and boolean, carried-along, date, continuous, derived.
    let mut columns = Vec::new();
    if !ds.id.is_empty() {
        let ids = text(&ds.id)?;
        columns.push((ds.id.clone(), GoldColumn::Text(TextColumn::collect(kept.iter().map(|&i| ids.get(i).unwrap_or("").trim())))));
    }
    let class_text: Vec<String> = (0..=u8::MAX).map(|c| c.to_string()).collect();
    columns.push((ds.target.clone(), GoldColumn::Text(TextColumn::collect(y.iter().map(|&c| class_text[c as usize].as_str())))));
    columns.extend(cat_cols);
    if let Some(dates) = &scan.dates {
        // Few distinct dates: each formatted once.
        let mut text: HashMap<NaiveDate, String> = HashMap::new();
        for &i in kept {
            text.entry(dates[i]).or_insert_with(|| dates[i].format("%Y-%m-%d").to_string());
        }
        columns.push((ds.date.clone(), GoldColumn::Text(TextColumn::collect(kept.iter().map(|&i| text[&dates[i]].as_str())))));
    }
    columns.extend(scaled_cols);
    let derived = derived_cols.len();
    columns.extend(derived_cols);
    Ok(Gold { columns, derived, rows: kept.len() })
}

/// The columns of each role, listed in params first and then inferred, in the order they are
/// fitted and encoded.
struct RoleColumns {
    continuous: Vec<String>,
    booleans: Vec<String>,
    ignored: Vec<String>,
    /// Categorical features read from the file (not derived): listed, then inferred.
    raw_categorical: Vec<String>,
    /// The encoding order: listed categorical (derived included), booleans, inferred categorical.
    encoded: Vec<String>,
}

fn role_columns(ds: &DatasetParams, roles: &[ColumnRole]) -> RoleColumns {
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
    RoleColumns { continuous, booleans, ignored, raw_categorical, encoded }
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
