//! The dial loop: opens standby connections to the coordinator, one at a
//! time, and yields each one that the coordinator claims.

use std::sync::Arc;
use std::time::Duration;

use radstudy_proto::dial_out::{
    CLAIM_LINE, ERROR_PREFIX, MAX_LINE_BYTES, OK_LINE, READY_LINE, hello_line,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

use super::DialOutSettings;
use super::connection::{DialedConnection, DialedStream};
use crate::tls::dial_out::explain_dial_out_failure;

/// Maximum number of connections that the worker keeps open to the
/// coordinator at once: claimed ones plus the standby. A coordinator that claims more
/// waits until one of them closes.
const MAX_CONNECTIONS: usize = 8;

/// Deadline of one attempt: the TCP connection, the TLS handshake and the
/// coordinator's reply to the hello line.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// Deadline of the `READY` reply's write after a claim.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reason a standby did not become a served connection.
#[derive(Debug)]
enum StandbyEnd {
    /// Unclaimed for `idle_redial_s`; the worker dials again at once.
    Idle,
    /// The coordinator closed the standby, as it does when a study ends.
    Closed,
    /// The attempt failed; the message names the step.
    Failed(String),
}

/// Dials the coordinator of `settings` as `center` until the returned
/// stream is dropped, and yields every connection that the coordinator
/// claims. `tls` is the worker's TLS client config, `None` for plaintext
/// on loopback.
pub fn dial_connections(
    settings: DialOutSettings,
    center: String,
    tls: Option<Arc<ClientConfig>>,
) -> ReceiverStream<Result<DialedConnection, std::io::Error>> {
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        tokio::select! {
            _ = sender.closed() => {}
            _ = dial_loop(&settings, &center, tls, &sender) => {}
        }
    });
    ReceiverStream::new(receiver)
}

