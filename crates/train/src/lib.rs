//! leadflow train stage: gold dataset -> XGBoost random forest and logistic regression, each
//! tuned by a reproducible randomized search with stratified CV, refit on the training split,
//! reported on the same test split, and tracked MLflow-style (one run per model).

pub mod boosted;
pub mod decide;
mod error;
pub mod learner;
pub mod logistic;
pub mod search;
pub mod xgboost;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use leadflow_core::artifacts::{self as art, Layout, StageDir, StageId};
use leadflow_core::meta::RunClock;
use leadflow_core::results::{ModelResult, ModelResults, SplitInfo};
use leadflow_core::split;
use leadflow_core::Params;
use leadflow_features::{FeatureSpec, Preprocessing};
use leadflow_metrics::{confusion, ClassificationReport, Scores};
use leadflow_mlflow::tracking::{MetricPoint, RunStatus, Tracker};
use leadflow_model::{Matrix, ModelKind};
use learner::Trained;
use polars::prelude::*;

pub use error::{Error, Result};

/// Every model kind, in the order they are trained and reported: one module each.
pub static LEARNERS: [&dyn learner::Learner; 3] = [&xgboost::Forest, &logistic::Logistic, &boosted::Boosted];

/// What the train stage reads: the gold data, the data version, `train` params, the evaluate
/// threshold (its test reports) and `tracking` (where its runs go).
pub const READS: leadflow_core::fingerprint::Reads = leadflow_core::fingerprint::Reads {
    stage: StageId::Train,
    artifacts: &[art::GOLD, art::PREPROCESSING],
    params: |p| serde_json::json!({ "train": p.train, "threshold": p.evaluate.threshold, "cost": p.evaluate.cost, "tracking": p.tracking }),
    data_version: true,
};

/// The encoded gold data.
pub struct Dataset {
    pub spec: FeatureSpec,
    pub x: Matrix,
    pub y: Vec<u8>,
    /// A key per row: the hash of its label, continuous values and categorical levels as read
    /// from the gold table (the same row gets the same key whatever the seed).
    pub keys: Vec<u64>,
}

