use std::path::PathBuf;

/// Errors of the shared contract: params, artifacts, CSV structure, models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("params file {path}: {message}")]
    Params { path: PathBuf, message: String },
    #[error("params: `{key}` {message}")]
    ParamValue { key: String, message: String },
    #[error("{path}: not valid JSON for {what}: {message}")]
    Json { path: PathBuf, what: &'static str, message: String },
    #[error("missing artifact {path} (written by the `{stage}` stage; run that stage first)")]
    MissingArtifact { path: PathBuf, stage: &'static str },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Shape(#[from] crate::csv_shape::ShapeError),
    #[error("model: {0}")]
    Model(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an `io::Error`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.into(), source })
    }
}
