//! leadflow-model's errors keep their causes typed: serde_json's for a model file that is not
//! the JSON it should be, XGBoost's for a file XGBoost refuses, and a width mismatch as such.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::error::Error as _;

use leadflow_model::{Error, Matrix, Model, ModelKind, XgbModel};

#[test]
fn a_logistic_file_of_the_wrong_shape_keeps_serde_jsons_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model_logistic.json");
    std::fs::write(&path, r#"{"features": ["a"], "coefficients": "not numbers"}"#).unwrap();
    let err = Model::load(ModelKind::Logistic, &path).unwrap_err();
    assert!(matches!(&err, Error::Core(leadflow_core::Error::Json { .. })), "{err:?}");
    let json = err.source().and_then(|s| s.downcast_ref::<serde_json::Error>()).unwrap();
    assert!(json.is_data() && json.to_string().contains("invalid type"), "{json}");
    let text = leadflow_core::error::chain(&err);
    assert!(text.contains("model_logistic.json") && text.contains("a logistic regression model"), "{text}");
}

#[test]
fn a_json_file_xgboost_refuses_keeps_xgboosts_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model_xgboost.json");
    std::fs::write(&path, r#"{"learner": "not a booster"}"#).unwrap();
    let err = XgbModel::load(&path).map(|_| ()).unwrap_err();
    assert!(matches!(&err, Error::XgboostFile { what: "load", .. }), "{err:?}");
    assert!(err.source().is_some_and(|s| s.is::<xgboost_rs::XGBError>()), "{err:?}");
}

/// P = σ(0.1 + 0.5·a - 0.25·b), loaded from its file.
fn logistic() -> Model {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model_logistic.json");
    let model = serde_json::json!({
        "features": ["a", "b"], "coefficients": [0.5, -0.25], "intercept": 0.1,
        "classes": [0, 1], "positive_class": 1, "params": {}
    });
    std::fs::write(&path, model.to_string()).unwrap();
    Model::load(ModelKind::Logistic, &path).unwrap()
}

#[test]
fn rows_of_another_width_are_refused_by_count() {
    let m = logistic();
    let mut x = Matrix::new(3);
    x.push_row(&[1.0, 2.0, 3.0]);
    let err = m.predict(&x).unwrap_err();
    assert!(matches!(err, Error::Width { expected: 2, got: 3, .. }), "{err:?}");
    let mut x = Matrix::new(2);
    x.push_row(&[1.0, 2.0]);
    let p = m.predict(&x).unwrap();
    assert!((p[0] - leadflow_model::sigmoid(0.1 + 0.5 - 0.5)).abs() < 1e-15);
}

/// A small binary table: y depends on the first two columns, the third is noise.
fn table(n: usize) -> (Matrix, Vec<u8>) {
    let mut x = Matrix::new(3);
    let mut y = Vec::new();
    for i in 0..n {
        let (a, b, c) = ((i % 17) as f64 / 17.0, ((i * 7) % 13) as f64 / 13.0, ((i * 31) % 11) as f64);
        x.push_row(&[a, b, c]);
        y.push(u8::from(a + 0.5 * b > 0.6));
    }
    (x, y)
}

#[test]
fn xgboost_contributions_add_up_to_the_margin_and_equal_python_xgboosts() {
    let (x, y) = table(300);
    let config: Vec<(String, String)> = [
        ("objective", "binary:logistic"),
        ("max_depth", "3"),
        ("num_parallel_tree", "8"),
        ("subsample", "0.8"),
        ("colsample_bynode", "0.8"),
        ("learning_rate", "1"),
        ("tree_method", "hist"),
        ("seed", "3"),
        ("nthread", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let m = XgbModel::fit_one_round(&x, &y, &config).unwrap();
    let c = m.contributions(&x).unwrap();
    let margin = m.margin(&x).unwrap();
    for (i, m) in margin.iter().enumerate() {
        let sum: f64 = c.row(i).iter().sum::<f64>() + c.bias[i];
        assert!((sum - m).abs() < 1e-4, "row {i}: {sum} vs margin {m}");
    }
    let Some(py) = leadflow_testkit::python_with("xgboost") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    m.save(&path).unwrap();
    let rows: Vec<Vec<f64>> = (0..x.n_rows).map(|i| x.row(i).to_vec()).collect();
    std::fs::write(dir.path().join("x.json"), serde_json::to_string(&rows).unwrap()).unwrap();
    let script = r#"
import json, sys
import numpy as np, xgboost as xgb
b = xgb.Booster(); b.load_model(sys.argv[1])
x = np.array(json.load(open(sys.argv[2])), dtype=np.float32)
print(json.dumps(b.predict(xgb.DMatrix(x, missing=np.nan), pred_contribs=True).tolist()))
"#;
    let out = std::process::Command::new(&py)
        .args(["-c", script, path.to_str().unwrap(), dir.path().join("x.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    for (i, t) in theirs.iter().enumerate() {
        let ours: Vec<f64> = c.row(i).iter().copied().chain([c.bias[i]]).collect();
        for (a, b) in ours.iter().zip(t) {
            assert!((a - b).abs() < 1e-6, "row {i}: ours {ours:?} vs Python xgboost {t:?}");
        }
    }
}

#[test]
fn logistic_contributions_are_centred_on_the_training_means() {
    let m = logistic();
    let mut x = Matrix::new(2);
    x.push_row(&[1.0, 2.0]);
    x.push_row(&[3.0, -1.0]);
    let means = [2.0, 0.5];
    let c = m.contributions(&x, Some(&means)).unwrap();
    assert_eq!(c.row(0), [0.5 * (1.0 - 2.0), -0.25 * (2.0 - 0.5)]);
    assert!((c.bias[0] - (0.1 + 0.5 * 2.0 - 0.25 * 0.5)).abs() < 1e-15, "{}", c.bias[0]);
    let margin = m.margin(&x).unwrap();
    for (i, m) in margin.iter().enumerate() {
        assert!((c.row(i).iter().sum::<f64>() + c.bias[i] - m).abs() < 1e-12);
    }
    assert!(matches!(m.contributions(&x, None), Err(Error::Unsupported(_))));
}
