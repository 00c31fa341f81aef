//! leadflow evaluate stage: score both trained models on the test split, draw the pictures,
//! write the report, pick the best model, compare it with the registry's champion, and apply the
//! quality gate.

mod bootstrap;
mod calibration;
mod error;
mod explain;
pub mod plots;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use leadflow_core::artifacts::{self as art, Layout, StageDir, StageId};
use leadflow_core::meta::RunClock;
use leadflow_core::results::{ChampionInfo, Evaluation, GateCheck, GateResult, ModelResults};
use leadflow_core::Params;
use leadflow_features::table::Table;
use leadflow_features::{Preprocessing, Target};
use leadflow_metrics::{ClassificationReport, Scores};
use leadflow_mlflow::registry::ModelVersion;
use leadflow_mlflow::Store;
use leadflow_model::{Matrix, Model, ModelKind};
use plotters::prelude::SeriesLabelPosition;
use serde::Serialize;

pub use error::{Error, Result};

/// What the evaluate stage reads: the dataset's target (its wording), train's results, test split
/// and models, the data version,
/// `evaluate` and `deploy` params (the alias it compares with), and the registry.
pub const READS: leadflow_core::fingerprint::Reads = leadflow_core::fingerprint::Reads {
    stage: StageId::Evaluate,
    artifacts: &[
        art::PREPROCESSING,
        art::MODEL_RESULTS,
        art::COLUMNS_LIST,
        art::TEST_ROWS,
        art::FEATURE_SPEC,
        art::X_TRAIN,
        art::X_TEST,
        art::Y_TEST,
        art::XGB_MODEL,
        art::LR_MODEL,
        art::BOOSTED_MODEL,
    ],
    params: |p| serde_json::json!({ "evaluate": p.evaluate, "deploy": p.deploy, "seed": p.train.seed }),
    data_version: true,
};

/// Registry tag naming the model family of a version.
pub use leadflow_core::names::MODEL_TAG;

/// The selected model's test results in the dataset's own terms (the positive class is the one
/// the business acts on: a lead that converts, a customer who churns).
#[derive(Debug, Clone, Serialize)]
pub struct BusinessMetrics {
    /// The positive class's display name ("converted").
    pub positive: String,
    pub rows_scored: usize,
    pub actual_positive: usize,
    pub predicted_positive: usize,
    pub correctly_identified: usize,
    pub missed: usize,
    pub false_alarms: usize,
    /// Share of actual positives the model finds (recall).
    pub detection_rate: f64,
    /// Share of negatives flagged as positive.
    pub false_alarm_rate: f64,
}

impl BusinessMetrics {
    pub fn from_scores(s: &Scores, target: &Target) -> BusinessMetrics {
        let c = &s.confusion_matrix;
        let (tn, fp, fn_, tp) = (c[0][0], c[0][1], c[1][0], c[1][1]);
        let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        BusinessMetrics {
            positive: target.labels[1].clone(),
            rows_scored: tn + fp + fn_ + tp,
            actual_positive: tp + fn_,
            predicted_positive: tp + fp,
            correctly_identified: tp,
            missed: fn_,
            false_alarms: fp,
            detection_rate: div(tp, tp + fn_),
            false_alarm_rate: div(fp, fp + tn),
        }
    }
}

/// The business view of one model: binary, in the dataset's words; multiclass, per class.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Business {
    Binary(BusinessMetrics),
    PerClass(Vec<ClassRow>),
}

/// One class's test figures.
#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
    /// Rows predicted as this class.
    pub predicted: usize,
}

pub fn per_class(s: &Scores, target: &Target) -> Vec<ClassRow> {
    let r = ClassificationReport::from_confusion(&s.confusion_matrix);
    r.classes
        .iter()
        .enumerate()
        .map(|(i, c)| ClassRow {
            class: target.labels.get(i).cloned().unwrap_or_else(|| i.to_string()),
            precision: c.precision,
            recall: c.recall,
            f1: c.f1,
            support: c.support,
            predicted: s.confusion_matrix.iter().map(|row| row[i]).sum(),
        })
        .collect()
}

/// The current holder of the role the new model would take.
#[derive(Debug, Clone)]
pub struct Incumbent {
    pub version: ModelVersion,
    pub alias: String,
    /// Scores on this run's test split, when its model could be re-scored.
    pub scores: Option<Scores>,
    /// Its probabilities of the compared rows (calibrated as it calibrates them) and its
    /// threshold.
    pub proba: Option<(Vec<f64>, f64)>,
    /// The test rows it is compared on, when not all: those it never trained on.
    pub rows: Option<Vec<usize>>,
    /// Its score on the selection metric and where that number comes from.
    pub score: Option<f64>,
    pub note: String,
}

