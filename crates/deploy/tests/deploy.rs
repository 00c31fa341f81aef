//! Integration tests of the deploy stage: registration, stages and aliases, idempotence,
//! concurrency (threads and processes), damaged entries, the model directory and model card.
//! Using the exported directory (`predict`, `check`, the server) is tested in leadflow-serve.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::path::{Path, PathBuf};
use std::process::Command;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::{Deployment, Evaluation};
use leadflow_core::Params;
use leadflow_mlflow::registry::Registry;
use leadflow_mlflow::tracking::FileStore;
use leadflow_testkit::{quick_params as quick, snapshot};

struct Env {
    dir: tempfile::TempDir,
    raw: PathBuf,
}

impl Env {
    /// data -> train -> evaluate on a generated sample.
    fn new(params: &Params) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.csv");
        leadflow_data::generate::generate(&raw, 2500, 31).unwrap();
        let env = Env { dir, raw };
        leadflow_data::run(&env.raw, &env.layout(), params).unwrap();
        env.retrain(params);
        env
    }
    fn retrain(&self, params: &Params) {
        leadflow_train::run(&self.layout(), params, &self.store()).unwrap();
        leadflow_evaluate::run(&self.layout(), params, &self.store()).unwrap();
    }
    fn layout(&self) -> Layout {
        Layout::new(self.dir.path().join("artifacts"))
    }
    fn store_path(&self) -> PathBuf {
        self.dir.path().join("mlruns")
    }
    fn store(&self) -> FileStore {
        FileStore::open(self.store_path()).unwrap()
    }
    fn deploy(&self, params: &Params) -> leadflow_deploy::Result<Deployment> {
        leadflow_deploy::run(&self.layout(), params, &self.store())
    }
    fn evaluation(&self) -> Evaluation {
        art::read_json(&self.layout().path(&art::EVALUATION), "e").unwrap()
    }
    /// Pretend evaluate chose the other model of this run, promoted (see the testkit).
    fn choose_other_model(&self) {
        leadflow_testkit::choose_other_model(&self.layout(), &self.store());
    }
}

#[test]
fn registers_stages_aliases_and_keeps_history() {
    // (Evidence tags: a first promotion was compared with no version.)
    let params = quick();
    let env = Env::new(&params);
    let d1 = env.deploy(&params).unwrap();
    assert!(d1.promoted && d1.created);
    assert_eq!((d1.version, d1.stage.as_deref(), d1.alias.as_deref()), (Some(1), Some("Staging"), Some("challenger")));
    assert_eq!(d1.previous_holder, None);
    let store = env.store();
    let v1 = store.get_version("lead_model", 1).unwrap();
    assert_eq!(v1.current_stage, "Staging");
    assert_eq!(v1.run_id, env.evaluation().selected_run_id.unwrap());
    assert_eq!(v1.aliases, vec!["challenger".to_string()]);
    // The registered source is the run's own artifact folder, complete and self-describing.
    let src = PathBuf::from(v1.source.trim_start_matches("file://"));
    for f in ["feature_spec.json", "preprocessing.json", d1.kind.artifact().name] {
        assert!(src.join(f).is_file(), "{f} missing from {}", src.display());
    }

    // Same run again: idempotent.
    let again = env.deploy(&params).unwrap();
    assert!(again.promoted && !again.created);
    assert_eq!(again.version, Some(1));
    assert_eq!(store.list_versions("lead_model").unwrap().len(), 1);

    // Another run takes the role: version 2, v1 archived, history recorded.
    env.choose_other_model();
    let d2 = env.deploy(&params).unwrap();
    assert_eq!(d2.version, Some(2), "the version deployed is the one just registered");
    assert_eq!(d2.previous_holder, Some(1));
    assert_eq!(d2.archived, vec![1]);
    assert_eq!(store.get_version("lead_model", 1).unwrap().current_stage, "Archived");
    let v2 = store.get_version("lead_model", 2).unwrap();
    assert_eq!(v2.tags["leadflow.previous_holder"], "1");
    assert_eq!(store.get_by_alias("lead_model", "challenger").unwrap().unwrap().version, 2);

    // Production sets the champion alias.
    let mut prod = params.clone();
    prod.deploy.stage = leadflow_core::params::Stage::Production;
    let d3 = env.deploy(&prod).unwrap();
    assert_eq!((d3.version, d3.alias.as_deref()), (Some(2), Some("champion")));
    assert_eq!(store.get_version("lead_model", 2).unwrap().current_stage, "Production");
}

