//! The `Worker` trait of the gRPC service: one handler per call, each with
//! its tracing span, audit record and metrics.

use std::sync::Arc;

use radstudy_proto::v1::worker_server::Worker;
use radstudy_proto::v1::{
    DescribeRequest, DescribeResponse, ExtractRequest, FeatureTableChunk, FetchFeatureTableRequest,
    HabitatModelRequest, HabitatModelResponse, LogisticStepRequest, LogisticStepResponse,
    PolicySummary, ReproducibilitySumsRequest, ReproducibilitySumsResponse, ScoreModelRequest,
    ScoreModelResponse, SequenceCount, SupervoxelRequest, SupervoxelResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument, Span, info, info_span, warn};

use super::audited::{forward_audited_events, requester};
use super::rounds::{replay_round, run_round, validate_extract};
use super::{
    ChunkStream, DEFAULT_ROWS_PER_CHUNK, EventStream, RequestError, WorkerService, WorkerState,
    aggregates, habitat, habitat_apply, reject, status_for,
};
use crate::audit::{AuditRecord, Released, payload_sha256};
use crate::features;
use crate::metrics::Decision;

#[tonic::async_trait]
impl Worker for WorkerService {
    async fn describe(
        &self,
        request: Request<DescribeRequest>,
    ) -> Result<Response<DescribeResponse>, Status> {
        let state = &self.state;
        let requester = requester(&request);
        let study_id = request.into_inner().study_id;
        let span = info_span!("describe", center = %state.config.center_id, study = %study_id);
        let _entered = span.enter();
        if let Err(error) = state.check_study(&study_id) {
            state.metrics.record_request("Describe", Decision::Refused);
            let status = status_for(&error);
            let reason = status.message().to_string();
            let _ = state.audit(AuditRecord::refused(
                "Describe", &study_id, None, requester, reason,
            ));
            return Err(status);
        }

        let cohort = state
            .manifest
            .sequences
            .iter()
            .map(|sequence| {
                let mut count = SequenceCount {
                    sequence: sequence.clone(),
                    ..Default::default()
                };
                for entry in &state.manifest.entries {
                    match (entry.sequences.get(sequence), entry.label) {
                        (Some(Ok(_)), true) => count.n_positive += 1,
                        (Some(Ok(_)), false) => count.n_negative += 1,
                        _ => count.n_not_listed += 1,
                    }
                }
                count
            })
            .collect();
        let policy = &state.config.policy;
        let (n_negative, n_positive) = state.manifest.label_counts();
        let counts_withheld = n_negative + n_positive < policy.min_patients
            || n_negative.min(n_positive) < policy.min_per_class;
        let (cohort, n_patients) = if counts_withheld {
            (Vec::new(), 0)
        } else {
            (cohort, state.manifest.entries.len() as u32)
        };
        info!(counts_withheld, "described cohort");
        let response = DescribeResponse {
            center_id: state.config.center_id.clone(),
            software_version: env!("CARGO_PKG_VERSION").to_string(),
            contract_version: radstudy_proto::contract_version(),
            feature_definition_hash: features::definition_hash(),
            cohort,
            n_patients,
            counts_withheld,
            policy: Some(PolicySummary {
                min_patients: policy.min_patients,
                min_per_class: policy.min_per_class,
                share_feature_tables: policy.share_feature_tables,
                scores_only_validation: policy.scores_only_validation,
            }),
        };
        state.audit_and_count_unary(
            "Describe",
            (&study_id, None),
            requester,
            Ok(Response::new(response)),
            |_| Released::Description,
        )
    }

    type ExtractStream = EventStream;

