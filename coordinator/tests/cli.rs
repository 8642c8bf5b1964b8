//! The coordinator binary's command line, run as a process.

use std::process::Command;

const RADSTUDY: &str = env!("CARGO_BIN_EXE_radstudy");

#[test]
fn run_missing_study_file_fails_with_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(RADSTUDY)
        .args(["run", "/nonexistent/study.toml", "--out"])
        .arg(dir.path())
        .output()
        .expect("radstudy runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/study.toml"), "{stderr}");
}

#[test]
fn run_invalid_study_names_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let study = dir.path().join("study.toml");
    std::fs::write(&study, "study_id = \"s\"\nsequences = []\ncenters = []\n").expect("write");
    let output = Command::new(RADSTUDY)
        .arg("run")
        .arg(&study)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .expect("radstudy runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sequences"), "{stderr}");
}
