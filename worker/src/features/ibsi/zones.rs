//! IBSI zone matrices: grey level size zone (GLSZM) and grey level distance zone (GLDZM)
//! features, 3-D (aggregation `_3D`, IBSI KOBO), 2-D and 2.5-D.
//!
//! A zone is a maximal 26-connected set of intensity-mask voxels with equal grey level.
//! GLSZM counts zones by grey level and size in voxels. GLDZM counts them by grey level and
//! distance. A voxel's distance to the ROI border is 1 plus the fewest 6-connected steps
//! from it to a voxel with a face neighbour outside the morphological mask, so border
//! voxels have distance 1. IBSI takes the distance map from the morphological mask
//! because re-segmentation may punch holes into the intensity mask. A zone's distance is
//! the smallest distance of its voxels. The image border counts as ROI border.
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

use std::collections::VecDeque;

use ndarray::{Array3, ArrayView3, s};

use super::aggregation::{self, Counted, SLICE_SUFFIXES};
use super::grey_levels::{RoiGrid, neighbour_offsets};
use super::size_matrix::{SizeMatrix, features, tag16};
use crate::mask::Roi;

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

/// Computes the 16 GLSZM features, tagged `szm_<name>_3D`, `_2D` and `_2_5D`.
pub(super) fn compute_glszm(grid: &RoiGrid) -> Vec<(String, f64)> {
    compute(grid, None, "szm_", GLSZM_NAMES)
}

/// Computes the 16 GLDZM features, tagged `dzm_<name>_3D`, `_2D` and `_2_5D`, with border
/// distances from `morphological` (on the image grid).
pub(super) fn compute_gldzm(grid: &RoiGrid, morphological: &Roi) -> Vec<(String, f64)> {
    let maps = DistanceMaps {
        volume: border_distances(morphological.mask.view(), false),
        planar: border_distances(morphological.mask.view(), true),
    };
    compute(grid, Some(&maps), "dzm_", GLDZM_NAMES)
}

/// Border distances of the morphological mask on the image grid, in 3-D and in the plane.
struct DistanceMaps {
    volume: Array3<usize>,
    planar: Array3<usize>,
}

impl DistanceMaps {
    /// Returns the distances of `grid`'s voxels: the map cropped to its box.
    fn crop(&self, grid: &RoiGrid, planar: bool) -> Array3<usize> {
        let map = if planar { &self.planar } else { &self.volume };
        let (size_i, size_j, size_k) = grid.levels.dim();
        let [i, j, k] = grid.offset;
        map.slice(s![i..i + size_i, j..j + size_j, k..k + size_k])
            .to_owned()
    }
}

/// Counts the zone matrix in 3-D and per slice and tags its features. With distance maps
/// the columns are zone distances (GLDZM), and otherwise zone sizes (GLSZM).
fn compute(
    grid: &RoiGrid,
    distances: Option<&DistanceMaps>,
    prefix: &str,
    names: [&str; 16],
) -> Vec<(String, f64)> {
    let volume = zone_matrix(grid, distances.map(|maps| maps.crop(grid, false)));
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
            matrix: zone_matrix(slice, distances.map(|maps| maps.crop(slice, true))),
            voxels: slice.voxel_count as f64,
        })
        .collect();
    let planar = aggregation::per_slice(&per_slice, features);
    for (suffix, values) in SLICE_SUFFIXES.iter().zip(planar) {
        output.extend(tag16(prefix, suffix, names, values));
    }
    output
}

/// Counts zones by grey level and by distance (with `distances`, on the grid's box) or by
/// size.
fn zone_matrix(grid: &RoiGrid, distances: Option<Array3<usize>>) -> SizeMatrix {
    let zones = find_zones(grid, distances.as_ref());
    let by_distance = distances.is_some();
    let column = |zone: &Zone| {
        if by_distance {
            zone.distance
        } else {
            zone.size
        }
    };
    let columns = zones.iter().map(column).max().unwrap_or(1);
    let mut matrix = SizeMatrix::zeros(grid.n_levels as usize, columns);
    for zone in &zones {
        matrix.add(zone.level, column(zone));
    }
    matrix
}

/// Labels the 26-connected zones of equal grey level by breadth-first search. A zone's
/// distance is the smallest of `distances` over its voxels, at least 1 (a voxel outside
/// the morphological mask counts as border), or 1 without distances.
fn find_zones(grid: &RoiGrid, distances: Option<&Array3<usize>>) -> Vec<Zone> {
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
            let distance = distances.map_or(1, |map| map[index].max(1));
            zone.distance = zone.distance.min(distance);
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

/// Returns each mask voxel's distance to the mask border (1 at the border), 0 outside.
/// `planar` uses only the 4 in-plane face neighbours.
fn border_distances(mask: ArrayView3<bool>, planar: bool) -> Array3<usize> {
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
    let (size_i, size_j, size_k) = mask.dim();
    let dims = [size_i as isize, size_j as isize, size_k as isize];
    let inside = |voxel: [isize; 3]| {
        (0..3).all(|axis| voxel[axis] >= 0 && voxel[axis] < dims[axis])
            && mask[voxel.map(|x| x as usize)]
    };
    let mut distances = Array3::from_elem(mask.dim(), 0_usize);
    let mut queue = VecDeque::new();
    for ((i, j, k), &member) in mask.indexed_iter() {
        if !member {
            continue;
        }
        let voxel = [i as isize, j as isize, k as isize];
        let on_border = faces
            .iter()
            .any(|face| !inside([0, 1, 2].map(|axis| voxel[axis] + face[axis])));
        if on_border {
            distances[[i, j, k]] = 1;
            queue.push_back(voxel);
        }
    }
    while let Some(voxel) = queue.pop_front() {
        let distance = distances[voxel.map(|x| x as usize)];
        for face in faces {
            let next = [0, 1, 2].map(|axis| voxel[axis] + face[axis]);
            if !inside(next) {
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
