//! The pull-request report (`orchestrator report`): one Markdown body for a PR comment and the
//! job summary — the decision and why, this run's metrics beside the champion it was compared
//! with, the quality gate, the data version, the model card's headline and the curves drawn as
//! Mermaid charts (a comment cannot show local images). Read from the artifacts only: no
//! environment, no store URI, no path of this machine goes into it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::model::ModelKind;
use leadflow_core::results::{CurvesOnGrid, Deployment, Evaluation};
use leadflow_metrics::Scores;

/// GitHub refuses a comment body longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// A hidden marker that starts every report (tools that find "their" comment can look for it).
pub const MARKER: &str = "<!-- leadflow-report -->";

/// Points per curve in the charts (0, 0.1, ..., 1).
const CHART_POINTS: usize = 11;

/// The report of the run whose outputs are in `layout`.
pub fn render(layout: &Layout) -> leadflow_core::Result<String> {
    let ev: Evaluation = art::read_json(&layout.require(&art::EVALUATION)?, "the evaluation")?;
    let metrics: BTreeMap<ModelKind, Scores> = art::read_json(&layout.require(&art::METRICS)?, "the evaluation metrics")?;
    let curves: Option<CurvesOnGrid> = art::read_json(&layout.path(&art::CURVES_JSON), "curves").ok();
    // Deploy's record, when it is this evaluation's (a gate failure leaves an older one behind).
    let deployment: Option<Deployment> = art::read_json::<Deployment>(&layout.path(&art::DEPLOYMENT), "the deployment")
        .ok()
        .filter(|d| d.run_id == ev.selected_run_id && d.promoted == ev.promote);
    let card = std::fs::read_to_string(layout.model_dir().join(art::MODEL_CARD_MD.name))
        .ok()
        .filter(|_| deployment.as_ref().is_some_and(|d| d.promoted));

    let mut s = format!("{MARKER}\n## leadflow: {}\n\n", headline(&ev, deployment.as_ref()));
    let _ = writeln!(s, "**Why:**");
    for r in &ev.reasons {
        let _ = writeln!(s, "- {r}");
    }
    s.push('\n');
    comparison(&mut s, &ev, &metrics);
    let _ = writeln!(s, "### Quality gate: {}\n", if ev.gate.passed { "passed" } else { "FAILED" });
    let _ = writeln!(s, "| check | this run | threshold | |\n|---|---:|---:|---|");
    for c in &ev.gate.checks {
        let _ = writeln!(s, "| {} | {:.4} | {} | {} |", c.metric, c.value, c.threshold, if c.passed { "ok" } else { "**below**" });
    }
    let test_rows: usize = metrics.get(&ev.selected).map(|m| m.confusion_matrix.iter().flatten().sum()).unwrap_or(0);
    let _ = writeln!(
        s,
        "\n**Data:** version `{}` (sha256 of the raw file), {test_rows} test rows; decision threshold {}.\n",
        short(&ev.data_version),
        ev.threshold
    );
    if let Some(card) = &card {
        let head = card.split("\n## ").next().unwrap_or_default().trim();
        let _ = writeln!(s, "<details><summary>Model card</summary>\n\n{}\n\n</details>\n", head.replacen("# ", "#### ", 1));
    }
    if let Some(c) = &curves {
        charts(&mut s, c);
    }
    let _ = writeln!(s, "<sub>Written by `leadflow report` from this run's artifacts.</sub>");
    if s.chars().count() > GITHUB_COMMENT_LIMIT {
        // Reasons are the only part without a bound: keep the decision, drop the rest.
        s = format!(
            "{MARKER}\n## leadflow: {}\n\nThe full report is longer than a pull-request comment can be; see the job summary.\n",
            headline(&ev, deployment.as_ref())
        );
    }
    Ok(s)
}

