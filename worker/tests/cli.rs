//! The worker binary's command line, run as a process.

use std::process::Command;

const WORKER: &str = env!("CARGO_BIN_EXE_radstudy-worker");

#[test]
fn worker_missing_config_fails_with_path() {
    let output = Command::new(WORKER)
        .args(["serve", "--config", "/nonexistent/worker.toml"])
        .output()
        .expect("worker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/worker.toml"), "{stderr}");
}

#[test]
fn worker_keygen_writes_new_key_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("site.key");
    let first = Command::new(WORKER)
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .expect("keygen runs");
    assert!(first.status.success());
    // 32 random bytes as 64 hex digits and a newline.
    assert_eq!(
        std::fs::read_to_string(&key)
            .expect("key written")
            .trim()
            .len(),
        64
    );
    let second = Command::new(WORKER)
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .expect("keygen runs");
    assert!(
        !second.status.success(),
        "an existing key must not be overwritten"
    );
}
