//! The `orchestrator` command line: arguments, `diff`, and the call to [`crate::pipeline::run`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use leadflow_core::artifacts::{Layout, StageId, DEFAULT_ARTIFACTS_DIR};
use leadflow_mlflow::tracking::StoreLocation;

use crate::{history, EngineChoice, Force, RunOptions};

/// leadflow: run the pipeline (data -> train -> evaluate -> deploy) on the table params describe
/// (the lead-conversion preset by default) and leave
/// every output in artifacts/ and the tracking store (./mlruns/mlflow.db or $MLFLOW_TRACKING_URI).
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
    /// Write the pull-request report of the last run (Markdown: decision, this run beside the
    /// champion, the gate, data version, model card headline, curves as Mermaid charts).
    Report {
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ARTIFACTS_DIR, env = "LEADFLOW_ARTIFACTS_DIR")]
        artifacts_dir: PathBuf,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Download the pinned public raw file and verify its size and sha256 (like `dvc pull`).
    Pull {
        /// Lock file naming URL, size and checksum.
        #[arg(long, default_value = crate::pull::DEFAULT_LOCK)]
        lock: PathBuf,
        /// Download from this URL instead (a mirror); the checksum still applies.
        #[arg(long)]
        url: Option<String>,
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
    /// Raw CSV (default: $LEADFLOW_RAW, else the committed lead sample data/sample/raw_data.csv).
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

/// The `orchestrator` binary: parse the arguments, run, report.
pub fn main() -> std::process::ExitCode {
    leadflow_core::logging::exit(real_main(Cli::parse()))
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Some(Cmd::Diff { run_a, run_b, format, artifacts_dir }) => diff(run_a, run_b, format, artifacts_dir),
        Some(Cmd::Run(a)) => run(a),
        Some(Cmd::Report { artifacts_dir, output }) => {
            let body = crate::report::render(&Layout::new(&artifacts_dir))?;
            match output {
                Some(p) => leadflow_core::artifacts::write_atomic(&p, body.as_bytes())?,
                None => print!("{body}"),
            }
            Ok(())
        }
        Some(Cmd::Pull { lock, url }) => {
            leadflow_core::logging::init(0);
            match crate::pull::pull(&lock, url.as_deref())? {
                crate::pull::PullOutcome::AlreadyPresent(p) => println!("{} is present and matches {}", p.display(), lock.display()),
                crate::pull::PullOutcome::Downloaded(p) => println!("downloaded and verified {}", p.display()),
            }
            Ok(())
        }
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

fn run(args: RunArgs) -> anyhow::Result<()> {
    leadflow_core::logging::init(args.verbose.min(3) as i8);
    if args.from > args.to {
        anyhow::bail!("--from {} comes after --to {}", args.from, args.to);
    }
    let params = leadflow_core::Params::load_or_default(args.params.as_deref())?;
    let opts = RunOptions {
        params_path: args.params.clone(),
        raw: leadflow_data::resolve_raw(args.raw.as_deref()),
        from: args.from,
        to: args.to,
        artifacts_dir: args.artifacts_dir.clone(),
        tracking: StoreLocation::from_env(),
        repo_root: std::env::current_dir()?,
        connect_timeout: Duration::from_secs(args.dagger_timeout),
        force: args.force.unwrap_or_default(),
    };
    crate::pipeline::run(&opts, &params, args.engine)?;
    Ok(())
}
