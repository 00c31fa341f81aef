//! How a model's scores become decisions, fitted on the training rows' out-of-fold predictions
//! (each row predicted by the fold model that did not see it, so no test row is used):
//! calibration (Platt's sigmoid or isotonic regression, as scikit-learn's
//! `CalibratedClassifierCV(ensemble=False)` fits them) and the threshold rule (`max_f1`, `cost`).

use leadflow_core::calibration::{Calibration, CalibrationMethod, Calibrator};
use leadflow_core::params::{CostParams, EvaluateParams, Threshold};
use leadflow_core::results::{Decision, OutOfFold};

/// The decision of a model whose out-of-fold probabilities are `oof` (flat: one per row when
/// `k == 2`, else `k`): `None` when it is calibrated by nothing and its threshold is fixed.
pub fn decide(oof: &[f64], y: &[u8], k: usize, method: CalibrationMethod, ev: &EvaluateParams) -> Option<Decision> {
    if method.is_none() && matches!(ev.threshold, Threshold::Fixed(_)) {
        return None;
    }
    let calibration = calibrate(oof, y, k, method);
    let mut p = oof.to_vec();
    if let Some(c) = &calibration {
        c.apply(&mut p);
    }
    let threshold = match ev.threshold {
        Threshold::Fixed(t) => t,
        Threshold::MaxF1 => best_threshold(&p, y, f1),
        Threshold::Cost => {
            let cost = ev.cost.clone().unwrap_or_default();
            best_threshold(&p, y, |tp, fp, fn_| cost.value(tp, fp, fn_))
        }
    };
    let at = |t: f64| counts(&p, y, t);
    let per_1000 = |c: &CostParams, t: f64| {
        let (tp, fp, fn_) = at(t);
        c.value(tp, fp, fn_) * 1000.0 / y.len().max(1) as f64
    };
    let out_of_fold = OutOfFold {
        rows: y.len(),
        brier: leadflow_metrics::brier(y, oof, k),
        brier_calibrated: calibration.as_ref().map(|_| leadflow_metrics::brier(y, &p, k)),
        value_per_1000: ev.cost.as_ref().filter(|_| k == 2).map(|c| [per_1000(c, threshold), per_1000(c, 0.5)]),
        f1: (k == 2).then(|| [threshold, 0.5].map(at).map(|(tp, fp, fn_)| f1(tp, fp, fn_))),
    };
    Some(Decision { rule: ev.threshold.name(), threshold, calibration, out_of_fold })
}

/// Fit `method` on the out-of-fold probabilities: one map of P(class 1), or one per class.
pub fn calibrate(oof: &[f64], y: &[u8], k: usize, method: CalibrationMethod) -> Option<Calibration> {
    let fit = |p: &[f64], positive: &[bool]| match method {
        CalibrationMethod::Sigmoid => Some(sigmoid(p, positive)),
        CalibrationMethod::Isotonic => Some(isotonic(p, positive)),
        CalibrationMethod::None => None,
    };
    let maps = if k == 2 {
        vec![fit(oof, &y.iter().map(|&v| v == 1).collect::<Vec<_>>())?]
    } else {
        (0..k)
            .map(|c| {
                let column: Vec<f64> = oof.chunks(k).map(|row| row[c]).collect();
                fit(&column, &y.iter().map(|&v| v as usize == c).collect::<Vec<_>>())
            })
            .collect::<Option<_>>()?
    };
    Some(Calibration { method, maps })
}

