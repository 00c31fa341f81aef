//! `leadflow model drift` end to end: a model trained on one sample, then batches checked
//! against it — one from the same law (quiet), one with a column shifted (that column named,
//! non-zero exit), the real file's held-back rows (quiet) — each logged as an MLflow run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use leadflow_core::artifacts::Layout;
use leadflow_features::table::Table;
use leadflow_mlflow::tracking::StoreLocation;

use crate::incremental::sqlite_db;
use crate::write_quick_params;

fn leadflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["--artifacts-dir", dir.join("artifacts").to_str().unwrap(), "--params", dir.join("params.toml").to_str().unwrap()])
        .args(args)
        .current_dir(dir)
        .env("MLFLOW_TRACKING_URI", StoreLocation::sqlite_uri(&sqlite_db(dir)))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Train (quick params) on `raw` in `dir`.
fn trained(dir: &Path, raw: &Path) {
    write_quick_params(dir);
    let o = leadflow(dir, &["run", "--engine", "local", "--raw", raw.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(Layout::new(dir.join("artifacts")).model_dir().join("reference.json").is_file(), "the model carries its reference");
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("artifacts/drift/drift.json")).unwrap()).unwrap()
}

fn drifted_columns(r: &serde_json::Value) -> Vec<String> {
    r["columns"].as_array().unwrap().iter().filter(|c| c["drifted"] == true).map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

/// `src` with `column` multiplied by `factor`, written to `dest`.
fn scaled(src: &Path, dest: &Path, column: &str, factor: f64) -> PathBuf {
    let t = Table::read(src).unwrap();
    let j = t.column_index(column).unwrap();
    let field = |s: &str| if s.contains([',', '"']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
    let line = |r: &[String]| r.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\n";
    let mut out = line(&t.header);
    for r in &t.rows {
        let mut r = r.clone();
        if let Ok(v) = r[j].parse::<f64>() {
            r[j] = (v * factor).to_string();
        }
        out.push_str(&line(&r));
    }
    std::fs::write(dest, out).unwrap();
    dest.to_path_buf()
}

#[test]
fn the_same_law_is_quiet_and_a_shifted_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (train, batch) = (dir.path().join("train.csv"), dir.path().join("batch.csv"));
    leadflow_data::generate::generate(&train, 5000, 11).unwrap();
    leadflow_data::generate::generate(&batch, 2000, 12).unwrap();
    trained(dir.path(), &train);

    let o = leadflow(dir.path(), &["model", "drift", "--input", batch.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let quiet = report(dir.path());
    assert_eq!(drifted_columns(&quiet), Vec::<String>::new(), "{quiet:#}");
    assert_eq!(quiet["prediction"]["drifted"], false, "{:#}", quiet["prediction"]);
    let inputs: Vec<&str> = quiet["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(inputs.contains(&"time_spent") && inputs.contains(&"source"), "{inputs:?}");

    let shifted = scaled(&batch, &dir.path().join("shifted.csv"), "time_spent", 3.0);
    let o = leadflow(dir.path(), &["model", "drift", "--input", shifted.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("drift in time_spent"), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(dir.path());
    assert_eq!(drifted_columns(&r), ["time_spent"], "{r:#}");
    let md = std::fs::read_to_string(dir.path().join("artifacts/drift/drift.md")).unwrap();
    assert!(md.contains("## time_spent") && md.contains("xychart-beta"), "{md}");

    // Both checks are MLflow runs, with the thresholds and each column's PSI.
    let store =
        leadflow_mlflow::open_existing_store(&StoreLocation::parse(Some(&StoreLocation::sqlite_uri(&sqlite_db(dir.path()))))).unwrap();
    let p = leadflow_core::Params::load(&dir.path().join("params.toml")).unwrap();
    let exp = store.find_experiment(&format!("{}-drift", p.tracking.experiment_name)).unwrap();
    let runs = store.search_runs(&exp.expect("the drift experiment")).unwrap();
    assert_eq!(runs.len(), 2);
    let last = runs.iter().find(|r| r.tags.get("drifted").is_some_and(|d| d == "time_spent" || d.starts_with("time_spent,"))).unwrap();
    assert!(last.metrics["psi.time_spent"] >= 0.2 && last.params["psi"] == "0.2", "{:?}", last.metrics);

    // Rows of other sources are outside the lead model's population (its filter keeps signups).
    assert!(r["rows_left_out"].as_u64().unwrap() > 0 && r["rows_batch"].as_u64().unwrap() > 0, "{r:#}");
    // A value that is not a number is refused with its line and column.
    let bad = dir.path().join("bad.csv");
    let text = std::fs::read_to_string(&batch).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let (j, src) = (header.iter().position(|c| *c == "time_spent").unwrap(), header.iter().position(|c| *c == "source").unwrap());
    let n = (1..lines.len()).find(|&n| lines[n].split(',').nth(src) == Some("signup")).unwrap();
    let mut cells: Vec<String> = lines[n].split(',').map(String::from).collect();
    cells[j] = "lots".into();
    lines[n] = cells.join(",");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let o = leadflow(dir.path(), &["model", "drift", "--input", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("bad.csv") && err.contains(&format!("line {}", n + 1)) && err.contains("time_spent"), "{err}");
}

#[test]
fn the_real_files_held_back_rows_do_not_drift() {
    let Some(real) = leadflow_testkit::real_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A random fifth of the rows held back (seeded), the rest trained on.
    let text = std::fs::read_to_string(&real).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut train, mut held) = (format!("{header}\n"), format!("{header}\n"));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for l in lines {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        if (state >> 33).is_multiple_of(5) { &mut held } else { &mut train }.push_str(&format!("{l}\n"));
    }
    let (t, h) = (dir.path().join("train.csv"), dir.path().join("held.csv"));
    std::fs::write(&t, train).unwrap();
    std::fs::write(&h, held).unwrap();
    trained(dir.path(), &t);
    let o = leadflow(dir.path(), &["model", "drift", "--input", h.to_str().unwrap()]);
    let r = report(dir.path());
    assert!(o.status.success(), "{r:#}\n{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(drifted_columns(&r), Vec::<String>::new());
}
