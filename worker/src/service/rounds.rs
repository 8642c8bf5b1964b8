//! `Extract` rounds: request validation, the per-patient work, and the
//! stored result that replays and aggregates read.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use radstudy_proto::v1::{
    ExtractEvent, ExtractRequest, FeatureRow, PatientError, PatientResult, RoundSummary,
    extract_event,
};
use tokio::sync::{Semaphore, mpsc};
use tonic::Status;
use tracing::{Instrument, info, info_span, warn};

use super::{
    PatientCopies, RequestError, RoundCopies, RoundResult, SequenceCopies, WHOLE_REGION,
    WorkerState, status_for,
};
use crate::error::{Exclusion, ExclusionKind};
use crate::extract::{ExtractContext, compute_features, load_sequence};
use crate::features::ExtractionSettings;
use crate::manifest::SequenceFiles;
use crate::metrics::Decision;
use crate::perturbed_features::{CopyFailure, RoundPerturbation, copy_features};

/// A validated `Extract` request. A later request of the same round must
/// equal it in every field, or it is a [`RequestError::RoundConflict`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValidatedExtract {
    pub(super) sequences: Vec<String>,
    pub(super) settings: ExtractionSettings,
    /// The perturbation design, when the round also makes perturbed copies.
    pub(super) perturbation: Option<RoundPerturbation>,
    /// Requested pseudonyms, sorted and without repeats; empty means every
    /// patient of the manifest.
    pub(super) pseudonyms: Vec<String>,
}

pub(super) fn validate_extract(
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
    let perturbation = request
        .perturbation
        .as_ref()
        .map(RoundPerturbation::from_proto)
        .transpose()
        .map_err(|error| RequestError::InvalidField {
            field: error.field(),
            reason: error.to_string(),
        })?;
    let pseudonyms = validate_pseudonyms(state, &request.pseudonyms)?;
    Ok(ValidatedExtract {
        sequences: request.sequences.clone(),
        settings,
        perturbation,
        pseudonyms,
    })
}

/// Checks that every requested pseudonym is a patient of the manifest, and
/// returns them sorted and without repeats.
fn validate_pseudonyms(
    state: &WorkerState,
    requested: &[String],
) -> Result<Vec<String>, RequestError> {
    if requested.is_empty() {
        return Ok(Vec::new());
    }
    let center = &state.config.center_id;
    let known: HashSet<String> = state
        .manifest
        .entries
        .iter()
        .map(|entry| entry.patient_id.as_str())
        .chain(
            state
                .manifest
                .rejected
                .iter()
                .filter_map(|row| row.patient_id.as_deref()),
        )
        .map(|id| state.key.pseudonym(center, id))
        .collect();
    if let Some(unknown) = requested.iter().find(|p| !known.contains(p.as_str())) {
        return Err(RequestError::InvalidField {
            field: "pseudonyms",
            reason: format!(
                "pseudonym {unknown:?} is not a patient of center {center}'s manifest; send only pseudonyms that this center reported"
            ),
        });
    }
    let mut pseudonyms = requested.to_vec();
    pseudonyms.sort_unstable();
    pseudonyms.dedup();
    Ok(pseudonyms)
}

/// Replays a finished round's events and returns `Answered`. A request that
/// differs from the one the round ran with gets a conflict error instead,
/// and the function returns `Refused`.
pub(super) async fn replay_round(
    result: &RoundResult,
    request: &ValidatedExtract,
    sender: &mpsc::Sender<Result<ExtractEvent, Status>>,
) -> Decision {
    if result.request != *request {
        let error = RequestError::RoundConflict {
            round_id: result.summary.round_id.clone(),
        };
        let _ = sender.send(Err(status_for(&error))).await;
        return Decision::Refused;
    }
    info!("replaying finished round");
    for event in &result.events {
        let message = ExtractEvent {
            event: Some(extract_event::Event::Patient(event.clone())),
        };
        if sender.send(Ok(message)).await.is_err() {
            return Decision::Answered;
        }
    }
    let summary = ExtractEvent {
        event: Some(extract_event::Event::Summary(result.summary.clone())),
    };
    let _ = sender.send(Ok(summary)).await;
    Decision::Answered
}

/// One unit of work: a patient and sequence, or a manifest row that failed.
struct Job {
    pseudonym: String,
    label: bool,
    line: u64,
    sequence: String,
    work: Result<SequenceFiles, Exclusion>,
}

/// Result of the blocking part of a job.
struct JobOutcome {
    features: Result<Vec<f64>, Exclusion>,
    /// Features of the perturbed copies, when the round perturbs and the
    /// original extracted.
    copies: Option<Result<Vec<Vec<f64>>, CopyFailure>>,
}

/// Extracts one patient and sequence, then its perturbed copies from the
/// same loaded image and ROI.
fn extract_job(
    sequence: &str,
    pseudonym: &str,
    files: &SequenceFiles,
    context: &ExtractContext<'_>,
    perturbation: Option<&RoundPerturbation>,
) -> JobOutcome {
    let loaded = match load_sequence(sequence, files, context) {
        Ok(loaded) => loaded,
        Err(exclusion) => {
            return JobOutcome {
                features: Err(exclusion),
                copies: None,
            };
        }
    };
    let features = compute_features(sequence, &loaded.image, &loaded.roi, context.settings);
    let copies = match (&features, perturbation) {
        (Ok(_), Some(perturbation)) => Some(copy_features(
            sequence,
            pseudonym,
            &loaded,
            perturbation,
            context.settings,
        )),
        _ => None,
    };
    JobOutcome { features, copies }
}

