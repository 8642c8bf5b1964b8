//! A TLS handshake check before the gRPC connection, so that a worker's
//! rejection of the coordinator's certificate is reported with its cause.
//!
//! Under TLS 1.3 the client finishes its side of the handshake before the
//! server has checked the client certificate. A worker that rejects the
//! certificate then sends its alert after tonic's channel has connected, and
//! hyper reports the first call only as "operation was canceled". The check
//! connects once with the same settings, sends the HTTP/2 preface and waits
//! for the worker's first bytes, which are either its HTTP/2 SETTINGS frame
//! or the TLS alert.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use super::ClientTls;

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Failure of the handshake check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The TCP connection failed or timed out.
    Connect(String),
    /// The TLS handshake failed, on either side.
    Tls(String),
}

/// Connects to `address` (`host:port`) with the study's TLS settings,
/// expecting a certificate for `server_name`, and returns once the worker
/// has accepted the coordinator's certificate, all within `timeout`.
pub async fn check_handshake(
    tls: &ClientTls,
    address: &str,
    server_name: &str,
    timeout: Duration,
) -> Result<(), HandshakeFailure> {
    match tokio::time::timeout(timeout, handshake(tls, address, server_name)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeFailure::Connect(format!(
            "timed out after {} s",
            timeout.as_secs()
        ))),
    }
}

async fn handshake(
    tls: &ClientTls,
    address: &str,
    server_name: &str,
) -> Result<(), HandshakeFailure> {
    let name = ServerName::try_from(server_name.to_string()).map_err(|error| {
        HandshakeFailure::Tls(format!("invalid server name {server_name:?}: {error}"))
    })?;
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|error| HandshakeFailure::Connect(format!("tcp connect error: {error}")))?;
    let connector = TlsConnector::from(tls.rustls_config.clone());
    let tls_error = |error: std::io::Error| HandshakeFailure::Tls(error.to_string());
    let mut stream = connector.connect(name, tcp).await.map_err(tls_error)?;
    stream.write_all(HTTP2_PREFACE).await.map_err(tls_error)?;
    stream.flush().await.map_err(tls_error)?;
    let mut first_bytes = [0u8; 9];
    let read = stream.read(&mut first_bytes).await.map_err(tls_error)?;
    // A close_notify lets the worker end the connection without an error.
    let _ = stream.shutdown().await;
    if read == 0 {
        return Err(HandshakeFailure::Tls(
            "the worker closed the connection after the TLS handshake".to_string(),
        ));
    }
    Ok(())
}
