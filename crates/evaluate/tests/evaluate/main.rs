//! Integration tests of the evaluate stage: outputs and pictures, consistency with train, the
//! gate, champion/challenger against the registry, and bad input.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod decisions;

use std::path::Path;

use leadflow_core::artifacts::{self as art, Layout, StageId};
use leadflow_core::model::ModelKind;
use leadflow_core::results::{Evaluation, ModelResults};
use leadflow_core::Params;
use leadflow_metrics::Scores;
use leadflow_mlflow::registry::Registry;
use leadflow_mlflow::tracking::{FileStore, Tracker};
use leadflow_testkit::quick_params as quick;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// Data and train on a generated sample.
    fn new(params: &Params) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.csv");
        leadflow_data::generate::generate(&raw, 3000, 21).unwrap();
        let env = Env { dir };
        leadflow_data::run(&raw, &env.layout(), params).unwrap();
        leadflow_train::run(&env.layout(), params, &env.store()).unwrap();
        env
    }
    fn layout(&self) -> Layout {
        Layout::new(self.dir.path().join("artifacts"))
    }
    fn store(&self) -> FileStore {
        FileStore::open(self.dir.path().join("mlruns")).unwrap()
    }
    fn results(&self) -> ModelResults {
        art::read_json(&self.layout().path(&art::MODEL_RESULTS), "r").unwrap()
    }
    /// Register one of this run's models as holder of `alias`, as deploy would.
    fn register(&self, kind: ModelKind, alias: &str) -> u64 {
        let run = self.results().models[&kind].run_id.clone().unwrap();
        let store = self.store();
        let source = format!("{}/model", store.artifact_uri(&run).unwrap());
        let (v, _) = store.register_version("lead_model", &source, &run, &[("leadflow.model".into(), kind.name().into())]).unwrap();
        store.set_alias("lead_model", alias, v.version).unwrap();
        v.version
    }
}

fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn writes_metrics_pictures_report_and_a_first_promotion() {
    // Every model kind, so every evaluate artifact is written.
    let mut params = quick();
    params.train.boosted.enabled = true;
    params.train.boosted.n_candidates = 2;
    params.train.boosted.cv_folds = 3;
    let env = Env::new(&params);
    let s = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap();
    let layout = env.layout();
    for a in art::ALL.iter().filter(|a| a.stage == StageId::Evaluate) {
        assert!(layout.path(a).is_file(), "{} missing", a.name);
    }
    for p in [art::ROC_PNG, art::PR_PNG, art::CONFUSION_XGB_PNG, art::CONFUSION_LR_PNG, art::IMPORTANCE_PNG] {
        let (w, h) = png_size(&layout.path(&p));
        assert!(w >= 600 && h >= 500, "{}: {w}x{h}", p.name);
    }
    // Same test split as train: evaluate's numbers equal the train-stage reports.
    let results = env.results();
    let metrics: std::collections::BTreeMap<ModelKind, Scores> = art::read_json(&layout.path(&art::METRICS), "m").unwrap();
    for (k, r) in &results.models {
        let m = &metrics[k];
        assert!((m.f1_weighted - r.test_report.weighted_avg.f1).abs() < 1e-12, "{k:?}");
        assert_eq!(m.confusion_matrix, r.test_confusion);
        assert_eq!(m.confusion_matrix.iter().flatten().sum::<usize>(), results.split.test_rows);
        assert!(m.roc_auc > 0.5 && m.log_loss > 0.0);
    }
    let business: serde_json::Value = art::read_json(&layout.path(&art::BUSINESS_METRICS), "b").unwrap();
    let sel = s.evaluation.selected;
    let b = &business["models"][sel.name()];
    assert_eq!(b["rows_scored"].as_u64().unwrap() as usize, results.split.test_rows);
    assert_eq!(b["positive"], "converted", "the lead preset's wording");
    assert!((b["detection_rate"].as_f64().unwrap() - metrics[&sel].recall).abs() < 1e-12);
    assert_eq!(b["correctly_identified"].as_u64().unwrap() + b["missed"].as_u64().unwrap(), b["actual_positive"].as_u64().unwrap());
    // The best model by the selection metric is selected; with no champion it is promoted.
    let best = metrics.iter().max_by(|a, b| a.1.f1_weighted.total_cmp(&b.1.f1_weighted)).unwrap().0;
    assert_eq!(sel, *best);
    assert!(s.evaluation.promote && s.evaluation.gate.passed && s.evaluation.champion.is_none());
    let report = std::fs::read_to_string(layout.path(&art::REPORT)).unwrap();
    assert!(report.contains("**Promote"));
    assert!(report.contains("| XGBoost random forest") && report.contains("| Logistic regression"));
    assert!(report.contains("no champion yet"));
    for p in ["roc_curve.png", "pr_curve.png", "feature_importance.png", "confusion_xgboost.png"] {
        assert!(report.contains(&format!("]({p})")), "{p} not linked");
    }
}

