//! leadflow-drift against scipy (the statistics) and on samples whose drift is known.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::collections::BTreeMap;

use leadflow_drift::{compare, stats, Column, Reference, Thresholds, Values};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    // Box-Muller: enough for test samples.
    let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen_range(0.0..1.0));
    mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn sample(seed: u64, n: usize, mean: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<f64> = (0..n).map(|_| (normal(&mut rng, mean, 1.0) * 1000.0).round() / 1000.0).collect();
    v.sort_by(f64::total_cmp);
    v
}

#[test]
fn the_statistics_equal_scipys() {
    let Some(py) = leadflow_testkit::python_with("scipy") else { return };
    let a = sample(1, 700, 0.0);
    let b = sample(2, 450, 0.15);
    let (ra, rb) = (vec![40usize, 25, 0, 35], vec![30usize, 40, 0, 25]);
    let script = r#"
import json, sys
import numpy as np
from scipy import stats
d = json.load(sys.stdin)
ks = stats.ks_2samp(d["a"], d["b"])
n, m = len(d["a"]), len(d["b"])
chi2, p, dof, _ = stats.chi2_contingency([d["ra"], d["rb"]], correction=False)
print(json.dumps({"ks": ks.statistic, "ks_p": stats.kstwobign.sf(ks.statistic * np.sqrt(n * m / (n + m))),
                  "chi2": chi2, "chi2_p": p, "dof": int(dof),
                  "sf": [stats.kstwobign.sf(x) for x in d["x"]]}))
"#;
    let xs = [0.3, 0.5, 0.8, 1.0, 1.36, 2.0, 3.0];
    let input = serde_json::json!({ "a": a, "b": b, "ra": [40, 25, 35], "rb": [30, 40, 25], "x": xs });
    let mut child = std::process::Command::new(&py)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let close = |ours: f64, theirs: &serde_json::Value, tol: f64, what: &str| {
        let t = theirs.as_f64().unwrap();
        assert!((ours - t).abs() <= tol * t.abs().max(1e-300), "{what}: ours {ours} vs scipy {t}");
    };
    let d = stats::ks_statistic(&a, &b);
    close(d, &want["ks"], 1e-12, "KS statistic");
    close(stats::ks_p_value(d, a.len(), b.len()), &want["ks_p"], 1e-9, "KS p-value (kstwobign)");
    // A level empty on both sides is left out, as scipy would refuse it.
    let (chi2, dof, p) = stats::chi_squared(&ra, &rb);
    close(chi2, &want["chi2"], 1e-12, "chi-squared");
    close(p, &want["chi2_p"], 1e-9, "chi-squared p-value");
    assert_eq!(dof as u64, want["dof"].as_u64().unwrap());
    for (x, sf) in xs.iter().zip(want["sf"].as_array().unwrap()) {
        close(stats::kolmogorov_sf(*x), sf, 1e-9, &format!("kstwobign.sf({x})"));
    }
}

#[test]
fn psi_is_zero_for_equal_shares_and_grows_with_the_shift() {
    assert_eq!(stats::psi(&[10, 20, 30], &[20, 40, 60]), 0.0);
    // (0.5-0.25)ln(2) + (0.25-0.5)ln(0.5) + 0 = 0.5 ln 2
    let p = stats::psi(&[25, 50, 25], &[50, 25, 25]);
    assert!((p - 0.5 * 2f64.ln()).abs() < 1e-12, "{p}");
    assert!(stats::psi(&[25, 50, 25], &[90, 5, 5]) > p);
}

/// Three columns: two continuous (one with gaps), one categorical.
type Columns = (Vec<Option<f64>>, Vec<Option<f64>>, Vec<Option<String>>);

