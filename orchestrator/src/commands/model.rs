//! `leadflow model predict|check|serve|drift|show|promote`: the exported or registered model.

use std::path::PathBuf;

use anyhow::bail;
use leadflow_core::artifacts as art;

use crate::cli::{GlobalArgs, ModelCmd, ServeArgs};

pub fn model(g: &GlobalArgs, cmd: ModelCmd) -> anyhow::Result<()> {
    let layout = g.layout();
    let model_dir = |d: Option<PathBuf>| d.unwrap_or_else(|| layout.model_dir());
    match cmd {
        ModelCmd::Predict { model_dir: d, model, input, output, input_kind, explain, chunk_rows, threads } => {
            let cache = tempfile::tempdir()?;
            let dir = match model {
                Some(m) => {
                    let store = leadflow_mlflow::open_existing_store(&g.tracking())?;
                    leadflow_serve::server::model_dir_of(&registered(&m)?, Some(store.as_ref()), cache.path())?
                }
                None => model_dir(d),
            };
            let md = leadflow_serve::ModelDir::open(&dir)?;
            let mut options = leadflow_serve::PredictOptions { kind: input_kind, explain, chunk_rows, ..Default::default() };
            options.threads = threads.unwrap_or(options.threads);
            let started = std::time::Instant::now();
            let bar = crate::progress::rows(&format!("scoring {}", input.display()));
            let scored = leadflow_serve::predict_stream(&md, &input, &output, &options, &mut |n| bar.set_position(n as u64))?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            super::out(format!(
                "scored {} rows -> {} ({:.1} s, {:.0} rows/s)\n",
                scored.rows,
                output.display(),
                secs,
                scored.rows as f64 / secs.max(1e-9)
            ))?;
            if let Some(s) = scored.inputs.summary() {
                eprintln!("note: {s} (scored as params say: values clipped, unseen levels as `dataset.processing.unseen`)");
            }
            Ok(())
        }
        ModelCmd::Check { model_dir: d, features, input_kind, labels, expected, rows, min_accuracy } => {
            let dir = model_dir(d);
            let features = features.unwrap_or_else(|| layout.path(&art::X_TEST));
            let labels = labels.or_else(|| expected.is_none().then(|| layout.path(&art::Y_TEST)));
            let spec = leadflow_serve::ValidationSpec { expected, labels, rows, min_accuracy, input: input_kind };
            let v = leadflow_serve::validate(&dir, &features, &spec)?;
            super::out(v.to_text())?;
            if !v.passed {
                bail!("check failed for {} ({} of {} compared rows differ)", dir.display(), v.mismatches.len(), v.rows_compared);
            }
            super::out("check passed\n".into())?;
            Ok(())
        }
        ModelCmd::Serve(a) => serve(g, a),
        ModelCmd::Drift { model_dir: d, input, output_dir, no_tracking } => {
            let out = output_dir.unwrap_or_else(|| layout.root().join(art::DRIFT_DIR));
            super::drift::drift(g, &model_dir(d), &input, &out, !no_tracking)
        }
        ModelCmd::Show { name, alias } => {
            let name = match name {
                Some(n) => n,
                None => g.params()?.deploy.model_name,
            };
            let store = leadflow_mlflow::open_existing_store(&g.tracking())?;
            let v = leadflow_deploy::describe(store.as_ref(), &name, alias.as_deref())?;
            super::out(serde_json::to_string_pretty(&v)? + "\n")?;
            Ok(())
        }
        ModelCmd::Promote { model_dir: d, stage } => {
            let store = leadflow_mlflow::open_existing_store(&g.tracking())?;
            let r = leadflow_deploy::promote_exported(store.as_ref(), &model_dir(d), stage.into())?;
            eprintln!(
                "{} v{} -> {} (@{}){}",
                r.model_name,
                r.version,
                r.stage,
                r.alias,
                r.previous_holder.map(|p| format!(", previously v{p}")).unwrap_or_default()
            );
            super::out(serde_json::to_string_pretty(&r)? + "\n")?;
            Ok(())
        }
    }
}

/// The environment variable a bearer token may come from.
const TOKEN_ENV: &str = "LEADFLOW_SERVE_TOKEN";

/// The bearer token from `--token-file` or `$LEADFLOW_SERVE_TOKEN` (not both); never printed.
fn token(file: Option<&std::path::Path>) -> anyhow::Result<Option<leadflow_serve::server::Token>> {
    use anyhow::Context;
    let from_env = std::env::var(TOKEN_ENV).ok().filter(|v| !v.trim().is_empty());
    let text = match (file, from_env) {
        (Some(_), Some(_)) => bail!("a bearer token from both --token-file and ${TOKEN_ENV}: give one"),
        (Some(f), None) => std::fs::read_to_string(f).with_context(|| format!("reading the token file {}", f.display()))?,
        (None, Some(v)) => v,
        (None, None) => return Ok(None),
    };
    match leadflow_serve::server::Token::new(&text) {
        Some(t) => Ok(Some(t)),
        None => bail!("the bearer token is empty"),
    }
}

/// `--model name@alias`.
fn registered(m: &str) -> anyhow::Result<leadflow_serve::server::ModelSource> {
    let Some((name, alias)) = m.split_once('@') else {
        bail!("--model takes name@alias (e.g. lead_model@challenger), got {m:?}");
    };
    Ok(leadflow_serve::server::ModelSource::Registry { name: name.into(), alias: alias.into() })
}

fn serve(g: &GlobalArgs, a: ServeArgs) -> anyhow::Result<()> {
    use leadflow_serve::server::{ModelSource, ServeOptions};
    let source = match a.model {
        Some(m) => registered(&m)?,
        None => ModelSource::Dir(a.model_dir.unwrap_or_else(|| g.layout().model_dir())),
    };
    let mut opts = ServeOptions::new(source);
    opts.tracking = g.tracking();
    opts.input = a.input_kind;
    opts.max_body_bytes = a.max_body_mib * 1024 * 1024;
    opts.max_rows = a.max_rows;
    opts.request_timeout = std::time::Duration::from_secs_f64(a.timeout_seconds);
    opts.poll = std::time::Duration::from_secs_f64(a.poll_seconds);
    opts.header_timeout = std::time::Duration::from_secs_f64(a.header_timeout_seconds);
    opts.max_connections = a.max_connections;
    opts.token = token(a.token_file.as_deref())?;
    if let Some(path) = a.log_predictions {
        if !(a.log_sample > 0.0 && a.log_sample <= 1.0) {
            bail!("--log-sample must be in (0, 1], got {}", a.log_sample);
        }
        opts.log = Some(leadflow_serve::server::LogOptions {
            path,
            sample: a.log_sample,
            max_bytes: a.log_max_mib * 1024 * 1024,
            keep: a.log_keep,
        });
    }
    leadflow_serve::server::run(opts, &format!("{}:{}", a.host, a.port))?;
    Ok(())
}
