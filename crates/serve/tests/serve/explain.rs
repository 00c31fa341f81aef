//! Explanations: per-row contributions per input column (one-hot levels summed) that add up,
//! with the bias, to the model's margin — for both model kinds, through `predict --explain` and
//! the server's `"params": {"explain": true}`.

use leadflow_features::table::Table;
use leadflow_serve::server::{ModelSource, ServeOptions};
use leadflow_serve::{InputKind, ModelDir};
use serde_json::json;

use super::server::{head, post, start};
use super::{quick, Env};

fn only(kind: &str) -> leadflow_core::Params {
    let mut p = quick();
    p.train.xgboost.enabled = kind == "xgboost";
    p.train.logistic.enabled = kind == "logistic";
    p
}

fn check(kind: &str, tolerance: f64) {
    let env = Env::deployed(&only(kind));
    let md = ModelDir::open(&env.layout().model_dir()).unwrap();
    assert_eq!(md.spec.kind.name(), kind);
    let table = Table::read(&env.raw).unwrap();
    let x = md.features_of(&table, &env.raw, InputKind::Raw).unwrap();
    let e = md.explain_matrix(&x).unwrap();
    let margin = md.model.margin(&x).unwrap();
    for i in 0..x.n_rows {
        let sum: f64 = e.row(i).iter().sum::<f64>() + e.bias[i];
        assert!((sum - margin[i]).abs() < tolerance, "{kind}, row {i}: {sum} vs margin {}", margin[i]);
    }
    // One value per input column: the one-hot levels of `source` and `customer_group` are summed.
    let mut cols = e.columns.clone();
    cols.sort();
    assert_eq!(cols, ["bin_source", "customer_group", "n_visits", "onboarding", "purchases", "source", "time_spent"]);

    // predict --explain writes the same numbers beside the probability.
    let out = env.dir.path().join("explained.csv");
    leadflow_serve::predict_with(&env.layout().model_dir(), &env.raw, &out, InputKind::Raw, true).unwrap();
    let written = Table::read(&out).unwrap();
    let bias = written.column_index("contribution_bias").unwrap();
    let first = written.column_index(&format!("contribution_{}", e.columns[0])).unwrap();
    assert_eq!(written.rows[0][bias].parse::<f64>().unwrap(), e.bias[0]);
    assert_eq!(written.rows[0][first].parse::<f64>().unwrap(), e.row(0)[0]);

    // The server, asked to explain, answers them with each prediction.
    let (url, _) = start(ServeOptions::new(ModelSource::Dir(env.layout().model_dir())), None, env.dir.path());
    let (header, rows) = head(&env.raw, 3);
    let (status, answer) = post(&url, "application/json", &json!({"dataframe_split": {"columns": header, "data": rows}, "params": {"explain": true}}).to_string());
    assert_eq!(status, 200, "{answer}");
    let r = &answer["predictions"][0];
    assert_eq!(r["bias"].as_f64().unwrap(), e.bias[0]);
    assert_eq!(r["contributions"][&e.columns[0]].as_f64().unwrap(), e.row(0)[0]);
    let (_, plain) = post(&url, "application/json", &json!({"dataframe_split": {"columns": header, "data": rows}}).to_string());
    assert!(plain["predictions"][0].get("contributions").is_none());
}

#[test]
fn xgboost_contributions_add_up_to_the_margin_everywhere() {
    check("xgboost", 1e-4); // XGBoost computes in f32
}

#[test]
fn logistic_contributions_add_up_to_the_log_odds_everywhere() {
    check("logistic", 1e-9);
}
