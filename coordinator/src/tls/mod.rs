//! Mutual TLS towards the workers: the `[tls]` table of study.toml, the
//! checks of its files, and the explanation of failed handshakes.
//!
//! The coordinator trusts only the CA certificates in `tls.ca` (no system
//! roots) and presents `tls.cert` as its client certificate. A hospital
//! proxy that intercepts TLS re-signs the worker's certificate with its own
//! CA, so that CA goes into the `tls.ca` bundle too. rustls with the ring
//! provider does the handshake, through tonic's `ClientTlsConfig`.
//!
//! The worker checks the same kinds of file in `radstudy_worker::tls`; the
//! two crates do not share code, so both sets of checks change together.

mod dial_in;
mod probe;

pub use dial_in::certificate_names;
pub use probe::{HandshakeFailure, check_handshake};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ClientConfig, Error as RustlsError, InconsistentKeys, RootCertStore};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The `[tls]` table of study.toml as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM bundle of the CA certificates that may sign a worker's
    /// certificate: the study CA, plus the CA of any hospital proxy that
    /// intercepts TLS.
    pub ca: PathBuf,
    /// PEM file with the coordinator's client certificate, followed by any
    /// intermediate CA certificates.
    pub cert: PathBuf,
    /// PEM file with the private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Errors while loading the TLS files of study.toml. Each names the
/// `[tls]` key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read tls.{field} {path}: {error}; check the path in the [tls] table")]
    Read {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error. It is part of the message and not a `source`, so
        /// that a printed error chain shows it once.
        error: std::io::Error,
    },
    /// A file is not valid PEM, or lacks the block its key needs.
    #[error("tls.{field} {path} is not usable PEM: {message}")]
    BadPem {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The problem.
        message: String,
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
        "tls.{field} {path}: certificate {subject} expired on {not_after}; issue a new certificate (deploy/pki/make-study-pki.sh)"
    )]
    Expired {
        /// The `[tls]` key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Subject of the certificate.
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
}

/// The coordinator's loaded and checked TLS files.
#[derive(Clone)]
pub struct ClientTls {
    /// The `[tls]` table, with absolute paths.
    pub settings: TlsSettings,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// The same trust anchors and identity for [`probe::check_handshake`].
    rustls_config: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    // The key's bytes stay out of debug output and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Reads and checks the files of `settings`: every PEM parses, the key
    /// belongs to the certificate, and the certificate and every CA in the
    /// bundle are valid now.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        Self::load_at(settings, unix_now())
    }

    /// [`ClientTls::load`] at `now`, in seconds since the Unix epoch.
    pub fn load_at(settings: &TlsSettings, now: i64) -> Result<Self, TlsError> {
        let ca_pem = read_file(&settings.ca, "ca")?;
        let mut roots = RootCertStore::empty();
        for ca in parse_certificates(&ca_pem, &settings.ca, "ca")? {
            check_validity(&ca, now, &settings.ca, "ca")?;
            roots.add(ca).map_err(|error| TlsError::BadCertificate {
                field: "ca",
                path: settings.ca.clone(),
                message: error.to_string(),
            })?;
        }

        let cert_pem = read_file(&settings.cert, "cert")?;
        let chain = parse_certificates(&cert_pem, &settings.cert, "cert")?;
        check_validity(&chain[0], now, &settings.cert, "cert")?;
        let key_pem = read_file(&settings.key, "key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::BadPem {
            field: "key",
            path: settings.key.clone(),
            message: format!(
                "{error}; expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block"
            ),
        })?;
        match CertifiedKey::from_der(chain.clone(), key.clone_key(), &ring_provider()) {
            Ok(_) => {}
            Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch {
                    key: settings.key.clone(),
                    cert: settings.cert.clone(),
                });
            }
            Err(error) => {
                return Err(TlsError::BadKey {
                    path: settings.key.clone(),
                    message: error.to_string(),
                });
            }
        }
        let bad_key = |error: RustlsError| TlsError::BadKey {
            path: settings.key.clone(),
            message: error.to_string(),
        };
        let mut rustls_config = ClientConfig::builder_with_provider(Arc::new(ring_provider()))
            .with_safe_default_protocol_versions()
            .map_err(bad_key)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(bad_key)?;
        // gRPC runs over HTTP/2 only.
        rustls_config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ClientTls {
            settings: settings.clone(),
            ca_pem,
            cert_pem,
            key_pem,
            rustls_config: Arc::new(rustls_config),
        })
    }

    /// Returns tonic's client TLS settings for a worker whose certificate
    /// must name `server_name`.
    pub fn for_server(&self, server_name: &str) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};

        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(server_name)
    }
}

