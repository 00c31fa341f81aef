//! Model registry in MLflow's file layout, inside the tracking store:
//!
//! ```text
//! mlruns/models/<name>/meta.yaml
//! mlruns/models/<name>/tags/<key>
//! mlruns/models/<name>/aliases/<alias>          (file content: the version number)
//! mlruns/models/<name>/version-<n>/meta.yaml
//! mlruns/models/<name>/version-<n>/tags/<key>
//! ```
//!
//! Every mutation holds an exclusive file lock (`mlruns/models/.leadflow.lock`), so concurrent
//! deploys never lose or duplicate a version; every file is replaced atomically, so a crash
//! never leaves a half-written entry. A damaged entry is reported, never overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::write_atomic;
use crate::error::{Error, IoContext, Result};
use crate::tracking::{now_millis, FileStore};
use crate::yaml::{self, Value};

pub const STAGES: &[&str] = &["None", "Staging", "Production", "Archived"];

/// Alias and tag names, defined once (in the contract crate).
pub use leadflow_core::names;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    pub name: String,
    pub version: u64,
    pub source: String,
    pub run_id: String,
    pub current_stage: String,
    pub status: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub aliases: Vec<String>,
}

/// What deploy and evaluate need from a model registry.
pub trait Registry: Send + Sync {
    /// Register `source` from `run_id` as a new version, or return the version already
    /// registered for that run (idempotent). The bool is true when a version was created.
    fn register_version(&self, name: &str, source: &str, run_id: &str, tags: &[(String, String)]) -> Result<(ModelVersion, bool)>;
    fn get_version(&self, name: &str, version: u64) -> Result<ModelVersion>;
    /// All versions, oldest first. `Ok(vec![])` when the model is not registered.
    fn list_versions(&self, name: &str) -> Result<Vec<ModelVersion>>;
    /// Move a version to `stage`; with `archive_existing`, other holders of that stage are moved
    /// to Archived. Returns the archived version numbers.
    fn transition_stage(&self, name: &str, version: u64, stage: &str, archive_existing: bool) -> Result<Vec<u64>>;
    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()>;
    /// Move `version` to `stage` (archiving the other holders) and point `alias` at it, as one
    /// step where the store allows (the file store does it under its lock).
    fn promote(&self, name: &str, version: u64, stage: &str, alias: &str) -> Result<Promotion> {
        let previous_alias_holder = self.get_by_alias(name, alias)?.map(|v| v.version);
        let archived = self.transition_stage(name, version, stage, true)?;
        self.set_alias(name, alias, version)?;
        Ok(Promotion { archived, previous_alias_holder, holder_after: Some(version) })
    }
    /// Compare-and-swap promotion: promote only if every alias in `expected` is still held by the
    /// version it names (`None`: no holder). This default, for registries without conditional
    /// updates (an MLflow server), re-reads the holders immediately before promoting and the
    /// alias immediately after: a change between those reads is the remaining window, and a
    /// later move is reported in [`Promotion::holder_after`].
    fn promote_if(&self, name: &str, version: u64, stage: &str, alias: &str, expected: &Holders) -> Result<Cas> {
        if let Some(changed) = changed_holder(expected, version, |a| Ok(self.get_by_alias(name, a)?.map(|v| v.version)))? {
            return Ok(changed);
        }
        let mut p = self.promote(name, version, stage, alias)?;
        p.holder_after = self.get_by_alias(name, alias)?.map(|v| v.version);
        Ok(Cas::Promoted(p))
    }
    fn get_by_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>>;
    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()>;
}

pub use leadflow_core::results::Holders;

/// The registry state that matters for a decision: who holds the champion and the stage alias.
pub fn state(store: &dyn Registry, p: &leadflow_core::Params) -> String {
    let name = &p.deploy.model_name;
    let mut parts = Vec::new();
    for alias in p.deploy.compared_aliases() {
        let holder = match store.get_by_alias(name, alias) {
            Ok(Some(v)) => format!("{}:{}", v.version, v.run_id),
            Ok(None) => "-".into(),
            Err(e) => format!("error:{e}"),
        };
        parts.push(format!("{alias}={holder}"));
    }
    parts.join(",")
}