    async fn extract(
        &self,
        request: Request<ExtractRequest>,
    ) -> Result<Response<Self::ExtractStream>, Status> {
        let requester = requester(&request);
        let request = request.into_inner();
        let state = self.state.clone();
        let validated = match validate_extract(&state, &request) {
            Ok(validated) => validated,
            Err(error) => {
                state.metrics.record_request("Extract", Decision::Refused);
                let status = reject(error);
                let _ = state.audit(AuditRecord::refused(
                    "Extract",
                    &request.study_id,
                    Some(&request.round_id),
                    requester,
                    status.message().to_string(),
                ));
                return Err(status);
            }
        };

        let key = (request.study_id.clone(), request.round_id.clone());
        let slot = state.slot(key.clone());
        let (sender, round_receiver) = mpsc::channel(64);
        let (audited_sender, receiver) = mpsc::channel(64);
        tokio::spawn(forward_audited_events(
            state.clone(),
            (key.0.clone(), key.1.clone(), requester),
            round_receiver,
            audited_sender,
        ));
        let span = info_span!(
            "round",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        tokio::spawn(
            async move {
                let mut guard = slot.lock().await;
                let metrics = state.metrics.clone();
                if let Some(result) = guard.as_ref() {
                    let decision = replay_round(result, &validated, &sender).await;
                    metrics.record_request("Extract", decision);
                    return;
                }
                let started = std::time::Instant::now();
                let result =
                    Arc::new(run_round(state.clone(), &request.round_id, validated, &sender).await);
                metrics.observe_round(started.elapsed());
                metrics.record_request("Extract", Decision::Answered);
                *guard = Some(result);
                drop(guard);
                state.keep_finished_round(key);
            }
            .instrument(span),
        );
        let events = self
            .state
            .metrics
            .count_stream("Extract", ReceiverStream::new(receiver));
        Ok(Response::new(Box::pin(events)))
    }

    type FetchFeatureTableStream = ChunkStream;

    async fn fetch_feature_table(
        &self,
        request: Request<FetchFeatureTableRequest>,
    ) -> Result<Response<Self::FetchFeatureTableStream>, Status> {
        let requester = requester(&request);
        let request = request.into_inner();
        let state = &self.state;
        let span = info_span!(
            "fetch_feature_table",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        let _entered = span.enter();
        let metrics = &state.metrics;
        let audit_refusal = |status: &Status| {
            let _ = state.audit(AuditRecord::refused(
                "FetchFeatureTable",
                &request.study_id,
                Some(&request.round_id),
                requester.clone(),
                status.message().to_string(),
            ));
        };
        if let Err(error) = state.check_study(&request.study_id) {
            metrics.record_request("FetchFeatureTable", Decision::Refused);
            let status = status_for(&error);
            audit_refusal(&status);
            return Err(status);
        }

        let refuse = |reason: String| {
            metrics.record_request("FetchFeatureTable", Decision::Refused);
            let error = RequestError::PolicyRefused {
                center: state.config.center_id.clone(),
                reason,
            };
            warn!(%error, "feature table request rejected by the site policy");
            let status = status_for(&error);
            audit_refusal(&status);
            status
        };
        let policy = &state.config.policy;
        if !policy.share_feature_tables {
            return Err(refuse(
                "share_feature_tables = false; only aggregates may leave this site".into(),
            ));
        }
        let key = (request.study_id.clone(), request.round_id.clone());
        let result = state.finished_round(&key).ok_or_else(|| {
            metrics.record_request("FetchFeatureTable", Decision::Refused);
            let status = status_for(&RequestError::UnknownRound {
                study_id: request.study_id.clone(),
                round_id: request.round_id.clone(),
            });
            audit_refusal(&status);
            status
        })?;

        let mut patients: Vec<(&str, u32)> = result
            .rows
            .iter()
            .map(|r| (r.pseudonym.as_str(), r.label))
            .collect();
        patients.sort_unstable();
        patients.dedup();
        let n_positive = patients.iter().filter(|(_, label)| *label == 1).count() as u32;
        let n_negative = patients.len() as u32 - n_positive;
        if (patients.len() as u32) < policy.min_patients {
            return Err(refuse(format!(
                "the table has {} patients, fewer than min_patients = {}",
                patients.len(),
                policy.min_patients
            )));
        }
        if n_positive.min(n_negative) < policy.min_per_class {
            return Err(refuse(format!(
                "the table has {n_negative} negative and {n_positive} positive patients, fewer than min_per_class = {} in one class",
                policy.min_per_class
            )));
        }

        let rows_per_chunk = match request.max_rows_per_chunk {
            0 => DEFAULT_ROWS_PER_CHUNK,
            n => n as usize,
        };
        let chunks: Vec<_> = result.rows.chunks(rows_per_chunk).collect();
        let chunk_count = chunks.len().max(1) as u32;
        let mut messages: Vec<Result<FeatureTableChunk, Status>> =
            Vec::with_capacity(chunk_count as usize);
        for index in 0..chunk_count as usize {
            messages.push(Ok(FeatureTableChunk {
                feature_names: if index == 0 {
                    result.feature_names.clone()
                } else {
                    Vec::new()
                },
                rows: chunks
                    .get(index)
                    .map(|rows| rows.to_vec())
                    .unwrap_or_default(),
                chunk_index: index as u32,
                chunk_count,
            }));
        }
        let record = AuditRecord::answered(
            "FetchFeatureTable",
            &request.study_id,
            Some(&request.round_id),
            requester.clone(),
            Released::FeatureTable {
                rows: result.rows.len() as u32,
                columns: result.feature_names.len() as u32,
            },
            payload_sha256(messages.iter().flatten()),
        );
        if let Err(status) = state.audit(record) {
            metrics.record_request("FetchFeatureTable", Decision::Refused);
            return Err(status);
        }
        info!(
            rows = result.rows.len(),
            chunks = chunk_count,
            "released feature table"
        );
        metrics.record_request("FetchFeatureTable", Decision::Answered);
        let stream = metrics.count_stream("FetchFeatureTable", tokio_stream::iter(messages));
        Ok(Response::new(Box::pin(stream)))
    }

    /// Returns the ICC sums of a round's perturbed copies
    /// (`aggregates::reproducibility_sums`).
    ///
    /// Release rule: a sequence is released only when at least
    /// `min_patients` patients have every copy. A sequence below that is
    /// left out of the response and logged, and the other sequences are
    /// still released. The request is rejected only when every sequence is
    /// below `min_patients`. `min_per_class` does not apply, because the
    /// sums carry no outcome label.
    async fn fetch_reproducibility_sums(
        &self,
        request: Request<ReproducibilitySumsRequest>,
    ) -> Result<Response<ReproducibilitySumsResponse>, Status> {
        let requester = requester(&request);
        let request = request.into_inner();
        let state = &self.state;
        let span = info_span!(
            "fetch_reproducibility_sums",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        handle_round_call(
            state,
            "FetchReproducibilitySums",
            span,
            requester,
            (&request.study_id, &request.round_id),
            || aggregates::reproducibility_sums(state, &request),
            |response| Released::IccSums {
                features: response.sums.len() as u32,
                patients: response
                    .sums
                    .iter()
                    .map(|s| s.n_subjects)
                    .max()
                    .unwrap_or(0),
            },
        )
    }

    /// Returns one Newton step's sums of a logistic model over the round's
    /// patients (`aggregates::logistic_step`). Rejected below
    /// `min_patients` included patients or `min_per_class` in either class.
    async fn logistic_step(
        &self,
        request: Request<LogisticStepRequest>,
    ) -> Result<Response<LogisticStepResponse>, Status> {
        let requester = requester(&request);
        let request = request.into_inner();
        let state = &self.state;
        let span = info_span!(
            "logistic_step",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        handle_round_call(
            state,
            "LogisticStep",
            span,
            requester,
            (&request.study_id, &request.round_id),
            || aggregates::logistic_step(state, &request),
            |response| Released::LogisticStep {
                patients: response.n,
            },
        )
    }

    /// Returns scores-only validation aggregates of a frozen model
    /// (`aggregates::score_model`). Rejected unless the policy sets
    /// `scores_only_validation`, and below `min_patients` scored patients
    /// or `min_per_class` in either class.
    async fn score_model(
        &self,
        request: Request<ScoreModelRequest>,
    ) -> Result<Response<ScoreModelResponse>, Status> {
        let requester = requester(&request);
        let request = request.into_inner();
        let state = &self.state;
        let span = info_span!(
            "score_model",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
            model = ?request.model_name,
        );
        handle_round_call(
            state,
            "ScoreModel",
            span,
            requester,
            (&request.study_id, &request.round_id),
            || aggregates::score_model(state, &request),
            |response| Released::ScoreAggregates {
                patients: response.n,
            },
        )
    }

    /// Computes the entropy maps and supervoxels of the listed patients
    /// (`habitat::compute_supervoxels`) and returns the descriptors of the
    /// shared ones. Rejected when fewer than `min_patients` patients would
    /// be shared.
    async fn compute_supervoxels(
        &self,
        request: Request<SupervoxelRequest>,
    ) -> Result<Response<SupervoxelResponse>, Status> {
        let requester = requester(&request);
        let request = request.into_inner();
        let state = &self.state;
        let span = info_span!(
            "compute_supervoxels",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        let result = habitat::compute_supervoxels(state, &request)
            .instrument(span.clone())
            .await
            .map(Response::new)
            .map_err(|error| span.in_scope(|| reject(error)));
        let _entered = span.enter();
        state.audit_and_count_unary(
            "ComputeSupervoxels",
            (&request.study_id, Some(&request.round_id)),
            requester,
            result,
            |response| Released::SupervoxelDescriptors {
                patients: shared_patient_count(response),
                supervoxels: response
                    .patients
                    .iter()
                    .map(|p| p.voxel_counts.len() as u32)
                    .sum(),
            },
        )
    }

    /// Assigns a supervoxel round's patients to the frozen habitat models
    /// (`habitat_apply::apply_habitat_model`), keeps their region masks for
    /// `Extract`, and returns per-region sums over at least `min_patients`
    /// patients.
    async fn apply_habitat_model(
        &self,
        request: Request<HabitatModelRequest>,
    ) -> Result<Response<HabitatModelResponse>, Status> {
        let requester = requester(&request);
        let request = request.into_inner();
        let state = &self.state;
        let span = info_span!(
            "apply_habitat_model",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        let result = habitat_apply::apply_habitat_model(state, &request)
            .instrument(span.clone())
            .await
            .map(Response::new)
            .map_err(|error| span.in_scope(|| reject(error)));
        let _entered = span.enter();
        state.audit_and_count_unary(
            "ApplyHabitatModel",
            (&request.study_id, Some(&request.round_id)),
            requester,
            result,
            |response| Released::RegionSummaries {
                regions: response.regions.len() as u32,
                patients: response
                    .regions
                    .iter()
                    .map(|r| r.n_patients)
                    .max()
                    .unwrap_or(0),
            },
        )
    }
}

/// Handles a synchronous call on one round: computes the response inside
/// `span`, where a rejection is logged, then writes the call's audit record
/// and counts it in the metrics.
fn handle_round_call<T: prost::Message>(
    state: &WorkerState,
    call: &'static str,
    span: Span,
    requester: Option<String>,
    (study_id, round_id): (&str, &str),
    compute: impl FnOnce() -> Result<T, RequestError>,
    released: impl FnOnce(&T) -> Released,
) -> Result<Response<T>, Status> {
    let _entered = span.enter();
    let result = compute().map(Response::new).map_err(reject);
    state.audit_and_count_unary(
        call,
        (study_id, Some(round_id)),
        requester,
        result,
        released,
    )
}

/// Counts the distinct patients whose descriptors a response carries.
fn shared_patient_count(response: &SupervoxelResponse) -> u32 {
    let mut pseudonyms: Vec<&str> = response
        .patients
        .iter()
        .map(|p| p.pseudonym.as_str())
        .collect();
    pseudonyms.sort_unstable();
    pseudonyms.dedup();
    pseudonyms.len() as u32
}
