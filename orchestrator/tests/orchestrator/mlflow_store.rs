//! The embedded SQLite store (the default) is MLflow's own: its schema is what the pinned MLflow
//! creates, the real client reads everything the pipeline wrote with no opt-out flag, and
//! `mlflow server` serves it as it is. Concurrent writers serialise on SQLite's lock.

use std::path::{Path, PathBuf};

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::Deployment;
use leadflow_mlflow::registry::Registry;
use leadflow_mlflow::sqlite::SqliteStore;
use leadflow_mlflow::tracking::{StoreLocation, Tracker};
use orchestrator::local;

use super::{api, mlflow, options, ureq_get, ENV_LOCK};

/// A pipeline run into the SQLite store `<dir>/mlruns/mlflow.db`, promoted to Production.
pub fn run_on_sqlite(dir: &Path, raw: &Path, mut params: leadflow_core::Params) -> (orchestrator::RunOptions, PathBuf) {
    let db = dir.join("mlruns").join("mlflow.db");
    let mut opts = options(dir, raw);
    opts.tracking = StoreLocation::Sqlite(db.clone());
    params.deploy.stage = leadflow_core::params::Stage::Production;
    local::run(&opts, &params).unwrap();
    (opts, db)
}

#[test]
fn the_schema_is_what_the_pinned_mlflow_creates() {
    let Some(bin) = mlflow() else { return };
    let python = bin.parent().unwrap().join("python");
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs.db");
    let ours = dir.path().join("ours.db");
    SqliteStore::open(&ours).unwrap();
    // MLflow creates its schema on first use; then both databases' schema objects are compared.
    let script = r#"
import json, sqlite3, sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
SqlAlchemyStore("sqlite:///" + sys.argv[1], sys.argv[3])
def schema(p):
    c = sqlite3.connect(p)
    # MLflow's migrations recreate some tables with their constraints in hash order (it varies
    # from run to run), so each statement is compared as its set of lines.
    return {"objects": sorted("\n".join(sorted(r[0].split("\n"))) for r in c.execute("select sql from sqlite_master where sql is not null")),
            "revision": c.execute("select version_num from alembic_version").fetchall()}
print(json.dumps([schema(sys.argv[1]), schema(sys.argv[2])]))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script, theirs.to_str().unwrap(), ours.to_str().unwrap(), dir.path().join("art").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(out.stdout.rsplit(|b| *b == b'\n').find(|l| l.starts_with(b"[")).unwrap()).unwrap();
    assert_eq!(got[1]["revision"], got[0]["revision"], "alembic revision");
    assert_eq!(got[1]["revision"][0][0], leadflow_mlflow::sqlite::SCHEMA_REVISION);
    let set = |v: &serde_json::Value| -> std::collections::BTreeSet<String> {
        v["objects"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect()
    };
    let (theirs, ours) = (set(&got[0]), set(&got[1]));
    assert!(
        theirs == ours,
        "crates/mlflow/src/sqlite/*.sql differs from the schema of the pinned MLflow (regenerate it):\nonly MLflow's: {:?}\nonly ours: {:?}",
        theirs.difference(&ours).collect::<Vec<_>>(),
        ours.difference(&theirs).collect::<Vec<_>>()
    );
}

#[test]
fn the_real_mlflow_client_reads_the_sqlite_store_without_an_opt_out_flag() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = mlflow() else { return };
    let python = bin.parent().unwrap().join("python");
    let dir = tempfile::tempdir().unwrap();
    let (opts, db) = run_on_sqlite(dir.path(), &leadflow_testkit::committed_sample(), leadflow_testkit::quick_params());
    let store = SqliteStore::open(&db).unwrap();
    let script = r#"
import json, os, sys, warnings
warnings.filterwarnings("ignore")
assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
from mlflow.tracking import MlflowClient
uri = "sqlite:///" + sys.argv[1]
c = MlflowClient(tracking_uri=uri, registry_uri=uri)
exp = c.get_experiment_by_name("lead-conversion")
runs = c.search_runs([exp.experiment_id])
champion = c.get_model_version_by_alias("lead_model", "champion")
versions = c.search_model_versions("name='lead_model'")
print(json.dumps({
  "runs": {r.info.run_id: {"name": r.info.run_name, "status": r.info.status, "params": r.data.params,
           "metrics": r.data.metrics, "tags": r.data.tags,
           "artifacts": sorted(f.path for f in c.list_artifacts(r.info.run_id))} for r in runs},
  "model_artifacts": sorted(f.path for f in c.list_artifacts(champion.run_id, "model")),
  "champion": {"version": champion.version, "stage": champion.current_stage, "run_id": champion.run_id,
               "aliases": list(champion.aliases), "tags": champion.tags, "source": champion.source},
  "versions": len(versions),
}))
"#;
    let mut cmd = std::process::Command::new(&python);
    cmd.args(["-c", script, db.to_str().unwrap()]).env_remove("MLFLOW_ALLOW_FILE_STORE");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(out.stdout.rsplit(|b| *b == b'\n').find(|l| l.starts_with(b"{")).unwrap()).unwrap();
    let exp = store.find_experiment("lead-conversion").unwrap().unwrap();
    let ours = store.search_runs(&exp).unwrap();
    assert_eq!(ours.len(), 3, "two training runs and the evaluation");
    super::assert_client_saw(&got, &ours);
    for r in &ours {
        let g = &got["runs"][&r.run_id];
        for (k, v) in &r.tags {
            assert_eq!(g["tags"][k].as_str(), Some(v.as_str()), "tag {k}");
        }
        assert!(!g["artifacts"].as_array().unwrap().is_empty(), "{} has artifacts", r.run_name);
    }
    let d: Deployment = art::read_json(&Layout::new(&opts.artifacts_dir).path(&art::DEPLOYMENT), "d").unwrap();
    let c = &got["champion"];
    assert_eq!(c["version"].to_string().trim_matches('"'), d.version.unwrap().to_string());
    assert_eq!((c["stage"].as_str(), c["run_id"].as_str()), (Some("Production"), d.run_id.as_deref()));
    assert_eq!(c["aliases"], serde_json::json!(["champion"]));
    assert_eq!(c["tags"][leadflow_deploy::MODEL_TAG].as_str(), Some(d.kind.name()));
    assert_eq!(got["versions"], 1);
    let files: Vec<&str> = got["model_artifacts"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(files.contains(&"model/MLmodel"), "{files:?}");
}

#[test]
fn mlflow_server_serves_the_sqlite_store_as_it_is() {
    let Some(bin) = mlflow() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (opts, db) = run_on_sqlite(dir.path(), &leadflow_testkit::committed_sample(), leadflow_testkit::quick_params());
    let before = std::fs::read(&db).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = std::process::Command::new(&bin)
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
        .arg("--backend-store-uri")
        .arg(StoreLocation::sqlite_uri(&db))
        .env_remove("MLFLOW_ALLOW_FILE_STORE")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = super::MlflowServer::adopt(child, format!("http://127.0.0.1:{port}"), dir.path().join("server.log"));
    let exp = api(&server.url, "experiments/get-by-name?experiment_name=lead-conversion");
    let exp_id = exp["experiment"]["experiment_id"].as_str().unwrap().to_string();
    let found = ureq::post(&format!("{}/api/2.0/mlflow/runs/search", server.url))
        .send_json(serde_json::json!({ "experiment_ids": [exp_id] }))
        .unwrap()
        .into_json::<serde_json::Value>()
        .unwrap();
    assert_eq!(found["runs"].as_array().unwrap().len(), 3);
    let d: Deployment = art::read_json(&Layout::new(&opts.artifacts_dir).path(&art::DEPLOYMENT), "d").unwrap();
    let by_alias = api(&server.url, "registered-models/alias?name=lead_model&alias=champion");
    assert_eq!(by_alias["model_version"]["version"].as_str(), Some(d.version.unwrap().to_string().as_str()));
    assert_eq!(by_alias["model_version"]["current_stage"], "Production");
    assert!(ureq_get(&format!("{}/", server.url)).is_some(), "the UI's page");
    server.stop();
    // Serving it did not need to change it (no migration, no opt-in).
    assert!(std::fs::read(&db).unwrap() == before, "mlflow server rewrote the database");
}

#[test]
fn concurrent_pipelines_serialise_on_the_sqlite_lock() {
    // Eight writers register and promote at once: every version is numbered once, the alias ends
    // on one of them, and the database passes SQLite's integrity check.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let store = SqliteStore::open(&db).unwrap();
    let exp = store.get_or_create_experiment("e").unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let db = db.clone();
            let exp = exp.clone();
            std::thread::spawn(move || {
                let s = SqliteStore::open(&db).unwrap();
                let run = s.create_run(&exp, &format!("r{i}"), &[]).unwrap();
                s.log_batch(&run, &[("i".into(), i.to_string())], &[leadflow_mlflow::tracking::MetricPoint::now("m", i as f64)], &[])
                    .unwrap();
                let (v, _) = s.register_version("m", "file:///x", &run, &[]).unwrap();
                s.promote("m", v.version, "Production", "champion").unwrap();
                v.version
            })
        })
        .collect();
    let mut versions: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    let all = store.list_versions("m").unwrap();
    assert_eq!(all.iter().filter(|v| v.current_stage == "Production").count(), 1, "one Production holder");
    let champion = store.get_by_alias("m", "champion").unwrap().unwrap();
    assert_eq!(champion.current_stage, "Production");
    let c = integrity_check(&db);
    assert_eq!(c, "ok");
}

fn integrity_check(db: &Path) -> String {
    // Through the python sqlite3 module if present, else the sqlite3 CLI: SQLite's own check.
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('pragma integrity_check').fetchone()[0])"])
        .arg(db)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
