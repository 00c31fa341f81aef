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

mod checks;
mod cli;
mod dagger_engine;
mod docs;
mod examples;
mod gate;
mod mlflow_model;
mod mlflow_store;
mod promotion;
mod pull;
mod release;
mod report;
mod setup;
mod tidy;
mod workflow;

use workflow::repo_file;

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

/// Every artifact the contract names exists and is well-formed.
fn assert_contract(layout: &Layout) {
    for a in art::ALL {
        let p = layout.path(a);
        let bytes = std::fs::read(&p).unwrap_or_else(|_| panic!("{} missing", p.display()));
        assert!(!bytes.is_empty(), "{} is empty", p.display());
        match a.format {
            Format::Json => {
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
            Format::Csv => {
                let t = leadflow_core::table::Table::read(&p).unwrap_or_else(|e| panic!("{e}"));
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
    let reports = local::run(&opts, &other).unwrap();
    assert_eq!(ran(&reports), ["train", "evaluate", "deploy"], "data does not read train.seed");
    // The decision follows the rule from the stored scores: promote only when the new model
    // beats the incumbent (re-scored on the same split) by more than 0 and at least the margin.
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    let incumbent = ev.champion.as_ref().and_then(|c| c.score).expect("v1 is re-scored");
    let gain = ev.selected_score - incumbent;
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
    let v = leadflow_deploy::validate(
        &layout.model_dir(),
        &layout.path(&art::X_TEST),
        &leadflow_deploy::ValidationSpec { labels: Some(layout.path(&art::Y_TEST)), min_accuracy: Some(0.75), ..Default::default() },
    )
    .unwrap();
    assert!(v.passed, "{}", v.to_text());
    assert_eq!(v.rows_compared, 441);
    // The workflow's validate job checks these exact labels of the first test rows when the
    // pipeline ran on the pinned file: they must stay what the default params' model predicts.
    let pinned: Vec<u8> = repo_file("data/raw/expected_labels.txt").trim().split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(pinned.len(), 10);
    let v = leadflow_deploy::validate(
        &layout.model_dir(),
        &layout.path(&art::X_TEST),
        &leadflow_deploy::ValidationSpec { expected: Some(pinned), ..Default::default() },
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

// ---------------------------------------------------------------------------------------------
// Incremental runs, resume after a crash, compare runs.

/// The stages a binary run ran (not up to date), from its stage lines.
fn ran_by_binary(out: &std::process::Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("] ok "))
        .map(|l| l[1..].split(']').next().unwrap().trim().to_string())
        .collect()
}

#[test]
fn staleness_from_code_and_foreign_registry_changes_the_lock_and_slices() {
    let dir = tempfile::tempdir().unwrap();
    let params = write_quick_params(dir.path());
    let run = |extra: &[&str], code: &str| {
        let out =
            pipeline(dir.path(), &params).args(extra).env("LEADFLOW_CODE_ID", code).stderr(std::process::Stdio::piped()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ran_by_binary(&out)
    };
    assert_eq!(run(&[], "code-a"), ["data", "train", "evaluate", "deploy"]);
    assert!(run(&[], "code-a").is_empty());
    // Other code: every stage is stale.
    assert_eq!(run(&[], "code-b"), ["data", "train", "evaluate", "deploy"]);
    assert!(run(&[], "code-b").is_empty());

    // Someone else moves the registry (a version registered and aliased by another pipeline):
    // evaluate and deploy are stale, data and train are not.
    let store = leadflow_mlflow::sqlite::SqliteStore::open(sqlite_db(dir.path())).unwrap();
    let results: leadflow_core::results::ModelResults =
        art::read_json(&Layout::new(dir.path().join("artifacts")).path(&art::MODEL_RESULTS), "r").unwrap();
    let run_id = results.models.values().next().unwrap().run_id.clone().unwrap();
    let source = format!("{}/model", leadflow_mlflow::tracking::Tracker::artifact_uri(&store, &run_id).unwrap());
    let (v, _) = store.register_version("lead_model", &source, &format!("{run_id}-other"), &[]).unwrap();
    store.set_alias("lead_model", "champion", v.version).unwrap();
    assert_eq!(run(&[], "code-b"), ["evaluate", "deploy"]);
    assert!(run(&[], "code-b").is_empty(), "our own deploy does not make the next run stale");

    // --from / --to: only that slice runs; --from after --to is refused.
    let deploy_meta = std::fs::read(Layout::new(dir.path().join("artifacts")).path(&art::DEPLOY_META)).unwrap();
    assert_eq!(run(&["--from", "train", "--to", "evaluate", "--force"], "code-b"), ["train", "evaluate"]);
    assert_eq!(std::fs::read(Layout::new(dir.path().join("artifacts")).path(&art::DEPLOY_META)).unwrap(), deploy_meta);
    let out =
        pipeline(dir.path(), &params).args(["--from", "deploy", "--to", "data"]).stderr(std::process::Stdio::piped()).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("comes after"));

    // The artifacts lock: while another process holds it, a run is refused and changes nothing.
    let lock = std::fs::OpenOptions::new().write(true).open(dir.path().join("artifacts/.lock")).unwrap();
    lock.try_lock().unwrap();
    let before = leadflow_testkit::snapshot(&dir.path().join("artifacts"));
    let out = pipeline(dir.path(), &params).arg("--force").stderr(std::process::Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("another leadflow run is using"), "{stderr}");
    assert_eq!(leadflow_testkit::snapshot(&dir.path().join("artifacts")), before);
    lock.unlock().unwrap();
    assert_eq!(run(&["--force"], "code-b"), ["data", "train", "evaluate", "deploy"]);
}

#[test]
fn only_stale_stages_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &committed_sample());
    let params = quick_params();
    assert_eq!(ran(&local::run(&opts, &params).unwrap()), ["data", "train", "evaluate", "deploy"]);
    assert!(ran(&local::run(&opts, &params).unwrap()).is_empty());

    // A param only evaluate reads.
    let mut p = params.clone();
    p.evaluate.promotion_margin = 0.05;
    let r = ran(&local::run(&opts, &p).unwrap());
    assert_eq!(r[0], "evaluate", "{r:?}");
    assert!(ran(&local::run(&opts, &p).unwrap()).is_empty());

    // A param the data stage reads: everything downstream of it.
    p.dataset.processing.outliers = leadflow_core::dataset::Outliers::Sigma(2.5);
    assert_eq!(ran(&local::run(&opts, &p).unwrap()), ["data", "train", "evaluate", "deploy"]);

    // A deleted or edited output re-runs its stage.
    let layout = Layout::new(&opts.artifacts_dir);
    std::fs::remove_file(layout.path(&art::X_TEST)).unwrap();
    assert_eq!(ran(&local::run(&opts, &p).unwrap())[0], "train");
    let limits = layout.path(&art::DATE_LIMITS);
    std::fs::write(&limits, "{}").unwrap();
    assert_eq!(ran(&local::run(&opts, &p).unwrap())[0], "data");
    std::fs::write(layout.path(&art::DEPLOYMENT), "{}").unwrap();
    assert_eq!(ran(&local::run(&opts, &p).unwrap()), ["deploy"]);
    if layout.model_dir().is_dir() {
        std::fs::write(layout.model_dir().join("model_card.md"), "edited").unwrap();
        assert_eq!(ran(&local::run(&opts, &p).unwrap()), ["deploy"]);
    }

    // What the Dagger engine would send to the container: the stale suffix only.
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    let (skipped, to_run) = orchestrator::split_up_to_date(&opts, &p, Some(&store)).unwrap();
    assert_eq!((skipped.len(), to_run.len()), (4, 0));
    let mut q = p.clone();
    q.train.logistic.max_iterations = 50;
    let (skipped, to_run) = orchestrator::split_up_to_date(&opts, &q, Some(&store)).unwrap();
    assert_eq!(skipped.iter().map(|r| r.stage).collect::<Vec<_>>(), [StageId::Data]);
    assert_eq!(to_run, [StageId::Train, StageId::Evaluate, StageId::Deploy]);

    // --force one stage.
    let mut f = opts.clone();
    f.force = orchestrator::Force::Stage(StageId::Evaluate);
    assert_eq!(ran(&local::run(&f, &p).unwrap())[0], "evaluate");

    // Lineage: later stages depend on the data version, not on data/run.json (which holds
    // timestamps): re-running data on the same file leaves them up to date...
    f.force = orchestrator::Force::Stage(StageId::Data);
    assert_eq!(ran(&local::run(&f, &p).unwrap()), ["data"]);
    // ...while another data version makes them stale even when the stages after data would read
    // the same gold rows (the version is recorded with their results).
    let meta_path = layout.path(&art::DATA_META);
    let mut meta = leadflow_core::meta::read(&meta_path).unwrap();
    meta.data_version = "another-raw-file".into();
    art::write_json(&meta_path, &meta).unwrap();
    let status = orchestrator::stage_status(&opts, &p, Some(&store), StageId::Train).unwrap();
    assert_eq!(status, leadflow_core::fingerprint::Status::Stale("inputs changed: data_version".into()));
}

fn write_quick_params(dir: &Path) -> PathBuf {
    let p = dir.join("params.toml");
    std::fs::write(&p, leadflow_testkit::quick_params_toml()).unwrap();
    p
}

fn pipeline(dir: &Path, params: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"));
    c.args(["--engine", "local", "--params", params.to_str().unwrap(), "--raw", committed_sample().to_str().unwrap()])
        .args(["--artifacts-dir", dir.join("artifacts").to_str().unwrap()])
        // The default kind of store: SQLite (kills and interrupts land in its transactions).
        .env("MLFLOW_TRACKING_URI", StoreLocation::sqlite_uri(&sqlite_db(dir)))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// The deterministic part of a finished pipeline's outputs.
fn outcome(dir: &Path) -> Vec<(String, String)> {
    let layout = Layout::new(dir.join("artifacts"));
    let mut out = Vec::new();
    for a in art::ALL {
        let name = format!("{}/{}", a.dir, a.name);
        let skip = a.name == art::RUN_META || [art::MODEL_RESULTS, art::EVALUATION, art::DEPLOYMENT, art::REPORT].contains(a);
        if !skip {
            out.push((name, leadflow_core::hash::sha256_file(&layout.path(a)).unwrap()));
        }
    }
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    out.push(("evaluation".into(), format!("{:?} {} {} {}", ev.selected, ev.selected_score, ev.promote, ev.gate.passed)));
    let d: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "d").unwrap();
    out.push(("deployment".into(), format!("{} {:?} {:?} {:?}", d.promoted, d.version, d.stage, d.alias)));
    let model = std::fs::read(layout.model_dir().join(d.kind.artifact().name)).unwrap();
    out.push(("model".into(), leadflow_core::hash::sha256_hex(&model)));
    out
}

fn sqlite_db(dir: &Path) -> PathBuf {
    dir.join("mlruns").join("mlflow.db")
}

fn assert_consistent_runs(dir: &Path) {
    let store = leadflow_mlflow::sqlite::SqliteStore::open(sqlite_db(dir)).unwrap();
    use leadflow_mlflow::tracking::{RunStatus, Tracker};
    for exp in ["0", "1"] {
        for r in store.search_runs(exp).unwrap() {
            assert_ne!(r.status, RunStatus::Running, "run {} left RUNNING", r.run_id);
        }
    }
}

fn assert_consistent_store(dir: &Path) {
    assert_consistent_runs(dir);
    let store = leadflow_mlflow::sqlite::SqliteStore::open(sqlite_db(dir)).unwrap();
    let versions = store.list_versions("lead_model").unwrap();
    assert_eq!(versions.len(), 1, "no duplicate versions: {versions:?}");
    let leftovers: Vec<String> = std::fs::read_dir(dir.join("artifacts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-") || n.ends_with(".old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn killed_at_any_moment_then_rerun_ends_like_an_uninterrupted_run() {
    let reference = tempfile::tempdir().unwrap();
    let params = write_quick_params(reference.path());
    assert!(pipeline(reference.path(), &params).status().unwrap().success());
    let expected = outcome(reference.path());
    assert_consistent_store(reference.path());

    // Kill points are progress markers the run prints, not fractions of a reference run's time,
    // so each kill lands where it says whatever the machine's load; every one must land.
    for marker in ["[data    ] running", "[data    ] ok", "[train   ] running", "[train   ] ok", "[evaluate] running"] {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Progress::start(pipeline(dir.path(), &params));
        run.wait_for(marker);
        let _ = run.child.kill(); // SIGKILL
        let status = run.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "the run ended before the kill at {marker:?}");
        let status = pipeline(dir.path(), &params).status().unwrap();
        assert!(status.success(), "re-run after a kill at {marker:?} failed");
        assert_eq!(outcome(dir.path()), expected, "kill at {marker:?}");
        assert_consistent_store(dir.path());
    }
}

/// A pipeline process whose stderr is read line by line as it runs.
struct Progress {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Progress {
    fn start(mut cmd: std::process::Command) -> Progress {
        let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Progress { child, lines, seen: Vec::new() }
    }

    /// Block until a line containing `marker` is printed (two minutes at most).
    fn wait_for(&mut self, marker: &str) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(l) => {
                    let hit = l.contains(marker);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("no line with {marker:?}; output so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Everything printed, after the process ended.
    fn rest(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status, self.seen.join("\n"))
    }
}

fn signal(pid: u32, sig: &str) {
    assert!(std::process::Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

#[test]
fn interrupt_stops_cleanly() {
    // Ctrl-C while train is searching: the run is stopped (SIGSTOP) as soon as it says train is
    // running, sent SIGINT, and continued, so the interrupt always lands mid-train.
    let dir = tempfile::tempdir().unwrap();
    let params = write_quick_params(dir.path());
    let mut run = Progress::start(pipeline(dir.path(), &params));
    run.wait_for("[train   ] running");
    let pid = run.child.id();
    signal(pid, "-STOP");
    signal(pid, "-INT");
    signal(pid, "-CONT");
    let (status, stderr) = run.rest();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted during stage `train`"), "{stderr}");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("artifacts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!dir.path().join("artifacts/train").exists(), "train never committed");
    let runs = orchestrator::history::list(&Layout::new(dir.path().join("artifacts")));
    let last = runs.last().expect("the interrupted run is recorded");
    assert!(!last.ok, "{last:?}");
    let statuses: Vec<(&str, &str)> = last.stages.iter().map(|s| (s.stage.as_str(), s.status.as_str())).collect();
    assert_eq!(statuses, [("data", "ran"), ("train", "killed")], "{last:?}\n{stderr}");
    assert_consistent_runs(dir.path());
    // And the next run completes.
    assert!(pipeline(dir.path(), &params).status().unwrap().success());
    // A different log level does not make any stage stale.
    let out = pipeline(dir.path(), &params).arg("-vv").stderr(std::process::Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.matches("up to date").count() >= 4, "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// A real MLflow server (REST tracking + registry) and the real MLflow client on our file store.

/// Pinned: the release the exported MLmodel files follow (ci.sh installs it into target/mlflow).
const MLFLOW_VERSION: &str = leadflow_deploy::pyfunc::MLFLOW_VERSION;

/// The `mlflow` executable: `LEADFLOW_MLFLOW`, else `mlflow` on PATH (as a full path, so the
/// python beside it is found), else `target/mlflow` made by ci.sh.
fn mlflow() -> Option<PathBuf> {
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

struct MlflowServer {
    child: std::process::Child,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl MlflowServer {
    fn start(bin: &Path) -> MlflowServer {
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
    fn adopt(child: std::process::Child, url: String, log: PathBuf) -> MlflowServer {
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
    fn stop(&mut self) {
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

fn ureq_get(url: &str) -> Option<String> {
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

fn api(url: &str, path_and_query: &str) -> serde_json::Value {
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

const SECRET: &str = "tok-5e1f0c9a7b";

/// Every file under `root` that contains [`SECRET`].
fn files_with_secret(root: &Path) -> Vec<PathBuf> {
    leadflow_testkit::snapshot(root)
        .into_keys()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes())))
        .collect()
}

fn live_server_checks(server: &mut MlflowServer, dir: &Path, opts: &RunOptions, params: &Params) {
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
    let scores: std::collections::BTreeMap<leadflow_core::model::ModelKind, leadflow_core::metrics::Scores> =
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
        ev.reasons.iter().any(|r| r.contains("re-scored on this run's test split")),
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
fn assert_client_saw(got: &serde_json::Value, ours: &[leadflow_mlflow::tracking::RunRecord]) {
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
    assert_eq!(&cmd[..2], ["leadflow-deploy", "serve"]);
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
    let dockerfile = repo_file("Dockerfile");
    for stage in StageId::ALL {
        let bin = format!("leadflow-{}", stage.name());
        assert!(cmd.contains(&bin), "{bin} not run");
        assert!(dockerfile.contains(&format!("target/release/{bin}")), "{bin} not in the image");
    }
    assert!(cmd.contains("--artifacts-dir /app/artifacts") && dockerfile.contains("WORKDIR /app"));
    assert!(cmd.contains("--raw /app/input/raw_data.csv"), "{cmd}");
    assert_eq!(p["volumes"][0].as_str(), Some("./artifacts:/app/artifacts"));
    assert_eq!(p["volumes"][1].as_str(), Some("${LEADFLOW_RAW:-./data/sample/raw_data.csv}:/app/input/raw_data.csv:ro"));
}

/// The Dockerfile's runtime user has this uid (compose's default `user:`).
fn dockerfile_user_is(uid: u32) -> bool {
    repo_file("Dockerfile").contains(&format!("useradd --create-home --uid {uid} "))
}
