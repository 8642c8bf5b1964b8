//! The worker's gRPC service: `Describe`, `Extract` and `FetchFeatureTable`.
//!
//! Rounds are idempotent by (study id, round id). The first `Extract` of a
//! round computes it in a background task that keeps running if the caller
//! disconnects, and stores the result; any later `Extract` of the same round
//! replays the stored events, and `FetchFeatureTable` serves its table.
//! Errors map to gRPC codes in [`status_for`], in one place.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use radstudy_proto::v1::worker_server::Worker;
use radstudy_proto::v1::{
    DescribeRequest, DescribeResponse, ExtractEvent, ExtractRequest, FeatureRow, FeatureTableChunk,
    FetchFeatureTableRequest, PatientError, PatientResult, PolicySummary, RoundSummary,
    SequenceCount, extract_event,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info, info_span, warn};

use crate::config::WorkerConfig;
use crate::error::{Exclusion, ExclusionKind};
use crate::extract::{ExtractContext, extract_sequence};
use crate::features::{self, ExtractionSettings};
use crate::manifest::Manifest;
use crate::pseudonym::PseudonymKey;

/// Rows per feature-table chunk when the request leaves it to the worker.
pub const DEFAULT_ROWS_PER_CHUNK: usize = 256;

/// Region name of the whole-tumour mask.
pub const WHOLE_REGION: &str = "whole";

/// Everything a round request can get wrong, mapped to a gRPC status by
/// [`status_for`].
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A request field is invalid.
    #[error("invalid request field `{field}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The problem with its value.
        reason: String,
    },
    /// The site policy does not allow this request.
    #[error("refused by the site policy of center {center}: {reason}")]
    PolicyRefused {
        /// The center.
        center: String,
        /// The policy rule that rejected the request, and its value.
        reason: String,
    },
    /// The round has not been run on this worker.
    #[error(
        "round {round_id} of study {study_id} has not been run on this worker; call Extract first"
    )]
    UnknownRound {
        /// The study.
        study_id: String,
        /// The round.
        round_id: String,
    },
    /// The round id was used before with other settings.
    #[error(
        "round {round_id} was already run with other sequences or settings; use a new round id"
    )]
    RoundConflict {
        /// The round.
        round_id: String,
    },
}

/// Maps each request error to its gRPC status code.
pub fn status_for(error: &RequestError) -> Status {
    let message = error.to_string();
    match error {
        RequestError::InvalidField { .. } => Status::invalid_argument(message),
        RequestError::PolicyRefused { .. } => Status::permission_denied(message),
        RequestError::UnknownRound { .. } => Status::not_found(message),
        RequestError::RoundConflict { .. } => Status::failed_precondition(message),
    }
}

/// A finished round.
#[derive(Debug)]
struct RoundResult {
    /// Sequences and settings the round ran with, to detect reuse of an id.
    request: (Vec<String>, ExtractionSettings),
    events: Vec<PatientResult>,
    summary: RoundSummary,
    feature_names: Vec<String>,
    rows: Vec<FeatureRow>,
}

type RoundKey = (String, String);
type RoundSlot = Arc<tokio::sync::Mutex<Option<Arc<RoundResult>>>>;

/// Shared state of one worker process.
pub struct WorkerState {
    config: WorkerConfig,
    manifest: Manifest,
    key: PseudonymKey,
    canonical_root: PathBuf,
    rounds: Mutex<HashMap<RoundKey, RoundSlot>>,
}

impl WorkerState {
    /// Creates the state from a loaded configuration, manifest and key.
    pub fn new(
        config: WorkerConfig,
        manifest: Manifest,
        key: PseudonymKey,
    ) -> std::io::Result<Self> {
        let canonical_root = std::fs::canonicalize(&config.data_root)?;
        Ok(WorkerState {
            config,
            manifest,
            key,
            canonical_root,
            rounds: Mutex::new(HashMap::new()),
        })
    }

    fn check_study(&self, study_id: &str) -> Result<(), RequestError> {
        let valid = !study_id.is_empty()
            && study_id.len() <= 128
            && study_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !valid {
            return Err(RequestError::InvalidField {
                field: "study_id",
                reason: "must be 1 to 128 characters from A-Z, a-z, 0-9, '-', '_', '.' and ':'"
                    .into(),
            });
        }
        let allowed = &self.config.policy.allowed_studies;
        if !allowed.is_empty() && !allowed.iter().any(|s| s == study_id) {
            return Err(RequestError::PolicyRefused {
                center: self.config.center_id.clone(),
                reason: format!("study {study_id:?} is not in allowed_studies"),
            });
        }
        Ok(())
    }

