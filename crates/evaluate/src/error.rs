use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("quality gate failed: {failed} (the report was still written; see {})", report.display())]
    Gate {
        /// The model and the checks it failed.
        failed: String,
        /// Where the stage wrote its report.
        report: PathBuf,
    },
    #[error("the train stage produced no model to evaluate ({path})")]
    NoModels { path: PathBuf },
    /// plotters' error (drawing, fonts, encoding the PNG) is the source.
    #[error("plotting {path}")]
    Plot {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
