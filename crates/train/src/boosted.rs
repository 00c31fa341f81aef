//! XGBoost gradient-boosted trees (XGBClassifier semantics) with early stopping: its candidates,
//! configuration, one fit, and its [`Learner`]. Every fit holds out a stratified share of its
//! rows (`validation_size`) and adds rounds until their log loss stops improving
//! (`early_stopping_rounds`); the model keeps the rounds up to the best one. Inside each CV fold
//! that share comes from the fold's training rows, so the fold's held-out rows stay unseen.

use leadflow_core::artifacts::{self as art, StageDir};
use leadflow_core::params::{BoostedParams, ClassWeight, Space, TrainParams};
use leadflow_core::split::{self, derive_rng};
use leadflow_model::{Matrix, ModelKind, XgbModel, XgbRows};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::learner::{draw_f64, pick, Learner, Searched, TrainSet, Trained};
use crate::search::{self, SearchResult};

/// One point of the boosted trees' search space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoostedCandidate {
    pub learning_rate: f64,
    pub max_depth: u32,
    pub min_child_weight: f64,
    pub subsample: f64,
    pub colsample_bytree: f64,
    pub reg_lambda: f64,
}

/// Draw `n` candidates from the params' space (fixed values draw nothing).
pub fn candidates(n: usize, p: &BoostedParams, rng: &mut ChaCha8Rng) -> Vec<BoostedCandidate> {
    (0..n)
        .map(|_| BoostedCandidate {
            learning_rate: draw_f64(&p.learning_rate, rng),
            max_depth: match p.max_depth {
                Space::Fixed(v) => v,
                Space::Between([a, b]) => rng.gen_range(a..=b),
            },
            min_child_weight: draw_f64(&p.min_child_weight, rng),
            subsample: draw_f64(&p.subsample, rng),
            colsample_bytree: draw_f64(&p.colsample_bytree, rng),
            reg_lambda: draw_f64(&p.reg_lambda, rng),
        })
        .collect()
}

