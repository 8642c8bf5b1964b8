//! The dial-in listener: accepts workers' connections, identifies their
//! center and keeps them as standbys until a client claims one.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use radstudy_proto::dial_out::{MAX_LINE_BYTES, OK_LINE, error_line, parse_hello};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::tls::certificate_names;

/// Deadline of a new connection's TLS handshake and hello line.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum number of standbys kept per center. A worker keeps one open,
/// so a second one means that the worker reconnected and the older one may
/// be dead. The oldest beyond this number is closed.
const STANDBYS_PER_CENTER: usize = 2;

/// Rejected connections logged per [`REJECTION_LOG_WINDOW`]; further ones
/// are counted and summed up in the next logged line.
const REJECTIONS_LOGGED_PER_WINDOW: u32 = 10;
const REJECTION_LOG_WINDOW: Duration = Duration::from_secs(60);

/// A byte stream to a worker: TLS or, on loopback, plain TCP.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// An admitted connection that waits to be claimed.
pub(super) struct Standby {
    pub(super) stream: Box<dyn Io>,
    pub(super) peer: SocketAddr,
}

/// The standbys of one center, newest last.
#[derive(Default)]
pub(super) struct Standbys {
    queue: Mutex<VecDeque<Standby>>,
    /// Woken whenever a standby arrives.
    pub(super) arrived: Notify,
}

impl Standbys {
    /// Removes and returns the newest standby.
    pub(super) fn take_newest(&self) -> Option<Standby> {
        self.queue.lock().ok()?.pop_back()
    }

    fn push(&self, standby: Standby) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.push_back(standby);
            while queue.len() > STANDBYS_PER_CENTER {
                // Dropping the stream closes it; the worker redials if it
                // is still running.
                queue.pop_front();
            }
        }
        self.arrived.notify_waiters();
    }
}

/// The running dial-in listener of a study.
pub struct DialInHub {
    address: SocketAddr,
    standbys: HashMap<String, Arc<Standbys>>,
    accept_loop: JoinHandle<()>,
}

impl std::fmt::Debug for DialInHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialInHub")
            .field("address", &self.address)
            .field("centers", &self.standbys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for DialInHub {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// The dial-out centers of a study: id and expected certificate name.
type CenterNames = Vec<(String, Option<String>)>;

impl DialInHub {
    /// Binds `address` and starts accepting the workers of `centers`,
    /// over TLS when `acceptor` is given.
    pub(super) async fn bind(
        address: SocketAddr,
        acceptor: Option<TlsAcceptor>,
        centers: CenterNames,
    ) -> Result<Self, String> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| format!("cannot listen on dial_in.listen {address}: {error}"))?;
        let address = listener
            .local_addr()
            .map_err(|error| format!("cannot read the bound dial-in address: {error}"))?;
        let standbys: HashMap<String, Arc<Standbys>> = centers
            .iter()
            .map(|(id, _)| (id.clone(), Arc::new(Standbys::default())))
            .collect();
        info!(%address, tls = acceptor.is_some(), centers = ?standbys.keys().collect::<Vec<_>>(), "dial-in listener started");
        let accept_loop = tokio::spawn(accept_loop(
            listener,
            acceptor,
            Arc::new(centers),
            standbys.clone(),
        ));
        Ok(DialInHub {
            address,
            standbys,
            accept_loop,
        })
    }

    /// Returns the bound address, with the port that the system picked
    /// for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Returns the standbys of a dial-out center.
    pub(super) fn standbys(&self, center: &str) -> Option<Arc<Standbys>> {
        self.standbys.get(center).cloned()
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    centers: Arc<CenterNames>,
    standbys: HashMap<String, Arc<Standbys>>,
) {
    let rejections = Arc::new(Mutex::new(RejectionLog::new()));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(error) => {
                // Running out of file descriptors, for example; the pause
                // keeps the loop from spinning.
                warn!(%error, "cannot accept a dial-in connection; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let centers = centers.clone();
        let standbys = standbys.clone();
        let rejections = rejections.clone();
        tokio::spawn(async move {
            let admitted =
                tokio::time::timeout(ADMISSION_TIMEOUT, admit(tcp, peer, acceptor, &centers))
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "no TLS handshake and hello line within {} s",
                            ADMISSION_TIMEOUT.as_secs()
                        ))
                    });
            match admitted {
                Ok((center, standby)) => match standbys.get(&center) {
                    Some(queue) => {
                        info!(%center, %peer, "dial-out worker connected");
                        queue.push(standby);
                    }
                    None => log_rejection(&rejections, peer, "center has no standby queue"),
                },
                Err(reason) => log_rejection(&rejections, peer, &reason),
            }
        });
    }
}

