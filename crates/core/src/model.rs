//! Saved models and how they predict. Every probability is P(converted = 1).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Xgboost,
    Logistic,
}

impl std::str::FromStr for ModelKind {
    type Err = String;

    /// The inverse of [`ModelKind::name`].
    fn from_str(s: &str) -> std::result::Result<ModelKind, String> {
        ModelKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let known: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown model kind {s:?}; expected one of {}", known.join(", "))
        })
    }
}

impl ModelKind {
    pub const ALL: [ModelKind; 2] = [ModelKind::Xgboost, ModelKind::Logistic];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Xgboost => "xgboost",
            ModelKind::Logistic => "logistic",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ModelKind::Xgboost => "XGBoost random forest",
            ModelKind::Logistic => "Logistic regression",
        }
    }

    /// The evaluate-stage confusion heat map of this model.
    pub fn confusion_png(self) -> crate::artifacts::Artifact {
        match self {
            ModelKind::Xgboost => crate::artifacts::CONFUSION_XGB_PNG,
            ModelKind::Logistic => crate::artifacts::CONFUSION_LR_PNG,
        }
    }

    /// The evaluate-stage classification report of this model.
    pub fn report_txt(self) -> crate::artifacts::Artifact {
        match self {
            ModelKind::Xgboost => crate::artifacts::CLASS_REPORT_XGB,
            ModelKind::Logistic => crate::artifacts::CLASS_REPORT_LR,
        }
    }

    /// The train-stage artifact holding this model.
    pub fn artifact(self) -> crate::artifacts::Artifact {
        match self {
            ModelKind::Xgboost => crate::artifacts::XGB_MODEL,
            ModelKind::Logistic => crate::artifacts::LR_MODEL,
        }
    }
}

/// A logistic regression stored as plain numbers: P(1 | x) = σ(intercept + coefficients · x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub features: Vec<String>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// Class labels; `positive_class` is the one whose probability the model gives.
    pub classes: Vec<u8>,
    pub positive_class: u8,
    pub params: serde_json::Value,
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl LogisticModel {
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        let z = self.intercept + self.coefficients.iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
        sigmoid(z)
    }
}

/// Dense row-major feature matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub n_rows: usize,
    pub n_cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn new(n_cols: usize) -> Matrix {
        Matrix { n_rows: 0, n_cols, data: Vec::new() }
    }

    pub fn push_row(&mut self, row: &[f64]) {
        debug_assert_eq!(row.len(), self.n_cols);
        self.data.extend_from_slice(row);
        self.n_rows += 1;
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut m = Matrix::new(self.n_cols);
        m.data.reserve(idx.len() * self.n_cols);
        for &i in idx {
            m.push_row(self.row(i));
        }
        m
    }
}

/// Build an XGBoost DMatrix in which every cell is a present value (zeros included).
///
/// `DMatrix::from_dense` in xgboost-rs treats 0.0 as missing, unlike Python's xgboost with a
/// dense array (missing = NaN); going through CSR with explicit entries keeps the semantics equal.
pub fn dmatrix(x: &Matrix) -> Result<xgboost_rs::DMatrix> {
    let indptr: Vec<usize> = (0..=x.n_rows).map(|r| r * x.n_cols).collect();
    let indices: Vec<usize> = (0..x.n_rows).flat_map(|_| 0..x.n_cols).collect();
    let data: Vec<f32> = x.data.iter().map(|&v| v as f32).collect();
    xgboost_rs::DMatrix::from_csr(&indptr, &indices, &data, Some(x.n_cols))
        .map_err(|e| Error::Model(format!("building XGBoost matrix: {e}")))
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
    pub fn from_booster(booster: xgboost_rs::Booster) -> XgbModel {
        XgbModel { booster }
    }

    pub fn load(path: &Path) -> Result<XgbModel> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.into(), source: e })?;
        // Check it is JSON first: XGBoost's own loader aborts noisily on garbage.
        serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| Error::Json {
            path: path.into(),
            what: "an XGBoost JSON model",
            message: e.to_string(),
        })?;
        let booster = xgboost_rs::Booster::load(path)
            .map_err(|e| Error::Invalid { path: path.into(), message: format!("XGBoost cannot load this model: {e}") })?;
        Ok(XgbModel { booster })
    }

    pub fn booster(&self) -> &xgboost_rs::Booster {
        &self.booster
    }

    /// Probabilities of class 1. Regression objectives are clipped to [0, 1].
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f64>> {
        if x.n_rows == 0 {
            return Ok(Vec::new());
        }
        let d = dmatrix(x)?;
        let p = self.booster.predict(&d).map_err(|e| Error::Model(format!("XGBoost prediction failed: {e}")))?;
        Ok(p.into_iter().map(|v| f64::from(v).clamp(0.0, 1.0)).collect())
    }

    /// Mean split gain per feature (XGBoost's `importance_type="gain"`), by feature index.
    pub fn gain_importance(&self, n_features: usize) -> Result<Vec<f64>> {
        let dump = self.booster.dump_model(true, None).map_err(|e| Error::Model(format!("XGBoost dump failed: {e}")))?;
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

/// Either kind of trained model.
#[derive(Debug)]
pub enum Model {
    Xgboost(XgbModel),
    Logistic(LogisticModel),
}

impl Model {
    pub fn load(kind: ModelKind, path: &Path) -> Result<Model> {
        if !path.is_file() {
            return Err(Error::Io { path: path.into(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found") });
        }
        Ok(match kind {
            ModelKind::Xgboost => Model::Xgboost(XgbModel::load(path)?),
            ModelKind::Logistic => {
                let m: LogisticModel = crate::artifacts::read_json(path, "a logistic regression model")?;
                if m.coefficients.len() != m.features.len() {
                    return Err(Error::Invalid {
                        path: path.into(),
                        message: format!("{} coefficients for {} features", m.coefficients.len(), m.features.len()),
                    });
                }
                Model::Logistic(m)
            }
        })
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            Model::Xgboost(_) => ModelKind::Xgboost,
            Model::Logistic(_) => ModelKind::Logistic,
        }
    }

    pub fn predict(&self, x: &Matrix) -> Result<Vec<f64>> {
        match self {
            Model::Xgboost(m) => m.predict(x),
            Model::Logistic(m) => {
                if m.coefficients.len() != x.n_cols {
                    return Err(Error::Model(format!("logistic model expects {} features, got {}", m.coefficients.len(), x.n_cols)));
                }
                Ok((0..x.n_rows).map(|i| m.predict_row(x.row(i))).collect())
            }
        }
    }
}