/// Returns rustls' ring crypto provider. rustls 0.23.48 deprecates it
/// because ring has no post-quantum key exchange, but the alternative,
/// aws-lc-rs, needs cmake and a C toolchain to build.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    tokio_rustls::rustls::crypto::ring::default_provider()
}

/// Returns whether a URL host is a loopback address: `localhost`, an
/// address in 127.0.0.0/8, or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|address| address.is_loopback())
}

/// Returns the cause of a failed TLS connection, naming the setting to
/// change, from the error chain that tonic and rustls report, or `None`
/// when the chain shows no TLS failure.
pub fn explain_tls_failure(chain: &str, server_name: &str) -> Option<String> {
    let text = chain.to_lowercase();
    let cause = if text.contains("unknownissuer") || text.contains("unknown issuer") {
        "the worker's certificate is not signed by a CA in tls.ca; add the study CA, or the CA of \
         a TLS-intercepting proxy, to the tls.ca bundle"
            .to_string()
    } else if text.contains("peer certificate: badsignature") {
        "the worker's certificate names a CA of tls.ca as its issuer, but that CA did not sign \
         it: tls.ca holds another CA of the same name, such as one from a second run of \
         make-study-pki.sh; put the CA that signed the worker's certificate in tls.ca"
            .to_string()
    } else if text.contains("not valid for name") || text.contains("notvalidforname") {
        format!(
            "the server name does not match: the worker's certificate does not name {server_name:?}; \
             set server_name of this center to a DNS name in the certificate, or issue the \
             worker a certificate for {server_name:?}"
        )
    } else if text.contains("certificate expired") || text.contains("peer certificate: expired") {
        "the worker's certificate has expired; the site must issue a new one and restart its worker"
            .to_string()
    } else if text.contains("certificate not valid yet")
        || text.contains("peer certificate: notvalidyet")
    {
        "the worker's certificate is not valid yet; check the clocks of both hosts".to_string()
    } else if text.contains("alert: certificaterequired") {
        "the worker requires a client certificate; set tls.cert and tls.key in study.toml"
            .to_string()
    } else if text.contains("alert: unknownca") || text.contains("alert: badcertificate") {
        "the worker rejected the coordinator's certificate: it is not signed by a CA in the \
         worker's tls.client_ca"
            .to_string()
    } else if text.contains("alert: certificateexpired") {
        "the worker rejected the coordinator's certificate as expired; issue a new tls.cert"
            .to_string()
    } else if text.contains("alert: accessdenied") {
        "the worker does not allow this coordinator: no name of the coordinator's certificate is \
         in the worker's tls.allowed_clients"
            .to_string()
    } else if text.contains("invalidcontenttype") || text.contains("corrupt message") {
        "the worker does not answer with TLS at this address; check that its worker.toml has a \
         [tls] table, or use http:// for a plaintext worker on loopback"
            .to_string()
    } else if text.contains("invalid peer certificate") || text.contains("received fatal alert") {
        "the TLS handshake failed; see the details".to_string()
    } else {
        return None;
    };
    Some(cause)
}

fn read_file(path: &Path, field: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        field,
        path: path.to_path_buf(),
        error,
    })
}

fn parse_certificates(
    pem: &[u8],
    path: &Path,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadPem {
            field,
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::BadPem {
            field,
            path: path.to_path_buf(),
            message: "no CERTIFICATE block found".to_string(),
        });
    }
    Ok(certificates)
}

/// Checks that `now` lies within the certificate's validity period.
fn check_validity(
    der: &CertificateDer<'_>,
    now: i64,
    path: &Path,
    field: &'static str,
) -> Result<(), TlsError> {
    let (_, certificate) =
        X509Certificate::from_der(der.as_ref()).map_err(|error| TlsError::BadCertificate {
            field,
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    let validity = certificate.validity();
    let subject = certificate.subject().to_string();
    if now > validity.not_after.timestamp() {
        return Err(TlsError::Expired {
            field,
            path: path.to_path_buf(),
            subject,
            not_after: format_utc(validity.not_after.timestamp()),
        });
    }
    if now < validity.not_before.timestamp() {
        return Err(TlsError::NotYetValid {
            field,
            path: path.to_path_buf(),
            subject,
            not_before: format_utc(validity.not_before.timestamp()),
        });
    }
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`,
/// with Howard Hinnant's `civil_from_days` algorithm
/// (<https://howardhinnant.github.io/date_algorithms.html>).
fn format_utc(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let seconds = timestamp.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests;
