//! The habitat calls of contract 1.2: `ComputeSupervoxels` and
//! `ApplyHabitatModel`. Both are unary but run over every patient of the
//! center, so they take the round deadline, not the call deadline. Each
//! reply is checked against the contract and turned into the
//! coordinator's types, so that a malformed reply fails here with the
//! center's name.

use std::time::Duration;

use ndarray::Array2;
use radstudy_proto::v1::{HabitatModelRequest, PatientError, SupervoxelRequest};

use super::{CenterClient, CenterError, ExclusionRecord};
use crate::habitat::population::SupervoxelSet;

/// Supervoxel counts of one patient and space, as the worker formed them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SupervoxelLimit {
    /// The center.
    pub center: String,
    /// The patient's pseudonym.
    pub pseudonym: String,
    /// The habitat space.
    pub space: String,
    /// Supervoxels requested and formed.
    pub requested: u32,
    /// See `requested`.
    pub formed: u32,
    /// The term that limited them: "requested", "voxel_count" or
    /// "distinct_vectors".
    pub limit: String,
}

/// A center's reply to `ComputeSupervoxels`.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervoxelReply {
    /// Descriptor column names, in order.
    pub columns: Vec<String>,
    /// One set per shared patient and space.
    pub sets: Vec<SupervoxelSet>,
    /// How many supervoxels each shared patient got.
    pub limits: Vec<SupervoxelLimit>,
    /// Patients excluded from the habitat step.
    pub exclusions: Vec<ExclusionRecord>,
    /// Patient-space pairs processed, and excluded.
    pub n_processed: u32,
    /// See `n_processed`.
    pub n_excluded: u32,
}

/// Per sequence and region, one center's sums from `ApplyHabitatModel`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionSums {
    /// The sequence.
    pub sequence: String,
    /// The region.
    pub region: String,
    /// Patients whose region reached the minimum size.
    pub patients: u64,
    /// Voxels of the region, summed over those patients.
    pub voxels: u64,
    /// Lesion voxels of those patients.
    pub lesion_voxels: u64,
    /// Sums over the region's voxels of rescaled entropy, mapped intensity
    /// and normalised depth.
    pub entropy_sum: f64,
    /// See `entropy_sum`.
    pub intensity_sum: f64,
    /// See `entropy_sum`.
    pub depth_sum: f64,
    /// Voxels whose label was carried from another grid and fell in more
    /// than one habitat.
    pub mixed_voxels: u64,
}

/// A region left out for one patient below the minimum size.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionExclusionRecord {
    /// The center.
    pub center: String,
    /// The patient's pseudonym.
    pub pseudonym: String,
    /// The sequence.
    pub sequence: String,
    /// The region.
    pub region: String,
    /// Voxels the region has.
    pub voxels: u32,
    /// The worker's reason.
    pub reason: String,
}

/// A center's reply to `ApplyHabitatModel`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyReply {
    /// Per sequence and region sums.
    pub regions: Vec<RegionSums>,
    /// Regions left out below the minimum size.
    pub region_exclusions: Vec<RegionExclusionRecord>,
    /// Patients that could not be assigned.
    pub exclusions: Vec<ExclusionRecord>,
}

