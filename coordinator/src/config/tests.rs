use super::*;

const STUDY: &str = r#"
study_id = "s1"
sequences = ["T1W"]
[[centers]]
id = "A"
endpoint = "http://127.0.0.1:1"
role = "development"
[[centers]]
id = "B"
endpoint = "http://127.0.0.1:2"
role = "external"
"#;

#[test]
fn study_config_defaults_follow_method() {
    let study = StudyConfig::parse(STUDY, Path::new("study.toml")).expect("valid study");
    assert_eq!(study.seed, 42);
    assert_eq!(study.split.train_fraction, 0.7);
    assert_eq!(study.model.mwu_alpha, 0.05);
    assert_eq!(study.model.c, 1.0);
    assert_eq!(study.features.bin_width, 25.0);
    assert_eq!(study.model.best_region, BestRegionRule::CvAuc);
    assert_eq!(study.model.cv_folds, 10);
    assert_eq!(study.model.cv_repeats, 10);
    assert_eq!(study.model.fusion, FusionMethod::Concat);
}

#[test]
fn study_config_reads_region_and_fusion_keys() {
    let text = format!(
        "{STUDY}\n[model]\nbest_region = \"internal_validation\"\ncv_folds = 5\ncv_repeats = 3\nfusion = \"stacking\"\n"
    );
    let study = StudyConfig::parse(&text, Path::new("study.toml")).expect("valid study");
    assert_eq!(study.model.best_region, BestRegionRule::InternalValidation);
    assert_eq!(study.model.cv_folds, 5);
    assert_eq!(study.model.cv_repeats, 3);
    assert_eq!(study.model.fusion, FusionMethod::Stacking);
}

#[test]
fn study_config_rejects_one_cv_fold() {
    let text = format!("{STUDY}\n[model]\ncv_folds = 1\n");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("model.cv_folds"), "{error}");
}

#[test]
fn study_config_rejects_zero_cv_repeats() {
    let text = format!("{STUDY}\n[model]\ncv_repeats = 0\n");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("model.cv_repeats"), "{error}");
}

#[test]
fn study_config_rejects_unknown_fusion() {
    let text = format!("{STUDY}\n[model]\nfusion = \"average\"\n");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("average"), "{error}");
}

#[test]
fn study_config_rejects_duplicate_center() {
    let text = STUDY.replace("id = \"B\"", "id = \"A\"");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("centers.id"), "{error}");
}

#[test]
fn study_config_rejects_out_of_range_fraction() {
    let text = format!("{STUDY}\n[split]\ntrain_fraction = 0.95\n");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(
        error.to_string().contains("split.train_fraction"),
        "{error}"
    );
}

#[test]
fn study_config_requires_development_center() {
    let text = STUDY.replace("role = \"development\"", "role = \"external\"");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("development"), "{error}");
}

#[test]
fn study_config_rejects_plaintext_to_remote_worker() {
    let text = STUDY.replace("http://127.0.0.1:2", "http://worker-b.example:50051");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("centers.endpoint"), "{error}");
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[test]
fn study_config_accepts_plaintext_on_loopback() {
    let text = STUDY
        .replace("http://127.0.0.1:1", "http://localhost:50051")
        .replace("http://127.0.0.1:2", "http://[::1]:50052");
    let study = StudyConfig::parse(&text, Path::new("study.toml")).expect("loopback");
    assert!(study.tls.is_none());
}

#[test]
fn study_config_https_needs_tls_table() {
    let text = STUDY.replace("http://127.0.0.1:2", "https://worker-b.example:50051");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("[tls]"), "{error}");
}

#[test]
fn study_config_server_name_needs_https() {
    let text = STUDY.replace(
        "role = \"external\"",
        "role = \"external\"\nserver_name = \"worker-b\"",
    );
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("server_name"), "{error}");
}

#[test]
fn study_config_tls_missing_file_is_named() {
    let text = format!(
        "{}\n[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/c.pem\"\nkey = \"pki/c.key\"\n",
        STUDY.replace("http://127.0.0.1:2", "https://worker-b.example:50051")
    );
    let error = StudyConfig::parse(&text, Path::new("/nonexistent/study.toml")).unwrap_err();
    // Relative paths are resolved against the folder of study.toml.
    assert!(
        error.to_string().contains("/nonexistent/pki/ca.pem"),
        "{error}"
    );
    assert!(error.to_string().contains("tls.ca"), "{error}");
}

