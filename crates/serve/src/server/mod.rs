//! `leadflow model serve`: online scoring over HTTP in MLflow's scoring protocol.
//!
//! `POST /invocations` takes JSON (`dataframe_split`, `dataframe_records`, `instances`,
//! `inputs`) or CSV, raw rows of the training table or encoded features (as `predict`), and
//! answers `{"predictions": [...]}` as `mlflow models serve` does, one record per row with the
//! probabilities. `GET /ping` is liveness (the process answers); `/health` is readiness (a model
//! is loaded: 503 until then); `/version` names the model, `/metrics` is Prometheus text.
//! Serving a registry alias, the server polls it and swaps to a new version once that version
//! has loaded; requests in flight finish on the model they started with, a version that fails to
//! load is refused, and a registry that cannot be reached leaves the model in hand serving.
//!
//! Production settings: a header-read timeout (also the longest idle wait on a keep-alive
//! connection), a connection limit, a time limit per request (body read and scoring), and an
//! optional bearer token on everything but `/ping` and `/health` ([`listen`]).

mod follow;
mod listen;
mod log;
mod metrics;
mod protocol;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

pub use follow::{load, model_dir_of};
pub use log::{LogOptions, PredictionLog};

use crate::batch::{InputKind, ModelDir};
use crate::error::{Error, Result};
use metrics::Metrics;
use protocol::{bad, error_response, parse_body, predictions};

/// What to serve: an exported model directory, or the version a registry alias points at.
#[derive(Debug, Clone)]
pub enum ModelSource {
    Dir(PathBuf),
    Registry { name: String, alias: String },
}

/// The bearer token clients must send (`Authorization: Bearer <token>`). Its `Debug` never
/// shows it, so options can be logged.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

impl Token {
    /// A token from its text (surrounding whitespace, e.g. a file's last newline, removed).
    pub fn new(text: &str) -> Option<Token> {
        let t = text.trim();
        (!t.is_empty()).then(|| Token(Arc::from(t)))
    }

