use leadflow_core::split::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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
