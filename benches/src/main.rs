//! leadflow benchmark: the data and train stages against the Python stack a user would otherwise
//! pick (pandas + scikit-learn + xgboost `hist`, `benches/python/baseline.py`: same cleaning,
//! split sizes and search budget, no tracking), timed in the same run, on the real file and on
//! generated 10x / 100x inputs. Run it in release:
//!
//! ```sh
//! ./ci.sh --setup-only && cargo run --release -p leadflow-bench -- --real ../shared/data/raw_data.csv
//! ```
//!
//! Every figure comes with its ratio (Python time / leadflow time: above 1, leadflow is faster).
//! Inside train it reports each search, the refits and the writes, and the XGBoost floor: the
//! time spent inside XGBoost's own `update` calls divided by the threads used — what no caller
//! of XGBoost can remove. Peak memory is the high-water mark (`VmHWM`, reset before each stage;
//! Python: its own and its worker processes' `ru_maxrss`). Absolute times on shared machines are
//! noisy: compare within one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use leadflow_core::artifacts::Layout;
use leadflow_core::meta::{peak_rss_bytes, reset_peak_rss};
use leadflow_core::model::ModelKind;
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
    /// Repetitions of the data stage per input (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// The Python with pandas, scikit-learn and xgboost (./ci.sh sets up target/py).
    #[arg(long, env = "LEADFLOW_PYTHON", default_value = "target/py/bin/python")]
    python: PathBuf,
    /// Skip the Python baseline.
    #[arg(long)]
    no_python: bool,
    /// Time the data stage only (no train, no baseline).
    #[arg(long)]
    data_only: bool,
    /// Params file (default: ./params.toml if present, else the built-in defaults: the lead preset).
    #[arg(long)]
    params: Option<PathBuf>,
    /// Also write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Record the run in the docs (run from the repository root): the figures in
    /// benches/results/pipeline.json and the table rendered from them in this Markdown file's
    /// `<!-- bench:pipeline -->` block (docs/benchmarks.md).
    #[arg(long, value_name = "MD")]
    docs: Option<PathBuf>,
}

const REAL_ROWS: usize = 12_345;

fn mib(b: Option<u64>) -> Option<f64> {
    b.map(|b| b as f64 / (1024.0 * 1024.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One input's figures.
#[derive(Debug, Default, serde::Serialize)]
struct Figures {
    input: String,
    rows: usize,
    gold_rows: usize,
    leadflow: serde_json::Map<String, serde_json::Value>,
    python: Option<serde_json::Value>,
}

fn main() -> std::process::ExitCode {
    leadflow_cli::logging::exit(run(Cli::parse()))
}

fn python_baseline(py: &Path, raw: &Path, out: &Path, p: &Params) -> anyhow::Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/baseline.py");
    let t = p.train.clone();
    let start = Instant::now();
    let o = Command::new(py)
        .arg(&script)
        .arg(raw)
        .arg(out)
        .args(["--xgb-candidates", &t.xgboost.n_candidates.to_string(), "--xgb-folds", &t.xgboost.cv_folds.to_string()])
        .args(["--lr-candidates", &t.logistic.n_candidates.to_string(), "--lr-folds", &t.logistic.cv_folds.to_string()])
        .args(["--jobs", &std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string()])
        .output()
        .with_context(|| format!("running {} (./ci.sh sets up target/py; --no-python skips the baseline)", py.display()))?;
    let wall = start.elapsed().as_secs_f64();
    anyhow::ensure!(o.status.success(), "the Python baseline failed:\n{}", String::from_utf8_lossy(&o.stderr));
    let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).context("the Python baseline's output")?;
    v["seconds"]["process"] = wall.into();
    Ok(v)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    leadflow_cli::logging::init(-1);
    let tmp = tempfile::tempdir()?;
    // The lead preset as the committed params give it: what the README's first command runs.
    let params = Params::load_or_default(cli.params.as_deref())?;
    if !reset_peak_rss() {
        eprintln!("note: cannot reset the peak-memory counter here; memory figures are cumulative");
    }
    let mut all = Vec::new();
    for &scale in &cli.scales {
        let raw = match (&cli.real, scale) {
            (Some(r), 1) => r.clone(),
            _ => {
                let p = tmp.path().join(format!("raw_{scale}x.csv"));
                leadflow_data::generate::generate(&p, REAL_ROWS * scale, 1000 + scale as u64)?;
                p
            }
        };
        let input = if cli.real.is_some() && scale == 1 { "real".to_string() } else { format!("gen {scale}x") };
        let layout = Layout::new(tmp.path().join(format!("artifacts_{scale}")));
        let store = FileStore::open(tmp.path().join(format!("mlruns_{scale}")))?;
        let mut f = Figures { input: input.clone(), rows: REAL_ROWS * scale, ..Default::default() };

        let mut times = Vec::new();
        let mut peak = None;
        for _ in 0..cli.repeat.max(1) {
            reset_peak_rss();
            let t = Instant::now();
            let s = leadflow_data::run(&raw, &layout, &params)?;
            times.push(t.elapsed().as_secs_f64());
            peak = peak.max(peak_rss_bytes());
            f.gold_rows = s.rows["gold"];
        }
        let data = median(times);
        if cli.data_only {
            println!("{input}: data stage {data:.3} s (median of {}), peak {:.0} MiB", cli.repeat.max(1), mib(peak).unwrap_or(0.0));
            continue;
        }
        reset_peak_rss();
        let t = Instant::now();
        let s = leadflow_train::run(&layout, &params, &store)?;
        let train = t.elapsed().as_secs_f64();
        let train_peak = peak_rss_bytes();
        let tm = &s.timings;
        let floor = tm.xgboost_update_cpu / tm.threads.max(1) as f64;
        let l = &mut f.leadflow;
        for (k, v) in [
            ("data", data),
            ("train", train),
            ("end_to_end", data + train),
            ("xgboost_search", tm.search.get(&ModelKind::Xgboost).copied().unwrap_or(0.0)),
            ("logistic_search", tm.search.get(&ModelKind::Logistic).copied().unwrap_or(0.0)),
            ("refits", tm.refit.values().sum()),
            ("after_search", tm.after_search),
            ("load_and_writes", tm.load + tm.writes),
            ("xgboost_floor", floor),
        ] {
            l.insert(k.into(), v.into());
        }
        l.insert("threads".into(), tm.threads.into());
        l.insert("peak_rss_mib".into(), mib(peak.max(train_peak)).into());
        for (kind, m) in &s.models {
            l.insert(format!("test_f1_weighted_{}", kind.name()), m.test_f1_weighted.into());
        }
        if !cli.no_python {
            f.python = Some(python_baseline(&cli.python, &raw, &tmp.path().join(format!("python_{scale}")), &params)?);
        }
        print_table(&f);
        all.push(f);
    }
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&all)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(doc) = &cli.docs {
        let run = serde_json::json!({
            "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "figures": all,
        });
        let json = Path::new(leadflow_bench::pipeline::RESULTS);
        leadflow_bench::record(doc, "pipeline", json, &run, &leadflow_bench::pipeline::table(&run))?;
        println!("\nrecorded in {} and {}", doc.display(), json.display());
    }
    Ok(())
}

