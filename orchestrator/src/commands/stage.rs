//! `leadflow stage <name>`: one stage, always run (no up-to-date check), through the same entry
//! point as the local engine — what the Dagger engine runs in the container. Exit status 1 when
//! it fails, 3 when deploy found the registry moved after evaluate decided.

use std::path::PathBuf;

use leadflow_core::artifacts::StageId;

use crate::cli::GlobalArgs;

pub fn stage(g: &GlobalArgs, stage: StageId, raw: Option<PathBuf>) -> anyhow::Result<()> {
    let params = g.params()?;
    let store = leadflow_mlflow::open_store(&g.tracking())?;
    let raw = leadflow_data::resolve_raw(raw.as_deref());
    let cx = crate::stages::StageContext { raw: &raw, layout: &g.layout(), params: &params, store: store.as_ref() };
    let message = match crate::stages::stage(stage).run(&cx) {
        Ok(m) => m,
        // Its own exit status, so the engine that ran it can re-run evaluate and deploy.
        Err(e) if e.holder_changed() => {
            eprintln!("error: stage `{stage}` failed: {}", e.chain());
            std::process::exit(i32::from(leadflow_deploy::EXIT_HOLDER_CHANGED));
        }
        Err(e) => anyhow::bail!("stage `{stage}` failed: {}", e.chain()),
    };
    eprintln!("[{:<8}] ok  {message}", stage.name());
    Ok(())
}
