//! A rejected model stays rejected: the quality gate's failure is replayed by an up-to-date
//! evaluate, a run that did not promote exports no model directory, and errors name the real
//! artifacts folder. Through the binary, as a user (or a CI re-run) would meet it.

use std::path::Path;
use std::process::Output;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::Deployment;
use leadflow_mlflow::tracking::StoreLocation;
use leadflow_testkit::{committed_sample, quick_params_toml};

/// The orchestrator binary on the committed sample, with an artifacts folder whose name is not
/// `artifacts` (so a message that hard-codes the default is caught).
fn leadflow(dir: &Path, params: &str, extra: &[&str]) -> Output {
    let params_file = dir.join("params.toml");
    std::fs::write(&params_file, params).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["--engine", "local", "--params", params_file.to_str().unwrap(), "--raw", committed_sample().to_str().unwrap()])
        .args(["--artifacts-dir", dir.join("out").to_str().unwrap()])
        .args(extra)
        .env("MLFLOW_TRACKING_URI", StoreLocation::sqlite_uri(&dir.join("store/mlflow.db")))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `error:` line the binary ends with.
fn error_line(o: &Output) -> String {
    stderr(o).lines().rfind(|l| l.starts_with("error:")).unwrap_or_default().to_string()
}

fn with_evaluate(extra: &str) -> String {
    format!("{}[evaluate]\n{extra}\n", quick_params_toml())
}

#[test]
fn a_failed_gate_fails_again_when_nothing_changed_and_exports_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("out"));
    let report = layout.path(&art::REPORT);
    let strict = with_evaluate("min_accuracy = 0.99");

    let first = leadflow(dir.path(), &strict, &[]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let message = error_line(&first);
    assert!(message.contains("quality gate failed") && message.contains("accuracy"), "{message}");
    assert!(message.contains(&report.display().to_string()), "the error names the real report path: {message}");
    assert!(!message.contains("artifacts/evaluate"), "{message}");
    assert!(report.is_file());

    // The same command again: evaluate is up to date, and its recorded result is the failure.
    let second = leadflow(dir.path(), &strict, &[]);
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "a re-run of a rejected model must fail too:\n{err}");
    assert_eq!(error_line(&second), message, "the same message");
    assert!(err.contains("[evaluate] up to date; its recorded result is a failure"), "{err}");
    assert!(!err.contains("[deploy  ]"), "deploy must not run:\n{err}");
    assert!(!layout.model_dir().exists(), "no model directory from a rejected model");
    assert!(err.contains("this run: data up to date · train up to date · evaluate FAILED · deploy not run"), "{err}");

    // A gate the model passes: evaluate re-runs (its params changed), deploy promotes and exports.
    let ok = leadflow(dir.path(), &with_evaluate("min_accuracy = 0.5"), &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let d: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "deployment").unwrap();
    assert!(d.promoted && layout.model_dir().join(art::MODEL_SPEC.name).is_file());

    // A run that does not promote (another seed, a margin no model can clear) removes the
    // earlier run's model directory rather than leave it beside this run's decision.
    let margin = format!("{}[train]\nseed = 7\n[evaluate]\nmin_accuracy = 0.5\npromotion_margin = 0.5\n", quick_params_toml());
    let not_promoted = leadflow(dir.path(), &margin, &[]);
    let err = stderr(&not_promoted);
    assert!(not_promoted.status.success(), "{err}");
    let d: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "deployment").unwrap();
    assert!(!d.promoted, "{:?}", d.reasons);
    assert!(!layout.model_dir().exists(), "a run that promoted nothing exports no model directory");
    assert!(err.contains("model:    none exported (nothing promoted)"), "{err}");
    // Up to date: the same outcome, still no model directory.
    let again = leadflow(dir.path(), &margin, &[]);
    assert!(again.status.success() && !layout.model_dir().exists(), "{}", stderr(&again));
    assert!(stderr(&again).contains("[deploy  ] up to date"), "{}", stderr(&again));
}

/// The Dagger engine skips the up-to-date prefix on the host: a recorded gate failure in that
/// prefix ends the run there, with the same message, before any container starts.
#[test]
fn the_dagger_engines_up_to_date_prefix_replays_a_recorded_failure() {
    let dir = tempfile::tempdir().unwrap();
    let opts = crate::options(dir.path(), &committed_sample());
    let mut strict = leadflow_testkit::quick_params();
    strict.evaluate.min_accuracy = 0.99;
    let err = orchestrator::local::run(&opts, &strict).unwrap_err();
    let orchestrator::Error::Stage { message, .. } = err else { panic!("{err}") };
    let store = leadflow_mlflow::open_store(&opts.tracking).unwrap();
    match orchestrator::split_up_to_date(&opts, &strict, Some(store.as_ref())) {
        Err(orchestrator::Error::Stage { stage, message: replayed, reports, .. }) => {
            assert_eq!(stage, leadflow_core::artifacts::StageId::Evaluate);
            assert_eq!(replayed, message);
            let outcomes: Vec<_> = reports.iter().map(|r| (r.stage.name(), r.outcome)).collect();
            use orchestrator::Outcome::{Failed, UpToDate};
            assert_eq!(outcomes, [("data", UpToDate), ("train", UpToDate), ("evaluate", Failed)]);
        }
        other => panic!("expected the recorded failure, got {:?}", other.map(|(s, r)| (s.len(), r))),
    }
}
