//! Batch scoring as a stream: chunk size and thread count do not change a byte of the output,
//! a Parquet copy of the input scores exactly as the CSV does, and a bad row anywhere leaves no
//! output behind.

use leadflow_serve::{InputKind, ModelDir, PredictOptions};

use crate::{quick, Env};

/// A Parquet copy of `csv` (pandas through pyarrow), row groups of `group_rows` rows.
fn parquet_copy(csv: &std::path::Path, out: &std::path::Path, group_rows: usize) -> Option<()> {
    leadflow_testkit::parquet_copy(csv, out, "", "", group_rows)
}

#[test]
fn chunks_threads_and_parquet_give_the_same_bytes() {
    let env = Env::deployed(&quick());
    let md = ModelDir::open(&env.layout().model_dir()).unwrap();
    let score = |input: &std::path::Path, name: &str, chunk_rows: usize, threads: usize, explain: bool| {
        let out = env.dir.path().join(name);
        let o = PredictOptions { kind: InputKind::Raw, explain, chunk_rows, threads };
        let mut seen = Vec::new();
        let s = leadflow_serve::predict_stream(&md, input, &out, &o, &mut |n| seen.push(n)).unwrap();
        assert_eq!(seen.last(), Some(&s.rows), "progress ends at the rows scored");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress only grows: {seen:?}");
        (std::fs::read(&out).unwrap(), s)
    };
    let (whole, s) = score(&env.raw, "whole.csv", usize::MAX, 1, true);
    assert_eq!(s.rows, 2500);
    for (chunk_rows, threads) in [(1, 3), (7, 2), (1000, 4)] {
        let (bytes, t) = score(&env.raw, &format!("c{chunk_rows}.csv"), chunk_rows, threads, true);
        assert!(bytes == whole, "chunks of {chunk_rows} on {threads} threads wrote other bytes");
        assert_eq!(t, s, "the same rows and input counts");
    }
    let pq = env.dir.path().join("raw.parquet");
    if parquet_copy(&env.raw, &pq, 300).is_none() {
        return;
    }
    let (bytes, t) = score(&pq, "pq.csv", 128, 2, true);
    assert!(bytes == whole, "the Parquet copy scored to other bytes");
    assert_eq!(t, s);
}

#[test]
fn a_bad_row_anywhere_leaves_no_output_and_names_its_place() {
    let env = Env::deployed(&quick());
    let md = ModelDir::open(&env.layout().model_dir()).unwrap();
    let text = std::fs::read_to_string(&env.raw).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == "time_spent").unwrap();
    // Line 2001 (row 2000) gets a word where a number belongs.
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 2000 {
                let mut f: Vec<&str> = l.split(',').collect();
                f[j] = "soon";
                f.join(",")
            } else {
                l.to_string()
            }
        })
        .collect();
    let bad = env.dir.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let out = env.dir.path().join("out.csv");
    let o = PredictOptions { kind: InputKind::Raw, chunk_rows: 100, threads: 2, ..Default::default() };
    let e = leadflow_serve::predict_stream(&md, &bad, &out, &o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("line 2001") && e.contains("time_spent") && e.contains("\"soon\""), "{e}");
    assert!(!out.exists(), "nothing written");
    assert_eq!(
        std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".tmp"))
            .count(),
        0
    );
    // The same row of a Parquet file (string column) is named by its row and row group.
    let pq = env.dir.path().join("bad.parquet");
    if parquet_copy(&bad, &pq, 512).is_none() {
        return;
    }
    let e = leadflow_serve::predict_stream(&md, &pq, &out, &o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("row 2000 (row group 4)") && e.contains("time_spent"), "{e}");
    assert!(!out.exists());
}
