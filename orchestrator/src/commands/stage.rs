//! `leadflow stage <name>`: one stage, always run (no up-to-date check), through the same entry
//! point as the local engine.

use std::path::PathBuf;

use leadflow_core::artifacts::StageId;

use crate::cli::GlobalArgs;

pub fn stage(g: &GlobalArgs, stage: StageId, raw: Option<PathBuf>) -> anyhow::Result<()> {
    let params = g.params()?;
    let store = leadflow_mlflow::open_store(&g.tracking())?;
    let raw = leadflow_data::resolve_raw(raw.as_deref());
    let cx = crate::stages::StageContext { raw: &raw, layout: &g.layout(), params: &params, store: store.as_ref() };
    let message = crate::stages::stage(stage).run(&cx).map_err(|e| anyhow::anyhow!("stage `{stage}` failed: {}", e.chain()))?;
    eprintln!("[{:<8}] ok  {message}", stage.name());
    Ok(())
}
