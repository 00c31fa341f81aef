//! The end-of-run summary, read back from the artifacts (so it is the same for both engines).

use std::fmt::Write as _;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::{Deployment, Evaluation, ModelResults};

pub fn summary(layout: &Layout) -> String {
    let mut s = String::from("\n== leadflow summary ==\n");
    if let Ok(r) = art::read_json::<ModelResults>(&layout.path(&art::MODEL_RESULTS), "results") {
        let _ = writeln!(s, "split: {} train / {} test rows, {} features", r.split.train_rows, r.split.test_rows, r.split.features.len());
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
            "decision: {} ({}; gate {})",
            if e.promote { format!("promote {}", e.selected.label()) } else { "keep the incumbent".to_string() },
            e.reasons.last().cloned().unwrap_or_default(),
            if e.gate.passed { "passed" } else { "FAILED" }
        );
    }
    if let Ok(d) = art::read_json::<Deployment>(&layout.path(&art::DEPLOYMENT), "deployment") {
        match d.version {
            Some(v) => {
                let _ = writeln!(
                    s,
                    "registry: {} v{v} in {} (@{}){}",
                    d.model_name,
                    d.stage.unwrap_or_default(),
                    d.alias.unwrap_or_default(),
                    d.previous_holder.map(|p| format!(", previously v{p}")).unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(s, "registry: unchanged (not promoted)");
            }
        }
        let _ = writeln!(s, "model:    {}", layout.model_dir().display());
    }
    if layout.path(&art::REPORT).is_file() {
        let _ = writeln!(s, "report:   {}", layout.path(&art::REPORT).display());
    }
    s
}
