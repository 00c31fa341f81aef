//! Promotion with confidence: a paired bootstrap of the selection metric's difference between
//! the selected model and the incumbent, both scored on the same resampled test rows, each as
//! it is used (calibrated, at its own threshold). Seeded from `train.seed`: the same inputs give
//! the same interval.

use leadflow_core::params::BootstrapParams;
use leadflow_core::results::Interval;
use leadflow_metrics::Metric;
use rand::Rng;

/// One model's test probabilities (flat) and its threshold.
pub type Scored<'a> = (&'a [f64], f64);

/// The difference `a - b` in `metric` on the test rows, and its percentile interval over
/// `p.resamples` paired resamples (rows drawn with replacement, the same rows for both).
pub fn paired(metric: Metric, y: &[u8], k: usize, a: Scored<'_>, b: Scored<'_>, p: &BootstrapParams, seed: u64) -> Interval {
    let width = leadflow_metrics::per_row(k);
    let n = y.len();
    let score = |y: &[u8], (proba, t): Scored<'_>| leadflow_metrics::score(metric, y, proba, k, t);
    let diff = score(y, a) - score(y, b);
    let mut rng = leadflow_core::split::derive_rng(seed, "evaluate/bootstrap");
    let (mut ys, mut pa, mut pb) = (Vec::with_capacity(n), Vec::with_capacity(n * width), Vec::with_capacity(n * width));
    let mut diffs: Vec<f64> = (0..p.resamples)
        .map(|_| {
            ys.clear();
            pa.clear();
            pb.clear();
            for _ in 0..n {
                let i = rng.gen_range(0..n);
                ys.push(y[i]);
                pa.extend_from_slice(&a.0[i * width..(i + 1) * width]);
                pb.extend_from_slice(&b.0[i * width..(i + 1) * width]);
            }
            score(&ys, (&pa, a.1)) - score(&ys, (&pb, b.1))
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let tail = (1.0 - p.confidence) / 2.0;
    Interval {
        diff,
        low: percentile(&diffs, tail),
        high: percentile(&diffs, 1.0 - tail),
        confidence: p.confidence,
        resamples: p.resamples,
        rows: n,
    }
}

/// numpy's default (linear) percentile of sorted values, `q` in [0, 1].
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clearly_better_model_has_an_interval_above_zero_and_the_same_seed_gives_the_same_interval() {
        let y: Vec<u8> = (0..400).map(|i| u8::from(i % 3 == 0)).collect();
        let good: Vec<f64> = y.iter().enumerate().map(|(i, &c)| if i % 10 == 0 { 1.0 - f64::from(c) } else { f64::from(c) }).collect();
        let coin: Vec<f64> = (0..400).map(|i| if i % 2 == 0 { 0.9 } else { 0.1 }).collect();
        let p = BootstrapParams { resamples: 500, confidence: 0.95 };
        let i = paired(Metric::Accuracy, &y, 2, (&good, 0.5), (&coin, 0.5), &p, 1);
        assert!(i.low > 0.2 && i.low <= i.diff && i.diff <= i.high, "{i:?}");
        assert_eq!(i, paired(Metric::Accuracy, &y, 2, (&good, 0.5), (&coin, 0.5), &p, 1));
        // A model against itself: the difference is exactly 0 on every resample.
        let same = paired(Metric::F1Weighted, &y, 2, (&good, 0.5), (&good, 0.5), &p, 1);
        assert_eq!((same.diff, same.low, same.high), (0.0, 0.0, 0.0));
    }

    #[test]
    fn percentile_interpolates_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert!((percentile(&v, 0.025) - 1.075).abs() < 1e-12);
    }
}