/// Runs the TLS handshake and reads the hello line, then replies `OK` and
/// returns the center, or replies `ERROR` and returns the reason.
async fn admit(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    centers: &CenterNames,
) -> Result<(String, Standby), String> {
    let (mut stream, names): (Box<dyn Io>, Option<Vec<String>>) = match acceptor {
        Some(acceptor) => {
            let tls = acceptor
                .accept(tcp)
                .await
                .map_err(|error| format!("TLS handshake failed: {error}"))?;
            let names = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(certificate_names)
                .unwrap_or_default();
            (Box::new(tls), Some(names))
        }
        None => (Box::new(tcp), None),
    };

    let line = read_line(&mut stream)
        .await
        .map_err(|error| format!("cannot read the hello line: {error}"))?;
    let identified = parse_hello(&String::from_utf8_lossy(&line))
        .and_then(|hello| identify_center(names.as_deref(), hello, centers));
    match identified {
        Ok(center) => {
            stream
                .write_all(OK_LINE)
                .await
                .map_err(|error| format!("cannot answer the hello line: {error}"))?;
            stream
                .flush()
                .await
                .map_err(|error| format!("cannot answer the hello line: {error}"))?;
            Ok((center, Standby { stream, peer }))
        }
        Err(reason) => {
            // The worker logs the reason; a failed write changes nothing.
            let _ = stream.write_all(error_line(&reason).as_bytes()).await;
            let _ = stream.shutdown().await;
            Err(reason)
        }
    }
}

/// Returns the center of a worker that dialled in. Under TLS, `names` are
/// its certificate's CN and DNS names, and one of them must be the
/// `server_name` of the center that the hello line names. On plaintext
/// loopback (`names` is `None`) the hello line alone names the center.
pub(super) fn identify_center(
    names: Option<&[String]>,
    hello_center: &str,
    centers: &CenterNames,
) -> Result<String, String> {
    let Some(names) = names else {
        return match centers.iter().find(|(id, _)| id == hello_center) {
            Some((id, _)) => Ok(id.clone()),
            None => Err(format!(
                "center {hello_center:?} is not a dial-out center of this study"
            )),
        };
    };
    let named_by_certificate: Vec<&str> = centers
        .iter()
        .filter(|(_, expected)| {
            expected.as_ref().is_some_and(|expected| {
                names.iter().any(|name| name.eq_ignore_ascii_case(expected))
            })
        })
        .map(|(id, _)| id.as_str())
        .collect();
    if named_by_certificate.contains(&hello_center) {
        return Ok(hello_center.to_string());
    }
    match named_by_certificate.first() {
        Some(certified) => Err(format!(
            "the worker says it is center {hello_center:?}, but its certificate names center \
             {certified:?}; set center_id in its worker.toml"
        )),
        None => Err(format!(
            "no dial-out center of this study has a server_name among the certificate's names \
             {names:?}; set server_name of center {hello_center:?} in study.toml to one of them"
        )),
    }
}

/// Reads one line, newline included, a byte at a time, so that no byte
/// after it is consumed.
pub(super) async fn read_line(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
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
        format!("line longer than {MAX_LINE_BYTES} bytes"),
    ))
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
            "dial-in connection rejected"
        );
    }
}

/// Counts rejected connections per window, so that a scanner cannot flood
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

    fn centers() -> CenterNames {
        vec![
            ("A".into(), Some("worker-a.study.test".into())),
            ("B".into(), Some("worker-b.study.test".into())),
        ]
    }

    #[test]
    fn identify_center_by_certificate_name() {
        let names = vec!["Site A".to_string(), "WORKER-A.study.test".to_string()];
        assert_eq!(
            identify_center(Some(&names), "A", &centers()),
            Ok("A".into())
        );
    }

    #[test]
    fn identify_center_rejects_hello_of_other_center() {
        let names = vec!["worker-a.study.test".to_string()];
        let error = identify_center(Some(&names), "B", &centers()).unwrap_err();
        assert!(error.contains("certificate names center \"A\""), "{error}");
    }

    #[test]
    fn identify_center_rejects_unknown_certificate() {
        let names = vec!["worker-c.study.test".to_string()];
        let error = identify_center(Some(&names), "C", &centers()).unwrap_err();
        assert!(error.contains("server_name"), "{error}");
        assert!(error.contains("worker-c.study.test"), "{error}");
    }

    #[test]
    fn identify_center_on_plaintext_uses_hello() {
        let plaintext = vec![("A".to_string(), None)];
        assert_eq!(identify_center(None, "A", &plaintext), Ok("A".into()));
        let error = identify_center(None, "Z", &plaintext).unwrap_err();
        assert!(error.contains("not a dial-out center"), "{error}");
    }

    #[test]
    fn rejection_log_limits_lines_per_window() {
        let start = Instant::now();
        let mut log = RejectionLog::new();
        log.window_start = start;
        for _ in 0..REJECTIONS_LOGGED_PER_WINDOW {
            assert_eq!(log.admit(start), Some(0));
        }
        assert_eq!(log.admit(start), None);
        assert_eq!(log.admit(start + REJECTION_LOG_WINDOW), Some(1));
    }
}
