//! GitHub Actions workflows: their structure checked against the README, the SDK pin and what
//! each job must and must not do; the pipeline job's data step and the release's lookup script
//! run for real in all their branches. (The real checkers run in `checks.rs`.)

use std::path::{Path, PathBuf};

pub fn repo_file(p: &str) -> String {
    std::fs::read_to_string(leadflow_testkit::repo_root().join(p)).unwrap()
}
#[test]
fn workflows_parse_and_run_the_commands_the_readme_gives() {
    use yaml_rust2::{Yaml, YamlLoader};
    let dir = leadflow_testkit::repo_root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    let mut pins = std::collections::BTreeMap::new();
    for f in &files {
        let docs = YamlLoader::load_from_str(&std::fs::read_to_string(f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let jobs = docs[0]["jobs"].as_hash().unwrap_or_else(|| panic!("{}: no jobs", f.display()));
        for (name, job) in jobs {
            assert!(job["runs-on"].as_str().is_some(), "{name:?}: runs-on");
            let steps = job["steps"].as_vec().unwrap_or_else(|| panic!("{name:?}: steps"));
            for s in steps {
                assert!(s["uses"].as_str().is_some() || s["run"].as_str().is_some(), "{name:?}: a step needs uses or run");
                if let Some(u) = s["uses"].as_str() {
                    let sha = u.split_once('@').map(|(_, r)| r).unwrap_or_default();
                    assert!(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{u}: pin a full commit SHA");
                }
            }
            assert!(job["timeout-minutes"].as_i64().is_some_and(|m| m > 0 && m <= 90), "{name:?}: timeout-minutes");
        }
        // Least privilege: read-only by default; a job asks for more itself.
        assert_eq!(docs[0]["permissions"]["contents"].as_str(), Some("read"), "{}", f.display());
        // Every pin carries its release in a comment, and an action has one pin everywhere.
        for line in std::fs::read_to_string(f).unwrap().lines().filter(|l| l.trim_start().trim_start_matches("- ").starts_with("uses:")) {
            let (action, comment) = line.split_once(" # ").unwrap_or_else(|| panic!("{line}: no release comment"));
            let action = action.split_once("uses:").unwrap().1.trim();
            let (name, sha) = action.split_once('@').unwrap();
            let tag = comment.trim();
            assert!(!tag.is_empty() && !tag.contains(' '), "{line}");
            let prev = pins.insert(name.to_string(), (sha.to_string(), tag.to_string()));
            assert!(prev.is_none_or(|p| p == (sha.to_string(), tag.to_string())), "{name}: two different pins");
        }
    }
    assert!(pins.len() >= 10, "{pins:?}");
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

    // pipeline job: Dagger CLI of the SDK's version (the stable line), orchestrator with the
    // Dagger engine, `dagger run` (the stable line's documented command).
    let pin = cargo
        .lines()
        .find(|l| l.starts_with("dagger-sdk"))
        .unwrap()
        .split('=')
        .nth(2)
        .unwrap()
        .trim_matches(|c| c == '"' || c == ' ')
        .to_string();
    assert!(pin.starts_with("0.21."), "the stable line (README: \"The Dagger line\"): {pin}");
    assert_eq!(ci["env"]["DAGGER_VERSION"].as_str(), Some(pin.as_str()));
    assert!(repo_file("dagger.json").contains(&format!("\"engineVersion\": \"v{pin}\"")));
    assert!(readme.contains(&format!("Dagger {pin}")), "the README names the Dagger version");
    let dagger_step = steps("pipeline")
        .into_iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("dagger/dagger-for-github@")))
        .expect("dagger-for-github step");
    assert_eq!(dagger_step["with"]["version"].as_str(), Some("${{ env.DAGGER_VERSION }}"));
    assert_eq!(dagger_step["with"]["verb"].as_str(), Some("run"));
    let args = dagger_step["with"]["args"].as_str().unwrap();
    assert!(args.contains("cargo run -p orchestrator") && args.contains("--engine dagger"), "{args}");
    // The real data first: the pull step runs the data script, before the Dagger run, which
    // takes the raw file that step chose; its choice is the job's `data` output.
    let pipeline = steps("pipeline");
    let at = |pred: &dyn Fn(&Yaml) -> bool| pipeline.iter().position(pred);
    let uses = |prefix: &'static str| move |s: &Yaml| s["uses"].as_str().is_some_and(|u| u.starts_with(prefix));
    let pull = at(&|s| s["run"].as_str() == Some(".github/scripts/raw-data.sh")).expect("pull step");
    let dagger_at = at(&uses("dagger/dagger-for-github@")).unwrap();
    assert!(pull < dagger_at, "pull before the Dagger run");
    let id = pipeline[pull]["id"].as_str().unwrap();
    assert!(args.contains(&format!("--raw ${{{{ steps.{id}.outputs.raw }}}}")), "{args}");
    assert_eq!(ci["jobs"]["pipeline"]["outputs"]["data"].as_str(), Some(format!("${{{{ steps.{id}.outputs.source }}}}").as_str()));
    assert!(readme.contains("cargo run -p orchestrator -- --engine dagger"));

    // CI remembers: main's registry restored before the run, saved only by a successful run on
    // the default branch without a shared server (a pull request never saves it); with a server,
    // a pull request stops after evaluate so it never moves main's aliases.
    let restore = at(&uses("actions/cache/restore@")).expect("restore the registry");
    let save = at(&uses("actions/cache/save@")).expect("save the registry");
    assert!(restore < dagger_at && dagger_at < save);
    assert_eq!(pipeline[restore]["with"]["path"].as_str(), Some("mlruns"));
    assert_eq!(pipeline[restore]["with"]["restore-keys"].as_str(), Some("leadflow-registry-"));
    assert_eq!(pipeline[restore]["if"].as_str(), Some("env.MLFLOW_TRACKING_URI == ''"));
    let save_if = pipeline[save]["if"].as_str().unwrap();
    for cond in ["success()", "env.MLFLOW_TRACKING_URI == ''", "github.event_name != 'pull_request'", "default_branch"] {
        assert!(save_if.contains(cond), "{save_if}");
    }
    assert!(ci["jobs"]["pipeline"]["env"]["MLFLOW_TRACKING_URI"].as_str().unwrap().contains("secrets.MLFLOW_TRACKING_URI"));
    assert!(runs("pipeline").contains("--to evaluate") && args.contains("steps.scope.outputs.to"), "{args}");

    // A failed gate never ships: the model (and its test split) is uploaded only by a run that
    // promoted, which the `outcome` step reads from deploy's record; validate needs it.
    let uploads: Vec<Yaml> = pipeline.iter().filter(|s| uses("actions/upload-artifact@")(s)).cloned().collect();
    let model = uploads.iter().find(|s| s["with"]["name"].as_str() == Some("model")).expect("model upload");
    assert_eq!(model["with"]["path"].as_str(), Some("artifacts/model/"));
    assert_eq!(model["if"].as_str(), Some("steps.outcome.outputs.promoted == 'true'"));
    let split = uploads.iter().find(|s| s["with"]["name"].as_str() == Some("test-split")).unwrap();
    assert_eq!(split["if"].as_str(), Some("steps.outcome.outputs.promoted == 'true'"));
    let outcome = pipeline.iter().find(|s| s["id"].as_str() == Some("outcome")).unwrap();
    assert_eq!(outcome["if"].as_str(), Some("always()"));
    assert!(outcome["run"].as_str().unwrap().contains("jq -r .promoted artifacts/deploy/deployment.json"));
    assert_eq!(ci["jobs"]["validate"]["if"].as_str(), Some("needs.pipeline.outputs.promoted == 'true'"));
    assert!(uploads.iter().any(|s| s["with"]["name"].as_str() == Some("artifacts")));

    // The report: written by leadflow, in the job summary, posted by one sticky comment from a
    // job that alone may write to pull requests.
    assert!(runs("pipeline").contains("-- report --output report.md") && runs("pipeline").contains("GITHUB_STEP_SUMMARY"));
    let comment = &ci["jobs"]["comment"];
    assert_eq!(comment["permissions"]["pull-requests"].as_str(), Some("write"));
    for (name, job) in ci["jobs"].as_hash().unwrap() {
        if name.as_str() != Some("comment") {
            assert!(job["permissions"].is_badvalue(), "{name:?} asks for permissions");
        }
    }
    let cif = comment["if"].as_str().unwrap();
    assert!(cif.contains("github.event_name == 'pull_request'") && cif.contains("head.repo.full_name == github.repository"), "{cif}");
    let sticky = steps("comment").into_iter().find(|s| uses("marocchino/sticky-pull-request-comment@")(s)).unwrap();
    assert_eq!(sticky["with"]["path"].as_str(), Some("report.md"));
    assert!(sticky["with"]["header"].as_str().is_some(), "a header keeps it one comment, edited in place");

    // validate job: needs the pipeline, downloads `model`, runs `validate` on the test features.
    assert_eq!(ci["jobs"]["validate"]["needs"].as_str(), Some("pipeline"));
    assert!(steps("validate")
        .iter()
        .any(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/download-artifact@"))
            && s["with"]["name"].as_str() == Some("model")));
    let v = runs("validate");
    assert!(v.contains("-p orchestrator -- model check") && v.contains("X_test.csv") && v.contains("--min-accuracy"), "{v}");
    assert!(readme.contains("-p orchestrator -- model check"));
    // ...and exact labels of the first test rows, when the pipeline ran on the pinned data.
    let exact = steps("validate")
        .into_iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("--expected")))
        .expect("a validate step with --expected");
    assert_eq!(exact["if"].as_str(), Some("needs.pipeline.outputs.data == 'pinned'"));
    let run = exact["run"].as_str().unwrap();
    assert!(run.contains("-p orchestrator -- model check") && run.contains("$(cat data/raw/expected_labels.txt)"), "{run}");
}

