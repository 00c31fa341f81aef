//! The exported model as an MLflow model: an `MLmodel` file with the `python_function` flavour
//! (our loader module, `code/leadflow_pyfunc.py`, a port of the scoring path checked against
//! `predict` by the tests) and, for XGBoost, MLflow's `xgboost` flavour on the same JSON model
//! file; a signature (raw input columns and their types, the outputs), an input example and the
//! environment files MLflow writes (`requirements.txt`, `python_env.yaml`, `conda.yaml`).
//!
//! Logistic regression has no native MLflow flavour here: the loader applies its JSON
//! coefficients with numpy. That keeps one model file (no pickle, nothing tied to a
//! scikit-learn version) and needs only what MLflow itself installs.

use std::path::Path;

use leadflow_core::artifacts as art;
use leadflow_core::dataset::{parse_bool, parse_finite};
use leadflow_core::results::DeployedModel;
use leadflow_features::{FeatureSpec, Preprocessing};
use serde_json::{json, Value};

use crate::error::Result;

/// The loader module MLflow imports (`loader_module` of the `python_function` flavour).
pub const LOADER_MODULE: &str = "leadflow_pyfunc";
/// Its source, written to `code/leadflow_pyfunc.py`.
pub const LOADER_SOURCE: &str = include_str!("pyfunc/leadflow_pyfunc.py");
/// The MLflow release these files follow (and the tests load them with).
pub const MLFLOW_VERSION: &str = "3.17.2";
/// The XGBoost library that writes our XGBoost models (xgboost-rs-sys's bundled release).
pub const XGBOOST_VERSION: &str = "1.6.2";
/// The Python the tests load the model with.
pub const PYTHON_VERSION: &str = "3.11";

/// Files of the MLflow model, beside the leadflow files of the model directory.
pub const MLMODEL: &str = "MLmodel";
pub const FILES: &[&str] =
    &[MLMODEL, "requirements.txt", "python_env.yaml", "conda.yaml", "input_example.json", "serving_input_example.json"];
pub const CODE_DIR: &str = "code";

/// The MLflow type of a raw column: numbers are `double` (pandas reads a column of integer
/// codes as int64, or float64 when it has gaps: MLflow accepts both for `double`); categorical
/// columns whose training values are all numbers are `double` too (the loader maps 5.0 to the
/// level "5"); columns of True/False values (pandas reads them as bool) are `boolean`; the rest,
/// yes/no columns included, `string`.
fn column_type(pre: &Preprocessing, spec: &FeatureSpec, column: &str) -> &'static str {
    if pre.continuous.iter().any(|c| c.name == column) {
        return "double";
    }
    let Some(fill) = pre.categorical.iter().find(|c| c.name == column) else { return "string" };
    let levels: Vec<&str> =
        spec.categorical.iter().find(|c| c.name == column).map(|c| c.levels.iter().map(String::as_str).collect()).unwrap_or_default();
    let values: Vec<&str> = if levels.is_empty() { vec![fill.mode.as_str()] } else { levels };
    if values.iter().all(|v| parse_finite(v).is_some()) {
        "double"
    } else if !fill.boolean && values.iter().all(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
        "boolean"
    } else {
        "string"
    }
}

/// One example row: every column at its training fill (continuous) or mode (categorical).
fn example_value(pre: &Preprocessing, column: &str, ty: &str) -> Value {
    if let Some(c) = pre.continuous.iter().find(|c| c.name == column) {
        return json!(c.fill);
    }
    let text =
        pre.categorical.iter().find(|c| c.name == column).map(|c| c.fill.clone().unwrap_or_else(|| c.mode.clone())).unwrap_or_default();
    match ty {
        "double" => parse_finite(&text).map_or(Value::Null, |v| json!(v)),
        "boolean" => parse_bool(&text).map_or(Value::Null, Value::Bool),
        _ => json!(text),
    }
}

fn to_yaml(v: &Value) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml;
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(to_yaml).collect()),
        Value::Object(o) => Yaml::Hash(o.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v))).collect()),
    }
}

fn yaml_text(v: &Value) -> String {
    let mut out = String::new();
    let mut e = yaml_rust2::YamlEmitter::new(&mut out);
    // Writing to a String cannot fail.
    let _ = e.dump(&to_yaml(v));
    let body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    body + "\n"
}

/// What the MLflow model is made of; everything but `created` and `model_uuid` follows from the
/// model directory's files, so the same model gives the same `MLmodel` apart from those two.
pub struct MlflowModel<'a> {
    pub model: &'a DeployedModel,
    pub pre: &'a Preprocessing,
    pub spec: &'a FeatureSpec,
    /// `artifact_path`/`run_id` when the model lives in a run's artifacts.
    pub run_id: Option<&'a str>,
    /// UTC creation time as MLflow writes it (`%Y-%m-%d %H:%M:%S.%f`).
    pub created: String,
    pub model_uuid: String,
}

