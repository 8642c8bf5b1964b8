//! `ApplyHabitatModel`, habitat step 2: assigns the supervoxels of a
//! finished `ComputeSupervoxels` round to the frozen population model,
//! builds each patient's region masks per sequence, keeps them for
//! `Extract`, and returns per-region sums over the center's patients.
//!
//! Labels reach a sequence in one of two ways. A sequence on the space's
//! grid (its own space, or a joint space whose grids match) takes the
//! voxel labels directly. A sequence on another grid (joint space, grids
//! differ) gets the reference labels carried by physical position within
//! its own mask ([`crate::habitat::transfer`]), and its voxels whose
//! sub-samples fall in more than one habitat count as mixed. A mixed voxel
//! takes the habitat with the most sub-sample votes (ties to the inner
//! one) and counts as mixed in every region it belongs to: that habitat,
//! `whole`, and `core` or `rim`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use radstudy_proto::v1::{
    GeometricOptions, HabitatModelRequest, HabitatModelResponse, PatientError, RegionExclusion,
};
use tokio::sync::Semaphore;
use tracing::{Instrument, info, info_span, warn};

mod maps;

use self::maps::{MapOutput, write_maps};
use super::habitat::{SupervoxelRound, check_round_id};
use super::habitat_summary::region_summaries;
use super::{RequestError, WorkerState};
use crate::error::ExclusionKind;
use crate::extract::ExtractContext;
use crate::feature_request::FeatureRequest;
use crate::features::ExtractionSettings;
use crate::habitat::assign::ValidHabitatModel;
use crate::habitat::geometric::{GeometricRule, GeometricSettings, ValidGeometricSettings};
use crate::habitat::pipeline::{JOINT_SPACE, SpaceSupervoxels, VoxelFeatures, space_columns};
use crate::habitat::regions::{RegionMasks, sequence_regions};
use crate::manifest::SequenceFiles;

/// Default smallest region, in voxels: the smallest ROI that the feature
/// extraction accepts (PyRadiomics' `minimumROISize` of its MR example).
pub const DEFAULT_MIN_REGION_VOXELS: usize = 50;

/// Largest number of habitats per model: labels are stored as `u8` in the
/// label maps, 0 being the background.
const MAX_HABITATS: usize = 255;

/// The regions of one patient and sequence.
#[derive(Debug)]
pub(super) struct PatientRegions {
    /// The masks.
    pub(super) masks: RegionMasks,
    /// Regions below `min_region_voxels`.
    pub(super) exclusions: Vec<RegionExclusion>,
    /// Whether each lesion voxel's carried label was a vote between
    /// habitats, in the order of the sequence's lesion voxels. Empty when
    /// the labels were not carried.
    pub(super) mixed: Vec<bool>,
}

impl PatientRegions {
    /// Returns the number of mixed voxels among the lesion voxels at
    /// `indices`.
    pub(super) fn mixed_among(&self, indices: &[usize]) -> usize {
        if self.mixed.is_empty() {
            return 0;
        }
        indices.iter().filter(|&&index| self.mixed[index]).count()
    }
}

/// A finished `ApplyHabitatModel` round.
#[derive(Debug)]
pub(super) struct HabitatRound {
    /// The request, to detect reuse of the round id.
    pub(super) request: HabitatModelRequest,
    pub(super) response: HabitatModelResponse,
    /// The supervoxel round it assigned, whose settings perturbed copies
    /// reuse.
    pub(super) supervoxels: Arc<SupervoxelRound>,
    /// The model of each space.
    pub(super) models: BTreeMap<String, ValidHabitatModel>,
    pub(super) geometric: Option<ValidGeometricSettings>,
    pub(super) min_region_voxels: usize,
    /// Regions per (pseudonym, sequence).
    pub(super) regions: BTreeMap<(String, String), PatientRegions>,
    /// Reason that a (pseudonym, sequence) has no regions.
    pub(super) failures: BTreeMap<(String, String), String>,
}

impl HabitatRound {
    /// Returns every region name the round can have: habitat names of each
    /// model, `whole`, and `core` and `rim` when the split was requested.
    pub(super) fn region_names(&self) -> HashSet<String> {
        let mut names: HashSet<String> = self
            .models
            .values()
            .flat_map(|model| model.names.iter().cloned())
            .collect();
        names.insert(crate::habitat::regions::WHOLE.to_string());
        if self.geometric.is_some() {
            names.insert(crate::habitat::regions::CORE.to_string());
            names.insert(crate::habitat::regions::RIM.to_string());
        }
        names
    }

