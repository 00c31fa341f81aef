//! leadflow deploy stage: register the model evaluate chose, move it to its stage and alias,
//! export a self-describing model directory (its MLflow model files and card). Using that
//! directory — `predict`, `check`, the server — is `leadflow-serve`'s.

mod card;
mod error;
pub mod pyfunc;

use std::collections::BTreeMap;
use std::path::Path;

use leadflow_core::artifacts::{self as art, Layout, StageDir, StageId};
use leadflow_core::meta::RunClock;
use leadflow_core::results::{DeployedModel, Deployment, Evaluation};
use leadflow_core::Params;
use leadflow_mlflow::registry::{Cas, Registry};
use leadflow_mlflow::Store;

pub use error::{Error, Result};

/// What the deploy stage reads: the decision, the chosen model and everything the model directory
/// and card are made of, the data version, `deploy` params, and the registry.
pub const READS: leadflow_core::fingerprint::Reads = leadflow_core::fingerprint::Reads {
    stage: StageId::Deploy,
    artifacts: &[
        art::EVALUATION,
        art::METRICS,
        art::XGB_MODEL,
        art::LR_MODEL,
        art::BOOSTED_MODEL,
        art::FEATURE_SPEC,
        art::COLUMNS_LIST,
        art::TEST_ROWS,
        art::MODEL_RESULTS,
        art::PREPROCESSING,
        art::SCALER,
        art::DATE_LIMITS,
        art::IMPORTANCE_JSON,
        art::DRIFT_REFERENCE,
        art::X_TEST,
        art::X_TRAIN,
        art::EXPLANATIONS_JSON,
    ],
    params: |p| serde_json::json!({ "deploy": p.deploy }),
    data_version: true,
};

/// Registry tags set on the versions leadflow registers (defined once, in the core registry).
pub use leadflow_core::names::{
    COMPARED_SCORE_TAG, COMPARED_WITH_TAG, DATA_VERSION_TAG, MARGIN_TAG, METRIC_TAG, MODEL_TAG, PREVIOUS_HOLDER_TAG, SCORE_TAG,
};
/// Exit status of `leadflow-deploy` when the registry moved after evaluate decided.
pub const EXIT_HOLDER_CHANGED: u8 = 3;

fn copy(from: &Path, to: &Path) -> Result<()> {
    let _permit = art::write_permit();
    std::fs::copy(from, to).map(|_| ()).map_err(|e| Error::Write { path: to.into(), source: e.into() })
}

/// Run the deploy stage. When evaluate promoted, register the chosen model, move its stage and
/// alias (compare-and-swap) and export `artifacts/model/`; otherwise leave the registry alone and
/// export no model directory (one left by an earlier run is removed), so nothing rejected can be
/// mistaken for an accepted model.
pub fn run(layout: &Layout, params: &Params, store: &dyn Store) -> Result<Deployment> {
    let clock = RunClock::start();
    let evaluation: Evaluation = art::read_json(&layout.require(&art::EVALUATION)?, "an evaluation")?;
    let mut fp = leadflow_core::fingerprint::compute(&READS, layout, params, None, env!("CARGO_PKG_VERSION"))?;
    let data_meta = leadflow_core::meta::read(&layout.require(&art::DATA_META)?)?;
    let kind = evaluation.selected;
    // Refuse a corrupt model before anything is registered.
    leadflow_model::Model::load(kind, &layout.require(&kind.artifact())?)?;
    let (deployment, model_dir) = if evaluation.promote {
        let (deployment, dir) = promote(layout, params, store, &evaluation, &data_meta.data_version)?;
        (deployment, Some(dir))
    } else {
        tracing::info!("evaluate decided not to promote: registry untouched, no model directory exported");
        let deployment = Deployment {
            promoted: false,
            model_name: params.deploy.model_name.clone(),
            kind,
            run_id: evaluation.selected_run_id.clone(),
            version: None,
            created: false,
            stage: None,
            alias: None,
            previous_holder: None,
            archived: vec![],
            source: None,
            reasons: evaluation.reasons.clone(),
            superseded_by: None,
        };
        (deployment, None)
    };

    let out = StageDir::begin(layout.stage_dir(StageId::Deploy))?;
    art::write_json(&out.path(&art::DEPLOYMENT), &deployment)?;
    let meta = clock.finish(StageId::Deploy, env!("CARGO_PKG_VERSION"), data_meta.data_version, params.hash(), BTreeMap::new());
    art::write_json(&out.path(&art::DEPLOY_META), &meta)?;
    // The registry state this deploy leaves: the next run's evaluate and deploy are up to date
    // against it.
    fp.registry = Some(leadflow_mlflow::registry::state(store, params));
    leadflow_core::fingerprint::write(out.dir(), fp, model_dir.as_ref().map(StageDir::dir))?;
    // The model directory first: a deploy record never names a model directory that is not there.
    match model_dir {
        Some(dir) => {
            dir.commit()?;
        }
        None => art::remove_dir(&layout.model_dir())?,
    }
    out.commit()?;
    Ok(deployment)
}

