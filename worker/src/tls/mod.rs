//! Mutual TLS on the worker's gRPC listener.
//!
//! With a `[tls]` table in worker.toml the worker serves TLS 1.2 and 1.3
//! (rustls with the ring provider) and requires a client certificate that
//! chains to a CA in `client_ca`. With `allowed_clients` set, the client
//! certificate's subject CN or one of its subjectAltName DNS names must also
//! be in that list. Both checks run in the TLS handshake, so a rejected
//! client never reaches a gRPC service or the audit log. The worker logs
//! each rejected handshake with the peer address instead.
//!
//! Without `[tls]` the worker serves plaintext gRPC, which the config allows
//! only on a loopback listen address.

pub mod dial_out;
mod incoming;
pub mod pem_files;
mod verifier;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

pub use incoming::accept_tls;
pub use pem_files::CertificateInfo;
use pem_files::{parse_certificates, parse_private_key, read_file, unix_now};

/// Days before the end of a certificate's validity from which the worker
/// warns at startup and `radstudy-worker check` reports a note.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The `[tls]` table of worker.toml. Relative paths are resolved against
/// the folder of worker.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the worker's server certificate, followed by any
    /// intermediate CA certificates.
    pub cert: PathBuf,
    /// PEM file with the private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file with the CA certificates whose client certificates the
    /// worker accepts: the study CA that issued the coordinator's
    /// certificate.
    pub client_ca: PathBuf,
    /// Subject common names or subjectAltName DNS names of the clients
    /// allowed to connect, compared without ASCII case. Empty accepts any
    /// certificate issued by a CA in `client_ca`. The worker's own
    /// certificate is always accepted, so that the health probe can use it.
    #[serde(default)]
    pub allowed_clients: Vec<String>,
}

impl TlsSettings {
    /// Returns the settings with relative paths joined to `base`.
    pub fn resolved(self, base: &Path) -> Self {
        TlsSettings {
            cert: base.join(self.cert),
            key: base.join(self.key),
            client_ca: base.join(self.client_ca),
            allowed_clients: self.allowed_clients,
        }
    }
}

/// Errors while loading the TLS files of worker.toml. Each names the
/// `[tls]` key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error(
        "cannot read tls.{field} {path}: {error}; check the path in the [tls] table of worker.toml"
    )]
    Read {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error. It is part of the message and not a `source`, so
        /// that a printed error chain shows it once.
        error: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("tls.{field} {path} is not valid PEM: {message}")]
    BadPem {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The PEM parser's message.
        message: String,
    },
    /// A PEM file lacks the block that its key needs.
    #[error(
        "tls.{field} {path} contains no {expected} PEM block; check that tls.{field} names the right file"
    )]
    NoPemBlock {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The PEM labels accepted.
        expected: &'static str,
    },
    /// A certificate is not valid X.509 DER.
    #[error("tls.{field} {path} contains a certificate that is not valid X.509: {message}")]
    BadCertificate {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The X.509 parser's message.
        message: String,
    },
    /// A certificate's validity period has ended.
    #[error(
        "tls.{field} {path}: certificate {subject} expired on {not_after}; issue a new certificate (deploy/pki/make-study-pki.sh) and restart"
    )]
    Expired {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Subject of the expired certificate.
        subject: String,
        /// End of validity, `YYYY-MM-DD HH:MM:SS UTC`.
        not_after: String,
    },
    /// A certificate's validity period has not begun.
    #[error(
        "tls.{field} {path}: certificate {subject} is not valid before {not_before}; check the system clock, or issue a certificate valid from now"
    )]
    NotYetValid {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Subject of the certificate.
        subject: String,
        /// Start of validity, `YYYY-MM-DD HH:MM:SS UTC`.
        not_before: String,
    },
    /// The private key is not the key of the certificate.
    #[error(
        "tls.key {key} does not belong to the certificate in tls.cert {cert}; use the key that the certificate was issued for"
    )]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// The private key is of a type or size that rustls cannot sign with.
    #[error("tls.key {path} cannot be used: {message}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// rustls' message.
        message: String,
    },
    /// The client CA file cannot serve as trust anchors.
    #[error("tls.client_ca {path} cannot be used as trust anchors: {message}")]
    ClientCa {
        /// The CA file.
        path: PathBuf,
        /// rustls' message.
        message: String,
    },
}