/// Read the holders of `aliases`.
pub fn read_holders(reg: &dyn Registry, name: &str, aliases: &[&str]) -> Result<BTreeMap<String, Option<ModelVersion>>> {
    aliases.iter().map(|a| Ok((a.to_string(), reg.get_by_alias(name, a)?))).collect()
}

/// Outcome of [`Registry::promote_if`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cas {
    Promoted(Promotion),
    /// An alias is no longer held by the version the decision compared with.
    HolderChanged {
        alias: String,
        expected: Option<u64>,
        now: Option<u64>,
    },
}

/// The first alias whose holder is neither the expected one nor `version` itself (a re-deploy of
/// the same decision is idempotent).
pub(crate) fn changed_holder(expected: &Holders, version: u64, now_of: impl Fn(&str) -> Result<Option<u64>>) -> Result<Option<Cas>> {
    for (alias, &want) in expected {
        let now = now_of(alias)?;
        if now != want && now != Some(version) {
            return Ok(Some(Cas::HolderChanged { alias: alias.clone(), expected: want, now }));
        }
    }
    Ok(None)
}

/// What a promotion changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// Versions moved from the stage to Archived.
    pub archived: Vec<u64>,
    /// The version the alias pointed at before.
    pub previous_alias_holder: Option<u64>,
    /// The alias's holder read right after the promotion: the promoted version, unless another
    /// writer moved it in between (possible only on registries without conditional updates).
    pub holder_after: Option<u64>,
}

fn reg_err(msg: impl Into<String>) -> Error {
    Error::Registry(msg.into())
}

pub use crate::lock::{lock_file, FileLock};

/// The version holding `alias`, or an error that says what does exist: the model's aliases and
/// their versions, or that no such model is registered.
pub fn version_by_alias(store: &dyn Registry, name: &str, alias: &str) -> Result<ModelVersion> {
    check_alias(alias)?;
    if let Some(v) = store.get_by_alias(name, alias)? {
        return Ok(v);
    }
    let versions = store.list_versions(name)?;
    let held: Vec<String> = versions.iter().flat_map(|v| v.aliases.iter().map(move |a| format!("@{a} (v{})", v.version))).collect();
    let what = match (versions.is_empty(), held.is_empty()) {
        (true, _) => format!("no model {name:?} is registered in this store"),
        (false, true) => format!("model {name:?} has {} version(s) and no alias", versions.len()),
        (false, false) => format!("model {name:?} has {}", held.join(", ")),
    };
    Err(Error::Registry(format!(
        "model {name:?} has no version with alias {alias:?}: {what} (a pipeline run sets @challenger; a release, or deploy.stage = \"Production\", sets @champion)"
    )))
}

pub fn check_stage(stage: &str) -> Result<&'static str> {
    STAGES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(stage))
        .copied()
        .ok_or_else(|| reg_err(format!("unknown stage {stage:?}; expected one of {STAGES:?}")))
}

pub fn check_alias(alias: &str) -> Result<()> {
    let ok = !alias.is_empty() && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !alias.starts_with('v');
    if ok {
        Ok(())
    } else {
        Err(reg_err(format!("invalid alias {alias:?}: use letters, digits, _ or -, not starting with 'v'")))
    }
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains("..") || name.starts_with('.') {
        return Err(reg_err(format!("invalid registered model name {name:?}")));
    }
    Ok(())
}

impl FileStore {
    fn models_dir(&self) -> PathBuf {
        self.root().join("models")
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.models_dir().join(name)
    }

    fn lock_registry(&self) -> Result<FileLock> {
        lock_file(&self.models_dir().join(".leadflow.lock"))
    }

