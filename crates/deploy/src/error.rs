use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Compare-and-swap refused: the registry moved after evaluate decided.
    #[error(
        "not promoted: @{alias} is now held by {} but evaluate compared with {}; evaluate must re-run against the new holder",
        now.map(|v| format!("v{v}")).unwrap_or_else(|| "no version".into()),
        expected.map(|v| format!("v{v}")).unwrap_or_else(|| "no holder".into())
    )]
    HolderChanged { alias: String, expected: Option<u64>, now: Option<u64> },
    #[error(transparent)]
    Core(#[from] leadflow_core::Error),
    #[error(transparent)]
    Model(#[from] leadflow_model::Error),
    #[error(transparent)]
    Mlflow(#[from] leadflow_mlflow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
