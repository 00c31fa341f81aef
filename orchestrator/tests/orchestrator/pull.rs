//! `leadflow pull`: the pinned public raw file, verified, never half-written.

use std::path::Path;

use leadflow_core::artifacts as art;
use leadflow_testkit::real_data;

/// A one-shot HTTP server on 127.0.0.1 that answers every request with `body`.
fn serve(body: Vec<u8>, requests: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/raw_data.csv")
}

#[test]
fn pull_verifies_size_and_checksum_and_never_leaves_a_partial_file() {
    use orchestrator::pull::{pull, Lock, PullOutcome};
    let dir = tempfile::tempdir().unwrap();
    let body = b"lead_id,lead_indicator\n1,0\n".to_vec();
    let lock = Lock {
        url: "http://127.0.0.1:9/unused".into(),
        path: "raw.csv".into(),
        size: body.len() as u64,
        sha256: leadflow_core::hash::sha256_hex(&body),
    };
    let lock_path = dir.path().join("raw.csv.lock");
    art::write_json(&lock_path, &lock).unwrap();
    let target = dir.path().join("raw.csv");

    // Wrong content: checksum mismatch, nothing written.
    let mut wrong = body.clone();
    wrong[0] = b'X';
    let url = serve(wrong, 1);
    let err = pull(&lock_path, Some(&url)).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(!target.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");

    // Truncated content: size mismatch.
    let url = serve(body[..5].to_vec(), 1);
    let err = pull(&lock_path, Some(&url)).unwrap_err().to_string();
    assert!(err.contains("size mismatch"), "{err}");
    assert!(!target.exists());

    // Nobody listening: a clear error naming the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}/raw.csv");
    let err = pull(&lock_path, Some(&url)).unwrap_err().to_string();
    assert!(err.contains(&url) && err.contains("cannot download"), "{err}");
    assert!(!target.exists());

    // Right content: downloaded and verified, then recognised as present.
    let url = serve(body.clone(), 1);
    assert_eq!(pull(&lock_path, Some(&url)).unwrap(), PullOutcome::Downloaded(target.clone()));
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert_eq!(pull(&lock_path, Some("http://127.0.0.1:9/x")).unwrap(), PullOutcome::AlreadyPresent(target));
}

#[test]
fn committed_lock_pins_the_public_file() {
    let lock = orchestrator::pull::Lock::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/raw/raw_data.csv.lock")).unwrap();
    assert_eq!(lock.size, 1_358_284);
    assert_eq!(lock.sha256, "f9253f7c5f00bb2c02a101e09864c631cae7f1a0b9d3cd4eafd323aed2c12635");
    if let Some(real) = real_data() {
        orchestrator::pull::verify(&real, &lock).unwrap();
    }
}