    /// Returns whether `region` is a region of `sequence` in this round:
    /// `whole`, `core` and `rim` when the split was requested, or a habitat
    /// of the model of the sequence's space. With `per_sequence` voxel
    /// features each sequence has its own model and habitat names, so a
    /// habitat of one sequence can be absent from another.
    pub(super) fn has_region(&self, sequence: &str, region: &str) -> bool {
        use crate::habitat::regions::{CORE, RIM, WHOLE};
        if region == WHOLE {
            return true;
        }
        if region == CORE || region == RIM {
            return self.geometric.is_some();
        }
        let space = match self.supervoxels.request.voxel_features {
            VoxelFeatures::PerSequence => sequence,
            VoxelFeatures::Joint => JOINT_SPACE,
        };
        self.models
            .get(space)
            .is_some_and(|model| model.names.iter().any(|name| name == region))
    }
}

fn invalid(field: &'static str, reason: String) -> RequestError {
    RequestError::InvalidField { field, reason }
}

/// Maps the contract's geometric options to checked settings; zero or
/// empty fields take the defaults.
fn geometric_settings(options: &GeometricOptions) -> Result<ValidGeometricSettings, RequestError> {
    let defaults = GeometricSettings::default();
    let rule = match options.rule.as_str() {
        "" | "absolute" => GeometricRule::Absolute,
        "relative" => GeometricRule::Relative,
        "equal_volume" => GeometricRule::EqualVolume,
        other => {
            return Err(invalid(
                "geometric.rule",
                format!("{other:?} is not \"absolute\", \"relative\" or \"equal_volume\""),
            ));
        }
    };
    let or_default = |value: f64, default: f64| if value == 0.0 { default } else { value };
    GeometricSettings {
        rule,
        threshold_mm: or_default(options.threshold_mm, defaults.threshold_mm),
        relative_threshold: or_default(options.relative_threshold, defaults.relative_threshold),
        min_core_voxels: match options.min_core_voxels {
            0 => defaults.min_core_voxels,
            n => n as usize,
        },
    }
    .validate()
    .map_err(|error| invalid("geometric", error.to_string()))
}

/// The checked parts of a `HabitatModelRequest`.
struct ValidApply {
    supervoxels: Arc<SupervoxelRound>,
    models: BTreeMap<String, ValidHabitatModel>,
    geometric: Option<ValidGeometricSettings>,
    min_region_voxels: usize,
}

fn validate_apply(
    state: &WorkerState,
    request: &HabitatModelRequest,
) -> Result<ValidApply, RequestError> {
    state.check_study(&request.study_id)?;
    check_round_id("round_id", &request.round_id)?;
    check_round_id("supervoxel_round_id", &request.supervoxel_round_id)?;

    let key = (
        request.study_id.clone(),
        request.supervoxel_round_id.clone(),
    );
    let supervoxels = state.finished_supervoxel_round(&key).ok_or_else(|| {
        invalid(
            "supervoxel_round_id",
            format!(
                "{:?} is not a finished ComputeSupervoxels round of study {:?} on this worker; run ComputeSupervoxels first",
                request.supervoxel_round_id, request.study_id
            ),
        )
    })?;

    let spaces = supervoxels.request.spaces();
    let columns = space_columns(
        supervoxels.request.voxel_features,
        &supervoxels.request.sequences,
    );

    let mut models = BTreeMap::new();
    for (index, model) in request.models.iter().enumerate() {
        if !spaces.contains(&model.space) {
            return Err(RequestError::InvalidField {
                field: "models",
                reason: format!(
                    "models[{index}].space = {:?} is not a habitat space of round {}, which has {spaces:?}",
                    model.space, request.supervoxel_round_id
                ),
            });
        }
        if models.contains_key(&model.space) {
            return Err(invalid(
                "models",
                format!("space {:?} has more than one model", model.space),
            ));
        }
        if model.names.len() > MAX_HABITATS {
            return Err(invalid(
                "models",
                format!(
                    "models[{index}] has {} habitats; at most {MAX_HABITATS} are supported",
                    model.names.len()
                ),
            ));
        }
        let valid = ValidHabitatModel::from_proto(index, model, &columns).map_err(|error| {
            RequestError::InvalidField {
                field: "models",
                reason: error.to_string(),
            }
        })?;
        models.insert(model.space.clone(), valid);
    }

    if let Some(missing) = spaces.iter().find(|space| !models.contains_key(*space)) {
        return Err(invalid(
            "models",
            format!("no model for space {missing:?}; send one model per space of {spaces:?}"),
        ));
    }

    let geometric = request
        .geometric
        .as_ref()
        .map(geometric_settings)
        .transpose()?;
    let min_region_voxels = match request.min_region_voxels {
        0 => DEFAULT_MIN_REGION_VOXELS,
        n => n as usize,
    };
    Ok(ValidApply {
        supervoxels,
        models,
        geometric,
        min_region_voxels,
    })
}

