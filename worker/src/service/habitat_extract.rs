//! `Extract` over the regions of an `ApplyHabitatModel` round: request
//! checks, and the features of one patient and sequence per region, with
//! perturbed copies that rerun the habitat chain with the frozen model. In
//! a `joint` round a copy perturbs every sequence of the patient's joint
//! space together and reruns the joint chain.

use sha2::{Digest, Sha256};
use std::sync::Arc;

use radstudy_proto::v1::{ExtractRequest, RegionExclusion};

use super::habitat::check_round_id;
use super::habitat_apply::HabitatRound;
use super::rounds::ValidatedExtract;
use super::{RequestError, WHOLE_REGION, WorkerState};
use crate::cache::SequenceOutcome;
use crate::error::{Exclusion, ExclusionKind};
use crate::extract::{ExtractContext, LoadedSequence, compute_features, load_sequence};
use crate::feature_request::FeatureRequest;
use crate::habitat::pipeline::{JOINT_SPACE, VoxelFeatures};
use crate::manifest::SequenceFiles;
use crate::perturbed_features::{
    CopyFailure, HabitatCopyChain, JointSpaceInputs, RegionCopies, RoundPerturbation,
    habitat_copy_features, joint_habitat_copy_features,
};

/// A habitat round named by an `Extract` request. Two references are equal
/// when they name the same round, so that a replayed `Extract` request
/// compares equal to the one the round ran with.
#[derive(Debug, Clone)]
pub(super) struct HabitatRegionsRef {
    pub(super) round_id: String,
    pub(super) round: Arc<HabitatRound>,
}

impl PartialEq for HabitatRegionsRef {
    fn eq(&self, other: &Self) -> bool {
        self.round_id == other.round_id
    }
}

fn invalid(field: &'static str, reason: String) -> RequestError {
    RequestError::InvalidField { field, reason }
}

/// Checks `habitat_round_id` and `regions` of an `Extract` request, and
/// returns the habitat round with the regions in request order without
/// repeats (`whole` when none are listed).
pub(super) fn validate_regions(
    state: &WorkerState,
    request: &ExtractRequest,
    features: &FeatureRequest,
) -> Result<(Option<HabitatRegionsRef>, Vec<String>), RequestError> {
    let mut regions: Vec<String> = Vec::new();
    for region in &request.regions {
        if !regions.contains(region) {
            regions.push(region.clone());
        }
    }
    if regions.is_empty() {
        regions.push(WHOLE_REGION.to_string());
    }
    if request.habitat_round_id.is_empty() {
        if let Some(other) = regions.iter().find(|r| *r != WHOLE_REGION) {
            return Err(invalid(
                "regions",
                format!(
                    "region {other:?} needs `habitat_round_id`; without it the only region is \"whole\""
                ),
            ));
        }
        return Ok((None, regions));
    }

    check_round_id("habitat_round_id", &request.habitat_round_id)?;
    let key = (request.study_id.clone(), request.habitat_round_id.clone());
    let round = state.finished_habitat_round(&key).ok_or_else(|| {
        invalid(
            "habitat_round_id",
            format!(
                "{:?} is not a finished ApplyHabitatModel round of study {:?} on this worker; run ApplyHabitatModel first",
                request.habitat_round_id, request.study_id
            ),
        )
    })?;
    let known = round.region_names();
    if let Some(unknown) = regions.iter().find(|r| !known.contains(*r)) {
        let mut names: Vec<&String> = known.iter().collect();
        names.sort();
        return Err(invalid(
            "regions",
            format!(
                "region {unknown:?} is not a region of habitat round {}, which has {names:?}",
                request.habitat_round_id
            ),
        ));
    }
    let supervoxel_request = &round.supervoxels.request;
    if let Some(outside) = request
        .sequences
        .iter()
        .find(|s| !supervoxel_request.sequences.contains(s))
    {
        return Err(invalid(
            "sequences",
            format!(
                "sequence {outside:?} has no habitats in round {}, which covers {:?}",
                request.habitat_round_id, supervoxel_request.sequences
            ),
        ));
    }
    let label = features.settings.label;
    if label != supervoxel_request.label {
        return Err(invalid(
            "settings",
            format!(
                "label = {label} differs from the habitat round's mask label {}; the regions were built from label {}",
                supervoxel_request.label, supervoxel_request.label
            ),
        ));
    }
    let reference = HabitatRegionsRef {
        round_id: request.habitat_round_id.clone(),
        round,
    };
    Ok((Some(reference), regions))
}

/// One patient of an extraction job.
pub(super) struct PatientInput<'a> {
    pub(super) pseudonym: &'a str,
    /// The job's sequence, loaded.
    pub(super) loaded: &'a LoadedSequence,
    /// Files of every sequence the manifest lists for the patient.
    pub(super) files: &'a [(String, SequenceFiles)],
}

