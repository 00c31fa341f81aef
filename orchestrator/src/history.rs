//! Pipeline-run history (`artifacts/.history/<id>.json`), `leadflow history` (one line a run) and
//! `leadflow diff`: params that differ and metrics side by side with deltas, like
//! `dvc params diff` + `dvc metrics diff`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::model::ModelKind;
use leadflow_core::results::{Evaluation, ModelResults};
use leadflow_core::Params;
use leadflow_metrics::Scores;
use serde::{Deserialize, Serialize};

use crate::StageReport;

pub const DIR: &str = ".history";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: String,
    /// ran | up to date | failed
    pub status: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRun {
    pub id: String,
    pub started_at: String,
    pub engine: String,
    pub ok: bool,
    pub stages: Vec<StageRecord>,
    pub data_version: Option<String>,
    /// Params flattened to dotted keys.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Metrics from the artifacts the run left (`<model>.<metric>`, `selected.*`).
    pub metrics: BTreeMap<String, f64>,
    pub decision: Option<String>,
    /// The registry version this run's deploy promoted, if it did.
    #[serde(default)]
    pub version: Option<u64>,
}

impl PipelineRun {
    /// ok, FAILED, or killed (a stage was interrupted).
    pub fn status(&self) -> &'static str {
        if self.ok {
            "ok"
        } else if self.stages.iter().any(|s| s.status == crate::Outcome::Interrupted.word()) {
            "killed"
        } else {
            "FAILED"
        }
    }

    /// Every stage was up to date: the run changed nothing (a no-op rerun).
    pub fn no_op(&self) -> bool {
        !self.stages.is_empty() && self.stages.iter().all(|s| s.status == crate::Outcome::UpToDate.word())
    }

    /// `<id> (FAILED)` for a run that failed, the id otherwise.
    pub fn label(&self) -> String {
        match self.status() {
            "ok" => self.id.clone(),
            st => format!("{} ({st})", self.id),
        }
    }
}

/// `leadflow history`: one line a run, newest last — id, start, status, stages that ran, the
/// selected model's score, the decision and the version promoted.
pub fn to_table(runs: &[PipelineRun]) -> String {
    let mut s = format!("{:<28} {:<20} {:<7} {:<27} {:<24} {}\n", "id", "started (UTC)", "status", "ran", "selected", "decision");
    for r in runs {
        // Stages that ran, and the one that failed (or was killed) marked as such.
        let ran: Vec<String> = r
            .stages
            .iter()
            .filter(|st| st.status != crate::Outcome::UpToDate.word())
            .map(|st| if st.status == crate::Outcome::Ran.word() { st.stage.clone() } else { format!("{}:{}", st.stage, st.status) })
            .collect();
        let ran = if r.no_op() {
            "nothing (up to date)".to_string()
        } else if ran.is_empty() {
            "-".into()
        } else {
            ran.join(",")
        };
        let selected = r
            .metrics
            .iter()
            .find(|(k, _)| k.starts_with("selected.test_"))
            .map(|(k, v)| format!("{} {v:.4}", k.trim_start_matches("selected.test_")))
            .unwrap_or_else(|| "-".into());
        let decision = match (&r.decision, r.version) {
            (Some(d), Some(v)) => format!("{d} -> v{v}"),
            (Some(d), None) => d.clone(),
            (None, _) => "-".into(),
        };
        let started = r.started_at.get(..19).unwrap_or(&r.started_at).replace('T', " ");
        let _ = writeln!(s, "{:<28} {:<20} {:<7} {:<27} {:<24} {decision}", r.id, started, r.status(), ran, selected);
    }
    s
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Collect what a finished (or failed) run left in `layout` and record it.
pub fn record(
    layout: &Layout,
    params: &Params,
    engine: &str,
    started: chrono::DateTime<chrono::Utc>,
    reports: &[StageReport],
    ok: bool,
) -> leadflow_core::Result<PathBuf> {
    let id = format!("{}-{}", started.format("%Y%m%d-%H%M%S%3f"), std::process::id());
    let mut flat = BTreeMap::new();
    flatten("", &serde_json::to_value(params).unwrap_or_default(), &mut flat);
    let mut metrics = BTreeMap::new();
    if let Ok(r) = art::read_json::<ModelResults>(&layout.path(&art::MODEL_RESULTS), "results") {
        for (k, m) in &r.models {
            metrics.insert(format!("{}.cv_{}_mean", k.name(), m.cv.metric), m.cv.mean);
            metrics.insert(format!("{}.cv_{}_std", k.name(), m.cv.metric), m.cv.std);
        }
    }
    if let Ok(s) = art::read_json::<BTreeMap<ModelKind, Scores>>(&layout.path(&art::METRICS), "metrics") {
        for (k, m) in &s {
            for (name, v) in m.named() {
                metrics.insert(format!("{}.test_{name}", k.name()), v);
            }
        }
    }
    let mut decision = None;
    if let Ok(e) = art::read_json::<Evaluation>(&layout.path(&art::EVALUATION), "evaluation") {
        metrics.insert(format!("selected.test_{}", e.selection_metric), e.selected_score);
        decision = Some(format!("{} {}", if e.promote { "promote" } else { "keep" }, e.selected.name()));
    }
    let data_version = leadflow_core::meta::read(&layout.path(&art::DATA_META)).ok().map(|m| m.data_version);
    let deployed_now = reports.iter().any(|r| r.stage == leadflow_core::artifacts::StageId::Deploy && r.outcome == crate::Outcome::Ran);
    let version = deployed_now
        .then(|| art::read_json::<leadflow_core::results::Deployment>(&layout.path(&art::DEPLOYMENT), "deployment").ok())
        .flatten()
        .and_then(|d| d.version);
    let run = PipelineRun {
        id: id.clone(),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        engine: engine.into(),
        ok,
        stages: reports
            .iter()
            .map(|r| StageRecord { stage: r.stage.name().into(), status: r.outcome.word().into(), seconds: r.seconds })
            .collect(),
        data_version,
        params: flat,
        metrics,
        decision,
        version,
    };
    let path = layout.root().join(DIR).join(format!("{id}.json"));
    art::write_json(&path, &run)?;
    Ok(path)
}

/// All recorded runs, oldest first.
pub fn list(layout: &Layout) -> Vec<PipelineRun> {
    let dir = layout.root().join(DIR);
    let mut runs: Vec<PipelineRun> =
        std::fs::read_dir(&dir).into_iter().flatten().flatten().filter_map(|e| art::read_json(&e.path(), "a pipeline run").ok()).collect();
    runs.sort_by(|a: &PipelineRun, b| a.id.cmp(&b.id));
    runs
}

/// A run by id or unique id prefix.
pub fn find<'a>(runs: &'a [PipelineRun], key: &str) -> Result<&'a PipelineRun, String> {
    let hits: Vec<&PipelineRun> = runs.iter().filter(|r| r.id.starts_with(key)).collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no recorded pipeline run matches {key:?} ({} recorded)", runs.len())),
        many => Err(format!("{key:?} matches {} runs; give more of the id", many.len())),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub a: String,
    pub b: String,
    pub params: Vec<(String, String, String)>,
    pub metrics: Vec<(String, Option<f64>, Option<f64>)>,
}

