//! The habitat chain of one patient up to the supervoxels: local entropy
//! map, depth and patient-level clustering of one habitat space.
//!
//! A habitat space is either one sequence (`per_sequence`), clustered on
//! its own grid and mask with x_v = [Ĩ(v), Ê(v)], or `joint`, clustered on
//! the reference (first) sequence's grid and mask with
//! x_v = [Ĩ_1(v), Ê_1(v), …, Ĩ_Q(v), Ê_Q(v)] in request order. A joint
//! patient whose grids differ beyond the geometry tolerance is clustered
//! on the reference sequence alone. Each other sequence then keeps its own
//! lesion maps, and its labels are carried by physical position later.
//! The perturbed copies of such a patient perturb each sequence on its own
//! grid ([`crate::perturbed_features::joint_habitat_copy_features`]).
//!
//! Seeds: the k-means seed of a space is
//! `supervoxel::patient_seed(study_seed, space, patient_key)`, with space
//! the sequence name or `"joint"`. Perturbed copy p of a patient uses the
//! space name `"<space>#copy<p>"` (p from 0), so each copy draws its own
//! stream that depends neither on thread count nor on patient order.

use std::collections::HashMap;

use ndarray::Array2;

use super::grid::Affine;

use super::depth::{RoiDepth, roi_depth};
use super::entropy::{EntropyMap, ValidEntropySettings, local_entropy};
use super::supervoxel::{
    DESCRIPTOR_COLUMNS, RowLabels, SupervoxelLimit, ValidSupervoxelSettings, build_supervoxels,
    label_rows, patient_key, patient_seed,
};
use crate::image::{Geometry, Volume};
use crate::mask::Roi;

/// Name of the habitat space of the `joint` voxel features.
pub const JOINT_SPACE: &str = "joint";

/// Combination of the sequences in a round's voxel vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoxelFeatures {
    /// One habitat space per sequence.
    PerSequence,
    /// One habitat space `joint` over every sequence.
    Joint,
}

impl VoxelFeatures {
    /// Parses the contract's `voxel_features` field; empty means
    /// `per_sequence`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" | "per_sequence" => Some(VoxelFeatures::PerSequence),
            "joint" => Some(VoxelFeatures::Joint),
            _ => None,
        }
    }
}

/// Per-voxel values of one lesion on one grid, in ROI voxel order.
#[derive(Debug, Clone, PartialEq)]
pub struct LesionMaps {
    /// The grid of the lesion.
    pub geometry: Geometry,
    /// Index (i, j, k) of each lesion voxel.
    pub voxels: Vec<[usize; 3]>,
    /// Mapped intensity Ĩ ∈ [0, 1] of the sequence.
    pub intensity: Vec<f64>,
    /// Rescaled local entropy Ê ∈ [0, 1] of the sequence.
    pub entropy: Vec<f64>,
    /// Depth below the lesion surface, in mm.
    pub depth_mm: Vec<f64>,
    /// Normalised depth δ ∈ (0, 1].
    pub depth: Vec<f64>,
}

impl LesionMaps {
    /// Returns the lesion as a mask on its grid.
    pub fn roi(&self) -> Roi {
        let [ni, nj, nk] = self.geometry.dims;
        let mut mask = ndarray::Array3::from_elem((ni, nj, nk), false);
        for voxel in &self.voxels {
            mask[*voxel] = true;
        }
        Roi {
            mask,
            voxel_count: self.voxels.len(),
        }
    }

    /// Returns the depth map in the form [`super::geometric`] reads.
    pub fn roi_depth(&self) -> RoiDepth {
        RoiDepth {
            voxels: self.voxels.clone(),
            depth_mm: self.depth_mm.clone(),
            normalised: self.depth.clone(),
            max_depth_mm: self.depth_mm.iter().copied().fold(0.0, f64::max),
        }
    }
}

/// One sequence of a habitat space.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceSequence {
    /// Sequence name.
    pub sequence: String,
    /// Whether the sequence shares the space's grid and lesion (always for
    /// the reference). When false, `maps` are on the sequence's own grid
    /// and mask, and its labels must be carried by physical position.
    pub on_space_grid: bool,
    /// The sequence's lesion maps.
    pub maps: LesionMaps,
}

