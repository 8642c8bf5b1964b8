//! The coordinator's side of the contract: one [`CenterClient`] per worker.
//!
//! Every call has a deadline: connecting and short calls use the study's
//! call timeout, an extraction round its round timeout. A server-streamed
//! round reports per-patient progress, which keeps the connection busy
//! during long rounds. The aggregate calls of contract 1.1 (reproducibility
//! sums, logistic steps, scores-only validation) are in [`aggregates`].

mod aggregates;
pub mod dial_in;
mod habitat;
pub mod retry;

pub use aggregates::{FeatureIcc, ReproducibilityReply, ScoreReply};
pub use habitat::{
    ApplyReply, RegionExclusionRecord, RegionSums, SupervoxelLimit, SupervoxelReply,
};

use std::time::Duration;

use radstudy_proto::v1::worker_client::WorkerClient;
use radstudy_proto::v1::{
    DescribeRequest, DescribeResponse, ExtractRequest, FeatureRow, FetchFeatureTableRequest,
    RoundSummary, extract_event,
};
use tonic::transport::{Channel, Endpoint};

use crate::config::{CenterConfig, StudyConfig};
use crate::tls::{ClientTls, HandshakeFailure, check_handshake, explain_tls_failure};
use retry::{RetryPolicy, with_retry};

/// Errors talking to one center.
#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    /// The endpoint URL is invalid.
    #[error("invalid endpoint {endpoint:?}: {message}")]
    Endpoint {
        /// The center.
        center: String,
        /// The URL.
        endpoint: String,
        /// The parser's message.
        message: String,
    },
    /// The worker could not be reached.
    #[error(
        "cannot connect to {endpoint}: {message}; check that its worker is running and reachable"
    )]
    Connect {
        /// The center.
        center: String,
        /// The URL.
        endpoint: String,
        /// The transport's message.
        message: String,
    },
    /// The TLS handshake with the worker failed: a certificate was
    /// rejected on either side, or the worker does not speak TLS.
    #[error("TLS connection to {endpoint} failed: {cause} ({message})")]
    Tls {
        /// The center.
        center: String,
        /// The URL.
        endpoint: String,
        /// The cause and the setting that fixes it.
        cause: String,
        /// The transport's message.
        message: String,
    },
    /// A call failed with a gRPC status.
    #[error("{call} failed: {code:?}: {message}")]
    Call {
        /// The center.
        center: String,
        /// The RPC.
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The worker's message.
        message: String,
    },
    /// The connection broke while a call was open: the worker stopped, its
    /// network was cut, or it missed the keep-alive pings.
    #[error(
        "{call} failed: the connection to the worker was lost ({message}); check that the worker is running and reachable"
    )]
    ConnectionLost {
        /// The center.
        center: String,
        /// The RPC.
        call: &'static str,
        /// The transport's message.
        message: String,
    },
    /// A call did not finish within its deadline.
    #[error(
        "{call} timed out: no reply within {seconds} s; check that the worker is running and not overloaded"
    )]
    Timeout {
        /// The center.
        center: String,
        /// The RPC.
        call: &'static str,
        /// The deadline.
        seconds: u64,
    },
    /// Every attempt of a call failed with a transient error, or the next
    /// wait would have passed the call's budget.
    #[error("{call} got no reply within {seconds} s ({attempts} attempts; last error: {last})")]
    RetriesExhausted {
        /// The center.
        center: String,
        /// The RPC.
        call: &'static str,
        /// Attempts made.
        attempts: u32,
        /// Time spent, waits included.
        seconds: u64,
        /// The error of the last attempt.
        last: Box<CenterError>,
    },
    /// The worker returned a reply that breaks the contract.
    #[error("{call} returned an invalid answer: {message}")]
    Protocol {
        /// The center.
        center: String,
        /// The RPC.
        call: &'static str,
        /// The problem.
        message: String,
    },
}

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

/// The result of an extraction round at one center.
#[derive(Debug, Clone)]
pub struct RoundOutcome {
    /// Patients excluded, per sequence.
    pub exclusions: Vec<ExclusionRecord>,
    /// The worker's summary.
    pub summary: RoundSummary,
}

