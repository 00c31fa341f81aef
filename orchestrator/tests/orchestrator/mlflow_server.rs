//! A real MLflow server (REST tracking and registry) and the real MLflow client on our stores.

use super::*;
use crate::incremental::{signal, Progress};

/// Pinned: the release the exported MLmodel files follow (ci.sh installs it into target/mlflow).
pub(crate) const MLFLOW_VERSION: &str = leadflow_deploy::pyfunc::MLFLOW_VERSION;

/// The `mlflow` executable: `LEADFLOW_MLFLOW`, else `mlflow` on PATH (as a full path, so the
/// python beside it is found), else `target/mlflow` made by ci.sh.
pub(crate) fn mlflow() -> Option<PathBuf> {
    // Set up once, before the tests, by ci.sh (no test creates a virtualenv: several would race).
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/mlflow/bin/mlflow");
    let found = std::env::var_os("LEADFLOW_MLFLOW").map(PathBuf::from).or_else(|| leadflow_testkit::on_path("mlflow")).or(Some(venv));
    match found.filter(|p| p.is_file()) {
        Some(p) => Some(p),
        None => {
            leadflow_testkit::skip(&format!("mlflow=={MLFLOW_VERSION} (set LEADFLOW_MLFLOW; ./ci.sh installs it into target/mlflow)"));
            None
        }
    }
}

pub(crate) struct MlflowServer {
    pub(crate) child: std::process::Child,
    pub(crate) url: String,
    pub(crate) _dir: Option<tempfile::TempDir>,
}

impl MlflowServer {
    pub(crate) fn start(bin: &Path) -> MlflowServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = std::process::Command::new(bin)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.path().join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.path().join("artifacts"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let log = dir.path().join("server.log");
        let mut server = MlflowServer::adopt(child, format!("http://127.0.0.1:{port}"), log);
        server._dir = Some(dir);
        server
    }

    /// A started `mlflow server` process, once it answers `/health` (its log shown if not).
    pub(crate) fn adopt(child: std::process::Child, url: String, log: PathBuf) -> MlflowServer {
        let server = MlflowServer { child, url, _dir: None };
        let started = std::time::Instant::now();
        loop {
            if ureq_get(&format!("{}/health", server.url)).is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "mlflow server did not answer: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!("mlflow server up at {} after {:.1}s", server.url, started.elapsed().as_secs_f64());
        server
    }

    /// Stop it by its PID (SIGTERM, then SIGKILL), so no worker keeps the port.
    pub(crate) fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("pkill").args(["-TERM", "-P", &pid]).status();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..40 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = std::process::Command::new("pkill").args(["-KILL", "-P", &pid]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn ureq_get(url: &str) -> Option<String> {
    // A plain HTTP GET with std, so the test checks the server independently of our client.
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

pub(crate) fn api(url: &str, path_and_query: &str) -> serde_json::Value {
    let body = ureq_get(&format!("{url}/api/2.0/mlflow/{path_and_query}")).unwrap_or_else(|| panic!("GET {path_and_query} failed"));
    // Chunked answers: take the JSON object.
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

#[test]
fn live_mlflow_server_tracks_registers_and_decides() {
    // The Dagger tests set MLflow credentials in the environment, which our client reads.
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = mlflow() else { return };
    let mut server = MlflowServer::start(&bin);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), &committed_sample());
    opts.tracking = StoreLocation::Remote(server.url.clone());
    let params = quick_params();
    // A bearer token (the server does not check it; the client sends it): it must never be
    // recorded anywhere (checked at the end).
    std::env::set_var("MLFLOW_TRACKING_TOKEN", SECRET);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| live_server_checks(&mut server, dir.path(), &opts, &params)));
    std::env::remove_var("MLFLOW_TRACKING_TOKEN");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

pub(crate) const SECRET: &str = "tok-5e1f0c9a7b";

/// Every file under `root` that contains [`SECRET`].
pub(crate) fn files_with_secret(root: &Path) -> Vec<PathBuf> {
    leadflow_testkit::snapshot(root)
        .into_keys()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes())))
        .collect()
}

