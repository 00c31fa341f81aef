//! Randomized search with stratified cross-validation, run on all cores. Every (candidate, fold)
//! fit is independent and seeded from params, and results are collected in a fixed order, so the
//! outcome does not depend on the number of threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct CandidateResult<C> {
    pub params: C,
    pub fold_scores: Vec<f64>,
    pub mean: f64,
    /// Population std over folds (as scikit-learn's `std_test_score`).
    pub std: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResult<C> {
    pub candidates: Vec<CandidateResult<C>>,
    /// Index of the best candidate (highest mean; the first on ties).
    pub best: usize,
    /// The best candidate's out-of-fold probabilities, one row per training row (when
    /// [`Scoring::keep_oof`]): each row predicted by the fold model that did not see it.
    #[serde(skip)]
    pub oof: Option<Vec<f64>>,
}

/// How a fold's predictions are scored.
pub struct Scoring<'a> {
    /// The training rows' labels (folds index into them).
    pub y: &'a [u8],
    pub metric: leadflow_metrics::Metric,
    pub k: usize,
    pub threshold: f64,
    /// Keep the best candidate's out-of-fold probabilities (calibration and threshold rules
    /// are fitted on them); the others' are dropped once the best is known.
    pub keep_oof: bool,
}

impl Scoring<'_> {
    /// The labels of the validation rows `va` (picked once per fold).
    fn labels(&self, va: &[usize]) -> Vec<u8> {
        va.iter().map(|&i| self.y[i]).collect()
    }

    /// The score of `proba`, the predictions of validation rows labelled `y_va`, and the
    /// probabilities themselves when they are kept.
    fn score(&self, y_va: &[u8], proba: Vec<f64>) -> (f64, Option<Vec<f64>>) {
        let s = leadflow_metrics::score(self.metric, y_va, &proba, self.k, self.threshold);
        (s, self.keep_oof.then_some(proba))
    }

    /// Candidate `u`'s kept probabilities, put back in training-row order.
    fn assemble(&self, folds: &Folds, kept: &[Vec<Option<Vec<f64>>>], u: usize) -> Option<Vec<f64>> {
        let width = leadflow_metrics::per_row(self.k);
        let mut oof = vec![0.0; self.y.len() * width];
        for ((_, va), fold) in folds.iter().zip(kept) {
            let p = fold[u].as_ref()?;
            for (j, &row) in va.iter().enumerate() {
                oof[row * width..(row + 1) * width].copy_from_slice(&p[j * width..(j + 1) * width]);
            }
        }
        Some(oof)
    }
}

impl<C> SearchResult<C> {
    pub fn best(&self) -> &CandidateResult<C> {
        &self.candidates[self.best]
    }
}

/// Progress of candidates × folds: a bar on a terminal, a log line per 10% otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicUsize,
    total: usize,
    name: &'static str,
}

