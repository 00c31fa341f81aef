//! `leadflow report`: the pull-request report of the last run.

use std::path::PathBuf;

use crate::cli::GlobalArgs;

pub fn report(g: &GlobalArgs, output: Option<PathBuf>) -> anyhow::Result<()> {
    let body = crate::report::render(&g.layout())?;
    match output {
        Some(p) => leadflow_core::artifacts::write_atomic(&p, body.as_bytes())?,
        None => super::out(body)?,
    }
    Ok(())
}
