//! Dial-in: connections to dial-out workers, which connect to the
//! coordinator so that their hospital opens no inbound port.
//!
//! The coordinator listens on `[dial_in] listen`. A worker connects, and
//! under TLS the coordinator is the TLS server: it requires a client
//! certificate from a CA in `tls.ca` and finds the center whose
//! `server_name` the certificate names. On a plaintext loopback listener
//! the worker's hello line names the center. The accepted connection waits
//! as a standby (see [`radstudy_proto::dial_out`] for the preface).
//!
//! [`connect_dial_out`] then builds the same [`CenterClient`] as direct
//! mode, whose tonic channel gets its connection from the center's
//! standbys instead of dialling: the coordinator stays the HTTP/2 and gRPC
//! client. When that connection breaks, the channel calls the connector
//! again, which claims the next standby that the worker opens. Calls, deadlines and
//! keep-alives are those of direct mode.

mod claim;
mod listener;

pub use listener::DialInHub;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use radstudy_proto::v1::worker_client::WorkerClient;
use serde::Deserialize;
use tonic::transport::Endpoint;

use super::{CenterClient, CenterError, error_chain};
use crate::config::{CenterConfig, CenterMode, StudyConfig};
use claim::ClaimConnector;

/// The `[dial_in]` table of study.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DialInSettings {
    /// Address on which the coordinator accepts dial-out workers, for
    /// example `0.0.0.0:7443`; port 0 picks a free port.
    pub listen: String,
    /// How long a connection to a dial-out center waits for its worker to
    /// connect, in seconds. It should exceed the workers'
    /// `dial_out.backoff_max_s`, because a worker that found no listener
    /// retries only after its backoff.
    #[serde(default = "default_wait_s")]
    pub wait_s: u64,
}

fn default_wait_s() -> u64 {
    60
}

impl DialInSettings {
    /// Checks the values; `Err` contains the dotted key, the value and the
    /// expected form. Without `[tls]` only a loopback address is allowed.
    pub fn check(&self, has_tls: bool) -> Result<(), (&'static str, String, &'static str)> {
        let Ok(address) = self.listen.parse::<SocketAddr>() else {
            return Err((
                "dial_in.listen",
                format!("{:?}", self.listen),
                "an address such as \"0.0.0.0:7443\"",
            ));
        };
        // Plaintext gRPC would expose the released tables on the network.
        if !has_tls && !address.ip().is_loopback() {
            return Err((
                "dial_in.listen",
                format!("{:?}", self.listen),
                "a loopback address (127.0.0.0/8 or ::1) unless study.toml has a [tls] table; \
                 add one to accept dial-out workers over mutual TLS",
            ));
        }
        if self.wait_s == 0 {
            return Err(("dial_in.wait_s", "0".into(), "at least 1 second"));
        }
        Ok(())
    }

    fn address(&self) -> Result<SocketAddr, String> {
        self.listen
            .parse()
            .map_err(|error| format!("invalid dial_in.listen {:?}: {error}", self.listen))
    }
}

/// The study's dial-in listener: its settings, and the listener itself
/// once the first dial-out center connects. Clones share the listener.
#[derive(Debug, Clone)]
pub struct DialIn {
    /// The `[dial_in]` table.
    pub settings: DialInSettings,
    hub: Arc<tokio::sync::OnceCell<Arc<DialInHub>>>,
}

impl DialIn {
    /// Wraps `settings`; the listener starts with [`DialIn::start`].
    pub fn new(settings: DialInSettings) -> Self {
        DialIn {
            settings,
            hub: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Binds the listener and starts accepting workers, unless an earlier
    /// call did, and returns it. It accepts the dial-out centers of `study`
    /// as they are at the first call, and stops when the last clone of
    /// this `DialIn` is dropped.
    pub async fn start(&self, study: &StudyConfig) -> Result<Arc<DialInHub>, CenterError> {
        let hub = self
            .hub
            .get_or_try_init(|| async {
                let address = self.settings.address()?;
                let acceptor = match &study.tls {
                    Some(tls) => Some(tls.dial_in_acceptor().map_err(|error| error.to_string())?),
                    None => None,
                };
                let centers = study
                    .centers
                    .iter()
                    .filter(|center| center.mode == CenterMode::DialOut)
                    .map(|center| (center.id.clone(), center.server_name.clone()))
                    .collect();
                DialInHub::bind(address, acceptor, centers)
                    .await
                    .map(Arc::new)
            })
            .await
            .map_err(|message| CenterError::Connect {
                center: String::new(),
                endpoint: format!("dial-in listener {}", self.settings.listen),
                message,
            })?;
        Ok(hub.clone())
    }
}

/// Connects to the dial-out center `center` of `study`: starts the dial-in
/// listener if needed, then builds a client whose connections are the
/// worker's standbys. The first connection waits up to `dial_in.wait_s`.
pub(super) async fn connect_dial_out(
    study: &StudyConfig,
    center: &CenterConfig,
) -> Result<CenterClient, CenterError> {
    let connect_error = |endpoint: String, message: String| CenterError::Connect {
        center: center.id.clone(),
        endpoint,
        message,
    };
    let Some(dial_in) = &study.dial_in else {
        return Err(connect_error(
            "dial-in listener".into(),
            format!(
                "center {} has mode = \"dial_out\", but study.toml has no [dial_in] table",
                center.id
            ),
        ));
    };
    let hub = dial_in.start(study).await?;
    let endpoint = format!("dial-out worker via {}", hub.local_addr());
    let Some(standbys) = hub.standbys(&center.id) else {
        return Err(connect_error(
            endpoint,
            format!(
                "center {} was not a dial-out center when the dial-in listener started",
                center.id
            ),
        ));
    };
    let connector = ClaimConnector::new(
        center.id.clone(),
        standbys,
        Duration::from_secs(dial_in.settings.wait_s),
        hub.local_addr(),
    );

    // The URI only names the channel; the connector ignores it. Plain
    // http:// keeps tonic from adding TLS, which the listener has done.
    let keepalive = study.keepalive();
    let channel = Endpoint::from_static("http://dial-out.invalid")
        .http2_keep_alive_interval(keepalive)
        .keep_alive_timeout(keepalive)
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await
        .map_err(|error| connect_error(endpoint.clone(), error_chain(&error)))?;
    Ok(CenterClient {
        center: center.id.clone(),
        endpoint,
        // The listener did the TLS handshake, so no call fails on a
        // certificate and the error explanations need no server name.
        server_name: None,
        client: WorkerClient::new(channel),
        call_timeout: study.call_timeout(),
        retry: super::retry::RetryPolicy::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(listen: &str) -> DialInSettings {
        DialInSettings {
            listen: listen.to_string(),
            wait_s: default_wait_s(),
        }
    }

    #[test]
    fn dial_in_plaintext_needs_loopback() {
        assert!(settings("127.0.0.1:7443").check(false).is_ok());
        assert!(settings("[::1]:0").check(false).is_ok());
        let (field, _, expected) = settings("0.0.0.0:7443").check(false).unwrap_err();
        assert_eq!(field, "dial_in.listen");
        assert!(expected.contains("[tls]"), "{expected}");
        assert!(settings("0.0.0.0:7443").check(true).is_ok());
    }

    #[test]
    fn dial_in_invalid_values_are_named() {
        assert_eq!(
            settings("7443").check(true).unwrap_err().0,
            "dial_in.listen"
        );
        let mut zero = settings("127.0.0.1:7443");
        zero.wait_s = 0;
        assert_eq!(zero.check(false).unwrap_err().0, "dial_in.wait_s");
    }
}