impl Progress {
    pub fn new(name: &'static str, total: usize) -> Progress {
        let bar = leadflow_cli::logging::interactive().then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} fits ({eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(name);
            b
        });
        Progress { bar, done: AtomicUsize::new(0), total, name }
    }

    fn tick(&self) {
        let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(b) => b.inc(1),
            None => {
                let step = (self.total / 10).max(1);
                if d.is_multiple_of(step) || d == self.total {
                    tracing::info!("{}: {d}/{} fits (candidates x folds)", self.name, self.total);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

pub type Folds = [(Vec<usize>, Vec<usize>)];

/// Each candidate's fold scores (`score(candidate, fold)`), mean and std; the best one.
fn collect<C: Clone>(candidates: &[C], k: usize, score: impl Fn(usize, usize) -> f64) -> SearchResult<C> {
    let mut out = Vec::with_capacity(candidates.len());
    for (c, cand) in candidates.iter().enumerate() {
        let fs: Vec<f64> = (0..k).map(|f| score(c, f)).collect();
        let mean = fs.iter().sum::<f64>() / k as f64;
        let std = (fs.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / k as f64).sqrt();
        out.push(CandidateResult { params: cand.clone(), fold_scores: fs, mean, std });
    }
    let mut best = 0;
    for (i, r) in out.iter().enumerate() {
        if r.mean > out[best].mean {
            best = i;
        }
    }
    SearchResult { candidates: out, best, oof: None }
}

/// [`run`] with what a fold's fits share built once per fold: `prepare(train, validation)`
/// (e.g. XGBoost's matrices, whose quantile cuts are then computed once, not once per
/// candidate), then `fit_predict(&prepared, candidate)` — the validation rows' probabilities —
/// for each candidate in order, scored by `scoring`. Folds run side by side; the scores are those of
/// each (candidate, fold) fit alone.
pub fn run_per_fold<C, X, P, F>(
    name: &'static str,
    candidates: &[C],
    folds: &Folds,
    scoring: &Scoring<'_>,
    prepare: P,
    fit_predict: F,
) -> Result<SearchResult<C>>
where
    C: Clone + Sync,
    P: Fn(&[usize], &[usize]) -> Result<X> + Sync,
    F: Fn(&X, &C) -> Result<Vec<f64>> + Sync,
{
    let k = folds.len();
    let progress = Progress::new(name, candidates.len() * k);
    let per_fold: Vec<Vec<(f64, Option<Vec<f64>>)>> = folds
        .par_iter()
        .map(|(tr, va)| {
            let prepared = prepare(tr, va)?;
            let y_va = scoring.labels(va);
            candidates
                .iter()
                .map(|c| {
                    let s = fit_predict(&prepared, c).map(|p| scoring.score(&y_va, p));
                    progress.tick();
                    s
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    progress.finish();
    let mut res = collect(candidates, k, |c, f| per_fold[f][c].0);
    let kept: Vec<Vec<Option<Vec<f64>>>> = per_fold.into_iter().map(|f| f.into_iter().map(|(_, p)| p).collect()).collect();
    res.oof = scoring.assemble(folds, &kept, res.best);
    Ok(res)
}

/// Distinct candidates by `key`, in first-seen order, and each candidate's index among them.
fn distinct<C: Clone, K: PartialEq>(candidates: &[C], key: impl Fn(&C) -> K) -> (Vec<C>, Vec<usize>) {
    let mut unique: Vec<C> = Vec::new();
    let mut keys: Vec<K> = Vec::new();
    let mut of: Vec<usize> = Vec::with_capacity(candidates.len());
    for c in candidates {
        let k = key(c);
        match keys.iter().position(|x| *x == k) {
            Some(i) => of.push(i),
            None => {
                of.push(unique.len());
                keys.push(k);
                unique.push(c.clone());
            }
        }
    }
    (unique, of)
}

/// Every candidate, in order, with the fold scores of its distinct fit; the best by mean.
fn expand<C: Clone>(candidates: &[C], of: &[usize], fold_scores: &[Vec<f64>]) -> SearchResult<C> {
    let k = fold_scores.first().map_or(0, Vec::len).max(1);
    let candidates: Vec<CandidateResult<C>> = candidates
        .iter()
        .zip(of)
        .map(|(c, &u)| {
            let fs = fold_scores[u].clone();
            let mean = fs.iter().sum::<f64>() / k as f64;
            let std = (fs.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / k as f64).sqrt();
            CandidateResult { params: c.clone(), fold_scores: fs, mean, std }
        })
        .collect();
    let mut best = 0;
    for (i, r) in candidates.iter().enumerate() {
        if r.mean > candidates[best].mean {
            best = i;
        }
    }
    SearchResult { candidates, best, oof: None }
}

/// Candidates fitted once per distinct `key` (e.g. every C of an unpenalised logistic
/// regression gives the same model, so the same fold scores), along a path: on each fold the
/// distinct candidates are fitted one after another in the order `before` gives (e.g. from the
/// strongest regularisation to none), each fit starting from the previous one's solution
/// (`fit_predict(candidate, prepared, start)` returns the validation rows' probabilities and its
/// solution; `scoring` scores them). Folds run side by side; the order within a fold is fixed,
/// so the outcome does not depend on the number of threads.
pub fn run_path<C, K, W, X, P, F>(
    name: &'static str,
    candidates: &[C],
    (key, before): (impl Fn(&C) -> K, impl Fn(&C, &C) -> std::cmp::Ordering),
    folds: &Folds,
    scoring: &Scoring<'_>,
    prepare: P,
    fit_predict: F,
) -> Result<SearchResult<C>>
where
    C: Clone + Sync,
    K: PartialEq,
    W: Send,
    P: Fn(&[usize], &[usize]) -> Result<X> + Sync,
    F: Fn(&C, &X, Option<&W>) -> Result<(Vec<f64>, W)> + Sync,
{
    let (unique, of) = distinct(candidates, key);
    let mut path: Vec<usize> = (0..unique.len()).collect();
    path.sort_by(|&a, &b| before(&unique[a], &unique[b]));
    let progress = Progress::new(name, unique.len() * folds.len());
    let per_fold: Vec<Vec<(f64, Option<Vec<f64>>)>> = folds
        .par_iter()
        .map(|(tr, va)| {
            let prepared = prepare(tr, va)?;
            let y_va = scoring.labels(va);
            let mut scores = vec![(0.0, None); unique.len()];
            let mut start: Option<W> = None;
            for &u in &path {
                let (p, w) = fit_predict(&unique[u], &prepared, start.as_ref())?;
                scores[u] = scoring.score(&y_va, p);
                start = Some(w);
                progress.tick();
            }
            Ok(scores)
        })
        .collect::<Result<_>>()?;
    progress.finish();
    let fold_scores: Vec<Vec<f64>> = (0..unique.len()).map(|u| per_fold.iter().map(|f| f[u].0).collect()).collect();
    let mut res = expand(candidates, &of, &fold_scores);
    let kept: Vec<Vec<Option<Vec<f64>>>> = per_fold.into_iter().map(|f| f.into_iter().map(|(_, p)| p).collect()).collect();
    res.oof = scoring.assemble(folds, &kept, of[res.best]);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes over six rows; three folds.
    type Split = Vec<(Vec<usize>, Vec<usize>)>;

    fn setup() -> (Vec<u8>, Split) {
        (vec![0, 1, 0, 1, 1, 0], vec![(vec![2, 3, 4, 5], vec![0, 1]), (vec![0, 1, 4, 5], vec![2, 3]), (vec![0, 1, 2, 3], vec![4, 5])])
    }

    /// A made-up prediction of row `r` by candidate `c` trained on `tr`.
    fn proba(c: i32, tr: &[usize], r: usize) -> f64 {
        ((f64::from(c) * 0.37 + tr[0] as f64 * 0.11 + r as f64 * 0.23) % 1.0).abs()
    }

    fn scoring(y: &[u8]) -> Scoring<'_> {
        Scoring { y, metric: leadflow_metrics::Metric::RocAuc, k: 2, threshold: 0.5, keep_oof: true }
    }

    /// Every candidate's fold scores, as separate fits would give them, and the best one's
    /// out-of-fold predictions.
    fn expected(cands: &[i32], y: &[u8], folds: &Folds) -> (Vec<Vec<f64>>, usize, Vec<f64>) {
        let scores: Vec<Vec<f64>> = cands
            .iter()
            .map(|&c| {
                folds
                    .iter()
                    .map(|(tr, va)| {
                        let p: Vec<f64> = va.iter().map(|&r| proba(c, tr, r)).collect();
                        let y_va: Vec<u8> = va.iter().map(|&r| y[r]).collect();
                        leadflow_metrics::roc_auc(&y_va, &p)
                    })
                    .collect()
            })
            .collect();
        let means: Vec<f64> = scores.iter().map(|s| s.iter().sum::<f64>() / s.len() as f64).collect();
        let best = (0..cands.len()).fold(0, |b, i| if means[i] > means[b] { i } else { b });
        let mut oof = vec![0.0; y.len()];
        for (tr, va) in folds {
            for &r in va {
                oof[r] = proba(cands[best], tr, r);
            }
        }
        (scores, best, oof)
    }

    #[test]
    fn run_path_fits_each_key_once_along_the_path_and_keeps_the_best_oof() {
        let (y, folds) = setup();
        let cands = [3, 1, 3, 2, 1];
        let fits = AtomicUsize::new(0);
        let starts = std::sync::Mutex::new(Vec::new());
        let res = run_path(
            "t",
            &cands,
            (|c: &i32| *c, |a: &i32, b: &i32| b.cmp(a)),
            &folds,
            &scoring(&y),
            |tr, va| Ok((tr.to_vec(), va.to_vec())),
            |c: &i32, (tr, va): &(Vec<usize>, Vec<usize>), start: Option<&i32>| {
                fits.fetch_add(1, Ordering::Relaxed);
                starts.lock().unwrap().push((va[0], *c, start.copied()));
                Ok((va.iter().map(|&r| proba(*c, tr, r)).collect(), *c))
            },
        )
        .unwrap();
        assert_eq!(fits.load(Ordering::Relaxed), 3 * 3, "three distinct keys, three folds");
        // Along the path (largest key first), each fit starts from the previous one's solution.
        let mut starts = starts.into_inner().unwrap();
        starts.sort();
        assert_eq!(&starts[..3], [(0, 1, Some(2)), (0, 2, Some(3)), (0, 3, None)]);
        let (scores, best, oof) = expected(&cands, &y, &folds);
        assert_eq!(res.best, best);
        for (r, s) in res.candidates.iter().zip(&scores) {
            assert_eq!(&r.fold_scores, s);
        }
        assert_eq!(res.oof.unwrap(), oof);
    }

    #[test]
    fn run_per_fold_prepares_each_fold_once_and_keeps_the_best_oof_only_when_asked() {
        let (y, folds) = setup();
        let cands = [3, 1, 3, 2];
        let prepared = AtomicUsize::new(0);
        let go = |s: &Scoring<'_>| {
            run_per_fold(
                "t",
                &cands,
                &folds,
                s,
                |tr, va| {
                    prepared.fetch_add(1, Ordering::Relaxed);
                    Ok((tr.to_vec(), va.to_vec()))
                },
                |(tr, va): &(Vec<usize>, Vec<usize>), c| Ok(va.iter().map(|&r| proba(*c, tr, r)).collect()),
            )
            .unwrap()
        };
        let res = go(&scoring(&y));
        assert_eq!(prepared.load(Ordering::Relaxed), folds.len());
        let (scores, best, oof) = expected(&cands, &y, &folds);
        assert_eq!(res.best, best);
        for (r, s) in res.candidates.iter().zip(&scores) {
            assert_eq!(&r.fold_scores, s);
        }
        assert_eq!(res.oof.unwrap(), oof);
        assert!(go(&Scoring { keep_oof: false, ..scoring(&y) }).oof.is_none());
    }
}
