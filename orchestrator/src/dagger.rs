//! The Dagger engine: the Rust Dagger SDK (a client program; Dagger has no Rust module SDK)
//! builds the image from the repository's `Dockerfile`, runs `leadflow stage <name>` inside it in
//! order, and exports `/app/artifacts` and the tracking store back to absolute host paths.
//!
//! What a real engine depends on, each from Dagger's documented behaviour:
//! - **Ownership.** `withDirectory` / `withMountedDirectory` / `withFile` create their paths owned
//!   by root (0755) unless given an `owner` (dagger/dagger#10964 shows the same trap with cache
//!   mounts). The image runs as the non-root [`IMAGE_OWNER`], so every path a stage reads or
//!   writes is given that owner.
//! - **A failing stage.** Each stage runs with `withExec(expect: ANY)`, so a non-zero exit is a
//!   result (`exitCode`, `stdout`, `stderr`) instead of an error that ends the chain; the
//!   container after the failed stage is still exported (evaluate writes its report before it
//!   fails its quality gate), then the run fails with the stage's exit code and stderr. Both
//!   engines leave the same files behind.
//! - **A remote MLflow server.** `MLFLOW_TRACKING_URI=http(s)://...` is passed through and no
//!   store is mounted or exported; `MLFLOW_TRACKING_TOKEN` / `MLFLOW_TRACKING_PASSWORD` (and a
//!   URI with credentials in it) travel as Dagger secrets read by the engine from this
//!   process's environment (`secret(uri: "env://NAME")`), so no query carries their values.
//!
//! The local tracking store is mounted at the same absolute path inside the container as on the
//! host, so the artifact URIs the stages record stay valid after the export.
//!
//! Everything up to the engine is covered by the contract test (`tests/orchestrator/dagger.rs`),
//! which answers the SDK's GraphQL queries from a fake endpoint on 127.0.0.1; no container
//! runtime runs on the machines this is developed on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use leadflow_core::artifacts::StageId;
use leadflow_mlflow::rest::{PASSWORD_ENV, TOKEN_ENV, USERNAME_ENV};
use leadflow_mlflow::tracking::{StoreLocation, TRACKING_URI_ENV};

use crate::{print_stage, Error, Result, StageReport};

/// The Dockerfile stage the pipeline runs in (its `serve` target is the release image).
pub const IMAGE_TARGET: &str = "runtime";

/// Where things live inside the image (see the Dockerfile).
pub const APP: &str = "/app";
pub const ARTIFACTS_IN: &str = "/app/artifacts";
pub const PARAMS_IN: &str = "/app/params.toml";
pub const DATA_IN: &str = "/data";
/// The image's non-root user and group (Dockerfile: `useradd --uid 10001 leadflow`, `USER
/// leadflow`), owner of every path the stages use.
pub const IMAGE_OWNER: &str = "10001:10001";
/// Environment variables passed into the container as Dagger secrets when set on the host.
pub const SECRET_ENV: &[&str] = &[TOKEN_ENV, PASSWORD_ENV];

/// Where the stages track runs: a host folder mounted at its own path, or a remote server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStore {
    /// An embedded store: its host directory (mounted at the same path, exported back) and the
    /// `MLFLOW_TRACKING_URI` the stages get (the directory, or `sqlite:///` + the database).
    Local {
        dir: PathBuf,
        uri: String,
    },
    Remote(String),
}

/// Absolute host paths of one Dagger run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub repo_root: PathBuf,
    pub raw: PathBuf,
    pub params: Option<PathBuf>,
    pub artifacts: PathBuf,
    pub store: PlanStore,
    pub stages: Vec<StageId>,
}

fn abs(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::Dagger { what: p.display().to_string(), source: Some(e.into()) })
}

