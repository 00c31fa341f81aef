//! Typed contents of the JSON artifacts that later stages read (so no stage parses another's
//! output by hand).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ModelKind;
use leadflow_metrics::{ClassificationReport, Confusion, Scores};

/// `model_results.json` (train stage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResults {
    pub split: SplitInfo,
    /// Metric the searches maximised.
    pub scoring: String,
    pub models: BTreeMap<ModelKind, ModelResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    pub train_rows: usize,
    pub test_rows: usize,
    pub test_size: f64,
    pub seed: u64,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// Model file name inside `artifacts/train/`.
    pub file: String,
    /// Tracking run that logged this model.
    pub run_id: Option<String>,
    pub best_params: serde_json::Value,
    pub cv: CvSummary,
    /// Every candidate with its fold scores.
    pub search: serde_json::Value,
    pub test_report: ClassificationReport,
    pub test_confusion: Confusion,
    pub train_report: ClassificationReport,
    pub train_confusion: Confusion,
    pub test_scores: Scores,
    /// Its calibration and chosen threshold (absent: uncalibrated, at params' fixed threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl ModelResult {
    /// The threshold its labels use: the chosen one, else params' fixed value.
    pub fn threshold(&self, fixed: f64) -> f64 {
        self.decision.as_ref().map_or(fixed, |d| d.threshold)
    }

    /// Its calibration, if it has one.
    pub fn calibration(&self) -> Option<&crate::calibration::Calibration> {
        self.decision.as_ref().and_then(|d| d.calibration.as_ref())
    }
}

/// How a model's scores become decisions, fitted by the train stage on the training rows'
/// out-of-fold predictions (each row predicted by the fold model that did not see it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The rule that chose the threshold (`evaluate.threshold`): a number, "max_f1" or "cost".
    pub rule: String,
    pub threshold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::calibration::Calibration>,
    /// The out-of-fold figures behind it.
    pub out_of_fold: OutOfFold,
}

/// Out-of-fold figures of one model on its training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfFold {
    pub rows: usize,
    /// Brier score of the model's own probabilities, and after calibration.
    pub brier: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brier_calibrated: Option<f64>,
    /// Expected value per 1,000 rows at the chosen threshold and at 0.5 (with `[evaluate.cost]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_per_1000: Option<[f64; 2]>,
    /// F1 of the positive class at the chosen threshold and at 0.5 (binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    pub metric: String,
    pub folds: usize,
    pub candidates: usize,
    pub mean: f64,
    pub std: f64,
}

/// One model's feature importance (`feature_importance.json`, evaluate stage): what was measured
/// and its value per feature, in model order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    pub measure: String,
    pub values: Vec<(String, f64)>,
}

impl Importance {
    /// The `n` features with the largest magnitude, largest first (ties in model order).
    pub fn top(&self, n: usize) -> Vec<(String, f64)> {
        let mut v = self.values.clone();
        v.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        v.truncate(n);
        v
    }
}

/// `evaluation.json` (evaluate stage): what deploy acts on.
/// The holders of the aliases a decision was made against: alias -> version (`None`: no holder).
pub type Holders = std::collections::BTreeMap<String, Option<u64>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub selection_metric: String,
    /// The best model of this run.
    pub selected: ModelKind,
    pub selected_run_id: Option<String>,
    pub selected_score: f64,
    pub champion: Option<ChampionInfo>,
    pub promote: bool,
    pub reasons: Vec<String>,
    pub gate: GateResult,
    pub threshold: f64,
    pub data_version: String,
    /// The holders of the compared aliases when the decision was made (alias -> version, `None`:
    /// no holder). Deploy promotes only if they are unchanged (compare-and-swap).
    #[serde(default)]
    pub holders: Holders,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionInfo {
    pub version: u64,
    pub run_id: String,
    pub alias: String,
    pub score: Option<f64>,
    /// Every metric of the champion re-scored on this run's test split (absent when it could
    /// not be re-scored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<leadflow_metrics::Scores>,
    /// The selected model's improvement over it on the same test rows, with a paired-bootstrap
    /// interval (absent when it could not be re-scored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// The selected model's scores on the same rows, when they are not the whole test split
    /// (the rows the champion never trained on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_scores: Option<leadflow_metrics::Scores>,
}

/// A difference of scores and its bootstrap confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub diff: f64,
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    pub resamples: usize,
    /// Test rows both models were scored on.
    pub rows: usize,
}

impl Interval {
    /// `+0.0123 (95% interval [-0.0040, +0.0290], 2000 paired resamples of 441 rows)`.
    pub fn describe(&self) -> String {
        format!(
            "{:+.4} ({:.0}% interval [{:+.4}, {:+.4}], {} paired resamples of {} rows)",
            self.diff,
            100.0 * self.confidence,
            self.low,
            self.high,
            self.resamples,
            self.rows
        )
    }
}

/// `curves.json`: ROC and precision-recall curves read on one grid, so a report can draw them
/// without images (a pull-request comment). Binary: one curve per model; multiclass: one per
/// class (one vs rest) of the selected model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvesOnGrid {
    /// The x values: false positive rate for ROC, recall for precision-recall.
    pub grid: Vec<f64>,
    pub roc: Vec<NamedCurve>,
    pub pr: Vec<NamedCurve>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedCurve {
    pub name: String,
    /// True positive rate (ROC) or precision (PR) at each grid point.
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub passed: bool,
    pub checks: Vec<GateCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub passed: bool,
}

/// `metrics.json` (evaluate stage).
pub type MetricsFile = BTreeMap<ModelKind, Scores>;

/// `model/model.json`: what `predict` and `validate` need to use the model directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedModel {
    pub model_name: String,
    pub kind: ModelKind,
    /// Model file name inside the model directory.
    pub file: String,
    pub threshold: f64,
    /// Applied to the model's probabilities before anything else (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::calibration::Calibration>,
    pub features: Vec<String>,
    pub data_version: String,
    pub run_id: Option<String>,
    /// Registry version, when this model was registered (promoted).
    pub version: Option<u64>,
    pub stage: Option<String>,
}

/// `deployment.json` (deploy stage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub promoted: bool,
    pub model_name: String,
    pub kind: ModelKind,
    pub run_id: Option<String>,
    pub version: Option<u64>,
    /// False when this run was already registered (idempotent re-deploy).
    pub created: bool,
    pub stage: Option<String>,
    pub alias: Option<String>,
    /// The version that held the stage / alias before this deploy.
    pub previous_holder: Option<u64>,
    pub archived: Vec<u64>,
    pub source: Option<String>,
    pub reasons: Vec<String>,
    /// Set when, right after this deploy moved the alias, another version held it (a registry
    /// without conditional updates: another pipeline promoted in the same instant).
    #[serde(default)]
    pub superseded_by: Option<u64>,
}
