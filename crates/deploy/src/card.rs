//! The model card: what the model predicts, on what data, how well, and how to use it.

use std::fmt::Write as _;

use leadflow_core::results::{DeployedModel, Deployment, Importance, ModelResults};
use leadflow_core::Params;
use leadflow_features::Preprocessing;
use leadflow_metrics::Scores;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    pub model_name: String,
    pub model: String,
    pub predicts: String,
    pub registry: serde_json::Value,
    pub features: Vec<String>,
    pub training_data: serde_json::Value,
    pub params: serde_json::Value,
    pub metrics: Option<Scores>,
    pub threshold: f64,
    /// How its threshold was chosen and how its probabilities are calibrated.
    pub decision: serde_json::Value,
    pub intended_use: String,
    pub limitations: Vec<String>,
    pub how_to_load: Vec<String>,
}

/// What a card is made of: this run's params and artifacts.
pub struct CardInputs<'a> {
    pub params: &'a Params,
    pub pre: &'a Preprocessing,
    pub model: &'a DeployedModel,
    pub deployment: &'a Deployment,
    pub metrics: Option<&'a Scores>,
    pub limits: &'a serde_json::Value,
    pub results: &'a ModelResults,
    pub importance: Option<&'a Importance>,
    /// Evaluate's global explanation view (`explanations.json`) of this model, when it made one.
    pub explanations: Option<&'a serde_json::Value>,
}

