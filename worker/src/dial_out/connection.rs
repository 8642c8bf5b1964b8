//! A claimed dial-out connection as the gRPC server receives it: a byte stream
//! that carries the coordinator's address and certificate chain for the
//! audit log.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tonic::transport::server::Connected;

/// The coordinator at the other end of a dial-out connection. tonic puts
/// it into every request's extensions, where
/// [`crate::audit::requester_identity`] reads it.
#[derive(Debug, Clone)]
pub struct DialOutConnectInfo {
    /// The coordinator's address.
    pub remote_addr: Option<SocketAddr>,
    /// The coordinator's certificate chain, end entity first; `None` on a
    /// plaintext loopback connection.
    pub peer_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// The transport under a dial-out connection.
pub(super) enum DialedStream {
    /// Mutual TLS, with the worker as the TLS client.
    Tls(Box<TlsStream<TcpStream>>),
    /// Plaintext, allowed only to a loopback coordinator.
    Plain(TcpStream),
}

impl DialedStream {
    /// Returns the coordinator's address and certificates.
    pub(super) fn connect_info(&self) -> DialOutConnectInfo {
        match self {
            DialedStream::Tls(stream) => {
                let (tcp, session) = stream.get_ref();
                DialOutConnectInfo {
                    remote_addr: tcp.peer_addr().ok(),
                    peer_certs: session.peer_certificates().map(|chain| {
                        Arc::new(chain.iter().map(|c| c.clone().into_owned()).collect())
                    }),
                }
            }
            DialedStream::Plain(tcp) => DialOutConnectInfo {
                remote_addr: tcp.peer_addr().ok(),
                peer_certs: None,
            },
        }
    }
}

/// A dial-out connection that the coordinator has claimed. It holds one
/// permit of the worker's connection limit until the gRPC server drops it.
pub struct DialedConnection {
    stream: DialedStream,
    info: DialOutConnectInfo,
    _permit: OwnedSemaphorePermit,
}

impl DialedConnection {
    pub(super) fn new(stream: DialedStream, permit: OwnedSemaphorePermit) -> Self {
        let info = stream.connect_info();
        DialedConnection {
            stream,
            info,
            _permit: permit,
        }
    }
}

impl Connected for DialedConnection {
    type ConnectInfo = DialOutConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for DialedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            DialedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
            DialedStream::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for DialedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            DialedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, bytes),
            DialedStream::Plain(stream) => Pin::new(stream).poll_write(context, bytes),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            DialedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
            DialedStream::Plain(stream) => Pin::new(stream).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            DialedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
            DialedStream::Plain(stream) => Pin::new(stream).poll_shutdown(context),
        }
    }
}

impl AsyncRead for DialedConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for DialedConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(context, bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}
