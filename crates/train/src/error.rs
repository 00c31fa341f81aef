use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Gold { path: PathBuf, message: String },
    /// polars could not read the gold CSV; its error is the cause.
    #[error("{path}: cannot read the gold data as CSV")]
    GoldCsv {
        path: PathBuf,
        #[source]
        source: polars::prelude::PolarsError,
    },
    #[error("{path}: the target `{target}` has only one class ({only}); rows of both classes are needed")]
    OneClass { path: PathBuf, target: String, only: String },
    #[error("{model}: {folds}-fold cross-validation needs at least {folds} training rows of each class, found {found} of class {class} (lower train.{model}.cv_folds or add data)")]
    TooFewRows { model: &'static str, folds: usize, class: u8, found: usize },
    #[error("{model}: {message}")]
    Fit { model: &'static str, message: String },
    /// Fitting failed in a library (XGBoost through leadflow-model, linfa, ndarray): its error
    /// is the source.
    #[error("{model}: fitting failed")]
    Fitting {
        model: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Scoring a fitted model failed (leadflow-model's error).
    #[error(transparent)]
    Model(#[from] leadflow_model::Error),
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Core(#[from] leadflow_core::Error),
    #[error(transparent)]
    Mlflow(#[from] leadflow_mlflow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
