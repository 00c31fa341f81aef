//! An exclusive advisory file lock (the file store's and the registry's mutations hold it).

use std::fs::File;
use std::path::Path;

use crate::error::{IoContext, Result};

/// An exclusive advisory lock, released when dropped.
#[derive(Debug)]
pub struct FileLock(#[allow(dead_code)] File);

pub fn lock_file(path: &Path) -> Result<FileLock> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).at(path)?;
    f.lock().at(path)?;
    Ok(FileLock(f))
}
