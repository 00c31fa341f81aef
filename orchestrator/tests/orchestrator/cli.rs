//! The `leadflow` command line: its commands, the old spellings, history and diff, and where
//! things are (the store a run used, found from any directory; read-only commands create none).

use std::path::Path;
use std::process::{Command, Output};

use leadflow_core::artifacts::Layout;
use leadflow_testkit::committed_sample;

use crate::{pipeline, write_quick_params};

fn leadflow(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadflow")).args(args).current_dir(cwd).env_remove("MLFLOW_TRACKING_URI").output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_the_commands_and_the_old_name_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let help = leadflow(dir.path(), &["--help"]);
    assert!(help.status.success());
    let text = out(&help);
    for cmd in ["run", "history", "diff", "report", "pull", "data", "model", "stage", "completions"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(&format!("{cmd} "))), "{cmd} missing:\n{text}");
    }
    for global in ["--params", "--artifacts-dir", "--tracking-uri", "--verbose", "--quiet"] {
        assert!(text.contains(global), "{global}");
    }
    let model = out(&leadflow(dir.path(), &["model", "--help"]));
    for sub in ["predict", "check", "serve", "show", "promote"] {
        assert!(model.lines().any(|l| l.trim_start().starts_with(&format!("{sub} "))), "{sub}:\n{model}");
    }
    // The old name: the same commands, and a note with the new one.
    let old = Path::new(env!("CARGO_BIN_EXE_leadflow")).with_file_name("orchestrator");
    let o = Command::new(old).arg("--version").output().unwrap();
    assert!(o.status.success() && out(&o).contains(env!("CARGO_PKG_VERSION")), "{}", err(&o));
    assert!(err(&o).contains("`orchestrator` is now `leadflow`"), "{}", err(&o));
    // Shell completions name the commands.
    let bash = out(&leadflow(dir.path(), &["completions", "bash"]));
    assert!(bash.contains("leadflow") && bash.contains("history") && bash.contains("promote"), "{bash}");
    // Global options go before or after the command; -q is refused together with -v.
    for args in [&["history", "-q"][..], &["-q", "history"], &["--artifacts-dir", "elsewhere", "history"]] {
        let o = leadflow(dir.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: no runs is a clear error, exit 1: {}", err(&o));
        assert!(err(&o).contains("no recorded runs"), "{args:?}: {}", err(&o));
    }
    // A run option beside another command is refused, naming it.
    let o = leadflow(dir.path(), &["--engine", "local", "history"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("`--engine` is a run option"), "{}", err(&o));
    let both = leadflow(dir.path(), &["-q", "-v", "history"]);
    assert_eq!(both.status.code(), Some(2), "{}", err(&both));
}

#[test]
fn history_lists_runs_and_diff_pairs_the_runs_that_did_something() {
    let dir = tempfile::tempdir().unwrap();
    let params = write_quick_params(dir.path());
    let arts = dir.path().join("artifacts");
    let arts = arts.to_str().unwrap();
    assert!(pipeline(dir.path(), &params).status().unwrap().success());
    let mut text = std::fs::read_to_string(&params).unwrap();
    text.push_str("[evaluate]\nthreshold = 0.6\n");
    std::fs::write(&params, &text).unwrap();
    assert!(pipeline(dir.path(), &params).status().unwrap().success());
    // A no-op rerun, then a run whose gate fails.
    assert!(pipeline(dir.path(), &params).status().unwrap().success());
    let strict = dir.path().join("strict.toml");
    std::fs::write(&strict, format!("{text}min_accuracy = 0.99\n")).unwrap();
    assert!(!pipeline(dir.path(), &strict).status().unwrap().success());

    let runs = orchestrator::history::list(&Layout::new(arts));
    assert_eq!(runs.len(), 4);
    assert_eq!(runs.iter().map(|r| r.status()).collect::<Vec<_>>(), ["ok", "ok", "ok", "FAILED"]);
    assert_eq!(runs.iter().map(|r| r.no_op()).collect::<Vec<_>>(), [false, false, true, false]);
    let h = leadflow(dir.path(), &["history", "--artifacts-dir", arts]);
    let table = out(&h);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[1].contains("data,train,evaluate,deploy") && lines[1].contains("-> v1"), "{table}");
    assert!(lines[3].contains("nothing (up to date)"), "{table}");
    assert!(lines[4].contains("FAILED") && lines[4].contains("evaluate:failed"), "{table}");

    let diff = |args: &[&str]| {
        let mut a = vec!["diff", "--artifacts-dir", arts];
        a.extend_from_slice(args);
        let o = leadflow(dir.path(), &a);
        assert!(o.status.success(), "{}", err(&o));
        out(&o)
    };
    // Default: the last two runs that did something (the no-op rerun is skipped); the failed
    // one is marked.
    let table = diff(&[]);
    assert!(table.contains(&format!("A = {}\n", runs[1].id)), "{table}");
    assert!(table.contains(&format!("B = {} (FAILED)", runs[3].id)), "{table}");
    assert!(table.contains("evaluate.min_accuracy"), "{table}");
    // --all pairs the no-op rerun too; named runs (prefixes) work, in both formats.
    assert!(diff(&["--all"]).contains(&format!("A = {}\n", runs[2].id)));
    let md = diff(&[&runs[0].id, &runs[1].id, "--format", "md"]);
    assert!(md.contains("| `evaluate.threshold` | 0.5 | 0.6 |") && md.contains("| metric | A | B | change |"), "{md}");
    assert!(!md.contains("train.seed"), "only params that differ: {md}");
}

