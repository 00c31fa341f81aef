//! Experiment tracking, MLflow-style.
//!
//! [`Tracker`] is the interface every stage logs through. [`FileStore`] implements it (and
//! [`crate::registry::Registry`]) on MLflow's file-store layout, so `mlflow ui
//! --backend-store-uri ./mlruns` can browse what leadflow wrote:
//!
//! ```text
//! mlruns/<experiment_id>/meta.yaml
//! mlruns/<experiment_id>/<run_id>/meta.yaml
//! mlruns/<experiment_id>/<run_id>/{params,metrics,tags}/<key>
//! mlruns/<experiment_id>/<run_id>/artifacts/...
//! mlruns/models/<name>/...            (the model registry, see `registry`)
//! ```
//!
//! The trait mirrors MLflow's REST API 2.0 (experiments get-by-name/create, runs create,
//! log-batch, update, get, search) so a REST implementation can stand behind it unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::write_atomic;
use crate::error::{Error, IoContext, Result};
use crate::yaml::{self, Value};

/// Environment variable naming the tracking store (a path, a `file:` URI, or an http(s) URL).
pub const TRACKING_URI_ENV: &str = "MLFLOW_TRACKING_URI";
/// Default embedded store, relative to the working directory.
pub const DEFAULT_STORE: &str = "mlruns";
/// The embedded SQLite database's file name inside [`DEFAULT_STORE`].
pub const DEFAULT_DB: &str = "mlflow.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    /// MLflow's numeric code in the file store.
    pub fn code(self) -> i64 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Scheduled => 2,
            RunStatus::Finished => 3,
            RunStatus::Failed => 4,
            RunStatus::Killed => 5,
        }
    }
    pub fn from_code(c: i64) -> Option<RunStatus> {
        Some(match c {
            1 => RunStatus::Running,
            2 => RunStatus::Scheduled,
            3 => RunStatus::Finished,
            4 => RunStatus::Failed,
            5 => RunStatus::Killed,
            _ => return None,
        })
    }
    /// MLflow's name in the REST API.
    /// MLflow's status name (anything unknown reads as KILLED).
    pub fn parse(s: &str) -> RunStatus {
        match s {
            "RUNNING" => RunStatus::Running,
            "SCHEDULED" => RunStatus::Scheduled,
            "FINISHED" => RunStatus::Finished,
            "FAILED" => RunStatus::Failed,
            _ => RunStatus::Killed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

impl MetricPoint {
    pub fn now(key: impl Into<String>, value: f64) -> MetricPoint {
        MetricPoint { key: key.into(), value, timestamp: now_millis(), step: 0 }
    }
}

/// A run as read back from a store.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    pub status: RunStatus,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub params: BTreeMap<String, String>,
    /// Latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
}

/// What the stages need from an experiment tracker.
pub trait Tracker: Send + Sync {
    /// Human-readable location (path or URL), for logs. Never contains secrets.
    fn location(&self) -> String;
    fn get_or_create_experiment(&self, name: &str) -> Result<String>;
    /// The id of the active experiment `name`, if there is one; takes no lock and writes nothing.
    fn find_experiment(&self, name: &str) -> Result<Option<String>>;
    fn create_run(&self, experiment_id: &str, run_name: &str, tags: &[(String, String)]) -> Result<String>;
    fn log_batch(&self, run_id: &str, params: &[(String, String)], metrics: &[MetricPoint], tags: &[(String, String)]) -> Result<()>;
    /// Copy a local file into the run's artifacts under `dest_dir` (may be empty).
    fn log_artifact(&self, run_id: &str, local: &Path, dest_dir: &str) -> Result<()>;
    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()>;
    fn get_run(&self, run_id: &str) -> Result<RunRecord>;
    fn search_runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>>;
    /// The run's artifact URI (where logged artifacts live).
    fn artifact_uri(&self, run_id: &str) -> Result<String> {
        Ok(self.get_run(run_id)?.artifact_uri)
    }
    /// Fetch the files `names` of an artifact folder URI (e.g. a registered version's source)
    /// into `dest`. Local (`file://` or absolute) URIs are copied.
    fn download(&self, uri: &str, names: &[&str], dest: &Path) -> Result<()> {
        let dir = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
        if !dir.is_absolute() {
            return Err(store_err(format!("cannot read artifacts at {uri}")));
        }
        for n in names {
            let from = dir.join(n);
            std::fs::copy(&from, dest.join(n)).at(&from)?;
        }
        Ok(())
    }
}

pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A fresh 32-hex-digit run id (MLflow's format).
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let seed = h.finish();
    leadflow_core::hash::sha256_hex(&seed.to_le_bytes())[..32].to_string()
}

/// MLflow's file store.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

fn store_err(msg: impl Into<String>) -> Error {
    Error::Tracking(msg.into())
}

fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Keys MLflow accepts as file names: no path separators, no `..`.
fn check_key(kind: &str, key: &str) -> Result<()> {
    if key.is_empty() || key.contains("..") || key.starts_with('/') || key.contains('\\') {
        return Err(store_err(format!("invalid {kind} name {key:?}")));
    }
    Ok(())
}

impl FileStore {
    /// Open (creating if needed) a store at `root`; the root is made absolute so artifact URIs
    /// stay valid from any working directory.
    pub fn open(root: impl AsRef<Path>) -> Result<FileStore> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).at(root)?;
        let root = std::fs::canonicalize(root).at(root)?;
        let store = FileStore { root };
        let default = store.root.join("0");
        if !default.join("meta.yaml").exists() {
            store.write_experiment_meta("0", "Default")?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn write_experiment_meta(&self, id: &str, name: &str) -> Result<()> {
        let dir = self.root.join(id);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let now = now_millis();
        let text = yaml::emit(&[
            ("artifact_location", Value::Str(file_uri(&dir))),
            ("creation_time", Value::Int(now)),
            ("experiment_id", Value::Str(id.into())),
            ("last_update_time", Value::Int(now)),
            ("lifecycle_stage", Value::Str("active".into())),
            ("name", Value::Str(name.into())),
        ]);
        write_atomic(&dir.join("meta.yaml"), text.as_bytes())
    }

    fn experiments(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root).at(&self.root)? {
            let entry = entry.at(&self.root)?;
            let id = entry.file_name().to_string_lossy().to_string();
            if !id.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let meta = entry.path().join("meta.yaml");
            let Ok(text) = std::fs::read_to_string(&meta) else { continue };
            let Some(m) = yaml::parse(&text) else { continue };
            if m.get("lifecycle_stage").map(String::as_str) == Some("deleted") {
                continue;
            }
            if let Some(name) = m.get("name") {
                out.push((id, name.clone()));
            }
        }
        out.sort_by_key(|(id, _)| id.parse::<u64>().unwrap_or(0));
        Ok(out)
    }

    fn find_run_dir(&self, run_id: &str) -> Result<PathBuf> {
        check_key("run id", run_id)?;
        for (id, _) in self.experiments()? {
            let d = self.root.join(&id).join(run_id);
            if d.join("meta.yaml").exists() {
                return Ok(d);
            }
        }
        Err(store_err(format!("run {run_id} not found in {}", self.root.display())))
    }

    fn read_kv_dir(dir: &Path) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        if !dir.exists() {
            return Ok(out);
        }
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).at(&d)? {
                let entry = entry.at(&d)?;
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let key = p.strip_prefix(dir).map(|k| k.to_string_lossy().to_string()).unwrap_or_default();
                if key.starts_with('.') {
                    continue;
                }
                out.insert(key, std::fs::read_to_string(&p).at(&p)?);
            }
        }
        Ok(out)
    }

    fn write_kv(dir: &Path, key: &str, value: &str) -> Result<()> {
        let p = dir.join(key);
        write_atomic(&p, value.as_bytes())
    }

    fn read_run(&self, dir: &Path) -> Result<RunRecord> {
        let meta_path = dir.join("meta.yaml");
        let text = std::fs::read_to_string(&meta_path).at(&meta_path)?;
        let m = yaml::parse(&text).ok_or_else(|| store_err(format!("{}: not a flat YAML mapping", meta_path.display())))?;
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let status = get("status")
            .parse::<i64>()
            .ok()
            .and_then(RunStatus::from_code)
            .ok_or_else(|| store_err(format!("{}: bad `status`", meta_path.display())))?;
        let mut metrics = BTreeMap::new();
        for (k, v) in Self::read_kv_dir(&dir.join("metrics"))? {
            // Each line: "<timestamp> <value> <step>"; the latest (by step, then time) wins.
            let mut best: Option<(i64, i64, f64)> = None;
            for line in v.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 2 {
                    continue;
                }
                let ts = f[0].parse().unwrap_or(0);
                let val: f64 = f[1].parse().unwrap_or(f64::NAN);
                let step = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
                if best.is_none_or(|(s, t, _)| (step, ts) >= (s, t)) {
                    best = Some((step, ts, val));
                }
            }
            if let Some((_, _, val)) = best {
                metrics.insert(k, val);
            }
        }
        Ok(RunRecord {
            run_id: get("run_id"),
            experiment_id: get("experiment_id"),
            run_name: get("run_name"),
            status,
            start_time: get("start_time").parse().unwrap_or(0),
            end_time: get("end_time").parse().ok(),
            artifact_uri: get("artifact_uri"),
            params: Self::read_kv_dir(&dir.join("params"))?,
            metrics,
            tags: Self::read_kv_dir(&dir.join("tags"))?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn write_run_meta(
        &self,
        dir: &Path,
        experiment_id: &str,
        run_id: &str,
        run_name: &str,
        status: RunStatus,
        start: i64,
        end: Option<i64>,
    ) -> Result<()> {
        let text = yaml::emit(&[
            ("artifact_uri", Value::Str(file_uri(&dir.join("artifacts")))),
            ("end_time", end.map(Value::Int).unwrap_or(Value::Str(String::new()))),
            ("entry_point_name", Value::Str(String::new())),
            ("experiment_id", Value::Str(experiment_id.into())),
            ("lifecycle_stage", Value::Str("active".into())),
            ("name", Value::Str(String::new())),
            ("run_id", Value::Str(run_id.into())),
            ("run_name", Value::Str(run_name.into())),
            ("run_uuid", Value::Str(run_id.into())),
            ("source_name", Value::Str(String::new())),
            ("source_type", Value::Int(4)),
            ("source_version", Value::Str(String::new())),
            ("start_time", Value::Int(start)),
            ("status", Value::Int(status.code())),
            ("tags", Value::EmptyList),
            ("user_id", Value::Str("leadflow".into())),
        ]);
        write_atomic(&dir.join("meta.yaml"), text.as_bytes())
    }
}

impl Tracker for FileStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn find_experiment(&self, name: &str) -> Result<Option<String>> {
        Ok(self.experiments()?.into_iter().find(|(_, n)| n == name).map(|(id, _)| id))
    }

    fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        let _lock = crate::lock::lock_file(&self.root.join(".leadflow.lock"))?;
        let existing = self.experiments()?;
        if let Some((id, _)) = existing.iter().find(|(_, n)| n == name) {
            return Ok(id.clone());
        }
        let next = existing.iter().filter_map(|(id, _)| id.parse::<u64>().ok()).max().map_or(1, |m| m + 1).max(1);
        let id = next.to_string();
        self.write_experiment_meta(&id, name)?;
        Ok(id)
    }

    fn create_run(&self, experiment_id: &str, run_name: &str, tags: &[(String, String)]) -> Result<String> {
        check_key("experiment id", experiment_id)?;
        let _permit = leadflow_core::artifacts::write_permit();
        let run_id = new_run_id();
        let dir = self.root.join(experiment_id).join(&run_id);
        std::fs::create_dir_all(dir.join("artifacts")).at(&dir)?;
        for sub in ["params", "metrics", "tags"] {
            std::fs::create_dir_all(dir.join(sub)).at(&dir)?;
        }
        let mut all_tags = vec![
            ("mlflow.runName".to_string(), run_name.to_string()),
            ("mlflow.user".to_string(), "leadflow".to_string()),
            ("mlflow.source.type".to_string(), "LOCAL".to_string()),
            ("mlflow.source.name".to_string(), "leadflow".to_string()),
        ];
        all_tags.extend(tags.iter().cloned());
        for (k, v) in &all_tags {
            check_key("tag", k)?;
            Self::write_kv(&dir.join("tags"), k, v)?;
        }
        // meta.yaml last: a run directory without it is ignored by readers.
        self.write_run_meta(&dir, experiment_id, &run_id, run_name, RunStatus::Running, now_millis(), None)?;
        Ok(run_id)
    }

    fn log_batch(&self, run_id: &str, params: &[(String, String)], metrics: &[MetricPoint], tags: &[(String, String)]) -> Result<()> {
        use std::io::Write;
        let _permit = leadflow_core::artifacts::write_permit();
        let dir = self.find_run_dir(run_id)?;
        for (k, v) in params {
            check_key("param", k)?;
            let p = dir.join("params").join(k);
            if let Ok(old) = std::fs::read_to_string(&p) {
                if &old != v {
                    return Err(store_err(format!("run {run_id}: param `{k}` already logged as {old:?}, cannot change it to {v:?}")));
                }
                continue;
            }
            Self::write_kv(&dir.join("params"), k, v)?;
        }
        for m in metrics {
            check_key("metric", &m.key)?;
            let p = dir.join("metrics").join(&m.key);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).at(parent)?;
            }
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p).at(&p)?;
            writeln!(f, "{} {} {}", m.timestamp, m.value, m.step).at(&p)?;
        }
        for (k, v) in tags {
            check_key("tag", k)?;
            Self::write_kv(&dir.join("tags"), k, v)?;
        }
        Ok(())
    }

    fn log_artifact(&self, run_id: &str, local: &Path, dest_dir: &str) -> Result<()> {
        let dir = self.find_run_dir(run_id)?;
        if !dest_dir.is_empty() {
            check_key("artifact path", dest_dir)?;
        }
        let target_dir = dir.join("artifacts").join(dest_dir);
        let _permit = leadflow_core::artifacts::write_permit();
        std::fs::create_dir_all(&target_dir).at(&target_dir)?;
        let name = local.file_name().ok_or_else(|| store_err(format!("artifact {} has no file name", local.display())))?;
        let bytes = std::fs::read(local).at(local)?;
        write_atomic(&target_dir.join(name), &bytes)
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        let dir = self.find_run_dir(run_id)?;
        let rec = self.read_run(&dir)?;
        self.write_run_meta(&dir, &rec.experiment_id, run_id, &rec.run_name, status, rec.start_time, Some(now_millis()))
    }

    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        let dir = self.find_run_dir(run_id)?;
        self.read_run(&dir)
    }

    fn search_runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>> {
        check_key("experiment id", experiment_id)?;
        let exp = self.root.join(experiment_id);
        let mut out = Vec::new();
        if !exp.exists() {
            return Ok(out);
        }
        for entry in std::fs::read_dir(&exp).at(&exp)? {
            let entry = entry.at(&exp)?;
            if entry.path().join("meta.yaml").is_file() {
                out.push(self.read_run(&entry.path())?);
            }
        }
        out.sort_by(|a, b| b.start_time.cmp(&a.start_time).then(a.run_id.cmp(&b.run_id)));
        Ok(out)
    }
}