impl MlflowModel<'_> {
    /// Raw input columns with their MLflow types.
    pub fn inputs(&self) -> Vec<(String, &'static str)> {
        self.pre.raw_inputs().into_iter().map(|c| (c.to_string(), column_type(self.pre, self.spec, c))).collect()
    }

    fn outputs(&self) -> Vec<Value> {
        let t = &self.pre.target;
        if t.n_classes() == 2 {
            vec![
                json!({"type": "double", "name": "probability", "required": true}),
                json!({"type": "long", "name": "label", "required": true}),
            ]
        } else {
            std::iter::once(json!({"type": "string", "name": "label", "required": true}))
                .chain(t.labels.iter().map(|l| json!({"type": "double", "name": format!("p_{l}"), "required": true})))
                .collect()
        }
    }

    pub fn mlmodel(&self) -> Value {
        let inputs: Vec<Value> = self.inputs().iter().map(|(n, t)| json!({"type": t, "name": n, "required": true})).collect();
        let mut flavors = serde_json::Map::new();
        flavors.insert(
            "python_function".into(),
            json!({
                "loader_module": LOADER_MODULE,
                "code": CODE_DIR,
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "python_version": PYTHON_VERSION,
            }),
        );
        if self.model.kind.is_xgboost() {
            flavors.insert(
                "xgboost".into(),
                json!({
                    "code": null,
                    "data": self.model.file,
                    "model_class": "xgboost.core.Booster",
                    "model_format": "json",
                    "xgb_version": XGBOOST_VERSION,
                }),
            );
        }
        let mut m = json!({
            "flavors": flavors,
            "mlflow_version": MLFLOW_VERSION,
            "model_uuid": self.model_uuid,
            "utc_time_created": self.created,
            "signature": {
                "inputs": serde_json::to_string(&inputs).unwrap_or_default(),
                "outputs": serde_json::to_string(&self.outputs()).unwrap_or_default(),
                "params": null,
            },
            "saved_input_example_info": {
                "artifact_path": "input_example.json",
                "type": "dataframe",
                "pandas_orient": "split",
                "serving_input_path": "serving_input_example.json",
            },
            "metadata": {
                "leadflow_version": env!("CARGO_PKG_VERSION"),
                "model_kind": self.model.kind.name(),
                "dataset": self.pre.target.dataset,
                "target": self.pre.target.column,
                "classes": self.pre.target.labels,
                "threshold": self.model.threshold,
                "data_version": self.model.data_version,
            },
        });
        if let Some(run) = self.run_id {
            m["run_id"] = json!(run);
            m["artifact_path"] = json!("model");
        }
        m
    }

    fn example(&self) -> Value {
        let inputs = self.inputs();
        let columns: Vec<&str> = inputs.iter().map(|(c, _)| c.as_str()).collect();
        let row: Vec<Value> = inputs.iter().map(|(c, t)| example_value(self.pre, c, t)).collect();
        json!({"columns": columns, "data": [row]})
    }

    fn requirements(&self) -> Vec<String> {
        let mut r = vec![format!("mlflow=={MLFLOW_VERSION}"), "numpy".into(), "pandas".into()];
        if self.model.kind.is_xgboost() {
            r.push(format!("xgboost>={XGBOOST_VERSION}"));
        }
        r
    }

    /// Write the MLflow files and the loader into `dir` (the model directory).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let example = self.example();
        art::write_atomic(&dir.join(MLMODEL), yaml_text(&self.mlmodel()).as_bytes())?;
        art::write_atomic(&dir.join("input_example.json"), serde_json::to_string(&example).unwrap_or_default().as_bytes())?;
        let serving = json!({ "dataframe_split": example });
        art::write_atomic(&dir.join("serving_input_example.json"), serde_json::to_string_pretty(&serving).unwrap_or_default().as_bytes())?;
        let reqs = self.requirements();
        art::write_atomic(&dir.join("requirements.txt"), (reqs.join("\n") + "\n").as_bytes())?;
        let python_env = json!({"python": PYTHON_VERSION, "build_dependencies": ["pip"], "dependencies": ["-r requirements.txt"]});
        art::write_atomic(&dir.join("python_env.yaml"), yaml_text(&python_env).as_bytes())?;
        let conda = json!({
            "channels": ["conda-forge"],
            "dependencies": [format!("python={PYTHON_VERSION}"), "pip", {"pip": reqs}],
            "name": "mlflow-env",
        });
        art::write_atomic(&dir.join("conda.yaml"), yaml_text(&conda).as_bytes())?;
        let code = dir.join(CODE_DIR);
        std::fs::create_dir_all(&code).map_err(|e| crate::error::Error::Write { path: code.clone(), source: e.into() })?;
        art::write_atomic(&code.join(format!("{LOADER_MODULE}.py")), LOADER_SOURCE.as_bytes())?;
        Ok(())
    }
}