impl Plan {
    pub fn new(
        repo_root: &Path,
        raw: &Path,
        params: Option<&Path>,
        artifacts: &Path,
        store: &StoreLocation,
        stages: Vec<StageId>,
    ) -> Result<Plan> {
        Ok(Plan {
            repo_root: abs(repo_root)?,
            raw: abs(raw)?,
            params: params.map(abs).transpose()?,
            artifacts: abs(artifacts)?,
            store: match store {
                StoreLocation::Local(p) => {
                    let dir = abs(p)?;
                    PlanStore::Local { uri: dir.to_string_lossy().to_string(), dir }
                }
                StoreLocation::Sqlite(db) => {
                    let db = abs(db)?;
                    let dir = db.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
                    PlanStore::Local { uri: StoreLocation::sqlite_uri(&db), dir }
                }
                StoreLocation::Remote(u) => PlanStore::Remote(u.clone()),
            },
            stages,
        })
    }

    fn raw_name(&self) -> String {
        self.raw.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "raw_data.csv".into())
    }

    /// The command that runs `stage` inside the container.
    pub fn command(&self, stage: StageId) -> Vec<String> {
        let mut c: Vec<String> = crate::stages::stage(stage).command().iter().map(|s| s.to_string()).collect();
        if stage == StageId::Data {
            c.push("--raw".into());
            c.push(format!("{DATA_IN}/{}", self.raw_name()));
        }
        c.extend(["--params".into(), PARAMS_IN.into(), "--artifacts-dir".into(), ARTIFACTS_IN.into()]);
        c
    }
}

fn derr(context: &str) -> impl Fn(dagger_sdk::errors::DaggerError) -> eyre::Report + '_ {
    move |e| eyre::eyre!("{context}: {e}")
}

fn opts_err(e: impl std::fmt::Display) -> eyre::Report {
    eyre::eyre!("{e}")
}

/// A stage that exited non-zero inside the container.
#[derive(Debug, Clone)]
struct Failed {
    stage: StageId,
    code: isize,
    stderr: String,
}

/// The last lines of a stage's stderr, for the error message.
fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Whether a tracking URI carries credentials (`https://user:pass@host`).
fn has_userinfo(uri: &str) -> bool {
    uri.split_once("://").is_some_and(|(_, rest)| rest.split('/').next().is_some_and(|host| host.contains('@')))
}

/// Run the plan. `connect_timeout` bounds the first answer from the engine; the stages
/// themselves may take as long as they need. A stage that exits non-zero stops the run after
/// the artifacts (and a local store) are exported; the error names the stage, its exit code and
/// the end of its stderr, and carries the reports of the stages that ran.
pub async fn run(plan: Plan, connect_timeout: Duration) -> Result<Vec<StageReport>> {
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = reports.clone();
    let failed = std::sync::Arc::new(std::sync::Mutex::new(None::<Failed>));
    let failed_in = failed.clone();
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let connected_in = connected.clone();
    let hint = "use `--engine local`, or start Docker (or another container runtime) and run inside `dagger run`";
    let cfg = dagger_sdk::Config::builder()
        .timeout_ms(connect_timeout.as_millis() as u64)
        .logger(std::sync::Arc::new(dagger_sdk::logging::StdLogger::default()))
        .build();
    let host_artifacts = plan.artifacts.clone();
    let pipeline = dagger_sdk::connect_opts(cfg, move |client| async move {
        // Probe: the engine must answer within the timeout.
        let version = tokio::time::timeout(connect_timeout, client.version())
            .await
            .map_err(|_| eyre::eyre!("no answer from the Dagger engine within {connect_timeout:?}"))?
            .map_err(derr("the Dagger engine did not answer"))?;
        connected_in.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("[dagger  ] engine {version}; building the image from {}/Dockerfile", plan.repo_root.display());
        let ctr = container(&client, &plan)?;
        let ctr = run_stages(ctr, &plan, &out, &failed_in).await?;
        export(&ctr, &plan).await?;
        Ok(())
    });
    // Until the engine has answered, the whole connection (the SDK may first look for or
    // provision a CLI and start an engine) must finish within `connect_timeout`; after that the
    // stages may take as long as they need.
    let started = std::time::Instant::now();
    let mut pipeline = Box::pin(pipeline);
    let outcome = loop {
        tokio::select! {
            r = &mut pipeline => break Some(r),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if !connected.load(std::sync::atomic::Ordering::SeqCst) && started.elapsed() > connect_timeout {
                    break None;
                }
            }
        }
    };
    let poisoned = || Error::dagger("poisoned");
    match outcome {
        None => Err(Error::dagger(format!("no Dagger engine answered within {connect_timeout:?}; {hint}"))),
        Some(Err(e)) => Err(Error::Dagger { what: format!("the pipeline could not run ({hint})"), source: Some(e.into()) }),
        Some(Ok(())) => {
            // A failed stage's temporary folder came back with the export; the local engine
            // never leaves one, so neither does this one.
            leadflow_core::artifacts::remove_stale_temps(&host_artifacts)?;
            let reports = std::mem::take(&mut *reports.lock().map_err(|_| poisoned())?);
            match failed.lock().map_err(|_| poisoned())?.take() {
                None => Ok(reports),
                Some(f) => Err(Error::Stage {
                    stage: f.stage,
                    message: format!("exit code {} in the container: {}", f.code, tail(&f.stderr, 20)),
                    reports,
                    cause: None,
                }),
            }
        }
    }
}