    /// Whether an `Authorization` header value carries this token, compared in time that does
    /// not depend on where they differ.
    fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else { return false };
        let (a, b) = (given.trim().as_bytes(), self.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
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
    /// A request whose body and scoring take longer is answered 503 (its scoring is abandoned).
    pub request_timeout: Duration,
    /// A client must send a request's headers within this, and a keep-alive connection may wait
    /// this long for its next request; then the connection is closed.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Required on `/invocations`, `/version` and `/metrics` when set.
    pub token: Option<Token>,
    /// How often a registry alias is checked for a new version.
    pub poll: Duration,
    /// Write scored rows to a prediction log (off when `None`).
    pub log: Option<LogOptions>,
}

impl ServeOptions {
    pub fn new(source: ModelSource) -> ServeOptions {
        ServeOptions {
            source,
            input: InputKind::Auto,
            max_body_bytes: 8 * 1024 * 1024,
            max_rows: 10_000,
            request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            token: None,
            poll: Duration::from_secs(5),
            log: None,
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

/// The state every handler shares: the current model (swapped whole; none while the first one
/// loads) and the counters.
pub struct Server {
    current: RwLock<Option<Arc<Loaded>>>,
    metrics: Metrics,
    opts: ServeOptions,
    log: std::sync::OnceLock<PredictionLog>,
    /// Inputs unlike training's, per column, since the start.
    inputs: std::sync::Mutex<crate::inputs::InputReport>,
}

impl Server {
    /// A server holding its model: ready.
    pub fn new(loaded: Loaded, opts: ServeOptions) -> Arc<Server> {
        Arc::new(Server {
            current: RwLock::new(Some(Arc::new(loaded))),
            metrics: Metrics::default(),
            opts,
            log: Default::default(),
            inputs: Default::default(),
        })
    }

    /// A server whose model is still loading: alive (`/ping`) but not ready (`/health` 503).
    pub fn loading(opts: ServeOptions) -> Arc<Server> {
        Arc::new(Server {
            current: RwLock::new(None),
            metrics: Metrics::default(),
            opts,
            log: Default::default(),
            inputs: Default::default(),
        })
    }

    /// Log every scored row (a share of them) from now on; a second log is refused.
    pub fn attach_log(&self, log: PredictionLog) -> bool {
        self.log.set(log).is_ok()
    }

    /// The model requests start on now (none before the first one loaded).
    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.current.read().map(|g| g.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The registry version served (none for a model directory or before loading).
    pub fn version(&self) -> Option<u64> {
        self.current().and_then(|l| l.version)
    }

    /// Swap in a newly loaded model; requests already holding the old one finish on it.
    pub fn swap(&self, loaded: Loaded) {
        let mut g = self.current.write().unwrap_or_else(|e| e.into_inner());
        let first = g.is_none();
        *g = Some(Arc::new(loaded));
        if !first {
            self.metrics.swaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn score(&self, content_type: &str, body: &[u8]) -> std::result::Result<Value, (StatusCode, String)> {
        let loaded = self.current().ok_or((StatusCode::SERVICE_UNAVAILABLE, "the model is still loading".to_string()))?;
        let (table, options) = parse_body(content_type, body).map_err(bad)?;
        if table.rows.is_empty() {
            return Err(bad("no rows to score"));
        }
        if table.rows.len() > self.opts.max_rows {
            return Err(bad(format!("{} rows in one request; at most {} (--max-rows)", table.rows.len(), self.opts.max_rows)));
        }
        // One loaded model serves requests in parallel: XGBoost's gbtree prediction is
        // thread-safe since 1.4 (dmlc/xgboost#6648); the logistic models are plain numbers.
        let model = &loaded.model;
        let x = model.features_of(&table, Path::new("request"), self.opts.input).map_err(|e| bad(format!("{e:#}")))?;
        let p = model.probabilities(&x).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("scoring failed: {e:#}")))?;
        self.metrics.rows.fetch_add(table.rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if let Some(log) = self.log.get() {
            log.record(&loaded, &table, &p);
        }
        let mut records = predictions(model, &p);
        if options.explain {
            let e = model.explain_matrix(&x).map_err(|e| bad(format!("explain: {e:#}")))?;
            for (i, r) in records.iter_mut().enumerate() {
                let contributions: serde_json::Map<String, Value> =
                    e.columns.iter().cloned().zip(e.row(i).iter().map(|v| json!(v))).collect();
                r["contributions"] = Value::Object(contributions);
                r["bias"] = json!(e.bias[i]);
            }
        }
        let mut answer = json!({ "predictions": records });
        if let Some(watch) = &model.inputs {
            let mut warnings = Vec::new();
            let seen = watch.inspect(&table, options.warnings.then_some(&mut warnings));
            self.inputs.lock().unwrap_or_else(|e| e.into_inner()).merge(&seen);
            if options.warnings {
                answer["warnings"] = json!(warnings);
            }
        }
        Ok(answer)
    }

    /// Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let loaded = self.current();
        let model = loaded.as_ref().map(|l| (l.model.spec.model_name.as_str(), l.version.unwrap_or(0)));
        let mut text = self.metrics.text(model, self.opts.max_connections);
        let inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (name, help, counts) in [
            ("leadflow_input_out_of_range_total", "Scored rows with a value outside the training range, per column.", &inputs.out_of_range),
            ("leadflow_input_unseen_total", "Scored rows with a level training never saw, per column.", &inputs.unseen),
        ] {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (column, n) in counts {
                text.push_str(&format!("{name}{{column=\"{}\"}} {n}\n", column.replace(['"', '\\', '\n'], "_")));
            }
        }
        if let Some(log) = self.log.get() {
            let c = &log.counters;
            for (name, help, v) in [
                ("leadflow_prediction_log_rows_total", "Rows written to the prediction log.", &c.rows),
                ("leadflow_prediction_log_dropped_total", "Rows not logged because the writer fell behind.", &c.dropped),
                ("leadflow_prediction_log_skipped_total", "Requests of encoded rows (no raw inputs to log).", &c.skipped),
            ] {
                let v = v.load(std::sync::atomic::Ordering::Relaxed);
                text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
            }
        }
        text
    }

    pub fn version_json(&self) -> Value {
        let Some(l) = self.current() else { return json!({ "ready": false }) };
        json!({
            "ready": true,
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

/// `POST /invocations`: read the body (within the request time limit), score it off the async
/// threads, answer as MLflow does.
async fn invocations(State(server): State<Arc<Server>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let limit = server.opts.request_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let result = match tokio::time::timeout_at(deadline, axum::body::to_bytes(body, server.opts.max_body_bytes)).await {
        Err(_) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("the request body took longer than {limit:?} to arrive"))),
        Ok(Err(e)) if is_too_large(&e) => {
            Err((StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {} bytes (--max-body-mib)", server.opts.max_body_bytes)))
        }
        Ok(Err(e)) => Err(bad(format!("reading the request body: {e}"))),
        Ok(Ok(bytes)) => {
            let s = server.clone();
            match tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(move || s.score(&content_type, &bytes))).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("scoring failed: {e}"))),
                Err(_) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("scoring took longer than {limit:?}"))),
            }
        }
    };
    let response = match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err((status, message)) => error_response(status, message),
    };
    server.metrics.observe(started, response.status());
    response
}

/// Whether reading a body failed on the size limit.
fn is_too_large(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The bearer token check, when one is set.
async fn authorize(State(server): State<Arc<Server>>, request: Request<Body>, next: Next) -> Response {
    if let Some(token) = &server.opts.token {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !token.admits(given) {
            server.metrics.unauthorized.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut r = error_response(StatusCode::UNAUTHORIZED, "a bearer token is required: Authorization: Bearer <token>".into());
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(request).await
}

/// `/health`: ready once a model is loaded.
async fn health(State(server): State<Arc<Server>>) -> Response {
    match server.current() {
        Some(_) => (StatusCode::OK, "").into_response(),
        None => error_response(StatusCode::SERVICE_UNAVAILABLE, "the model is still loading".into()),
    }
}

/// The router: probes open, everything else behind the token (when set).
pub fn router(server: Arc<Server>) -> Router {
    let guarded = Router::new()
        .route("/invocations", post(invocations))
        .route("/version", get(|State(s): State<Arc<Server>>| async move { axum::Json(s.version_json()) }))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Server>>| async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics_text()) }),
        )
        .route_layer(axum::middleware::from_fn_with_state(server.clone(), authorize));
    Router::new().route("/ping", get(|| async { "" })).route("/health", get(health)).merge(guarded).with_state(server)
}

/// Serve until SIGTERM/Ctrl-C on `listener`; requests in flight are finished first. With a
/// store, the alias is followed (a source that is a registry alias).
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    store: Option<Arc<dyn leadflow_mlflow::Store>>,
    cache: PathBuf,
) -> Result<()> {
    serve_until(listener, server, store, cache, listen::shutdown_signal()).await
}

