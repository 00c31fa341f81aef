use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand};
use leadflow_cli::StageArgs;
use leadflow_mlflow::open_store;
use leadflow_mlflow::tracking::StoreLocation;
use leadflow_serve::InputKind;

/// leadflow deploy stage: register the model evaluate chose (idempotent), move it to its stage
/// and alias, and export artifacts/model/. Subcommands use an exported model directory.
#[derive(Debug, Parser)]
#[command(name = "leadflow-deploy", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    stage: StageArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the deploy stage (the default).
    Run {
        #[command(flatten)]
        stage: StageArgs,
    },
    /// Score a CSV: raw rows of the training table or encoded feature rows (X_test.csv shape).
    Predict {
        #[arg(long, default_value = "artifacts/model")]
        model_dir: PathBuf,
        /// CSV to score.
        #[arg(long)]
        input: PathBuf,
        /// Where to write row,probability,label.
        #[arg(long, default_value = "predictions.csv")]
        output: PathBuf,
        /// What the input rows are (auto: decided by the columns).
        #[arg(long, value_enum, default_value_t = InputKind::Auto)]
        input_kind: InputKind,
    },
    /// Predict a feature CSV and compare with expected labels and/or a minimum accuracy;
    /// exits non-zero with the differing rows when they disagree.
    Validate {
        #[arg(long, default_value = "artifacts/model")]
        model_dir: PathBuf,
        /// Feature CSV (e.g. artifacts/train/X_test.csv) or raw rows of the training table.
        #[arg(long)]
        features: PathBuf,
        /// What the feature CSV's rows are (auto: decided by the columns).
        #[arg(long, value_enum, default_value_t = InputKind::Auto)]
        input_kind: InputKind,
        /// Labels CSV with the target column as 0/1 (e.g. artifacts/train/y_test.csv).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Expected labels (class indices) of the first rows, e.g. 1,0,0,1.
        #[arg(long, value_delimiter = ',')]
        expected: Option<Vec<u8>>,
        /// Compare only the first N rows.
        #[arg(long)]
        rows: Option<usize>,
        /// Minimum accuracy against the labels.
        #[arg(long)]
        min_accuracy: Option<f64>,
    },
    /// Serve a model over HTTP in MLflow's scoring protocol: POST /invocations (JSON
    /// dataframe_split / dataframe_records / instances / inputs, or CSV), GET /ping, /health,
    /// /version, /metrics. With --model name@alias it follows the alias: a new version is loaded
    /// in the background and swapped in atomically.
    Serve {
        /// An exported model directory.
        #[arg(long, conflicts_with = "model", default_value = "artifacts/model")]
        model_dir: PathBuf,
        /// A registered model as name@alias (from $MLFLOW_TRACKING_URI), e.g. lead_model@champion.
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 5001)]
        port: u16,
        /// What request rows are (auto: decided by the columns).
        #[arg(long, value_enum, default_value_t = InputKind::Auto)]
        input_kind: InputKind,
        /// Largest request body, MiB (larger: 413).
        #[arg(long, default_value_t = 8)]
        max_body_mib: usize,
        /// Most rows in one request (more: 400).
        #[arg(long, default_value_t = 10_000)]
        max_rows: usize,
        /// A request that takes longer is answered 503.
        #[arg(long, default_value_t = 10.0)]
        timeout_seconds: f64,
        /// How often the registry alias is checked for a new version.
        #[arg(long, default_value_t = 5.0)]
        poll_seconds: f64,
    },
    /// Promote the registered version an exported model directory names to a registry stage
    /// and its alias (compare-and-swap, as deploy does): the release workflow's step.
    Promote {
        #[arg(long, default_value = "artifacts/model")]
        model_dir: PathBuf,
        /// Staging (alias challenger) or Production (alias champion).
        #[arg(long, value_enum, default_value = "production")]
        stage: StageArg,
    },
    /// Show registered versions (or the one holding an alias).
    Show {
        #[arg(long, default_value = "lead_model")]
        name: String,
        #[arg(long)]
        alias: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StageArg {
    Staging,
    Production,
}

fn main() -> std::process::ExitCode {
    let result = real_main(Cli::parse());
    // A registry that moved after evaluate decided has its own status, so a caller can re-run
    // evaluate and deploy against the new holder.
    if let Err(e) = &result {
        if matches!(e.downcast_ref::<leadflow_deploy::Error>(), Some(leadflow_deploy::Error::HolderChanged { .. })) {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(leadflow_deploy::EXIT_HOLDER_CHANGED);
        }
    }
    leadflow_cli::logging::exit(result)
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        None => deploy(&cli.stage),
        Some(Cmd::Run { stage }) => deploy(&stage),
        Some(Cmd::Predict { model_dir, input, output, input_kind }) => {
            renamed("predict");
            leadflow_cli::logging::init(0);
            let n = leadflow_serve::predict(&model_dir, &input, &output, input_kind)?.rows;
            println!("scored {n} rows -> {}", output.display());
            Ok(())
        }
        Some(Cmd::Validate { model_dir, features, input_kind, labels, expected, rows, min_accuracy }) => {
            renamed("check");
            leadflow_cli::logging::init(0);
            let spec = leadflow_serve::ValidationSpec { expected, labels, rows, min_accuracy, input: input_kind };
            let v = leadflow_serve::validate(&model_dir, &features, &spec)?;
            print!("{}", v.to_text());
            if !v.passed {
                bail!("validation failed for {} ({} of {} compared rows differ)", model_dir.display(), v.mismatches.len(), v.rows_compared);
            }
            println!("validation passed");
            Ok(())
        }
        Some(Cmd::Serve { model_dir, model, host, port, input_kind, max_body_mib, max_rows, timeout_seconds, poll_seconds }) => {
            renamed("serve");
            leadflow_cli::logging::init(0);
            let source = match model {
                Some(m) => {
                    let Some((name, alias)) = m.split_once('@') else {
                        bail!("--model takes name@alias (e.g. lead_model@champion), got {m:?}");
                    };
                    leadflow_serve::server::ModelSource::Registry { name: name.into(), alias: alias.into() }
                }
                None => leadflow_serve::server::ModelSource::Dir(model_dir),
            };
            let mut opts = leadflow_serve::server::ServeOptions::new(source);
            opts.input = input_kind;
            opts.max_body_bytes = max_body_mib * 1024 * 1024;
            opts.max_rows = max_rows;
            opts.request_timeout = std::time::Duration::from_secs_f64(timeout_seconds);
            opts.poll = std::time::Duration::from_secs_f64(poll_seconds);
            leadflow_serve::server::run(opts, &format!("{host}:{port}"))?;
            Ok(())
        }
        Some(Cmd::Promote { model_dir, stage }) => {
            renamed("promote");
            leadflow_cli::logging::init(0);
            let stage = match stage {
                StageArg::Staging => leadflow_core::params::Stage::Staging,
                StageArg::Production => leadflow_core::params::Stage::Production,
            };
            let store = open_store(&StoreLocation::from_env())?;
            let r = leadflow_deploy::promote_exported(store.as_ref(), &model_dir, stage)?;
            eprintln!(
                "{} v{} -> {} (@{}){}",
                r.model_name,
                r.version,
                r.stage,
                r.alias,
                r.previous_holder.map(|p| format!(", previously v{p}")).unwrap_or_default()
            );
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        Some(Cmd::Show { name, alias }) => {
            renamed("show");
            let store = open_store(&StoreLocation::from_env())?;
            let v = leadflow_deploy::describe(store.as_ref(), &name, alias.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
    }
}

/// The same command under `leadflow`, which is where it lives now.
fn renamed(new: &str) {
    eprintln!("note: `leadflow-deploy` subcommands moved to `leadflow model {new}` (this spelling goes in the next release)");
}

fn deploy(stage: &StageArgs) -> anyhow::Result<()> {
    stage.init_logging();
    let params = stage.load_params()?;
    let store = open_store(&StoreLocation::from_env())?;
    let d = leadflow_deploy::run(&stage.layout(), &params, store.as_ref())?;
    println!("{}", serde_json::to_string_pretty(&d)?);
    Ok(())
}
