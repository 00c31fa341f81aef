//! The Dagger engine: the Rust Dagger SDK (a client program; Dagger has no Rust module SDK)
//! builds the image from the repository's `Dockerfile`, runs the four stage binaries inside it in
//! order, and exports `/app/artifacts` and the tracking store back to absolute host paths.
//!
//! The tracking store is mounted at the same absolute path inside the container as on the host,
//! so the artifact URIs the stages record stay valid after the export.
//!
//! Everything up to the engine is covered by the contract test (`tests/orchestrator.rs`), which
//! answers the SDK's GraphQL queries from a fake endpoint on 127.0.0.1; no container runtime runs
//! on the machines this is developed on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use leadflow_core::artifacts::StageId;

use crate::{print_stage, Error, Result, StageReport};

/// Where things live inside the image (see the Dockerfile).
pub const APP: &str = "/app";
pub const ARTIFACTS_IN: &str = "/app/artifacts";
pub const PARAMS_IN: &str = "/app/params.toml";
pub const DATA_IN: &str = "/data";

/// Absolute host paths of one Dagger run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub repo_root: PathBuf,
    pub raw: PathBuf,
    pub params: Option<PathBuf>,
    pub artifacts: PathBuf,
    pub store: PathBuf,
    pub stages: Vec<StageId>,
}

fn abs(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::Dagger(format!("{}: {e}", p.display())))
}

impl Plan {
    pub fn new(repo_root: &Path, raw: &Path, params: Option<&Path>, artifacts: &Path, store: &Path, stages: Vec<StageId>) -> Result<Plan> {
        Ok(Plan {
            repo_root: abs(repo_root)?,
            raw: abs(raw)?,
            params: params.map(abs).transpose()?,
            artifacts: abs(artifacts)?,
            store: abs(store)?,
            stages,
        })
    }

    fn raw_name(&self) -> String {
        self.raw.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "raw_data.csv".into())
    }

    /// The command that runs `stage` inside the container.
    pub fn command(&self, stage: StageId) -> Vec<String> {
        let mut c = vec![format!("leadflow-{}", stage.name())];
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

/// Run the plan. `connect_timeout` bounds the first answer from the engine; the stages
/// themselves may take as long as they need.
pub async fn run(plan: Plan, connect_timeout: Duration) -> Result<Vec<StageReport>> {
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = reports.clone();
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let connected_in = connected.clone();
    let hint = "use `--engine local`, or start Docker (or another container runtime) and run inside `dagger run`";
    let cfg = dagger_sdk::Config::builder()
        .timeout_ms(connect_timeout.as_millis() as u64)
        .logger(std::sync::Arc::new(dagger_sdk::logging::StdLogger::default()))
        .build();
    let pipeline = dagger_sdk::connect_opts(cfg, move |client| async move {
        // Probe: the engine must answer within the timeout.
        let version = tokio::time::timeout(connect_timeout, client.version())
            .await
            .map_err(|_| eyre::eyre!("no answer from the Dagger engine within {connect_timeout:?}"))?
            .map_err(derr("the Dagger engine did not answer"))?;
        connected_in.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("[dagger  ] engine {version}; building the image from {}/Dockerfile", plan.repo_root.display());
        let host = client.host();
        let context = host.directory_opts(
            plan.repo_root.to_string_lossy().to_string(),
            dagger_sdk::HostDirectoryOptsBuilder::default()
                .exclude(vec!["target/", ".git/", "artifacts/", "mlruns/", "data/raw/raw_data.csv"])
                .build()
                .map_err(|e| eyre::eyre!("{e}"))?,
        );
        let data_dir = plan.raw.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&plan.store)?;
        let store = plan.store.to_string_lossy().to_string();
        let code_id = leadflow_core::fingerprint::code_identity(env!("CARGO_PKG_VERSION"));
        let mut ctr = context
            .docker_build_opts(
                dagger_sdk::DirectoryDockerBuildOptsBuilder::default()
                    .build_args(vec![dagger_sdk::BuildArg { name: "LEADFLOW_CODE_ID".into(), value: code_id }])
                    .build()
                    .map_err(|e| eyre::eyre!("{e}"))?,
            )
            .with_mounted_directory(DATA_IN, host.directory(data_dir.to_string_lossy().to_string()))
            .with_directory(store.clone(), host.directory(store.clone()))
            .with_env_variable("MLFLOW_TRACKING_URI", store.clone())
            .with_workdir(APP);
        if let Some(p) = &plan.params {
            ctr = ctr.with_file(PARAMS_IN, host.file(p.to_string_lossy().to_string()));
        }
        if plan.artifacts.is_dir() && plan.stages.first() != Some(&StageId::Data) {
            // Later-stage runs (--from) start from the host's earlier outputs.
            ctr = ctr.with_directory(ARTIFACTS_IN, host.directory(plan.artifacts.to_string_lossy().to_string()));
        }
        for stage in &plan.stages {
            let t = std::time::Instant::now();
            eprintln!("[{:<8}] running in the container: {}", stage.name(), plan.command(*stage).join(" "));
            ctr = ctr.with_exec(plan.command(*stage));
            let result = ctr.stdout().await;
            let seconds = t.elapsed().as_secs_f64();
            match result {
                Ok(stdout) => {
                    for line in stdout.lines() {
                        eprintln!("[{:<8}] {line}", stage.name());
                    }
                    let r = StageReport { stage: *stage, ok: true, skipped: false, seconds, message: "done in the container".into() };
                    print_stage(&r);
                    out.lock().map_err(|_| eyre::eyre!("poisoned"))?.push(r);
                }
                Err(e) => {
                    let r = StageReport { stage: *stage, ok: false, skipped: false, seconds, message: e.to_string() };
                    print_stage(&r);
                    return Err(eyre::eyre!("stage `{}` failed in the container: {e}", stage.name()));
                }
            }
        }
        let artifacts = plan.artifacts.to_string_lossy().to_string();
        ctr.directory(ARTIFACTS_IN).export(artifacts.clone()).await.map_err(derr("exporting artifacts"))?;
        ctr.directory(store.clone()).export(store.clone()).await.map_err(derr("exporting the tracking store"))?;
        eprintln!("[dagger  ] exported {ARTIFACTS_IN} -> {artifacts} and the tracking store -> {store}");
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
    match outcome {
        None => Err(Error::Dagger(format!("no Dagger engine answered within {connect_timeout:?}; {hint}"))),
        Some(Err(e)) => {
            let chain: Vec<String> =
                std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source()).map(|e| e.to_string()).collect();
            Err(Error::Dagger(format!("{}; {hint}", chain.join(": "))))
        }
        Some(Ok(())) => Ok(std::mem::take(&mut *reports.lock().map_err(|_| Error::Dagger("poisoned".into()))?)),
    }
}
