use std::path::PathBuf;

/// Everything that can go wrong in the data stage; each message names the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: file not found (pass --raw, set LEADFLOW_RAW, or run `orchestrator pull` for the pinned public file)")]
    MissingFile { path: PathBuf },
    #[error("{path}: file is empty; expected a CSV header and rows")]
    EmptyFile { path: PathBuf },
    #[error("{path}: no data rows (only a header); expected at least one lead")]
    NoRows { path: PathBuf },
    #[error("{path}: required column `{column}` is missing (found: {found})")]
    MissingColumn { path: PathBuf, column: String, found: String },
    #[error("{path}: line {line}, column `{column}`: expected a number, found {value:?}")]
    NotNumeric { path: PathBuf, line: u64, column: String, value: String },
    #[error("{path}: line {line}, column `date_part`: expected a date YYYY-MM-DD, found {value:?}")]
    BadDate { path: PathBuf, line: u64, value: String },
    #[error("{path}: line {line}, column `lead_indicator`: expected 0, 1 or empty, found {value:?}")]
    BadTarget { path: PathBuf, line: u64, value: String },
    #[error("{path}: every row was filtered out by {step}; {hint}")]
    AllFiltered { path: PathBuf, step: &'static str, hint: String },
    #[error("{path}: cannot read as CSV: {message}")]
    Csv { path: PathBuf, message: String },
    /// polars refused the file or an operation on it; its error is the cause.
    #[error("{path}: cannot read as CSV")]
    Polars {
        path: PathBuf,
        #[source]
        source: polars::prelude::PolarsError,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Core(#[from] leadflow_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