/// One patient's regions per sequence, or the reason they failed.
type ApplyOutcome = Vec<(String, Result<PatientRegions, String>)>;

/// Assigns one patient's supervoxels and builds the regions of every
/// sequence.
fn apply_patient(
    pseudonym: &str,
    spaces: &BTreeMap<String, SpaceSupervoxels>,
    apply: &ValidApply,
    output: Option<&MapOutput<'_>>,
) -> ApplyOutcome {
    let mut outcome = Vec::new();
    for (space_name, space) in spaces {
        let Some(model) = apply.models.get(space_name) else {
            continue;
        };
        let supervoxel_habitats = match model.assign(space.descriptors.view()) {
            Ok(habitats) => habitats,
            Err(error) => {
                let reason = format!(
                    "assigning the supervoxels of space {space_name} to the habitat model failed: {error}"
                );
                for sequence in &space.sequences {
                    outcome.push((sequence.sequence.clone(), Err(reason.clone())));
                }
                continue;
            }
        };
        let voxel_habitats: Vec<u16> = space
            .labels
            .iter()
            .map(|&label| supervoxel_habitats[label as usize] as u16)
            .collect();
        for sequence in &space.sequences {
            let result = sequence_regions(
                space,
                sequence,
                &voxel_habitats,
                &model.names,
                apply.geometric.as_ref(),
            )
            .map(|(masks, mixed)| {
                let exclusions = region_exclusions(
                    pseudonym,
                    &sequence.sequence,
                    &masks,
                    apply.min_region_voxels,
                );
                PatientRegions {
                    masks,
                    exclusions,
                    mixed,
                }
            });
            if let (Ok(regions), Some(output)) = (&result, output) {
                write_maps(output, pseudonym, &sequence.sequence, &regions.masks);
            }
            outcome.push((sequence.sequence.clone(), result));
        }
    }
    outcome
}

/// Lists the regions of one patient and sequence below the minimum size.
fn region_exclusions(
    pseudonym: &str,
    sequence: &str,
    masks: &RegionMasks,
    min_region_voxels: usize,
) -> Vec<RegionExclusion> {
    masks
        .region_names()
        .into_iter()
        .filter_map(|region| {
            let voxels = masks.count(&region).unwrap_or(0);
            (voxels < min_region_voxels).then(|| RegionExclusion {
                pseudonym: pseudonym.to_string(),
                sequence: sequence.to_string(),
                reason: format!(
                    "region {region} has {voxels} voxels, fewer than min_region_voxels = {min_region_voxels}"
                ),
                region,
                voxels: voxels as u32,
            })
        })
        .collect()
}

/// Returns each manifest patient's usable files per sequence, by
/// pseudonym.
fn manifest_files(state: &WorkerState) -> BTreeMap<String, BTreeMap<String, SequenceFiles>> {
    let center = &state.config.center_id;
    state
        .manifest
        .entries
        .iter()
        .map(|entry| {
            let files = entry
                .sequences
                .iter()
                .filter_map(|(sequence, files)| {
                    files
                        .as_ref()
                        .ok()
                        .map(|files| (sequence.clone(), files.clone()))
                })
                .collect();
            (state.key.pseudonym(center, &entry.patient_id), files)
        })
        .collect()
}

