//! Logistic regression (linfa-logistic; binary or multinomial): its candidates, single fits
//! (warm-started along the regularisation path), and its [`Learner`].

use leadflow_core::artifacts::{self as art, StageDir};
use leadflow_core::calibration::CalibrationMethod;
use leadflow_core::params::LogisticParams;
use leadflow_core::split::{self, derive_rng};
use leadflow_model::{LogisticModel, Matrix, Model, ModelKind, MultinomialModel};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::learner::{pick, Learner, Searched, TrainSet, Trained};
use crate::search::{self, SearchResult};

/// One point of the logistic-regression space. linfa-logistic offers L2 only (`alpha` = 1/C),
/// so the notebook's l1 and elasticnet penalties are not searched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrCandidate {
    #[serde(rename = "C")]
    pub c: f64,
    pub penalty: String,
}

impl LrCandidate {
    pub fn alpha(&self) -> f64 {
        match self.penalty.as_str() {
            "l2" => 1.0 / self.c,
            _ => 0.0,
        }
    }
}

/// The finite grid C × penalty from params (by default {100, 10, 1, 0.1, 0.01} × {none, l2}),
/// sampled without replacement (as scikit-learn's RandomizedSearchCV does for an all-list space).
pub fn candidates(n: usize, p: &LogisticParams, rng: &mut ChaCha8Rng) -> Vec<LrCandidate> {
    let mut grid: Vec<LrCandidate> =
        p.c.iter().flat_map(|&c| p.penalty.iter().map(move |penalty| LrCandidate { c, penalty: penalty.clone() })).collect();
    grid.shuffle(rng);
    grid.truncate(n);
    grid
}

/// Fit a logistic regression: binary (`k == 2`) or multinomial (linfa-logistic's
/// `MultiLogisticRegression`); every one of the `k` classes must be among `y`.
pub fn fit(x: &Matrix, y: &[u8], k: usize, features: &[String], c: &LrCandidate, p: &LogisticParams) -> Result<Model> {
    fit_from(&LrRows::new(x, None, y)?, k, features, c, p, None).map(|(m, _)| m)
}

/// Rows ready for linfa (with their labels): built once per fold and fitted on by every
/// candidate along the regularisation path, not copied per fit.
pub struct LrRows {
    ds: linfa::Dataset<f64, u8, ndarray::Ix1>,
}

impl LrRows {
    /// Some rows of `x` (all when `None`); `y` holds their labels.
    pub fn new(x: &Matrix, rows: Option<&[usize]>, y: &[u8]) -> Result<LrRows> {
        let data: Vec<f64> = match rows {
            None => x.data.clone(),
            Some(rows) => rows.iter().flat_map(|&r| x.row(r).iter().copied()).collect(),
        };
        let n = rows.map_or(x.n_rows, <[usize]>::len);
        let records =
            ndarray::Array2::from_shape_vec((n, x.n_cols), data).map_err(|e| Error::Fitting { model: "logistic", source: e.into() })?;
        Ok(LrRows { ds: linfa::Dataset::new(records, ndarray::Array1::from_vec(y.to_vec())) })
    }

    fn n_rows(&self) -> usize {
        self.ds.records().nrows()
    }
}

/// The solver's own parameters of a fitted logistic regression (weights, then the intercept row,
/// in linfa's orientation): the starting point of the next fit along a regularisation path.
#[derive(Debug, Clone)]
pub enum WarmStart {
    Binary(ndarray::Array1<f64>),
    Multinomial(ndarray::Array2<f64>),
}

