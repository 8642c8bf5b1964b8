//! Patient-level clustering: the voxels of one lesion and sequence grouped
//! into supervoxels by k-means on their [Ĩ, Ê] vectors.
//!
//! The supervoxels are a data reduction, not a segmentation: the k-means
//! has no spatial term, so a supervoxel may be spatially disconnected. Each
//! patient then contributes about K1 rows to the population clustering,
//! whatever the lesion size.
//!
//! Number of supervoxels:
//! K1_eff = min(K1, ⌊|M| / m_min⌋, number of distinct [Ĩ, Ê] vectors), with
//! K1 = 40 and m_min = 5 voxels by default. When K1_eff < 2 the whole lesion
//! is one supervoxel.
//!
//! Seed: [`patient_seed`] hashes the study seed, the sequence and the
//! patient key. The patient key is the keyed-hash part of the pseudonym,
//! without the `<center>-` prefix ([`patient_key`]), so the same patient
//! gets the same supervoxels whichever center id serves it.
//!
//! What may leave the worker: the descriptors, voxel counts and the sums of
//! δ and Ê per supervoxel. The voxel labels stay local.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::depth::RoiDepth;
use super::entropy::EntropyMap;
use super::kmeans::{KMeansError, KMeansParams, kmeans, validate_params};

/// Default number of supervoxels K1 (the reference recipe's
/// `K_cluster_1 = 40`).
pub const DEFAULT_SUPERVOXELS: usize = 40;
/// Accepted range of K1.
pub const SUPERVOXEL_RANGE: (usize, usize) = (10, 200);
/// Default minimum mean supervoxel size m_min, in voxels.
pub const DEFAULT_MIN_VOXELS_PER_SUPERVOXEL: usize = 5;
/// Names of the descriptor columns, in order.
pub const DESCRIPTOR_COLUMNS: [&str; 2] = ["intensity", "entropy"];

/// Domain prefix of the seed hash, so that these seeds differ from other
/// per-patient seeds of the same study.
const SEED_DOMAIN: &[u8] = b"radstudy-supervoxel-seed-v1\0";
/// Hex digits in the keyed-hash part of a pseudonym.
const PATIENT_KEY_DIGITS: usize = 16;

/// Settings of the patient-level clustering, as written in a
/// configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervoxelSettings {
    /// Supervoxels requested, K1, 10 to 200. Default 40.
    pub supervoxels: usize,
    /// Smallest mean supervoxel size m_min in voxels, at least 1. Default 5.
    pub min_voxels_per_supervoxel: usize,
    /// k-means runs, at least 1. Default 10.
    pub n_init: usize,
    /// Maximum assignment steps per run, 1 to 100,000. Default 300.
    pub max_iter: usize,
    /// Shift tolerance relative to the mean feature variance (see
    /// [`super::kmeans`]), finite and ≥ 0. Default 1e-4.
    pub tol: f64,
}

impl Default for SupervoxelSettings {
    fn default() -> Self {
        let kmeans = KMeansParams::new(DEFAULT_SUPERVOXELS);
        SupervoxelSettings {
            supervoxels: DEFAULT_SUPERVOXELS,
            min_voxels_per_supervoxel: DEFAULT_MIN_VOXELS_PER_SUPERVOXEL,
            n_init: kmeans.n_init,
            max_iter: kmeans.max_iter,
            tol: kmeans.tol,
        }
    }
}

/// A setting of [`SupervoxelSettings`] out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SupervoxelSettingsError {
    /// K1 is outside 10..=200.
    #[error("supervoxels = {value} is invalid; expected 10 to 200")]
    InvalidSupervoxels {
        /// The configured value.
        value: usize,
    },
    /// m_min is 0.
    #[error("min_voxels_per_supervoxel = 0 is invalid; expected at least 1 voxel")]
    InvalidMinVoxels,
    /// A k-means parameter is invalid.
    #[error("invalid k-means setting: {0}")]
    KMeans(KMeansError),
}

impl SupervoxelSettings {
    /// Checks every setting.
    pub fn validate(&self) -> Result<ValidSupervoxelSettings, SupervoxelSettingsError> {
        let (low, high) = SUPERVOXEL_RANGE;
        if !(low..=high).contains(&self.supervoxels) {
            return Err(SupervoxelSettingsError::InvalidSupervoxels {
                value: self.supervoxels,
            });
        }
        if self.min_voxels_per_supervoxel == 0 {
            return Err(SupervoxelSettingsError::InvalidMinVoxels);
        }
        validate_params(&self.kmeans_params(self.supervoxels))
            .map_err(SupervoxelSettingsError::KMeans)?;
        Ok(ValidSupervoxelSettings {
            settings: self.clone(),
        })
    }

    fn kmeans_params(&self, n_clusters: usize) -> KMeansParams {
        KMeansParams {
            n_clusters,
            n_init: self.n_init,
            max_iter: self.max_iter,
            tol: self.tol,
        }
    }
}

/// [`SupervoxelSettings`] whose values have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSupervoxelSettings {
    settings: SupervoxelSettings,
}

