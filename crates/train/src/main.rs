use clap::Parser;
use leadflow_cli::StageArgs;
use leadflow_mlflow::open_store;
use leadflow_mlflow::tracking::StoreLocation;

/// leadflow train stage: tune, fit and track the XGBoost random forest and the logistic
/// regression on artifacts/data/train_data_gold.csv; writes artifacts/train/.
///
/// Tracking goes to $MLFLOW_TRACKING_URI (default ./mlruns/mlflow.db, SQLite in MLflow's schema).
#[derive(Debug, Parser)]
#[command(name = "leadflow-train", version)]
struct Cli {
    #[command(flatten)]
    stage: StageArgs,
}

fn main() -> std::process::ExitCode {
    leadflow_cli::logging::exit(real_main(Cli::parse()))
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    cli.stage.init_logging();
    let params = cli.stage.load_params()?;
    let store = open_store(&StoreLocation::from_env())?;
    let summary = leadflow_train::run(&cli.stage.layout(), &params, store.as_ref())?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
