//! Calibration maps: a model's saved probabilities made to mean what they say. Fitted by the
//! train stage on out-of-fold predictions (`leadflow-train`'s `calibrate`), saved with the model
//! (`model_results.json`, `model/model.json`) and applied here, by everything that scores.

use serde::{Deserialize, Serialize};

/// How a model's probabilities are calibrated (`train.<model>.calibration`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// The model's own probabilities.
    #[default]
    None,
    /// Platt scaling: P = 1 / (1 + exp(a·p + b)), fitted by maximum likelihood.
    Sigmoid,
    /// Isotonic regression: the best non-decreasing step-and-ramp map (pool adjacent violators).
    Isotonic,
}

impl CalibrationMethod {
    pub fn is_none(&self) -> bool {
        *self == CalibrationMethod::None
    }

    pub fn name(self) -> &'static str {
        match self {
            CalibrationMethod::None => "none",
            CalibrationMethod::Sigmoid => "sigmoid",
            CalibrationMethod::Isotonic => "isotonic",
        }
    }
}

/// One fitted map of one probability column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibrator {
    /// P = 1 / (1 + exp(a·p + b)) (scikit-learn's `_SigmoidCalibration`).
    Sigmoid { a: f64, b: f64 },
    /// Linear interpolation through the points `(x, y)` (x increasing), clipped to the first
    /// and last (scikit-learn's `IsotonicRegression(out_of_bounds="clip")`).
    Isotonic { x: Vec<f64>, y: Vec<f64> },
}

impl Calibrator {
    pub fn apply(&self, p: f64) -> f64 {
        match self {
            Calibrator::Sigmoid { a, b } => crate::model::sigmoid(-(a * p + b)),
            Calibrator::Isotonic { x, y } => interpolate(x, y, p),
        }
    }
}

/// `np.interp(clip(v, x[0], x[-1]), x, y)`.
fn interpolate(x: &[f64], y: &[f64], v: f64) -> f64 {
    let (Some(&first), Some(&last)) = (x.first(), x.last()) else { return v };
    if v <= first {
        return y[0];
    }
    if v >= last {
        return y[y.len() - 1];
    }
    // The first point above v: x[i - 1] <= v < x[i].
    let i = x.partition_point(|&xi| xi <= v);
    let (x0, x1, y0, y1) = (x[i - 1], x[i], y[i - 1], y[i]);
    y0 + (v - x0) * (y1 - y0) / (x1 - x0)
}

/// A model's calibration: one map of P(positive) (binary), or one per class whose results are
/// renormalised to sum to 1 (multiclass, as scikit-learn's `CalibratedClassifierCV`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub method: CalibrationMethod,
    pub maps: Vec<Calibrator>,
}

impl Calibration {
    /// Calibrate flat probabilities in place: one per row (binary) or `maps.len()` per row.
    pub fn apply(&self, p: &mut [f64]) {
        match self.maps.as_slice() {
            [one] => p.iter_mut().for_each(|v| *v = one.apply(*v)),
            maps => {
                for row in p.chunks_mut(maps.len()) {
                    for (v, m) in row.iter_mut().zip(maps) {
                        *v = m.apply(*v);
                    }
                    let sum: f64 = row.iter().sum();
                    let k = row.len() as f64;
                    row.iter_mut().for_each(|v| *v = if sum > 0.0 { *v / sum } else { 1.0 / k });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_interpolates_between_points_and_clips_outside() {
        let m = Calibrator::Isotonic { x: vec![0.2, 0.4, 0.8], y: vec![0.1, 0.3, 0.9] };
        let got: Vec<f64> = [0.0, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0].iter().map(|&v| m.apply(v)).collect();
        let want = [0.1, 0.1, 0.2, 0.3, 0.6, 0.9, 0.9];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn multiclass_maps_renormalise_each_row() {
        let c = Calibration {
            method: CalibrationMethod::Sigmoid,
            maps: vec![Calibrator::Sigmoid { a: -2.0, b: 0.0 }, Calibrator::Sigmoid { a: -4.0, b: 1.0 }],
        };
        let mut p = vec![0.3, 0.7, 0.9, 0.1];
        c.apply(&mut p);
        for row in p.chunks(2) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let (a, b) = (crate::model::sigmoid(0.6), crate::model::sigmoid(4.0 * 0.7 - 1.0));
        assert!((p[0] - a / (a + b)).abs() < 1e-12);
    }
}
