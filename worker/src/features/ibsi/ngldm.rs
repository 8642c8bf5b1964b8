//! IBSI neighbouring grey level dependence matrix (NGLDM) features, 3-D, Chebyshev
//! distance 1. PyRadiomics calls this matrix GLDM.
//!
//! For each ROI voxel of grey level i, the dependence count k is the number of its 26
//! neighbours inside the ROI whose grey level differs from i by at most the coarseness α.
//! s_ij counts voxels of level i with j = k + 1, so that j starts at 1. The features are
//! those of the `size_matrix` module with j as the size index, N_v the ROI voxels, plus
//! the dependence count energy Σ p_ij² (IBSI codes): LDE SODN, HDE IMOQ, LGCE TL9H, HGCE
//! OAE7, LDLGE EQ3F, LDHGE JA6D, HDLGE NBZI, HDHGE 9QMG, GLNU FP8K, GLNU normalised 5SPA,
//! DCNU Z87G, DCNU normalised OKJI, dependence count percentage 6XV8, grey level variance
//! 1PFV, dependence count variance DNX2, dependence count entropy FCBV, dependence count
//! energy CAS9.

use super::aggregation::{self, Counted, SLICE_SUFFIXES};
use super::grey_levels::{RoiGrid, neighbour_offsets};
use super::size_matrix::{SizeMatrix, features};

/// Feature names without prefix and aggregation suffix, in output order.
pub(super) const NAMES: [&str; 17] = [
    "lde",
    "hde",
    "lgce",
    "hgce",
    "ldlge",
    "ldhge",
    "hdlge",
    "hdhge",
    "glnu",
    "glnu_norm",
    "dcnu",
    "dcnu_norm",
    "dc_perc",
    "gl_var",
    "dc_var",
    "dc_entr",
    "dc_energy",
];

/// Computes the 17 NGLDM features with coarseness `alpha`, tagged `ngl_<name>_3D`, `_2D`
/// and `_2_5D`; the 2-D matrices count the 8 in-plane neighbours.
pub(super) fn compute(grid: &RoiGrid, alpha: u32) -> Vec<(String, f64)> {
    let volume = dependence_matrix(grid, alpha);
    let mut output = super::tagged(
        "ngl_",
        "_3D",
        NAMES,
        features(&volume, grid.voxel_count as f64),
    );

    let per_slice: Vec<Counted<SizeMatrix>> = grid
        .slices()
        .iter()
        .map(|slice| Counted {
            matrix: dependence_matrix(slice, alpha),
            voxels: slice.voxel_count as f64,
        })
        .collect();
    let planar = aggregation::per_slice(&per_slice, features);
    for (suffix, values) in SLICE_SUFFIXES.iter().zip(planar) {
        output.extend(super::tagged("ngl_", suffix, NAMES, values));
    }
    output
}

/// Counts ROI voxels by grey level and dependence count + 1.
fn dependence_matrix(grid: &RoiGrid, alpha: u32) -> SizeMatrix {
    let offsets = neighbour_offsets();
    let mut matrix = SizeMatrix::zeros(grid.n_levels as usize, offsets.len() + 1);
    for ((i, j, k), &level) in grid.levels.indexed_iter() {
        if level == 0 {
            continue;
        }
        let dependent = offsets
            .iter()
            .filter(|offset| {
                let neighbour = grid.level_at([
                    i as isize + offset[0],
                    j as isize + offset[1],
                    k as isize + offset[2],
                ]);
                neighbour > 0 && neighbour.abs_diff(level) <= alpha
            })
            .count();
        matrix.add(level, dependent + 1);
    }
    matrix
}
