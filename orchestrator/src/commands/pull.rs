//! `leadflow pull`: the pinned public raw file, verified.

use std::path::Path;

use crate::pull::PullOutcome;

pub fn pull(lock: &Path, url: Option<&str>) -> anyhow::Result<()> {
    match crate::pull::pull(lock, url)? {
        PullOutcome::AlreadyPresent(p) => super::out(format!("{} is present and matches {}\n", p.display(), lock.display()))?,
        PullOutcome::Downloaded(p) => super::out(format!("downloaded and verified {}\n", p.display()))?,
    }
    Ok(())
}
