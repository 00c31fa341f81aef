//! MLflow's scoring protocol: request bodies (JSON in MLflow's four shapes, or CSV) as a
//! table, predictions as MLflow returns a DataFrame, and errors as MLflow's JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadflow_features::table::Table;
use serde_json::{json, Value};

use crate::batch::ModelDir;

pub(super) fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.into())
}

/// A JSON cell as the CSV text `predict` would read. A whole number is written without a
/// fraction (`2.0` -> "2"), so a numeric code sent as a float finds its level, as in the MLflow
/// loader; for a number column the value is the same either way.
fn cell(v: &Value) -> std::result::Result<String, String> {
    Ok(match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && x.fract() == 0.0 && x.abs() < 9.0e15 => format!("{}", x as i64),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => return Err(format!("cells must be numbers, strings, booleans or null, found {other}")),
    })
}

fn records_table(records: &[Value], what: &str) -> std::result::Result<Table, String> {
    let mut header: Vec<String> = Vec::new();
    for r in records {
        let obj = r.as_object().ok_or_else(|| format!("{what}: each row must be an object of column -> value, found {r}"))?;
        for k in obj.keys() {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
    }
    let rows = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            header.iter().map(|c| r.get(c).map_or(Ok(String::new()), cell).map_err(|e| format!("{what}, row {}: {e}", i + 1))).collect()
        })
        .collect::<std::result::Result<Vec<Vec<String>>, String>>()?;
    Ok(Table::from_rows(header, rows, 1))
}

/// What a JSON request asks beyond scores (`"params": {"warnings": true}`, MLflow's place for
/// inference parameters).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct RequestOptions {
    /// List each row's inputs outside the training range or unseen in training.
    pub warnings: bool,
    /// Each prediction with its contributions per input column and the bias.
    pub explain: bool,
}

impl RequestOptions {
    fn of(params: Option<&Value>) -> std::result::Result<RequestOptions, String> {
        let Some(params) = params else { return Ok(RequestOptions::default()) };
        let obj = params.as_object().ok_or("\"params\" must be an object, e.g. {\"warnings\": true}")?;
        let mut o = RequestOptions::default();
        for (k, v) in obj {
            match (k.as_str(), v.as_bool()) {
                ("warnings", Some(b)) => o.warnings = b,
                ("explain", Some(b)) => o.explain = b,
                ("warnings" | "explain", None) => return Err(format!("params.{k} must be true or false, found {v}")),
                _ => return Err(format!("unknown request parameter {k:?}; known: warnings, explain")),
            }
        }
        Ok(o)
    }
}

/// The request body as a table (MLflow's JSON formats or CSV) and what it asks beyond scores.
pub(super) fn parse_body(content_type: &str, body: &[u8]) -> std::result::Result<(Table, RequestOptions), String> {
    if content_type.starts_with("text/csv") {
        return Ok((parse_csv(body)?, RequestOptions::default()));
    }
    if !(content_type.is_empty() || content_type.starts_with("application/json")) {
        return Err(format!("unsupported content type {content_type:?}: use application/json or text/csv"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v.as_object().ok_or("the JSON body must be an object with one of dataframe_split, dataframe_records, instances, inputs")?;
    Ok((parse_json(obj)?, RequestOptions::of(obj.get("params"))?))
}

fn parse_csv(body: &[u8]) -> std::result::Result<Table, String> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
    let header: Vec<String> = rdr.headers().map_err(|e| format!("CSV body: {e}"))?.iter().map(|h| h.trim().to_string()).collect();
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("CSV body, line {}: {e}", i + 2))?;
        rows.push(rec.iter().map(|v| v.trim().to_string()).collect());
    }
    Ok(Table::from_rows(header, rows, 2))
}

