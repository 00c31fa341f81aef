//! The pipeline's stages behind one seam: each [`Stage`] says what it is, what it reads (its
//! fingerprint inputs), the command that runs it in a container, and runs itself in-process. Both
//! engines go through [`STAGES`]; nothing else matches on a stage to decide what to do, and a
//! failure stays the stage crate's own typed error ([`StageError`]) up to the run's end.

use std::path::Path;

use leadflow_core::artifacts::{Layout, StageId};
use leadflow_core::fingerprint::Reads;
use leadflow_core::Params;
use leadflow_mlflow::Store;

/// What a stage needs to run in-process.
pub struct StageContext<'a> {
    /// The raw input (read by the data stage only).
    pub raw: &'a Path,
    pub layout: &'a Layout,
    pub params: &'a Params,
    pub store: &'a dyn Store,
}

/// A pipeline stage.
pub trait Stage: Sync {
    fn id(&self) -> StageId;
    /// What it reads: its fingerprint's inputs, declared by the stage crate.
    fn reads(&self) -> &'static Reads;
    /// The command that runs it inside the container (the Dagger engine): `leadflow stage <name>`.
    fn command(&self) -> [&'static str; 3] {
        ["leadflow", "stage", self.id().name()]
    }
    /// Run it in this process; a one-line summary of what it did.
    fn run(&self, cx: &StageContext<'_>) -> Result<String, StageError>;
}

/// A stage's failure, as the stage crate reported it.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Data(#[from] leadflow_data::Error),
    #[error(transparent)]
    Train(#[from] leadflow_train::Error),
    #[error(transparent)]
    Evaluate(#[from] leadflow_evaluate::Error),
    #[error(transparent)]
    Deploy(#[from] leadflow_deploy::Error),
}

impl StageError {
    /// Deploy found that the registry moved after evaluate decided: evaluate and deploy may run
    /// again against the new holder.
    pub fn holder_changed(&self) -> bool {
        matches!(self, StageError::Deploy(leadflow_deploy::Error::HolderChanged { .. }))
    }

    /// The whole chain of causes, on one line.
    pub fn chain(&self) -> String {
        leadflow_core::error::chain(self)
    }
}

/// Every stage, in pipeline order (indexed by `StageId as usize`).
pub static STAGES: [&dyn Stage; 4] = [&Data, &Train, &Evaluate, &Deploy];

/// The stage `id` names.
pub fn stage(id: StageId) -> &'static dyn Stage {
    let s = STAGES[id as usize];
    debug_assert_eq!(s.id(), id);
    s
}

struct Data;
struct Train;
struct Evaluate;
struct Deploy;

impl Stage for Data {
    fn id(&self) -> StageId {
        StageId::Data
    }
    fn reads(&self) -> &'static Reads {
        &leadflow_data::READS
    }
    fn run(&self, cx: &StageContext<'_>) -> Result<String, StageError> {
        let s = leadflow_data::run(cx.raw, cx.layout, cx.params)?;
        Ok(format!("{} raw rows -> {} gold rows ({})", s.rows["raw"], s.rows["gold"], cx.raw.display()))
    }
}

impl Stage for Train {
    fn id(&self) -> StageId {
        StageId::Train
    }
    fn reads(&self) -> &'static Reads {
        &leadflow_train::READS
    }
    fn run(&self, cx: &StageContext<'_>) -> Result<String, StageError> {
        let s = leadflow_train::run(cx.layout, cx.params, cx.store)?;
        let m: Vec<String> = s.models.iter().map(|(k, m)| format!("{} test F1w {:.4}", k.name(), m.test_f1_weighted)).collect();
        Ok(format!("{} train / {} test rows; {}", s.train_rows, s.test_rows, m.join(", ")))
    }
}

impl Stage for Evaluate {
    fn id(&self) -> StageId {
        StageId::Evaluate
    }
    fn reads(&self) -> &'static Reads {
        &leadflow_evaluate::READS
    }
    fn run(&self, cx: &StageContext<'_>) -> Result<String, StageError> {
        let e = leadflow_evaluate::run(cx.layout, cx.params, cx.store)?.evaluation;
        let decision = if e.promote { "promote" } else { "do not promote" };
        Ok(format!("selected {} ({} {:.4}); {decision}", e.selected.name(), e.selection_metric, e.selected_score))
    }
}

impl Stage for Deploy {
    fn id(&self) -> StageId {
        StageId::Deploy
    }
    fn reads(&self) -> &'static Reads {
        &leadflow_deploy::READS
    }
    fn run(&self, cx: &StageContext<'_>) -> Result<String, StageError> {
        let d = leadflow_deploy::run(cx.layout, cx.params, cx.store)?;
        let (stage, alias) = (d.stage.unwrap_or_default(), d.alias.unwrap_or_default());
        Ok(match (d.version, d.superseded_by) {
            (Some(v), Some(s)) => format!("{} v{v} -> {stage}; LOST RACE: v{s} took @{alias} right after", d.model_name),
            (Some(v), None) => format!("{} v{v} -> {stage}", d.model_name),
            (None, _) => "not promoted: registry untouched, no model exported".into(),
        })
    }
}
