//! Integration tests of the train stage: outputs and tracking, determinism (also across thread
//! counts), quality on the real data, Python interop of the XGBoost model, and bad input.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod boosted;
mod multiclass;

use std::path::Path;
use std::process::Command;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::ModelResults;
use leadflow_core::Params;
use leadflow_mlflow::tracking::{FileStore, RunStatus, Tracker};
use leadflow_model::{Matrix, Model, ModelKind};
pub use leadflow_testkit::quick_params as quick;
use leadflow_testkit::real_data;

pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new(raw: Option<&Path>, rows: usize, params: &Params) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let raw = match raw {
            Some(r) => r.to_path_buf(),
            None => {
                let p = dir.path().join("raw.csv");
                leadflow_data::generate::generate(&p, rows, 5).unwrap();
                p
            }
        };
        leadflow_data::run(&raw, &Layout::new(dir.path().join("artifacts")), params).unwrap();
        Env { dir }
    }
    pub fn layout(&self) -> Layout {
        Layout::new(self.dir.path().join("artifacts"))
    }
    fn store(&self) -> FileStore {
        FileStore::open(self.dir.path().join("mlruns")).unwrap()
    }
    pub fn train(&self, params: &Params) -> leadflow_train::Result<leadflow_train::Summary> {
        leadflow_train::run(&self.layout(), params, &self.store())
    }
}

pub fn read_matrix(path: &Path) -> Matrix {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let n = lines.next().unwrap().split(',').count();
    let mut m = Matrix::new(n);
    for l in lines {
        let row: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
        m.push_row(&row);
    }
    m
}

#[test]
fn trains_every_model_kind_writes_the_contract_and_tracks_runs() {
    let mut params = quick();
    params.train.boosted.enabled = true;
    params.train.boosted.n_candidates = 3;
    params.train.boosted.cv_folds = 3;
    let env = Env::new(None, 3000, &params);
    let s = env.train(&params).unwrap();
    let layout = env.layout();
    for a in art::ALL.iter().filter(|a| a.stage == art::StageId::Train) {
        assert!(layout.path(a).is_file(), "{} missing", a.name);
    }
    let header = std::fs::read_to_string(layout.path(&art::X_TEST)).unwrap();
    let header = header.lines().next().unwrap();
    assert!(header.starts_with("purchases,time_spent,n_visits,customer_group_2"), "{header}");
    assert!(header.ends_with("onboarding_True"), "{header}");
    let cols: Vec<String> = art::read_json(&layout.path(&art::COLUMNS_LIST), "cols").unwrap();
    assert_eq!(cols.len(), 12);
    assert_eq!(header.split(',').count(), 12);

    let results: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "results").unwrap();
    assert_eq!(results.models.len(), 3);
    let n_test = std::fs::read_to_string(layout.path(&art::Y_TEST)).unwrap().lines().count() - 1;
    for (kind, r) in &results.models {
        // Every report on the same test split.
        assert_eq!(r.test_report.macro_avg.support, n_test, "{kind:?}");
        assert_eq!(r.cv.candidates, 3);
        assert!(r.test_report.weighted_avg.f1 > 0.6, "{kind:?} learns the signal: {}", r.test_report.weighted_avg.f1);
        let run = env.store().get_run(r.run_id.as_ref().unwrap()).unwrap();
        assert_eq!(run.status, RunStatus::Finished);
        assert_eq!(run.run_name, kind.name());
        assert!(run.params.contains_key("data_version"));
        assert!((run.metrics["test_f1_weighted"] - r.test_report.weighted_avg.f1).abs() < 1e-12);
        let artifact = run.artifact_uri.trim_start_matches("file://").to_string();
        assert!(Path::new(&artifact).join("model").join(kind.artifact().name).is_file());
    }
    assert_eq!(s.models.len(), 3);

    // The logistic model gives P(converted = 1): its coefficient on n_visits is positive.
    let lr: leadflow_core::model::LogisticModel = art::read_json(&layout.path(&art::LR_MODEL), "lr").unwrap();
    let i = lr.features.iter().position(|f| f == "n_visits").unwrap();
    assert!(lr.coefficients[i] > 0.0, "more visits -> more conversions");
    assert_eq!(lr.positive_class, 1);
}

