use super::super::gldm::test_volumes::*;
use super::*;
use crate::features::test_support::{assert_close, assert_features, feature, input};
use ndarray::Array3;
use std::collections::VecDeque;

/// Relative tolerance against PyRadiomics. The matrix is identical, and the features
/// differ only in summation order (numpy sums whole arrays pairwise), which moves the
/// last few bits.
const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// Relative tolerance for values derived by hand: they are exact fractions, and the
/// code rounds each of its few operations once.
const ANALYTIC_RELATIVE_TOLERANCE: f64 = 1e-15;

/// Relative tolerance between the fast features and the plain reference below.
const REFERENCE_IMPLEMENTATION_TOLERANCE: f64 = 1e-13;

/// Builds the dense GLSZM like PyRadiomics, P[i − 1][j − 1] with N_p columns, labelling
/// zones by a breadth-first search over coordinates with bounds tests.
fn reference_matrix(levels: &Array3<u32>) -> Vec<Vec<u64>> {
    let (n_i, n_j, n_k) = levels.dim();
    let voxel_count = levels.iter().filter(|&&level| level > 0).count();
    let max_level = levels.iter().copied().max().unwrap_or(0) as usize;
    let mut matrix = vec![vec![0_u64; voxel_count]; max_level];
    let mut visited = Array3::from_elem(levels.dim(), false);
    for ((i, j, k), &level) in levels.indexed_iter() {
        if level == 0 || visited[[i, j, k]] {
            continue;
        }
        visited[[i, j, k]] = true;
        let mut queue = VecDeque::from([[i, j, k]]);
        let mut size = 0;
        while let Some([ci, cj, ck]) = queue.pop_front() {
            size += 1;
            for di in -1_i64..=1 {
                for dj in -1_i64..=1 {
                    for dk in -1_i64..=1 {
                        let (ni, nj, nk) = (ci as i64 + di, cj as i64 + dj, ck as i64 + dk);
                        let inside = (0..n_i as i64).contains(&ni)
                            && (0..n_j as i64).contains(&nj)
                            && (0..n_k as i64).contains(&nk);
                        if !inside {
                            continue;
                        }
                        let neighbour = [ni as usize, nj as usize, nk as usize];
                        if levels[neighbour] == level && !visited[neighbour] {
                            visited[neighbour] = true;
                            queue.push_back(neighbour);
                        }
                    }
                }
            }
        }
        matrix[level as usize - 1][size - 1] += 1;
    }
    matrix
}

/// Returns the cells of a dense GLSZM in the fast path's order.
fn dense_to_cells(dense: &[Vec<u64>]) -> Vec<ZoneCell> {
    let mut cells = Vec::new();
    for (level_index, row) in dense.iter().enumerate() {
        for (size_index, &count) in row.iter().enumerate() {
            if count > 0 {
                cells.push(ZoneCell {
                    size: size_index + 1,
                    level: (level_index + 1) as u32,
                    count,
                });
            }
        }
    }
    cells.sort_by_key(|cell| (cell.size, cell.level));
    cells
}

