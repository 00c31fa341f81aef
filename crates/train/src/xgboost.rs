//! The XGBoost random forest (XGBRFClassifier semantics): its candidates, its configuration, a
//! single fit, and its [`Learner`].

use leadflow_core::artifacts::{self as art, StageDir};
use leadflow_core::params::{Space, XgboostParams};
use leadflow_core::split::{self, derive_rng};
use leadflow_model::{Matrix, ModelKind, XgbModel, XgbRows};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::learner::{draw_choice, draw_f64, pick, Learner, Searched, TrainSet, Trained};
use crate::search::{self, SearchResult};

/// One point of the XGBoost random-forest search space (the notebook's space).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct XgbCandidate {
    pub learning_rate: f64,
    pub min_split_loss: f64,
    pub max_depth: u32,
    pub subsample: f64,
    pub objective: String,
    pub eval_metric: String,
}

/// XGBoost's objective for `k > 2` classes: one probability per class.
pub const MULTICLASS_OBJECTIVE: &str = "multi:softprob";

/// Draw `n` candidates from the params' space (by default the notebook's: learning_rate
/// U(0.01, 0.31), min_split_loss U(0, 10), max_depth 3..=9, subsample U(0, 1) kept ≥ 0.01,
/// objective and eval_metric uniformly). Fixed values draw nothing. With `k > 2` classes the
/// objective is `multi:softprob` (not drawn).
pub fn candidates(n: usize, p: &XgboostParams, k: usize, rng: &mut ChaCha8Rng) -> Vec<XgbCandidate> {
    (0..n)
        .map(|_| XgbCandidate {
            learning_rate: draw_f64(&p.learning_rate, rng),
            min_split_loss: draw_f64(&p.min_split_loss, rng),
            max_depth: match p.max_depth {
                Space::Fixed(v) => v,
                Space::Between([a, b]) => rng.gen_range(a..=b),
            },
            subsample: draw_f64(&p.subsample, rng).max(0.01),
            objective: if k > 2 { MULTICLASS_OBJECTIVE.to_string() } else { draw_choice(&p.objective, rng) },
            eval_metric: draw_choice(&p.eval_metric, rng),
        })
        .collect()
}

/// XGBoost parameters with XGBRFClassifier semantics: one boosting round of
/// `num_parallel_tree` trees, row subsampling, `colsample_bynode`, tiny L2 (`reg_lambda` 1e-5).
/// `eval_metric` is drawn and recorded but not passed on: it only affects evaluation sets, which
/// a single-round forest does not use, and the statically linked XGBoost lacks `aucpr`'s registration.
/// One thread per fit: parallelism comes from running fits side by side, which also keeps
/// XGBoost's thread-local random engine deterministic.
pub fn config(c: &XgbCandidate, p: &XgboostParams, seed: u64, k: usize) -> Vec<(String, String)> {
    let num_class = (k > 2).then(|| ("num_class", k.to_string()));
    [
        ("booster", "gbtree".to_string()),
        ("tree_method", "hist".into()),
        ("num_parallel_tree", p.n_estimators.to_string()),
        ("colsample_bynode", p.colsample_bynode.to_string()),
        ("reg_lambda", "1e-05".into()),
        ("learning_rate", c.learning_rate.to_string()),
        ("min_split_loss", c.min_split_loss.to_string()),
        ("max_depth", c.max_depth.to_string()),
        ("subsample", c.subsample.to_string()),
        ("objective", c.objective.clone()),
        ("base_score", "0.5".into()),
        ("seed", (seed % (i32::MAX as u64)).to_string()),
        ("nthread", "1".into()),
        ("verbosity", "0".into()),
    ]
    .into_iter()
    .chain(num_class)
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn fit_err(e: leadflow_model::Error) -> Error {
    Error::Fitting { model: "xgboost", source: e.into() }
}

/// Fit one random forest (one boosting round of `n_estimators` parallel trees).
pub fn fit(x: &Matrix, y: &[u8], c: &XgbCandidate, p: &XgboostParams, seed: u64, k: usize) -> Result<XgbModel> {
    fit_on(&XgbRows::new(x, None, Some(y)).map_err(fit_err)?, c, p, seed, k)
}

/// [`fit`] on rows made ready once (and shared by several fits).
pub fn fit_on(rows: &XgbRows, c: &XgbCandidate, p: &XgboostParams, seed: u64, k: usize) -> Result<XgbModel> {
    XgbModel::fit_one_round_on(rows, &config(c, p, seed, k)).map_err(fit_err)
}

/// The XGBoost random forest as a [`Learner`].
pub struct Forest;

impl Learner for Forest {
    fn kind(&self) -> ModelKind {
        ModelKind::Xgboost
    }

    fn enabled(&self, p: &leadflow_core::params::TrainParams) -> bool {
        p.xgboost.enabled
    }

    fn cv_folds(&self, p: &leadflow_core::params::TrainParams) -> usize {
        p.xgboost.cv_folds
    }

    fn calibration(&self, p: &leadflow_core::params::TrainParams) -> leadflow_core::calibration::CalibrationMethod {
        p.xgboost.calibration
    }

    fn search(&self, set: &TrainSet<'_>) -> Result<Box<dyn Searched>> {
        let p = &set.params.xgboost;
        let cands = candidates(p.n_candidates, p, set.k, &mut derive_rng(set.seed, "xgboost/candidates"));
        let local_rows: Vec<usize> = (0..set.y.len()).collect();
        let folds = split::stratified_folds(set.y, &local_rows, p.cv_folds, &mut derive_rng(set.seed, "xgboost/folds"));
        // One matrix per fold, shared by its candidates: XGBoost bins it once.
        let prepare = |tr: &[usize], va: &[usize]| -> Result<(XgbRows, XgbRows)> {
            let train = XgbRows::new(set.x, Some(tr), Some(&pick(set.y, tr))).map_err(fit_err)?;
            Ok((train, XgbRows::new(set.x, Some(va), None).map_err(fit_err)?))
        };
        let scoring = set.scoring(p.calibration);
        let res = search::run_per_fold("xgboost", &cands, &folds, &scoring, prepare, |(train, va), c| {
            Ok(fit_on(train, c, p, set.seed, set.k)?.predict_on(va)?)
        })?;
        Ok(Box::new(res))
    }
}

impl Searched for SearchResult<XgbCandidate> {
    fn refit(self: Box<Self>, set: &TrainSet<'_>, out: &StageDir) -> Result<Trained> {
        let p = &set.params.xgboost;
        let best = self.best();
        tracing::info!("xgboost: best CV {} {:.4} ± {:.4}", set.scoring.name(), best.mean, best.std);
        let model = fit(set.x, set.y, &best.params, p, set.seed, set.k)?;
        let model_path = out.path(&ModelKind::Xgboost.artifact());
        let permit = art::write_permit();
        model.save(&model_path).map_err(|e| Error::Write { path: model_path.clone(), source: e.into() })?;
        drop(permit);
        // Predict with the saved file, exactly as evaluate and predict will.
        let saved = XgbModel::load(&model_path)?;
        let mut tracked: Vec<(String, String)> =
            config(&best.params, p, set.seed, set.k).into_iter().filter(|(k, _)| k != "nthread" && k != "verbosity").collect();
        tracked.push(("n_candidates".into(), p.n_candidates.to_string()));
        tracked.push(("cv_folds".into(), p.cv_folds.to_string()));
        let probas = (saved.predict(set.x)?, saved.predict(set.x_test)?);
        Ok(Trained::new(ModelKind::Xgboost, &self, set, (p.cv_folds, p.n_candidates), probas, tracked))
    }
}
