use super::*;

const MINIMAL: &str = r#"
center_id = "A"
data_root = "data"
manifest = "manifest.csv"
pseudonym_key_file = "site.key"
"#;

#[test]
fn config_minimal_gets_defaults_and_resolved_paths() {
    let config = WorkerConfig::parse(MINIMAL, Path::new("/etc/radstudy"), Path::new("w.toml"))
        .expect("minimal config is valid");
    assert_eq!(config.data_root, PathBuf::from("/etc/radstudy/data"));
    assert_eq!(config.manifest, PathBuf::from("/etc/radstudy/manifest.csv"));
    assert_eq!(config.listen.port(), 50051);
    assert_eq!(config.metrics_listen, None);
    assert_eq!(config.policy.min_patients, 5);
    assert!(!config.policy.share_feature_tables);
    assert!(config.policy.scores_only_validation);
    assert_eq!(config.policy, Policy::default());
    assert_eq!(config.max_rounds_kept, 64);
    assert_eq!(config.audit_log, PathBuf::from("/etc/radstudy/audit.jsonl"));
    assert_eq!(config.cache_dir, PathBuf::from("/etc/radstudy/cache"));
}

#[test]
fn config_cache_dir_is_resolved() {
    let text = format!("{MINIMAL}\ncache_dir = \"/var/cache/radstudy\"\n");
    let config = WorkerConfig::parse(&text, Path::new("/etc/radstudy"), Path::new("w.toml"))
        .expect("config with cache_dir is valid");
    assert_eq!(config.cache_dir, PathBuf::from("/var/cache/radstudy"));
}

#[test]
fn config_audit_log_is_resolved() {
    let text = format!("{MINIMAL}\naudit_log = \"logs/audit.jsonl\"\n");
    let config = WorkerConfig::parse(&text, Path::new("/etc/radstudy"), Path::new("w.toml"))
        .expect("config with audit_log is valid");
    assert_eq!(
        config.audit_log,
        PathBuf::from("/etc/radstudy/logs/audit.jsonl")
    );
}