/// Where the tracking store is, as configured by `MLFLOW_TRACKING_URI` (or the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// MLflow's file layout in this directory (a path or `file://` URI, as MLflow reads them).
    Local(PathBuf),
    /// The embedded SQLite store: this database file in MLflow's schema, artifacts beside it
    /// (`sqlite:///relative.db`, `sqlite:////absolute.db`, as MLflow writes them).
    Sqlite(PathBuf),
    Remote(String),
}

impl StoreLocation {
    pub fn from_env() -> StoreLocation {
        StoreLocation::parse(std::env::var(TRACKING_URI_ENV).ok().as_deref())
    }

    /// Unset: the embedded SQLite store `mlruns/mlflow.db`, unless `./mlruns` already holds a
    /// file store (made by an earlier leadflow), which is then used as it is.
    pub fn parse(uri: Option<&str>) -> StoreLocation {
        match uri.map(str::trim) {
            None | Some("") => {
                let dir = PathBuf::from(DEFAULT_STORE);
                let file_store = dir.join("0").join("meta.yaml").is_file() && !dir.join(DEFAULT_DB).exists();
                if file_store {
                    StoreLocation::Local(dir)
                } else {
                    StoreLocation::Sqlite(dir.join(DEFAULT_DB))
                }
            }
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => StoreLocation::Remote(u.trim_end_matches('/').to_string()),
            Some(u) if u.starts_with("sqlite:///") => StoreLocation::Sqlite(PathBuf::from(&u["sqlite:///".len()..])),
            Some(u) => {
                let dir = PathBuf::from(u.strip_prefix("file://").unwrap_or(u));
                // A folder that holds the embedded database is that database, not a file store.
                if dir.join(DEFAULT_DB).is_file() && !dir.join("0").join("meta.yaml").is_file() {
                    StoreLocation::Sqlite(dir.join(DEFAULT_DB))
                } else {
                    StoreLocation::Local(dir)
                }
            }
        }
    }