/// A center's feature table.
#[derive(Debug, Clone)]
pub struct CenterTable {
    /// Feature names, in value order.
    pub feature_names: Vec<String>,
    /// One row per patient, region and sequence.
    pub rows: Vec<FeatureRow>,
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

    /// Asks the worker for its description.
    pub async fn describe(&mut self, study_id: &str) -> Result<DescribeResponse, CenterError> {
        let this = &*self;
        this.retried("Describe", this.call_timeout, |deadline| {
            let mut request = tonic::Request::new(DescribeRequest {
                study_id: study_id.to_string(),
            });
            request.set_timeout(deadline);
            let mut client = this.client.clone();
            async move {
                match tokio::time::timeout(deadline, client.describe(request)).await {
                    Ok(Ok(response)) => Ok(response.into_inner()),
                    Ok(Err(status)) => Err(this.status_error("Describe", status, deadline)),
                    Err(_) => Err(this.timeout_error("Describe", deadline)),
                }
            }
        })
        .await
    }

    /// Runs the extraction round `round`, calling `on_patient(index,
    /// total)` after each patient and sequence. A lost connection repeats
    /// the request with the same round id, so the worker replays the
    /// patients it finished and extracts the rest.
    pub async fn extract(
        &mut self,
        round: ExtractRequest,
        round_timeout: Duration,
        on_patient: impl FnMut(u32, u32),
    ) -> Result<RoundOutcome, CenterError> {
        // Every attempt reports progress through the same callback.
        let on_patient = std::sync::Mutex::new(on_patient);
        let this = &*self;
        this.retried("Extract", round_timeout, |deadline| {
            this.extract_once(round.clone(), deadline, &on_patient)
        })
        .await
    }

    async fn extract_once(
        &self,
        round: ExtractRequest,
        round_timeout: Duration,
        on_patient: &std::sync::Mutex<impl FnMut(u32, u32)>,
    ) -> Result<RoundOutcome, CenterError> {
        let mut request = tonic::Request::new(round);
        request.set_timeout(round_timeout);

        let center = self.center.clone();
        let mut client = self.client.clone();
        let consume = async move {
            let mut stream = client.extract(request).await?.into_inner();
            let mut exclusions = Vec::new();
            while let Some(event) = stream.message().await? {
                match event.event {
                    Some(extract_event::Event::Patient(patient)) => {
                        if let Ok(mut report) = on_patient.lock() {
                            report(patient.index, patient.total);
                        }
                        if let Some(error) = patient.error {
                            let kind = radstudy_proto::v1::ErrorKind::try_from(error.kind)
                                .map(|kind| {
                                    kind.as_str_name()
                                        .trim_start_matches("ERROR_KIND_")
                                        .to_lowercase()
                                })
                                .unwrap_or_else(|_| format!("unknown_{}", error.kind));
                            exclusions.push(ExclusionRecord {
                                center: center.clone(),
                                pseudonym: error.pseudonym,
                                sequence: error.sequence,
                                kind,
                                field: error.field,
                                reason: error.reason,
                            });
                        }
                    }
                    Some(extract_event::Event::Summary(summary)) => {
                        return Ok(Some(RoundOutcome {
                            exclusions,
                            summary,
                        }));
                    }
                    None => {}
                }
            }
            Ok::<_, tonic::Status>(None)
        };
        match tokio::time::timeout(round_timeout, consume).await {
            Ok(Ok(Some(outcome))) => Ok(outcome),
            Ok(Ok(None)) => Err(CenterError::Protocol {
                center: self.center.clone(),
                call: "Extract",
                message: "the stream ended without a round summary".into(),
            }),
            Ok(Err(status)) => Err(self.status_error("Extract", status, round_timeout)),
            Err(_) => Err(self.timeout_error("Extract", round_timeout)),
        }
    }

