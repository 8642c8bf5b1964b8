//! The coordinator's side of the contract: one [`CenterClient`] per worker.
//!
//! Every call has a deadline: connecting and short calls use the study's
//! call timeout, an extraction round its round timeout. A server-streamed
//! round reports per-patient progress, which keeps the connection busy
//! during long rounds. The aggregate calls of contract 1.1 (reproducibility
//! sums, logistic steps, scores-only validation) are in [`aggregates`].

mod aggregates;
pub mod dial_in;
mod error;
mod extraction;
mod habitat;
pub mod retry;

pub use aggregates::{FeatureIcc, ReproducibilityReply, ScoreReply};
pub use error::CenterError;
pub use extraction::{CenterTable, RoundOutcome};
pub use habitat::{
    ApplyReply, RegionExclusionRecord, RegionSums, SupervoxelLimit, SupervoxelReply,
};

use std::time::Duration;

use radstudy_proto::v1::worker_client::WorkerClient;
use tonic::transport::{Channel, Endpoint};

use crate::config::{CenterConfig, StudyConfig};
use crate::tls::{ClientTls, HandshakeFailure, check_handshake, explain_tls_failure};
use error::{connection_lost, error_chain, status_chain};
use retry::{RetryPolicy, with_retry};

/// A patient excluded at a center, as reported by its worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExclusionRecord {
    /// The center.
    pub center: String,
    /// The patient's pseudonym.
    pub pseudonym: String,
    /// The sequence.
    pub sequence: String,
    /// Category, snake_case (for example `file_missing`).
    pub kind: String,
    /// Manifest field.
    pub field: String,
    /// The worker's reason.
    pub reason: String,
}

/// HTTP/2 keep-alive interval and timeout when the study sets none.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(20);

/// Transport security of one connection: the study's TLS files and the
/// name that the worker's certificate must contain.
#[derive(Debug, Clone, Copy)]
pub struct TlsTarget<'a> {
    /// The study's loaded `[tls]` files.
    pub tls: &'a ClientTls,
    /// Expected name in the worker's certificate.
    pub server_name: &'a str,
}

/// A connected worker.
#[derive(Debug, Clone)]
pub struct CenterClient {
    center: String,
    endpoint: String,
    /// The expected certificate name under TLS, for explaining failures.
    server_name: Option<String>,
    client: WorkerClient<Channel>,
    call_timeout: Duration,
    retry: RetryPolicy,
}

impl CenterClient {
    /// Connects to a worker within `call_timeout`, with HTTP/2 pings every
    /// [`DEFAULT_KEEPALIVE`].
    pub async fn connect(
        center: &str,
        endpoint: &str,
        call_timeout: Duration,
    ) -> Result<Self, CenterError> {
        Self::connect_with_keepalive(center, endpoint, call_timeout, DEFAULT_KEEPALIVE).await
    }

    /// Connects to a worker within `call_timeout`. While a call is open,
    /// an HTTP/2 ping goes out every `keepalive`, and a ping unanswered
    /// for `keepalive` ends the call, so a worker cut off mid-round is
    /// noticed within about twice `keepalive`.
    pub async fn connect_with_keepalive(
        center: &str,
        endpoint: &str,
        call_timeout: Duration,
        keepalive: Duration,
    ) -> Result<Self, CenterError> {
        Self::connect_with_tls(center, endpoint, call_timeout, keepalive, None).await
    }

    /// Connects to the study's center `center` with the study's timeouts,
    /// over mutual TLS when the endpoint is `https://`. A dial-out center
    /// is reached through the study's dial-in listener instead
    /// ([`dial_in`]).
    pub async fn connect_for_study(
        study: &StudyConfig,
        center: &CenterConfig,
    ) -> Result<Self, CenterError> {
        if center.mode == crate::config::CenterMode::DialOut {
            let client = dial_in::connect_dial_out(study, center).await?;
            return Ok(client.with_retry_policy(study.retry_policy()));
        }
        let host = center
            .endpoint
            .parse::<tonic::transport::Uri>()
            .ok()
            .and_then(|uri| {
                uri.host()
                    .map(|host| host.trim_matches(['[', ']']).to_string())
            })
            .unwrap_or_default();
        let server_name = center.server_name.clone().unwrap_or(host);
        let https = center.endpoint.starts_with("https://");
        let tls = match (&study.tls, https) {
            (Some(tls), true) => Some(TlsTarget {
                tls,
                server_name: &server_name,
            }),
            (None, true) => {
                return Err(CenterError::Endpoint {
                    center: center.id.clone(),
                    endpoint: center.endpoint.clone(),
                    message: "an https:// endpoint needs a [tls] table in study.toml".into(),
                });
            }
            (_, false) => None,
        };
        let client = Self::connect_with_tls(
            &center.id,
            &center.endpoint,
            study.call_timeout(),
            study.keepalive(),
            tls,
        )
        .await?;
        Ok(client.with_retry_policy(study.retry_policy()))
    }

