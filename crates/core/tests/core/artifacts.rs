use leadflow_core::artifacts::*;

#[test]
fn uncommitted_stage_leaves_previous_outputs() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("data");
    let s = StageDir::begin(&dest).unwrap();
    std::fs::write(s.dir().join("a.txt"), "one").unwrap();
    s.commit().unwrap();
    assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "one");

    let s = StageDir::begin(&dest).unwrap();
    std::fs::write(s.dir().join("a.txt"), "two").unwrap();
    drop(s); // failure: no commit
    assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "one");
    let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary directory must be removed");

    let s = StageDir::begin(&dest).unwrap();
    std::fs::write(s.dir().join("b.txt"), "three").unwrap();
    s.commit().unwrap();
    assert!(!dest.join("a.txt").exists());
    assert!(dest.join("b.txt").exists());
}

#[test]
fn interrupted_commit_is_recovered() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("train");
    let old = root.path().join(".train.old"); // where a commit keeps the previous outputs
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("x"), "kept").unwrap();
    recover(&dest).unwrap();
    assert_eq!(std::fs::read_to_string(dest.join("x")).unwrap(), "kept");
}

#[test]
fn contract_names_are_unique_per_dir() {
    let mut seen = std::collections::HashSet::new();
    for a in ALL {
        assert!(seen.insert((a.dir, a.name)), "duplicate {a:?}");
    }
}
