//! Invariants of the code that a grep can check (rust-analyzer's `tidy` tests): they fail when the
//! code drifts from ARCHITECTURE.md.

use std::path::{Path, PathBuf};

use crate::workflow::repo_file;

/// Every `.rs` file under the library and binary sources of the workspace (not tests).
fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = [
        "crates/core/src",
        "crates/model/src",
        "crates/mlflow/src",
        "crates/data/src",
        "crates/train/src",
        "crates/evaluate/src",
        "crates/deploy/src",
        "orchestrator/src",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    assert!(out.len() > 20);
    out
}

#[test]
fn binaries_only_call_their_library() {
    // The orchestrator binary is a thin shell over the library (uv's style): no logic in main.rs.
    let main = repo_file("orchestrator/src/main.rs");
    assert!(main.lines().count() < 10, "{main}");
    assert!(main.contains("orchestrator::cli::main()"), "{main}");
}

#[test]
fn registry_names_are_defined_once() {
    // Alias and tag names are spelled only in `leadflow_core::names`.
    let names = [
        "\"champion\"",
        "\"challenger\"",
        "\"leadflow.model\"",
        "\"leadflow.data_version\"",
        "\"leadflow.previous_holder\"",
        "\"leadflow.compared_with\"",
    ];
    for f in sources() {
        if f.ends_with("core/src/names.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        for n in names {
            assert!(!text.contains(n), "{} spells {n}; use leadflow_core::names", f.display());
        }
    }
}

#[test]
fn no_stage_spells_an_artifact_path_by_hand() {
    // Artifact file names come from `leadflow_core::artifacts`; a stage that writes
    // "something.csv" itself bypasses the contract. (Inputs and CLI defaults that are not
    // artifacts, and the run history file, are listed.)
    let allowed = ["\"{id}.json\"", "\"data/sample/raw_data.csv\"", "\"predictions.csv\"", "\"raw_data.csv\"", "\"data/raw/raw_data.csv\""];
    for f in sources() {
        if ["crates/core/", "crates/mlflow/"].iter().any(|c| f.to_string_lossy().contains(c)) {
            continue; // the contract itself, and MLflow's own file layout
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for piece in line.split('"').skip(1).step_by(2) {
                let lit = format!("\"{piece}\"");
                let is_file = [".csv", ".json", ".png", ".md", ".txt"].iter().any(|x| piece.ends_with(x)) && !piece.contains(' ');
                assert!(!is_file || allowed.contains(&lit.as_str()), "{}:{}: {lit} spelled by hand", f.display(), n + 1);
            }
        }
    }
}

#[test]
fn only_the_model_crate_links_xgboost_and_the_data_stage_no_http_client() {
    // Direct dependencies; the stage crates meet only in core, which needs neither.
    let deps = |krate: &str| -> Vec<String> {
        let toml = repo_file(&format!("{krate}/Cargo.toml"));
        let mut out = Vec::new();
        let mut in_deps = false;
        for l in toml.lines() {
            if l.starts_with('[') {
                in_deps = l.trim() == "[dependencies]";
            } else if in_deps {
                if let Some((name, _)) = l.split_once(['.', '=']) {
                    out.push(name.trim().to_string());
                }
            }
        }
        out
    };
    for krate in ["crates/core", "crates/data", "crates/train", "crates/evaluate", "crates/deploy", "crates/mlflow", "orchestrator"] {
        assert!(!deps(krate).contains(&"xgboost-rs".to_string()), "{krate} links XGBoost; only crates/model may");
    }
    assert!(deps("crates/model").contains(&"xgboost-rs".to_string()));
    let forbidden: [(&str, &[&str]); 3] = [
        ("crates/core", &["ureq", "leadflow-mlflow", "leadflow-model"]),
        ("crates/data", &["ureq", "leadflow-mlflow", "leadflow-model"]),
        ("crates/model", &["ureq", "leadflow-mlflow"]),
    ];
    for (krate, names) in forbidden {
        let d = deps(krate);
        for n in names {
            assert!(!d.iter().any(|x| x == n), "{krate} depends on {n}");
        }
    }
}
