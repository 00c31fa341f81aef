use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("validation failed: {0}")]
    Validation(String),
    /// The scoring server could not start or serve.
    #[error("serve: {0}")]
    Serve(String),
    #[error("serve: cannot listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Core(#[from] leadflow_core::Error),
    #[error(transparent)]
    Model(#[from] leadflow_model::Error),
    #[error(transparent)]
    Mlflow(#[from] leadflow_mlflow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
