//! Helpers shared by the integration tests of the leadflow crates. Never a normal dependency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use leadflow_core::Params;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The real public dataset: `LEADFLOW_REAL_DATA`, else `../shared/data/raw_data.csv` beside the
/// project root. `None` (the caller skips, with a note) when neither exists.
pub fn real_data() -> Option<PathBuf> {
    let p = std::env::var_os("LEADFLOW_REAL_DATA").map(PathBuf::from).unwrap_or_else(|| repo_root().join("../shared/data/raw_data.csv"));
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("real dataset not found ({}): skipping", p.display());
        None
    }
}

/// The committed synthetic sample (the pipeline's default input).
pub fn committed_sample() -> PathBuf {
    repo_root().join("data/sample/raw_data.csv")
}

/// Small search budgets for quick tests on generated data.
pub fn quick_params() -> Params {
    let mut p = Params::default();
    p.train.xgboost.n_candidates = 3;
    p.train.xgboost.cv_folds = 3;
    p.train.xgboost.n_estimators = 30;
    p.train.logistic.n_candidates = 3;
    p
}

/// The TOML of [`quick_params`] (for binaries).
pub fn quick_params_toml() -> String {
    let p = quick_params();
    format!(
        "[train.xgboost]\nn_candidates = {}\ncv_folds = {}\nn_estimators = {}\n[train.logistic]\nn_candidates = {}\n",
        p.train.xgboost.n_candidates, p.train.xgboost.cv_folds, p.train.xgboost.n_estimators, p.train.logistic.n_candidates
    )
}

/// Content hash of every file under `dir` (to prove nothing changed).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(h) = leadflow_core::hash::sha256_file(&p) {
                out.insert(p, h);
            }
        }
    }
    out
}
