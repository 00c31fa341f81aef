//! Invariants of the code that a grep can check (rust-analyzer's `tidy` tests): they fail when the
//! code drifts from ARCHITECTURE.md.

use std::path::PathBuf;

use crate::workflow::repo_file;

/// Every `.rs` file under the library and binary sources of the workspace (not tests).
fn sources() -> Vec<PathBuf> {
    let root = leadflow_testkit::repo_root();
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
    assert!(main.contains("orchestrator::commands::main()"), "{main}");
    let old = repo_file("orchestrator/src/bin/orchestrator.rs");
    assert!(old.lines().count() < 10 && old.contains("orchestrator::commands::main_old_spelling()"), "{old}");
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
fn the_lead_dataset_is_defined_only_in_its_preset() {
    // Every column of the lead table appears in `core::dataset` (the preset) and the lead
    // generator, nowhere else: stages read roles from params or the saved preprocessing.
    // (`source` is left out: it is also a field of MLflow's model versions.)
    let columns = leadflow_data::generate::RAW_COLUMNS.iter().filter(|c| **c != "source").map(|c| format!("\"{c}\""));
    let columns = columns.chain(["\"bin_source\"".to_string()]);
    let columns: Vec<String> = columns.collect();
    for f in sources() {
        if f.ends_with("core/src/dataset.rs") || f.ends_with("data/src/generate.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        for c in &columns {
            assert!(!text.contains(c.as_str()), "{} names the lead column {c}; read it from the dataset", f.display());
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
        if ["crates/core/", "crates/mlflow/", "crates/deploy/src/pyfunc.rs"].iter().any(|c| f.to_string_lossy().contains(c)) {
            continue; // the contract itself, and MLflow's own file layouts (store, model)
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
    for krate in [
        "crates/core",
        "crates/csv",
        "crates/metrics",
        "crates/features",
        "crates/cli",
        "crates/data",
        "crates/train",
        "crates/evaluate",
        "crates/deploy",
        "crates/serve",
        "crates/mlflow",
        "orchestrator",
    ] {
        assert!(!deps(krate).contains(&"xgboost-rs".to_string()), "{krate} links XGBoost; only crates/model may");
    }
    assert!(deps("crates/model").contains(&"xgboost-rs".to_string()));
    let server = ["axum", "tokio", "hyper", "leadflow-serve"];
    let forbidden: [(&str, &[&str]); 10] = [
        ("crates/core", &["ureq", "leadflow-mlflow", "leadflow-model", "clap", "tracing-subscriber", "polars"]),
        ("crates/csv", &["leadflow-core"]),
        ("crates/metrics", &["leadflow-core"]),
        ("crates/features", &["leadflow-model", "leadflow-mlflow"]),
        ("crates/data", &["ureq", "leadflow-mlflow", "leadflow-model"]),
        ("crates/data", &server),
        ("crates/train", &server),
        ("crates/evaluate", &server),
        ("crates/model", &["ureq", "leadflow-mlflow"]),
        ("crates/mlflow", &server),
    ];
    // Stage crates never depend on each other (dev-dependencies may, to make test inputs).
    let stages = ["leadflow-data", "leadflow-train", "leadflow-evaluate", "leadflow-deploy"];
    for krate in ["crates/data", "crates/train", "crates/evaluate", "crates/deploy", "crates/serve"] {
        let d = deps(krate);
        assert!(!d.iter().any(|x| stages.contains(&x.as_str())), "{krate} depends on another stage: {d:?}");
    }
    for (krate, names) in forbidden {
        let d = deps(krate);
        for n in names {
            assert!(!d.iter().any(|x| x == n), "{krate} depends on {n}");
        }
    }
}

/// The modules a file refers to with `crate::<module>` (code only: no comments, no tests).
fn module_refs(text: &str, modules: &[String]) -> Vec<String> {
    let code: String =
        text.split("#[cfg(test)]").next().unwrap().lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut refs: Vec<String> = Vec::new();
    for m in modules {
        let direct = format!("crate::{m}");
        let grouped = code.match_indices("use crate::{").any(|(i, _)| {
            let rest = &code[i..];
            let group = &rest[..rest.find('}').unwrap_or(rest.len())];
            group.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == m)
        });
        if code.split(&direct).skip(1).any(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_')) || grouped {
            refs.push(m.clone());
        }
    }
    refs
}

#[test]
fn no_import_circle_between_modules() {
    let root = leadflow_testkit::repo_root();
    for krate in
        ["crates/core", "crates/mlflow", "crates/model", "crates/data", "crates/train", "crates/evaluate", "crates/deploy", "orchestrator"]
    {
        let src = root.join(krate).join("src");
        let files: Vec<PathBuf> =
            std::fs::read_dir(&src).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "rs")).collect();
        let modules: Vec<String> =
            files.iter().map(|p| p.file_stem().unwrap().to_string_lossy().to_string()).filter(|m| m != "lib" && m != "main").collect();
        let edges: std::collections::BTreeMap<String, Vec<String>> = files
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
            .filter(|m| m != "lib" && m != "main")
            .map(|m| {
                let text = std::fs::read_to_string(src.join(format!("{m}.rs"))).unwrap();
                let refs = module_refs(&text, &modules).into_iter().filter(|r| *r != m).collect();
                (m, refs)
            })
            .collect();
        // Depth-first search for a cycle.
        fn visit(
            m: &str,
            edges: &std::collections::BTreeMap<String, Vec<String>>,
            path: &mut Vec<String>,
            done: &mut std::collections::BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(i) = path.iter().position(|p| p == m) {
                let mut cycle = path[i..].to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            if done.contains(m) {
                return None;
            }
            path.push(m.to_string());
            for n in edges.get(m).into_iter().flatten() {
                if let Some(c) = visit(n, edges, path, done) {
                    return Some(c);
                }
            }
            path.pop();
            done.insert(m.to_string());
            None
        }
        let mut done = std::collections::BTreeSet::new();
        for m in edges.keys() {
            if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
                panic!("{krate}: import circle {}", cycle.join(" -> "));
            }
        }
    }
}

#[test]
fn stages_write_artifacts_only_under_the_write_permit() {
    // The Ctrl-C handler closes the write gate before it cleans up; a stage file written without
    // a permit could reappear after the cleanup. Stages write through core's helpers
    // (`write_atomic`, `write_json`, `StageDir`) or hold `write_permit()` a few lines above a
    // direct write. (The generator and `predict` write to user paths, not artifacts.)
    let root = leadflow_testkit::repo_root();
    let primitives = ["std::fs::write(", "fs::copy(", "File::create(", ".save(&", "BitMapBackend::new("];
    for krate in ["crates/data", "crates/train", "crates/evaluate", "crates/deploy"] {
        for e in std::fs::read_dir(root.join(krate).join("src")).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rs") || name == "generate.rs" || name == "serve.rs" || name == "main.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let lines: Vec<&str> = text.split("#[cfg(test)]").next().unwrap().lines().collect();
            for (i, l) in lines.iter().enumerate() {
                if l.trim_start().starts_with("//") || !primitives.iter().any(|x| l.contains(x)) {
                    continue;
                }
                // plots.rs: every public drawing function takes the permit first.
                let held = if name == "plots.rs" {
                    text.split("pub fn ").skip(1).all(|f| f.split("\n}\n").next().unwrap().contains("write_permit()"))
                } else {
                    lines[i.saturating_sub(4)..=i].iter().any(|x| x.contains("write_permit()"))
                };
                assert!(held, "{}:{}: a write without the write permit: {l}", p.display(), i + 1);
            }
        }
    }
}

