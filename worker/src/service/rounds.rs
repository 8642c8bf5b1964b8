//! `Extract` rounds: request validation, the per-patient work, and the
//! stored result that replays and aggregates read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use radstudy_proto::v1::{
    ExtractEvent, ExtractRequest, PatientResult, RoundSummary, extract_event,
};
use tokio::sync::{Semaphore, mpsc};
use tonic::Status;
use tracing::{Instrument, info, info_span, warn};

use super::cached_extract::{CachedExtraction, extract_with_cache};
use super::habitat_extract::{HabitatRegionsRef, PatientInput, extract_regions, validate_regions};
use super::round_tally::{FinishedJob, RoundTally};
use super::{
    RequestError, RoundCopies, RoundResult, SequenceCopies, WHOLE_REGION, WorkerState, status_for,
};
use crate::cache::SequenceOutcome;
use crate::error::{Exclusion, ExclusionKind};
use crate::extract::{ExtractContext, compute_features, load_sequence};
use crate::feature_request::FeatureRequest;
use crate::manifest::SequenceFiles;
use crate::metrics::Decision;
use crate::perturbed_features::{RoundPerturbation, copy_features};

/// A validated `Extract` request. A later request of the same round must
/// equal it in every field, or it is a [`RequestError::RoundConflict`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValidatedExtract {
    pub(super) sequences: Vec<String>,
    /// The features and mask label of the round.
    pub(super) features: FeatureRequest,
    /// The perturbation design, when the round also makes perturbed copies.
    pub(super) perturbation: Option<RoundPerturbation>,
    /// Requested pseudonyms, sorted and without repeats; empty means every
    /// patient of the manifest.
    pub(super) pseudonyms: Vec<String>,
    /// The habitat round whose regions the round extracts, or `None` for
    /// the single region `whole` from the mask label of `features`.
    pub(super) habitat: Option<HabitatRegionsRef>,
    /// Regions to extract, in request order without repeats.
    pub(super) regions: Vec<String>,
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
    let features =
        FeatureRequest::from_proto(settings).map_err(|error| RequestError::InvalidField {
            field: error.field(),
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
    let (habitat, regions) = validate_regions(state, request, &features)?;
    Ok(ValidatedExtract {
        sequences: request.sequences.clone(),
        features,
        perturbation,
        pseudonyms,
        habitat,
        regions,
    })
}

/// Checks that every requested pseudonym is a patient of the manifest, and
/// returns them sorted and without repeats.
pub(super) fn validate_pseudonyms(
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
    /// Every sequence of the patient that the manifest lists with valid
    /// files, which the perturbed copies of a `joint` habitat space load.
    patient_files: Arc<Vec<(String, SequenceFiles)>>,
}

/// Extracts one patient and sequence, then its perturbed copies from the
/// same loaded image and ROI. With a habitat round, each requested region
/// is extracted instead of the single `whole` ROI.
pub(super) fn extract_job(
    sequence: &str,
    pseudonym: &str,
    files: &SequenceFiles,
    patient_files: &[(String, SequenceFiles)],
    context: &ExtractContext<'_>,
    request: &ValidatedExtract,
) -> SequenceOutcome {
    let loaded = match load_sequence(sequence, files, context) {
        Ok(loaded) => loaded,
        Err(exclusion) => return SequenceOutcome::excluded(exclusion),
    };
    if let Some(habitat) = &request.habitat {
        let patient = PatientInput {
            pseudonym,
            loaded: &loaded,
            files: patient_files,
        };
        return extract_regions(sequence, &patient, context, request, habitat);
    }
    let features = compute_features(
        sequence,
        &loaded.image,
        loaded.pixel_type,
        &loaded.roi,
        context.features,
    );
    let copies = match (&features, &request.perturbation) {
        (Ok(_), Some(perturbation)) => Some(vec![(
            WHOLE_REGION.to_string(),
            copy_features(sequence, pseudonym, &loaded, perturbation, context.features)
                .map_err(|failure| failure.to_string()),
        )]),
        _ => None,
    };
    SequenceOutcome {
        features: features.map(|values| vec![(WHOLE_REGION.to_string(), values)]),
        region_exclusions: Vec::new(),
        copies,
    }
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
    let shared_request = Arc::new(request);
    let mut tasks = tokio::task::JoinSet::new();
    let mut positions = HashMap::new();
    for (position, job) in jobs.into_iter().enumerate() {
        let span = info_span!("patient", center = %center, patient = %job.pseudonym, sequence = %job.sequence);
        let task = run_job(job, permits.clone(), state.clone(), shared_request.clone());
        let handle = tasks.spawn(task.instrument(span));
        positions.insert(handle.id(), position);
    }

    // Events are sent in plan order, each once every job before it has
    // finished. The event stream, and so the payload hash in the audit
    // record, is then the same whichever job finishes first and whether a
    // job was computed or read from the result cache.
    let mut tally = RoundTally::new(total, repeats.is_some());
    let mut finished: BTreeMap<usize, Option<FinishedJob>> = BTreeMap::new();
    let mut next_position = 0;
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, job) = match joined {
            Ok((id, job)) => (id, Some(job)),
            Err(error) => {
                // A job task only panics if tracing itself does; count it as lost.
                warn!("an extraction task ended abnormally");
                (error.id(), None)
            }
        };
        let Some(&position) = positions.get(&id) else {
            continue;
        };
        finished.insert(position, job);
        while let Some(job) = finished.remove(&next_position) {
            next_position += 1;
            if let Some(job) = job {
                send_patient_event(sender, tally.add(&state.metrics, job)).await;
            }
        }
    }
    // Only reached when a task id was missing from `positions`, which
    // would leave a gap in the order.
    for job in finished.into_values().flatten() {
        send_patient_event(sender, tally.add(&state.metrics, job)).await;
    }

    let RoundTally {
        events,
        mut rows,
        mut copies,
        n_copies_excluded,
        cache,
        ..
    } = tally;
    let request = Arc::try_unwrap(shared_request).unwrap_or_else(|shared| (*shared).clone());
    // Regions keep their request order within a patient and sequence.
    let region_order = |region: &str| request.regions.iter().position(|r| r == region);
    rows.sort_by(|a, b| {
        (&a.pseudonym, &a.sequence, region_order(&a.region)).cmp(&(
            &b.pseudonym,
            &b.sequence,
            region_order(&b.region),
        ))
    });
    let feature_names = request.features.feature_names();
    let summary = RoundSummary {
        round_id: round_id.to_string(),
        n_extracted: events.iter().filter(|e| e.error.is_none()).count() as u32,
        n_excluded: events.iter().filter(|e| e.error.is_some()).count() as u32,
        n_rows: rows.len() as u32,
        n_features: feature_names.len() as u32,
    };
    info!(
        extracted = summary.n_extracted,
        excluded = summary.n_excluded,
        perturbed_copies_failed = n_copies_excluded,
        cache_hits = cache.hits,
        cache_misses = cache.misses,
        cache_invalid_entries = cache.invalid,
        cache_bypassed = cache.bypassed,
        cache_store_failed = cache.store_failed,
        "round finished"
    );
    let message = ExtractEvent {
        event: Some(extract_event::Event::Summary(summary.clone())),
    };
    let _ = sender.send(Ok(message)).await;

    let copies = repeats.map(|repeats| {
        let mut sequences = Vec::new();
        for sequence in &request.sequences {
            for region in &request.regions {
                let key = (sequence.clone(), region.clone());
                let mut patients = copies.remove(&key).unwrap_or_default();
                // Sorted, so that the sums do not depend on which patient
                // finished first.
                patients.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
                sequences.push(SequenceCopies {
                    sequence: sequence.clone(),
                    region: region.clone(),
                    patients,
                });
            }
        }
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

/// Sends one patient's event. A disconnected caller does not stop the
/// round: its result is kept for a retry.
async fn send_patient_event(
    sender: &mpsc::Sender<Result<ExtractEvent, Status>>,
    event: PatientResult,
) {
    let message = ExtractEvent {
        event: Some(extract_event::Event::Patient(event)),
    };
    let _ = sender.send(Ok(message)).await;
}

/// Runs one job: a failed manifest row becomes its exclusion, and a patient
/// and sequence is read from the result cache or extracted, under one of
/// the round's `extraction_threads` permits. Logs the outcome.
async fn run_job(
    job: Job,
    permits: Arc<Semaphore>,
    state: Arc<WorkerState>,
    request: Arc<ValidatedExtract>,
) -> FinishedJob {
    let Job {
        pseudonym,
        label,
        line,
        sequence,
        work,
        patient_files,
    } = job;
    let extraction = match work {
        Err(exclusion) => CachedExtraction::bypassed(SequenceOutcome::excluded(exclusion)),
        Ok(files) => {
            let _permit = permits.acquire_owned().await;
            let worker_sequence = sequence.clone();
            let worker_pseudonym = pseudonym.clone();
            let span = tracing::Span::current();
            let joined = tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                extract_with_cache(
                    &state,
                    &worker_sequence,
                    &worker_pseudonym,
                    &files,
                    &patient_files,
                    &request,
                )
            })
            .await;
            match joined {
                Ok(extraction) => extraction,
                Err(join_error) => {
                    CachedExtraction::bypassed(SequenceOutcome::excluded(Exclusion::new(
                        ExclusionKind::FileInvalid,
                        format!("{sequence}_image"),
                        format!("internal error while extracting ({join_error}); please report it"),
                    )))
                }
            }
        }
    };

    let outcome = &extraction.outcome;
    let cache = extraction.used.as_str();
    match &outcome.features {
        Ok(_) => info!(cache, "extracted"),
        Err(exclusion) => warn!(
            manifest_line = line,
            field = %exclusion.field,
            kind = exclusion.kind.as_str(),
            reason = %exclusion.reason,
            cache,
            "excluded"
        ),
    }
    for exclusion in &outcome.region_exclusions {
        info!(region = %exclusion.region, voxels = exclusion.voxels, reason = %exclusion.reason, "region left out");
    }
    for (region, copies) in outcome.copies.iter().flatten() {
        match copies {
            Ok(_) => info!(region = %region, "extracted perturbed copies"),
            Err(failure) => warn!(
                manifest_line = line,
                region = %region,
                reason = %failure,
                "perturbed copies failed; the patient stays in the feature table but is left out of this sequence and region's reproducibility sums"
            ),
        }
    }
    FinishedJob {
        pseudonym,
        label,
        sequence,
        extraction,
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
        let patient_files: Arc<Vec<(String, SequenceFiles)>> = Arc::new(
            entry
                .sequences
                .iter()
                .filter_map(|(name, files)| Some((name.clone(), files.as_ref().ok()?.clone())))
                .collect(),
        );
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
                patient_files: patient_files.clone(),
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
                patient_files: Arc::new(Vec::new()),
            });
        }
    }
    jobs
}
