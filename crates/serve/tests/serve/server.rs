//! `leadflow model serve`: every input format scores like `predict`, every bad request gets a
//! 4xx naming the problem, malformed bodies never crash it, a champion swap under concurrent
//! load fails no request, a version that fails to load is refused (SIGTERM draining is tested on the `leadflow` binary).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leadflow_core::artifacts as art;
use leadflow_features::table::Table;
use leadflow_serve::server::{self, ModelSource, ServeOptions, Server};
use serde_json::{json, Value};

use super::{quick, Env};

/// An in-process server on a free port of 127.0.0.1; returns its base URL and state.
pub(crate) fn start(opts: ServeOptions, store: Option<Arc<dyn leadflow_mlflow::Store>>, cache: &Path) -> (String, Arc<Server>) {
    let loaded = server::load(&opts.source, store.as_deref(), cache).unwrap();
    let srv = Server::new(loaded, opts);
    let (tx, rx) = std::sync::mpsc::channel();
    let (s, cache) = (srv.clone(), cache.to_path_buf());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            server::serve(l, s, store, cache).await.unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), srv)
}

pub(crate) fn post(url: &str, content_type: &str, body: &str) -> (u16, Value) {
    match ureq::post(&format!("{url}/invocations")).set("Content-Type", content_type).timeout(Duration::from_secs(30)).send_string(body) {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

/// The first `n` rows of a CSV as (header, rows of text).
pub(crate) fn head(path: &Path, n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let t = Table::read(path).unwrap();
    (t.header.clone(), t.rows.into_iter().take(n).collect())
}

/// JSON cells the way a client would send them: numbers as numbers, empty as null.
fn typed(v: &str) -> Value {
    if v.is_empty() {
        Value::Null
    } else if let Ok(x) = v.parse::<i64>() {
        json!(x)
    } else if let Ok(x) = v.parse::<f64>() {
        json!(x)
    } else {
        json!(v)
    }
}

fn probabilities(answer: &Value) -> Vec<f64> {
    answer["predictions"].as_array().unwrap().iter().map(|r| r["probability"].as_f64().unwrap()).collect()
}

#[test]
fn every_input_format_scores_like_predict() {
    let params = quick();
    let env = Env::deployed(&params);
    let (url, _) = start(ServeOptions::new(ModelSource::Dir(env.layout().model_dir())), None, env.dir.path());
    let n = 40;
    let (header, rows) = head(&env.raw, n);
    let part = env.dir.path().join("part.csv");
    let csv_body = std::iter::once(header.join(","))
        .chain(
            rows.iter()
                .map(|r| r.iter().map(|v| if v.contains(',') { format!("\"{v}\"") } else { v.clone() }).collect::<Vec<_>>().join(",")),
        )
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&part, &csv_body).unwrap();
    let out = env.dir.path().join("scores.csv");
    leadflow_serve::predict(&env.layout().model_dir(), &part, &out, leadflow_serve::InputKind::Auto).unwrap();
    let scores = Table::read(&out).unwrap();
    let (pc, lc) = (scores.column_index("probability").unwrap(), scores.column_index("label").unwrap());
    let want: Vec<f64> = scores.rows.iter().map(|r| r[pc].parse().unwrap()).collect();
    let labels: Vec<u64> = scores.rows.iter().map(|r| r[lc].parse().unwrap()).collect();

    let records: Vec<Value> =
        rows.iter().map(|r| Value::Object(header.iter().cloned().zip(r.iter().map(|v| typed(v))).collect())).collect();
    let columns: serde_json::Map<String, Value> =
        header.iter().enumerate().map(|(j, h)| (h.clone(), Value::Array(rows.iter().map(|r| typed(&r[j])).collect()))).collect();
    let bodies = [
        ("dataframe_split", "application/json", json!({"dataframe_split": {"columns": header, "data": rows.iter().map(|r| r.iter().map(|v| typed(v)).collect::<Vec<_>>()).collect::<Vec<_>>()}}).to_string()),
        ("dataframe_records", "application/json", json!({ "dataframe_records": records }).to_string()),
        ("instances", "application/json", json!({ "instances": records }).to_string()),
        ("inputs (columns)", "application/json", json!({ "inputs": columns }).to_string()),
        ("inputs (records)", "application/json", json!({ "inputs": records }).to_string()),
        ("csv", "text/csv", csv_body.clone()),
        // Every number as a float (2.0 for the customer_group code 2), as pandas would send it.
        ("floats", "application/json", json!({"dataframe_split": {"columns": header, "data": rows.iter().map(|r| r.iter().map(|v| match v.parse::<f64>() { Ok(x) if !v.is_empty() => json!(x), _ => typed(v) }).collect::<Vec<_>>()).collect::<Vec<_>>()}}).to_string()),
    ];
    for (what, ct, body) in bodies {
        let (status, answer) = post(&url, ct, &body);
        assert_eq!(status, 200, "{what}: {answer}");
        let got = probabilities(&answer);
        assert_eq!(got.len(), n, "{what}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-12, "{what}, row {}: {g} vs predict {w}", i + 1);
            assert_eq!(answer["predictions"][i]["label"].as_u64(), Some(labels[i]), "{what}, row {}", i + 1);
        }
    }
    // Encoded feature rows (X_test.csv shape), like predict.
    let (xh, xr) = head(&env.layout().path(&art::X_TEST), 5);
    let body = json!({"dataframe_split": {"columns": xh, "data": xr.iter().map(|r| r.iter().map(|v| typed(v)).collect::<Vec<_>>()).collect::<Vec<_>>()}});
    let (status, answer) = post(&url, "application/json", &body.to_string());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(probabilities(&answer).len(), 5);
    // /ping, /health, /version, /metrics.
    for path in ["/ping", "/health"] {
        assert_eq!(ureq::get(&format!("{url}{path}")).call().unwrap().status(), 200);
    }
    let version: Value = ureq::get(&format!("{url}/version")).call().unwrap().into_json().unwrap();
    assert_eq!(version["model_name"], "lead_model");
    assert_eq!(version["features"].as_array().unwrap().len(), xh.len());
    let metrics = ureq::get(&format!("{url}/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("leadflow_requests_total 8\n"), "{metrics}");
    assert!(metrics.contains(&format!("leadflow_rows_scored_total {}\n", 7 * n + 5)), "{metrics}");
    assert!(metrics.contains("leadflow_request_duration_seconds_bucket{le=\"+Inf\"} 8\n"), "{metrics}");
}

#[test]
fn bad_requests_get_a_4xx_naming_the_problem_and_never_crash_it() {
    let params = quick();
    let env = Env::deployed(&params);
    let mut opts = ServeOptions::new(ModelSource::Dir(env.layout().model_dir()));
    opts.max_rows = 3;
    opts.max_body_bytes = 4096;
    let (url, _) = start(opts, None, env.dir.path());
    let (header, rows) = head(&env.raw, 2);
    let split = |rows: &[Vec<String>]| json!({"dataframe_split": {"columns": header, "data": rows}}).to_string();
    let mut wrong_type = rows.clone();
    wrong_type[1][header.iter().position(|h| h == "purchases").unwrap()] = "lots".into();
    let missing_col = json!({"dataframe_records": [{"purchases": 1}]}).to_string();
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("malformed JSON", "application/json", "{\"dataframe_split\": ".into(), 400, "malformed JSON"),
        ("no known format", "application/json", json!({"rows": []}).to_string(), 400, "exactly one of dataframe_split"),
        ("missing columns", "application/json", missing_col, 400, "time_spent"),
        ("wrong type", "application/json", split(&wrong_type), 400, "column `purchases`: expected a number, found \"lots\""),
        (
            "too many rows",
            "application/json",
            split(&[rows[0].clone(), rows[0].clone(), rows[0].clone(), rows[0].clone()]),
            400,
            "at most 3",
        ),
        ("ragged row", "application/json", json!({"dataframe_split": {"columns": header, "data": [["1"]]}}).to_string(), 400, "values for"),
        ("unsupported type", "application/xml", "<a/>".into(), 400, "unsupported content type"),
        ("no rows", "application/json", split(&[]), 400, "no rows"),
        ("body over the limit", "application/json", format!("{{\"x\": \"{}\"}}", "a".repeat(8192)), 413, ""),
    ];
    for (what, ct, body, want, says) in cases {
        let (status, answer) = post(&url, ct, &body);
        assert_eq!(status, want, "{what}: {answer}");
        if !says.is_empty() {
            let msg = answer["message"].as_str().unwrap_or_default();
            assert!(msg.contains(says), "{what}: {msg}");
            assert_eq!(answer["error_code"], "BAD_REQUEST");
        }
    }
    // Fuzz-ish: random bytes and truncated valid bodies; every answer is a 4xx, and the server
    // still scores afterwards.
    let good = split(&rows);
    let mut seed = 7u64;
    for i in 0..300 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let body: String = if i % 2 == 0 {
            (0..(seed % 300) as usize).map(|k| char::from(b' ' + ((seed >> (k % 50)) as u8 % 94))).collect()
        } else {
            good[..(seed as usize % good.len())].to_string()
        };
        let (status, _) = post(&url, if i % 3 == 0 { "text/csv" } else { "application/json" }, &body);
        assert!((400..500).contains(&status), "body {i} got {status}: {body:?}");
    }
    assert_eq!(post(&url, "application/json", &good).0, 200);
}

#[test]
fn a_champion_swap_under_load_fails_no_request_and_a_broken_version_is_refused() {
    let params = quick();
    let env = Env::deployed(&params);
    let store: Arc<dyn leadflow_mlflow::Store> = Arc::new(env.store());
    let v1 = store.get_by_alias("lead_model", "challenger").unwrap().unwrap().version;
    let mut opts = ServeOptions::new(ModelSource::Registry { name: "lead_model".into(), alias: "challenger".into() });
    opts.poll = Duration::from_millis(100);
    let (url, srv) = start(opts, Some(store.clone()), env.dir.path());
    assert_eq!(srv.version(), Some(v1));
    let (header, rows) = head(&env.raw, 20);
    let body = json!({"dataframe_split": {"columns": header, "data": rows}}).to_string();

    // Four clients score continuously while the alias moves to a new version.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, body, stop, ok, failed) = (url.clone(), body.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, answer) = post(&url, "application/json", &body);
                    if status == 200 && answer["predictions"].as_array().is_some_and(|p| p.len() == 20) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    leadflow_testkit::choose_other_model(&env.layout(), &env.store());
    let d = env.deploy(&params).unwrap();
    let v2 = d.version.unwrap();
    assert_ne!(v2, v1);
    let started = Instant::now();
    while srv.version() != Some(v2) {
        assert!(started.elapsed() < Duration::from_secs(20), "the server never swapped to v{v2}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during the swap");
    assert!(ok.load(Ordering::Relaxed) > 20, "the clients scored ({} requests)", ok.load(Ordering::Relaxed));
    let version: Value = ureq::get(&format!("{url}/version")).call().unwrap().into_json().unwrap();
    assert_eq!(version["version"].as_u64(), Some(v2));

    // A version whose files are gone is refused; v2 keeps serving.
    let empty = env.dir.path().join("empty-model");
    std::fs::create_dir_all(&empty).unwrap();
    let (bad, _) = store.register_version("lead_model", &empty.display().to_string(), "no-such-run", &[]).unwrap();
    store.set_alias("lead_model", "challenger", bad.version).unwrap();
    let started = Instant::now();
    loop {
        let metrics = ureq::get(&format!("{url}/metrics")).call().unwrap().into_string().unwrap();
        if metrics.contains("leadflow_model_versions_refused_total 1\n") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the broken version was not refused: {metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(srv.version(), Some(v2));
    assert_eq!(post(&url, "application/json", &body).0, 200);
}

/// Scaled out: three replicas follow one alias of one registry (each with its own download
/// cache, as behind a load balancer); once the alias moves, every replica serves the new version
/// within the poll interval plus its own load.
#[test]
fn three_replicas_on_one_registry_converge_on_a_new_version() {
    let params = quick();
    let env = Env::deployed(&params);
    let store: Arc<dyn leadflow_mlflow::Store> = Arc::new(env.store());
    let v1 = store.get_by_alias("lead_model", "challenger").unwrap().unwrap().version;
    let poll = Duration::from_millis(250);
    let replicas: Vec<(String, Arc<Server>)> = (0..3)
        .map(|i| {
            let cache = env.dir.path().join(format!("replica-{i}"));
            std::fs::create_dir_all(&cache).unwrap();
            let mut opts = ServeOptions::new(ModelSource::Registry { name: "lead_model".into(), alias: "challenger".into() });
            opts.poll = poll;
            start(opts, Some(store.clone()), &cache)
        })
        .collect();
    assert!(replicas.iter().all(|(_, s)| s.version() == Some(v1)));
    leadflow_testkit::choose_other_model(&env.layout(), &env.store());
    let moved = Instant::now();
    let v2 = env.deploy(&params).unwrap().version.unwrap();
    assert_ne!(v2, v1);
    let mut swapped = vec![None; replicas.len()];
    while swapped.iter().any(Option::is_none) {
        for (i, (_, s)) in replicas.iter().enumerate() {
            if swapped[i].is_none() && s.version() == Some(v2) {
                swapped[i] = Some(moved.elapsed());
            }
        }
        assert!(moved.elapsed() < Duration::from_secs(30), "replicas never all swapped to v{v2}: {swapped:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let slowest = swapped.iter().flatten().max().copied().unwrap();
    eprintln!("replicas on v{v2} after {swapped:?} (poll {poll:?})");
    // The deploy itself (registration, model files) is inside `moved`, so the bound is loose
    // by that much: a poll interval, one load, and the deploy.
    assert!(slowest < poll + Duration::from_secs(10), "{swapped:?}");
    for (url, _) in &replicas {
        let version: Value = ureq::get(&format!("{url}/version")).call().unwrap().into_json().unwrap();
        assert_eq!(version["version"].as_u64(), Some(v2), "{url}");
    }
}