/// Read the gold CSV and encode it as the data stage's saved preprocessing says (one-hot with or
/// without the first level, or ordinal). Only the columns the model uses are read, and values
/// are read in place (no copy per cell), so the load holds little more than polars' column
/// buffers and the encoded matrix.
pub fn load_gold(path: &Path, pre: &Preprocessing) -> Result<Dataset> {
    let gerr = |m: String| Error::Gold { path: path.into(), message: m };
    if !path.is_file() {
        return Err(leadflow_core::Error::MissingArtifact { path: path.into(), stage: "data" }.into());
    }
    let shape = leadflow_csv::check(path).map_err(leadflow_core::Error::from)?;
    let target = &pre.target.column;
    let continuous: Vec<&str> = pre.continuous.iter().map(|t| t.name.as_str()).collect();
    let needed: Vec<&str> =
        std::iter::once(target.as_str()).chain(pre.encoded.iter().map(String::as_str)).chain(continuous.iter().copied()).collect();
    if let Some(c) = needed.iter().find(|c| !shape.header.iter().any(|h| h == *c)) {
        return Err(gerr(format!("required column `{c}` is missing")));
    }
    let mut wanted: Vec<PlSmallStr> = Vec::new();
    for c in &needed {
        if !wanted.iter().any(|w| w.as_str() == *c) {
            wanted.push(PlSmallStr::from(*c));
        }
    }
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_columns(Some(wanted.into()))
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| Error::GoldCsv { path: path.into(), source: e })?;
    let col = |name: &str| -> Result<&StringChunked> {
        df.column(name).and_then(|c| c.str()).map_err(|_| gerr(format!("required column `{name}` is missing")))
    };
    fn values(c: &StringChunked) -> impl Iterator<Item = &str> {
        c.iter().map(|v| v.unwrap_or("").trim())
    }
    let n = df.height();
    if n == 0 {
        return Err(gerr("no rows; the data stage produced an empty gold dataset".into()));
    }
    let k = pre.target.n_classes();
    let y: Vec<u8> = values(col(target)?)
        .enumerate()
        .map(|(i, v)| match v.parse::<u8>() {
            Ok(c) if (c as usize) < k => Ok(c),
            _ => Err(gerr(format!("line {}, column `{target}`: expected a class index 0 to {}, found {v:?}", shape.line(i), k - 1))),
        })
        .collect::<Result<_>>()?;
    let cat_cols: Vec<&StringChunked> = pre.encoded.iter().map(|c| col(c)).collect::<Result<_>>()?;
    // The spec's levels are fitted on each column's distinct values.
    let categorical: Vec<(&str, Vec<String>)> = pre
        .encoded
        .iter()
        .zip(&cat_cols)
        .map(|(name, c)| {
            let distinct: std::collections::BTreeSet<&str> = values(c).collect();
            (name.as_str(), distinct.into_iter().map(String::from).collect())
        })
        .collect();
    let spec = FeatureSpec::fit(&continuous, &categorical, pre);
    let mut numeric = Vec::new();
    for &c in &continuous {
        let parsed: Vec<f64> = values(col(c)?)
            .enumerate()
            .map(|(i, s)| {
                leadflow_features::parse_finite(s)
                    .ok_or_else(|| gerr(format!("line {}, column `{c}`: expected a number, found {s:?}", shape.line(i))))
            })
            .collect::<Result<_>>()?;
        numeric.push(parsed);
    }
    let mut x = Matrix::new(spec.n_features());
    x.data.reserve(n * spec.n_features());
    let mut row = Vec::with_capacity(spec.n_features());
    let mut nums = Vec::with_capacity(numeric.len());
    let mut cats: Vec<&str> = Vec::with_capacity(cat_cols.len());
    let mut cat_values: Vec<_> = cat_cols.iter().map(|c| values(c)).collect();
    let mut keys = Vec::with_capacity(n);
    let mut key_bytes: Vec<u8> = Vec::new();
    for i in 0..n {
        row.clear();
        nums.clear();
        nums.extend(numeric.iter().map(|c| c[i]));
        cats.clear();
        cats.extend(cat_values.iter_mut().map(|c| c.next().unwrap_or("")));
        spec.encode_values(&nums, &cats, &mut row)
            .map_err(|u| gerr(format!("column `{}`: level {:?} missing from its own fit", u.column, u.value)))?;
        x.push_row(&row);
        key_bytes.clear();
        key_bytes.push(y[i]);
        nums.iter().for_each(|v| key_bytes.extend_from_slice(&v.to_le_bytes()));
        for c in &cats {
            key_bytes.extend_from_slice(c.as_bytes());
            key_bytes.push(0x1f);
        }
        keys.push(leadflow_core::hash::key64(&key_bytes));
    }
    Ok(Dataset { spec, x, y, keys })
}

/// Wall time of each part of one train run, in seconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    /// Reading and encoding the gold data, the split.
    pub load: f64,
    /// Each model kind's search and refit.
    pub search: BTreeMap<ModelKind, f64>,
    pub refit: BTreeMap<ModelKind, f64>,
    /// Wall time from the end of the first search to every model refitted: each refit runs
    /// beside the next search, so this is less than the sum of the rest.
    pub after_search: f64,
    /// Split CSVs, reports, tracking, metadata.
    pub writes: f64,
    /// Inside XGBoost's `update` calls, summed over threads (divide by the threads for the floor).
    pub xgboost_update_cpu: f64,
    /// Rayon threads the searches ran on.
    pub threads: usize,
}

/// What one run of the stage produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub timings: Timings,
    pub train_rows: usize,
    pub test_rows: usize,
    pub features: Vec<String>,
    pub models: BTreeMap<ModelKind, ModelSummary>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelSummary {
    pub cv_mean: f64,
    pub cv_std: f64,
    pub test_f1_weighted: f64,
    pub test_accuracy: f64,
    pub run_id: Option<String>,
    pub best_params: serde_json::Value,
}

