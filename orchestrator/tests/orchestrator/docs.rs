//! The documentation against the code: the README stays a front door, its links resolve, and the
//! params reference lists exactly the params type's keys with their defaults.

use std::path::Path;

use crate::repo_file;

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

#[test]
fn the_readme_is_a_front_door_whose_links_resolve() {
    let readme = repo_file("README.md");
    assert!(readme.lines().count() <= 200, "README.md has {} lines; the rest belongs in docs/", readme.lines().count());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for doc in ["README.md", "docs/guide.md", "docs/params.md", "docs/pipeline.md", "docs/serving.md", "docs/engines.md", "docs/mlflow.md"]
    {
        let text = repo_file(doc);
        let base = root.join(doc).parent().unwrap().to_path_buf();
        for link in text.split("](").skip(1).map(|r| r.split(')').next().unwrap()) {
            if link.starts_with("http") || link.starts_with('#') {
                continue;
            }
            let target = link.split('#').next().unwrap();
            assert!(base.join(target).exists(), "{doc}: link to {link} does not resolve");
        }
    }
}

#[test]
fn the_params_reference_lists_every_key_with_its_default() {
    let doc = repo_file("docs/params.md");
    let mut keys = Vec::new();
    flatten("", &serde_json::to_value(leadflow_core::Params::default()).unwrap(), &mut keys);
    // `[evaluate.cost]` is absent by default; its rows give the defaults of its keys when present.
    flatten("evaluate.cost", &serde_json::to_value(leadflow_core::params::CostParams::default()).unwrap(), &mut keys);
    let keys: Vec<_> = keys.into_iter().filter(|(k, _)| !k.starts_with("dataset")).collect();
    assert!(keys.len() >= 30, "{keys:?}");
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    for (k, v) in &keys {
        let row = rows.iter().find(|r| r.starts_with(&format!("| `{k}` |"))).unwrap_or_else(|| panic!("docs/params.md lacks `{k}`"));
        let default = row.split('|').nth(2).unwrap().trim().trim_matches('`').replace(", ", ",");
        let want = match v {
            serde_json::Value::Array(a) => serde_json::to_string(a).unwrap(),
            other => other.to_string(),
        };
        assert_eq!(default, want, "docs/params.md: the default of `{k}`");
    }
    assert_eq!(rows.len(), keys.len(), "docs/params.md lists keys the params type does not have");
}

/// Copy `from` (a file or a folder) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn the_readmes_commands_work_as_printed_in_order() {
    // Every command of the README's `sh` blocks, in order, in a fresh copy of what a clone has
    // (params, the sample, the examples), with `cargo run -p orchestrator` meaning the binary
    // cargo built. The setup half of the first command (`./ci.sh --setup-only`) installs the
    // build packages, which this test binary already needed, and the test command runs this
    // suite; those two are left out.
    let readme = repo_file("README.md");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    for p in ["params.toml", "data/sample", "examples"] {
        copy_tree(&root.join(p), &dir.path().join(p));
    }
    let bin = env!("CARGO_BIN_EXE_leadflow");
    let mut ran = 0;
    for block in readme.split("```sh\n").skip(1).map(|b| b.split("```").next().unwrap()) {
        for line in block.lines() {
            let cmd = line.split(" # ").next().unwrap().trim();
            let cmd = cmd.strip_prefix("./ci.sh --setup-only && ").unwrap_or(cmd);
            if cmd.is_empty() || cmd == "./ci.sh" {
                continue;
            }
            let args = cmd
                .strip_prefix("cargo run -p orchestrator")
                .unwrap_or_else(|| panic!("a README command this test does not know how to run: {cmd}"));
            let args: Vec<&str> = args.trim_start().trim_start_matches("--").split_whitespace().collect();
            let out = std::process::Command::new(bin)
                .args(&args)
                .current_dir(dir.path())
                .env_remove("MLFLOW_TRACKING_URI")
                .env_remove("LEADFLOW_RAW")
                .output()
                .unwrap();
            assert!(out.status.success(), "README command failed: {cmd}\n{}", String::from_utf8_lossy(&out.stderr));
            ran += 1;
        }
    }
    assert!(ran >= 8, "{ran} commands");
    assert!(dir.path().join("scores.csv").is_file() && dir.path().join("report.md").is_file());
}
