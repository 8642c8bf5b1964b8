//! The `RegionSummary` sums of an `ApplyHabitatModel` round: per sequence
//! and region, voxel counts and sums of Ê, Ĩ and δ over the center's
//! patients, released only over at least `min_patients` patients.

use std::collections::{BTreeMap, HashSet};

use radstudy_proto::v1::RegionSummary;
use tracing::info;

use super::habitat::SupervoxelRound;
use super::habitat_apply::PatientRegions;

/// Sums of one sequence and region over the patients that have it.
#[derive(Default)]
struct RegionTotals {
    patients: u32,
    voxels: u64,
    lesion_voxels: u64,
    entropy_sum: f64,
    intensity_sum: f64,
    depth_sum: f64,
    mixed_voxels: u64,
}

/// Sums the regions over patients, in pseudonym order so that the sums do
/// not depend on which patient finished first, and releases only those
/// over at least `min_patients` patients.
pub(super) fn region_summaries(
    round: &SupervoxelRound,
    regions: &BTreeMap<(String, String), PatientRegions>,
    min_patients: u32,
) -> Vec<RegionSummary> {
    let mut totals: BTreeMap<(String, String), RegionTotals> = BTreeMap::new();
    for ((pseudonym, sequence), patient) in regions {
        let Some(maps) = round.patients.get(pseudonym).and_then(|p| {
            p.spaces
                .values()
                .flat_map(|space| &space.sequences)
                .find(|s| &s.sequence == sequence)
                .map(|s| &s.maps)
        }) else {
            continue;
        };
        let excluded: HashSet<&str> = patient
            .exclusions
            .iter()
            .map(|e| e.region.as_str())
            .collect();
        for region in patient.masks.region_names() {
            if excluded.contains(region.as_str()) {
                continue;
            }
            let Some(indices) = patient.masks.region_indices(&region) else {
                continue;
            };
            let total = totals
                .entry((sequence.clone(), region.clone()))
                .or_default();
            total.patients += 1;
            total.voxels += indices.len() as u64;
            total.lesion_voxels += maps.voxels.len() as u64;
            total.entropy_sum += indices.iter().map(|&i| maps.entropy[i]).sum::<f64>();
            total.intensity_sum += indices.iter().map(|&i| maps.intensity[i]).sum::<f64>();
            total.depth_sum += indices.iter().map(|&i| maps.depth[i]).sum::<f64>();
            total.mixed_voxels += patient.mixed_among(&indices) as u64;
        }
    }
    let mut summaries = Vec::new();
    for ((sequence, region), total) in totals {
        if total.patients < min_patients {
            info!(
                sequence = %sequence,
                region = %region,
                patients = total.patients,
                min_patients,
                "region summary withheld below min_patients"
            );
            continue;
        }
        summaries.push(RegionSummary {
            sequence,
            region,
            n_patients: total.patients,
            voxels: total.voxels,
            lesion_voxels: total.lesion_voxels,
            entropy_sum: total.entropy_sum,
            intensity_sum: total.intensity_sum,
            depth_sum: total.depth_sum,
            mixed_voxels: total.mixed_voxels,
        });
    }
    summaries
}
