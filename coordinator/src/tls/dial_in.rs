//! The coordinator as the TLS server of dial-out workers.
//!
//! The dial-in listener presents the coordinator's `tls.cert` as its
//! server certificate and requires a client certificate that chains to a
//! CA in `tls.ca`, the same bundle that must sign a worker's certificate in
//! direct mode. The certificate's names then tell which center dialled in
//! ([`crate::client::dial_in`]).

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{ClientTls, TlsError, parse_certificates, ring_provider};

impl ClientTls {
    /// Returns an acceptor for the server side of a dial-out worker's
    /// handshake. [`ClientTls::load`] has checked the files already.
    pub fn dial_in_acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let provider = Arc::new(ring_provider());
        let settings = &self.settings;
        let bad_key = |message: String| TlsError::BadKey {
            path: settings.key.clone(),
            message,
        };

        let mut roots = RootCertStore::empty();
        for ca in parse_certificates(&self.ca_pem, &settings.ca, "ca")? {
            roots.add(ca).map_err(|error| TlsError::BadCertificate {
                field: "ca",
                path: settings.ca.clone(),
                message: error.to_string(),
            })?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|error| TlsError::BadCertificate {
                    field: "ca",
                    path: settings.ca.clone(),
                    message: error.to_string(),
                })?;
        let chain = parse_certificates(&self.cert_pem, &settings.cert, "cert")?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|error| bad_key(error.to_string()))?;

        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| bad_key(error.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|error| bad_key(error.to_string()))?;
        // gRPC runs over HTTP/2 only.
        config.alpn_protocols = vec![b"h2".to_vec()];
        // A resumed TLS 1.3 session skips the client certificate check, so a
        // worker certificate that expired or was replaced since the first
        // handshake would still be admitted. Every standby gets a full
        // handshake instead.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Returns the subject common name and the subjectAltName DNS names of a
/// certificate, in that order; empty when the DER does not parse.
pub fn certificate_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, certificate)) = X509Certificate::from_der(der.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = certificate
        .subject()
        .iter_common_name()
        .filter_map(|name| name.as_str().ok())
        .map(str::to_string)
        .collect();
    if let Ok(Some(alternative)) = certificate.subject_alternative_name() {
        for name in &alternative.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push((*dns).to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    #[test]
    fn certificate_names_lists_cn_then_dns() {
        let mut params =
            CertificateParams::new(vec!["worker-a".into(), "site-a.example".into()]).expect("SAN");
        params.distinguished_name.push(DnType::CommonName, "Site A");
        let key = KeyPair::generate().expect("key");
        let certificate = params.self_signed(&key).expect("self-signed");
        assert_eq!(
            certificate_names(certificate.der()),
            ["Site A", "worker-a", "site-a.example"]
        );
    }

    #[test]
    fn certificate_names_of_garbage_is_empty() {
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        assert!(certificate_names(&garbage).is_empty());
    }
}
