//! `habitats.json` and `habitat_regions.csv` in the study directory.
//!
//! `habitats.json` holds the habitat settings, both round ids, the frozen
//! model of each space (z-score parameters, centroids, names), each
//! candidate K's criterion value, the per-habitat report numbers of the
//! training fit (D_h, mean entropy, voxel fraction), the region sums over
//! all centers, and every exclusion. `habitat_regions.csv` is the region
//! table alone, one row per sequence and region.

use std::path::Path;

use polars::prelude::*;

use super::HabitatConfig;
use super::round::{HabitatOutcome, RegionTotal};
use crate::output::write_json;
use crate::table::{TableError, write_csv};

/// Writes `habitats.json` and `habitat_regions.csv` into `out_dir`.
pub fn write_report(
    out_dir: &Path,
    config: &HabitatConfig,
    outcome: &HabitatOutcome,
) -> Result<(), TableError> {
    let failed: Vec<serde_json::Value> = outcome
        .failed
        .iter()
        .map(|(center, reason)| serde_json::json!({ "center": center, "reason": reason }))
        .collect();
    let report = serde_json::json!({
        "settings": config,
        "supervoxel_round_id": outcome.supervoxel_round_id,
        "apply_round_id": outcome.apply_round_id,
        "spaces": outcome.models,
        "regions": outcome.regions,
        "region_totals": outcome.region_totals,
        "applied_centers": outcome.applied_centers,
        "failed_centers": failed,
        "patient_exclusions": outcome.exclusions,
        "region_exclusions": outcome.region_exclusions,
        "supervoxels_formed": outcome.supervoxel_limits,
    });
    write_json(&out_dir.join("habitats.json"), &report)?;

    let mut frame = regions_frame(&outcome.region_totals).map_err(|error| TableError::Write {
        path: "habitat_regions.csv".into(),
        message: error.to_string(),
    })?;
    write_csv(&mut frame, &out_dir.join("habitat_regions.csv"))
}

/// Returns the region sums as a DataFrame, one row per sequence and region.
pub fn regions_frame(totals: &[RegionTotal]) -> PolarsResult<DataFrame> {
    let text = |f: fn(&RegionTotal) -> &str| totals.iter().map(f).collect::<Vec<_>>();
    let count = |f: fn(&RegionTotal) -> u64| totals.iter().map(f).collect::<Vec<_>>();
    let optional = |f: fn(&RegionTotal) -> Option<f64>| totals.iter().map(f).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new("sequence".into(), text(|t| &t.sequence)),
        Column::new("region".into(), text(|t| &t.region)),
        Column::new("centers".into(), count(|t| t.centers as u64)),
        Column::new("patients".into(), count(|t| t.patients)),
        Column::new("voxels".into(), count(|t| t.voxels)),
        Column::new("lesion_voxels".into(), count(|t| t.lesion_voxels)),
        Column::new("voxel_fraction".into(), optional(|t| t.voxel_fraction)),
        Column::new("mean_entropy".into(), optional(|t| t.mean_entropy)),
        Column::new("mean_intensity".into(), optional(|t| t.mean_intensity)),
        Column::new("mean_depth".into(), optional(|t| t.mean_depth)),
        Column::new("mixed_voxels".into(), count(|t| t.mixed_voxels)),
    ])
}
