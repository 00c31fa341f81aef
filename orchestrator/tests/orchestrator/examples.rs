//! The lead preset's params file and the examples: each example runs end to end from its own
//! params, with wording for its own target, and its data is what its generator or export makes.

use std::path::{Path, PathBuf};

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::{Deployment, Evaluation};
use leadflow_core::Params;
use leadflow_mlflow::registry::Registry;
use leadflow_mlflow::tracking::FileStore;
use orchestrator::local;

use super::options;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

#[test]
fn the_committed_params_file_is_the_lead_preset() {
    // So the pinned results of the default params are also those of `params.toml`.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../params.toml");
    assert_eq!(Params::load(&file).unwrap(), Params::default());
}

#[test]
fn the_churn_data_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("customers.csv");
    leadflow_data::generate::churn(&out, 5000, 11).unwrap();
    let committed = std::fs::read(example("churn/customers.csv")).unwrap();
    assert!(std::fs::read(&out).unwrap() == committed, "examples/churn/customers.csv differs from the generator's output");
    // The faults the churn pipeline cleans are there.
    let text = String::from_utf8(committed).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert!(rows.len() - sorted.len() > 50, "duplicate rows");
    assert!(rows.iter().filter(|r| r.split(',').nth(4) == Some("")).count() > 50, "missing TotalCharges");
    assert!(rows.iter().filter(|r| r.split(',').nth(1).is_some_and(|a| a.parse::<u32>().unwrap() > 120)).count() > 10, "Age outliers");
}

#[test]
fn the_breast_cancer_table_is_scikit_learns_copy() {
    let Some(py) = leadflow_testkit::python_with("sklearn") else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example("breast_cancer/export.py"), dir.path().join("export.py")).unwrap();
    let out = std::process::Command::new(py).arg(dir.path().join("export.py")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported = std::fs::read(dir.path().join("breast_cancer.csv")).unwrap();
    assert!(exported == std::fs::read(example("breast_cancer/breast_cancer.csv")).unwrap(), "the committed export differs");
}

struct Ran {
    layout: Layout,
    evaluation: Evaluation,
    deployment: Deployment,
    report: String,
    card: String,
}

fn run_example(dir: &Path, name: &str, raw: &str) -> Ran {
    let params = Params::load(&example(name).join("params.toml")).unwrap();
    let opts = options(dir, &example(name).join(raw));
    local::run(&opts, &params).unwrap();
    let layout = Layout::new(&opts.artifacts_dir);
    let evaluation: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    let deployment: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "d").unwrap();
    let store = FileStore::open(dir.join("mlruns")).unwrap();
    assert_eq!(store.list_versions(&params.deploy.model_name).unwrap().len(), 1, "{name}: one version registered");
    for a in [art::ROC_PNG, art::PR_PNG, art::IMPORTANCE_PNG] {
        assert!(std::fs::metadata(layout.path(&a)).unwrap().len() > 1000, "{name}: {} drawn", a.name);
    }
    let report = std::fs::read_to_string(layout.path(&art::REPORT)).unwrap();
    let card = std::fs::read_to_string(layout.model_dir().join(art::MODEL_CARD_MD.name)).unwrap();
    Ran { layout, evaluation, deployment, report, card }
}

#[test]
fn churn_runs_end_to_end_in_its_own_words() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_example(dir.path(), "churn", "customers.csv");
    assert!(r.evaluation.gate.passed && r.evaluation.promote && r.deployment.promoted);
    assert!(r.report.contains("# leadflow evaluation report: churn (predicts `Churn` = Yes, \"churned\")"), "{}", r.report);
    assert!(r.report.contains("customers scored") && r.report.contains("are in fact *stayed*"), "{}", r.report);
    assert!(r.card.contains("P(churned) = P(Churn = \"Yes\"): the probability that a customer cancels their contract"), "{}", r.card);
    for text in [&r.report, &r.card] {
        for word in [" lead ", "leads", "convert"] {
            assert!(!text.contains(word), "lead wording {word:?} left in:\n{text}");
        }
    }
    let meta = leadflow_core::meta::read(&r.layout.path(&art::DATA_META)).unwrap();
    assert!(meta.rows["after_drop_duplicates"] < meta.rows["raw"], "duplicates dropped");
    // Predict takes raw customers through the saved preprocessing; the raw columns are also
    // the (ordinal) feature names, so it must be told which reading is meant.
    let input = example("churn/customers.csv");
    let out = dir.path().join("scores.csv");
    let err = leadflow_deploy::predict(&r.layout.model_dir(), &input, &out, leadflow_deploy::InputKind::Auto).unwrap_err().to_string();
    assert!(err.contains("--input-kind"), "{err}");
    let n = leadflow_deploy::predict(&r.layout.model_dir(), &input, &out, leadflow_deploy::InputKind::Raw).unwrap();
    assert_eq!(n, 5000);
    let scores = std::fs::read_to_string(&out).unwrap();
    assert!(scores.starts_with("row,customerID,probability,label\n1,C00000,"), "{}", &scores[..80]);
    // A contract type never seen in training is refused (unseen = "error"), naming it.
    let odd = dir.path().join("odd.csv");
    std::fs::write(&odd, std::fs::read_to_string(&input).unwrap().replacen("Two year", "Three year", 1)).unwrap();
    let err = leadflow_deploy::predict(&r.layout.model_dir(), &odd, &out, leadflow_deploy::InputKind::Raw).unwrap_err().to_string();
    assert!(err.contains("`Contract`: \"Three year\" was never seen in training"), "{err}");
}

#[test]
fn breast_cancer_runs_end_to_end_with_inferred_roles() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_example(dir.path(), "breast_cancer", "breast_cancer.csv");
    assert!(r.evaluation.gate.passed && r.deployment.promoted, "{:?}", r.evaluation.reasons);
    assert!(r.evaluation.selected_score > 0.9);
    assert!(r.card.contains("P(malignant) = P(diagnosis = \"malignant\")"), "{}", r.card);
    let roles: serde_json::Value = art::read_json(&r.layout.path(&art::ROLES), "roles").unwrap();
    let continuous = roles.as_array().unwrap().iter().filter(|c| c["role"] == "continuous" && c["inferred"].is_string()).count();
    assert_eq!(continuous, 30, "every measurement inferred continuous");
    // The pipeline's own test split validates through the encoded reading.
    let v = leadflow_deploy::validate(
        &r.layout.model_dir(),
        &r.layout.path(&art::X_TEST),
        &leadflow_deploy::ValidationSpec {
            labels: Some(r.layout.path(&art::Y_TEST)),
            min_accuracy: Some(0.9),
            input: leadflow_deploy::InputKind::Encoded,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(v.passed, "{}", v.to_text());
}