/// Run `.github/scripts/raw-data.sh` in `checkout` with `pull` as the pull command; returns the
/// step outputs and the job summary it wrote.
fn data_step(checkout: &Path, pull: &str) -> (String, String) {
    let (out, summary) = (checkout.join("out"), checkout.join("summary"));
    let _ = (std::fs::remove_file(&out), std::fs::remove_file(&summary));
    let status = std::process::Command::new("bash")
        .arg(leadflow_testkit::repo_root().join(".github/scripts/raw-data.sh"))
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

#[test]
fn the_release_workflow_ships_the_model_ci_validated() {
    use yaml_rust2::YamlLoader;
    let r = &YamlLoader::load_from_str(&repo_file(".github/workflows/release.yml")).unwrap()[0];
    assert_eq!(r["on"]["release"]["types"][0].as_str(), Some("published"));
    assert!(!r["on"]["workflow_dispatch"]["inputs"]["tag"].is_badvalue());
    let job = &r["jobs"]["release"];
    assert_eq!(job["environment"].as_str(), Some("production"), "an environment that can require approval");
    for (k, v) in [("contents", "write"), ("packages", "write"), ("actions", "read")] {
        assert_eq!(job["permissions"][k].as_str(), Some(v), "{k}");
    }
    let steps = job["steps"].as_vec().unwrap();
    let run =
        |needle: &str| steps.iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains(needle))).unwrap_or_else(|| panic!("{needle}"));
    let uses = |prefix: &str| steps.iter().filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(prefix))).collect::<Vec<_>>();
    assert!(run(".github/scripts/validated-run.sh")["id"].as_str() == Some("ci"));
    let downloads = uses("actions/download-artifact@");
    assert!(downloads.iter().all(|d| d["with"]["run-id"].as_str() == Some("${{ steps.ci.outputs.run_id }}")));
    assert!(downloads.iter().any(|d| d["with"]["name"].as_str() == Some("model")));
    let promote = run("-p orchestrator -- model promote --model-dir model --stage production");
    assert_eq!(promote["if"].as_str(), Some("env.MLFLOW_TRACKING_URI != ''"));
    assert_eq!(run("No MLFLOW_TRACKING_URI secret")["if"].as_str(), Some("env.MLFLOW_TRACKING_URI == ''"));
    let build = uses("docker/build-push-action@")[0];
    assert_eq!(build["with"]["target"].as_str(), Some("serve"));
    let tags = build["with"]["tags"].as_str().unwrap();
    assert!(tags.contains(":${{ env.TAG }}") && tags.contains("-v${{ steps.model.outputs.version }}"), "{tags}");
    assert!(repo_file("Dockerfile").contains("FROM base AS serve\nCOPY --chown=10001:10001 model/ /app/model/"));
    assert!(run("gh release upload")["run"].as_str().unwrap().contains("model/model_card.md report/report.md"));
}

