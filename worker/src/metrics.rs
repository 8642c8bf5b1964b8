//! Prometheus metrics of one worker, served over plain HTTP at
//! `GET /metrics` on `metrics_listen` in the Prometheus text exposition
//! format 0.0.4.
//!
//! The metrics carry no patient id, pseudonym or study id: their labels are
//! RPC names, decisions, sequences and exclusion kinds, so a scrape reveals
//! only counts and timings. The endpoint has no authentication or TLS, so
//! bind it to an address that only the site's monitoring can reach.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, Opts, Registry, TEXT_FORMAT, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::Stream;
use tonic::{Response, Status};
use tracing::{debug, info, warn};

use crate::cache::CacheUse;
use crate::error::ExclusionKind;

/// Prefix of every metric name.
const NAMESPACE: &str = "radstudy_worker";

/// The RPCs of `radstudy.v1.Worker`, as they appear in the `rpc` label.
pub const RPC_NAMES: [&str; 8] = [
    "Describe",
    "Extract",
    "FetchFeatureTable",
    "FetchReproducibilitySums",
    "LogisticStep",
    "ScoreModel",
    "ComputeSupervoxels",
    "ApplyHabitatModel",
];

/// Every exclusion kind, so that each `reason` series exists from the start.
const EXCLUSION_KINDS: [ExclusionKind; 8] = [
    ExclusionKind::FileMissing,
    ExclusionKind::FileInvalid,
    ExclusionKind::GeometryMismatch,
    ExclusionKind::MaskInvalid,
    ExclusionKind::RoiTooSmall,
    ExclusionKind::IntensityInvalid,
    ExclusionKind::NotListed,
    ExclusionKind::ManifestInvalid,
];

/// Every `result` label of `result_cache_total`.
const CACHE_RESULTS: [&str; 5] = ["hit", "miss", "invalid", "bypassed", "store_failed"];

/// Upper bounds of the round-duration buckets, in seconds: from a few
/// patients on a fast disk to a large cohort with perturbed copies.
const ROUND_BUCKETS_S: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// Largest request head the metrics endpoint reads, in bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Time a scraper has to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the worker answered a request or rejected it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The worker answered.
    Answered,
    /// The worker returned an error status: an invalid field, a policy
    /// refusal, an unknown or conflicting round, or an internal error.
    Refused,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Answered => "answered",
            Decision::Refused => "refused",
        }
    }
}

