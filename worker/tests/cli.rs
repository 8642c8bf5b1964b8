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

fn pyradiomics_case(file: &str) -> std::path::PathBuf {
    data_root().join("pyradiomics").join(file)
}

fn params(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/params")
        .join(file)
}

/// Parses the extract CSV into its header and rows.
fn read_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("output has a header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|record| {
            record
                .expect("output row parses")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    (header, rows)
}

fn cell<'a>(header: &[String], row: &'a [String], column: &str) -> &'a str {
    let index = header
        .iter()
        .position(|name| name == column)
        .unwrap_or_else(|| panic!("column {column} missing from {header:?}"));
    &row[index]
}

#[test]
fn extract_single_case_writes_pyradiomics_columns() {
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("brain1_image.nrrd"))
        .arg(pyradiomics_case("brain1_label.nrrd"))
        .arg("--param")
        .arg(params("FBN.yaml"))
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    let (header, rows) = read_csv(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(header[0], "id");
    assert!(!header.contains(&"error".to_string()));
    assert!(!header.iter().any(|name| name.contains("firstorder")));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "brain1_image");
    // PyRadiomics' baseline_glcm.csv, column brain1_FBN: 190.58669308624525. The
    // tolerance is the parity test's relative 1e-6.
    let contrast: f64 = cell(&header, &rows[0], "original_glcm_Contrast")
        .parse()
        .expect("Contrast is a number");
    assert!((contrast - 190.58669308624525).abs() <= 1e-6 * 190.58669308624525);
}

#[test]
fn extract_batch_failed_case_gets_error_row() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let batch = dir.path().join("cases.csv");
    let text = format!(
        "ID,Image,Mask,Label\nbreast,{},{},\nmissing,no_such_image.nrrd,{},1\nwrong_label,{},{},5\n\
         ragged,{}\nbreast,{},{},\n",
        pyradiomics_case("breast1_image.nrrd").display(),
        pyradiomics_case("breast1_label.nrrd").display(),
        pyradiomics_case("breast1_label.nrrd").display(),
        pyradiomics_case("breast1_image.nrrd").display(),
        pyradiomics_case("breast1_label.nrrd").display(),
        pyradiomics_case("breast1_image.nrrd").display(),
        pyradiomics_case("breast1_image.nrrd").display(),
        pyradiomics_case("breast1_label.nrrd").display(),
    );
    std::fs::write(&batch, text).expect("batch written");
    let out = dir.path().join("features.csv");
    let output = Command::new(WORKER)
        .args(["extract", "--batch"])
        .arg(&batch)
        .arg("--param")
        .arg(params("plain.yaml"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("worker runs");
    assert!(!output.status.success(), "failed cases must fail the run");

    let (header, rows) = read_csv(&std::fs::read_to_string(&out).expect("output written"));
    assert_eq!(header.last().map(String::as_str), Some("error"));
    // A ragged row and a repeated ID get their own rows; the valid cases still run.
    assert_eq!(rows.len(), 5);
    assert_eq!(cell(&header, &rows[0], "error"), "");
    // PyRadiomics' baseline_firstorder.csv, column breast1: 131.12587412587413; a mean of
    // 143 whole numbers is exact to about 1e-14 relative.
    let mean: f64 = cell(&header, &rows[0], "original_firstorder_Mean")
        .parse()
        .expect("Mean is a number");
    assert!((mean - 131.12587412587413).abs() <= 1e-12 * 131.0);

    let missing = cell(&header, &rows[1], "error");
    assert!(missing.starts_with("case missing: image "), "{missing}");
    // The relative Image path resolves against the CSV's folder.
    assert!(
        missing.contains(&dir.path().join("no_such_image.nrrd").display().to_string()),
        "{missing}"
    );
    assert_eq!(cell(&header, &rows[1], "original_firstorder_Mean"), "");

    let wrong_label = cell(&header, &rows[2], "error");
    assert!(wrong_label.contains("label 5 not found"), "{wrong_label}");
    assert!(wrong_label.contains("labels present: 1;"), "{wrong_label}");
    assert!(wrong_label.contains("breast1_label.nrrd"), "{wrong_label}");

    assert_eq!(rows[3][0], "ragged");
    let ragged = cell(&header, &rows[3], "error");
    assert!(
        ragged.starts_with("case ragged: batch file line 5: the row has 2 cells"),
        "{ragged}"
    );
    assert_eq!(rows[4][0], "breast");
    let repeated = cell(&header, &rows[4], "error");
    assert!(
        repeated.contains("line 6: ID breast is already used on line 2"),
        "{repeated}"
    );
}

#[test]
fn extract_unknown_parameter_key_is_named() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let param = dir.path().join("params.yaml");
    std::fs::write(&param, "setting:\n  binwidht: 10\n").expect("params written");
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("breast1_image.nrrd"))
        .arg(pyradiomics_case("breast1_label.nrrd"))
        .arg("--param")
        .arg(&param)
        .output()
        .expect("worker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown key \"binwidht\" in setting"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean binWidth?"), "{stderr}");
    assert!(output.stdout.is_empty(), "no table for invalid parameters");
}

#[test]
fn extract_unimplemented_setting_says_so() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let param = dir.path().join("lbp.yaml");
    std::fs::write(&param, "imageType:\n  LBP2D: {}\n").expect("params written");
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("breast1_image.nrrd"))
        .arg(pyradiomics_case("breast1_label.nrrd"))
        .arg("--param")
        .arg(&param)
        .output()
        .expect("worker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("imageType.LBP2D = {} is not implemented"),
        "{stderr}"
    );
}

