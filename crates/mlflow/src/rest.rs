//! A real MLflow tracking server over its REST API 2.0, behind the same [`Tracker`] and
//! [`Registry`] traits as the file store.
//!
//! - Auth: `MLFLOW_TRACKING_TOKEN` (bearer) or `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`
//!   (basic). Credentials are only ever put in the `Authorization` header: never in logs, errors,
//!   artifacts or the store location string (user info in the URI is stripped from it).
//! - Faults: connection errors, timeouts and 5xx are retried with bounded exponential backoff, then
//!   reported naming the endpoint; 4xx show MLflow's `error_code` and `message`.
//! - Artifacts go through the server's artifact proxy when the run's artifact URI is
//!   `mlflow-artifacts:/...`; a local-path artifact URI is written directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::registry::{check_alias, check_stage, ModelVersion, Promotion, Registry};
use crate::tracking::{now_millis, MetricPoint, RunRecord, RunStatus, Tracker};

pub const TOKEN_ENV: &str = "MLFLOW_TRACKING_TOKEN";
pub const USERNAME_ENV: &str = "MLFLOW_TRACKING_USERNAME";
pub const PASSWORD_ENV: &str = "MLFLOW_TRACKING_PASSWORD";

/// Retry policy for transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 5, base: Duration::from_millis(250) }
    }
}

impl Retry {
    /// The waits before the second, third, ... attempt: `base`, then doubling.
    pub fn delays(&self) -> Vec<Duration> {
        (1..self.attempts.max(1)).map(|a| self.base * 2u32.pow(a - 1)).collect()
    }
}

/// How long one request may take to connect, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), request: Duration::from_secs(60) }
    }
}

pub struct RestStore {
    base: String,
    shown: String,
    auth: Option<String>,
    agent: ureq::Agent,
    retry: Retry,
}

impl std::fmt::Debug for RestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RestStore({})", self.shown)
    }
}

/// The URI without user info (`https://user:pw@host` -> `https://host`).
pub fn redact(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => uri.to_string(),
    }
}

fn agent(t: Timeouts) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout_connect(t.connect).timeout(t.request).build()
}

fn credentials_from_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.split_once("://")?.1;
    let host = rest.split('/').next()?;
    let (userinfo, _) = host.rsplit_once('@')?;
    let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Some((u.to_string(), p.to_string()))
}

impl RestStore {
    /// A client for the server at `uri`, with credentials from the environment.
    pub fn new(uri: &str) -> RestStore {
        RestStore::with_env(uri, |k| std::env::var(k).ok())
    }