/// The supervoxels of one patient and habitat space, with what applying a
/// habitat model needs. Only the descriptors and their sums may leave the
/// worker.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceSupervoxels {
    /// A sequence, or [`JOINT_SPACE`].
    pub space: String,
    /// Supervoxels requested, K1.
    pub k_requested: usize,
    /// K1_eff = min(K1, ⌊|M| / m_min⌋, distinct voxel vectors).
    pub k_effective: usize,
    /// The term that set K1_eff.
    pub limit: SupervoxelLimit,
    /// Mean voxel vector of each supervoxel (row) over the space's columns.
    pub descriptors: Array2<f64>,
    /// Voxels per supervoxel.
    pub voxel_counts: Vec<usize>,
    /// Σ δ over each supervoxel's voxels.
    pub depth_sums: Vec<f64>,
    /// Σ Ê of the reference sequence over each supervoxel's voxels.
    pub entropy_sums: Vec<f64>,
    /// Supervoxel of each voxel of the reference lesion, in ROI voxel order.
    pub labels: Vec<u32>,
    /// The space's sequences; the first is the reference, whose grid and
    /// lesion the labels are on.
    pub sequences: Vec<SpaceSequence>,
    /// Whether a joint space fell back to the reference sequence alone
    /// because the grids differ.
    pub reference_only: bool,
}

/// A loaded sequence of one patient.
#[derive(Debug, Clone, Copy)]
pub struct SequenceInput<'a> {
    /// Sequence name.
    pub sequence: &'a str,
    /// The image.
    pub image: &'a Volume,
    /// The lesion on the image grid.
    pub roi: &'a Roi,
}

/// Settings of the chain, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSettings {
    /// Local entropy map.
    pub entropy: ValidEntropySettings,
    /// Patient-level clustering.
    pub supervoxels: ValidSupervoxelSettings,
    /// Study seed.
    pub study_seed: u64,
}

/// A failure of the chain for one patient and space.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    /// The pseudonym has no 16-hex-digit key part.
    #[error("pseudonym {pseudonym:?} has no 16-hex-digit patient key after `<center>-`")]
    InvalidPseudonym {
        /// The pseudonym.
        pseudonym: String,
    },
    /// The entropy map failed.
    #[error("local entropy of {sequence} failed: {reason}")]
    Entropy {
        /// The sequence.
        sequence: String,
        /// The kernel's message.
        reason: String,
    },
    /// The depth map failed.
    #[error("lesion depth of {sequence} failed: {reason}")]
    Depth {
        /// The sequence.
        sequence: String,
        /// The kernel's message.
        reason: String,
    },
    /// The clustering failed.
    #[error("supervoxels of space {space} failed: {reason}")]
    Supervoxels {
        /// The space.
        space: String,
        /// The kernel's message.
        reason: String,
    },
}

/// Returns the space name whose seed perturbed copy `copy` uses.
pub fn copy_space_name(space: &str, copy: u32) -> String {
    format!("{space}#copy{copy}")
}

/// Computes the lesion maps of one sequence on its own grid and mask.
pub fn lesion_maps(
    input: SequenceInput<'_>,
    settings: &ValidEntropySettings,
) -> Result<(EntropyMap, RoiDepth), ChainError> {
    let map =
        local_entropy(input.image, input.roi, settings).map_err(|error| ChainError::Entropy {
            sequence: input.sequence.to_string(),
            reason: error.to_string(),
        })?;
    let depth =
        roi_depth(input.roi, input.image.geometry.spacing).map_err(|error| ChainError::Depth {
            sequence: input.sequence.to_string(),
            reason: error.to_string(),
        })?;
    Ok((map, depth))
}

fn to_lesion_maps(geometry: &Geometry, map: EntropyMap, depth: RoiDepth) -> LesionMaps {
    LesionMaps {
        geometry: geometry.clone(),
        voxels: map.voxels,
        intensity: map.intensity,
        entropy: map.entropy_rescaled,
        depth_mm: depth.depth_mm,
        depth: depth.normalised,
    }
}

/// Builds the supervoxels of one sequence's space (`per_sequence`).
/// `seed_space` is the space name the seed hashes: the sequence, or
/// [`copy_space_name`] for a perturbed copy.
pub fn sequence_supervoxels(
    input: SequenceInput<'_>,
    pseudonym: &str,
    seed_space: &str,
    settings: &ChainSettings,
) -> Result<SpaceSupervoxels, ChainError> {
    let key = patient_key(pseudonym).ok_or_else(|| ChainError::InvalidPseudonym {
        pseudonym: pseudonym.to_string(),
    })?;
    let (map, depth) = lesion_maps(input, &settings.entropy)?;
    let built = build_supervoxels(
        &map,
        &depth,
        &settings.supervoxels,
        settings.study_seed,
        seed_space,
        key,
    )
    .map_err(|error| ChainError::Supervoxels {
        space: input.sequence.to_string(),
        reason: error.to_string(),
    })?;
    Ok(SpaceSupervoxels {
        space: input.sequence.to_string(),
        k_requested: built.k_requested,
        k_effective: built.k_effective,
        limit: built.limit,
        descriptors: built.descriptors,
        voxel_counts: built.voxel_counts,
        depth_sums: built.depth_sums,
        entropy_sums: built.entropy_sums,
        labels: built.labels,
        sequences: vec![SpaceSequence {
            sequence: input.sequence.to_string(),
            on_space_grid: true,
            maps: to_lesion_maps(&input.image.geometry, map, depth),
        }],
        reference_only: false,
    })
}