#[test]
fn a_later_command_finds_the_runs_store_from_any_directory_and_reads_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let params = write_quick_params(&project);
    let run = leadflow(
        &project,
        &["--engine", "local", "-q", "--params", params.to_str().unwrap(), "--raw", committed_sample().to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", err(&run));
    assert!(project.join("mlruns/mlflow.db").is_file(), "the default store, beside the command");

    // From another directory, pointing only at the artifacts: the recorded store is used, and the
    // model name comes from the params.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let arts = project.join("artifacts");
    let show = leadflow(&elsewhere, &["model", "show", "--artifacts-dir", arts.to_str().unwrap(), "--params", params.to_str().unwrap()]);
    assert!(show.status.success(), "{}", err(&show));
    assert!(out(&show).contains("\"version\": 1") && out(&show).contains("challenger"), "{}", out(&show));
    // An alias nobody set: the error says which exist and who sets which.
    let champ = leadflow(&elsewhere, &["model", "show", "--alias", "champion", "--artifacts-dir", arts.to_str().unwrap()]);
    assert!(!champ.status.success());
    assert!(err(&champ).contains("has @challenger (v1)") && err(&champ).contains("sets @champion"), "{}", err(&champ));
    // The folder that holds mlflow.db is that database.
    let folder = leadflow(&elsewhere, &["model", "show", "--tracking-uri", project.join("mlruns").to_str().unwrap()]);
    assert!(folder.status.success() && out(&folder).contains("\"version\": 1"), "{}", err(&folder));
    // A read-only command on a store that does not exist: an error naming it, nothing created.
    let none = leadflow(&elsewhere, &["model", "show"]);
    assert!(!none.status.success() && err(&none).contains("no tracking store at mlruns/mlflow.db"), "{}", err(&none));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing created in the working directory");
    // `model check` on the run's own test split, by default.
    let check = leadflow(&elsewhere, &["model", "check", "--artifacts-dir", arts.to_str().unwrap(), "--min-accuracy", "0.6"]);
    assert!(check.status.success() && out(&check).contains("check passed"), "{}{}", out(&check), err(&check));
    // `model predict` by alias, as `model serve --model` takes it: the registered version scores
    // exactly as the exported directory does.
    let sample = committed_sample();
    let predict = |how: &[&str], to: &str| {
        let mut args = vec!["model", "predict", "--artifacts-dir", arts.to_str().unwrap(), "--input", sample.to_str().unwrap()];
        args.extend_from_slice(how);
        args.extend_from_slice(&["--output", to]);
        let o = leadflow(&elsewhere, &args);
        assert!(o.status.success(), "{}", err(&o));
        std::fs::read_to_string(elsewhere.join(to)).unwrap()
    };
    let by_alias = predict(&["--model", "lead_model@challenger"], "by_alias.csv");
    assert_eq!(by_alias, predict(&[], "by_dir.csv"));
    let bad =
        leadflow(&elsewhere, &["model", "predict", "--artifacts-dir", arts.to_str().unwrap(), "--input", "x.csv", "--model", "lead_model"]);
    assert!(!bad.status.success() && err(&bad).contains("name@alias"), "{}", err(&bad));
}

#[test]
fn model_serve_answers_then_drains_and_exits_cleanly_on_sigterm() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let params = write_quick_params(dir.path());
    assert!(pipeline(dir.path(), &params).status().unwrap().success());
    let arts = dir.path().join("artifacts");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["--artifacts-dir", arts.to_str().unwrap(), "model", "serve", "--port", &port.to_string()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while ureq::get(&format!("{url}/ping")).call().is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut text = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
            panic!("serve exited ({status}): {text}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Three raw rows of the committed sample, as CSV.
    let sample = std::fs::read_to_string(committed_sample()).unwrap();
    let body: String = sample.lines().take(4).map(|l| format!("{l}\n")).collect();
    let r = ureq::post(&format!("{url}/invocations")).set("Content-Type", "text/csv").send_string(&body).unwrap();
    let answer: serde_json::Value = r.into_json().unwrap();
    assert_eq!(answer["predictions"].as_array().map(Vec::len), Some(3), "{answer}");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
    assert!(status.success(), "{status:?}: {text}");
    assert!(text.contains("shutting down"), "{text}");
}
