use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use leadflow_core::artifacts::{Layout, StageId, DEFAULT_ARTIFACTS_DIR};
use leadflow_core::tracking::{open_store, StoreLocation};
use orchestrator::{choose_engine, history, Engine, EngineChoice, Force, RunOptions, StageReport};

/// leadflow: run the lead-conversion pipeline (data -> train -> evaluate -> deploy) and leave
/// every output in artifacts/ and the tracking store (./mlruns or $MLFLOW_TRACKING_URI).
///
/// Stages whose inputs, params and code are unchanged (and whose outputs are intact) are skipped.
#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the pipeline (the default).
    Run(RunArgs),
    /// Compare two recorded pipeline runs: params that differ, metrics side by side.
    Diff {
        /// Run id (or unique prefix); default: the second-to-last run.
        run_a: Option<String>,
        /// Run id (or unique prefix); default: the last run.
        run_b: Option<String>,
        /// table (terminal) or md (Markdown, for a pull-request comment).
        #[arg(long, value_enum, default_value = "table")]
        format: DiffFormat,
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ARTIFACTS_DIR, env = "LEADFLOW_ARTIFACTS_DIR")]
        artifacts_dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DiffFormat {
    Table,
    Md,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where the stages run.
    #[arg(long, value_enum, default_value = "auto")]
    engine: EngineChoice,
    /// Params file (default: ./params.toml if present, else built-in defaults).
    #[arg(long, value_name = "FILE", env = "LEADFLOW_PARAMS")]
    params: Option<PathBuf>,
    /// Raw leads CSV (default: $LEADFLOW_RAW, else the committed sample data/sample/raw_data.csv).
    #[arg(long, value_name = "CSV")]
    raw: Option<PathBuf>,
    /// First stage to run.
    #[arg(long, value_parser = parse_stage, default_value = "data")]
    from: StageId,
    /// Last stage to run.
    #[arg(long, value_parser = parse_stage, default_value = "deploy")]
    to: StageId,
    /// Re-run stages even when up to date: all (`--force`) or one (`--force train`).
    #[arg(long, value_name = "STAGE", num_args = 0..=1, default_missing_value = "all", value_parser = parse_force)]
    force: Option<Force>,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ARTIFACTS_DIR, env = "LEADFLOW_ARTIFACTS_DIR")]
    artifacts_dir: PathBuf,
    /// Seconds the Dagger engine may take to answer its first query (a first start may pull the
    /// engine image).
    #[arg(long, default_value_t = 300)]
    dagger_timeout: u64,
    /// More log output.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn parse_stage(s: &str) -> Result<StageId, String> {
    StageId::parse(s).ok_or_else(|| format!("unknown stage {s:?}; expected one of data, train, evaluate, deploy"))
}

fn parse_force(s: &str) -> Result<Force, String> {
    if s == "all" {
        Ok(Force::All)
    } else {
        parse_stage(s).map(Force::Stage)
    }
}

fn main() -> std::process::ExitCode {
    leadflow_core::logging::exit(real_main(Cli::parse()))
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Some(Cmd::Diff { run_a, run_b, format, artifacts_dir }) => diff(run_a, run_b, format, artifacts_dir),
        Some(Cmd::Run(a)) => run(a),
        None => run(cli.run),
    }
}

fn diff(a: Option<String>, b: Option<String>, format: DiffFormat, artifacts_dir: PathBuf) -> anyhow::Result<()> {
    let runs = history::list(&Layout::new(&artifacts_dir));
    let pick = |key: Option<String>, from_end: usize| -> anyhow::Result<&history::PipelineRun> {
        match key {
            Some(k) => history::find(&runs, &k).map_err(anyhow::Error::msg),
            None => runs.len().checked_sub(from_end).map(|i| &runs[i]).ok_or_else(|| {
                anyhow::anyhow!("need at least two recorded runs in {}/{} (found {})", artifacts_dir.display(), history::DIR, runs.len())
            }),
        }
    };
    let (ra, rb) = match (a, b) {
        (Some(a), Some(b)) => (pick(Some(a), 0)?, pick(Some(b), 0)?),
        (Some(a), None) => (pick(Some(a), 0)?, pick(None, 1)?),
        (None, _) => (pick(None, 2)?, pick(None, 1)?),
    };
    let d = history::diff(ra, rb);
    match format {
        DiffFormat::Table => print!("{}", d.to_table()),
        DiffFormat::Md => print!("{}", d.to_markdown()),
    }
    Ok(())
}