/// Returns the descriptor columns of a space: `intensity`, `entropy` for a
/// sequence, `<sequence>_intensity`, `<sequence>_entropy` per sequence for
/// [`JOINT_SPACE`].
pub fn space_columns(voxel_features: VoxelFeatures, sequences: &[String]) -> Vec<String> {
    match voxel_features {
        VoxelFeatures::PerSequence => DESCRIPTOR_COLUMNS.iter().map(|c| c.to_string()).collect(),
        VoxelFeatures::Joint => sequences
            .iter()
            .flat_map(|sequence| {
                DESCRIPTOR_COLUMNS
                    .iter()
                    .map(move |column| format!("{sequence}_{column}"))
            })
            .collect(),
    }
}

/// Builds the supervoxels of the `joint` space from the patient's
/// sequences, the first being the reference. `matches[q]` is true when
/// sequence q's grid matches the reference grid within tolerance. When
/// every grid matches, every sequence's maps are computed inside the
/// reference lesion and the voxel vector joins all of them. Otherwise the
/// clustering uses the reference alone (`reference_only`), and the other
/// sequences keep their own lesion maps on their own grids. Their
/// descriptor columns are then the means, over each supervoxel's voxels,
/// of the other sequence's Ĩ and Ê at the voxel of its lesion that
/// contains the reference voxel's centre ([`sample_other_sequence`]).
/// Reference voxels whose centre falls outside the other lesion are left
/// out of those means, and a supervoxel without any such voxel keeps NaN.
pub fn joint_supervoxels(
    inputs: &[SequenceInput<'_>],
    matches: &[bool],
    pseudonym: &str,
    seed_space: &str,
    settings: &ChainSettings,
) -> Result<SpaceSupervoxels, ChainError> {
    let key = patient_key(pseudonym).ok_or_else(|| ChainError::InvalidPseudonym {
        pseudonym: pseudonym.to_string(),
    })?;
    let Some(reference) = inputs.first() else {
        return Err(ChainError::Supervoxels {
            space: JOINT_SPACE.to_string(),
            reason: "no sequence given".into(),
        });
    };
    let all_match = matches.iter().all(|&m| m);
    let mut sequences = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let on_grid = index == 0 || all_match;
        let roi = if on_grid { reference.roi } else { input.roi };
        let own = SequenceInput { roi, ..*input };
        let (map, depth) = lesion_maps(own, &settings.entropy)?;
        sequences.push(SpaceSequence {
            sequence: input.sequence.to_string(),
            on_space_grid: on_grid,
            maps: to_lesion_maps(&input.image.geometry, map, depth),
        });
    }

    let clustered: Vec<&SpaceSequence> = sequences.iter().filter(|s| s.on_space_grid).collect();
    let voxels = sequences[0].maps.voxels.len();
    let features = Array2::from_shape_fn((voxels, 2 * clustered.len()), |(row, column)| {
        let maps = &clustered[column / 2].maps;
        if column % 2 == 0 {
            maps.intensity[row]
        } else {
            maps.entropy[row]
        }
    });
    let reference_maps = &sequences[0].maps;
    let clusters = cluster_rows(
        &features,
        &reference_maps.depth,
        &reference_maps.entropy,
        &settings.supervoxels,
        patient_seed(settings.study_seed, seed_space, key),
    )
    .map_err(|reason| ChainError::Supervoxels {
        space: JOINT_SPACE.to_string(),
        reason,
    })?;

    let columns = 2 * inputs.len();
    let mut descriptors = Array2::from_elem((clusters.voxel_counts.len(), columns), f64::NAN);
    for (row, means) in clusters.means.rows().into_iter().enumerate() {
        for (column, &value) in means.iter().enumerate() {
            descriptors[[row, column]] = value;
        }
    }
    if !all_match {
        for (index, sequence) in sequences.iter().enumerate().skip(1) {
            let sampled = sample_other_sequence(reference_maps, &clusters.labels, &sequence.maps);
            for (row, (intensity, entropy)) in sampled.into_iter().enumerate() {
                descriptors[[row, 2 * index]] = intensity;
                descriptors[[row, 2 * index + 1]] = entropy;
            }
        }
    }
    Ok(SpaceSupervoxels {
        space: JOINT_SPACE.to_string(),
        k_requested: settings.supervoxels.settings().supervoxels,
        k_effective: clusters.k_effective,
        limit: clusters.limit,
        descriptors,
        voxel_counts: clusters.voxel_counts,
        depth_sums: clusters.depth_sums,
        entropy_sums: clusters.entropy_sums,
        labels: clusters.labels,
        sequences,
        reference_only: !all_match,
    })
}

