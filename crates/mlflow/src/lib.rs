//! leadflow-mlflow: MLflow-compatible experiment tracking and model registry — the embedded
//! SQLite store (MLflow's own schema, one transaction per write; the default), the file store
//! (MLflow's file layout, file lock, atomic writes) and the REST client for an MLflow server —
//! behind the [`tracking::Tracker`] and [`registry::Registry`] traits, with its own [`Error`].
//! The only crate besides `orchestrator` that speaks HTTP.
//!
//! Module order, no circle: `error`, `lock`, `yaml` <- `tracking` (runs, the file store) <-
//! `registry` (versions, aliases, compare-and-swap promotion; also on the file store) <- `rest`
//! (both traits over HTTP), `sqlite` (both traits on SQLite) <- `store` (`open_store` picks one).

pub mod error;
pub mod lock;
pub mod registry;
pub mod rest;
pub mod sqlite;
pub mod store;
pub mod tracking;
mod yaml;

pub use error::{Error, Result};
pub use store::{open_existing_store, open_store, Store};
