use std::path::PathBuf;

/// Everything that can go wrong in the data stage; each message names the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: file not found (pass --raw, set LEADFLOW_RAW, or run `leadflow pull` for the pinned public file)")]
    MissingFile { path: PathBuf },
    #[error("{path}: file is empty; expected a CSV header and rows")]
    EmptyFile { path: PathBuf },
    #[error("{path}: no data rows (only a header); expected at least one row")]
    NoRows { path: PathBuf },
    #[error("{path}: the params' dataset does not match this table: missing column(s) {} (columns not named by params: {}; found: {found})", .missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "), if .unexpected.is_empty() { "none" } else { .unexpected.as_str() })]
    MissingColumns { path: PathBuf, missing: Vec<String>, unexpected: String, found: String },
    /// Every type and rule violation found, at once; nothing was written.
    #[error("{path}: {}", if .problems.len() == 1 { .problems[0].clone() } else { format!("{} problems, nothing written:\n  - {}", .problems.len(), .problems.join("\n  - ")) })]
    Invalid { path: PathBuf, problems: Vec<String> },
    #[error("{path}: every row was filtered out by {step}; {hint}")]
    AllFiltered { path: PathBuf, step: &'static str, hint: String },
    #[error("{path}: cannot read as CSV: {message}")]
    Csv { path: PathBuf, message: String },
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
