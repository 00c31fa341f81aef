//! The online-scoring benchmark's table: leadflow's server beside `mlflow models serve` on the
//! same model, throughput and latency per request size, with ratios.

use serde_json::Value;

use crate::fmt;

/// Where `leadflow-serve-bench --docs` saves the figures the table is rendered from.
pub const RESULTS: &str = "benches/results/serving.json";

/// The Markdown table of a run (`{"date", "threads", "connections", "seconds", "cases": [{server,
/// rows, requests_per_s, p50_ms, p99_ms, failed}]}`), then the ratios and when it was measured.
pub fn table(run: &Value) -> String {
    let cases = run["cases"].as_array().cloned().unwrap_or_default();
    let mut out = String::from("| | rows/request | requests/s | p50 | p99 | failed |\n|---|---:|---:|---:|---:|---:|\n");
    for c in &cases {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c["server"].as_str().unwrap_or("?"),
            c["rows"].as_u64().unwrap_or(0),
            fmt(c["requests_per_s"].as_f64(), 0, ""),
            fmt(c["p50_ms"].as_f64(), 2, " ms"),
            fmt(c["p99_ms"].as_f64(), 2, " ms"),
            c["failed"].as_u64().unwrap_or(0),
        ));
    }
    let get = |server: &str, rows: u64| cases.iter().find(|c| c["server"] == server && c["rows"] == rows);
    let mut ratios = Vec::new();
    for rows in [1, 100] {
        if let (Some(a), Some(b)) = (get("leadflow", rows), get("mlflow models serve", rows)) {
            let (x, y) = (a["requests_per_s"].as_f64().unwrap_or(0.0), b["requests_per_s"].as_f64().unwrap_or(0.0));
            if y > 0.0 {
                ratios.push(format!("{rows} row(s): **{:.1}x** the throughput of `mlflow models serve`", x / y));
            }
        }
    }
    if let (Some(plain), Some(explained)) = (get("leadflow", 100), get("leadflow, explain", 100)) {
        let p50 = |c: &Value| c["p50_ms"].as_f64().unwrap_or(0.0);
        ratios.push(format!(
            "explanations (100 rows, `\"params\": {{\"explain\": true}}`) cost {:.1} µs per row at the median ({:.2} ms vs {:.2} ms a request)",
            1000.0 * (p50(explained) - p50(plain)) / 100.0,
            p50(explained),
            p50(plain)
        ));
    }
    if !ratios.is_empty() {
        out.push_str(&format!("\n{}.\n", ratios.join("; ")));
    }
    out.push_str(&format!(
        "\nWritten by `leadflow-serve-bench --docs` on {}: {} keep-alive connections, {} s per case, {} threads shared with the load generator.\n",
        run["date"].as_str().unwrap_or("?"),
        run["connections"].as_u64().unwrap_or(0),
        run["seconds"].as_f64().unwrap_or(0.0),
        run["threads"].as_u64().unwrap_or(0),
    ));
    out
}
