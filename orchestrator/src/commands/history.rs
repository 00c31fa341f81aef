//! `leadflow history` and `leadflow diff`.

use anyhow::anyhow;

use crate::cli::{DiffArgs, DiffFormat, GlobalArgs};
use crate::history::{self, PipelineRun};

pub fn list(g: &GlobalArgs) -> anyhow::Result<()> {
    let runs = history::list(&g.layout());
    if runs.is_empty() {
        anyhow::bail!("no recorded runs in {}/{}: run the pipeline first", g.artifacts_dir.display(), history::DIR);
    }
    super::out(history::to_table(&runs))?;
    Ok(())
}

pub fn diff(g: &GlobalArgs, a: DiffArgs) -> anyhow::Result<()> {
    let runs = history::list(&g.layout());
    // By default the runs that did something: a rerun where every stage was up to date changed
    // nothing and would show only zeros.
    let candidates: Vec<&PipelineRun> = runs.iter().filter(|r| a.all || !r.no_op()).collect();
    let from_end = |n: usize| -> anyhow::Result<&PipelineRun> {
        candidates.len().checked_sub(n).map(|i| candidates[i]).ok_or_else(|| {
            anyhow!(
                "need at least two recorded runs that did something in {}/{} (found {}; --all counts no-op reruns too)",
                g.artifacts_dir.display(),
                history::DIR,
                candidates.len()
            )
        })
    };
    let pick = |key: &str| history::find(&runs, key).map_err(anyhow::Error::msg);
    let (ra, rb) = match (a.run_a.as_deref(), a.run_b.as_deref()) {
        (Some(x), Some(y)) => (pick(x)?, pick(y)?),
        (Some(x), None) => (pick(x)?, from_end(1)?),
        (None, _) => (from_end(2)?, from_end(1)?),
    };
    let d = history::diff(ra, rb);
    match a.format {
        DiffFormat::Table => super::out(d.to_table())?,
        DiffFormat::Md => super::out(d.to_markdown())?,
    }
    Ok(())
}