/// The card's limitations. Every fact here is computed from this run's artifacts.
fn limitations(i: &CardInputs<'_>) -> Vec<String> {
    let CardInputs { pre, model: m, limits, results, importance, explanations, .. } = *i;
    let mut l = Vec::new();
    let window = limits.get("min_date").is_some_and(|d| !d.is_null());
    let scope: Vec<String> = pre.filters.iter().map(|f| format!("{} in {:?}", f.column, f.equals)).collect();
    if !scope.is_empty() || window {
        l.push(format!(
            "Trained only on {}{}{}; other rows are out of distribution.",
            pre.target.subjects(),
            if scope.is_empty() { String::new() } else { format!(" with {}", scope.join(" and ")) },
            if window { " inside the date window" } else { "" }
        ));
    }
    if let Some(imp) = importance {
        let top: Vec<String> = imp.top(3).iter().map(|(f, v)| format!("{f} ({v:.3})")).collect();
        l.push(format!("Most influential features by {}: {}.", imp.measure, top.join(", ")));
    }
    if let Some(e) = explanations {
        let top: Vec<String> = e["columns"]
            .as_array()
            .map(|c| {
                c.iter()
                    .take(3)
                    .map(|c| format!("{} ({:.3})", c["name"].as_str().unwrap_or("?"), c["mean_abs"].as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        l.push(format!(
            "What drives its scores on the test split, by mean |contribution| ({}): {}; `leadflow model predict --explain` explains a row.",
            e["method"].as_str().unwrap_or(""),
            top.join(", ")
        ));
    }
    if let Some(cv) = results.models.get(&m.kind).map(|r| &r.cv) {
        l.push(format!(
            "Cross-validated {} over {} folds: {:.3} ± {:.3}; one test split of {} rows moves the test figures by about that much.",
            cv.metric, cv.folds, cv.mean, cv.std, results.split.test_rows
        ));
    }
    l.push("Raw inputs are clipped and scaled with the training statistics (preprocessing.json); drift degrades it: `leadflow model drift` compares new data with the training data (reference.json), and predict and the server count inputs outside the training range or unseen in training.".into());
    l
}

impl ModelCard {
    pub fn new(i: &CardInputs<'_>) -> ModelCard {
        let CardInputs { params, pre, model: m, deployment: d, metrics, limits, results, .. } = *i;
        let best = results.models.get(&m.kind).map(|r| r.best_params.clone()).unwrap_or_default();
        ModelCard {
            model_name: m.model_name.clone(),
            model: m.kind.label().into(),
            predicts: {
                let t = &pre.target;
                let multi = (t.n_classes() > 2).then(|| {
                    let what = if t.description.is_empty() { format!("the class of a {}", t.subject) } else { t.description.clone() };
                    format!(
                        "{what}: one probability for each of the {} classes of `{}` ({}) (dataset {})",
                        t.n_classes(),
                        t.column,
                        t.labels.join(", "),
                        t.dataset
                    )
                });
                let what = if t.description.is_empty() {
                    format!("the probability that a {} is {}", t.subject, t.labels[1])
                } else {
                    t.description.clone()
                };
                multi.unwrap_or_else(|| {
                    format!("{} = P({} = {:?}): {what} (dataset {})", t.probability_of(), t.column, t.positive, t.dataset)
                })
            },
            registry: serde_json::json!({
                "registered": d.promoted, "version": d.version, "stage": d.stage, "alias": d.alias,
                "previous_holder": d.previous_holder, "run_id": d.run_id,
            }),
            features: m.features.clone(),
            training_data: serde_json::json!({
                "data_version_sha256": m.data_version,
                "date_window": limits,
                "filters": pre.filters,
                "train_rows": results.split.train_rows,
                "test_rows": results.split.test_rows,
            }),
            params: serde_json::json!({ "best": best, "train": params.train }),
            metrics: metrics.cloned(),
            threshold: m.threshold,
            decision: {
                let d = results.models.get(&m.kind).and_then(|r| r.decision.as_ref());
                serde_json::json!({
                    "threshold_rule": d.map_or_else(|| params.evaluate.threshold.name(), |d| d.rule.clone()),
                    "calibration": m.calibration.as_ref().map_or("none", |c| c.method.name()),
                })
            },
            intended_use: if pre.target.n_classes() > 2 {
                format!(
                    "Classify {} into {} classes; a decision aid, not an automatic gate.",
                    pre.target.subjects(),
                    pre.target.n_classes()
                )
            } else {
                format!(
                    "Rank {} by {} and flag the likely *{}* ones for follow-up; a decision aid, not an automatic gate.",
                    pre.target.subjects(),
                    pre.target.probability_of(),
                    pre.target.labels[1]
                )
            },
            limitations: limitations(i),
            how_to_load: vec![
                format!("leadflow model predict --model-dir <this dir> --input {}.csv --output scores.csv", pre.target.subjects()),
                m.kind.how_to_load(&m.file),
            ],
        }
    }

    pub fn to_markdown(&self) -> String {
        let mut s = format!("# Model card: {} ({})\n\n", self.model_name, self.model);
        let _ = writeln!(s, "**Predicts:** {}.\n", self.predicts);
        let _ = writeln!(s, "**Intended use:** {}\n", self.intended_use);
        let r = &self.registry;
        let _ = writeln!(
            s,
            "**Registry:** {}\n",
            if r["registered"] == true {
                format!(
                    "version {} in {} (alias `{}`), run `{}`",
                    r["version"],
                    r["stage"].as_str().unwrap_or(""),
                    r["alias"].as_str().unwrap_or(""),
                    r["run_id"].as_str().unwrap_or("")
                )
            } else {
                "not registered (evaluate did not promote it)".into()
            }
        );
        let _ = writeln!(
            s,
            "**Decision threshold:** {} (rule `{}`; calibration: {})\n",
            self.threshold,
            self.decision["threshold_rule"].as_str().unwrap_or("?"),
            self.decision["calibration"].as_str().unwrap_or("none")
        );
        let _ =
            writeln!(s, "## Training data\n\n```json\n{}\n```\n", serde_json::to_string_pretty(&self.training_data).unwrap_or_default());
        let _ =
            writeln!(s, "## Features (model order)\n\n{}\n", self.features.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "));
        if let Some(m) = &self.metrics {
            let _ = writeln!(s, "## Test metrics\n\n| accuracy | precision | recall | F1 | F1 weighted | ROC AUC | PR AUC | log loss |\n|---:|---:|---:|---:|---:|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
                m.accuracy, m.precision, m.recall, m.f1, m.f1_weighted, m.roc_auc, m.pr_auc, m.log_loss
            );
        }
        let _ =
            writeln!(s, "## Best parameters\n\n```json\n{}\n```\n", serde_json::to_string_pretty(&self.params["best"]).unwrap_or_default());
        let _ = writeln!(s, "## Known limitations\n");
        for l in &self.limitations {
            let _ = writeln!(s, "- {l}");
        }
        let _ = writeln!(s, "\n## How to load\n");
        for l in &self.how_to_load {
            let _ = writeln!(s, "- `{l}`");
        }
        s
    }
}
