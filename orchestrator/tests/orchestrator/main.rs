//! Orchestrator tests: end-to-end runs with the local engine, a failing stage, and the Dagger
//! engine's CONTRACT test (a fake GraphQL endpoint on 127.0.0.1 stands in for the engine: it
//! checks what the orchestrator asks the engine to do, it does not run containers).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use leadflow_core::artifacts::{self as art, Format, Layout, StageId};
use leadflow_core::results::{Deployment, Evaluation};
use leadflow_core::Params;
use leadflow_mlflow::registry::Registry;
use leadflow_mlflow::tracking::{FileStore, StoreLocation};
use leadflow_testkit::{committed_sample, quick_params, real_data};
use orchestrator::{local, RunOptions};

// Helpers the other modules use as `crate::…` / `super::…`.
use incremental::{pipeline, write_quick_params};
use mlflow_server::{api, assert_client_saw, mlflow, ureq_get, MlflowServer, MLFLOW_VERSION};

mod cli;
mod dagger_engine;
mod docs;
mod drift;
mod examples;
mod gate;
mod incremental;
mod mlflow_model;
mod mlflow_server;
mod mlflow_store;
mod promotion;
mod pull;
mod release;
mod report;

/// A file of the repository, as text.
pub fn repo_file(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)).unwrap()
}

/// Tests that touch process-wide environment variables run one at a time.
pub static ENV_LOCK: Mutex<()> = Mutex::new(());

fn options(dir: &Path, raw: &Path) -> RunOptions {
    RunOptions {
        params_path: None,
        raw: raw.to_path_buf(),
        from: StageId::Data,
        to: StageId::Deploy,
        artifacts_dir: dir.join("artifacts"),
        tracking: StoreLocation::Local(dir.join("mlruns")),
        repo_root: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        connect_timeout: Duration::from_secs(5),
        force: orchestrator::Force::None,
    }
}

/// The contract's artifacts a run wrote: all but those of model kinds it did not train.
pub(crate) fn written(layout: &Layout) -> Vec<&'static art::Artifact> {
    let results: leadflow_core::results::ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "train results").unwrap();
    art::ALL.iter().filter(|a| leadflow_core::model::ModelKind::owning(a).is_none_or(|k| results.models.contains_key(&k))).collect()
}

/// Every artifact the contract names exists and is well-formed.
fn assert_contract(layout: &Layout) {
    for a in written(layout) {
        let p = layout.path(a);
        let bytes = std::fs::read(&p).unwrap_or_else(|_| panic!("{} missing", p.display()));
        assert!(!bytes.is_empty(), "{} is empty", p.display());
        match a.format {
            Format::Json => {
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
            Format::Csv => {
                let t = leadflow_features::table::Table::read(&p).unwrap_or_else(|e| panic!("{e}"));
                assert!(!t.header.iter().any(String::is_empty), "{}: an unnamed column", p.display());
                assert!(!t.rows.is_empty(), "{} has no rows", p.display());
            }
            Format::Png => assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", p.display()),
            Format::Markdown | Format::Text => assert!(String::from_utf8(bytes).is_ok()),
        }
    }
    for f in [art::MODEL_SPEC, art::MODEL_CARD_JSON, art::MODEL_CARD_MD] {
        assert!(layout.path(&f).is_file(), "{} missing", f.name);
    }
}

fn ran(reports: &[orchestrator::StageReport]) -> Vec<&'static str> {
    reports.iter().filter(|r| !r.skipped()).map(|r| r.stage.name()).collect()
}