fn write_text(path: &Path, s: &str) -> Result<()> {
    Ok(art::write_atomic(path, s.as_bytes())?)
}

/// Write rows of `x` as CSV, streamed (the file is inside the stage's temporary directory,
/// renamed with it): a 250k-row split never sits in memory as text.
fn write_x(path: &Path, names: &[String], x: &Matrix, rows: impl Iterator<Item = usize>) -> Result<()> {
    use std::io::Write;
    let _permit = art::write_permit();
    let werr = |e: std::io::Error| Error::Write { path: path.into(), source: e.into() };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(werr)?);
    let mut line = names.join(",");
    line.push('\n');
    w.write_all(line.as_bytes()).map_err(werr)?;
    for i in rows {
        line.clear();
        for (j, v) in x.row(i).iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            // Shortest representation that round-trips: deterministic and exact.
            let _ = write!(line, "{v}");
        }
        line.push('\n');
        w.write_all(line.as_bytes()).map_err(werr)?;
    }
    w.flush().map_err(werr)
}

fn write_y(path: &Path, target: &str, y: &[u8]) -> Result<()> {
    let mut s = format!("{target}\n");
    for v in y {
        let _ = writeln!(s, "{v}");
    }
    write_text(path, &s)
}

fn check_folds(model: &'static str, y: &[u8], k: usize, rows: &[usize], folds: usize) -> Result<()> {
    for class in 0..k as u8 {
        let found = rows.iter().filter(|&&i| y[i] == class).count();
        if found < folds {
            return Err(Error::TooFewRows { model, folds, class, found });
        }
    }
    Ok(())
}

