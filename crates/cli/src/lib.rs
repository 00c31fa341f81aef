//! leadflow-cli: what every leadflow binary shares on the command line, so they read the same on
//! each: the stage arguments, logging set-up ([`logging`]) and the exit with the error chain.

pub mod logging;

use std::path::PathBuf;

use leadflow_core::artifacts::{Layout, DEFAULT_ARTIFACTS_DIR};
use leadflow_core::params::Params;

#[derive(Debug, Clone, clap::Args)]
pub struct StageArgs {
    /// Params file (DVC-style); default: ./params.toml if present, else built-in defaults.
    #[arg(long, value_name = "FILE", env = "LEADFLOW_PARAMS")]
    pub params: Option<PathBuf>,
    /// Root of the artifacts tree.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ARTIFACTS_DIR, env = "LEADFLOW_ARTIFACTS_DIR")]
    pub artifacts_dir: PathBuf,
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl StageArgs {
    pub fn init_logging(&self) {
        let v = if self.quiet { -1 } else { self.verbose.min(3) as i8 };
        crate::logging::init(v);
    }

    pub fn load_params(&self) -> leadflow_core::Result<Params> {
        Params::load_or_default(self.params.as_deref())
    }

    pub fn layout(&self) -> Layout {
        Layout::new(&self.artifacts_dir)
    }
}
