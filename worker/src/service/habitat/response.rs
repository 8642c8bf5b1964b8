//! The `ComputeSupervoxels` response: the supervoxel descriptors that a round
//! shares with the coordinator.

use std::collections::BTreeMap;

use radstudy_proto::v1::{PatientError, PatientSupervoxels, SupervoxelResponse};
use tracing::{info, warn};

use super::{PatientSpaces, ValidSupervoxelRequest};
use crate::habitat::pipeline::space_columns;
use crate::service::WorkerState;

/// Builds the response: descriptors of the shared patients only, or the
/// rejection reason when fewer than `min_patients` of them have any.
pub(super) fn supervoxel_response(
    state: &WorkerState,
    round_id: &str,
    request: &ValidSupervoxelRequest,
    patients: &BTreeMap<String, PatientSpaces>,
    errors: Vec<PatientError>,
    n_processed: u32,
) -> Result<SupervoxelResponse, String> {
    let spaces = request.spaces();
    let mut shared = Vec::new();
    let mut shared_patients = 0usize;
    let mut withheld_reference_only = 0usize;
    for pseudonym in &request.share {
        let Some(patient) = patients.get(pseudonym) else {
            continue;
        };
        let before = shared.len();
        for space in &spaces {
            let Some(supervoxels) = patient.spaces.get(space) else {
                continue;
            };
            if supervoxels.descriptors.iter().any(|v| v.is_nan()) {
                // A joint patient clustered on the reference alone whose
                // other lesion misses some supervoxels: NaN columns, which
                // no population clustering can use.
                withheld_reference_only += 1;
                continue;
            }
            shared.push(PatientSupervoxels {
                pseudonym: pseudonym.clone(),
                space: space.clone(),
                descriptors: supervoxels.descriptors.iter().copied().collect(),
                voxel_counts: supervoxels.voxel_counts.iter().map(|&n| n as u32).collect(),
                depth_sums: supervoxels.depth_sums.clone(),
                entropy_sums: supervoxels.entropy_sums.clone(),
                k_requested: supervoxels.k_requested as u32,
                k_effective: supervoxels.k_effective as u32,
                limit: limit_name(supervoxels.limit).to_string(),
            });
        }
        if shared.len() > before {
            shared_patients += 1;
        }
    }
    if withheld_reference_only > 0 {
        warn!(
            withheld = withheld_reference_only,
            "descriptors with supervoxels outside another sequence's lesion are not shared"
        );
    }
    let min_patients = state.config.policy.min_patients as usize;
    if !request.share.is_empty() && shared_patients < min_patients {
        return Err(format!(
            "only {shared_patients} of the {} shared patients have supervoxels, fewer than min_patients = {min_patients}",
            request.share.len()
        ));
    }
    let n_excluded = errors.len() as u32;
    info!(
        shared_patients,
        processed = n_processed,
        excluded = n_excluded,
        "supervoxel round finished"
    );
    Ok(SupervoxelResponse {
        round_id: round_id.to_string(),
        columns: space_columns(request.voxel_features, &request.sequences),
        patients: shared,
        errors,
        n_processed,
        n_excluded,
    })
}

fn limit_name(limit: crate::habitat::supervoxel::SupervoxelLimit) -> &'static str {
    use crate::habitat::supervoxel::SupervoxelLimit;
    match limit {
        SupervoxelLimit::Requested => "requested",
        SupervoxelLimit::VoxelCount => "voxel_count",
        SupervoxelLimit::DistinctVectors => "distinct_vectors",
    }
}