/// Evaluates the features the way PyRadiomics' numpy code does: delete empty rows and
/// columns of the dense matrix, then apply each formula to the whole matrix.
fn reference_features(dense: &[Vec<u64>]) -> Vec<(&'static str, f64)> {
    let rows: Vec<usize> = (0..dense.len())
        .filter(|&r| dense[r].iter().any(|&c| c > 0))
        .collect();
    let width = dense.first().map_or(0, Vec::len);
    let columns: Vec<usize> = (0..width)
        .filter(|&c| rows.iter().any(|&r| dense[r][c] > 0))
        .collect();
    let cell = |r: usize, c: usize| dense[r][c] as f64;
    let i = |r: usize| (r + 1) as f64;
    let j = |c: usize| (c + 1) as f64;
    let p_g: Vec<f64> = rows
        .iter()
        .map(|&r| columns.iter().map(|&c| cell(r, c)).sum())
        .collect();
    let p_s: Vec<f64> = columns
        .iter()
        .map(|&c| rows.iter().map(|&r| cell(r, c)).sum())
        .collect();
    let n_z: f64 = p_g.iter().sum();
    let n_p: f64 = columns.iter().zip(&p_s).map(|(&c, &p)| p * j(c)).sum();

    let sum_s = |f: &dyn Fn(usize, f64) -> f64| -> f64 {
        columns.iter().zip(&p_s).map(|(&c, &p)| f(c, p)).sum()
    };
    let sum_g = |f: &dyn Fn(usize, f64) -> f64| -> f64 {
        rows.iter().zip(&p_g).map(|(&r, &p)| f(r, p)).sum()
    };
    let sum_all = |f: &dyn Fn(usize, usize, f64) -> f64| -> f64 {
        rows.iter()
            .flat_map(|&r| columns.iter().map(move |&c| (r, c)))
            .map(|(r, c)| f(r, c, cell(r, c)))
            .sum()
    };
    let mean_i = sum_g(&|r, p| p / n_z * i(r));
    let mean_j = sum_s(&|c, p| p / n_z * j(c));
    vec![
        ("SmallAreaEmphasis", sum_s(&|c, p| p / (j(c) * j(c))) / n_z),
        ("LargeAreaEmphasis", sum_s(&|c, p| p * j(c) * j(c)) / n_z),
        ("GrayLevelNonUniformity", sum_g(&|_, p| p * p) / n_z),
        (
            "GrayLevelNonUniformityNormalized",
            sum_g(&|_, p| p * p) / (n_z * n_z),
        ),
        ("SizeZoneNonUniformity", sum_s(&|_, p| p * p) / n_z),
        (
            "SizeZoneNonUniformityNormalized",
            sum_s(&|_, p| p * p) / (n_z * n_z),
        ),
        ("ZonePercentage", n_z / n_p),
        (
            "GrayLevelVariance",
            sum_g(&|r, p| p / n_z * (i(r) - mean_i).powi(2)),
        ),
        (
            "ZoneVariance",
            sum_s(&|c, p| p / n_z * (j(c) - mean_j).powi(2)),
        ),
        (
            "ZoneEntropy",
            -sum_all(&|_, _, p| p / n_z * (p / n_z + f64::EPSILON).log2()),
        ),
        (
            "LowGrayLevelZoneEmphasis",
            sum_g(&|r, p| p / (i(r) * i(r))) / n_z,
        ),
        (
            "HighGrayLevelZoneEmphasis",
            sum_g(&|r, p| p * i(r) * i(r)) / n_z,
        ),
        (
            "SmallAreaLowGrayLevelEmphasis",
            sum_all(&|r, c, p| p / (i(r).powi(2) * j(c).powi(2))) / n_z,
        ),
        (
            "SmallAreaHighGrayLevelEmphasis",
            sum_all(&|r, c, p| p * i(r).powi(2) / j(c).powi(2)) / n_z,
        ),
        (
            "LargeAreaLowGrayLevelEmphasis",
            sum_all(&|r, c, p| p * j(c).powi(2) / i(r).powi(2)) / n_z,
        ),
        (
            "LargeAreaHighGrayLevelEmphasis",
            sum_all(&|r, c, p| p * i(r).powi(2) * j(c).powi(2)) / n_z,
        ),
    ]
}

#[test]
fn feature_names_match_output_order() {
    let features = compute(&input(scattered_levels()));
    let names: Vec<&str> = features.iter().map(|&(name, _)| name).collect();
    assert_eq!(names, FEATURE_NAMES);
}

#[test]
fn fast_path_matches_reference_implementation() {
    let volumes = [
        ("scattered", scattered_levels()),
        ("blocky", blocky_levels()),
        ("plane", plane_levels()),
        ("two halves", two_halves_levels()),
    ];
    for (label, levels) in &volumes {
        let fast = size_zone_matrix(&input(levels.clone()));
        let dense = reference_matrix(levels);
        assert_eq!(
            fast.cells,
            dense_to_cells(&dense),
            "{label}: GLSZM differs from the reference"
        );
        let features = matrix_features(&fast);
        for ((name, value), (_, expected)) in features.iter().zip(reference_features(&dense)) {
            assert_close(
                &format!("{label} {name}"),
                *value,
                expected,
                REFERENCE_IMPLEMENTATION_TOLERANCE,
            );
        }
    }
}

/// Returns a 9 × 8 × 7 volume of pseudo-random levels 1 and 2 (a linear congruential
/// generator seeded with `seed`) with about an eighth of the voxels outside the ROI, so
/// that zones are large, branched and touch along edges and corners.
fn random_two_level_volume(seed: u64) -> Array3<u32> {
    let mut state = seed;
    Array3::from_shape_fn((9, 8, 7), |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        match state >> 60 {
            0 | 1 => 0,
            draw if draw % 2 == 0 => 1,
            _ => 2,
        }
    })
}

#[test]
fn random_volumes_match_reference_labelling() {
    for seed in 1..=20 {
        let levels = random_two_level_volume(seed);
        let fast = size_zone_matrix(&input(levels.clone()));
        let dense = reference_matrix(&levels);
        assert_eq!(
            fast.cells,
            dense_to_cells(&dense),
            "seed {seed}: GLSZM differs from the reference"
        );
    }
}

