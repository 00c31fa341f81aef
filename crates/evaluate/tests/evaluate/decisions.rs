//! Calibration and threshold rules: the calibrators against scikit-learn's
//! `CalibratedClassifierCV(ensemble=False)` on the same out-of-fold scores, and the stage's
//! decisions on real tables (Brier lowered, thresholds as the rules say, defaults untouched).

use std::process::Command;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::calibration::CalibrationMethod;
use leadflow_core::params::{CostParams, Threshold};
use leadflow_core::results::ModelResults;
use leadflow_core::Params;
use leadflow_mlflow::tracking::FileStore;
use leadflow_model::ModelKind;
use leadflow_train::decide;
use rand::{Rng, SeedableRng};

use super::python_with_sklearn;

/// `CalibratedClassifierCV` with an estimator whose probabilities are its input columns: the
/// cross-validated predictions it calibrates on are then exactly the scores given, so its
/// calibrators are fitted on the same out-of-fold scores as ours. argv: method, k, scores CSV
/// (label, then k or 1 score columns), grid CSV; prints the grid's calibrated probabilities.
const ORACLE: &str = r#"
import sys, json
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import KFold

class Scores(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self
    def predict_proba(self, X):
        return np.column_stack([1 - X[:, 0], X[:, 0]]) if X.shape[1] == 1 else X
    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)

method, k = sys.argv[1], int(sys.argv[2])
data = np.loadtxt(sys.argv[3], delimiter=",", ndmin=2)
grid = np.loadtxt(sys.argv[4], delimiter=",", ndmin=2)
y, X = data[:, 0].astype(int), data[:, 1:]
cal = CalibratedClassifierCV(Scores(), method=method, cv=KFold(5), ensemble=False).fit(X, y)
p = cal.predict_proba(grid)
print(json.dumps((p[:, 1] if k == 2 else p).ravel().tolist()))
"#;

fn oracle(py: &str, method: CalibrationMethod, k: usize, y: &[u8], scores: &[f64], grid: &[f64]) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let width = if k == 2 { 1 } else { k };
    let rows = |v: &[f64]| v.chunks(width).map(|r| r.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(",")).collect::<Vec<_>>();
    let data: Vec<String> = y.iter().zip(rows(scores)).map(|(c, r)| format!("{c},{r}")).collect();
    std::fs::write(dir.path().join("scores.csv"), data.join("\n")).unwrap();
    std::fs::write(dir.path().join("grid.csv"), rows(grid).join("\n")).unwrap();
    let out = Command::new(py)
        .args(["-c", ORACLE, method.name(), &k.to_string()])
        .arg(dir.path().join("scores.csv"))
        .arg(dir.path().join("grid.csv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Scores squashed toward the middle as the lead forest's are (0.41–0.56), with ties.
fn squashed(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let s: Vec<f64> = (0..n).map(|_| (rng.gen_range(0.41..0.56f64) * 2000.0).round() / 2000.0).collect();
    let y = s.iter().map(|&v| u8::from(rng.gen::<f64>() < leadflow_core::model::sigmoid(30.0 * (v - 0.485)))).collect();
    (s, y)
}

#[test]
fn calibrators_match_scikit_learns_calibrated_classifier_cv() {
    let Some(py) = python_with_sklearn() else { return };
    let (s, y) = squashed(3000, 1);
    // The fitted points, between them and beyond both ends.
    let mut grid: Vec<f64> = s.iter().take(200).copied().collect();
    grid.extend((0..=100).map(|i| 0.35 + 0.003 * i as f64));
    for method in [CalibrationMethod::Sigmoid, CalibrationMethod::Isotonic] {
        let ours = decide::calibrate(&s, &y, 2, method).unwrap();
        let mut mine = grid.clone();
        ours.apply(&mut mine);
        let theirs = oracle(&py, method, 2, &y, &s, &grid);
        let diff = mine.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        // Isotonic is exact arithmetic on the same steps; the sigmoid's optimum is found by
        // Newton here and by L-BFGS-B (gtol 1e-6) there.
        let tol = if method == CalibrationMethod::Isotonic { 1e-12 } else { 1e-5 };
        assert!(diff < tol, "{method:?}: differs from scikit-learn by up to {diff}");
    }
    // Three classes: a map per class, rows renormalised.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let (mut p, mut y3) = (Vec::new(), Vec::new());
    for _ in 0..1500 {
        let z: Vec<f64> = (0..3).map(|_| rng.gen_range(-1.0..1.0f64)).collect();
        let e: Vec<f64> = z.iter().map(|v| (v * 0.5).exp()).collect();
        let sum: f64 = e.iter().sum();
        p.extend(e.iter().map(|v| (v / sum * 1000.0).round() / 1000.0));
        let truth: Vec<f64> = z.iter().map(|v| (v * 3.0).exp()).collect();
        let u = rng.gen::<f64>() * truth.iter().sum::<f64>();
        y3.push(if u < truth[0] {
            0
        } else if u < truth[0] + truth[1] {
            1
        } else {
            2
        });
    }
    for method in [CalibrationMethod::Sigmoid, CalibrationMethod::Isotonic] {
        let ours = decide::calibrate(&p, &y3, 3, method).unwrap();
        let grid: Vec<f64> = p[..600].to_vec();
        let mut mine = grid.clone();
        ours.apply(&mut mine);
        let theirs = oracle(&py, method, 3, &y3, &p, &grid);
        let diff = mine.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let tol = if method == CalibrationMethod::Isotonic { 1e-12 } else { 1e-5 };
        assert!(diff < tol, "3 classes, {method:?}: differs from scikit-learn by up to {diff}");
    }
}

/// Data + train + evaluate on `raw` into a fresh directory (a failed gate still writes its
/// outputs).
pub fn run(raw: &std::path::Path, params: &Params) -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("artifacts"));
    let store = FileStore::open(dir.path().join("mlruns")).unwrap();
    leadflow_data::run(raw, &layout, params).unwrap();
    leadflow_train::run(&layout, params, &store).unwrap();
    let _ = leadflow_evaluate::run(&layout, params, &store);
    (dir, layout)
}