/// Fill the model directory, register the chosen run's model, tag it with its evidence and move
/// its stage and alias if the holders evaluate compared with still hold. Returns the deployment
/// and the model directory, not yet committed.
fn promote(
    layout: &Layout,
    params: &Params,
    store: &dyn Store,
    evaluation: &Evaluation,
    data_version: &str,
) -> Result<(Deployment, StageDir)> {
    let kind = evaluation.selected;
    let name = params.deploy.model_name.clone();
    let stage = params.deploy.stage;
    let (model_dir, mut deployed, pre) = fill_model_dir(layout, evaluation, &name, data_version)?;
    let run_id = evaluation.selected_run_id.clone().ok_or_else(|| Error::Input {
        path: layout.path(&art::EVALUATION),
        message: "the selected model has no tracking run id; re-run the train stage".into(),
    })?;
    // The registered source is the run's own artifact folder, which later runs never overwrite.
    log_model_files(store, &run_id, model_dir.dir())?;
    let source = format!("{}/model", store.artifact_uri(&run_id)?.trim_end_matches('/'));
    let alias = stage.alias();
    let mut tags = vec![
        (MODEL_TAG.to_string(), kind.name().to_string()),
        (DATA_VERSION_TAG.to_string(), data_version.to_string()),
        (format!("leadflow.test_{}", evaluation.selection_metric), format!("{}", evaluation.selected_score)),
    ];
    // The improvement over the incumbent it was compared with, and its bootstrap interval.
    if let Some((c, i)) = evaluation.champion.as_ref().and_then(|c| c.interval.as_ref().map(|i| (c, i))) {
        tags.push((format!("leadflow.improvement_over_v{}", c.version), i.describe()));
    }
    let (mv, created) = store.register_version(&name, &source, &run_id, &tags)?;
    let none = || "none".to_string();
    let champion = evaluation.champion.as_ref();
    let evidence = [
        (METRIC_TAG, evaluation.selection_metric.clone()),
        (SCORE_TAG, format!("{}", evaluation.selected_score)),
        (COMPARED_WITH_TAG, champion.map(|c| c.version.to_string()).unwrap_or_else(none)),
        (COMPARED_SCORE_TAG, champion.and_then(|c| c.score).map(|v| format!("{v}")).unwrap_or_else(none)),
        (MARGIN_TAG, format!("{}", params.evaluate.promotion_margin)),
    ];
    for (k, v) in &evidence {
        store.set_version_tag(&name, mv.version, k, v)?;
    }
    // Compare-and-swap: stage and alias move only if the holders evaluate compared with still
    // hold (checked and moved under the registry lock for the file store).
    let promotion = match store.promote_if(&name, mv.version, stage.as_str(), alias, &evaluation.holders)? {
        Cas::Promoted(p) => p,
        Cas::HolderChanged { alias, expected, now } => return Err(Error::HolderChanged { alias, expected, now }),
    };
    let superseded_by = promotion.holder_after.filter(|&v| v != mv.version);
    if let Some(v) = superseded_by {
        tracing::warn!(
            "lost race: right after {name} v{} took @{alias}, v{v} held it (another pipeline promoted in the same instant; MLflow has no conditional update)",
            mv.version
        );
    }
    let archived = promotion.archived.clone();
    let previous_holder = promotion.previous_alias_holder.or_else(|| archived.iter().copied().max()).filter(|&v| v != mv.version);
    if let Some(p) = previous_holder {
        store.set_version_tag(&name, mv.version, PREVIOUS_HOLDER_TAG, &p.to_string())?;
    }
    tracing::info!(
        "registered {name} v{} ({}) -> {} / @{alias}{}",
        mv.version,
        if created { "new" } else { "already registered" },
        stage.as_str(),
        previous_holder.map(|p| format!(", previously v{p}")).unwrap_or_default()
    );
    let deployment = Deployment {
        promoted: true,
        model_name: name,
        kind,
        run_id: Some(run_id),
        version: Some(mv.version),
        created,
        stage: Some(stage.as_str().into()),
        alias: Some(alias.into()),
        previous_holder,
        archived,
        source: Some(source),
        reasons: evaluation.reasons.clone(),
        superseded_by,
    };

    deployed.version = deployment.version;
    deployed.stage = deployment.stage.clone();
    write_card(layout, params, &model_dir, &deployed, &deployment, &pre)?;
    Ok((deployment, model_dir))
}

