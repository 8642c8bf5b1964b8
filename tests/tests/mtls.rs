//! End-to-end: mutual TLS between the coordinator's client and real worker
//! processes on loopback, with a study PKI made by rcgen for each run.
//!
//! The coordinator with the study's client certificate completes Describe.
//! Every other case is refused, and the error text names the cause. The
//! refused cases are a client without a certificate, a client certificate
//! from another CA, an expired worker certificate, a server name that the
//! worker's certificate does not contain, and a coordinator missing from
//! the worker's `allowed_clients`.
//!
//! The same cases run in dial-out mode, where the worker connects to the
//! coordinator's dial-in listener and the TLS roles are reversed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use radstudy::client::{CenterClient, CenterError, TlsTarget};
use radstudy::config::StudyConfig;
use radstudy::demo::WorkerProcess;
use radstudy::tls::{ClientTls, TlsSettings, explain_tls_failure};
use radstudy_e2e::{data_root, workspace_binary};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// Deadline of connecting and of Describe. Loopback handshakes take
/// milliseconds, so 20 s only bounds a hung test.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Name in every worker certificate, and the default expected name.
const WORKER_NAME: &str = "site-a.study.test";

/// Extended key usages of the worker and coordinator certificates, as
/// deploy/pki/make-study-pki.sh issues them: each side is the TLS server in
/// one mode and the TLS client in the other.
const BOTH_USAGES: &[ExtendedKeyUsagePurpose] = &[
    ExtendedKeyUsagePurpose::ServerAuth,
    ExtendedKeyUsagePurpose::ClientAuth,
];

/// A CA that signs certificates for the test.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SAN");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let certificate = params.self_signed(&key).expect("CA certificate");
        TestCa {
            issuer: Issuer::new(params, key),
            pem: certificate.pem(),
        }
    }

    /// Issues a certificate for `name` (CN and DNS SAN) and writes it and
    /// its key as `dir/stem.pem` and `dir/stem.key`.
    fn issue(
        &self,
        dir: &Path,
        stem: &str,
        name: &str,
        usages: &[ExtendedKeyUsagePurpose],
        not_after_unix: Option<u64>,
    ) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("SAN");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = usages.to_vec();
        if let Some(seconds) = not_after_unix {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(seconds);
        }
        let key = KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.issuer).expect("certificate");
        let cert_path = dir.join(format!("{stem}.pem"));
        let key_path = dir.join(format!("{stem}.key"));
        std::fs::write(&cert_path, certificate.pem()).expect("write certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.pem).expect("write CA certificate");
        path.to_path_buf()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Writes a worker config with `[tls]` and starts the worker on a free
/// loopback port.
fn start_worker(
    dir: &Path,
    name: &str,
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    allowed_clients: &[&str],
) -> WorkerProcess {
    start_worker_in_mode(dir, name, cert, key, client_ca, allowed_clients, None)
}

/// Starts a worker like [`start_worker`], listening, or dialling out with
/// the `[dial_out]` table `dial_out` when it is given.
fn start_worker_in_mode(
    dir: &Path,
    name: &str,
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    allowed_clients: &[&str],
    dial_out: Option<&str>,
) -> WorkerProcess {
    let manifest = dir.join(format!("{name}_manifest.csv"));
    let mut rows = String::from("patient_id,label,PET_image,PET_mask\n");
    for (patient, label) in [("STS_001", 0), ("STS_002", 1), ("STS_003", 0)] {
        rows.push_str(&format!(
            "{patient},{label},sts/{patient}/PET_image.nii.gz,sts/{patient}/PET_mask.nii.gz\n"
        ));
    }
    std::fs::write(&manifest, rows).expect("write manifest");
    std::fs::write(dir.join(format!("{name}.site.key")), "07".repeat(32)).expect("write key");
    let allowed: Vec<String> = allowed_clients.iter().map(|n| format!("{n:?}")).collect();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "center_id = \"A\"\n{listen}data_root = {root:?}\n\
             manifest = {manifest:?}\npseudonym_key_file = \"{name}.site.key\"\n\
             audit_log = \"{name}.audit.jsonl\"\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {client_ca:?}\n\
             allowed_clients = [{allowed}]\n{dial_out}",
            root = data_root(),
            allowed = allowed.join(", "),
            listen = if dial_out.is_some() {
                ""
            } else {
                "listen = \"127.0.0.1:0\"\n"
            },
            dial_out = dial_out.unwrap_or_default(),
        ),
    )
    .expect("write worker config");
    let binary = workspace_binary("radstudy-worker").expect("worker binary");
    WorkerProcess::start(&binary, &config, &dir.join(format!("{name}.log"))).expect("worker starts")
}

