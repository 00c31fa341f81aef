//! `leadflow model drift`: a batch against the model's training reference; the report written
//! (JSON and Markdown), logged as an MLflow run, and a non-zero exit when anything drifted.

use std::path::Path;

use anyhow::{bail, Context};
use leadflow_core::artifacts as art;
use leadflow_drift::Report;
use leadflow_mlflow::tracking::{MetricPoint, RunStatus};

use crate::cli::GlobalArgs;

pub fn drift(g: &GlobalArgs, model_dir: &Path, input: &Path, out: &Path, track: bool) -> anyhow::Result<()> {
    let params = g.params()?;
    let report = leadflow_serve::drift::check(model_dir, input, &params.drift)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (json, md) = (out.join(art::DRIFT_REPORT_JSON), out.join(art::DRIFT_REPORT_MD));
    art::write_json(&json, &report)?;
    let title = format!("Drift: {} against the training data of {}", input.display(), model_dir.display());
    art::write_atomic(&md, report.markdown(&title).as_bytes())?;
    let mut text = format!("{:<24} {:>8} {:>5} {:>10}  drifted\n", "column", "PSI", "test", "p-value");
    for d in report.columns.iter().chain(&report.prediction) {
        let verdict = if d.drifted { format!("YES: {}", d.reasons.join("; ")) } else { "no".into() };
        text.push_str(&format!("{:<24} {:>8.4} {:>5} {:>10.2e}  {verdict}\n", d.name, d.psi, d.test, d.p_value));
    }
    super::out(text)?;
    eprintln!(
        "{} rows compared with {} training rows{}; report: {} and {}",
        report.rows_batch,
        report.rows_reference,
        if report.rows_left_out > 0 {
            format!(" ({} outside the model's population left out)", report.rows_left_out)
        } else {
            String::new()
        },
        md.display(),
        json.display()
    );
    if track {
        if let Err(e) = log_run(g, &params, &report, input, &[&json, &md]) {
            tracing::warn!("the drift check was not logged to the tracking store: {e:#}");
        }
    }
    if !report.drifted.is_empty() {
        bail!("drift in {} ({} batch rows; thresholds in [drift]; see {})", report.drifted.join(", "), report.rows_batch, md.display());
    }
    Ok(())
}

/// A metric key MLflow accepts, from a column name.
fn key(prefix: &str, name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect();
    format!("{prefix}.{clean}")
}

/// One MLflow run in the `<experiment>-drift` experiment: thresholds as params, per column PSI
/// and p-value as metrics, the report files as artifacts.
fn log_run(g: &GlobalArgs, params: &leadflow_core::Params, report: &Report, input: &Path, files: &[&Path]) -> anyhow::Result<()> {
    let store = leadflow_mlflow::open_existing_store(&g.tracking())?;
    let experiment = store.get_or_create_experiment(&format!("{}-drift", params.tracking.experiment_name))?;
    let name = format!("drift {}", input.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let run = store.create_run(&experiment, &name, &[("leadflow.kind".into(), "drift".into())])?;
    let t = &params.drift;
    let run_params: Vec<(String, String)> = vec![
        ("input".into(), input.display().to_string()),
        ("rows_batch".into(), report.rows_batch.to_string()),
        ("rows_reference".into(), report.rows_reference.to_string()),
        ("psi".into(), t.psi.to_string()),
        ("p_value".into(), t.p_value.to_string()),
        ("max_out_of_range".into(), t.max_out_of_range.to_string()),
        ("max_unseen".into(), t.max_unseen.to_string()),
        ("max_missing_increase".into(), t.max_missing_increase.to_string()),
    ];
    let mut metrics = vec![MetricPoint::now("drifted_columns", report.drifted.len() as f64)];
    for d in report.columns.iter().chain(&report.prediction) {
        metrics.push(MetricPoint::now(key("psi", &d.name), d.psi));
        metrics.push(MetricPoint::now(key("p_value", &d.name), d.p_value));
    }
    let tags = vec![("drifted".into(), report.drifted.join(","))];
    store.log_batch(&run, &run_params, &metrics, &tags)?;
    for f in files {
        store.log_artifact(&run, f, "drift")?;
    }
    store.end_run(&run, RunStatus::Finished)?;
    eprintln!("logged as run {run} in {}", store.location());
    Ok(())
}
