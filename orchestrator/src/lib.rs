//! leadflow orchestrator: runs data -> train -> evaluate -> deploy through one of two engines
//! behind the same stage contract.
//!
//! - [`local`]: the stages' library entry points, in-process (the default).
//! - [`dagger`]: the Dagger SDK builds the image from the repo's `Dockerfile`, runs the stage
//!   binaries inside it, and exports `artifacts/` and the tracking store back to the host.

pub mod cli;
pub mod commands;
pub mod dagger;
pub mod history;
pub mod local;
pub mod pipeline;
pub mod progress;
pub mod pull;
pub mod report;
pub mod stages;
pub mod summary;

use std::path::{Path, PathBuf};
use std::time::Duration;

use leadflow_core::artifacts::StageId;
use leadflow_mlflow::tracking::StoreLocation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// Dagger when an engine session is reachable (DAGGER_SESSION_PORT set), else local.
    Auto,
    /// In-process, on this machine (no containers).
    Local,
    /// In the container image built from the Dockerfile, through the Dagger SDK.
    Dagger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Local,
    Dagger,
}

/// Pick the engine and say why.
pub fn choose_engine(choice: EngineChoice, session_port: Option<&str>) -> (Engine, String) {
    match choice {
        EngineChoice::Local => (Engine::Local, "--engine local".into()),
        EngineChoice::Dagger => (Engine::Dagger, "--engine dagger".into()),
        EngineChoice::Auto => match session_port.filter(|p| !p.is_empty()) {
            Some(p) => (Engine::Dagger, format!("auto: a Dagger session is reachable (DAGGER_SESSION_PORT={p})")),
            None => (
                Engine::Local,
                "auto: no Dagger session (DAGGER_SESSION_PORT unset); use `dagger run cargo run -p orchestrator` or --engine dagger for containers".into(),
            ),
        },
    }
}

/// Everything a pipeline run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub params_path: Option<PathBuf>,
    pub raw: PathBuf,
    pub from: StageId,
    pub to: StageId,
    pub artifacts_dir: PathBuf,
    pub tracking: StoreLocation,
    /// Repository root (build context of the Dockerfile).
    pub repo_root: PathBuf,
    /// How long the Dagger engine may take to answer its first query.
    pub connect_timeout: Duration,
    /// Stages re-run even when up to date.
    pub force: Force,
}

/// `--force`: nothing, everything, or one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Force {
    #[default]
    None,
    All,
    Stage(StageId),
}

impl Force {
    pub fn covers(self, stage: StageId) -> bool {
        match self {
            Force::None => false,
            Force::All => true,
            Force::Stage(s) => s == stage,
        }
    }
}

/// Whether `stage` must run, and why (stage fingerprints; see `leadflow_core::fingerprint`).
pub fn stage_status(
    opts: &RunOptions,
    params: &leadflow_core::Params,
    store: Option<&dyn leadflow_mlflow::registry::Registry>,
    stage: StageId,
) -> Result<leadflow_core::fingerprint::Status> {
    use leadflow_core::fingerprint::{check, Status};
    if opts.force.covers(stage) {
        return Ok(Status::Stale("--force".into()));
    }
    let layout = leadflow_core::artifacts::Layout::new(&opts.artifacts_dir);
    let raw = (stage == StageId::Data).then_some(opts.raw.as_path());
    let registry_now = store.map(|s| move || leadflow_mlflow::registry::state(s, params));
    let registry_now = registry_now.as_ref().map(|f| f as &dyn Fn() -> String);
    Ok(check(reads(stage), &layout, params, raw, env!("CARGO_PKG_VERSION"), registry_now)?)
}

/// What each stage reads, as the stage crate declares it.
pub fn reads(stage: StageId) -> &'static leadflow_core::fingerprint::Reads {
    stages::stage(stage).reads()
}

impl RunOptions {
    pub fn stages(&self) -> Vec<StageId> {
        StageId::ALL.into_iter().filter(|s| *s >= self.from && *s <= self.to).collect()
    }
}

/// What happened to one stage in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and succeeded.
    Ran,
    /// Inputs, params and code unchanged, outputs intact: not run.
    UpToDate,
    /// It ran and failed.
    Failed,
    /// Ctrl-C arrived while it ran.
    Interrupted,
}

impl Outcome {
    /// The word the run history and the stage line use.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::UpToDate => "up to date",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "killed",
        }
    }
}

/// Outcome of one stage.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub stage: StageId,
    pub outcome: Outcome,
    pub seconds: f64,
    pub message: String,
}

impl StageReport {
    /// Ran or up to date.
    pub fn ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ran | Outcome::UpToDate)
    }

    pub fn skipped(&self) -> bool {
        self.outcome == Outcome::UpToDate
    }
}

