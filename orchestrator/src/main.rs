use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use leadflow_core::artifacts::{Layout, StageId, DEFAULT_ARTIFACTS_DIR};
use leadflow_core::tracking::StoreLocation;
use orchestrator::{choose_engine, Engine, EngineChoice, RunOptions};

/// leadflow: run the lead-conversion pipeline (data -> train -> evaluate -> deploy) and leave
/// every output in artifacts/ and the tracking store (./mlruns or $MLFLOW_TRACKING_URI).
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
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ARTIFACTS_DIR, env = "LEADFLOW_ARTIFACTS_DIR")]
    artifacts_dir: PathBuf,
    /// Seconds the Dagger engine may take to answer its first query.
    #[arg(long, default_value_t = 60)]
    dagger_timeout: u64,
    /// More log output.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn parse_stage(s: &str) -> Result<StageId, String> {
    StageId::parse(s).ok_or_else(|| format!("unknown stage {s:?}; expected one of data, train, evaluate, deploy"))
}

fn main() -> std::process::ExitCode {
    leadflow_core::logging::exit(real_main(Cli::parse()))
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let args = match cli.cmd {
        Some(Cmd::Run(a)) => a,
        None => cli.run,
    };
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
    };
    let port = std::env::var("DAGGER_SESSION_PORT").ok();
    let (engine, why) = choose_engine(args.engine, port.as_deref());
    eprintln!("engine: {} ({why})", if engine == Engine::Local { "local" } else { "dagger" });
    let started = std::time::Instant::now();
    let result = match engine {
        Engine::Local => orchestrator::local::run(&opts, &params),
        Engine::Dagger => {
            let repo = orchestrator::find_repo_root(&opts.repo_root)
                .ok_or_else(|| anyhow::anyhow!("no Dockerfile found from {} upwards; run from the leadflow checkout", opts.repo_root.display()))?;
            let store = match &tracking {
                StoreLocation::Local(p) => p.clone(),
                StoreLocation::Remote(_) => anyhow::bail!("the Dagger engine supports only a local tracking store for now; unset MLFLOW_TRACKING_URI"),
            };
            // Use the default params file explicitly, so the container sees the same knobs.
            let params_file = opts.params_path.clone().or_else(|| {
                let p = PathBuf::from(leadflow_core::params::DEFAULT_PARAMS_FILE);
                p.is_file().then_some(p)
            });
            let plan = orchestrator::dagger::Plan::new(&repo, &opts.raw, params_file.as_deref(), &opts.artifacts_dir, &store, opts.stages())?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(orchestrator::dagger::run(plan, opts.connect_timeout))
        }
    };
    let layout = Layout::new(&opts.artifacts_dir);
    match result {
        Ok(_) => {
            eprint!("{}", orchestrator::summary::summary(&layout));
            eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Err(e) => {
            eprint!("{}", orchestrator::summary::summary(&layout));
            Err(e.into())
        }
    }
}
