//! `leadflow run` (the default command): the pipeline.

use std::time::Duration;

use crate::cli::{GlobalArgs, RunArgs};
use crate::RunOptions;

pub fn run(g: &GlobalArgs, args: RunArgs) -> anyhow::Result<()> {
    if args.from > args.to {
        anyhow::bail!("--from {} comes after --to {}", args.from, args.to);
    }
    let params = g.params()?;
    let opts = RunOptions {
        params_path: g.params.clone(),
        raw: leadflow_data::resolve_raw(args.raw.as_deref()),
        from: args.from,
        to: args.to,
        artifacts_dir: g.artifacts_dir.clone(),
        tracking: g.tracking(),
        repo_root: std::env::current_dir()?,
        connect_timeout: Duration::from_secs(args.dagger_timeout),
        force: args.force.unwrap_or_default(),
    };
    crate::pipeline::run(&opts, &params, args.engine)?;
    Ok(())
}
