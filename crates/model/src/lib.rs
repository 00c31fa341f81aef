//! leadflow-model: saved models and how they predict (both kinds), XGBoost's matrix and gain
//! importance. The only crate that links XGBoost's C++ library. Every probability is
//! P(positive class) (the lead: P(converted = 1)).

use std::path::Path;

use leadflow_core::error::Error as CoreError;

mod error;
use error::xgb;
pub use error::{Error, Result};
pub use leadflow_core::model::{sigmoid, LogisticModel, Matrix, ModelKind, MultinomialModel};

/// An XGBoost DMatrix of some rows of `x` (all when `None`) in which every cell is a present
/// value (zeros included), without copying the rows as f64 first.
///
/// `DMatrix::from_dense` in xgboost-rs treats 0.0 as missing, unlike Python's xgboost with a
/// dense array (missing = NaN). XGBoost's array-interface constructor (`from_col_major_f32`,
/// given row-major strides) takes `missing = NaN` as Python does: one f32 copy of the rows, no
/// index arrays (a CSR with explicit entries cost four times the memory).
fn dmatrix_rows(x: &Matrix, rows: Option<&[usize]>) -> Result<xgboost_rs::DMatrix> {
    let data: Vec<f32> = match rows {
        None => x.data.iter().map(|&v| v as f32).collect(),
        Some(rows) => rows.iter().flat_map(|&r| x.row(r).iter().map(|&v| v as f32)).collect(),
    };
    let n_rows = rows.map_or(x.n_rows, <[usize]>::len);
    let width = std::mem::size_of::<f32>();
    xgboost_rs::DMatrix::from_col_major_f32(&data, x.n_cols * width, width, n_rows, x.n_cols, 1, f32::NAN)
        .map_err(xgb("building the matrix"))
}

/// Rows ready for XGBoost (and their labels, to fit on): built once, then fitted on or predicted
/// for any number of times. XGBoost keeps the quantile cuts and binned matrix of `hist` with
/// the matrix, so fits after the first on the same rows skip building them.
pub struct XgbRows {
    d: xgboost_rs::DMatrix,
}

impl XgbRows {
    /// Some rows of `x` (all when `None`), with labels when `y` (one per row) is given.
    pub fn new(x: &Matrix, rows: Option<&[usize]>, y: Option<&[u8]>) -> Result<XgbRows> {
        let mut d = dmatrix_rows(x, rows)?;
        if let Some(y) = y {
            let labels: Vec<f32> = y.iter().map(|&v| f32::from(v)).collect();
            d.set_labels(&labels).map_err(xgb("setting the labels"))?;
        }
        Ok(XgbRows { d })
    }

    /// Weigh each row (one weight per row): e.g. balanced class weights.
    pub fn set_weights(&mut self, w: &[f32]) -> Result<()> {
        self.d.set_weights(w).map_err(xgb("setting the weights"))
    }

    pub fn len(&self) -> usize {
        self.d.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An XGBoost booster loaded from its JSON model file.
pub struct XgbModel {
    booster: xgboost_rs::Booster,
}

impl std::fmt::Debug for XgbModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XgbModel")
    }
}

