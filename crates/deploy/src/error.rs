use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("validation failed: {0}")]
    Validation(String),
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(transparent)]
    Core(#[from] leadflow_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