pub fn strip_run_ids(mut v: serde_json::Value) -> serde_json::Value {
    for m in v["models"].as_object_mut().unwrap().values_mut() {
        m["run_id"] = serde_json::Value::Null;
    }
    v
}

#[test]
fn same_inputs_give_identical_models_and_metrics_whatever_the_thread_count() {
    let params = quick();
    let a = Env::new(None, 2000, &params);
    let b = Env::new(None, 2000, &params);
    a.train(&params).unwrap();
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    one_thread.install(|| b.train(&params)).unwrap();
    for art in [art::XGB_MODEL, art::LR_MODEL, art::X_TRAIN, art::X_TEST, art::Y_TRAIN, art::Y_TEST] {
        let x = std::fs::read(a.layout().path(&art)).unwrap();
        let y = std::fs::read(b.layout().path(&art)).unwrap();
        assert!(x == y, "{} differs between runs", art.name);
    }
    let ra: serde_json::Value = art::read_json(&a.layout().path(&art::MODEL_RESULTS), "r").unwrap();
    let rb: serde_json::Value = art::read_json(&b.layout().path(&art::MODEL_RESULTS), "r").unwrap();
    assert_eq!(strip_run_ids(ra), strip_run_ids(rb));

    // A different seed gives a different search.
    let mut other = params.clone();
    other.train.seed = 7;
    b.train(&other).unwrap();
    assert_ne!(std::fs::read(a.layout().path(&art::XGB_MODEL)).unwrap(), std::fs::read(b.layout().path(&art::XGB_MODEL)).unwrap());
}

#[test]
fn quality_targets_on_the_real_data() {
    let Some(raw) = real_data() else { return };
    let params = Params::default();
    let env = Env::new(Some(&raw), 0, &params);
    let s = env.train(&params).unwrap();
    assert_eq!((s.train_rows, s.test_rows), (2_496, 441));
    assert_eq!(s.features.len(), 12);
    let f1 = |s: &leadflow_train::Summary, k| s.models[&k].test_f1_weighted;
    eprintln!("seed 42: xgboost {:.4}, logistic {:.4}", f1(&s, ModelKind::Xgboost), f1(&s, ModelKind::Logistic));
    // One 441-row test split moves weighted F1 by about ±0.02, so the targets (XGBoost RF ≥ 0.80,
    // logistic regression ≥ 0.77) are checked on the mean over five seeds, and each seed must
    // stay within 0.03 of its target.
    let (mut xs, mut ls) = (vec![f1(&s, ModelKind::Xgboost)], vec![f1(&s, ModelKind::Logistic)]);
    for seed in [1, 2, 3, 4] {
        let mut p = params.clone();
        p.train.seed = seed;
        let s = env.train(&p).unwrap();
        eprintln!("seed {seed}: xgboost {:.4}, logistic {:.4}", f1(&s, ModelKind::Xgboost), f1(&s, ModelKind::Logistic));
        xs.push(f1(&s, ModelKind::Xgboost));
        ls.push(f1(&s, ModelKind::Logistic));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&xs) >= 0.80, "XGBoost RF mean weighted F1 {:.4} < 0.80 ({xs:?})", mean(&xs));
    assert!(mean(&ls) >= 0.77, "logistic mean weighted F1 {:.4} < 0.77 ({ls:?})", mean(&ls));
    assert!(xs.iter().all(|&v| v >= 0.77), "{xs:?}");
    assert!(ls.iter().all(|&v| v >= 0.74), "{ls:?}");
}

