//! Helpers shared by the integration tests of the leadflow crates. Never a normal dependency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use leadflow_core::Params;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Environment variable naming the file where skipped tests are listed (`ci.sh` sets it and
/// prints the list at the end).
pub const SKIP_LOG_ENV: &str = "LEADFLOW_SKIP_LOG";

/// A test's prerequisite is missing. Under CI (`CI=true`) the test fails, naming what is missing;
/// elsewhere the skip is printed and appended to `$LEADFLOW_SKIP_LOG`, which `ci.sh` prints after
/// the tests, so a skip is never read as a pass. The caller returns after this.
pub fn skip(missing: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: prerequisite missing under CI (CI=true), so this test cannot pass by skipping: {missing}");
    }
    eprintln!("SKIPPED {test}: {missing}");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{test}: {missing}");
        }
    }
}

/// The real public dataset: `LEADFLOW_REAL_DATA`, else `../shared/data/raw_data.csv` beside the
/// project root, else `data/raw/raw_data.csv` (after `leadflow pull`). When none exists the
/// test is skipped through [`skip`] (a failure under CI).
pub fn real_data() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("LEADFLOW_REAL_DATA") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![repo_root().join("../shared/data/raw_data.csv"), repo_root().join("data/raw/raw_data.csv")],
    };
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Some(p.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    skip(&format!("the real dataset (tried {}; set LEADFLOW_REAL_DATA or run `leadflow pull`)", tried.join(", ")));
    None
}

/// An executable by name on PATH, as a full path.
/// A Python that imports `module` (`LEADFLOW_PYTHON`, set up by ci.sh in target/py, else
/// `python3`), or a skip (which fails under CI).
pub fn python_with(module: &str) -> Option<String> {
    let py = std::env::var("LEADFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        skip(&format!("a Python with {module} (set LEADFLOW_PYTHON; ./ci.sh sets up target/py)"));
        None
    }
}

pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
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

/// [`quick_params`] training the boosted trees only, on a small budget.
pub fn boosted_only_params() -> Params {
    let mut p = quick_params();
    p.train.xgboost.enabled = false;
    p.train.logistic.enabled = false;
    p.train.boosted.enabled = true;
    p.train.boosted.n_candidates = 2;
    p.train.boosted.cv_folds = 3;
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

/// A start barrier for processes that must begin at the same instant: each command runs
/// `program` only once `go` exists; [`Barrier::release`] creates it.
pub struct Barrier {
    go: PathBuf,
}

impl Barrier {
    pub fn new(dir: &Path) -> Barrier {
        Barrier { go: dir.join("go") }
    }

    /// A command that waits at the barrier, then execs `program` (add its arguments after).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", "while [ ! -e \"$1\" ]; do sleep 0.005; done; shift; exec \"$@\"", "sh"]).arg(&self.go).arg(program);
        c
    }

    /// Let every waiting process go, after giving them time to reach the barrier.
    pub fn release(&self) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::write(&self.go, b"").expect("creating the barrier's go file");
    }
}

/// Pretend evaluate chose the other model of this run (a different run id), promoted against
/// the registry's holders as they are now, as evaluate would have read them.
pub fn choose_other_model(layout: &leadflow_core::artifacts::Layout, store: &dyn leadflow_mlflow::registry::Registry) {
    use leadflow_core::artifacts as art;
    let path = layout.path(&art::EVALUATION);
    let mut ev: leadflow_core::results::Evaluation = art::read_json(&path, "evaluation").expect("evaluation.json");
    let results: leadflow_core::results::ModelResults =
        art::read_json(&layout.path(&art::MODEL_RESULTS), "results").expect("model_results.json");
    let other = results.models.keys().copied().find(|k| *k != ev.selected).expect("a second model");
    ev.selected = other;
    ev.selected_run_id = results.models[&other].run_id.clone();
    ev.promote = true;
    let seen = leadflow_mlflow::registry::read_holders(store, "lead_model", &["champion", "challenger"]).expect("registry holders");
    ev.holders = seen.into_iter().map(|(a, v)| (a, v.map(|v| v.version))).collect();
    art::write_json(&path, &ev).expect("write evaluation.json");
}

/// A Parquet copy of `csv` as an analyst makes one: pandas `read_csv(csv{read_args})` then
/// `to_parquet` (pyarrow) with row groups of `group_rows` rows; `None` (a skip, which fails
/// under CI) without a Python that has pyarrow. `prepare` is Python run on the frame `d` first.
pub fn parquet_copy(csv: &Path, out: &Path, read_args: &str, prepare: &str, group_rows: usize) -> Option<()> {
    let py = python_with("pyarrow")?;
    let code = format!(
        "import pandas as pd\nd = pd.read_csv({:?}{read_args})\n{prepare}\nd.to_parquet({:?}, row_group_size={group_rows})",
        csv.display().to_string(),
        out.display().to_string()
    );
    let o = std::process::Command::new(py).args(["-c", &code]).output().ok()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(())
}
