//! The statistics a drift check uses, each as scipy defines it.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Shares below this count as this in the PSI (an empty bin would make it infinite), as in
/// Evidently.
pub const PSI_FLOOR: f64 = 1e-4;

/// Population stability index of two distributions over the same bins, given as counts:
/// Σ (b - r) · ln(b / r) over the bins' shares, each share at least [`PSI_FLOOR`].
pub fn psi(reference: &[usize], batch: &[usize]) -> f64 {
    let (rn, bn) = (reference.iter().sum::<usize>().max(1) as f64, batch.iter().sum::<usize>().max(1) as f64);
    reference
        .iter()
        .zip(batch)
        .map(|(&r, &b)| {
            let (r, b) = ((r as f64 / rn).max(PSI_FLOOR), (b as f64 / bn).max(PSI_FLOOR));
            (b - r) * (b / r).ln()
        })
        .sum()
}

/// The two-sample Kolmogorov-Smirnov statistic of two sorted samples: the largest distance
/// between their empirical distribution functions (scipy's `ks_2samp(...).statistic`).
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value on both sides, then compare the CDFs.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

/// P(K > x) for Kolmogorov's limiting distribution (scipy's `kstwobign.sf`):
/// 2 Σ_{k≥1} (-1)^{k-1} e^{-2k²x²}.
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 0.2 {
        // The alternating series converges slowly here and the value is 1 to double precision
        // (1 - 1e-18 at x = 0.2).
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = (-2.0 * k * k * x * x).exp();
        sum += if k as u32 % 2 == 1 { term } else { -term };
        if term < 1e-17 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The asymptotic p-value of a two-sample KS statistic `d` between samples of `n` and `m`:
/// `kstwobign.sf(d · sqrt(n·m / (n+m)))`.
pub fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let en = (n as f64 * m as f64) / (n + m) as f64;
    kolmogorov_sf(d * en.sqrt())
}

/// The chi-squared test of homogeneity of two rows of counts over the same levels (scipy's
/// `chi2_contingency([a, b], correction=False)`): the statistic, the degrees of freedom and the
/// p-value. Levels empty in both rows are left out.
pub fn chi_squared(a: &[usize], b: &[usize]) -> (f64, usize, f64) {
    let cols: Vec<(f64, f64)> = a.iter().zip(b).filter(|(x, y)| **x + **y > 0).map(|(&x, &y)| (x as f64, y as f64)).collect();
    let (na, nb) = (cols.iter().map(|c| c.0).sum::<f64>(), cols.iter().map(|c| c.1).sum::<f64>());
    if cols.len() < 2 || na == 0.0 || nb == 0.0 {
        return (0.0, 0, 1.0);
    }
    let n = na + nb;
    let stat: f64 = cols
        .iter()
        .map(|&(x, y)| {
            let t = x + y;
            let (ea, eb) = (na * t / n, nb * t / n);
            (x - ea).powi(2) / ea + (y - eb).powi(2) / eb
        })
        .sum();
    let df = cols.len() - 1;
    let p = ChiSquared::new(df as f64).map(|d| d.sf(stat)).unwrap_or(f64::NAN);
    (stat, df, p)
}

/// Quantile `q` of sorted values by linear interpolation (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}