async fn connect(
    worker: &WorkerProcess,
    tls: &ClientTls,
    server_name: &str,
) -> Result<CenterClient, CenterError> {
    CenterClient::connect_with_tls(
        "A",
        &format!("https://{}", worker.address),
        CALL_TIMEOUT,
        CALL_TIMEOUT,
        Some(TlsTarget { tls, server_name }),
    )
    .await
}

/// Connects and calls Describe, returning the first error.
async fn describe(
    worker: &WorkerProcess,
    tls: &ClientTls,
    server_name: &str,
) -> Result<String, CenterError> {
    let mut client = connect(worker, tls, server_name).await?;
    let description = client.describe("mtls-study").await?;
    Ok(description.center_id)
}

/// Returns the cause of a TLS error, failing the test on any other result.
fn tls_cause(result: Result<String, CenterError>) -> String {
    match result {
        Err(CenterError::Tls { cause, message, .. }) => format!("{cause} ({message})"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// The study PKI of one run: the study CA, a worker certificate, the
/// coordinator's client certificate, and a client certificate from
/// another CA.
struct Pki {
    study_ca: PathBuf,
    worker: (PathBuf, PathBuf),
    coordinator: ClientTls,
    stranger: ClientTls,
    study: TestCa,
}

fn make_pki(dir: &Path) -> Pki {
    let study = TestCa::new("study CA");
    let study_ca = study.write(&dir.join("study-ca.pem"));
    let worker = study.issue(dir, "worker", WORKER_NAME, BOTH_USAGES, None);
    let (cert, key) = study.issue(dir, "coordinator", "coordinator", BOTH_USAGES, None);
    let coordinator = ClientTls::load(&TlsSettings {
        ca: study_ca.clone(),
        cert,
        key,
    })
    .expect("coordinator TLS files load");

    let other = TestCa::new("other CA");
    let (cert, key) = other.issue(dir, "stranger", "coordinator", BOTH_USAGES, None);
    let stranger = ClientTls::load(&TlsSettings {
        ca: study_ca.clone(),
        cert,
        key,
    })
    .expect("stranger TLS files load");
    Pki {
        study_ca,
        worker,
        coordinator,
        stranger,
        study,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_accepts_study_coordinator_and_audits_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let worker = start_worker(
        dir.path(),
        "open",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &["coordinator"],
    );

    let center = describe(&worker, &pki.coordinator, WORKER_NAME)
        .await
        .expect("the study's coordinator completes Describe");
    assert_eq!(center, "A");

    // The audit log names the caller by its certificate.
    let audit = std::fs::read_to_string(dir.path().join("open.audit.jsonl")).expect("audit log");
    let record: serde_json::Value =
        serde_json::from_str(audit.lines().next().expect("one record")).expect("JSON line");
    let requester = record["requester"].as_str().expect("requester is set");
    assert!(
        requester.starts_with("CN=coordinator DNS=coordinator from 127.0.0.1:"),
        "{requester}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_rejects_client_without_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let worker = start_worker(
        dir.path(),
        "nocert",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &[],
    );

    // The coordinator always presents a certificate, so a bare rustls
    // client that trusts the study CA plays the unauthenticated caller.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(&pki.study_ca).expect("read CA");
    use rustls::pki_types::pem::PemObject;
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(&ca_pem) {
        roots
            .add(certificate.expect("CA PEM"))
            .expect("CA is a trust anchor");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&worker.address)
        .await
        .expect("TCP connect");
    let name = rustls::pki_types::ServerName::try_from(WORKER_NAME).expect("server name");
    // Under TLS 1.3 the client's side of the handshake can finish before
    // the worker checks for a certificate, so the rejection may arrive only
    // with the first read.
    let outcome = async {
        let mut stream = connector.connect(name, tcp).await?;
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await?;
        let mut buffer = [0u8; 64];
        stream.read(&mut buffer).await
    }
    .await;
    let error = outcome.expect_err("the worker refuses a client without a certificate");
    let message = error.to_string();
    assert!(message.contains("CertificateRequired"), "{message}");
    let explanation = explain_tls_failure(&message, WORKER_NAME).expect("a TLS failure");
    assert!(
        explanation.contains("requires a client certificate"),
        "{explanation}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_rejects_client_certificate_of_other_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let worker = start_worker(
        dir.path(),
        "stranger",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &[],
    );
    let cause = tls_cause(describe(&worker, &pki.stranger, WORKER_NAME).await);
    assert!(
        cause.contains("not signed by a CA in the worker's tls.client_ca"),
        "{cause}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_rejects_wrong_server_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let worker = start_worker(
        dir.path(),
        "name",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &[],
    );
    let cause = tls_cause(describe(&worker, &pki.coordinator, "site-b.study.test").await);
    assert!(cause.contains("server name does not match"), "{cause}");
    assert!(cause.contains("site-b.study.test"), "{cause}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_rejects_coordinator_not_in_allowed_clients() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let worker = start_worker(
        dir.path(),
        "allowed",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &["other-coordinator"],
    );
    let cause = tls_cause(describe(&worker, &pki.coordinator, WORKER_NAME).await);
    assert!(cause.contains("tls.allowed_clients"), "{cause}");
    let log = std::fs::read_to_string(dir.path().join("allowed.log")).expect("worker log");
    assert!(
        log.contains("none of its names is in tls.allowed_clients"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_reports_expired_worker_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    // The worker refuses to start with an expired certificate, so this one
    // expires while the worker runs, as a certificate left unrenewed in a
    // long study would. Six seconds cover the worker's startup.
    let not_after = unix_now() + 6;
    let (cert, key) = pki.study.issue(
        dir.path(),
        "short-lived",
        WORKER_NAME,
        BOTH_USAGES,
        Some(not_after),
    );
    let worker = start_worker(dir.path(), "expired", &cert, &key, &pki.study_ca, &[]);
    // One second past not_after, because X.509 times have whole seconds.
    let wait = (not_after + 1).saturating_sub(unix_now());
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(500)).await;

    let cause = tls_cause(describe(&worker, &pki.coordinator, WORKER_NAME).await);
    assert!(cause.contains("certificate has expired"), "{cause}");
}

// Dial-out mode: the worker dials the coordinator's dial-in listener, so
// the TLS roles are reversed, and every identity check of direct mode must
// hold in reverse. A rejected worker never reaches the coordinator's
// standbys, so the coordinator's connection times out, and the worker's
// log names the cause.

/// How long the coordinator waits for a dial-out worker. The workers below
/// redial at least every second, so 4 s covers several attempts.
const DIAL_IN_WAIT_S: u64 = 4;

/// Writes a study.toml with the coordinator identity `tls`, one dial-out
/// center A whose worker certificate must name `server_name`, and a dial-in
/// listener on a free loopback port, then loads it.
fn dial_out_study(dir: &Path, tls: &ClientTls, server_name: &str) -> StudyConfig {
    let path = dir.join("study.toml");
    std::fs::write(
        &path,
        format!(
            "study_id = \"mtls-study\"\nsequences = [\"PET\"]\n\
             [[centers]]\nid = \"A\"\nrole = \"development\"\nmode = \"dial_out\"\n\
             server_name = {server_name:?}\n\
             [dial_in]\nlisten = \"127.0.0.1:0\"\nwait_s = {DIAL_IN_WAIT_S}\n\
             [tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n",
            ca = tls.settings.ca,
            cert = tls.settings.cert,
            key = tls.settings.key,
        ),
    )
    .expect("write study.toml");
    StudyConfig::load(&path).expect("study.toml loads")
}

/// Starts the study's dial-in listener and returns its address.
async fn start_listener(study: &StudyConfig) -> std::net::SocketAddr {
    let dial_in = study.dial_in.as_ref().expect("[dial_in] is set");
    dial_in
        .start(study)
        .await
        .expect("dial-in listener starts")
        .local_addr()
}

/// Returns the `[dial_out]` table of a worker that dials `listener` and expects
/// the coordinator's certificate to name `server_name`.
fn dial_out_table(listener: std::net::SocketAddr, server_name: &str) -> String {
    format!(
        "[dial_out]\ncoordinator = \"{listener}\"\nserver_name = {server_name:?}\nbackoff_max_s = 1\n"
    )
}

/// Connects to the study's center A and calls Describe.
async fn describe_dial_out(study: &StudyConfig) -> Result<String, CenterError> {
    let center = study.centers[0].clone();
    let mut client = CenterClient::connect_for_study(study, &center).await?;
    let description = client.describe("mtls-study").await?;
    Ok(description.center_id)
}

/// Asserts that the coordinator found no admitted connection of center A,
/// and returns the worker's log.
fn assert_rejected(result: Result<String, CenterError>, dir: &Path, name: &str) -> String {
    match result {
        Err(CenterError::Connect { message, .. }) => assert!(
            message.contains("no connection from the worker of center A"),
            "{message}"
        ),
        other => panic!("expected no admitted connection, got {other:?}"),
    }
    std::fs::read_to_string(dir.join(format!("{name}.log"))).expect("worker log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_accepts_and_audits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let study = dial_out_study(dir.path(), &pki.coordinator, WORKER_NAME);
    let listener = start_listener(&study).await;
    let _worker = start_worker_in_mode(
        dir.path(),
        "dialer",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &["coordinator"],
        Some(&dial_out_table(listener, "coordinator")),
    );

    let center = describe_dial_out(&study)
        .await
        .expect("the study's worker dials in and completes Describe");
    assert_eq!(center, "A");

    // The audit log names the coordinator by its certificate and by the
    // address that the worker dialled.
    let audit = std::fs::read_to_string(dir.path().join("dialer.audit.jsonl")).expect("audit log");
    let record: serde_json::Value =
        serde_json::from_str(audit.lines().next().expect("one record")).expect("JSON line");
    let requester = record["requester"].as_str().expect("requester is set");
    assert_eq!(
        requester,
        format!("CN=coordinator DNS=coordinator from {listener}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_rejects_client_without_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let study = dial_out_study(dir.path(), &pki.coordinator, WORKER_NAME);
    let listener = start_listener(&study).await;

    // A bare rustls client that trusts the study CA, with no certificate,
    // plays a worker without [tls] reaching a TLS listener.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(&pki.study_ca).expect("read CA");
    use rustls::pki_types::pem::PemObject;
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(&ca_pem) {
        roots
            .add(certificate.expect("CA PEM"))
            .expect("CA is a trust anchor");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(listener)
        .await
        .expect("TCP connect");
    let name = rustls::pki_types::ServerName::try_from("coordinator").expect("server name");
    // Under TLS 1.3 the rejection arrives with the first read.
    let outcome = async {
        let mut stream = connector.connect(name, tcp).await?;
        stream
            .write_all(radstudy_proto::dial_out::hello_line("A").as_bytes())
            .await?;
        let mut buffer = [0u8; 64];
        stream.read(&mut buffer).await
    }
    .await;
    let error = outcome.expect_err("the listener refuses a client without a certificate");
    assert!(error.to_string().contains("CertificateRequired"), "{error}");

    // Nothing was admitted for center A.
    let rejected = describe_dial_out(&study).await;
    assert!(
        matches!(rejected, Err(CenterError::Connect { .. })),
        "{rejected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_rejects_worker_of_other_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let study = dial_out_study(dir.path(), &pki.coordinator, WORKER_NAME);
    let listener = start_listener(&study).await;
    let _worker = start_worker_in_mode(
        dir.path(),
        "stranger",
        &pki.stranger.settings.cert,
        &pki.stranger.settings.key,
        &pki.study_ca,
        &[],
        Some(&dial_out_table(listener, "coordinator")),
    );
    let log = assert_rejected(describe_dial_out(&study).await, dir.path(), "stranger");
    assert!(
        log.contains(
            "rejected the worker's certificate: it is not signed by a CA in the study's tls.ca"
        ),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_rejects_coordinator_of_other_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    // The coordinator presents a certificate of another CA, which the
    // worker's client_ca does not contain.
    let study = dial_out_study(dir.path(), &pki.stranger, WORKER_NAME);
    let listener = start_listener(&study).await;
    let _worker = start_worker_in_mode(
        dir.path(),
        "trusting",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &[],
        Some(&dial_out_table(listener, "coordinator")),
    );
    let log = assert_rejected(describe_dial_out(&study).await, dir.path(), "trusting");
    assert!(log.contains("not signed by a CA in tls.client_ca"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_rejects_wrong_coordinator_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let study = dial_out_study(dir.path(), &pki.coordinator, WORKER_NAME);
    let listener = start_listener(&study).await;
    let _worker = start_worker_in_mode(
        dir.path(),
        "name",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &[],
        Some(&dial_out_table(listener, "other-coordinator")),
    );
    let log = assert_rejected(describe_dial_out(&study).await, dir.path(), "name");
    assert!(log.contains("set [dial_out] server_name"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_rejects_unlisted_coordinator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let study = dial_out_study(dir.path(), &pki.coordinator, WORKER_NAME);
    let listener = start_listener(&study).await;
    let _worker = start_worker_in_mode(
        dir.path(),
        "allowed",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &["other-coordinator"],
        Some(&dial_out_table(listener, "coordinator")),
    );
    let log = assert_rejected(describe_dial_out(&study).await, dir.path(), "allowed");
    assert!(
        log.contains("none of its names is in tls.allowed_clients"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_rejects_worker_of_no_center() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    // Center A expects another worker certificate.
    let study = dial_out_study(dir.path(), &pki.coordinator, "site-b.study.test");
    let listener = start_listener(&study).await;
    let _worker = start_worker_in_mode(
        dir.path(),
        "unlisted",
        &pki.worker.0,
        &pki.worker.1,
        &pki.study_ca,
        &[],
        Some(&dial_out_table(listener, "coordinator")),
    );
    let log = assert_rejected(describe_dial_out(&study).await, dir.path(), "unlisted");
    // The coordinator's ERROR line reaches the worker's log.
    assert!(
        log.contains("no dial-out center of this study has a server_name among the certificate"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_mtls_rejects_expired_worker_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let study = dial_out_study(dir.path(), &pki.coordinator, WORKER_NAME);
    let listener = start_listener(&study).await;

    // As in direct mode, the certificate expires while the worker runs.
    // The worker's first standby is admitted before it expires, so the
    // coordinator claims it only after not_after, when the worker redials.
    let not_after = unix_now() + 6;
    let (cert, key) = pki.study.issue(
        dir.path(),
        "short-lived",
        WORKER_NAME,
        BOTH_USAGES,
        Some(not_after),
    );
    let _worker = start_worker_in_mode(
        dir.path(),
        "expired",
        &cert,
        &key,
        &pki.study_ca,
        &[],
        // The idle redial of 10 s, the least allowed, replaces the standby
        // admitted before expiry.
        Some(&format!(
            "{}idle_redial_s = 10\n",
            dial_out_table(listener, "coordinator")
        )),
    );

    let wait = (not_after + 1).saturating_sub(unix_now());
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(500)).await;

    let log_path = dir.path().join("expired.log");
    // Wait for the worker's redial after its idle standby closes.
    let started = std::time::Instant::now();
    let mut log = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        log = std::fs::read_to_string(&log_path).expect("worker log");
        if log.contains("rejected the worker's certificate as expired") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        log.contains("rejected the worker's certificate as expired"),
        "{log}"
    );
}