fn print_table(f: &Figures) {
    let l = |k: &str| f.leadflow.get(k).and_then(|v| v.as_f64());
    let p = |k: &str| f.python.as_ref().and_then(|v| v["seconds"][k].as_f64());
    println!("\n== {} ({} rows, {} gold rows; leadflow on {} threads) ==", f.input, f.rows, f.gold_rows, l("threads").unwrap_or(0.0));
    println!("{:<28} {:>11} {:>11} {:>8}", "", "leadflow", "python", "ratio");
    let row = |name: &str, ours: Option<f64>, theirs: Option<f64>| {
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.2}s")).unwrap_or_else(|| "-".into());
        let ratio = match (ours, theirs) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "-".into(),
        };
        println!("{name:<28} {:>11} {:>11} {ratio:>8}", fmt(ours), fmt(theirs));
    };
    row("end to end", l("end_to_end"), p("process"));
    row("  data stage", l("data"), p("data"));
    row("  train stage", l("train"), p("train"));
    row("    xgboost search", l("xgboost_search"), p("xgboost_search"));
    let py_rest = p("logistic_search").zip(p("xgboost_refit")).zip(p("logistic_refit")).map(|((a, b), c)| a + b + c);
    row("    logistic search + refits", l("after_search"), py_rest);
    row("      logistic search", l("logistic_search"), p("logistic_search"));
    row("      refits (beside it)", l("refits"), p("xgboost_refit").zip(p("logistic_refit")).map(|(a, b)| a + b));
    row("    load, split, writes", l("load_and_writes"), p("train_prepare").zip(p("writes")).map(|(a, b)| a + b));
    if let (Some(floor), Some(train)) = (l("xgboost_floor"), l("train")) {
        println!("{:<28} {:>10.2}s   train stage = {:.2}x the floor", "XGBoost floor", floor, train / floor.max(1e-9));
    }
    let mem = |v: Option<f64>| v.map(|v| format!("{v:.0} MiB")).unwrap_or_else(|| "-".into());
    println!(
        "{:<28} {:>11} {:>11}",
        "peak memory",
        mem(l("peak_rss_mib")),
        mem(f.python.as_ref().and_then(|v| v["peak_rss_mib"].as_f64()))
    );
    for kind in [ModelKind::Xgboost, ModelKind::Logistic] {
        let ours = l(&format!("test_f1_weighted_{}", kind.name()));
        let theirs = f.python.as_ref().and_then(|v| v["test_f1_weighted"][kind.name()].as_f64());
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
        println!("{:<28} {:>11} {:>11}", format!("test F1 weighted, {}", kind.name()), fmt(ours), fmt(theirs));
    }
    if let Some(py) = &f.python {
        println!("python: {}", py["versions"]);
    }
}
