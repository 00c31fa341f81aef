//! The Dagger engine's CONTRACT test: a fake GraphQL endpoint on 127.0.0.1 stands in for the
//! engine. It checks what the orchestrator asks the engine to do, against the properties a real
//! engine depends on (Dagger's documented behaviour; see `orchestrator/src/dagger.rs`): every path
//! a stage uses owned by the image's non-root user, stages run with `expect: ANY` so a failure
//! still exports, secrets passed as secrets. It does not run containers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadflow_core::artifacts::StageId;
use leadflow_mlflow::tracking::StoreLocation;
use leadflow_testkit::committed_sample;
use orchestrator::dagger::{self, IMAGE_OWNER};

use crate::ENV_LOCK;

#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    args: BTreeMap<String, String>,
}

impl Field {
    fn arg_str(&self, k: &str) -> Option<String> {
        self.args.get(k).and_then(|v| serde_json::from_str::<String>(v).ok())
    }
    fn arg_list(&self, k: &str) -> Option<Vec<String>> {
        self.args.get(k).and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
    }
}

/// Split `s` at `sep` where it is outside strings and brackets (`()`, `[]`, and `{}` unless `{`
/// is the separator); with `{` as separator the closing braces of the chain are dropped.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let (mut parts, mut cur, mut depth, mut in_str, mut esc) = (Vec::new(), String::new(), 0i32, false, false);
    for ch in s.chars() {
        if in_str {
            cur.push(ch);
            if esc {
                esc = false;
            } else if ch == '\\' {
                esc = true;
            } else if ch == '"' {
                in_str = false;
            }
            continue;
        }
        match ch {
            c if c == sep && depth == 0 => parts.push(std::mem::take(&mut cur)),
            '}' if sep == '{' && depth == 0 => {}
            '"' => {
                in_str = true;
                cur.push(ch)
            }
            '(' | '[' | '{' => {
                depth += 1;
                cur.push(ch)
            }
            ')' | ']' | '}' => {
                depth -= 1;
                cur.push(ch)
            }
            _ => cur.push(ch),
        }
    }
    if !cur.trim().is_empty() {
        parts.push(cur);
    }
    parts
}

/// Split a chained query `query{a(x:1){b{c}}}` into its fields.
fn parse_chain(q: &str) -> Vec<Field> {
    split_top(q, '{')
        .into_iter()
        .skip(1) // "query"
        .map(|s| {
            let s = s.trim();
            let (head, args) = match s.find('(') {
                Some(i) => (&s[..i], &s[i + 1..s.len() - 1]),
                None => (s, ""),
            };
            let name = head.rsplit(':').next().unwrap_or(head).trim().to_string();
            let args = split_top(args, ',')
                .into_iter()
                .filter_map(|p| p.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                .collect();
            Field { name, args }
        })
        .collect()
}

/// The stage binary the last `withExec` of a chain runs.
/// The stage the last `withExec` of `chain` runs (`leadflow stage <name> ...`).
fn last_exec(chain: &[Field]) -> Option<String> {
    let args = chain.iter().rev().find(|f| f.name == "withExec").and_then(|f| f.arg_list("args"))?;
    (args.len() > 2 && args[0] == "leadflow" && args[1] == "stage").then(|| args[2].clone())
}

/// Answer a chained query: nested objects down to the leaf, whose value depends on its name.
/// The stage named `failing` exits 3 with a message on stderr; every other exits 0.
fn answer(chain: &[Field], counter: &mut usize, failing: Option<&str>) -> serde_json::Value {
    let leaf = chain.last().expect("non-empty query");
    let fails = failing.is_some() && last_exec(chain).as_deref() == failing;
    let mut value = match leaf.name.as_str() {
        "id" | "sync" => {
            *counter += 1;
            serde_json::json!(format!("fake-id-{counter}"))
        }
        "export" => serde_json::json!(leaf.arg_str("path").unwrap_or_default()),
        "stdout" => serde_json::json!(format!("output of {}", last_exec(chain).unwrap_or_default())),
        "stderr" if fails => serde_json::json!("quality gate failed: f1_weighted 0.41 < 0.90"),
        "stderr" => serde_json::json!(""),
        "exitCode" => serde_json::json!(if fails { 3 } else { 0 }),
        "version" => serde_json::json!("v0.21.11 (fake)"),
        _ => serde_json::Value::Null,
    };
    for f in chain.iter().rev() {
        value = serde_json::json!({ f.name.clone(): value });
    }
    value
}

/// Every query the fake engine received: parsed, and as sent.
type Queries = Vec<(Vec<Field>, String)>;
type Seen = Arc<Mutex<Queries>>;

/// A fake Dagger engine API on 127.0.0.1 that records every query; the stage binary named
/// `failing` exits non-zero.
fn fake_engine(failing: Option<&'static str>) -> (u16, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        let mut counter = 0usize;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut len = 0usize;
                let mut line = String::new();
                let mut got_request = false;
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    got_request = true;
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                if !got_request {
                    break;
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    break;
                }
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let q = req["query"].as_str().unwrap_or_default().to_string();
                let chain = parse_chain(&q);
                let resp = serde_json::json!({ "data": answer(&chain, &mut counter, failing) }).to_string();
                rec.lock().unwrap().push((chain, String::from_utf8_lossy(&body).into_owned()));
                let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{resp}", resp.len());
            }
        }
    });
    (port, seen)
}

