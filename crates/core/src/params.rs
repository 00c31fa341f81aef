//! `params.toml`: every knob of the pipeline, parsed once and validated into [`Params`].
//!
//! Unknown keys are rejected by serde (`deny_unknown_fields`), bad values by [`Params::validate`];
//! both errors name the offending key.

use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::dataset::DatasetParams;
use crate::error::{Error, IoContext, Result};
use crate::hash::sha256_hex;

/// The params file the stages read unless `--params` says otherwise.
pub const DEFAULT_PARAMS_FILE: &str = "params.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The table: schema, processing and validation rules (absent: the lead preset).
    pub dataset: DatasetParams,
    pub train: TrainParams,
    pub evaluate: EvaluateParams,
    pub deploy: DeployParams,
    pub tracking: TrackingParams,
    /// When `leadflow model drift` calls a column drifted.
    pub drift: DriftParams,
}

/// When a batch's column counts as drifted from the training table (`leadflow model drift`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftParams {
    /// A distribution shift needs both: a population stability index at least this...
    pub psi: f64,
    /// ...and the KS (continuous) or chi-squared (categorical) test's p-value below this.
    pub p_value: f64,
    /// Share of a continuous column's values outside the training range.
    pub max_out_of_range: f64,
    /// Share of a categorical column's values that are levels training never saw.
    pub max_unseen: f64,
    /// Rise of a column's missing share (batch minus training), e.g. 0.1 = ten points.
    pub max_missing_increase: f64,
}

impl Default for DriftParams {
    fn default() -> DriftParams {
        DriftParams { psi: 0.2, p_value: 0.01, max_out_of_range: 0.05, max_unseen: 0.05, max_missing_increase: 0.1 }
    }
}

impl DriftParams {
    fn validate(&self) -> Result<()> {
        if !(self.psi.is_finite() && self.psi > 0.0) {
            return Err(bad("drift.psi", format!("must be > 0, got {}", self.psi)));
        }
        unit_interval("drift.p_value", self.p_value, true)?;
        unit_interval("drift.max_out_of_range", self.max_out_of_range, false)?;
        unit_interval("drift.max_unseen", self.max_unseen, false)?;
        unit_interval("drift.max_missing_increase", self.max_missing_increase, false)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainParams {
    /// Fraction of the gold rows held out as the test split (stratified).
    pub test_size: f64,
    /// Seed of every random draw: split, folds, search candidates, XGBoost sampling.
    pub seed: u64,
    /// Score the randomized search maximises.
    pub scoring: Metric,
    pub xgboost: XgboostParams,
    pub logistic: LogisticParams,
    pub boosted: BoostedParams,
}

/// XGBoost gradient-boosted trees (`[train.boosted]`, off by default): rounds added until the
/// log loss of a validation share of the fit's rows stops improving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoostedParams {
    pub enabled: bool,
    pub n_candidates: usize,
    pub cv_folds: usize,
    /// Boosting rounds at most, and rounds without improvement before stopping.
    pub max_rounds: usize,
    pub early_stopping_rounds: usize,
    /// Share of a fit's rows (stratified) held out to watch for early stopping.
    pub validation_size: f64,
    /// `none`, or `balanced`: positives weighed by negatives / positives (`scale_pos_weight`),
    /// or with more classes each row by rows / (classes x its class's rows).
    pub class_weight: ClassWeight,
    /// The search space (as `[train.xgboost]`'s).
    pub learning_rate: Space<f64>,
    pub max_depth: Space<u32>,
    pub min_child_weight: Space<f64>,
    pub subsample: Space<f64>,
    pub colsample_bytree: Space<f64>,
    pub reg_lambda: Space<f64>,
    pub calibration: CalibrationMethod,
}

/// `train.boosted.class_weight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    #[default]
    None,
    Balanced,
}