/// [`serve`] until `stop` resolves (tests stop a server this way).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    store: Option<Arc<dyn leadflow_mlflow::Store>>,
    cache: PathBuf,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    if let Some(store) = store {
        tokio::spawn(follow::follow(server.clone(), store, cache));
    }
    listen::accept_loop(listener, server.clone(), router(server), stop).await;
    Ok(())
}

/// Bind `addr`, load the model while already answering `/ping` (and `/health` 503), then serve
/// until SIGTERM/Ctrl-C (the `serve` command). A model that fails to load ends the process.
pub fn run(opts: ServeOptions, addr: &str) -> Result<()> {
    let store: Option<Arc<dyn leadflow_mlflow::Store>> = match opts.source {
        ModelSource::Registry { .. } => Some(Arc::from(leadflow_mlflow::open_existing_store(&opts.tracking)?)),
        ModelSource::Dir(_) => None,
    };
    let cache = std::env::temp_dir().join(format!("leadflow-serve-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Serve(format!("starting the server runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::Listen { addr: addr.to_string(), source: e })?;
        let local = listener.local_addr().map_err(|e| Error::Listen { addr: addr.to_string(), source: e })?;
        let log = opts.log.clone();
        let server = Server::loading(opts);
        if let Some(l) = log {
            let path = l.path.clone();
            server.attach_log(PredictionLog::start(l).map_err(|source| Error::Write { path, source: source.into() })?);
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            tokio::select! {
                () = listen::shutdown_signal() => {}
                _ = rx => {}
            }
        };
        let running = tokio::spawn(serve_until(listener, server.clone(), None, cache.clone(), stop));
        tracing::info!("listening on http://{local} (/ping answers; /health once the model has loaded)");
        let (src, st, c) = (server.opts.source.clone(), store.clone(), cache.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&src, st.as_deref(), &c))
            .await
            .map_err(|e| Error::Serve(format!("loading the model: {e}")))?;
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(());
                let _ = running.await;
                return Err(e);
            }
        };
        tracing::info!(
            "serving {} {} ({}) on http://{local}: POST /invocations, GET /ping /health /version /metrics{}",
            loaded.model.spec.model_name,
            loaded.version.map(|v| format!("v{v}")).unwrap_or_else(|| "(model directory)".into()),
            loaded.model.spec.kind.name(),
            if server.opts.token.is_some() { " (bearer token required)" } else { "" }
        );
        server.swap(loaded);
        if let Some(store) = store {
            tokio::spawn(follow::follow(server.clone(), store, cache));
        }
        running.await.map_err(|e| Error::Serve(format!("server: {e}")))?
    })
}