/// A training table of three columns and a batch drawn from the same or a shifted law.
fn table(seed: u64, n: usize, shift: f64, unseen: bool, missing: f64) -> Columns {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut c = Vec::new();
    for _ in 0..n {
        a.push(Some(normal(&mut rng, 10.0 + shift, 2.0)));
        b.push((rng.gen::<f64>() >= missing).then(|| normal(&mut rng, 0.0, 1.0)));
        let r: f64 = rng.gen();
        let level = if unseen && r < 0.1 {
            "new"
        } else if r < 0.5 {
            "web"
        } else if r < 0.8 {
            "ads"
        } else {
            "mail"
        };
        c.push(Some(level.to_string()));
    }
    (a, b, c)
}

fn reference_of(n: usize) -> Reference {
    let (a, b, c) = table(1, n, 0.0, false, 0.05);
    Reference {
        rows: n,
        columns: vec![
            Column::continuous("a", a),
            Column::continuous("b", b),
            Column::categorical("c", false, c.iter().map(|v| v.as_deref())),
        ],
        prediction: None,
    }
}

fn batch(seed: u64, n: usize, shift: f64, unseen: bool, missing: f64) -> BTreeMap<String, Values> {
    let (a, b, c) = table(seed, n, shift, unseen, missing);
    BTreeMap::from([
        ("a".to_string(), Values::continuous(a)),
        ("b".to_string(), Values::continuous(b)),
        ("c".to_string(), Values::categorical(false, c.iter().map(|v| v.as_deref()))),
    ])
}

#[test]
fn the_same_law_is_not_drift_and_each_kind_of_drift_is_flagged_on_its_column_only() {
    let reference = reference_of(3000);
    let t = Thresholds::default();
    for seed in 2..7 {
        let r = compare(&reference, &batch(seed, 800, 0.0, false, 0.05), None, &t).unwrap();
        assert!(r.drifted.is_empty(), "seed {seed}: {:?}", r.columns);
    }
    let shifted = compare(&reference, &batch(9, 800, 2.0, false, 0.05), None, &t).unwrap();
    assert_eq!(shifted.drifted, ["a"], "{:#?}", shifted.columns);
    assert!(shifted.columns[0].reasons[0].starts_with("distribution"), "{:?}", shifted.columns[0].reasons);
    let unseen = compare(&reference, &batch(9, 800, 0.0, true, 0.05), None, &t).unwrap();
    assert_eq!(unseen.drifted, ["c"]);
    assert_eq!(unseen.columns[2].unseen_levels, ["new"]);
    let missing = compare(&reference, &batch(9, 800, 0.0, false, 0.4), None, &t).unwrap();
    assert_eq!(missing.drifted, ["b"]);
    let far = compare(&reference, &batch(9, 800, 8.0, false, 0.05), None, &t).unwrap();
    assert!(far.columns[0].out_of_range > 0.5, "{}", far.columns[0].out_of_range);
    // The Markdown names the drifted column and charts it.
    let md = shifted.markdown("drift");
    assert!(md.contains("**drift in a**") && md.contains("```mermaid") && md.contains("## a"), "{md}");
    // A missing column is an error naming it.
    let mut no_c = batch(9, 10, 0.0, false, 0.0);
    no_c.remove("c");
    assert!(compare(&reference, &no_c, None, &t).unwrap_err().contains("`c`"));
}

#[test]
fn a_large_column_keeps_a_sketch_and_deciles() {
    let values: Vec<Option<f64>> = (0..20_001).map(|i| Some(f64::from(i))).collect();
    let Column::Continuous { sketch, edges, counts, min, max, .. } = Column::continuous("x", values) else { panic!() };
    assert_eq!(sketch.len(), leadflow_drift::reference::SKETCH);
    assert_eq!((sketch[0], *sketch.last().unwrap(), min, max), (0.0, 20_000.0, 0.0, 20_000.0));
    assert_eq!(edges, (1..10).map(|i| f64::from(i) * 2000.0).collect::<Vec<_>>());
    assert_eq!(counts.iter().sum::<usize>(), 20_001);
}
