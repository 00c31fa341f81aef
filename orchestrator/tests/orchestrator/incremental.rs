//! Incremental runs, resume after a crash or an interrupt, stale stages.

use super::*;

/// The stages a binary run ran (not up to date), from its stage lines.
pub(crate) fn ran_by_binary(out: &std::process::Output) -> Vec<String> {
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

pub(crate) fn write_quick_params(dir: &Path) -> PathBuf {
    let p = dir.join("params.toml");
    std::fs::write(&p, leadflow_testkit::quick_params_toml()).unwrap();
    p
}

pub(crate) fn pipeline(dir: &Path, params: &Path) -> std::process::Command {
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
pub(crate) fn outcome(dir: &Path) -> Vec<(String, String)> {
    let layout = Layout::new(dir.join("artifacts"));
    let mut out = Vec::new();
    for a in crate::written(&layout) {
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

pub(crate) fn sqlite_db(dir: &Path) -> PathBuf {
    dir.join("mlruns").join("mlflow.db")
}

pub(crate) fn assert_consistent_runs(dir: &Path) {
    let store = leadflow_mlflow::sqlite::SqliteStore::open(sqlite_db(dir)).unwrap();
    use leadflow_mlflow::tracking::{RunStatus, Tracker};
    for exp in ["0", "1"] {
        for r in store.search_runs(exp).unwrap() {
            assert_ne!(r.status, RunStatus::Running, "run {} left RUNNING", r.run_id);
        }
    }
}

pub(crate) fn assert_consistent_store(dir: &Path) {
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
pub(crate) struct Progress {
    pub(crate) child: std::process::Child,
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Progress {
    pub(crate) fn start(mut cmd: std::process::Command) -> Progress {
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
    pub(crate) fn wait_for(&mut self, marker: &str) {
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
    pub(crate) fn rest(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status, self.seen.join("\n"))
    }
}

pub(crate) fn signal(pid: u32, sig: &str) {
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
