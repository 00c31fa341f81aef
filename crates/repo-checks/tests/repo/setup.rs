//! The README's first command must work on a fresh machine: `ci.sh`'s prerequisite detection is
//! run against fake roots that hold look-alikes (libclang-cpp14's `libclang-cpp.so.14`,
//! `cmake-data`, a removed package's leftover configuration), where it must not be fooled.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every Debian package ci.sh provides, in its order (build, then test prerequisites).
const ALL: &[&str] = &["cmake", "g++", "make", "libclang-dev", "python3-venv", "procps", "shellcheck", "docker-compose"];

fn repo() -> PathBuf {
    leadflow_testkit::repo_root()
}

/// A fake root whose dpkg database lists `packages` with their status, plus the given files.
fn fake_root(dir: &Path, packages: &[(&str, &str)], files: &[&str]) -> PathBuf {
    let root = dir.to_path_buf();
    let admin = root.join("var/lib/dpkg");
    std::fs::create_dir_all(&admin).unwrap();
    let mut status = String::new();
    for (p, st) in packages {
        status.push_str(&format!("Package: {p}\nStatus: {st}\nArchitecture: amd64\nVersion: 1.0\nDescription: fake\n\n"));
    }
    std::fs::write(admin.join("status"), status).unwrap();
    for f in files {
        let p = root.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }
    root
}

/// `ci.sh --check-prereqs` under `root`: (exit code, missing packages).
fn check(root: &Path) -> (i32, Vec<String>) {
    let out = Command::new("bash").arg(repo().join("ci.sh")).arg("--check-prereqs").env("LEADFLOW_PREREQ_ROOT", root).output().unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let missing = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    (out.status.code().unwrap(), missing)
}

const OK: &str = "install ok installed";

#[test]
fn prerequisite_detection_is_not_fooled_by_look_alikes() {
    let dir = tempfile::tempdir().unwrap();
    // A fresh machine of the project's kind: libclang-cpp14 and its library, cmake-data, and
    // cmake removed with its configuration left behind; no cmake, no libclang-dev.
    let root = fake_root(
        &dir.path().join("fresh"),
        &[
            ("libclang-cpp14", OK),
            ("cmake-data", OK),
            ("cmake", "deinstall ok config-files"),
            ("g++", OK),
            ("make", OK),
            ("python3-venv", OK),
            ("procps", OK),
            ("shellcheck", OK),
            ("docker-compose", OK),
        ],
        &["usr/lib/llvm-14/lib/libclang-cpp.so.14", "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14"],
    );
    assert_eq!(check(&root), (1, vec!["cmake".to_string(), "libclang-dev".to_string()]));

    // Nothing installed at all: every package, in order.
    let empty = fake_root(&dir.path().join("empty"), &[], &[]);
    assert_eq!(check(&empty), (1, ALL.iter().map(|s| s.to_string()).collect()));

    // Everything installed: nothing to do (and so no `apt-get update`).
    let all: Vec<(&str, &str)> = ALL.iter().map(|p| (*p, OK)).collect();
    let full = fake_root(&dir.path().join("full"), &all, &[]);
    assert_eq!(check(&full), (0, vec![]));
}

#[test]
fn without_dpkg_the_library_bindgen_loads_decides_for_libclang() {
    let dir = tempfile::tempdir().unwrap();
    // No dpkg database under the root: the consumer's own lookup decides. Only libclang-cpp is
    // present, which clang-sys does not load.
    let root = dir.path().join("nodpkg");
    for f in ["usr/lib/llvm-14/lib/libclang-cpp.so.14", "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14"] {
        std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
        std::fs::write(root.join(f), b"").unwrap();
    }
    assert!(check(&root).1.contains(&"libclang-dev".to_string()));
    // The library clang-sys looks for.
    std::fs::write(root.join("usr/lib/llvm-14/lib/libclang.so.1"), b"").unwrap();
    assert!(!check(&root).1.contains(&"libclang-dev".to_string()));
    std::fs::remove_file(root.join("usr/lib/llvm-14/lib/libclang.so.1")).unwrap();
    std::fs::write(root.join("usr/lib/x86_64-linux-gnu/libclang-14.so.1"), b"").unwrap();
    assert!(!check(&root).1.contains(&"libclang-dev".to_string()));
}

/// Run `ci.sh --setup-only` under `root` with a fake `apt-get` (and `sudo`) first on PATH. The fake
/// logs its arguments and, when `installs`, marks the packages it is asked for as installed in the
/// fake dpkg database. Returns (exit code, stderr, apt-get calls).
fn setup_only(root: &Path, bin: &Path, installs: bool) -> (i32, String, Vec<String>) {
    std::fs::create_dir_all(bin).unwrap();
    let log = bin.join("apt.log");
    let _ = std::fs::remove_file(&log);
    let status = root.join("var/lib/dpkg/status");
    let mark = if installs {
        format!(
            r#"for a in "$@"; do case "$a" in -*|install) ;; *) printf 'Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nDescription: fake\n\n' "$a" >> '{}';; esac; done"#,
            status.display()
        )
    } else {
        String::new()
    };
    let apt = format!("#!/bin/sh\necho \"$*\" >> '{}'\n[ \"$1\" = install ] || exit 0\n{mark}\n", log.display());
    std::fs::write(bin.join("apt-get"), apt).unwrap();
    std::fs::write(bin.join("sudo"), "#!/bin/sh\nexec \"$@\"\n").unwrap();
    for f in ["apt-get", "sudo"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(repo().join("ci.sh"))
        .arg("--setup-only")
        .env("LEADFLOW_PREREQ_ROOT", root)
        .env("PATH", path)
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_string).collect();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned(), calls)
}

#[test]
fn setup_installs_what_is_missing_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = [
        ("libclang-cpp14", OK),
        ("g++", OK),
        ("make", OK),
        ("python3-venv", OK),
        ("procps", OK),
        ("shellcheck", OK),
        ("docker-compose", OK),
    ];
    let root = fake_root(&dir.path().join("fresh"), &fresh, &["usr/lib/llvm-14/lib/libclang-cpp.so.14"]);
    let (code, err, calls) = setup_only(&root, &dir.path().join("bin"), true);
    assert_eq!(code, 0, "{err}");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].starts_with("update"), "{calls:?}");
    assert!(calls[1].starts_with("install") && calls[1].ends_with(" cmake libclang-dev"), "{calls:?}");
    // Now installed: a second run asks apt for nothing, not even an update.
    let (code, err, calls) = setup_only(&root, &dir.path().join("bin"), true);
    assert_eq!((code, calls.len()), (0, 0), "{err} {calls:?}");

    // apt-get "succeeds" but the package is still not installed: ci.sh says so and fails.
    let root = fake_root(&dir.path().join("broken"), &fresh, &[]);
    let (code, err, _) = setup_only(&root, &dir.path().join("bin2"), false);
    assert_ne!(code, 0);
    assert!(err.contains("still missing after apt-get install: cmake libclang-dev"), "{err}");
}