impl XgbModel {
    pub fn load(path: &Path) -> Result<XgbModel> {
        let bytes = std::fs::read(path).map_err(|e| CoreError::Io { path: path.into(), source: e })?;
        // Check it is JSON first: XGBoost's own loader aborts noisily on garbage.
        serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|source| CoreError::Json {
            path: path.into(),
            what: "an XGBoost JSON model",
            source,
        })?;
        let booster = xgboost_rs::Booster::load(path).map_err(|source| Error::XgboostFile { path: path.into(), what: "load", source })?;
        Ok(XgbModel { booster })
    }

    pub fn booster(&self) -> &xgboost_rs::Booster {
        &self.booster
    }

    /// Fit with exactly one boosting round (`update` once; `Booster::train` in xgboost-rs would
    /// run 16) — a random forest when `num_parallel_tree` > 1. `config` is XGBoost's parameters.
    pub fn fit_one_round(x: &Matrix, y: &[u8], config: &[(String, String)]) -> Result<XgbModel> {
        XgbModel::fit_one_round_on(&XgbRows::new(x, None, Some(y))?, config)
    }

    /// [`XgbModel::fit_one_round`] on rows already made ready (with labels).
    pub fn fit_one_round_on(rows: &XgbRows, config: &[(String, String)]) -> Result<XgbModel> {
        let d = &rows.d;
        let cfg: std::collections::HashMap<String, String> = config.iter().cloned().collect();
        let mut b = xgboost_rs::Booster::new_with_json_config(&[d], cfg).map_err(xgb("fitting"))?;
        let start = std::time::Instant::now();
        b.update(d, 0).map_err(xgb("fitting"))?;
        UPDATE_NANOS.fetch_add(start.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(XgbModel { booster: b })
    }

    /// Boost exactly `rounds` rounds on `rows` (with labels): gradient-boosted trees.
    pub fn boost(rows: &XgbRows, config: &[(String, String)], rounds: usize) -> Result<XgbModel> {
        let cfg: std::collections::HashMap<String, String> = config.iter().cloned().collect();
        let mut b = xgboost_rs::Booster::new_with_json_config(&[&rows.d], cfg).map_err(xgb("fitting"))?;
        let start = std::time::Instant::now();
        for round in 0..rounds {
            b.update(&rows.d, round as i32).map_err(xgb("fitting"))?;
        }
        UPDATE_NANOS.fetch_add(start.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(XgbModel { booster: b })
    }

    /// Boost on `train` (with labels) up to `max_rounds` rounds, scoring the log loss of `valid`
    /// (its labels `y_valid`) after each; stop once `patience` rounds in a row brought no strict
    /// improvement (Python xgboost's `early_stopping_rounds`). Returns the best number of rounds
    /// and each of `watch`'s probabilities at that round (XGBoost predicts a matrix it has seen
    /// incrementally, so watching costs one tree per round).
    pub fn boost_early_stopping(
        train: &XgbRows,
        valid: (&XgbRows, &[u8]),
        watch: &[&XgbRows],
        config: &[(String, String)],
        (max_rounds, patience): (usize, usize),
        k: usize,
    ) -> Result<EarlyStopped> {
        let cfg: std::collections::HashMap<String, String> = config.iter().cloned().collect();
        let mut b = xgboost_rs::Booster::new_with_json_config(&[&train.d], cfg).map_err(xgb("fitting"))?;
        let mut best = EarlyStopped { rounds: 0, loss: f64::INFINITY, watched: vec![Vec::new(); watch.len()] };
        for round in 0..max_rounds {
            let start = std::time::Instant::now();
            b.update(&train.d, round as i32).map_err(xgb("fitting"))?;
            UPDATE_NANOS.fetch_add(start.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
            let p = b.predict(&valid.0.d).map_err(xgb("predicting"))?;
            let loss = log_loss(valid.1, &p, k);
            if loss < best.loss {
                best.rounds = round + 1;
                best.loss = loss;
                for (w, rows) in best.watched.iter_mut().zip(watch) {
                    *w = b.predict(&rows.d).map_err(xgb("predicting"))?.into_iter().map(f64::from).collect();
                }
            } else if round + 1 - best.rounds >= patience {
                break;
            }
        }
        Ok(best)
    }

    /// Save in XGBoost's own JSON model format.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.booster.save(path).map_err(|source| Error::XgboostFile { path: path.into(), what: "save", source })
    }

    /// Probabilities: of class 1 (binary), or of each class, row-major (`multi:softprob`).
    /// Regression objectives are clipped to [0, 1].
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f64>> {
        if x.n_rows == 0 {
            return Ok(Vec::new());
        }
        self.predict_on(&XgbRows::new(x, None, None)?)
    }

    /// [`XgbModel::predict`] of rows already made ready.
    pub fn predict_on(&self, rows: &XgbRows) -> Result<Vec<f64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let p = self.booster.predict(&rows.d).map_err(xgb("predicting"))?;
        Ok(p.into_iter().map(|v| f64::from(v).clamp(0.0, 1.0)).collect())
    }

    /// The raw margin of each row (before the objective's link: log-odds for `binary:logistic`).
    pub fn margin(&self, x: &Matrix) -> Result<Vec<f64>> {
        if x.n_rows == 0 {
            return Ok(Vec::new());
        }
        let m = self.booster.predict_margin(&XgbRows::new(x, None, None)?.d).map_err(xgb("predicting margins"))?;
        Ok(m.into_iter().map(f64::from).collect())
    }

    /// Each row's SHAP values by XGBoost's own TreeSHAP (`pred_contribs`): per feature, and the
    /// bias (last); they add up to the row's margin. Binary models only.
    pub fn contributions(&self, x: &Matrix) -> Result<Contributions> {
        if x.n_rows == 0 {
            return Ok(Contributions { n_features: x.n_cols, values: Vec::new(), bias: Vec::new() });
        }
        let rows = XgbRows::new(x, None, None)?;
        let (data, (n, width)) = self.booster.predict_contributions(&rows.d).map_err(xgb("computing contributions"))?;
        if width != x.n_cols + 1 || n != x.n_rows {
            return Err(Error::Width { kind: "xgboost (contributions: binary models only)", expected: x.n_cols + 1, got: width });
        }
        let mut values = Vec::with_capacity(n * x.n_cols);
        let mut bias = Vec::with_capacity(n);
        for row in data.chunks(width) {
            values.extend(row[..x.n_cols].iter().map(|&v| f64::from(v)));
            bias.push(f64::from(row[x.n_cols]));
        }
        Ok(Contributions { n_features: x.n_cols, values, bias })
    }

    /// Mean split gain per feature (XGBoost's `importance_type="gain"`), by feature index.
    pub fn gain_importance(&self, n_features: usize) -> Result<Vec<f64>> {
        let dump = self.booster.dump_model(true, None).map_err(xgb("dumping the trees"))?;
        let mut sum = vec![0.0; n_features];
        let mut count = vec![0usize; n_features];
        for line in dump.lines() {
            let Some(open) = line.find("[f") else { continue };
            let rest = &line[open + 2..];
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let Ok(f) = rest[..end].parse::<usize>() else { continue };
            let Some(g) = line.split("gain=").nth(1) else { continue };
            let g: f64 = g.split(',').next().unwrap_or("").parse().unwrap_or(0.0);
            if f < n_features {
                sum[f] += g;
                count[f] += 1;
            }
        }
        Ok(sum.iter().zip(&count).map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 }).collect())
    }
}