/// What [`promote_exported`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Release {
    pub model_name: String,
    pub version: u64,
    pub stage: String,
    pub alias: String,
    /// The alias's holder before, if another version held it.
    pub previous_holder: Option<u64>,
    pub archived: Vec<u64>,
}

/// Promote the registered version an exported model directory names (its `model.json`) to
/// `stage` and that stage's alias — the release workflow's step. A compare-and-swap like deploy's:
/// the alias's holder is read, and the move happens only if it still holds (on an MLflow server,
/// re-read right before the move). The version must exist and be this model (same run id).
pub fn promote_exported(store: &dyn Registry, model_dir: &Path, stage: leadflow_core::params::Stage) -> Result<Release> {
    let spec = model_dir.join(art::MODEL_SPEC.name);
    let model: DeployedModel = art::read_json(&spec, "an exported model")?;
    let version = model.version.ok_or_else(|| Error::Input {
        path: spec.clone(),
        message: "this model directory names no registered version (its run did not promote it)".into(),
    })?;
    let name = model.model_name.clone();
    let registered = store.get_version(&name, version)?;
    if model.run_id.as_deref().is_some_and(|r| r != registered.run_id) {
        return Err(Error::Input {
            path: spec,
            message: format!(
                "{name} v{version} in this registry comes from run {}, this model from run {}: another registry?",
                registered.run_id,
                model.run_id.unwrap_or_default()
            ),
        });
    }
    let alias = stage.alias();
    let expected: leadflow_core::results::Holders =
        std::iter::once((alias.to_string(), store.get_by_alias(&name, alias)?.map(|v| v.version))).collect();
    let promotion = match store.promote_if(&name, version, stage.as_str(), alias, &expected)? {
        Cas::Promoted(p) => p,
        Cas::HolderChanged { alias, expected, now } => return Err(Error::HolderChanged { alias, expected, now }),
    };
    let previous_holder = promotion.previous_alias_holder.filter(|&v| v != version);
    if let Some(p) = previous_holder {
        store.set_version_tag(&name, version, PREVIOUS_HOLDER_TAG, &p.to_string())?;
    }
    Ok(Release {
        model_name: name,
        version,
        stage: stage.as_str().into(),
        alias: alias.into(),
        previous_holder,
        archived: promotion.archived,
    })
}

/// Registry lookups for the command line (`leadflow model show`).
pub fn describe(store: &dyn Registry, name: &str, alias: Option<&str>) -> Result<serde_json::Value> {
    if let Some(a) = alias {
        return Ok(version_json(&leadflow_mlflow::registry::version_by_alias(store, name, a)?));
    }
    let versions = store.list_versions(name)?;
    Ok(serde_json::Value::Array(versions.iter().map(version_json).collect()))
}

fn version_json(v: &leadflow_mlflow::registry::ModelVersion) -> serde_json::Value {
    serde_json::json!({
        "name": v.name, "version": v.version, "stage": v.current_stage, "aliases": v.aliases,
        "run_id": v.run_id, "source": v.source, "tags": v.tags,
    })
}

