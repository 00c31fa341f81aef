//! The release workflow's promotion step (`leadflow-deploy promote`): the version an exported
//! model directory names moves to Production / @champion by compare-and-swap.

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::params::Stage;
use leadflow_testkit::{committed_sample, quick_params};

#[test]
fn promote_moves_the_exported_version_to_champion_and_refuses_what_it_cannot_name() {
    let dir = tempfile::tempdir().unwrap();
    let opts = crate::options(dir.path(), &committed_sample());
    // The first model is a weak one (a strongly penalised logistic regression alone), so the
    // second run's model beats it and is promoted too.
    let params = quick_params();
    let mut weak = params.clone();
    weak.train.xgboost.enabled = false;
    weak.train.logistic.c = vec![1e-4];
    weak.train.logistic.penalty = vec!["l2".into()];
    weak.evaluate.min_accuracy = 0.0;
    weak.evaluate.min_f1_weighted = 0.0;
    weak.evaluate.min_roc_auc = 0.0;
    orchestrator::local::run(&opts, &weak).unwrap();
    let layout = Layout::new(&opts.artifacts_dir);
    let store = leadflow_mlflow::open_store(&opts.tracking).unwrap();
    let name = &params.deploy.model_name;
    assert!(store.get_by_alias(name, "champion").unwrap().is_none(), "a default run sets @challenger only");

    let r = leadflow_deploy::promote_exported(store.as_ref(), &layout.model_dir(), Stage::Production).unwrap();
    assert_eq!((r.version, r.stage.as_str(), r.alias.as_str(), r.previous_holder), (1, "Production", "champion", None));
    let v1 = store.get_by_alias(name, "champion").unwrap().unwrap();
    assert_eq!((v1.version, v1.current_stage.as_str()), (1, "Production"));
    // Again: idempotent.
    let again = leadflow_deploy::promote_exported(store.as_ref(), &layout.model_dir(), Stage::Production).unwrap();
    assert_eq!((again.version, again.previous_holder), (1, None));

    // A second, better model (promoted to @challenger by its run) replaces v1 as champion.
    orchestrator::local::run(&opts, &params).unwrap();
    let r = leadflow_deploy::promote_exported(store.as_ref(), &layout.model_dir(), Stage::Production).unwrap();
    assert_eq!((r.version, r.previous_holder), (2, Some(1)), "{r:?}");
    assert_eq!(store.get_version(name, 1).unwrap().current_stage, "Archived");
    assert_eq!(store.get_by_alias(name, "champion").unwrap().unwrap().version, 2);

    // A model directory that names no version, or a version of another registry, is refused.
    let spec = layout.model_dir().join(art::MODEL_SPEC.name);
    let mut model: serde_json::Value = art::read_json(&spec, "m").unwrap();
    model["version"] = serde_json::Value::Null;
    art::write_json(&spec, &model).unwrap();
    let err = leadflow_deploy::promote_exported(store.as_ref(), &layout.model_dir(), Stage::Production).unwrap_err().to_string();
    assert!(err.contains("names no registered version"), "{err}");
    model["version"] = 1.into();
    art::write_json(&spec, &model).unwrap();
    let err = leadflow_deploy::promote_exported(store.as_ref(), &layout.model_dir(), Stage::Production).unwrap_err().to_string();
    assert!(err.contains("another registry?"), "{err}");
    assert_eq!(store.get_by_alias(name, "champion").unwrap().unwrap().version, 2, "nothing moved");
}
