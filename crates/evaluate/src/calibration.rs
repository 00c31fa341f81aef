//! How far each model's probabilities can be taken at their word on the test split: the Brier
//! score and reliability bins of its own probabilities and, when it is calibrated, of the
//! calibrated ones (`calibration.json`, `reliability.png`, a report section); and the threshold
//! each model uses, with what it is worth when params give the money (`[evaluate.cost]`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use leadflow_core::artifacts::{self as art, StageDir};
use leadflow_core::params::CostParams;
use leadflow_core::results::ModelResults;
use leadflow_metrics::ReliabilityBin;
use leadflow_model::ModelKind;
use plotters::prelude::SeriesLabelPosition;
use serde::Serialize;

use crate::error::Result;
use crate::plots;

/// Bins of the reliability diagram (equal width over [0, 1]).
pub const BINS: usize = 10;

/// One model's figures on the test split.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCalibration {
    /// "none", "sigmoid" or "isotonic".
    pub method: String,
    pub brier: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brier_calibrated: Option<f64>,
    /// Binary models: the reliability bins of its own and of its calibrated probabilities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reliability: Vec<ReliabilityBin>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reliability_calibrated: Vec<ReliabilityBin>,
}

/// Each model's calibration figures from its own (`raw`) and used (`used`, calibrated when it
/// is) test probabilities; written as JSON and, for two classes, as a reliability diagram.
pub fn write(
    out: &StageDir,
    y: &[u8],
    k: usize,
    raw: &BTreeMap<ModelKind, Vec<f64>>,
    used: &BTreeMap<ModelKind, Vec<f64>>,
    results: &ModelResults,
) -> Result<BTreeMap<ModelKind, ModelCalibration>> {
    let mut all = BTreeMap::new();
    for (kind, p) in raw {
        let calibrated = results.models.get(kind).and_then(|r| r.calibration()).map(|c| (c.method.name(), &used[kind]));
        let bins = |p: &[f64]| if k == 2 { leadflow_metrics::reliability(y, p, BINS) } else { Vec::new() };
        all.insert(
            *kind,
            ModelCalibration {
                method: calibrated.map_or("none", |c| c.0).into(),
                brier: leadflow_metrics::brier(y, p, k),
                brier_calibrated: calibrated.map(|(_, c)| leadflow_metrics::brier(y, c, k)),
                reliability: bins(p),
                reliability_calibrated: calibrated.map(|(_, c)| bins(c)).unwrap_or_default(),
            },
        );
    }
    art::write_json(&out.path(&art::CALIBRATION_JSON), &all)?;
    if k == 2 {
        let point = |b: &ReliabilityBin| (b.predicted, b.observed);
        let mut series = Vec::new();
        for (kind, c) in &all {
            series.push((format!("{} (Brier {:.3})", kind.label(), c.brier), c.reliability.iter().map(point).collect()));
            if let Some(b) = c.brier_calibrated {
                series
                    .push((format!("{}, {} (Brier {b:.3})", kind.label(), c.method), c.reliability_calibrated.iter().map(point).collect()));
            }
        }
        plots::curves(
            &out.path(&art::RELIABILITY_PNG),
            "Reliability (test split; the diagonal is perfect calibration)",
            "Mean predicted probability",
            "Observed share positive",
            &series,
            true,
            SeriesLabelPosition::UpperLeft,
        )?;
    }
    Ok(all)
}

/// The report's section: Brier scores before and after, the picture, and each model's threshold
/// with its reason.
pub fn markdown(
    calibration: &BTreeMap<ModelKind, ModelCalibration>,
    results: &ModelResults,
    money: Option<(&CostParams, &BTreeMap<ModelKind, [f64; 2]>)>,
    k: usize,
) -> String {
    let mut s = String::from("\n## Calibration and threshold\n\n");
    let _ = writeln!(
        s,
        "Brier score on the test split (mean squared gap between probability and outcome; lower is better). \
         A calibration is fitted on the training rows' out-of-fold predictions, never on test rows.\n"
    );
    let _ = writeln!(s, "| model | calibration | Brier, own probabilities | Brier, calibrated |\n|---|---|---:|---:|");
    for (kind, c) in calibration {
        let after = c.brier_calibrated.map_or("—".to_string(), |b| format!("{b:.4}"));
        let _ = writeln!(s, "| {} | {} | {:.4} | {after} |", kind.label(), c.method, c.brier);
    }
    if k == 2 {
        let _ = writeln!(s, "\n![Reliability diagram]({})\n", art::RELIABILITY_PNG.name);
        for (kind, r) in &results.models {
            let Some(d) = &r.decision else { continue };
            let oof = &d.out_of_fold;
            let mut line =
                format!("- {}: threshold **{:.4}** (rule `{}`, chosen on {} out-of-fold rows", kind.label(), d.threshold, d.rule, oof.rows);
            if let Some([at, half]) = oof.f1 {
                let _ = write!(line, "; F1 {at:.4} there vs {half:.4} at 0.5");
            }
            line.push(')');
            if let (Some((cost, test)), Some([at, half])) = (money, oof.value_per_1000) {
                let _ = write!(line, "; expected value per 1,000 rows out of fold {} vs {} at 0.5", cost.money(at), cost.money(half));
                if let Some([t_at, t_half]) = test.get(kind) {
                    let _ = write!(line, ", on the test split {} vs {} at 0.5", cost.money(*t_at), cost.money(*t_half));
                }
            }
            let _ = writeln!(s, "{line}.");
        }
    }
    s
}
