use std::path::PathBuf;

/// Errors of the tracking store and the model registry, local or on an MLflow server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS error is the source, shown once when the chain is printed ([`chain`], `{:#}`).
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The embedded SQLite store (the database file is named; SQLite's message is the source).
    #[error("tracking store {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("tracking store: {0}")]
    Tracking(String),
    #[error("model registry: {0}")]
    Registry(String),
    /// The server could not be reached or kept failing (transport errors, HTTP 5xx after the
    /// retries).
    #[error("MLflow server {endpoint}: {message}")]
    Remote { endpoint: String, message: String },
    /// The server refused the request: its HTTP status and MLflow's own error code
    /// (`RESOURCE_DOES_NOT_EXIST`, `INVALID_PARAMETER_VALUE`, ...), which callers branch on.
    #[error("MLflow server {endpoint}: HTTP {status} {}: {message}", code.as_deref().unwrap_or(""))]
    Api { endpoint: String, status: u16, code: Option<String>, message: String },
    /// The server answered something that is not the JSON its API promises.
    #[error("MLflow server {endpoint}: answer is not JSON")]
    BadAnswer {
        endpoint: String,
        #[source]
        source: serde_json::Error,
    },
    /// An artifact or file-format error from the contract crate (atomic writes, JSON).
    #[error(transparent)]
    Contract(#[from] leadflow_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// MLflow's error code of a refused request (`Error::Api`), if any.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Attach a path to an `io::Error`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.into(), source })
    }
}

/// `leadflow_core::artifacts::write_atomic` with this crate's error.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    Ok(leadflow_core::artifacts::write_atomic(path, bytes)?)
}
