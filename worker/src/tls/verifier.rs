//! Client certificate verification: the chain must lead to a CA of
//! `client_ca` (rustls' WebPKI verifier), and with `allowed_clients` set the
//! certificate must also name an allowed client or be the worker's own
//! certificate, which `radstudy-worker health --config` presents.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme,
};
use tracing::warn;

use super::CertificateInfo;

/// A [`ClientCertVerifier`] that adds the `allowed_clients` check to
/// another verifier.
#[derive(Debug)]
pub(super) struct AllowedClients {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
    own_certificate: CertificateDer<'static>,
}

impl AllowedClients {
    pub(super) fn new(
        inner: Arc<dyn ClientCertVerifier>,
        allowed: Vec<String>,
        own_certificate: CertificateDer<'static>,
    ) -> Self {
        AllowedClients {
            inner,
            allowed,
            own_certificate,
        }
    }
}

impl ClientCertVerifier for AllowedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed.is_empty() || end_entity.as_ref() == self.own_certificate.as_ref() {
            return Ok(verified);
        }
        let info = CertificateInfo::parse(end_entity, Path::new("(client certificate)"), "client")
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.allowed.iter().any(|name| info.has_name(name)) {
            return Ok(verified);
        }
        warn!(
            subject = %info.subject,
            dns_names = ?info.dns_names,
            allowed_clients = ?self.allowed,
            "client certificate rejected: none of its names is in tls.allowed_clients"
        );
        // rustls 0.23.48 sends the `access_denied` alert for this error
        // (`From<CertificateError> for AlertDescription`).
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
