//! IBSI zone matrices: grey level size zone (GLSZM) and grey level distance zone (GLDZM)
//! features, 3-D (aggregation `_3D`, IBSI KOBO).
//!
//! A zone is a maximal 26-connected set of ROI voxels with equal grey level. GLSZM counts
//! zones by grey level and size in voxels. GLDZM counts them by grey level and distance:
//! a voxel's distance to the ROI border is 1 plus the fewest 6-connected steps from it to
//! a voxel with a face neighbour outside the ROI (so border voxels have distance 1), and
//! a zone's distance is the smallest distance of its voxels. The image border counts as
//! ROI border.
//!
//! The features are those of the `size_matrix` module with zone size or distance as the
//! size index (IBSI codes). GLSZM: SZE 5QRC, LZE 48P8, LGZE XMSY, HGZE 5GN9, SZLGE 5RAI,
//! SZHGE HW1V, LZLGE YH51, LZHGE J17V, GLNU JNSA, GLNU normalised Y1RO, ZSNU 4JP3, ZSNU
//! normalised VB3A, zone percentage P30P, grey level variance BYLV, zone size variance
//! 3NSA, zone size entropy GU8N. GLDZM: SDE 0GBI, LDE MB4I, LGZE S1RA, HGZE K26C, SDLGE
//! RUVG, SDHGE DKNJ, LDLGE A7WM, LDHGE KLTH, GLNU VFT7, GLNU normalised 7HP3, ZDNU V294,
//! ZDNU normalised IATH, zone percentage VIWW, grey level variance QK93, zone distance
//! variance 7WT1, zone distance entropy GBDU.
//!
//! NOTE: the distance map is taken from the intensity mask. IBSI takes it from the
//! morphological mask, which differs only after re-segmentation, and this module does not
//! receive the two masks separately.

use std::collections::VecDeque;

use ndarray::Array3;

use super::grey_levels::{RoiGrid, neighbour_offsets};
use super::size_matrix::{SizeMatrix, features, tag16};

const GLSZM_NAMES: [&str; 16] = [
    "sze",
    "lze",
    "lgze",
    "hgze",
    "szlge",
    "szhge",
    "lzlge",
    "lzhge",
    "glnu",
    "glnu_norm",
    "zsnu",
    "zsnu_norm",
    "z_perc",
    "gl_var",
    "zs_var",
    "zs_entr",
];

const GLDZM_NAMES: [&str; 16] = [
    "sde",
    "lde",
    "lgze",
    "hgze",
    "sdlge",
    "sdhge",
    "ldlge",
    "ldhge",
    "glnu",
    "glnu_norm",
    "zdnu",
    "zdnu_norm",
    "z_perc",
    "gl_var",
    "zd_var",
    "zd_entr",
];

/// One zone: its grey level, voxel count and smallest border distance.
struct Zone {
    level: u32,
    size: usize,
    distance: usize,
}

/// Computes the 16 GLSZM features, tagged `szm_<name>_3D`.
pub(super) fn compute_glszm(grid: &RoiGrid) -> Vec<(String, f64)> {
    let zones = find_zones(grid);
    let largest = zones.iter().map(|zone| zone.size).max().unwrap_or(1);
    let mut matrix = SizeMatrix::zeros(grid.n_levels as usize, largest);
    for zone in &zones {
        matrix.add(zone.level, zone.size);
    }
    tag16(
        "szm_",
        "_3D",
        GLSZM_NAMES,
        features(&matrix, grid.voxel_count as f64),
    )
}

/// Computes the 16 GLDZM features, tagged `dzm_<name>_3D`.
pub(super) fn compute_gldzm(grid: &RoiGrid) -> Vec<(String, f64)> {
    let zones = find_zones(grid);
    let farthest = zones.iter().map(|zone| zone.distance).max().unwrap_or(1);
    let mut matrix = SizeMatrix::zeros(grid.n_levels as usize, farthest);
    for zone in &zones {
        matrix.add(zone.level, zone.distance);
    }
    tag16(
        "dzm_",
        "_3D",
        GLDZM_NAMES,
        features(&matrix, grid.voxel_count as f64),
    )
}

/// Labels the 26-connected zones of equal grey level by breadth-first search.
fn find_zones(grid: &RoiGrid) -> Vec<Zone> {
    let distances = border_distances(grid);
    let offsets = neighbour_offsets();
    let mut visited = Array3::from_elem(grid.levels.dim(), false);
    let mut zones = Vec::new();
    let mut queue = VecDeque::new();
    for ((i, j, k), &level) in grid.levels.indexed_iter() {
        if level == 0 || visited[[i, j, k]] {
            continue;
        }
        visited[[i, j, k]] = true;
        queue.push_back([i as isize, j as isize, k as isize]);
        let mut zone = Zone {
            level,
            size: 0,
            distance: usize::MAX,
        };
        while let Some(voxel) = queue.pop_front() {
            let index = voxel.map(|x| x as usize);
            zone.size += 1;
            zone.distance = zone.distance.min(distances[index]);
            for offset in &offsets {
                let next = [0, 1, 2].map(|axis| voxel[axis] + offset[axis]);
                if grid.level_at(next) != level {
                    continue;
                }
                let next_index = next.map(|x| x as usize);
                if !visited[next_index] {
                    visited[next_index] = true;
                    queue.push_back(next);
                }
            }
        }
        zones.push(zone);
    }
    zones
}

/// Returns each ROI voxel's distance to the ROI border (1 at the border), 0 outside.
fn border_distances(grid: &RoiGrid) -> Array3<usize> {
    let faces: [[isize; 3]; 6] = [
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, 0, 1],
        [0, 0, -1],
    ];
    let mut distances = Array3::from_elem(grid.levels.dim(), 0_usize);
    let mut queue = VecDeque::new();
    for ((i, j, k), &level) in grid.levels.indexed_iter() {
        if level == 0 {
            continue;
        }
        let voxel = [i as isize, j as isize, k as isize];
        let on_border = faces
            .iter()
            .any(|face| grid.level_at([0, 1, 2].map(|axis| voxel[axis] + face[axis])) == 0);
        if on_border {
            distances[[i, j, k]] = 1;
            queue.push_back(voxel);
        }
    }
    while let Some(voxel) = queue.pop_front() {
        let distance = distances[voxel.map(|x| x as usize)];
        for face in &faces {
            let next = [0, 1, 2].map(|axis| voxel[axis] + face[axis]);
            if grid.level_at(next) == 0 {
                continue;
            }
            let next_index = next.map(|x| x as usize);
            if distances[next_index] == 0 {
                distances[next_index] = distance + 1;
                queue.push_back(next);
            }
        }
    }
    distances
}