pub(super) async fn run_round(
    state: Arc<WorkerState>,
    round_id: &str,
    request: ValidatedExtract,
    sender: &mpsc::Sender<Result<ExtractEvent, Status>>,
) -> RoundResult {
    let center = state.config.center_id.clone();
    let jobs = plan_jobs(&state, &request);
    let total = jobs.len() as u32;
    let repeats = request.perturbation.as_ref().map(|p| p.plan.repeats());
    // `perturbed_repeats` is left out of the log line when the round has no
    // perturbation.
    info!(jobs = total, perturbed_repeats = repeats, "round started");

    let permits = Arc::new(Semaphore::new(state.config.extraction_threads));
    let settings = Arc::new(request.settings.clone());
    let perturbation = Arc::new(request.perturbation.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        let permits = permits.clone();
        let state = state.clone();
        let settings = settings.clone();
        let perturbation = perturbation.clone();
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
                    Err(exclusion) => JobOutcome {
                        features: Err(exclusion),
                        copies: None,
                    },
                    Ok(files) => {
                        let _permit = permits.acquire_owned().await;
                        let worker_sequence = sequence.clone();
                        let worker_pseudonym = pseudonym.clone();
                        let joined = tokio::task::spawn_blocking(move || {
                            let context = ExtractContext {
                                canonical_root: &state.canonical_root,
                                settings: &settings,
                                tolerance: &state.config.geometry_tolerance,
                            };
                            extract_job(
                                &worker_sequence,
                                &worker_pseudonym,
                                &files,
                                &context,
                                perturbation.as_ref().as_ref(),
                            )
                        })
                        .await;
                        match joined {
                            Ok(outcome) => outcome,
                            Err(join_error) => JobOutcome {
                                features: Err(Exclusion::new(
                                    ExclusionKind::FileInvalid,
                                    format!("{sequence}_image"),
                                    format!("internal error while extracting ({join_error}); please report it"),
                                )),
                                copies: None,
                            },
                        }
                    }
                };
                match &outcome.features {
                    Ok(_) => info!("extracted"),
                    Err(exclusion) => warn!(
                        manifest_line = line,
                        field = %exclusion.field,
                        kind = exclusion.kind.as_str(),
                        reason = %exclusion.reason,
                        "excluded"
                    ),
                }
                match &outcome.copies {
                    Some(Ok(_)) => info!("extracted perturbed copies"),
                    Some(Err(failure)) => warn!(
                        manifest_line = line,
                        reason = %failure,
                        "perturbed copies failed; the patient stays in the feature table but is left out of this sequence's reproducibility sums"
                    ),
                    None => {}
                }
                (pseudonym, label, sequence, outcome)
            }
            .instrument(span),
        );
    }

    let mut events = Vec::with_capacity(total as usize);
    let mut rows = Vec::new();
    let mut copies: BTreeMap<String, Vec<PatientCopies>> = BTreeMap::new();
    let mut n_copies_excluded = 0;
    let mut index = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((pseudonym, label, sequence, outcome)) = joined else {
            // A job task only panics if tracing itself does; count it as lost.
            warn!("an extraction task ended abnormally");
            continue;
        };
        index += 1;
        state.metrics.record_patient(
            &sequence,
            outcome
                .features
                .as_ref()
                .err()
                .map(|exclusion| exclusion.kind),
            repeats.is_some(),
        );
        match outcome.copies {
            Some(Ok(values)) => copies
                .entry(sequence.clone())
                .or_default()
                .push(PatientCopies {
                    pseudonym: pseudonym.clone(),
                    values,
                }),
            Some(Err(_)) => n_copies_excluded += 1,
            None => {}
        }
        let error = match outcome.features {
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
            region_exclusions: Vec::new(),
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
        perturbed_copies_failed = n_copies_excluded,
        "round finished"
    );
    let message = ExtractEvent {
        event: Some(extract_event::Event::Summary(summary.clone())),
    };
    let _ = sender.send(Ok(message)).await;

    let copies = repeats.map(|repeats| {
        let sequences = request
            .sequences
            .iter()
            .map(|sequence| {
                let mut patients = copies.remove(sequence).unwrap_or_default();
                // Sorted, so that the sums do not depend on which patient
                // finished first.
                patients.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
                SequenceCopies {
                    sequence: sequence.clone(),
                    region: WHOLE_REGION.to_string(),
                    patients,
                }
            })
            .collect();
        RoundCopies {
            repeats,
            sequences,
            n_excluded: n_copies_excluded,
        }
    });
    let mut patients: Vec<String> = events.iter().map(|e| e.pseudonym.clone()).collect();
    patients.sort_unstable();
    patients.dedup();

    RoundResult {
        request,
        events,
        summary,
        feature_names,
        rows,
        patients,
        copies,
    }
}

/// Lists the round's work: one job per patient and sequence, plus one
/// failed job per sequence for each rejected manifest row. A request that
/// names pseudonyms keeps only those patients, and rejected rows without a
/// patient id are then left out.
fn plan_jobs(state: &WorkerState, request: &ValidatedExtract) -> Vec<Job> {
    let center = &state.config.center_id;
    let sequences = &request.sequences;
    let requested = |pseudonym: &str| {
        request.pseudonyms.is_empty()
            || request
                .pseudonyms
                .binary_search_by(|p| p.as_str().cmp(pseudonym))
                .is_ok()
    };
    let mut jobs = Vec::new();
    for entry in &state.manifest.entries {
        let pseudonym = state.key.pseudonym(center, &entry.patient_id);
        if !requested(&pseudonym) {
            continue;
        }
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
        if !request.pseudonyms.is_empty() && (row.patient_id.is_none() || !requested(&pseudonym)) {
            continue;
        }
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
