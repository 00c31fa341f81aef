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
fn the_exported_tables_are_scikit_learns_copies() {
    let Some(py) = leadflow_testkit::python_with("sklearn") else { return };
    let dir = tempfile::tempdir().unwrap();
    for name in ["breast_cancer", "wine", "digits"] {
        let out = std::process::Command::new(&py).arg(example("export.py")).args([name, dir.path().to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let exported = std::fs::read(dir.path().join(format!("{name}.csv"))).unwrap();
        assert!(exported == std::fs::read(example(&format!("{name}/{name}.csv"))).unwrap(), "the committed {name} export differs");
    }
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
    // Artifact names are the dataset's, not the lead's.
    let files = leadflow_testkit::snapshot(layout.root());
    let lead: Vec<_> =
        files.keys().filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().replace("leadflow", "").contains("lead"))).collect();
    assert!(lead.is_empty(), "{name}: lead file names in a non-lead run: {lead:?}");
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
    let err = leadflow_serve::predict(&r.layout.model_dir(), &input, &out, leadflow_serve::InputKind::Auto).unwrap_err().to_string();
    assert!(err.contains("--input-kind"), "{err}");
    let n = leadflow_serve::predict(&r.layout.model_dir(), &input, &out, leadflow_serve::InputKind::Raw).unwrap().rows;
    assert_eq!(n, 5000);
    let scores = std::fs::read_to_string(&out).unwrap();
    assert!(scores.starts_with("row,customerID,probability,label\n1,C00000,"), "{}", &scores[..80]);
    // A contract type never seen in training is refused (unseen = "error"), naming it.
    let odd = dir.path().join("odd.csv");
    std::fs::write(&odd, std::fs::read_to_string(&input).unwrap().replacen("Two year", "Three year", 1)).unwrap();
    let err = leadflow_serve::predict(&r.layout.model_dir(), &odd, &out, leadflow_serve::InputKind::Raw).unwrap_err().to_string();
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
    let v = leadflow_serve::validate(
        &r.layout.model_dir(),
        &r.layout.path(&art::X_TEST),
        &leadflow_serve::ValidationSpec {
            labels: Some(r.layout.path(&art::Y_TEST)),
            min_accuracy: Some(0.9),
            input: leadflow_serve::InputKind::Encoded,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(v.passed, "{}", v.to_text());
}

#[test]
fn wine_three_named_classes_pass_the_wine_gate() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_example(dir.path(), "wine", "wine.csv");
    assert!(r.evaluation.gate.passed && r.deployment.promoted, "{:?}", r.evaluation.reasons);
    let acc = r.evaluation.gate.checks.iter().find(|c| c.metric == "accuracy").unwrap();
    assert!(acc.value >= 0.80 && acc.threshold == 0.80);
    assert!(r.report.contains("(predicts `cultivar`, 3 classes: class_0, class_1, class_2)"), "{}", r.report);
    assert!(r.report.contains("## Per class") && r.report.contains("| class_2 |"), "{}", r.report);
    assert!(r.card.contains("one probability for each of the 3 classes of `cultivar`"), "{}", r.card);
    // Predictions name the class and give one probability per class.
    let out = dir.path().join("scores.csv");
    let n = leadflow_serve::predict(&r.layout.model_dir(), &example("wine/wine.csv"), &out, leadflow_serve::InputKind::Raw).unwrap().rows;
    assert_eq!(n, 178);
    let scores = std::fs::read_to_string(&out).unwrap();
    assert!(scores.starts_with("row,sample_id,label,p_class_0,p_class_1,p_class_2\n1,S000,class_"), "{}", &scores[..120]);
    // Validation compares class indices; a label the model has no class for is refused.
    let spec = |labels: &Path| leadflow_serve::ValidationSpec {
        labels: Some(labels.to_path_buf()),
        min_accuracy: Some(0.8),
        input: leadflow_serve::InputKind::Encoded,
        ..Default::default()
    };
    let v = leadflow_serve::validate(&r.layout.model_dir(), &r.layout.path(&art::X_TEST), &spec(&r.layout.path(&art::Y_TEST))).unwrap();
    assert!(v.passed, "{}", v.to_text());
    let odd = dir.path().join("y.csv");
    std::fs::write(&odd, std::fs::read_to_string(r.layout.path(&art::Y_TEST)).unwrap().replacen("\n2\n", "\n3\n", 1)).unwrap();
    let err = leadflow_serve::validate(&r.layout.model_dir(), &r.layout.path(&art::X_TEST), &spec(&odd)).unwrap_err().to_string();
    assert!(err.contains("expected a class index 0 to 2, found \"3\""), "{err}");
}

#[test]
fn digits_ten_integer_classes_reach_the_pipelines_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_example(dir.path(), "digits", "digits.csv");
    let metrics: std::collections::BTreeMap<leadflow_core::model::ModelKind, leadflow_metrics::Scores> =
        art::read_json(&r.layout.path(&art::METRICS), "m").unwrap();
    let lr = &metrics[&leadflow_core::model::ModelKind::Logistic];
    assert!(lr.accuracy >= 0.96, "logistic regression test accuracy {}", lr.accuracy);
    assert_eq!(lr.confusion_matrix.len(), 10);
    assert!(r.evaluation.gate.passed);
    // The 10 x 10 heat map is drawn larger than the 2 x 2 one, with room for every cell.
    let png = std::fs::read(r.layout.path(&leadflow_core::model::ModelKind::Logistic.confusion_png())).unwrap();
    let (w, h) = (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert!(w >= 230 + 10 * 52 && h >= 110 + 10 * 52, "{w} x {h}");
}

#[test]
fn churn_drift_is_quiet_on_a_fresh_batch_and_explanations_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_example(dir.path(), "churn", "customers.csv");
    // A fresh batch from the churn generator (another seed) is the training law: no drift.
    let batch = dir.path().join("batch.csv");
    leadflow_data::generate::churn(&batch, 2000, 12).unwrap();
    let params = Params::load(&example("churn").join("params.toml")).unwrap();
    let report = leadflow_serve::drift::check(&r.layout.model_dir(), &batch, &params.drift).unwrap();
    assert!(report.drifted.is_empty(), "{:#?}", report.columns);
    assert!(report.columns.iter().any(|c| c.name == "Contract"), "{:?}", report.columns.iter().map(|c| &c.name).collect::<Vec<_>>());
    // Each customer's contributions and the bias add up to the model's margin.
    let md = leadflow_serve::ModelDir::open(&r.layout.model_dir()).unwrap();
    let table = leadflow_features::table::Table::read(&batch).unwrap();
    let x = md.features_of(&table, &batch, leadflow_serve::InputKind::Raw).unwrap();
    let e = md.explain_matrix(&x).unwrap();
    for (i, m) in md.model.margin(&x).unwrap().iter().enumerate() {
        let sum: f64 = e.row(i).iter().sum::<f64>() + e.bias[i];
        assert!((sum - m).abs() < 1e-4, "customer {i}: {sum} vs margin {m}");
    }
    // The report carries the global view, in the churn table's own columns.
    assert!(r.report.contains("## What drives the scores") && r.report.contains("| Contract |"), "{}", r.report);
}
