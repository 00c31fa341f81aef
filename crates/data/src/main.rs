use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use leadflow_cli::StageArgs;

/// leadflow data stage: clean a raw CSV into the gold dataset under artifacts/data/, as the
/// params' [dataset] describes it (the lead preset by default).
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
    /// Raw CSV, or Parquet (`.parquet`, `.pq`).
    #[arg(long, value_name = "CSV")]
    raw: Option<PathBuf>,
    #[command(flatten)]
    stage: StageArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the data stage (the default).
    Run(RunArgs),
    /// Check a raw file against the params' dataset (columns, types, validation rules) without
    /// running the stage: every violation is listed, nothing is written, non-zero exit if any.
    Validate {
        /// Raw CSV or Parquet (default: $LEADFLOW_RAW, else the committed sample).
        #[arg(long, value_name = "CSV")]
        raw: Option<PathBuf>,
        #[command(flatten)]
        stage: StageArgs,
    },
    /// Write synthetic data from the project's own generators (deterministic per seed).
    Generate {
        /// Which schema: the lead raw schema or the churn pipeline's.
        #[arg(long, value_enum, default_value_t = Schema::Lead)]
        schema: Schema,
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

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Schema {
    Lead,
    Churn,
}

fn main() -> std::process::ExitCode {
    leadflow_cli::logging::exit(real_main(Cli::parse()))
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        None => run(cli.run),
        Some(Cmd::Run(args)) => run(args),
        Some(Cmd::Validate { raw, stage }) => {
            eprintln!("note: `leadflow-data validate` moved to `leadflow data validate` (this spelling goes in the next release)");
            stage.init_logging();
            let params = stage.load_params()?;
            let raw = leadflow_data::resolve_raw(raw.as_deref());
            let report = leadflow_data::validate(&raw, &params)?;
            println!("{report}");
            Ok(())
        }
        Some(Cmd::Generate { schema, rows, seed, out }) => {
            eprintln!("note: `leadflow-data generate` moved to `leadflow data generate` (this spelling goes in the next release)");
            match schema {
                Schema::Lead => leadflow_data::generate::generate(&out, rows, seed),
                Schema::Churn => leadflow_data::generate::churn(&out, rows, seed),
            }
            .with_context(|| format!("generating {}", out.display()))?;
            println!("wrote {rows} synthetic {schema:?} rows to {} (seed {seed})", out.display());
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