async fn run_apply(
    state: Arc<WorkerState>,
    request: HabitatModelRequest,
    apply: ValidApply,
) -> HabitatRound {
    let center = state.config.center_id.clone();
    let apply = Arc::new(apply);
    let permits = Arc::new(Semaphore::new(state.config.extraction_threads));
    let write_maps = request.write_maps;
    let manifest_files = if write_maps {
        Arc::new(manifest_files(&state))
    } else {
        Arc::new(BTreeMap::new())
    };
    let extraction_settings = Arc::new(FeatureRequest::from_settings(ExtractionSettings {
        classes: Vec::new(),
        bin_width: 1.0,
        label: apply.supervoxels.request.label,
    }));
    info!(
        patients = apply.supervoxels.patients.len(),
        write_maps = request.write_maps,
        "habitat assignment started"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for pseudonym in apply.supervoxels.patients.keys().cloned() {
        let apply = apply.clone();
        let permits = permits.clone();
        let state = state.clone();
        let manifest_files = manifest_files.clone();
        let extraction_settings = extraction_settings.clone();
        let span = info_span!("patient", center = %center, patient = %pseudonym);
        tasks.spawn(
            async move {
                let _permit = permits.acquire_owned().await;
                let span = tracing::Span::current();
                let worker_pseudonym = pseudonym.clone();
                let joined = tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let spaces = &apply.supervoxels.patients[&worker_pseudonym].spaces;
                    let context = ExtractContext {
                        canonical_root: &state.canonical_root,
                        features: &extraction_settings,
                        tolerance: &state.config.geometry_tolerance,
                    };
                    let no_files = BTreeMap::new();
                    let output = MapOutput {
                        dir: &state.config.output_dir,
                        files: manifest_files.get(&worker_pseudonym).unwrap_or(&no_files),
                        context: &context,
                    };
                    apply_patient(
                        &worker_pseudonym,
                        spaces,
                        &apply,
                        write_maps.then_some(&output),
                    )
                })
                .await;
                let outcome = joined.unwrap_or_else(|join_error| {
                    vec![(
                        String::new(),
                        Err(format!(
                            "internal error while assigning habitats ({join_error}); please report it"
                        )),
                    )]
                });
                for (sequence, result) in &outcome {
                    if let Err(reason) = result {
                        warn!(sequence = %sequence, %reason, "habitat assignment failed");
                    }
                }
                (pseudonym, outcome)
            }
            .instrument(span),
        );
    }

    let mut regions = BTreeMap::new();
    let mut failures = BTreeMap::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((pseudonym, outcome)) = joined else {
            warn!("a habitat assignment task ended abnormally");
            continue;
        };
        for (sequence, result) in outcome {
            match result {
                Ok(patient) => {
                    regions.insert((pseudonym.clone(), sequence), patient);
                }
                Err(reason) => {
                    errors.push(PatientError {
                        pseudonym: pseudonym.clone(),
                        sequence: sequence.clone(),
                        kind: ExclusionKind::MaskInvalid.to_proto() as i32,
                        field: format!("{sequence}_mask"),
                        reason: reason.clone(),
                    });
                    failures.insert((pseudonym.clone(), sequence), reason);
                }
            }
        }
    }
    errors.sort_by(|a, b| (&a.pseudonym, &a.sequence).cmp(&(&b.pseudonym, &b.sequence)));
    let exclusions: Vec<RegionExclusion> = regions
        .values()
        .flat_map(|patient: &PatientRegions| patient.exclusions.iter().cloned())
        .collect();
    let summaries = region_summaries(
        &apply.supervoxels,
        &regions,
        state.config.policy.min_patients,
    );
    info!(
        regions = summaries.len(),
        region_exclusions = exclusions.len(),
        failed = errors.len(),
        "habitat assignment finished"
    );
    let response = HabitatModelResponse {
        round_id: request.round_id.clone(),
        regions: summaries,
        exclusions,
        errors,
    };
    let apply = Arc::try_unwrap(apply).unwrap_or_else(|shared| ValidApply {
        supervoxels: shared.supervoxels.clone(),
        models: shared.models.clone(),
        geometric: shared.geometric.clone(),
        min_region_voxels: shared.min_region_voxels,
    });
    HabitatRound {
        request,
        response,
        supervoxels: apply.supervoxels,
        models: apply.models,
        geometric: apply.geometric,
        min_region_voxels: apply.min_region_voxels,
        regions,
        failures,
    }
}

/// Runs or replays an `ApplyHabitatModel` request.
pub(super) async fn apply_habitat_model(
    state: &Arc<WorkerState>,
    request: &HabitatModelRequest,
) -> Result<HabitatModelResponse, RequestError> {
    let apply = validate_apply(state, request)?;
    let key = (request.study_id.clone(), request.round_id.clone());
    let mut guard = state.habitat_slot(key.clone()).lock_owned().await;
    if let Some(round) = guard.as_ref() {
        if round.request != *request {
            return Err(RequestError::RoundConflict {
                round_id: request.round_id.clone(),
            });
        }
        info!("replaying finished habitat assignment");
        return Ok(round.response.clone());
    }
    // The round runs in its own task, so that it finishes and is kept for
    // a retry when the caller disconnects.
    let task_state = state.clone();
    let task_request = request.clone();
    let task = tokio::spawn(
        async move {
            let round = Arc::new(run_apply(task_state.clone(), task_request, apply).await);
            let response = round.response.clone();
            *guard = Some(round);
            drop(guard);
            task_state.keep_finished_habitat_round(false, key);
            response
        }
        .in_current_span(),
    );
    task.await.map_err(|error| RequestError::Internal {
        reason: format!("the habitat assignment task failed: {error}"),
    })
}