/// Find the champion (alias `champion`), else the holder of the alias the deploy stage would
/// set, and score it on this test split if its model files are readable.
pub fn incumbent(
    store: &dyn Store,
    params: &Params,
    holders: &BTreeMap<String, Option<ModelVersion>>,
    features: &[String],
    (x, y, keys): (&Matrix, &[u8], &[String]),
    k: usize,
) -> Result<Option<Incumbent>> {
    let found = params
        .deploy
        .compared_aliases()
        .into_iter()
        .find_map(|alias| holders.get(alias).cloned().flatten().map(|v| (v, alias.to_string())));
    let Some((version, alias)) = found else { return Ok(None) };
    let metric = params.evaluate.selection_metric;
    type Rescored = (Vec<f64>, f64, Option<std::collections::HashSet<String>>);
    let rescored = (|| -> std::result::Result<Rescored, String> {
        let kind: ModelKind = match version.tags.get(MODEL_TAG) {
            Some(t) => t.parse().map_err(|e| format!("its `{MODEL_TAG}` tag: {e}"))?,
            None => return Err(format!("version has no `{MODEL_TAG}` tag")),
        };
        // Local sources are read in place; a server's are downloaded first. The model file is
        // the one the version's model.json names (older versions used older file names).
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let local = version.source.strip_prefix("file://").map(PathBuf::from);
        let dir = local.clone().unwrap_or_else(|| tmp.path().to_path_buf());
        if local.is_none() {
            store.download(&version.source, &[art::FEATURE_SPEC.name, art::MODEL_SPEC.name], &dir).map_err(|e| e.to_string())?;
        }
        let deployed = art::read_json::<leadflow_core::results::DeployedModel>(&dir.join(art::MODEL_SPEC.name), "a model spec").ok();
        let file = deployed.as_ref().map_or_else(|| kind.artifact().name.to_string(), |m| m.file.clone());
        if local.is_none() {
            store.download(&version.source, &[file.as_str()], &dir).map_err(|e| e.to_string())?;
        }
        let spec: leadflow_features::FeatureSpec =
            art::read_json(&dir.join(art::FEATURE_SPEC.name), "a feature spec").map_err(|e| e.to_string())?;
        if spec.feature_names() != features {
            return Err("its features differ from this run's".into());
        }
        let model = Model::load(kind, &dir.join(&file)).map_err(|e| e.to_string())?;
        let mut p = model.predict(x).map_err(|e| e.to_string())?;
        let per_row = leadflow_metrics::per_row(k);
        if p.len() != x.n_rows * per_row {
            return Err(format!("it gives {} probabilities per row, this run's target has {k} classes", p.len() / x.n_rows.max(1)));
        }
        // As it is used: its own calibration and threshold.
        if let Some(c) = deployed.as_ref().and_then(|d| d.calibration.as_ref()) {
            c.apply(&mut p);
        }
        // The rows it held out from its training (absent for versions registered before they
        // were recorded).
        if local.is_none() {
            let _ = store.download(&version.source, &[art::MODEL_TEST_ROWS.name], &dir);
        }
        let held_out = art::read_json::<Vec<String>>(&dir.join(art::MODEL_TEST_ROWS.name), "held-out row keys").ok();
        Ok((p, deployed.map_or(params.evaluate.threshold.fixed(), |d| d.threshold), held_out.map(|v| v.into_iter().collect())))
    })();
    let min = params.evaluate.min_comparison_rows;
    let (scores, score, note, proba, rows) = match rescored {
        Ok((p, t, held_out)) => match held_out.map(|set| comparison_rows(keys, &set)) {
            Some(rows) if rows.len() < min => (
                None,
                None,
                format!(
                    "no fair comparison: only {} of this run's {} test rows were held out from its training too \
                     (evaluate.min_comparison_rows = {min})",
                    rows.len(),
                    y.len()
                ),
                None,
                Some(rows),
            ),
            Some(rows) => {
                let (p, y) = (subset(&p, &rows, leadflow_metrics::per_row(k)), subset(y, &rows, 1));
                let s = Scores::compute(&y, &p, k, t);
                let note = format!("re-scored on the {} of this run's {} test rows it never trained on", rows.len(), keys.len());
                (Some(s.clone()), Some(s.get(metric)), note, Some((p, t)), Some(rows))
            }
            None => {
                let s = Scores::compute(y, &p, k, t);
                let note = "re-scored on this run's test split; its held-out rows are not recorded, so it may have trained on some";
                (Some(s.clone()), Some(s.get(metric)), note.to_string(), Some((p, t)), None)
            }
        },
        Err(why) => {
            let recorded = store.get_run(&version.run_id).ok().and_then(|r| r.metrics.get(&format!("test_{}", metric.name())).copied());
            match recorded {
                Some(v) => (
                    None,
                    Some(v),
                    format!("could not re-score ({why}); using its recorded test_{} from its own run", metric.name()),
                    None,
                    None,
                ),
                None => (None, None, format!("could not re-score ({why}) and no recorded score"), None, None),
            }
        }
    };
    Ok(Some(Incumbent { version, alias, scores, score, note, proba, rows }))
}

/// The test rows (by index) whose keys are in `held_out`.
fn comparison_rows(keys: &[String], held_out: &std::collections::HashSet<String>) -> Vec<usize> {
    keys.iter().enumerate().filter(|(_, key)| held_out.contains(*key)).map(|(i, _)| i).collect()
}

/// Rows `rows` of flat values, `width` per row.
fn subset<T: Copy>(values: &[T], rows: &[usize], width: usize) -> Vec<T> {
    rows.iter().flat_map(|&i| values[i * width..(i + 1) * width].iter().copied()).collect()
}

