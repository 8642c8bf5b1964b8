//! The two habitat rounds over gRPC, at every center at once, each call
//! under the study's round deadline.
//!
//! 1. `ComputeSupervoxels` at every connected center, for all of its
//!    patients, sharing the descriptors of its training patients only.
//! 2. One population model per habitat space from the pooled training
//!    descriptors ([`super::population`], [`super::naming`]).
//! 3. `ApplyHabitatModel` at every center that finished step 1.
//!
//! A center that rejects or fails a call is left out with its reason, and
//! the rounds go on with the others. The rounds fail as a whole only when
//! no model can be fitted for some space, or no center applies the model.

use std::collections::{BTreeMap, BTreeSet};

use radstudy_proto::v1::{DescribeResponse, HabitatModelRequest, SupervoxelRequest};
use serde::Serialize;
use tracing::{Instrument, info, info_span, warn};

use super::config::VoxelFeatures;
use super::population::{SupervoxelSet, fit_population};
use super::{HabitatConfig, SpaceModel};
use crate::client::{
    ApplyReply, CenterClient, ExclusionRecord, RegionExclusionRecord, RegionSums, SupervoxelLimit,
    SupervoxelReply,
};
use crate::config::StudyConfig;

/// Per sequence and region, the sums of every center that applied the
/// model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionTotal {
    /// The sequence.
    pub sequence: String,
    /// The region.
    pub region: String,
    /// Centers that reported the region.
    pub centers: usize,
    /// Sums over those centers.
    pub patients: u64,
    /// See `patients`.
    pub voxels: u64,
    /// See `patients`.
    pub lesion_voxels: u64,
    /// Region voxels over every lesion voxel of the sequence (all patients
    /// with the sequence, whether or not they have this region).
    pub voxel_fraction: Option<f64>,
    /// Mean rescaled entropy, mapped intensity and normalised depth over
    /// the region's voxels.
    pub mean_entropy: Option<f64>,
    /// See `mean_entropy`.
    pub mean_intensity: Option<f64>,
    /// See `mean_entropy`.
    pub mean_depth: Option<f64>,
    /// Voxels of the region whose label was carried from another grid and
    /// whose sub-samples fell in more than one habitat; such a voxel
    /// belongs to the habitat with the most votes. Workers of contract 1.2
    /// report them for `whole` only.
    pub mixed_voxels: u64,
}

/// Everything the habitat rounds produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HabitatOutcome {
    /// Round id of `ComputeSupervoxels`.
    pub supervoxel_round_id: String,
    /// Round id of `ApplyHabitatModel`; extraction rounds name it.
    pub apply_round_id: String,
    /// The frozen model per habitat space.
    pub models: Vec<SpaceModel>,
    /// Regions that extraction rounds request.
    pub regions: Vec<String>,
    /// Per sequence and region sums over the centers.
    pub region_totals: Vec<RegionTotal>,
    /// Regions left out below the minimum size, per patient.
    pub region_exclusions: Vec<RegionExclusionRecord>,
    /// Patients excluded from the habitat step.
    pub exclusions: Vec<ExclusionRecord>,
    /// Supervoxels formed per shared patient and space.
    pub supervoxel_limits: Vec<SupervoxelLimit>,
    /// Centers that applied the model.
    pub applied_centers: Vec<String>,
    /// Centers left out, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Returns the habitat spaces of a study: its sequences, or "joint".
pub fn habitat_spaces(config: &StudyConfig, habitat: &HabitatConfig) -> Vec<String> {
    match habitat.voxel_features {
        VoxelFeatures::PerSequence => config.sequences.clone(),
        VoxelFeatures::Joint => vec!["joint".to_string()],
    }
}

/// Round ids of the two habitat rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct HabitatRoundIds {
    /// The `ComputeSupervoxels` round.
    pub supervoxel: String,
    /// The `ApplyHabitatModel` round.
    pub apply: String,
}

