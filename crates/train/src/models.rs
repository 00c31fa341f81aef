//! The two model families: candidates, their search spaces, and single fits.

use leadflow_core::params::{Choice, LogisticParams, Space, XgboostParams};
use leadflow_model::{LogisticModel, Matrix, Model, MultinomialModel, XgbModel, XgbRows};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};

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

fn draw_f64(s: &Space<f64>, rng: &mut ChaCha8Rng) -> f64 {
    match *s {
        Space::Fixed(v) => v,
        Space::Between([a, b]) if a < b => rng.gen_range(a..b),
        Space::Between([a, _]) => a,
    }
}

fn draw_choice(c: &Choice, rng: &mut ChaCha8Rng) -> String {
    match c {
        Choice::Fixed(v) => v.clone(),
        Choice::OneOf(v) if v.len() == 1 => v[0].clone(),
        Choice::OneOf(v) => v[rng.gen_range(0..v.len())].clone(),
    }
}

/// XGBoost's objective for `k > 2` classes: one probability per class.
pub const MULTICLASS_OBJECTIVE: &str = "multi:softprob";

/// Draw `n` candidates from the params' space (by default the notebook's: learning_rate
/// U(0.01, 0.31), min_split_loss U(0, 10), max_depth 3..=9, subsample U(0, 1) kept ≥ 0.01,
/// objective and eval_metric uniformly). Fixed values draw nothing. With `k > 2` classes the
/// objective is `multi:softprob` (not drawn).
pub fn xgb_candidates(n: usize, p: &XgboostParams, k: usize, rng: &mut ChaCha8Rng) -> Vec<XgbCandidate> {
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
pub fn xgb_config(c: &XgbCandidate, p: &XgboostParams, seed: u64, k: usize) -> Vec<(String, String)> {
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

/// Fit one random forest (one boosting round of `n_estimators` parallel trees).
pub fn xgb_fit(x: &Matrix, y: &[u8], c: &XgbCandidate, p: &XgboostParams, seed: u64, k: usize) -> Result<XgbModel> {
    let rows = XgbRows::new(x, None, Some(y)).map_err(|e| Error::Fit { model: "xgboost", message: e.to_string() })?;
    xgb_fit_on(&rows, c, p, seed, k)
}

/// [`xgb_fit`] on rows made ready once (and shared by several fits).
pub fn xgb_fit_on(rows: &XgbRows, c: &XgbCandidate, p: &XgboostParams, seed: u64, k: usize) -> Result<XgbModel> {
    XgbModel::fit_one_round_on(rows, &xgb_config(c, p, seed, k)).map_err(|e| Error::Fit { model: "xgboost", message: e.to_string() })
}

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
pub fn lr_candidates(n: usize, p: &LogisticParams, rng: &mut ChaCha8Rng) -> Vec<LrCandidate> {
    let mut grid: Vec<LrCandidate> =
        p.c.iter().flat_map(|&c| p.penalty.iter().map(move |penalty| LrCandidate { c, penalty: penalty.clone() })).collect();
    grid.shuffle(rng);
    grid.truncate(n);
    grid
}

/// Fit a logistic regression: binary (`k == 2`) or multinomial (linfa-logistic's
/// `MultiLogisticRegression`); every one of the `k` classes must be among `y`.
pub fn lr_fit(x: &Matrix, y: &[u8], k: usize, features: &[String], c: &LrCandidate, p: &LogisticParams) -> Result<Model> {
    lr_fit_from(&LrRows::new(x, None, y)?, k, features, c, p, None).map(|(m, _)| m)
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
            ndarray::Array2::from_shape_vec((n, x.n_cols), data).map_err(|e| Error::Fit { model: "logistic", message: e.to_string() })?;
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

/// [`lr_fit`] starting from `warm` (a previous fit's solution on the same columns and classes),
/// also returning this fit's solution.
pub fn lr_fit_from(
    rows: &LrRows,
    k: usize,
    features: &[String],
    c: &LrCandidate,
    p: &LogisticParams,
    warm: Option<&WarmStart>,
) -> Result<(Model, WarmStart)> {
    use linfa::traits::Fit;
    let err = |e: String| Error::Fit { model: "logistic", message: e };
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
        let fitted = lr.fit(ds).map_err(|e| err(e.to_string()))?;
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
        solution.push_row(fitted.intercept().view()).map_err(|e| err(e.to_string()))?;
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
    let fitted = lr.fit(ds).map_err(|e| err(e.to_string()))?;
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