/// [`fit`] starting from `warm` (a previous fit's solution on the same columns and classes),
/// also returning this fit's solution.
pub fn fit_from(
    rows: &LrRows,
    k: usize,
    features: &[String],
    c: &LrCandidate,
    p: &LogisticParams,
    warm: Option<&WarmStart>,
) -> Result<(Model, WarmStart)> {
    use linfa::traits::Fit;
    let err = |e: String| Error::Fit { model: "logistic", message: e };
    let failed = |e: linfa_logistic::error::Error| Error::Fitting { model: "logistic", source: e.into() };
    let ds = &rows.ds;
    let params = serde_json::json!({
        "C": c.c,
        "penalty": c.penalty,
        "alpha": c.alpha(),
        "max_iterations": p.max_iterations,
        "tolerance": p.tolerance,
        "solver": "lbfgs (linfa-logistic)",
    });
    if k > 2 {
        let mut lr = linfa_logistic::MultiLogisticRegression::default().alpha(c.alpha()).max_iterations(p.max_iterations);
        lr = lr.gradient_tolerance(p.tolerance * rows.n_rows() as f64);
        if let Some(WarmStart::Multinomial(w)) = warm {
            lr = lr.initial_params(w.clone());
        }
        let fitted = lr.fit(ds).map_err(failed)?;
        // linfa numbers the classes it saw, sorted; a class absent from these rows would shift
        // every later column, so it is an error here, not a silent mislabelling.
        let seen: Vec<u8> = fitted.classes().to_vec();
        if seen != (0..k as u8).collect::<Vec<_>>() {
            let missing: Vec<String> = (0..k as u8).filter(|c| !seen.contains(c)).map(|c| c.to_string()).collect();
            return Err(err(format!(
                "class(es) {} absent from the rows of a fit; every class needs rows in each fold",
                missing.join(", ")
            )));
        }
        let w = fitted.params();
        let mut solution = w.clone();
        solution.push_row(fitted.intercept().view()).map_err(|e| Error::Fitting { model: "logistic", source: e.into() })?;
        let model = Model::Multinomial(MultinomialModel {
            features: features.to_vec(),
            coefficients: (0..k).map(|j| w.column(j).to_vec()).collect(),
            intercepts: fitted.intercept().to_vec(),
            classes: seen,
            params,
        });
        return Ok((model, WarmStart::Multinomial(solution)));
    }
    let mut lr = linfa_logistic::LogisticRegression::default().alpha(c.alpha()).max_iterations(p.max_iterations);
    lr = lr.gradient_tolerance(p.tolerance * rows.n_rows() as f64);
    if let Some(WarmStart::Binary(w)) = warm {
        lr = lr.initial_params(w.clone());
    }
    let fitted = lr.fit(ds).map_err(failed)?;
    let mut solution = fitted.params().to_vec();
    solution.push(fitted.intercept());
    // linfa-logistic models P(its "positive" class), which is not necessarily class 1: orient the
    // stored model so that it always gives P(class 1).
    let sign = if fitted.labels().pos.class == 1 { 1.0 } else { -1.0 };
    let model = Model::Logistic(LogisticModel {
        features: features.to_vec(),
        coefficients: fitted.params().iter().map(|w| sign * w).collect(),
        intercept: sign * fitted.intercept(),
        classes: vec![0, 1],
        positive_class: 1,
        params,
    });
    Ok((model, WarmStart::Binary(ndarray::Array1::from_vec(solution))))
}

/// Logistic regression as a [`Learner`].
pub struct Logistic;

impl Learner for Logistic {
    fn kind(&self) -> ModelKind {
        ModelKind::Logistic
    }

    fn enabled(&self, p: &leadflow_core::params::TrainParams) -> bool {
        p.logistic.enabled
    }

    fn cv_folds(&self, p: &leadflow_core::params::TrainParams) -> usize {
        p.logistic.cv_folds
    }

    fn calibration(&self, p: &leadflow_core::params::TrainParams) -> CalibrationMethod {
        p.logistic.calibration
    }

    fn search(&self, set: &TrainSet<'_>) -> Result<Box<dyn Searched>> {
        let p = &set.params.logistic;
        let cands = candidates(p.n_candidates, p, &mut derive_rng(set.seed, "logistic/candidates"));
        let local_rows: Vec<usize> = (0..set.y.len()).collect();
        let folds = split::stratified_folds(set.y, &local_rows, p.cv_folds, &mut derive_rng(set.seed, "logistic/folds"));
        // Candidates that fit the same model (every C of penalty "none") are fitted once, along
        // the C path from the strongest penalty, each fit starting from the previous solution.
        let res = search::run_path(
            "logistic",
            &cands,
            (|c: &LrCandidate| c.alpha().to_bits(), |a: &LrCandidate, b: &LrCandidate| b.alpha().total_cmp(&a.alpha())),
            &folds,
            &set.scoring(p.calibration),
            // A fold's rows are copied once, for all its fits.
            |tr, va| Ok((LrRows::new(set.x, Some(tr), &pick(set.y, tr))?, set.x.select_rows(va))),
            |c, (train, va), start| {
                let (m, w) = fit_from(train, set.k, set.features, c, p, start)?;
                Ok((m.predict(va)?, w))
            },
        )?;
        Ok(Box::new(res))
    }
}

impl Searched for SearchResult<LrCandidate> {
    fn refit(self: Box<Self>, set: &TrainSet<'_>, out: &StageDir) -> Result<Trained> {
        let p = &set.params.logistic;
        let best = self.best();
        tracing::info!("logistic: best CV {} {:.4} ± {:.4}", set.scoring.name(), best.mean, best.std);
        let model = fit(set.x, set.y, set.k, set.features, &best.params, p)?;
        let path = out.path(&ModelKind::Logistic.artifact());
        match &model {
            Model::Multinomial(m) => art::write_json(&path, m)?,
            Model::Logistic(m) => art::write_json(&path, m)?,
            Model::Xgboost(_) | Model::Boosted(_) => unreachable!("fit fits logistic models"),
        }
        let probas = (model.predict(set.x)?, model.predict(set.x_test)?);
        Ok(Trained::new(
            ModelKind::Logistic,
            &self,
            set,
            (p.cv_folds, p.n_candidates),
            probas,
            vec![
                ("C".into(), best.params.c.to_string()),
                ("penalty".into(), best.params.penalty.clone()),
                ("alpha".into(), best.params.alpha().to_string()),
                ("max_iterations".into(), p.max_iterations.to_string()),
                ("tolerance".into(), p.tolerance.to_string()),
                ("n_candidates".into(), p.n_candidates.to_string()),
                ("cv_folds".into(), p.cv_folds.to_string()),
            ],
        ))
    }
}
