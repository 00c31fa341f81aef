//! The end-of-run summary, read back from the artifacts (so it is the same for both engines).
//!
//! Every line says whose result it shows. A stage's outputs count as this run's when its
//! `run.json` was written after the run started (evaluate commits its outputs before failing its
//! quality gate, so a gate failure still shows this run's decision); outputs of a stage that was
//! up to date are shown as such; anything else on disk is from an earlier run and labelled with
//! when that run finished, so a failed run never passes older results off as its own.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use leadflow_core::artifacts::{self as art, Layout, StageId};
use leadflow_core::results::{Deployment, Evaluation, ModelResults};

use crate::StageReport;

/// Whose result a stage's outputs on disk are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Written by this run.
    ThisRun,
    /// Skipped as up to date: still current for this run's inputs.
    UpToDate,
    /// Left by an earlier run (this run's stage failed or did not run), finished at the time given.
    Older(String),
}

impl Freshness {
    fn suffix(&self) -> String {
        match self {
            Freshness::ThisRun => String::new(),
            Freshness::UpToDate => "  (up to date)".into(),
            Freshness::Older(t) => format!("  [OLDER: from an earlier run finished {t}]"),
        }
    }
}

fn meta_path(stage: StageId) -> &'static art::Artifact {
    match stage {
        StageId::Data => &art::DATA_META,
        StageId::Train => &art::TRAIN_META,
        StageId::Evaluate => &art::EVALUATE_META,
        StageId::Deploy => &art::DEPLOY_META,
    }
}

/// Whose result the outputs of `stage` are, given this run's reports and start time.
pub fn freshness(layout: &Layout, reports: &[StageReport], started_at: DateTime<Utc>, stage: StageId) -> Freshness {
    let finished = leadflow_core::meta::read(&layout.path(meta_path(stage)))
        .ok()
        .and_then(|m| DateTime::parse_from_rfc3339(&m.finished_at).ok())
        .map(|t| t.with_timezone(&Utc));
    let report = reports.iter().rev().find(|r| r.stage == stage);
    match (finished, report) {
        (Some(t), _) if t >= started_at => Freshness::ThisRun,
        (_, Some(r)) if r.skipped() => Freshness::UpToDate,
        (Some(t), _) => Freshness::Older(t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        (None, _) => Freshness::Older("at an unknown time".into()),
    }
}

/// What each stage did in this run, one line.
fn stage_line(reports: &[StageReport]) -> String {
    StageId::ALL
        .iter()
        .map(|&s| {
            let what = match reports.iter().rev().find(|r| r.stage == s) {
                Some(r) => match r.outcome {
                    crate::Outcome::UpToDate => "up to date".to_string(),
                    crate::Outcome::Ran => format!("ok ({:.2}s)", r.seconds),
                    crate::Outcome::Failed => "FAILED".to_string(),
                    crate::Outcome::Interrupted => "killed".to_string(),
                },
                None => "not run".to_string(),
            };
            format!("{} {what}", s.name())
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn summary(layout: &Layout, reports: &[StageReport], started_at: DateTime<Utc>) -> String {
    let mut s = String::from("\n== leadflow summary ==\n");
    let _ = writeln!(s, "this run: {}", stage_line(reports));
    for (i, r) in reports.iter().enumerate().filter(|(_, r)| !r.ok()) {
        // A stage that failed and then ran again (deploy after the registry moved) was retried.
        let retried = reports[i + 1..].iter().any(|later| later.stage == r.stage);
        let _ = writeln!(s, "{} {}: {}", if retried { "retried: " } else { "failed:  " }, r.stage.name(), r.message);
    }
    let fresh = |stage| freshness(layout, reports, started_at, stage);
    if let Ok(r) = art::read_json::<ModelResults>(&layout.path(&art::MODEL_RESULTS), "results") {
        let _ = writeln!(
            s,
            "split: {} train / {} test rows, {} features{}",
            r.split.train_rows,
            r.split.test_rows,
            r.split.features.len(),
            fresh(StageId::Train).suffix()
        );
        for (k, m) in &r.models {
            let _ = writeln!(
                s,
                "  {:<24} CV {} {:.4} ± {:.4}   test accuracy {:.4}  F1 weighted {:.4}  ROC AUC {:.4}",
                k.label(),
                m.cv.metric,
                m.cv.mean,
                m.cv.std,
                m.test_report.accuracy,
                m.test_report.weighted_avg.f1,
                m.test_scores.roc_auc
            );
        }
    }
    if let Ok(e) = art::read_json::<Evaluation>(&layout.path(&art::EVALUATION), "evaluation") {
        let _ = writeln!(
            s,
            "decision: {} ({}; gate {}){}",
            if e.promote { format!("promote {}", e.selected.label()) } else { "keep the incumbent".to_string() },
            e.reasons.last().cloned().unwrap_or_default(),
            if e.gate.passed { "passed" } else { "FAILED" },
            fresh(StageId::Evaluate).suffix()
        );
    }
    if let Ok(d) = art::read_json::<Deployment>(&layout.path(&art::DEPLOYMENT), "deployment") {
        let deploy = fresh(StageId::Deploy).suffix();
        match d.version {
            Some(v) => {
                let _ = writeln!(
                    s,
                    "registry: {} v{v} in {} (@{}){}{deploy}",
                    d.model_name,
                    d.stage.unwrap_or_default(),
                    d.alias.unwrap_or_default(),
                    d.previous_holder.map(|p| format!(", previously v{p}")).unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(s, "registry: unchanged (not promoted){deploy}");
            }
        }
        if layout.model_dir().is_dir() {
            let _ = writeln!(s, "model:    {}{deploy}", layout.model_dir().display());
        } else {
            let _ = writeln!(s, "model:    none exported (nothing promoted){deploy}");
        }
    }
    if layout.path(&art::REPORT).is_file() {
        let _ = writeln!(s, "report:   {}{}", layout.path(&art::REPORT).display(), fresh(StageId::Evaluate).suffix());
    }
    s
}