/// XGBoost parameters of a candidate on rows labelled `y`: `binary:logistic` (or
/// `multi:softprob`), `hist`, base score 0.5, `scale_pos_weight` for balanced binary weights.
/// One thread per fit, as the forest's.
pub fn config(c: &BoostedCandidate, p: &BoostedParams, seed: u64, k: usize, y: &[u8]) -> Vec<(String, String)> {
    let objective = if k > 2 { "multi:softprob" } else { "binary:logistic" };
    let mut cfg: Vec<(String, String)> = [
        ("booster", "gbtree".to_string()),
        ("tree_method", "hist".into()),
        ("objective", objective.into()),
        ("base_score", "0.5".into()),
        ("learning_rate", c.learning_rate.to_string()),
        ("max_depth", c.max_depth.to_string()),
        ("min_child_weight", c.min_child_weight.to_string()),
        ("subsample", c.subsample.to_string()),
        ("colsample_bytree", c.colsample_bytree.to_string()),
        ("reg_lambda", c.reg_lambda.to_string()),
        ("seed", (seed % (i32::MAX as u64)).to_string()),
        ("nthread", "1".into()),
        ("verbosity", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if k > 2 {
        cfg.push(("num_class".into(), k.to_string()));
    } else if p.class_weight == ClassWeight::Balanced {
        let pos = y.iter().filter(|&&v| v == 1).count().max(1);
        cfg.push(("scale_pos_weight".into(), ((y.len() - pos) as f64 / pos as f64).to_string()));
    }
    cfg
}

fn fit_err(e: leadflow_model::Error) -> Error {
    Error::Fitting { model: "boosted", source: e.into() }
}

/// Rows `rows` of `x` ready to fit on, weighted per class when `balanced` has more than two.
fn fit_rows(x: &Matrix, rows: &[usize], y: &[u8], k: usize, weight: ClassWeight) -> Result<XgbRows> {
    let labels = pick(y, rows);
    let mut d = XgbRows::new(x, Some(rows), Some(&labels)).map_err(fit_err)?;
    if k > 2 && weight == ClassWeight::Balanced {
        let mut count = vec![0usize; k];
        labels.iter().for_each(|&c| count[c as usize] += 1);
        let w: Vec<f32> = labels.iter().map(|&c| (labels.len() as f64 / (k * count[c as usize]) as f64) as f32).collect();
        d.set_weights(&w).map_err(fit_err)?;
    }
    Ok(d)
}

/// `rows` split (stratified, seeded) into rows to fit on and rows watched for early stopping.
pub fn holdout(y: &[u8], rows: &[usize], p: &BoostedParams, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let labels = pick(y, rows);
    let (fit, watch) = split::train_test(&labels, p.validation_size, &mut derive_rng(seed, "boosted/early-stopping"));
    (fit.iter().map(|&i| rows[i]).collect(), watch.iter().map(|&i| rows[i]).collect())
}

/// Fit a candidate on `rows` of `x` with early stopping on a held-out share of them; returns
/// the best number of rounds and the probabilities of each of `watch` at that round.
pub fn fit_early_stopping(
    x: &Matrix,
    y: &[u8],
    rows: &[usize],
    watch: &[&XgbRows],
    c: &BoostedCandidate,
    set: (&BoostedParams, u64, usize),
) -> Result<(Vec<usize>, leadflow_model::EarlyStopped)> {
    let (p, seed, k) = set;
    let (fit, valid) = holdout(y, rows, p, seed);
    let train = fit_rows(x, &fit, y, k, p.class_weight)?;
    let watched = XgbRows::new(x, Some(&valid), None).map_err(fit_err)?;
    let cfg = config(c, p, seed, k, &pick(y, &fit));
    let stopped =
        XgbModel::boost_early_stopping(&train, (&watched, &pick(y, &valid)), watch, &cfg, (p.max_rounds, p.early_stopping_rounds), k)
            .map_err(fit_err)?;
    Ok((fit, stopped))
}

/// XGBoost gradient-boosted trees as a [`Learner`].
pub struct Boosted;

impl Learner for Boosted {
    fn kind(&self) -> ModelKind {
        ModelKind::Boosted
    }

    fn enabled(&self, p: &TrainParams) -> bool {
        p.boosted.enabled
    }

    fn cv_folds(&self, p: &TrainParams) -> usize {
        p.boosted.cv_folds
    }

    fn calibration(&self, p: &TrainParams) -> leadflow_core::calibration::CalibrationMethod {
        p.boosted.calibration
    }

    fn search(&self, set: &TrainSet<'_>) -> Result<Box<dyn Searched>> {
        let p = &set.params.boosted;
        let cands = candidates(p.n_candidates, p, &mut derive_rng(set.seed, "boosted/candidates"));
        let local_rows: Vec<usize> = (0..set.y.len()).collect();
        let folds = split::stratified_folds(set.y, &local_rows, p.cv_folds, &mut derive_rng(set.seed, "boosted/folds"));
        let prepare = |tr: &[usize], va: &[usize]| -> Result<(Vec<usize>, XgbRows)> {
            Ok((tr.to_vec(), XgbRows::new(set.x, Some(va), None).map_err(fit_err)?))
        };
        let scoring = set.scoring(p.calibration);
        let res = search::run_per_fold("boosted", &cands, &folds, &scoring, prepare, |(tr, va), c| {
            let (_, mut stopped) = fit_early_stopping(set.x, set.y, tr, &[va], c, (p, set.seed, set.k))?;
            Ok(std::mem::take(&mut stopped.watched[0]).into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
        })?;
        Ok(Box::new(res))
    }
}

impl Searched for SearchResult<BoostedCandidate> {
    fn refit(self: Box<Self>, set: &TrainSet<'_>, out: &StageDir) -> Result<Trained> {
        let p = &set.params.boosted;
        let best = self.best();
        tracing::info!("boosted: best CV {} {:.4} ± {:.4}", set.scoring.name(), best.mean, best.std);
        // On every training row: early stopping finds the rounds, then exactly that many are
        // boosted again (XGBoost is deterministic: the same trees) and saved.
        let all: Vec<usize> = (0..set.y.len()).collect();
        let (fit, stopped) = fit_early_stopping(set.x, set.y, &all, &[], &best.params, (p, set.seed, set.k))?;
        let cfg = config(&best.params, p, set.seed, set.k, &pick(set.y, &fit));
        let model = XgbModel::boost(&fit_rows(set.x, &fit, set.y, set.k, p.class_weight)?, &cfg, stopped.rounds).map_err(fit_err)?;
        let model_path = out.path(&ModelKind::Boosted.artifact());
        let permit = art::write_permit();
        model.save(&model_path).map_err(|e| Error::Write { path: model_path.clone(), source: e.into() })?;
        drop(permit);
        let saved = XgbModel::load(&model_path)?;
        let mut tracked: Vec<(String, String)> = cfg.into_iter().filter(|(k, _)| k != "nthread" && k != "verbosity").collect();
        tracked.push(("rounds".into(), stopped.rounds.to_string()));
        tracked.push(("max_rounds".into(), p.max_rounds.to_string()));
        tracked.push(("early_stopping_rounds".into(), p.early_stopping_rounds.to_string()));
        tracked.push(("n_candidates".into(), p.n_candidates.to_string()));
        tracked.push(("cv_folds".into(), p.cv_folds.to_string()));
        let probas = (saved.predict(set.x)?, saved.predict(set.x_test)?);
        let mut t = Trained::new(ModelKind::Boosted, &self, set, (p.cv_folds, p.n_candidates), probas, tracked);
        if let serde_json::Value::Object(m) = &mut t.best_params {
            m.insert("rounds".into(), stopped.rounds.into());
        }
        Ok(t)
    }
}
