//! The local engine: each stage's library entry point, in this process — the same code the
//! stage binaries call. Stages whose fingerprint matches and whose outputs are intact are skipped.

use std::time::Instant;

use leadflow_core::artifacts::{Layout, StageId};
use leadflow_core::fingerprint::Status;
use leadflow_core::Params;
use leadflow_mlflow::open_store;

use crate::{print_stage, stage_status, Error, Outcome, Result, RunOptions, StageReport};

pub fn run(opts: &RunOptions, params: &Params) -> Result<Vec<StageReport>> {
    let layout = Layout::new(&opts.artifacts_dir);
    let store = open_store(&opts.tracking)?;
    let mut reports = Vec::new();
    let mut queue: std::collections::VecDeque<StageId> = opts.stages().into();
    let mut re_evaluated = false;
    while let Some(stage) = queue.pop_front() {
        let t = Instant::now();
        crate::interrupt::started(stage);
        match stage_status(opts, params, Some(store.as_ref()), stage)? {
            Status::UpToDate => {
                let r = StageReport {
                    stage,
                    outcome: Outcome::UpToDate,
                    seconds: t.elapsed().as_secs_f64(),
                    message: "inputs, params and code unchanged; outputs intact".into(),
                };
                print_stage(&r);
                crate::interrupt::finished(&r);
                reports.push(r);
                continue;
            }
            Status::UpToDateFailed(message) => {
                // The recorded result is a failure (a rejected model): fail again, the same way.
                let r = StageReport { stage, outcome: Outcome::Failed, seconds: t.elapsed().as_secs_f64(), message: message.clone() };
                eprintln!("[{:<8}] up to date; its recorded result is a failure (--force {stage} runs it again):", stage.name());
                print_stage(&r);
                reports.push(r);
                return Err(Error::Stage { stage, message, reports });
            }
            Status::Stale(why) => eprintln!("[{:<8}] running ({why}) ...", stage.name()),
        }
        let outcome = run_stage(stage, &opts.raw, &layout, params, store.as_ref());
        let seconds = t.elapsed().as_secs_f64();
        match outcome {
            Ok(message) => {
                let r = StageReport { stage, outcome: Outcome::Ran, seconds, message };
                print_stage(&r);
                crate::interrupt::finished(&r);
                reports.push(r);
            }
            Err(StageFailure { message, holder_changed: true }) if !re_evaluated => {
                // Another pipeline moved the registry after evaluate decided: compare again with
                // the new holder, once (evaluate and deploy read the registry, so both re-run).
                re_evaluated = true;
                let r = StageReport {
                    stage,
                    outcome: Outcome::Failed,
                    seconds,
                    message: format!("{message} (re-running evaluate and deploy)"),
                };
                print_stage(&r);
                crate::interrupt::finished(&r);
                reports.push(r);
                queue.push_front(StageId::Deploy);
                queue.push_front(StageId::Evaluate);
            }
            Err(StageFailure { message, .. }) => {
                // A stage that fails because Ctrl-C removed its temporary files is not a failure.
                crate::interrupt::yield_to_handler();
                let r = StageReport { stage, outcome: Outcome::Failed, seconds, message: message.clone() };
                print_stage(&r);
                reports.push(r);
                return Err(Error::Stage { stage, message, reports });
            }
        }
    }
    Ok(reports)
}

/// Why a stage failed: its error chain, and whether it was deploy finding that the registry
/// moved after evaluate decided (which the local engine answers by re-running both).
#[derive(Debug)]
pub struct StageFailure {
    pub message: String,
    pub holder_changed: bool,
}

fn failed(e: &(dyn std::error::Error + 'static)) -> StageFailure {
    StageFailure { message: leadflow_core::error::chain(e), holder_changed: false }
}

/// Run one stage's library entry point (the same code the stage binaries call); returns its
/// one-line summary.
pub fn run_stage(
    stage: StageId,
    raw: &std::path::Path,
    layout: &Layout,
    params: &Params,
    store: &dyn leadflow_mlflow::Store,
) -> std::result::Result<String, StageFailure> {
    match stage {
        StageId::Data => leadflow_data::run(raw, layout, params)
            .map(|s| format!("{} raw rows -> {} gold rows ({})", s.rows["raw"], s.rows["gold"], raw.display()))
            .map_err(|e| failed(&e)),
        StageId::Train => leadflow_train::run(layout, params, store)
            .map(|s| {
                let m: Vec<String> = s.models.iter().map(|(k, m)| format!("{} test F1w {:.4}", k.name(), m.test_f1_weighted)).collect();
                format!("{} train / {} test rows; {}", s.train_rows, s.test_rows, m.join(", "))
            })
            .map_err(|e| failed(&e)),
        StageId::Evaluate => leadflow_evaluate::run(layout, params, store)
            .map(|s| {
                format!(
                    "selected {} ({} {:.4}); {}",
                    s.evaluation.selected.name(),
                    s.evaluation.selection_metric,
                    s.evaluation.selected_score,
                    if s.evaluation.promote { "promote" } else { "do not promote" }
                )
            })
            .map_err(|e| failed(&e)),
        StageId::Deploy => leadflow_deploy::run(layout, params, store)
            .map(|d| match (d.version, d.superseded_by) {
                (Some(v), Some(s)) => {
                    format!(
                        "{} v{v} -> {}; LOST RACE: v{s} took @{} right after",
                        d.model_name,
                        d.stage.unwrap_or_default(),
                        d.alias.unwrap_or_default()
                    )
                }
                (Some(v), None) => format!("{} v{v} -> {}", d.model_name, d.stage.unwrap_or_default()),
                (None, _) => "not promoted: registry untouched, no model exported".into(),
            })
            .map_err(|e| StageFailure {
                holder_changed: matches!(e, leadflow_deploy::Error::HolderChanged { .. }),
                message: leadflow_core::error::chain(&e),
            }),
    }
}
