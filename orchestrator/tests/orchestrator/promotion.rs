//! Promotion as a compare-and-swap: deploy moves an alias only if it still has the holder
//! evaluate compared with; the orchestrator compares again, once, when it moved.

use leadflow_core::artifacts::{self as art, Layout, StageId};
use leadflow_core::results::{Deployment, Evaluation, ModelResults};
use leadflow_mlflow::registry::Registry;
use leadflow_mlflow::tracking::{FileStore, Tracker};
use leadflow_testkit::{committed_sample, quick_params};
use orchestrator::local;

use crate::options;

/// Another pipeline registers `run_id`'s model and promotes it to `stage` / `alias`.
fn someone_else_promotes(store: &FileStore, run_id: &str, stage: &str, alias: &str) -> u64 {
    let source = format!("{}/model", store.artifact_uri(run_id).unwrap());
    let (v, _) = store.register_version("lead_model", &source, run_id, &[]).unwrap();
    store.promote("lead_model", v.version, stage, alias).unwrap();
    v.version
}

#[test]
fn a_registry_moved_after_evaluate_is_compared_again_once() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &committed_sample());
    let params = quick_params();
    let mut to_evaluate = opts.clone();
    to_evaluate.to = StageId::Evaluate;
    local::run(&to_evaluate, &params).unwrap();
    let layout = Layout::new(&opts.artifacts_dir);
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    assert_eq!(ev.holders.get("challenger"), Some(&None));

    // Between evaluate and deploy, another pipeline takes @challenger with this run's other model.
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    let results: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "r").unwrap();
    let other = results.models.keys().copied().find(|k| *k != ev.selected).unwrap();
    let theirs = someone_else_promotes(&store, results.models[&other].run_id.as_ref().unwrap(), "Staging", "challenger");

    let mut deploy = opts.clone();
    deploy.from = StageId::Deploy;
    let started = chrono::Utc::now();
    let reports = local::run(&deploy, &params).unwrap();
    let ran: Vec<(&str, bool)> = reports.iter().map(|r| (r.stage.name(), r.ok())).collect();
    assert_eq!(ran, [("deploy", false), ("evaluate", true), ("deploy", true)], "{reports:?}");
    assert!(reports[0].message.contains(&format!("@challenger is now held by v{theirs}")), "{}", reports[0].message);
    // The second decision was made against their version, and the registry explains it.
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    assert_eq!(ev.holders["challenger"], Some(theirs));
    assert_eq!(ev.champion.as_ref().map(|c| c.version), Some(theirs));
    let d: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "d").unwrap();
    if d.promoted {
        let v = store.get_version("lead_model", d.version.unwrap()).unwrap();
        assert_eq!(v.tags[leadflow_deploy::COMPARED_WITH_TAG], theirs.to_string());
    } else {
        assert_eq!(store.get_by_alias("lead_model", "challenger").unwrap().unwrap().version, theirs);
    }
    let summary = orchestrator::summary::summary(&layout, &reports, started);
    assert!(summary.contains("retried:  deploy:") && summary.contains("deploy ok"), "{summary}");
}

/// Every alias move recorded in the registry was decided against the holder it replaced: a
/// version's `previous_holder` (the holder it displaced) equals its `compared_with`.
fn assert_every_move_was_compared(store: &FileStore) {
    for v in store.list_versions("lead_model").unwrap() {
        let previous = v.tags.get(leadflow_deploy::PREVIOUS_HOLDER_TAG);
        let compared = v.tags.get(leadflow_deploy::COMPARED_WITH_TAG);
        let promoted = !v.aliases.is_empty() || v.current_stage == "Archived" || previous.is_some();
        if promoted {
            let compared = compared.unwrap_or_else(|| panic!("v{} moved an alias without evaluation evidence: {:?}", v.version, v.tags));
            assert_eq!(compared.as_str(), previous.map(String::as_str).unwrap_or("none"), "v{}: {:?}", v.version, v.tags);
        }
    }
}

#[test]
fn concurrent_pipelines_never_move_an_alias_past_a_model_they_did_not_compare_with() {
    // Four pipelines (seeds 41-44), one registry, released at the same instant, all to Production.
    let root = tempfile::tempdir().unwrap();
    let store_path = root.path().join("mlruns");
    let barrier = leadflow_testkit::Barrier::new(root.path());
    let children: Vec<_> = (41..=44)
        .map(|seed| {
            let dir = root.path().join(format!("p{seed}"));
            std::fs::create_dir_all(&dir).unwrap();
            let params = dir.join("params.toml");
            let toml = format!("[train]\nseed = {seed}\n{}[deploy]\nstage = \"Production\"\n", leadflow_testkit::quick_params_toml());
            std::fs::write(&params, toml).unwrap();
            barrier
                .command(env!("CARGO_BIN_EXE_leadflow"))
                .args(["--engine", "local", "--params", params.to_str().unwrap(), "--raw", committed_sample().to_str().unwrap()])
                .args(["--artifacts-dir", dir.join("artifacts").to_str().unwrap()])
                .env("MLFLOW_TRACKING_URI", &store_path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    barrier.release();
    let mut retried = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        retried += usize::from(stderr.contains("re-running evaluate and deploy"));
        // Success, or a second lost comparison reported as such (never a silent overwrite).
        assert!(out.status.success() || stderr.contains("evaluate must re-run"), "{stderr}");
    }
    eprintln!("{retried} pipeline(s) compared again after the registry moved");
    let store = FileStore::open(&store_path).unwrap();
    assert_eq!(store.list_versions("lead_model").unwrap().iter().filter(|v| v.current_stage == "Production").count(), 1);
    assert_every_move_was_compared(&store);
}