#[test]
fn failed_gate_is_explained_then_reported_as_an_error() {
    let mut params = quick();
    params.evaluate.min_accuracy = 0.999;
    let env = Env::new(&params);
    let err = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap_err().to_string();
    assert!(err.contains("quality gate failed") && err.contains("accuracy") && err.contains("threshold 0.999"), "{err}");
    let ev: Evaluation = art::read_json(&env.layout().path(&art::EVALUATION), "e").unwrap();
    assert!(!ev.gate.passed && !ev.promote);
    assert!(std::fs::read_to_string(env.layout().path(&art::REPORT)).unwrap().contains("quality gate failed"));
}

#[test]
fn champion_challenger_on_the_same_test_split() {
    let params = quick();
    let env = Env::new(&params);
    let first = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    let winner = first.selected;
    let loser = if winner == ModelKind::Xgboost { ModelKind::Logistic } else { ModelKind::Xgboost };
    let metrics: std::collections::BTreeMap<ModelKind, Scores> = art::read_json(&env.layout().path(&art::METRICS), "m").unwrap();

    // The weaker model holds the champion role: it is re-scored on this split and beaten.
    let v = env.register(loser, "champion");
    let ev = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    let champ = ev.champion.clone().unwrap();
    assert_eq!((champ.version, champ.alias.as_str()), (v, "champion"));
    assert!((champ.score.unwrap() - metrics[&loser].f1_weighted).abs() < 1e-12, "re-scored on this run's split");
    assert_eq!(ev.promote, metrics[&winner].f1_weighted > metrics[&loser].f1_weighted);

    // The same, but the margin is out of reach: keep the champion.
    let mut strict = params.clone();
    strict.evaluate.promotion_margin = 0.5;
    let ev = leadflow_evaluate::run(&env.layout(), &strict, &env.store()).unwrap().evaluation;
    assert!(!ev.promote, "{:?}", ev.reasons);
    assert!(ev.reasons.iter().any(|r| r.contains("keep the incumbent")));

    // The champion is this very run (an earlier deploy of it): deploy just confirms it.
    let v = env.register(winner, "champion");
    let ev = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    assert!(ev.promote);
    assert_eq!(ev.champion.unwrap().version, v);
    assert!(ev.reasons.iter().any(|r| r.contains("already is version") && r.contains("no new version")), "{:?}", ev.reasons);
}

#[test]
fn a_confident_promotion_needs_the_bootstrap_intervals_lower_bound_to_clear_the_margin() {
    let params = quick();
    let env = Env::new(&params);
    let first = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    let loser = if first.selected == ModelKind::Xgboost { ModelKind::Logistic } else { ModelKind::Xgboost };
    env.register(loser, "champion");
    let ev = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    let champ = ev.champion.clone().unwrap();
    let i = champ.interval.clone().expect("a re-scored champion gets a paired interval");
    assert!((i.diff - (ev.selected_score - champ.score.unwrap())).abs() < 1e-12, "{i:?}");
    assert!(i.low <= i.diff && i.diff <= i.high && i.low < i.high, "{i:?}");
    assert_eq!((i.resamples, i.rows, i.confidence), (2000, env.results().split.test_rows, 0.95));
    let again = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    assert_eq!(again.champion.unwrap().interval, Some(i.clone()), "deterministic for a seed");
    let report = std::fs::read_to_string(env.layout().path(&art::REPORT)).unwrap();
    assert!(report.contains("paired resamples"), "{report}");

    // A margin between the lower bound and the point estimate: the point rule promotes, the
    // confident rule keeps the incumbent.
    let mut confident = params.clone();
    confident.evaluate.promotion = leadflow_core::params::Promotion::Confident;
    let ev = leadflow_evaluate::run(&env.layout(), &confident, &env.store()).unwrap().evaluation;
    assert_eq!(ev.promote, ev.gate.passed && i.low > 0.0, "{:?}", ev.reasons);
    assert!(ev.reasons.iter().any(|r| r.contains("lower bound")), "{:?}", ev.reasons);
    if i.diff > 0.0 {
        let margin = (i.low.max(0.0) + i.diff) / 2.0;
        let (mut point, mut conf) = (params.clone(), confident.clone());
        point.evaluate.promotion_margin = margin;
        conf.evaluate.promotion_margin = margin;
        assert!(leadflow_evaluate::run(&env.layout(), &point, &env.store()).unwrap().evaluation.promote);
        assert!(!leadflow_evaluate::run(&env.layout(), &conf, &env.store()).unwrap().evaluation.promote);
    }
}