/// `.github/scripts/validated-run.sh` with a fake `gh` that answers `runs` and `artifacts`.
fn validated_run(runs: &str, artifacts: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let gh = dir.path().join("gh");
    std::fs::write(&gh, format!("#!/bin/sh\ncase \"$1\" in run) echo '{runs}' ;; api) echo '{artifacts}' ;; esac\n")).unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new("bash")
        .arg(leadflow_testkit::repo_root().join(".github/scripts/validated-run.sh"))
        .arg("0123abc")
        .env("LEADFLOW_GH", format!("sh {}", gh.display()))
        .env("GITHUB_OUTPUT", &out)
        .output()
        .unwrap();
    (o.status.success(), std::fs::read_to_string(out).unwrap_or_default(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_release_needs_a_ci_run_that_promoted_a_model() {
    let (ok, out, err) = validated_run("", "");
    assert!(!ok && out.is_empty() && err.contains("no successful CI run of 0123abc"), "{err}");
    let (ok, out, err) = validated_run("4242", "artifacts report test-split");
    assert!(!ok && out.is_empty() && err.contains("promoted no model"), "{err}");
    let (ok, out, err) = validated_run("4242", "artifacts model report test-split");
    assert!(ok, "{err}");
    assert_eq!(out, "run_id=4242\n");
}
