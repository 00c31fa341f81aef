use clap::Parser;
use leadflow_cli::StageArgs;
use leadflow_mlflow::open_store;
use leadflow_mlflow::tracking::StoreLocation;

/// leadflow evaluate stage: metrics, plots and report for both models on the test split; picks
/// the best, compares it with the registry's champion, applies the quality gate. Writes
/// artifacts/evaluate/ (also when the gate fails, so the failure can be explained).
#[derive(Debug, Parser)]
#[command(name = "leadflow-evaluate", version)]
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
    let summary = leadflow_evaluate::run(&cli.stage.layout(), &params, store.as_ref())?;
    println!("{}", serde_json::to_string_pretty(&summary.evaluation)?);
    println!("report: {}", summary.report.display());
    Ok(())
}
