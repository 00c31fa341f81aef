//! The artifact contract: every file a stage reads or writes under `artifacts/`, in one place.
//!
//! Each stage owns one directory (`artifacts/<stage>/`) that it replaces atomically with
//! [`StageDir`]; the deploy stage also owns `artifacts/model/`. Stages never spell a path by hand:
//! they ask [`Layout::path`] for an [`Artifact`].

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

pub const DEFAULT_ARTIFACTS_DIR: &str = "artifacts";

/// The four pipeline stages, in run order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageId {
    Data,
    Train,
    Evaluate,
    Deploy,
}

impl StageId {
    pub const ALL: [StageId; 4] = [StageId::Data, StageId::Train, StageId::Evaluate, StageId::Deploy];

    pub fn name(self) -> &'static str {
        match self {
            StageId::Data => "data",
            StageId::Train => "train",
            StageId::Evaluate => "evaluate",
            StageId::Deploy => "deploy",
        }
    }

    pub fn parse(s: &str) -> Option<StageId> {
        StageId::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Markdown,
    Png,
    Text,
}

/// One named output of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Artifact {
    /// Directory (under the artifacts root) that holds it.
    pub dir: &'static str,
    /// The stage that writes it.
    pub stage: StageId,
    pub name: &'static str,
    pub format: Format,
    pub what: &'static str,
}

const fn a(stage: StageId, name: &'static str, format: Format, what: &'static str) -> Artifact {
    let dir = match stage {
        StageId::Data => "data",
        StageId::Train => "train",
        StageId::Evaluate => "evaluate",
        StageId::Deploy => "deploy",
    };
    Artifact { dir, stage, name, format, what }
}

const fn m(name: &'static str, format: Format, what: &'static str) -> Artifact {
    Artifact { dir: MODEL_DIR, stage: StageId::Deploy, name, format, what }
}

/// The deployable model directory (written by deploy, read by `predict` / `validate`).
pub const MODEL_DIR: &str = "model";

/// Every stage writes its run metadata (see [`crate::meta::RunMeta`]) under this name.
pub const RUN_META: &str = "run.json";

use Format::*;
use StageId::*;

// --- data stage ---
pub const DATE_LIMITS: Artifact = a(Data, "date_limits.json", Json, "min/max date present after the window filter");
pub const OUTLIER_SUMMARY: Artifact =
    a(Data, "outlier_summary.csv", Csv, "count, missing, mean, min, max per continuous column after clipping");
pub const CAT_MISSING_IMPUTE: Artifact = a(Data, "cat_missing_impute.csv", Csv, "mode of each categorical column (imputation values)");
pub const SCALER: Artifact = a(Data, "scaler.json", Json, "the scaler alone: per continuous column min and max (or mean and scale)");
pub const ROLES: Artifact = a(Data, "roles.json", Json, "role of every raw column, and why when it was inferred");
pub const PREPROCESSING: Artifact =
    a(Data, "preprocessing.json", Json, "every fitted transform (clip bounds, fill values, modes, scaler) for inference on raw rows");
pub const COLUMNS_DRIFT: Artifact = a(Data, "columns_drift.json", Json, "column list of the cleaned data");
pub const DRIFT_REFERENCE: Artifact =
    a(Data, "reference.json", Json, "the training table's profile per model input, for drift checks (leadflow-drift)");
pub const TRAINING_DATA: Artifact = a(Data, "training_data.csv", Csv, "cleaned, imputed, scaled rows");
pub const GOLD: Artifact = a(Data, "train_data_gold.csv", Csv, "gold dataset: training data plus derived columns");
pub const DATA_META: Artifact = a(Data, RUN_META, Json, "run metadata of the data stage");

// --- train stage ---
pub const X_TRAIN: Artifact = a(Train, "X_train.csv", Csv, "encoded training features");
pub const X_TEST: Artifact = a(Train, "X_test.csv", Csv, "encoded test features");
pub const Y_TRAIN: Artifact = a(Train, "y_train.csv", Csv, "training target (lead_indicator)");
pub const Y_TEST: Artifact = a(Train, "y_test.csv", Csv, "test target (lead_indicator)");
pub const COLUMNS_LIST: Artifact = a(Train, "columns_list.json", Json, "feature names in model order");
pub const FEATURE_SPEC: Artifact = a(Train, "feature_spec.json", Json, "how gold rows become features (one-hot levels)");
pub const XGB_MODEL: Artifact = a(Train, "model_xgboost.json", Json, "XGBoost random forest in XGBoost's JSON model format");
pub const TEST_ROWS: Artifact =
    a(Train, "test_rows.json", Json, "a key per test row (hash of its model inputs and label): rows this model never trained on");