/// What [`XgbModel::boost_early_stopping`] found.
#[derive(Debug, Clone)]
pub struct EarlyStopped {
    /// Rounds up to the best validation loss.
    pub rounds: usize,
    pub loss: f64,
    /// Each watched matrix's probabilities after that many rounds.
    pub watched: Vec<Vec<f64>>,
}

/// XGBoost's `logloss` / `mlogloss` of float probabilities (clipped to [1e-16, 1 - 1e-16]).
fn log_loss(y: &[u8], p: &[f32], k: usize) -> f64 {
    let eps = 1e-16;
    let sum: f64 = if k == 2 {
        y.iter()
            .zip(p)
            .map(|(&t, &v)| {
                let v = f64::from(v).clamp(eps, 1.0 - eps);
                if t == 1 {
                    -v.ln()
                } else {
                    -(1.0 - v).ln()
                }
            })
            .sum()
    } else {
        y.iter().zip(p.chunks(k)).map(|(&t, row)| -f64::from(row[t as usize]).max(eps).ln()).sum()
    };
    sum / y.len().max(1) as f64
}

/// Wall time spent inside XGBoost's own `update` calls by this process, summed over threads:
/// the part of a fit no caller can remove (the benchmark's "XGBoost floor").
static UPDATE_NANOS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Seconds spent inside XGBoost's `update` so far in this process (all threads added up).
pub fn xgboost_update_seconds() -> f64 {
    UPDATE_NANOS.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9
}

