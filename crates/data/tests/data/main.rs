//! Integration tests of the data stage: real-file figures (when the file is present), the
//! generator, the pull, and every kind of bad input; `dataset`: tables of one's own (roles,
//! processing options, validation rules).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod dataset;
mod parquet;

use std::path::{Path, PathBuf};

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::Params;
use leadflow_testkit::{real_data, snapshot};

fn sample(dir: &Path, rows: usize) -> PathBuf {
    let p = dir.join("raw.csv");
    leadflow_data::generate::generate(&p, rows, 11).unwrap();
    p
}

#[test]
fn real_file_matches_the_notebook_figures() {
    let Some(raw) = real_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    let s = leadflow_data::run(&raw, &layout, &Params::default()).unwrap();
    assert_eq!(s.rows["raw"], 12_345);
    assert_eq!(s.rows["after_date_filter"], 12_345, "all rows fall in the default window");
    assert_eq!(s.rows["after_target_filter"], 11_753);
    assert_eq!(s.rows["gold"], 2_937);
    assert!(s.missing["customer_code"] > 0, "customer_code is missing in some rows");
    assert_eq!(s.data_version, "f9253f7c5f00bb2c02a101e09864c631cae7f1a0b9d3cd4eafd323aed2c12635");
    assert_eq!((s.min_date.as_deref(), s.max_date.as_deref()), (Some("2024-01-01"), Some("2024-01-31")));

    let gold = std::fs::read_to_string(layout.path(&art::GOLD)).unwrap();
    let mut lines = gold.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "lead_id",
            "lead_indicator",
            "customer_group",
            "onboarding",
            "source",
            "customer_code",
            "date_part",
            "purchases",
            "time_spent",
            "n_visits",
            "bin_source"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2_937);
    for r in &rows {
        assert_eq!(r[4], "signup");
        assert_eq!(r[10], "group1");
        assert!(r[1] == "0" || r[1] == "1");
        for v in &r[7..10] {
            let x: f64 = v.parse().unwrap();
            assert!((0.0..=1.0).contains(&x), "scaled value {x} outside [0,1]");
        }
    }
    assert!(rows.iter().any(|r| r[5] == "None"), "missing customer_code becomes None");
    // Every fitted transform is written for inference.
    let pre: leadflow_features::Preprocessing = art::read_json(&layout.path(&art::PREPROCESSING), "pre").unwrap();
    assert_eq!(pre.continuous.len(), 3);
    let meta = leadflow_core::meta::read(&layout.path(&art::DATA_META)).unwrap();
    assert_eq!(meta.data_version, s.data_version);
    assert_eq!(meta.rows["gold"], 2_937);
}

#[test]
fn sample_runs_and_writes_every_data_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let raw = sample(dir.path(), 1500);
    let layout = Layout::new(dir.path().join("artifacts"));
    let s = leadflow_data::run(&raw, &layout, &Params::default()).unwrap();
    assert!(s.rows["after_target_filter"] < 1500, "the generator leaves empty targets");
    for a in art::ALL.iter().filter(|a| a.stage == art::StageId::Data) {
        let p = layout.path(a);
        assert!(p.is_file(), "{} missing", p.display());
        assert!(std::fs::metadata(&p).unwrap().len() > 0);
    }
    let limits: serde_json::Value = art::read_json(&layout.path(&art::DATE_LIMITS), "limits").unwrap();
    assert_eq!(limits["min_date"], "2024-01-01");
    let outl = std::fs::read_to_string(layout.path(&art::OUTLIER_SUMMARY)).unwrap();
    assert!(outl.starts_with("column,count,missing,mean,min,max\npurchases,"));
}

