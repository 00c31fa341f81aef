//! Run metadata that every stage writes next to its outputs (`run.json`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::artifacts::StageId;

/// What ran, on what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub stage: String,
    /// sha256 of the raw input file: the data version.
    pub data_version: String,
    pub params_hash: String,
    pub crate_version: String,
    pub git_commit: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// Named row counts (e.g. `raw`, `after_date_filter`, `gold`).
    pub rows: BTreeMap<String, usize>,
    /// Free-form extra facts (e.g. the raw file name, tracking run ids).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Start time holder: call [`RunClock::finish`] when the stage is done.
#[derive(Debug, Clone)]
pub struct RunClock {
    started: chrono::DateTime<chrono::Utc>,
    instant: std::time::Instant,
}

impl Default for RunClock {
    fn default() -> Self {
        RunClock::start()
    }
}

impl RunClock {
    pub fn start() -> RunClock {
        RunClock { started: chrono::Utc::now(), instant: std::time::Instant::now() }
    }

    pub fn started_millis(&self) -> i64 {
        self.started.timestamp_millis()
    }

    pub fn finish(
        &self,
        stage: StageId,
        crate_version: &str,
        data_version: String,
        params_hash: String,
        rows: BTreeMap<String, usize>,
    ) -> RunMeta {
        RunMeta {
            stage: stage.name().into(),
            data_version,
            params_hash,
            crate_version: crate_version.into(),
            git_commit: git_commit(),
            started_at: self.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: self.instant.elapsed().as_millis() as u64,
            rows,
            extra: BTreeMap::new(),
        }
    }
}

/// The git commit of the code, when known: `LEADFLOW_GIT_COMMIT` (set in container builds), else
/// `git rev-parse HEAD` in the working directory.
pub fn git_commit() -> Option<String> {
    if let Ok(c) = std::env::var("LEADFLOW_GIT_COMMIT") {
        if !c.trim().is_empty() {
            return Some(c.trim().to_string());
        }
    }
    // Asked once per process (a `git` process costs milliseconds; stages ask several times).
    static HEAD: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HEAD.get_or_init(|| {
        let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).stderr(std::process::Stdio::null()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!s.is_empty()).then_some(s)
    })
    .clone()
}

/// Read a stage's `run.json`.
pub fn read(path: &Path) -> crate::Result<RunMeta> {
    crate::artifacts::read_json(path, "run metadata")
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Reset the peak-memory counter (Linux: `echo 5 > /proc/self/clear_refs`); false if unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
