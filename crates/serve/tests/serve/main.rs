//! Integration tests of leadflow-serve: batch scoring (`predict`) and checking (`validate`) of an
//! exported model directory, and the online server (`server`).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::path::PathBuf;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::{Deployment, Evaluation};
use leadflow_core::Params;
use leadflow_mlflow::tracking::FileStore;
use leadflow_serve::ValidationSpec;
use leadflow_testkit::quick_params as quick;

mod explain;
mod hardening;
mod inputs;
mod log;
mod server;
mod stream;

/// A generated sample taken through data, train and evaluate, in a temporary directory.
struct Env {
    dir: tempfile::TempDir,
    raw: PathBuf,
}

impl Env {
    /// ...and deployed: `artifacts/model` exported, `@challenger` registered in `mlruns`.
    fn deployed(params: &Params) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.csv");
        leadflow_data::generate::generate(&raw, 2500, 31).unwrap();
        let env = Env { dir, raw };
        leadflow_data::run(&env.raw, &env.layout(), params).unwrap();
        leadflow_train::run(&env.layout(), params, &env.store()).unwrap();
        leadflow_evaluate::run(&env.layout(), params, &env.store()).unwrap();
        env.deploy(params).unwrap();
        env
    }
    fn layout(&self) -> Layout {
        Layout::new(self.dir.path().join("artifacts"))
    }
    fn store(&self) -> FileStore {
        FileStore::open(self.dir.path().join("mlruns")).unwrap()
    }
    fn deploy(&self, params: &Params) -> leadflow_deploy::Result<Deployment> {
        leadflow_deploy::run(&self.layout(), params, &self.store())
    }
    fn evaluation(&self) -> Evaluation {
        art::read_json(&self.layout().path(&art::EVALUATION), "evaluation").unwrap()
    }
}

#[test]
fn predict_scores_raw_and_encoded_rows_identically() {
    let params = quick();
    let env = Env::deployed(&params);
    let md = leadflow_serve::ModelDir::open(&env.layout().model_dir()).unwrap();
    // Raw rows: the generator's file, scored with the saved preprocessing.
    let out = env.dir.path().join("raw_scores.csv");
    let n = leadflow_serve::predict(&env.layout().model_dir(), &env.raw, &out, leadflow_serve::InputKind::Auto).unwrap().rows;
    let raw_scores = leadflow_features::table::Table::read(&out).unwrap();
    assert_eq!(n, raw_scores.rows.len());
    assert_eq!(raw_scores.header, ["row", "lead_id", "probability", "label"]);
    // Gold rows are the same leads after the data stage: encoded the train way, they must score
    // the same as their raw rows (the saved preprocessing reproduces the data stage).
    let gold = leadflow_features::table::Table::read(&env.layout().path(&art::GOLD)).unwrap();
    let id_col = gold.column_index("lead_id").unwrap();
    let by_id: std::collections::HashMap<&str, f64> = raw_scores.rows.iter().map(|r| (r[1].as_str(), r[2].parse().unwrap())).collect();
    let mut m = leadflow_core::model::Matrix::new(md.features.n_features());
    for row in &gold.rows {
        let get = |c: &str| gold.column_index(c).map(|j| row[j].clone());
        m.push_row(&md.features.encode(&get, "gold").unwrap());
    }
    let encoded = md.model.predict(&m).unwrap();
    for (row, p) in gold.rows.iter().zip(&encoded) {
        let q = by_id[row[id_col].as_str()];
        assert!((p - q).abs() < 1e-9, "lead {}: encoded {p} vs raw {q}", row[id_col]);
    }
    // Encoded rows (X_test.csv shape) work too, and score as train's own model file does on
    // the matrix read directly (not through the model directory).
    let out2 = env.dir.path().join("x_scores.csv");
    leadflow_serve::predict(&env.layout().model_dir(), &env.layout().path(&art::X_TEST), &out2, leadflow_serve::InputKind::Auto).unwrap();
    let direct = train_model_probabilities(&env);
    let scored = leadflow_features::table::Table::read(&out2).unwrap();
    let p_col = scored.column_index("probability").unwrap();
    assert_eq!(scored.rows.len(), direct.len());
    for (r, q) in scored.rows.iter().zip(&direct) {
        let p: f64 = r[p_col].parse().unwrap();
        assert!((p - q).abs() < 1e-9, "encoded row {}: predict {p} vs the train model {q}", r[0]);
    }
    // Wrong columns are named.
    let bad = env.dir.path().join("bad.csv");
    std::fs::write(&bad, "purchases,n_visits\n1,2\n").unwrap();
    let err = leadflow_serve::predict(&env.layout().model_dir(), &bad, &out2, leadflow_serve::InputKind::Auto).unwrap_err().to_string();
    assert!(err.contains("bad.csv") && err.contains("time_spent") && err.contains("customer_group"), "{err}");
}

#[test]
fn validate_passes_on_the_test_split_and_lists_differing_rows_otherwise() {
    let params = quick();
    let env = Env::deployed(&params);
    let layout = env.layout();
    let (model, x, y) = (layout.model_dir(), layout.path(&art::X_TEST), layout.path(&art::Y_TEST));
    let spec = ValidationSpec { labels: Some(y), min_accuracy: Some(0.75), ..Default::default() };
    let ok = leadflow_serve::validate(&model, &x, &spec).unwrap();
    assert!(ok.passed, "{}", ok.to_text());
    assert_eq!(ok.rows_compared, ok.rows_scored);

    // Expected labels = what train's model file gives for the first 8 rows at the params
    // threshold (computed without the model directory), with two flipped.
    let preds: Vec<u8> = train_model_probabilities(&env).iter().map(|&p| u8::from(p >= params.evaluate.threshold.fixed())).collect();
    let mut wrong = preds[..8].to_vec();
    for i in [2, 5] {
        wrong[i] = 1 - preds[i];
    }
    let v = leadflow_serve::validate(&model, &x, &ValidationSpec { expected: Some(wrong), ..Default::default() }).unwrap();
    assert!(!v.passed);
    let text = v.to_text();
    assert!(text.contains("2 of 8 differ"), "{text}");
    let listed: Vec<usize> = text.lines().filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert_eq!(listed, vec![3, 6], "{text}");
    // The correct labels of the first rows pass.
    let right =
        leadflow_serve::validate(&model, &x, &ValidationSpec { expected: Some(preds[..8].to_vec()), ..Default::default() }).unwrap();
    assert!(right.passed, "{}", right.to_text());
}

/// Probabilities of the selected model on X_test, from train's model file and the matrix read
/// with the feature list train wrote: independent of the model directory and of `predict`.
fn train_model_probabilities(env: &Env) -> Vec<f64> {
    let layout = env.layout();
    let kind = env.evaluation().selected;
    let model = leadflow_model::Model::load(kind, &layout.path(&kind.artifact())).unwrap();
    let features: Vec<String> = art::read_json(&layout.path(&art::COLUMNS_LIST), "columns").unwrap();
    let x = layout.path(&art::X_TEST);
    let m = leadflow_features::table::Table::read(&x).unwrap().matrix(&x, &features).unwrap();
    model.predict(&m).unwrap()
}