/// Platt scaling as scikit-learn fits it (`_sigmoid_calibration`): targets smoothed to
/// (n₊ + 1)/(n₊ + 2) and 1/(n₋ + 2), log loss minimised over (a, b) in P = 1/(1 + exp(a·p + b)),
/// here by Newton's method with a backtracking line search (the problem is convex).
pub fn sigmoid(p: &[f64], positive: &[bool]) -> Calibrator {
    let n_pos = positive.iter().filter(|&&v| v).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    let t: Vec<f64> = positive.iter().map(|&v| if v { (n_pos + 1.0) / (n_pos + 2.0) } else { 1.0 / (n_neg + 2.0) }).collect();
    // Loss, in terms of z = a·p + b: log(1 + e^z) - (1 - t)·z.
    let loss = |a: f64, b: f64| -> f64 {
        p.iter()
            .zip(&t)
            .map(|(&f, &t)| {
                let z = a * f + b;
                let softplus = if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() };
                softplus - (1.0 - t) * z
            })
            .sum()
    };
    let (mut a, mut b) = (0.0, ((n_neg + 1.0) / (n_pos + 1.0)).ln());
    let mut current = loss(a, b);
    for _ in 0..100 {
        // d loss / dz = t - q and d² loss / dz² = q (1 - q), where q = 1 / (1 + e^z).
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&f, &t) in p.iter().zip(&t) {
            let q = leadflow_core::model::sigmoid(-(a * f + b));
            let (g, h) = (t - q, (q * (1.0 - q)).max(1e-300));
            ga += g * f;
            gb += g;
            haa += h * f * f;
            hab += h * f;
            hbb += h;
        }
        if ga.abs().max(gb.abs()) < 1e-10 {
            break;
        }
        let det = haa * hbb - hab * hab;
        let (da, db) = if det.abs() > 1e-300 { ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det) } else { (ga, gb) };
        let mut step = 1.0;
        let improved = loop {
            let (na, nb) = (a - step * da, b - step * db);
            let l = loss(na, nb);
            if l <= current {
                break Some((na, nb, l));
            }
            step /= 2.0;
            if step < 1e-12 {
                break None;
            }
        };
        let Some((na, nb, l)) = improved else { break };
        let done = (na - a).abs().max((nb - b).abs()) < 1e-15;
        (a, b, current) = (na, nb, l);
        if done {
            break;
        }
    }
    Calibrator::Sigmoid { a, b }
}

/// Isotonic regression as scikit-learn's `IsotonicRegression(out_of_bounds="clip")` fits it:
/// rows sorted by score, equal scores merged (their mean), pool adjacent violators, and the
/// inner points of flat runs dropped.
pub fn isotonic(p: &[f64], positive: &[bool]) -> Calibrator {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]).then(positive[i].cmp(&positive[j])));
    // Merge scores closer than float64's resolution (scikit-learn's `_make_unique`).
    let (mut x, mut y, mut w): (Vec<f64>, Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cur_x, mut sum_y, mut sum_w) = (p.get(order.first().copied().unwrap_or(0)).copied().unwrap_or(0.0), 0.0, 0.0);
    for &i in &order {
        if p[i] - cur_x >= 1e-15 {
            x.push(cur_x);
            y.push(sum_y / sum_w);
            w.push(sum_w);
            (cur_x, sum_y, sum_w) = (p[i], 0.0, 0.0);
        }
        sum_y += f64::from(u8::from(positive[i]));
        sum_w += 1.0;
    }
    if sum_w > 0.0 {
        x.push(cur_x);
        y.push(sum_y / sum_w);
        w.push(sum_w);
    }
    pool_adjacent_violators(&mut y, &mut w);
    let n = y.len();
    let keep: Vec<bool> = (0..n).map(|i| i == 0 || i == n - 1 || y[i - 1] != y[i] || y[i] != y[i + 1]).collect();
    let pick = |v: &[f64]| v.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| *v).collect();
    Calibrator::Isotonic { x: pick(&x), y: pick(&y) }
}

/// Non-decreasing least squares in place (scikit-learn's
/// `_inplace_contiguous_isotonic_regression`, step for step, so the floats agree).
fn pool_adjacent_violators(y: &mut [f64], w: &mut [f64]) {
    let n = y.len();
    if n == 0 {
        return;
    }
    // If [i..=j] is a block, target[i] = j and target[j] = i.
    let mut target: Vec<usize> = (0..n).collect();
    let mut i = 0;
    while i < n {
        let mut k = target[i] + 1;
        if k == n {
            break;
        }
        if y[i] < y[k] {
            i = k;
            continue;
        }
        let (mut sum_wy, mut sum_w) = (w[i] * y[i], w[i]);
        loop {
            let prev_y = y[k];
            sum_wy += w[k] * y[k];
            sum_w += w[k];
            k = target[k] + 1;
            if k == n || prev_y < y[k] {
                y[i] = sum_wy / sum_w;
                w[i] = sum_w;
                target[i] = k - 1;
                target[k - 1] = i;
                if i > 0 {
                    i = target[i - 1];
                }
                break;
            }
        }
    }
    let mut i = 0;
    while i < n {
        let k = target[i] + 1;
        let v = y[i];
        y[i + 1..k].iter_mut().for_each(|e| *e = v);
        i = k;
    }
}