async fn dial_loop(
    settings: &DialOutSettings,
    center: &str,
    tls: Option<Arc<ClientConfig>>,
    sender: &mpsc::Sender<Result<DialedConnection, std::io::Error>>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = settings.backoff();
    let idle = Duration::from_secs(settings.idle_redial_s);
    let coordinator = settings.coordinator.as_str();
    let mut attempt: u64 = 0;
    loop {
        // Acquiring fails only on a closed semaphore, and this one is never
        // closed.
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };

        attempt += 1;
        info!(attempt, coordinator, "dialing the coordinator");
        let opened = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            open_standby(settings, center, tls.as_ref()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StandbyEnd::Failed(format!(
                "no reply within {} s",
                ATTEMPT_TIMEOUT.as_secs()
            )))
        });
        let claimed = match opened {
            Ok(stream) => {
                info!(
                    attempt,
                    coordinator, "standby connection open; waiting for the coordinator to use it"
                );
                await_claim(stream, idle).await
            }
            Err(end) => Err(end),
        };

        match claimed {
            Ok(stream) => {
                backoff.reset();
                info!(
                    attempt,
                    coordinator, "the coordinator claimed the connection; serving gRPC on it"
                );
                if sender
                    .send(Ok(DialedConnection::new(stream, permit)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(StandbyEnd::Idle) => {
                info!(
                    attempt,
                    coordinator,
                    idle_redial_s = idle.as_secs(),
                    "standby connection unused; dialing a fresh one"
                );
            }
            Err(StandbyEnd::Closed) => {
                let delay = backoff.next_delay();
                info!(
                    attempt,
                    coordinator,
                    retry_in_s = delay.as_secs(),
                    "the coordinator closed the standby connection"
                );
                tokio::time::sleep(delay).await;
            }
            Err(StandbyEnd::Failed(error)) => {
                let delay = backoff.next_delay();
                match explain_dial_out_failure(&error) {
                    Some(cause) => warn!(
                        attempt,
                        coordinator,
                        %error,
                        cause,
                        retry_in_s = delay.as_secs(),
                        "dial-out attempt failed"
                    ),
                    None => warn!(
                        attempt,
                        coordinator,
                        %error,
                        retry_in_s = delay.as_secs(),
                        "dial-out attempt failed"
                    ),
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Connects, runs the TLS handshake when configured, sends the hello line
/// and reads the coordinator's reply.
async fn open_standby(
    settings: &DialOutSettings,
    center: &str,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<DialedStream, StandbyEnd> {
    let coordinator = &settings.coordinator;
    // NOTE: the worker connects directly; a site whose outbound traffic
    // must go through an HTTP proxy (CONNECT) cannot use dial-out yet.
    let tcp = TcpStream::connect(coordinator)
        .await
        .map_err(|error| StandbyEnd::Failed(format!("cannot connect to {coordinator}: {error}")))?;
    // Small preface lines and gRPC messages go out without Nagle's delay.
    let _ = tcp.set_nodelay(true);

    let mut stream = match tls {
        Some(config) => {
            let server_name = settings.server_name();
            let name = ServerName::try_from(server_name.clone()).map_err(|error| {
                StandbyEnd::Failed(format!(
                    "invalid dial_out.server_name {server_name:?}: {error}"
                ))
            })?;
            let connector = TlsConnector::from(config.clone());
            let tls_stream = connector.connect(name, tcp).await.map_err(|error| {
                StandbyEnd::Failed(format!("TLS handshake with {coordinator} failed: {error}"))
            })?;
            DialedStream::Tls(Box::new(tls_stream))
        }
        None => DialedStream::Plain(tcp),
    };

    let failed = |error: std::io::Error| {
        StandbyEnd::Failed(format!("preface with {coordinator} failed: {error}"))
    };
    stream
        .write_all(hello_line(center).as_bytes())
        .await
        .map_err(failed)?;
    stream.flush().await.map_err(failed)?;
    // Under TLS 1.3 a rejected client certificate shows up here, as the
    // coordinator's alert in place of its reply.
    let reply = read_line(&mut stream).await.map_err(failed)?;
    if reply == OK_LINE {
        return Ok(stream);
    }
    let text = String::from_utf8_lossy(&reply);
    let text = text.trim_end();
    match text.strip_prefix(ERROR_PREFIX) {
        Some(reason) => Err(StandbyEnd::Failed(format!(
            "the coordinator rejected the connection: {reason}"
        ))),
        None => Err(StandbyEnd::Failed(format!(
            "unexpected reply {text:?} from {coordinator}; check that dial_out.coordinator is the \
             coordinator's dial-in address"
        ))),
    }
}

/// Waits until the coordinator sends `CLAIM`, then replies `READY`. A
/// standby unclaimed for `idle` is dropped, which closes it.
async fn await_claim(mut stream: DialedStream, idle: Duration) -> Result<DialedStream, StandbyEnd> {
    let mut claim = [0u8; CLAIM_LINE.len()];
    match tokio::time::timeout(idle, stream.read_exact(&mut claim)).await {
        Err(_) => return Err(StandbyEnd::Idle),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(StandbyEnd::Closed);
        }
        Ok(Err(error)) => {
            return Err(StandbyEnd::Failed(format!(
                "the standby connection failed before the coordinator used it: {error}"
            )));
        }
        Ok(Ok(_)) => {}
    }
    if claim != CLAIM_LINE {
        return Err(StandbyEnd::Failed(format!(
            "expected CLAIM from the coordinator, got {:?}",
            String::from_utf8_lossy(&claim)
        )));
    }
    let ready = async {
        stream.write_all(READY_LINE).await?;
        stream.flush().await
    };
    match tokio::time::timeout(READY_TIMEOUT, ready).await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(error)) => Err(StandbyEnd::Failed(format!(
            "cannot answer the coordinator's claim: {error}"
        ))),
        Err(_) => Err(StandbyEnd::Failed(format!(
            "cannot answer the coordinator's claim within {} s",
            READY_TIMEOUT.as_secs()
        ))),
    }
}

/// Reads one preface line, newline included, a byte at a time, so that no
/// byte after it is consumed.
async fn read_line(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    while line.len() < MAX_LINE_BYTES {
        let byte = stream.read_u8().await?;
        line.push(byte);
        if byte == b'\n' {
            return Ok(line);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("reply line longer than {MAX_LINE_BYTES} bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_line_stops_at_newline() {
        let mut input: &[u8] = b"OK\nPRI";
        assert_eq!(read_line(&mut input).await.unwrap(), b"OK\n");
        assert_eq!(input, b"PRI");
    }

    #[tokio::test]
    async fn read_line_rejects_endless_line() {
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let error = read_line(&mut long.as_slice()).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }
}