#[test]
fn local_engine_end_to_end_on_the_committed_sample_twice() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &committed_sample());
    let params = quick_params();
    let reports = local::run(&opts, &params).unwrap();
    assert_eq!(reports.iter().map(|r| r.stage).collect::<Vec<_>>(), StageId::ALL.to_vec());
    let layout = Layout::new(&opts.artifacts_dir);
    assert_contract(&layout);
    let first: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "d").unwrap();
    assert!(first.promoted);
    assert_eq!(first.version, Some(1));

    // Second run, nothing changed: every stage is up to date.
    let again = local::run(&opts, &params).unwrap();
    assert!(again.iter().all(|r| r.skipped()), "{again:?}");

    // Forced, same data and params: a clean champion/challenger round. Identical models score
    // the same, so the incumbent stays and the registry is untouched.
    let mut forced = opts.clone();
    forced.force = orchestrator::Force::All;
    let reports = local::run(&forced, &params).unwrap();
    assert!(reports.iter().all(|r| !r.skipped()));
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    assert!(!ev.promote, "{:?}", ev.reasons);
    let champ = ev.champion.expect("the first run's version is the incumbent");
    assert_eq!(champ.version, 1);
    assert!((champ.score.unwrap() - ev.selected_score).abs() < 1e-12);
    let second: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "d").unwrap();
    assert!(!second.promoted);
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    assert_eq!(store.list_versions("lead_model").unwrap().len(), 1);

    // A third run with a different seed trains different models and is compared on the same
    // metric; whatever it decides, versions only grow and the deployment says why.
    let mut other = params.clone();
    other.train.seed = 3;
    // The committed sample is small: few of this split's rows were held out by v1 too.
    other.evaluate.min_comparison_rows = 5;
    let reports = local::run(&opts, &other).unwrap();
    assert_eq!(ran(&reports), ["train", "evaluate", "deploy"], "data does not read train.seed");
    // The decision follows the rule from the stored scores: promote only when the new model
    // beats the incumbent (both re-scored on the rows v1 never trained on) by more than 0 and at
    // least the margin.
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    let champ = ev.champion.as_ref().expect("compared with v1");
    let incumbent = champ.score.expect("v1 is re-scored");
    let ours = champ.selected_scores.as_ref().expect("on the rows v1 never trained on").f1_weighted;
    let gain = ours - incumbent;
    assert_eq!(ev.promote, ev.gate.passed && gain > 0.0 && gain >= other.evaluate.promotion_margin, "{:?}", ev.reasons);
    let versions = store.list_versions("lead_model").unwrap();
    assert_eq!(versions.len(), if ev.promote { 2 } else { 1 });
}

#[test]
fn local_engine_end_to_end_on_the_real_data() {
    let Some(raw) = real_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &raw);
    local::run(&opts, &Params::default()).unwrap();
    let layout = Layout::new(&opts.artifacts_dir);
    assert_contract(&layout);
    let meta = leadflow_core::meta::read(&layout.path(&art::DATA_META)).unwrap();
    assert_eq!(meta.rows["gold"], 2_937);
    // The lead preset's results, pinned: a refactor must not move them. (Recorded from the
    // default params on the pinned file; byte-identical whatever the thread count.)
    let pinned = [
        (art::GOLD, "7a0cd90b38ebe33bcf1710b6a4017dd6436127a0b8c0b8ffd0561808a740efef"),
        (art::X_TRAIN, "cb01a04ca750a2afbfba5aaf63c14d60c3d7d6ff67b90b9558793bcbb9971a15"),
        (art::X_TEST, "0cbc7d07d360ec5e7f6bd15817932ee78d447f9bc7406eacf823b7e1a737cea4"),
        (art::Y_TRAIN, "29a1c52802cd57f90ba3c148e0ceba3656d96dd6811307ac64de3c2f80350049"),
        (art::Y_TEST, "be540a63fef74e640efad5c32ad924f485f804653a924e27d7accc1a8cac7f48"),
        (art::XGB_MODEL, "860b33bb2a382adf6ab8fb9e3c0e77ea4c7cf7f6c7fe6c425943a214535bc54b"),
        (art::LR_MODEL, "108dec4967bf5cdaf0e567d29e456d529cb57d8d9736eaf31f48022ad65ee7b6"),
        (art::METRICS, "45b065f1ed6441dd6bc009e1b7fbb00b55c32dfde2f6f3eb2793fba069207785"),
    ];
    for (a, want) in pinned {
        let got = leadflow_core::hash::sha256_file(&layout.path(&a)).unwrap();
        assert_eq!(got, want, "{} moved: the lead preset's results changed", a.name);
    }
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    assert!(ev.gate.passed && ev.promote);
    // The exported model validates on the pipeline's own test split.
    let v = leadflow_serve::validate(
        &layout.model_dir(),
        &layout.path(&art::X_TEST),
        &leadflow_serve::ValidationSpec { labels: Some(layout.path(&art::Y_TEST)), min_accuracy: Some(0.75), ..Default::default() },
    )
    .unwrap();
    assert!(v.passed, "{}", v.to_text());
    assert_eq!(v.rows_compared, 441);
    // The workflow's validate job checks these exact labels of the first test rows when the
    // pipeline ran on the pinned file: they must stay what the default params' model predicts.
    let pinned: Vec<u8> = repo_file("data/raw/expected_labels.txt").trim().split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(pinned.len(), 10);
    let v = leadflow_serve::validate(
        &layout.model_dir(),
        &layout.path(&art::X_TEST),
        &leadflow_serve::ValidationSpec { expected: Some(pinned), ..Default::default() },
    )
    .unwrap();
    assert!(v.passed, "data/raw/expected_labels.txt no longer matches the model on the real data:\n{}", v.to_text());
}