/// Run `plan` against a fresh fake engine; returns the result and every query.
fn run_against_fake(
    plan: &dagger::Plan,
    failing: Option<&'static str>,
    env: &[(&str, &str)],
) -> (orchestrator::Result<Vec<orchestrator::StageReport>>, Queries) {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (port, seen) = fake_engine(failing);
    std::env::set_var("DAGGER_SESSION_PORT", port.to_string());
    std::env::set_var("DAGGER_SESSION_TOKEN", "test-token");
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(dagger::run(plan.clone(), Duration::from_secs(10)));
    for k in ["DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN"].iter().chain(env.iter().map(|(k, _)| k)) {
        std::env::remove_var(k);
    }
    let q = seen.lock().unwrap().clone();
    (result, q)
}

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The chain of the export to `path`.
fn export_of(queries: &[(Vec<Field>, String)], path: &Path) -> Vec<Field> {
    queries
        .iter()
        .map(|(c, _)| c)
        .find(|c| c.last().is_some_and(|f| f.name == "export" && f.arg_str("path").as_deref() == Some(path.to_str().unwrap())))
        .cloned()
        .unwrap_or_else(|| panic!("no export to {}", path.display()))
}

fn field<'a>(chain: &'a [Field], name: &str, path: &str) -> &'a Field {
    chain
        .iter()
        .find(|f| f.name == name && f.arg_str("path").as_deref() == Some(path))
        .unwrap_or_else(|| panic!("no {name}({path}) in {chain:#?}"))
}

#[test]
fn dagger_engine_mounts_and_exports_the_sqlite_stores_folder_and_names_the_database() {
    // The default embedded store is one database file: its folder (database and mlartifacts/) is
    // mounted at its host path, owned by the image's user, and exported back; the stages get
    // the sqlite:/// URI of the same absolute path, so artifact paths recorded inside the
    // container are valid on the host.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlruns").join("mlflow.db");
    let store = StoreLocation::Sqlite(db.clone());
    let plan = dagger::Plan::new(&repo(), &committed_sample(), None, &dir.path().join("artifacts"), &store, StageId::ALL.to_vec()).unwrap();
    let (reports, queries) = run_against_fake(&plan, None, &[]);
    assert!(reports.unwrap().iter().all(|r| r.ok()));
    let chain = export_of(&queries, &dir.path().join("artifacts"));
    let folder = dir.path().join("mlruns");
    let folder = folder.to_str().unwrap();
    assert_eq!(field(&chain, "withDirectory", folder).arg_str("owner").as_deref(), Some(IMAGE_OWNER));
    let uri = format!("sqlite:///{}", db.display());
    assert!(chain.iter().any(|f| f.name == "withEnvVariable"
        && f.arg_str("name").as_deref() == Some("MLFLOW_TRACKING_URI")
        && f.arg_str("value").as_deref() == Some(uri.as_str())));
    let store_chain = export_of(&queries, Path::new(folder));
    assert_eq!(store_chain[store_chain.len() - 2].arg_str("path").as_deref(), Some(folder));
}