#[test]
fn outliers_are_clipped_to_mean_plus_minus_sigma_std() {
    // Nine leads with 1 visit and one with 100: mean 10.9, sample std sqrt(8820.9 / 9), so the
    // default 2 sigma caps the outlier at 10.9 + 2 * 31.306... (computed here, not by the stage).
    let visits = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 100.0];
    let mut csv = format!("{HEADER}\n");
    for (i, v) in visits.iter().enumerate() {
        let row = ROW.replacen("1,", &format!("{},", i + 1), 1);
        csv.push_str(&format!("{},{v}\n", row.rsplit_once(',').unwrap().0));
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.csv");
    std::fs::write(&raw, csv).unwrap();
    let layout = Layout::new(dir.path().join("artifacts"));
    leadflow_data::run(&raw, &layout, &Params::default()).unwrap();
    let mean = visits.iter().sum::<f64>() / 10.0;
    let std = (visits.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 9.0).sqrt();
    let cap = mean + 2.0 * std;
    assert!(cap < 100.0);
    let outl = std::fs::read_to_string(layout.path(&art::OUTLIER_SUMMARY)).unwrap();
    let row: Vec<f64> = outl.lines().find(|l| l.starts_with("n_visits,")).unwrap().split(',').skip(1).map(|v| v.parse().unwrap()).collect();
    let (count, max) = (row[0], row[4]);
    assert_eq!(count, 10.0);
    assert!((max - cap).abs() < 1e-9, "max after clipping {max}, expected the cap {cap}");
    let pre: leadflow_features::Preprocessing = art::read_json(&layout.path(&art::PREPROCESSING), "pre").unwrap();
    let t = pre.continuous.iter().find(|t| t.name == "n_visits").unwrap();
    assert!((t.clip_upper - cap).abs() < 1e-9 && (t.clip_lower - (mean - 2.0 * std)).abs() < 1e-9);
}

#[test]
fn generator_is_deterministic_and_messy() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    leadflow_data::generate::generate(&a, 4000, 3).unwrap();
    leadflow_data::generate::generate(&b, 4000, 3).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let text = std::fs::read_to_string(&a).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(header, leadflow_data::generate::RAW_COLUMNS.join(","));
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4000);
    assert!(rows.iter().any(|r| r[1].is_empty()), "empty targets");
    assert!(rows.iter().any(|r| r[17].is_empty()), "missing customer_code");
    assert!(rows.iter().any(|r| r[2].len() == 9), "one-digit days");
    for s in ["li", "fb", "organic", "signup"] {
        assert!(rows.iter().any(|r| r[8] == s), "source {s}");
    }
    leadflow_data::generate::generate(&b, 4000, 4).unwrap();
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

/// Run the stage on `content` after a good run; expect an error containing every `needles`
/// and no change under artifacts/.
fn assert_rejected(content: impl AsRef<[u8]>, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("artifacts"));
    let good = sample(dir.path(), 600);
    leadflow_data::run(&good, &layout, &Params::default()).unwrap();
    let before = snapshot(layout.root());
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, content.as_ref()).unwrap();
    let err = leadflow_data::run(&bad, &layout, &Params::default()).unwrap_err().to_string();
    assert!(err.contains("bad.csv"), "error must name the file: {err}");
    for n in needles {
        assert!(err.contains(n), "error must mention {n:?}: {err}");
    }
    assert_eq!(before, snapshot(layout.root()), "artifacts changed after a failed run");
}

const HEADER: &str = "lead_id,lead_indicator,date_part,is_active,marketing_consent,first_booking,existing_customer,last_seen,source,domain,country,visited_learn_more_before_booking,visited_faq,purchases,time_spent,customer_group,onboarding,customer_code,n_visits";
const ROW: &str = "1,1,2024-01-5,0,true,2024-01-6,false,2024-01-7,signup,.dk,DK,1,2,5,100.5,3,True,ABCDEFGHIJ,9";

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = leadflow_data::run(&dir.path().join("nope.csv"), &Layout::new(dir.path()), &Params::default()).unwrap_err();
    assert!(err.to_string().contains("nope.csv") && err.to_string().contains("not found"), "{err}");
    assert!(!dir.path().join("data").exists());
}

#[test]
fn empty_file() {
    assert_rejected("", &["empty"]);
}

#[test]
fn header_only() {
    assert_rejected(format!("{HEADER}\n"), &["no data rows"]);
}

#[test]
fn missing_required_column() {
    let header = HEADER.replace(",n_visits", "");
    let row = ROW.rsplit_once(',').unwrap().0;
    assert_rejected(format!("{header}\n{row}\n"), &["`n_visits`", "missing"]);
}

#[test]
fn non_numeric_value() {
    let bad = ROW.replace(",100.5,", ",lots,");
    assert_rejected(format!("{HEADER}\n{ROW}\n{bad}\n"), &["line 3", "`time_spent`", "\"lots\"", "number"]);
}