#[test]
fn study_config_tls_missing_file_cause_once() {
    let text = format!(
        "{}\n[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/c.pem\"\nkey = \"pki/c.key\"\n",
        STUDY.replace("http://127.0.0.1:2", "https://worker-b.example:50051")
    );
    let error = StudyConfig::parse(&text, Path::new("/nonexistent/study.toml")).unwrap_err();
    // `radstudy` prints errors with anyhow's `{:#}`, which appends the
    // message of every `source()`. The operating system's "No such file
    // or directory (os error 2)" must appear once, not once per layer.
    let printed = format!("{:#}", anyhow::Error::from(error));
    assert_eq!(printed.matches("os error").count(), 1, "{printed}");
    assert!(
        printed.ends_with("check the path in the [tls] table"),
        "{printed}"
    );
}

#[test]
fn study_config_tls_table_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["coordinator".into()]).expect("valid SAN");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let certificate = params.self_signed(&key).expect("self-signed");
    std::fs::write(dir.path().join("c.pem"), certificate.pem()).expect("write cert");
    std::fs::write(dir.path().join("c.key"), key.serialize_pem()).expect("write key");
    let text = format!(
        "{}\nserver_name = \"site-b\"\n[tls]\nca = \"c.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n",
        STUDY.replace("http://127.0.0.1:2", "https://10.1.2.3:50051")
    );
    let study = StudyConfig::parse(&text, &dir.path().join("study.toml"))
        .expect("study with [tls] is valid");
    let tls = study.tls.expect("[tls] is loaded");
    assert_eq!(tls.settings.key, dir.path().join("c.key"));
    assert_eq!(study.centers[1].server_name.as_deref(), Some("site-b"));
}

#[test]
fn study_config_names_unknown_key() {
    let text = format!("{STUDY}\n[model]\nalpha = 0.1\n");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("alpha"), "{error}");
}

/// STUDY with center B in dial-out mode over plaintext loopback.
fn dial_out_study() -> String {
    format!(
        "{}\n[dial_in]\nlisten = \"127.0.0.1:0\"\n",
        STUDY.replace("endpoint = \"http://127.0.0.1:2\"", "mode = \"dial_out\"")
    )
}

#[test]
fn study_config_dial_out_center_is_parsed() {
    let study =
        StudyConfig::parse(&dial_out_study(), Path::new("study.toml")).expect("valid study");
    assert_eq!(study.centers[0].mode, CenterMode::Direct);
    assert_eq!(study.centers[1].mode, CenterMode::DialOut);
    assert_eq!(study.centers[1].endpoint, "");
    let dial_in = study.dial_in.expect("[dial_in] is kept");
    assert_eq!(dial_in.settings.listen, "127.0.0.1:0");
    assert_eq!(dial_in.settings.wait_s, 60);
}

#[test]
fn study_config_dial_out_needs_dial_in_table() {
    let text = dial_out_study().replace("[dial_in]\nlisten = \"127.0.0.1:0\"\n", "");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("centers.mode"), "{error}");
    assert!(error.to_string().contains("[dial_in]"), "{error}");
}

#[test]
fn study_config_dial_out_with_endpoint_is_rejected() {
    let text = dial_out_study().replace(
        "mode = \"dial_out\"",
        "mode = \"dial_out\"\nendpoint = \"http://127.0.0.1:2\"",
    );
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("remove endpoint"), "{error}");
}

#[test]
fn study_config_dial_in_rejects_public_plaintext() {
    let text = dial_out_study().replace("127.0.0.1:0", "0.0.0.0:7443");
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("dial_in.listen"), "{error}");
    assert!(error.to_string().contains("[tls]"), "{error}");
}

#[test]
fn study_config_dial_out_plaintext_rejects_server_name() {
    let text = dial_out_study().replace(
        "mode = \"dial_out\"",
        "mode = \"dial_out\"\nserver_name = \"worker-b\"",
    );
    let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
    assert!(error.to_string().contains("centers.server_name"), "{error}");
}