#[test]
fn the_champion_is_compared_only_on_rows_it_never_trained_on() {
    let params = quick();
    let env = Env::new(&params);
    let first = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    let v = env.register(first.selected, "champion");
    // As deploy does: the model folder carries the keys of the rows it held out.
    let run = env.results().models[&first.selected].run_id.clone().unwrap();
    let source = std::path::PathBuf::from(env.store().artifact_uri(&run).unwrap().trim_start_matches("file://")).join("model");
    std::fs::copy(env.layout().path(&art::TEST_ROWS), source.join(art::MODEL_TEST_ROWS.name)).unwrap();
    let held_out: Vec<String> = art::read_json(&env.layout().path(&art::TEST_ROWS), "keys").unwrap();

    // Trained again with another seed: its test split overlaps the champion's training rows.
    let mut other = params.clone();
    other.train.seed = 7;
    other.train.xgboost.enabled = first.selected == ModelKind::Xgboost;
    other.train.logistic.enabled = first.selected == ModelKind::Logistic;
    leadflow_train::run(&env.layout(), &other, &env.store()).unwrap();
    let keys: Vec<String> = art::read_json(&env.layout().path(&art::TEST_ROWS), "keys").unwrap();
    let unseen = keys.iter().filter(|k| held_out.contains(k)).count();
    assert!(unseen > 0 && unseen < keys.len(), "{unseen} of {}", keys.len());
    let mut loose = other.clone();
    loose.evaluate.min_comparison_rows = 1;
    let ev = leadflow_evaluate::run(&env.layout(), &loose, &env.store()).unwrap().evaluation;
    let champ = ev.champion.unwrap();
    assert_eq!(champ.version, v);
    assert_eq!(champ.interval.unwrap().rows, unseen, "compared on the rows it never trained on only");
    assert!(ev.reasons.iter().any(|r| r.contains(&format!("the {unseen} of this run's {} test rows it never trained on", keys.len()))));

    // Too few such rows: no comparison, said plainly.
    let mut strict = other.clone();
    strict.evaluate.min_comparison_rows = unseen + 1;
    let ev = leadflow_evaluate::run(&env.layout(), &strict, &env.store()).unwrap().evaluation;
    assert!(ev.champion.as_ref().unwrap().score.is_none());
    assert!(ev.reasons.iter().any(|r| r.contains("no fair comparison") && r.contains("keep the incumbent")), "{:?}", ev.reasons);
    assert!(!ev.promote, "no evidence, no registry change");
}

#[test]
fn unreadable_champion_falls_back_to_its_recorded_score() {
    let params = quick();
    let env = Env::new(&params);
    let selected = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation.selected;
    let other = if selected == ModelKind::Xgboost { ModelKind::Logistic } else { ModelKind::Xgboost };
    env.register(other, "champion");
    let run = env.results().models[&other].run_id.clone().unwrap();
    let uri = env.store().artifact_uri(&run).unwrap();
    let model_dir = Path::new(uri.trim_start_matches("file://")).join("model");
    std::fs::remove_dir_all(&model_dir).unwrap();
    let ev = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap().evaluation;
    assert!(ev.reasons.iter().any(|r| r.contains("recorded test_f1_weighted")), "{:?}", ev.reasons);
    let recorded = env.store().get_run(&run).unwrap().metrics["test_f1_weighted"];
    assert_eq!(ev.champion.unwrap().score, Some(recorded));
}

#[test]
fn missing_train_outputs_name_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    let err = leadflow_evaluate::run(&Layout::new(dir.path()), &quick(), &store).unwrap_err().to_string();
    assert!(err.contains("model_results.json") && err.contains("`train` stage"), "{err}");
    assert!(!dir.path().join("evaluate").exists());
}

#[test]
fn corrupt_model_file_is_a_clear_error_and_changes_nothing() {
    let params = quick();
    let env = Env::new(&params);
    leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap();
    let before = std::fs::read(env.layout().path(&art::EVALUATION)).unwrap();
    std::fs::write(env.layout().path(&art::XGB_MODEL), b"{ not json").unwrap();
    let err = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap_err().to_string();
    assert!(err.contains("model_xgboost.json") && err.contains("XGBoost JSON model"), "{err}");
    assert_eq!(std::fs::read(env.layout().path(&art::EVALUATION)).unwrap(), before);
    std::fs::write(env.layout().path(&art::XGB_MODEL), b"{\"learner\": 1}").unwrap();
    let err = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap_err().to_string();
    assert!(err.contains("model_xgboost.json"), "{err}");
}

