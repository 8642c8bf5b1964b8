use super::super::gldm::test_volumes::*;
use super::*;
use crate::features::test_support::{assert_close, assert_features, feature, input};
use ndarray::Array3;

/// Relative tolerance against PyRadiomics. n_i matches exactly, but s_i and the features
/// are summed in another order (voxel order, and numpy sums the full pairwise
/// matrices), which moves the last few bits.
const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// Relative tolerance for values derived by hand: they are exact fractions, and the
/// code rounds each of its few operations once.
const ANALYTIC_RELATIVE_TOLERANCE: f64 = 1e-15;

/// Relative tolerance between the fast features and the plain reference below.
const REFERENCE_IMPLEMENTATION_TOLERANCE: f64 = 1e-13;

/// Builds the NGTDM directly from its definition, with coordinates and bounds tests
/// instead of padding and linear offsets. It visits the voxels in the fast path's order
/// (k fastest), so the sums s_i must agree to the bit.
fn reference_matrix(levels: &Array3<u32>, distances: &[u32]) -> DifferenceMatrix {
    let mut present: Vec<u32> = levels.iter().copied().filter(|&level| level > 0).collect();
    present.sort_unstable();
    present.dedup();
    let mut counts = vec![0_u64; present.len()];
    let mut differences = vec![0.0; present.len()];
    let (n_i, n_j, n_k) = levels.dim();
    let reach = distances.iter().copied().max().unwrap_or(0) as i64;
    for i in 0..n_i {
        for j in 0..n_j {
            for k in 0..n_k {
                let centre = levels[[i, j, k]];
                if centre == 0 {
                    continue;
                }
                let mut neighbour_levels = Vec::new();
                for dk in -reach..=reach {
                    for dj in -reach..=reach {
                        for di in -reach..=reach {
                            let distance = di.abs().max(dj.abs()).max(dk.abs());
                            if distance == 0 || !distances.iter().any(|&d| d as i64 == distance) {
                                continue;
                            }
                            let (ni, nj, nk) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
                            let inside = (0..n_i as i64).contains(&ni)
                                && (0..n_j as i64).contains(&nj)
                                && (0..n_k as i64).contains(&nk);
                            if inside {
                                let level = levels[[ni as usize, nj as usize, nk as usize]];
                                if level != 0 {
                                    neighbour_levels.push(f64::from(level));
                                }
                            }
                        }
                    }
                }
                let entry = present
                    .binary_search(&centre)
                    .expect("centre level is present");
                counts[entry] += 1;
                if !neighbour_levels.is_empty() {
                    let mean = neighbour_levels.iter().sum::<f64>() / neighbour_levels.len() as f64;
                    differences[entry] += (f64::from(centre) - mean).abs();
                }
            }
        }
    }
    DifferenceMatrix {
        levels: present,
        counts,
        differences,
    }
}

/// Evaluates the features the way PyRadiomics' numpy code does, over all ordered pairs.
fn reference_features(matrix: &DifferenceMatrix) -> Vec<(&'static str, f64)> {
    let present: Vec<usize> = (0..matrix.counts.len())
        .filter(|&g| matrix.counts[g] > 0)
        .collect();
    let n_vp: f64 = present.iter().map(|&g| matrix.counts[g] as f64).sum();
    let i = |g: usize| f64::from(matrix.levels[g]);
    let p = |g: usize| matrix.counts[g] as f64 / n_vp;
    let s = |g: usize| matrix.differences[g];
    let pairs = || {
        present
            .iter()
            .flat_map(|&a| present.iter().map(move |&b| (a, b)))
    };
    let n_gp = present.len() as f64;
    let weighted: f64 = present.iter().map(|&g| p(g) * s(g)).sum();
    let s_sum: f64 = present.iter().map(|&g| s(g)).sum();
    let coarseness = if weighted != 0.0 { 1.0 / weighted } else { 1e6 };
    let contrast = if n_gp > 1.0 {
        pairs()
            .map(|(a, b)| p(a) * p(b) * (i(a) - i(b)).powi(2))
            .sum::<f64>()
            * s_sum
            / n_vp
            / (n_gp * (n_gp - 1.0))
    } else {
        0.0
    };
    let busy_denominator: f64 = pairs()
        .map(|(a, b)| (i(a) * p(a) - i(b) * p(b)).abs())
        .sum();
    let busyness = if busy_denominator != 0.0 {
        weighted / busy_denominator
    } else {
        0.0
    };
    let complexity = pairs()
        .map(|(a, b)| (i(a) - i(b)).abs() * (p(a) * s(a) + p(b) * s(b)) / (p(a) + p(b)))
        .sum::<f64>()
        / n_vp;
    let strength_numerator: f64 = pairs()
        .map(|(a, b)| (p(a) + p(b)) * (i(a) - i(b)).powi(2))
        .sum();
    let strength = if s_sum != 0.0 {
        strength_numerator / s_sum
    } else {
        0.0
    };
    vec![
        ("Coarseness", coarseness),
        ("Contrast", contrast),
        ("Busyness", busyness),
        ("Complexity", complexity),
        ("Strength", strength),
    ]
}