/// Converts a worker's patient error to an exclusion record.
pub(crate) fn exclusion_record(center: &str, error: PatientError) -> ExclusionRecord {
    let kind = radstudy_proto::v1::ErrorKind::try_from(error.kind)
        .map(|kind| {
            kind.as_str_name()
                .trim_start_matches("ERROR_KIND_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown_{}", error.kind));
    ExclusionRecord {
        center: center.to_string(),
        pseudonym: error.pseudonym,
        sequence: error.sequence,
        kind,
        field: error.field,
        reason: error.reason,
    }
}

impl CenterClient {
    fn habitat_protocol(&self, call: &'static str, message: String) -> CenterError {
        CenterError::Protocol {
            center: self.center.clone(),
            call,
            message,
        }
    }

    /// Runs the supervoxel round and checks the shared descriptors: one
    /// row per supervoxel with one value per column, one voxel count, depth
    /// sum and entropy sum per supervoxel, every value finite, and only
    /// patients listed in `share_pseudonyms`.
    pub async fn compute_supervoxels(
        &mut self,
        round: SupervoxelRequest,
        round_timeout: Duration,
    ) -> Result<SupervoxelReply, CenterError> {
        const CALL: &str = "ComputeSupervoxels";
        let shared: std::collections::BTreeSet<String> =
            round.share_pseudonyms.iter().cloned().collect();
        let reply = self
            .unary_retried(
                CALL,
                round_timeout,
                round,
                |mut client, request| async move { client.compute_supervoxels(request).await },
            )
            .await?;

        let columns = reply.columns.len();
        if columns == 0 && !reply.patients.is_empty() {
            return Err(
                self.habitat_protocol(CALL, "descriptors arrived without column names".into())
            );
        }
        let mut sets = Vec::with_capacity(reply.patients.len());
        let mut limits = Vec::with_capacity(reply.patients.len());
        for patient in reply.patients {
            let who = format!("patient {} space {}", patient.pseudonym, patient.space);
            if !shared.contains(&patient.pseudonym) {
                return Err(self.habitat_protocol(
                    CALL,
                    format!("{who} was returned but not listed in share_pseudonyms"),
                ));
            }
            let rows = patient.voxel_counts.len();
            if patient.descriptors.len() != rows * columns
                || patient.depth_sums.len() != rows
                || patient.entropy_sums.len() != rows
            {
                return Err(self.habitat_protocol(
                    CALL,
                    format!(
                        "{who} has {} descriptor values, {} depth sums and {} entropy sums for {rows} supervoxels of {columns} columns",
                        patient.descriptors.len(),
                        patient.depth_sums.len(),
                        patient.entropy_sums.len()
                    ),
                ));
            }
            let finite = patient
                .descriptors
                .iter()
                .chain(&patient.depth_sums)
                .chain(&patient.entropy_sums)
                .all(|v| v.is_finite());
            if !finite {
                return Err(
                    self.habitat_protocol(CALL, format!("{who} has a value that is not finite"))
                );
            }
            if patient.voxel_counts.contains(&0) {
                return Err(self.habitat_protocol(CALL, format!("{who} has an empty supervoxel")));
            }
            let descriptors = Array2::from_shape_vec((rows, columns), patient.descriptors)
                .map_err(|e| self.habitat_protocol(CALL, format!("{who}: {e}")))?;
            limits.push(SupervoxelLimit {
                center: self.center.clone(),
                pseudonym: patient.pseudonym.clone(),
                space: patient.space.clone(),
                requested: patient.k_requested,
                formed: patient.k_effective,
                limit: patient.limit,
            });
            sets.push(SupervoxelSet {
                center: self.center.clone(),
                pseudonym: patient.pseudonym,
                space: patient.space,
                descriptors,
                voxel_counts: patient.voxel_counts,
                depth_sums: patient.depth_sums,
                entropy_sums: patient.entropy_sums,
            });
        }
        Ok(SupervoxelReply {
            columns: reply.columns,
            sets,
            limits,
            exclusions: reply
                .errors
                .into_iter()
                .map(|e| exclusion_record(&self.center, e))
                .collect(),
            n_processed: reply.n_processed,
            n_excluded: reply.n_excluded,
        })
    }

    /// Runs the apply round and checks the region sums: a region has no
    /// more voxels than its patients' lesions, and every sum is finite.
    pub async fn apply_habitat_model(
        &mut self,
        round: HabitatModelRequest,
        round_timeout: Duration,
    ) -> Result<ApplyReply, CenterError> {
        const CALL: &str = "ApplyHabitatModel";
        let reply = self
            .unary_retried(
                CALL,
                round_timeout,
                round,
                |mut client, request| async move { client.apply_habitat_model(request).await },
            )
            .await?;

        let mut regions = Vec::with_capacity(reply.regions.len());
        for summary in reply.regions {
            let who = format!("sequence {} region {}", summary.sequence, summary.region);
            if summary.voxels > summary.lesion_voxels {
                return Err(self.habitat_protocol(
                    CALL,
                    format!(
                        "{who} has {} voxels in lesions of {} voxels",
                        summary.voxels, summary.lesion_voxels
                    ),
                ));
            }
            if ![
                summary.entropy_sum,
                summary.intensity_sum,
                summary.depth_sum,
            ]
            .iter()
            .all(|v| v.is_finite())
            {
                return Err(
                    self.habitat_protocol(CALL, format!("{who} has a sum that is not finite"))
                );
            }
            regions.push(RegionSums {
                sequence: summary.sequence,
                region: summary.region,
                patients: u64::from(summary.n_patients),
                voxels: summary.voxels,
                lesion_voxels: summary.lesion_voxels,
                entropy_sum: summary.entropy_sum,
                intensity_sum: summary.intensity_sum,
                depth_sum: summary.depth_sum,
                mixed_voxels: summary.mixed_voxels,
            });
        }
        Ok(ApplyReply {
            regions,
            region_exclusions: reply
                .exclusions
                .into_iter()
                .map(|e| RegionExclusionRecord {
                    center: self.center.clone(),
                    pseudonym: e.pseudonym,
                    sequence: e.sequence,
                    region: e.region,
                    voxels: e.voxels,
                    reason: e.reason,
                })
                .collect(),
            exclusions: reply
                .errors
                .into_iter()
                .map(|e| exclusion_record(&self.center, e))
                .collect(),
        })
    }
}
