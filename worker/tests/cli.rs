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

fn data_root() -> std::path::PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
        })
}

fn example(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/sts")
        .join(file)
}

#[test]
fn worker_check_lists_missing_mr_images() {
    let output = Command::new(WORKER)
        .arg("check")
        .arg("--config")
        .arg(example("worker_a.toml"))
        .arg("--data-root")
        .arg(data_root())
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    // STS_009 (line 10) and STS_020 (line 21) lack the MR image, as the
    // data set's README states.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains("file_missing"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[0].starts_with("10 "), "{stdout}");
    assert!(rows[1].starts_with("21 "), "{stdout}");
    assert!(
        !stdout.contains("STS_"),
        "the table names rows by pseudonym: {stdout}"
    );
    assert!(
        stdout.contains("35 patients, 70 image/mask pairs checked: 2 errors, 0 notes"),
        "{stdout}"
    );
}

#[test]
fn worker_check_clean_site_exits_zero() {
    let output = Command::new(WORKER)
        .arg("check")
        .arg("--config")
        .arg(example("worker_b.toml"))
        .arg("--data-root")
        .arg(data_root())
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(
        stdout.trim(),
        "16 patients, 32 image/mask pairs checked: 0 errors, 0 notes"
    );
}

/// Stops the worker process when the test ends, whatever its outcome.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn worker_health_reports_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("worker.toml");
    std::fs::write(
        &config,
        format!(
            "center_id = \"B\"\nlisten = \"127.0.0.1:0\"\ndata_root = {:?}\nmanifest = {:?}\n\
             pseudonym_key_file = {:?}\n",
            data_root(),
            example("manifest_b.csv"),
            example("center_b.key"),
        ),
    )
    .expect("write config");
    let ready = dir.path().join("ready");
    let worker = KillOnDrop(
        Command::new(WORKER)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--ready-file")
            .arg(&ready)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("worker starts"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let address = loop {
        if let Ok(address) = std::fs::read_to_string(&ready) {
            break address;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker wrote no ready file in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };

    for service in ["radstudy.v1.Worker", ""] {
        let output = Command::new(WORKER)
            .args(["health", "--address", &address, "--service", service])
            .output()
            .expect("health runs");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SERVING");
    }
    let prefixed = format!("http://{address}");
    let output = Command::new(WORKER)
        .args(["health", "--address", &prefixed])
        .output()
        .expect("health runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SERVING");
    drop(worker);

    let output = Command::new(WORKER)
        .args(["health", "--address", &address, "--timeout-s", "2"])
        .output()
        .expect("health runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(
        !stderr.contains("tcp connect error: tcp connect error"),
        "{stderr}"
    );
}

#[test]
fn worker_serve_missing_data_root_names_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("worker.toml");
    std::fs::write(
        &config,
        format!(
            "center_id = \"B\"\nlisten = \"127.0.0.1:0\"\ndata_root = \"no-such-folder\"\n\
             manifest = {:?}\npseudonym_key_file = {:?}\n",
            example("manifest_b.csv"),
            example("center_b.key"),
        ),
    )
    .expect("write config");
    let output = Command::new(WORKER)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("worker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The relative data_root is resolved against the config's directory.
    let resolved = dir.path().join("no-such-folder");
    assert!(stderr.contains(&resolved.display().to_string()), "{stderr}");
    assert!(stderr.contains("--data-root DIR"), "{stderr}");
}
