//! Audit-log writes of the service handlers: one record per answered or
//! refused request (see [`crate::audit`]).

use std::sync::Arc;

use radstudy_proto::v1::{ExtractEvent, extract_event};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::WorkerState;
use crate::audit::{AuditRecord, PayloadHasher, Released, payload_sha256};

impl WorkerState {
    /// Appends `record` to the audit log. When the write fails, logs the
    /// error and returns the status that refuses the request, so nothing
    /// leaves the site unaudited.
    pub(super) fn audit(&self, record: AuditRecord) -> Result<(), Status> {
        self.audit.append(&record).map_err(|error| {
            tracing::error!(
                %error,
                call = record.call,
                study = %record.study_id,
                round = ?record.round_id,
                "audit log write failed; request refused"
            );
            Status::unavailable(format!(
                "{error}; the worker refuses requests until it can write its audit log"
            ))
        })
    }

    /// Writes the audit record of a unary call's result and counts the
    /// call in the metrics. A successful call whose record cannot be
    /// written is refused instead, and counted as refused.
    pub(super) fn audit_and_count_unary<T: prost::Message>(
        &self,
        call: &'static str,
        ids: (&str, Option<&str>),
        requester: Option<String>,
        result: Result<Response<T>, Status>,
        released: impl FnOnce(&T) -> Released,
    ) -> Result<Response<T>, Status> {
        let result = self.audit_unary(call, ids, requester, result, released);
        self.metrics.record_unary(call, &result);
        result
    }

    /// Writes the audit record of a unary call's result. An answered call
    /// whose record cannot be written is refused instead.
    fn audit_unary<T: prost::Message>(
        &self,
        call: &'static str,
        (study_id, round_id): (&str, Option<&str>),
        requester: Option<String>,
        result: Result<Response<T>, Status>,
        released: impl FnOnce(&T) -> Released,
    ) -> Result<Response<T>, Status> {
        match result {
            Ok(response) => {
                let message = response.get_ref();
                self.audit(AuditRecord::answered(
                    call,
                    study_id,
                    round_id,
                    requester,
                    released(message),
                    payload_sha256([message]),
                ))?;
                Ok(response)
            }
            Err(status) => {
                let record = AuditRecord::refused(
                    call,
                    study_id,
                    round_id,
                    requester,
                    status.message().to_string(),
                );
                // A failed write is logged in `audit`, and the call is
                // refused either way.
                let _ = self.audit(record);
                Err(status)
            }
        }
    }
}

/// Returns the caller for the audit log (see
/// [`crate::audit::requester_identity`]), or `None` when the transport gives
/// none, as with in-process test calls.
pub(super) fn requester<T>(request: &Request<T>) -> Option<String> {
    crate::audit::requester_identity(request)
}

/// Forwards a round's events from `events` to the caller and writes the
/// audit record of the stream when it ends. The summary, the last event of
/// a round, is held back until its record is written, so when the write
/// fails the stream ends with an error in its place.
///
/// NOTE: when the write fails, the patient events have already been sent.
/// Only the summary, which completes the round for the caller, is withheld.
pub(super) async fn forward_audited_events(
    state: Arc<WorkerState>,
    (study_id, round_id, requester): (String, String, Option<String>),
    mut events: mpsc::Receiver<Result<ExtractEvent, Status>>,
    sender: mpsc::Sender<Result<ExtractEvent, Status>>,
) {
    let mut hasher = PayloadHasher::default();
    let mut patients = 0u32;
    let mut summary = None;
    let mut refusal = None;
    while let Some(event) = events.recv().await {
        match event {
            Ok(event) => match event.event {
                Some(extract_event::Event::Summary(_)) => summary = Some(event),
                _ => {
                    // A failed send means the caller is gone; the round
                    // keeps running, so its events are still drained.
                    if sender.send(Ok(event.clone())).await.is_ok() {
                        hasher.add(&event);
                        patients += 1;
                    }
                }
            },
            Err(status) => {
                refusal = Some(status.message().to_string());
                let _ = sender.send(Err(status)).await;
            }
        }
    }

    let round = Some(round_id.as_str());
    if let Some(reason) = refusal {
        let record = AuditRecord::refused("Extract", &study_id, round, requester, reason);
        let _ = state.audit(record);
        return;
    }
    let Some(summary) = summary else {
        return;
    };
    hasher.add(&summary);
    let record = AuditRecord::answered(
        "Extract",
        &study_id,
        round,
        requester,
        Released::RoundEvents { patients },
        hasher.finish(),
    );
    let message = state.audit(record).map(|()| summary);
    let _ = sender.send(message).await;
}