/// Extracts every requested region of one patient and sequence. A region
/// below the minimum size, or whose features fail, becomes a
/// [`RegionExclusion`] and the other regions stay.
pub(super) fn extract_regions(
    sequence: &str,
    patient: &PatientInput<'_>,
    context: &ExtractContext<'_>,
    request: &ValidatedExtract,
    habitat: &HabitatRegionsRef,
) -> SequenceOutcome {
    let (pseudonym, loaded) = (patient.pseudonym, patient.loaded);
    let round = &habitat.round;
    let key = (pseudonym.to_string(), sequence.to_string());
    let mask_field = format!("{sequence}_mask");
    let Some(regions) = round.regions.get(&key) else {
        let reason = match round.failures.get(&key) {
            Some(reason) => format!("habitat regions failed: {reason}"),
            None => format!(
                "the patient has no habitat regions in round {}; it was excluded from ComputeSupervoxels or not listed there",
                habitat.round_id
            ),
        };
        return excluded(Exclusion::new(
            ExclusionKind::MaskInvalid,
            mask_field,
            reason,
        ));
    };
    let masks = &regions.masks;
    if masks.geometry.dims != loaded.image.geometry.dims {
        return excluded(Exclusion::new(
            ExclusionKind::GeometryMismatch,
            mask_field,
            format!(
                "the habitat regions have grid size {:?} but the image has {:?}; the files changed since ApplyHabitatModel",
                masks.geometry.dims, loaded.image.geometry.dims
            ),
        ));
    }

    let mut features = Vec::new();
    let mut region_exclusions = Vec::new();
    let mut extracted_regions = Vec::new();
    for region in &request.regions {
        if let Some(exclusion) = regions.exclusions.iter().find(|e| &e.region == region) {
            region_exclusions.push(exclusion.clone());
            continue;
        }
        let Some(roi) = masks.roi(region) else {
            region_exclusions.push(RegionExclusion {
                pseudonym: pseudonym.to_string(),
                sequence: sequence.to_string(),
                region: region.clone(),
                voxels: 0,
                reason: format!("region {region} is not a region of {sequence}'s habitat model"),
            });
            continue;
        };
        match compute_features(
            sequence,
            &loaded.image,
            loaded.pixel_type,
            &roi,
            context.features,
        ) {
            Ok(values) => {
                features.push((region.clone(), values));
                extracted_regions.push(region.clone());
            }
            Err(exclusion) => region_exclusions.push(RegionExclusion {
                pseudonym: pseudonym.to_string(),
                sequence: sequence.to_string(),
                region: region.clone(),
                voxels: roi.voxel_count as u32,
                reason: format!("{} ({})", exclusion.reason, exclusion.field),
            }),
        }
    }

    let copies = request.perturbation.as_ref().map(|perturbation| {
        let copies = CopyRequest {
            sequence,
            perturbation,
            features: context.features,
            regions: &extracted_regions,
        };
        let region_copies = match round.supervoxels.request.voxel_features {
            VoxelFeatures::PerSequence => sequence_copies(&copies, patient, habitat),
            VoxelFeatures::Joint => joint_copies(&copies, patient, context, habitat),
        };
        region_copies
            .into_iter()
            .map(|(region, result)| (region, result.map_err(|failure| failure.to_string())))
            .collect()
    });

    SequenceOutcome {
        features: Ok(features),
        region_exclusions,
        copies,
    }
}

/// Inputs of the perturbed copies of one patient and sequence.
struct CopyRequest<'a> {
    sequence: &'a str,
    perturbation: &'a RoundPerturbation,
    features: &'a FeatureRequest,
    /// The regions extracted from the original, in request order.
    regions: &'a [String],
}

/// Returns `reason` as the copy failure of every region.
fn fail_copies(copies: &CopyRequest<'_>, reason: String) -> RegionCopies {
    let failure = CopyFailure::Habitat { repeat: 0, reason };
    copies
        .regions
        .iter()
        .map(|region| (region.clone(), Err(failure.clone())))
        .collect()
}

/// Returns the frozen chain of `space` in the habitat round, or `None`
/// when the round has no model for it.
fn copy_chain<'a>(habitat: &'a HabitatRegionsRef, space: &str) -> Option<HabitatCopyChain<'a>> {
    let round = &habitat.round;
    let model = round.models.get(space)?;
    Some(HabitatCopyChain {
        chain: &round.supervoxels.request.chain,
        model,
        geometric: round.geometric.as_ref(),
        min_region_voxels: round.min_region_voxels,
    })
}