    fn slot(&self, key: RoundKey) -> RoundSlot {
        let mut rounds = match self.rounds.lock() {
            Ok(rounds) => rounds,
            // A panic while holding this lock cannot leave the map half-updated.
            Err(poisoned) => poisoned.into_inner(),
        };
        rounds.entry(key).or_default().clone()
    }

    fn finished_round(&self, key: &RoundKey) -> Option<Arc<RoundResult>> {
        let slot = {
            let rounds = match self.rounds.lock() {
                Ok(rounds) => rounds,
                Err(poisoned) => poisoned.into_inner(),
            };
            rounds.get(key).cloned()
        }?;
        slot.try_lock().ok().and_then(|guard| guard.clone())
    }
}

/// The gRPC service over a shared [`WorkerState`].
#[derive(Clone)]
pub struct WorkerService {
    state: Arc<WorkerState>,
}

impl WorkerService {
    /// Wraps the shared state.
    pub fn new(state: Arc<WorkerState>) -> Self {
        WorkerService { state }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<ExtractEvent, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn Stream<Item = Result<FeatureTableChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Worker for WorkerService {
    async fn describe(
        &self,
        request: Request<DescribeRequest>,
    ) -> Result<Response<DescribeResponse>, Status> {
        let state = &self.state;
        let study_id = request.into_inner().study_id;
        let span = info_span!("describe", center = %state.config.center_id, study = %study_id);
        let _entered = span.enter();
        state.check_study(&study_id).map_err(|e| status_for(&e))?;

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
        Ok(Response::new(DescribeResponse {
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
            }),
        }))
    }

    type ExtractStream = EventStream;

