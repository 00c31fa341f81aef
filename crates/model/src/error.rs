use std::path::PathBuf;

/// Errors of loading, fitting and scoring models. XGBoost's own message stays the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An XGBoost call failed; `what` says which (building the matrix, fitting, predicting, ...).
    #[error("XGBoost: {what}")]
    Xgboost {
        what: &'static str,
        #[source]
        source: xgboost_rs::XGBError,
    },
    /// A model file XGBoost cannot load, or a path it cannot save to.
    #[error("{path}: XGBoost cannot {what} this model")]
    XgboostFile {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: xgboost_rs::XGBError,
    },
    /// Rows with another number of features than the model was fitted on.
    #[error("the {kind} model expects {expected} features, got {got}")]
    Width { kind: &'static str, expected: usize, got: usize },
    /// Asked of a model that cannot do it (e.g. explanations of a multiclass model).
    #[error("not available: {0}")]
    Unsupported(&'static str),
    #[error(transparent)]
    Core(#[from] leadflow_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An XGBoost call's error, named.
pub(crate) fn xgb(what: &'static str) -> impl FnOnce(xgboost_rs::XGBError) -> Error {
    move |source| Error::Xgboost { what, source }
}
