//! leadflow-core: the contract the stages meet on. It needs neither XGBoost (`leadflow-model`)
//! nor an HTTP client (`leadflow-mlflow`). Beside it: CSV reading (`leadflow-csv`), metrics
//! (`leadflow-metrics`), the fitted encoder and tables to score (`leadflow-features`), and what
//! binaries share on the command line (`leadflow-cli`).
//!
//! - [`artifacts`]: the name, owner and format of every file under `artifacts/`, and atomic
//!   stage directories.
//! - [`params`]: `params.toml`, validated once; [`dataset`]: the table's schema, processing and
//!   validation rules, and the built-in presets (lead).
//! - [`split`]: the stratified train/test split and CV folds.
//! - [`meta`]: run metadata written by every stage.
//! - [`calibration`]: calibration maps of probabilities, as saved and applied.
//! - [`model`]: model kinds, the feature matrix and the logistic model's saved form.
//! - [`results`]: typed results the stages hand each other; [`names`]: registry names.
//! - [`fingerprint`]: what a stage's result depends on, and the up-to-date check.

pub mod artifacts;
pub mod calibration;
pub mod dataset;
pub mod error;
pub mod fingerprint;
pub mod hash;
pub mod meta;
pub mod model;
pub mod names;
pub mod params;
pub mod results;
pub mod split;

pub use error::{Error, Result};
pub use params::Params;
