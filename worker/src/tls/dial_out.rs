//! The worker's TLS client side in dial-out mode, where the worker opens
//! the connection and the coordinator is the TLS server.
//!
//! The checks of direct mode hold in reverse. The worker presents its
//! `tls.cert`, and it accepts the coordinator's certificate only when it
//! chains to a CA in `tls.client_ca` and names the expected server name
//! (rustls' WebPKI server verifier). With `tls.allowed_clients` set, the
//! certificate must also contain one of those names, as the coordinator's
//! client certificate must in direct mode.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::{Resumption, WebPkiServerVerifier};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};
use tracing::warn;

use super::pem_files::{parse_certificates, parse_private_key, read_file};
use super::{CertificateInfo, TlsError, TlsSettings, ring_provider};

/// Builds the rustls client settings with which the worker dials the
/// coordinator. [`super::ServerTls::load`] checks the same files for
/// validity and key match first, so this only assembles them.
pub fn dial_out_client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(ring_provider());

    let chain = parse_certificates(&read_file(&settings.cert, "cert")?, &settings.cert, "cert")?;
    let key = parse_private_key(&read_file(&settings.key, "key")?, &settings.key, "key")?;
    let mut roots = RootCertStore::empty();
    let ca_certificates = parse_certificates(
        &read_file(&settings.client_ca, "client_ca")?,
        &settings.client_ca,
        "client_ca",
    )?;
    for ca in ca_certificates {
        roots.add(ca).map_err(|error| TlsError::ClientCa {
            path: settings.client_ca.clone(),
            message: error.to_string(),
        })?;
    }

    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|error| TlsError::ClientCa {
            path: settings.client_ca.clone(),
            message: error.to_string(),
        })?;
    let verifier = AllowedCoordinator {
        inner: webpki,
        allowed: settings.allowed_clients.clone(),
    };
    let bad_key = |error: Error| TlsError::BadKey {
        path: settings.key.clone(),
        message: error.to_string(),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(bad_key)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .map_err(bad_key)?;
    // HTTP/2 runs over the connection once the coordinator claims it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    // Every standby gets a full handshake, so that both sides check the
    // other's current certificate; the coordinator turns resumption off too.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// A [`ServerCertVerifier`] that adds the `allowed_clients` check to
/// rustls' WebPKI verifier.
#[derive(Debug)]
struct AllowedCoordinator {
    inner: Arc<WebPkiServerVerifier>,
    allowed: Vec<String>,
}

impl ServerCertVerifier for AllowedCoordinator {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if self.allowed.is_empty() {
            return Ok(verified);
        }
        let info = CertificateInfo::parse(
            end_entity,
            Path::new("(coordinator certificate)"),
            "coordinator",
        )
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.allowed.iter().any(|name| info.has_name(name)) {
            return Ok(verified);
        }
        warn!(
            subject = %info.subject,
            dns_names = ?info.dns_names,
            allowed_clients = ?self.allowed,
            "coordinator certificate rejected: none of its names is in tls.allowed_clients"
        );
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

/// Returns the cause of a failed dial-out connection, naming the setting
/// to change, from the error message that rustls or the coordinator's
/// `ERROR` line gives, or `None` when the message shows no TLS failure.
pub fn explain_dial_out_failure(message: &str) -> Option<&'static str> {
    let text = message.to_lowercase();
    let cause = if text.contains("unknownissuer") || text.contains("unknown issuer") {
        "the coordinator's certificate is not signed by a CA in tls.client_ca; add the study CA, \
         or the CA of a TLS-intercepting proxy, to tls.client_ca"
    } else if text.contains("notvalidforname") || text.contains("not valid for name") {
        "the coordinator's certificate does not name the expected server; set [dial_out] \
         server_name to a DNS name in the coordinator's certificate"
    } else if text.contains("extended key usage for server authentication") {
        "the coordinator's certificate lacks the serverAuth extended key usage that the dial-in \
         listener needs; the study must issue it a new one (deploy/pki/make-study-pki.sh)"
    } else if text.contains("alert: unsupportedcertificate") {
        "the coordinator rejected the worker's certificate, most likely because it lacks the \
         clientAuth extended key usage that dial-out needs; issue a new tls.cert \
         (deploy/pki/make-study-pki.sh)"
    } else if text.contains("applicationverificationfailure") {
        "no name of the coordinator's certificate is in tls.allowed_clients"
    } else if text.contains("peer certificate: expired") || text.contains("certificate expired") {
        "the coordinator's certificate has expired; the study must issue it a new one"
    } else if text.contains("alert: certificaterequired") {
        "the coordinator requires a client certificate; add a [tls] table to worker.toml"
    } else if text.contains("alert: unknownca") || text.contains("alert: badcertificate") {
        "the coordinator rejected the worker's certificate: it is not signed by a CA in the \
         study's tls.ca"
    } else if text.contains("alert: certificateexpired") {
        "the coordinator rejected the worker's certificate as expired; issue a new tls.cert"
    } else if text.contains("invalidcontenttype") || text.contains("corrupt message") {
        "the coordinator does not answer with TLS at this address; check [dial_out] coordinator, \
         or remove [tls] for a plaintext coordinator on loopback"
    } else {
        return None;
    };
    Some(cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_out_failure_names_the_setting() {
        // Messages as rustls 0.23.48 formats them.
        let unknown = "invalid peer certificate: UnknownIssuer";
        assert!(
            explain_dial_out_failure(unknown).is_some_and(|cause| cause.contains("tls.client_ca"))
        );
        let name = "invalid peer certificate: NotValidForName";
        assert!(explain_dial_out_failure(name).is_some_and(|cause| cause.contains("server_name")));
        let alert = "received fatal alert: UnknownCA";
        assert!(
            explain_dial_out_failure(alert).is_some_and(|cause| cause.contains("study's tls.ca"))
        );
        let usage = "invalid peer certificate: certificate does not allow extended key usage for \
                     server authentication, allows client authentication";
        assert!(explain_dial_out_failure(usage).is_some_and(|cause| cause.contains("serverAuth")));
        assert_eq!(
            explain_dial_out_failure("Connection refused (os error 111)"),
            None
        );
    }
}
