//! Every registered version is an MLflow model: the real MLflow client (the pinned release, in
//! the test venv) loads it through `models:/name@alias`, `models:/name/Stage`, `runs:/id/model`
//! and the exported directory, and predicts what `leadflow-deploy predict` predicts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::model::ModelKind;
use leadflow_core::params::Stage;
use leadflow_core::results::Deployment;
use leadflow_core::Params;
use leadflow_mlflow::tracking::StoreLocation;
use orchestrator::local;

use super::{mlflow, options, ENV_LOCK};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/orchestrator/mlflow_load.py")
}

/// The embedded store of a test: the default kind, SQLite.
fn db(dir: &Path) -> PathBuf {
    dir.join("mlruns").join("mlflow.db")
}

/// A pipeline whose promoted model is `kind`, registered in Production (alias `champion`).
fn run(dir: &Path, raw: &Path, mut params: Params, kind: ModelKind) -> (Layout, Deployment) {
    params.train.xgboost.enabled = kind == ModelKind::Xgboost;
    params.train.logistic.enabled = kind == ModelKind::Logistic;
    params.train.xgboost.n_candidates = params.train.xgboost.n_candidates.min(2);
    params.train.xgboost.cv_folds = params.train.xgboost.cv_folds.min(3);
    params.train.xgboost.n_estimators = params.train.xgboost.n_estimators.min(20);
    params.deploy.stage = Stage::Production;
    params.evaluate.min_accuracy = 0.0;
    let mut opts = options(dir, raw);
    opts.tracking = StoreLocation::Sqlite(db(dir));
    local::run(&opts, &params).unwrap();
    let layout = Layout::new(&opts.artifacts_dir);
    let d: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "d").unwrap();
    assert!(d.promoted && d.kind == kind, "{d:?}");
    (layout, d)
}

/// `leadflow-deploy predict` on `raw`, column by column (`row` and the id left out).
fn ours(layout: &Layout, raw: &Path, out: &Path) -> Vec<(String, Vec<String>)> {
    leadflow_serve::predict(&layout.model_dir(), raw, out, leadflow_serve::InputKind::Raw).unwrap();
    let t = leadflow_features::table::Table::read(out).unwrap();
    let pre: leadflow_features::Preprocessing = art::read_json(&layout.path(&art::PREPROCESSING), "p").unwrap();
    t.header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.as_str() != "row" && Some(h.as_str()) != pre.id.as_deref())
        .map(|(j, h)| (h.clone(), t.rows.iter().map(|r| r[j].clone()).collect()))
        .collect()
}

fn assert_same(what: &str, ours: &[(String, Vec<String>)], theirs: &serde_json::Value) {
    let columns: Vec<&str> = theirs["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let mut want: Vec<&str> = ours.iter().map(|(c, _)| c.as_str()).collect();
    let mut got = columns.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "{what}: output columns");
    for (col, values) in ours {
        let pred = theirs["predictions"][col].as_array().unwrap();
        assert_eq!(pred.len(), values.len(), "{what}: rows of {col}");
        for (i, (g, w)) in pred.iter().zip(values).enumerate() {
            match g {
                serde_json::Value::String(s) => assert_eq!(s, w, "{what}: {col}, row {}", i + 1),
                serde_json::Value::Number(n) => {
                    let (g, w) = (n.as_f64().unwrap(), w.parse::<f64>().unwrap());
                    assert!((g - w).abs() <= 1e-6, "{what}: {col}, row {}: MLflow {g}, leadflow {w}", i + 1);
                }
                other => panic!("{what}: {col}, row {}: unexpected {other}", i + 1),
            }
        }
    }
}