#[test]
fn a_failing_stage_stops_the_run_names_the_stage_and_keeps_earlier_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &committed_sample());
    let params = quick_params();
    local::run(&opts, &params).unwrap();
    let layout = Layout::new(&opts.artifacts_dir);
    let gold_before = std::fs::read(layout.path(&art::GOLD)).unwrap();
    let model_before = std::fs::read(layout.path(&art::XGB_MODEL)).unwrap();

    // The gate fails in evaluate: data and train outputs of this run are kept, deploy never runs.
    let mut strict = params.clone();
    strict.evaluate.min_roc_auc = 0.9999;
    let started = chrono::Utc::now();
    let err = local::run(&opts, &strict).unwrap_err();
    let summary = summary_of(&layout, &err, started);
    let err = err.to_string();
    assert!(err.contains("stage `evaluate` failed") && err.contains("roc_auc"), "{err}");
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    assert!(!ev.gate.passed, "the failing run is still explained");
    assert_eq!(std::fs::read(layout.path(&art::GOLD)).unwrap(), gold_before);
    // The summary shows this run's decision as its own, the earlier run's registry line as older.
    let line =
        |prefix: &str| summary.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}: {summary}")).to_string();
    assert_eq!(line("this run:"), "this run: data up to date · train up to date · evaluate FAILED · deploy not run");
    assert!(line("failed:").contains("evaluate:") && line("failed:").contains("roc_auc"), "{summary}");
    assert!(line("split:").ends_with("(up to date)"), "{summary}");
    assert!(line("decision:").contains("gate FAILED") && !line("decision:").contains("OLDER"), "{summary}");
    assert!(line("registry:").contains("[OLDER: from an earlier run finished"), "{summary}");
    assert!(line("model:").contains("[OLDER"), "{summary}");
    assert!(!line("report:").contains("OLDER"), "{summary}");

    // A bad input fails the first stage: nothing after it changes.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "lead_id,lead_indicator\n1,0\n").unwrap();
    let mut o = opts.clone();
    o.raw = bad;
    let started = chrono::Utc::now();
    let err = local::run(&o, &params).unwrap_err();
    let summary = summary_of(&layout, &err, started);
    let err = err.to_string();
    assert!(err.contains("stage `data` failed") && err.contains("bad.csv"), "{err}");
    assert_eq!(std::fs::read(layout.path(&art::XGB_MODEL)).unwrap(), model_before);
    // Every result on disk is older than this run, and says so.
    assert!(summary.contains("this run: data FAILED · train not run · evaluate not run · deploy not run"), "{summary}");
    for l in summary.lines().filter(|l| ["split:", "decision:", "registry:", "model:", "report:"].iter().any(|p| l.starts_with(p))) {
        assert!(l.contains("[OLDER: from an earlier run finished"), "shown as current: {l}\n{summary}");
    }
}

/// The end-of-run summary of a run that failed with `err`.
fn summary_of(layout: &Layout, err: &orchestrator::Error, started: chrono::DateTime<chrono::Utc>) -> String {
    let orchestrator::Error::Stage { reports, .. } = err else { panic!("not a stage failure: {err}") };
    orchestrator::summary::summary(layout, reports, started)
}

#[test]
fn engine_choice_says_why() {
    use orchestrator::{choose_engine, Engine, EngineChoice};
    assert_eq!(choose_engine(EngineChoice::Auto, None).0, Engine::Local);
    let (e, why) = choose_engine(EngineChoice::Auto, Some("4242"));
    assert_eq!(e, Engine::Dagger);
    assert!(why.contains("DAGGER_SESSION_PORT=4242"));
    assert_eq!(choose_engine(EngineChoice::Local, Some("4242")).0, Engine::Local);
}

#[test]
fn binary_help_and_bad_stage() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in ["--engine", "--params", "--raw", "--from", "--to", "--artifacts-dir"] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow")).args(["--from", "serve"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown stage"));
}

