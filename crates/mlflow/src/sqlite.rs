//! The embedded SQLite store: one database file in MLflow's own schema (the pinned release's,
//! stamped with its alembic revision, so `mlflow ui`/`mlflow server --backend-store-uri
//! sqlite:///…` open it as it is and `mlflow db upgrade` upgrades it for newer releases), with
//! artifacts in a folder beside it. Every write is one `BEGIN IMMEDIATE` transaction: concurrent
//! pipelines serialise on SQLite's lock instead of a file lock, a crash leaves the database as it
//! was before the transaction, and the registry's compare-and-swap is a real one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{write_atomic, Error, IoContext, Result};
use crate::registry::{changed_holder, check_alias, check_name, check_stage, Cas, Holders, ModelVersion, Promotion, Registry};
use crate::tracking::{new_run_id, now_millis, MetricPoint, RunRecord, RunStatus, Tracker};

/// The schema MLflow 3.17.2 creates, with its alembic revision and default workspace.
const SCHEMA: &str = include_str!("sqlite/mlflow-3.17.2.sql");
/// The alembic revision [`SCHEMA`] is stamped with.
pub const SCHEMA_REVISION: &str = "dc11669786a5";
const WORKSPACE: &str = "default";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: PathBuf,
    artifacts: PathBuf,
}

fn sql_err(db: &Path, e: rusqlite::Error) -> Error {
    Error::Sqlite { path: db.to_path_buf(), source: e }
}

fn reg_err(msg: impl Into<String>) -> Error {
    Error::Registry(msg.into())
}