/// Load every URI of one registered model with MLflow and compare with our predictions.
fn check(python: &Path, dir: &Path, layout: &Layout, d: &Deployment, raw: &Path) {
    let name = &d.model_name;
    let run_id = d.run_id.as_deref().unwrap();
    let uris = [
        format!("models:/{name}@champion"),
        format!("models:/{name}/Production"),
        format!("runs:/{run_id}/model"),
        layout.model_dir().display().to_string(),
    ];
    let tracking = StoreLocation::sqlite_uri(&db(dir));
    let out = std::process::Command::new(python)
        .arg(script())
        .args([&tracking, raw.to_str().unwrap(), layout.path(&art::X_TEST).to_str().unwrap()])
        .args(&uris)
        .env_remove("MLFLOW_ALLOW_FILE_STORE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = out.stdout.rsplit(|b| *b == b'\n').find(|l| l.starts_with(b"{")).unwrap();
    let got: serde_json::Value = serde_json::from_slice(line).unwrap();
    let want = ours(layout, raw, &dir.join("ours.csv"));
    let pre: leadflow_features::Preprocessing = art::read_json(&layout.path(&art::PREPROCESSING), "p").unwrap();
    let inputs: Vec<&str> = pre.raw_inputs();
    for uri in &uris {
        let g = &got[uri];
        let what = format!("{name} ({}) via {uri}", d.kind.name());
        assert_same(&what, &want, g);
        let signature: Vec<&str> = g["inputs"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(signature, inputs, "{what}: signature inputs");
        let flavors: Vec<&str> = g["flavors"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        match d.kind {
            ModelKind::Xgboost => {
                assert_eq!(flavors, ["python_function", "xgboost"], "{what}");
                // MLflow's own xgboost flavour on the encoded test rows = our model.
                let x = leadflow_features::table::Table::read(&layout.path(&art::X_TEST)).unwrap();
                let features: Vec<String> = art::read_json(&layout.path(&art::COLUMNS_LIST), "c").unwrap();
                let m = leadflow_model::Model::load(ModelKind::Xgboost, &layout.path(&ModelKind::Xgboost.artifact())).unwrap();
                let p = m.predict(&x.matrix(&layout.path(&art::X_TEST), &features).unwrap()).unwrap();
                let flavor = numbers(&g["xgboost_flavor"]);
                assert_eq!(flavor.len(), p.len(), "{what}");
                for (a, b) in flavor.iter().zip(&p) {
                    assert!((a - b).abs() < 1e-6, "{what}: xgboost flavour {a} vs {b}");
                }
            }
            _ => assert_eq!(flavors, ["python_function"], "{what}"),
        }
    }
}

/// Numbers, or rows of numbers (multiclass), in row order.
fn numbers(v: &serde_json::Value) -> Vec<f64> {
    let mut out = Vec::new();
    for x in v.as_array().unwrap() {
        match x {
            serde_json::Value::Array(a) => out.extend(a.iter().map(|x| x.as_f64().unwrap())),
            x => out.push(x.as_f64().unwrap()),
        }
    }
    out
}

#[test]
fn mlflow_loads_every_kind_of_registered_model_and_predicts_like_leadflow() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = mlflow() else { return };
    let python = bin.parent().unwrap().join("python");
    let lead = leadflow_testkit::committed_sample();
    let wine = example("wine/wine.csv");
    let churn = example("churn/customers.csv");
    let example_params = |name: &str| Params::load(&example(name).join("params.toml")).unwrap();
    let cases = [
        ("lead, binary, one-hot", lead.clone(), leadflow_testkit::quick_params(), ModelKind::Xgboost),
        ("lead, binary, one-hot", lead, leadflow_testkit::quick_params(), ModelKind::Logistic),
        ("wine, 3 classes", wine.clone(), example_params("wine"), ModelKind::Xgboost),
        ("wine, 3 classes", wine, example_params("wine"), ModelKind::Logistic),
        ("churn, binary, ordinal, standard scaling, gaps", churn, example_params("churn"), ModelKind::Xgboost),
    ];
    for (what, raw, params, kind) in cases {
        eprintln!("{what}: {}", kind.name());
        let dir = tempfile::tempdir().unwrap();
        let (layout, d) = run(dir.path(), &raw, params, kind);
        check(&python, dir.path(), &layout, &d, &raw);
    }
}

/// The first `n` raw rows as MLflow's `dataframe_split`, typed as the signature says.
fn dataframe_split(layout: &Layout, raw: &Path, n: usize) -> serde_json::Value {
    let model = std::fs::read_to_string(layout.model_dir().join("MLmodel")).unwrap();
    let doc = &yaml_rust2::YamlLoader::load_from_str(&model).unwrap()[0];
    let inputs: Vec<serde_json::Value> = serde_json::from_str(doc["signature"]["inputs"].as_str().unwrap()).unwrap();
    let t = leadflow_features::table::Table::read(raw).unwrap();
    let columns: Vec<&str> = inputs.iter().map(|c| c["name"].as_str().unwrap()).collect();
    let data: Vec<Vec<serde_json::Value>> = t.rows[..n]
        .iter()
        .map(|row| {
            inputs
                .iter()
                .map(|c| {
                    let v = row[t.column_index(c["name"].as_str().unwrap()).unwrap()].trim();
                    match (c["type"].as_str().unwrap(), v) {
                        (_, "") => serde_json::Value::Null,
                        ("double", v) => serde_json::json!(v.parse::<f64>().unwrap()),
                        ("boolean", v) => serde_json::json!(v.eq_ignore_ascii_case("true")),
                        (_, v) => serde_json::json!(v),
                    }
                })
                .collect()
        })
        .collect();
    serde_json::json!({ "dataframe_split": { "columns": columns, "data": data } })
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).unwrap()
}

/// `mlflow models serve` on `uri`, stopped on drop.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = std::process::Command::new("pkill").args(["-TERM", "-P", &pid]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_live_mlflow_server_hands_our_model_to_the_mlflow_client_and_to_models_serve() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = mlflow() else { return };
    let python = bin.parent().unwrap().join("python");
    let server = super::MlflowServer::start(&bin);
    let dir = tempfile::tempdir().unwrap();
    let raw = leadflow_testkit::committed_sample();
    let mut params = leadflow_testkit::quick_params();
    params.deploy.stage = Stage::Production;
    let mut opts = options(dir.path(), &raw);
    opts.tracking = leadflow_mlflow::tracking::StoreLocation::Remote(server.url.clone());
    local::run(&opts, &params).unwrap();
    let layout = Layout::new(&opts.artifacts_dir);
    let d: Deployment = art::read_json(&layout.path(&art::DEPLOYMENT), "d").unwrap();
    assert!(d.promoted, "{d:?}");
    let want = ours(&layout, &raw, &dir.path().join("ours.csv"));

    // The MLflow client, through the server's registry and artifact proxy.
    let uris = [format!("models:/{}@champion", d.model_name), format!("runs:/{}/model", d.run_id.as_deref().unwrap())];
    let out = std::process::Command::new(&python)
        .arg(script())
        .args([&server.url, raw.to_str().unwrap(), layout.path(&art::X_TEST).to_str().unwrap()])
        .args(&uris)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(out.stdout.rsplit(|b| *b == b'\n').find(|l| l.starts_with(b"{")).unwrap()).unwrap();
    for uri in &uris {
        assert_same(&format!("live server, {uri}"), &want, &got[uri]);
    }
    // The other kind, multiclass, through the same server (its own registered model).
    let wine_dir = tempfile::tempdir().unwrap();
    let wine = example("wine/wine.csv");
    let mut wine_params = Params::load(&example("wine/params.toml")).unwrap();
    let other = if d.kind == ModelKind::Xgboost { ModelKind::Logistic } else { ModelKind::Xgboost };
    wine_params.train.xgboost.enabled = other == ModelKind::Xgboost;
    wine_params.train.logistic.enabled = other == ModelKind::Logistic;
    wine_params.deploy.stage = Stage::Production;
    let mut wine_opts = options(wine_dir.path(), &wine);
    wine_opts.tracking = opts.tracking.clone();
    local::run(&wine_opts, &wine_params).unwrap();
    let wine_layout = Layout::new(&wine_opts.artifacts_dir);
    let wd: Deployment = art::read_json(&wine_layout.path(&art::DEPLOYMENT), "d").unwrap();
    assert!(wd.promoted && wd.kind == other, "{wd:?}");
    let wine_uri = format!("models:/{}@champion", wd.model_name);
    let out = std::process::Command::new(&python)
        .arg(script())
        .args([&server.url, wine.to_str().unwrap(), wine_layout.path(&art::X_TEST).to_str().unwrap(), &wine_uri])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(out.stdout.rsplit(|b| *b == b'\n').find(|l| l.starts_with(b"{")).unwrap()).unwrap();
    assert_same(
        &format!("live server, {wine_uri} ({})", other.name()),
        &ours(&wine_layout, &wine, &wine_dir.path().join("ours.csv")),
        &got[&wine_uri],
    );

    // `mlflow models serve` on the champion answers /invocations with the same predictions.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let serving = Serving(
        std::process::Command::new(&bin)
            .args(["models", "serve", "-m", &uris[0], "--env-manager", "local", "--host", "127.0.0.1", "--port", &port.to_string()])
            .env("MLFLOW_TRACKING_URI", &server.url)
            // It starts uvicorn from PATH: the venv's, as an activated venv would have it.
            .env("PATH", path_with(bin.parent().unwrap()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let mut serving = serving;
    while ureq::get(&format!("{base}/ping")).call().is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120) && serving.0.try_wait().unwrap().is_none(),
            "mlflow models serve did not answer: {}",
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let n = 200;
    let body = dataframe_split(&layout, &raw, n).to_string();
    let answer: serde_json::Value = ureq::post(&format!("{base}/invocations"))
        .set("Content-Type", "application/json")
        .send_string(&body)
        .unwrap_or_else(|e| panic!("{e}: {}", std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()))
        .into_json()
        .unwrap();
    let first: Vec<(String, Vec<String>)> = want.iter().map(|(c, v)| (c.clone(), v[..n].to_vec())).collect();
    assert_same_records("mlflow models serve", &first, &answer, n);
    drop(serving);

    // leadflow's own server on the same registry reference, through the server's registry and
    // artifact proxy: the same predictions for the same request body.
    let rest: Arc<dyn leadflow_mlflow::Store> = Arc::new(leadflow_mlflow::rest::RestStore::new(&server.url));
    let source = leadflow_serve::server::ModelSource::Registry { name: d.model_name.clone(), alias: "champion".into() };
    let cache = dir.path().join("serve-cache");
    let loaded = leadflow_serve::server::load(&source, Some(rest.as_ref()), &cache).unwrap();
    assert_eq!(loaded.version, d.version);
    assert!(cache.join(format!("v{}", d.version.unwrap())).join("model.json").is_file(), "fetched through the artifact proxy");
    let mut opts = leadflow_serve::server::ServeOptions::new(source);
    opts.poll = std::time::Duration::from_millis(200);
    let srv = leadflow_serve::server::Server::new(loaded, opts);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            leadflow_serve::server::serve(l, srv, Some(rest), cache).await.unwrap();
        });
    });
    let ours_url = format!("http://{}", rx.recv().unwrap());
    let score = || -> serde_json::Value {
        ureq::post(&format!("{ours_url}/invocations"))
            .set("Content-Type", "application/json")
            .send_string(&body)
            .unwrap()
            .into_json()
            .unwrap()
    };
    let answer = score();
    assert_same_records("leadflow model serve", &first, &answer, n);

    // A registry outage: the MLflow server stops; the alias cannot be checked, and the model in
    // hand keeps serving (same answers, still ready), the failed checks counted.
    let mut server = server;
    server.stop();
    let started = std::time::Instant::now();
    let errors = |text: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix("leadflow_registry_errors_total ")).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    loop {
        let metrics = ureq::get(&format!("{ours_url}/metrics")).call().unwrap().into_string().unwrap();
        if errors(&metrics) >= 2 {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "no failed registry check counted: {metrics}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(ureq::get(&format!("{ours_url}/health")).call().unwrap().status(), 200);
    let answer = score();
    assert_same_records("leadflow model serve, registry down", &first, &answer, n);
}

/// A scoring server's answer, a DataFrame as MLflow returns it (`{"predictions": [{"probability":
/// .., "label": ..}, ...]}`), compared column by column with ours.
fn assert_same_records(what: &str, want: &[(String, Vec<String>)], answer: &serde_json::Value, n: usize) {
    let records = answer["predictions"].as_array().unwrap();
    assert_eq!(records.len(), n, "{what}");
    let columns: Vec<String> = records[0].as_object().unwrap().keys().cloned().collect();
    let predictions: serde_json::Map<String, serde_json::Value> =
        columns.iter().map(|c| (c.clone(), records.iter().map(|r| r[c].clone()).collect())).collect();
    assert_same(what, want, &serde_json::json!({ "columns": columns, "predictions": predictions }));
}

#[test]
fn the_example_notebook_runs_green_against_a_pipeline_run() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = mlflow() else { return };
    let jupyter = bin.parent().unwrap().join("jupyter");
    if !jupyter.is_file() {
        leadflow_testkit::skip(&format!("jupyter beside {} (./ci.sh installs nbconvert into target/mlflow)", bin.display()));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = leadflow_testkit::committed_sample();
    let mut opts = options(dir.path(), &raw);
    opts.tracking = StoreLocation::Sqlite(db(dir.path()));
    local::run(&opts, &leadflow_testkit::quick_params()).unwrap();
    let notebook = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks/explore.ipynb");
    let executed = dir.path().join("explore.out.ipynb");
    // nbconvert exits non-zero on the first cell that raises.
    let out = std::process::Command::new(&jupyter)
        .args(["nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=300"])
        .arg(&notebook)
        .arg("--output")
        .arg(&executed)
        .current_dir(notebook.parent().unwrap())
        .env("PATH", path_with(bin.parent().unwrap()))
        .env("MLFLOW_TRACKING_URI", StoreLocation::sqlite_uri(&db(dir.path())))
        .env("LEADFLOW_ARTIFACTS", &opts.artifacts_dir)
        .env("LEADFLOW_RAW", &raw)
        .output()
        .unwrap();
    assert!(out.status.success(), "the notebook failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let nb: serde_json::Value = serde_json::from_slice(&std::fs::read(&executed).unwrap()).unwrap();
    let outputs: Vec<&serde_json::Value> =
        nb["cells"].as_array().unwrap().iter().flat_map(|c| c["outputs"].as_array().into_iter().flatten()).collect();
    assert!(outputs.iter().all(|o| o["output_type"] != "error"), "a cell raised");
    let images = outputs.iter().filter(|o| o["data"]["image/png"].is_string()).count();
    assert_eq!(images, 3, "metrics, scores/calibration and importance plots drawn");
    let text: String = outputs.iter().filter_map(|o| o["text"].as_array()).flatten().filter_map(|t| t.as_str()).collect();
    let d: Deployment = art::read_json(&Layout::new(&opts.artifacts_dir).path(&art::DEPLOYMENT), "d").unwrap();
    assert!(text.contains(&format!("models:/{}@{}", d.model_name, d.alias.unwrap())), "loaded the registered model: {text}");
}
