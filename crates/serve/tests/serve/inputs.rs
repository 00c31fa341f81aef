//! Inputs unlike training's are reported, not hidden: counted by `predict` and the server's
//! `/metrics`, listed per row when a request asks; scoring still does what params say.

use leadflow_serve::server::{ModelSource, ServeOptions};
use serde_json::{json, Value};

use super::server::{head, post, start};
use super::{quick, Env};

/// Five signup rows of the generated sample; row 2's `time_spent` far above anything trained
/// on, row 4's `customer_group` a level training never saw.
fn unusual_rows(env: &Env) -> (Vec<String>, Vec<Vec<String>>) {
    let (header, rows) = head(&env.raw, 400);
    let col = |c: &str| header.iter().position(|h| h == c).unwrap();
    let mut rows: Vec<Vec<String>> = rows.into_iter().filter(|r| r[col("source")] == "signup").take(5).collect();
    rows[1][col("time_spent")] = "99999".into();
    rows[3][col("customer_group")] = "42".into();
    (header, rows)
}

#[test]
fn predict_counts_and_the_server_lists_inputs_unlike_trainings() {
    let env = Env::deployed(&quick());
    let (header, rows) = unusual_rows(&env);
    let csv: String = std::iter::once(header.join(",")).chain(rows.iter().map(|r| r.join(","))).map(|l| l + "\n").collect();
    let input = env.dir.path().join("unusual.csv");
    std::fs::write(&input, csv).unwrap();
    let scored =
        leadflow_serve::predict(&env.layout().model_dir(), &input, &env.dir.path().join("o.csv"), leadflow_serve::InputKind::Raw).unwrap();
    assert_eq!(scored.rows, 5);
    assert_eq!(scored.inputs.out_of_range.get("time_spent"), Some(&1), "{:?}", scored.inputs);
    assert_eq!(scored.inputs.unseen.get("customer_group"), Some(&1), "{:?}", scored.inputs);
    assert_eq!(scored.inputs.out_of_range.len() + scored.inputs.unseen.len(), 2, "nothing else: {:?}", scored.inputs);

    let (url, _) = start(ServeOptions::new(ModelSource::Dir(env.layout().model_dir())), None, env.dir.path());
    let body = |warnings: bool| json!({"dataframe_split": {"columns": header, "data": rows}, "params": {"warnings": warnings}}).to_string();
    let (status, answer) = post(&url, "application/json", &body(true));
    assert_eq!(status, 200, "{answer}");
    let listed: Vec<(u64, &str)> =
        answer["warnings"].as_array().unwrap().iter().map(|w| (w["row"].as_u64().unwrap(), w["column"].as_str().unwrap())).collect();
    assert_eq!(listed, [(2, "time_spent"), (4, "customer_group")], "{answer}");
    assert_eq!(answer["warnings"][0]["value"], "99999");
    // Without asking, no list; scores are the same either way.
    let (_, plain) = post(&url, "application/json", &body(false));
    assert_eq!(plain.get("warnings"), None);
    assert_eq!(plain["predictions"], answer["predictions"]);
    let metrics = ureq::get(&format!("{url}/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("leadflow_input_out_of_range_total{column=\"time_spent\"} 2\n"), "{metrics}");
    assert!(metrics.contains("leadflow_input_unseen_total{column=\"customer_group\"} 2\n"), "{metrics}");
    // A bad request parameter is named.
    let (status, err) = post(&url, "application/json", &json!({"inputs": {"x": [1]}, "params": {"explain_all": true}}).to_string());
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("explain_all"), "{err}");
    let _: Value = err;
}
