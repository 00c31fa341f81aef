//! The prediction log: every (sampled) scored row with the raw inputs and the prediction,
//! rotated at its size, and read back by the drift check.

use std::time::{Duration, Instant};

use leadflow_core::Params;
use leadflow_features::table::Table;
use leadflow_serve::server::{LogOptions, ModelSource, PredictionLog, ServeOptions};
use serde_json::json;

use super::server::{head, post, start};
use super::{quick, Env};

fn log_rows(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count().saturating_sub(1)).unwrap_or(0)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn scored_rows_are_logged_as_predict_scores_them_and_read_by_the_drift_check() {
    let env = Env::deployed(&quick());
    let (url, srv) = start(ServeOptions::new(ModelSource::Dir(env.layout().model_dir())), None, env.dir.path());
    let path = env.dir.path().join("logs/predictions.csv");
    assert!(srv.attach_log(PredictionLog::start(LogOptions { path: path.clone(), sample: 1.0, max_bytes: 1 << 20, keep: 2 }).unwrap()));
    let (header, rows) = head(&env.raw, 400);
    for chunk in rows.chunks(50) {
        let (status, answer) = post(&url, "application/json", &json!({"dataframe_split": {"columns": header, "data": chunk}}).to_string());
        assert_eq!(status, 200, "{answer}");
    }
    wait_for("400 rows logged", || log_rows(&path) == 400);
    let log = Table::read(&path).unwrap();
    assert_eq!(&log.header[..2], ["timestamp", "model_version"]);
    assert!(log.header.ends_with(&["probability".to_string(), "label".to_string()]), "{:?}", log.header);
    // The logged probabilities are the ones `predict` gives for the same rows.
    let part = env.dir.path().join("part.csv");
    let body: String = std::iter::once(header.join(",")).chain(rows.iter().map(|r| r.join(","))).map(|l| l + "\n").collect();
    std::fs::write(&part, body).unwrap();
    let scored = env.dir.path().join("scored.csv");
    leadflow_serve::predict(&env.layout().model_dir(), &part, &scored, leadflow_serve::InputKind::Raw).unwrap();
    let want = Table::read(&scored).unwrap();
    let (pw, pl) = (want.column_index("probability").unwrap(), log.column_index("probability").unwrap());
    for (a, b) in want.rows.iter().zip(&log.rows) {
        assert_eq!(a[pw].parse::<f64>().unwrap(), b[pl].parse::<f64>().unwrap());
    }
    // The log is a batch the drift check reads.
    let report = leadflow_serve::drift::check(&env.layout().model_dir(), &path, &Params::default().drift).unwrap();
    assert_eq!(report.rows_batch + report.rows_left_out, 400);
    let metrics = ureq::get(&format!("{url}/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("leadflow_prediction_log_rows_total 400\n"), "{metrics}");
}

#[test]
fn a_sample_rate_logs_that_share_and_the_size_limit_rotates() {
    let env = Env::deployed(&quick());
    let (url, srv) = start(ServeOptions::new(ModelSource::Dir(env.layout().model_dir())), None, env.dir.path());
    let path = env.dir.path().join("p.csv");
    assert!(srv.attach_log(PredictionLog::start(LogOptions { path: path.clone(), sample: 0.5, max_bytes: 2048, keep: 2 }).unwrap()));
    let (header, rows) = head(&env.raw, 200);
    for chunk in rows.chunks(20) {
        assert_eq!(post(&url, "application/json", &json!({"dataframe_split": {"columns": header, "data": chunk}}).to_string()).0, 200);
    }
    let rotated = |i: usize| std::path::PathBuf::from(format!("{}.{i}", path.display()));
    let total = || log_rows(&path) + log_rows(&rotated(1)) + log_rows(&rotated(2));
    // Half of 200 rows; at 2 KiB a file, the oldest beyond FILE.2 are gone.
    wait_for("the writer caught up", || {
        let m = ureq::get(&format!("{url}/metrics")).call().unwrap().into_string().unwrap();
        m.contains("leadflow_prediction_log_rows_total 100\n")
    });
    assert!(rotated(1).is_file() && rotated(2).is_file() && !rotated(3).exists());
    for f in [path.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len <= 2048, "{} is {len} bytes", f.display());
        assert!(std::fs::read_to_string(&f).unwrap().starts_with("timestamp,model_version,"), "each file has the header");
    }
    assert!(total() < 100, "older rows were rotated away ({} kept)", total());
    // Encoded rows carry no raw inputs: not logged, counted.
    let (xh, xr) = head(&env.layout().path(&leadflow_core::artifacts::X_TEST), 3);
    assert_eq!(post(&url, "application/json", &json!({"dataframe_split": {"columns": xh, "data": xr}}).to_string()).0, 200);
    let m = ureq::get(&format!("{url}/metrics")).call().unwrap().into_string().unwrap();
    assert!(m.contains("leadflow_prediction_log_skipped_total 1\n"), "{m}");
}