impl SqliteStore {
    /// Open (creating it in MLflow's schema if it does not exist) the database `db`; artifacts go
    /// to `mlartifacts/` beside it (MLflow's own default folder name).
    pub fn open(db: impl AsRef<Path>) -> Result<SqliteStore> {
        let db = db.as_ref();
        let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).at(dir)?;
        let dir = std::fs::canonicalize(dir).at(dir)?;
        let name = db.file_name().ok_or_else(|| Error::Tracking(format!("{} is not a database file name", db.display())))?;
        let store = SqliteStore { db: dir.join(name), artifacts: dir.join("mlartifacts") };
        store.init()?;
        Ok(store)
    }

    fn connect(&self) -> Result<Connection> {
        let c = Connection::open(&self.db).map_err(|e| sql_err(&self.db, e))?;
        c.busy_timeout(Duration::from_secs(60)).map_err(|e| sql_err(&self.db, e))?;
        Ok(c)
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction (the write lock taken up front).
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let _permit = leadflow_core::artifacts::write_permit();
        let mut c = self.connect()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| sql_err(&self.db, e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| sql_err(&self.db, e))?;
        Ok(out)
    }

    fn init(&self) -> Result<()> {
        let db = self.db.clone();
        let artifacts = self.artifacts.clone();
        self.write(|tx| {
            let has_schema: bool = tx
                .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'", [], |r| r.get::<_, i64>(0))
                .map_err(|e| sql_err(&db, e))?
                > 0;
            if !has_schema {
                tx.execute_batch(SCHEMA).map_err(|e| sql_err(&db, e))?;
                let now = now_millis();
                tx.execute(
                    "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) VALUES (0, 'Default', ?1, 'active', ?2, ?2, ?3)",
                    params![artifacts.join("0").display().to_string(), now, WORKSPACE],
                )
                .map_err(|e| sql_err(&db, e))?;
                return Ok(());
            }
            let rev: Option<String> =
                tx.query_row("SELECT version_num FROM alembic_version", [], |r| r.get(0)).optional().map_err(|e| sql_err(&db, e))?;
            if rev.as_deref() != Some(SCHEMA_REVISION) {
                tracing::warn!(
                    "{}: MLflow schema revision {}, leadflow writes {SCHEMA_REVISION} (MLflow 3.17.2); newer columns keep their defaults",
                    db.display(),
                    rev.unwrap_or_default()
                );
            }
            Ok(())
        })
    }

    fn run_row(&self, c: &Connection, run_id: &str) -> Result<RunRecord> {
        let db = &self.db;
        let row = c
            .query_row(
                "SELECT run_uuid, experiment_id, name, status, start_time, end_time, artifact_uri FROM runs WHERE run_uuid = ?1 AND lifecycle_stage = 'active'",
                params![run_id],
                |r| {
                    Ok(RunRecord {
                        run_id: r.get(0)?,
                        experiment_id: r.get::<_, i64>(1)?.to_string(),
                        run_name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        status: RunStatus::parse(&r.get::<_, String>(3)?),
                        start_time: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                        end_time: r.get(5)?,
                        artifact_uri: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                        params: BTreeMap::new(),
                        metrics: BTreeMap::new(),
                        tags: BTreeMap::new(),
                    })
                },
            )
            .optional()
            .map_err(|e| sql_err(db, e))?;
        let mut rec = row.ok_or_else(|| Error::Tracking(format!("no run {run_id} in {}", db.display())))?;
        let kv = |sql: &str| -> Result<BTreeMap<String, String>> {
            let mut st = c.prepare(sql).map_err(|e| sql_err(db, e))?;
            let rows = st
                .query_map(params![run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())))
                .map_err(|e| sql_err(db, e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| sql_err(db, e))
        };
        rec.params = kv("SELECT key, value FROM params WHERE run_uuid = ?1")?;
        rec.tags = kv("SELECT key, value FROM tags WHERE run_uuid = ?1")?;
        let mut st = c.prepare("SELECT key, value FROM latest_metrics WHERE run_uuid = ?1").map_err(|e| sql_err(db, e))?;
        rec.metrics = st
            .query_map(params![run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))
            .map_err(|e| sql_err(db, e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| sql_err(db, e))?;
        Ok(rec)
    }

    fn artifact_dir(&self, run_id: &str) -> Result<PathBuf> {
        let uri = self.artifact_uri(run_id)?;
        Ok(PathBuf::from(uri.strip_prefix("file://").unwrap_or(&uri)))
    }

    fn version_row(&self, c: &Connection, name: &str, version: u64) -> Result<Option<ModelVersion>> {
        let db = &self.db;
        let mv = c
            .query_row(
                "SELECT source, run_id, current_stage, status, creation_time, last_updated_time, description FROM model_versions WHERE workspace = ?1 AND name = ?2 AND version = ?3",
                params![WORKSPACE, name, version as i64],
                |r| {
                    Ok(ModelVersion {
                        name: name.to_string(),
                        version,
                        source: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        run_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        current_stage: r.get::<_, Option<String>>(2)?.unwrap_or_else(|| "None".into()),
                        status: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        creation_timestamp: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                        last_updated_timestamp: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                        description: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                        tags: BTreeMap::new(),
                        aliases: vec![],
                    })
                },
            )
            .optional()
            .map_err(|e| sql_err(db, e))?;
        let Some(mut mv) = mv else { return Ok(None) };
        let mut st = c
            .prepare("SELECT key, value FROM model_version_tags WHERE workspace = ?1 AND name = ?2 AND version = ?3")
            .map_err(|e| sql_err(db, e))?;
        mv.tags = st
            .query_map(params![WORKSPACE, name, version as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default()))
            })
            .map_err(|e| sql_err(db, e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| sql_err(db, e))?;
        let mut st = c
            .prepare("SELECT alias FROM registered_model_aliases WHERE workspace = ?1 AND name = ?2 AND version = ?3 ORDER BY alias")
            .map_err(|e| sql_err(db, e))?;
        mv.aliases = st
            .query_map(params![WORKSPACE, name, version as i64], |r| r.get(0))
            .map_err(|e| sql_err(db, e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| sql_err(db, e))?;
        Ok(Some(mv))
    }

    fn alias_holder(&self, c: &Connection, name: &str, alias: &str) -> Result<Option<u64>> {
        c.query_row(
            "SELECT version FROM registered_model_aliases WHERE workspace = ?1 AND name = ?2 AND alias = ?3",
            params![WORKSPACE, name, alias],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map(|v| v.map(|v| v as u64))
        .map_err(|e| sql_err(&self.db, e))
    }

    fn require_version(&self, c: &Connection, name: &str, version: u64) -> Result<ModelVersion> {
        self.version_row(c, name, version)?.ok_or_else(|| reg_err(format!("model {name:?} has no version {version}")))
    }

    fn transition_in(&self, tx: &Connection, name: &str, version: u64, stage: &str, archive_existing: bool) -> Result<Vec<u64>> {
        let db = &self.db;
        let stage = check_stage(stage)?;
        self.require_version(tx, name, version)?;
        let now = now_millis();
        let mut archived = Vec::new();
        if archive_existing && stage != "None" && stage != "Archived" {
            let mut st = tx
                .prepare("SELECT version FROM model_versions WHERE workspace = ?1 AND name = ?2 AND current_stage = ?3 AND version != ?4 ORDER BY version")
                .map_err(|e| sql_err(db, e))?;
            archived = st
                .query_map(params![WORKSPACE, name, stage, version as i64], |r| r.get::<_, i64>(0))
                .map_err(|e| sql_err(db, e))?
                .map(|v| v.map(|v| v as u64))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_err(db, e))?;
            for v in &archived {
                tx.execute(
                    "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ?1 WHERE workspace = ?2 AND name = ?3 AND version = ?4",
                    params![now, WORKSPACE, name, *v as i64],
                )
                .map_err(|e| sql_err(db, e))?;
            }
        }
        tx.execute(
            "UPDATE model_versions SET current_stage = ?1, last_updated_time = ?2 WHERE workspace = ?3 AND name = ?4 AND version = ?5",
            params![stage, now, WORKSPACE, name, version as i64],
        )
        .map_err(|e| sql_err(db, e))?;
        Ok(archived)
    }

    fn set_alias_in(&self, tx: &Connection, name: &str, alias: &str, version: u64) -> Result<()> {
        check_alias(alias)?;
        self.require_version(tx, name, version)?;
        tx.execute(
            "INSERT INTO registered_model_aliases (alias, version, name, workspace) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (workspace, name, alias) DO UPDATE SET version = excluded.version",
            params![alias, version as i64, name, WORKSPACE],
        )
        .map_err(|e| sql_err(&self.db, e))?;
        Ok(())
    }

    fn promote_in(&self, tx: &Connection, name: &str, version: u64, stage: &str, alias: &str) -> Result<Promotion> {
        let previous_alias_holder = self.alias_holder(tx, name, alias)?;
        let archived = self.transition_in(tx, name, version, stage, true)?;
        self.set_alias_in(tx, name, alias, version)?;
        Ok(Promotion { archived, previous_alias_holder, holder_after: Some(version) })
    }
}