/// The best model of this run on the selection metric (the first kind on ties).
pub fn select(params: &Params, scores: &BTreeMap<ModelKind, Scores>) -> ModelKind {
    let metric = params.evaluate.selection_metric;
    let best = scores.iter().max_by(|a, b| a.1.get(metric).total_cmp(&b.1.get(metric)).then_with(|| b.0.cmp(a.0)));
    *best.expect("at least one model").0
}

/// Decide: the `selected` model of this run (labelled at `threshold`) vs. the incumbent, then the
/// gate. `comparison`: the selected model's scores on the rows the incumbent was re-scored on and
/// the paired bootstrap interval of the improvement.
pub fn decide(
    params: &Params,
    scores: &BTreeMap<ModelKind, Scores>,
    (selected, threshold): (ModelKind, f64),
    run_ids: &BTreeMap<ModelKind, Option<String>>,
    incumbent: Option<&Incumbent>,
    comparison: Option<&(Scores, leadflow_core::results::Interval)>,
    data_version: &str,
) -> Evaluation {
    let interval = comparison.map(|c| &c.1);
    let e = &params.evaluate;
    let metric = e.selection_metric;
    let best = &scores[&selected];
    let score = best.get(metric);
    let mut reasons = vec![format!("{} has the best test {} ({score:.4})", selected.label(), metric.name())];
    for (k, s) in scores {
        if *k != selected {
            reasons.push(format!("{} scored {:.4}", k.label(), s.get(metric)));
        }
    }
    let checks: Vec<GateCheck> = [
        ("f1_weighted", best.f1_weighted, e.min_f1_weighted),
        ("accuracy", best.accuracy, e.min_accuracy),
        ("roc_auc", best.roc_auc, e.min_roc_auc),
    ]
    .into_iter()
    .map(|(m, v, t)| GateCheck { metric: m.into(), value: v, threshold: t, passed: v >= t })
    .collect();
    let gate = GateResult { passed: checks.iter().all(|c| c.passed), checks };
    let selected_run_id = run_ids.get(&selected).cloned().flatten();
    let mut promote = gate.passed;
    if !gate.passed {
        reasons.push("quality gate failed: not promoted".into());
    }
    let champion = incumbent.map(|inc| ChampionInfo {
        version: inc.version.version,
        run_id: inc.version.run_id.clone(),
        alias: inc.alias.clone(),
        score: inc.score,
        scores: inc.scores.clone(),
        interval: interval.cloned(),
        // Shown beside its scores when they are not on the whole test split.
        selected_scores: comparison.filter(|_| inc.rows.is_some()).map(|c| c.0.clone()),
    });
    match incumbent {
        None => reasons.push("no champion in the registry yet: the first good model is promoted".into()),
        Some(inc) if selected_run_id.as_deref() == Some(inc.version.run_id.as_str()) => {
            // Registered by an earlier deploy of this very run (e.g. one interrupted before it
            // finished): deploy confirms it idempotently, no new version.
            reasons
                .push(format!("it already is version {} (alias `{}`): deploy confirms it, no new version", inc.version.version, inc.alias));
        }
        Some(inc) => match inc.score {
            // Too few rows it never trained on: no evidence either way, so the registry stays.
            None if inc.rows.is_some() => {
                reasons.push(format!(
                    "{} v{}: {}: keep the incumbent (promote by hand with `leadflow model promote`, or lower \
                     evaluate.min_comparison_rows)",
                    inc.alias, inc.version.version, inc.note
                ));
                promote = false;
            }
            None => reasons.push(format!("{} v{} has no comparable score ({}): promoting", inc.alias, inc.version.version, inc.note)),
            Some(c) => {
                let ours = comparison.map_or(score, |c| c.0.get(metric));
                let beats = beats_incumbent(e, inc, c, ours, interval, &mut reasons);
                promote = promote && beats;
            }
        },
    }
    Evaluation {
        selection_metric: metric.name().into(),
        selected,
        selected_run_id,
        selected_score: score,
        champion,
        promote,
        reasons,
        gate,
        threshold,
        data_version: data_version.into(),
        holders: Default::default(),
    }
}