    /// Fetches the feature table of a finished round and checks its shape.
    pub async fn fetch_feature_table(
        &mut self,
        study_id: &str,
        round_id: &str,
    ) -> Result<CenterTable, CenterError> {
        let this = &*self;
        let chunks = this
            .retried("FetchFeatureTable", this.call_timeout, |deadline| {
                let mut request = tonic::Request::new(FetchFeatureTableRequest {
                    study_id: study_id.to_string(),
                    round_id: round_id.to_string(),
                    max_rows_per_chunk: 0,
                });
                request.set_timeout(deadline);
                let mut client = this.client.clone();
                let consume = async move {
                    let mut stream = client.fetch_feature_table(request).await?.into_inner();
                    let mut chunks = Vec::new();
                    while let Some(chunk) = stream.message().await? {
                        chunks.push(chunk);
                    }
                    Ok::<_, tonic::Status>(chunks)
                };
                async move {
                    match tokio::time::timeout(deadline, consume).await {
                        Ok(Ok(chunks)) => Ok(chunks),
                        Ok(Err(status)) => {
                            Err(this.status_error("FetchFeatureTable", status, deadline))
                        }
                        Err(_) => Err(this.timeout_error("FetchFeatureTable", deadline)),
                    }
                }
            })
            .await?;

        let protocol = |message: String| CenterError::Protocol {
            center: self.center.clone(),
            call: "FetchFeatureTable",
            message,
        };
        let first = chunks
            .first()
            .ok_or_else(|| protocol("no chunk received".into()))?;
        let feature_names = first.feature_names.clone();
        let chunk_count = first.chunk_count as usize;
        if chunks.len() != chunk_count {
            return Err(protocol(format!(
                "received {} chunks of {chunk_count}",
                chunks.len()
            )));
        }
        let mut rows = Vec::new();
        for (index, chunk) in chunks.into_iter().enumerate() {
            if chunk.chunk_index as usize != index {
                return Err(protocol(format!(
                    "chunk {} arrived at position {index}",
                    chunk.chunk_index
                )));
            }
            for row in chunk.rows {
                if row.values.len() != feature_names.len() {
                    return Err(protocol(format!(
                        "a row of {} has {} values for {} features",
                        row.pseudonym,
                        row.values.len(),
                        feature_names.len()
                    )));
                }
                if let Some(position) = row.values.iter().position(|v| !v.is_finite()) {
                    return Err(protocol(format!(
                        "feature {} of {} is not finite",
                        feature_names[position], row.pseudonym
                    )));
                }
                if row.label > 1 {
                    return Err(protocol(format!(
                        "label {} of {} is not 0 or 1",
                        row.label, row.pseudonym
                    )));
                }
                rows.push(row);
            }
        }
        Ok(CenterTable {
            feature_names,
            rows,
        })
    }
}

/// Returns whether a status comes from a broken transport rather than
/// from the worker's reply. tonic reports a broken HTTP/2 connection as
/// `Unknown` or `Unavailable` with the transport's message.
fn connection_lost(status: &tonic::Status) -> bool {
    let transport_code = matches!(
        status.code(),
        tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled
    );
    let message = status.message().to_lowercase();
    transport_code
        && [
            "h2 protocol error",
            "connection",
            "transport error",
            "broken pipe",
            "connect error",
            "keep-alive",
            "keepalive",
        ]
        .iter()
        .any(|sign| message.contains(sign))
}

/// Joins a status message and the messages of its sources into one line.
fn status_chain(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        // Transport errors often repeat their cause in their own message
        // ("tcp connect error: tcp connect error: ..."), so a cause already
        // in the text is not appended again.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Joins an error and its sources into one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Transport errors often repeat their cause in their own message
        // ("tcp connect error: tcp connect error: ..."), so a cause already
        // in the text is not appended again.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_lost_recognises_transport_failures_only() {
        // The message tonic gave when the compose test cut a site's network.
        let cut = tonic::Status::unknown("h2 protocol error: error reading a body from connection");
        assert!(connection_lost(&cut));
        // A worker that stopped between two calls: the channel reconnects
        // and fails.
        let stopped = tonic::Status::unavailable("tcp connect error");
        assert!(connection_lost(&stopped));
        // A worker's own rejection is a reply, not a lost connection.
        let refused = tonic::Status::failed_precondition(
            "refused by the site policy of center B: min_patients = 5",
        );
        assert!(!connection_lost(&refused));
        let unknown = tonic::Status::unknown("round not found");
        assert!(!connection_lost(&unknown));
    }
}
