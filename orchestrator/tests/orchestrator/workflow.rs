//! GitHub Actions workflows: parsed and checked against the README and the SDK pin (actionlint
//! cannot be installed from the registries CI reaches), and the pipeline job's data step run
//! for real in both of its branches.

use std::path::{Path, PathBuf};

pub fn repo_file(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)).unwrap()
}
#[test]
fn workflows_parse_and_run_the_commands_the_readme_gives() {
    use yaml_rust2::{Yaml, YamlLoader};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    for f in &files {
        let docs = YamlLoader::load_from_str(&std::fs::read_to_string(f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let jobs = docs[0]["jobs"].as_hash().unwrap_or_else(|| panic!("{}: no jobs", f.display()));
        for (name, job) in jobs {
            assert!(job["runs-on"].as_str().is_some(), "{name:?}: runs-on");
            let steps = job["steps"].as_vec().unwrap_or_else(|| panic!("{name:?}: steps"));
            for s in steps {
                assert!(s["uses"].as_str().is_some() || s["run"].as_str().is_some(), "{name:?}: a step needs uses or run");
                if let Some(u) = s["uses"].as_str() {
                    assert!(u.contains('@'), "{u}: pin the action version");
                }
            }
        }
    }
    let ci = &YamlLoader::load_from_str(&repo_file(".github/workflows/ci.yml")).unwrap()[0];
    let readme = repo_file("README.md");
    let cargo = repo_file("Cargo.toml");
    let steps = |job: &str| ci["jobs"][job]["steps"].as_vec().unwrap().clone();
    let runs = |job: &str| steps(job).iter().filter_map(|s| s["run"].as_str().map(str::to_string)).collect::<Vec<_>>().join("\n");
    let on = &ci["on"];
    assert!(!on["push"].is_badvalue() && !on["pull_request"].is_badvalue(), "runs on push and pull_request");
    assert!(!on["workflow_dispatch"].is_badvalue(), "can be started by hand");

    // test job = the README's test command, after pulling the real data its tests need.
    let test_runs: Vec<String> = runs("test").lines().map(|l| l.trim().to_string()).collect();
    let pull = test_runs.iter().position(|l| l.contains("orchestrator -- pull")).expect("the test job pulls the real data");
    let ci_sh = test_runs.iter().position(|l| l == "./ci.sh").expect("the test job runs ./ci.sh");
    assert!(pull < ci_sh, "{test_runs:?}");
    assert!(readme.contains("\n./ci.sh"), "README gives ./ci.sh as the test command");
    assert!(repo_file(".ci/run").contains("exec ./ci.sh"));

    // pipeline job: Dagger CLI pinned to the SDK version, orchestrator with the Dagger engine.
    let pin = cargo
        .lines()
        .find(|l| l.starts_with("dagger-sdk"))
        .unwrap()
        .split('=')
        .nth(2)
        .unwrap()
        .trim_matches(|c| c == '"' || c == ' ')
        .to_string();
    assert_eq!(ci["env"]["DAGGER_VERSION"].as_str(), Some(pin.as_str()));
    assert!(repo_file("dagger.json").contains(&format!("v{pin}")));
    let dagger_step = steps("pipeline")
        .into_iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("dagger/dagger-for-github@")))
        .expect("dagger-for-github step");
    assert_eq!(dagger_step["with"]["version"].as_str(), Some("${{ env.DAGGER_VERSION }}"));
    let args = dagger_step["with"]["args"].as_str().unwrap();
    assert!(args.contains("cargo run -p orchestrator") && args.contains("--engine dagger"), "{args}");
    // The real data first: the pull step runs the data script, before the Dagger run, which
    // takes the raw file that step chose; its choice is the job's `data` output.
    let pipeline = steps("pipeline");
    let pull = pipeline.iter().position(|s| s["run"].as_str() == Some(".github/scripts/raw-data.sh")).expect("pull step");
    let dagger_at = pipeline.iter().position(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("dagger/dagger-for-github@"))).unwrap();
    assert!(pull < dagger_at, "pull before the Dagger run");
    let id = pipeline[pull]["id"].as_str().unwrap();
    assert!(args.contains(&format!("--raw ${{{{ steps.{id}.outputs.raw }}}}")), "{args}");
    assert_eq!(ci["jobs"]["pipeline"]["outputs"]["data"].as_str(), Some(format!("${{{{ steps.{id}.outputs.source }}}}").as_str()));
    assert!(readme.contains("cargo run -p orchestrator -- --engine dagger"));
    let uploads: Vec<Yaml> =
        steps("pipeline").into_iter().filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact@"))).collect();
    assert!(uploads.iter().any(|s| s["with"]["name"].as_str() == Some("model") && s["with"]["path"].as_str() == Some("artifacts/model/")));
    assert!(uploads.iter().any(|s| s["with"]["name"].as_str() == Some("artifacts")));
    assert!(runs("pipeline").contains("GITHUB_STEP_SUMMARY") && runs("pipeline").contains("report.md"));

    // validate job: needs the pipeline, downloads `model`, runs `validate` on the test features.
    assert_eq!(ci["jobs"]["validate"]["needs"].as_str(), Some("pipeline"));
    assert!(steps("validate")
        .iter()
        .any(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/download-artifact@"))
            && s["with"]["name"].as_str() == Some("model")));
    let v = runs("validate");
    assert!(v.contains("leadflow-deploy -- validate") && v.contains("X_test.csv") && v.contains("--min-accuracy"), "{v}");
    assert!(readme.contains("leadflow-deploy -- validate"));
    // ...and exact labels of the first test rows, when the pipeline ran on the pinned data.
    let exact = steps("validate")
        .into_iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("--expected")))
        .expect("a validate step with --expected");
    assert_eq!(exact["if"].as_str(), Some("needs.pipeline.outputs.data == 'pinned'"));
    let run = exact["run"].as_str().unwrap();
    assert!(run.contains("leadflow-deploy -- validate") && run.contains("$(cat data/raw/expected_labels.txt)"), "{run}");
}

