//! Gradient-boosted trees: early stopping and the saved model against Python xgboost's
//! `XGBClassifier` fitted on the same rows with the same candidate.

use std::process::Command;

use leadflow_core::artifacts as art;
use leadflow_core::results::ModelResults;
use leadflow_model::{Model, ModelKind};

use super::{python_with_xgboost, read_matrix, Env};

/// argv: params JSON, x_train, y_train, fit rows, watched rows, x_test. Prints the best number
/// of rounds and the test rows' probabilities.
const XGB_CLASSIFIER: &str = r#"
import sys, json
import numpy as np, xgboost as xgb
p = json.loads(sys.argv[1])
load = lambda f: np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2)
X, y, X_test = load(sys.argv[2]), load(sys.argv[3])[:, 0].astype(int), load(sys.argv[6])
fit, watch = json.loads(sys.argv[4]), json.loads(sys.argv[5])
m = xgb.XGBClassifier(n_estimators=p["max_rounds"], early_stopping_rounds=p["early_stopping_rounds"], eval_metric="logloss",
                      tree_method="hist", base_score=0.5, n_jobs=1, random_state=p["seed"], learning_rate=p["learning_rate"],
                      max_depth=p["max_depth"], min_child_weight=p["min_child_weight"], subsample=p["subsample"],
                      colsample_bytree=p["colsample_bytree"], reg_lambda=p["reg_lambda"])
m.fit(X[fit].astype(np.float32), y[fit], eval_set=[(X[watch].astype(np.float32), y[watch])], verbose=False)
print(json.dumps({"rounds": m.best_iteration + 1, "proba": m.predict_proba(X_test.astype(np.float32))[:, 1].tolist()}))
"#;

#[test]
fn boosted_trees_stop_early_and_equal_python_xgbclassifier_on_the_same_rows_and_candidate() {
    let mut params = leadflow_testkit::boosted_only_params();
    // The XGBoost linked here (1.6.2, xgboost-rs-sys) and Python's (3.x) draw row and column
    // samples from different random streams: trees agree only without sampling, so the oracle
    // fixes both at 1 (the rest of the space is drawn).
    params.train.boosted.subsample = leadflow_core::params::Space::Fixed(1.0);
    params.train.boosted.colsample_bytree = leadflow_core::params::Space::Fixed(1.0);
    let env = Env::new(None, 3000, &params);
    let s = env.train(&params).unwrap();
    let layout = env.layout();
    let results: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "r").unwrap();
    let best = &results.models[&ModelKind::Boosted].best_params;
    let rounds = best["rounds"].as_u64().unwrap() as usize;
    assert!(rounds >= 1 && rounds < params.train.boosted.max_rounds, "stopped early at {rounds} rounds");
    assert!(s.models[&ModelKind::Boosted].test_accuracy > 0.6, "{:?}", s.models[&ModelKind::Boosted]);

    let Some(py) = python_with_xgboost() else { return };
    let y: Vec<u8> = std::fs::read_to_string(layout.path(&art::Y_TRAIN)).unwrap().lines().skip(1).map(|l| l.parse().unwrap()).collect();
    let all: Vec<usize> = (0..y.len()).collect();
    let (fit, watch) = leadflow_train::boosted::holdout(&y, &all, &params.train.boosted, params.train.seed);
    let mut p = best.clone();
    let b = &params.train.boosted;
    p["max_rounds"] = b.max_rounds.into();
    p["early_stopping_rounds"] = b.early_stopping_rounds.into();
    p["seed"] = params.train.seed.into();
    let out = Command::new(&py)
        .args(["-c", XGB_CLASSIFIER, &p.to_string()])
        .arg(layout.path(&art::X_TRAIN))
        .arg(layout.path(&art::Y_TRAIN))
        .args([serde_json::to_string(&fit).unwrap(), serde_json::to_string(&watch).unwrap()])
        .arg(layout.path(&art::X_TEST))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs["rounds"].as_u64().unwrap() as usize, rounds, "the same best round");
    let ours = Model::load(ModelKind::Boosted, &layout.path(&art::BOOSTED_MODEL))
        .unwrap()
        .predict(&read_matrix(&layout.path(&art::X_TEST)))
        .unwrap();
    let theirs: Vec<f64> = serde_json::from_value(theirs["proba"].clone()).unwrap();
    let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(max_diff < 1e-6, "XGBClassifier's probabilities differ by up to {max_diff}");
}
