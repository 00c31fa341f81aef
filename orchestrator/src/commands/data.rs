//! `leadflow data validate|generate`.

use anyhow::Context;

use crate::cli::{DataCmd, GlobalArgs, Schema};

pub fn data(g: &GlobalArgs, cmd: DataCmd) -> anyhow::Result<()> {
    match cmd {
        DataCmd::Validate { raw } => {
            let params = g.params()?;
            let raw = leadflow_data::resolve_raw(raw.as_deref());
            let report = leadflow_data::validate(&raw, &params)?;
            super::out(format!("{report}\n"))?;
            Ok(())
        }
        DataCmd::Generate { schema, rows, seed, out } => {
            match schema {
                Schema::Lead => leadflow_data::generate::generate(&out, rows, seed),
                Schema::Churn => leadflow_data::generate::churn(&out, rows, seed),
            }
            .with_context(|| format!("generating {}", out.display()))?;
            super::out(format!("wrote {rows} synthetic {schema:?} rows to {} (seed {seed})\n", out.display()))?;
            Ok(())
        }
    }
}