pub const BOOSTED_MODEL: Artifact =
    a(Train, "model_boosted.json", Json, "XGBoost gradient-boosted trees (early stopping) in XGBoost's JSON model format");
pub const LR_MODEL: Artifact =
    a(Train, "model_logistic.json", Json, "logistic regression: features, coefficients, intercept, classes, params");
pub const MODEL_RESULTS: Artifact = a(Train, "model_results.json", Json, "per model: best params, CV mean/std, test classification report");
pub const TRAIN_REPORTS: Artifact = a(Train, "reports.txt", Text, "train and test classification reports and confusion matrices, as text");
pub const TRAIN_META: Artifact = a(Train, RUN_META, Json, "run metadata of the train stage");

// --- evaluate stage ---
pub const METRICS: Artifact =
    a(Evaluate, "metrics.json", Json, "per model: accuracy, precision, recall, F1, ROC AUC, PR AUC, log loss, confusion matrix");
pub const BUSINESS_METRICS: Artifact =
    a(Evaluate, "business_metrics.json", Json, "rows scored, positives found and missed, false alarms, in the dataset's terms");
pub const EVALUATION: Artifact =
    a(Evaluate, "evaluation.json", Json, "selected model, champion comparison, promotion decision and gate result");
pub const REPORT: Artifact = a(Evaluate, "report.md", Markdown, "one-page Markdown report with the decision, metrics and plots");
pub const ROC_PNG: Artifact = a(Evaluate, "roc_curve.png", Png, "ROC curves of both models");
pub const PR_PNG: Artifact = a(Evaluate, "pr_curve.png", Png, "precision-recall curves of both models");
pub const CONFUSION_XGB_PNG: Artifact = a(Evaluate, "confusion_xgboost.png", Png, "confusion matrix heat map, XGBoost");
pub const CONFUSION_LR_PNG: Artifact = a(Evaluate, "confusion_logistic.png", Png, "confusion matrix heat map, logistic regression");
pub const CONFUSION_BOOSTED_PNG: Artifact = a(Evaluate, "confusion_boosted.png", Png, "confusion matrix heat map, XGBoost boosted trees");
pub const CLASS_REPORT_BOOSTED: Artifact =
    a(Evaluate, "classification_report_boosted.txt", Text, "classification report, XGBoost boosted trees (test split)");
pub const CLASS_REPORT_XGB: Artifact =
    a(Evaluate, "classification_report_xgboost.txt", Text, "classification report, XGBoost (test split)");
pub const CLASS_REPORT_LR: Artifact =
    a(Evaluate, "classification_report_logistic.txt", Text, "classification report, logistic regression (test split)");
pub const IMPORTANCE_PNG: Artifact = a(Evaluate, "feature_importance.png", Png, "XGBoost gain and LR coefficients");
pub const IMPORTANCE_JSON: Artifact =
    a(Evaluate, "feature_importance.json", Json, "per model: the numbers of the importance plot (XGBoost mean gain, LR coefficients)");
pub const CURVES_JSON: Artifact =
    a(Evaluate, "curves.json", Json, "ROC and precision-recall curves on a fixed grid (for reports that cannot show images)");
pub const EXPLANATIONS_JSON: Artifact =
    a(Evaluate, "explanations.json", Json, "the selected model's mean |contribution| per input on the test split (binary models)");
pub const EXPLANATIONS_PNG: Artifact =
    a(Evaluate, "explanations.png", Png, "beeswarm-style picture of each test row's contribution per input (binary models)");
pub const CALIBRATION_JSON: Artifact = a(
    Evaluate,
    "calibration.json",
    Json,
    "per model: Brier score on the test split and reliability bins, of its own probabilities and calibrated",
);
pub const RELIABILITY_PNG: Artifact =
    a(Evaluate, "reliability.png", Png, "reliability diagram: observed share positive against predicted probability (binary)");
pub const EVALUATE_META: Artifact = a(Evaluate, RUN_META, Json, "run metadata of the evaluate stage");

// --- deploy stage ---
pub const DEPLOYMENT: Artifact =
    a(Deploy, "deployment.json", Json, "what was registered, its version, stage, alias and the previous holder");
pub const DEPLOY_META: Artifact = a(Deploy, RUN_META, Json, "run metadata of the deploy stage");

// --- model directory (deploy) ---
pub const MODEL_CARD_MD: Artifact = m("model_card.md", Markdown, "model card for people");
pub const MODEL_CARD_JSON: Artifact = m("model_card.json", Json, "model card for machines");
pub const MODEL_SPEC: Artifact = m("model.json", Json, "which model file, its kind, threshold and features");
pub const MODEL_EXPLAIN: Artifact =
    m("explain.json", Json, "the training rows' mean of each feature (the logistic model's contributions are centred on them)");