#[test]
fn compose_file_matches_the_dockerfile_and_the_environment() {
    use yaml_rust2::YamlLoader;
    let c = &YamlLoader::load_from_str(&repo_file("compose.yaml")).unwrap()[0];
    let mlflow = &c["services"]["mlflow"];
    assert_eq!(mlflow["image"].as_str(), Some(format!("ghcr.io/mlflow/mlflow:v{MLFLOW_VERSION}").as_str()), "same MLflow as the tests");
    assert!(repo_file("ci.sh").contains(&format!("MLFLOW_PIN={MLFLOW_VERSION}\n")), "ci.sh installs the MLflow the MLmodel files follow");
    // The serving service runs the pipeline image's deploy binary against the same server.
    let sv = &c["services"]["serve"];
    assert_eq!(sv["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    let default_server = Some("${MLFLOW_TRACKING_URI:-http://mlflow:5000}");
    assert_eq!(sv["environment"]["MLFLOW_TRACKING_URI"].as_str(), default_server);
    let cmd: Vec<&str> = sv["command"].as_vec().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(&cmd[..3], ["leadflow", "model", "serve"]);
    assert!(cmd.contains(&"0.0.0.0") && cmd.contains(&"lead_model@challenger"), "{cmd:?}");
    // Jupyter beside MLflow, on the same server, with the pipeline's artifacts and the same MLflow.
    let j = &c["services"]["jupyter"];
    assert_eq!(j["build"]["dockerfile"].as_str(), Some("notebooks/Dockerfile"));
    assert_eq!(j["environment"]["MLFLOW_TRACKING_URI"].as_str(), default_server);
    let mounts: Vec<&str> = j["volumes"].as_vec().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(mounts.contains(&"./notebooks:/lab/notebooks") && mounts.contains(&"./artifacts:/lab/artifacts:ro"), "{mounts:?}");
    assert_eq!(j["environment"]["LEADFLOW_ARTIFACTS"].as_str(), Some("/lab/artifacts"));
    assert!(repo_file("notebooks/Dockerfile").contains(&format!("FROM ghcr.io/mlflow/mlflow:v{MLFLOW_VERSION}\n")));
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks/explore.ipynb").is_file());
    let p = &c["services"]["pipeline"];
    assert_eq!(p["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    assert_eq!(p["environment"]["MLFLOW_TRACKING_URI"].as_str(), default_server);
    // On a Linux host: the host user's ids, the host reachable, the input from a variable.
    assert_eq!(p["user"].as_str(), Some("${LEADFLOW_UID:-10001}:${LEADFLOW_GID:-10001}"));
    assert!(dockerfile_user_is(10001));
    for s in ["pipeline", "serve", "jupyter"] {
        let hosts: Vec<&str> = c["services"][s]["extra_hosts"].as_vec().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(hosts, ["host.docker.internal:host-gateway"], "{s}");
    }
    for var in [leadflow_mlflow::rest::TOKEN_ENV, leadflow_mlflow::rest::USERNAME_ENV, leadflow_mlflow::rest::PASSWORD_ENV] {
        assert!(!p["environment"][var].is_badvalue(), "{var} passed through");
    }
    let cmd = p["command"].as_vec().unwrap().iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" ");
    // The whole pipeline, by the image's one command, with the local engine inside the container.
    let dockerfile = repo_file("Dockerfile");
    assert!(cmd.starts_with("leadflow run --engine local"), "{cmd}");
    assert!(
        dockerfile.contains("cargo build --release --locked -p orchestrator --bin leadflow")
            && dockerfile.contains("cp target/release/leadflow /out/")
    );
    assert!(cmd.contains("--artifacts-dir /app/artifacts") && dockerfile.contains("WORKDIR /app"));
    assert!(cmd.contains("--raw /app/input/raw_data.csv"), "{cmd}");
    assert_eq!(p["volumes"][0].as_str(), Some("./artifacts:/app/artifacts"));
    assert_eq!(p["volumes"][1].as_str(), Some("${LEADFLOW_RAW:-./data/sample/raw_data.csv}:/app/input/raw_data.csv:ro"));
}

/// The Dockerfile's runtime user has this uid (compose's default `user:`).
fn dockerfile_user_is(uid: u32) -> bool {
    repo_file("Dockerfile").contains(&format!("useradd --create-home --uid {uid} "))
}
