//! Stratified splitting: the train/test split and the CV folds. The data stage computes the same
//! split as train (same labels, `train.test_size`, `train.seed`) when it fits preprocessing on
//! the training rows only.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random stream for one purpose (`salt`) of a seeded run: independent of the others, so
/// adding a draw in one place does not move another.
pub fn derive_rng(seed: u64, salt: &str) -> ChaCha8Rng {
    let h = crate::hash::sha256_hex(format!("{seed}/{salt}").as_bytes());
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    ChaCha8Rng::seed_from_u64(u64::from_le_bytes(bytes))
}

/// The train/test split of a run: [`train_test`] on its own random stream.
pub fn train_test_of(y: &[u8], test_size: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    train_test(y, test_size, &mut derive_rng(seed, "split"))
}

/// Indices of each class `0..=max(y)` (at least two), in row order.
fn by_class(y: &[u8], rows: &[usize]) -> Vec<Vec<usize>> {
    let k = rows.iter().map(|&i| y[i] as usize + 1).max().unwrap_or(0).max(2);
    let mut out = vec![Vec::new(); k];
    for &i in rows {
        out[y[i] as usize].push(i);
    }
    out
}

/// Stratified train/test split; `n_test = ceil(test_size · n)` as in scikit-learn, shared between
/// the classes in proportion (largest remainder). Both parts come back in row order.
pub fn train_test(y: &[u8], test_size: f64, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    let n = y.len();
    let n_test = ((test_size * n as f64).ceil() as usize).clamp(1, n.saturating_sub(1).max(1));
    let all: Vec<usize> = (0..n).collect();
    let mut classes = by_class(y, &all);
    let exact: Vec<f64> = classes.iter().map(|c| c.len() as f64 * n_test as f64 / n as f64).collect();
    let mut take: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = n_test - take.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..classes.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for &c in order.iter().cycle().take(2 * classes.len()) {
        if left == 0 {
            break;
        }
        if take[c] < classes[c].len() {
            take[c] += 1;
            left -= 1;
        }
    }
    let mut test = Vec::with_capacity(n_test);
    let mut train = Vec::with_capacity(n - n_test);
    for (c, idx) in classes.iter_mut().enumerate() {
        idx.shuffle(rng);
        test.extend_from_slice(&idx[..take[c]]);
        train.extend_from_slice(&idx[take[c]..]);
    }
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

/// Stratified k-fold with shuffling: returns, per fold, (train positions, validation positions)
/// as positions into `rows`.
pub fn stratified_folds(y: &[u8], rows: &[usize], k: usize, rng: &mut ChaCha8Rng) -> Vec<(Vec<usize>, Vec<usize>)> {
    let positions: Vec<usize> = (0..rows.len()).collect();
    let ys: Vec<u8> = rows.iter().map(|&i| y[i]).collect();
    let mut classes = by_class(&ys, &positions);
    let mut fold_of = vec![0usize; rows.len()];
    let mut next = 0usize;
    for idx in classes.iter_mut() {
        idx.shuffle(rng);
        // Deal each class round-robin, continuing where the previous class stopped, so fold
        // sizes differ by at most one.
        for &p in idx.iter() {
            fold_of[p] = next % k;
            next += 1;
        }
    }
    (0..k)
        .map(|f| {
            let val: Vec<usize> = positions.iter().copied().filter(|&p| fold_of[p] == f).collect();
            let tr: Vec<usize> = positions.iter().copied().filter(|&p| fold_of[p] != f).collect();
            (tr, val)
        })
        .collect()
}