/// The worker's counters and histogram, in their own registry.
#[derive(Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    patients_processed: IntCounterVec,
    exclusions: IntCounterVec,
    requests: IntCounterVec,
    round_duration: Histogram,
    released_bytes: IntCounterVec,
    result_cache: IntCounterVec,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").finish_non_exhaustive()
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerMetrics {
    /// Creates the metrics with every known label combination at 0.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let counter = IntCounterVec::new(Opts::new(name, help).namespace(NAMESPACE), labels)
                .unwrap_or_else(|error| panic!("invalid metric definition {name}: {error}"));
            registry
                .register(Box::new(counter.clone()))
                .unwrap_or_else(|error| panic!("metric {name} registered twice: {error}"));
            counter
        };
        let patients_processed = counter(
            "patients_processed_total",
            "Patient-sequence jobs finished by extraction rounds, by sequence and result (extracted or excluded); replayed rounds are not counted again.",
            &["sequence", "result"],
        );
        let exclusions = counter(
            "exclusions_total",
            "Excluded patient-sequence jobs of extraction rounds, by reason (the contract's ErrorKind).",
            &["reason"],
        );
        let requests = counter(
            "requests_total",
            "gRPC requests of radstudy.v1.Worker, by RPC and decision (answered or refused).",
            &["rpc", "decision"],
        );
        let released_bytes = counter(
            "released_bytes_total",
            "Bytes of protobuf response messages handed to the transport, by RPC; every one of them leaves the site.",
            &["rpc"],
        );
        let result_cache = counter(
            "result_cache_total",
            "Patient-sequence jobs of computed extraction rounds by their use of the result cache: hit, miss, invalid (an unusable entry, computed again) or bypassed (computed without the cache); store_failed counts entries that could not be written.",
            &["result"],
        );
        let round_duration = Histogram::with_opts(
            HistogramOpts::new(
                "round_duration_seconds",
                "Wall-clock time of computed extraction rounds, from the first job to the summary; replays are not observed.",
            )
            .namespace(NAMESPACE)
            .buckets(ROUND_BUCKETS_S.to_vec()),
        )
        .unwrap_or_else(|error| panic!("invalid histogram definition: {error}"));
        registry
            .register(Box::new(round_duration.clone()))
            .unwrap_or_else(|error| panic!("histogram registered twice: {error}"));

        for kind in EXCLUSION_KINDS {
            exclusions.with_label_values(&[kind.as_str()]);
        }
        for result in CACHE_RESULTS {
            result_cache.with_label_values(&[result]);
        }
        for rpc in RPC_NAMES {
            released_bytes.with_label_values(&[rpc]);
            for decision in [Decision::Answered, Decision::Refused] {
                requests.with_label_values(&[rpc, decision.as_str()]);
            }
        }

        WorkerMetrics {
            registry,
            patients_processed,
            exclusions,
            requests,
            round_duration,
            released_bytes,
            result_cache,
        }
    }

    /// Counts one request of `rpc` with its decision.
    pub fn record_request(&self, rpc: &str, decision: Decision) {
        self.requests
            .with_label_values(&[rpc, decision.as_str()])
            .inc();
    }

    /// Counts a unary request by its result, and the response's encoded
    /// size when it was answered.
    pub fn record_unary<T: prost::Message>(&self, rpc: &str, result: &Result<Response<T>, Status>) {
        match result {
            Ok(response) => {
                self.record_request(rpc, Decision::Answered);
                self.add_released_bytes(rpc, response.get_ref().encoded_len());
            }
            Err(_) => self.record_request(rpc, Decision::Refused),
        }
    }

    /// Adds `bytes` released by `rpc`.
    pub fn add_released_bytes(&self, rpc: &str, bytes: usize) {
        self.released_bytes
            .with_label_values(&[rpc])
            .inc_by(bytes as u64);
    }

    /// Counts one finished patient-sequence job of a computed round. An
    /// excluded job also counts under its exclusion kind, unless the round
    /// ran with perturbation: a study's perturbation (ICC) rounds extract
    /// patients that its other rounds extract too, so their exclusions
    /// would count the same problem again.
    pub fn record_patient(
        &self,
        sequence: &str,
        exclusion: Option<ExclusionKind>,
        perturbed_round: bool,
    ) {
        let result = match exclusion {
            None => "extracted",
            Some(kind) => {
                if !perturbed_round {
                    self.exclusions.with_label_values(&[kind.as_str()]).inc();
                }
                "excluded"
            }
        };
        self.patients_processed
            .with_label_values(&[sequence, result])
            .inc();
    }

    /// Counts one job's use of the result cache.
    pub fn record_cache_use(&self, used: CacheUse) {
        self.result_cache.with_label_values(&[used.as_str()]).inc();
    }

    /// Counts one cache entry that could not be written.
    pub fn record_cache_store_failure(&self) {
        self.result_cache.with_label_values(&["store_failed"]).inc();
    }

    /// Records the duration of a computed round.
    pub fn observe_round(&self, duration: Duration) {
        self.round_duration.observe(duration.as_secs_f64());
    }

    /// Wraps a response stream so that every message it yields adds its
    /// encoded size to `rpc`'s released bytes.
    pub fn count_stream<S, T>(&self, rpc: &'static str, stream: S) -> CountedStream<S>
    where
        S: Stream<Item = Result<T, Status>>,
        T: prost::Message,
    {
        CountedStream {
            inner: stream,
            metrics: self.clone(),
            rpc,
        }
    }

    /// Returns the metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            // Only a write error of the Vec or an invalid metric name can
            // get here; the scrape then returns what was encoded so far.
            warn!(%error, "cannot encode the metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// A response stream that counts the bytes of the messages it yields.
pub struct CountedStream<S> {
    inner: S,
    metrics: WorkerMetrics,
    rpc: &'static str,
}

impl<S, T> Stream for CountedStream<S>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
    T: prost::Message,
{
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(context);
        if let Poll::Ready(Some(Ok(message))) = &polled {
            self.metrics
                .add_released_bytes(self.rpc, message.encoded_len());
        }
        polled
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
///
/// One request per connection, answered with `Connection: close`: a
/// Prometheus scrape needs no more, and it keeps the server free of a
/// connection state machine.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: WorkerMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    warn!(%error, "cannot accept a metrics connection");
                    // Accept errors such as EMFILE persist for a moment;
                    // retrying at once would spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(error) = answer_scrape(stream, peer, &metrics).await {
                debug!(%peer, %error, "metrics connection ended with an error");
            }
        });
    }
    info!("metrics endpoint stopped");
}