#[test]
fn extract_image_types_end_to_end() {
    let param =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/image_types/params.yaml");
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("breast1_image.nrrd"))
        .arg(pyradiomics_case("breast1_label.nrrd"))
        .arg("--param")
        .arg(&param)
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    let (header, rows) = read_csv(&String::from_utf8_lossy(&output.stdout));
    assert!(!header.contains(&"error".to_string()), "{header:?}");

    // PyRadiomics 3.1.4 values of breast1 from tests/image_types/expected.json; the
    // tolerance is the parity tests' relative 1e-6.
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/image_types/expected.json"),
        )
        .expect("expected values read"),
    )
    .expect("expected values parse");
    for column in [
        "wavelet-LLH_glszm_ZoneEntropy",
        "log-sigma-1-0-mm-3D_firstorder_Mean",
        "log-sigma-3-mm-3D_glcm_Idm",
        "square_firstorder_Mean",
        "squareroot_gldm_DependenceEntropy",
        "logarithm_glrlm_RunEntropy",
        "exponential_ngtdm_Coarseness",
        "gradient_firstorder_Median",
        "original_shape_MeshVolume",
    ] {
        let reference = expected["cases"]["breast1"][column]
            .as_f64()
            .unwrap_or_else(|| panic!("{column} missing from expected.json"));
        let value: f64 = cell(&header, &rows[0], column)
            .parse()
            .unwrap_or_else(|_| panic!("{column} is not a number"));
        assert!(
            (value - reference).abs() <= 1e-6 * reference.abs(),
            "{column}: {value} vs PyRadiomics {reference}"
        );
    }

    // σ = 200 mm does not fit breast1 (21 slices of 2.1 mm), so PyRadiomics skips it; the
    // column stays for the batch layout, empty, and the skip is logged.
    assert_eq!(
        cell(&header, &rows[0], "log-sigma-200-0-mm-3D_firstorder_Mean"),
        ""
    );
    assert!(stderr.contains("LoG image skipped"), "{stderr}");
}

#[test]
fn extract_force2d_shape2d_needs_one_slice() {
    // 2d.yaml has no featureClass section, so force2D enables shape2D as in PyRadiomics,
    // and breast1's ROI covers 3 slices (k = 8 to 10), which shape2D rejects.
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("breast1_image.nrrd"))
        .arg(pyradiomics_case("breast1_label.nrrd"))
        .arg("--param")
        .arg(params("2d.yaml"))
        .output()
        .expect("worker runs");
    assert!(!output.status.success());
    let (header, rows) = read_csv(&String::from_utf8_lossy(&output.stdout));
    let error = cell(&header, &rows[0], "error");
    assert!(error.contains("spans 3 slices"), "{error}");

    // Without shape2D the texture classes run in 2-D. PyRadiomics' baseline_glcm.csv,
    // column breast1_2d: Contrast 0.4905553392961937, with the parity test's tolerance.
    let dir = tempfile::tempdir().expect("temporary folder");
    let param = dir.path().join("glcm_2d.yaml");
    std::fs::write(
        &param,
        "featureClass:\n  glcm:\nsetting:\n  force2D: true\n  force2Ddimension: 0\n",
    )
    .expect("params written");
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("breast1_image.nrrd"))
        .arg(pyradiomics_case("breast1_label.nrrd"))
        .arg("--param")
        .arg(&param)
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    let (header, rows) = read_csv(&String::from_utf8_lossy(&output.stdout));
    let contrast: f64 = cell(&header, &rows[0], "original_glcm_Contrast")
        .parse()
        .expect("Contrast is a number");
    assert!((contrast - 0.4905553392961937).abs() <= 1e-6 * 0.4905553392961937);
}

#[test]
fn extract_without_cases_names_both_forms() {
    let output = Command::new(WORKER)
        .arg("extract")
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // clap's usage errors exit with status 2.
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("IMAGE MASK"), "{stderr}");
    assert!(stderr.contains("--batch cases.csv"), "{stderr}");
    assert!(
        stderr.contains("Usage: radstudy-worker extract"),
        "{stderr}"
    );
}

#[test]
fn extract_image_without_mask_names_mask() {
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("brain1_image.nrrd"))
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("<MASK>"), "{stderr}");
}

#[test]
fn extract_out_directory_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("brain1_image.nrrd"))
        .arg(pyradiomics_case("brain1_label.nrrd"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    let suggested = dir.path().join("features.csv");
    assert!(
        stderr.contains(&suggested.display().to_string()),
        "{stderr}"
    );
    let entries = std::fs::read_dir(dir.path()).expect("folder lists").count();
    assert_eq!(entries, 0, "nothing is written into the directory");
}

#[test]
fn extract_id_option_sets_row_id() {
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("brain1_image.nrrd"))
        .arg(pyradiomics_case("brain1_label.nrrd"))
        .args(["--param"])
        .arg(params("FBN.yaml"))
        .args(["--id", "lesion_07"])
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    let (header, rows) = read_csv(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(header[0], "id");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "lesion_07");
}

#[test]
fn extract_id_option_rejects_comma() {
    let output = Command::new(WORKER)
        .arg("extract")
        .arg(pyradiomics_case("brain1_image.nrrd"))
        .arg(pyradiomics_case("brain1_label.nrrd"))
        .args(["--id", "a,b"])
        .output()
        .expect("worker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // clap's usage errors exit with status 2.
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--id"), "{stderr}");
    assert!(stderr.contains("comma or a line break"), "{stderr}");
    assert!(output.stdout.is_empty(), "no CSV is written");
}
