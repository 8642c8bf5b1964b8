//! IBSI grey level co-occurrence matrix (GLCM) features, 3-D, Chebyshev distance 1.
//!
//! One symmetric matrix M_Δ per direction Δ of the 13: for every pair of ROI voxels v and
//! v + Δ, M_Δ[X(v), X(v+Δ)] and M_Δ[X(v+Δ), X(v)] each gain 1. `_3D_avg` (IBSI ITBB)
//! computes each feature per direction and averages the 13 values, as PyRadiomics does;
//! `_3D_comb` (IBSI IAZD) sums the 13 matrices first. A direction without pairs is left out
//! of the average. The 2-D and 2.5-D aggregations use the 4 in-plane directions per slice
//! (see the `aggregation` module).
//!
//! With p_ij = M_ij / Σ M, N_g grey levels, marginals p_i = Σ_j p_ij, μ = Σ i p_i (the
//! matrix is symmetric, so both marginals are equal), σ² = Σ (i − μ)² p_i, p_(i−j)(k) =
//! Σ_(|i−j|=k) p_ij, p_(i+j)(k) = Σ_(i+j=k) p_ij, and logarithms to base 2, the features are
//! (IBSI codes): joint maximum max p_ij (GYBY), joint average μ (60VM), joint variance
//! Σ (i − μ)² p_ij (UR99), joint entropy −Σ p_ij log p_ij (TU9B), difference average
//! μ_d = Σ k p_(i−j)(k) (TF7R), difference variance Σ (k − μ_d)² p_(i−j)(k) (D3YU),
//! difference entropy (NTRS), sum average μ_s = Σ k p_(i+j)(k) (ZGXS), sum variance (OEEB),
//! sum entropy (P6QZ), angular second moment Σ p_ij² (8ZQL), contrast Σ (i − j)² p_ij
//! (ACUI), dissimilarity Σ |i − j| p_ij (8S9J), inverse difference Σ p_ij / (1 + |i − j|)
//! (IB1Z), normalised inverse difference Σ p_ij / (1 + |i − j|/N_g) (NDRX), inverse
//! difference moment Σ p_ij / (1 + (i − j)²) (WF0Z), its normalised form with (i − j)²/N_g²
//! (1QCO), inverse variance Σ_(i≠j) p_ij / (i − j)² (E8JP), correlation
//! Σ (i − μ)(j − μ) p_ij / σ² (NI2N), autocorrelation Σ i j p_ij (QWB0), cluster tendency,
//! shade and prominence Σ (i + j − 2μ)^r p_ij for r = 2, 3, 4 (DG8W, 7NFM, AE86), and the
//! information correlations 1 (R8DG) (HXY − HXY1)/HX and 2 (JN9H) √(1 − e^(−2(HXY2 − HXY))),
//! with HX = −Σ p_i log p_i, HXY the joint entropy, HXY1 = −Σ p_ij log(p_i p_j) and
//! HXY2 = −Σ p_i p_j log(p_i p_j).

use super::aggregation::{Counted, DIRECTIONAL_SUFFIXES, directional};
use super::grey_levels::{DIRECTIONS, PLANAR_DIRECTIONS, RoiGrid};

/// Feature names without prefix and aggregation suffix, in output order.
pub(super) const NAMES: [&str; 25] = [
    "joint_max",
    "joint_avg",
    "joint_var",
    "joint_entr",
    "diff_avg",
    "diff_var",
    "diff_entr",
    "sum_avg",
    "sum_var",
    "sum_entr",
    "energy",
    "contrast",
    "dissimilarity",
    "inv_diff",
    "inv_diff_norm",
    "inv_diff_mom",
    "inv_diff_mom_norm",
    "inv_var",
    "corr",
    "auto_corr",
    "clust_tend",
    "clust_shade",
    "clust_prom",
    "info_corr1",
    "info_corr2",
];

/// Computes the 25 GLCM features in all six aggregations, tagged `cm_<name><suffix>` with
/// suffix `_3D_avg`, `_3D_comb`, `_2D_avg`, `_2D_comb`, `_2_5D_avg` or `_2_5D_comb`.
pub(super) fn compute(grid: &RoiGrid) -> Vec<(String, f64)> {
    let n = grid.n_levels as usize;
    let matrices: Vec<Vec<f64>> = DIRECTIONS
        .iter()
        .map(|&direction| cooccurrences(grid, direction))
        .filter(|matrix| matrix.iter().sum::<f64>() > 0.0)
        .collect();

    let mut average = [0.0; 25];
    for matrix in &matrices {
        for (sum, value) in average.iter_mut().zip(features(matrix, n)) {
            *sum += value / matrices.len() as f64;
        }
    }
    let mut merged = vec![0.0; n * n];
    for matrix in &matrices {
        for (total, count) in merged.iter_mut().zip(matrix) {
            *total += count;
        }
    }

    let mut output = super::tagged("cm_", "_3D_avg", NAMES, average);
    output.extend(super::tagged(
        "cm_",
        "_3D_comb",
        NAMES,
        features(&merged, n),
    ));

    let slices = grid.slices();
    let per_slice = slices.iter().map(|slice| {
        PLANAR_DIRECTIONS
            .iter()
            .map(|&direction| Counted {
                matrix: cooccurrences(slice, direction),
                voxels: slice.voxel_count as f64,
            })
            .collect()
    });
    let planar = directional(per_slice, |matrix, _| features(matrix, n));
    for (suffix, values) in DIRECTIONAL_SUFFIXES.iter().zip(planar) {
        output.extend(super::tagged("cm_", suffix, NAMES, values));
    }
    output
}

