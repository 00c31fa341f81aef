//! The pull-request report, rendered from two real runs (a champion and a challenger compared
//! with it) and from a run whose gate failed.

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::results::{CurvesOnGrid, Evaluation};
use leadflow_testkit::{committed_sample, quick_params};
use orchestrator::report::{render, GITHUB_COMMENT_LIMIT, MARKER};

fn mermaid_blocks(s: &str) -> Vec<&str> {
    s.split("```mermaid\n").skip(1).map(|b| b.split("```").next().unwrap()).collect()
}

#[test]
fn the_report_puts_this_run_beside_the_champion_and_draws_the_curves() {
    let dir = tempfile::tempdir().unwrap();
    let opts = crate::options(dir.path(), &committed_sample());
    let layout = Layout::new(&opts.artifacts_dir);
    let params = quick_params();
    orchestrator::local::run(&opts, &params).unwrap();
    let first = render(&layout).unwrap();
    assert!(first.starts_with(MARKER));
    assert!(first.contains("No champion yet") && first.contains("promoted as v1 to Staging (@challenger)"), "{first}");

    // A challenger: another seed, compared with v1 on its own test split.
    let mut other = params.clone();
    other.train.seed = 5;
    // The committed sample is small: few of this split's rows were held out by v1 too.
    other.evaluate.min_comparison_rows = 5;
    orchestrator::local::run(&opts, &other).unwrap();
    let ev: Evaluation = art::read_json(&layout.path(&art::EVALUATION), "e").unwrap();
    let champ = ev.champion.clone().expect("compared with v1");
    let theirs = champ.scores.clone().expect("v1 re-scored");
    let body = render(&layout).unwrap();
    assert!(body.chars().count() < GITHUB_COMMENT_LIMIT);
    assert!(body.contains(&format!("| metric | this run: {} | @challenger v1 | change |", ev.selected.label())), "{body}");
    let metrics: std::collections::BTreeMap<leadflow_core::model::ModelKind, leadflow_metrics::Scores> =
        art::read_json(&layout.path(&art::METRICS), "m").unwrap();
    // Both on the rows v1 never trained on.
    let ours = champ.selected_scores.as_ref().unwrap_or(&metrics[&ev.selected]);
    let row =
        format!("| F1 weighted | {:.4} | {:.4} | {:+.4}", ours.f1_weighted, theirs.f1_weighted, ours.f1_weighted - theirs.f1_weighted);
    assert!(body.contains(&row), "{row}\n{body}");
    assert!(body.contains(&format!("| ROC AUC | {:.4} | {:.4} |", ours.roc_auc, theirs.roc_auc)), "{body}");
    // The decision as evaluate made it, with its reasons.
    let headline = body.lines().nth(1).unwrap();
    assert_eq!(headline.contains("promoted as v2"), ev.promote, "{headline}\n{:?}", ev.reasons);
    assert_eq!(headline.contains("not promoted"), !ev.promote, "{headline}");
    for r in &ev.reasons {
        assert!(body.contains(&format!("- {r}")), "{r}");
    }
    assert!(body.contains("### Quality gate: passed") && body.contains(&format!("version `{}`", &ev.data_version[..12])));
    // Curves: one ROC and one PR chart, a line per model, read from curves.json.
    let curves: CurvesOnGrid = art::read_json(&layout.path(&art::CURVES_JSON), "c").unwrap();
    let charts = mermaid_blocks(&body);
    assert_eq!(charts.len(), 2, "{body}");
    assert!(charts.iter().all(|c| c.starts_with("xychart-beta\n") && c.matches("    line [").count() == 2));
    let first_line = charts[0].lines().find(|l| l.trim_start().starts_with("line [")).unwrap();
    let ys: Vec<f64> =
        first_line.trim().trim_start_matches("line [").trim_end_matches(']').split(", ").map(|v| v.parse().unwrap()).collect();
    assert_eq!(ys.len(), 11);
    assert!((ys[5] - curves.roc[0].values[50]).abs() < 5e-4 && ys[0] >= 0.0 && (ys[10] - 1.0).abs() < 1e-9, "{ys:?}");
    // Nothing of this machine: no path, no run's artifact location.
    let root = dir.path().to_string_lossy().to_string();
    assert!(!body.contains(&root) && !body.contains("file://") && !body.contains("mlruns"), "{body}");
}

#[test]
fn a_failed_gate_is_reported_as_such_not_as_the_earlier_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let opts = crate::options(dir.path(), &committed_sample());
    let layout = Layout::new(&opts.artifacts_dir);
    let params = quick_params();
    orchestrator::local::run(&opts, &params).unwrap();
    let mut strict = params.clone();
    strict.train.seed = 9;
    strict.evaluate.min_accuracy = 0.99;
    orchestrator::local::run(&opts, &strict).unwrap_err();
    let body = render(&layout).unwrap();
    assert!(body.lines().nth(1).unwrap().contains("failed the quality gate — not promoted"), "{body}");
    assert!(body.contains("### Quality gate: FAILED") && body.contains("| accuracy |") && body.contains("**below**"), "{body}");
    assert!(!body.contains("Model card"), "the earlier run's model card is not this run's: {body}");
}