#[test]
fn unparseable_date() {
    let bad = ROW.replace("2024-01-5", "2024-02-31");
    assert_rejected(format!("{HEADER}\n{bad}\n"), &["line 2", "date_part", "2024-02-31"]);
}

#[test]
fn target_other_than_0_1_empty() {
    let bad = ROW.replacen("1,1,", "1,yes,", 1);
    assert_rejected(format!("{HEADER}\n{ROW}\n{bad}\n"), &["line 3", "lead_indicator", "\"yes\""]);
}

/// 600 generated rows followed by `tail`; the generated rows are lines 2..=601.
fn generated_then(tail: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut content = std::fs::read(sample(dir.path(), 600)).unwrap();
    if !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    content.extend_from_slice(tail.as_bytes());
    content
}

#[test]
fn structural_faults_are_refused_with_their_line() {
    // A row with fewer or more fields than the header (polars would pad or drop them).
    let short = ROW.rsplitn(3, ',').nth(2).unwrap();
    assert_rejected(generated_then(&format!("{short}\n{ROW}\n")), &["line 602", "17 fields, header has 19"]);
    assert_rejected(generated_then(&format!("{ROW}\n{ROW},7\n")), &["line 603", "20 fields, header has 19"]);
    // A column named twice (polars would rename the second `purchases_duplicated_0`).
    let twice = HEADER.replace("n_visits", "purchases");
    assert_rejected(format!("{twice}\n{ROW}\n"), &["line 1", "column `purchases` appears twice in the header (columns 14 and 19)"]);
    // A quote that is never closed swallows the rest of the file in other readers.
    let open = ROW.replace(",signup,", ",\"signup,");
    assert_rejected(generated_then(&format!("{open}\n{ROW}\n{ROW}\n")), &["line 602", "quoted field", "never closed"]);
    // NUL bytes (binary or UTF-16 data), invalid UTF-8, a bare CR line ending.
    assert_rejected(generated_then(&ROW.replace("signup", "sig\0nup")), &["line 602", "NUL byte"]);
    let mut latin1 = generated_then(&format!("{ROW}\n"));
    let at = latin1.len() - 10;
    latin1[at] = 0xE9;
    assert_rejected(latin1, &["line 602", "not valid UTF-8", "0xE9"]);
    assert_rejected(generated_then(&format!("{ROW}\r{ROW}\n")), &["line 602", "bare carriage return"]);
    // A blank line: polars would read a row of empty values where the csv crate skips it.
    assert_rejected(generated_then(&format!("\n{ROW}\n")), &["line 602", "blank line"]);
}

#[test]
fn accepted_structure_variants_give_the_same_data_and_true_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let plain = format!("{HEADER}\n{ROW}\n{}\n{}\n", ROW.replacen("1,", "2,", 1), ROW.replacen("1,", "3,", 1));
    let run = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let layout = Layout::new(dir.path().join(name).with_extension("out"));
        leadflow_data::run(&p, &layout, &Params::default()).map(|_| std::fs::read(layout.path(&art::GOLD)).unwrap())
    };
    let want = run("plain.csv", plain.as_bytes()).unwrap();
    // Mixed LF / CRLF line endings, a UTF-8 byte-order mark: same gold data.
    let mixed = plain.replacen('\n', "\r\n", 2);
    assert_eq!(run("mixed.csv", mixed.as_bytes()).unwrap(), want);

    let bom = [b"\xEF\xBB\xBF".as_slice(), plain.as_bytes()].concat();
    assert_eq!(run("bom.csv", &bom).unwrap(), want);
    // A quoted field spanning two lines: the next row's error names its real line (5, not 4).
    let multiline = format!("{HEADER}\n{ROW}\n{}\n{}\n", ROW.replace(",ABCDEFGHIJ,", ",\"ABC\nDEF\","), ROW.replace(",100.5,", ",lots,"));
    let err = run("multi.csv", multiline.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("line 5, column `time_spent`"), "{err}");
}

#[test]
fn every_row_filtered_out() {
    let late = ROW.replace("2024-01-5", "2025-06-01");
    assert_rejected(format!("{HEADER}\n{late}\n"), &["filtered out", "date window"]);
    let other = ROW.replace(",signup,", ",fb,");
    assert_rejected(format!("{HEADER}\n{other}\n"), &["filtered out", "source"]);
}

