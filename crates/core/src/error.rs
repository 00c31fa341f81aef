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
    /// Parse error of a params file: toml's error (line, column and a caret) is the source.
    #[error("params file {path}: not valid")]
    Toml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A JSON file that does not read as `what`; serde_json's error (line, column) is the source.
    #[error("{path}: not valid JSON for {what}")]
    Json {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: cannot write {what} as JSON")]
    JsonWrite {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("missing artifact {path} (written by the `{stage}` stage; run that stage first)")]
    MissingArtifact { path: PathBuf, stage: &'static str },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Csv(#[from] leadflow_csv::CsvError),
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
