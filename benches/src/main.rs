//! leadflow benchmark: wall time and peak memory of the data and train stages on the real file
//! and on generated 10x / 100x inputs. Run it in release:
//!
//! ```sh
//! cargo run --release -p leadflow-bench -- --real ../shared/data/raw_data.csv
//! ```
//!
//! Stages run in-process, one after another; peak memory is the process's high-water mark
//! (`VmHWM`), reset before each stage. Compare ratios within one run: absolute times on shared
//! machines are noisy.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use leadflow_core::artifacts::Layout;
use leadflow_core::meta::{peak_rss_bytes, reset_peak_rss};
use leadflow_core::Params;
use leadflow_mlflow::tracking::FileStore;

#[derive(Debug, Parser)]
#[command(name = "leadflow-bench", version)]
struct Cli {
    /// The real raw file (rows of the 1x input); without it the 1x input is generated too.
    #[arg(long, env = "LEADFLOW_REAL_DATA")]
    real: Option<PathBuf>,
    /// Input sizes as multiples of the real file's 12,345 rows.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    scales: Vec<usize>,
    /// Stages to time.
    #[arg(long, value_delimiter = ',', default_value = "data,train")]
    stages: Vec<String>,
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

const REAL_ROWS: usize = 12_345;

fn mib(b: Option<u64>) -> String {
    b.map(|b| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))).unwrap_or_else(|| "n/a".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> std::process::ExitCode {
    leadflow_core::logging::exit(run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    leadflow_core::logging::init(-1);
    let tmp = tempfile::tempdir()?;
    let params = Params::load_or_default(None)?;
    if !reset_peak_rss() {
        eprintln!("note: cannot reset the peak-memory counter here; memory figures are cumulative");
    }
    println!("{:<10} {:>10} {:<6} {:>10} {:>12}", "input", "rows", "stage", "wall", "peak memory");
    for &scale in &cli.scales {
        let raw = match (&cli.real, scale) {
            (Some(r), 1) => r.clone(),
            _ => {
                let p = tmp.path().join(format!("raw_{scale}x.csv"));
                leadflow_data::generate::generate(&p, REAL_ROWS * scale, 1000 + scale as u64)?;
                p
            }
        };
        let label = if cli.real.is_some() && scale == 1 { "real".to_string() } else { format!("gen {scale}x") };
        let rows = REAL_ROWS * scale;
        let layout = Layout::new(tmp.path().join(format!("artifacts_{scale}")));
        let store = FileStore::open(tmp.path().join("mlruns"))?;
        for stage in &cli.stages {
            let mut times = Vec::new();
            let mut peak = None;
            let reps = if stage == "train" && scale >= 100 { 1 } else { cli.repeat.max(1) };
            for _ in 0..reps {
                reset_peak_rss();
                let t = Instant::now();
                match stage.as_str() {
                    "data" => {
                        leadflow_data::run(&raw, &layout, &params)?;
                    }
                    "train" => {
                        if !layout.path(&leadflow_core::artifacts::GOLD).exists() {
                            leadflow_data::run(&raw, &layout, &params)?;
                            reset_peak_rss();
                        }
                        leadflow_train::run(&layout, &params, &store)?;
                    }
                    other => anyhow::bail!("unknown stage {other:?} (data, train)"),
                }
                times.push(t.elapsed().as_secs_f64());
                peak = peak.max(peak_rss_bytes());
            }
            println!("{:<10} {:>10} {:<6} {:>9.3}s {:>12}", label, rows, stage, median(times), mib(peak));
        }
    }
    Ok(())
}
