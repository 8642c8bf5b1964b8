//! Unit tests of the study's `[tls]` files and of the handshake
//! explanations, with certificates made by rcgen.

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};

use super::*;

/// A self-signed client certificate and its key, written into `_dir`;
/// the certificate is also the CA bundle.
struct Files {
    _dir: tempfile::TempDir,
    settings: TlsSettings,
}

fn write_files(adjust: impl FnOnce(&mut CertificateParams)) -> Files {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut params = CertificateParams::new(vec!["coordinator".into()]).expect("SAN");
    params
        .distinguished_name
        .push(DnType::CommonName, "coordinator");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    adjust(&mut params);
    let key = KeyPair::generate().expect("key");
    let certificate = params.self_signed(&key).expect("self-signed");
    std::fs::write(dir.path().join("cert.pem"), certificate.pem()).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key");
    let settings = TlsSettings {
        ca: dir.path().join("cert.pem"),
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    Files {
        _dir: dir,
        settings,
    }
}

#[test]
fn client_tls_loads_valid_files() {
    let files = write_files(|_| {});
    let tls = ClientTls::load(&files.settings).expect("valid files load");
    assert_eq!(tls.settings, files.settings);
    // The key must not appear in debug output.
    let debug = format!("{tls:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}

#[test]
fn client_tls_missing_ca_names_file() {
    let files = write_files(|_| {});
    let settings = TlsSettings {
        ca: files.settings.ca.with_file_name("absent-ca.pem"),
        ..files.settings.clone()
    };
    let error = ClientTls::load(&settings).unwrap_err().to_string();
    assert!(error.contains("cannot read tls.ca"), "{error}");
    assert!(error.contains("absent-ca.pem"), "{error}");
}

#[test]
fn client_tls_key_of_other_certificate_is_rejected() {
    let files = write_files(|_| {});
    let other = KeyPair::generate().expect("other key");
    std::fs::write(&files.settings.key, other.serialize_pem()).expect("write other key");
    let error = ClientTls::load(&files.settings).unwrap_err().to_string();
    assert!(
        error.contains("does not belong to the certificate"),
        "{error}"
    );
}

#[test]
fn client_tls_expired_certificate_names_date() {
    let files = write_files(|params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 3, 1);
    });
    let error = ClientTls::load(&files.settings).unwrap_err().to_string();
    // The CA bundle is the same file, and it is checked first.
    assert!(error.contains("tls.ca"), "{error}");
    assert!(
        error.contains("expired on 2021-03-01 00:00:00 UTC"),
        "{error}"
    );
}

#[test]
fn client_tls_key_as_ca_bundle_is_rejected() {
    let files = write_files(|_| {});
    let settings = TlsSettings {
        ca: files.settings.key.clone(),
        ..files.settings.clone()
    };
    let error = ClientTls::load(&settings).unwrap_err().to_string();
    assert!(error.contains("no CERTIFICATE block"), "{error}");
}

#[test]
fn loopback_hosts_are_recognised() {
    for host in [
        "127.0.0.1",
        "127.3.2.1",
        "::1",
        "[::1]",
        "localhost",
        "LOCALHOST",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in ["10.0.0.1", "worker-a", "0.0.0.0", "::", "localhost.example"] {
        assert!(!is_loopback_host(host), "{host}");
    }
}

#[test]
fn tls_failures_are_explained() {
    // Messages as rustls 0.23.48 formats them (src/error.rs).
    let cases = [
        (
            "invalid peer certificate: UnknownIssuer",
            "not signed by a CA in tls.ca",
        ),
        // Seen with a tls.ca from a second run of make-study-pki.sh, whose
        // CA has the same name as the one that signed the worker.
        (
            "invalid peer certificate: BadSignature",
            "another CA of the same name",
        ),
        (
            "invalid peer certificate: certificate not valid for name \"site-x\"; certificate is only valid for site-a",
            "server name does not match",
        ),
        (
            "invalid peer certificate: certificate expired: verification time 2 (UNIX), but certificate is not valid after 1 (1 seconds ago)",
            "certificate has expired",
        ),
        (
            "received fatal alert: CertificateRequired",
            "requires a client certificate",
        ),
        ("received fatal alert: UnknownCA", "worker's tls.client_ca"),
        ("received fatal alert: AccessDenied", "tls.allowed_clients"),
        (
            "received corrupt message of type InvalidContentType",
            "does not answer with TLS",
        ),
    ];
    for (chain, expected) in cases {
        let explanation = explain_tls_failure(&format!("transport error: {chain}"), "site-x")
            .unwrap_or_else(|| panic!("no explanation for {chain}"));
        assert!(explanation.contains(expected), "{chain}: {explanation}");
    }
    assert_eq!(
        explain_tls_failure("tcp connect error: Connection refused", "site-x"),
        None
    );
}