pub const MODEL_TEST_ROWS: Artifact =
    m("test_rows.json", Json, "keys of the rows held out from its training: a later model is compared with it on these only");
pub const MODEL_REFERENCE: Artifact =
    m("reference.json", Json, "the training table's profile and the model's test-split scores, for `leadflow model drift`");

// --- `leadflow model drift` (a command's report, not a stage's output) ---
/// Folder of the drift report under the artifacts root (default of `--output-dir`).
pub const DRIFT_DIR: &str = "drift";
pub const DRIFT_REPORT_JSON: &str = "drift.json";
pub const DRIFT_REPORT_MD: &str = "drift.md";

/// Every artifact of the contract.
pub const ALL: &[Artifact] = &[
    DATE_LIMITS,
    OUTLIER_SUMMARY,
    CAT_MISSING_IMPUTE,
    SCALER,
    ROLES,
    PREPROCESSING,
    COLUMNS_DRIFT,
    DRIFT_REFERENCE,
    TRAINING_DATA,
    GOLD,
    DATA_META,
    X_TRAIN,
    X_TEST,
    Y_TRAIN,
    Y_TEST,
    COLUMNS_LIST,
    FEATURE_SPEC,
    XGB_MODEL,
    LR_MODEL,
    BOOSTED_MODEL,
    TEST_ROWS,
    MODEL_RESULTS,
    TRAIN_REPORTS,
    TRAIN_META,
    METRICS,
    BUSINESS_METRICS,
    EVALUATION,
    REPORT,
    ROC_PNG,
    PR_PNG,
    CONFUSION_XGB_PNG,
    CONFUSION_LR_PNG,
    CLASS_REPORT_XGB,
    CLASS_REPORT_LR,
    CONFUSION_BOOSTED_PNG,
    CLASS_REPORT_BOOSTED,
    IMPORTANCE_PNG,
    IMPORTANCE_JSON,
    CURVES_JSON,
    EXPLANATIONS_JSON,
    EXPLANATIONS_PNG,
    CALIBRATION_JSON,
    RELIABILITY_PNG,
    EVALUATE_META,
    DEPLOYMENT,
    DEPLOY_META,
];

/// Where the artifacts of one pipeline live.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn stage_dir(&self, stage: StageId) -> PathBuf {
        self.root.join(stage.name())
    }

    pub fn model_dir(&self) -> PathBuf {
        self.root.join(MODEL_DIR)
    }

    pub fn path(&self, artifact: &Artifact) -> PathBuf {
        self.root.join(artifact.dir).join(artifact.name)
    }

    /// The path of an input artifact, or an error naming the stage that writes it.
    pub fn require(&self, artifact: &Artifact) -> Result<PathBuf> {
        let p = self.path(artifact);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::MissingArtifact { path: p, stage: artifact.stage.name() })
        }
    }
}

/// A stage's output directory under construction.
///
/// Files are written into a hidden temporary directory beside the destination; [`StageDir::commit`]
/// swaps it into place. Dropped without commit, the temporary directory is removed and the
/// previous outputs stay untouched.
#[derive(Debug)]
pub struct StageDir {
    tmp: Option<tempfile::TempDir>,
    dest: PathBuf,
}

/// Held while a stage directory is swapped into place, so an interrupt handler can wait for a
/// commit to finish before it cleans up and exits.
pub static COMMIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

static WRITE_GATE: std::sync::RwLock<()> = std::sync::RwLock::new(());

thread_local! {
    static PERMITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static CLOSER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Held while a file or directory is created under the artifacts tree or a file store.
/// Nested permits on one thread are free; see [`close_writes`].
pub struct WritePermit {
    _guard: Option<std::sync::RwLockReadGuard<'static, ()>>,
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        PERMITS.with(|p| p.set(p.get() - 1));
    }
}

pub fn write_permit() -> WritePermit {
    let nested = PERMITS.with(|p| {
        let n = p.get();
        p.set(n + 1);
        n > 0
    });
    let guard = if nested || CLOSER.with(std::cell::Cell::get) { None } else { Some(WRITE_GATE.read().unwrap_or_else(|e| e.into_inner())) };
    WritePermit { _guard: guard }
}

