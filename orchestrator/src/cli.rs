//! The `leadflow` command line: argument definitions only (uv's `uv-cli` style). What each
//! command does is in `commands/`, one file a command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use leadflow_core::artifacts::{StageId, DEFAULT_ARTIFACTS_DIR};
use leadflow_serve::InputKind;

use crate::{EngineChoice, Force};

/// leadflow: train, evaluate, register and serve tabular classification models (the
/// lead-conversion model by default), reproducibly.
///
/// Without a command it runs the pipeline (data -> train -> evaluate -> deploy) on the table the
/// params describe; stages whose inputs, params and code are unchanged are skipped.
#[derive(Debug, Parser)]
#[command(name = "leadflow", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

impl Cli {
    /// Parse the process arguments. Global options go before or after a command
    /// (`leadflow -q history`, `leadflow history -q`); run options without a command are the
    /// default `run`'s, and refused beside another command.
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let mut cmd = Cli::command();
        let matches = cmd.get_matches_mut();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit());
        if let Some((name, _)) = matches.subcommand().filter(|(name, _)| *name != "run") {
            let given = ["engine", "raw", "from", "to", "force", "dagger_timeout"]
                .into_iter()
                .find(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine));
            if let Some(id) = given {
                let flag = format!("--{}", id.replace('_', "-"));
                cmd.error(clap::error::ErrorKind::ArgumentConflict, format!("`{flag}` is a run option; it cannot be used with `{name}`"))
                    .exit();
            }
        }
        cli
    }
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Params file; default: ./params.toml if present, else the built-in lead preset.
    #[arg(long, value_name = "FILE", env = "LEADFLOW_PARAMS", global = true)]
    pub params: Option<PathBuf>,
    /// Root of the artifacts tree.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ARTIFACTS_DIR, env = "LEADFLOW_ARTIFACTS_DIR", global = true)]
    pub artifacts_dir: PathBuf,
    /// Tracking store and registry: an MLflow server (http://...), sqlite:///path/mlflow.db, or a
    /// folder. Default: $MLFLOW_TRACKING_URI, else the store the last run in --artifacts-dir
    /// used, else ./mlruns/mlflow.db.
    #[arg(long, value_name = "URI", global = true)]
    pub tracking_uri: Option<String>,
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the pipeline (the default).
    Run(RunArgs),
    /// List the recorded pipeline runs: id, start, status, what ran, score, decision.
    History,
    /// Compare two recorded runs: params that differ, metrics side by side.
    Diff(DiffArgs),
    /// Write the pull-request report of the last run (decision, this run beside the champion,
    /// the gate, data version, model card headline, curves as Mermaid charts).
    Report {
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
    /// Raw data: check a file against the params, or write synthetic data.
    #[command(subcommand)]
    Data(DataCmd),
    /// The exported or registered model: score, check, serve, show, promote.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Run one stage, always (no up-to-date check): what a container runs, and for debugging.
    Stage {
        #[arg(value_parser = parse_stage)]
        stage: StageId,
        /// Raw CSV or Parquet, for the data stage (default: $LEADFLOW_RAW, else the committed sample).
        #[arg(long, value_name = "CSV")]
        raw: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Run options")]
pub struct RunArgs {
    /// Where the stages run.
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: EngineChoice,
    /// Raw CSV or Parquet (default: $LEADFLOW_RAW, else the committed lead sample data/sample/raw_data.csv).
    #[arg(long, value_name = "CSV")]
    pub raw: Option<PathBuf>,
    /// First stage to run.
    #[arg(long, value_parser = parse_stage, default_value = "data")]
    pub from: StageId,
    /// Last stage to run.
    #[arg(long, value_parser = parse_stage, default_value = "deploy")]
    pub to: StageId,
    /// Re-run stages even when up to date: all (`--force`) or one (`--force train`).
    #[arg(long, value_name = "STAGE", num_args = 0..=1, default_missing_value = "all", value_parser = parse_force)]
    pub force: Option<Force>,
    /// Seconds the Dagger engine may take to answer its first query (a first start may pull the
    /// engine image).
    #[arg(long, default_value_t = 300)]
    pub dagger_timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// Run id (or unique prefix); default: the second-to-last run that did something.
    pub run_a: Option<String>,
    /// Run id (or unique prefix); default: the last run that did something.
    pub run_b: Option<String>,
    /// table (terminal) or md (Markdown, for a pull-request comment).
    #[arg(long, value_enum, default_value = "table")]
    pub format: DiffFormat,
    /// Also pair runs in which every stage was up to date (no-op reruns).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    Table,
    Md,
}

#[derive(Debug, Subcommand)]
pub enum DataCmd {
    /// Check a raw file against the params' dataset (columns, types, validation rules) without
    /// running the stage: every violation listed, nothing written, non-zero exit if any.
    Validate {
        /// Raw CSV (default: $LEADFLOW_RAW, else the committed sample).
        #[arg(long, value_name = "CSV")]
        raw: Option<PathBuf>,
    },
    /// Write synthetic data from the project's own generators (deterministic per seed).
    Generate {
        /// Which schema: the lead raw schema or the churn example's.
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

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Schema {
    Lead,
    Churn,
}

#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// Score a CSV: raw rows of the training table or encoded feature rows (X_test.csv shape).
    Predict {
        /// An exported model directory (default: <artifacts-dir>/model).
        #[arg(long, value_name = "DIR", conflicts_with = "model")]
        model_dir: Option<PathBuf>,
        /// A registered model instead, by alias: name@alias (e.g. lead_model@challenger), as
        /// `model serve --model` takes it.
        #[arg(long, value_name = "NAME@ALIAS")]
        model: Option<String>,
        /// File to score: CSV, or Parquet (`.parquet`, `.pq`). Read a chunk at a time: memory
        /// stays bounded whatever its size.
        #[arg(long)]
        input: PathBuf,
        /// Where to write row,[id,]probability,label (multiclass: label,p_<class>...), in input
        /// order; written whole or not at all.
        #[arg(long, default_value = "predictions.csv")]
        output: PathBuf,
        /// What the input rows are (auto: decided by the columns).
        #[arg(long, value_enum, default_value_t = InputKind::Auto)]
        input_kind: InputKind,
        /// Also write each row's contributions per input column and the bias (they add up to the
        /// margin: XGBoost's TreeSHAP, or coefficient x (value - training mean)); binary models.
        #[arg(long)]
        explain: bool,
        /// Rows one thread scores at a time (memory holds about two chunks per thread).
        #[arg(long, value_name = "ROWS", default_value_t = leadflow_serve::batch::CHUNK_ROWS)]
        chunk_rows: usize,
        /// Threads scoring chunks side by side (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
    /// Check a model's predictions against labels and/or a minimum accuracy (default: the last
    /// run's test split); non-zero exit with the differing rows when they disagree.
    Check {
        /// An exported model directory (default: <artifacts-dir>/model).
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// Feature CSV or raw rows (default: <artifacts-dir>/train/X_test.csv).
        #[arg(long)]
        features: Option<PathBuf>,
        /// What the feature CSV's rows are (auto: decided by the columns).
        #[arg(long, value_enum, default_value_t = InputKind::Auto)]
        input_kind: InputKind,
        /// Labels CSV (default, without --expected: <artifacts-dir>/train/y_test.csv).
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
    /// Serve a model over HTTP in MLflow's scoring protocol (POST /invocations; GET /ping,
    /// /health, /version, /metrics). With --model name@alias it follows the alias.
    Serve(ServeArgs),
    /// Compare a batch of raw rows (a CSV, or the server's prediction log) with the data the
    /// model was trained on: per input PSI and a KS or chi-squared test, missing values,
    /// out-of-range values, unseen levels, and the model's scores. Writes drift.json and
    /// drift.md, logs an MLflow run, and exits non-zero when anything drifted beyond [drift].
    Drift {
        /// An exported model directory (default: <artifacts-dir>/model).
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// The batch: raw rows with the model's input columns (other columns are ignored).
        #[arg(long, value_name = "CSV")]
        input: PathBuf,
        /// Where to write drift.json and drift.md (default: <artifacts-dir>/drift).
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Do not log the check as an MLflow run.
        #[arg(long)]
        no_tracking: bool,
    },
    /// Show the registered versions of the params' model (or the one holding an alias).
    Show {
        /// Registered model name (default: the params' deploy.model_name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        alias: Option<String>,
    },
    /// Promote the registered version an exported model directory names to a registry stage and
    /// its alias (compare-and-swap): the release workflow's step.
    Promote {
        /// An exported model directory (default: <artifacts-dir>/model).
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// Staging (alias challenger) or Production (alias champion).
        #[arg(long, value_enum, default_value = "production")]
        stage: RegistryStage,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// An exported model directory (default: <artifacts-dir>/model).
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    pub model_dir: Option<PathBuf>,
    /// A registered model as name@alias, e.g. lead_model@challenger.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 5001)]
    pub port: u16,
    /// What request rows are (auto: decided by the columns).
    #[arg(long, value_enum, default_value_t = InputKind::Auto)]
    pub input_kind: InputKind,
    /// Largest request body, MiB (larger: 413).
    #[arg(long, default_value_t = 8)]
    pub max_body_mib: usize,
    /// Most rows in one request (more: 400).
    #[arg(long, default_value_t = 10_000)]
    pub max_rows: usize,
    /// A request that takes longer is answered 503.
    #[arg(long, default_value_t = 10.0)]
    pub timeout_seconds: f64,
    /// How often the registry alias is checked for a new version.
    #[arg(long, default_value_t = 5.0)]
    pub poll_seconds: f64,
    /// A client must send a request's headers within this, and an idle keep-alive connection is
    /// closed after it.
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout_seconds: f64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Require `Authorization: Bearer <token>` on /invocations, /version and /metrics, with the
    /// token read from this file (or from $LEADFLOW_SERVE_TOKEN). /ping and /health stay open.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Write scored rows (time, model version, raw inputs, prediction) to this CSV, which
    /// `leadflow model drift --input` reads. Off by default.
    #[arg(long, value_name = "CSV")]
    pub log_predictions: Option<PathBuf>,
    /// Share of rows logged, in (0, 1].
    #[arg(long, default_value_t = 1.0, requires = "log_predictions")]
    pub log_sample: f64,
    /// Rotate the log at this size (MiB); FILE.1 is the newest old one.
    #[arg(long, default_value_t = 100, requires = "log_predictions")]
    pub log_max_mib: u64,
    /// Rotated logs kept.
    #[arg(long, default_value_t = 5, requires = "log_predictions")]
    pub log_keep: usize,
}

/// Registry stages (not pipeline stages): where `promote` moves a version.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RegistryStage {
    Staging,
    Production,
}

impl From<RegistryStage> for leadflow_core::params::Stage {
    fn from(s: RegistryStage) -> Self {
        match s {
            RegistryStage::Staging => leadflow_core::params::Stage::Staging,
            RegistryStage::Production => leadflow_core::params::Stage::Production,
        }
    }
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