/// The model directory of the chosen model, filled in a temporary place: the model file, what
/// scoring raw rows needs, `model.json` (no version yet) and the MLflow model files.
fn fill_model_dir(
    layout: &Layout,
    evaluation: &Evaluation,
    name: &str,
    data_version: &str,
) -> Result<(StageDir, DeployedModel, leadflow_features::Preprocessing)> {
    let kind = evaluation.selected;
    let model_file = layout.require(&kind.artifact())?;
    let spec_file = layout.require(&art::FEATURE_SPEC)?;
    let pre_file = layout.require(&art::PREPROCESSING)?;
    let features: Vec<String> = art::read_json(&layout.require(&art::COLUMNS_LIST)?, "a feature list")?;

    // The model directory, filled in a temporary place.
    let model_dir = StageDir::begin(layout.model_dir())?;
    copy(&model_file, &model_dir.dir().join(kind.artifact().name))?;
    copy(&spec_file, &model_dir.dir().join(art::FEATURE_SPEC.name))?;
    copy(&pre_file, &model_dir.dir().join(art::PREPROCESSING.name))?;
    copy(&layout.require(&art::SCALER)?, &model_dir.dir().join(art::SCALER.name))?;
    copy(&layout.require(&art::COLUMNS_LIST)?, &model_dir.dir().join(art::COLUMNS_LIST.name))?;
    copy(&layout.require(&art::TEST_ROWS)?, &model_dir.path(&art::MODEL_TEST_ROWS))?;
    let pre: leadflow_features::Preprocessing = art::read_json(&pre_file, "the data stage's preprocessing")?;
    let feature_spec: leadflow_features::FeatureSpec = art::read_json(&spec_file, "a feature spec")?;
    // What the model is, before any registration: the run's copy of the model directory carries
    // this (no version), the local one gets the version once registered.
    let results: leadflow_core::results::ModelResults = art::read_json(&layout.require(&art::MODEL_RESULTS)?, "train results")?;
    let deployed = DeployedModel {
        model_name: name.to_string(),
        kind,
        file: kind.artifact().name.into(),
        threshold: evaluation.threshold,
        calibration: results.models.get(&kind).and_then(|r| r.calibration()).cloned(),
        features,
        data_version: data_version.to_string(),
        run_id: evaluation.selected_run_id.clone(),
        version: None,
        stage: None,
    };
    art::write_json(&model_dir.path(&art::MODEL_SPEC), &deployed)?;
    let reference = drift_reference(layout, &deployed, &pre)?;
    art::write_json(&model_dir.path(&art::MODEL_REFERENCE), &reference)?;
    art::write_json(
        &model_dir.path(&art::MODEL_EXPLAIN),
        &serde_json::json!({ "feature_means": feature_means(layout, &deployed.features)? }),
    )?;
    // An MLflow model: MLmodel, environment, example and the pyfunc loader.
    pyfunc::MlflowModel {
        model: &deployed,
        pre: &pre,
        spec: &feature_spec,
        run_id: evaluation.selected_run_id.as_deref(),
        created: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        model_uuid: leadflow_core::hash::sha256_file(&model_file)?[..32].to_string(),
    }
    .write(model_dir.dir())?;

    Ok((model_dir, deployed, pre))
}

/// The model directory's files, logged as the run's `model/` artifact folder (what the registry
/// version points at).
fn log_model_files(store: &dyn Store, run_id: &str, dir: &Path) -> Result<()> {
    const FILES: [&str; 8] = [
        art::FEATURE_SPEC.name,
        art::PREPROCESSING.name,
        art::SCALER.name,
        art::COLUMNS_LIST.name,
        art::MODEL_SPEC.name,
        art::MODEL_REFERENCE.name,
        art::MODEL_EXPLAIN.name,
        art::MODEL_TEST_ROWS.name,
    ];
    for f in FILES.into_iter().chain(pyfunc::FILES.iter().copied()) {
        store.log_artifact(run_id, &dir.join(f), "model")?;
    }
    let loader = dir.join(pyfunc::CODE_DIR).join(format!("{}.py", pyfunc::LOADER_MODULE));
    store.log_artifact(run_id, &loader, &format!("model/{}", pyfunc::CODE_DIR))?;
    Ok(())
}