    /// A client whose credentials come from `env` (a lookup of `MLFLOW_TRACKING_TOKEN`, `..._USERNAME`,
    /// `..._PASSWORD`) or from the URI's user info.
    pub fn with_env(uri: &str, env: impl Fn(&str) -> Option<String>) -> RestStore {
        use base64::Engine as _;
        let shown = redact(uri.trim_end_matches('/'));
        let set = |k: &str| env(k).filter(|v| !v.is_empty());
        let auth = match (set(TOKEN_ENV), set(USERNAME_ENV), env(PASSWORD_ENV)) {
            (Some(t), _, _) => Some(format!("Bearer {t}")),
            (_, Some(u), p) => {
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.unwrap_or_default()))))
            }
            _ => credentials_from_uri(uri)
                .map(|(u, p)| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))),
        };
        RestStore { base: shown.clone(), shown, auth, agent: agent(Timeouts::default()), retry: Retry::default() }
    }

    pub fn with_retry(mut self, retry: Retry) -> RestStore {
        self.retry = retry;
        self
    }

    pub fn with_timeouts(mut self, t: Timeouts) -> RestStore {
        self.agent = agent(t);
        self
    }

    /// The retry policy in force.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    fn remote(&self, endpoint: &str, message: String) -> Error {
        Error::Remote { endpoint: format!("{}/{endpoint}", self.shown), message }
    }

    /// One request with retries, answering JSON. `endpoint` is relative to the server root.
    fn call(&self, method: &str, endpoint: &str, query: &[(&str, &str)], body: Option<&Value>, bytes: Option<&[u8]>) -> Result<Value> {
        let raw = self.call_raw(method, endpoint, query, body, bytes)?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&raw).map_err(|source| Error::BadAnswer { endpoint: format!("{}/{endpoint}", self.shown), source })
    }

    /// One request with retries, answering bytes.
    fn call_raw(
        &self,
        method: &str,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        bytes: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let url = format!("{}/{endpoint}", self.base);
        let mut last = String::new();
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(self.retry.delays()[attempt as usize - 1]);
            }
            let mut req = self.agent.request(method, &url);
            for (k, v) in query {
                req = req.query(k, v);
            }
            if let Some(a) = &self.auth {
                req = req.set("Authorization", a);
            }
            let res = match (body, bytes) {
                (Some(b), _) => req.send_json(b.clone()),
                (None, Some(b)) => req.set("Content-Type", "application/octet-stream").send_bytes(b),
                (None, None) => req.call(),
            };
            match res {
                Ok(resp) => {
                    use std::io::Read as _;
                    let mut out = Vec::new();
                    resp.into_reader()
                        .take(1 << 30)
                        .read_to_end(&mut out)
                        .map_err(|e| self.remote(endpoint, format!("reading the answer: {e}")))?;
                    return Ok(out);
                }
                Err(ureq::Error::Status(code, resp)) if code >= 500 => {
                    last = format!("HTTP {code}: {}", resp.into_string().unwrap_or_default().chars().take(300).collect::<String>());
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let text = resp.into_string().unwrap_or_default();
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let message = v["message"].as_str().map(str::to_string).unwrap_or_else(|| text.chars().take(300).collect());
                    return Err(Error::Api {
                        endpoint: format!("{}/{endpoint}", self.shown),
                        status: code,
                        code: v["error_code"].as_str().map(str::to_string),
                        message,
                    });
                }
                Err(ureq::Error::Transport(t)) => {
                    last = t.to_string();
                }
            }
        }
        Err(self.remote(endpoint, format!("gave up after {} attempts: {last}", self.retry.attempts.max(1))))
    }

    fn api(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        self.call(method, &format!("api/2.0/mlflow/{path}"), &[], Some(&body), None)
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.call("GET", &format!("api/2.0/mlflow/{path}"), query, None, None)
    }

    fn is_missing(e: &Error) -> bool {
        matches!(e, Error::Api { status: 404, .. }) || e.api_code() == Some("RESOURCE_DOES_NOT_EXIST")
    }
}

fn kv(pairs: &[(String, String)]) -> Value {
    Value::Array(pairs.iter().map(|(k, v)| json!({"key": k, "value": v})).collect())
}

fn kv_map(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|e| Some((e["key"].as_str()?.to_string(), e["value"].as_str().unwrap_or("").to_string()))).collect())
        .unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

fn run_record(run: &Value) -> RunRecord {
    let info = &run["info"];
    let data = &run["data"];
    RunRecord {
        run_id: info["run_id"].as_str().unwrap_or("").into(),
        experiment_id: info["experiment_id"].as_str().unwrap_or("").into(),
        run_name: info["run_name"].as_str().unwrap_or("").into(),
        status: RunStatus::parse(info["status"].as_str().unwrap_or("")),
        start_time: int(&info["start_time"]),
        end_time: info.get("end_time").map(int),
        artifact_uri: info["artifact_uri"].as_str().unwrap_or("").into(),
        params: kv_map(&data["params"]),
        metrics: data["metrics"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| Some((m["key"].as_str()?.to_string(), m["value"].as_f64()?))).collect())
            .unwrap_or_default(),
        tags: kv_map(&data["tags"]),
    }
}