/// Failure of a pipeline run, naming the stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stage `{stage}` failed: {message}")]
    Stage {
        stage: StageId,
        message: String,
        reports: Vec<StageReport>,
        /// The stage crate's own error, typed, when the stage ran in this process (a container's
        /// stage and a replayed recorded failure have only their message). Not chained as a
        /// `source`: `message` already is its whole chain.
        cause: Option<Box<stages::StageError>>,
    },
    /// The Dagger engine could not be reached or the pipeline in it failed to run (a stage that
    /// ran and failed is [`Error::Stage`]); the SDK's or the OS's error is the source.
    #[error("Dagger engine: {what}")]
    Dagger {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("data pull: {0}")]
    Pull(String),
    #[error("another leadflow run is using {} (lock {})", root.display(), lock.display())]
    Locked { root: PathBuf, lock: PathBuf },
    #[error(transparent)]
    Core(#[from] leadflow_core::Error),
    #[error(transparent)]
    Mlflow(#[from] leadflow_mlflow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A Dagger failure with no underlying error.
    pub(crate) fn dagger(what: impl Into<String>) -> Error {
        Error::Dagger { what: what.into(), source: None }
    }
}

/// Coordination between the run and the Ctrl-C handler, which runs on its own thread and ends the
/// process. The handler sets [`interrupt::INTERRUPTED`] first, then takes [`interrupt::HISTORY`] to
/// write the run history; the main thread takes the same lock and, if the flag is set, leaves the
/// record to the handler — so an interrupted run is always recorded as killed, never as failed.
pub mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, MutexGuard};

    use leadflow_core::artifacts::StageId;

    use crate::StageReport;

    pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    /// Held while the run history is written.
    pub static HISTORY: Mutex<()> = Mutex::new(());

    /// What this process's run has done so far (the local engine keeps it up to date).
    struct Progress {
        finished: Vec<StageReport>,
        running: Option<StageId>,
    }

    static PROGRESS: Mutex<Progress> = Mutex::new(Progress { finished: Vec::new(), running: None });

    fn progress() -> MutexGuard<'static, Progress> {
        PROGRESS.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now until [`finished`], an interrupt is recorded against `stage`.
    pub fn started(stage: StageId) {
        progress().running = Some(stage);
    }

    pub fn finished(r: &StageReport) {
        let mut p = progress();
        p.finished.push(r.clone());
        p.running = None;
    }

    /// The stage in progress, if any, and the reports to record: the finished stages followed by
    /// the one in progress, marked `interrupted`.
    pub fn snapshot() -> (Option<StageId>, Vec<StageReport>) {
        let p = progress();
        let mut reports = p.finished.clone();
        if let Some(stage) = p.running {
            reports.push(StageReport { stage, outcome: crate::Outcome::Interrupted, seconds: 0.0, message: "interrupted".into() });
        }
        (p.running, reports)
    }

    pub fn is_set() -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }

    /// After an interrupt, the handler owns the rest of the process's life: wait for its exit.
    pub fn yield_to_handler() {
        if is_set() {
            loop {
                std::thread::park();
            }
        }
    }
}

/// Print one stage line as it finishes.
pub fn print_stage(r: &StageReport) {
    let mark = match r.outcome {
        Outcome::UpToDate => "up to date",
        Outcome::Ran => "ok",
        Outcome::Failed => "FAILED",
        Outcome::Interrupted => "killed",
    };
    eprintln!("[{:<8}] {:<10} {:>8.3}s  {}", r.stage.name(), mark, r.seconds, r.message);
}

/// Find the repository root: the nearest ancestor of `start` holding a Dockerfile and Cargo.toml.
pub fn find_repo_root(start: &Path) -> Option<PathBuf> {
    let mut cur = Some(start);
    while let Some(d) = cur {
        if d.join("Dockerfile").is_file() && d.join("Cargo.toml").is_file() {
            return Some(d.to_path_buf());
        }
        cur = d.parent();
    }
    None
}

/// The up-to-date prefix of the selected stages (skipped) and the rest, which must run — for the
/// Dagger engine, which runs everything from the first stale stage inside the container. An
/// up-to-date stage whose recorded result is a failure ends the run with that failure.
pub fn split_up_to_date(
    opts: &RunOptions,
    params: &leadflow_core::Params,
    store: Option<&dyn leadflow_mlflow::registry::Registry>,
) -> Result<(Vec<StageReport>, Vec<StageId>)> {
    let mut skipped = Vec::new();
    let mut stages = opts.stages();
    while let Some(&s) = stages.first() {
        match stage_status(opts, params, store, s)? {
            leadflow_core::fingerprint::Status::UpToDate => {
                skipped.push(StageReport {
                    stage: s,
                    outcome: Outcome::UpToDate,
                    seconds: 0.0,
                    message: "up to date (checked on the host)".into(),
                });
                stages.remove(0);
            }
            leadflow_core::fingerprint::Status::UpToDateFailed(message) => {
                eprintln!("[{:<8}] up to date; its recorded result is a failure (--force {s} runs it again):", s.name());
                skipped.push(StageReport { stage: s, outcome: Outcome::Failed, seconds: 0.0, message: message.clone() });
                return Err(Error::Stage { stage: s, message, reports: skipped, cause: None });
            }
            leadflow_core::fingerprint::Status::Stale(why) => {
                eprintln!("[{:<8}] stale ({why}): running from here", s.name());
                break;
            }
        }
    }
    Ok((skipped, stages))
}