/// A Python with scikit-learn, or a skip.
pub fn python_with_sklearn() -> Option<String> {
    leadflow_testkit::python_with("sklearn")
}

const SKLEARN_ORACLE: &str = r#"
import csv, json, sys
from sklearn import metrics as M
rows = list(csv.DictReader(open(sys.argv[1])))
y = [int(r["y"]) for r in rows]
out = {}
for kind in sys.argv[2].split(","):
    p = [float(r[kind]) for r in rows]
    pred = [int(v >= float(sys.argv[3])) for v in p]
    rep = M.classification_report(y, pred, output_dict=True, zero_division=0)
    out[kind] = {
        "accuracy": M.accuracy_score(y, pred),
        "precision": M.precision_score(y, pred, zero_division=0),
        "recall": M.recall_score(y, pred, zero_division=0),
        "f1": M.f1_score(y, pred, zero_division=0),
        "f1_macro": M.f1_score(y, pred, average="macro", zero_division=0),
        "f1_weighted": M.f1_score(y, pred, average="weighted", zero_division=0),
        "precision_macro": M.precision_score(y, pred, average="macro", zero_division=0),
        "recall_macro": M.recall_score(y, pred, average="macro", zero_division=0),
        "precision_weighted": M.precision_score(y, pred, average="weighted", zero_division=0),
        "recall_weighted": M.recall_score(y, pred, average="weighted", zero_division=0),
        "roc_auc": M.roc_auc_score(y, p),
        "pr_auc": M.average_precision_score(y, p),
        "log_loss": M.log_loss(y, p, labels=[0, 1]),
        "confusion_matrix": M.confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "report": rep,
    }
print(json.dumps(out))
"#;