impl ValidSupervoxelSettings {
    /// Returns the settings as configured.
    pub fn settings(&self) -> &SupervoxelSettings {
        &self.settings
    }
}

/// The smallest term of K1_eff = min(K1, ⌊|M| / m_min⌋, distinct vectors),
/// the first in this order on ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervoxelLimit {
    /// The requested K1.
    Requested,
    /// The voxel count: ⌊|M| / m_min⌋.
    VoxelCount,
    /// The number of distinct voxel vectors.
    DistinctVectors,
}

/// An error from [`build_supervoxels`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SupervoxelError {
    /// The patient key is not 16 lowercase hex digits.
    #[error(
        "patient key {key:?} is invalid; pass the 16 hex digits after the `<center>-` prefix of the pseudonym"
    )]
    InvalidPatientKey {
        /// The key passed.
        key: String,
    },
    /// The entropy map and the depth map list different voxels.
    #[error(
        "the entropy map ({entropy_voxels} voxels) and the depth map ({depth_voxels} voxels) list different voxels; compute both from the same ROI"
    )]
    VoxelMismatch {
        /// Voxels in the entropy map.
        entropy_voxels: usize,
        /// Voxels in the depth map.
        depth_voxels: usize,
    },
    /// The entropy map does not have one Ĩ and one Ê per voxel.
    #[error(
        "the entropy map has {voxels} voxels but {intensities} intensities and {entropies} rescaled entropies; build the map with local_entropy"
    )]
    MalformedMap {
        /// Voxels in the map.
        voxels: usize,
        /// Entries of Ĩ.
        intensities: usize,
        /// Entries of Ê.
        entropies: usize,
    },
    /// The lesion has no voxel.
    #[error("the ROI is empty; supervoxels need at least one voxel")]
    EmptyRoi,
    /// The k-means rejected its input.
    #[error("k-means failed: {0}")]
    KMeans(#[from] KMeansError),
}

/// The supervoxels of one patient and sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervoxels {
    /// Supervoxels requested, K1.
    pub k_requested: usize,
    /// K1_eff = min(K1, ⌊|M| / m_min⌋, distinct vectors), before the rule
    /// that turns K1_eff < 2 into one supervoxel.
    pub k_effective: usize,
    /// The term that set K1_eff.
    pub limit: SupervoxelLimit,
    /// Mean [Ĩ, Ê] of the member voxels, one row per supervoxel
    /// (columns [`DESCRIPTOR_COLUMNS`]).
    pub descriptors: Array2<f64>,
    /// Voxels per supervoxel, n_sv ≥ 1.
    pub voxel_counts: Vec<usize>,
    /// Σ δ (normalised depth) over each supervoxel's voxels.
    pub depth_sums: Vec<f64>,
    /// Σ Ê over each supervoxel's voxels.
    pub entropy_sums: Vec<f64>,
    /// Supervoxel of each ROI voxel, in ROI voxel order. Stays at the
    /// worker.
    pub labels: Vec<u32>,
    /// Within-supervoxel sum of squares of the [Ĩ, Ê] vectors.
    pub inertia: f64,
    /// The k-means seed, from [`patient_seed`].
    pub seed: u64,
}

impl Supervoxels {
    /// Returns the number of supervoxels formed (≥ 1).
    pub fn count(&self) -> usize {
        self.voxel_counts.len()
    }
}

/// Returns the keyed-hash part of a pseudonym `<center>-<16 hex digits>`:
/// the text after the last `-`, or `None` if it is not 16 lowercase hex
/// digits.
pub fn patient_key(pseudonym: &str) -> Option<&str> {
    let (_, key) = pseudonym.rsplit_once('-')?;
    is_patient_key(key).then_some(key)
}