/// Per-row feature contributions to the model's margin: `values` row-major (`n_features` a
/// row) and a `bias` per row; a row's contributions and bias add up to its margin.
#[derive(Debug, Clone, PartialEq)]
pub struct Contributions {
    pub n_features: usize,
    pub values: Vec<f64>,
    pub bias: Vec<f64>,
}

impl Contributions {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.n_features..(i + 1) * self.n_features]
    }
}

/// Either kind of trained model (a logistic regression is multinomial for more than two classes).
#[derive(Debug)]
pub enum Model {
    Xgboost(XgbModel),
    /// Gradient-boosted trees (XGBoost's JSON format too).
    Boosted(XgbModel),
    Logistic(LogisticModel),
    Multinomial(MultinomialModel),
}

impl Model {
    pub fn load(kind: ModelKind, path: &Path) -> Result<Model> {
        if !path.is_file() {
            return Err(CoreError::Io {
                path: path.into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
            }
            .into());
        }
        Ok(match kind {
            ModelKind::Xgboost => Model::Xgboost(XgbModel::load(path)?),
            ModelKind::Boosted => Model::Boosted(XgbModel::load(path)?),
            ModelKind::Logistic => {
                let v: serde_json::Value = leadflow_core::artifacts::read_json(path, "a logistic regression model")?;
                if v.get("intercepts").is_some() {
                    let m: MultinomialModel = serde_json::from_value(v).map_err(|source| CoreError::Json {
                        path: path.into(),
                        what: "a multinomial logistic model",
                        source,
                    })?;
                    if m.coefficients.len() != m.intercepts.len() || m.coefficients.iter().any(|c| c.len() != m.features.len()) {
                        return Err(CoreError::Invalid {
                            path: path.into(),
                            message: format!("coefficients do not match {} classes x {} features", m.intercepts.len(), m.features.len()),
                        }
                        .into());
                    }
                    return Ok(Model::Multinomial(m));
                }
                let m: LogisticModel = serde_json::from_value(v).map_err(|source| CoreError::Json {
                    path: path.into(),
                    what: "a logistic regression model",
                    source,
                })?;
                if m.coefficients.len() != m.features.len() {
                    return Err(CoreError::Invalid {
                        path: path.into(),
                        message: format!("{} coefficients for {} features", m.coefficients.len(), m.features.len()),
                    }
                    .into());
                }
                Model::Logistic(m)
            }
        })
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            Model::Xgboost(_) => ModelKind::Xgboost,
            Model::Boosted(_) => ModelKind::Boosted,
            Model::Logistic(_) | Model::Multinomial(_) => ModelKind::Logistic,
        }
    }

    pub fn predict(&self, x: &Matrix) -> Result<Vec<f64>> {
        match self {
            Model::Xgboost(m) | Model::Boosted(m) => m.predict(x),
            Model::Logistic(m) => {
                if m.coefficients.len() != x.n_cols {
                    return Err(Error::Width { kind: "logistic", expected: m.coefficients.len(), got: x.n_cols });
                }
                Ok((0..x.n_rows).map(|i| m.predict_row(x.row(i))).collect())
            }
            Model::Multinomial(m) => {
                if m.features.len() != x.n_cols {
                    return Err(Error::Width { kind: "logistic", expected: m.features.len(), got: x.n_cols });
                }
                let mut out = Vec::with_capacity(x.n_rows * m.intercepts.len());
                for i in 0..x.n_rows {
                    m.predict_row(x.row(i), &mut out);
                }
                Ok(out)
            }
        }
    }

    /// Each row's margin: log-odds for the logistic model, XGBoost's raw margin. Binary only.
    pub fn margin(&self, x: &Matrix) -> Result<Vec<f64>> {
        match self {
            Model::Xgboost(m) | Model::Boosted(m) => m.margin(x),
            Model::Logistic(m) => {
                if m.coefficients.len() != x.n_cols {
                    return Err(Error::Width { kind: "logistic", expected: m.coefficients.len(), got: x.n_cols });
                }
                Ok((0..x.n_rows).map(|i| m.intercept + m.coefficients.iter().zip(x.row(i)).map(|(w, v)| w * v).sum::<f64>()).collect())
            }
            Model::Multinomial(_) => Err(Error::Unsupported("margins and contributions of a multiclass model")),
        }
    }

    /// Each row's feature contributions to its margin. XGBoost: TreeSHAP (`pred_contribs`).
    /// Logistic regression: coefficient x (value - the feature's training mean), with the bias
    /// intercept + Σ coefficient x mean, so they add up to the log-odds. `means` are the training
    /// rows' feature means (needed by the logistic model only). Binary models only.
    pub fn contributions(&self, x: &Matrix, means: Option<&[f64]>) -> Result<Contributions> {
        match self {
            Model::Xgboost(m) | Model::Boosted(m) => m.contributions(x),
            Model::Logistic(m) => {
                let n = m.coefficients.len();
                if n != x.n_cols {
                    return Err(Error::Width { kind: "logistic", expected: n, got: x.n_cols });
                }
                let means = means.ok_or(Error::Unsupported("logistic contributions without the training means"))?;
                if means.len() != n {
                    return Err(Error::Width { kind: "logistic (training means)", expected: n, got: means.len() });
                }
                let bias = m.intercept + m.coefficients.iter().zip(means).map(|(w, mu)| w * mu).sum::<f64>();
                let mut values = Vec::with_capacity(x.n_rows * n);
                for i in 0..x.n_rows {
                    values.extend(m.coefficients.iter().zip(x.row(i)).zip(means).map(|((w, v), mu)| w * (v - mu)));
                }
                Ok(Contributions { n_features: n, values, bias: vec![bias; x.n_rows] })
            }
            Model::Multinomial(_) => Err(Error::Unsupported("contributions of a multiclass model")),
        }
    }

    /// What the model says about its features, for the report and the card: XGBoost's mean
    /// split gain per feature; a logistic regression's coefficients (binary: signed, toward the
    /// positive class, whose probability `positive` names; multinomial: mean |coefficient| over
    /// the classes).
    pub fn importance(&self, features: &[String], positive: &str) -> Result<Importance> {
        Ok(match self {
            Model::Xgboost(b) | Model::Boosted(b) => Importance {
                title: "feature importance",
                measure: "mean split gain".into(),
                values: features.iter().cloned().zip(b.gain_importance(features.len())?).collect(),
            },
            Model::Logistic(lr) => Importance {
                title: "coefficients",
                measure: format!("coefficient (scaled features; + raises {positive})"),
                values: lr.features.iter().cloned().zip(lr.coefficients.iter().copied()).collect(),
            },
            Model::Multinomial(lr) => {
                let n = lr.coefficients.len() as f64;
                let mean_abs = (0..lr.features.len()).map(|j| lr.coefficients.iter().map(|w| w[j].abs()).sum::<f64>() / n);
                Importance {
                    title: "coefficients",
                    measure: "mean |coefficient| over the classes (scaled features)".into(),
                    values: lr.features.iter().cloned().zip(mean_abs).collect(),
                }
            }
        })
    }
}

/// A model's view of its features ([`Model::importance`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    /// What the numbers are, in a plot title ("feature importance", "coefficients").
    pub title: &'static str,
    /// Their unit, on the plot's axis.
    pub measure: String,
    pub values: Vec<(String, f64)>,
}