/// The container the stages run in: the image built from the Dockerfile's pipeline target, the
/// input data (read-only), the tracking store (or a server's URI and its secrets), the params
/// file and, for a `--from` run, the host's earlier outputs — every path owned by the image user.
fn container(client: &dagger_sdk::Query, plan: &Plan) -> eyre::Result<dagger_sdk::Container> {
    let host = client.host();
    let context = host.directory_opts(
        plan.repo_root.to_string_lossy().to_string(),
        dagger_sdk::HostDirectoryOptsBuilder::default()
            .exclude(vec!["target/", ".git/", "artifacts/", "mlruns/", "data/raw/raw_data.csv"])
            .build()
            .map_err(opts_err)?,
    );
    let data_dir = plan.raw.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let code_id = leadflow_core::fingerprint::code_identity(env!("CARGO_PKG_VERSION"));
    let mut ctr = context
        .docker_build_opts(
            dagger_sdk::DirectoryDockerBuildOptsBuilder::default()
                .build_args(vec![dagger_sdk::BuildArg { name: "LEADFLOW_CODE_ID".into(), value: code_id }])
                .target(IMAGE_TARGET)
                .build()
                .map_err(opts_err)?,
        )
        .with_mounted_directory_opts(
            DATA_IN,
            host.directory(data_dir.to_string_lossy().to_string()),
            dagger_sdk::ContainerWithMountedDirectoryOptsBuilder::default().owner(IMAGE_OWNER).read_only(true).build().map_err(opts_err)?,
        )
        .with_workdir(APP);
    match &plan.store {
        PlanStore::Local { dir, uri } => {
            std::fs::create_dir_all(dir)?;
            let store = dir.to_string_lossy().to_string();
            ctr = ctr
                .with_directory_opts(
                    store.clone(),
                    host.directory(store.clone()),
                    dagger_sdk::ContainerWithDirectoryOptsBuilder::default().owner(IMAGE_OWNER).build().map_err(opts_err)?,
                )
                .with_env_variable(TRACKING_URI_ENV, uri.clone());
        }
        PlanStore::Remote(uri) => {
            // Credentials never appear in a query: the engine reads them from this process's
            // environment through the secret provider.
            ctr = if has_userinfo(uri) {
                ctr.with_secret_variable(TRACKING_URI_ENV, client.secret(format!("env://{TRACKING_URI_ENV}")))
            } else {
                ctr.with_env_variable(TRACKING_URI_ENV, uri.clone())
            };
            for &name in SECRET_ENV {
                if std::env::var(name).is_ok_and(|v| !v.is_empty()) {
                    ctr = ctr.with_secret_variable(name, client.secret(format!("env://{name}")));
                }
            }
            if let Ok(user) = std::env::var(USERNAME_ENV) {
                ctr = ctr.with_env_variable(USERNAME_ENV, user);
            }
        }
    }
    if let Some(p) = &plan.params {
        ctr = ctr.with_file_opts(
            PARAMS_IN,
            host.file(p.to_string_lossy().to_string()),
            dagger_sdk::ContainerWithFileOptsBuilder::default().owner(IMAGE_OWNER).build().map_err(opts_err)?,
        );
    }
    if plan.artifacts.is_dir() && plan.stages.first() != Some(&StageId::Data) {
        // Later-stage runs (--from) start from the host's earlier outputs.
        ctr = ctr.with_directory_opts(
            ARTIFACTS_IN,
            host.directory(plan.artifacts.to_string_lossy().to_string()),
            dagger_sdk::ContainerWithDirectoryOptsBuilder::default().owner(IMAGE_OWNER).build().map_err(opts_err)?,
        );
    }
    Ok(ctr)
}