    fn version_numbers(&self, name: &str) -> Result<Vec<u64>> {
        let dir = self.model_dir(name);
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let n = entry.file_name().to_string_lossy().to_string();
            if let Some(v) = n.strip_prefix("version-").and_then(|v| v.parse::<u64>().ok()) {
                out.push(v);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn aliases_of(&self, name: &str) -> Result<BTreeMap<String, u64>> {
        let dir = self.model_dir(name).join("aliases");
        let mut out = BTreeMap::new();
        if !dir.exists() {
            return Ok(out);
        }
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let alias = entry.file_name().to_string_lossy().to_string();
            if alias.starts_with('.') {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).at(entry.path())?;
            let v = text.trim().parse::<u64>().map_err(|_| {
                reg_err(format!("{}: damaged alias entry (expected a version number, found {:?})", entry.path().display(), text.trim()))
            })?;
            out.insert(alias, v);
        }
        Ok(out)
    }

    fn read_version(&self, name: &str, version: u64) -> Result<ModelVersion> {
        let dir = self.model_dir(name).join(format!("version-{version}"));
        let meta = dir.join("meta.yaml");
        if !meta.exists() {
            return Err(reg_err(format!("{}: damaged version entry (meta.yaml is missing)", dir.display())));
        }
        let text = std::fs::read_to_string(&meta).at(&meta)?;
        let damaged = |what: &str| reg_err(format!("{}: damaged version entry ({what})", meta.display()));
        let m = yaml::parse(&text).ok_or_else(|| damaged("not a flat YAML mapping"))?;
        let field = |k: &str| m.get(k).cloned().ok_or_else(|| damaged(&format!("field `{k}` is missing")));
        let v: u64 = field("version")?.parse().map_err(|_| damaged("`version` is not a number"))?;
        if v != version {
            return Err(damaged(&format!("`version` says {v}, directory says {version}")));
        }
        let stage = field("current_stage")?;
        check_stage(&stage).map_err(|_| damaged(&format!("unknown stage {stage:?}")))?;
        let tags = read_tags(&dir.join("tags"))?;
        let aliases = self.aliases_of(name)?.into_iter().filter(|(_, av)| *av == version).map(|(a, _)| a).collect();
        Ok(ModelVersion {
            name: field("name")?,
            version,
            source: field("source")?,
            run_id: m.get("run_id").cloned().unwrap_or_default(),
            current_stage: stage,
            status: m.get("status").cloned().unwrap_or_else(|| "READY".into()),
            creation_timestamp: m.get("creation_timestamp").and_then(|s| s.parse().ok()).unwrap_or(0),
            last_updated_timestamp: m.get("last_updated_timestamp").and_then(|s| s.parse().ok()).unwrap_or(0),
            description: m.get("description").cloned().unwrap_or_default(),
            tags,
            aliases,
        })
    }

    fn write_version(&self, mv: &ModelVersion) -> Result<()> {
        let dir = self.model_dir(&mv.name).join(format!("version-{}", mv.version));
        self.write_version_in(&dir, mv)
    }

    fn write_version_in(&self, dir: &Path, mv: &ModelVersion) -> Result<()> {
        let text = yaml::emit(&[
            ("creation_timestamp", Value::Int(mv.creation_timestamp)),
            ("current_stage", Value::Str(mv.current_stage.clone())),
            ("description", Value::Str(mv.description.clone())),
            ("last_updated_timestamp", Value::Int(mv.last_updated_timestamp)),
            ("name", Value::Str(mv.name.clone())),
            ("run_id", Value::Str(mv.run_id.clone())),
            ("run_link", Value::Str(String::new())),
            ("source", Value::Str(mv.source.clone())),
            ("status", Value::Str(mv.status.clone())),
            ("status_message", Value::Str(String::new())),
            ("storage_location", Value::Str(mv.source.clone())),
            ("user_id", Value::Str(String::new())),
            ("version", Value::Int(mv.version as i64)),
        ]);
        write_atomic(&dir.join("meta.yaml"), text.as_bytes())
    }

    fn ensure_model(&self, name: &str) -> Result<()> {
        let meta = self.model_dir(name).join("meta.yaml");
        if meta.exists() {
            return Ok(());
        }
        let now = now_millis();
        let text = yaml::emit(&[
            ("creation_timestamp", Value::Int(now)),
            ("description", Value::Str(String::new())),
            ("last_updated_timestamp", Value::Int(now)),
            ("name", Value::Str(name.into())),
        ]);
        write_atomic(&meta, text.as_bytes())
    }
}

fn read_tags(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let k = entry.file_name().to_string_lossy().to_string();
        if k.starts_with('.') {
            continue;
        }
        out.insert(k, std::fs::read_to_string(entry.path()).at(entry.path())?);
    }
    Ok(out)
}

