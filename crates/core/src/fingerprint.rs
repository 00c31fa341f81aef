//! Stage fingerprints: what a stage's result depends on, so an unchanged stage can be skipped.
//!
//! A fingerprint combines (1) the content hashes of the stage's input artifacts and the data
//! version, and (2) the hash of the params sections the stage reads — both declared by the stage
//! itself ([`Reads`]) — and (3) the
//! identity of the code ([`code_identity`]: crate version, git commit and uncommitted changes).
//! Log levels and output paths are not part of it. Each stage writes `fingerprint.json` into its
//! own directory, together with the hashes of its outputs; [`check`] says whether the stage is up
//! to date: same fingerprint, outputs present and intact.
//!
//! The registry is an input of evaluate and deploy (the champion decides), but a change made by
//! this pipeline's own deploy must not make the next run stale, so the registry state is compared
//! separately: it must equal what the stage saw, or what the following deploy left.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::artifacts::{self as art, Artifact, Layout, StageId};
use crate::error::{IoContext, Result};
use crate::params::Params;

pub const FILE: &str = "fingerprint.json";

/// Fast content hash (BLAKE3, multi-threaded for large files).
pub fn hash_file(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let meta = std::fs::metadata(path).at(path)?;
    if meta.len() > 16 << 20 {
        hasher.update_mmap_rayon(path).at(path)?;
    } else {
        hasher.update_reader(std::fs::File::open(path).at(path)?).at(path)?;
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// What a stage reads, declared by the stage itself (each stage crate's `READS`); the
/// fingerprint code takes it as an argument and keeps no list of its own.
#[derive(Debug, Clone, Copy)]
pub struct Reads {
    pub stage: StageId,
    /// Artifacts of earlier stages it reads (besides the raw file for data, and the registry).
    pub artifacts: &'static [Artifact],
    /// The params sections it reads, as JSON; their hash is part of the fingerprint.
    pub params: fn(&Params) -> serde_json::Value,
    /// It reads the data version (sha256 of the raw file) from `data/run.json` and records it with
    /// its results. The data version is the input, not the whole file, which holds timestamps:
    /// a re-run of data on the same raw file does not make the stages after it stale, a different
    /// raw file does, even when the gold data comes out the same.
    pub data_version: bool,
}

/// Environment variable that fixes the code identity (the Dagger engine passes the host's into
/// the image, so fingerprints agree inside and outside the container).
pub const CODE_ID_ENV: &str = "LEADFLOW_CODE_ID";

/// Identity of the running code: `LEADFLOW_CODE_ID` if set; else crate version + git commit +
/// a hash of uncommitted changes (`git diff HEAD`); without git, the executable's size and mtime.
pub fn code_identity(crate_version: &str) -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        if let Ok(id) = std::env::var(CODE_ID_ENV) {
            if !id.trim().is_empty() {
                return id.trim().to_string();
            }
        }
        if let Some(commit) = crate::meta::git_commit() {
            let diff = std::process::Command::new("git")
                .args(["diff", "HEAD", "--", ".", ":(exclude)data", ":(exclude)*.md", ":(exclude)params.toml"])
                .stderr(std::process::Stdio::null())
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default();
            let dirty = if diff.is_empty() { String::new() } else { format!("+{}", &crate::hash::sha256_hex(&diff)[..16]) };
            return format!("{crate_version}/{commit}{dirty}");
        }
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| {
                let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
                format!("{}:{mtime}", m.len())
            })
            .unwrap_or_default();
        format!("{crate_version}/exe:{exe}")
    })
    .clone()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub stage: String,
    /// The combined key (inputs + params + code).
    pub key: String,
    pub inputs: BTreeMap<String, String>,
    pub params: String,
    pub code: String,
    /// Registry state the stage saw (evaluate, deploy) — or left behind (deploy).
    #[serde(default)]
    pub registry: Option<String>,
    /// Hashes of the stage's outputs, to detect deleted or edited files.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// The stage committed its outputs and then failed (evaluate's quality gate): the error it
    /// returned. A skipped stage replays it, so running a failing pipeline twice fails twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Compute a stage's fingerprint from its current inputs. `raw` is the data stage's input file.