/// Returns, per supervoxel, the means of `other`'s Ĩ and Ê over the
/// supervoxel's reference voxels whose centre lies in a voxel of `other`'s
/// lesion (nearest voxel by physical position); NaN for a supervoxel with
/// no such voxel. `labels` lists the supervoxel of each reference voxel.
fn sample_other_sequence(
    reference: &LesionMaps,
    labels: &[u32],
    other: &LesionMaps,
) -> Vec<(f64, f64)> {
    let count = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut sums = vec![(0.0, 0.0, 0usize); count];
    let Some(other_from_world) = Affine::index_to_world(&other.geometry).inverse() else {
        return vec![(f64::NAN, f64::NAN); count];
    };
    let other_from_reference = other_from_world.after(&Affine::index_to_world(&reference.geometry));
    let lesion_index: HashMap<[usize; 3], usize> = other
        .voxels
        .iter()
        .enumerate()
        .map(|(index, voxel)| (*voxel, index))
        .collect();
    for (voxel, &label) in reference.voxels.iter().zip(labels) {
        let point = other_from_reference.apply([voxel[0] as f64, voxel[1] as f64, voxel[2] as f64]);
        let nearest: Option<[usize; 3]> = (0..3)
            .map(|axis| {
                let index = point[axis].round();
                (index >= 0.0 && (index as usize) < other.geometry.dims[axis])
                    .then_some(index as usize)
            })
            .collect::<Option<Vec<usize>>>()
            .map(|index| [index[0], index[1], index[2]]);
        let Some(position) = nearest.and_then(|voxel| lesion_index.get(&voxel)) else {
            continue;
        };
        let sum = &mut sums[label as usize];
        sum.0 += other.intensity[*position];
        sum.1 += other.entropy[*position];
        sum.2 += 1;
    }
    sums.into_iter()
        .map(|(intensity, entropy, n)| match n {
            0 => (f64::NAN, f64::NAN),
            n => (intensity / n as f64, entropy / n as f64),
        })
        .collect()
}

/// The clustering of voxel vectors with any number of columns.
struct RowClusters {
    k_effective: usize,
    limit: SupervoxelLimit,
    means: Array2<f64>,
    voxel_counts: Vec<usize>,
    depth_sums: Vec<f64>,
    entropy_sums: Vec<f64>,
    labels: Vec<u32>,
}

/// Clusters the rows of `features` as [`build_supervoxels`] clusters two
/// columns: K1_eff = min(K1, ⌊rows / m_min⌋, distinct rows), one
/// supervoxel when K1_eff < 2.
fn cluster_rows(
    features: &Array2<f64>,
    depth: &[f64],
    entropy: &[f64],
    settings: &ValidSupervoxelSettings,
    seed: u64,
) -> Result<RowClusters, String> {
    let config = settings.settings();
    let rows = features.nrows();
    if rows == 0 {
        return Err("the lesion is empty".into());
    }
    let RowLabels {
        labels,
        count,
        k_effective,
        limit,
    } = label_rows(features.view(), config, seed).map_err(|e| e.to_string())?;

    let mut voxel_counts = vec![0usize; count];
    let mut means = Array2::<f64>::zeros((count, features.ncols()));
    let mut depth_sums = vec![0.0; count];
    let mut entropy_sums = vec![0.0; count];
    for (row, &label) in labels.iter().enumerate() {
        voxel_counts[label] += 1;
        for column in 0..features.ncols() {
            means[[label, column]] += features[[row, column]];
        }
        depth_sums[label] += depth[row];
        entropy_sums[label] += entropy[row];
    }
    for (mut row, &n) in means.rows_mut().into_iter().zip(&voxel_counts) {
        row.mapv_inplace(|sum| sum / n.max(1) as f64);
    }
    Ok(RowClusters {
        k_effective,
        limit,
        means,
        voxel_counts,
        depth_sums,
        entropy_sums,
        labels: labels.into_iter().map(|label| label as u32).collect(),
    })
}

#[cfg(test)]
mod tests;