impl HabitatRoundIds {
    /// Draws new random (v4 UUID) ids.
    pub fn fresh() -> Self {
        HabitatRoundIds {
            supervoxel: uuid::Uuid::new_v4().to_string(),
            apply: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Runs both habitat rounds under `round_ids`. `training` lists each
/// center's training pseudonyms; centers absent from it share no
/// descriptors but still apply the model. `Err` gives the reason no model
/// could be used.
pub async fn run_rounds(
    config: &StudyConfig,
    habitat: &HabitatConfig,
    connected: &[(CenterClient, DescribeResponse)],
    training: &BTreeMap<String, Vec<String>>,
    round_ids: HabitatRoundIds,
) -> Result<HabitatOutcome, (String, HabitatOutcome)> {
    let mut outcome = HabitatOutcome {
        supervoxel_round_id: round_ids.supervoxel,
        apply_round_id: round_ids.apply,
        ..HabitatOutcome::default()
    };
    info!(
        round = %outcome.supervoxel_round_id,
        centers = connected.len(),
        training = training.values().map(Vec::len).sum::<usize>(),
        "supervoxel round started"
    );

    // Step 1: supervoxels everywhere, descriptors of training patients.
    let mut tasks = Vec::new();
    for (client, _) in connected {
        let center = client.center().to_string();
        let request = SupervoxelRequest {
            study_id: config.study_id.clone(),
            round_id: outcome.supervoxel_round_id.clone(),
            sequences: config.sequences.clone(),
            label: config.features.label,
            entropy: Some(habitat.entropy_options()),
            supervoxels: Some(habitat.supervoxel_options()),
            voxel_features: habitat.voxel_features.as_str().to_string(),
            seed: config.seed,
            pseudonyms: Vec::new(),
            share_pseudonyms: training.get(&center).cloned().unwrap_or_default(),
        };
        let mut client = client.clone();
        let timeout = config.round_timeout();
        let span = info_span!("center", center = %center);
        tasks.push((
            center,
            tokio::spawn(
                async move { client.compute_supervoxels(request, timeout).await }.instrument(span),
            ),
        ));
    }
    let mut replies: Vec<(String, SupervoxelReply)> = Vec::new();
    for (center, task) in tasks {
        match task.await {
            Ok(Ok(reply)) => {
                info!(
                    center = %center,
                    shared = reply.sets.len(),
                    processed = reply.n_processed,
                    excluded = reply.n_excluded,
                    "supervoxels received"
                );
                replies.push((center, reply));
            }
            Ok(Err(error)) => {
                warn!(center = %center, %error, "center left out of the habitat rounds");
                outcome.failed.push((center, error.to_string()));
            }
            Err(join_error) => outcome
                .failed
                .push((center, format!("internal error: {join_error}"))),
        }
    }

    // Descriptor columns: the first center's (by id) that shared any.
    replies.sort_by(|a, b| a.0.cmp(&b.0));
    let reference = replies
        .iter()
        .find(|(_, reply)| !reply.sets.is_empty())
        .map(|(_, reply)| reply.columns.clone());
    let mut sets: BTreeMap<String, Vec<SupervoxelSet>> = BTreeMap::new();
    let mut finished: Vec<String> = Vec::new();
    for (center, reply) in replies {
        if let Some(columns) = &reference
            && !reply.sets.is_empty()
            && &reply.columns != columns
        {
            let reason = format!(
                "its supervoxel descriptors have columns {:?}, other centers {columns:?}; run the same radstudy-worker version everywhere",
                reply.columns
            );
            warn!(center = %center, %reason, "center left out of the habitat rounds");
            outcome.failed.push((center, reason));
            continue;
        }
        outcome.exclusions.extend(reply.exclusions);
        outcome.supervoxel_limits.extend(reply.limits);
        for set in reply.sets {
            sets.entry(set.space.clone()).or_default().push(set);
        }
        finished.push(center);
    }

    // Step 2: one model per space.
    let columns = reference.unwrap_or_default();
    for space in habitat_spaces(config, habitat) {
        let space_sets = sets.remove(&space).unwrap_or_default();
        let span = info_span!("space", space = %space);
        let fitted = span.in_scope(|| fit_population(&space, space_sets, habitat, config.seed));
        match fitted {
            Ok(fit) => {
                let model = SpaceModel::new(&fit, columns.clone(), habitat);
                info!(
                    k = model.k,
                    criterion = %model.criterion,
                    supervoxels = model.training_supervoxels,
                    inner_entropy_higher = ?model.naming.inner_entropy_higher,
                    "habitat model fitted"
                );
                outcome.models.push(model);
            }
            Err(error) => return Err((error.to_string(), outcome)),
        }
    }
    if let Some((space, _)) = sets.into_iter().next() {
        warn!(%space, "supervoxels of a habitat space the study did not request were ignored");
    }
    outcome.regions = habitat.extraction_regions(&union_of_names(&outcome.models));

    // Step 3: apply the frozen model where step 1 finished.
    let models: Vec<_> = outcome.models.iter().map(SpaceModel::to_proto).collect();
    let mut tasks = Vec::new();
    for (client, _) in connected {
        let center = client.center().to_string();
        if !finished.contains(&center) {
            continue;
        }
        let request = HabitatModelRequest {
            study_id: config.study_id.clone(),
            round_id: outcome.apply_round_id.clone(),
            supervoxel_round_id: outcome.supervoxel_round_id.clone(),
            models: models.clone(),
            min_region_voxels: habitat.min_region_voxels,
            geometric: habitat.geometric_options(),
            write_maps: habitat.write_maps,
        };
        let mut client = client.clone();
        let timeout = config.round_timeout();
        let span = info_span!("center", center = %center);
        tasks.push((
            center,
            tokio::spawn(
                async move { client.apply_habitat_model(request, timeout).await }.instrument(span),
            ),
        ));
    }
    let mut applied: Vec<(String, ApplyReply)> = Vec::new();
    for (center, task) in tasks {
        match task.await {
            Ok(Ok(reply)) => applied.push((center, reply)),
            Ok(Err(error)) => {
                warn!(center = %center, %error, "center left out of the habitat rounds");
                outcome.failed.push((center, error.to_string()));
            }
            Err(join_error) => outcome
                .failed
                .push((center, format!("internal error: {join_error}"))),
        }
    }
    applied.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sums: Vec<(String, Vec<RegionSums>)> = Vec::new();
    for (center, reply) in applied {
        outcome.region_exclusions.extend(reply.region_exclusions);
        outcome.exclusions.extend(reply.exclusions);
        outcome.applied_centers.push(center.clone());
        sums.push((center, reply.regions));
    }
    outcome.region_totals = merge_region_sums(&sums);
    if outcome.applied_centers.is_empty() {
        return Err(("no center applied the habitat model".into(), outcome));
    }
    Ok(outcome)
}

/// Returns the habitat names of all spaces: "inner", "mid_2" … in
/// increasing k, then "marginal".
pub fn union_of_names(models: &[SpaceModel]) -> Vec<String> {
    let all: BTreeSet<&str> = models
        .iter()
        .flat_map(|m| m.names.iter().map(String::as_str))
        .collect();
    let mut mids: Vec<(usize, &str)> = all
        .iter()
        .filter_map(|name| {
            name.strip_prefix("mid_")
                .and_then(|k| k.parse().ok())
                .map(|k| (k, *name))
        })
        .collect();
    mids.sort_unstable();
    let mut names = Vec::new();
    if all.contains("inner") {
        names.push("inner".to_string());
    }
    names.extend(mids.into_iter().map(|(_, name)| name.to_string()));
    if all.contains("marginal") {
        names.push("marginal".to_string());
    }
    names
}

/// Sums the centers' region sums per (sequence, region). Counts are exact
/// integers; the float sums add the centers in the order given.
pub fn merge_region_sums(per_center: &[(String, Vec<RegionSums>)]) -> Vec<RegionTotal> {
    let mut totals: BTreeMap<(String, String), RegionTotal> = BTreeMap::new();
    for (_, regions) in per_center {
        for sums in regions {
            let total = totals
                .entry((sums.sequence.clone(), sums.region.clone()))
                .or_insert_with(|| RegionTotal {
                    sequence: sums.sequence.clone(),
                    region: sums.region.clone(),
                    centers: 0,
                    patients: 0,
                    voxels: 0,
                    lesion_voxels: 0,
                    voxel_fraction: None,
                    mean_entropy: Some(0.0),
                    mean_intensity: Some(0.0),
                    mean_depth: Some(0.0),
                    mixed_voxels: 0,
                });
            total.centers += 1;
            total.patients += sums.patients;
            total.voxels += sums.voxels;
            total.lesion_voxels += sums.lesion_voxels;
            total.mixed_voxels += sums.mixed_voxels;
            // Running sums, divided below.
            for (field, value) in [
                (&mut total.mean_entropy, sums.entropy_sum),
                (&mut total.mean_intensity, sums.intensity_sum),
                (&mut total.mean_depth, sums.depth_sum),
            ] {
                *field = field.map(|sum| sum + value);
            }
        }
    }
    // The fraction's denominator is every lesion voxel of the sequence: the
    // "whole" region's voxels, or else the largest lesion-voxel sum of any
    // region. A region's own lesion-voxel sum covers only the patients that
    // have it, so dividing by it would let the fractions add up to more
    // than 1.
    let mut lesion_voxels: BTreeMap<String, u64> = BTreeMap::new();
    for total in totals.values() {
        let entry = lesion_voxels.entry(total.sequence.clone()).or_default();
        *entry = (*entry).max(total.lesion_voxels);
    }
    for total in totals.values().filter(|t| t.region == "whole") {
        lesion_voxels.insert(total.sequence.clone(), total.voxels);
    }

    totals
        .into_values()
        .map(|mut total| {
            let voxels = total.voxels as f64;
            let mean = |sum: Option<f64>| sum.filter(|_| voxels > 0.0).map(|s| s / voxels);
            total.mean_entropy = mean(total.mean_entropy);
            total.mean_intensity = mean(total.mean_intensity);
            total.mean_depth = mean(total.mean_depth);
            let denominator = lesion_voxels.get(&total.sequence).copied().unwrap_or(0);
            total.voxel_fraction = (denominator > 0).then(|| voxels / denominator as f64);
            total
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(sequence: &str, region: &str, voxels: u64, lesion: u64, entropy: f64) -> RegionSums {
        RegionSums {
            sequence: sequence.into(),
            region: region.into(),
            patients: 1,
            voxels,
            lesion_voxels: lesion,
            entropy_sum: entropy,
            intensity_sum: 0.0,
            depth_sum: 0.0,
            mixed_voxels: 0,
        }
    }

    #[test]
    fn region_sums_merge_over_centers() {
        let per_center = vec![
            ("A".to_string(), vec![sums("T1", "inner", 30, 100, 15.0)]),
            (
                "B".to_string(),
                vec![
                    sums("T1", "inner", 10, 100, 5.0),
                    sums("T1", "marginal", 90, 100, 9.0),
                ],
            ),
        ];
        let totals = merge_region_sums(&per_center);
        assert_eq!(totals.len(), 2);
        let inner = &totals[0];
        assert_eq!(
            (inner.region.as_str(), inner.centers, inner.voxels),
            ("inner", 2, 40)
        );
        assert_eq!(inner.voxel_fraction, Some(0.2));
        assert_eq!(inner.mean_entropy, Some(0.5));
        // 90 marginal voxels over the 200 lesion voxels of both patients,
        // not over the 100 of the one patient that has a marginal region.
        assert_eq!(totals[1].voxel_fraction, Some(0.45));
    }

    #[test]
    fn union_of_names_orders_mid_habitats() {
        let model = |names: &[&str]| SpaceModel {
            space: "T1".into(),
            columns: Vec::new(),
            mean: Vec::new(),
            scale: Vec::new(),
            centroids: Vec::new(),
            names: names.iter().map(|n| n.to_string()).collect(),
            method: "kmeans".into(),
            mixture: None,
            criterion: "fixed".into(),
            k: names.len(),
            candidates: Vec::new(),
            training_patients: 0,
            training_supervoxels: 0,
            naming: super::super::naming::Naming {
                habitats: Vec::new(),
                inner_entropy_higher: None,
            },
        };
        let names = union_of_names(&[
            model(&["inner", "marginal"]),
            model(&["inner", "mid_2", "mid_3", "mid_10", "marginal"]),
        ]);
        assert_eq!(names, ["inner", "mid_2", "mid_3", "mid_10", "marginal"]);
    }
}
