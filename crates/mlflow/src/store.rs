//! The store a pipeline uses: the embedded SQLite or file store or an MLflow server, as one trait object.

use crate::error::Result;
use crate::registry::Registry;
use crate::rest::RestStore;
use crate::tracking::{FileStore, StoreLocation, Tracker};

/// A tracking store that is also a model registry (both the file store and an MLflow server).
pub trait Store: Tracker + Registry {}
impl<T: Tracker + Registry> Store for T {}

/// Open the store `MLFLOW_TRACKING_URI` names (default: the SQLite store `./mlruns/mlflow.db`).
pub fn open_store(loc: &StoreLocation) -> Result<Box<dyn Store>> {
    match loc {
        StoreLocation::Local(p) => Ok(Box::new(FileStore::open(p)?)),
        StoreLocation::Sqlite(p) => Ok(Box::new(crate::sqlite::SqliteStore::open(p)?)),
        StoreLocation::Remote(url) => Ok(Box::new(RestStore::new(url))),
    }
}

/// Open a store that must already exist (for commands that only read): a local store that is not
/// there is an error naming where it was looked for, and nothing is created.
pub fn open_existing_store(loc: &StoreLocation) -> Result<Box<dyn Store>> {
    if let Some(p) = loc.local_path() {
        if !p.exists() {
            return Err(crate::Error::Tracking(format!(
                "no tracking store at {}: run the pipeline first, or name the store with --tracking-uri or MLFLOW_TRACKING_URI",
                p.display()
            )));
        }
    }
    open_store(loc)
}
