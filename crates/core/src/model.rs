//! Model kinds, the feature matrix and the logistic model's saved form — the parts of the model
//! contract that need no XGBoost. Loading and predicting live in `leadflow-model`. Every
//! probability is P(positive class) (the lead: P(converted = 1)).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Xgboost,
    Logistic,
    /// XGBoost gradient-boosted trees with early stopping.
    Boosted,
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
    pub const ALL: [ModelKind; 3] = [ModelKind::Xgboost, ModelKind::Logistic, ModelKind::Boosted];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Xgboost => "xgboost",
            ModelKind::Logistic => "logistic",
            ModelKind::Boosted => "boosted",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ModelKind::Xgboost => "XGBoost random forest",
            ModelKind::Logistic => "Logistic regression",
            ModelKind::Boosted => "XGBoost boosted trees",
        }
    }

    /// The evaluate-stage confusion heat map of this model.
    pub fn confusion_png(self) -> crate::artifacts::Artifact {
        match self {
            ModelKind::Xgboost => crate::artifacts::CONFUSION_XGB_PNG,
            ModelKind::Logistic => crate::artifacts::CONFUSION_LR_PNG,
            ModelKind::Boosted => crate::artifacts::CONFUSION_BOOSTED_PNG,
        }
    }

    /// The evaluate-stage classification report of this model.
    pub fn report_txt(self) -> crate::artifacts::Artifact {
        match self {
            ModelKind::Xgboost => crate::artifacts::CLASS_REPORT_XGB,
            ModelKind::Logistic => crate::artifacts::CLASS_REPORT_LR,
            ModelKind::Boosted => crate::artifacts::CLASS_REPORT_BOOSTED,
        }
    }

    /// How to load the saved model file `file` outside leadflow (the model card says it).
    pub fn how_to_load(self, file: &str) -> String {
        match self {
            ModelKind::Xgboost | ModelKind::Boosted => {
                format!("Python: xgboost.Booster(model_file=\"{file}\") (XGBoost's JSON model format)")
            }
            ModelKind::Logistic => format!("P = sigmoid(intercept + coefficients · features), from {file} (plain JSON)"),
        }
    }

    /// The train-stage artifact holding this model.
    pub fn artifact(self) -> crate::artifacts::Artifact {
        match self {
            ModelKind::Xgboost => crate::artifacts::XGB_MODEL,
            ModelKind::Logistic => crate::artifacts::LR_MODEL,
            ModelKind::Boosted => crate::artifacts::BOOSTED_MODEL,
        }
    }

    /// The artifacts that exist only when this kind is trained: its model file, its confusion
    /// heat map and its classification report.
    pub fn artifacts(self) -> [crate::artifacts::Artifact; 3] {
        [self.artifact(), self.confusion_png(), self.report_txt()]
    }

    /// The kind whose training writes `a`, if `a` belongs to one kind.
    pub fn owning(a: &crate::artifacts::Artifact) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.artifacts().contains(a))
    }

    /// Saved in XGBoost's JSON model format (loaded by XGBoost, explained by TreeSHAP).
    pub fn is_xgboost(self) -> bool {
        matches!(self, ModelKind::Xgboost | ModelKind::Boosted)
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

/// A multinomial logistic regression (more than two classes) stored as plain numbers:
/// P(k | x) = softmax_k(intercepts[k] + coefficients[k] · x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultinomialModel {
    pub features: Vec<String>,
    /// One row of coefficients per class.
    pub coefficients: Vec<Vec<f64>>,
    pub intercepts: Vec<f64>,
    pub classes: Vec<u8>,
    pub params: serde_json::Value,
}

impl MultinomialModel {
    /// The probability of each class, appended to `out`.
    pub fn predict_row(&self, x: &[f64], out: &mut Vec<f64>) {
        let z: Vec<f64> =
            self.coefficients.iter().zip(&self.intercepts).map(|(w, b)| b + w.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()).collect();
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| v / sum));
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
