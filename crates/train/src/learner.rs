//! The Learner seam (in linfa's spirit): a model kind is one module that draws candidates from
//! its validated params, fits and scores them by cross-validation ([`Learner::search`]), refits
//! the best on the training rows and saves it ([`Searched::refit`]). The stage trains every
//! enabled learner of `LEARNERS` (in `lib.rs`) through [`train_all`] and treats the results alike; loading,
//! predicting and importance live with the model (`leadflow-model`).

use std::time::Instant;

use leadflow_core::artifacts::StageDir;
use leadflow_core::calibration::CalibrationMethod;
use leadflow_core::params::{Choice, Metric, Space, TrainParams};
use leadflow_core::results::CvSummary;
use leadflow_model::{Matrix, ModelKind};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::search::Scoring;

/// The training rows and what every learner needs to know about the run.
pub struct TrainSet<'a> {
    pub x: &'a Matrix,
    pub y: &'a [u8],
    /// The test rows, predicted by the refitted model for the reports.
    pub x_test: &'a Matrix,
    pub features: &'a [String],
    /// Number of classes.
    pub k: usize,
    pub seed: u64,
    pub scoring: Metric,
    /// The fixed threshold the search scores candidates at.
    pub threshold: f64,
    /// A rule chooses each model's threshold afterwards, on its out-of-fold predictions.
    pub threshold_rule: bool,
    pub params: &'a TrainParams,
}

impl TrainSet<'_> {
    /// How a learner's search scores its folds; the best candidate's out-of-fold predictions
    /// are kept when the learner is calibrated or a rule chooses its threshold.
    pub fn scoring(&self, calibration: CalibrationMethod) -> Scoring<'_> {
        Scoring {
            y: self.y,
            metric: self.scoring,
            k: self.k,
            threshold: self.threshold,
            keep_oof: self.threshold_rule || !calibration.is_none(),
        }
    }
}

/// A model kind the train stage can tune and fit.
pub trait Learner: Sync {
    fn kind(&self) -> ModelKind;
    fn enabled(&self, p: &TrainParams) -> bool;
    fn cv_folds(&self, p: &TrainParams) -> usize;
    /// How its probabilities are calibrated (on out-of-fold predictions).
    fn calibration(&self, p: &TrainParams) -> CalibrationMethod;
    /// Draw candidates and score each by cross-validation on the training rows (seeded, in a
    /// fixed order: the result does not depend on the thread count).
    fn search(&self, set: &TrainSet<'_>) -> Result<Box<dyn Searched>>;
}

/// A finished search, ready to refit its best candidate.
pub trait Searched: Send {
    /// Refit the best candidate on all training rows, save it as its kind's artifact in `out`,
    /// and predict the training and test rows with what was saved.
    fn refit(self: Box<Self>, set: &TrainSet<'_>, out: &StageDir) -> Result<Trained>;
}

/// One trained model, before tracking.
pub struct Trained {
    pub kind: ModelKind,
    pub best_params: serde_json::Value,
    pub search: serde_json::Value,
    pub cv: CvSummary,
    /// Probabilities of the training and test rows (calibrated once a decision is made).
    pub train_proba: Vec<f64>,
    pub test_proba: Vec<f64>,
    /// The best candidate's out-of-fold probabilities, when kept.
    pub oof: Option<Vec<f64>>,
    /// Its calibration and threshold, when it has either.
    pub decision: Option<leadflow_core::results::Decision>,
    /// What its tracking run records as params.
    pub tracked_params: Vec<(String, String)>,
    /// Wall seconds of its search and of its refit.
    pub seconds: (f64, f64),
}

impl Trained {
    /// A refitted model described by its search (`res`, with `folds` and `candidates` from its
    /// params) and its probabilities on the training and test rows.
    pub fn new<C: serde::Serialize>(
        kind: ModelKind,
        res: &crate::search::SearchResult<C>,
        set: &TrainSet<'_>,
        (folds, candidates): (usize, usize),
        (train_proba, test_proba): (Vec<f64>, Vec<f64>),
        tracked_params: Vec<(String, String)>,
    ) -> Trained {
        let best = res.best();
        Trained {
            kind,
            best_params: serde_json::to_value(&best.params).unwrap_or_default(),
            search: serde_json::to_value(&res.candidates).unwrap_or_default(),
            cv: CvSummary { metric: set.scoring.name().into(), folds, candidates, mean: best.mean, std: best.std },
            train_proba,
            test_proba,
            oof: res.oof.clone(),
            decision: None,
            tracked_params,
            seconds: (0.0, 0.0),
        }
    }
}

/// Train `learners` in order: each search uses every core, and each refit (one thread) runs
/// beside the next learner's search, so no core idles. Every part is seeded and independent, so
/// the overlap changes no result.
pub fn train_all(learners: &[&dyn Learner], set: &TrainSet<'_>, out: &StageDir) -> Result<Vec<Trained>> {
    let Some((first, rest)) = learners.split_first() else { return Ok(Vec::new()) };
    let start = Instant::now();
    let searched = first.search(set)?;
    let search_s = start.elapsed().as_secs_f64();
    let (this, others) = rayon::join(
        || {
            let start = Instant::now();
            searched.refit(set, out).map(|t| Trained { seconds: (search_s, start.elapsed().as_secs_f64()), ..t })
        },
        || train_all(rest, set, out),
    );
    let mut all = vec![this?];
    all.extend(others?);
    Ok(all)
}

/// A number from a search space: a fixed value, or uniform in `[a, b)`.
pub(crate) fn draw_f64(s: &Space<f64>, rng: &mut ChaCha8Rng) -> f64 {
    match *s {
        Space::Fixed(v) => v,
        Space::Between([a, b]) if a < b => rng.gen_range(a..b),
        Space::Between([a, _]) => a,
    }
}

/// One of a list of choices, uniformly (a single choice draws nothing).
pub(crate) fn draw_choice(c: &Choice, rng: &mut ChaCha8Rng) -> String {
    match c {
        Choice::Fixed(v) => v.clone(),
        Choice::OneOf(v) if v.len() == 1 => v[0].clone(),
        Choice::OneOf(v) => v[rng.gen_range(0..v.len())].clone(),
    }
}

/// The labels of `idx`.
pub(crate) fn pick(y: &[u8], idx: &[usize]) -> Vec<u8> {
    idx.iter().map(|&i| y[i]).collect()
}