/// Whether the selected model (scoring `ours` on the compared rows) beats the incumbent (`c`),
/// by the promotion rule; the reason is pushed.
fn beats_incumbent(
    e: &leadflow_core::params::EvaluateParams,
    inc: &Incumbent,
    c: f64,
    ours: f64,
    interval: Option<&leadflow_core::results::Interval>,
    reasons: &mut Vec<String>,
) -> bool {
    let gain = ours - c;
    let margin = e.promotion_margin;
    let verdict = |beats: bool| if beats { "promote" } else { "keep the incumbent" };
    match (e.promotion, interval) {
        (leadflow_core::params::Promotion::Confident, Some(i)) => {
            let beats = i.low > 0.0 && i.low >= margin;
            reasons.push(format!(
                "{} v{} scores {c:.4} ({}); improvement {}, its lower bound required > 0 and ≥ {margin} \
                 (evaluate.promotion = \"confident\"): {}",
                inc.alias,
                inc.version.version,
                inc.note,
                i.describe(),
                verdict(beats)
            ));
            beats
        }
        (rule, _) => {
            let beats = gain > 0.0 && gain >= margin;
            let why = match (rule, interval) {
                (_, Some(i)) => format!("improvement {}", i.describe()),
                (leadflow_core::params::Promotion::Confident, None) => {
                    format!("improvement {gain:+.4}; no paired interval (not re-scored), so the point rule decides")
                }
                _ => format!("improvement {gain:+.4}"),
            };
            reasons.push(format!(
                "{} v{} scores {c:.4} ({}); {why}, required > 0 and ≥ {margin}: {}",
                inc.alias,
                inc.version.version,
                inc.note,
                verdict(beats)
            ));
            beats
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub evaluation: Evaluation,
    pub metrics: BTreeMap<ModelKind, Scores>,
    pub report: PathBuf,
}

fn write_text(path: &Path, s: &str) -> Result<()> {
    Ok(art::write_atomic(path, s.as_bytes())?)
}

/// Run the evaluate stage. When the gate fails, everything is still written and committed, then
/// [`Error::Gate`] is returned.
pub fn run(layout: &Layout, params: &Params, store: &dyn Store) -> Result<Summary> {
    let clock = RunClock::start();
    let results_path = layout.require(&art::MODEL_RESULTS)?;
    let mut fp = leadflow_core::fingerprint::compute(&READS, layout, params, None, env!("CARGO_PKG_VERSION"))?;
    fp.registry = Some(leadflow_mlflow::registry::state(store, params));
    let results: ModelResults = art::read_json(&results_path, "train results")?;
    if results.models.is_empty() {
        return Err(Error::NoModels { path: results_path });
    }
    let data_meta = leadflow_core::meta::read(&layout.require(&art::DATA_META)?)?;
    let features: Vec<String> = art::read_json(&layout.require(&art::COLUMNS_LIST)?, "a feature list")?;
    let pre: Preprocessing = art::read_json(&layout.require(&art::PREPROCESSING)?, "the data stage's preprocessing")?;
    let target = &pre.target;
    let k = target.n_classes();
    let (x, y) = test_split(layout, &features, &target.column, k)?;
    let fixed = params.evaluate.threshold.fixed();
    let (mut probas, mut raw, mut scores, mut loaded, mut thresholds) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (kind, r) in &results.models {
        let model = Model::load(*kind, &layout.require(&kind.artifact())?)?;
        // Each model as it will be used: calibrated (if it is), labelled at its own threshold.
        let own = model.predict(&x)?;
        let mut p = own.clone();
        if let Some(c) = r.calibration() {
            c.apply(&mut p);
        }
        let t = r.threshold(fixed);
        scores.insert(*kind, Scores::compute(&y, &p, k, t));
        thresholds.insert(*kind, t);
        probas.insert(*kind, p);
        raw.insert(*kind, own);
        loaded.insert(*kind, model);
    }
    // One read of the holders: the incumbent is chosen from it, and deploy checks it again.
    let seen = leadflow_mlflow::registry::read_holders(store, &params.deploy.model_name, &params.deploy.compared_aliases())?;
    let keys: Vec<String> = art::read_json(&layout.require(&art::TEST_ROWS)?, "the test rows' keys")?;
    let inc = incumbent(store, params, &seen, &features, (&x, &y, &keys), k)?;
    let run_ids: BTreeMap<ModelKind, Option<String>> = results.models.iter().map(|(k, r)| (*k, r.run_id.clone())).collect();
    let selected = select(params, &scores);
    // The selected model on the rows the incumbent was compared on, and the paired interval.
    let comparison = inc.as_ref().and_then(|i| i.proba.as_ref().map(|p| (i, p))).map(|(i, (p, t))| {
        let ev = &params.evaluate;
        let all: Vec<usize> = (0..y.len()).collect();
        let rows = i.rows.as_deref().unwrap_or(&all);
        let width = leadflow_metrics::per_row(k);
        let (ours, y_rows) = (subset(&probas[&selected], rows, width), subset(&y, rows, 1));
        let t_ours = thresholds[&selected];
        let interval =
            bootstrap::paired(ev.selection_metric, &y_rows, k, (&ours, t_ours), (p.as_slice(), *t), &ev.bootstrap, params.train.seed);
        (Scores::compute(&y_rows, &ours, k, t_ours), interval)
    });
    let chosen = (selected, thresholds[&selected]);
    let mut evaluation = decide(params, &scores, chosen, &run_ids, inc.as_ref(), comparison.as_ref(), &data_meta.data_version);
    evaluation.holders = seen.iter().map(|(a, v)| (a.clone(), v.as_ref().map(|v| v.version))).collect();

    let out = StageDir::begin(layout.stage_dir(StageId::Evaluate))?;
    art::write_json(&out.path(&art::METRICS), &scores)?;
    let business = write_reports(&out, &scores, target, &evaluation, &thresholds)?;
    let calibration = calibration::write(&out, &y, k, &raw, &probas, &results)?;
    let cost = params.evaluate.cost.as_ref().filter(|_| k == 2);
    let test_value: BTreeMap<ModelKind, [f64; 2]> = match cost {
        Some(c) => probas.iter().map(|(m, p)| (*m, [thresholds[m], 0.5].map(|t| value_per_1000(c, &y, p, t)))).collect(),
        None => BTreeMap::new(),
    };
    art::write_json(&out.path(&art::EVALUATION), &evaluation)?;

    write_curves(&out, &y, &probas, &scores, target, evaluation.selected)?;
    write_importance(&out, &loaded, &features, target)?;
    let global = explain::write(&out, layout, evaluation.selected, &loaded[&evaluation.selected], &x, &features, k)?;

    let mut text = report(params, target, &evaluation, &scores, &business, inc.as_ref(), &results);
    text.push_str(&calibration::markdown(&calibration, &results, cost.map(|c| (c, &test_value)), k));
    text.push_str(&global.map(|g| g.markdown()).unwrap_or_default());
    write_text(&out.path(&art::REPORT), &text)?;
    // The evaluation's own tracking run: why a model was (not) promoted, next to the training runs.
    let evaluation_run = log_evaluation_run(store, params, &out, &evaluation, &scores, &results)?;
    let mut rows = BTreeMap::new();
    rows.insert("test".to_string(), y.len());
    let mut meta = clock.finish(StageId::Evaluate, env!("CARGO_PKG_VERSION"), data_meta.data_version.clone(), params.hash(), rows);
    meta.extra.insert("evaluation_run_id".into(), evaluation_run.clone().into());
    art::write_json(&out.path(&art::EVALUATE_META), &meta)?;
    // A failed gate is this stage's recorded result: an up-to-date rerun replays it.
    let gate_error = gate_error(&evaluation, layout.path(&art::REPORT));
    fp.failure = gate_error.as_ref().map(|e| e.to_string());
    leadflow_core::fingerprint::write(out.dir(), fp, None)?;
    let dir = out.commit()?;
    match gate_error {
        Some(e) => Err(e),
        None => Ok(Summary { evaluation, metrics: scores, report: dir.join(art::REPORT.name) }),
    }
}

/// The quality-gate failure of `evaluation`, if its gate failed; `report` is where the stage
/// writes its report.
fn gate_error(evaluation: &Evaluation, report: PathBuf) -> Option<Error> {
    if evaluation.gate.passed {
        return None;
    }
    let failed: Vec<String> = evaluation
        .gate
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} {:.4} < threshold {} (params evaluate.min_{})", c.metric, c.value, c.threshold, c.metric))
        .collect();
    Some(Error::Gate { failed: format!("{}: {}", evaluation.selected.label(), failed.join("; ")), report })
}

/// Log the evaluation as its own run in the experiment: the test metrics of both models
/// (`<model>_test_<metric>`) and of the champion it was compared with, the decision and its
/// reasons as tags, links to the training runs, and every output of this stage (report, plots,
/// metrics, decision) as artifacts. A failure marks the run FAILED and fails the stage.
fn log_evaluation_run(
    store: &dyn Store,
    params: &Params,
    out: &StageDir,
    ev: &Evaluation,
    scores: &BTreeMap<ModelKind, Scores>,
    results: &ModelResults,
) -> Result<String> {
    use leadflow_mlflow::tracking::{MetricPoint, RunStatus};
    let exp = store.get_or_create_experiment(&params.tracking.experiment_name)?;
    let metric = &ev.selection_metric;
    let mut tags = vec![
        (leadflow_core::names::STAGE_TAG.to_string(), "evaluate".to_string()),
        (leadflow_core::names::DATA_VERSION_TAG.to_string(), ev.data_version.clone()),
        (leadflow_core::names::PARAMS_HASH_TAG.to_string(), params.hash()),
        ("leadflow.selected".to_string(), ev.selected.name().to_string()),
        ("leadflow.promote".to_string(), ev.promote.to_string()),
        ("leadflow.gate_passed".to_string(), ev.gate.passed.to_string()),
        ("leadflow.decision".to_string(), ev.reasons.join("; ")),
        (leadflow_mlflow::tracking::PID_TAG.to_string(), std::process::id().to_string()),
        (leadflow_mlflow::tracking::HOST_TAG.to_string(), leadflow_mlflow::tracking::hostname()),
        (
            "mlflow.note.content".to_string(),
            format!("Selected {} ({metric} {:.4}); {}", ev.selected.label(), ev.selected_score, ev.reasons.join("; ")),
        ),
    ];
    for (kind, r) in &results.models {
        if let Some(id) = &r.run_id {
            tags.push((format!("leadflow.train_run.{}", kind.name()), id.clone()));
        }
    }
    if let Some(c) = &ev.champion {
        tags.push(("leadflow.champion_version".into(), c.version.to_string()));
        tags.push(("leadflow.champion_run".into(), c.run_id.clone()));
    }
    let run_id = store.create_run(&exp, "evaluation", &tags)?;
    let logged = (|| -> Result<()> {
        let ps = vec![
            ("selection_metric".to_string(), metric.clone()),
            ("threshold".to_string(), ev.threshold.to_string()),
            ("promotion_margin".to_string(), params.evaluate.promotion_margin.to_string()),
            ("data_version".to_string(), ev.data_version.clone()),
        ];
        let mut ms = vec![MetricPoint::now(format!("selected_test_{metric}"), ev.selected_score)];
        for (kind, s) in scores {
            for (k, v) in s.named() {
                ms.push(MetricPoint::now(format!("{}_test_{k}", kind.name()), v));
            }
        }
        if let Some(v) = ev.champion.as_ref().and_then(|c| c.score) {
            ms.push(MetricPoint::now(format!("champion_test_{metric}"), v));
        }
        if let Some(i) = ev.champion.as_ref().and_then(|c| c.interval.as_ref()) {
            ms.push(MetricPoint::now("improvement", i.diff));
            ms.push(MetricPoint::now("improvement_low", i.low));
            ms.push(MetricPoint::now("improvement_high", i.high));
        }
        store.log_batch(&run_id, &ps, &ms, &[])?;
        for a in art::ALL.iter().filter(|a| a.stage == StageId::Evaluate && a.name != art::EVALUATE_META.name) {
            let p = out.path(a);
            if p.is_file() {
                store.log_artifact(&run_id, &p, "")?;
            }
        }
        // Each training run points at the evaluation that judged it.
        for r in results.models.values() {
            if let Some(id) = &r.run_id {
                store.log_batch(id, &[], &[], &[(leadflow_core::names::EVALUATION_RUN_TAG.to_string(), run_id.clone())])?;
            }
        }
        Ok(())
    })();
    if let Err(e) = logged {
        let _ = store.end_run(&run_id, RunStatus::Failed);
        return Err(e);
    }
    store.end_run(&run_id, RunStatus::Finished)?;
    Ok(run_id)
}

/// Expected value per 1,000 rows of flagging `p >= t` (binary).
fn value_per_1000(cost: &leadflow_core::params::CostParams, y: &[u8], p: &[f64], t: f64) -> f64 {
    let c = leadflow_metrics::confusion(y, &leadflow_metrics::threshold(p, t), 2);
    cost.value(c[1][1], c[0][1], c[1][0]) * 1000.0 / y.len().max(1) as f64
}

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

/// The one-page Markdown report.
pub fn report(
    params: &Params,
    target: &Target,
    ev: &Evaluation,
    scores: &BTreeMap<ModelKind, Scores>,
    business: &BTreeMap<ModelKind, Business>,
    inc: Option<&Incumbent>,
    results: &ModelResults,
) -> String {
    let metric = params.evaluate.selection_metric;
    let k = target.n_classes();
    let mut s = if k == 2 {
        format!(
            "# leadflow evaluation report: {} (predicts `{}` = {}, \"{}\")\n\n",
            target.dataset, target.column, target.positive, target.labels[1]
        )
    } else {
        format!(
            "# leadflow evaluation report: {} (predicts `{}`, {k} classes: {})\n\n",
            target.dataset,
            target.column,
            target.labels.join(", ")
        )
    };
    let decision = if ev.promote {
        format!("✅ **Promote {}** to {} (alias `{}`).", ev.selected.label(), params.deploy.stage.as_str(), params.deploy.stage.alias())
    } else if !ev.gate.passed {
        format!("❌ **Not promoted: the quality gate failed** for {}.", ev.selected.label())
    } else {
        format!("⏸️ **Keep the incumbent**: {} does not beat it.", ev.selected.label())
    };
    let _ = writeln!(s, "{decision}\n");
    for r in &ev.reasons {
        let _ = writeln!(s, "- {r}");
    }
    let rule = if k == 2 { format!("threshold {}", ev.threshold) } else { "predicted class = the most probable".to_string() };
    let _ = writeln!(
        s,
        "\nSelection metric: `{}` on the test split ({} rows), {rule}. Data version `{}`.\n",
        metric.name(),
        results.split.test_rows,
        &ev.data_version[..ev.data_version.len().min(12)]
    );
    if k > 2 {
        let _ = writeln!(
            s,
            "With {k} classes, precision, recall and F1 are macro averages and ROC AUC / PR AUC are one-vs-rest, macro-averaged.\n"
        );
    }
    metrics_table(&mut s, ev, scores, inc, results);
    let _ = writeln!(s, "\n## Quality gate: {}\n", if ev.gate.passed { "passed" } else { "FAILED" });
    let _ = writeln!(s, "| metric | value | threshold | |\n|---|---:|---:|---|");
    for c in &ev.gate.checks {
        let _ = writeln!(s, "| {} | {:.4} | {} | {} |", c.metric, c.value, c.threshold, if c.passed { "✅" } else { "❌" });
    }
    business_view(&mut s, target, ev, business, params.evaluate.cost.as_ref());
    let _ = writeln!(s, "\n## Pictures\n");
    let _ = writeln!(s, "![ROC curves]({})\n![Precision-recall curves]({})", art::ROC_PNG.name, art::PR_PNG.name);
    for k in scores.keys() {
        let _ = writeln!(s, "![Confusion matrix, {}]({})", k.label(), k.confusion_png().name);
    }
    let _ = writeln!(s, "![Feature importance]({})", art::IMPORTANCE_PNG.name);
    s
}

/// The test split train wrote: features in the model's column order and the labels.
fn test_split(layout: &Layout, features: &[String], target: &str, k: usize) -> Result<(Matrix, Vec<u8>)> {
    let x_path = layout.require(&art::X_TEST)?;
    let y_path = layout.require(&art::Y_TEST)?;
    let x = Table::read(&x_path)?.matrix(&x_path, features)?;
    let y = Table::read(&y_path)?.labels(&y_path, target, k)?;
    if x.n_rows != y.len() {
        return Err(leadflow_core::Error::Invalid {
            path: y_path,
            message: format!("{} labels for {} feature rows in {}", y.len(), x.n_rows, x_path.display()),
        }
        .into());
    }
    Ok((x, y))
}

/// Each model's classification report (text) and the business view in the dataset's terms.
fn write_reports(
    out: &StageDir,
    scores: &BTreeMap<ModelKind, Scores>,
    target: &leadflow_features::Target,
    evaluation: &Evaluation,
    thresholds: &BTreeMap<ModelKind, f64>,
) -> Result<BTreeMap<ModelKind, Business>> {
    let k = target.n_classes();
    for (m, s) in scores {
        let rule = if k == 2 { format!("threshold {}", thresholds[m]) } else { "predicted class = the most probable".to_string() };
        let r = ClassificationReport::from_confusion(&s.confusion_matrix);
        write_text(
            &out.path(&m.report_txt()),
            &format!("{} (test split, {rule})\n\n{}\n{}", m.label(), r.to_text(), leadflow_metrics::confusion_text(&s.confusion_matrix)),
        )?;
    }
    let business: BTreeMap<ModelKind, Business> = scores
        .iter()
        .map(|(m, s)| {
            let b =
                if k == 2 { Business::Binary(BusinessMetrics::from_scores(s, target)) } else { Business::PerClass(per_class(s, target)) };
            (*m, b)
        })
        .collect();
    art::write_json(
        &out.path(&art::BUSINESS_METRICS),
        &serde_json::json!({ "selected": evaluation.selected, "threshold": evaluation.threshold, "models": business }),
    )?;
    Ok(business)
}

/// ROC and precision-recall curves (PNG, and on a grid in `curves.json`) and the confusion heat
/// maps: binary, one curve per model; multiclass, one curve per class (one vs rest) of the
/// selected model.
fn write_curves(
    out: &StageDir,
    y: &[u8],
    probas: &BTreeMap<ModelKind, Vec<f64>>,
    scores: &BTreeMap<ModelKind, Scores>,
    target: &leadflow_features::Target,
    sel: ModelKind,
) -> Result<()> {
    let k = target.n_classes();
    type Curves = Vec<(String, Vec<(f64, f64)>)>;
    let (roc, pr, whose): (Curves, Curves, String) = if k == 2 {
        let roc = probas
            .iter()
            .map(|(m, p)| (format!("{} (AUC {:.3})", m.label(), scores[m].roc_auc), leadflow_metrics::roc_curve(y, p)))
            .collect();
        let pr =
            probas.iter().map(|(m, p)| (format!("{} (AP {:.3})", m.label(), scores[m].pr_auc), leadflow_metrics::pr_curve(y, p))).collect();
        (roc, pr, String::new())
    } else {
        let ovr: Vec<(String, Vec<u8>, Vec<f64>)> = (0..k)
            .map(|c| {
                let (yc, pc) = leadflow_metrics::one_vs_rest(y, &probas[&sel], k, c);
                (target.labels[c].clone(), yc, pc)
            })
            .collect();
        let roc = ovr
            .iter()
            .map(|(l, yc, pc)| (format!("{l} (AUC {:.3})", leadflow_metrics::roc_auc(yc, pc)), leadflow_metrics::roc_curve(yc, pc)))
            .collect();
        let pr = ovr
            .iter()
            .map(|(l, yc, pc)| (format!("{l} (AP {:.3})", leadflow_metrics::average_precision(yc, pc)), leadflow_metrics::pr_curve(yc, pc)))
            .collect();
        (roc, pr, format!(", {} one vs rest", sel.label()))
    };
    let grid = leadflow_metrics::unit_grid(100);
    type ReadOnGrid = fn(&[(f64, f64)], &[f64]) -> Vec<f64>;
    let on_grid = |curves: &Curves, read: ReadOnGrid| {
        curves.iter().map(|(name, pts)| leadflow_core::results::NamedCurve { name: name.clone(), values: read(pts, &grid) }).collect()
    };
    let curves = leadflow_core::results::CurvesOnGrid {
        roc: on_grid(&roc, leadflow_metrics::roc_on_grid),
        pr: on_grid(&pr, leadflow_metrics::pr_on_grid),
        grid: grid.clone(),
    };
    art::write_json(&out.path(&art::CURVES_JSON), &curves)?;
    plots::curves(
        &out.path(&art::ROC_PNG),
        &format!("ROC curve (test split{whose})"),
        "False positive rate",
        "True positive rate",
        &roc,
        true,
        SeriesLabelPosition::LowerRight,
    )?;
    plots::curves(
        &out.path(&art::PR_PNG),
        &format!("Precision-recall curve (test split{whose})"),
        "Recall",
        "Precision",
        &pr,
        false,
        SeriesLabelPosition::LowerLeft,
    )?;
    for (m, s) in scores {
        plots::confusion(&out.path(&m.confusion_png()), &format!("Confusion matrix: {}", m.label()), &s.confusion_matrix, &target.labels)?;
    }
    Ok(())
}

/// Each model's view of its features (XGBoost gain, logistic coefficients): JSON and one plot.
fn write_importance(
    out: &StageDir,
    loaded: &BTreeMap<ModelKind, Model>,
    features: &[String],
    target: &leadflow_features::Target,
) -> Result<()> {
    let mut panels: Vec<plots::ImportancePanel> = Vec::new();
    let mut importance = BTreeMap::new();
    for (k, m) in loaded {
        let imp = m.importance(features, &target.probability_of())?;
        panels.push((format!("{}: {}", k.label(), imp.title), imp.measure, imp.values));
    }
    for (k, (_, measure, values)) in loaded.keys().zip(&panels) {
        importance.insert(*k, leadflow_core::results::Importance { measure: measure.clone(), values: Vec::clone(values) });
    }
    art::write_json(&out.path(&art::IMPORTANCE_JSON), &importance)?;
    plots::importance(&out.path(&art::IMPORTANCE_PNG), &panels)?;

    Ok(())
}

/// The report's metrics table: every model of this run, then the incumbent re-scored.
fn metrics_table(s: &mut String, ev: &Evaluation, scores: &BTreeMap<ModelKind, Scores>, inc: Option<&Incumbent>, results: &ModelResults) {
    let _ = writeln!(s, "## Metrics (test split)\n");
    let _ = writeln!(
        s,
        "| model | accuracy | precision | recall | F1 | F1 macro | F1 weighted | ROC AUC | PR AUC | log loss | CV {} |",
        results.scoring
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |s: &mut String, name: String, m: &Scores, cv: String| {
        let _ = writeln!(
            s,
            "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {cv} |",
            m.accuracy, m.precision, m.recall, m.f1, m.f1_macro, m.f1_weighted, m.roc_auc, m.pr_auc, m.log_loss
        );
    };
    for (k, m) in scores {
        let mark = if *k == ev.selected { " (selected)" } else { "" };
        let cv = results.models.get(k).map(|r| format!("{:.4} ± {:.4}", r.cv.mean, r.cv.std)).unwrap_or_default();
        row(s, format!("{}{mark}", k.label()), m, cv);
    }
    match inc {
        Some(i) => match &i.scores {
            Some(m) => row(s, format!("incumbent `{}` v{}", i.alias, i.version.version), m, String::new()),
            None => {
                let _ = writeln!(s, "| incumbent `{}` v{} | {} |||||||||| ", i.alias, i.version.version, i.note);
            }
        },
        None => {
            let _ = writeln!(s, "| no champion yet | | | | | | | | | | |");
        }
    }
}

/// The selected model's outcome in the dataset's terms: per class (multiclass) or the business
/// view (binary: found, missed, false alarms).
fn business_view(
    s: &mut String,
    target: &Target,
    ev: &Evaluation,
    business: &BTreeMap<ModelKind, Business>,
    cost: Option<&leadflow_core::params::CostParams>,
) {
    if let Some(Business::PerClass(rows)) = business.get(&ev.selected) {
        let _ = writeln!(s, "\n## Per class ({})\n", ev.selected.label());
        let _ = writeln!(s, "| class | precision | recall | F1 | support | predicted |\n|---|---:|---:|---:|---:|---:|");
        for r in rows {
            let _ = writeln!(s, "| {} | {:.4} | {:.4} | {:.4} | {} | {} |", r.class, r.precision, r.recall, r.f1, r.support, r.predicted);
        }
    }
    if let Some(Business::Binary(b)) = business.get(&ev.selected) {
        let _ = writeln!(s, "\n## Business view ({})\n", ev.selected.label());
        let (rows, pos, neg) = (target.subjects(), &target.labels[1], &target.labels[0]);
        let _ = writeln!(
            s,
            "Of **{}** {rows} scored, **{}** are *{pos}*. The model flags **{}** as *{pos}*: **{}** correctly \
             (detection rate {}); **{}** *{pos}* {rows} are missed, and **{}** flagged {rows} are in fact *{neg}* (false-alarm rate {}).",
            b.rows_scored,
            b.actual_positive,
            b.predicted_positive,
            b.correctly_identified,
            pct(b.detection_rate),
            b.missed,
            b.false_alarms,
            pct(b.false_alarm_rate)
        );
        if let Some(c) = cost {
            let (tp, fp, fn_) = (b.correctly_identified, b.false_alarms, b.missed);
            let total = c.value(tp, fp, fn_);
            let _ = writeln!(
                s,
                "\nIn money (`[evaluate.cost]`): {tp} × {} − {fp} × {} − {fn_} × {} = **{}**, {} per 1,000 {rows} scored.",
                c.money(c.true_positive),
                c.money(c.false_positive),
                c.money(c.false_negative),
                c.money(total),
                c.money(total * 1000.0 / b.rows_scored.max(1) as f64)
            );
        }
    }
}
