//! What each `leadflow` command does, one file a command; [`main`] parses and dispatches.

mod data;
mod drift;
mod history;
mod model;
mod pull;
mod report;
mod run;
mod stage;

use std::path::Path;

use clap::CommandFactory;
use leadflow_core::artifacts::Layout;
use leadflow_mlflow::tracking::StoreLocation;

use crate::cli::{Cli, Cmd, GlobalArgs};

/// The `leadflow` binary: parse the arguments, run the command, report.
pub fn main() -> std::process::ExitCode {
    leadflow_cli::logging::exit(dispatch(Cli::parse_args()))
}

/// The pre-`leadflow` spelling (`orchestrator ...`): the same commands, with a note.
pub fn main_old_spelling() -> std::process::ExitCode {
    eprintln!("note: `orchestrator` is now `leadflow` (same commands); the old name goes in the next release");
    main()
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    g.init_logging();
    match cli.cmd {
        None => run::run(&g, cli.run),
        Some(Cmd::Run(a)) => run::run(&g, a),
        Some(Cmd::History) => history::list(&g),
        Some(Cmd::Diff(a)) => history::diff(&g, a),
        Some(Cmd::Report { output }) => report::report(&g, output),
        Some(Cmd::Pull { lock, url }) => pull::pull(&lock, url.as_deref()),
        Some(Cmd::Data(c)) => data::data(&g, c),
        Some(Cmd::Model(c)) => model::model(&g, c),
        Some(Cmd::Stage { stage, raw }) => stage::stage(&g, stage, raw),
        Some(Cmd::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "leadflow", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// The file in an artifacts directory that records which tracking store its last run used.
pub const TRACKING_RECORD: &str = ".tracking-uri";

impl GlobalArgs {
    pub fn init_logging(&self) {
        leadflow_cli::logging::init(if self.quiet { -1 } else { self.verbose.min(3) as i8 });
    }

    pub fn layout(&self) -> Layout {
        Layout::new(&self.artifacts_dir)
    }

    pub fn params(&self) -> leadflow_core::Result<leadflow_core::Params> {
        leadflow_core::Params::load_or_default(self.params.as_deref())
    }

    /// The tracking store: `--tracking-uri`, else `MLFLOW_TRACKING_URI`, else the store the last
    /// run in this artifacts directory recorded, else `./mlruns/mlflow.db`.
    pub fn tracking(&self) -> StoreLocation {
        let env = std::env::var(leadflow_mlflow::tracking::TRACKING_URI_ENV).ok().filter(|s| !s.trim().is_empty());
        let recorded = || recorded_store(&self.artifacts_dir);
        StoreLocation::parse(self.tracking_uri.clone().or(env).or_else(recorded).as_deref())
    }
}

/// Write to standard output; a reader that went away (`leadflow history | head`) ends the
/// output quietly instead of failing the command.
pub fn out(text: String) -> std::io::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The store recorded in `artifacts_dir` by its last run, if any.
pub fn recorded_store(artifacts_dir: &Path) -> Option<String> {
    std::fs::read_to_string(artifacts_dir.join(TRACKING_RECORD)).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}