/// The test split's Brier scores from evaluate: own probabilities and calibrated.
fn brier(layout: &Layout, kind: ModelKind) -> (f64, f64) {
    let c: serde_json::Value = art::read_json(&layout.path(&art::CALIBRATION_JSON), "calibration").unwrap();
    let m = &c[kind.name()];
    (m["brier"].as_f64().unwrap(), m["brier_calibrated"].as_f64().unwrap())
}

#[test]
fn calibration_lowers_the_brier_score_on_the_lead_data() {
    let Some(raw) = leadflow_testkit::real_data() else { return };
    for method in [CalibrationMethod::Sigmoid, CalibrationMethod::Isotonic] {
        let mut params = Params::default();
        params.train.xgboost.calibration = method;
        params.train.logistic.enabled = false;
        let (_dir, layout) = run(&raw, &params);
        let (own, calibrated) = brier(&layout, ModelKind::Xgboost);
        eprintln!("lead, xgboost, {method:?}: Brier {own:.4} -> {calibrated:.4}");
        assert!(calibrated < own - 0.02, "{method:?}: Brier {own:.4} -> {calibrated:.4}");
        // The saved decision is applied: train's test scores are those of the calibrated model.
        let results: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "r").unwrap();
        let d = results.models[&ModelKind::Xgboost].decision.as_ref().unwrap();
        assert_eq!(d.out_of_fold.rows, results.split.train_rows);
        assert!(d.out_of_fold.brier_calibrated.unwrap() < d.out_of_fold.brier);
    }
}

#[test]
fn calibration_lowers_the_brier_score_on_the_breast_cancer_example() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/breast_cancer");
    let mut params = Params::load(&dir.join("params.toml")).unwrap();
    params.train.xgboost.calibration = CalibrationMethod::Sigmoid;
    params.train.logistic.enabled = false;
    let (_dir, layout) = run(&dir.join("breast_cancer.csv"), &params);
    let (own, calibrated) = brier(&layout, ModelKind::Xgboost);
    eprintln!("breast cancer, xgboost, sigmoid: Brier {own:.4} -> {calibrated:.4}");
    assert!(calibrated < own, "Brier {own:.4} -> {calibrated:.4}");
}

#[test]
fn a_cost_threshold_maximises_the_stated_value_out_of_fold_and_defaults_stay_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.csv");
    leadflow_data::generate::generate(&raw, 3000, 8).unwrap();
    let mut params = leadflow_testkit::quick_params();
    let (_kept, untouched) = run(&raw, &params);
    let results: ModelResults = art::read_json(&untouched.path(&art::MODEL_RESULTS), "r").unwrap();
    assert!(results.models.values().all(|r| r.decision.is_none()), "no options, no decision");
    let text = std::fs::read_to_string(untouched.path(&art::MODEL_RESULTS)).unwrap();
    assert!(!text.contains("decision"), "and nothing new in model_results.json");

    // A lead flagged costs 30 (a call), a conversion is worth 100: flag when P > 0.3 or so.
    params.evaluate.threshold = Threshold::Cost;
    params.evaluate.cost = Some(CostParams { true_positive: 100.0, false_positive: 30.0, false_negative: 0.0, currency: "EUR".into() });
    let (_d, layout) = run(&raw, &params);
    let results: ModelResults = art::read_json(&layout.path(&art::MODEL_RESULTS), "r").unwrap();
    for (kind, r) in &results.models {
        let d = r.decision.as_ref().unwrap();
        assert_eq!(d.rule, "cost");
        let [at, half] = d.out_of_fold.value_per_1000.unwrap();
        assert!(at >= half, "{kind:?}: value {at} at {} below {half} at 0.5", d.threshold);
        assert!(d.threshold < 0.5, "{kind:?}: a cheap false alarm lowers the threshold ({})", d.threshold);
    }
    let report = std::fs::read_to_string(layout.path(&art::REPORT)).unwrap();
    assert!(report.contains("rule `cost`") && report.contains("EUR") && report.contains("per 1,000"), "{report}");
    let evaluation: leadflow_core::results::Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    assert_eq!(evaluation.threshold, results.models[&evaluation.selected].decision.as_ref().unwrap().threshold);
}
