//! `leadflow model serve`: online scoring over HTTP in MLflow's scoring protocol.
//!
//! `POST /invocations` takes JSON (`dataframe_split`, `dataframe_records`, `instances`,
//! `inputs`) or CSV, raw rows of the training table or encoded features (as `predict`), and
//! answers `{"predictions": [...]}` as `mlflow models serve` does, one record per row with the
//! probabilities. `GET /ping` and `/health` answer when a model is loaded, `/version` names it,
//! `/metrics` is Prometheus text. Serving a registry alias, the server polls it and swaps to a
//! new version once that version has loaded; requests in flight finish on the model they
//! started with, and a version that fails to load is refused while the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leadflow_features::table::Table;
use serde_json::{json, Value};

use crate::batch::{InputKind, ModelDir};
use crate::error::{Error, Result};

/// What to serve: an exported model directory, or the version a registry alias points at.
#[derive(Debug, Clone)]
pub enum ModelSource {
    Dir(PathBuf),
    Registry { name: String, alias: String },
}

/// Server settings; the defaults suit a CRM or web backend calling per signup.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub source: ModelSource,
    /// The registry a `name@alias` source is read from (default: `MLFLOW_TRACKING_URI`); it must
    /// exist — serving never creates a store.
    pub tracking: leadflow_mlflow::tracking::StoreLocation,
    /// What request rows are (auto: decided by the columns, as `predict`).
    pub input: InputKind,
    pub max_body_bytes: usize,
    pub max_rows: usize,
    /// A request that takes longer is answered 503 (its scoring is abandoned).
    pub request_timeout: Duration,
    /// How often a registry alias is checked for a new version.
    pub poll: Duration,
}

impl ServeOptions {
    pub fn new(source: ModelSource) -> ServeOptions {
        ServeOptions {
            source,
            input: InputKind::Auto,
            max_body_bytes: 8 * 1024 * 1024,
            max_rows: 10_000,
            request_timeout: Duration::from_secs(10),
            poll: Duration::from_secs(5),
            tracking: leadflow_mlflow::tracking::StoreLocation::from_env(),
        }
    }
}

/// A loaded model and what `/version` tells about it.
pub struct Loaded {
    pub model: ModelDir,
    pub version: Option<u64>,
    pub run_id: Option<String>,
    pub source: String,
}

/// Latency buckets of the histogram, seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

#[derive(Default)]
struct Metrics {
    requests: AtomicU64,
    errors_4xx: AtomicU64,
    errors_5xx: AtomicU64,
    rows: AtomicU64,
    swaps: AtomicU64,
    refused_versions: AtomicU64,
    /// Cumulative counts per bucket (+Inf last) and the sum in microseconds.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
}

/// The state every handler shares: the current model (swapped whole) and the counters.
pub struct Server {
    current: RwLock<Arc<Loaded>>,
    metrics: Metrics,
    opts: ServeOptions,
}

