//! The server under hostile or unready conditions: slow clients cut off by the header-read
//! timeout while others are served, idle keep-alive connections closed, the connection limit,
//! the bearer token, and readiness before the model has loaded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use leadflow_serve::server::{self, ModelSource, ServeOptions, Server, Token};
use serde_json::json;

use super::server::{head, post, start};
use super::{quick, Env};

fn options(env: &Env) -> ServeOptions {
    let mut opts = ServeOptions::new(ModelSource::Dir(env.layout().model_dir()));
    opts.header_timeout = Duration::from_secs(1);
    opts
}

/// A client that opens a connection and sends the start of a request's headers, then nothing.
fn slow_client(url: &str) -> TcpStream {
    let mut s = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    s.write_all(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n").unwrap();
    s
}

/// Whether the server closed the connection within `within` (a read returns end of file or an
/// error); `false` when it is still open then.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar before closing
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

fn metric(url: &str, name: &str, token: Option<&str>) -> u64 {
    let mut req = ureq::get(&format!("{url}/metrics"));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let text = req.call().unwrap().into_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[test]
fn slow_clients_are_cut_off_by_the_header_timeout_while_others_are_served() {
    let env = Env::deployed(&quick());
    let (url, _) = start(options(&env), None, env.dir.path());
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..200).map(|_| slow_client(&url)).collect();
    // Normal clients are answered meanwhile.
    let (header, rows) = head(&env.raw, 3);
    let body = json!({"dataframe_split": {"columns": header, "data": rows}}).to_string();
    for _ in 0..20 {
        assert_eq!(post(&url, "application/json", &body).0, 200);
    }
    assert!(metric(&url, "leadflow_connections_open", None) >= 200, "the slow clients are connected");
    // Each slow connection is closed by the server, not before the timeout and soon after it.
    for s in &mut slow {
        assert!(closed_within(s, Duration::from_secs(5)), "a slow client still connected after {:?}", started.elapsed());
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "closed after {elapsed:?}: before the 1 s timeout");
    let open_after = Instant::now();
    while metric(&url, "leadflow_connections_open", None) > 1 {
        assert!(open_after.elapsed() < Duration::from_secs(5), "connections still counted open");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(post(&url, "application/json", &body).0, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let env = Env::deployed(&quick());
    let (url, _) = start(options(&env), None, env.dir.path());
    let mut s = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    let idle = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)), "the idle connection stayed open");
    assert!(idle.elapsed() >= Duration::from_millis(900), "closed after {:?}, before the timeout", idle.elapsed());
}

#[test]
fn at_the_connection_limit_a_new_client_waits_for_a_free_slot() {
    let env = Env::deployed(&quick());
    let mut opts = options(&env);
    opts.max_connections = 3;
    let (url, _) = start(opts, None, env.dir.path());
    assert_eq!(metric(&url, "leadflow_connections_max", None), 3);
    let started = Instant::now();
    let _slow: Vec<TcpStream> = (0..3).map(|_| slow_client(&url)).collect();
    std::thread::sleep(Duration::from_millis(100));
    // Every slot is held: this request is served only once the timeout frees one.
    let (status, _) = post(&url, "application/json", r#"{"inputs": {"x": [1]}}"#);
    let waited = started.elapsed();
    assert_eq!(status, 400, "served (a bad request, answered as such)");
    assert!(waited >= Duration::from_millis(800), "answered after {waited:?}, while every slot was held");
}

#[test]
fn a_bearer_token_guards_scoring_but_not_the_probes() {
    let env = Env::deployed(&quick());
    let mut opts = options(&env);
    opts.token = Token::new("s3cret-token\n");
    assert!(!format!("{opts:?}").contains("s3cret"), "options can be logged without the token");
    let (url, _) = start(opts, None, env.dir.path());
    let (header, rows) = head(&env.raw, 2);
    let body = json!({"dataframe_split": {"columns": header, "data": rows}}).to_string();
    let send = |auth: Option<&str>| {
        let mut r = ureq::post(&format!("{url}/invocations")).set("Content-Type", "application/json");
        if let Some(a) = auth {
            r = r.set("Authorization", a);
        }
        match r.send_string(&body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, r)) => {
                assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
                code
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(send(None), 401);
    assert_eq!(send(Some("Bearer wrong")), 401);
    assert_eq!(send(Some("Bearer s3cret-toke")), 401, "a prefix is not the token");
    assert_eq!(send(Some("s3cret-token")), 401, "the Bearer scheme is required");
    assert_eq!(send(Some("Bearer s3cret-token")), 200);
    assert_eq!(ureq::get(&format!("{url}/ping")).call().unwrap().status(), 200);
    assert_eq!(ureq::get(&format!("{url}/health")).call().unwrap().status(), 200);
    assert!(matches!(ureq::get(&format!("{url}/version")).call(), Err(ureq::Error::Status(401, _))));
    assert_eq!(metric(&url, "leadflow_requests_unauthorized_total", Some("s3cret-token")), 5);
}

#[test]
fn not_ready_until_the_model_has_loaded() {
    let env = Env::deployed(&quick());
    let opts = options(&env);
    let source = opts.source.clone();
    let srv = Server::loading(opts);
    let (tx, rx) = std::sync::mpsc::channel();
    let (s, cache) = (srv.clone(), env.dir.path().to_path_buf());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            server::serve(l, s, None, cache).await.unwrap();
        });
    });
    let url = format!("http://{}", rx.recv().unwrap());
    assert_eq!(ureq::get(&format!("{url}/ping")).call().unwrap().status(), 200, "alive");
    assert!(matches!(ureq::get(&format!("{url}/health")).call(), Err(ureq::Error::Status(503, _))), "not ready");
    let (header, rows) = head(&env.raw, 2);
    let body = json!({"dataframe_split": {"columns": header, "data": rows}}).to_string();
    assert_eq!(post(&url, "application/json", &body).0, 503);
    assert_eq!(metric(&url, "leadflow_ready", None), 0);
    srv.swap(server::load(&source, None, env.dir.path()).unwrap());
    assert_eq!(ureq::get(&format!("{url}/health")).call().unwrap().status(), 200, "ready");
    assert_eq!(post(&url, "application/json", &body).0, 200);
    assert_eq!(metric(&url, "leadflow_ready", None), 1);
    assert_eq!(metric(&url, "leadflow_model_swaps_total", None), 0, "the first load is not a swap");
}
