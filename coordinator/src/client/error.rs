//! Errors talking to one center, and the reading of a failed gRPC status.

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

/// Returns whether a status comes from a broken transport rather than
/// from the worker's reply. tonic reports a broken HTTP/2 connection as
/// `Unknown` or `Unavailable` with the transport's message.
pub(super) fn connection_lost(status: &tonic::Status) -> bool {
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
pub(super) fn status_chain(status: &tonic::Status) -> String {
    append_causes(
        status.message().to_string(),
        std::error::Error::source(status),
    )
}

/// Joins an error and its sources into one line.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    append_causes(error.to_string(), error.source())
}

/// Appends the message of `source` and of each source below it to `text`,
/// each after ": ".
fn append_causes(
    mut text: String,
    mut source: Option<&(dyn std::error::Error + 'static)>,
) -> String {
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