#[test]
fn params_file_with_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("params.toml");
    std::fs::write(&p, "[dataset]\npreset = \"lead\"\n[dataset.processing]\noutliers = { sigma = -1 }\n").unwrap();
    let err = Params::load(&p).unwrap_err().to_string();
    assert!(err.contains("params.toml") && err.contains("dataset.processing.outliers"), "{err}");
    std::fs::write(&p, "[dataset]\npreset = \"lead\"\nsource_filterr = \"fb\"\n").unwrap();
    let err = leadflow_core::error::chain(&Params::load(&p).unwrap_err());
    assert!(err.contains("params.toml") && err.contains("source_filterr"), "{err}");
}

#[test]
fn binary_exits_non_zero_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("params.toml");
    std::fs::write(&bad, "[train]\ntest_size = 2\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow-data"))
        .args(["--params", bad.to_str().unwrap(), "--artifacts-dir", dir.path().join("a").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("train.test_size"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(!dir.path().join("a").exists());

    // A ragged row through the binary: non-zero exit, the file and line, nothing written.
    let raw = dir.path().join("ragged.csv");
    std::fs::write(&raw, format!("{HEADER}\n{ROW}\n1,2,3\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow-data"))
        .args(["--raw", raw.to_str().unwrap(), "--artifacts-dir", dir.path().join("a").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ragged.csv: line 3: 3 fields, header has 19"), "{stderr}");
    assert!(!dir.path().join("a").join("data").exists());
}

#[test]
fn the_saved_preprocessing_reproduces_every_gold_row_from_its_raw_row() {
    // One fitted object, applied everywhere: serving's `apply_raw` on each raw row must give the
    // gold row the data stage wrote (continuous values to 1e-12, categorical values exactly), on
    // rows with padded and missing values. If the two implementations diverge, this fails.
    let dir = tempfile::tempdir().unwrap();
    let raw = sample(dir.path(), 800);
    let text = std::fs::read_to_string(&raw).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let mut padded = vec![header];
    for (i, l) in lines.enumerate() {
        // Every third row gets spaces around its categorical values.
        padded.push(if i % 3 == 0 { l.replace(",signup,", ", signup ,").replace(",True,", ", True,") } else { l.to_string() });
    }
    std::fs::write(&raw, padded.join("\n") + "\n").unwrap();
    let layout = Layout::new(dir.path().join("artifacts"));
    leadflow_data::run(&raw, &layout, &Params::default()).unwrap();
    let pre: leadflow_features::Preprocessing = art::read_json(&layout.path(&art::PREPROCESSING), "pre").unwrap();
    // The raw cells as written, untrimmed (the generator writes no quoted fields).
    let raw_text = std::fs::read_to_string(&raw).unwrap();
    let mut raw_lines = raw_text.lines();
    let raw_header: Vec<&str> = raw_lines.next().unwrap().split(',').collect();
    let raw_rows: Vec<Vec<&str>> = raw_lines.map(|l| l.split(',').collect()).collect();
    assert!(raw_rows.iter().any(|r| r.contains(&" signup ")), "padded rows present");
    let raw_id = raw_header.iter().position(|h| *h == "lead_id").unwrap();
    let gold = leadflow_features::table::Table::read(&layout.path(&art::GOLD)).unwrap();
    let id = |t: &leadflow_features::table::Table| t.column_index("lead_id").unwrap();
    let by_id: std::collections::HashMap<&str, &Vec<&str>> = raw_rows.iter().map(|r| (r[raw_id], r)).collect();
    assert!(gold.rows.len() > 100);
    for g in &gold.rows {
        let r = by_id[g[id(&gold)].as_str()];
        let get = |c: &str| raw_header.iter().position(|h| *h == c).map(|j| r[j].to_string());
        let cleaned = pre.apply_raw(&get, "row").unwrap();
        for t in &pre.continuous {
            let want: f64 = g[gold.column_index(&t.name).unwrap()].parse().unwrap();
            let got: f64 = cleaned[&t.name].parse().unwrap();
            assert!((want - got).abs() < 1e-12, "lead {} {}: gold {want} vs apply_raw {got}", g[id(&gold)], t.name);
        }
        for c in pre.categorical.iter().map(|f| &f.name).chain(pre.derive.iter().map(|d| &d.name)) {
            assert_eq!(&cleaned[c], &g[gold.column_index(c).unwrap()], "lead {} column {c}", g[id(&gold)]);
        }
    }
}
