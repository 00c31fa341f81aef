use std::path::PathBuf;

/// Errors of the shared contract: params, artifacts, CSV structure, models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS error is the source, shown once when the chain is printed ([`chain`], `{:#}`).
    #[error("{path}")]
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
    Csv(#[from] leadflow_csv::CsvError),
    #[error("model: {0}")]
    Model(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its sources, `: `-separated, each shown once (a transparent wrapper repeats its
/// inner error's text; that repetition is skipped). Use it wherever an error becomes a string.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
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
