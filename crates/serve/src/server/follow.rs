//! Serving a registry alias: loading what a source names, fetching a version's files, and
//! following the alias to new versions (a registry outage keeps the last good model serving).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Loaded, ModelSource, Server};
use crate::batch::ModelDir;
use crate::error::{Error, Result};

/// Load what `source` names: a directory as it is; a registry alias's version from the store
/// (`MLFLOW_TRACKING_URI`), fetched into `cache` when its files are not local.
pub fn load(source: &ModelSource, store: Option<&dyn leadflow_mlflow::Store>, cache: &Path) -> Result<Loaded> {
    match source {
        ModelSource::Dir(d) => {
            let model = ModelDir::open(d)?;
            Ok(Loaded { version: model.spec.version, run_id: model.spec.run_id.clone(), model, source: d.display().to_string() })
        }
        ModelSource::Registry { name, alias } => {
            let store = store.ok_or_else(|| Error::Serve("a registry model needs a tracking store".into()))?;
            let v = leadflow_mlflow::registry::version_by_alias(store, name, alias)?;
            let dir = fetch(store, &v.source, cache, v.version)?;
            let model = ModelDir::open(&dir)?;
            Ok(Loaded { model, version: Some(v.version), run_id: Some(v.run_id.clone()), source: v.source })
        }
    }
}

/// The local folder of `source`: the directory itself, or the aliased version's model folder
/// (in place when local, else its files fetched into `cache`).
pub fn model_dir_of(source: &ModelSource, store: Option<&dyn leadflow_mlflow::Store>, cache: &Path) -> Result<PathBuf> {
    match source {
        ModelSource::Dir(d) => Ok(d.clone()),
        ModelSource::Registry { name, alias } => {
            let store = store.ok_or_else(|| Error::Serve("a registry model needs a tracking store".into()))?;
            let v = leadflow_mlflow::registry::version_by_alias(store, name, alias)?;
            fetch(store, &v.source, cache, v.version)
        }
    }
}

/// The version's model folder: used in place when local, else its files fetched into `cache`.
fn fetch(store: &dyn leadflow_mlflow::Store, uri: &str, cache: &Path, version: u64) -> Result<PathBuf> {
    let local = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
    if local.is_absolute() && local.join(leadflow_core::artifacts::MODEL_SPEC.name).is_file() {
        return Ok(local);
    }
    let dest = cache.join(format!("v{version}"));
    std::fs::create_dir_all(&dest).map_err(|e| Error::Write { path: dest.clone(), source: e.into() })?;
    store.download(uri, &[leadflow_core::artifacts::MODEL_SPEC.name], &dest)?;
    let spec: leadflow_core::results::DeployedModel =
        leadflow_core::artifacts::read_json(&dest.join(leadflow_core::artifacts::MODEL_SPEC.name), "a model description")?;
    store.download(
        uri,
        &[spec.file.as_str(), leadflow_core::artifacts::FEATURE_SPEC.name, leadflow_core::artifacts::PREPROCESSING.name],
        &dest,
    )?;
    Ok(dest)
}

/// Poll the alias and swap in new versions, until the process ends.
pub(super) async fn follow(server: Arc<Server>, store: Arc<dyn leadflow_mlflow::Store>, cache: PathBuf) {
    let ModelSource::Registry { name, alias } = server.opts.source.clone() else { return };
    let mut refused: Option<u64> = None;
    loop {
        tokio::time::sleep(server.opts.poll).await;
        let (st, n, a) = (store.clone(), name.clone(), alias.clone());
        let holder = tokio::task::spawn_blocking(move || st.get_by_alias(&n, &a)).await;
        let v = match holder {
            Ok(Ok(Some(v))) => v,
            Ok(Ok(None)) => continue,
            Ok(Err(e)) => {
                server.metrics.registry_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("checking {name}@{alias}: {e:#}; still serving v{:?}", server.version());
                continue;
            }
            Err(_) => continue,
        };
        if Some(v.version) == server.version() || Some(v.version) == refused {
            continue;
        }
        let (st, src, c) = (store.clone(), server.opts.source.clone(), cache.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&src, Some(st.as_ref()), &c)).await;
        match loaded {
            Ok(Ok(l)) if l.version == Some(v.version) => {
                tracing::info!("{name}@{alias} moved to v{}: swapped in (was v{:?})", v.version, server.version());
                server.swap(l);
                refused = None;
            }
            Ok(Ok(_)) => {} // moved again meanwhile: the next poll loads the newest
            Ok(Err(e)) => {
                tracing::warn!(
                    "{name}@{alias} moved to v{}, which failed to load: {e:#}; still serving v{:?}",
                    v.version,
                    server.version()
                );
                server.metrics.refused_versions.fetch_add(1, Ordering::Relaxed);
                refused = Some(v.version);
            }
            Err(_) => {}
        }
    }
}