/// The Python that has xgboost: `LEADFLOW_PYTHON`, else `python3` if it imports xgboost.
pub fn python_with_xgboost() -> Option<String> {
    let candidates: Vec<String> = std::env::var("LEADFLOW_PYTHON").ok().into_iter().chain(["python3".to_string()]).collect();
    for py in candidates {
        let ok = Command::new(&py).args(["-c", "import xgboost"]).output().map(|o| o.status.success()).unwrap_or(false);
        if ok {
            return Some(py);
        }
    }
    leadflow_testkit::skip("a Python with xgboost (set LEADFLOW_PYTHON; ./ci.sh sets up target/py)");
    None
}

#[test]
fn python_xgboost_loads_the_model_and_gives_the_same_probabilities() {
    let Some(py) = python_with_xgboost() else { return };
    let params = quick();
    let env = Env::new(None, 3000, &params);
    env.train(&params).unwrap();
    let layout = env.layout();
    let model_path = layout.path(&art::XGB_MODEL);
    let x_test = layout.path(&art::X_TEST);
    let script = r#"
import sys, csv, json
import numpy as np, xgboost as xgb
b = xgb.Booster()
b.load_model(sys.argv[1])
rows = list(csv.reader(open(sys.argv[2])))
X = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float32)
p = b.predict(xgb.DMatrix(X, feature_names=rows[0]) if b.feature_names else xgb.DMatrix(X))
print(json.dumps([float(v) for v in p]))
"#;
    let out = Command::new(&py).args(["-c", script, model_path.to_str().unwrap(), x_test.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<f64> = serde_json::from_slice(&out.stdout).unwrap();
    let ours = Model::load(ModelKind::Xgboost, &model_path).unwrap().predict(&read_matrix(&x_test)).unwrap();
    assert_eq!(theirs.len(), ours.len());
    let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b.clamp(0.0, 1.0)).abs()).fold(0.0, f64::max);
    assert!(max_diff < 1e-6, "probabilities differ by up to {max_diff}");
}

#[test]
fn missing_gold_names_the_data_stage() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    let err = leadflow_train::run(&Layout::new(dir.path().join("artifacts")), &quick(), &store).unwrap_err().to_string();
    assert!(err.contains("train_data_gold.csv") && err.contains("`data` stage"), "{err}");
    assert!(!dir.path().join("artifacts/train").exists());
}

/// Replace the gold file of a fresh data run, train, expect an error containing `needle`, and
/// check that artifacts/train and the tracking store were not touched.
fn assert_gold_rejected(edit: impl Fn(&str) -> String, params: &Params, needle: &str) {
    let env = Env::new(None, 1500, params);
    let gold = env.layout().path(&art::GOLD);
    let text = std::fs::read_to_string(&gold).unwrap();
    std::fs::write(&gold, edit(&text)).unwrap();
    let err = env.train(params).unwrap_err().to_string();
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!env.layout().stage_dir(art::StageId::Train).exists(), "nothing half-written");
    let store = env.store();
    let runs: usize = ["1", "2"].iter().map(|e| store.search_runs(e).unwrap().len()).sum();
    assert_eq!(runs, 0, "no tracking run for a failed stage");
}

#[test]
fn malformed_gold() {
    assert_gold_rejected(|t| t.replacen("0.", "zero.", 1), &quick(), "expected a number");
    assert_gold_rejected(|t| t.replace("customer_group", "cg"), &quick(), "`customer_group` is missing");
}

#[test]
fn target_with_one_class_only() {
    assert_gold_rejected(
        |t| {
            let mut lines = t.lines();
            let mut out = format!("{}\n", lines.next().unwrap());
            for l in lines {
                let mut f: Vec<&str> = l.split(',').collect();
                f[1] = "0";
                out.push_str(&f.join(","));
                out.push('\n');
            }
            out
        },
        &quick(),
        "only one class",
    );
}

#[test]
fn fewer_rows_than_folds() {
    let mut p = quick();
    p.train.xgboost.cv_folds = 500;
    assert_gold_rejected(|t| t.to_string(), &p, "500-fold cross-validation needs at least 500");
}

#[test]
fn zero_search_budget_is_a_params_error() {
    let err = Params::from_toml("[train.logistic]\nn_candidates = 0\n").unwrap_err().to_string();
    assert!(err.contains("train.logistic.n_candidates"), "{err}");
    let err = Params::from_toml("[train.xgboost]\nenabled = false\n[train.logistic]\nenabled = false\n").unwrap_err().to_string();
    assert!(err.contains("switches off every model"), "{err}");
}

