use super::*;

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Writes a config, key and manifest into `dir` and returns the config
/// path. Its policy accepts any cohort of at least one patient, so
/// only file problems are reported.
fn site(dir: &Path, manifest: &str) -> PathBuf {
    site_with_policy(dir, manifest, "min_patients = 1\nmin_per_class = 0\n")
}

/// Like [`site`], with `policy` as the body of the `[policy]` table.
fn site_with_policy(dir: &Path, manifest: &str, policy: &str) -> PathBuf {
    std::fs::write(dir.join("site.key"), "07".repeat(32)).expect("write key");
    std::fs::write(dir.join("manifest.csv"), manifest).expect("write manifest");
    let config = dir.join("worker.toml");
    std::fs::write(
        &config,
        format!(
            "center_id = \"T\"\ndata_root = {:?}\nmanifest = \"manifest.csv\"\n\
             pseudonym_key_file = \"site.key\"\nextraction_threads = 2\n\
             [policy]\n{policy}",
            data_root()
        ),
    )
    .expect("write config");
    config
}

fn pseudonym(patient_id: &str) -> Option<String> {
    let key = PseudonymKey::from_bytes(vec![7; 32]).expect("32-byte key");
    Some(key.pseudonym("T", patient_id))
}

const HEADER: &str = "patient_id,label,PET_image,PET_mask\n";

#[test]
fn check_clean_sts_rows_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = format!(
        "{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
         STS_002,1,sts/STS_002/PET_image.nii.gz,sts/STS_002/PET_mask.nii.gz\n"
    );
    let report = run_check(&site(dir.path(), &manifest), &CheckOptions::default());
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.patients, 2);
    assert_eq!(report.pairs_checked, 2);
    assert!(report.findings.is_empty());
}

#[test]
fn check_output_dir_inside_data_root_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest =
        format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
    let config = site(dir.path(), &manifest);
    let text = std::fs::read_to_string(&config).expect("read config");
    let inside = data_root().join("sts");
    // Top-level keys go before the `[policy]` table.
    let text = format!("output_dir = {inside:?}\n{text}");
    std::fs::write(&config, text).expect("write config");

    let report = run_check(&config, &CheckOptions::default());
    let finding = report
        .findings
        .iter()
        .find(|f| f.field == "output_dir")
        .expect("an output_dir finding");
    assert_eq!(finding.severity, Severity::Error);
    assert!(
        finding.reason.contains("inside the data root"),
        "{}",
        finding.reason
    );
}

#[test]
fn check_cache_dir_problems_are_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest =
        format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
    let config = site(dir.path(), &manifest);
    let text = std::fs::read_to_string(&config).expect("read config");
    let a_file = dir.path().join("not-a-folder");
    std::fs::write(&a_file, b"").expect("write file");
    let cases = [
        (data_root().join("sts"), "inside the data root"),
        (a_file, "is not a directory"),
    ];
    for (cache_dir, expected) in cases {
        // Top-level keys go before the `[policy]` table.
        std::fs::write(&config, format!("cache_dir = {cache_dir:?}\n{text}"))
            .expect("write config");
        let report = run_check(&config, &CheckOptions::default());
        let finding = report
            .findings
            .iter()
            .find(|f| f.field == "cache_dir")
            .expect("a cache_dir finding");
        assert_eq!(finding.severity, Severity::Error);
        assert!(finding.reason.contains(expected), "{}", finding.reason);
    }
}

#[test]
fn check_missing_mr_image_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    // STS_009 has no MR image in the data set, as its README states.
    let manifest = "patient_id,label,MR_T1_image,MR_T1_mask\n\
                    STS_009,0,sts/STS_009/MR_T1_image.nii.gz,sts/STS_009/MR_T1_mask.nii.gz\n";
    let report = run_check(&site(dir.path(), manifest), &CheckOptions::default());
    assert_eq!(report.error_count(), 1, "{}", report.render());
    let finding = &report.findings[0];
    assert_eq!(finding.line, Some(2));
    assert_eq!(finding.pseudonym, pseudonym("STS_009"));
    assert_eq!(finding.sequence.as_deref(), Some("MR_T1"));
    assert_eq!(finding.kind, "file_missing");
    assert_eq!(finding.field, "MR_T1_image");
    assert!(
        finding.reason.starts_with("file not found; check"),
        "{}",
        finding.reason
    );
}

#[test]
fn check_crossed_mask_is_geometry_mismatch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = "patient_id,label,MR_T1_image,MR_T1_mask\n\
                    STS_001,0,sts/STS_001/MR_T1_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n";
    let report = run_check(&site(dir.path(), manifest), &CheckOptions::default());
    assert_eq!(report.error_count(), 1, "{}", report.render());
    assert_eq!(report.findings[0].kind, "geometry_mismatch");
    assert_eq!(report.findings[0].field, "MR_T1_mask");
}