    /// As a tracking URI that names the same store from any working directory (local paths made
    /// absolute), for recording which store a run used.
    pub fn absolute_uri(&self) -> String {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        match self {
            StoreLocation::Local(p) => abs(p).display().to_string(),
            StoreLocation::Sqlite(p) => StoreLocation::sqlite_uri(&abs(p)),
            StoreLocation::Remote(u) => u.clone(),
        }
    }

    /// Where the store lives on this machine, if it is local.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            StoreLocation::Local(p) | StoreLocation::Sqlite(p) => Some(p),
            StoreLocation::Remote(_) => None,
        }
    }

    /// As an `MLFLOW_TRACKING_URI` value for `path` (absolute paths keep their leading slash).
    pub fn sqlite_uri(db: &Path) -> String {
        format!("sqlite:///{}", db.display())
    }
}

/// Tags that say which process owns a run, so a run left RUNNING by a killed process can be
/// recognised and marked KILLED.
pub const PID_TAG: &str = "leadflow.pid";
pub const HOST_TAG: &str = "leadflow.host";

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn pid_alive(pid: u32) -> bool {
    if !Path::new("/proc").is_dir() {
        return true; // cannot tell: leave it alone
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Mark KILLED every RUNNING run of `experiment_id` that this host's dead processes left behind.
pub fn reap_dead_runs(tracker: &dyn Tracker, experiment_id: &str) -> Result<Vec<String>> {
    let host = hostname();
    let mut reaped = Vec::new();
    for r in tracker.search_runs(experiment_id)? {
        if r.status != RunStatus::Running || r.tags.get(HOST_TAG) != Some(&host) {
            continue;
        }
        let Some(pid) = r.tags.get(PID_TAG).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !pid_alive(pid) {
            tracker.end_run(&r.run_id, RunStatus::Killed)?;
            reaped.push(r.run_id);
        }
    }
    Ok(reaped)
}

/// Mark KILLED the RUNNING runs this process owns (Ctrl-C).
pub fn kill_own_runs(tracker: &dyn Tracker, experiment_id: &str) -> Result<usize> {
    let me = std::process::id().to_string();
    let mut n = 0;
    for r in tracker.search_runs(experiment_id)? {
        if r.status == RunStatus::Running && r.tags.get(PID_TAG) == Some(&me) {
            tracker.end_run(&r.run_id, RunStatus::Killed)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("mlruns")).unwrap();
        let exp = store.get_or_create_experiment("lead-conversion").unwrap();
        assert_eq!(exp, "1");
        assert_eq!(store.get_or_create_experiment("lead-conversion").unwrap(), "1");
        let run = store.create_run(&exp, "xgboost", &[("k".into(), "v".into())]).unwrap();
        store
            .log_batch(
                &run,
                &[("max_depth".into(), "5".into())],
                &[MetricPoint::now("f1", 0.5), MetricPoint { step: 1, ..MetricPoint::now("f1", 0.8) }],
                &[],
            )
            .unwrap();
        store.end_run(&run, RunStatus::Finished).unwrap();
        let r = store.get_run(&run).unwrap();
        assert_eq!(r.status, RunStatus::Finished);
        assert_eq!(r.params["max_depth"], "5");
        assert_eq!(r.metrics["f1"], 0.8);
        assert_eq!(r.tags["k"], "v");
        assert_eq!(r.run_name, "xgboost");
        assert_eq!(store.search_runs(&exp).unwrap().len(), 1);
        // Params are immutable, as in MLflow.
        assert!(store.log_batch(&run, &[("max_depth".into(), "6".into())], &[], &[]).is_err());
    }

    #[test]
    fn location_parsing() {
        // (The crate's directory holds no ./mlruns file store.)
        assert_eq!(StoreLocation::parse(None), StoreLocation::Sqlite("mlruns/mlflow.db".into()));
        assert_eq!(StoreLocation::parse(Some("sqlite:///mlflow.db")), StoreLocation::Sqlite("mlflow.db".into()));
        assert_eq!(StoreLocation::parse(Some("sqlite:////abs/m.db")), StoreLocation::Sqlite("/abs/m.db".into()));
        assert_eq!(StoreLocation::sqlite_uri(std::path::Path::new("/abs/m.db")), "sqlite:////abs/m.db");
        assert_eq!(StoreLocation::parse(Some("http://127.0.0.1:5000/")), StoreLocation::Remote("http://127.0.0.1:5000".into()));
        assert_eq!(StoreLocation::parse(Some("file:///x/mlruns")), StoreLocation::Local("/x/mlruns".into()));
    }
}
