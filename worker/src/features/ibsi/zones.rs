//! IBSI zone matrices: grey level size zone (GLSZM) and grey level distance zone (GLDZM)
//! features, 3-D (aggregation `_3D`, IBSI KOBO), 2-D and 2.5-D.
//!
//! A zone is a maximal 26-connected set of ROI voxels with equal grey level. GLSZM counts
//! zones by grey level and size in voxels. GLDZM counts them by grey level and distance.
//! A voxel's distance to the ROI border is 1 plus the fewest 6-connected steps from it to
//! a voxel with a face neighbour outside the ROI, so border voxels have distance 1. A
//! zone's distance is the smallest distance of its voxels. The image border counts as
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
//! The 2-D and 2.5-D aggregations count zones per slice (8-connected in the plane) with
//! border distances in the plane (4-connected steps), see the `aggregation` module.
//!
//! NOTE: the distance map is taken from the intensity mask. IBSI takes it from the
//! morphological mask, which differs only after re-segmentation, and this module does not
//! receive the two masks separately.

use std::collections::VecDeque;

use ndarray::Array3;

use super::aggregation::{self, Counted, SLICE_SUFFIXES};
use super::grey_levels::{RoiGrid, neighbour_offsets};
use super::size_matrix::{SizeMatrix, features, tag16};

/// GLSZM feature names without prefix and suffix, in output order.
pub(super) const GLSZM_NAMES: [&str; 16] = [
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

/// GLDZM feature names without prefix and suffix, in output order.
pub(super) const GLDZM_NAMES: [&str; 16] = [
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

/// Column index of a zone matrix.
#[derive(Clone, Copy)]
enum ZoneMatrix {
    Size,
    Distance,
}

/// Computes the 16 GLSZM features, tagged `szm_<name>_3D`, `_2D` and `_2_5D`.
pub(super) fn compute_glszm(grid: &RoiGrid) -> Vec<(String, f64)> {
    compute(grid, ZoneMatrix::Size, "szm_", GLSZM_NAMES)
}

/// Computes the 16 GLDZM features, tagged `dzm_<name>_3D`, `_2D` and `_2_5D`.
pub(super) fn compute_gldzm(grid: &RoiGrid) -> Vec<(String, f64)> {
    compute(grid, ZoneMatrix::Distance, "dzm_", GLDZM_NAMES)
}

/// Counts the zone matrix in 3-D and per slice and tags its features.
fn compute(
    grid: &RoiGrid,
    kind: ZoneMatrix,
    prefix: &str,
    names: [&str; 16],
) -> Vec<(String, f64)> {
    let volume = zone_matrix(grid, kind, false);
    let mut output = tag16(
        prefix,
        "_3D",
        names,
        features(&volume, grid.voxel_count as f64),
    );

    let per_slice: Vec<Counted<SizeMatrix>> = grid
        .slices()
        .iter()
        .map(|slice| Counted {
            matrix: zone_matrix(slice, kind, true),
            voxels: slice.voxel_count as f64,
        })
        .collect();
    let planar = aggregation::per_slice(&per_slice, features);
    for (suffix, values) in SLICE_SUFFIXES.iter().zip(planar) {
        output.extend(tag16(prefix, suffix, names, values));
    }
    output
}

/// Counts zones by grey level and size or distance. `planar` measures border distances in
/// the slice (4-connected steps), for the 2-D aggregations.
fn zone_matrix(grid: &RoiGrid, kind: ZoneMatrix, planar: bool) -> SizeMatrix {
    let zones = find_zones(grid, planar);
    let column = |zone: &Zone| match kind {
        ZoneMatrix::Size => zone.size,
        ZoneMatrix::Distance => zone.distance,
    };
    let columns = zones.iter().map(column).max().unwrap_or(1);
    let mut matrix = SizeMatrix::zeros(grid.n_levels as usize, columns);
    for zone in &zones {
        matrix.add(zone.level, column(zone));
    }
    matrix
}

/// Labels the 26-connected zones of equal grey level by breadth-first search.
fn find_zones(grid: &RoiGrid, planar: bool) -> Vec<Zone> {
    let distances = border_distances(grid, planar);
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
/// `planar` uses only the 4 in-plane face neighbours.
fn border_distances(grid: &RoiGrid, planar: bool) -> Array3<usize> {
    let all_faces: [[isize; 3]; 6] = [
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, 0, 1],
        [0, 0, -1],
    ];
    let faces = if planar {
        &all_faces[..4]
    } else {
        &all_faces[..]
    };
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
        for face in faces {
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