#[test]
fn check_absent_label_is_mask_invalid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest =
        format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
    let options = CheckOptions {
        label: 7,
        ..CheckOptions::default()
    };
    let report = run_check(&site(dir.path(), &manifest), &options);
    assert_eq!(report.error_count(), 1, "{}", report.render());
    assert_eq!(report.findings[0].kind, "mask_invalid");
    assert!(
        report.findings[0].reason.contains("label 7 not found"),
        "{}",
        report.findings[0].reason
    );
}

#[test]
fn check_manifest_row_problems_are_listed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = format!(
        "{HEADER}STS_001,2,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
         STS_002,0,../../etc/passwd,sts/STS_002/PET_mask.nii.gz\n\
         STS_003,1,,\n"
    );
    let report = run_check(&site(dir.path(), &manifest), &CheckOptions::default());
    let lines: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.line, f.severity, f.kind))
        .collect();
    assert_eq!(
        lines,
        vec![
            (Some(2), Severity::Error, "manifest_invalid"),
            (Some(3), Severity::Error, "manifest_invalid"),
            (Some(4), Severity::Note, "not_listed"),
        ],
        "{}",
        report.render()
    );
    assert_eq!(report.error_count(), 2);
    assert_eq!(report.pairs_checked, 0);
}

#[test]
fn check_empty_cell_alone_is_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = format!("{HEADER}STS_003,1,,\n");
    let report = run_check(&site(dir.path(), &manifest), &CheckOptions::default());
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.findings.len(), 1);
}

#[test]
fn check_missing_key_still_checks_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = "patient_id,label,MR_T1_image,MR_T1_mask\n\
                    STS_009,0,sts/STS_009/MR_T1_image.nii.gz,sts/STS_009/MR_T1_mask.nii.gz\n";
    let config = site(dir.path(), manifest);
    std::fs::remove_file(dir.path().join("site.key")).expect("remove key");
    let report = run_check(&config, &CheckOptions::default());
    let kinds: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec!["pseudonym_key", "file_missing"]);
    assert_eq!(report.findings[1].pseudonym, None);
    assert!(report.findings[0].reason.contains("keygen"));
}

#[test]
fn check_missing_config_is_one_finding() {
    let report = run_check(
        Path::new("/nonexistent/worker.toml"),
        &CheckOptions::default(),
    );
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].kind, "config");
    assert!(
        report.findings[0]
            .reason
            .contains("/nonexistent/worker.toml")
    );
}

#[test]
fn check_tls_missing_cert_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest =
        format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
    let config = site(dir.path(), &manifest);
    let mut text = std::fs::read_to_string(&config).expect("read config");
    text = text.replace(
        "[policy]",
        "[tls]\ncert = \"absent.pem\"\nkey = \"absent.key\"\nclient_ca = \"ca.pem\"\n[policy]",
    );
    std::fs::write(&config, text).expect("write config");
    let report = run_check(&config, &CheckOptions::default());
    assert!(!report.is_clean());
    let tls: Vec<&Finding> = report.findings.iter().filter(|f| f.kind == "tls").collect();
    assert_eq!(tls.len(), 1, "{}", report.render());
    assert_eq!(tls[0].field, "tls.cert");
    assert!(tls[0].reason.contains("absent.pem"), "{}", tls[0].reason);
    // The image files are still checked after a TLS problem.
    assert_eq!(report.pairs_checked, 1);
}

#[test]
fn check_tls_certificate_near_expiry_is_a_note() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["site-t".into()]).expect("valid SAN");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = rcgen::date_time_ymd(2030, 1, 1);
    params.not_after = rcgen::date_time_ymd(2030, 1, 11);
    let certificate = params.self_signed(&key).expect("self-signed");

    std::fs::write(dir.path().join("cert.pem"), certificate.pem()).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key");
    let settings = TlsSettings {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        // A self-signed certificate is its own CA.
        client_ca: dir.path().join("cert.pem"),
        allowed_clients: Vec::new(),
    };

    // 2030-01-02 00:00:00 UTC (`date -u -d 2030-01-02 +%s`) is 9 days
    // before not_after, 2030-01-11 00:00:00 UTC.
    let findings = tls_findings(&settings, 1_893_542_400);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::Note);
    assert!(
        findings[0].reason.contains("in 9 days"),
        "{}",
        findings[0].reason
    );

    // 2029-01-02 (`date -u -d 2029-01-02 +%s`): not valid yet, an error.
    let early = tls_findings(&settings, 1_862_006_400);
    assert_eq!(early[0].severity, Severity::Error);
    assert_eq!(early[0].field, "tls.cert");
}

