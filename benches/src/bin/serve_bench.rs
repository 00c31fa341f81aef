//! Online-scoring load benchmark: `leadflow model serve` against `mlflow models serve` on the
//! same exported model, in the same run, on 127.0.0.1. A Rust load generator keeps
//! `--connections` keep-alive connections busy for `--seconds` per case and reports throughput
//! and p50/p99 latency for 1-row and 100-row requests, with ratios. Run it in release:
//!
//! ```sh
//! cargo run --release -p orchestrator            # makes artifacts/model (and target/release/leadflow)
//! cargo run --release -p leadflow-bench --bin leadflow-serve-bench -- --model-dir artifacts/model
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "leadflow-serve-bench", version)]
struct Cli {
    /// An exported model directory (artifacts/model after a pipeline run).
    #[arg(long, default_value = "artifacts/model")]
    model_dir: PathBuf,
    /// A CSV of raw rows to send (default: the committed lead sample).
    #[arg(long, default_value = "data/sample/raw_data.csv")]
    rows: PathBuf,
    /// The leadflow binary (build it in release first).
    #[arg(long, default_value = "target/release/leadflow")]
    leadflow: PathBuf,
    /// The mlflow executable (./ci.sh installs it into target/mlflow).
    #[arg(long, env = "LEADFLOW_MLFLOW", default_value = "target/mlflow/bin/mlflow")]
    mlflow: PathBuf,
    /// Skip `mlflow models serve`.
    #[arg(long)]
    no_mlflow: bool,
    /// Seconds of load per case.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Workers of `mlflow models serve` (default: MLflow's own, 1; on a 2-core machine shared
    /// with the load generator, more workers measured slower).
    #[arg(long)]
    mlflow_workers: Option<usize>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Record the run in the docs (run from the repository root): the figures in
    /// benches/results/serving.json and the table rendered from them in this Markdown file's
    /// `<!-- bench:serving -->` block (docs/serving.md).
    #[arg(long, value_name = "MD")]
    docs: Option<PathBuf>,
}

struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("pkill").args(["-TERM", "-P", &pid]).status();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_ready(url: &str, child: &mut Child) -> anyhow::Result<()> {
    let started = Instant::now();
    while ureq::get(&format!("{url}/ping")).call().is_err() {
        if let Some(s) = child.try_wait()? {
            bail!("the server exited ({s}) before answering {url}/ping");
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("{url}/ping did not answer within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

struct Load {
    requests: usize,
    failed: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Keep `connections` clients posting `body` for `seconds`; every latency is kept.
fn load(url: &str, body: &str, connections: usize, seconds: f64) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (url, body, stop) = (format!("{url}/invocations"), body.to_string(), stop.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                let mut lat = Vec::new();
                let mut failed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match agent.post(&url).set("Content-Type", "application/json").send_string(&body) {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.into_string();
                            lat.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        _ => failed += 1,
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut failed = 0;
    for w in workers {
        if let Ok((l, f)) = w.join() {
            all.extend(l);
            failed += f;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let pct = |q: f64| if all.is_empty() { f64::NAN } else { all[((all.len() - 1) as f64 * q).round() as usize] };
    Load { requests: all.len(), failed, seconds: secs, p50_ms: pct(0.5), p99_ms: pct(0.99) }
}

/// `dataframe_split` of the first `n` rows of the CSV, numbers sent as numbers.
fn body(rows: &std::path::Path, n: usize, inputs: &[String]) -> anyhow::Result<String> {
    let t = leadflow_features::table::Table::read(rows)?;
    let idx: Vec<usize> = inputs
        .iter()
        .map(|c| t.column_index(c).with_context(|| format!("{} lacks column {c}", rows.display())))
        .collect::<anyhow::Result<_>>()?;
    let data: Vec<Vec<serde_json::Value>> = t
        .rows
        .iter()
        .cycle()
        .take(n)
        .map(|r| {
            idx.iter()
                .map(|&j| {
                    let v = r[j].trim();
                    match v.parse::<f64>() {
                        _ if v.is_empty() => serde_json::Value::Null,
                        Ok(x) => serde_json::json!(x),
                        Err(_) if v == "True" || v == "False" => serde_json::json!(v == "True"),
                        Err(_) => serde_json::json!(v),
                    }
                })
                .collect()
        })
        .collect();
    Ok(serde_json::json!({"dataframe_split": {"columns": inputs, "data": data}}).to_string())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let pre: leadflow_features::Preprocessing =
        leadflow_core::artifacts::read_json(&cli.model_dir.join(leadflow_core::artifacts::PREPROCESSING.name), "preprocessing")?;
    let inputs: Vec<String> = pre.raw_inputs().into_iter().map(str::to_string).collect();
    let bodies = [(1, body(&cli.rows, 1, &inputs)?), (100, body(&cli.rows, 100, &inputs)?)];

    let mut servers: Vec<(&str, String, Stopped)> = Vec::new();
    let port = free_port()?;
    let mut ours = Command::new(&cli.leadflow)
        .args(["model", "serve", "--model-dir", &cli.model_dir.display().to_string(), "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", cli.leadflow.display()))?;
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url, &mut ours)?;
    servers.push(("leadflow", url, Stopped(ours)));
    if !cli.no_mlflow {
        let port = free_port()?;
        let workers = cli.mlflow_workers;
        println!("mlflow models serve: {} worker(s)", workers.map_or("MLflow's default".to_string(), |w| w.to_string()));
        let bin_dir = cli.mlflow.parent().map(PathBuf::from).unwrap_or_default();
        let path =
            std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())))?;
        let mut theirs = Command::new(&cli.mlflow)
            .args(["models", "serve", "-m", &cli.model_dir.display().to_string(), "--env-manager", "local", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(workers.iter().flat_map(|w| ["--workers".to_string(), w.to_string()]))
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", cli.mlflow.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&url, &mut theirs)?;
        servers.push(("mlflow models serve", url, Stopped(theirs)));
    }

    println!(
        "\n== online scoring, {} connections, {:.0} s per case, 127.0.0.1, {} cores ==",
        cli.connections,
        cli.seconds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("{:<24}{:>8}{:>12}{:>10}{:>10}{:>8}", "server", "rows/req", "req/s", "p50 ms", "p99 ms", "failed");
    let mut results = Vec::new();
    for (rows, b) in &bodies {
        for (name, url, _) in &servers {
            let r = load(url, b, cli.connections, cli.seconds);
            let rps = r.requests as f64 / r.seconds;
            println!("{name:<24}{rows:>8}{rps:>12.0}{:>10.2}{:>10.2}{:>8}", r.p50_ms, r.p99_ms, r.failed);
            results.push((*name, *rows, rps, r));
        }
    }
    // The cost of explanations: the same 100-row body asking for each row's contributions.
    let explained = bodies[1].1.replacen("{\"dataframe_split\"", "{\"params\": {\"explain\": true}, \"dataframe_split\"", 1);
    if let Some((_, url, _)) = servers.iter().find(|(n, _, _)| *n == "leadflow") {
        let r = load(url, &explained, cli.connections, cli.seconds);
        let rps = r.requests as f64 / r.seconds;
        println!("{:<24}{:>8}{rps:>12.0}{:>10.2}{:>10.2}{:>8}", "leadflow, explain", 100, r.p50_ms, r.p99_ms, r.failed);
        results.push(("leadflow, explain", 100, rps, r));
    }
    if servers.len() == 2 {
        for rows in [1, 100] {
            let get = |n: &str| results.iter().find(|(s, r, _, _)| *s == n && *r == rows).map(|(_, _, rps, l)| (*rps, l.p99_ms));
            if let (Some((a, ap)), Some((b, bp))) = (get("leadflow"), get("mlflow models serve")) {
                println!("{rows:>3} row(s): leadflow {:.1}x the throughput, p99 {ap:.2} ms vs {bp:.2} ms", a / b);
            }
        }
    }
    if let Some(doc) = &cli.docs {
        let cases: Vec<serde_json::Value> = results
            .iter()
            .map(|(server, rows, rps, l)| {
                serde_json::json!({"server": server, "rows": rows, "requests_per_s": rps, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms, "failed": l.failed})
            })
            .collect();
        let run = serde_json::json!({
            "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "connections": cli.connections,
            "seconds": cli.seconds,
            "cases": cases,
        });
        let json = std::path::Path::new(leadflow_bench::serving::RESULTS);
        leadflow_bench::record(doc, "serving", json, &run, &leadflow_bench::serving::table(&run))?;
        println!("recorded in {} and {}", doc.display(), json.display());
    }
    Ok(())
}
