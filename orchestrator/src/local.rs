//! The local engine: each stage's library entry point, in this process — the same code the
//! stage binaries call. Stages whose fingerprint matches and whose outputs are intact are skipped.

use std::time::Instant;

use leadflow_core::artifacts::{Layout, StageId};
use leadflow_core::fingerprint::Status;
use leadflow_core::Params;
use leadflow_mlflow::open_store;

use crate::stages::StageContext;
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
                return Err(Error::Stage { stage, message, reports, cause: None });
            }
            Status::Stale(why) => eprintln!("[{:<8}] running ({why}) ...", stage.name()),
        }
        let cx = StageContext { raw: &opts.raw, layout: &layout, params, store: store.as_ref() };
        let outcome = crate::stages::stage(stage).run(&cx);
        let seconds = t.elapsed().as_secs_f64();
        match outcome {
            Ok(message) => {
                let r = StageReport { stage, outcome: Outcome::Ran, seconds, message };
                print_stage(&r);
                crate::interrupt::finished(&r);
                reports.push(r);
            }
            Err(e) if e.holder_changed() && !re_evaluated => {
                let message = e.chain();
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
            Err(e) => {
                let message = e.chain();
                // A stage that fails because Ctrl-C removed its temporary files is not a failure.
                crate::interrupt::yield_to_handler();
                let r = StageReport { stage, outcome: Outcome::Failed, seconds, message: message.clone() };
                print_stage(&r);
                reports.push(r);
                return Err(Error::Stage { stage, message, reports, cause: Some(Box::new(e)) });
            }
        }
    }
    Ok(reports)
}
