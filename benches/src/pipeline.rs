//! The pipeline benchmark's table: leadflow's data and train stages beside the Python baseline,
//! one column group per input size, every time with its ratio.

use serde_json::Value;

use crate::{fmt, ratio};

/// Where `leadflow-bench --docs` saves the figures the table is rendered from.
pub const RESULTS: &str = "benches/results/pipeline.json";

/// The Markdown table of a run (`{"date", "threads", "figures": [...]}`, as `leadflow-bench`
/// saves it), ending with a line that says when and on what it was measured.
pub fn table(run: &Value) -> String {
    let figures = run["figures"].as_array().cloned().unwrap_or_default();
    let ours = |f: &Value, k: &str| f["leadflow"][k].as_f64();
    let theirs = |f: &Value, k: &str| f["python"]["seconds"][k].as_f64();
    let mut out = String::new();
    let head: Vec<String> =
        figures.iter().map(|f| format!("{} ({} rows)", f["input"].as_str().unwrap_or("?"), thousands(f["rows"].as_u64()))).collect();
    out.push_str(&format!("| |{}\n", head.iter().map(|h| format!(" {h} | | |")).collect::<String>()));
    out.push_str(&format!("|---|{}\n", "---:|---:|---:|".repeat(figures.len())));
    out.push_str(&format!("| |{}\n", " leadflow | Python | ratio |".repeat(figures.len())));
    let timed = |name: &str, k: &str, py: &dyn Fn(&Value) -> Option<f64>| -> String {
        let cells: String = figures
            .iter()
            .map(|f| format!(" {} | {} | {} |", fmt(ours(f, k), 2, " s"), fmt(py(f), 2, " s"), ratio(ours(f, k), py(f))))
            .collect();
        format!("| {name} |{cells}\n")
    };
    let sum = |f: &Value, a: &str, b: &str| theirs(f, a).zip(theirs(f, b)).map(|(a, b)| a + b);
    out.push_str(&timed("end to end", "end_to_end", &|f| theirs(f, "process")));
    out.push_str(&timed("data stage", "data", &|f| theirs(f, "data")));
    out.push_str(&timed("train stage", "train", &|f| theirs(f, "train")));
    out.push_str(&timed("— XGBoost search", "xgboost_search", &|f| theirs(f, "xgboost_search")));
    out.push_str(&timed("— logistic search", "logistic_search", &|f| theirs(f, "logistic_search")));
    out.push_str(&timed("— both refits (beside the logistic search)", "refits", &|f| sum(f, "xgboost_refit", "logistic_refit")));
    let floor: String = figures
        .iter()
        .map(|f| {
            let over = ours(f, "train").zip(ours(f, "xgboost_floor")).map(|(t, fl)| t / fl.max(1e-9));
            format!(" {} | | {} |", fmt(ours(f, "xgboost_floor"), 2, " s"), fmt(over, 2, "x"))
        })
        .collect();
    out.push_str(&format!("| XGBoost floor; train / floor |{floor}\n"));
    let memory: String = figures
        .iter()
        .map(|f| format!(" {} | {} | |", fmt(ours(f, "peak_rss_mib"), 0, " MiB"), fmt(f["python"]["peak_rss_mib"].as_f64(), 0, " MiB")))
        .collect();
    out.push_str(&format!("| peak memory |{memory}\n"));
    let f1 = |v: Option<f64>, w: Option<f64>| format!("{} / {}", fmt(v, 3, ""), fmt(w, 3, ""));
    let quality: String = figures
        .iter()
        .map(|f| {
            let py = &f["python"]["test_f1_weighted"];
            format!(
                " {} | {} | |",
                f1(ours(f, "test_f1_weighted_xgboost"), ours(f, "test_f1_weighted_logistic")),
                f1(py["xgboost"].as_f64(), py["logistic"].as_f64())
            )
        })
        .collect();
    out.push_str(&format!("| test F1 weighted, XGBoost RF / logistic |{quality}\n"));
    let versions = figures.iter().find_map(|f| f["python"]["versions"].as_object().cloned()).unwrap_or_default();
    let versions: Vec<String> = versions.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?"))).collect();
    out.push_str(&format!(
        "\nWritten by `leadflow-bench --docs` on {}: release build, {} threads, one run; {}.\n",
        run["date"].as_str().unwrap_or("?"),
        run["threads"].as_u64().unwrap_or(0),
        if versions.is_empty() { "no Python baseline".to_string() } else { versions.join(", ") }
    ));
    out
}

fn thousands(n: Option<u64>) -> String {
    let s = n.unwrap_or(0).to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
