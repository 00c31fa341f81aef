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

/// Score every candidate on every fold with `fit_score(candidate, train, validation)`.
pub fn run<C, F>(name: &'static str, candidates: &[C], folds: &Folds, fit_score: F) -> Result<SearchResult<C>>
where
    C: Clone + Sync,
    F: Fn(&C, &[usize], &[usize]) -> Result<f64> + Sync,
{
    let k = folds.len();
    let progress = Progress::new(name, candidates.len() * k);
    let scores: Vec<f64> = (0..candidates.len() * k)
        .into_par_iter()
        .map(|j| {
            let (c, f) = (j / k, j % k);
            let s = fit_score(&candidates[c], &folds[f].0, &folds[f].1);
            progress.tick();
            s
        })
        .collect::<Result<Vec<f64>>>()?;
    progress.finish();
    Ok(collect(candidates, k, |c, f| scores[c * k + f]))
}

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
    SearchResult { candidates: out, best }
}

/// [`run`] with what a fold's fits share built once per fold: `prepare(train, validation)`
/// (e.g. XGBoost's matrices, whose quantile cuts are then computed once, not once per
/// candidate), then `fit_score(&prepared, candidate)` for each candidate in order. Folds run
/// side by side; the result is [`run`]'s.
pub fn run_per_fold<C, X, P, F>(name: &'static str, candidates: &[C], folds: &Folds, prepare: P, fit_score: F) -> Result<SearchResult<C>>
where
    C: Clone + Sync,
    P: Fn(&[usize], &[usize]) -> Result<X> + Sync,
    F: Fn(&X, &C) -> Result<f64> + Sync,
{
    let k = folds.len();
    let progress = Progress::new(name, candidates.len() * k);
    let per_fold: Vec<Vec<f64>> = (0..k)
        .into_par_iter()
        .map(|f| {
            let prepared = prepare(&folds[f].0, &folds[f].1)?;
            candidates
                .iter()
                .map(|c| {
                    let s = fit_score(&prepared, c);
                    progress.tick();
                    s
                })
                .collect::<Result<Vec<f64>>>()
        })
        .collect::<Result<_>>()?;
    progress.finish();
    Ok(collect(candidates, k, |c, f| per_fold[f][c]))
}

/// [`run`], fitting each distinct `key` once: candidates with the same key give the same model
/// (e.g. every C of an unpenalised logistic regression), so they get the same fold scores. The
/// result lists every candidate, in order, as [`run`] would.
pub fn run_unique<C, K, F>(
    name: &'static str,
    candidates: &[C],
    key: impl Fn(&C) -> K,
    folds: &Folds,
    fit_score: F,
) -> Result<SearchResult<C>>
where
    C: Clone + Sync,
    K: PartialEq,
    F: Fn(&C, &[usize], &[usize]) -> Result<f64> + Sync,
{
    let (unique, of) = distinct(candidates, key);
    let fitted = run(name, &unique, folds, fit_score)?;
    let fold_scores: Vec<Vec<f64>> = fitted.candidates.into_iter().map(|c| c.fold_scores).collect();
    Ok(expand(candidates, &of, &fold_scores))
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
    SearchResult { candidates, best }
}

/// [`run_unique`] along a path: on each fold the distinct candidates are fitted one after another
/// in the order `before` gives (e.g. from the strongest regularisation to none), each fit starting
/// from the previous one's solution (`fit_score(candidate, train, validation, start)` returns the
/// score and its solution). Folds run side by side; the order within a fold is fixed, so the
/// outcome does not depend on the number of threads.
pub fn run_path<C, K, W, X, P, F>(
    name: &'static str,
    candidates: &[C],
    key: impl Fn(&C) -> K,
    before: impl Fn(&C, &C) -> std::cmp::Ordering,
    folds: &Folds,
    prepare: P,
    fit_score: F,
) -> Result<SearchResult<C>>
where
    C: Clone + Sync,
    K: PartialEq,
    W: Send,
    P: Fn(&[usize], &[usize]) -> Result<X> + Sync,
    F: Fn(&C, &X, Option<&W>) -> Result<(f64, W)> + Sync,
{
    let (unique, of) = distinct(candidates, key);
    let mut path: Vec<usize> = (0..unique.len()).collect();
    path.sort_by(|&a, &b| before(&unique[a], &unique[b]));
    let progress = Progress::new(name, unique.len() * folds.len());
    let per_fold: Vec<Vec<f64>> = folds
        .par_iter()
        .map(|(tr, va)| {
            let prepared = prepare(tr, va)?;
            let mut scores = vec![0.0; unique.len()];
            let mut start: Option<W> = None;
            for &u in &path {
                let (s, w) = fit_score(&unique[u], &prepared, start.as_ref())?;
                scores[u] = s;
                start = Some(w);
                progress.tick();
            }
            Ok(scores)
        })
        .collect::<Result<_>>()?;
    progress.finish();
    let fold_scores: Vec<Vec<f64>> = (0..unique.len()).map(|u| per_fold.iter().map(|f| f[u]).collect()).collect();
    Ok(expand(candidates, &of, &fold_scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_unique_scores_like_run_and_fits_each_key_once() {
        let folds: Vec<(Vec<usize>, Vec<usize>)> = vec![(vec![0], vec![1]), (vec![1], vec![0])];
        let cands = [3, 1, 3, 2, 1];
        let fits = AtomicUsize::new(0);
        let score = |c: &i32, tr: &[usize], _: &[usize]| {
            fits.fetch_add(1, Ordering::Relaxed);
            Ok(f64::from(*c) + tr[0] as f64)
        };
        let all = run("t", &cands, &folds, score).unwrap();
        fits.store(0, Ordering::Relaxed);
        let once = run_unique("t", &cands, |c| *c, &folds, score).unwrap();
        assert_eq!(fits.load(Ordering::Relaxed), 3 * 2, "three distinct keys, two folds");
        fits.store(0, Ordering::Relaxed);
        // Along a path (largest key first), each fit starts from the previous one's solution on
        // its fold; the scores are those of the same fits.
        let starts = std::sync::Mutex::new(Vec::new());
        let path = run_path(
            "t",
            &cands,
            |c| *c,
            |a, b| b.cmp(a),
            &folds,
            |tr, va| Ok((tr.to_vec(), va.to_vec())),
            |c: &i32, (tr, va): &(Vec<usize>, Vec<usize>), start: Option<&i32>| {
                starts.lock().unwrap().push((tr[0], *c, start.copied()));
                score(c, tr, va).map(|s| (s, *c))
            },
        )
        .unwrap();
        let mut starts = starts.into_inner().unwrap();
        starts.sort();
        assert_eq!(starts, [(0, 1, Some(2)), (0, 2, Some(3)), (0, 3, None), (1, 1, Some(2)), (1, 2, Some(3)), (1, 3, None)]);
        assert_eq!(path.best, all.best);
        for (a, b) in all.candidates.iter().zip(&path.candidates) {
            assert_eq!((a.params, &a.fold_scores, a.mean, a.std), (b.params, &b.fold_scores, b.mean, b.std));
        }
        assert_eq!(once.best, all.best);
        for (a, b) in all.candidates.iter().zip(&once.candidates) {
            assert_eq!((a.params, &a.fold_scores, a.mean, a.std), (b.params, &b.fold_scores, b.mean, b.std));
        }
    }

    #[test]
    fn run_per_fold_scores_like_run_and_prepares_each_fold_once() {
        let folds: Vec<(Vec<usize>, Vec<usize>)> = vec![(vec![0, 2], vec![1]), (vec![1], vec![0]), (vec![2], vec![0, 1])];
        let cands = [3, 1, 3, 2];
        let score = |c: &i32, tr: &[usize], va: &[usize]| Ok(f64::from(*c) * tr[0] as f64 + va.len() as f64);
        let all = run("t", &cands, &folds, score).unwrap();
        let prepared = AtomicUsize::new(0);
        let per_fold = run_per_fold(
            "t",
            &cands,
            &folds,
            |tr, va| {
                prepared.fetch_add(1, Ordering::Relaxed);
                Ok((tr.to_vec(), va.to_vec()))
            },
            |(tr, va): &(Vec<usize>, Vec<usize>), c| score(c, tr, va),
        )
        .unwrap();
        assert_eq!(prepared.load(Ordering::Relaxed), folds.len());
        assert_eq!(per_fold.best, all.best);
        for (a, b) in all.candidates.iter().zip(&per_fold.candidates) {
            assert_eq!((a.params, &a.fold_scores, a.mean, a.std), (b.params, &b.fold_scores, b.mean, b.std));
        }
    }
}