/// For an interrupt handler about to clean up and exit the process: waits for the writes other
/// threads have in progress, then blocks their further writes (and new stage directories) for
/// the rest of the process's life, so nothing reappears after the cleanup. The calling thread
/// keeps writing.
pub fn close_writes() {
    CLOSER.with(|c| c.set(true));
    std::mem::forget(WRITE_GATE.write().unwrap_or_else(|e| e.into_inner()));
}

/// Remove temporary stage directories left by a killed run (`.<stage>.tmp-*`) under `root`.
/// Only one pipeline may use an artifacts directory at a time (the orchestrator locks it).
pub fn remove_stale_temps(root: &Path) -> Result<usize> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(root) else { return Ok(0) };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') && name.contains(".tmp-") && e.path().is_dir() {
            std::fs::remove_dir_all(e.path()).at(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Remove an output directory as one step: it is renamed to a temporary name first (removed
/// with the other leftovers if the process dies before it is gone), so no reader ever sees it
/// half deleted. Nothing to do when it is absent.
pub fn remove_dir(dest: &Path) -> Result<()> {
    let _permit = write_permit();
    recover(dest)?;
    if !dest.exists() {
        return Ok(());
    }
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("stage");
    let doomed = dest.with_file_name(format!(".{name}.tmp-removed-{}", std::process::id()));
    {
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::rename(dest, &doomed).at(dest)?;
        sync_dir(dest.parent());
    }
    std::fs::remove_dir_all(&doomed).at(&doomed)?;
    Ok(())
}

impl StageDir {
    pub fn begin(dest: impl Into<PathBuf>) -> Result<StageDir> {
        let dest = dest.into();
        let parent = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&parent).at(&parent)?;
        recover(&dest)?;
        // Leftovers of this stage from a killed run.
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("stage");
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&format!(".{name}.tmp-")) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("stage");
        let _permit = write_permit();
        let tmp = tempfile::Builder::new().prefix(&format!(".{name}.tmp-")).tempdir_in(&parent).at(&parent)?;
        Ok(StageDir { tmp: Some(tmp), dest })
    }

    /// The temporary directory being filled.
    pub fn dir(&self) -> &Path {
        self.tmp.as_ref().map(|t| t.path()).unwrap_or(&self.dest)
    }

    /// Where `artifact` is written while the stage runs.
    pub fn path(&self, artifact: &Artifact) -> PathBuf {
        self.dir().join(artifact.name)
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Move the finished directory into place, replacing the previous one.
    pub fn commit(mut self) -> Result<PathBuf> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(self.dest.clone());
        };
        let _guard = COMMIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let tmp_path = tmp.keep();
        let dest = self.dest.clone();
        let old = backup_path(&dest);
        if dest.exists() {
            std::fs::rename(&dest, &old).at(&dest)?;
        }
        if let Err(e) = std::fs::rename(&tmp_path, &dest) {
            // Put the previous outputs back; the new ones stay in the temporary directory's place.
            let _ = std::fs::rename(&old, &dest);
            let _ = std::fs::remove_dir_all(&tmp_path);
            return Err(Error::Io { path: dest, source: e });
        }
        if old.exists() {
            std::fs::remove_dir_all(&old).at(&old)?;
        }
        sync_dir(dest.parent());
        Ok(dest)
    }
}

fn backup_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("stage");
    dest.with_file_name(format!(".{name}.old"))
}

/// Finish or undo a commit that was interrupted between its two renames.
pub fn recover(dest: &Path) -> Result<()> {
    let old = backup_path(dest);
    if old.exists() {
        if dest.exists() {
            std::fs::remove_dir_all(&old).at(&old)?;
        } else {
            std::fs::rename(&old, dest).at(dest)?;
        }
    }
    Ok(())
}

fn sync_dir(dir: Option<&Path>) {
    if let Some(d) = dir {
        if let Ok(f) = std::fs::File::open(d) {
            let _ = f.sync_all();
        }
    }
}

/// Write a file atomically: temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let _permit = write_permit();
    std::fs::create_dir_all(&parent).at(&parent)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&parent).at(&parent)?;
    tmp.write_all(bytes).at(path)?;
    tmp.as_file().sync_all().at(path)?;
    persist(tmp, path)
}

/// Rename a finished temporary file into place with ordinary permissions (0644 on Unix;
/// temporary files are created 0600).
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).at(path)?;
    }
    tmp.persist(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Serialise `value` as pretty JSON into `path` (atomically).
pub fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|source| Error::JsonWrite { path: path.to_path_buf(), what: "output", source })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Read and deserialise a JSON file, naming the file on error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<T> {
    let text = std::fs::read_to_string(path).at(path)?;
    serde_json::from_str(&text).map_err(|source| Error::Json { path: path.to_path_buf(), what, source })
}
