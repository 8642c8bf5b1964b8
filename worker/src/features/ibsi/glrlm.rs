//! IBSI grey level run length matrix (GLRLM) features, 3-D.
//!
//! One matrix per direction Δ of the 13: a run is a maximal line of ROI voxels with equal
//! grey level along Δ, and r_ij counts runs of level i and length j. `_3D_avg` (ITBB)
//! averages each feature over the 13 directions, with N_v voxels each. `_3D_comb` (IAZD)
//! sums the matrices and takes N_v as 13 × the ROI voxels, so the run percentage stays a
//! fraction. The formulas are those of the `size_matrix` module with runs as
//! sizes (IBSI codes): SRE 22OV, LRE W4KF, LGRE V3SW, HGRE G3QZ, SRLGE HTZT, SRHGE GD3A,
//! LRLGE IVPO, LRHGE 3KUM, GLNU R5YN, GLNU normalised OVBL, RLNU W92Y, RLNU normalised
//! IC23, run percentage 9ZK5, grey level variance 8CE5, run length variance SXLW, run
//! entropy HJ9O. The 2-D and 2.5-D aggregations use the 4 in-plane directions per slice
//! (see the `aggregation` module), with the voxels of the slice, or of everything merged,
//! as N_v.

use super::aggregation::{Counted, DIRECTIONAL_SUFFIXES, directional};
use super::grey_levels::{DIRECTIONS, PLANAR_DIRECTIONS, RoiGrid};
use super::size_matrix::{SizeMatrix, features, tag16};

/// Feature names without prefix and aggregation suffix, in output order.
pub(super) const NAMES: [&str; 16] = [
    "sre",
    "lre",
    "lgre",
    "hgre",
    "srlge",
    "srhge",
    "lrlge",
    "lrhge",
    "glnu",
    "glnu_norm",
    "rlnu",
    "rlnu_norm",
    "r_perc",
    "gl_var",
    "rl_var",
    "rl_entr",
];

/// Computes the 16 GLRLM features in all six aggregations, tagged `rlm_<name><suffix>`
/// with the suffixes of the GLCM.
pub(super) fn compute(grid: &RoiGrid) -> Vec<(String, f64)> {
    let voxels = grid.voxel_count as f64;
    let matrices: Vec<SizeMatrix> = DIRECTIONS.iter().map(|&d| runs(grid, d)).collect();

    let mut average = [0.0; 17];
    let mut merged = SizeMatrix::zeros(grid.n_levels as usize, 1);
    for matrix in &matrices {
        for (sum, value) in average.iter_mut().zip(features(matrix, voxels)) {
            *sum += value / matrices.len() as f64;
        }
        merged.merge(matrix);
    }
    let combined = features(&merged, voxels * matrices.len() as f64);

    let mut output = tag16("rlm_", "_3D_avg", NAMES, average);
    output.extend(tag16("rlm_", "_3D_comb", NAMES, combined));

    let slices = grid.slices();
    let per_slice = slices.iter().map(|slice| {
        PLANAR_DIRECTIONS
            .iter()
            .map(|&direction| Counted {
                matrix: runs(slice, direction),
                voxels: slice.voxel_count as f64,
            })
            .collect()
    });
    let planar = directional(per_slice, features);
    for (suffix, values) in DIRECTIONAL_SUFFIXES.iter().zip(planar) {
        output.extend(tag16("rlm_", suffix, NAMES, values));
    }
    output
}

/// Counts the runs along one direction.
fn runs(grid: &RoiGrid, direction: [isize; 3]) -> SizeMatrix {
    let (a, b, c) = grid.levels.dim();
    let longest = a.max(b).max(c);
    let mut matrix = SizeMatrix::zeros(grid.n_levels as usize, longest);
    for ((i, j, k), &level) in grid.levels.indexed_iter() {
        if level == 0 {
            continue;
        }
        let start = [i as isize, j as isize, k as isize];
        let step = |index: [isize; 3], sign: isize| {
            [0, 1, 2].map(|axis| index[axis] + sign * direction[axis])
        };
        // Only the first voxel of a run starts counting it.
        if grid.level_at(step(start, -1)) == level {
            continue;
        }
        let mut length = 1;
        let mut next = step(start, 1);
        while grid.level_at(next) == level {
            length += 1;
            next = step(next, 1);
        }
        matrix.add(level, length);
    }
    matrix
}