#[test]
fn config_max_rounds_kept_zero_is_rejected() {
    let text = format!("{MINIMAL}\nmax_rounds_kept = 0\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("max_rounds_kept"), "{error}");
    assert!(error.to_string().contains("at least 1"), "{error}");
}

#[test]
fn config_max_rounds_kept_is_parsed() {
    let text = format!("{MINIMAL}\nmax_rounds_kept = 3\n");
    let config = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml"))
        .expect("config with max_rounds_kept is valid");
    assert_eq!(config.max_rounds_kept, 3);
}

#[test]
fn config_scores_only_validation_can_be_turned_off() {
    let text = format!("{MINIMAL}\n[policy]\nscores_only_validation = false\n");
    let config = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml"))
        .expect("config with scores_only_validation is valid");
    assert!(!config.policy.scores_only_validation);
}

#[test]
fn config_unknown_key_is_named() {
    let text = format!("{MINIMAL}\nshare_tables = true\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("share_tables"), "{error}");
}

#[test]
fn config_bad_center_id_is_rejected() {
    let text = MINIMAL.replace("\"A\"", "\"A B\"");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("center_id"), "{error}");
}

#[test]
fn config_bad_listen_address_is_rejected() {
    let text = format!("{MINIMAL}\nlisten = \"localhost\"\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("listen"), "{error}");
}

#[test]
fn config_metrics_listen_is_parsed() {
    let text = format!("{MINIMAL}\nmetrics_listen = \"127.0.0.1:9464\"\n");
    let config = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml"))
        .expect("config with metrics_listen is valid");
    assert_eq!(
        config.metrics_listen,
        Some("127.0.0.1:9464".parse().unwrap())
    );
}

#[test]
fn config_bad_metrics_listen_is_rejected() {
    let text = format!("{MINIMAL}\nmetrics_listen = \"9464\"\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("metrics_listen"), "{error}");
}

#[test]
fn config_plaintext_on_public_address_is_rejected() {
    let text = format!("{MINIMAL}\nlisten = \"0.0.0.0:50051\"\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("`listen`"), "{error}");
    assert!(error.to_string().contains("[tls]"), "{error}");
}

#[test]
fn config_plaintext_on_ipv6_loopback_is_allowed() {
    let text = format!("{MINIMAL}\nlisten = \"[::1]:50051\"\n");
    let config =
        WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).expect("::1 is loopback");
    assert!(config.tls.is_none());
}

#[test]
fn config_tls_table_is_resolved() {
    let text = format!(
        "{MINIMAL}\nlisten = \"0.0.0.0:50051\"\n[tls]\ncert = \"tls/a.pem\"\nkey = \"/keys/a.key\"\n\
         client_ca = \"tls/ca.pem\"\nallowed_clients = [\"coordinator\"]\n"
    );
    let config = WorkerConfig::parse(&text, Path::new("/etc/radstudy"), Path::new("w.toml"))
        .expect("config with [tls] may listen on all interfaces");
    let tls = config.tls.expect("[tls] is kept");
    assert_eq!(tls.cert, PathBuf::from("/etc/radstudy/tls/a.pem"));
    assert_eq!(tls.key, PathBuf::from("/keys/a.key"));
    assert_eq!(tls.client_ca, PathBuf::from("/etc/radstudy/tls/ca.pem"));
    assert_eq!(tls.allowed_clients, ["coordinator"]);
}

#[test]
fn config_tls_without_client_ca_is_rejected() {
    let text = format!("{MINIMAL}\n[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("client_ca"), "{error}");
}

#[test]
fn config_tls_empty_allowed_client_is_rejected() {
    let text = format!(
        "{MINIMAL}\n[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nclient_ca = \"ca.pem\"\nallowed_clients = [\"\"]\n"
    );
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("tls.allowed_clients"), "{error}");
}

#[test]
fn config_metrics_on_grpc_address_is_rejected() {
    let text =
        format!("{MINIMAL}\nlisten = \"127.0.0.1:50051\"\nmetrics_listen = \"127.0.0.1:50051\"\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("other than `listen`"), "{error}");
}

#[test]
fn config_dial_out_table_is_parsed() {
    let text =
        format!("{MINIMAL}\n[dial_out]\ncoordinator = \"127.0.0.1:7443\"\nbackoff_max_s = 60\n");
    let config = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml"))
        .expect("plaintext dial-out to loopback is valid");
    let dial_out = config.dial_out.expect("[dial_out] is kept");
    assert_eq!(dial_out.coordinator, "127.0.0.1:7443");
    assert_eq!(dial_out.server_name(), "127.0.0.1");
    assert_eq!(dial_out.backoff_initial_s, 1);
    assert_eq!(dial_out.backoff_max_s, 60);
    assert_eq!(dial_out.idle_redial_s, 180);
}

#[test]
fn config_dial_out_with_listen_is_rejected() {
    let text = format!(
        "{MINIMAL}\nlisten = \"127.0.0.1:50051\"\n[dial_out]\ncoordinator = \"127.0.0.1:7443\"\n"
    );
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(error.to_string().contains("`listen`"), "{error}");
    assert!(error.to_string().contains("remove `listen`"), "{error}");
}

#[test]
fn config_dial_out_plaintext_to_remote_is_rejected() {
    let text = format!("{MINIMAL}\n[dial_out]\ncoordinator = \"study.example.org:7443\"\n");
    let error = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml")).unwrap_err();
    assert!(
        error.to_string().contains("dial_out.coordinator"),
        "{error}"
    );
    assert!(error.to_string().contains("[tls]"), "{error}");
}

#[test]
fn config_dial_out_tls_allows_remote() {
    let text = format!(
        "{MINIMAL}\n[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nclient_ca = \"ca.pem\"\n\
         [dial_out]\ncoordinator = \"study.example.org:7443\"\nserver_name = \"coordinator\"\n"
    );
    let config = WorkerConfig::parse(&text, Path::new("."), Path::new("w.toml"))
        .expect("dial-out over TLS may reach any host");
    let dial_out = config.dial_out.expect("[dial_out] is kept");
    assert_eq!(dial_out.server_name(), "coordinator");
}