pub(crate) fn live_server_checks(server: &mut MlflowServer, dir: &Path, opts: &RunOptions, params: &Params) {
    let params = params.clone();
    local::run(opts, &params).unwrap();

    // Experiment, both runs with params and metrics, uploaded model artifacts.
    let exp = api(&server.url, "experiments/get-by-name?experiment_name=lead-conversion");
    let exp_id = exp["experiment"]["experiment_id"].as_str().unwrap().to_string();
    let results: leadflow_core::results::ModelResults =
        art::read_json(&Layout::new(&opts.artifacts_dir).path(&art::MODEL_RESULTS), "r").unwrap();
    for (kind, r) in &results.models {
        let run_id = r.run_id.clone().unwrap();
        let run = api(&server.url, &format!("runs/get?run_id={run_id}"));
        assert_eq!(run["run"]["info"]["status"], "FINISHED");
        assert_eq!(run["run"]["info"]["experiment_id"].as_str().unwrap(), exp_id);
        let params_logged: Vec<&str> =
            run["run"]["data"]["params"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
        assert!(params_logged.contains(&"data_version") && params_logged.contains(&"cv_folds"), "{params_logged:?}");
        let f1 = run["run"]["data"]["metrics"].as_array().unwrap().iter().find(|m| m["key"] == "test_f1_weighted").unwrap()["value"]
            .as_f64()
            .unwrap();
        assert!((f1 - r.test_report.weighted_avg.f1).abs() < 1e-9);
        let listed = api(&server.url, &format!("artifacts/list?run_id={run_id}&path=model"));
        let files: Vec<&str> = listed["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
        assert!(files.contains(&format!("model/{}", kind.artifact().name).as_str()), "{files:?}");
    }
    // Our client's metric history and metric-ordered search agree with the server.
    let rest = leadflow_mlflow::rest::RestStore::new(&server.url);
    for r in results.models.values() {
        let h = rest.metric_history(r.run_id.as_ref().unwrap(), "test_f1_weighted").unwrap();
        assert_eq!(h.len(), 1);
        assert!((h[0].value - r.test_report.weighted_avg.f1).abs() < 1e-9);
    }
    let ordered = rest.search_runs_by_metric(&exp_id, "test_f1_weighted", true).unwrap();
    assert_eq!(ordered.len(), 3, "two training runs and the evaluation");
    assert!(ordered[0].metrics["test_f1_weighted"] >= ordered[1].metrics["test_f1_weighted"]);
    assert!(!ordered[2].metrics.contains_key("test_f1_weighted"), "the evaluation run sorts last");

    // The evaluation run, through the REST API: metrics of both models, the decision, links to
    // the training runs (and back), the report and the plots as artifacts.
    let layout = Layout::new(&opts.artifacts_dir);
    let meta = leadflow_core::meta::read(&layout.path(&art::EVALUATE_META)).unwrap();
    let eval_id = meta.extra["evaluation_run_id"].as_str().unwrap().to_string();
    let run = api(&server.url, &format!("runs/get?run_id={eval_id}"))["run"].clone();
    assert_eq!(run["info"]["run_name"], "evaluation");
    assert_eq!(run["info"]["status"], "FINISHED");
    let tag =
        |k: &str| run["data"]["tags"].as_array().unwrap().iter().find(|t| t["key"] == k).map(|t| t["value"].as_str().unwrap().to_string());
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    assert_eq!(tag("leadflow.stage").as_deref(), Some("evaluate"));
    assert_eq!(tag("leadflow.promote"), Some(ev.promote.to_string()));
    assert_eq!(tag("leadflow.decision"), Some(ev.reasons.join("; ")));
    let scores: std::collections::BTreeMap<leadflow_core::model::ModelKind, leadflow_metrics::Scores> =
        art::read_json(&layout.path(&art::METRICS), "m").unwrap();
    let metric = |k: &str| run["data"]["metrics"].as_array().unwrap().iter().find(|m| m["key"] == k).map(|m| m["value"].as_f64().unwrap());
    for (kind, r) in &results.models {
        let id = r.run_id.clone().unwrap();
        assert_eq!(tag(&format!("leadflow.train_run.{}", kind.name())), Some(id.clone()));
        let back = api(&server.url, &format!("runs/get?run_id={id}"))["run"]["data"]["tags"].clone();
        assert!(back.as_array().unwrap().iter().any(|t| t["key"] == "leadflow.evaluation_run" && t["value"] == eval_id.as_str()));
        let want = scores[kind].f1_weighted;
        assert!((metric(&format!("{}_test_f1_weighted", kind.name())).unwrap() - want).abs() < 1e-12);
    }
    let listed = api(&server.url, &format!("artifacts/list?run_id={eval_id}"));
    let files: Vec<&str> = listed["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    for a in [art::REPORT, art::ROC_PNG, art::PR_PNG, art::CONFUSION_XGB_PNG, art::IMPORTANCE_PNG, art::EVALUATION, art::METRICS] {
        assert!(files.contains(&a.name), "{} not logged: {files:?}", a.name);
    }
    rest.set_tag(&ordered[0].run_id, "reviewed", "yes").unwrap();
    let tags = api(&server.url, &format!("runs/get?run_id={}", ordered[0].run_id))["run"]["data"]["tags"].clone();
    assert!(tags.as_array().unwrap().iter().any(|t| t["key"] == "reviewed" && t["value"] == "yes"));

    // Registered version, its stage and alias.
    let v1 = api(&server.url, "model-versions/get?name=lead_model&version=1");
    assert_eq!(v1["model_version"]["current_stage"], "Staging");
    let by_alias = api(&server.url, "registered-models/alias?name=lead_model&alias=challenger");
    assert_eq!(by_alias["model_version"]["version"], "1");

    // Second run (another seed) into Production: no champion yet, so a second version.
    let mut p2 = params.clone();
    p2.train.seed = 9;
    p2.deploy.stage = leadflow_core::params::Stage::Production;
    local::run(opts, &p2).unwrap();
    let d: Deployment = art::read_json(&Layout::new(&opts.artifacts_dir).path(&art::DEPLOYMENT), "d").unwrap();
    assert_eq!((d.version, d.alias.as_deref()), (Some(2), Some("champion")));
    assert_eq!(api(&server.url, "registered-models/alias?name=lead_model&alias=champion")["model_version"]["version"], "2");

    // Third run, same as the second but forced: the champion (read from the server) scores the
    // same, so it stays.
    let mut forced = opts.clone();
    forced.force = orchestrator::Force::All;
    local::run(&forced, &p2).unwrap();
    let ev: Evaluation = art::read_json(&Layout::new(&opts.artifacts_dir).path(&art::EVALUATION), "e").unwrap();
    assert!(!ev.promote, "{:?}", ev.reasons);
    assert_eq!(ev.champion.as_ref().map(|c| c.version), Some(2));
    assert!(
        ev.reasons.iter().any(|r| r.contains("re-scored on the") && r.contains("test rows it never trained on")),
        "champion model downloaded from the server: {:?}",
        ev.reasons
    );
    let versions = api(&server.url, "model-versions/search?filter=name%3D%27lead_model%27");
    assert_eq!(versions["model_versions"].as_array().unwrap().len(), 2);

    // Compare-and-swap against the server: evaluate sees @champion = v2, someone else moves it to
    // v1, deploy re-reads it just before promoting and refuses.
    let mut eval_only = opts.clone();
    eval_only.to = StageId::Evaluate;
    eval_only.force = orchestrator::Force::Stage(StageId::Evaluate);
    local::run(&eval_only, &p2).unwrap();
    let ev_path = Layout::new(&opts.artifacts_dir).path(&art::EVALUATION);
    let mut ev: Evaluation = art::read_json(&ev_path, "e").unwrap();
    assert_eq!(ev.holders["champion"], Some(2));
    // (Identical models tie; say this decision promotes, as a better model's would.)
    ev.promote = true;
    art::write_json(&ev_path, &ev).unwrap();
    leadflow_mlflow::registry::Registry::set_alias(&rest, "lead_model", "champion", 1).unwrap();
    let err = leadflow_deploy::run(&Layout::new(&opts.artifacts_dir), &p2, &rest).unwrap_err();
    assert!(
        matches!(&err, leadflow_deploy::Error::HolderChanged { alias, expected: Some(2), now: Some(1) } if alias == "champion"),
        "{err}"
    );
    assert_eq!(api(&server.url, "registered-models/alias?name=lead_model&alias=champion")["model_version"]["version"], "1");
    leadflow_mlflow::registry::Registry::set_alias(&rest, "lead_model", "champion", 2).unwrap();

    // The server answers but cannot store artifacts (its artifact folder replaced by a file):
    // train fails, and marks the run it opened FAILED on the server.
    let store_dir = server._dir.as_ref().unwrap().path().join("artifacts");
    std::fs::remove_dir_all(&store_dir).unwrap();
    std::fs::write(&store_dir, b"not a folder").unwrap();
    let before: Vec<String> =
        leadflow_mlflow::tracking::Tracker::search_runs(&rest, &exp_id).unwrap().into_iter().map(|r| r.run_id).collect();
    let mut f = opts.clone();
    f.force = orchestrator::Force::Stage(StageId::Train);
    let err = local::run(&f, &p2).unwrap_err().to_string();
    assert!(err.contains("stage `train` failed"), "{err}");
    let new_runs: Vec<leadflow_mlflow::tracking::RunRecord> = leadflow_mlflow::tracking::Tracker::search_runs(&rest, &exp_id)
        .unwrap()
        .into_iter()
        .filter(|r| !before.contains(&r.run_id))
        .collect();
    assert!(!new_runs.is_empty(), "train opened a run before failing");
    for r in &new_runs {
        assert_eq!(r.status, leadflow_mlflow::tracking::RunStatus::Failed, "{} left {:?}", r.run_id, r.status);
    }
    std::fs::remove_file(&store_dir).unwrap();
    std::fs::create_dir(&store_dir).unwrap();

    // Server down: a clear error naming the endpoint, local artifacts intact.
    let layout = Layout::new(&opts.artifacts_dir);
    let model_before = std::fs::read(layout.path(&art::XGB_MODEL)).unwrap();
    server.stop();
    let mut f = opts.clone();
    f.force = orchestrator::Force::Stage(StageId::Train);
    let t = std::time::Instant::now();
    let err = local::run(&f, &p2).unwrap_err().to_string();
    assert!(err.contains("stage `train` failed") && err.contains(&server.url) && err.contains("gave up"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(60));
    assert_eq!(std::fs::read(layout.path(&art::XGB_MODEL)).unwrap(), model_before);

    // The token is in no artifact, run metadata, model card, history, nor in the server's store
    // (runs' params and tags, registry, uploaded artifacts).
    assert_eq!(files_with_secret(dir), Vec::<PathBuf>::new());
    assert_eq!(files_with_secret(server._dir.as_ref().unwrap().path()), Vec::<PathBuf>::new());
}

#[test]
fn server_stopped_mid_run_fails_cleanly_without_hanging() {
    // The Dagger tests set MLflow credentials in the environment, which our client reads.
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = mlflow() else { return };
    let mut server = MlflowServer::start(&bin);
    let dir = tempfile::tempdir().unwrap();
    let params = write_quick_params(dir.path());
    let mut cmd = pipeline(dir.path(), &params);
    cmd.env("MLFLOW_TRACKING_URI", &server.url).env("MLFLOW_TRACKING_TOKEN", SECRET);
    let t = std::time::Instant::now();
    // The run is held (SIGSTOP) right after the data stage, the server stopped, the run resumed:
    // train always meets a server that went away mid-run.
    let mut run = Progress::start(cmd);
    run.wait_for("[data    ] ok");
    signal(run.child.id(), "-STOP");
    server.stop();
    signal(run.child.id(), "-CONT");
    let (status, stderr) = run.rest();
    assert!(t.elapsed() < Duration::from_secs(90), "no hang");
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("stage `train` failed") && stderr.contains(&server.url), "{stderr}");
    assert!(!stderr.contains(SECRET), "the token was printed: {stderr}");
    assert!(!dir.path().join("artifacts/train").exists(), "no half-written stage");
    assert!(!std::fs::read_dir(dir.path().join("artifacts")).unwrap().flatten().any(|e| e.file_name().to_string_lossy().contains(".tmp-")));
}

#[test]
fn the_real_mlflow_client_reads_the_file_store_with_its_opt_in() {
    // The Dagger tests set MLflow credentials in the environment, which our client reads.
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = mlflow() else { return };
    let python = bin.parent().unwrap().join("python");
    if !python.is_file() {
        leadflow_testkit::skip(&format!("a python beside {} (the MLflow client)", bin.display()));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &committed_sample());
    local::run(&opts, &quick_params()).unwrap();
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    let script = r#"
import json, sys, warnings
warnings.filterwarnings("ignore")
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri="file://" + sys.argv[1], registry_uri="file://" + sys.argv[1])
exp = c.get_experiment_by_name("lead-conversion")
runs = c.search_runs([exp.experiment_id])
mv = c.get_model_version_by_alias("lead_model", "challenger")
rm = c.get_registered_model("lead_model")
print(json.dumps({
  "runs": {r.info.run_id: {"name": r.info.run_name, "status": r.info.status, "params": r.data.params, "metrics": r.data.metrics} for r in runs},
  "version": mv.version, "stage": mv.current_stage, "run_id": mv.run_id, "model": rm.name,
}))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script, store.root().to_str().unwrap()])
        // MLflow 3.7+ reads a file store only when asked to.
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(out.stdout.rsplit(|b| *b == b'\n').find(|l| l.starts_with(b"{")).unwrap()).unwrap();
    use leadflow_mlflow::tracking::Tracker;
    let exp = store.get_or_create_experiment("lead-conversion").unwrap();
    let ours = store.search_runs(&exp).unwrap();
    assert_client_saw(&got, &ours);
    let d: Deployment = art::read_json(&Layout::new(&opts.artifacts_dir).path(&art::DEPLOYMENT), "d").unwrap();
    assert_eq!(got["version"].as_str().or(got["version"].as_i64().map(|_| "")).map(|_| ()), Some(()));
    assert_eq!(got["version"].to_string().trim_matches('"'), d.version.unwrap().to_string());
    assert_eq!(got["stage"], "Staging");
    assert_eq!(got["run_id"].as_str(), d.run_id.as_deref());
}

/// What the real MLflow client printed (`{"runs": {id: {name, status, params, metrics}}}`) is
/// every run of ours, finished, with its params and metrics.
pub(crate) fn assert_client_saw(got: &serde_json::Value, ours: &[leadflow_mlflow::tracking::RunRecord]) {
    assert_eq!(got["runs"].as_object().unwrap().len(), ours.len());
    for r in ours {
        let g = &got["runs"][&r.run_id];
        assert_eq!(g["name"], r.run_name.as_str());
        assert_eq!(g["status"], "FINISHED");
        for (k, v) in &r.params {
            assert_eq!(g["params"][k].as_str(), Some(v.as_str()), "param {k}");
        }
        for (k, v) in &r.metrics {
            assert!((g["metrics"][k].as_f64().unwrap() - v).abs() < 1e-12, "metric {k}");
        }
    }
}
