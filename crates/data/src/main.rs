use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use leadflow_core::cli::StageArgs;

/// leadflow data stage: clean the raw leads CSV into the gold dataset under artifacts/data/.
///
/// Without a subcommand it runs the stage. Input: --raw, else $LEADFLOW_RAW, else the committed
/// sample data/sample/raw_data.csv.
#[derive(Debug, Parser)]
#[command(name = "leadflow-data", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Raw leads CSV.
    #[arg(long, value_name = "CSV")]
    raw: Option<PathBuf>,
    #[command(flatten)]
    stage: StageArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the data stage (the default).
    Run(RunArgs),
    /// Write synthetic leads in the raw schema (deterministic per seed).
    Generate {
        /// Number of rows.
        #[arg(long, default_value_t = 2000)]
        rows: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output CSV.
        #[arg(long, short, default_value = leadflow_data::DEFAULT_RAW)]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    leadflow_core::logging::exit(real_main(Cli::parse()))
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        None => run(cli.run),
        Some(Cmd::Run(args)) => run(args),
        Some(Cmd::Generate { rows, seed, out }) => {
            leadflow_data::generate::generate(&out, rows, seed).with_context(|| format!("generating {}", out.display()))?;
            println!("wrote {rows} synthetic leads to {} (seed {seed})", out.display());
            Ok(())
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    args.stage.init_logging();
    let params = args.stage.load_params()?;
    let raw = leadflow_data::resolve_raw(args.raw.as_deref());
    let summary = leadflow_data::run(&raw, &args.stage.layout(), &params)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
