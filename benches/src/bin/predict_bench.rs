//! leadflow batch-scoring benchmark: `leadflow model predict`'s streaming scorer against pandas,
//! numpy and xgboost applying the same exported preprocessing and model to the same rows
//! (`benches/python/predict_baseline.py`), at 1x, 100x and (with `--scales 1,100,1000`) 1000x the
//! real file's rows, in one run. Run it in release:
//!
//! ```sh
//! ./ci.sh --setup-only && cargo run --release -p leadflow-bench --bin leadflow-predict-bench
//! ```
//!
//! The model: the lead preset trained on the real file (or a generated 1x input), exported by
//! the deploy stage. Inputs: the project's generator, `rows = 12,345 x scale`. leadflow's peak is
//! the bench process's high-water RSS reset before scoring (the model is loaded by then); the
//! baseline's is its process's `ru_maxrss`. Both outputs' probabilities are compared row by row.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use leadflow_core::artifacts::Layout;
use leadflow_core::meta::{peak_rss_bytes, reset_peak_rss};
use leadflow_core::Params;
use leadflow_mlflow::tracking::FileStore;

#[derive(Debug, Parser)]
#[command(name = "leadflow-predict-bench", version)]
struct Cli {
    /// The real raw file (trains the model); without it a generated 1x input does.
    #[arg(long, env = "LEADFLOW_REAL_DATA")]
    real: Option<PathBuf>,
    /// Input sizes as multiples of the real file's 12,345 rows.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    scales: Vec<usize>,
    /// Which model kind to score (trained alone, so the exported model is of this kind).
    #[arg(long, value_enum, default_value = "xgboost")]
    kind: Kind,
    /// Rows per chunk, both sides.
    #[arg(long, default_value_t = leadflow_serve::batch::CHUNK_ROWS)]
    chunk_rows: usize,
    /// The Python with pandas, numpy and xgboost (./ci.sh sets up target/py).
    #[arg(long, env = "LEADFLOW_PYTHON", default_value = "target/py/bin/python")]
    python: PathBuf,
    /// Record the figures in benches/results/predict.json and the table in this Markdown file's
    /// `<!-- bench:predict -->` block (docs/benchmarks.md); run from the repository root.
    #[arg(long, value_name = "MD")]
    docs: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    Xgboost,
    Logistic,
}

const REAL_ROWS: usize = 12_345;

fn mib(b: Option<u64>) -> Option<f64> {
    b.map(|b| b as f64 / (1024.0 * 1024.0))
}

/// The probabilities of an output CSV (`row,id,probability,label`).
fn probabilities(path: &Path) -> anyhow::Result<Vec<f64>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty output")?.split(',').collect();
    let j = header.iter().position(|h| *h == "probability").context("no probability column")?;
    lines.map(|l| l.split(',').nth(j).context("short line")?.parse::<f64>().context("a probability")).collect()
}

fn main() -> std::process::ExitCode {
    leadflow_cli::logging::exit(run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    leadflow_cli::logging::init(-1);
    let tmp = tempfile::tempdir()?;
    let mut params = Params::load_or_default(None)?;
    params.train.xgboost.enabled = matches!(cli.kind, Kind::Xgboost);
    params.train.logistic.enabled = matches!(cli.kind, Kind::Logistic);
    let raw = match &cli.real {
        Some(r) => r.clone(),
        None => {
            let p = tmp.path().join("raw_train.csv");
            leadflow_data::generate::generate(&p, REAL_ROWS, 7)?;
            p
        }
    };
    let layout = Layout::new(tmp.path().join("artifacts"));
    let store = FileStore::open(tmp.path().join("mlruns"))?;
    leadflow_data::run(&raw, &layout, &params)?;
    leadflow_train::run(&layout, &params, &store)?;
    leadflow_evaluate::run(&layout, &params, &store)?;
    leadflow_deploy::run(&layout, &params, &store)?;
    let model_dir = layout.model_dir();
    let md = leadflow_serve::ModelDir::open(&model_dir)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/predict_baseline.py");
    let options = leadflow_serve::PredictOptions { chunk_rows: cli.chunk_rows, ..Default::default() };
    let mut inputs = Vec::new();
    for &scale in &cli.scales {
        let rows = REAL_ROWS * scale;
        let input = tmp.path().join(format!("raw_{scale}x.csv"));
        eprintln!("generating {rows} rows ...");
        leadflow_data::generate::generate(&input, rows, 2000 + scale as u64)?;
        let ours = tmp.path().join("ours.csv");
        reset_peak_rss();
        let t = Instant::now();
        let s = leadflow_serve::predict_stream(&md, &input, &ours, &options, &mut |_| {})?;
        let seconds = t.elapsed().as_secs_f64();
        let peak = mib(peak_rss_bytes());
        anyhow::ensure!(s.rows == rows, "scored {} of {rows} rows", s.rows);
        eprintln!("{scale}x leadflow: {seconds:.2} s, {:.0} rows/s, peak {:.0} MiB", rows as f64 / seconds, peak.unwrap_or(0.0));
        let theirs = tmp.path().join("theirs.csv");
        let o = std::process::Command::new(&cli.python)
            .arg(&script)
            .args([&model_dir, &input, &theirs])
            .args(["--chunk-rows", &cli.chunk_rows.max(100_000).to_string()])
            .output()
            .with_context(|| format!("running {} (./ci.sh sets up target/py)", cli.python.display()))?;
        anyhow::ensure!(o.status.success(), "the Python baseline failed:\n{}", String::from_utf8_lossy(&o.stderr));
        let py: serde_json::Value = serde_json::from_slice(&o.stdout).context("the baseline's output")?;
        let py_seconds = py["seconds"].as_f64().context("seconds")?;
        eprintln!("{scale}x pandas:   {py_seconds:.2} s, {:.0} rows/s", rows as f64 / py_seconds);
        let (a, b) = (probabilities(&ours)?, probabilities(&theirs)?);
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        let agree = if a.len() == b.len() && worst <= 1e-6 {
            format!("yes (max difference {worst:.1e})")
        } else {
            format!("NO ({} vs {} rows, max difference {worst:.1e})", a.len(), b.len())
        };
        inputs.push(serde_json::json!({
            "input": format!("gen {scale}x"),
            "rows": rows,
            "bytes": std::fs::metadata(&input)?.len(),
            "leadflow": {"seconds": seconds, "peak_mib": peak},
            "python": {"seconds": py_seconds, "peak_mib": py["peak_bytes"].as_f64().map(|b| b / (1024.0 * 1024.0))},
            "agree": agree,
        }));
        std::fs::remove_file(&input)?;
    }
    let run = serde_json::json!({
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "threads": options.threads,
        "model": format!("{:?}", cli.kind).to_lowercase(),
        "chunk_rows": cli.chunk_rows,
        "inputs": inputs,
    });
    let table = leadflow_bench::predict::table(&run);
    print!("{table}");
    if let Some(doc) = &cli.docs {
        leadflow_bench::record(doc, "predict", Path::new(leadflow_bench::predict::RESULTS), &run, &table)?;
    }
    Ok(())
}
