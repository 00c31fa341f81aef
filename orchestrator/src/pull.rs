//! DVC-style pinned raw data (`leadflow pull`): a lock file names the public URL, size and
//! sha256 of the raw file; `pull` downloads it, verifies both, and only then renames it into
//! place. It lives here, not in the data stage, so the data stage links no HTTP client.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

pub const DEFAULT_LOCK: &str = "data/raw/raw_data.csv.lock";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Where the file is published.
    pub url: String,
    /// File name, relative to the lock file's folder.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl Lock {
    pub fn load(path: &Path) -> Result<Lock> {
        Ok(leadflow_core::artifacts::read_json(path, "a data lock file")?)
    }

    /// Where the pinned file lives (beside the lock file).
    pub fn target(&self, lock_path: &Path) -> PathBuf {
        lock_path.parent().unwrap_or(Path::new(".")).join(&self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    AlreadyPresent(PathBuf),
    Downloaded(PathBuf),
}

/// Download (unless already present and intact) and verify the pinned file.
/// `url_override` points at a mirror (or a local test server); the checksum still applies.
pub fn pull(lock_path: &Path, url_override: Option<&str>) -> Result<PullOutcome> {
    let lock = Lock::load(lock_path)?;
    let target = lock.target(lock_path);
    if target.is_file() && verify(&target, &lock).is_ok() {
        return Ok(PullOutcome::AlreadyPresent(target));
    }
    let url = url_override.unwrap_or(&lock.url);
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::Pull(format!("{}: {e}", dir.display())))?;
    // Temporary file beside the target: removed on any failure, renamed only when verified.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::Pull(format!("{}: {e}", dir.display())))?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(15))
        .timeout_read(std::time::Duration::from_secs(60))
        .build();
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, _) => Error::Pull(format!("{url}: server answered HTTP {code}")),
        ureq::Error::Transport(t) => Error::Pull(format!("{url}: cannot download ({t}); check the network or use --url for a mirror")),
    })?;
    let mut reader = resp.into_reader().take(lock.size + 1);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::Pull(format!("{url}: download interrupted: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| Error::Pull(format!("{}: {e}", target.display())))?;
    }
    if total != lock.size {
        return Err(Error::Pull(format!(
            "{url}: size mismatch: expected {} bytes, got {}{} (nothing written)",
            lock.size,
            total,
            if total > lock.size { "+" } else { "" }
        )));
    }
    let sha = to_hex(&hasher.finalize());
    if sha != lock.sha256 {
        return Err(Error::Pull(format!("{url}: checksum mismatch: expected sha256 {}, got {sha} (nothing written)", lock.sha256)));
    }
    tmp.as_file().sync_all().map_err(|e| Error::Pull(format!("{}: {e}", target.display())))?;
    leadflow_core::artifacts::persist(tmp, &target)?;
    Ok(PullOutcome::Downloaded(target))
}

/// Check a local file against the lock's size and checksum.
pub fn verify(path: &Path, lock: &Lock) -> Result<()> {
    let size = std::fs::metadata(path).map_err(|e| Error::Pull(format!("{}: {e}", path.display())))?.len();
    if size != lock.size {
        return Err(Error::Pull(format!("{}: expected {} bytes, found {size}", path.display(), lock.size)));
    }
    let sha = leadflow_core::hash::sha256_file(path)?;
    if sha != lock.sha256 {
        return Err(Error::Pull(format!("{}: expected sha256 {}, found {sha}", path.display(), lock.sha256)));
    }
    Ok(())
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