fn headline(ev: &Evaluation, d: Option<&Deployment>) -> String {
    let model = ev.selected.label();
    if !ev.gate.passed {
        return format!("❌ {model} failed the quality gate — not promoted");
    }
    match d {
        Some(d) if d.promoted => format!(
            "✅ {model} promoted{}",
            match (d.version, &d.stage, &d.alias) {
                (Some(v), Some(st), Some(a)) => format!(" as v{v} to {st} (@{a})"),
                _ => String::new(),
            }
        ),
        _ if ev.promote => format!("✅ {model} passes and would be promoted (deploy did not run)"),
        _ => format!("⏸️ {model} not promoted: the champion stays"),
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// This run's selected model beside the champion it was compared with, metric by metric.
fn comparison(s: &mut String, ev: &Evaluation, metrics: &BTreeMap<ModelKind, Scores>) {
    // On the rows both were scored on: the whole test split, or those the champion never saw.
    let subset = ev.champion.as_ref().and_then(|c| c.selected_scores.as_ref());
    let Some(ours) = subset.or_else(|| metrics.get(&ev.selected)) else { return };
    let compared_on = match (subset, ev.champion.as_ref().and_then(|c| c.interval.as_ref())) {
        (Some(_), Some(i)) => format!("the {} test rows the champion never trained on", i.rows),
        _ => "this run's test split".to_string(),
    };
    /// Name, how to read it, whether higher is better.
    type Row = (&'static str, fn(&Scores) -> f64, bool);
    let rows: [Row; 8] = [
        ("accuracy", |m| m.accuracy, true),
        ("precision", |m| m.precision, true),
        ("recall", |m| m.recall, true),
        ("F1", |m| m.f1, true),
        ("F1 weighted", |m| m.f1_weighted, true),
        ("ROC AUC", |m| m.roc_auc, true),
        ("PR AUC", |m| m.pr_auc, true),
        ("log loss", |m| m.log_loss, false),
    ];
    let champ = ev.champion.as_ref();
    let theirs = champ.and_then(|c| c.scores.as_ref());
    let _ = match champ {
        Some(c) => writeln!(
            s,
            "### This run vs the champion\n\nBoth on {compared_on}; selected by **{}** (this run {:.4} on its whole test split, {} v{} {}).\n",
            ev.selection_metric,
            ev.selected_score,
            c.alias,
            c.version,
            c.score.map(|v| format!("{v:.4}")).unwrap_or_else(|| "not comparable".into())
        ),
        None => writeln!(s, "### This run\n\nNo champion yet: nothing to compare with. Selected by **{}**.\n", ev.selection_metric),
    };
    match (champ, theirs) {
        (Some(c), Some(t)) => {
            let _ =
                writeln!(s, "| metric | this run: {} | @{} v{} | change |\n|---|---:|---:|---:|", ev.selected.label(), c.alias, c.version);
            for (name, get, higher_is_better) in rows {
                let (a, b) = (get(ours), get(t));
                let d = a - b;
                let mark = if d.abs() < 5e-5 {
                    ""
                } else if (d > 0.0) == higher_is_better {
                    " ▲"
                } else {
                    " ▼"
                };
                let _ = writeln!(s, "| {name} | {a:.4} | {b:.4} | {d:+.4}{mark} |");
            }
        }
        _ => {
            let _ = writeln!(s, "| metric | this run: {} |\n|---|---:|", ev.selected.label());
            for (name, get, _) in rows {
                let _ = writeln!(s, "| {name} | {:.4} |", get(ours));
            }
        }
    }
    s.push('\n');
}

/// ROC and precision-recall curves as Mermaid `xychart-beta` line charts, which GitHub renders.
fn charts(s: &mut String, c: &CurvesOnGrid) {
    let n = c.grid.len();
    if n < 2 {
        return;
    }
    let picks: Vec<usize> = (0..CHART_POINTS).map(|i| i * (n - 1) / (CHART_POINTS - 1)).collect();
    let _ = writeln!(s, "### Curves (test split)\n");
    for (title, x, y, curves) in
        [("ROC", "False positive rate", "True positive rate", &c.roc), ("Precision-recall", "Recall", "Precision", &c.pr)]
    {
        if curves.is_empty() {
            continue;
        }
        let xs: Vec<String> = picks.iter().map(|&i| format!("{:.1}", c.grid[i])).collect();
        let _ = writeln!(
            s,
            "```mermaid\nxychart-beta\n    title \"{title}\"\n    x-axis \"{x}\" [{}]\n    y-axis \"{y}\" 0 --> 1",
            xs.join(", ")
        );
        for curve in curves {
            let ys: Vec<String> = picks.iter().map(|&i| format!("{:.3}", curve.values.get(i).copied().unwrap_or(f64::NAN))).collect();
            let _ = writeln!(s, "    line [{}]", ys.join(", "));
        }
        let _ = writeln!(s, "```");
        let legend: Vec<String> = curves.iter().enumerate().map(|(i, c)| format!("line {}: {}", i + 1, c.name)).collect();
        let _ = writeln!(s, "<sub>{}</sub>\n", legend.join(" · "));
    }
}