#[test]
fn only_the_stage_seam_calls_into_the_stage_crates() {
    // Both engines and every command reach a stage through `orchestrator::stages` (the `Stage`
    // trait); a per-stage match calling stage crates anywhere else is the old dispatch coming back.
    let root = leadflow_testkit::repo_root().join("orchestrator/src");
    let calls = ["leadflow_data::run(", "leadflow_train::run(", "leadflow_evaluate::run(", "leadflow_deploy::run(", "::READS"];
    let mut stack = vec![root.clone()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let hits: Vec<&str> = calls.iter().copied().filter(|c| text.contains(c)).collect();
            if p.ends_with("stages.rs") {
                seen = hits.len();
            } else {
                assert!(hits.is_empty(), "{} calls a stage crate directly ({hits:?}); go through orchestrator::stages", p.display());
            }
        }
    }
    assert_eq!(seen, calls.len(), "stages.rs is where the stage crates are called");
}

/// What a crate links, all the way down (`cargo tree`, normal dependencies, from Cargo.lock).
fn linked(package: &str, args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "-p", package])
        .args(args)
        .current_dir(leadflow_testkit::repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn stage_crates_link_no_server_and_tokio_only_through_polars() {
    let names = |tree: &str| -> std::collections::BTreeSet<String> {
        tree.lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect()
    };
    for package in ["leadflow-data", "leadflow-train", "leadflow-evaluate"] {
        let all = names(&linked(package, &[]));
        for server in ["axum", "hyper", "leadflow-serve"] {
            assert!(!all.contains(server), "{package} links {server}");
        }
    }
    // The contract, the metrics and the CSV reader link no async runtime at all. The train stage
    // reads the gold CSV with polars, and every reader of input tables (leadflow-parquet, so
    // features, data and evaluate) reads Parquet with it; polars' core (0.55) depends on tokio
    // unconditionally (polars-async): every path from a stage crate to tokio goes through polars.
    for package in ["leadflow-core", "leadflow-metrics", "leadflow-csv"] {
        assert!(!names(&linked(package, &[])).contains("tokio"), "{package} links tokio");
    }
    for package in ["leadflow-train", "leadflow-data", "leadflow-evaluate", "leadflow-features"] {
        let users = names(&linked(package, &["-i", "tokio"]));
        let others: Vec<&String> =
            users.iter().filter(|n| !(n.starts_with("polars") || *n == "tokio" || n.starts_with("leadflow-"))).collect();
        assert!(others.is_empty(), "{package} reaches tokio through {others:?}, not only polars");
    }
}

#[test]
fn every_workspace_crate_is_in_the_code_map() {
    let manifest = repo_file("Cargo.toml");
    let members: Vec<&str> = manifest
        .split("members = [")
        .nth(1)
        .and_then(|m| m.split(']').next())
        .map(|m| m.lines().filter_map(|l| l.trim().strip_prefix('"')?.strip_suffix("\",")).collect())
        .unwrap_or_default();
    assert!(members.len() >= 10, "workspace members not found: {members:?}");
    let map = repo_file("ARCHITECTURE.md");
    for m in members {
        assert!(map.contains(&format!("`{m}`")) || map.contains(&format!("`{m}/")), "ARCHITECTURE.md's code map does not name `{m}`");
    }
}