#[test]
fn check_missing_data_root_stops_early() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), HEADER);
    let options = CheckOptions {
        data_root: Some(dir.path().join("no-such-folder")),
        ..CheckOptions::default()
    };
    let report = run_check(&config, &options);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].kind, "data_root");
    assert!(report.findings[0].reason.contains("--data-root"));
}

#[test]
fn check_small_cohort_is_policy_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = format!(
        "{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
         STS_002,1,sts/STS_002/PET_image.nii.gz,sts/STS_002/PET_mask.nii.gz\n"
    );
    let config = site_with_policy(dir.path(), &manifest, "min_patients = 3\n");
    let report = run_check(&config, &CheckOptions::default());
    assert_eq!(report.error_count(), 1, "{}", report.render());
    let finding = &report.findings[0];
    assert_eq!(finding.line, None);
    assert_eq!(finding.kind, "policy");
    assert_eq!(finding.field, "policy.min_patients");
    assert!(finding.reason.contains("2 patients"), "{}", finding.reason);
    assert!(
        finding.reason.contains("policy.min_patients = 3"),
        "{}",
        finding.reason
    );
    assert_eq!(report.pairs_checked, 2, "the files are still checked");
}

#[test]
fn check_small_class_is_policy_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = format!(
        "{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
         STS_002,1,sts/STS_002/PET_image.nii.gz,sts/STS_002/PET_mask.nii.gz\n\
         STS_003,0,sts/STS_003/PET_image.nii.gz,sts/STS_003/PET_mask.nii.gz\n"
    );
    let config = site_with_policy(
        dir.path(),
        &manifest,
        "min_patients = 3\nmin_per_class = 2\n",
    );
    let report = run_check(&config, &CheckOptions::default());
    assert_eq!(report.error_count(), 1, "{}", report.render());
    let finding = &report.findings[0];
    assert_eq!(finding.kind, "policy");
    assert_eq!(finding.field, "policy.min_per_class");
    assert!(
        finding
            .reason
            .contains("2 patients with label 0 and 1 with label 1"),
        "{}",
        finding.reason
    );
    assert!(
        finding.reason.contains("policy.min_per_class = 2"),
        "{}",
        finding.reason
    );
}

#[test]
fn cohort_policy_problems_for_serve_warning() {
    let root = tempfile::tempdir().expect("temp dir");
    let manifest = Manifest::parse(
        format!("{HEADER}X1,1,x1.nii.gz,x1_mask.nii.gz\n").as_bytes(),
        Path::new("manifest.csv"),
        root.path(),
    )
    .expect("manifest");
    let fields = |policy: &Policy| -> Vec<&'static str> {
        cohort_policy_problems(&manifest, policy)
            .into_iter()
            .map(|(field, _)| field)
            .collect()
    };

    // The default policy wants 5 patients and 1 per class.
    assert_eq!(
        fields(&Policy::default()),
        vec!["policy.min_patients", "policy.min_per_class"]
    );
    let small = Policy {
        min_patients: 1,
        min_per_class: 0,
        ..Policy::default()
    };
    assert!(fields(&small).is_empty());
}

#[test]
fn check_render_aligns_columns() {
    let report = CheckReport {
        patients: 2,
        pairs_checked: 2,
        findings: vec![
            Finding {
                line: Some(10),
                pseudonym: Some("A-0123456789abcdef".into()),
                sequence: Some("MR_T1".into()),
                severity: Severity::Error,
                kind: "file_missing",
                field: "MR_T1_image".into(),
                reason: "file not found".into(),
            },
            Finding {
                line: Some(9),
                pseudonym: None,
                sequence: Some("PET".into()),
                severity: Severity::Note,
                kind: "not_listed",
                field: "PET_image".into(),
                reason: "no image listed".into(),
            },
        ],
    };
    let text = report.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    // Every row's REASON column starts where the header's does.
    let reason_column = lines[0].find("REASON").expect("header has REASON");
    assert_eq!(lines[1].find("file not found"), Some(reason_column));
    assert_eq!(lines[2].find("no image listed"), Some(reason_column));
    assert_eq!(
        lines[4],
        "2 patients, 2 image/mask pairs checked: 1 error, 1 note"
    );

    let one = CheckReport {
        patients: 1,
        pairs_checked: 1,
        findings: Vec::new(),
    };
    assert_eq!(
        one.render(),
        "1 patient, 1 image/mask pair checked: 0 errors, 0 notes\n"
    );
}