/// Run `.github/scripts/raw-data.sh` in `checkout` with `pull` as the pull command; returns the
/// step outputs and the job summary it wrote.
fn data_step(checkout: &Path, pull: &str) -> (String, String) {
    let (out, summary) = (checkout.join("out"), checkout.join("summary"));
    let _ = (std::fs::remove_file(&out), std::fs::remove_file(&summary));
    let status = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/scripts/raw-data.sh"))
        .env("LEADFLOW_CHECKOUT", checkout)
        .env("LEADFLOW_PULL", pull)
        .env("GITHUB_OUTPUT", &out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .status()
        .unwrap();
    assert!(status.success(), "the data step never fails the job: it falls back");
    (std::fs::read_to_string(out).unwrap(), std::fs::read_to_string(summary).unwrap())
}

#[test]
fn the_data_step_uses_the_pinned_file_or_says_it_fell_back() {
    // The default pull command is the data stage's verified pull of the committed lock.
    let script = repo_file(".github/scripts/raw-data.sh");
    assert!(script.contains("LEADFLOW_PULL:-cargo run --quiet -p orchestrator -- pull}"), "{script}");
    assert!(script.contains("LOCK=data/raw/raw_data.csv.lock"));
    let checkout = tempfile::tempdir().unwrap();
    let co = checkout.path();

    // The pull fails (no network, a checksum mismatch, ...): the committed sample, said so.
    let (out, summary) = data_step(co, "false");
    assert_eq!(out, "raw=data/sample/raw_data.csv\nsource=sample\n");
    assert!(summary.contains("pulling the pinned public file failed") && summary.contains("synthetic sample"), "{summary}");

    // The pull reports success but left no file: still the sample, never a missing path.
    let (out, _) = data_step(co, "true");
    assert!(out.contains("source=sample"), "{out}");

    // The pull succeeds: it is given the lock and the pinned path is used. The fake pull
    // records its arguments and puts a file where the lock says.
    let fake = co.join("pull.sh");
    std::fs::write(&fake, "#!/bin/sh\necho \"$@\" > args\nmkdir -p data/raw && touch data/raw/raw_data.csv\n").unwrap();
    let (out, summary) = data_step(co, &format!("sh {}", fake.display()));
    assert_eq!(out, "raw=data/raw/raw_data.csv\nsource=pinned\n");
    assert!(summary.contains("size and sha256 verified"), "{summary}");
    assert_eq!(std::fs::read_to_string(co.join("args")).unwrap().trim(), "--lock data/raw/raw_data.csv.lock");
}