fn show(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "-".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub fn diff(a: &PipelineRun, b: &PipelineRun) -> Diff {
    let keys: BTreeSet<&String> = a.params.keys().chain(b.params.keys()).collect();
    let params = keys
        .into_iter()
        .filter(|k| a.params.get(*k) != b.params.get(*k))
        .map(|k| (k.clone(), show(a.params.get(k)), show(b.params.get(k))))
        .collect();
    let mkeys: BTreeSet<&String> = a.metrics.keys().chain(b.metrics.keys()).collect();
    let metrics = mkeys.into_iter().map(|k| (k.clone(), a.metrics.get(k).copied(), b.metrics.get(k).copied())).collect();
    Diff { a: a.label(), b: b.label(), params, metrics }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

fn delta(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.4}", b - a),
        _ => "-".into(),
    }
}

impl Diff {
    pub fn to_table(&self) -> String {
        let mut s = format!("A = {}\nB = {}\n\nParams that differ:\n", self.a, self.b);
        if self.params.is_empty() {
            s.push_str("  (none)\n");
        } else {
            let w = self.params.iter().map(|p| p.0.len()).max().unwrap_or(5).max(5);
            let _ = writeln!(s, "  {:<w$}  {:>14}  {:>14}", "param", "A", "B");
            for (k, a, b) in &self.params {
                let _ = writeln!(s, "  {k:<w$}  {a:>14}  {b:>14}");
            }
        }
        s.push_str("\nMetrics:\n");
        let w = self.metrics.iter().map(|m| m.0.len()).max().unwrap_or(6).max(6);
        let _ = writeln!(s, "  {:<w$}  {:>10}  {:>10}  {:>10}", "metric", "A", "B", "change");
        for (k, a, b) in &self.metrics {
            let _ = writeln!(s, "  {k:<w$}  {:>10}  {:>10}  {:>10}", num(*a), num(*b), delta(*a, *b));
        }
        s
    }

    pub fn to_markdown(&self) -> String {
        let mut s = format!("### leadflow: `{}` → `{}`\n\n", self.a, self.b);
        if self.params.is_empty() {
            s.push_str("No params differ.\n\n");
        } else {
            s.push_str("| param | A | B |\n|---|---:|---:|\n");
            for (k, a, b) in &self.params {
                let _ = writeln!(s, "| `{k}` | {a} | {b} |");
            }
            s.push('\n');
        }
        s.push_str("| metric | A | B | change |\n|---|---:|---:|---:|\n");
        for (k, a, b) in &self.metrics {
            let _ = writeln!(s, "| `{k}` | {} | {} | {} |", num(*a), num(*b), delta(*a, *b));
        }
        s
    }
}
