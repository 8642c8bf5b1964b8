//! `ComputeSupervoxels`, habitat step 1: per patient and habitat space, the
//! local entropy map, the depth and the supervoxels ([`crate::habitat`]),
//! kept at the worker under (study id, round id), with only the
//! descriptors of the shared patients in the response.
//!
//! Habitat rounds live in their own store beside the `Extract` rounds
//! (`habitat_store`) and follow the same rules: idempotent by (study id,
//! round id), at most `max_rounds_kept` finished habitat rounds kept,
//! oldest dropped first.

use std::collections::BTreeMap;
use std::sync::Arc;

use radstudy_proto::v1::{PatientError, SupervoxelRequest, SupervoxelResponse};
use tokio::sync::Semaphore;
use tracing::{Instrument, info, info_span, warn};

mod response;

use self::response::supervoxel_response;
use super::habitat_options::{entropy_settings, supervoxel_settings};
use super::rounds::validate_pseudonyms;
use super::{RequestError, WorkerState};
use crate::error::{Exclusion, ExclusionKind};
use crate::extract::{ExtractContext, LoadedSequence, load_sequence};
use crate::feature_request::FeatureRequest;
use crate::features::ExtractionSettings;
use crate::habitat::pipeline::{
    ChainError, ChainSettings, JOINT_SPACE, SequenceInput, SpaceSupervoxels, VoxelFeatures,
    joint_supervoxels, sequence_supervoxels,
};
use crate::manifest::SequenceFiles;

/// A validated `SupervoxelRequest`. A later request of the same round must
/// equal it, or it is a [`RequestError::RoundConflict`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValidSupervoxelRequest {
    pub(super) sequences: Vec<String>,
    pub(super) label: u32,
    pub(super) chain: ChainSettings,
    pub(super) voxel_features: VoxelFeatures,
    /// Requested pseudonyms, sorted; empty means every patient.
    pub(super) pseudonyms: Vec<String>,
    /// Shared pseudonyms, sorted and without repeats.
    pub(super) share: Vec<String>,
}

impl ValidSupervoxelRequest {
    /// Returns the habitat spaces of the round, in request order.
    pub(super) fn spaces(&self) -> Vec<String> {
        match self.voxel_features {
            VoxelFeatures::PerSequence => self.sequences.clone(),
            VoxelFeatures::Joint => vec![JOINT_SPACE.to_string()],
        }
    }
}

/// One patient of a supervoxel round.
#[derive(Debug)]
pub(super) struct PatientSpaces {
    /// The patient's supervoxels per space that succeeded.
    pub(super) spaces: BTreeMap<String, SpaceSupervoxels>,
}

/// A finished `ComputeSupervoxels` round.
#[derive(Debug)]
pub(super) struct SupervoxelRound {
    pub(super) request: ValidSupervoxelRequest,
    /// The response, or the reason it was rejected below `min_patients`.
    pub(super) response: Result<SupervoxelResponse, String>,
    /// Processed patients by pseudonym.
    pub(super) patients: BTreeMap<String, PatientSpaces>,
}

fn invalid(field: &'static str, reason: String) -> RequestError {
    RequestError::InvalidField { field, reason }
}

/// Checks a round id: a UUID.
pub(super) fn check_round_id(field: &'static str, round_id: &str) -> Result<(), RequestError> {
    if uuid::Uuid::parse_str(round_id).is_err() {
        return Err(invalid(field, format!("{round_id:?} is not a UUID")));
    }
    Ok(())
}