/// Reads one HTTP/1.x request head and writes the response.
async fn answer_scrape(
    mut stream: TcpStream,
    peer: SocketAddr,
    metrics: &WorkerMetrics,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_request_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => {
            debug!(%peer, "metrics request timed out");
            return Ok(());
        }
    };
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    // A query string, such as Prometheus' optional parameters, is ignored.
    let path = target.split('?').next().unwrap_or("");

    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", TEXT_FORMAT, metrics.encode()),
        (_, "/metrics") => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET is supported\n".to_string(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; the metrics are at /metrics\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the blank line that ends an HTTP request head, up to
/// [`MAX_REQUEST_HEAD`] bytes.
async fn read_request_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() >= MAX_REQUEST_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head larger than 8 KiB",
            ));
        }
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Returns the value of the sample line that starts with `series`
    /// followed by a space.
    pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    #[test]
    fn metrics_start_with_zero_series() {
        let text = WorkerMetrics::new().encode();
        assert_eq!(
            sample(
                &text,
                r#"radstudy_worker_requests_total{decision="refused",rpc="ScoreModel"}"#
            ),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"radstudy_worker_exclusions_total{reason="geometry_mismatch"}"#
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, "radstudy_worker_round_duration_seconds_count"),
            Some(0.0)
        );
    }

    #[test]
    fn metrics_record_patients_and_exclusions() {
        let metrics = WorkerMetrics::new();
        metrics.record_patient("PET", None, false);
        metrics.record_patient("PET", Some(ExclusionKind::FileMissing), false);
        metrics.record_patient("PET", Some(ExclusionKind::FileMissing), false);
        // A perturbation round counts the job, but not its exclusion kind.
        metrics.record_patient("PET", Some(ExclusionKind::FileMissing), true);
        let text = metrics.encode();
        assert_eq!(
            sample(
                &text,
                r#"radstudy_worker_patients_processed_total{result="extracted",sequence="PET"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"radstudy_worker_patients_processed_total{result="excluded",sequence="PET"}"#
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"radstudy_worker_exclusions_total{reason="file_missing"}"#
            ),
            Some(2.0)
        );
    }

    async fn http_get(address: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read response");
        response
    }

    #[tokio::test]
    async fn metrics_endpoint_answers_get_and_rejects_others() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let metrics = WorkerMetrics::new();
        metrics.record_request("Describe", Decision::Answered);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_metrics(listener, metrics, async {
            let _ = stopped.await;
        }));

        let ok = http_get(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        let body = ok.split("\r\n\r\n").nth(1).expect("body");
        assert_eq!(
            sample(
                body,
                r#"radstudy_worker_requests_total{decision="answered",rpc="Describe"}"#
            ),
            Some(1.0),
            "{body}"
        );

        let post = http_get(address, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let other = http_get(address, "GET / HTTP/1.1\r\n\r\n").await;
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");

        stop.send(()).expect("server running");
        server.await.expect("server stops");
    }
}