/// Run the plan's stages in order, each allowed to fail (`expect: ANY`) so its exit code and
/// output come back; stops after the first failure, which it records in `failed`.
async fn run_stages(
    mut ctr: dagger_sdk::Container,
    plan: &Plan,
    out: &std::sync::Mutex<Vec<StageReport>>,
    failed_in: &std::sync::Mutex<Option<Failed>>,
) -> eyre::Result<dagger_sdk::Container> {
    for stage in &plan.stages {
        let t = std::time::Instant::now();
        eprintln!("[{:<8}] running in the container: {}", stage.name(), plan.command(*stage).join(" "));
        ctr = ctr.with_exec_opts(
            plan.command(*stage),
            dagger_sdk::ContainerWithExecOptsBuilder::default().expect(dagger_sdk::ReturnType::Any).build().map_err(opts_err)?,
        );
        let code = ctr.exit_code().await.map_err(derr("running the stage"))?;
        let stdout = ctr.stdout().await.map_err(derr("reading the stage's output"))?;
        let stderr = ctr.stderr().await.map_err(derr("reading the stage's errors"))?;
        let seconds = t.elapsed().as_secs_f64();
        for line in stdout.lines().chain(stderr.lines()) {
            eprintln!("[{:<8}] {line}", stage.name());
        }
        let ok = code == 0;
        let message = if ok { "done in the container".to_string() } else { format!("exit code {code}: {}", tail(&stderr, 5)) };
        let outcome = if ok { crate::Outcome::Ran } else { crate::Outcome::Failed };
        let r = StageReport { stage: *stage, outcome, seconds, message };
        print_stage(&r);
        out.lock().map_err(|_| eyre::eyre!("poisoned"))?.push(r);
        if !ok {
            *failed_in.lock().map_err(|_| eyre::eyre!("poisoned"))? = Some(Failed { stage: *stage, code, stderr });
            break;
        }
    }
    Ok(ctr)
}

/// Export whatever happened — after a failed stage too, so its outputs (evaluate's report) reach
/// the host as they do with the local engine — and the local tracking store.
async fn export(ctr: &dagger_sdk::Container, plan: &Plan) -> eyre::Result<()> {
    let artifacts = plan.artifacts.to_string_lossy().to_string();
    ctr.directory(ARTIFACTS_IN).export(artifacts.clone()).await.map_err(derr("exporting artifacts"))?;
    eprintln!("[dagger  ] exported {ARTIFACTS_IN} -> {artifacts}");
    if let PlanStore::Local { dir, .. } = &plan.store {
        let store = dir.to_string_lossy().to_string();
        ctr.directory(store.clone()).export(store.clone()).await.map_err(derr("exporting the tracking store"))?;
        eprintln!("[dagger  ] exported the tracking store -> {store}");
    }
    Ok(())
}
