//! More than two classes: the wine table (3 classes, names as labels) and digits (10 classes,
//! integers as labels) from the examples, trained as their params say.

use std::path::{Path, PathBuf};
use std::process::Command;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::ModelResults;
use leadflow_core::Params;
use leadflow_mlflow::tracking::FileStore;
use leadflow_model::{Model, ModelKind};

use super::{python_with_xgboost, read_matrix, strip_run_ids};

fn example(name: &str) -> (PathBuf, Params) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    let params = Params::load(&dir.join("params.toml")).unwrap();
    (dir.join(format!("{name}.csv")), params)
}

/// Data + train into a fresh directory.
fn train(raw: &Path, params: &Params) -> (tempfile::TempDir, leadflow_train::Result<leadflow_train::Summary>) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("artifacts"));
    leadflow_data::run(raw, &layout, params).unwrap();
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    let r = leadflow_train::run(&layout, params, &store);
    (dir, r)
}

fn layout(dir: &tempfile::TempDir) -> Layout {
    Layout::new(dir.path().join("artifacts"))
}

#[test]
fn three_named_classes_train_both_models_with_class_probabilities() {
    let (raw, mut params) = example("wine");
    params.train.xgboost.n_candidates = 2;
    let (dir, r) = train(&raw, &params);
    r.unwrap();
    let l = layout(&dir);
    let y: Vec<String> = std::fs::read_to_string(l.path(&art::Y_TEST)).unwrap().lines().skip(1).map(String::from).collect();
    assert!(["0", "1", "2"].iter().all(|c| y.iter().any(|v| v == c)), "class indices in y_test");
    let x = read_matrix(&l.path(&art::X_TEST));
    for kind in [ModelKind::Xgboost, ModelKind::Logistic] {
        let p = Model::load(kind, &l.path(&kind.artifact())).unwrap().predict(&x).unwrap();
        assert_eq!(p.len(), 3 * x.n_rows, "{kind:?}: three probabilities per row");
        for row in p.chunks(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{kind:?}: {row:?} sums to 1");
        }
    }
    let results: ModelResults = art::read_json(&l.path(&art::MODEL_RESULTS), "r").unwrap();
    let xgb = &results.models[&ModelKind::Xgboost];
    assert_eq!(xgb.best_params["objective"], "multi:softprob");
    assert_eq!(xgb.test_report.classes.len(), 3);
    assert!(results.models[&ModelKind::Logistic].test_scores.accuracy > 0.9);
}

#[test]
fn ten_classes_are_deterministic_whatever_the_thread_count() {
    let (raw, mut params) = example("digits");
    params.train.logistic.max_iterations = 50;
    params.train.xgboost.n_estimators = 5;
    let (a, r) = train(&raw, &params);
    r.unwrap();
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (b, r) = one_thread.install(|| train(&raw, &params));
    r.unwrap();
    for a_ in [art::XGB_MODEL, art::LR_MODEL, art::X_TEST, art::Y_TEST] {
        assert!(std::fs::read(layout(&a).path(&a_)).unwrap() == std::fs::read(layout(&b).path(&a_)).unwrap(), "{} differs", a_.name);
    }
    let ra: serde_json::Value = art::read_json(&layout(&a).path(&art::MODEL_RESULTS), "r").unwrap();
    let rb: serde_json::Value = art::read_json(&layout(&b).path(&art::MODEL_RESULTS), "r").unwrap();
    assert_eq!(strip_run_ids(ra), strip_run_ids(rb));
}

#[test]
fn a_class_too_rare_for_the_folds_is_a_clear_error() {
    // Wine's smallest class has 48 rows (36 in training): 40 folds cannot all hold one.
    let (raw, mut params) = example("wine");
    params.train.logistic.cv_folds = 40;
    params.train.xgboost.enabled = false;
    let (dir, r) = train(&raw, &params);
    let err = r.unwrap_err().to_string();
    assert!(err.contains("40-fold cross-validation needs at least 40 training rows of each class") && err.contains("class 2"), "{err}");
    assert!(!layout(&dir).path(&art::MODEL_RESULTS).exists());
}

#[test]
fn python_xgboost_loads_a_multiclass_model_and_gives_the_same_probabilities() {
    let Some(py) = python_with_xgboost() else { return };
    let (raw, mut params) = example("wine");
    params.train.logistic.enabled = false;
    params.train.xgboost.n_candidates = 1;
    let (dir, r) = train(&raw, &params);
    r.unwrap();
    let l = layout(&dir);
    let script = r#"
import sys, csv, json
import numpy as np, xgboost as xgb
b = xgb.Booster()
b.load_model(sys.argv[1])
rows = list(csv.reader(open(sys.argv[2])))
X = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float32)
p = b.predict(xgb.DMatrix(X))
print(json.dumps({"shape": list(p.shape), "p": [float(v) for v in p.ravel()]}))
"#;
    let (model, x_test) = (l.path(&art::XGB_MODEL), l.path(&art::X_TEST));
    let out = Command::new(&py).args(["-c", script, model.to_str().unwrap(), x_test.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let x = read_matrix(&x_test);
    assert_eq!(theirs["shape"], serde_json::json!([x.n_rows, 3]));
    let ours = Model::load(ModelKind::Xgboost, &model).unwrap().predict(&x).unwrap();
    let theirs: Vec<f64> = serde_json::from_value(theirs["p"].clone()).unwrap();
    let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(max_diff < 1e-6, "probabilities differ by up to {max_diff}");
}