impl Registry for FileStore {
    fn register_version(&self, name: &str, source: &str, run_id: &str, tags: &[(String, String)]) -> Result<(ModelVersion, bool)> {
        check_name(name)?;
        let _lock = self.lock_registry()?;
        self.ensure_model(name)?;
        let numbers = self.version_numbers(name)?;
        for &v in &numbers {
            let mv = self.read_version(name, v)?;
            if !run_id.is_empty() && mv.run_id == run_id {
                return Ok((mv, false));
            }
        }
        // Numbers never go back, even past a removed or damaged entry.
        let version = numbers.last().map_or(1, |v| v + 1);
        let now = now_millis();
        let mv = ModelVersion {
            name: name.into(),
            version,
            source: source.into(),
            run_id: run_id.into(),
            current_stage: "None".into(),
            status: "READY".into(),
            creation_timestamp: now,
            last_updated_timestamp: now,
            description: String::new(),
            tags: tags.iter().cloned().collect(),
            aliases: vec![],
        };
        // Build the entry in a hidden folder and rename it into place: readers never see a
        // version folder without its meta.yaml.
        let dir = self.model_dir(name).join(format!("version-{version}"));
        let tmp = self.model_dir(name).join(format!(".version-{version}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        for (k, v) in tags {
            write_atomic(&tmp.join("tags").join(k), v.as_bytes())?;
        }
        self.write_version_in(&tmp, &mv)?;
        std::fs::rename(&tmp, &dir).at(&dir)?;
        Ok((mv, true))
    }

    fn get_version(&self, name: &str, version: u64) -> Result<ModelVersion> {
        check_name(name)?;
        if !self.model_dir(name).join(format!("version-{version}")).exists() {
            return Err(reg_err(format!("model {name:?} has no version {version}")));
        }
        self.read_version(name, version)
    }

    fn list_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        check_name(name)?;
        self.version_numbers(name)?.into_iter().map(|v| self.read_version(name, v)).collect()
    }

    fn transition_stage(&self, name: &str, version: u64, stage: &str, archive_existing: bool) -> Result<Vec<u64>> {
        let _lock = self.lock_registry()?;
        self.transition_unlocked(name, version, stage, archive_existing)
    }

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        let _lock = self.lock_registry()?;
        self.set_alias_unlocked(name, alias, version)
    }

    fn promote(&self, name: &str, version: u64, stage: &str, alias: &str) -> Result<Promotion> {
        check_alias(alias)?;
        let _lock = self.lock_registry()?;
        self.promote_unlocked(name, version, stage, alias)
    }

    /// Atomic: the holders are checked and the alias moved under the registry lock.
    fn promote_if(&self, name: &str, version: u64, stage: &str, alias: &str, expected: &Holders) -> Result<Cas> {
        check_alias(alias)?;
        let _lock = self.lock_registry()?;
        let aliases = self.aliases_of(name)?;
        if let Some(changed) = changed_holder(expected, version, |a| Ok(aliases.get(a).copied()))? {
            return Ok(changed);
        }
        self.promote_unlocked(name, version, stage, alias).map(Cas::Promoted)
    }

    fn get_by_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>> {
        check_alias(alias)?;
        check_name(name)?;
        match self.aliases_of(name)?.get(alias) {
            Some(&v) => self.get_version(name, v).map(Some),
            None => Ok(None),
        }
    }

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        let _lock = self.lock_registry()?;
        self.get_version(name, version)?;
        if key.is_empty() || key.contains('/') || key.contains("..") {
            return Err(reg_err(format!("invalid tag name {key:?}")));
        }
        let p = self.model_dir(name).join(format!("version-{version}")).join("tags").join(key);
        write_atomic(&p, value.as_bytes())
    }
}