#[test]
fn not_promoted_leaves_the_registry_alone_and_exits_zero() {
    let params = quick();
    let env = Env::new(&params);
    let mut ev = env.evaluation();
    ev.promote = false;
    art::write_json(&env.layout().path(&art::EVALUATION), &ev).unwrap();
    let d = env.deploy(&params).unwrap();
    assert!(!d.promoted && d.version.is_none());
    assert!(env.store().list_versions("lead_model").unwrap().is_empty());
    // Nothing rejected is exported: no model directory (a stale one would be removed).
    assert!(!env.layout().model_dir().exists());
    assert!(art::read_json::<serde_json::Value>(&env.layout().path(&art::DEPLOYMENT), "d").unwrap()["reasons"].is_array());
    // And through the binary: exit code 0.
    let out = Command::new(env!("CARGO_BIN_EXE_leadflow-deploy"))
        .args(["--artifacts-dir", env.layout().root().to_str().unwrap()])
        .env("MLFLOW_TRACKING_URI", env.store_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn model_directory_and_card_are_self_describing() {
    let params = quick();
    let env = Env::new(&params);
    let d = env.deploy(&params).unwrap();
    let dir = env.layout().model_dir();
    for f in
        ["model.json", "model_card.md", "model_card.json", "feature_spec.json", "preprocessing.json", "scaler.json", d.kind.artifact().name]
    {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let card: serde_json::Value = art::read_json(&dir.join("model_card.json"), "card").unwrap();
    let data_meta = leadflow_core::meta::read(&env.layout().path(&art::DATA_META)).unwrap();
    assert_eq!(card["training_data"]["data_version_sha256"], data_meta.data_version);
    assert_eq!(card["training_data"]["date_window"]["min_date"], "2024-01-01");
    assert_eq!(card["features"].as_array().unwrap().len(), 12);
    assert_eq!(card["threshold"], 0.5);
    assert_eq!(card["registry"]["version"], 1);
    assert!(card["metrics"]["f1_weighted"].as_f64().unwrap() > 0.6);
    // Facts the card states are this run's numbers: the top feature from evaluate's importance
    // file (largest magnitude, computed here), the chosen model's CV spread, its own load hint.
    let limitations: Vec<String> = card["limitations"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let imp: serde_json::Value = art::read_json(&env.layout().path(&art::IMPORTANCE_JSON), "importance").unwrap();
    let values = imp[d.kind.name()]["values"].as_array().unwrap();
    let top = values.iter().max_by(|a, b| a[1].as_f64().unwrap().abs().total_cmp(&b[1].as_f64().unwrap().abs())).unwrap();
    let top_line = limitations.iter().find(|l| l.starts_with("Most influential features")).expect("importance line");
    // ...and evaluate's explanation view: its largest mean |contribution| first.
    let ex: serde_json::Value = art::read_json(&env.layout().path(&art::EXPLANATIONS_JSON), "explanations").unwrap();
    let first = &ex["columns"][0];
    let drives = limitations.iter().find(|l| l.starts_with("What drives its scores")).expect("explanations line");
    assert!(drives.contains(&format!("{} ({:.3})", first["name"].as_str().unwrap(), first["mean_abs"].as_f64().unwrap())), "{drives}");
    assert!(top_line.contains(&format!("{} ({:.3})", top[0].as_str().unwrap(), top[1].as_f64().unwrap())), "{top_line}");
    let results: leadflow_core::results::ModelResults = art::read_json(&env.layout().path(&art::MODEL_RESULTS), "r").unwrap();
    let cv = &results.models[&d.kind].cv;
    assert!(limitations.iter().any(|l| l.contains(&format!("{:.3} ± {:.3}", cv.mean, cv.std))), "{limitations:?}");
    let load: Vec<String> = card["how_to_load"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(load.iter().any(|l| l.contains(d.kind.artifact().name)), "{load:?}");
    let other = leadflow_core::model::ModelKind::ALL.into_iter().find(|k| *k != d.kind).unwrap();
    assert!(!load.iter().any(|l| l.contains(other.artifact().name)), "a hint for the model kind not chosen: {load:?}");
    let md = std::fs::read_to_string(dir.join("model_card.md")).unwrap();
    for s in ["Predicts", "Intended use", "Known limitations", "How to load", "Training data"] {
        assert!(md.contains(s), "{s} missing from the card");
    }
}

#[test]
fn concurrent_deploys_never_lose_or_duplicate_a_version() {
    // Three pipelines share one registry and deploy at the same moment, as separate processes.
    let params = quick();
    let base = Env::new(&params);
    let mut roots = Vec::new();
    for i in 0..3 {
        let root = base.dir.path().join(format!("copy{i}"));
        copy_dir(base.layout().root(), &root);
        let layout = Layout::new(&root);
        let mut p = params.clone();
        p.train.seed = 100 + i;
        leadflow_train::run(&layout, &p, &base.store()).unwrap();
        leadflow_evaluate::run(&layout, &p, &base.store()).unwrap();
        roots.push(root);
    }
    // A start barrier: each process waits for the `go` file, so all three deploy at once.
    let barrier = leadflow_testkit::Barrier::new(base.dir.path());
    let children: Vec<_> = roots
        .iter()
        .map(|r| {
            barrier
                .command(env!("CARGO_BIN_EXE_leadflow-deploy"))
                .args(["-q", "--artifacts-dir", r.to_str().unwrap()])
                .env("MLFLOW_TRACKING_URI", base.store_path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    barrier.release();
    // All three evaluated against an empty registry: the first to promote wins, the other two
    // are refused (compare-and-swap) with their own exit status, after registering their version.
    let mut refused = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        if out.status.code() == Some(i32::from(leadflow_deploy::EXIT_HOLDER_CHANGED)) {
            refused += 1;
        } else {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    assert_eq!(refused, 2);
    let promoted: Vec<Deployment> =
        roots.iter().filter_map(|r| art::read_json::<Deployment>(&Layout::new(r).path(&art::DEPLOYMENT), "d").ok()).collect();
    assert_eq!(promoted.len(), 1);
    let all = base.store().list_versions("lead_model").unwrap();
    assert_eq!(all.len(), 3);
    let mut runs: Vec<&str> = all.iter().map(|v| v.run_id.as_str()).collect();
    runs.sort_unstable();
    runs.dedup();
    assert_eq!(runs.len(), 3, "one version per run");
    assert_eq!(all.iter().filter(|v| v.current_stage == "Staging").count(), 1, "exactly one holder of Staging");
    let holder = base.store().get_by_alias("lead_model", "challenger").unwrap().unwrap();
    assert_eq!(holder.current_stage, "Staging");
}

#[test]
fn concurrent_registrations_in_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(FileStore::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = store.clone();
            std::thread::spawn(move || {
                // Each run registers twice: the second must be recognised.
                let a = s.register_version("m", "file:///x", &format!("run{i}"), &[]).unwrap().0.version;
                let b = s.register_version("m", "file:///x", &format!("run{i}"), &[]).unwrap().0.version;
                assert_eq!(a, b);
                a
            })
        })
        .collect();
    let mut v: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    v.sort_unstable();
    assert_eq!(v, (1..=8).collect::<Vec<_>>());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

#[test]
fn damaged_version_entry_is_reported_not_overwritten() {
    let params = quick();
    let env = Env::new(&params);
    env.deploy(&params).unwrap();
    let meta = env.store_path().join("models/lead_model/version-1/meta.yaml");
    env.choose_other_model();
    std::fs::write(&meta, "current_stage: Staging\n").unwrap(); // `version` and more are missing
    let artifacts_before = snapshot(env.layout().root());
    let registry_before = snapshot(&env.store_path().join("models"));
    let err = env.deploy(&params).unwrap_err().to_string();
    assert!(err.contains("version-1/meta.yaml") && err.contains("damaged"), "{err}");
    assert_eq!(std::fs::read_to_string(&meta).unwrap(), "current_stage: Staging\n");
    assert!(!env.store_path().join("models/lead_model/version-2").exists());
    assert_eq!(snapshot(env.layout().root()), artifacts_before, "no artifact half-written");
    let registry_after = snapshot(&env.store_path().join("models"));
    assert!(registry_after == registry_before, "the registry changed: {:?}", registry_after.keys().collect::<Vec<_>>());
}

#[test]
fn bad_stage_alias_and_missing_artifacts_are_clear_errors() {
    let err = leadflow_core::error::chain(&Params::from_toml("[deploy]\nstage = \"Prod\"\n").unwrap_err());
    assert!(err.contains("Prod") && err.contains("Staging"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    let err = leadflow_deploy::run(&Layout::new(dir.path().join("a")), &quick(), &store).unwrap_err().to_string();
    assert!(err.contains("evaluation.json") && err.contains("`evaluate` stage"), "{err}");
    let err = leadflow_deploy::describe(&store, "lead_model", Some("v1")).unwrap_err().to_string();
    assert!(err.contains("invalid alias"), "{err}");
    let err = leadflow_deploy::describe(&store, "lead_model", Some("champion")).unwrap_err().to_string();
    assert!(err.contains("no version with alias"), "{err}");
}

#[test]
fn corrupt_model_is_refused_before_registration() {
    let params = quick();
    let env = Env::new(&params);
    let kind = env.evaluation().selected;
    std::fs::write(env.layout().path(&kind.artifact()), b"garbage").unwrap();
    let err = env.deploy(&params).unwrap_err().to_string();
    assert!(err.contains(kind.artifact().name), "{err}");
    assert!(env.store().list_versions("lead_model").unwrap().is_empty());
    assert!(!env.layout().model_dir().exists());
}

#[test]
fn promotion_is_a_compare_and_swap_against_the_holders_evaluate_saw() {
    let params = quick();
    let env = Env::new(&params);
    let ev = env.evaluation();
    assert!(ev.promote);
    assert_eq!(
        ev.holders,
        [("champion".to_string(), None), ("challenger".to_string(), None)].into_iter().collect(),
        "evaluate records the holders it compared with"
    );
    // After evaluate decided, another pipeline registers its model and takes @challenger.
    let store = env.store();
    let results: leadflow_core::results::ModelResults = art::read_json(&env.layout().path(&art::MODEL_RESULTS), "r").unwrap();
    let other = results.models.keys().copied().find(|k| *k != ev.selected).unwrap();
    let other_run = results.models[&other].run_id.clone().unwrap();
    let source = format!("{}/model", leadflow_mlflow::tracking::Tracker::artifact_uri(&store, &other_run).unwrap());
    let (theirs, _) = store.register_version("lead_model", &source, &other_run, &[]).unwrap();
    store.promote("lead_model", theirs.version, "Staging", "challenger").unwrap();

    // The binary refuses to move the alias, says who holds it now, exits 3; nothing moved.
    let out = Command::new(env!("CARGO_BIN_EXE_leadflow-deploy"))
        .args(["-q", "--artifacts-dir", env.layout().root().to_str().unwrap()])
        .env("MLFLOW_TRACKING_URI", env.store_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(leadflow_deploy::EXIT_HOLDER_CHANGED)), "{stderr}");
    assert!(
        stderr.contains(&format!("@challenger is now held by v{}", theirs.version)) && stderr.contains("evaluate must re-run"),
        "{stderr}"
    );
    assert_eq!(store.get_by_alias("lead_model", "challenger").unwrap().unwrap().version, theirs.version);
    assert!(!env.layout().path(&art::DEPLOYMENT).exists(), "no deployment recorded");

    // Evaluate again (now against their version), then deploy: the evidence is on the version.
    leadflow_evaluate::run(&env.layout(), &params, &store).unwrap();
    let ev = env.evaluation();
    assert_eq!(ev.holders["challenger"], Some(theirs.version));
    let d = env.deploy(&params).unwrap();
    if ev.promote {
        let v = store.get_version("lead_model", d.version.unwrap()).unwrap();
        assert_eq!(v.tags[leadflow_deploy::COMPARED_WITH_TAG], theirs.version.to_string());
        assert_eq!(v.tags[leadflow_deploy::PREVIOUS_HOLDER_TAG], theirs.version.to_string());
        assert_eq!(v.tags[leadflow_deploy::METRIC_TAG], ev.selection_metric);
        assert_eq!(v.tags[leadflow_deploy::SCORE_TAG], format!("{}", ev.selected_score));
        assert_eq!(v.tags[leadflow_deploy::MARGIN_TAG], format!("{}", params.evaluate.promotion_margin));
    } else {
        assert_eq!(store.get_by_alias("lead_model", "challenger").unwrap().unwrap().version, theirs.version);
    }
}

#[test]
fn an_os_error_is_reported_once_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let params = quick();
    let env = Env::new(&params);
    env.deploy(&params).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leadflow-deploy"))
        .args(["predict", "--model-dir", env.layout().model_dir().to_str().unwrap(), "--input", missing.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("nope.csv"), "{stderr}");
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
}

/// The MLflow model's Python loader applies the saved calibration and threshold exactly as
/// leadflow's own scoring does, row for row.
#[test]
fn the_mlflow_loader_calibrates_and_labels_as_leadflow_does() {
    use leadflow_core::calibration::CalibrationMethod;
    let Some(py) = leadflow_testkit::python_with("xgboost, pandas") else { return };
    let mut params = quick();
    params.train.xgboost.calibration = CalibrationMethod::Isotonic;
    params.train.logistic.calibration = CalibrationMethod::Sigmoid;
    params.evaluate.threshold = leadflow_core::params::Threshold::MaxF1;
    let env = Env::new(&params);
    env.deploy(&params).unwrap();
    let dir = env.layout().model_dir();
    let spec: leadflow_core::results::DeployedModel = art::read_json(&dir.join(art::MODEL_SPEC.name), "spec").unwrap();
    assert!(spec.calibration.is_some() && spec.threshold != 0.5, "{spec:?}");
    python_loader_agrees(&env, &dir, &py);
}

/// `leadflow model predict` and the MLflow model's Python loader give the same probabilities
/// (to 1e-9) and labels for the raw rows.
fn python_loader_agrees(env: &Env, dir: &Path, py: &str) {
    let ours = env.dir.path().join("scores.csv");
    leadflow_serve::batch::predict(dir, &env.raw, &ours, leadflow_serve::batch::InputKind::Raw).unwrap();
    let table = std::fs::read_to_string(&ours).unwrap();
    let rows: Vec<(f64, u8)> = table
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[f.len() - 2].parse().unwrap(), f[f.len() - 1].parse().unwrap())
        })
        .collect();
    let script = r#"
import sys, json
import pandas as pd
sys.path.insert(0, sys.argv[1] + "/code")
import leadflow_pyfunc
out = leadflow_pyfunc._load_pyfunc(sys.argv[1]).predict(pd.read_csv(sys.argv[2]))
print(json.dumps({"p": out["probability"].tolist(), "label": out["label"].tolist()}))
"#;
    let out = Command::new(py).args(["-c", script]).arg(dir).arg(&env.raw).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (p, labels): (Vec<f64>, Vec<u8>) =
        (serde_json::from_value(theirs["p"].clone()).unwrap(), serde_json::from_value(theirs["label"].clone()).unwrap());
    assert_eq!(p.len(), rows.len());
    let max_diff = rows.iter().zip(&p).map(|(a, b)| (a.0 - b).abs()).fold(0.0, f64::max);
    assert!(max_diff < 1e-9, "calibrated probabilities differ by up to {max_diff}");
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), labels, "labels at the saved threshold");
}

#[test]
fn a_boosted_model_deploys_and_scores_in_leadflow_and_in_python_alike() {
    let Some(py) = leadflow_testkit::python_with("xgboost, pandas") else { return };
    let params = leadflow_testkit::boosted_only_params();
    let env = Env::new(&params);
    let d = env.deploy(&params).unwrap();
    assert_eq!(d.kind, leadflow_core::model::ModelKind::Boosted);
    let dir = env.layout().model_dir();
    assert!(dir.join(art::BOOSTED_MODEL.name).is_file());
    let mlmodel = std::fs::read_to_string(dir.join("MLmodel")).unwrap();
    assert!(mlmodel.contains("xgboost:") && mlmodel.contains(art::BOOSTED_MODEL.name), "{mlmodel}");
    python_loader_agrees(&env, &dir, &py);
}