pub(super) fn validate_supervoxel_request(
    state: &WorkerState,
    request: &SupervoxelRequest,
) -> Result<ValidSupervoxelRequest, RequestError> {
    state.check_study(&request.study_id)?;
    check_round_id("round_id", &request.round_id)?;
    if request.sequences.is_empty() {
        return Err(invalid(
            "sequences",
            "empty; list at least one sequence".into(),
        ));
    }

    for (index, sequence) in request.sequences.iter().enumerate() {
        if !state.manifest.sequences.contains(sequence) {
            return Err(invalid(
                "sequences",
                format!(
                    "sequence {sequence:?} is not in this center's manifest, which has {:?}",
                    state.manifest.sequences
                ),
            ));
        }
        if request.sequences[..index].contains(sequence) {
            return Err(invalid(
                "sequences",
                format!("sequence {sequence:?} is listed twice"),
            ));
        }
    }

    if request.label < 1 {
        return Err(invalid(
            "label",
            "0 is invalid; expected a mask label >= 1".into(),
        ));
    }

    let voxel_features = VoxelFeatures::parse(&request.voxel_features).ok_or_else(|| {
        invalid(
            "voxel_features",
            format!(
                "{:?} is not \"per_sequence\" or \"joint\"",
                request.voxel_features
            ),
        )
    })?;
    let entropy = entropy_settings(&request.entropy.clone().unwrap_or_default())?
        .validate()
        .map_err(|error| invalid("entropy", error.to_string()))?;
    let supervoxels = supervoxel_settings(&request.supervoxels.unwrap_or_default())
        .validate()
        .map_err(|error| invalid("supervoxels", error.to_string()))?;

    let pseudonyms = validate_pseudonyms(state, &request.pseudonyms)?;
    let share = validate_pseudonyms(state, &request.share_pseudonyms).map_err(|_| {
        invalid(
            "share_pseudonyms",
            "lists a pseudonym that is not a patient of this center's manifest".into(),
        )
    })?;
    if !pseudonyms.is_empty()
        && let Some(outside) = share.iter().find(|p| pseudonyms.binary_search(p).is_err())
    {
        return Err(invalid(
            "share_pseudonyms",
            format!(
                "{outside:?} is not among the processed `pseudonyms`; share only processed patients"
            ),
        ));
    }

    let min_patients = state.config.policy.min_patients as usize;
    if !share.is_empty() && share.len() < min_patients {
        return Err(RequestError::BelowMinimum {
            center: state.config.center_id.clone(),
            reason: format!(
                "share_pseudonyms lists {} patients, fewer than min_patients = {min_patients}",
                share.len()
            ),
        });
    }
    Ok(ValidSupervoxelRequest {
        sequences: request.sequences.clone(),
        label: request.label,
        chain: ChainSettings {
            entropy,
            supervoxels,
            study_seed: request.seed,
        },
        voxel_features,
        pseudonyms,
        share,
    })
}

/// One patient's work: the manifest files per sequence, or why the row
/// cannot be used.
struct PatientJob {
    pseudonym: String,
    line: u64,
    files: Vec<(String, Result<SequenceFiles, Exclusion>)>,
}

/// One patient's result: supervoxels per space, and errors per space.
type PatientOutcome = (BTreeMap<String, SpaceSupervoxels>, Vec<PatientError>);

fn plan_patients(state: &WorkerState, request: &ValidSupervoxelRequest) -> Vec<PatientJob> {
    let center = &state.config.center_id;
    let wanted = |pseudonym: &str| {
        request.pseudonyms.is_empty()
            || request
                .pseudonyms
                .binary_search_by(|p| p.as_str().cmp(pseudonym))
                .is_ok()
    };
    let mut jobs = Vec::new();
    for entry in &state.manifest.entries {
        let pseudonym = state.key.pseudonym(center, &entry.patient_id);
        if !wanted(&pseudonym) {
            continue;
        }
        let files = request
            .sequences
            .iter()
            .map(|sequence| {
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
                (sequence.clone(), work)
            })
            .collect();
        jobs.push(PatientJob {
            pseudonym,
            line: entry.line,
            files,
        });
    }
    for row in &state.manifest.rejected {
        let Some(id) = &row.patient_id else { continue };
        let pseudonym = state.key.pseudonym(center, id);
        if !wanted(&pseudonym) {
            continue;
        }
        let files = request
            .sequences
            .iter()
            .map(|sequence| {
                let exclusion = Exclusion::new(
                    ExclusionKind::ManifestInvalid,
                    &row.problem.field,
                    &row.problem.reason,
                );
                (sequence.clone(), Err(exclusion))
            })
            .collect();
        jobs.push(PatientJob {
            pseudonym,
            line: row.problem.line,
            files,
        });
    }
    jobs
}

fn patient_error(pseudonym: &str, space: &str, exclusion: Exclusion) -> PatientError {
    PatientError {
        pseudonym: pseudonym.to_string(),
        sequence: space.to_string(),
        kind: exclusion.kind.to_proto() as i32,
        field: exclusion.field,
        reason: exclusion.reason,
    }
}

