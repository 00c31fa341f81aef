//! One pipeline run, start to end, for either engine: the artifacts lock, stale temporary files,
//! the engine choice, the Ctrl-C handler, the stages, the run history and the summary. The
//! binary only parses arguments and calls [`run`].

use std::path::{Path, PathBuf};

use leadflow_core::artifacts::Layout;
use leadflow_core::Params;
use leadflow_mlflow::open_store;

use crate::{choose_engine, history, Engine, EngineChoice, Error, Result, RunOptions, StageReport};

/// One pipeline per artifacts directory at a time: held until the returned file is dropped.
pub fn lock_artifacts(root: &Path) -> Result<std::fs::File> {
    use leadflow_core::error::IoContext as _;
    std::fs::create_dir_all(root).at(root)?;
    let path = root.join(".lock");
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(_) => Err(Error::Locked { root: root.into(), lock: path }),
    }
}

/// Run the pipeline with the engine `choice` names. Prints each stage as it finishes and the
/// summary at the end; returns the reports, or the failure (whose reports are in
/// [`Error::Stage`]).
pub fn run(opts: &RunOptions, params: &Params, choice: EngineChoice) -> Result<Vec<StageReport>> {
    let _lock = lock_artifacts(&opts.artifacts_dir)?;
    leadflow_core::artifacts::remove_stale_temps(&opts.artifacts_dir)?;
    // Later commands (show, serve, history) find this run's store from anywhere.
    let record = opts.artifacts_dir.join(crate::commands::TRACKING_RECORD);
    leadflow_core::artifacts::write_atomic(&record, format!("{}\n", opts.tracking.absolute_uri()).as_bytes())?;
    let started_at = chrono::Utc::now();
    let port = std::env::var("DAGGER_SESSION_PORT").ok();
    let (engine, why) = choose_engine(choice, port.as_deref());
    let engine_name = if engine == Engine::Local { "local" } else { "dagger" };
    install_interrupt_handler(opts, params, engine_name, started_at);
    eprintln!("engine: {engine_name} ({why})");
    let started = std::time::Instant::now();
    let result = match engine {
        Engine::Local => crate::local::run(opts, params),
        Engine::Dagger => run_dagger(opts, params),
    };
    let layout = Layout::new(&opts.artifacts_dir);
    let reports = match &result {
        Ok(r) => r.clone(),
        Err(Error::Stage { reports, .. }) => reports.clone(),
        Err(_) => Vec::new(),
    };
    {
        let gate = crate::interrupt::HISTORY.lock().unwrap_or_else(|e| e.into_inner());
        if crate::interrupt::is_set() {
            drop(gate);
            crate::interrupt::yield_to_handler();
        }
        match history::record(&layout, params, engine_name, started_at, &reports, result.is_ok()) {
            Ok(p) => tracing::debug!("recorded {}", p.display()),
            Err(e) => eprintln!("warning: could not record the run history: {e}"),
        }
    }
    eprint!("{}", crate::summary::summary(&layout, &reports, started_at));
    let ran: f64 = reports.iter().filter(|r| !r.skipped()).fold(0.0, |a, r| a + r.seconds);
    let skipped = reports.iter().filter(|r| r.skipped()).count();
    eprintln!("done in {:.3}s ({skipped} stage(s) up to date, {ran:.3}s of stage work)", started.elapsed().as_secs_f64());
    result
}

/// The Dagger engine: the up-to-date prefix is skipped (checked on the host); everything from the
/// first stale stage runs in the container, whose inputs are produced there.
fn run_dagger(opts: &RunOptions, params: &Params) -> Result<Vec<StageReport>> {
    let repo = crate::find_repo_root(&opts.repo_root).ok_or_else(|| {
        Error::dagger(format!("no Dockerfile found from {} upwards; run from the leadflow checkout", opts.repo_root.display()))
    })?;
    let registry = open_store(&opts.tracking)?;
    let split = crate::split_up_to_date(opts, params, Some(registry.as_ref()));
    let reports: &[StageReport] = match &split {
        Ok((skipped, _)) => skipped,
        Err(Error::Stage { reports, .. }) => reports,
        Err(_) => &[],
    };
    for r in reports {
        crate::print_stage(r);
    }
    let (mut skipped, stages) = split?;
    if stages.is_empty() {
        return Ok(skipped);
    }
    let params_file = opts.params_path.clone().or_else(|| {
        let p = PathBuf::from(leadflow_core::params::DEFAULT_PARAMS_FILE);
        p.is_file().then_some(p)
    });
    let plan = crate::dagger::Plan::new(&repo, &opts.raw, params_file.as_deref(), &opts.artifacts_dir, &opts.tracking, stages)?;
    let rt =
        tokio::runtime::Runtime::new().map_err(|e| Error::Dagger { what: "starting the async runtime".into(), source: Some(e.into()) })?;
    match rt.block_on(crate::dagger::run(plan, opts.connect_timeout)) {
        Ok(mut r) => {
            skipped.append(&mut r);
            Ok(skipped)
        }
        Err(Error::Stage { stage, message, mut reports, cause }) => {
            skipped.append(&mut reports);
            Err(Error::Stage { stage, message, reports: skipped, cause })
        }
        Err(e) => Err(e),
    }
}

/// Ctrl-C: wait for a commit in progress, remove temporary stage directories, mark this
/// process's RUNNING tracking runs KILLED, exit 130.
fn install_interrupt_handler(opts: &RunOptions, params: &Params, engine: &'static str, started_at: chrono::DateTime<chrono::Utc>) {
    let root = opts.artifacts_dir.clone();
    let tracking = opts.tracking.clone();
    let experiment = params.tracking.experiment_name.clone();
    let params = params.clone();
    let _ = ctrlc::set_handler(move || {
        // Lock order: the history gate, then all other threads' writes, then a commit in progress.
        crate::interrupt::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let _history = crate::interrupt::HISTORY.lock().unwrap_or_else(|e| e.into_inner());
        leadflow_core::artifacts::close_writes();
        let _guard = leadflow_core::artifacts::COMMIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (stage, reports) = crate::interrupt::snapshot();
        eprintln!(
            "\ninterrupted{}: removing temporary files and marking open runs KILLED",
            stage.map(|s| format!(" during stage `{s}`")).unwrap_or_default()
        );
        // Finished stages as they ran, the interrupted one as killed.
        let _ = history::record(&Layout::new(&root), &params, engine, started_at, &reports, false);
        let _ = leadflow_core::artifacts::remove_stale_temps(&root);
        if let Ok(store) = open_store(&tracking) {
            if let Ok(Some(exp)) = store.find_experiment(&experiment) {
                let _ = leadflow_mlflow::tracking::kill_own_runs(store.as_ref(), &exp);
            }
        }
        std::process::exit(130);
    });
}