    /// Connects like [`CenterClient::connect_with_keepalive`], over mutual
    /// TLS when `tls` is given. A rejected handshake, on either side, is
    /// [`CenterError::Tls`] with its cause.
    pub async fn connect_with_tls(
        center: &str,
        endpoint: &str,
        call_timeout: Duration,
        keepalive: Duration,
        tls: Option<TlsTarget<'_>>,
    ) -> Result<Self, CenterError> {
        let endpoint_error = |message: String| CenterError::Endpoint {
            center: center.to_string(),
            endpoint: endpoint.to_string(),
            message,
        };
        let mut target = Endpoint::from_shared(endpoint.to_string())
            .map_err(|error| endpoint_error(error.to_string()))?;
        if let Some(tls) = tls {
            let host = target.uri().host().unwrap_or_default();
            let port = target.uri().port_u16().unwrap_or(443);
            let address = format!("{host}:{port}");
            match check_handshake(tls.tls, &address, tls.server_name, call_timeout).await {
                Ok(()) => {}
                Err(HandshakeFailure::Connect(message)) => {
                    return Err(CenterError::Connect {
                        center: center.to_string(),
                        endpoint: endpoint.to_string(),
                        message,
                    });
                }
                Err(HandshakeFailure::Tls(message)) => {
                    let cause = explain_tls_failure(&message, tls.server_name)
                        .unwrap_or_else(|| "the TLS handshake failed".to_string());
                    return Err(CenterError::Tls {
                        center: center.to_string(),
                        endpoint: endpoint.to_string(),
                        cause,
                        message,
                    });
                }
            }
            target = target
                .tls_config(tls.tls.for_server(tls.server_name))
                .map_err(|error| endpoint_error(error_chain(&error)))?;
        }
        let target = target
            .connect_timeout(call_timeout)
            // Long rounds stream progress, but a stalled peer should still be
            // noticed.
            .http2_keep_alive_interval(keepalive)
            .keep_alive_timeout(keepalive)
            .keep_alive_while_idle(true);
        let server_name = tls.map(|tls| tls.server_name.to_string());
        let channel = target.connect().await.map_err(|error| {
            let message = error_chain(&error);
            match explain_tls_failure(&message, server_name.as_deref().unwrap_or_default()) {
                Some(cause) => CenterError::Tls {
                    center: center.to_string(),
                    endpoint: endpoint.to_string(),
                    cause,
                    message,
                },
                None => CenterError::Connect {
                    center: center.to_string(),
                    endpoint: endpoint.to_string(),
                    message,
                },
            }
        })?;
        Ok(CenterClient {
            center: center.to_string(),
            endpoint: endpoint.to_string(),
            server_name,
            client: WorkerClient::new(channel),
            call_timeout,
            retry: RetryPolicy::default(),
        })
    }

    /// Returns the client with `policy` for every later call.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Returns the center id this client was configured with.
    pub fn center(&self) -> &str {
        &self.center
    }

    /// Runs `attempt` under this client's retry policy, each attempt
    /// limited to `per_attempt` and to the time left in the budget.
    async fn retried<T, F, Fut>(
        &self,
        call: &'static str,
        per_attempt: Duration,
        attempt: F,
    ) -> Result<T, CenterError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, CenterError>>,
    {
        with_retry(&self.retry, &self.center, call, per_attempt, attempt).await
    }

    /// Sends one unary request under the retry policy, each attempt with
    /// a fresh copy of `message` and the deadline `per_attempt` (or the
    /// time left in the budget), mapping a failed status.
    async fn unary_retried<M, T, F, Fut>(
        &self,
        call: &'static str,
        per_attempt: Duration,
        message: M,
        send: F,
    ) -> Result<T, CenterError>
    where
        M: Clone,
        F: Fn(WorkerClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.retried(call, per_attempt, |deadline| {
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(deadline);
            let reply = send(self.client.clone(), request);
            async move {
                match tokio::time::timeout(deadline, reply).await {
                    Ok(Ok(response)) => Ok(response.into_inner()),
                    Ok(Err(status)) => Err(self.status_error(call, status, deadline)),
                    Err(_) => Err(self.timeout_error(call, deadline)),
                }
            }
        })
        .await
    }

    /// Maps a failed status like [`CenterClient::call_error`], except
    /// that tonic's own expiry of the request's `grpc-timeout` (status
    /// `Cancelled`, "Timeout expired", in tonic 0.14) is a timeout after
    /// `deadline`.
    fn status_error(
        &self,
        call: &'static str,
        status: tonic::Status,
        deadline: Duration,
    ) -> CenterError {
        if status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired" {
            return self.timeout_error(call, deadline);
        }
        self.call_error(call, status)
    }

    fn call_error(&self, call: &'static str, status: tonic::Status) -> CenterError {
        // The handshake check in `connect_with_tls` reports a rejected
        // certificate at connect time. This catches one on a reconnect,
        // whose TLS alert can arrive with a call.
        let chain = status_chain(&status);
        if let Some(cause) =
            explain_tls_failure(&chain, self.server_name.as_deref().unwrap_or_default())
        {
            return CenterError::Tls {
                center: self.center.clone(),
                endpoint: self.endpoint.clone(),
                cause,
                message: chain,
            };
        }
        let message = status.message().to_string();
        if connection_lost(&status) {
            return CenterError::ConnectionLost {
                center: self.center.clone(),
                call,
                message,
            };
        }
        CenterError::Call {
            center: self.center.clone(),
            call,
            code: status.code(),
            message,
        }
    }

    fn timeout_error(&self, call: &'static str, deadline: Duration) -> CenterError {
        CenterError::Timeout {
            center: self.center.clone(),
            call,
            seconds: deadline.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests;
