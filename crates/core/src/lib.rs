//! leadflow-core: the contract the stages meet on. It needs neither XGBoost (`leadflow-model`)
//! nor an HTTP client (`leadflow-mlflow`).
//!
//! - [`artifacts`]: the name, owner and format of every file under `artifacts/`, and atomic
//!   stage directories.
//! - [`csv_shape`]: structural check of CSV inputs (field counts, header, quotes, encoding).
//! - [`params`]: `params.toml`, validated once; [`dataset`]: the table's schema, processing and
//!   validation rules, and the built-in presets (lead).
//! - [`split`]: the stratified train/test split and CV folds.
//! - [`meta`]: run metadata written by every stage.
//! - [`features`]: how gold rows become features; [`model`]: model kinds, the feature matrix and
//!   the logistic model's saved form.
//! - [`metrics`]: classification metrics shared by train and evaluate.
//! - [`results`]: typed results the stages hand each other; [`names`]: registry names.
//! - [`fingerprint`]: what a stage's result depends on, and the up-to-date check.

pub mod artifacts;
pub mod cli;
pub mod csv_shape;
pub mod dataset;
pub mod error;
pub mod features;
pub mod fingerprint;
pub mod hash;
pub mod logging;
pub mod meta;
pub mod metrics;
pub mod model;
pub mod names;
pub mod params;
pub mod results;
pub mod split;
pub mod table;

pub use error::{Error, Result};
pub use params::Params;