#[test]
fn scikit_learn_agrees_with_our_metrics_on_the_real_test_split() {
    let Some(raw) = leadflow_testkit::real_data() else { return };
    let Some(py) = python_with_sklearn() else { return };
    let params = Params::default();
    let (dir, layout) = decisions::run(&raw, &params);

    // Probabilities of every model on the test split, written in full precision for Python.
    let table = leadflow_features::table::Table::read(&layout.path(&art::X_TEST)).unwrap();
    let features: Vec<String> = art::read_json(&layout.path(&art::COLUMNS_LIST), "columns").unwrap();
    let x = table.matrix(&layout.path(&art::X_TEST), &features).unwrap();
    let y_table = leadflow_features::table::Table::read(&layout.path(&art::Y_TEST)).unwrap();
    let y = y_table.labels(&layout.path(&art::Y_TEST), "lead_indicator", 2).unwrap();
    assert_eq!(y.len(), 441);
    let kinds: Vec<ModelKind> = results_kinds(&layout);
    let probas: Vec<Vec<f64>> =
        kinds.iter().map(|k| leadflow_model::Model::load(*k, &layout.path(&k.artifact())).unwrap().predict(&x).unwrap()).collect();
    let mut csv = format!("y,{}\n", kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","));
    for (i, yi) in y.iter().enumerate() {
        csv.push_str(&format!("{yi},{}\n", probas.iter().map(|p| format!("{:?}", p[i])).collect::<Vec<_>>().join(",")));
    }
    let input = dir.path().join("scores.csv");
    std::fs::write(&input, csv).unwrap();
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let out = std::process::Command::new(&py)
        .args(["-c", SKLEARN_ORACLE, input.to_str().unwrap(), &names.join(","), &params.evaluate.threshold.fixed().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let oracle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // Ours, as evaluate wrote them, and train's classification report.
    let ours: serde_json::Value = art::read_json(&layout.path(&art::METRICS), "metrics").unwrap();
    let results: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "results").unwrap();
    for kind in &kinds {
        let (o, s) = (&oracle[kind.name()], &ours[kind.name()]);
        for m in [
            "accuracy",
            "precision",
            "recall",
            "f1",
            "f1_macro",
            "f1_weighted",
            "precision_macro",
            "recall_macro",
            "precision_weighted",
            "recall_weighted",
            "roc_auc",
            "pr_auc",
            "log_loss",
        ] {
            let (a, b) = (s[m].as_f64().unwrap(), o[m].as_f64().unwrap());
            assert!((a - b).abs() < 1e-9, "{kind:?} {m}: leadflow {a} vs scikit-learn {b}");
        }
        assert_eq!(s["confusion_matrix"], o["confusion_matrix"], "{kind:?} confusion matrix");
        let report = serde_json::to_value(&results.models[kind].test_report).unwrap();
        for class in ["0", "1", "macro avg", "weighted avg"] {
            // Ours lists the classes in order under `classes`; scikit-learn keys them by label.
            let r = match class.parse::<usize>() {
                Ok(i) => &report["classes"][i],
                Err(_) => &report[class],
            };
            for k in ["precision", "recall", "f1-score"] {
                let ours_key = if k == "f1-score" { "f1" } else { k };
                let (a, b) = (r[ours_key].as_f64().unwrap(), o["report"][class][k].as_f64().unwrap());
                assert!((a - b).abs() < 1e-9, "{kind:?} report {class} {k}: {a} vs {b}");
            }
            assert_eq!(r["support"].as_f64(), o["report"][class]["support"].as_f64(), "{kind:?} {class} support");
        }
        assert!((report["accuracy"].as_f64().unwrap() - o["report"]["accuracy"].as_f64().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn the_selected_models_contributions_are_summarised_per_input_and_pictured() {
    let params = quick();
    let env = Env::new(&params);
    let s = leadflow_evaluate::run(&env.layout(), &params, &env.store()).unwrap();
    let layout = env.layout();
    let g: serde_json::Value = art::read_json(&layout.path(&art::EXPLANATIONS_JSON), "explanations").unwrap();
    assert_eq!(g["model"], serde_json::json!(s.evaluation.selected));
    let cols = g["columns"].as_array().unwrap();
    let means: Vec<f64> = cols.iter().map(|c| c["mean_abs"].as_f64().unwrap()).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]) && means[0] > 0.0, "largest first: {means:?}");
    // Per input column, from the model's own per-feature contributions on the test split.
    let spec: leadflow_features::FeatureSpec = art::read_json(&layout.path(&art::FEATURE_SPEC), "spec").unwrap();
    let mut inputs = spec.feature_columns();
    inputs.dedup();
    let mut listed: Vec<String> = cols.iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    listed.sort();
    inputs.sort();
    assert_eq!(listed, inputs);
    let test_rows = leadflow_features::table::Table::read(&layout.path(&art::Y_TEST)).unwrap().rows.len();
    assert_eq!(g["rows"].as_u64().unwrap() as usize, test_rows);
    let (w, h) = png_size(&layout.path(&art::EXPLANATIONS_PNG));
    assert!(w == 1000 && h > 200, "{w}x{h}");
    let report = std::fs::read_to_string(layout.path(&art::REPORT)).unwrap();
    assert!(report.contains("## What drives the scores") && report.contains(art::EXPLANATIONS_PNG.name), "{report}");
}

/// The model kinds a train run produced.
fn results_kinds(layout: &Layout) -> Vec<ModelKind> {
    let r: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "results").unwrap();
    r.models.keys().copied().collect()
}

/// The lead preset's results, pinned: the default params on the real data give these exact
/// model files and metrics. A change that moves them changes what every user gets by default;
/// it must be deliberate (new options default to off and leave these bytes alone).
#[test]
fn the_lead_preset_is_pinned() {
    let Some(raw) = leadflow_testkit::real_data() else { return };
    let params = Params::default();
    let (_dir, layout) = decisions::run(&raw, &params);
    let hash = |a: &art::Artifact| leadflow_core::hash::sha256_hex(&std::fs::read(layout.path(a)).unwrap());
    let got = [
        ("gold", hash(&art::GOLD)),
        ("xgboost", hash(&art::XGB_MODEL)),
        ("logistic", hash(&art::LR_MODEL)),
        ("metrics", hash(&art::METRICS)),
    ];
    let pinned = [
        ("gold", "7a0cd90b38ebe33bcf1710b6a4017dd6436127a0b8c0b8ffd0561808a740efef"),
        ("xgboost", "860b33bb2a382adf6ab8fb9e3c0e77ea4c7cf7f6c7fe6c425943a214535bc54b"),
        ("logistic", "108dec4967bf5cdaf0e567d29e456d529cb57d8d9736eaf31f48022ad65ee7b6"),
        ("metrics", "45b065f1ed6441dd6bc009e1b7fbb00b55c32dfde2f6f3eb2793fba069207785"),
    ];
    let got: Vec<(&str, &str)> = got.iter().map(|(n, h)| (*n, h.as_str())).collect();
    assert_eq!(got, pinned, "the lead preset's results moved");
}
