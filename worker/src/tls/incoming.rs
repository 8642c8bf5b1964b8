//! The stream of TLS connections that the gRPC server serves: an accept
//! loop that runs each handshake in its own task, so that a slow or hostile
//! client cannot hold up the others.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

/// Deadline of one TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Rejected handshakes logged per [`REJECTION_LOG_WINDOW`]; further ones
/// are counted and summed up in the next window's first line.
const REJECTIONS_LOGGED_PER_WINDOW: u32 = 10;
const REJECTION_LOG_WINDOW: Duration = Duration::from_secs(60);

/// Accepts TCP connections on `listener` and yields those whose TLS
/// handshake succeeds. The loop ends when the returned stream is dropped.
pub fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = mpsc::channel(16);
    let rejections = Arc::new(Mutex::new(RejectionLog::new()));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = sender.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Running out of file descriptors, for example; the
                    // pause keeps the loop from spinning.
                    warn!(%error, "cannot accept a TCP connection; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Err(error) = stream.set_nodelay(true) {
                debug!(%peer, %error, "cannot set TCP_NODELAY");
            }
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            let rejections = rejections.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(connection)) => {
                        // A send fails only when the server has stopped.
                        let _ = sender.send(Ok(connection)).await;
                    }
                    Ok(Err(error)) => log_rejection(&rejections, peer, &error.to_string()),
                    Err(_) => log_rejection(
                        &rejections,
                        peer,
                        &format!(
                            "handshake timed out after {} s",
                            HANDSHAKE_TIMEOUT.as_secs()
                        ),
                    ),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

fn log_rejection(log: &Mutex<RejectionLog>, peer: SocketAddr, reason: &str) {
    let Ok(mut log) = log.lock() else {
        return;
    };
    if let Some(suppressed) = log.admit(Instant::now()) {
        warn!(
            %peer,
            reason,
            suppressed_since_last_line = suppressed,
            "TLS handshake rejected"
        );
    }
}

/// Counts rejected handshakes per window, so that a scanner cannot flood
/// the log.
struct RejectionLog {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

impl RejectionLog {
    fn new() -> Self {
        RejectionLog {
            window_start: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    /// Returns `Some(suppressed count)` when this rejection is to be logged.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window_start) >= REJECTION_LOG_WINDOW {
            self.window_start = now;
            self.logged = 0;
        }
        if self.logged < REJECTIONS_LOGGED_PER_WINDOW {
            self.logged += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_log_limits_lines_per_window() {
        let start = Instant::now();
        let mut log = RejectionLog::new();
        log.window_start = start;
        for _ in 0..REJECTIONS_LOGGED_PER_WINDOW {
            assert_eq!(log.admit(start), Some(0));
        }
        assert_eq!(log.admit(start), None);
        assert_eq!(log.admit(start + Duration::from_secs(1)), None);
        // The next window's first line reports the two suppressed ones.
        assert_eq!(log.admit(start + REJECTION_LOG_WINDOW), Some(2));
        assert_eq!(log.admit(start + REJECTION_LOG_WINDOW), Some(0));
    }
}