/// Reference values: PyRadiomics 3.1.4 (pyradiomics-bhklab, numpy 2.4.6, SimpleITK
/// 2.5.7), `RadiomicsFeatureExtractor` with binWidth 1 and otherwise default settings,
/// only the glszm class enabled. Its input was a SimpleITK float64 image holding the grey
/// levels of `scattered_levels` (the ROI's lowest level is 1, so binWidth 1 keeps each
/// level) and the mask level > 0. Values printed with `repr`.
#[test]
fn scattered_volume_matches_pyradiomics() {
    let features = compute(&input(scattered_levels()));
    assert_features(
        "scattered",
        &features,
        &SCATTERED_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Reference values: as `scattered_volume_matches_pyradiomics`, for `blocky_levels`.
#[test]
fn blocky_volume_matches_pyradiomics() {
    let features = compute(&input(blocky_levels()));
    assert_features(
        "blocky",
        &features,
        &BLOCKY_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Reference values: as `scattered_volume_matches_pyradiomics`, for the one-voxel-thick
/// `plane_levels` (an image of 6 × 5 × 1 voxels).
#[test]
fn one_voxel_thick_roi_matches_pyradiomics() {
    let features = compute(&input(plane_levels()));
    assert_features(
        "plane",
        &features,
        &PLANE_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Two zones of 8 voxels, levels 1 and 2: P(1, 8) = P(2, 8) = 1.
#[test]
fn two_zones_match_analytic_values() {
    let features = compute(&input(two_halves_levels()));
    let expected = [
        ("SmallAreaEmphasis", 1.0 / 64.0),
        ("LargeAreaEmphasis", 64.0),
        ("GrayLevelNonUniformity", 1.0),
        ("GrayLevelNonUniformityNormalized", 0.5),
        ("SizeZoneNonUniformity", 2.0),
        ("SizeZoneNonUniformityNormalized", 1.0),
        ("ZonePercentage", 2.0 / 16.0),
        ("GrayLevelVariance", 0.25),
        ("ZoneVariance", 0.0),
        ("LowGrayLevelZoneEmphasis", (1.0 + 0.25) / 2.0),
        ("HighGrayLevelZoneEmphasis", (1.0 + 4.0) / 2.0),
        ("SmallAreaLowGrayLevelEmphasis", (1.0 + 0.25) / 2.0 / 64.0),
        ("SmallAreaHighGrayLevelEmphasis", (1.0 + 4.0) / 2.0 / 64.0),
        ("LargeAreaLowGrayLevelEmphasis", (1.0 + 0.25) / 2.0 * 64.0),
        ("LargeAreaHighGrayLevelEmphasis", (1.0 + 4.0) / 2.0 * 64.0),
    ];
    for (name, value) in expected {
        assert_close(
            name,
            feature(&features, name),
            value,
            ANALYTIC_RELATIVE_TOLERANCE,
        );
    }
    // Two cells of probability 1/2: 1 bit, less the ε inside the logarithm.
    let entropy = -(0.5_f64 + f64::EPSILON).log2();
    assert_close(
        "ZoneEntropy",
        feature(&features, "ZoneEntropy"),
        entropy,
        ANALYTIC_RELATIVE_TOLERANCE,
    );
}

/// Voxels of equal level that touch only at a corner form one zone (26-connectivity);
/// a one-voxel gap separates them.
#[test]
fn corner_contact_joins_zones() {
    let mut levels = Array3::zeros((3, 3, 3));
    levels[[0, 0, 0]] = 1;
    levels[[1, 1, 1]] = 1;
    levels[[2, 2, 2]] = 1;
    let joined = size_zone_matrix(&input(levels));
    assert_eq!(
        joined.cells,
        [ZoneCell {
            size: 3,
            level: 1,
            count: 1
        }]
    );

    let mut apart = Array3::zeros((4, 1, 1));
    apart[[0, 0, 0]] = 1;
    apart[[3, 0, 0]] = 1;
    assert_eq!(
        size_zone_matrix(&input(apart)).cells,
        [ZoneCell {
            size: 1,
            level: 1,
            count: 2
        }]
    );
}

/// A flat, connected ROI is one zone: ZoneEntropy is −log₂(1 + ε), as in PyRadiomics.
#[test]
fn flat_roi_is_one_zone() {
    let mut levels = Array3::from_elem((4, 3, 3), 3_u32);
    levels[[0, 0, 0]] = 0;
    let features = compute(&input(levels));
    assert_eq!(
        feature(&features, "ZoneEntropy"),
        -(1.0 + f64::EPSILON).log2()
    );
    assert_eq!(feature(&features, "GrayLevelVariance"), 0.0);
    assert_eq!(feature(&features, "ZoneVariance"), 0.0);
    assert_eq!(feature(&features, "ZonePercentage"), 1.0 / 35.0);
    assert_eq!(feature(&features, "LargeAreaEmphasis"), 35.0 * 35.0);
    assert_eq!(feature(&features, "HighGrayLevelZoneEmphasis"), 9.0);
}

/// A 100 × 100 × 70 flat ROI is one zone of 700,000 voxels. The flood fill keeps its
/// stack on the heap, so this neither overflows nor allocates a dense row of that width.
#[test]
fn large_flat_roi_is_one_zone() {
    let levels = Array3::from_elem((100, 100, 70), 1_u32);
    let matrix = size_zone_matrix(&input(levels));
    assert_eq!(
        matrix.cells,
        [ZoneCell {
            size: 700_000,
            level: 1,
            count: 1
        }]
    );
}

#[test]
fn empty_roi_returns_nan() {
    let features = compute(&input(Array3::zeros((2, 2, 2))));
    assert_eq!(features.len(), FEATURE_NAMES.len());
    assert!(features.iter().all(|&(_, value)| value.is_nan()));
}

const SCATTERED_PYRADIOMICS: [(&str, f64); 16] = [
    ("SmallAreaEmphasis", 0.5076506062766818),
    ("LargeAreaEmphasis", 32.214285714285715),
    ("GrayLevelNonUniformity", 5.928571428571429),
    ("GrayLevelNonUniformityNormalized", 0.21173469387755103),
    ("SizeZoneNonUniformity", 7.5),
    ("SizeZoneNonUniformityNormalized", 0.26785714285714285),
    ("ZonePercentage", 0.2916666666666667),
    ("GrayLevelVariance", 5.646683673469388),
    ("ZoneVariance", 20.459183673469386),
    ("ZoneEntropy", 3.950212064914741),
    ("LowGrayLevelZoneEmphasis", 0.24888645934564305),
    ("HighGrayLevelZoneEmphasis", 23.107142857142858),
    ("SmallAreaLowGrayLevelEmphasis", 0.12397321660603648),
    ("SmallAreaHighGrayLevelEmphasis", 12.46985985782692),
    ("LargeAreaLowGrayLevelEmphasis", 16.283669420149014),
    ("LargeAreaHighGrayLevelEmphasis", 332.39285714285717),
];

const BLOCKY_PYRADIOMICS: [(&str, f64); 16] = [
    ("SmallAreaEmphasis", 0.0004845382427655434),
    ("LargeAreaEmphasis", 2092.3333333333335),
    ("GrayLevelNonUniformity", 1.0),
    ("GrayLevelNonUniformityNormalized", 0.3333333333333333),
    ("SizeZoneNonUniformity", 1.0),
    ("SizeZoneNonUniformityNormalized", 0.3333333333333333),
    ("ZonePercentage", 0.021897810218978103),
    ("GrayLevelVariance", 0.6666666666666666),
    ("ZoneVariance", 6.888888888888888),
    ("ZoneEntropy", 1.5849625007211552),
    ("LowGrayLevelZoneEmphasis", 0.4537037037037037),
    ("HighGrayLevelZoneEmphasis", 4.666666666666667),
    ("SmallAreaLowGrayLevelEmphasis", 0.00021421406371120562),
    ("SmallAreaHighGrayLevelEmphasis", 0.002208839074209232),
    ("LargeAreaLowGrayLevelEmphasis", 968.6666666666666),
    ("LargeAreaHighGrayLevelEmphasis", 10000.333333333334),
];

const PLANE_PYRADIOMICS: [(&str, f64); 16] = [
    ("SmallAreaEmphasis", 0.8239756944444444),
    ("LargeAreaEmphasis", 8.625),
    ("GrayLevelNonUniformity", 4.125),
    ("GrayLevelNonUniformityNormalized", 0.2578125),
    ("SizeZoneNonUniformity", 10.75),
    ("SizeZoneNonUniformityNormalized", 0.671875),
    ("ZonePercentage", 0.5333333333333333),
    ("GrayLevelVariance", 1.37109375),
    ("ZoneVariance", 5.109375),
    ("ZoneEntropy", 2.5243974703476972),
    ("LowGrayLevelZoneEmphasis", 0.4027777777777778),
    ("HighGrayLevelZoneEmphasis", 7.3125),
    ("SmallAreaLowGrayLevelEmphasis", 0.38017469618055555),
    ("SmallAreaHighGrayLevelEmphasis", 5.238611111111111),
    ("LargeAreaLowGrayLevelEmphasis", 2.0394965277777777),
    ("LargeAreaHighGrayLevelEmphasis", 55.0625),
];
