//! Using an exported model directory: `predict` scores a CSV, `validate` checks predictions
//! against expected labels and/or a minimum accuracy.

use std::fmt::Write as _;
use std::path::Path;

use leadflow_core::artifacts::{self as art};
use leadflow_core::results::DeployedModel;
use leadflow_features::table::Table;
use leadflow_features::{FeatureSpec, Preprocessing};
use leadflow_model::{Matrix, Model};

use crate::error::{Error, Result};

/// What the rows of an input CSV are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InputKind {
    /// Decided by the columns; refused when both readings fit.
    #[default]
    Auto,
    /// Rows of the table the model was trained on, cleaned with the saved preprocessing.
    Raw,
    /// Encoded feature rows (the shape of `artifacts/train/X_test.csv`).
    Encoded,
}

/// A loaded model directory.
#[derive(Debug)]
pub struct ModelDir {
    pub spec: DeployedModel,
    pub model: Model,
    pub features: FeatureSpec,
    pub preprocessing: Preprocessing,
    /// The training table's ranges and levels (none for a directory exported before leadflow
    /// saved a reference).
    pub inputs: Option<crate::inputs::Watch>,
    /// The training rows' feature means (the logistic model's contributions are centred on
    /// them); none for a directory exported before leadflow saved them.
    pub means: Option<Vec<f64>>,
}

/// Per-row contributions to the margin, per input column (one-hot levels summed).
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub columns: Vec<String>,
    /// Row-major, `columns.len()` a row.
    pub values: Vec<f64>,
    pub bias: Vec<f64>,
}

impl Explanation {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.columns.len()..(i + 1) * self.columns.len()]
    }
}

