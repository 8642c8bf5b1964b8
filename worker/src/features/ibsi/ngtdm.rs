//! IBSI neighbourhood grey tone difference matrix (NGTDM) features, 3-D, Chebyshev
//! distance 1.
//!
//! For each ROI voxel with at least one of its 26 neighbours in the ROI, Ā is the mean
//! grey level of those neighbours. IBSI leaves out voxels without such neighbours.
//! With n_i such voxels of grey level i, N_vc = Σ n_i, p_i = n_i / N_vc, s_i = Σ |i − Ā|
//! over those voxels and N_p the number of levels with p_i > 0, the features (IBSI codes)
//! are: coarseness 1 / Σ p_i s_i (QCDE), contrast (Σ_i Σ_j p_i p_j (i − j)² / (N_p (N_p − 1)))
//! · Σ s_i / N_vc (65HE), busyness Σ p_i s_i / Σ_i Σ_j |i p_i − j p_j| (NQ30), complexity
//! Σ_i Σ_j |i − j| (p_i s_i + p_j s_j) / (p_i + p_j) / N_vc (HDEZ) and strength
//! Σ_i Σ_j (p_i + p_j)(i − j)² / Σ s_i (1X9X); double sums run over levels with p > 0.
//! Coarseness is 10⁶ when Σ p_i s_i = 0 (PyRadiomics' convention; IBSI leaves it open),
//! and the other features are 0 when their denominator is 0.

use super::aggregation::{self, Counted, SLICE_SUFFIXES};
use super::grey_levels::{RoiGrid, neighbour_offsets};

/// Feature names without prefix and aggregation suffix, in output order.
pub(super) const NAMES: [&str; 5] = [
    "coarseness",
    "contrast",
    "busyness",
    "complexity",
    "strength",
];

/// Computes the five NGTDM features, tagged `ngt_<name>_3D`, `_2D` and `_2_5D`.
pub(super) fn compute(grid: &RoiGrid) -> Vec<(String, f64)> {
    let n = grid.n_levels as usize;
    let mut output = super::tagged("ngt_", "_3D", NAMES, features(&difference_matrix(grid), n));

    let per_slice: Vec<Counted<Vec<f64>>> = grid
        .slices()
        .iter()
        .map(|slice| Counted {
            matrix: difference_matrix(slice),
            voxels: slice.voxel_count as f64,
        })
        .collect();
    let planar = aggregation::per_slice(&per_slice, |matrix, _| features(matrix, n));
    for (suffix, values) in SLICE_SUFFIXES.iter().zip(planar) {
        output.extend(super::tagged("ngt_", suffix, NAMES, values));
    }
    output
}

/// Returns n_i for i = 1 … N_g followed by s_i, one vector so that slices merge by adding.
fn difference_matrix(grid: &RoiGrid) -> Vec<f64> {
    let n = grid.n_levels as usize;
    let offsets = neighbour_offsets();
    let mut matrix = vec![0.0_f64; 2 * n];
    let (counts, differences) = matrix.split_at_mut(n);
    for ((i, j, k), &level) in grid.levels.indexed_iter() {
        if level == 0 {
            continue;
        }
        let mut sum = 0.0;
        let mut neighbours = 0.0;
        for offset in &offsets {
            let neighbour = grid.level_at([
                i as isize + offset[0],
                j as isize + offset[1],
                k as isize + offset[2],
            ]);
            if neighbour > 0 {
                sum += f64::from(neighbour);
                neighbours += 1.0;
            }
        }
        if neighbours == 0.0 {
            continue;
        }
        counts[level as usize - 1] += 1.0;
        differences[level as usize - 1] += (f64::from(level) - sum / neighbours).abs();
    }
    matrix
}

/// Computes the five features from n_i and s_i.
fn features(matrix: &[f64], n: usize) -> [f64; 5] {
    let (counts, differences) = matrix.split_at(n);

    let total: f64 = counts.iter().sum();
    let present: Vec<(f64, f64, f64)> = (0..n)
        .filter(|&index| counts[index] > 0.0)
        .map(|index| {
            (
                (index + 1) as f64,
                counts[index] / total,
                differences[index],
            )
        })
        .collect();
    let levels_present = present.len() as f64;
    let weighted: f64 = present.iter().map(|&(_, p, s)| p * s).sum();
    let difference_sum: f64 = present.iter().map(|&(_, _, s)| s).sum();

    let mut contrast_sum = 0.0;
    let mut busyness_denominator = 0.0;
    let mut complexity = 0.0;
    let mut strength_sum = 0.0;
    for &(i, p_i, s_i) in &present {
        for &(j, p_j, s_j) in &present {
            contrast_sum += p_i * p_j * (i - j).powi(2);
            busyness_denominator += (i * p_i - j * p_j).abs();
            complexity += (i - j).abs() * (p_i * s_i + p_j * s_j) / (p_i + p_j);
            strength_sum += (p_i + p_j) * (i - j).powi(2);
        }
    }

    let coarseness = if weighted > 0.0 { 1.0 / weighted } else { 1e6 };
    let contrast = if levels_present > 1.0 && total > 0.0 {
        contrast_sum / (levels_present * (levels_present - 1.0)) * difference_sum / total
    } else {
        0.0
    };
    let busyness = if busyness_denominator > 0.0 {
        weighted / busyness_denominator
    } else {
        0.0
    };
    let complexity = if total > 0.0 { complexity / total } else { 0.0 };
    let strength = if difference_sum > 0.0 {
        strength_sum / difference_sum
    } else {
        0.0
    };
    [coarseness, contrast, busyness, complexity, strength]
}