#[test]
fn dagger_engine_contract_builds_the_dockerfile_runs_four_stages_in_order_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let raw = committed_sample();
    let params = repo().join("params.toml");
    let store = StoreLocation::Local(dir.path().join("mlruns"));
    let plan = dagger::Plan::new(&repo(), &raw, Some(&params), &dir.path().join("artifacts"), &store, StageId::ALL.to_vec()).unwrap();
    let (reports, queries) = run_against_fake(&plan, None, &[]);
    let reports = reports.unwrap();
    assert_eq!(reports.iter().map(|r| r.stage).collect::<Vec<_>>(), StageId::ALL.to_vec());
    assert!(reports.iter().all(|r| r.ok()));

    let artifacts = dir.path().join("artifacts");
    let chain = export_of(&queries, &artifacts);
    assert!(artifacts.is_absolute());
    // Built from the repository's Dockerfile...
    assert_eq!(chain[0].name, "host");
    assert_eq!(chain[1].name, "directory");
    assert_eq!(chain[1].arg_str("path").unwrap(), plan.repo_root.to_str().unwrap());
    let excluded = chain[1].arg_list("exclude").unwrap();
    assert!(excluded.contains(&"target/".to_string()) && excluded.contains(&".git/".to_string()));
    assert_eq!(chain[2].name, "dockerBuild");
    assert!(chain[2].args["buildArgs"].contains("LEADFLOW_CODE_ID"), "{:?}", chain[2].args);
    // The pipeline's image is the Dockerfile's `runtime` stage, not the release's `serve`.
    assert_eq!(chain[2].arg_str("target").as_deref(), Some(dagger::IMAGE_TARGET), "{:?}", chain[2].args);
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.lines().last().is_some_and(|l| !l.starts_with("FROM")));
    let last_stage = dockerfile.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert!(last_stage.ends_with(&format!(" AS {}", dagger::IMAGE_TARGET)), "the default target is the pipeline's: {last_stage}");
    // ...the four stages in order, with the arguments each binary takes, each allowed to fail
    // (expect: ANY) so that a failure is a result and not the end of the chain...
    let execs: Vec<&Field> = chain.iter().filter(|f| f.name == "withExec").collect();
    assert_eq!(execs.len(), 4, "{execs:?}");
    let want: [&[&str]; 4] = [
        &["leadflow", "stage", "data", "--raw", "/data/raw_data.csv", "--params", "/app/params.toml", "--artifacts-dir", "/app/artifacts"],
        &["leadflow", "stage", "train", "--params", "/app/params.toml", "--artifacts-dir", "/app/artifacts"],
        &["leadflow", "stage", "evaluate", "--params", "/app/params.toml", "--artifacts-dir", "/app/artifacts"],
        &["leadflow", "stage", "deploy", "--params", "/app/params.toml", "--artifacts-dir", "/app/artifacts"],
    ];
    for (exec, want) in execs.iter().zip(want) {
        assert_eq!(exec.arg_list("args").unwrap(), want);
        assert_eq!(exec.args.get("expect").map(String::as_str), Some("ANY"), "{exec:?}");
    }
    // ...as the image's non-root user, who owns every path a stage reads or writes: the data
    // mount (read-only), the params file and the tracking store at its host path...
    let data = field(&chain, "withMountedDirectory", "/data");
    assert_eq!(data.arg_str("owner").as_deref(), Some(IMAGE_OWNER));
    assert_eq!(data.args.get("readOnly").map(String::as_str), Some("true"));
    assert_eq!(field(&chain, "withFile", "/app/params.toml").arg_str("owner").as_deref(), Some(IMAGE_OWNER));
    let store = dir.path().join("mlruns");
    let store = store.to_str().unwrap();
    assert_eq!(field(&chain, "withDirectory", store).arg_str("owner").as_deref(), Some(IMAGE_OWNER));
    assert!(chain.iter().any(|f| f.name == "withEnvVariable"
        && f.arg_str("name").as_deref() == Some("MLFLOW_TRACKING_URI")
        && f.arg_str("value").as_deref() == Some(store)));
    // ...and /app/artifacts is exported to the absolute host path, the store to its own.
    let n = chain.len();
    assert_eq!(chain[n - 2].name, "directory");
    assert_eq!(chain[n - 2].arg_str("path").as_deref(), Some("/app/artifacts"));
    let store_chain = export_of(&queries, Path::new(store));
    assert_eq!(store_chain[store_chain.len() - 2].arg_str("path").as_deref(), Some(store));
    // Each stage's exit code and output were fetched before the next stage was added.
    let fetched: Vec<(String, usize)> = queries
        .iter()
        .filter_map(|(c, _)| c.last().filter(|f| ["exitCode", "stdout", "stderr"].contains(&f.name.as_str())).map(|f| (f.name.clone(), c)))
        .map(|(name, c)| (name, c.iter().filter(|f| f.name == "withExec").count()))
        .collect();
    let expected: Vec<(String, usize)> = (1..=4).flat_map(|k| ["exitCode", "stdout", "stderr"].map(|n| (n.to_string(), k))).collect();
    assert_eq!(fetched, expected);
}