/// Run the train stage: read `artifacts/data/`, write `artifacts/train/`, log to `tracker`.
pub fn run(layout: &Layout, params: &Params, tracker: &dyn Tracker) -> Result<Summary> {
    let clock = RunClock::start();
    let mut timings = Timings { threads: rayon::current_num_threads(), ..Default::default() };
    let update_before = leadflow_model::xgboost_update_seconds();
    let mut lap = Lap(std::time::Instant::now());
    // The gold data first: missing, it names the data stage.
    layout.require(&art::GOLD)?;
    let fp = leadflow_core::fingerprint::compute(&READS, layout, params, None, env!("CARGO_PKG_VERSION"))?;
    let data_meta = leadflow_core::meta::read(&layout.require(&art::DATA_META)?)?;
    let tp = &params.train;
    let learners: Vec<&dyn learner::Learner> = LEARNERS.iter().copied().filter(|l| l.enabled(tp)).collect();
    let Split { pre, spec, names, k, gold_rows, info, x_train, y_train, x_test, y_test, test_keys } = split(layout, params, &learners)?;
    timings.load = lap.take();

    let out = StageDir::begin(layout.stage_dir(StageId::Train))?;
    write_x(&out.path(&art::X_TRAIN), &names, &x_train, 0..x_train.n_rows)?;
    write_x(&out.path(&art::X_TEST), &names, &x_test, 0..x_test.n_rows)?;
    write_y(&out.path(&art::Y_TRAIN), &pre.target.column, &y_train)?;
    write_y(&out.path(&art::Y_TEST), &pre.target.column, &y_test)?;
    art::write_json(&out.path(&art::COLUMNS_LIST), &names)?;
    art::write_json(&out.path(&art::TEST_ROWS), &test_keys)?;
    art::write_json(&out.path(&art::FEATURE_SPEC), &spec)?;
    timings.writes += lap.take();

    let scoring = tp.scoring;
    let threshold = params.evaluate.threshold.fixed();
    let threshold_rule = !matches!(params.evaluate.threshold, leadflow_core::params::Threshold::Fixed(_));
    let set = learner::TrainSet {
        x: &x_train,
        y: &y_train,
        x_test: &x_test,
        features: &names,
        k,
        seed: tp.seed,
        scoring,
        threshold,
        threshold_rule,
        params: tp,
    };
    let mut trained = learner::train_all(&learners, &set, &out)?;
    // Calibration and threshold, fitted on each model's out-of-fold predictions; its train and
    // test probabilities are then calibrated as every later use will calibrate them.
    for (t, l) in trained.iter_mut().zip(&learners) {
        let Some(oof) = t.oof.take() else { continue };
        t.decision = decide::decide(&oof, &y_train, k, l.calibration(tp), &params.evaluate);
        if let Some(c) = t.decision.as_ref().and_then(|d| d.calibration.as_ref()) {
            c.apply(&mut t.train_proba);
            c.apply(&mut t.test_proba);
        }
    }
    for t in &trained {
        timings.search.insert(t.kind, t.seconds.0);
        timings.refit.insert(t.kind, t.seconds.1);
    }
    timings.after_search = lap.take() - trained.first().map_or(0.0, |t| t.seconds.0);

    // Reports: every model on the same train and test splits.
    let (mut results, text) = reports(&trained, info, scoring.name(), &y_train, &y_test, k, threshold);
    write_text(&out.path(&art::TRAIN_REPORTS), &text)?;

    // Tracking: one run per model. A failure marks the run FAILED and fails the stage before
    // anything is committed under artifacts/.
    track(tracker, params, &trained, &mut results, &out, &data_meta.data_version)?;
    art::write_json(&out.path(&art::MODEL_RESULTS), &results)?;

    let rows = [("gold", gold_rows), ("train", y_train.len()), ("test", y_test.len())].map(|(k, n)| (k.to_string(), n)).into();
    let mut meta = clock.finish(StageId::Train, env!("CARGO_PKG_VERSION"), data_meta.data_version.clone(), params.hash(), rows);
    meta.extra.insert("tracking_store".into(), tracker.location().into());
    art::write_json(&out.path(&art::TRAIN_META), &meta)?;
    leadflow_core::fingerprint::write(out.dir(), fp, None)?;
    out.commit()?;

    timings.writes += lap.take();
    timings.xgboost_update_cpu = leadflow_model::xgboost_update_seconds() - update_before;
    Ok(summary(timings, &results, names))
}

/// Every class of the target has rows (binary: both).
fn check_classes(gold_path: &Path, pre: &Preprocessing, y: &[u8]) -> Result<()> {
    let k = pre.target.n_classes();
    if k == 2 {
        for class in [0u8, 1] {
            if y.iter().all(|&v| v != class) {
                return Err(Error::OneClass {
                    path: gold_path.into(),
                    target: pre.target.column.clone(),
                    only: pre.target.labels[usize::from(1 - class)].clone(),
                });
            }
        }
    }
    if let Some(c) = (0..k).find(|&c| y.iter().all(|&v| v as usize != c)) {
        return Err(Error::Gold {
            path: gold_path.into(),
            message: format!(
                "class {:?} of `{}` has no rows; every declared class needs examples",
                pre.target.labels[c], pre.target.column
            ),
        });
    }
    Ok(())
}