fn is_patient_key(key: &str) -> bool {
    key.len() == PATIENT_KEY_DIGITS
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Derives the k-means seed of one patient and sequence.
///
/// The seed is the first 8 bytes, read as a little-endian u64, of
///
/// ```text
/// SHA-256( "radstudy-supervoxel-seed-v1\0"
///          ‖ study_seed as 8 bytes little-endian
///          ‖ byte length of sequence as 8 bytes little-endian ‖ sequence (UTF-8)
///          ‖ byte length of patient_key as 8 bytes little-endian ‖ patient_key (UTF-8) )
/// ```
///
/// `patient_key` is the pseudonym's keyed-hash part without the
/// `<center>-` prefix, as [`patient_key`] returns it, so that the seed does
/// not depend on the center id.
pub fn patient_seed(study_seed: u64, sequence: &str, patient_key: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(SEED_DOMAIN);
    hasher.update(study_seed.to_le_bytes());
    hasher.update((sequence.len() as u64).to_le_bytes());
    hasher.update(sequence.as_bytes());
    hasher.update((patient_key.len() as u64).to_le_bytes());
    hasher.update(patient_key.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Groups the lesion's voxels into supervoxels (module documentation).
///
/// `map` and `depth` must come from the same ROI. `patient_key` is the
/// pseudonym's 16 hex digits without the `<center>-` prefix; a full
/// pseudonym is rejected.
pub fn build_supervoxels(
    map: &EntropyMap,
    depth: &RoiDepth,
    settings: &ValidSupervoxelSettings,
    study_seed: u64,
    sequence: &str,
    patient_key: &str,
) -> Result<Supervoxels, SupervoxelError> {
    if !is_patient_key(patient_key) {
        return Err(SupervoxelError::InvalidPatientKey {
            key: patient_key.to_string(),
        });
    }
    if map.voxels != depth.voxels {
        return Err(SupervoxelError::VoxelMismatch {
            entropy_voxels: map.voxels.len(),
            depth_voxels: depth.voxels.len(),
        });
    }
    let voxels = map.voxels.len();
    if voxels == 0 {
        return Err(SupervoxelError::EmptyRoi);
    }
    let config = &settings.settings;
    let seed = patient_seed(study_seed, sequence, patient_key);

    let mut rows = Vec::with_capacity(2 * voxels);
    for (&intensity, &entropy) in map.intensity.iter().zip(&map.entropy_rescaled) {
        rows.extend_from_slice(&[intensity, entropy]);
    }
    let features =
        Array2::from_shape_vec((voxels, 2), rows).map_err(|_| SupervoxelError::MalformedMap {
            voxels,
            intensities: map.intensity.len(),
            entropies: map.entropy_rescaled.len(),
        })?;
    let RowLabels {
        labels,
        count,
        k_effective: effective,
        limit,
    } = label_rows(features.view(), config, seed)?;

    let mut voxel_counts = vec![0usize; count];
    let mut sums = Array2::<f64>::zeros((count, 2));
    let mut depth_sums = vec![0.0; count];
    let mut entropy_sums = vec![0.0; count];
    for (row, &label) in labels.iter().enumerate() {
        voxel_counts[label] += 1;
        sums[[label, 0]] += map.intensity[row];
        sums[[label, 1]] += map.entropy_rescaled[row];
        depth_sums[label] += depth.normalised[row];
        entropy_sums[label] += map.entropy_rescaled[row];
    }
    let mut descriptors = sums;
    for (mut row, &n) in descriptors.rows_mut().into_iter().zip(&voxel_counts) {
        row.mapv_inplace(|sum| sum / n as f64);
    }
    let inertia = labels
        .iter()
        .zip(features.rows())
        .map(|(&label, row)| {
            let intensity = row[0] - descriptors[[label, 0]];
            let entropy = row[1] - descriptors[[label, 1]];
            intensity * intensity + entropy * entropy
        })
        .sum();

    Ok(Supervoxels {
        k_requested: config.supervoxels,
        k_effective: effective,
        limit,
        descriptors,
        voxel_counts,
        depth_sums,
        entropy_sums,
        labels: labels.into_iter().map(|label| label as u32).collect(),
        inertia,
        seed,
    })
}

/// Supervoxel labels of a lesion's feature rows.
pub(super) struct RowLabels {
    /// Supervoxel of each row, in 0..count.
    pub(super) labels: Vec<usize>,
    /// Supervoxels formed.
    pub(super) count: usize,
    /// K1_eff.
    pub(super) k_effective: usize,
    /// The term that set K1_eff.
    pub(super) limit: SupervoxelLimit,
}

/// Clusters the rows with K1_eff = min(K1, ⌊rows / m_min⌋, distinct rows),
/// into one supervoxel when K1_eff < 2. Ties between the three terms name
/// the earlier one as the limit.
///
/// The k-means merges equal rows and lowers k to the number of distinct
/// rows itself, so it runs with min(K1, ⌊rows / m_min⌋) clusters and the
/// distinct rows set the limit when the fit has fewer. That gives the
/// same fit as running it with K1_eff, without sorting the rows a second
/// time to count them.
pub(super) fn label_rows(
    features: ArrayView2<'_, f64>,
    config: &SupervoxelSettings,
    seed: u64,
) -> Result<RowLabels, KMeansError> {
    let rows = features.nrows();
    let by_size = rows / config.min_voxels_per_supervoxel;
    let (requested, limit) = if by_size < config.supervoxels {
        (by_size, SupervoxelLimit::VoxelCount)
    } else {
        (config.supervoxels, SupervoxelLimit::Requested)
    };
    // Every row set has at least one distinct row, so below 2 the
    // distinct rows cannot be the smallest term.
    if requested < 2 {
        return Ok(RowLabels {
            labels: vec![0; rows],
            count: 1,
            k_effective: requested,
            limit,
        });
    }

    let fit = kmeans(features, None, &config.kmeans_params(requested), seed)?;
    let count = fit.n_clusters();
    let limit = if count < requested {
        SupervoxelLimit::DistinctVectors
    } else {
        limit
    };
    Ok(RowLabels {
        labels: fit.labels,
        count,
        k_effective: count,
        limit,
    })
}

#[cfg(test)]
mod tests;