/// F1 of the positive class.
fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    let d = 2 * tp + fp + fn_;
    if d == 0 {
        0.0
    } else {
        2.0 * tp as f64 / d as f64
    }
}

/// (true positives, false positives, false negatives) flagging `p >= t`.
fn counts(p: &[f64], y: &[u8], t: f64) -> (usize, usize, usize) {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (&v, &c) in p.iter().zip(y) {
        match (v >= t, c == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    (tp, fp, fn_)
}

/// The threshold whose labels (`p >= t`) score best by `objective(tp, fp, fn)`, among every
/// distinct labelling: each distinct probability as the lowest one flagged, or none flagged.
/// The threshold returned lies midway between the lowest flagged probability and the next
/// lower one (or at it, when it is the lowest); on ties the fewest rows are flagged.
pub fn best_threshold(p: &[f64], y: &[u8], objective: impl Fn(usize, usize, usize) -> f64) -> f64 {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
    let positives = y.iter().filter(|&&c| c == 1).count();
    let top = order.first().map_or(1.0, |&i| p[i]);
    let (mut tp, mut fp) = (0, 0);
    let mut best = (objective(0, 0, positives), if top < 1.0 { (top + 1.0) / 2.0 } else { 1.0 });
    let mut r = 0;
    while r < order.len() {
        let v = p[order[r]];
        while r < order.len() && p[order[r]] == v {
            if y[order[r]] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            r += 1;
        }
        let score = objective(tp, fp, positives - tp);
        if score > best.0 {
            let next = order.get(r).map(|&i| p[i]);
            best = (score, next.map_or(v, |n| (v + n) / 2.0));
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The chosen threshold is as good as any threshold a brute-force scan tries (every
    /// probability, every midpoint, a fine grid), for F1 and for money.
    #[test]
    fn best_threshold_beats_a_brute_force_scan() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let n = rng.gen_range(5..200);
            let p: Vec<f64> = (0..n).map(|_| (rng.gen_range(0..40) as f64) / 40.0).collect();
            let y: Vec<u8> = p.iter().map(|&v| u8::from(rng.gen::<f64>() < v)).collect();
            let cost =
                CostParams { true_positive: rng.gen_range(1.0..50.0), false_positive: rng.gen_range(1.0..20.0), ..Default::default() };
            let objectives: [&dyn Fn(usize, usize, usize) -> f64; 2] = [&f1, &|a, b, c| cost.value(a, b, c)];
            for objective in objectives {
                let t = best_threshold(&p, &y, objective);
                let value = |t: f64| {
                    let (tp, fp, fn_) = counts(&p, &y, t);
                    objective(tp, fp, fn_)
                };
                let mut scan: Vec<f64> = (0..=1000).map(|i| i as f64 / 1000.0).collect();
                scan.extend(p.iter().copied());
                scan.extend(p.iter().map(|v| v + 1e-9));
                for s in scan {
                    assert!(value(t) >= value(s), "threshold {t} ({}) loses to {s} ({})", value(t), value(s));
                }
            }
        }
    }

    #[test]
    fn pool_adjacent_violators_gives_the_nondecreasing_least_squares_fit() {
        let mut y = vec![1.0, 3.0, 2.0, 4.0, 3.0, 3.0, 0.0, 5.0];
        let mut w = vec![1.0; 8];
        pool_adjacent_violators(&mut y, &mut w);
        assert_eq!(y, [1.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 5.0]);
    }

    #[test]
    fn sigmoid_calibration_undoes_a_squashed_score() {
        // Scores squashed toward 0.5 from true probabilities 1 / (1 + exp(-8 (s - 0.5))).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let s: Vec<f64> = (0..20_000).map(|_| rng.gen_range(0.3..0.7)).collect();
        let y: Vec<bool> = s.iter().map(|&v| rng.gen::<f64>() < leadflow_core::model::sigmoid(8.0 * (v - 0.5))).collect();
        let Calibrator::Sigmoid { a, b } = sigmoid(&s, &y) else { unreachable!() };
        assert!((a + 8.0).abs() < 0.5 && (b - 4.0).abs() < 0.3, "a {a}, b {b}");
    }
}