#[test]
fn the_image_user_is_the_owner_the_engine_is_given() {
    // IMAGE_OWNER must be the user the Dockerfile creates and runs as.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let (uid, gid) = IMAGE_OWNER.split_once(':').unwrap();
    assert!(dockerfile.contains(&format!("groupadd --gid {gid} leadflow")), "{dockerfile}");
    assert!(dockerfile.contains(&format!("useradd --create-home --uid {uid} --gid {gid} leadflow")), "{dockerfile}");
    assert!(dockerfile.lines().any(|l| l.trim() == format!("USER {IMAGE_OWNER}")));
}

#[test]
fn a_from_run_seeds_the_artifacts_owned_by_the_image_user() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let store = StoreLocation::Local(dir.path().join("mlruns"));
    let stages = vec![StageId::Train, StageId::Evaluate, StageId::Deploy];
    let plan = dagger::Plan::new(&repo(), &committed_sample(), None, &artifacts, &store, stages).unwrap();
    let (reports, queries) = run_against_fake(&plan, None, &[]);
    assert_eq!(reports.unwrap().len(), 3);
    let chain = export_of(&queries, &artifacts);
    let seeded = field(&chain, "withDirectory", "/app/artifacts");
    assert_eq!(seeded.arg_str("owner").as_deref(), Some(IMAGE_OWNER));
    let execs: Vec<String> = chain.iter().filter(|f| f.name == "withExec").map(|f| f.arg_list("args").unwrap()[2].clone()).collect();
    assert_eq!(execs, ["train", "evaluate", "deploy"]);
}

#[test]
fn a_failing_stage_is_exported_then_reported_with_its_exit_code_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let store = StoreLocation::Local(dir.path().join("mlruns"));
    let plan = dagger::Plan::new(&repo(), &committed_sample(), None, &artifacts, &store, StageId::ALL.to_vec()).unwrap();
    let (result, queries) = run_against_fake(&plan, Some("evaluate"), &[]);
    let Err(orchestrator::Error::Stage { stage, message, reports, .. }) = result else { panic!("expected a stage failure: {result:?}") };
    assert_eq!(stage, StageId::Evaluate);
    assert!(message.contains("exit code 3") && message.contains("quality gate failed: f1_weighted 0.41 < 0.90"), "{message}");
    let status: Vec<(StageId, bool)> = reports.iter().map(|r| (r.stage, r.ok())).collect();
    assert_eq!(status, [(StageId::Data, true), (StageId::Train, true), (StageId::Evaluate, false)]);
    // The container as the failed stage left it is exported (its report reaches the host), and
    // the tracking store too; deploy never runs.
    let chain = export_of(&queries, &artifacts);
    let execs: Vec<String> = chain.iter().filter(|f| f.name == "withExec").map(|f| f.arg_list("args").unwrap()[2].clone()).collect();
    assert_eq!(execs, ["data", "train", "evaluate"]);
    export_of(&queries, &dir.path().join("mlruns"));
    assert!(!queries.iter().any(|(c, _)| last_exec(c).as_deref() == Some("deploy")));
}

