//! leadflow options benchmark: what each decision option adds to the train and evaluate stages,
//! against the defaults, on the same data in one run (the real file at 1x, generated inputs above).
//! Run it in release:
//!
//! ```sh
//! ./ci.sh --setup-only && cargo run --release -p leadflow-bench --bin leadflow-options-bench -- --real ../shared/data/raw_data.csv
//! ```
//!
//! Each option runs train then evaluate from the same data stage output, in a fresh registry;
//! "a champion to compare" first deploys the defaults' model, then times evaluate again (the
//! champion re-scored and the paired bootstrap). Absolute times are noisy: compare within a run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use leadflow_core::artifacts::Layout;
use leadflow_core::calibration::CalibrationMethod;
use leadflow_core::params::{CostParams, Promotion, Threshold};
use leadflow_core::Params;
use leadflow_mlflow::tracking::FileStore;

#[derive(Debug, Parser)]
#[command(name = "leadflow-options-bench", version)]
struct Cli {
    /// The real raw file (the 1x input); without it the 1x input is generated too.
    #[arg(long, env = "LEADFLOW_REAL_DATA")]
    real: Option<PathBuf>,
    /// Input sizes as multiples of the real file's 12,345 rows.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    scales: Vec<usize>,
    /// Boosted trees (a search of its own, not an option of the others) run up to this scale.
    #[arg(long, default_value_t = 10)]
    boosted_max_scale: usize,
    /// Record the figures in benches/results/options.json and the table in this Markdown file's
    /// `<!-- bench:options -->` block (docs/benchmarks.md); run from the repository root.
    #[arg(long, value_name = "MD")]
    docs: Option<PathBuf>,
    /// Render the table again from figures a run saved (benches/results/options.json) instead
    /// of measuring.
    #[arg(long, value_name = "JSON")]
    from_json: Option<PathBuf>,
}

type Variant = (&'static str, fn(&mut Params));

const VARIANTS: [Variant; 6] = [
    ("defaults (no calibration, threshold 0.5, point promotion)", |_| {}),
    ("calibration = \"sigmoid\" (both models)", |p| {
        p.train.xgboost.calibration = CalibrationMethod::Sigmoid;
        p.train.logistic.calibration = CalibrationMethod::Sigmoid;
    }),
    ("calibration = \"isotonic\" (both models)", |p| {
        p.train.xgboost.calibration = CalibrationMethod::Isotonic;
        p.train.logistic.calibration = CalibrationMethod::Isotonic;
    }),
    ("threshold = \"max_f1\"", |p| p.evaluate.threshold = Threshold::MaxF1),
    ("threshold = \"cost\"", |p| {
        p.evaluate.threshold = Threshold::Cost;
        p.evaluate.cost = Some(CostParams::default());
    }),
    ("boosted trees enabled (a third search)", |p| p.train.boosted.enabled = true),
];

const COMPARE: &str = "a champion to compare (re-scored, 2000 paired bootstrap resamples; confident promotion)";

fn time_stages(layout: &Layout, store: &FileStore, params: &Params) -> anyhow::Result<f64> {
    let t = Instant::now();
    leadflow_train::run(layout, params, store)?;
    match leadflow_evaluate::run(layout, params, store) {
        Ok(_) | Err(leadflow_evaluate::Error::Gate { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(t.elapsed().as_secs_f64())
}

fn input(cli: &Cli, tmp: &Path, scale: usize) -> anyhow::Result<(PathBuf, String)> {
    Ok(match (&cli.real, scale) {
        (Some(r), 1) => (r.clone(), "real".into()),
        _ => {
            let p = tmp.join(format!("raw_{scale}x.csv"));
            leadflow_data::generate::generate(&p, 12_345 * scale, 1000 + scale as u64)?;
            (p, format!("gen {scale}x"))
        }
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    leadflow_cli::logging::init(-1);
    if let Some(saved) = &cli.from_json {
        let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(saved)?)?;
        return finish(&cli, &run);
    }
    let tmp = tempfile::tempdir()?;
    let base = Params::load_or_default(None)?;
    let mut inputs = Vec::new();
    for &scale in &cli.scales {
        let (raw, name) = input(&cli, tmp.path(), scale)?;
        let layout = Layout::new(tmp.path().join(format!("artifacts_{scale}")));
        leadflow_data::run(&raw, &layout, &base)?;
        let mut options = Vec::new();
        for (i, (option, set)) in VARIANTS.iter().enumerate() {
            if option.starts_with("boosted") && scale > cli.boosted_max_scale {
                continue;
            }
            let mut params = base.clone();
            set(&mut params);
            let store = FileStore::open(tmp.path().join(format!("mlruns_{scale}_{i}")))?;
            let seconds = time_stages(&layout, &store, &params)?;
            println!("{name}: {option}: {seconds:.2} s");
            options.push(serde_json::json!({ "option": option, "seconds": seconds }));
            if i == 0 {
                // The defaults' model becomes the champion, then evaluate runs again beside it.
                leadflow_deploy::run(&layout, &params, &store)?;
                let mut confident = params.clone();
                confident.evaluate.promotion = Promotion::Confident;
                let t = Instant::now();
                leadflow_train::run(&layout, &confident, &store)?;
                let _ = leadflow_evaluate::run(&layout, &confident, &store);
                let seconds = t.elapsed().as_secs_f64();
                println!("{name}: {COMPARE}: {seconds:.2} s");
                options.push(serde_json::json!({ "option": COMPARE, "seconds": seconds }));
            }
        }
        inputs.push(serde_json::json!({ "input": name, "rows": 12_345 * scale, "options": options }));
    }
    let run = serde_json::json!({
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "inputs": inputs,
    });
    finish(&cli, &run)
}

/// Print the table and, with `--docs`, record the figures and the table.
fn finish(cli: &Cli, run: &serde_json::Value) -> anyhow::Result<()> {
    let table = leadflow_bench::options::table(run);
    println!("\n{table}");
    if let Some(doc) = &cli.docs {
        leadflow_bench::record(doc, "options", Path::new(leadflow_bench::options::RESULTS), run, &table)?;
        println!("recorded in {} and {}", doc.display(), leadflow_bench::options::RESULTS);
    }
    Ok(())
}
