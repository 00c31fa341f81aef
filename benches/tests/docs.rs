//! The benchmark tables in the docs are what the benches wrote: each is rendered again from the
//! figures the bench saved (`benches/results/`) and must match the doc's block exactly.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::path::Path;

fn repo(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)).unwrap()
}

#[test]
fn the_pipeline_table_is_the_one_the_bench_wrote() {
    let run: serde_json::Value = serde_json::from_str(&repo(leadflow_bench::pipeline::RESULTS)).unwrap();
    let doc = repo("docs/benchmarks.md");
    let block = leadflow_bench::block(&doc, "pipeline").expect("docs/benchmarks.md has the pipeline block");
    assert_eq!(block, format!("\n{}", leadflow_bench::pipeline::table(&run)), "rerun `leadflow-bench --docs docs/benchmarks.md`");
    // Every input the bench ran has both sides and a ratio on the end-to-end line.
    let figures = run["figures"].as_array().unwrap();
    assert!(figures.len() >= 3, "1x, 10x and 100x");
    let end_to_end = block.lines().find(|l| l.starts_with("| end to end |")).unwrap();
    assert_eq!(end_to_end.matches('x').count(), figures.len(), "{end_to_end}");
}

#[test]
fn the_serving_table_is_the_one_the_bench_wrote() {
    let run: serde_json::Value = serde_json::from_str(&repo(leadflow_bench::serving::RESULTS)).unwrap();
    let doc = repo("docs/serving.md");
    let block = leadflow_bench::block(&doc, "serving").expect("docs/serving.md has the serving block");
    assert_eq!(block, format!("\n{}", leadflow_bench::serving::table(&run)), "rerun `leadflow-serve-bench --docs docs/serving.md`");
    assert!(block.contains("mlflow models serve"), "the baseline ran");
}

#[test]
fn the_options_table_is_the_one_the_bench_wrote() {
    let run: serde_json::Value = serde_json::from_str(&repo(leadflow_bench::options::RESULTS)).unwrap();
    let doc = repo("docs/benchmarks.md");
    let block = leadflow_bench::block(&doc, "options").expect("docs/benchmarks.md has the options block");
    assert_eq!(block, format!("\n{}", leadflow_bench::options::table(&run)), "rerun `leadflow-options-bench --docs docs/benchmarks.md`");
    let inputs = run["inputs"].as_array().unwrap();
    assert!(inputs.len() >= 2, "1x and 100x");
    assert!(block.contains("calibration") && block.contains("max_f1") && block.contains("cost"), "{block}");
}

#[test]
fn the_predict_table_is_the_one_the_bench_wrote() {
    let run: serde_json::Value = serde_json::from_str(&repo(leadflow_bench::predict::RESULTS)).unwrap();
    let doc = repo("docs/benchmarks.md");
    let block = leadflow_bench::block(&doc, "predict").expect("docs/benchmarks.md has the predict block");
    assert_eq!(
        block,
        format!("\n{}", leadflow_bench::predict::table(&run)),
        "rerun `leadflow-predict-bench --scales 1,100,1000 --docs docs/benchmarks.md`"
    );
    let inputs = run["inputs"].as_array().unwrap();
    assert!(inputs.len() >= 3, "1x, 100x and 1000x");
    // Both sides gave the same predictions at every size.
    assert!(inputs.iter().all(|i| i["agree"].as_str().unwrap().starts_with("yes")), "{block}");
}