pub fn compute(reads: &Reads, layout: &Layout, p: &Params, raw: Option<&Path>, crate_version: &str) -> Result<Fingerprint> {
    let stage = reads.stage;
    let mut inputs = BTreeMap::new();
    if let Some(r) = raw {
        inputs.insert("raw".to_string(), hash_file(r)?);
    }
    if reads.data_version {
        let path = layout.path(&art::DATA_META);
        if path.is_file() {
            inputs.insert("data_version".to_string(), crate::meta::read(&path)?.data_version);
        }
    }
    for a in reads.artifacts {
        let path = layout.path(a);
        if path.is_file() {
            inputs.insert(format!("{}/{}", a.dir, a.name), hash_file(&path)?);
        }
    }
    let params = Params::section_hash(&(reads.params)(p));
    let code = code_identity(crate_version);
    let key = crate::hash::sha256_hex(serde_json::to_string(&(stage.name(), &inputs, &params, &code)).unwrap_or_default().as_bytes());
    Ok(Fingerprint { stage: stage.name().into(), key, inputs, params, code, registry: None, outputs: BTreeMap::new(), failure: None })
}

/// Hash every file of a finished stage directory (except the fingerprint and run metadata).
pub fn output_hashes(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name().to_string_lossy().to_string();
        if name == FILE || name == art::RUN_META || !e.path().is_file() {
            continue;
        }
        out.insert(name, hash_file(&e.path())?);
    }
    Ok(out)
}

/// Fill in the output hashes and write `fingerprint.json` into a stage directory being built.
/// `model_dir` is the deploy stage's second output (the model directory), hashed under `model/`;
/// a deploy that promoted nothing exports none.
pub fn write(dir: &Path, mut fp: Fingerprint, model_dir: Option<&Path>) -> Result<()> {
    fp.outputs = all_outputs(dir, model_dir)?;
    art::write_json(&dir.join(FILE), &fp)
}

fn all_outputs(dir: &Path, model_dir: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let mut out = output_hashes(dir)?;
    if let Some(m) = model_dir.filter(|m| m.exists()) {
        for (k, v) in output_hashes(m)? {
            out.insert(format!("{}/{k}", art::MODEL_DIR), v);
        }
    }
    Ok(out)
}

pub fn read(dir: &Path) -> Option<Fingerprint> {
    art::read_json(&dir.join(FILE), "a fingerprint").ok()
}

/// Whether a stage can be skipped, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    UpToDate,
    /// Up to date, and its recorded result is this failure: skipping it fails again with the
    /// same message (a rejected model stays rejected until something it depends on changes).
    UpToDateFailed(String),
    Stale(String),
}

/// Compare a stage's stored fingerprint with its current inputs and outputs. `registry_now`
/// gives the registry state that matters for a decision (see `leadflow_mlflow::registry::state`).
pub fn check(
    reads: &Reads,
    layout: &Layout,
    p: &Params,
    raw: Option<&Path>,
    crate_version: &str,
    registry_now: Option<&dyn Fn() -> String>,
) -> Result<Status> {
    let stage = reads.stage;
    let dir = layout.stage_dir(stage);
    let Some(stored) = read(&dir) else { return Ok(Status::Stale("no previous result".into())) };
    let now = compute(reads, layout, p, raw, crate_version)?;
    if stored.code != now.code {
        return Ok(Status::Stale("the code changed".into()));
    }
    if stored.params != now.params {
        return Ok(Status::Stale("params it reads changed".into()));
    }
    if stored.inputs != now.inputs {
        let changed: std::collections::BTreeSet<&String> =
            now.inputs.keys().chain(stored.inputs.keys()).filter(|k| stored.inputs.get(*k) != now.inputs.get(*k)).collect();
        let changed: Vec<&str> = changed.into_iter().map(String::as_str).collect();
        return Ok(Status::Stale(format!("inputs changed: {}", changed.join(", "))));
    }
    let model_dir = (stage == StageId::Deploy).then(|| layout.model_dir());
    match all_outputs(&dir, model_dir.as_deref()) {
        Ok(outputs) if outputs == stored.outputs => {}
        _ => return Ok(Status::Stale("an output was deleted or edited".into())),
    }
    if let (Some(registry_now), Some(seen)) = (registry_now, stored.registry.as_ref()) {
        let current = registry_now();
        let left_by_deploy = match stage {
            StageId::Evaluate => read(&layout.stage_dir(StageId::Deploy))
                .filter(|d| {
                    d.inputs.get(&format!("{}/{}", art::EVALUATION.dir, art::EVALUATION.name)) == stored.outputs.get(art::EVALUATION.name)
                })
                .and_then(|d| d.registry),
            _ => None,
        };
        if &current != seen && Some(&current) != left_by_deploy.as_ref() {
            return Ok(Status::Stale("the registry changed".into()));
        }
    }
    Ok(match stored.failure {
        Some(message) => Status::UpToDateFailed(message),
        None => Status::UpToDate,
    })
}
