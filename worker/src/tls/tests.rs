//! Unit tests of loading `[tls]` files, with certificates made by rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

use super::*;

/// A study CA and a worker certificate it issued, written as PEM files
/// into `_dir`, which lives as long as the settings are used.
struct Files {
    _dir: tempfile::TempDir,
    settings: TlsSettings,
}

fn ca() -> (Issuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SAN");
    params
        .distinguished_name
        .push(DnType::CommonName, "study CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("CA key");
    let certificate = params.self_signed(&key).expect("CA certificate");
    (Issuer::new(params, key), certificate.pem())
}

/// Writes the files; `adjust` changes the worker certificate's parameters.
fn write_files(adjust: impl FnOnce(&mut CertificateParams)) -> Files {
    let dir = tempfile::tempdir().expect("temp dir");
    let (issuer, ca_pem) = ca();
    let mut params = CertificateParams::new(vec!["site-a".into()]).expect("SAN");
    params.distinguished_name.push(DnType::CommonName, "site-a");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    adjust(&mut params);
    let key = KeyPair::generate().expect("worker key");
    let certificate = params.signed_by(&key, &issuer).expect("worker certificate");
    std::fs::write(dir.path().join("ca.pem"), ca_pem).expect("write CA");
    std::fs::write(dir.path().join("cert.pem"), certificate.pem()).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key");
    let settings = TlsSettings {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        client_ca: dir.path().join("ca.pem"),
        allowed_clients: Vec::new(),
    };
    Files {
        _dir: dir,
        settings,
    }
}

#[test]
fn server_tls_loads_valid_files() {
    let files = write_files(|_| {});
    let tls = ServerTls::load(&files.settings).expect("valid files load");
    assert_eq!(tls.certificate.common_name.as_deref(), Some("site-a"));
    assert_eq!(tls.certificate.dns_names, ["site-a"]);
}

#[test]
fn server_tls_missing_key_names_file() {
    let files = write_files(|_| {});
    std::fs::remove_file(&files.settings.key).expect("remove key");
    let error = ServerTls::load(&files.settings).unwrap_err().to_string();
    assert!(error.contains("cannot read tls.key"), "{error}");
    assert!(error.contains("key.pem"), "{error}");
}

#[test]
fn server_tls_key_of_other_certificate_is_rejected() {
    let files = write_files(|_| {});
    let other = KeyPair::generate().expect("other key");
    std::fs::write(&files.settings.key, other.serialize_pem()).expect("write other key");
    let error = ServerTls::load(&files.settings).unwrap_err().to_string();
    assert!(
        error.contains("does not belong to the certificate"),
        "{error}"
    );
}

#[test]
fn server_tls_expired_certificate_names_date() {
    // 2020-01-01 to 2021-01-01: expired for any run of this test.
    let files = write_files(|params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let error = ServerTls::load(&files.settings).unwrap_err().to_string();
    assert!(error.contains("expired on 2021-01-01"), "{error}");
    assert!(error.contains("tls.cert"), "{error}");
}

#[test]
fn server_tls_future_certificate_is_rejected() {
    let files = write_files(|params| {
        params.not_before = rcgen::date_time_ymd(2090, 1, 1);
        params.not_after = rcgen::date_time_ymd(2091, 1, 1);
    });
    let error = ServerTls::load(&files.settings).unwrap_err().to_string();
    assert!(error.contains("not valid before 2090-01-01"), "{error}");
}

#[test]
fn server_tls_client_ca_without_certificate() {
    let files = write_files(|_| {});
    let settings = TlsSettings {
        client_ca: files.settings.key.clone(),
        ..files.settings.clone()
    };
    let error = ServerTls::load(&settings).unwrap_err().to_string();
    assert!(error.contains("tls.client_ca"), "{error}");
    assert!(error.contains("no CERTIFICATE PEM block"), "{error}");
}

#[test]
fn server_tls_days_left_counts_whole_days() {
    let files = write_files(|_| {});
    let tls = ServerTls::load(&files.settings).expect("valid files load");
    let not_after = tls.certificate.not_after;
    assert_eq!(tls.days_left(not_after - 86_400), 1);
    assert_eq!(tls.days_left(not_after - 86_399), 0);
}