/// Turns a chain failure into the exclusion of the sequence it concerns.
pub(super) fn chain_exclusion(error: &ChainError, sequence: &str) -> Exclusion {
    let (kind, field) = match error {
        ChainError::Entropy { sequence, .. } => {
            (ExclusionKind::IntensityInvalid, format!("{sequence}_image"))
        }
        ChainError::Depth { sequence, .. } => {
            (ExclusionKind::MaskInvalid, format!("{sequence}_mask"))
        }
        ChainError::InvalidPseudonym { .. } | ChainError::Supervoxels { .. } => {
            (ExclusionKind::MaskInvalid, format!("{sequence}_mask"))
        }
    };
    Exclusion::new(kind, field, error.to_string())
}

/// Runs the chain for one patient: loads every sequence, then builds the
/// supervoxels of each space.
fn compute_patient(
    state: &WorkerState,
    request: &ValidSupervoxelRequest,
    job: &PatientJob,
) -> PatientOutcome {
    let features = FeatureRequest::from_settings(ExtractionSettings {
        classes: Vec::new(),
        bin_width: 1.0,
        label: request.label,
    });
    let context = ExtractContext {
        canonical_root: &state.canonical_root,
        features: &features,
        tolerance: &state.config.geometry_tolerance,
    };
    let loaded: Vec<(String, Result<LoadedSequence, Exclusion>)> = job
        .files
        .iter()
        .map(|(sequence, files)| {
            let loaded = match files {
                Ok(files) => load_sequence(sequence, files, &context),
                Err(exclusion) => Err(exclusion.clone()),
            };
            (sequence.clone(), loaded)
        })
        .collect();

    let mut spaces = BTreeMap::new();
    let mut errors = Vec::new();
    let pseudonym = job.pseudonym.as_str();
    match request.voxel_features {
        VoxelFeatures::PerSequence => {
            for (sequence, loaded) in &loaded {
                let result = loaded.as_ref().map_err(Clone::clone).and_then(|loaded| {
                    let input = SequenceInput {
                        sequence,
                        image: &loaded.image,
                        roi: &loaded.roi,
                    };
                    sequence_supervoxels(input, pseudonym, sequence, &request.chain)
                        .map_err(|error| chain_exclusion(&error, sequence))
                });
                match result {
                    Ok(space) => {
                        spaces.insert(sequence.clone(), space);
                    }
                    Err(exclusion) => errors.push(patient_error(pseudonym, sequence, exclusion)),
                }
            }
        }
        VoxelFeatures::Joint => {
            let mut inputs = Vec::new();
            for (sequence, loaded) in &loaded {
                match loaded {
                    Ok(loaded) => inputs.push(SequenceInput {
                        sequence,
                        image: &loaded.image,
                        roi: &loaded.roi,
                    }),
                    Err(exclusion) => {
                        errors.push(patient_error(pseudonym, JOINT_SPACE, exclusion.clone()));
                        return (spaces, errors);
                    }
                }
            }
            let reference = &inputs[0].image.geometry;
            let matches: Vec<bool> = inputs
                .iter()
                .map(|input| {
                    input
                        .image
                        .geometry
                        .mismatch(reference, &state.config.geometry_tolerance)
                        .is_none()
                })
                .collect();
            match joint_supervoxels(&inputs, &matches, pseudonym, JOINT_SPACE, &request.chain) {
                Ok(space) => {
                    if space.reference_only {
                        info!(
                            reference = %request.sequences[0],
                            "grids differ beyond tolerance; clustered the reference sequence alone"
                        );
                    }
                    spaces.insert(JOINT_SPACE.to_string(), space);
                }
                Err(error) => {
                    let sequence = match &error {
                        ChainError::Entropy { sequence, .. }
                        | ChainError::Depth { sequence, .. } => sequence.clone(),
                        _ => request.sequences[0].clone(),
                    };
                    errors.push(patient_error(
                        pseudonym,
                        JOINT_SPACE,
                        chain_exclusion(&error, &sequence),
                    ));
                }
            }
        }
    }
    (spaces, errors)
}

