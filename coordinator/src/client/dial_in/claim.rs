//! The connector of a dial-out center's tonic channel: instead of opening
//! a TCP connection it claims the newest standby of the center's worker.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use radstudy_proto::dial_out::{CLAIM_LINE, READY_LINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Uri;
use tracing::{debug, info};

use super::listener::{Io, Standby, Standbys};

/// Deadline of the worker's `READY` reply to a claim. A standby that
/// misses it is dropped and the next one is tried.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A tower service that yields a claimed standby per call.
#[derive(Clone)]
pub(super) struct ClaimConnector {
    center: String,
    standbys: Arc<Standbys>,
    wait: Duration,
    listen: SocketAddr,
}

impl ClaimConnector {
    /// Claims standbys of `center` from `standbys`, each call waiting up to
    /// `wait` for the worker; `listen` names the listener in errors.
    pub(super) fn new(
        center: String,
        standbys: Arc<Standbys>,
        wait: Duration,
        listen: SocketAddr,
    ) -> Self {
        ClaimConnector {
            center,
            standbys,
            wait,
            listen,
        }
    }
}

impl tower_service::Service<Uri> for ClaimConnector {
    type Response = TokioIo<Box<dyn Io>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.claim().await.map(TokioIo::new) })
    }
}

impl ClaimConnector {
    /// Returns the newest standby that replies to a claim, waiting up to
    /// `wait` for the worker to connect when none is left.
    async fn claim(&self) -> std::io::Result<Box<dyn Io>> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            // Registered before the queue is read, so that a standby that
            // arrives in between still wakes this call.
            let arrived = self.standbys.arrived.notified();

            if let Some(standby) = self.standbys.take_newest() {
                let peer = standby.peer;
                match claim_standby(standby).await {
                    Ok(stream) => {
                        info!(center = %self.center, %peer, "claimed a dial-out connection");
                        return Ok(stream);
                    }
                    Err(error) => {
                        // A standby that the worker closed, or whose
                        // network path died, while it waited.
                        debug!(center = %self.center, %peer, %error, "standby did not reply to the claim; trying the next");
                        continue;
                    }
                }
            }

            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no connection from the worker of center {} within {} s; check that it runs \
                         with a [dial_out] table whose coordinator reaches this listener ({})",
                        self.center,
                        self.wait.as_secs(),
                        self.listen
                    ),
                ));
            }
        }
    }
}

/// Sends `CLAIM` and waits for `READY`, after which HTTP/2 may start.
async fn claim_standby(standby: Standby) -> std::io::Result<Box<dyn Io>> {
    let mut stream = standby.stream;
    let exchange = async {
        stream.write_all(CLAIM_LINE).await?;
        stream.flush().await?;
        let mut reply = [0u8; READY_LINE.len()];
        stream.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    match tokio::time::timeout(READY_TIMEOUT, exchange).await {
        Ok(Ok(reply)) if reply == READY_LINE => Ok(stream),
        Ok(Ok(reply)) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("expected READY, got {:?}", String::from_utf8_lossy(&reply)),
        )),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no READY within {} s", READY_TIMEOUT.as_secs()),
        )),
    }
}