/// Every model's classification reports and confusion matrices on the train and test splits:
/// the results artifact and the text report.
fn reports(
    trained: &[Trained],
    split: SplitInfo,
    scoring: &str,
    y_train: &[u8],
    y_test: &[u8],
    k: usize,
    threshold: f64,
) -> (ModelResults, String) {
    let mut results = ModelResults { split, scoring: scoring.into(), models: BTreeMap::new() };
    let mut text = String::new();
    for t in trained {
        let threshold = t.decision.as_ref().map_or(threshold, |d| d.threshold);
        let train_pred = leadflow_metrics::predict_classes(&t.train_proba, k, threshold);
        let test_pred = leadflow_metrics::predict_classes(&t.test_proba, k, threshold);
        let train_conf = confusion(y_train, &train_pred, k);
        let test_conf = confusion(y_test, &test_pred, k);
        let _ = write!(
            text,
            "== {} ==\nbest params: {}\nCV {} ({} folds): {:.4} ± {:.4}\n\n-- train split ({} rows) --\n{}\n{}\n-- test split ({} rows) --\n{}\n{}\n",
            t.kind.label(),
            t.best_params,
            t.cv.metric,
            t.cv.folds,
            t.cv.mean,
            t.cv.std,
            y_train.len(),
            ClassificationReport::from_confusion(&train_conf).to_text(),
            leadflow_metrics::confusion_text(&train_conf),
            y_test.len(),
            ClassificationReport::from_confusion(&test_conf).to_text(),
            leadflow_metrics::confusion_text(&test_conf),
        );
        results.models.insert(
            t.kind,
            ModelResult {
                file: t.kind.artifact().name.into(),
                run_id: None,
                best_params: t.best_params.clone(),
                cv: t.cv.clone(),
                search: t.search.clone(),
                test_report: ClassificationReport::from_confusion(&test_conf),
                test_confusion: test_conf,
                train_report: ClassificationReport::from_confusion(&train_conf),
                train_confusion: train_conf,
                test_scores: Scores::compute(y_test, &t.test_proba, k, threshold),
                decision: t.decision.clone(),
            },
        );
    }
    (results, text)
}

/// One tracking run per model: params, CV and test metrics, the model file and the feature spec
/// as artifacts. A failure marks that run FAILED and fails the stage.
fn track(
    tracker: &dyn Tracker,
    params: &Params,
    trained: &[Trained],
    results: &mut ModelResults,
    out: &StageDir,
    data_version: &str,
) -> Result<()> {
    let tp = &params.train;
    let exp = tracker.get_or_create_experiment(&params.tracking.experiment_name)?;
    leadflow_mlflow::tracking::reap_dead_runs(tracker, &exp)?;
    let git = leadflow_core::meta::git_commit();
    for t in trained {
        let r = results.models.get_mut(&t.kind).expect("every trained model is in the results");
        let mut tags = vec![
            (leadflow_core::names::STAGE_TAG.to_string(), "train".to_string()),
            (leadflow_core::names::MODEL_TAG.to_string(), t.kind.name().to_string()),
            (leadflow_core::names::DATA_VERSION_TAG.to_string(), data_version.to_string()),
            (leadflow_core::names::PARAMS_HASH_TAG.to_string(), params.hash()),
            (leadflow_mlflow::tracking::PID_TAG.to_string(), std::process::id().to_string()),
            (leadflow_mlflow::tracking::HOST_TAG.to_string(), leadflow_mlflow::tracking::hostname()),
        ];
        if let Some(g) = &git {
            tags.push(("mlflow.source.git.commit".into(), g.clone()));
        }
        let run_id = tracker.create_run(&exp, t.kind.name(), &tags)?;
        let logged = (|| -> Result<()> {
            let mut ps = t.tracked_params.clone();
            ps.push(("scoring".into(), tp.scoring.name().into()));
            ps.push(("seed".into(), tp.seed.to_string()));
            ps.push(("test_size".into(), tp.test_size.to_string()));
            ps.push(("threshold".into(), r.threshold(params.evaluate.threshold.fixed()).to_string()));
            if let Some(d) = &r.decision {
                ps.push(("threshold_rule".into(), d.rule.clone()));
                let method = d.calibration.as_ref().map_or("none", |c| c.method.name());
                ps.push(("calibration".into(), method.into()));
            }
            ps.push(("data_version".into(), data_version.to_string()));
            ps.push(("params_hash".into(), params.hash()));
            // One value per key (XGBoost's config already carries `seed`): MLflow rejects duplicates.
            let mut seen = std::collections::BTreeSet::new();
            ps.retain(|(k, _)| seen.insert(k.clone()));
            let mut ms = vec![
                MetricPoint::now(format!("cv_{}_mean", t.cv.metric), t.cv.mean),
                MetricPoint::now(format!("cv_{}_std", t.cv.metric), t.cv.std),
                MetricPoint::now("train_accuracy", r.train_report.accuracy),
                MetricPoint::now("train_f1_weighted", r.train_report.weighted_avg.f1),
            ];
            for (k, v) in r.test_scores.named() {
                ms.push(MetricPoint::now(format!("test_{k}"), v));
            }
            tracker.log_batch(&run_id, &ps, &ms, &[])?;
            tracker.log_artifact(&run_id, &out.path(&t.kind.artifact()), "model")?;
            tracker.log_artifact(&run_id, &out.path(&art::FEATURE_SPEC), "model")?;
            Ok(())
        })();
        if let Err(e) = logged {
            let _ = tracker.end_run(&run_id, RunStatus::Failed);
            return Err(e);
        }
        tracker.end_run(&run_id, RunStatus::Finished)?;
        r.run_id = Some(run_id);
    }
    Ok(())
}