#[test]
fn feature_names_match_output_order() {
    let features = compute(&input(scattered_levels()), &NgtdmSettings::default());
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
        for distances in [vec![1], vec![2], vec![1, 2]] {
            let label = format!("{label} δ = {distances:?}");
            let fast = difference_matrix(&input(levels.clone()), &distances);
            let reference = reference_matrix(levels, &distances);
            assert_eq!(fast, reference, "{label}: NGTDM differs from the reference");
            let features = matrix_features(&fast);
            for ((name, value), (_, expected)) in
                features.iter().zip(reference_features(&reference))
            {
                assert_close(
                    &format!("{label} {name}"),
                    *value,
                    expected,
                    REFERENCE_IMPLEMENTATION_TOLERANCE,
                );
            }
        }
    }
}

/// Reference values: PyRadiomics 3.1.4 (pyradiomics-bhklab, numpy 2.4.6, SimpleITK
/// 2.5.7), `RadiomicsFeatureExtractor` with binWidth 1 and otherwise default settings,
/// only the ngtdm class enabled. Its input was a SimpleITK float64 image holding the grey
/// levels of `scattered_levels` (the ROI's lowest level is 1, so binWidth 1 keeps each
/// level) and the mask level > 0. Values printed with `repr`.
#[test]
fn scattered_volume_matches_pyradiomics() {
    let features = compute(&input(scattered_levels()), &NgtdmSettings::default());
    assert_features(
        "scattered",
        &features,
        &SCATTERED_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Reference values: as `scattered_volume_matches_pyradiomics`, with PyRadiomics setting
/// distances [2].
#[test]
fn distance_two_matches_pyradiomics() {
    let settings = NgtdmSettings { distances: vec![2] };
    let features = compute(&input(scattered_levels()), &settings);
    assert_features(
        "scattered δ = [2]",
        &features,
        &SCATTERED_DISTANCE_TWO_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Reference values: as `scattered_volume_matches_pyradiomics`, for `blocky_levels`.
#[test]
fn blocky_volume_matches_pyradiomics() {
    let features = compute(&input(blocky_levels()), &NgtdmSettings::default());
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
    let features = compute(&input(plane_levels()), &NgtdmSettings::default());
    assert_features(
        "plane",
        &features,
        &PLANE_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Reference values: as `scattered_volume_matches_pyradiomics`, for a 3 × 3 × 3 volume
/// whose ROI has two voxels without neighbours: levels 1 at (0, 0, 0), 2 at (1, 0, 0),
/// 1 at (1, 0, 1), 2 at (0, 2, 2) and 3 at (2, 2, 2). PyRadiomics counts the two
/// isolated voxels in n_i: excluding them would give a Coarseness of 1, not 1.25.
#[test]
fn voxels_without_neighbours_count_in_n_i() {
    let mut levels = Array3::zeros((3, 3, 3));
    levels[[0, 0, 0]] = 1;
    levels[[1, 0, 0]] = 2;
    levels[[1, 0, 1]] = 1;
    levels[[0, 2, 2]] = 2;
    levels[[2, 2, 2]] = 3;
    let features = compute(&input(levels), &NgtdmSettings::default());
    let expected = [
        ("Coarseness", 1.25),
        ("Contrast", 0.07466666666666667),
        ("Busyness", 0.5),
        ("Complexity", 1.2),
        ("Strength", 3.8000000000000003),
    ];
    assert_features(
        "isolated voxels",
        &features,
        &expected,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Voxels at the ends of the box (i = 0 or 3) see only their own half and add nothing.
/// A middle voxel has 11 neighbours, 7 of its own level and 4 of the other, so
/// |i − Ā| = 4/11 and s_1 = s_2 = 16/11, with p_1 = p_2 = 1/2.
#[test]
fn two_halves_match_analytic_values() {
    let features = compute(&input(two_halves_levels()), &NgtdmSettings::default());
    let expected = [
        ("Coarseness", 11.0 / 16.0),
        ("Contrast", 1.0 / 22.0),
        ("Busyness", 16.0 / 11.0),
        ("Complexity", 2.0 / 11.0),
        ("Strength", 11.0 / 16.0),
    ];
    for (name, value) in expected {
        assert_close(
            name,
            feature(&features, name),
            value,
            ANALYTIC_RELATIVE_TOLERANCE,
        );
    }
}

#[test]
fn flat_roi_follows_pyradiomics_conventions() {
    let mut levels = Array3::from_elem((4, 3, 3), 2_u32);
    levels[[3, 2, 2]] = 0;
    let features = compute(&input(levels), &NgtdmSettings::default());
    assert_eq!(feature(&features, "Coarseness"), FLAT_COARSENESS);
    assert_eq!(feature(&features, "Contrast"), 0.0);
    assert_eq!(feature(&features, "Busyness"), 0.0);
    assert_eq!(feature(&features, "Complexity"), 0.0);
    assert_eq!(feature(&features, "Strength"), 0.0);
}

#[test]
fn repeated_distance_counts_once() {
    let once = compute(&input(blocky_levels()), &NgtdmSettings::default());
    let twice = NgtdmSettings {
        distances: vec![1, 1],
    };
    assert_eq!(compute(&input(blocky_levels()), &twice), once);
}

#[test]
fn empty_roi_returns_nan() {
    let features = compute(&input(Array3::zeros((2, 2, 2))), &NgtdmSettings::default());
    assert_eq!(features.len(), FEATURE_NAMES.len());
    assert!(features.iter().all(|&(_, value)| value.is_nan()));
}

const SCATTERED_PYRADIOMICS: [(&str, f64); 5] = [
    ("Coarseness", 0.022227971490868092),
    ("Contrast", 1.2260724261096743),
    ("Busyness", 4.389108365099219),
    ("Complexity", 31.391213285801587),
    ("Strength", 0.5061406553410772),
];

const SCATTERED_DISTANCE_TWO_PYRADIOMICS: [(&str, f64); 5] = [
    ("Coarseness", 0.02336933775342674),
    ("Contrast", 1.1666832968293634),
    ("Busyness", 4.174742846337198),
    ("Complexity", 29.930031782041425),
    ("Strength", 0.5319053619206289),
];

const BLOCKY_PYRADIOMICS: [(&str, f64); 5] = [
    ("Coarseness", 0.030985981180896086),
    ("Contrast", 0.15830106336218755),
    ("Busyness", 11.395242946924926),
    ("Complexity", 2.0403160541326963),
    ("Strength", 0.08696915499503266),
];

const PLANE_PYRADIOMICS: [(&str, f64); 5] = [
    ("Coarseness", 0.11389521640091119),
    ("Contrast", 0.2069604938271605),
    ("Busyness", 1.254285714285714),
    ("Complexity", 6.126903684550742),
    ("Strength", 0.6160337552742615),
];