/// Counts the symmetric co-occurrences along one direction, row-major N_g × N_g.
fn cooccurrences(grid: &RoiGrid, direction: [isize; 3]) -> Vec<f64> {
    let n = grid.n_levels as usize;
    let mut matrix = vec![0.0; n * n];
    for ((i, j, k), &level) in grid.levels.indexed_iter() {
        if level == 0 {
            continue;
        }
        let neighbour = grid.level_at([
            i as isize + direction[0],
            j as isize + direction[1],
            k as isize + direction[2],
        ]);
        if neighbour == 0 {
            continue;
        }
        let (a, b) = (level as usize - 1, neighbour as usize - 1);
        matrix[a * n + b] += 1.0;
        matrix[b * n + a] += 1.0;
    }
    matrix
}

/// Computes the 25 features of one co-occurrence matrix, in the order of `NAMES`.
fn features(counts: &[f64], n: usize) -> [f64; 25] {
    let total: f64 = counts.iter().sum();
    let p: Vec<f64> = counts.iter().map(|count| count / total).collect();
    let at = |i: usize, j: usize| p[(i - 1) * n + (j - 1)];
    let levels = n as f64;
    let log = |x: f64| if x > 0.0 { x.log2() } else { 0.0 };

    let marginal: Vec<f64> = (1..=n).map(|i| (1..=n).map(|j| at(i, j)).sum()).collect();
    let mean: f64 = (1..=n).map(|i| i as f64 * marginal[i - 1]).sum();
    let variance: f64 = (1..=n)
        .map(|i| (i as f64 - mean).powi(2) * marginal[i - 1])
        .sum();

    let mut difference = vec![0.0; n];
    let mut sum = vec![0.0; 2 * n + 1];
    let mut f = [0.0_f64; 25];
    let mut hxy1 = 0.0;
    let mut hxy2 = 0.0;
    for i in 1..=n {
        for j in 1..=n {
            let pij = at(i, j);
            let (x, y) = (i as f64, j as f64);
            let delta = (x - y).abs();
            difference[i.abs_diff(j)] += pij;
            sum[i + j] += pij;
            let product = marginal[i - 1] * marginal[j - 1];
            hxy1 -= pij * log(product);
            hxy2 -= product * log(product);
            if pij == 0.0 {
                continue;
            }
            f[0] = f[0].max(pij);
            f[2] += (x - mean).powi(2) * pij;
            f[3] -= pij * pij.log2();
            f[10] += pij * pij;
            f[11] += delta * delta * pij;
            f[12] += delta * pij;
            f[13] += pij / (1.0 + delta);
            f[14] += pij / (1.0 + delta / levels);
            f[15] += pij / (1.0 + delta * delta);
            f[16] += pij / (1.0 + delta * delta / (levels * levels));
            if i != j {
                f[17] += pij / (delta * delta);
            }
            f[18] += (x - mean) * (y - mean) * pij;
            f[19] += x * y * pij;
            let cluster = x + y - 2.0 * mean;
            f[20] += cluster.powi(2) * pij;
            f[21] += cluster.powi(3) * pij;
            f[22] += cluster.powi(4) * pij;
        }
    }
    f[1] = mean;
    f[18] = if variance > 0.0 {
        f[18] / variance
    } else {
        0.0
    };

    let difference_mean: f64 = difference
        .iter()
        .enumerate()
        .map(|(k, q)| k as f64 * q)
        .sum();
    f[4] = difference_mean;
    f[5] = difference
        .iter()
        .enumerate()
        .map(|(k, q)| (k as f64 - difference_mean).powi(2) * q)
        .sum();
    f[6] = -difference.iter().map(|&q| q * log(q)).sum::<f64>();
    let sum_mean: f64 = sum.iter().enumerate().map(|(k, q)| k as f64 * q).sum();
    f[7] = sum_mean;
    f[8] = sum
        .iter()
        .enumerate()
        .map(|(k, q)| (k as f64 - sum_mean).powi(2) * q)
        .sum();
    f[9] = -sum.iter().map(|&q| q * log(q)).sum::<f64>();

    let hx = -marginal.iter().map(|&q| q * log(q)).sum::<f64>();
    let hxy = f[3];
    f[23] = if hx > 0.0 { (hxy - hxy1) / hx } else { 0.0 };
    f[24] = (1.0 - (-2.0 * (hxy2 - hxy)).exp()).max(0.0).sqrt();
    f
}