impl ModelDir {
    pub fn open(dir: &Path) -> Result<ModelDir> {
        if !dir.is_dir() {
            return Err(Error::Input {
                path: dir.to_path_buf(),
                message:
                    "no model directory here: a pipeline run exports one only when it promotes a model (its deploy/deployment.json says \
                          why not); give --model-dir, or serve the registry's version with --model name@alias"
                        .into(),
            });
        }
        let need = |name: &str| -> Result<std::path::PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::Input { path: p, message: "missing from the model directory (run the deploy stage to export it)".into() })
            }
        };
        let spec: DeployedModel = art::read_json(&need(art::MODEL_SPEC.name)?, "a model description")?;
        let model = Model::load(spec.kind, &need(&spec.file)?)?;
        let features: FeatureSpec = art::read_json(&need(art::FEATURE_SPEC.name)?, "a feature spec")?;
        let preprocessing: Preprocessing = art::read_json(&need(art::PREPROCESSING.name)?, "preprocessing")?;
        let reference = dir.join(art::MODEL_REFERENCE.name);
        let inputs = if reference.is_file() {
            let r: leadflow_drift::Reference = art::read_json(&reference, "a drift reference")?;
            Some(crate::inputs::Watch::new(&r))
        } else {
            None
        };
        let explain = dir.join(art::MODEL_EXPLAIN.name);
        let means = if explain.is_file() {
            let v: serde_json::Value = art::read_json(&explain, "feature means")?;
            v["feature_means"].as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        } else {
            None
        };
        Ok(ModelDir { spec, model, features, preprocessing, inputs, means })
    }

    /// Turn a table into model features: already-encoded rows (`X_test.csv` shape) are used as
    /// they are; raw-schema rows go through the saved preprocessing and encoding. With
    /// [`InputKind::Auto`] the columns decide; when both readings fit (feature names equal to raw
    /// column names, e.g. only continuous features or ordinal encoding) the caller must say which.
    pub fn features_of(&self, table: &Table, path: &Path, kind: InputKind) -> Result<Matrix> {
        let names = &self.spec.features;
        let raw_needed = self.preprocessing.raw_inputs();
        let missing_enc: Vec<&str> = names.iter().map(String::as_str).filter(|f| table.column_index(f).is_none()).collect();
        let missing_raw: Vec<&str> = raw_needed.iter().copied().filter(|c| table.column_index(c).is_none()).collect();
        let encoded = match kind {
            InputKind::Encoded => true,
            InputKind::Raw => false,
            InputKind::Auto if missing_enc.is_empty() && missing_raw.is_empty() => {
                return Err(Error::Input {
                    path: path.into(),
                    message: "its columns fit both raw rows and encoded features (this model's feature names are raw column names); \
                              say which with --input-kind raw or --input-kind encoded"
                        .into(),
                });
            }
            InputKind::Auto => missing_enc.is_empty(),
        };
        if encoded {
            if !missing_enc.is_empty() {
                return Err(Error::Input {
                    path: path.into(),
                    message: format!("as encoded features it lacks column(s) {}", missing_enc.join(", ")),
                });
            }
            return Ok(table.matrix(path, names)?);
        }
        if !missing_raw.is_empty() {
            return Err(Error::Input {
                path: path.into(),
                message: format!(
                    "neither encoded features nor raw rows of the training schema: as encoded rows it lacks column(s) {}; as raw rows it lacks column(s) {}",
                    missing_enc.join(", "),
                    missing_raw.join(", ")
                ),
            });
        }
        let mut m = Matrix::new(names.len());
        for (i, row) in table.rows.iter().enumerate() {
            let get = |c: &str| table.column_index(c).map(|j| row[j].clone());
            let encode = |label: &str| -> leadflow_core::error::Result<Vec<f64>> {
                let cleaned = self.preprocessing.apply_raw(&get, label)?;
                let get_clean = |c: &str| cleaned.get(c).cloned();
                self.features.encode(&get_clean, label)
            };
            // The row's place is written out only for an error (the same error, named).
            let x = match encode("") {
                Ok(x) => x,
                Err(_) => encode(&format!("{} {}", path.display(), table.place(i)))?,
            };
            m.push_row(&x);
        }
        Ok(m)
    }

    /// Each row's contributions to the margin per input column, and the bias (binary models):
    /// XGBoost's TreeSHAP, or the logistic model's coefficient x (value - training mean); one-hot
    /// levels of a column are summed, so a row's values and bias add up to its margin.
    pub fn explain_matrix(&self, x: &Matrix) -> Result<Explanation> {
        let c = self.model.contributions(x, self.means.as_deref())?;
        let (columns, index) = self.explain_columns();
        let mut values = vec![0.0; x.n_rows * columns.len()];
        for i in 0..x.n_rows {
            for (j, v) in c.row(i).iter().enumerate() {
                values[i * columns.len() + index[j]] += v;
            }
        }
        Ok(Explanation { columns, values, bias: c.bias })
    }

    /// The input columns explanations are given for (one-hot levels of a column summed), and
    /// for each model feature the column it belongs to.
    pub fn explain_columns(&self) -> (Vec<String>, Vec<usize>) {
        let mut columns: Vec<String> = Vec::new();
        let index = self
            .features
            .feature_columns()
            .iter()
            .map(|c| match columns.iter().position(|k| k == c) {
                Some(i) => i,
                None => {
                    columns.push(c.clone());
                    columns.len() - 1
                }
            })
            .collect();
        (columns, index)
    }

    pub fn predict_table(&self, table: &Table, path: &Path, kind: InputKind) -> Result<Vec<f64>> {
        self.probabilities(&self.features_of(table, path, kind)?)
    }

    /// The model's probabilities of `x`, calibrated as saved with it (`model.json`).
    pub fn probabilities(&self, x: &Matrix) -> Result<Vec<f64>> {
        let mut p = self.model.predict(x)?;
        if let Some(c) = &self.spec.calibration {
            c.apply(&mut p);
        }
        Ok(p)
    }
}

/// What `predict` did: rows scored, and the inputs unlike training's.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub rows: usize,
    pub inputs: crate::inputs::InputReport,
}

/// How `predict` reads and scores a file.
#[derive(Debug, Clone, Copy)]
pub struct PredictOptions {
    pub kind: InputKind,
    /// Add each row's contributions per input column (binary models).
    pub explain: bool,
    /// Rows read and scored at a time by one thread: memory holds about `2 x threads` chunks.
    pub chunk_rows: usize,
    /// Threads scoring chunks side by side (one more reads the file).
    pub threads: usize,
}