impl TlsError {
    /// Returns the `[tls]` key of the file concerned.
    pub fn field(&self) -> &'static str {
        match self {
            TlsError::Read { field, .. }
            | TlsError::BadPem { field, .. }
            | TlsError::NoPemBlock { field, .. }
            | TlsError::BadCertificate { field, .. }
            | TlsError::Expired { field, .. }
            | TlsError::NotYetValid { field, .. } => field,
            TlsError::KeyMismatch { .. } | TlsError::BadKey { .. } => "key",
            TlsError::ClientCa { .. } => "client_ca",
        }
    }
}

/// The worker's loaded and checked TLS material.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    /// The worker's own certificate.
    pub certificate: CertificateInfo,
    /// `allowed_clients` of the settings.
    pub allowed_clients: Vec<String>,
}

impl ServerTls {
    /// Reads and checks the files of `settings`: every PEM parses, the key
    /// belongs to the certificate, and the certificate and every client CA
    /// are valid now.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        Self::load_at(settings, unix_now())
    }

    /// [`ServerTls::load`] at `now`, in seconds since the Unix epoch.
    pub fn load_at(settings: &TlsSettings, now: i64) -> Result<Self, TlsError> {
        let provider = Arc::new(ring_provider());

        let chain =
            parse_certificates(&read_file(&settings.cert, "cert")?, &settings.cert, "cert")?;
        let certificate = CertificateInfo::parse(&chain[0], &settings.cert, "cert")?;
        certificate.check_validity(now, &settings.cert, "cert")?;
        let key_pem = read_file(&settings.key, "key")?;
        let key = parse_private_key(&key_pem, &settings.key, "key")?;
        check_key_matches(&chain, key.clone_key(), &provider, settings)?;

        let ca_certificates = parse_certificates(
            &read_file(&settings.client_ca, "client_ca")?,
            &settings.client_ca,
            "client_ca",
        )?;
        let mut roots = RootCertStore::empty();
        for ca in &ca_certificates {
            CertificateInfo::parse(ca, &settings.client_ca, "client_ca")?.check_validity(
                now,
                &settings.client_ca,
                "client_ca",
            )?;
            roots.add(ca.clone()).map_err(|error| TlsError::ClientCa {
                path: settings.client_ca.clone(),
                message: error.to_string(),
            })?;
        }
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|error| TlsError::ClientCa {
                path: settings.client_ca.clone(),
                message: error.to_string(),
            })?;
        let verifier = verifier::AllowedClients::new(
            webpki,
            settings.allowed_clients.clone(),
            chain[0].clone(),
        );

        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::BadKey {
                path: settings.key.clone(),
                message: error.to_string(),
            })?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(chain, key)
            .map_err(|error| TlsError::BadKey {
                path: settings.key.clone(),
                message: error.to_string(),
            })?;
        // gRPC runs over HTTP/2 only.
        config.alpn_protocols = vec![b"h2".to_vec()];
        // No session resumption: a resumed TLS session skips the client
        // certificate check, so a coordinator whose certificate expired or
        // left allowed_clients could reconnect on an old ticket.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(ServerTls {
            config: Arc::new(config),
            certificate,
            allowed_clients: settings.allowed_clients.clone(),
        })
    }

    /// Returns an acceptor that performs the server side of the handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Returns the whole days left until the certificate expires.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.certificate.not_after - now).div_euclid(86_400)
    }
}

/// Returns rustls' ring crypto provider. rustls 0.23.48 deprecates it
/// because ring has no post-quantum key exchange, but the alternative,
/// aws-lc-rs, needs cmake and a C toolchain to build.
#[allow(deprecated)]
pub fn ring_provider() -> CryptoProvider {
    tokio_rustls::rustls::crypto::ring::default_provider()
}

/// Checks that `key` is the private key of the first certificate of
/// `chain` by comparing their SubjectPublicKeyInfo bytes.
fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    settings: &TlsSettings,
) -> Result<(), TlsError> {
    use tokio_rustls::rustls::{Error, InconsistentKeys};

    match CertifiedKey::from_der(chain.to_vec(), key, provider) {
        Ok(_) => Ok(()),
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(TlsError::KeyMismatch {
            key: settings.key.clone(),
            cert: settings.cert.clone(),
        }),
        Err(error) => Err(TlsError::BadKey {
            path: settings.key.clone(),
            message: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
