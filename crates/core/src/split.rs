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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_and_strata() {
        let y: Vec<u8> = (0..2937).map(|i| u8::from(i % 32 < 15)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let (tr, te) = train_test(&y, 0.15, &mut rng);
        assert_eq!((tr.len(), te.len()), (2496, 441));
        let pos_share = |idx: &[usize]| idx.iter().filter(|&&i| y[i] == 1).count() as f64 / idx.len() as f64;
        assert!((pos_share(&tr) - pos_share(&te)).abs() < 0.01);
        let mut all = [tr, te].concat();
        all.sort_unstable();
        assert_eq!(all, (0..2937).collect::<Vec<_>>());
    }

    #[test]
    fn ten_classes_are_stratified() {
        let y: Vec<u8> = (0..1797).map(|i| (i % 10) as u8).collect();
        let (tr, te) = train_test(&y, 0.2, &mut derive_rng(1, "split"));
        assert_eq!(te.len(), 360);
        for c in 0..10u8 {
            let n = te.iter().filter(|&&i| y[i] == c).count();
            assert!((35..=37).contains(&n), "class {c}: {n} test rows");
        }
        assert_eq!(tr.len() + te.len(), 1797);
        let rows: Vec<usize> = (0..1797).collect();
        for (_, val) in stratified_folds(&y, &rows, 5, &mut derive_rng(1, "folds")) {
            for c in 0..10u8 {
                let n = val.iter().filter(|&&p| y[p] == c).count();
                assert!((35..=37).contains(&n), "class {c}: {n} rows in a fold");
            }
        }
    }

    #[test]
    fn folds_partition_rows() {
        let y: Vec<u8> = (0..103).map(|i| u8::from(i % 3 == 0)).collect();
        let rows: Vec<usize> = (0..103).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let folds = stratified_folds(&y, &rows, 10, &mut rng);
        let mut seen = vec![0; 103];
        for (tr, val) in &folds {
            assert_eq!(tr.len() + val.len(), 103);
            assert!(val.len() == 10 || val.len() == 11);
            for &v in val {
                seen[v] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
    }
}