#[test]
fn either_model_can_be_switched_off() {
    let mut p = quick();
    p.train.xgboost.enabled = false;
    let env = Env::new(None, 1500, &p);
    let s = env.train(&p).unwrap();
    assert_eq!(s.models.keys().copied().collect::<Vec<_>>(), vec![ModelKind::Logistic]);
    assert!(!env.layout().path(&art::XGB_MODEL).exists());
}

#[test]
fn a_table_of_ones_own_trains_with_its_encoding_split_and_fixed_hyperparameters() {
    // The churn example's params on generated churn rows: preprocessing fitted on train's own
    // training split, ordinal encoding, one fixed forest.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/churn");
    let mut params = Params::load(&examples.join("params.toml")).unwrap();
    params.train.logistic.n_candidates = 2;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("churn.csv");
    leadflow_data::generate::churn(&raw, 1500, 3).unwrap();
    let layout = Layout::new(dir.path().join("artifacts"));
    leadflow_data::run(&raw, &layout, &params).unwrap();
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    leadflow_train::run(&layout, &params, &store).unwrap();

    let features: Vec<String> = art::read_json(&layout.path(&art::COLUMNS_LIST), "f").unwrap();
    assert_eq!(features, ["Age", "Tenure", "MonthlyCharges", "TotalCharges", "Contract", "PaymentMethod", "PaperlessBilling"]);
    let column = |a: &art::Artifact, name: &str| -> Vec<f64> {
        let t = leadflow_features::table::Table::read(&layout.path(a)).unwrap();
        let j = t.column_index(name).unwrap();
        t.rows.iter().map(|r| r[j].parse().unwrap()).collect()
    };
    // Standard scaling was fitted on exactly the rows train uses for training.
    let tenure = column(&art::X_TRAIN, "Tenure");
    let n = tenure.len() as f64;
    let m = tenure.iter().sum::<f64>() / n;
    let var = tenure.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    assert!(m.abs() < 1e-9 && (var - 1.0).abs() < 1e-9, "X_train Tenure: mean {m}, var {var}");
    // Ordinal codes: the index of each contract in the sorted level list.
    let codes = column(&art::X_TRAIN, "Contract");
    assert!(codes.iter().all(|c| [0.0, 1.0, 2.0].contains(c)) && codes.contains(&2.0));
    // One fixed candidate, exactly the params' values.
    let results: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "r").unwrap();
    let xgb = &results.models[&ModelKind::Xgboost];
    assert_eq!(xgb.search.as_array().unwrap().len(), 1);
    let best = &xgb.best_params;
    assert_eq!((best["max_depth"].as_u64(), best["learning_rate"].as_f64(), best["subsample"].as_f64()), (Some(10), Some(1.0), Some(0.8)));
    assert_eq!(
        (results.split.train_rows + results.split.test_rows, results.split.test_size),
        (column(&art::X_TEST, "Age").len() + tenure.len(), 0.2)
    );
}

#[test]
fn a_logistic_tolerance_stops_the_solver_earlier() {
    // The default (1e-4 per row, scikit-learn's) against a loose one: the solver stops earlier,
    // a different, still fitted model (loose, to make the stop certain).
    let mut params = quick();
    params.train.xgboost.enabled = false;
    let env = Env::new(None, 2000, &params);
    env.train(&params).unwrap();
    let default = std::fs::read(env.layout().path(&art::LR_MODEL)).unwrap();
    params.train.logistic.tolerance = 0.05;
    let s = env.train(&params).unwrap();
    let loose = std::fs::read(env.layout().path(&art::LR_MODEL)).unwrap();
    assert_ne!(default, loose, "the tolerance reached the solver");
    assert!(s.models[&ModelKind::Logistic].test_accuracy > 0.6, "{:?}", s.models[&ModelKind::Logistic]);
}