#[test]
fn a_remote_mlflow_server_gets_the_uri_and_secrets_as_secrets_and_no_store_mount() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let uri = "https://mlflow.invalid:5000";
    let store = StoreLocation::Remote(uri.into());
    let plan = dagger::Plan::new(&repo(), &committed_sample(), None, &artifacts, &store, StageId::ALL.to_vec()).unwrap();
    let token = "tok-3f9a1c77e2";
    let password = "pw-8d2b44a0";
    let env = [("MLFLOW_TRACKING_TOKEN", token), ("MLFLOW_TRACKING_PASSWORD", password), ("MLFLOW_TRACKING_USERNAME", "ci-bot")];
    let (reports, queries) = run_against_fake(&plan, None, &env);
    assert_eq!(reports.unwrap().len(), 4);
    // No query carries a secret's value.
    for (_, raw) in &queries {
        assert!(!raw.contains(token) && !raw.contains(password), "secret in a query: {raw}");
    }
    let chain = export_of(&queries, &artifacts);
    assert!(chain.iter().any(|f| f.name == "withEnvVariable"
        && f.arg_str("name").as_deref() == Some("MLFLOW_TRACKING_URI")
        && f.arg_str("value").as_deref() == Some(uri)));
    assert!(chain.iter().any(|f| f.name == "withEnvVariable"
        && f.arg_str("name").as_deref() == Some("MLFLOW_TRACKING_USERNAME")
        && f.arg_str("value").as_deref() == Some("ci-bot")));
    // Each secret is a `secret(uri: "env://NAME")` the engine resolves from this process's
    // environment, and the container gets it by id.
    for name in ["MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD"] {
        let var = chain
            .iter()
            .find(|f| f.name == "withSecretVariable" && f.arg_str("name").as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} not passed as a secret"));
        let id = var.arg_str("secret").unwrap();
        let made = queries.iter().position(|(c, _)| {
            c.iter().any(|f| f.name == "secret" && f.arg_str("uri").as_deref() == Some(&format!("env://{name}")))
                && c.last().is_some_and(|f| f.name == "id")
        });
        assert!(made.is_some(), "no secret query for {name}");
        assert!(id.starts_with("fake-id-"), "{id}");
    }
    // No local store: nothing mounted at a host path, one export only.
    assert!(!chain.iter().any(|f| f.name == "withDirectory"));
    let exports = queries.iter().filter(|(c, _)| c.last().is_some_and(|f| f.name == "export")).count();
    assert_eq!(exports, 1);

    // Credentials inside the URI: the URI itself becomes a secret.
    let with_creds = "https://bob:hunter2@mlflow.invalid";
    let plan =
        dagger::Plan::new(&repo(), &committed_sample(), None, &artifacts, &StoreLocation::Remote(with_creds.into()), vec![StageId::Data])
            .unwrap();
    let (_, queries) = run_against_fake(&plan, None, &[("MLFLOW_TRACKING_URI", with_creds)]);
    assert!(queries.iter().all(|(_, raw)| !raw.contains("hunter2")));
    let chain = export_of(&queries, &artifacts);
    assert!(chain.iter().any(|f| f.name == "withSecretVariable" && f.arg_str("name").as_deref() == Some("MLFLOW_TRACKING_URI")));
}

#[test]
fn dagger_engine_with_no_engine_reachable_fails_clearly_within_the_timeout() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::env::set_var("DAGGER_SESSION_PORT", closed.to_string());
    std::env::set_var("DAGGER_SESSION_TOKEN", "t");
    let dir = tempfile::tempdir().unwrap();
    let store = StoreLocation::Local(dir.path().join("m"));
    let plan = dagger::Plan::new(&repo(), &committed_sample(), None, &dir.path().join("a"), &store, StageId::ALL.to_vec()).unwrap();
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let res = rt.block_on(dagger::run(plan, Duration::from_secs(5)));
    std::env::remove_var("DAGGER_SESSION_PORT");
    std::env::remove_var("DAGGER_SESSION_TOKEN");
    let err = res.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert!(err.contains("--engine local") && err.contains("Docker"), "{err}");
    assert!(!dir.path().join("a").exists(), "nothing exported");
}