/// One pipeline per artifacts directory at a time.
fn lock_artifacts(root: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(root)?;
    let path = root.join(".lock");
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(_) => anyhow::bail!("another leadflow run is using {} (lock {})", root.display(), path.display()),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    leadflow_core::logging::init(args.verbose.min(3) as i8);
    if args.from > args.to {
        anyhow::bail!("--from {} comes after --to {}", args.from, args.to);
    }
    let params = leadflow_core::Params::load_or_default(args.params.as_deref())?;
    let tracking = StoreLocation::from_env();
    let opts = RunOptions {
        params_path: args.params.clone(),
        raw: leadflow_data::resolve_raw(args.raw.as_deref()),
        from: args.from,
        to: args.to,
        artifacts_dir: args.artifacts_dir.clone(),
        tracking: tracking.clone(),
        repo_root: std::env::current_dir()?,
        connect_timeout: Duration::from_secs(args.dagger_timeout),
        force: args.force.unwrap_or_default(),
    };
    let _lock = lock_artifacts(&opts.artifacts_dir)?;
    leadflow_core::artifacts::remove_stale_temps(&opts.artifacts_dir)?;
    let started_at = chrono::Utc::now();
    let port = std::env::var("DAGGER_SESSION_PORT").ok();
    let (engine, why) = choose_engine(args.engine, port.as_deref());
    let engine_name = if engine == Engine::Local { "local" } else { "dagger" };
    install_interrupt_handler(&opts, &params, engine_name, started_at);
    eprintln!("engine: {engine_name} ({why})");
    let started = std::time::Instant::now();
    let result: orchestrator::Result<Vec<StageReport>> = match engine {
        Engine::Local => orchestrator::local::run(&opts, &params),
        Engine::Dagger => run_dagger(&opts, &params, &tracking)?,
    };
    let layout = Layout::new(&opts.artifacts_dir);
    let (reports, ok) = match &result {
        Ok(r) => (r.clone(), true),
        Err(orchestrator::Error::Stage { reports, .. }) => (reports.clone(), false),
        Err(_) => (Vec::new(), false),
    };
    {
        let gate = orchestrator::interrupt::HISTORY.lock().unwrap_or_else(|e| e.into_inner());
        if orchestrator::interrupt::is_set() {
            drop(gate);
            orchestrator::interrupt::yield_to_handler();
        }
        match history::record(&layout, &params, engine_name, started_at, &reports, ok) {
            Ok(p) => tracing::debug!("recorded {}", p.display()),
            Err(e) => eprintln!("warning: could not record the run history: {e}"),
        }
    }
    eprint!("{}", orchestrator::summary::summary(&layout, &reports, started_at));
    let ran: f64 = reports.iter().filter(|r| !r.skipped).fold(0.0, |a, r| a + r.seconds);
    let skipped = reports.iter().filter(|r| r.skipped).count();
    eprintln!("done in {:.3}s ({skipped} stage(s) up to date, {ran:.3}s of stage work)", started.elapsed().as_secs_f64());
    result.map(|_| ()).map_err(Into::into)
}

fn run_dagger(
    opts: &RunOptions,
    params: &leadflow_core::Params,
    tracking: &StoreLocation,
) -> anyhow::Result<orchestrator::Result<Vec<StageReport>>> {
    let repo = orchestrator::find_repo_root(&opts.repo_root)
        .ok_or_else(|| anyhow::anyhow!("no Dockerfile found from {} upwards; run from the leadflow checkout", opts.repo_root.display()))?;
    // Skip the up-to-date prefix of the pipeline; everything from the first stale stage runs in
    // the container (its inputs are produced there).
    let registry = open_store(tracking)?;
    let (mut skipped, stages) = orchestrator::split_up_to_date(opts, params, Some(registry.as_ref()))?;
    for r in &skipped {
        orchestrator::print_stage(r);
    }
    if stages.is_empty() {
        return Ok(Ok(skipped));
    }
    let params_file = opts.params_path.clone().or_else(|| {
        let p = PathBuf::from(leadflow_core::params::DEFAULT_PARAMS_FILE);
        p.is_file().then_some(p)
    });
    let plan = orchestrator::dagger::Plan::new(&repo, &opts.raw, params_file.as_deref(), &opts.artifacts_dir, tracking, stages)?;
    let rt = tokio::runtime::Runtime::new()?;
    Ok(rt.block_on(orchestrator::dagger::run(plan, opts.connect_timeout)).map(|mut r| {
        skipped.append(&mut r);
        skipped
    }))
}

/// Ctrl-C: wait for a commit in progress, remove temporary stage directories, mark this
/// process's RUNNING tracking runs KILLED, exit 130.
fn install_interrupt_handler(
    opts: &RunOptions,
    params: &leadflow_core::Params,
    engine: &'static str,
    started_at: chrono::DateTime<chrono::Utc>,
) {
    let root = opts.artifacts_dir.clone();
    let tracking = opts.tracking.clone();
    let experiment = params.tracking.experiment_name.clone();
    let params = params.clone();
    let _ = ctrlc::set_handler(move || {
        // Lock order: the history gate, then all other threads' writes, then a commit in progress.
        orchestrator::interrupt::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let _history = orchestrator::interrupt::HISTORY.lock().unwrap_or_else(|e| e.into_inner());
        leadflow_core::artifacts::close_writes();
        let _guard = leadflow_core::artifacts::COMMIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (stage, reports) = orchestrator::interrupt::snapshot();
        eprintln!(
            "\ninterrupted{}: removing temporary files and marking open runs KILLED",
            stage.map(|s| format!(" during stage `{s}`")).unwrap_or_default()
        );
        // Finished stages as they ran, the interrupted one as killed.
        let _ = history::record(&Layout::new(&root), &params, engine, started_at, &reports, false);
        let _ = leadflow_core::artifacts::remove_stale_temps(&root);
        if let Ok(store) = open_store(&tracking) {
            if let Ok(Some(exp)) = store.find_experiment(&experiment) {
                let _ = leadflow_core::tracking::kill_own_runs(store.as_ref(), &exp);
            }
        }
        std::process::exit(130);
    });
}