impl Tracker for SqliteStore {
    fn location(&self) -> String {
        format!("sqlite:///{}", self.db.display().to_string().trim_start_matches('/'))
    }

    fn find_experiment(&self, name: &str) -> Result<Option<String>> {
        let c = self.connect()?;
        c.query_row(
            "SELECT experiment_id FROM experiments WHERE workspace = ?1 AND name = ?2 AND lifecycle_stage = 'active'",
            params![WORKSPACE, name],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map(|v| v.map(|v| v.to_string()))
        .map_err(|e| sql_err(&self.db, e))
    }

    fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        let db = self.db.clone();
        let root = self.artifacts.clone();
        self.write(|tx| {
            let found: Option<(i64, String)> = tx
                .query_row(
                    "SELECT experiment_id, lifecycle_stage FROM experiments WHERE workspace = ?1 AND name = ?2",
                    params![WORKSPACE, name],
                    |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())),
                )
                .optional()
                .map_err(|e| sql_err(&db, e))?;
            match found {
                Some((id, stage)) if stage == "active" => Ok(id.to_string()),
                Some((id, _)) => Err(Error::Tracking(format!(
                    "experiment {name:?} (id {id}) is deleted in {}; restore it (mlflow experiments restore) or choose another name",
                    db.display()
                ))),
                None => {
                    let id: i64 = tx
                        .query_row("SELECT coalesce(max(experiment_id), 0) + 1 FROM experiments", [], |r| r.get(0))
                        .map_err(|e| sql_err(&db, e))?;
                    let now = now_millis();
                    tx.execute(
                        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) VALUES (?1, ?2, ?3, 'active', ?4, ?4, ?5)",
                        params![id, name, root.join(id.to_string()).display().to_string(), now, WORKSPACE],
                    )
                    .map_err(|e| sql_err(&db, e))?;
                    Ok(id.to_string())
                }
            }
        })
    }

    fn create_run(&self, experiment_id: &str, run_name: &str, tags: &[(String, String)]) -> Result<String> {
        let db = self.db.clone();
        let exp: i64 = experiment_id.parse().map_err(|_| Error::Tracking(format!("invalid experiment id {experiment_id:?}")))?;
        let run_id = new_run_id();
        self.write(|tx| {
            let location: Option<String> = tx
                .query_row("SELECT artifact_location FROM experiments WHERE experiment_id = ?1", params![exp], |r| r.get(0))
                .optional()
                .map_err(|e| sql_err(&db, e))?
                .ok_or_else(|| Error::Tracking(format!("no experiment {experiment_id} in {}", db.display())))?;
            let artifact_uri = format!("{}/{run_id}/artifacts", location.unwrap_or_default().trim_end_matches('/'));
            tx.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES (?1, ?2, 'LOCAL', 'leadflow', '', 'leadflow', 'RUNNING', ?3, NULL, '', 'active', ?4, ?5)",
                params![run_id, run_name, now_millis(), artifact_uri, exp],
            )
            .map_err(|e| sql_err(&db, e))?;
            let mut all = vec![
                ("mlflow.runName".to_string(), run_name.to_string()),
                ("mlflow.user".to_string(), "leadflow".to_string()),
                ("mlflow.source.type".to_string(), "LOCAL".to_string()),
                ("mlflow.source.name".to_string(), "leadflow".to_string()),
            ];
            all.extend(tags.iter().cloned());
            for (k, v) in &all {
                tx.execute(
                    "INSERT INTO tags (key, value, run_uuid) VALUES (?1, ?2, ?3) ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
                    params![k, v, run_id],
                )
                .map_err(|e| sql_err(&db, e))?;
            }
            Ok(())
        })?;
        Ok(run_id)
    }

    fn log_batch(&self, run_id: &str, params_: &[(String, String)], metrics: &[MetricPoint], tags: &[(String, String)]) -> Result<()> {
        let db = self.db.clone();
        self.write(|tx| {
            let exists: bool =
                tx.query_row("SELECT count(*) FROM runs WHERE run_uuid = ?1", params![run_id], |r| r.get::<_, i64>(0)).map_err(|e| sql_err(&db, e))? > 0;
            if !exists {
                return Err(Error::Tracking(format!("no run {run_id} in {}", db.display())));
            }
            for (k, v) in params_ {
                let old: Option<String> = tx
                    .query_row("SELECT value FROM params WHERE key = ?1 AND run_uuid = ?2", params![k, run_id], |r| r.get(0))
                    .optional()
                    .map_err(|e| sql_err(&db, e))?;
                match old {
                    Some(o) if &o != v => {
                        return Err(Error::Tracking(format!("run {run_id}: param `{k}` already logged as {o:?}, cannot change it to {v:?}")))
                    }
                    Some(_) => {}
                    None => {
                        tx.execute("INSERT INTO params (key, value, run_uuid) VALUES (?1, ?2, ?3)", params![k, v, run_id])
                            .map_err(|e| sql_err(&db, e))?;
                    }
                }
            }
            for m in metrics {
                let is_nan = m.value.is_nan();
                let value = if is_nan { 0.0 } else { m.value };
                tx.execute(
                    "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![m.key, value, m.timestamp, run_id, m.step, is_nan],
                )
                .map_err(|e| sql_err(&db, e))?;
                // MLflow's rule: the latest is the highest (step, timestamp, value).
                tx.execute(
                    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan
                     WHERE (excluded.step, excluded.timestamp, excluded.value) >= (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)",
                    params![m.key, value, m.timestamp, m.step, is_nan, run_id],
                )
                .map_err(|e| sql_err(&db, e))?;
            }
            for (k, v) in tags {
                tx.execute(
                    "INSERT INTO tags (key, value, run_uuid) VALUES (?1, ?2, ?3) ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
                    params![k, v, run_id],
                )
                .map_err(|e| sql_err(&db, e))?;
            }
            Ok(())
        })
    }

    fn log_artifact(&self, run_id: &str, local: &Path, dest_dir: &str) -> Result<()> {
        if dest_dir.contains("..") || dest_dir.starts_with('/') || dest_dir.contains('\\') {
            return Err(Error::Tracking(format!("invalid artifact path name {dest_dir:?}")));
        }
        let target = self.artifact_dir(run_id)?.join(dest_dir);
        let _permit = leadflow_core::artifacts::write_permit();
        std::fs::create_dir_all(&target).at(&target)?;
        let name = local.file_name().ok_or_else(|| Error::Tracking(format!("artifact {} has no file name", local.display())))?;
        let bytes = std::fs::read(local).at(local)?;
        write_atomic(&target.join(name), &bytes)
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        let db = self.db.clone();
        self.write(|tx| {
            let n = tx
                .execute("UPDATE runs SET status = ?1, end_time = ?2 WHERE run_uuid = ?3", params![status.as_str(), now_millis(), run_id])
                .map_err(|e| sql_err(&db, e))?;
            if n == 0 {
                return Err(Error::Tracking(format!("no run {run_id} in {}", db.display())));
            }
            Ok(())
        })
    }

    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        let c = self.connect()?;
        self.run_row(&c, run_id)
    }

    fn search_runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>> {
        let c = self.connect()?;
        let exp: i64 = experiment_id.parse().map_err(|_| Error::Tracking(format!("invalid experiment id {experiment_id:?}")))?;
        let ids: Vec<String> = {
            let mut st = c
                .prepare(
                    "SELECT run_uuid FROM runs WHERE experiment_id = ?1 AND lifecycle_stage = 'active' ORDER BY start_time DESC, run_uuid",
                )
                .map_err(|e| sql_err(&self.db, e))?;
            let rows = st.query_map(params![exp], |r| r.get(0)).map_err(|e| sql_err(&self.db, e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| sql_err(&self.db, e))?
        };
        ids.iter().map(|id| self.run_row(&c, id)).collect()
    }

    fn artifact_uri(&self, run_id: &str) -> Result<String> {
        let c = self.connect()?;
        c.query_row("SELECT artifact_uri FROM runs WHERE run_uuid = ?1", params![run_id], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map_err(|e| sql_err(&self.db, e))?
            .flatten()
            .ok_or_else(|| Error::Tracking(format!("no run {run_id} in {}", self.db.display())))
    }
}

impl Registry for SqliteStore {
    fn register_version(&self, name: &str, source: &str, run_id: &str, tags: &[(String, String)]) -> Result<(ModelVersion, bool)> {
        check_name(name)?;
        let db = self.db.clone();
        self.write(|tx| {
            let now = now_millis();
            tx.execute(
                "INSERT OR IGNORE INTO registered_models (name, creation_time, last_updated_time, description, workspace) VALUES (?1, ?2, ?2, '', ?3)",
                params![name, now, WORKSPACE],
            )
            .map_err(|e| sql_err(&db, e))?;
            if !run_id.is_empty() {
                let existing: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM model_versions WHERE workspace = ?1 AND name = ?2 AND run_id = ?3 ORDER BY version LIMIT 1",
                        params![WORKSPACE, name, run_id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| sql_err(&db, e))?;
                if let Some(v) = existing {
                    return Ok((self.require_version(tx, name, v as u64)?, false));
                }
            }
            let version: i64 = tx
                .query_row("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE workspace = ?1 AND name = ?2", params![WORKSPACE, name], |r| r.get(0))
                .map_err(|e| sql_err(&db, e))?;
            tx.execute(
                "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status, status_message, run_link, storage_location, workspace) VALUES (?1, ?2, ?3, ?3, '', 'leadflow', 'None', ?4, ?5, 'READY', '', '', ?4, ?6)",
                params![name, version, now, source, run_id, WORKSPACE],
            )
            .map_err(|e| sql_err(&db, e))?;
            tx.execute("UPDATE registered_models SET last_updated_time = ?1 WHERE workspace = ?2 AND name = ?3", params![now, WORKSPACE, name])
                .map_err(|e| sql_err(&db, e))?;
            for (k, v) in tags {
                tx.execute(
                    "INSERT INTO model_version_tags (key, value, name, version, workspace) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![k, v, name, version, WORKSPACE],
                )
                .map_err(|e| sql_err(&db, e))?;
            }
            Ok((self.require_version(tx, name, version as u64)?, true))
        })
    }

    fn get_version(&self, name: &str, version: u64) -> Result<ModelVersion> {
        check_name(name)?;
        let c = self.connect()?;
        self.require_version(&c, name, version)
    }

    fn list_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        check_name(name)?;
        let c = self.connect()?;
        let versions: Vec<i64> = {
            let mut st = c
                .prepare("SELECT version FROM model_versions WHERE workspace = ?1 AND name = ?2 ORDER BY version")
                .map_err(|e| sql_err(&self.db, e))?;
            let rows = st.query_map(params![WORKSPACE, name], |r| r.get(0)).map_err(|e| sql_err(&self.db, e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| sql_err(&self.db, e))?
        };
        versions.into_iter().map(|v| self.require_version(&c, name, v as u64)).collect()
    }

    fn transition_stage(&self, name: &str, version: u64, stage: &str, archive_existing: bool) -> Result<Vec<u64>> {
        self.write(|tx| self.transition_in(tx, name, version, stage, archive_existing))
    }

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        self.write(|tx| self.set_alias_in(tx, name, alias, version))
    }

    fn promote(&self, name: &str, version: u64, stage: &str, alias: &str) -> Result<Promotion> {
        check_alias(alias)?;
        self.write(|tx| self.promote_in(tx, name, version, stage, alias))
    }

    /// A real compare-and-swap: the holders are read and the alias moved in one transaction.
    fn promote_if(&self, name: &str, version: u64, stage: &str, alias: &str, expected: &Holders) -> Result<Cas> {
        check_alias(alias)?;
        self.write(|tx| {
            if let Some(changed) = changed_holder(expected, version, |a| self.alias_holder(tx, name, a))? {
                return Ok(changed);
            }
            self.promote_in(tx, name, version, stage, alias).map(Cas::Promoted)
        })
    }

    fn get_by_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>> {
        check_alias(alias)?;
        check_name(name)?;
        let c = self.connect()?;
        match self.alias_holder(&c, name, alias)? {
            Some(v) => self.version_row(&c, name, v),
            None => Ok(None),
        }
    }

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        if key.is_empty() {
            return Err(reg_err("empty tag name"));
        }
        self.write(|tx| {
            self.require_version(tx, name, version)?;
            tx.execute(
                "INSERT INTO model_version_tags (key, value, name, version, workspace) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (workspace, key, name, version) DO UPDATE SET value = excluded.value",
                params![key, value, name, version as i64, WORKSPACE],
            )
            .map_err(|e| sql_err(&self.db, e))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_versions_aliases_and_a_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("mlflow.db")).unwrap();
        let exp = s.get_or_create_experiment("e").unwrap();
        assert_eq!(exp, "1");
        assert_eq!(s.get_or_create_experiment("e").unwrap(), "1");
        let run = s.create_run(&exp, "r", &[("a".into(), "b".into())]).unwrap();
        s.log_batch(&run, &[("p".into(), "1".into())], &[MetricPoint::now("m", 0.5)], &[]).unwrap();
        assert!(s.log_batch(&run, &[("p".into(), "2".into())], &[], &[]).is_err(), "params do not change");
        s.end_run(&run, RunStatus::Finished).unwrap();
        let r = s.get_run(&run).unwrap();
        assert_eq!((r.status, r.params["p"].as_str(), r.metrics["m"], r.tags["a"].as_str()), (RunStatus::Finished, "1", 0.5, "b"));
        assert!(r.artifact_uri.ends_with(&format!("mlartifacts/1/{run}/artifacts")), "{}", r.artifact_uri);
        let (v1, created) = s.register_version("m", "file:///a", &run, &[]).unwrap();
        assert!(created && v1.version == 1);
        assert_eq!(s.register_version("m", "file:///a", &run, &[]).unwrap(), (v1, false));
        let (v2, _) = s.register_version("m", "file:///b", "other", &[("t".into(), "x".into())]).unwrap();
        assert_eq!((v2.version, v2.tags["t"].as_str()), (2, "x"));
        s.transition_stage("m", 1, "Staging", true).unwrap();
        assert_eq!(s.transition_stage("m", 2, "Staging", true).unwrap(), vec![1]);
        s.set_alias("m", "champion", 1).unwrap();
        let mut expected = Holders::new();
        expected.insert("champion".into(), Some(2));
        let cas = s.promote_if("m", 2, "Production", "champion", &expected).unwrap();
        assert_eq!(cas, Cas::HolderChanged { alias: "champion".into(), expected: Some(2), now: Some(1) });
        expected.insert("champion".into(), Some(1));
        let Cas::Promoted(p) = s.promote_if("m", 2, "Production", "champion", &expected).unwrap() else { panic!() };
        assert_eq!(p.previous_alias_holder, Some(1));
        let v = s.get_by_alias("m", "champion").unwrap().unwrap();
        assert_eq!((v.version, v.current_stage.as_str(), v.aliases.clone()), (2, "Production", vec!["champion".to_string()]));
        assert_eq!(s.list_versions("m").unwrap().len(), 2);
        // Reopening keeps everything; the schema is created once.
        let again = SqliteStore::open(dir.path().join("mlflow.db")).unwrap();
        assert_eq!(again.get_by_alias("m", "champion").unwrap().unwrap().version, 2);
    }
}
