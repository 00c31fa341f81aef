//! The decision options' table (`leadflow-options-bench`): what each option of the train and
//! evaluate stages adds to their wall time, against the defaults, on the same data in one run.

use serde_json::Value;

use crate::fmt;

/// Where the options bench keeps its figures.
pub const RESULTS: &str = "benches/results/options.json";

/// One Markdown table: a row per option, a column pair (train + evaluate seconds, added) per input.
pub fn table(run: &Value) -> String {
    let inputs = run["inputs"].as_array().cloned().unwrap_or_default();
    let mut s = format!(
        "Measured {} on {} threads: train + evaluate stages, seconds (added over the defaults).\n\n| option |",
        run["date"].as_str().unwrap_or("?"),
        run["threads"]
    );
    for i in &inputs {
        s.push_str(&format!(" {} ({} rows) |", i["input"].as_str().unwrap_or("?"), i["rows"]));
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(inputs.len()));
    s.push('\n');
    let names: Vec<String> = inputs
        .first()
        .and_then(|i| i["options"].as_array())
        .map(|o| o.iter().filter_map(|v| v["option"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    for name in names {
        s.push_str(&format!("| {name} |"));
        for i in &inputs {
            let options = i["options"].as_array().cloned().unwrap_or_default();
            let base = options.first().and_then(|o| o["seconds"].as_f64());
            let this = options.iter().find(|o| o["option"].as_str() == Some(name.as_str()));
            let cell = match (this.and_then(|o| o["seconds"].as_f64()), base) {
                (Some(v), Some(b)) if this.map(|o| &o["option"]) != options.first().map(|o| &o["option"]) => {
                    format!("{} ({:+.2} s)", fmt(Some(v), 2, " s"), v - b)
                }
                (Some(v), _) => fmt(Some(v), 2, " s"),
                _ => "not run".into(),
            };
            s.push_str(&format!(" {cell} |"));
        }
        s.push('\n');
    }
    s
}