/// The data stage's profile of the training table, with the model's scores on its test split:
/// P(positive) for a binary target, the predicted class otherwise (what `model drift` compares
/// a batch's scores with).
fn drift_reference(layout: &Layout, deployed: &DeployedModel, pre: &leadflow_features::Preprocessing) -> Result<leadflow_drift::Reference> {
    let mut reference: leadflow_drift::Reference =
        art::read_json(&layout.require(&art::DRIFT_REFERENCE)?, "the data stage's drift reference")?;
    let model = leadflow_model::Model::load(deployed.kind, &layout.require(&deployed.kind.artifact())?)?;
    let x_test = layout.require(&art::X_TEST)?;
    let x = leadflow_features::table::Table::read(&x_test)?.matrix(&x_test, &deployed.features)?;
    let mut p = model.predict(&x)?;
    if let Some(c) = &deployed.calibration {
        c.apply(&mut p);
    }
    let k = pre.target.n_classes();
    reference.prediction = Some(if k == 2 {
        leadflow_drift::Column::continuous("prediction", p.into_iter().map(Some))
    } else {
        let labels: Vec<&str> =
            leadflow_metrics::predict_classes(&p, k, deployed.threshold).iter().map(|&c| pre.target.labels[c as usize].as_str()).collect();
        leadflow_drift::Column::categorical("prediction", false, labels.into_iter().map(Some))
    });
    Ok(reference)
}

/// The training rows' mean of each feature, in model order (what the logistic model's
/// contributions are centred on).
fn feature_means(layout: &Layout, features: &[String]) -> Result<Vec<f64>> {
    let x_train = layout.require(&art::X_TRAIN)?;
    let x = leadflow_features::table::Table::read(&x_train)?.matrix(&x_train, features)?;
    let n = x.n_rows.max(1) as f64;
    Ok((0..x.n_cols).map(|j| (0..x.n_rows).map(|i| x.row(i)[j]).sum::<f64>() / n).collect())
}

/// The model card, for people (Markdown) and machines (JSON), into the model directory.
fn write_card(
    layout: &Layout,
    params: &Params,
    model_dir: &StageDir,
    deployed: &DeployedModel,
    deployment: &Deployment,
    pre: &leadflow_features::Preprocessing,
) -> Result<()> {
    let kind = deployed.kind;
    art::write_json(&model_dir.path(&art::MODEL_SPEC), deployed)?;
    let metrics: BTreeMap<leadflow_core::model::ModelKind, leadflow_metrics::Scores> =
        art::read_json(&layout.require(&art::METRICS)?, "evaluation metrics")?;
    let limits: serde_json::Value = art::read_json(&layout.require(&art::DATE_LIMITS)?, "date limits")?;
    let results: leadflow_core::results::ModelResults = art::read_json(&layout.require(&art::MODEL_RESULTS)?, "train results")?;
    let importance: BTreeMap<leadflow_core::model::ModelKind, leadflow_core::results::Importance> =
        art::read_json(&layout.require(&art::IMPORTANCE_JSON)?, "feature importance")?;
    let explained = layout.path(&art::EXPLANATIONS_JSON);
    let explanations: Option<serde_json::Value> =
        if explained.is_file() { Some(art::read_json(&explained, "the evaluate stage's explanations")?) } else { None };
    let card = card::ModelCard::new(&card::CardInputs {
        params,
        pre,
        model: deployed,
        deployment,
        metrics: metrics.get(&kind),
        limits: &limits,
        results: &results,
        importance: importance.get(&kind),
        explanations: explanations.as_ref().filter(|e| e["model"] == serde_json::json!(kind)),
    });
    art::write_json(&model_dir.path(&art::MODEL_CARD_JSON), &card)?;
    art::write_atomic(&model_dir.path(&art::MODEL_CARD_MD), card.to_markdown().as_bytes())?;
    Ok(())
}