/// Makes the perturbed copies of a `per_sequence` round from the sequence
/// alone.
fn sequence_copies(
    copies: &CopyRequest<'_>,
    patient: &PatientInput<'_>,
    habitat: &HabitatRegionsRef,
) -> RegionCopies {
    let Some(chain) = copy_chain(habitat, copies.sequence) else {
        return fail_copies(
            copies,
            format!(
                "the habitat round has no model for space {}",
                copies.sequence
            ),
        );
    };
    habitat_copy_features(
        copies.sequence,
        patient.pseudonym,
        patient.loaded,
        copies.perturbation,
        copies.features,
        &chain,
        copies.regions,
    )
}

/// Makes the perturbed copies of a `joint` round, which load and perturb
/// every sequence of the joint space together.
fn joint_copies(
    copies: &CopyRequest<'_>,
    patient: &PatientInput<'_>,
    context: &ExtractContext<'_>,
    habitat: &HabitatRegionsRef,
) -> RegionCopies {
    let Some(chain) = copy_chain(habitat, JOINT_SPACE) else {
        return fail_copies(
            copies,
            format!("the habitat round has no model for space {JOINT_SPACE}"),
        );
    };
    let mut sequences = Vec::new();
    for name in &habitat.round.supervoxels.request.sequences {
        if name == copies.sequence {
            sequences.push((name.clone(), patient.loaded.clone()));
            continue;
        }
        let Some((_, files)) = patient.files.iter().find(|(listed, _)| listed == name) else {
            return fail_copies(
                copies,
                format!("sequence {name} of the joint space has no valid files in the manifest"),
            );
        };
        match load_sequence(name, files, context) {
            Ok(loaded) => sequences.push((name.clone(), loaded)),
            Err(exclusion) => {
                return fail_copies(
                    copies,
                    format!(
                        "sequence {name} of the joint space failed to load: {} ({})",
                        exclusion.reason, exclusion.field
                    ),
                );
            }
        }
    }
    let space = JointSpaceInputs {
        sequences: &sequences,
        tolerance: context.tolerance,
    };
    joint_habitat_copy_features(
        copies.sequence,
        patient.pseudonym,
        &space,
        copies.perturbation,
        copies.features,
        &chain,
        copies.regions,
    )
}

fn excluded(exclusion: Exclusion) -> SequenceOutcome {
    SequenceOutcome::excluded(exclusion)
}

/// Returns the SHA-256 over everything of a habitat round that the features
/// of one patient and sequence depend on. These are the supervoxel chain
/// settings, voxel features and mask label, every space's model, the
/// core/rim settings and `min_region_voxels`. They also include the
/// patient's region masks and region exclusions, or the reason it has none.
/// The result cache keys on it, so that a new `ApplyHabitatModel` round with
/// the same inputs reuses the entries and any change misses.
///
/// NOTE: settings and models are hashed through their `Debug` text, which
/// prints every `f64` exactly and every map in key order. That text may
/// change between releases, but the cache key also contains the software
/// version.
pub(super) fn habitat_fingerprint(
    habitat: &HabitatRegionsRef,
    pseudonym: &str,
    sequence: &str,
) -> [u8; 32] {
    let round = &habitat.round;
    let request = &round.supervoxels.request;
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"radstudy-habitat-fingerprint-v1");
    // The alternate form keeps ndarray from eliding large arrays.
    let settings = format!(
        "{:#?}",
        (
            &request.chain,
            &request.voxel_features,
            request.label,
            &round.models,
            &round.geometric,
            round.min_region_voxels,
        )
    );
    field(settings.as_bytes());

    let key = (pseudonym.to_string(), sequence.to_string());
    match round.regions.get(&key) {
        Some(patient) => {
            let masks = &patient.masks;
            field(b"regions");
            field(format!("{:?}", masks.geometry).as_bytes());
            let voxels: Vec<u8> = masks
                .voxels
                .iter()
                .flat_map(|voxel| voxel.iter().flat_map(|&i| (i as u64).to_le_bytes()))
                .collect();
            field(&voxels);
            let labels: Vec<u8> = masks.habitat.iter().flat_map(|h| h.to_le_bytes()).collect();
            field(&labels);
            field(format!("{:?}", masks.names).as_bytes());
            field(format!("{:?}", masks.core).as_bytes());
            field(format!("{:?}", patient.exclusions).as_bytes());
        }
        None => {
            // The exclusion message names the habitat round.
            field(b"no regions");
            field(habitat.round_id.as_bytes());
            field(
                round
                    .failures
                    .get(&key)
                    .map_or("", String::as_str)
                    .as_bytes(),
            );
        }
    }
    hasher.finalize().into()
}