/// Runs a supervoxel round: every patient in parallel (at most
/// `extraction_threads` at once), then the response.
pub(super) async fn run_supervoxel_round(
    state: Arc<WorkerState>,
    round_id: &str,
    request: ValidSupervoxelRequest,
) -> SupervoxelRound {
    let center = state.config.center_id.clone();
    let jobs = plan_patients(&state, &request);
    info!(patients = jobs.len(), spaces = ?request.spaces(), "supervoxel round started");
    let permits = Arc::new(Semaphore::new(state.config.extraction_threads));
    let shared_request = Arc::new(request);
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        let permits = permits.clone();
        let state = state.clone();
        let request = shared_request.clone();
        let span = info_span!("patient", center = %center, patient = %job.pseudonym);
        tasks.spawn(
            async move {
                let _permit = permits.acquire_owned().await;
                let pseudonym = job.pseudonym.clone();
                let line = job.line;
                let span = tracing::Span::current();
                let joined = tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    compute_patient(&state, &request, &job)
                })
                .await;
                let (spaces, errors) = match joined {
                    Ok(outcome) => outcome,
                    Err(join_error) => (
                        BTreeMap::new(),
                        vec![PatientError {
                            pseudonym: pseudonym.clone(),
                            sequence: String::new(),
                            kind: ExclusionKind::FileInvalid.to_proto() as i32,
                            field: String::new(),
                            reason: format!(
                                "internal error while computing supervoxels ({join_error}); please report it"
                            ),
                        }],
                    ),
                };
                for error in &errors {
                    warn!(
                        manifest_line = line,
                        space = %error.sequence,
                        field = %error.field,
                        reason = %error.reason,
                        "excluded from the habitat step"
                    );
                }
                if !spaces.is_empty() {
                    info!(spaces = spaces.len(), "computed supervoxels");
                }
                (pseudonym, spaces, errors)
            }
            .instrument(span),
        );
    }

    let mut patients = BTreeMap::new();
    let mut errors = Vec::new();
    let mut n_processed = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((pseudonym, spaces, patient_errors)) = joined else {
            warn!("a supervoxel task ended abnormally");
            continue;
        };
        n_processed += (spaces.len() + patient_errors.len()) as u32;
        errors.extend(patient_errors);
        patients.insert(pseudonym, PatientSpaces { spaces });
    }
    errors.sort_by(|a, b| (&a.pseudonym, &a.sequence).cmp(&(&b.pseudonym, &b.sequence)));
    let request = Arc::try_unwrap(shared_request).unwrap_or_else(|shared| (*shared).clone());
    let response = supervoxel_response(&state, round_id, &request, &patients, errors, n_processed);
    SupervoxelRound {
        request,
        response,
        patients,
    }
}

/// Runs or replays a `ComputeSupervoxels` request.
pub(super) async fn compute_supervoxels(
    state: &Arc<WorkerState>,
    request: &SupervoxelRequest,
) -> Result<SupervoxelResponse, RequestError> {
    let validated = validate_supervoxel_request(state, request)?;
    let key = (request.study_id.clone(), request.round_id.clone());
    let mut guard = state.supervoxel_slot(key.clone()).lock_owned().await;
    let round = match guard.as_ref() {
        Some(round) => {
            if round.request != validated {
                return Err(RequestError::RoundConflict {
                    round_id: request.round_id.clone(),
                });
            }
            info!("replaying finished supervoxel round");
            round.clone()
        }
        None => {
            // The round runs in its own task, so that it finishes and is
            // kept for a retry when the caller disconnects.
            let task_state = state.clone();
            let round_id = request.round_id.clone();
            let task = tokio::spawn(
                async move {
                    let round = run_supervoxel_round(task_state.clone(), &round_id, validated);
                    let round = Arc::new(round.await);
                    *guard = Some(round.clone());
                    drop(guard);
                    task_state.keep_finished_habitat_round(true, key);
                    round
                }
                .in_current_span(),
            );
            task.await.map_err(|error| RequestError::Internal {
                reason: format!("the supervoxel round task failed: {error}"),
            })?
        }
    };
    round
        .response
        .clone()
        .map_err(|reason| RequestError::BelowMinimum {
            center: state.config.center_id.clone(),
            reason,
        })
}