fn bad(message: impl Into<String>) -> (StatusCode, String) {
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

/// The request body as a table: MLflow's JSON formats or CSV.
fn parse_body(content_type: &str, body: &[u8]) -> std::result::Result<Table, String> {
    if content_type.starts_with("text/csv") {
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
        let header: Vec<String> = rdr.headers().map_err(|e| format!("CSV body: {e}"))?.iter().map(|h| h.trim().to_string()).collect();
        let mut rows = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| format!("CSV body, line {}: {e}", i + 2))?;
            rows.push(rec.iter().map(|v| v.trim().to_string()).collect());
        }
        return Ok(Table::from_rows(header, rows, 2));
    }
    if !(content_type.is_empty() || content_type.starts_with("application/json")) {
        return Err(format!("unsupported content type {content_type:?}: use application/json or text/csv"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v.as_object().ok_or("the JSON body must be an object with one of dataframe_split, dataframe_records, instances, inputs")?;
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
fn predictions(model: &ModelDir, p: &[f64]) -> Vec<Value> {
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

fn error_response(status: StatusCode, message: String) -> Response {
    let code = if status.is_client_error() { "BAD_REQUEST" } else { "INTERNAL_ERROR" };
    (status, axum::Json(json!({ "error_code": code, "message": message }))).into_response()
}

impl Server {
    pub fn new(loaded: Loaded, opts: ServeOptions) -> Arc<Server> {
        Arc::new(Server { current: RwLock::new(Arc::new(loaded)), metrics: Metrics::default(), opts })
    }

    /// The model requests start on now.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.read().map(|g| g.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Swap in a newly loaded model; requests already holding the old one finish on it.
    pub fn swap(&self, loaded: Loaded) {
        let mut g = self.current.write().unwrap_or_else(|e| e.into_inner());
        *g = Arc::new(loaded);
        self.metrics.swaps.fetch_add(1, Ordering::Relaxed);
    }

    fn score(&self, content_type: &str, body: &[u8]) -> std::result::Result<Value, (StatusCode, String)> {
        let table = parse_body(content_type, body).map_err(bad)?;
        if table.rows.is_empty() {
            return Err(bad("no rows to score"));
        }
        if table.rows.len() > self.opts.max_rows {
            return Err(bad(format!("{} rows in one request; at most {} (--max-rows)", table.rows.len(), self.opts.max_rows)));
        }
        // One loaded model serves requests in parallel: XGBoost's gbtree prediction is
        // thread-safe since 1.4 (dmlc/xgboost#6648); the logistic models are plain numbers.
        let loaded = self.current();
        let p = loaded.model.predict_table(&table, Path::new("request"), self.opts.input).map_err(|e| bad(format!("{e:#}")))?;
        self.metrics.rows.fetch_add(table.rows.len() as u64, Ordering::Relaxed);
        Ok(json!({ "predictions": predictions(&loaded.model, &p) }))
    }

    fn observe(&self, started: Instant, status: StatusCode) {
        let m = &self.metrics;
        m.requests.fetch_add(1, Ordering::Relaxed);
        if status.is_client_error() {
            m.errors_4xx.fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            m.errors_5xx.fetch_add(1, Ordering::Relaxed);
        }
        let secs = started.elapsed().as_secs_f64();
        let i = BUCKETS.iter().position(|&b| secs <= b).unwrap_or(BUCKETS.len());
        m.latency[i].fetch_add(1, Ordering::Relaxed);
        m.latency_sum_us.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        let loaded = self.current();
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
        };
        counter("leadflow_requests_total", "Scoring requests answered.", m.requests.load(Ordering::Relaxed));
        counter("leadflow_request_errors_4xx_total", "Requests refused as bad (4xx).", m.errors_4xx.load(Ordering::Relaxed));
        counter("leadflow_request_errors_5xx_total", "Requests failed by the server (5xx).", m.errors_5xx.load(Ordering::Relaxed));
        counter("leadflow_rows_scored_total", "Rows scored.", m.rows.load(Ordering::Relaxed));
        counter("leadflow_model_swaps_total", "New model versions swapped in.", m.swaps.load(Ordering::Relaxed));
        counter("leadflow_model_versions_refused_total", "New versions that failed to load.", m.refused_versions.load(Ordering::Relaxed));
        s.push_str("# HELP leadflow_request_duration_seconds Time to answer a scoring request.\n");
        s.push_str("# TYPE leadflow_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().map(|b| b.to_string()).chain(std::iter::once("+Inf".to_string())).enumerate() {
            cumulative += m.latency[i].load(Ordering::Relaxed);
            s.push_str(&format!("leadflow_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}\n"));
        }
        s.push_str(&format!("leadflow_request_duration_seconds_sum {}\n", m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6));
        s.push_str(&format!("leadflow_request_duration_seconds_count {cumulative}\n"));
        s.push_str(
            "# HELP leadflow_model_version Registry version being served (0: a model directory).\n# TYPE leadflow_model_version gauge\n",
        );
        s.push_str(&format!("leadflow_model_version{{name=\"{}\"}} {}\n", loaded.model.spec.model_name, loaded.version.unwrap_or(0)));
        s
    }

    pub fn version_json(&self) -> Value {
        let l = self.current();
        json!({
            "model_name": l.model.spec.model_name,
            "version": l.version,
            "run_id": l.run_id,
            "kind": l.model.spec.kind.name(),
            "source": l.source,
            "features": l.model.spec.features,
            "inputs": l.model.preprocessing.raw_inputs(),
            "classes": l.model.preprocessing.target.labels,
            "threshold": l.model.spec.threshold,
            "leadflow_version": env!("CARGO_PKG_VERSION"),
        })
    }
}

async fn invocations(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let s = server.clone();
    let work = tokio::task::spawn_blocking(move || s.score(&content_type, &body));
    let result = match tokio::time::timeout(server.opts.request_timeout, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("scoring failed: {e}"))),
        Err(_) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("scoring took longer than {:?}", server.opts.request_timeout))),
    };
    let response = match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err((status, message)) => error_response(status, message),
    };
    server.observe(started, response.status());
    response
}

/// The router, for a server already holding its model.
pub fn router(server: Arc<Server>) -> Router {
    let limit = server.opts.max_body_bytes;
    Router::new()
        .route("/invocations", post(invocations))
        .route("/ping", get(|| async { "" }))
        .route("/health", get(|| async { "" }))
        .route("/version", get(|State(s): State<Arc<Server>>| async move { axum::Json(s.version_json()) }))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Server>>| async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics_text()) }),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(server)
}

/// Load what `source` names: a directory as it is; a registry alias's version from the store
/// (`MLFLOW_TRACKING_URI`), fetched into `cache` when its files are not local.
pub fn load(source: &ModelSource, store: Option<&dyn leadflow_mlflow::Store>, cache: &Path) -> Result<Loaded> {
    match source {
        ModelSource::Dir(d) => {
            let model = ModelDir::open(d)?;
            Ok(Loaded { version: model.spec.version, run_id: model.spec.run_id.clone(), model, source: d.display().to_string() })
        }
        ModelSource::Registry { name, alias } => {
            let store = store.ok_or_else(|| Error::Serve("a registry model needs a tracking store".into()))?;
            let v = leadflow_mlflow::registry::version_by_alias(store, name, alias)?;
            let dir = fetch(store, &v.source, cache, v.version)?;
            let model = ModelDir::open(&dir)?;
            Ok(Loaded { model, version: Some(v.version), run_id: Some(v.run_id.clone()), source: v.source })
        }
    }
}