/// Rows a thread scores at a time unless told otherwise.
pub const CHUNK_ROWS: usize = 8_192;

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            kind: InputKind::Auto,
            explain: false,
            chunk_rows: CHUNK_ROWS,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Score `input` and write to `output`: `row,[id,]probability,label` (binary: P(positive),
/// label 0/1), or `row,[id,]label,p_<class>...` (multiclass: the predicted class's name and one
/// probability per class).
pub fn predict(model_dir: &Path, input: &Path, output: &Path, kind: InputKind) -> Result<Scored> {
    predict_with(model_dir, input, output, kind, false)
}

/// [`predict`], with `explain`: each row's contributions per input column and the bias as
/// `contribution_<column>` ... `contribution_bias` columns (binary models).
pub fn predict_with(model_dir: &Path, input: &Path, output: &Path, kind: InputKind, explain: bool) -> Result<Scored> {
    let md = ModelDir::open(model_dir)?;
    predict_stream(&md, input, output, &PredictOptions { kind, explain, ..Default::default() }, &mut |_| {})
}

/// [`predict`] as a stream: `input` (CSV, or Parquet by its extension) is read a chunk at a time
/// on one thread while `options.threads` threads score the chunks before it; chunks are written
/// in input order to a temporary file beside `output`, renamed into place only when every row
/// was scored (a bad row leaves no output). Memory is bounded by the chunks in flight, whatever
/// the file's size. `progress` hears the rows written so far.
pub fn predict_stream(
    md: &ModelDir,
    input: &Path,
    output: &Path,
    options: &PredictOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Scored> {
    use std::io::Write as _;
    let mut chunks = leadflow_features::table::TableChunks::open(input)?;
    let layout = Layout::of(md, chunks.header(), options.explain)?;
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |e: std::io::Error| Error::Input { path: output.into(), message: format!("cannot write: {e}") };
    let tmp = tempfile::NamedTempFile::new_in(parent).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    out.write_all(layout.header().as_bytes()).map_err(io)?;
    let threads = options.threads.max(1);
    let mut scored = Scored { rows: 0, inputs: Default::default() };
    std::thread::scope(|scope| -> Result<()> {
        let (send, receive) = std::sync::mpsc::sync_channel::<Result<Table>>(threads);
        let chunk_rows = options.chunk_rows.max(1);
        scope.spawn(move || loop {
            let next = chunks.next_chunk(chunk_rows).map_err(Error::from).transpose();
            let stop = !matches!(next, Some(Ok(_)));
            if next.is_none_or(|n| send.send(n).is_err()) || stop {
                break;
            }
        });
        let mut batch: Vec<Table> = Vec::with_capacity(threads);
        let mut done = false;
        while !done {
            batch.clear();
            while batch.len() < threads {
                match receive.recv() {
                    Ok(t) => batch.push(t?),
                    Err(_) => {
                        done = true;
                        break;
                    }
                }
            }
            let mut first = scored.rows;
            let starts: Vec<usize> = batch
                .iter()
                .map(|t| {
                    first += t.rows.len();
                    first - t.rows.len()
                })
                .collect();
            let results: Vec<Result<(Vec<u8>, crate::inputs::InputReport)>> = std::thread::scope(|s| {
                let handles: Vec<_> = batch
                    .iter()
                    .zip(&starts)
                    .map(|(t, &start)| {
                        let layout = &layout;
                        s.spawn(move || layout.score(md, t, input, options.kind, start))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| panic!("scoring a chunk of {} panicked", input.display())))
                    .collect()
            });
            for (r, t) in results.into_iter().zip(&batch) {
                let (bytes, inputs) = r?;
                out.write_all(&bytes).map_err(io)?;
                scored.rows += t.rows.len();
                scored.inputs.merge(&inputs);
            }
            if !batch.is_empty() {
                progress(scored.rows);
            }
        }
        Ok(())
    })?;
    out.flush().map_err(io)?;
    drop(out);
    tmp.as_file().sync_all().map_err(io)?;
    art::persist(tmp, output)?;
    Ok(scored)
}

/// What `predict` writes: the columns, decided once from the model and the input's header.
struct Layout {
    /// The id column's index in the input, and its name.
    id: Option<(usize, String)>,
    /// Class names (multiclass), else none.
    classes: Option<Vec<String>>,
    /// Contribution columns (`--explain`, binary models).
    explain: Option<Vec<String>>,
    threshold: f64,
}

impl Layout {
    fn of(md: &ModelDir, header: &[String], explain: bool) -> Result<Layout> {
        let id = md.preprocessing.id.as_deref().and_then(|name| Some((header.iter().position(|h| h == name)?, name.to_string())));
        let target = &md.preprocessing.target;
        let classes = (target.n_classes() > 2).then(|| target.labels.clone());
        if explain && classes.is_some() {
            return Err(Error::Validation(format!(
                "--explain gives contributions to a binary model's margin; this model has {} classes",
                target.n_classes()
            )));
        }
        let explain = explain.then(|| md.explain_columns().0);
        Ok(Layout { id, classes, explain, threshold: md.spec.threshold })
    }

    fn header(&self) -> String {
        let mut s = "row,".to_string();
        if let Some((_, name)) = &self.id {
            let _ = write!(s, "{name},");
        }
        match &self.classes {
            Some(labels) => {
                s.push_str("label");
                for l in labels {
                    let _ = write!(s, ",p_{l}");
                }
            }
            None => s.push_str("probability,label"),
        }
        if let Some(columns) = &self.explain {
            for c in columns {
                let _ = write!(s, ",contribution_{c}");
            }
            s.push_str(",contribution_bias");
        }
        s.push('\n');
        s
    }

    /// One chunk's output lines (rows numbered from `start + 1`) and its unusual inputs.
    fn score(
        &self,
        md: &ModelDir,
        table: &Table,
        path: &Path,
        kind: InputKind,
        start: usize,
    ) -> Result<(Vec<u8>, crate::inputs::InputReport)> {
        let x = md.features_of(table, path, kind)?;
        let p = md.probabilities(&x)?;
        let explanation = if self.explain.is_some() { Some(md.explain_matrix(&x)?) } else { None };
        let inputs = md.inputs.as_ref().map(|w| w.inspect(table, None)).unwrap_or_default();
        let mut s = String::with_capacity(table.rows.len() * 48);
        let id = |s: &mut String, i: usize| {
            if let Some((j, _)) = &self.id {
                let _ = write!(s, "{},", table.rows[i][*j]);
            }
        };
        if let Some(labels) = &self.classes {
            let k = labels.len();
            let pred = leadflow_metrics::predict_classes(&p, k, self.threshold);
            for (i, (row, c)) in p.chunks(k).zip(&pred).enumerate() {
                let _ = write!(s, "{},", start + i + 1);
                id(&mut s, i);
                s.push_str(&labels[*c as usize]);
                for v in row {
                    let _ = write!(s, ",{v}");
                }
                s.push('\n');
            }
            return Ok((s.into_bytes(), inputs));
        }
        for (i, v) in p.iter().enumerate() {
            let _ = write!(s, "{},", start + i + 1);
            id(&mut s, i);
            let _ = write!(s, "{v},{}", u8::from(*v >= self.threshold));
            if let Some(e) = &explanation {
                for c in e.row(i) {
                    let _ = write!(s, ",{c}");
                }
                let _ = write!(s, ",{}", e.bias[i]);
            }
            s.push('\n');
        }
        Ok((s.into_bytes(), inputs))
    }
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct ValidationSpec {
    /// Expected labels of the first rows, given inline.
    pub expected: Option<Vec<u8>>,
    /// A labels CSV with the target column as 0/1 (e.g. `y_test.csv`).
    pub labels: Option<std::path::PathBuf>,
    /// How many leading rows to compare (default: all rows for accuracy, 10 for exact checks).
    pub rows: Option<usize>,
    /// With labels: accuracy over the compared rows must reach this.
    pub min_accuracy: Option<f64>,
    /// What the feature CSV's rows are.
    pub input: InputKind,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Mismatch {
    pub row: usize,
    pub expected: u8,
    pub predicted: u8,
    pub probability: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Validation {
    pub rows_scored: usize,
    pub rows_compared: usize,
    pub accuracy: Option<f64>,
    pub mismatches: Vec<Mismatch>,
    pub passed: bool,
    pub checks: Vec<String>,
}

impl Validation {
    /// A readable account, with the differing rows.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let _ = writeln!(s, "{c}");
        }
        if !self.passed && !self.mismatches.is_empty() {
            let _ = writeln!(s, "{:>6}  {:>8}  {:>9}  {:>11}", "row", "expected", "predicted", "probability");
            for m in self.mismatches.iter().take(50) {
                let _ = writeln!(s, "{:>6}  {:>8}  {:>9}  {:>11.4}", m.row, m.expected, m.predicted, m.probability);
            }
            if self.mismatches.len() > 50 {
                let _ = writeln!(s, "... and {} more", self.mismatches.len() - 50);
            }
        }
        s
    }
}

/// Predict `features` with the model directory and check the result.
pub fn validate(model_dir: &Path, features: &Path, spec: &ValidationSpec) -> Result<Validation> {
    if spec.expected.is_none() && spec.labels.is_none() {
        return Err(Error::Validation("nothing to check: give expected labels (--expected) or a labels file (--labels)".into()));
    }
    let md = ModelDir::open(model_dir)?;
    let table = Table::read(features)?;
    let p = md.predict_table(&table, features, spec.input)?;
    let k = md.preprocessing.target.n_classes();
    let pred: Vec<u8> = leadflow_metrics::predict_classes(&p, k, md.spec.threshold);
    // The probability shown for a row: of class 1 (binary), of the predicted class (multiclass).
    let shown: Vec<f64> = if k == 2 { p.clone() } else { p.chunks(k).zip(&pred).map(|(r, &c)| r[c as usize]).collect() };
    let (expected, exact) = match (&spec.expected, &spec.labels) {
        (Some(e), _) => {
            if let Some(bad) = e.iter().find(|&&v| v as usize >= k) {
                return Err(Error::Validation(format!("expected labels are class indices 0 to {}, found {bad}", k - 1)));
            }
            (e.clone(), spec.min_accuracy.is_none())
        }
        (None, Some(l)) => (Table::read(l)?.labels(l, &md.preprocessing.target.column, k)?, spec.min_accuracy.is_none()),
        (None, None) => unreachable!("checked above"),
    };
    let default_rows = if exact && spec.expected.is_none() { 10 } else { expected.len() };
    let n = spec.rows.unwrap_or(default_rows).min(expected.len());
    if n > pred.len() {
        return Err(Error::Validation(format!("{n} expected labels but only {} rows in {}", pred.len(), features.display())));
    }
    let mismatches: Vec<Mismatch> = (0..n)
        .filter(|&i| pred[i] != expected[i])
        .map(|i| Mismatch { row: i + 1, expected: expected[i], predicted: pred[i], probability: shown[i] })
        .collect();
    let accuracy = (n > 0).then(|| 1.0 - mismatches.len() as f64 / n as f64);
    let mut checks = Vec::new();
    let mut passed = true;
    if exact {
        let ok = mismatches.is_empty();
        passed &= ok;
        checks.push(format!(
            "exact labels, first {n} rows: {}",
            if ok { "all match".to_string() } else { format!("{} of {n} differ", mismatches.len()) }
        ));
    }
    if let Some(min) = spec.min_accuracy {
        let acc = accuracy.unwrap_or(0.0);
        let ok = acc >= min;
        passed &= ok;
        checks.push(format!("accuracy over {n} rows: {acc:.4} (minimum {min}): {}", if ok { "ok" } else { "TOO LOW" }));
    }
    Ok(Validation { rows_scored: pred.len(), rows_compared: n, accuracy, mismatches, passed, checks })
}