fn summary(timings: Timings, results: &ModelResults, features: Vec<String>) -> Summary {
    Summary {
        timings,
        train_rows: results.split.train_rows,
        test_rows: results.split.test_rows,
        features,
        models: results
            .models
            .iter()
            .map(|(k, r)| {
                (
                    *k,
                    ModelSummary {
                        cv_mean: r.cv.mean,
                        cv_std: r.cv.std,
                        test_f1_weighted: r.test_report.weighted_avg.f1,
                        test_accuracy: r.test_report.accuracy,
                        run_id: r.run_id.clone(),
                        best_params: r.best_params.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// The encoded gold data split into training and test rows, checked for what every learner needs.
struct Split {
    pre: Preprocessing,
    spec: FeatureSpec,
    names: Vec<String>,
    k: usize,
    gold_rows: usize,
    info: SplitInfo,
    x_train: Matrix,
    y_train: Vec<u8>,
    x_test: Matrix,
    y_test: Vec<u8>,
    test_keys: Vec<String>,
}

fn split(layout: &Layout, params: &Params, learners: &[&dyn learner::Learner]) -> Result<Split> {
    let gold_path = layout.require(&art::GOLD)?;
    let pre: Preprocessing = art::read_json(&layout.require(&art::PREPROCESSING)?, "the data stage's preprocessing")?;
    let ds = load_gold(&gold_path, &pre)?;
    let names = ds.spec.feature_names();
    let k = pre.target.n_classes();
    check_classes(&gold_path, &pre, &ds.y)?;
    let tp = &params.train;
    let (train_rows, test_rows) = split::train_test_of(&ds.y, tp.test_size, tp.seed);
    for l in learners {
        check_folds(l.kind().name(), &ds.y, k, &train_rows, l.cv_folds(tp))?;
    }
    // The split copies only: the whole matrix is dropped here.
    let x_train = ds.x.select_rows(&train_rows);
    let x_test = ds.x.select_rows(&test_rows);
    let y_train = learner::pick(&ds.y, &train_rows);
    let y_test = learner::pick(&ds.y, &test_rows);
    tracing::info!("gold: {} rows, {} features; split {} train / {} test", ds.y.len(), names.len(), train_rows.len(), test_rows.len());
    let info = SplitInfo {
        train_rows: train_rows.len(),
        test_rows: test_rows.len(),
        test_size: tp.test_size,
        seed: tp.seed,
        features: names.clone(),
    };
    let test_keys = test_rows.iter().map(|&i| format!("{:016x}", ds.keys[i])).collect();
    Ok(Split { gold_rows: ds.y.len(), spec: ds.spec, pre, names, k, info, x_train, y_train, x_test, y_test, test_keys })
}

/// Seconds since the last lap.
struct Lap(std::time::Instant);

impl Lap {
    fn take(&mut self) -> f64 {
        let s = self.0.elapsed().as_secs_f64();
        self.0 = std::time::Instant::now();
        s
    }
}