impl Default for BoostedParams {
    fn default() -> Self {
        BoostedParams {
            enabled: false,
            n_candidates: 10,
            cv_folds: 5,
            max_rounds: 1000,
            early_stopping_rounds: 20,
            validation_size: 0.15,
            class_weight: ClassWeight::None,
            learning_rate: Space::Between([0.02, 0.3]),
            max_depth: Space::Between([2, 8]),
            min_child_weight: Space::Between([1.0, 10.0]),
            subsample: Space::Between([0.5, 1.0]),
            colsample_bytree: Space::Between([0.5, 1.0]),
            reg_lambda: Space::Between([0.0, 10.0]),
            calibration: CalibrationMethod::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XgboostParams {
    pub enabled: bool,
    /// Randomized-search budget: candidates drawn from the search space.
    pub n_candidates: usize,
    /// Stratified folds per candidate.
    pub cv_folds: usize,
    /// Trees in the random forest (`num_parallel_tree`).
    pub n_estimators: usize,
    pub colsample_bynode: f64,
    /// The search space: a number is fixed, `[low, high]` is drawn uniformly (integers
    /// inclusive); a string is fixed, a list is drawn from. Defaults: the lead notebook's space.
    pub learning_rate: Space<f64>,
    pub min_split_loss: Space<f64>,
    pub max_depth: Space<u32>,
    pub subsample: Space<f64>,
    pub objective: Choice,
    pub eval_metric: Choice,
    /// Calibrate its probabilities on out-of-fold predictions: none, sigmoid or isotonic.
    pub calibration: CalibrationMethod,
}

/// One hyperparameter: fixed, or drawn from `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Space<T> {
    Fixed(T),
    Between([T; 2]),
}

/// One categorical hyperparameter: fixed, or drawn from a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Choice {
    Fixed(String),
    OneOf(Vec<String>),
}

impl Choice {
    pub fn values(&self) -> Vec<&str> {
        match self {
            Choice::Fixed(v) => vec![v.as_str()],
            Choice::OneOf(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn check_space<T: PartialOrd + Copy + std::fmt::Display>(key: &str, s: &Space<T>, lo: T, hi: T) -> Result<()> {
    let (a, b) = match *s {
        Space::Fixed(v) => (v, v),
        Space::Between([a, b]) => (a, b),
    };
    if !(a >= lo && b <= hi && a <= b) {
        return Err(bad(key, format!("must lie within [{lo}, {hi}] with low <= high, got [{a}, {b}]")));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogisticParams {
    pub enabled: bool,
    pub n_candidates: usize,
    pub cv_folds: usize,
    pub max_iterations: u64,
    /// The grid sampled without replacement: inverse regularisation strengths and penalties
    /// (`none`, `l2`). One value each fixes the model.
    #[serde(rename = "C")]
    pub c: Vec<f64>,
    pub penalty: Vec<String>,
    /// Stop when the loss gradient per training row is below this: scikit-learn's `tol` (1e-4),
    /// whose loss is a mean. (linfa-logistic's own default, 1e-4 on the *summed* loss, tightens
    /// with every row: on large data it runs every one of `max_iterations`.)
    pub tolerance: f64,
    /// Calibrate its probabilities on out-of-fold predictions: none, sigmoid or isotonic.
    pub calibration: CalibrationMethod,
}

pub use leadflow_metrics::Metric;

pub use crate::calibration::CalibrationMethod;

/// `evaluate.threshold`: a fixed probability, or a rule that chooses one per model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ThresholdRepr", into = "ThresholdRepr")]
pub enum Threshold {
    Fixed(f64),
    /// The threshold with the best F1 of the positive class.
    MaxF1,
    /// The threshold with the best expected value under `evaluate.cost`.
    Cost,
}

impl Threshold {
    /// The fixed value; 0.5 for a rule (what the search scores candidates at, before the rule
    /// chooses the selected candidate's threshold).
    pub fn fixed(self) -> f64 {
        match self {
            Threshold::Fixed(v) => v,
            Threshold::MaxF1 | Threshold::Cost => 0.5,
        }
    }

    /// How the rule is named in params and reports.
    pub fn name(self) -> String {
        match self {
            Threshold::Fixed(v) => v.to_string(),
            Threshold::MaxF1 => "max_f1".into(),
            Threshold::Cost => "cost".into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ThresholdRepr {
    Value(f64),
    Name(String),
}

impl TryFrom<ThresholdRepr> for Threshold {
    type Error = String;
    fn try_from(r: ThresholdRepr) -> std::result::Result<Threshold, String> {
        match r {
            ThresholdRepr::Value(v) => Ok(Threshold::Fixed(v)),
            ThresholdRepr::Name(n) if n == "max_f1" => Ok(Threshold::MaxF1),
            ThresholdRepr::Name(n) if n == "cost" => Ok(Threshold::Cost),
            ThresholdRepr::Name(n) => Err(format!("expected a probability such as 0.5, \"max_f1\" or \"cost\", found {n:?}")),
        }
    }
}

impl From<Threshold> for ThresholdRepr {
    fn from(t: Threshold) -> ThresholdRepr {
        match t {
            Threshold::Fixed(v) => ThresholdRepr::Value(v),
            other => ThresholdRepr::Name(other.name()),
        }
    }
}

/// `[evaluate.cost]`: what each outcome of a positive decision is worth, in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostParams {
    /// Value of a true positive (a lead flagged that converts).
    pub true_positive: f64,
    /// Cost of a false positive (a flagged lead that does not convert).
    pub false_positive: f64,
    /// Cost of a false negative (a converting lead not flagged).
    pub false_negative: f64,
    /// Shown beside amounts in reports.
    pub currency: String,
}

impl Default for CostParams {
    fn default() -> CostParams {
        CostParams { true_positive: 100.0, false_positive: 10.0, false_negative: 0.0, currency: "$".into() }
    }
}

impl CostParams {
    /// Expected value of a confusion's positive decisions: tp·value - fp·cost - fn·cost.
    pub fn value(&self, tp: usize, fp: usize, fn_: usize) -> f64 {
        tp as f64 * self.true_positive - fp as f64 * self.false_positive - fn_ as f64 * self.false_negative
    }

    /// `1,234.50 $`-style money.
    pub fn money(&self, v: f64) -> String {
        let sign = if v < 0.0 { "-" } else { "" };
        let cents = (v.abs() * 100.0).round() as u64;
        let whole = (cents / 100).to_string();
        let mut grouped = String::new();
        for (i, ch) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        format!("{sign}{grouped}.{:02} {}", cents % 100, self.currency).trim_end().to_string()
    }
}

/// `evaluate.promotion`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Promotion {
    /// The challenger's score beats the champion's by more than 0 and at least the margin.
    #[default]
    Point,
    /// The bootstrap interval's lower bound of the difference clears the margin (and 0).
    Confident,
}

/// `[evaluate.bootstrap]`: resamples of the test rows (the same rows for both models).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapParams {
    pub resamples: usize,
    /// Two-sided confidence level of the interval, e.g. 0.95.
    pub confidence: f64,
}

impl Default for BootstrapParams {
    fn default() -> BootstrapParams {
        BootstrapParams { resamples: 2000, confidence: 0.95 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluateParams {
    /// Metric (on the test split) that picks the best model and compares it with the champion.
    pub selection_metric: Metric,
    /// The challenger must beat the current champion by at least this much to be promoted.
    pub promotion_margin: f64,
    /// The positive label's probability threshold (binary): a number, or a rule that chooses it
    /// per model on the training rows' out-of-fold predictions (`"max_f1"`, `"cost"`).
    pub threshold: Threshold,
    /// What a decision is worth (binary): required by `threshold = "cost"`; when set, the
    /// report's business view is also in money.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostParams>,
    /// When a challenger replaces the champion: `point` (its score beats the champion's by the
    /// margin) or `confident` (a paired bootstrap's lower bound does).
    pub promotion: Promotion,
    /// The paired bootstrap of the comparison with the champion.
    pub bootstrap: BootstrapParams,
    /// The champion is compared only on this run's test rows it never trained on (recorded with
    /// it); fewer than this many such rows and there is no comparison.
    pub min_comparison_rows: usize,
    /// Quality gate: the chosen model must reach these or the stage fails.
    pub min_f1_weighted: f64,
    pub min_accuracy: f64,
    pub min_roc_auc: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Staging,
    Production,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Staging => "Staging",
            Stage::Production => "Production",
        }
    }
    /// The registry alias that marks the holder of this stage.
    pub fn alias(self) -> &'static str {
        match self {
            Stage::Staging => crate::names::CHALLENGER,
            Stage::Production => crate::names::CHAMPION,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployParams {
    /// Registered model name.
    pub model_name: String,
    /// Stage the promoted version is moved to.
    pub stage: Stage,
}

impl DeployParams {
    /// The aliases a decision is made against, in order of preference: the champion, then the
    /// alias deploy would move. Evaluate compares with their holders, deploy promotes only if
    /// they still hold, and the registry state in fingerprints is theirs.
    pub fn compared_aliases(&self) -> Vec<&'static str> {
        let mut v = vec![crate::names::CHAMPION, self.stage.alias()];
        v.dedup();
        v
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingParams {
    pub experiment_name: String,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            dataset: crate::dataset::lead(),
            train: TrainParams::default(),
            evaluate: EvaluateParams::default(),
            deploy: DeployParams::default(),
            tracking: TrackingParams::default(),
            drift: DriftParams::default(),
        }
    }
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            test_size: 0.15,
            seed: 42,
            scoring: Metric::Accuracy,
            xgboost: XgboostParams::default(),
            logistic: LogisticParams::default(),
            boosted: BoostedParams::default(),
        }
    }
}

impl Default for XgboostParams {
    fn default() -> Self {
        XgboostParams {
            enabled: true,
            n_candidates: 10,
            cv_folds: 10,
            n_estimators: 100,
            colsample_bynode: 0.8,
            learning_rate: Space::Between([0.01, 0.31]),
            min_split_loss: Space::Between([0.0, 10.0]),
            max_depth: Space::Between([3, 9]),
            subsample: Space::Between([0.0, 1.0]),
            objective: Choice::OneOf(["reg:squarederror", "binary:logistic", "reg:logistic"].map(String::from).to_vec()),
            eval_metric: Choice::OneOf(["aucpr", "error"].map(String::from).to_vec()),
            calibration: CalibrationMethod::None,
        }
    }
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams {
            enabled: true,
            n_candidates: 10,
            cv_folds: 3,
            max_iterations: 100,
            c: vec![100.0, 10.0, 1.0, 0.1, 0.01],
            penalty: vec!["none".into(), "l2".into()],
            tolerance: 1e-4,
            calibration: CalibrationMethod::None,
        }
    }
}

impl Default for EvaluateParams {
    fn default() -> Self {
        EvaluateParams {
            selection_metric: Metric::F1Weighted,
            promotion_margin: 0.0,
            threshold: Threshold::Fixed(0.5),
            cost: None,
            promotion: Promotion::Point,
            bootstrap: BootstrapParams::default(),
            min_comparison_rows: 100,
            min_f1_weighted: 0.7,
            min_accuracy: 0.7,
            min_roc_auc: 0.7,
        }
    }
}

impl Default for DeployParams {
    fn default() -> Self {
        DeployParams { model_name: "lead_model".into(), stage: Stage::Staging }
    }
}

impl Default for TrackingParams {
    fn default() -> Self {
        TrackingParams { experiment_name: "lead-conversion".into() }
    }
}

fn bad(key: &str, message: impl Into<String>) -> Error {
    Error::ParamValue { key: key.into(), message: message.into() }
}

/// Overlay `top` on `base`, table by table (a preset and the file's overrides).
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn parse_date(key: &str, value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad(key, format!("must be a date YYYY-MM-DD, got {value:?}")))
}

fn unit_interval(key: &str, v: f64, open_low: bool) -> Result<()> {
    let ok = v.is_finite() && v <= 1.0 && if open_low { v > 0.0 } else { v >= 0.0 };
    if ok {
        Ok(())
    } else {
        let lo = if open_low { "(0" } else { "[0" };
        Err(bad(key, format!("must be in {lo}, 1], got {v}")))
    }
}

impl BoostedParams {
    fn validate(&self) -> Result<()> {
        let b = self;
        if !b.enabled {
            return Ok(());
        }
        for (key, v) in [("n_candidates", b.n_candidates), ("max_rounds", b.max_rounds), ("early_stopping_rounds", b.early_stopping_rounds)]
        {
            if v == 0 {
                return Err(bad(&format!("train.boosted.{key}"), "must be at least 1, got 0"));
            }
        }
        if b.cv_folds < 2 {
            return Err(bad("train.boosted.cv_folds", format!("must be at least 2, got {}", b.cv_folds)));
        }
        if !(b.validation_size > 0.0 && b.validation_size < 0.5) {
            return Err(bad("train.boosted.validation_size", format!("must be in (0, 0.5), got {}", b.validation_size)));
        }
        check_space("train.boosted.learning_rate", &b.learning_rate, 1e-6, 1.0)?;
        check_space("train.boosted.max_depth", &b.max_depth, 1, 64)?;
        check_space("train.boosted.min_child_weight", &b.min_child_weight, 0.0, f64::MAX)?;
        check_space("train.boosted.subsample", &b.subsample, 0.01, 1.0)?;
        check_space("train.boosted.colsample_bytree", &b.colsample_bytree, 0.01, 1.0)?;
        check_space("train.boosted.reg_lambda", &b.reg_lambda, 0.0, f64::MAX)?;
        Ok(())
    }
}

impl EvaluateParams {
    /// The decision options; `multiclass` tables take no threshold rule.
    fn validate(&self, multiclass: bool) -> Result<()> {
        let e = self;
        if !(e.promotion_margin.is_finite() && e.promotion_margin >= 0.0) {
            return Err(bad("evaluate.promotion_margin", format!("must be >= 0, got {}", e.promotion_margin)));
        }
        if let Threshold::Fixed(t) = e.threshold {
            unit_interval("evaluate.threshold", t, true)?;
        }
        if multiclass && !matches!(e.threshold, Threshold::Fixed(_)) {
            return Err(bad(
                "evaluate.threshold",
                "chooses a threshold for two classes only; a multiclass label is the most probable class",
            ));
        }
        if e.threshold == Threshold::Cost && e.cost.is_none() {
            return Err(bad("evaluate.threshold", "= \"cost\" needs [evaluate.cost] (true_positive, false_positive, false_negative)"));
        }
        if let Some(c) = &e.cost {
            for (key, v) in [("true_positive", c.true_positive), ("false_positive", c.false_positive), ("false_negative", c.false_negative)]
            {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(bad(&format!("evaluate.cost.{key}"), format!("must be a number >= 0, got {v}")));
                }
            }
        }
        if e.bootstrap.resamples < 100 {
            return Err(bad("evaluate.bootstrap.resamples", format!("must be at least 100, got {}", e.bootstrap.resamples)));
        }
        let c = e.bootstrap.confidence;
        if !(c.is_finite() && c > 0.5 && c < 1.0) {
            return Err(bad("evaluate.bootstrap.confidence", format!("must be in (0.5, 1), got {c}")));
        }
        Ok(())
    }
}

impl Params {
    /// Read, parse and validate a params file.
    pub fn load(path: &Path) -> Result<Params> {
        let text = std::fs::read_to_string(path).at(path)?;
        Params::from_toml(&text).map_err(|e| match e {
            Error::Params { message, .. } => Error::Params { path: path.to_path_buf(), message },
            Error::Toml { source, .. } => Error::Toml { path: path.to_path_buf(), source },
            Error::ParamValue { key, message } => Error::Params { path: path.to_path_buf(), message: format!("`{key}` {message}") },
            other => other,
        })
    }

    /// Load `path` if given, else `params.toml` in the working directory if present, else defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Params> {
        match path {
            Some(p) => Params::load(p),
            None if Path::new(DEFAULT_PARAMS_FILE).exists() => Params::load(Path::new(DEFAULT_PARAMS_FILE)),
            None => Ok(Params::default()),
        }
    }

    pub fn from_toml(text: &str) -> Result<Params> {
        let perr = |e: toml::de::Error| Error::Toml { path: DEFAULT_PARAMS_FILE.into(), source: Box::new(e) };
        let mut table: toml::Table = toml::from_str(text).map_err(perr)?;
        // `[dataset] preset = "lead"`: start from the preset and let the file's keys override it.
        if let Some(toml::Value::Table(ds)) = table.get_mut("dataset") {
            if let Some(name) = ds.remove("preset") {
                let name = name.as_str().unwrap_or_default().to_string();
                let preset = crate::dataset::preset(&name).ok_or_else(|| {
                    bad("dataset.preset", format!("unknown preset {name:?}; built in: {}", crate::dataset::PRESETS.join(", ")))
                })?;
                let mut base = toml::Table::try_from(&preset).map_err(|e| bad("dataset.preset", e.to_string()))?;
                merge(&mut base, std::mem::take(ds));
                *ds = base;
            }
        }
        let params: Params = toml::Value::Table(table).try_into().map_err(perr)?;
        params.validate()?;
        Ok(params)
    }

    /// Check every value once; later code relies on these invariants.
    pub fn validate(&self) -> Result<()> {
        let d = &self.dataset;
        d.validate()?;
        if !d.date.is_empty() {
            let min = parse_date("dataset.min_date", &d.min_date)?;
            if !d.max_date.is_empty() {
                let max = parse_date("dataset.max_date", &d.max_date)?;
                if max < min {
                    return Err(bad("dataset.max_date", format!("({max}) is before dataset.min_date ({min})")));
                }
            }
        }
        let t = &self.train;
        if !(t.test_size.is_finite() && t.test_size > 0.0 && t.test_size < 1.0) {
            return Err(bad("train.test_size", format!("must be in (0, 1), got {}", t.test_size)));
        }
        if !t.xgboost.enabled && !t.logistic.enabled && !t.boosted.enabled {
            return Err(bad("train", "switches off every model: enable train.xgboost, train.logistic or train.boosted"));
        }
        t.boosted.validate()?;
        let x = &t.xgboost;
        if x.enabled {
            if x.n_candidates == 0 {
                return Err(bad("train.xgboost.n_candidates", "must be at least 1, got 0"));
            }
            if x.cv_folds < 2 {
                return Err(bad("train.xgboost.cv_folds", format!("must be at least 2, got {}", x.cv_folds)));
            }
            if x.n_estimators == 0 {
                return Err(bad("train.xgboost.n_estimators", "must be at least 1, got 0"));
            }
            unit_interval("train.xgboost.colsample_bynode", x.colsample_bynode, true)?;
            check_space("train.xgboost.learning_rate", &x.learning_rate, 1e-6, 1.0)?;
            check_space("train.xgboost.min_split_loss", &x.min_split_loss, 0.0, f64::MAX)?;
            check_space("train.xgboost.max_depth", &x.max_depth, 1, 64)?;
            check_space("train.xgboost.subsample", &x.subsample, 0.0, 1.0)?;
            for (key, choice, known) in [
                ("train.xgboost.objective", &x.objective, &["reg:squarederror", "binary:logistic", "reg:logistic"][..]),
                ("train.xgboost.eval_metric", &x.eval_metric, &["aucpr", "error", "logloss", "auc"][..]),
            ] {
                let values = choice.values();
                if values.is_empty() {
                    return Err(bad(key, "needs at least one value"));
                }
                if let Some(v) = values.iter().find(|v| !known.contains(v)) {
                    return Err(bad(key, format!("unknown value {v:?}; known: {}", known.join(", "))));
                }
            }
        }
        let l = &t.logistic;
        if l.enabled {
            if l.n_candidates == 0 {
                return Err(bad("train.logistic.n_candidates", "must be at least 1, got 0"));
            }
            if l.cv_folds < 2 {
                return Err(bad("train.logistic.cv_folds", format!("must be at least 2, got {}", l.cv_folds)));
            }
            if l.max_iterations == 0 {
                return Err(bad("train.logistic.max_iterations", "must be at least 1, got 0"));
            }
            if l.c.is_empty() || l.c.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
                return Err(bad("train.logistic.C", format!("must be a non-empty list of positive numbers, got {:?}", l.c)));
            }
            if !(l.tolerance.is_finite() && l.tolerance > 0.0) {
                return Err(bad("train.logistic.tolerance", format!("must be a positive number, got {}", l.tolerance)));
            }
            if l.penalty.is_empty() || l.penalty.iter().any(|p| p != "none" && p != "l2") {
                return Err(bad(
                    "train.logistic.penalty",
                    format!("must list \"none\" and/or \"l2\" (linfa-logistic offers L2 only), got {:?}", l.penalty),
                ));
            }
        }
        let e = &self.evaluate;
        e.validate(self.dataset.multiclass)?;
        unit_interval("evaluate.min_f1_weighted", e.min_f1_weighted, false)?;
        unit_interval("evaluate.min_accuracy", e.min_accuracy, false)?;
        unit_interval("evaluate.min_roc_auc", e.min_roc_auc, false)?;
        let name = &self.deploy.model_name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(bad("deploy.model_name", format!("must be non-empty and use only letters, digits, _ - . (got {name:?})")));
        }
        if self.tracking.experiment_name.trim().is_empty() {
            return Err(bad("tracking.experiment_name", "must not be empty"));
        }
        self.drift.validate()
    }

    /// The date window `[min, max]`; an empty `max_date` resolves to `today`.
    pub fn date_window(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let min = NaiveDate::parse_from_str(&self.dataset.min_date, "%Y-%m-%d").unwrap_or(NaiveDate::MIN);
        let max = if self.dataset.max_date.is_empty() {
            today
        } else {
            NaiveDate::parse_from_str(&self.dataset.max_date, "%Y-%m-%d").unwrap_or(NaiveDate::MAX)
        };
        (min, max)
    }

    /// Hash of the whole params set (canonical JSON), recorded in run metadata.
    pub fn hash(&self) -> String {
        sha256_hex(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    /// Hash of one section, for stage fingerprints.
    pub fn section_hash<T: Serialize>(section: &T) -> String {
        sha256_hex(serde_json::to_string(section).unwrap_or_default().as_bytes())
    }
}
