//! leadflow-core: the contract the stages meet on.
//!
//! - [`artifacts`]: the name, owner and format of every file under `artifacts/`, and atomic
//!   stage directories.
//! - [`csv_shape`]: structural check of CSV inputs (field counts, header, quotes, encoding).
//! - [`params`]: `params.toml`, validated once.
//! - [`meta`]: run metadata written by every stage.
//! - [`features`] and [`model`]: how gold rows become features and how saved models predict.
//! - [`metrics`]: classification metrics shared by train and evaluate.
//! - [`tracking`] and [`registry`]: MLflow-compatible experiment tracking and model registry.

pub mod artifacts;
pub mod cli;
pub mod csv_shape;
pub mod error;
pub mod features;
pub mod fingerprint;
pub mod hash;
pub mod logging;
pub mod meta;
pub mod metrics;
pub mod model;
pub mod params;
pub mod registry;
pub mod rest;
pub mod results;
pub mod schema;
pub mod table;
pub mod tracking;
mod yaml;

pub use error::{Error, Result};
pub use params::Params;