    async fn extract(
        &self,
        request: Request<ExtractRequest>,
    ) -> Result<Response<Self::ExtractStream>, Status> {
        let request = request.into_inner();
        let state = self.state.clone();
        let validated = validate_extract(&state, &request).map_err(|e| status_for(&e))?;

        let key = (request.study_id.clone(), request.round_id.clone());
        let slot = state.slot(key);
        let (sender, receiver) = mpsc::channel(64);
        let span = info_span!(
            "round",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        tokio::spawn(
            async move {
                let mut guard = slot.lock().await;
                if let Some(result) = guard.as_ref() {
                    replay_round(result, &validated, &sender).await;
                    return;
                }
                let result =
                    Arc::new(run_round(state, &request.round_id, validated, &sender).await);
                *guard = Some(result);
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    type FetchFeatureTableStream = ChunkStream;

    async fn fetch_feature_table(
        &self,
        request: Request<FetchFeatureTableRequest>,
    ) -> Result<Response<Self::FetchFeatureTableStream>, Status> {
        let request = request.into_inner();
        let state = &self.state;
        let span = info_span!(
            "fetch_feature_table",
            center = %state.config.center_id,
            study = %request.study_id,
            round = %request.round_id,
        );
        let _entered = span.enter();
        state
            .check_study(&request.study_id)
            .map_err(|e| status_for(&e))?;

        let refuse = |reason: String| {
            let error = RequestError::PolicyRefused {
                center: state.config.center_id.clone(),
                reason,
            };
            warn!(%error, "feature table request rejected by the site policy");
            status_for(&error)
        };
        let policy = &state.config.policy;
        if !policy.share_feature_tables {
            return Err(refuse(
                "share_feature_tables = false; only aggregates may leave this site".into(),
            ));
        }
        let key = (request.study_id.clone(), request.round_id.clone());
        let result = state.finished_round(&key).ok_or_else(|| {
            status_for(&RequestError::UnknownRound {
                study_id: request.study_id.clone(),
                round_id: request.round_id.clone(),
            })
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
        info!(
            rows = result.rows.len(),
            chunks = chunk_count,
            "released feature table"
        );
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }
}

/// A validated `Extract` request.
#[derive(Debug, Clone, PartialEq)]
struct ValidatedExtract {
    sequences: Vec<String>,
    settings: ExtractionSettings,
}

fn validate_extract(
    state: &WorkerState,
    request: &ExtractRequest,
) -> Result<ValidatedExtract, RequestError> {
    state.check_study(&request.study_id)?;
    if uuid::Uuid::parse_str(&request.round_id).is_err() {
        return Err(RequestError::InvalidField {
            field: "round_id",
            reason: format!("{:?} is not a UUID", request.round_id),
        });
    }
    if request.sequences.is_empty() {
        return Err(RequestError::InvalidField {
            field: "sequences",
            reason: "empty; list at least one sequence".into(),
        });
    }
    for sequence in &request.sequences {
        if !state.manifest.sequences.contains(sequence) {
            return Err(RequestError::InvalidField {
                field: "sequences",
                reason: format!(
                    "sequence {sequence:?} is not in this center's manifest, which has {:?}",
                    state.manifest.sequences
                ),
            });
        }
    }
    let settings = request
        .settings
        .as_ref()
        .ok_or(RequestError::InvalidField {
            field: "settings",
            reason: "missing".into(),
        })?;
    let settings =
        ExtractionSettings::from_proto(settings).map_err(|error| RequestError::InvalidField {
            field: "settings",
            reason: error.to_string(),
        })?;
    Ok(ValidatedExtract {
        sequences: request.sequences.clone(),
        settings,
    })
}

async fn replay_round(
    result: &RoundResult,
    request: &ValidatedExtract,
    sender: &mpsc::Sender<Result<ExtractEvent, Status>>,
) {
    if result.request != (request.sequences.clone(), request.settings.clone()) {
        let error = RequestError::RoundConflict {
            round_id: result.summary.round_id.clone(),
        };
        let _ = sender.send(Err(status_for(&error))).await;
        return;
    }
    info!("replaying finished round");
    for event in &result.events {
        let message = ExtractEvent {
            event: Some(extract_event::Event::Patient(event.clone())),
        };
        if sender.send(Ok(message)).await.is_err() {
            return;
        }
    }
    let summary = ExtractEvent {
        event: Some(extract_event::Event::Summary(result.summary.clone())),
    };
    let _ = sender.send(Ok(summary)).await;
}

/// One unit of work: a patient and sequence, or a manifest row that failed.
struct Job {
    pseudonym: String,
    label: bool,
    line: u64,
    sequence: String,
    work: Result<crate::manifest::SequenceFiles, Exclusion>,
}

async fn run_round(
    state: Arc<WorkerState>,
    round_id: &str,
    request: ValidatedExtract,
    sender: &mpsc::Sender<Result<ExtractEvent, Status>>,
) -> RoundResult {
    let center = state.config.center_id.clone();
    let jobs = plan_jobs(&state, &request.sequences);
    let total = jobs.len() as u32;
    info!(jobs = total, "round started");

    let permits = Arc::new(Semaphore::new(state.config.extraction_threads));
    let settings = Arc::new(request.settings.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        let permits = permits.clone();
        let state = state.clone();
        let settings = settings.clone();
        let span = info_span!("patient", center = %center, patient = %job.pseudonym, sequence = %job.sequence);
        tasks.spawn(
            async move {
                let Job {
                    pseudonym,
                    label,
                    line,
                    sequence,
                    work,
                } = job;
                let outcome = match work {
                    Err(exclusion) => Err(exclusion),
                    Ok(files) => {
                        let _permit = permits.acquire_owned().await;
                        let worker_sequence = sequence.clone();
                        let joined = tokio::task::spawn_blocking(move || {
                            let context = ExtractContext {
                                canonical_root: &state.canonical_root,
                                settings: &settings,
                                tolerance: &state.config.geometry_tolerance,
                            };
                            extract_sequence(&worker_sequence, &files, &context)
                        })
                        .await;
                        match joined {
                            Ok(outcome) => outcome,
                            Err(join_error) => Err(Exclusion::new(
                                ExclusionKind::FileInvalid,
                                format!("{sequence}_image"),
                                format!("internal error while extracting ({join_error}); please report it"),
                            )),
                        }
                    }
                };
                match &outcome {
                    Ok(_) => info!("extracted"),
                    Err(exclusion) => warn!(
                        manifest_line = line,
                        field = %exclusion.field,
                        kind = exclusion.kind.as_str(),
                        reason = %exclusion.reason,
                        "excluded"
                    ),
                }
                (pseudonym, label, sequence, outcome)
            }
            .instrument(span),
        );
    }

    let mut events = Vec::with_capacity(total as usize);
    let mut rows = Vec::new();
    let mut index = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((pseudonym, label, sequence, outcome)) = joined else {
            // A job task only panics if tracing itself does; count it as lost.
            warn!("an extraction task ended abnormally");
            continue;
        };
        index += 1;
        let error = match outcome {
            Ok(values) => {
                rows.push(FeatureRow {
                    pseudonym: pseudonym.clone(),
                    label: label as u32,
                    sequence: sequence.clone(),
                    region: WHOLE_REGION.to_string(),
                    values,
                });
                None
            }
            Err(exclusion) => Some(PatientError {
                pseudonym: pseudonym.clone(),
                sequence: sequence.clone(),
                kind: exclusion.kind.to_proto() as i32,
                field: exclusion.field,
                reason: exclusion.reason,
            }),
        };
        let event = PatientResult {
            pseudonym,
            sequence,
            index,
            total,
            error,
        };
        events.push(event.clone());
        let message = ExtractEvent {
            event: Some(extract_event::Event::Patient(event)),
        };
        // A disconnected caller does not stop the round: its result is kept
        // for a retry.
        let _ = sender.send(Ok(message)).await;
    }

    rows.sort_by(|a, b| (&a.pseudonym, &a.sequence).cmp(&(&b.pseudonym, &b.sequence)));
    let feature_names = request.settings.feature_names();
    let summary = RoundSummary {
        round_id: round_id.to_string(),
        n_extracted: rows.len() as u32,
        n_excluded: events.iter().filter(|e| e.error.is_some()).count() as u32,
        n_rows: rows.len() as u32,
        n_features: feature_names.len() as u32,
    };
    info!(
        extracted = summary.n_extracted,
        excluded = summary.n_excluded,
        "round finished"
    );
    let message = ExtractEvent {
        event: Some(extract_event::Event::Summary(summary.clone())),
    };
    let _ = sender.send(Ok(message)).await;

    RoundResult {
        request: (request.sequences, request.settings),
        events,
        summary,
        feature_names,
        rows,
    }
}

/// Lists the round's work: one job per patient and sequence, plus one
/// failed job per sequence for each rejected manifest row.
fn plan_jobs(state: &WorkerState, sequences: &[String]) -> Vec<Job> {
    let center = &state.config.center_id;
    let mut jobs = Vec::new();
    for entry in &state.manifest.entries {
        let pseudonym = state.key.pseudonym(center, &entry.patient_id);
        for sequence in sequences {
            let work = match entry.sequences.get(sequence) {
                Some(Ok(files)) => Ok(files.clone()),
                Some(Err(problem)) => Err(Exclusion::new(
                    if problem.empty_cell {
                        ExclusionKind::NotListed
                    } else {
                        ExclusionKind::ManifestInvalid
                    },
                    &problem.field,
                    &problem.reason,
                )),
                None => Err(Exclusion::new(
                    ExclusionKind::NotListed,
                    format!("{sequence}_image"),
                    "sequence not in manifest",
                )),
            };
            jobs.push(Job {
                pseudonym: pseudonym.clone(),
                label: entry.label,
                line: entry.line,
                sequence: sequence.clone(),
                work,
            });
        }
    }
    for row in &state.manifest.rejected {
        let pseudonym = match &row.patient_id {
            Some(id) => state.key.pseudonym(center, id),
            None => format!(
                "{center}-row{}",
                state
                    .manifest
                    .rejected
                    .iter()
                    .position(|r| std::ptr::eq(r, row))
                    .unwrap_or(0)
                    + 1
            ),
        };
        for sequence in sequences {
            jobs.push(Job {
                pseudonym: pseudonym.clone(),
                label: false,
                line: row.problem.line,
                sequence: sequence.clone(),
                // The line number stays in the worker's log: in a manifest
                // sorted by local id it could identify the patient.
                work: Err(Exclusion::new(
                    ExclusionKind::ManifestInvalid,
                    &row.problem.field,
                    &row.problem.reason,
                )),
            });
        }
    }
    jobs
}