fn model_version(v: &Value) -> ModelVersion {
    ModelVersion {
        name: v["name"].as_str().unwrap_or("").into(),
        version: int(&v["version"]) as u64,
        source: v["source"].as_str().unwrap_or("").into(),
        run_id: v["run_id"].as_str().unwrap_or("").into(),
        current_stage: v["current_stage"].as_str().unwrap_or("None").into(),
        status: v["status"].as_str().unwrap_or("READY").into(),
        creation_timestamp: int(&v["creation_timestamp"]),
        last_updated_timestamp: int(&v["last_updated_timestamp"]),
        description: v["description"].as_str().unwrap_or("").into(),
        tags: kv_map(&v["tags"]),
        aliases: v["aliases"].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default(),
    }
}

impl Tracker for RestStore {
    fn location(&self) -> String {
        self.shown.clone()
    }

    fn find_experiment(&self, name: &str) -> Result<Option<String>> {
        match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(v) => Ok(Some(v["experiment"]["experiment_id"].as_str().unwrap_or("").to_string())),
            Err(e) if Self::is_missing(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        match self.find_experiment(name)? {
            Some(id) => Ok(id),
            None => {
                let v = self.api("POST", "experiments/create", json!({ "name": name }))?;
                Ok(v["experiment_id"].as_str().unwrap_or("").to_string())
            }
        }
    }

    fn create_run(&self, experiment_id: &str, run_name: &str, tags: &[(String, String)]) -> Result<String> {
        let mut all = vec![("mlflow.runName".to_string(), run_name.to_string()), ("mlflow.user".to_string(), "leadflow".to_string())];
        all.extend(tags.iter().cloned());
        let v = self.api(
            "POST",
            "runs/create",
            json!({ "experiment_id": experiment_id, "run_name": run_name, "start_time": now_millis(), "tags": kv(&all) }),
        )?;
        Ok(v["run"]["info"]["run_id"].as_str().unwrap_or("").to_string())
    }

    fn log_batch(&self, run_id: &str, params: &[(String, String)], metrics: &[MetricPoint], tags: &[(String, String)]) -> Result<()> {
        // MLflow limits a batch to 100 params and 1000 metrics.
        for chunk in params.chunks(100) {
            self.api("POST", "runs/log-batch", json!({ "run_id": run_id, "params": kv(chunk) }))?;
        }
        for chunk in metrics.chunks(1000) {
            let ms: Vec<Value> =
                chunk.iter().map(|m| json!({"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step})).collect();
            self.api("POST", "runs/log-batch", json!({ "run_id": run_id, "metrics": ms }))?;
        }
        if !tags.is_empty() {
            self.api("POST", "runs/log-batch", json!({ "run_id": run_id, "tags": kv(tags) }))?;
        }
        Ok(())
    }

    fn log_artifact(&self, run_id: &str, local: &Path, dest_dir: &str) -> Result<()> {
        let uri = self.artifact_uri(run_id)?;
        let name = local.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let rel = if dest_dir.is_empty() { name.clone() } else { format!("{}/{name}", dest_dir.trim_matches('/')) };
        let bytes = std::fs::read(local).map_err(|e| Error::Io { path: local.into(), source: e })?;
        if let Some(path) = uri.strip_prefix("mlflow-artifacts:") {
            let path = path.trim_start_matches('/');
            let endpoint = format!("api/2.0/mlflow-artifacts/artifacts/{path}/{rel}");
            self.call("PUT", &endpoint, &[], None, Some(&bytes))?;
            Ok(())
        } else {
            let dir = PathBuf::from(uri.strip_prefix("file://").unwrap_or(&uri));
            if !dir.is_absolute() {
                return Err(self.remote("artifacts", format!("cannot write artifacts to {uri}: not an mlflow-artifacts: or local URI")));
            }
            crate::error::write_atomic(&dir.join(rel), &bytes)
        }
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        self.api("POST", "runs/update", json!({ "run_id": run_id, "status": status.as_str(), "end_time": now_millis() }))?;
        Ok(())
    }

    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        Ok(run_record(&self.get("runs/get", &[("run_id", run_id)])?["run"]))
    }

    fn search_runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({ "experiment_ids": [experiment_id], "max_results": 1000, "order_by": ["attributes.start_time DESC"] });
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let v = self.api("POST", "runs/search", body)?;
            out.extend(v["runs"].as_array().into_iter().flatten().map(run_record));
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    fn artifact_uri(&self, run_id: &str) -> Result<String> {
        Ok(self.get_run(run_id)?.artifact_uri)
    }

    fn download(&self, uri: &str, names: &[&str], dest: &Path) -> Result<()> {
        let Some(path) = uri.strip_prefix("mlflow-artifacts:") else {
            let dir = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
            for n in names {
                let from = dir.join(n);
                std::fs::copy(&from, dest.join(n)).map_err(|e| Error::Io { path: from, source: e })?;
            }
            return Ok(());
        };
        let path = path.trim_start_matches('/');
        for n in names {
            let bytes = self.call_raw("GET", &format!("api/2.0/mlflow-artifacts/artifacts/{path}/{n}"), &[], None, None)?;
            crate::error::write_atomic(&dest.join(n), &bytes)?;
        }
        Ok(())
    }
}

impl RestStore {
    /// The history of one metric (MLflow's metrics/get-history).
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>> {
        // Without max_results, MLflow 3.5 answers an empty first page (and a page token).
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("run_id", run_id), ("metric_key", key), ("max_results", "25000")];
            if let Some(t) = &token {
                q.push(("page_token", t.as_str()));
            }
            let v = self.get("metrics/get-history", &q)?;
            let page: Vec<MetricPoint> = v["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| MetricPoint {
                    key: key.into(),
                    value: m["value"].as_f64().unwrap_or(f64::NAN),
                    timestamp: int(&m["timestamp"]),
                    step: int(&m["step"]),
                })
                .collect();
            let empty = page.is_empty();
            out.extend(page);
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() && !empty => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Set one run tag (MLflow's runs/set-tag).
    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        self.api("POST", "runs/set-tag", json!({ "run_id": run_id, "key": key, "value": value }))?;
        Ok(())
    }

    /// Runs of an experiment ordered by a metric, best first (MLflow's search with order_by).
    pub fn search_runs_by_metric(&self, experiment_id: &str, metric: &str, descending: bool) -> Result<Vec<RunRecord>> {
        let order = format!("metrics.`{metric}` {}", if descending { "DESC" } else { "ASC" });
        let v = self.api("POST", "runs/search", json!({ "experiment_ids": [experiment_id], "max_results": 1000, "order_by": [order] }))?;
        Ok(v["runs"].as_array().into_iter().flatten().map(run_record).collect())
    }
}

impl Registry for RestStore {
    fn register_version(&self, name: &str, source: &str, run_id: &str, tags: &[(String, String)]) -> Result<(ModelVersion, bool)> {
        match self.api("POST", "registered-models/create", json!({ "name": name })) {
            Ok(_) => {}
            Err(e) if e.api_code() == Some("RESOURCE_ALREADY_EXISTS") => {}
            Err(e) => return Err(e),
        }
        if !run_id.is_empty() {
            if let Some(v) = self.list_versions(name)?.into_iter().find(|v| v.run_id == run_id) {
                return Ok((v, false));
            }
        }
        let v = self.api("POST", "model-versions/create", json!({ "name": name, "source": source, "run_id": run_id, "tags": kv(tags) }))?;
        Ok((model_version(&v["model_version"]), true))
    }

    fn get_version(&self, name: &str, version: u64) -> Result<ModelVersion> {
        let v = self.get("model-versions/get", &[("name", name), ("version", &version.to_string())])?;
        Ok(model_version(&v["model_version"]))
    }

    fn list_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        let filter = format!("name='{}'", name.replace('\'', "\\'"));
        let mut out: Vec<ModelVersion> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = vec![("filter", filter.as_str()), ("max_results", "1000")];
            if let Some(t) = &token {
                q.push(("page_token", t.as_str()));
            }
            let v = self.get("model-versions/search", &q)?;
            out.extend(v["model_versions"].as_array().into_iter().flatten().map(model_version));
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        // Search results may omit aliases: read them from the registered model.
        if let Ok(m) = self.get("registered-models/get", &[("name", name)]) {
            for a in m["registered_model"]["aliases"].as_array().into_iter().flatten() {
                let (Some(alias), ver) = (a["alias"].as_str(), int(&a["version"]) as u64) else { continue };
                if let Some(v) = out.iter_mut().find(|v| v.version == ver) {
                    if !v.aliases.iter().any(|x| x == alias) {
                        v.aliases.push(alias.to_string());
                    }
                }
            }
        }
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    fn transition_stage(&self, name: &str, version: u64, stage: &str, archive_existing: bool) -> Result<Vec<u64>> {
        let stage = check_stage(stage)?;
        let before: Vec<u64> =
            self.list_versions(name)?.into_iter().filter(|v| v.current_stage == stage && v.version != version).map(|v| v.version).collect();
        self.api(
            "POST",
            "model-versions/transition-stage",
            json!({ "name": name, "version": version.to_string(), "stage": stage, "archive_existing_versions": archive_existing }),
        )?;
        Ok(if archive_existing && stage != "None" && stage != "Archived" { before } else { vec![] })
    }

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        check_alias(alias)?;
        self.api("POST", "registered-models/alias", json!({ "name": name, "alias": alias, "version": version.to_string() }))?;
        Ok(())
    }

    fn get_by_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>> {
        check_alias(alias)?;
        match self.get("registered-models/alias", &[("name", name), ("alias", alias)]) {
            Ok(v) => Ok(Some(model_version(&v["model_version"]))),
            Err(e) if Self::is_missing(&e) || e.api_code() == Some("INVALID_PARAMETER_VALUE") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        self.api("POST", "model-versions/set-tag", json!({ "name": name, "version": version.to_string(), "key": key, "value": value }))?;
        Ok(())
    }

    fn promote(&self, name: &str, version: u64, stage: &str, alias: &str) -> Result<Promotion> {
        let previous_alias_holder = self.get_by_alias(name, alias)?.map(|v| v.version);
        let archived = self.transition_stage(name, version, stage, true)?;
        self.set_alias(name, alias, version)?;
        Ok(Promotion { archived, previous_alias_holder, holder_after: Some(version) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};

    /// (request line, Authorization header) of each request a stub received.
    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    /// A tiny HTTP stub on 127.0.0.1 answering every request with `status` and `body`; it records
    /// each request's first line and Authorization header.
    fn stub(status: u16, body: &'static str) -> (String, Seen) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let (mut first, mut auth, mut len, mut line) = (String::new(), String::new(), 0usize, String::new());
                r.read_line(&mut first).unwrap_or(0);
                while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = line["authorization:".len()..].trim().to_string();
                    }
                    line.clear();
                }
                let mut b = vec![0u8; len];
                let _ = r.read_exact(&mut b);
                rec.lock().unwrap().push((first.trim().to_string(), auth));
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn quick() -> Retry {
        Retry { attempts: 3, base: Duration::from_millis(10) }
    }

    #[test]
    fn server_errors_are_retried_then_reported_with_the_endpoint() {
        let (url, seen) = stub(500, "{\"error_code\":\"INTERNAL_ERROR\"}");
        let s = RestStore::new(&url).with_retry(quick());
        let err = s.get_or_create_experiment("x").unwrap_err().to_string();
        assert!(err.contains("experiments/get-by-name") && err.contains("gave up after 3 attempts") && err.contains("HTTP 500"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn client_errors_show_mlflow_error_code_and_message_without_retry() {
        let (url, seen) = stub(400, "{\"error_code\":\"INVALID_PARAMETER_VALUE\",\"message\":\"Missing value for required parameter\"}");
        let s = RestStore::new(&url).with_retry(quick());
        let err = s.end_run("abc", RunStatus::Finished).unwrap_err().to_string();
        assert!(
            err.contains("INVALID_PARAMETER_VALUE") && err.contains("Missing value for required parameter") && err.contains("runs/update"),
            "{err}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn connection_refused_is_retried_then_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = RestStore::new(&format!("http://127.0.0.1:{port}")).with_retry(quick());
        let err = s.get_run("r").unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}/api/2.0/mlflow/runs/get")) && err.contains("gave up"), "{err}");
    }

    #[test]
    fn credentials_are_sent_but_never_shown() {
        let (url, seen) = stub(503, "{}");
        let with_user = url.replace("http://", "http://bob:s3cret@");
        let s = RestStore::with_env(&with_user, |_| None).with_retry(Retry { attempts: 1, base: Duration::from_millis(1) });
        assert!(!s.location().contains("s3cret") && !format!("{s:?}").contains("s3cret"));
        let err = s.get_run("r").unwrap_err().to_string();
        assert!(!err.contains("s3cret") && !err.contains("bob"), "{err}");
        let (_, auth) = seen.lock().unwrap()[0].clone();
        use base64::Engine as _;
        assert_eq!(auth, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bob:s3cret")));
    }

    #[test]
    fn bearer_token_from_the_environment_is_sent_but_never_shown() {
        let (url, seen) = stub(500, "{}");
        // A lookup instead of the process environment: no test mutates it, so none races another.
        let env = |k: &str| (k == TOKEN_ENV).then(|| "tok-very-secret".to_string());
        let s = RestStore::with_env(&url, env).with_retry(Retry { attempts: 1, base: Duration::from_millis(1) });
        let err = s.search_runs("1").unwrap_err().to_string();
        assert!(!err.contains("tok-very-secret") && !format!("{s:?}").contains("tok-very-secret"), "{err}");
        assert_eq!(seen.lock().unwrap()[0].1, "Bearer tok-very-secret");
    }

    #[test]
    fn artifacts_go_through_the_proxy_for_mlflow_artifacts_uris() {
        let (url, seen) = stub(
            200,
            "{\"run\":{\"info\":{\"run_id\":\"r1\",\"artifact_uri\":\"mlflow-artifacts:/1/r1/artifacts\",\"status\":\"RUNNING\"}}}",
        );
        let s = RestStore::new(&url).with_retry(quick());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.json");
        std::fs::write(&f, "{}").unwrap();
        s.log_artifact("r1", &f, "model").unwrap();
        let reqs = seen.lock().unwrap().clone();
        assert!(reqs.iter().any(|(l, _)| l.starts_with("PUT /api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/model/m.json")), "{reqs:?}");
    }

    #[test]
    fn default_retry_schedule_and_timeouts() {
        // What the README promises: 5 attempts, waits of 0.25 s, 0.5 s, 1 s, 2 s; a 5 s connect and
        // 60 s request timeout.
        let s = RestStore::with_env("http://127.0.0.1:9", |_| None);
        assert_eq!(s.retry().attempts, 5);
        let ms: Vec<u128> = s.retry().delays().iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [250, 500, 1000, 2000]);
        assert_eq!(Timeouts::default(), Timeouts { connect: Duration::from_secs(5), request: Duration::from_secs(60) });
    }

    #[test]
    fn a_server_that_never_answers_times_out_and_is_retried() {
        // Accepts connections and reads, never answers.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(0usize));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().flatten() {
                *count.lock().unwrap() += 1;
                held.push(s);
            }
        });
        let t = Timeouts { connect: Duration::from_millis(200), request: Duration::from_millis(300) };
        let s = RestStore::with_env(&url, |_| None).with_retry(Retry { attempts: 2, base: Duration::from_millis(10) }).with_timeouts(t);
        let started = std::time::Instant::now();
        let err = s.get_run("r").unwrap_err().to_string();
        let took = started.elapsed();
        assert!(err.contains("gave up after 2 attempts") && err.contains("runs/get"), "{err}");
        assert!(took >= Duration::from_millis(600) && took < Duration::from_secs(5), "{took:?}");
        assert_eq!(*accepted.lock().unwrap(), 2);
    }

    #[test]
    fn redacts_user_info() {
        assert_eq!(redact("https://bob:s3cret@mlflow.example.com/base"), "https://mlflow.example.com/base");
        assert_eq!(redact("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(credentials_from_uri("https://bob:s3cret@h/x"), Some(("bob".into(), "s3cret".into())));
    }
}