/// The version's model folder: used in place when local, else its files fetched into `cache`.
fn fetch(store: &dyn leadflow_mlflow::Store, uri: &str, cache: &Path, version: u64) -> Result<PathBuf> {
    let local = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
    if local.is_absolute() && local.join(leadflow_core::artifacts::MODEL_SPEC.name).is_file() {
        return Ok(local);
    }
    let dest = cache.join(format!("v{version}"));
    std::fs::create_dir_all(&dest).map_err(|e| Error::Write { path: dest.clone(), source: e.into() })?;
    store.download(uri, &[leadflow_core::artifacts::MODEL_SPEC.name], &dest)?;
    let spec: leadflow_core::results::DeployedModel =
        leadflow_core::artifacts::read_json(&dest.join(leadflow_core::artifacts::MODEL_SPEC.name), "a model description")?;
    store.download(
        uri,
        &[spec.file.as_str(), leadflow_core::artifacts::FEATURE_SPEC.name, leadflow_core::artifacts::PREPROCESSING.name],
        &dest,
    )?;
    Ok(dest)
}

/// Poll the alias and swap in new versions, until the process ends.
async fn follow(server: Arc<Server>, store: Arc<dyn leadflow_mlflow::Store>, cache: PathBuf) {
    let ModelSource::Registry { name, alias } = server.opts.source.clone() else { return };
    let mut refused: Option<u64> = None;
    loop {
        tokio::time::sleep(server.opts.poll).await;
        let (st, n, a) = (store.clone(), name.clone(), alias.clone());
        let holder = tokio::task::spawn_blocking(move || st.get_by_alias(&n, &a)).await;
        let v = match holder {
            Ok(Ok(Some(v))) => v,
            Ok(Ok(None)) => continue,
            Ok(Err(e)) => {
                tracing::warn!("checking {name}@{alias}: {e}; still serving v{:?}", server.current().version);
                continue;
            }
            Err(_) => continue,
        };
        if Some(v.version) == server.current().version || Some(v.version) == refused {
            continue;
        }
        let (st, src, c) = (store.clone(), server.opts.source.clone(), cache.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&src, Some(st.as_ref()), &c)).await;
        match loaded {
            Ok(Ok(l)) if l.version == Some(v.version) => {
                tracing::info!("{name}@{alias} moved to v{}: swapped in (was v{:?})", v.version, server.current().version);
                server.swap(l);
                refused = None;
            }
            Ok(Ok(_)) => {} // moved again meanwhile: the next poll loads the newest
            Ok(Err(e)) => {
                tracing::warn!(
                    "{name}@{alias} moved to v{}, which failed to load: {e:#}; still serving v{:?}",
                    v.version,
                    server.current().version
                );
                server.metrics.refused_versions.fetch_add(1, Ordering::Relaxed);
                refused = Some(v.version);
            }
            Err(_) => {}
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Serve until SIGTERM/Ctrl-C on `listener`; requests in flight are finished first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    store: Option<Arc<dyn leadflow_mlflow::Store>>,
    cache: PathBuf,
) -> Result<()> {
    if let Some(store) = store {
        tokio::spawn(follow(server.clone(), store, cache));
    }
    axum::serve(listener, router(server)).with_graceful_shutdown(shutdown_signal()).await.map_err(|e| Error::Serve(format!("server: {e}")))
}

/// Load the model, bind `addr` and serve until SIGTERM/Ctrl-C (the `serve` command).
pub fn run(opts: ServeOptions, addr: &str) -> Result<()> {
    let store: Option<Arc<dyn leadflow_mlflow::Store>> = match opts.source {
        ModelSource::Registry { .. } => Some(Arc::from(leadflow_mlflow::open_existing_store(&opts.tracking)?)),
        ModelSource::Dir(_) => None,
    };
    let cache = std::env::temp_dir().join(format!("leadflow-serve-{}", std::process::id()));
    let loaded = load(&opts.source, store.as_deref(), &cache)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Serve(format!("starting the server runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::Listen { addr: addr.to_string(), source: e })?;
        let local = listener.local_addr().map_err(|e| Error::Serve(e.to_string()))?;
        tracing::info!(
            "serving {} {} ({}) on http://{local}: POST /invocations, GET /ping /health /version /metrics",
            loaded.model.spec.model_name,
            loaded.version.map(|v| format!("v{v}")).unwrap_or_else(|| "(model directory)".into()),
            loaded.model.spec.kind.name()
        );
        let server = Server::new(loaded, opts);
        serve(listener, server, store, cache).await
    })
}
