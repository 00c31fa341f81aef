//! The batch-scoring table (`leadflow-predict-bench`): `leadflow model predict`'s streaming
//! scorer against pandas + numpy/xgboost doing the same preprocessing and scoring of the same
//! rows (`benches/python/predict_baseline.py`), per input size, in one run.

use serde_json::Value;

use crate::{fmt, ratio};

/// Where the predict bench keeps its figures.
pub const RESULTS: &str = "benches/results/predict.json";

/// One Markdown table: a row per input size; rows/s, seconds and peak memory of each side.
pub fn table(run: &Value) -> String {
    let mut s = format!(
        "Measured {} on {} threads, {} model, chunks of {} rows: rows scored per second (wall, reading \
         the CSV to writing the predictions), peak memory (high-water RSS).\n\n\
         | input | rows | leadflow | rows/s | peak | pandas | rows/s | peak | rows/s ratio | same predictions |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        run["date"].as_str().unwrap_or("?"),
        run["threads"],
        run["model"].as_str().unwrap_or("?"),
        run["chunk_rows"]
    );
    for i in run["inputs"].as_array().cloned().unwrap_or_default() {
        let rate = |side: &Value| side["seconds"].as_f64().map(|t| i["rows"].as_f64().unwrap_or(0.0) / t);
        let (l, p) = (&i["leadflow"], &i["python"]);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i["input"].as_str().unwrap_or("?"),
            i["rows"],
            fmt(l["seconds"].as_f64(), 2, " s"),
            fmt(rate(l), 0, ""),
            fmt(l["peak_mib"].as_f64(), 0, " MiB"),
            fmt(p["seconds"].as_f64(), 2, " s"),
            fmt(rate(p), 0, ""),
            fmt(p["peak_mib"].as_f64(), 0, " MiB"),
            ratio(p["seconds"].as_f64().map(|t| 1.0 / t), l["seconds"].as_f64().map(|t| 1.0 / t)),
            i["agree"].as_str().unwrap_or("-"),
        ));
    }
    s
}
