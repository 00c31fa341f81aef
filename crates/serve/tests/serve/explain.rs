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
    // One small model on a small sample: the gate is not what this tests.
    (p.evaluate.min_f1_weighted, p.evaluate.min_accuracy, p.evaluate.min_roc_auc) = (0.0, 0.0, 0.0);
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
    for (i, m) in margin.iter().enumerate() {
        let sum: f64 = e.row(i).iter().sum::<f64>() + e.bias[i];
        assert!((sum - m).abs() < tolerance, "{kind}, row {i}: {sum} vs margin {m}");
    }
    // One value per input column: `customer_group`'s one-hot levels summed. (`source` and
    // `bin_source` have one level after the lead's signup filter, which drop_first encodes as no
    // feature: they contribute nothing and are not listed.)
    let mut cols = e.columns.clone();
    cols.sort();
    assert_eq!(cols, ["customer_group", "n_visits", "onboarding", "purchases", "time_spent"]);
    assert!(md.spec.features.iter().filter(|f| f.starts_with("customer_group_")).count() > 1, "{:?}", md.spec.features);

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
    let (status, answer) = post(
        &url,
        "application/json",
        &json!({"dataframe_split": {"columns": header, "data": rows}, "params": {"explain": true}}).to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let r = &answer["predictions"][0];
    // (serde_json's default float parsing may be one unit in the last place off.)
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    assert!(close(r["bias"].as_f64().unwrap(), e.bias[0]), "{r}");
    assert!(close(r["contributions"][&e.columns[0]].as_f64().unwrap(), e.row(0)[0]), "{r}");
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