fn parse_json(obj: &serde_json::Map<String, Value>) -> std::result::Result<Table, String> {
    let formats = ["dataframe_split", "dataframe_records", "instances", "inputs"];
    let given: Vec<&str> = formats.iter().copied().filter(|f| obj.contains_key(*f)).collect();
    if given.len() != 1 {
        return Err(format!(
            "the JSON body must have exactly one of dataframe_split, dataframe_records, instances, inputs; found {}",
            if given.is_empty() { obj.keys().cloned().collect::<Vec<_>>().join(", ") } else { given.join(", ") }
        ));
    }
    let payload = &obj[given[0]];
    match given[0] {
        "dataframe_split" => {
            let columns = payload["columns"].as_array().ok_or("dataframe_split needs \"columns\": [names]")?;
            let header: Vec<String> = columns
                .iter()
                .map(|c| c.as_str().map(str::to_string).ok_or(format!("column names must be strings, found {c}")))
                .collect::<std::result::Result<_, _>>()?;
            let data = payload["data"].as_array().ok_or("dataframe_split needs \"data\": [[row], ...]")?;
            let rows = data
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let r = r.as_array().ok_or(format!("dataframe_split, row {}: expected a list of values", i + 1))?;
                    if r.len() != header.len() {
                        return Err(format!("dataframe_split, row {}: {} values for {} columns", i + 1, r.len(), header.len()));
                    }
                    r.iter().map(|v| cell(v).map_err(|e| format!("dataframe_split, row {}: {e}", i + 1))).collect()
                })
                .collect::<std::result::Result<Vec<Vec<String>>, String>>()?;
            Ok(Table::from_rows(header, rows, 1))
        }
        "dataframe_records" | "instances" => {
            let records = payload.as_array().ok_or(format!("{} must be a list of rows", given[0]))?;
            records_table(records, given[0])
        }
        _ => match payload {
            // Column-oriented: {"col": [values], ...}.
            Value::Object(cols) => {
                let header: Vec<String> = cols.keys().cloned().collect();
                let lists: Vec<&Vec<Value>> = cols
                    .values()
                    .map(|v| v.as_array().ok_or("inputs as an object maps each column to a list of values"))
                    .collect::<std::result::Result<_, _>>()?;
                let n = lists.first().map_or(0, |l| l.len());
                if lists.iter().any(|l| l.len() != n) {
                    return Err("inputs: every column needs the same number of values".into());
                }
                let rows = (0..n)
                    .map(|i| lists.iter().map(|l| cell(&l[i]).map_err(|e| format!("inputs, row {}: {e}", i + 1))).collect())
                    .collect::<std::result::Result<Vec<Vec<String>>, String>>()?;
                Ok(Table::from_rows(header, rows, 1))
            }
            Value::Array(records) => records_table(records, "inputs"),
            other => Err(format!("inputs must be an object of columns or a list of rows, found {other}")),
        },
    }
}

/// Predictions as MLflow returns a DataFrame: one record per row.
pub(super) fn predictions(model: &ModelDir, p: &[f64]) -> Vec<Value> {
    let target = &model.preprocessing.target;
    let k = target.n_classes();
    if k == 2 {
        return p.iter().map(|&v| json!({ "probability": v, "label": u8::from(v >= model.spec.threshold) })).collect();
    }
    let classes = leadflow_metrics::predict_classes(p, k, model.spec.threshold);
    p.chunks(k)
        .zip(classes)
        .map(|(row, c)| {
            let mut r = serde_json::Map::new();
            r.insert("label".into(), json!(target.labels[c as usize]));
            for (l, v) in target.labels.iter().zip(row) {
                r.insert(format!("p_{l}"), json!(v));
            }
            Value::Object(r)
        })
        .collect()
}

pub(super) fn error_response(status: StatusCode, message: String) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::SERVICE_UNAVAILABLE => "TEMPORARILY_UNAVAILABLE",
        s if s.is_client_error() => "BAD_REQUEST",
        _ => "INTERNAL_ERROR",
    };
    (status, axum::Json(json!({ "error_code": code, "message": message }))).into_response()
}
