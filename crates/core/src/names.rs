//! Registry alias and tag names, defined once.

/// The alias of the Production version; the incumbent every decision compares with first.
pub const CHAMPION: &str = "champion";
/// The alias of the Staging version.
pub const CHALLENGER: &str = "challenger";
/// On versions and runs: which model kind the artifact holds.
pub const MODEL_TAG: &str = "leadflow.model";
/// On versions and runs: the data version (sha256 of the raw file).
pub const DATA_VERSION_TAG: &str = "leadflow.data_version";
/// On a promoted version: the version that held the alias before.
pub const PREVIOUS_HOLDER_TAG: &str = "leadflow.previous_holder";
/// On a promoted version, the evaluation evidence: the registry alone explains each move.
pub const METRIC_TAG: &str = "leadflow.selection_metric";
pub const SCORE_TAG: &str = "leadflow.score";
pub const COMPARED_WITH_TAG: &str = "leadflow.compared_with";
pub const COMPARED_SCORE_TAG: &str = "leadflow.compared_score";
pub const MARGIN_TAG: &str = "leadflow.margin";
/// On tracking runs: the stage that logged the run (`train`, `evaluate`).
pub const STAGE_TAG: &str = "leadflow.stage";
/// On tracking runs: the params hash the run was made with.
pub const PARAMS_HASH_TAG: &str = "leadflow.params_hash";
/// On a training run: the evaluation run that judged it.
pub const EVALUATION_RUN_TAG: &str = "leadflow.evaluation_run";
