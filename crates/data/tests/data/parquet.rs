//! Parquet input: a Parquet copy of the real lead file (written by pandas through pyarrow, with
//! dates as text and as parsed timestamps) gives the gold CSV and every fitted artifact
//! byte for byte as the CSV does; a type problem names the row and its row group.

use leadflow_core::artifacts::Layout;
use leadflow_core::Params;
use leadflow_testkit::{parquet_copy, real_data};

#[test]
fn a_parquet_copy_gives_byte_identical_gold() {
    let Some(raw) = real_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let from_csv = Layout::new(dir.path().join("csv"));
    leadflow_data::run(&raw, &from_csv, &Params::default()).unwrap();
    let files_of = |l: &Layout| -> std::collections::BTreeMap<std::path::PathBuf, String> {
        let root = l.root().join("data");
        leadflow_testkit::snapshot(&root).into_iter().map(|(p, h)| (p.strip_prefix(&root).unwrap().to_path_buf(), h)).collect()
    };
    let csv_files = files_of(&from_csv);
    assert!(csv_files.len() >= 10, "{csv_files:?}");
    for (name, args) in [("text_dates", ""), ("parsed_dates", ", parse_dates=['date_part', 'first_booking', 'last_seen']")] {
        let pq = dir.path().join(format!("{name}.parquet"));
        if parquet_copy(&raw, &pq, args, "", 5000).is_none() {
            return;
        }
        let layout = Layout::new(dir.path().join(name));
        leadflow_data::run(&pq, &layout, &Params::default()).unwrap();
        let files = files_of(&layout);
        for (file, hash) in &csv_files {
            // The run record and fingerprint name the input file and its hash: those differ.
            let f = file.to_string_lossy();
            if f.ends_with("run.json") || f.ends_with("fingerprint.json") {
                continue;
            }
            assert_eq!(files.get(file), Some(hash), "{name}: {f} differs from the CSV run's");
        }
    }
}

#[test]
fn a_type_problem_in_parquet_names_the_row_and_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let csv = crate::sample(dir.path(), 12_000);
    let pq = dir.path().join("raw.parquet");
    // Row 10,001 (row group 3 of 5,000-row groups) gets a word in a numeric column.
    let word = "d['time_spent'] = d['time_spent'].astype(str); d.loc[10000, 'time_spent'] = 'soon'";
    if parquet_copy(&csv, &pq, "", word, 5000).is_none() {
        return;
    }
    let layout = Layout::new(dir.path().join("a"));
    let e = leadflow_data::run(&pq, &layout, &Params::default()).unwrap_err().to_string();
    assert!(e.contains("row 10001 (row group 3), column `time_spent`: expected a number, found \"soon\""), "{e}");
    assert!(!layout.root().join("data").exists(), "nothing written");
    // The same checks as a CSV's: validate lists it too.
    let report = leadflow_data::validate(&pq, &Params::default()).unwrap_err().to_string();
    assert!(report.contains("row 10001 (row group 3)"), "{report}");
}