impl FileStore {
    fn promote_unlocked(&self, name: &str, version: u64, stage: &str, alias: &str) -> Result<Promotion> {
        let previous_alias_holder = self.aliases_of(name)?.get(alias).copied();
        let archived = self.transition_unlocked(name, version, stage, true)?;
        self.set_alias_unlocked(name, alias, version)?;
        Ok(Promotion { archived, previous_alias_holder, holder_after: Some(version) })
    }

    fn transition_unlocked(&self, name: &str, version: u64, stage: &str, archive_existing: bool) -> Result<Vec<u64>> {
        let stage = check_stage(stage)?;
        let mut target = self.get_version(name, version)?;
        let mut archived = Vec::new();
        let now = now_millis();
        if archive_existing && stage != "None" && stage != "Archived" {
            for mut other in self.list_versions(name)? {
                if other.version != version && other.current_stage == stage {
                    other.current_stage = "Archived".into();
                    other.last_updated_timestamp = now;
                    self.write_version(&other)?;
                    archived.push(other.version);
                }
            }
        }
        target.current_stage = stage.into();
        target.last_updated_timestamp = now;
        self.write_version(&target)?;
        Ok(archived)
    }

    fn set_alias_unlocked(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        check_alias(alias)?;
        self.get_version(name, version)?;
        let p = self.model_dir(name).join("aliases").join(alias);
        write_atomic(&p, version.to_string().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_is_idempotent_and_numbers_increase() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path()).unwrap();
        let (v1, created) = s.register_version("m", "file:///a", "run1", &[]).unwrap();
        assert!(created);
        assert_eq!(v1.version, 1);
        let (again, created) = s.register_version("m", "file:///a", "run1", &[]).unwrap();
        assert!(!created);
        assert_eq!(again.version, 1);
        let (v2, _) = s.register_version("m", "file:///b", "run2", &[]).unwrap();
        assert_eq!(v2.version, 2);
        s.transition_stage("m", 1, "Staging", true).unwrap();
        let archived = s.transition_stage("m", 2, "Staging", true).unwrap();
        assert_eq!(archived, vec![1]);
        assert_eq!(s.get_version("m", 1).unwrap().current_stage, "Archived");
        s.set_alias("m", "challenger", 2).unwrap();
        assert_eq!(s.get_by_alias("m", "challenger").unwrap().unwrap().version, 2);
        assert!(s.transition_stage("m", 2, "Prod", true).is_err());
        assert!(s.set_alias("m", "v1", 2).is_err());
    }

    #[test]
    fn damaged_entry_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path()).unwrap();
        s.register_version("m", "file:///a", "run1", &[]).unwrap();
        let meta = s.model_dir("m").join("version-1/meta.yaml");
        std::fs::write(&meta, "garbage without colon\n").unwrap();
        let err = s.register_version("m", "file:///b", "run2", &[]).unwrap_err();
        assert!(err.to_string().contains("version-1"), "{err}");
        assert_eq!(std::fs::read_to_string(&meta).unwrap(), "garbage without colon\n");
        assert!(!s.model_dir("m").join("version-2").exists());
    }
}
