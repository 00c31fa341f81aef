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

#[test]
fn rows_of_another_width_are_refused_by_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model_logistic.json");
    let model = serde_json::json!({
        "features": ["a", "b"], "coefficients": [0.5, -0.25], "intercept": 0.1,
        "classes": [0, 1], "positive_class": 1, "params": {}
    });
    std::fs::write(&path, model.to_string()).unwrap();
    let m = Model::load(ModelKind::Logistic, &path).unwrap();
    let mut x = Matrix::new(3);
    x.push_row(&[1.0, 2.0, 3.0]);
    let err = m.predict(&x).unwrap_err();
    assert!(matches!(err, Error::Width { expected: 2, got: 3, .. }), "{err:?}");
    let mut x = Matrix::new(2);
    x.push_row(&[1.0, 2.0]);
    let p = m.predict(&x).unwrap();
    assert!((p[0] - leadflow_model::sigmoid(0.1 + 0.5 - 0.5)).abs() < 1e-15);
}
