use super::test_volumes::*;
use super::*;
use crate::features::test_support::{assert_close, assert_features, feature, input};
use ndarray::Array3;

/// Relative tolerance against PyRadiomics. The matrix is identical, and the features
/// differ only in summation order (numpy sums pairwise), which moves the last few bits.
const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// Relative tolerance for values derived by hand: they are exact fractions, and the
/// code rounds each of its few operations once.
const ANALYTIC_RELATIVE_TOLERANCE: f64 = 1e-15;

/// Relative tolerance between the fast features and the plain reference below: both sum
/// the same terms in different orders.
const REFERENCE_IMPLEMENTATION_TOLERANCE: f64 = 1e-13;

/// Builds the GLDM directly from its definition, with coordinates and bounds tests
/// instead of padding and linear offsets.
fn reference_matrix(levels: &Array3<u32>, alpha: f64, distances: &[u32]) -> DependenceMatrix {
    let max_distance = distances.iter().copied().max().unwrap_or(0) as i64;
    let mut offsets = Vec::new();
    for di in -max_distance..=max_distance {
        for dj in -max_distance..=max_distance {
            for dk in -max_distance..=max_distance {
                let distance = di.abs().max(dj.abs()).max(dk.abs());
                if distances.iter().any(|&d| d as i64 == distance) && distance > 0 {
                    offsets.push([di, dj, dk]);
                }
            }
        }
    }
    let shape = levels.dim();
    let (n_i, n_j, n_k) = (shape.0 as i64, shape.1 as i64, shape.2 as i64);
    // Offsets longer than the box along an axis can never land inside it.
    offsets.retain(|o| o[0].abs() < n_i && o[1].abs() < n_j && o[2].abs() < n_k);

    let mut present: Vec<u32> = levels.iter().copied().filter(|&level| level > 0).collect();
    present.sort_unstable();
    present.dedup();
    let width = offsets.len() + 1;
    let mut counts = vec![0_u64; present.len() * width];
    for ((i, j, k), &centre) in levels.indexed_iter() {
        if centre == 0 {
            continue;
        }
        let mut dependent = 0;
        for [di, dj, dk] in &offsets {
            let (ni, nj, nk) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
            if ni < 0 || nj < 0 || nk < 0 || ni >= n_i || nj >= n_j || nk >= n_k {
                continue;
            }
            let neighbour = levels[[ni as usize, nj as usize, nk as usize]];
            if neighbour != 0 && (f64::from(neighbour) - f64::from(centre)).abs() <= alpha {
                dependent += 1;
            }
        }
        let row = present
            .binary_search(&centre)
            .expect("centre level is present");
        counts[row * width + dependent] += 1;
    }
    DependenceMatrix {
        levels: present,
        counts,
        width,
    }
}

/// Evaluates the features the way PyRadiomics' numpy code does: delete empty rows and
/// columns, then apply each formula to the whole matrix.
fn reference_features(matrix: &DependenceMatrix) -> Vec<(&'static str, f64)> {
    let width = matrix.width;
    let rows: Vec<usize> = (0..matrix.counts.len() / width)
        .filter(|&r| {
            matrix.counts[r * width..(r + 1) * width]
                .iter()
                .any(|&c| c > 0)
        })
        .collect();
    let columns: Vec<usize> = (0..width)
        .filter(|&c| rows.iter().any(|&r| matrix.counts[r * width + c] > 0))
        .collect();
    let cell = |r: usize, c: usize| matrix.counts[r * width + c] as f64;
    let i = |r: usize| f64::from(matrix.levels[r]);
    let j = |c: usize| (c + 1) as f64;
    let p_g: Vec<f64> = rows
        .iter()
        .map(|&r| columns.iter().map(|&c| cell(r, c)).sum())
        .collect();
    let p_d: Vec<f64> = columns
        .iter()
        .map(|&c| rows.iter().map(|&r| cell(r, c)).sum())
        .collect();
    let n_z: f64 = p_g.iter().sum();

    let sum_d = |f: &dyn Fn(usize, f64) -> f64| -> f64 {
        columns.iter().zip(&p_d).map(|(&c, &p)| f(c, p)).sum()
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
    let mean_j = sum_d(&|c, p| p / n_z * j(c));
    vec![
        (
            "SmallDependenceEmphasis",
            sum_d(&|c, p| p / (j(c) * j(c))) / n_z,
        ),
        (
            "LargeDependenceEmphasis",
            sum_d(&|c, p| p * j(c) * j(c)) / n_z,
        ),
        ("GrayLevelNonUniformity", sum_g(&|_, p| p * p) / n_z),
        ("DependenceNonUniformity", sum_d(&|_, p| p * p) / n_z),
        (
            "DependenceNonUniformityNormalized",
            sum_d(&|_, p| p * p) / (n_z * n_z),
        ),
        (
            "GrayLevelVariance",
            sum_g(&|r, p| p / n_z * (i(r) - mean_i).powi(2)),
        ),
        (
            "DependenceVariance",
            sum_d(&|c, p| p / n_z * (j(c) - mean_j).powi(2)),
        ),
        (
            "DependenceEntropy",
            -sum_all(&|_, _, p| p / n_z * (p / n_z + f64::EPSILON).log2()),
        ),
        (
            "LowGrayLevelEmphasis",
            sum_g(&|r, p| p / (i(r) * i(r))) / n_z,
        ),
        (
            "HighGrayLevelEmphasis",
            sum_g(&|r, p| p * i(r) * i(r)) / n_z,
        ),
        (
            "SmallDependenceLowGrayLevelEmphasis",
            sum_all(&|r, c, p| p / (i(r).powi(2) * j(c).powi(2))) / n_z,
        ),
        (
            "SmallDependenceHighGrayLevelEmphasis",
            sum_all(&|r, c, p| p * i(r).powi(2) / j(c).powi(2)) / n_z,
        ),
        (
            "LargeDependenceLowGrayLevelEmphasis",
            sum_all(&|r, c, p| p * j(c).powi(2) / i(r).powi(2)) / n_z,
        ),
        (
            "LargeDependenceHighGrayLevelEmphasis",
            sum_all(&|r, c, p| p * i(r).powi(2) * j(c).powi(2)) / n_z,
        ),
    ]
}

fn assert_matches_reference(label: &str, levels: Array3<u32>, settings: &GldmSettings) {
    let fast = dependence_matrix(&input(levels.clone()), settings);
    let reference = reference_matrix(&levels, settings.alpha, &settings.distances);
    assert_eq!(fast, reference, "{label}: GLDM differs from the reference");
    let features = matrix_features(&fast);
    for ((name, value), (_, expected)) in features.iter().zip(reference_features(&reference)) {
        assert_close(
            &format!("{label} {name}"),
            *value,
            expected,
            REFERENCE_IMPLEMENTATION_TOLERANCE,
        );
    }
}

#[test]
fn feature_names_match_output_order() {
    let features = compute(&input(scattered_levels()), &GldmSettings::default());
    let names: Vec<&str> = features.iter().map(|&(name, _)| name).collect();
    assert_eq!(names, FEATURE_NAMES);
}

#[test]
fn fast_path_matches_reference_implementation() {
    let settings = [
        GldmSettings::default(),
        GldmSettings {
            alpha: 1.0,
            distances: vec![1],
        },
        GldmSettings {
            alpha: 2.5,
            distances: vec![1, 2],
        },
        GldmSettings {
            alpha: 0.0,
            distances: vec![2],
        },
    ];
    let volumes = [
        ("scattered", scattered_levels()),
        ("blocky", blocky_levels()),
        ("plane", plane_levels()),
        ("two halves", two_halves_levels()),
    ];
    for (label, levels) in &volumes {
        for setting in &settings {
            assert_matches_reference(&format!("{label} {setting:?}"), levels.clone(), setting);
        }
    }
}

/// Reference values: PyRadiomics 3.1.4 (pyradiomics-bhklab, numpy 2.4.6, SimpleITK
/// 2.5.7), `RadiomicsFeatureExtractor` with binWidth 1 and otherwise default settings,
/// only the gldm class enabled. Its input was a SimpleITK float64 image holding the grey
/// levels of `scattered_levels` (the ROI's lowest level is 1, so binWidth 1 keeps each
/// level) and the mask level > 0. Values printed with `repr`.
#[test]
fn scattered_volume_matches_pyradiomics() {
    let features = compute(&input(scattered_levels()), &GldmSettings::default());
    assert_features(
        "scattered",
        &features,
        &SCATTERED_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Reference values: as `scattered_volume_matches_pyradiomics`, with PyRadiomics
/// settings gldm_a 1 and distances [1, 2].
#[test]
fn alpha_and_distances_match_pyradiomics() {
    let settings = GldmSettings {
        alpha: 1.0,
        distances: vec![1, 2],
    };
    let features = compute(&input(scattered_levels()), &settings);
    assert_features(
        "scattered α = 1, δ = [1, 2]",
        &features,
        &SCATTERED_ALPHA_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Reference values: as `scattered_volume_matches_pyradiomics`, for `blocky_levels`.
#[test]
fn blocky_volume_matches_pyradiomics() {
    let features = compute(&input(blocky_levels()), &GldmSettings::default());
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
    let features = compute(&input(plane_levels()), &GldmSettings::default());
    assert_features(
        "plane",
        &features,
        &PLANE_PYRADIOMICS,
        REFERENCE_RELATIVE_TOLERANCE,
    );
}

/// Each voxel of a 2 × 2 × 2 half has its 7 half-mates as dependent neighbours, so
/// P(1, 8) = P(2, 8) = 8.
#[test]
fn two_halves_match_analytic_values() {
    let features = compute(&input(two_halves_levels()), &GldmSettings::default());
    let expected = [
        ("SmallDependenceEmphasis", 1.0 / 64.0),
        ("LargeDependenceEmphasis", 64.0),
        ("GrayLevelNonUniformity", 8.0),
        ("DependenceNonUniformity", 16.0),
        ("DependenceNonUniformityNormalized", 1.0),
        ("GrayLevelVariance", 0.25),
        ("DependenceVariance", 0.0),
        ("LowGrayLevelEmphasis", (1.0 + 0.25) / 2.0),
        ("HighGrayLevelEmphasis", (1.0 + 4.0) / 2.0),
        (
            "SmallDependenceLowGrayLevelEmphasis",
            (1.0 + 0.25) / 2.0 / 64.0,
        ),
        (
            "SmallDependenceHighGrayLevelEmphasis",
            (1.0 + 4.0) / 2.0 / 64.0,
        ),
        (
            "LargeDependenceLowGrayLevelEmphasis",
            (1.0 + 0.25) / 2.0 * 64.0,
        ),
        (
            "LargeDependenceHighGrayLevelEmphasis",
            (1.0 + 4.0) / 2.0 * 64.0,
        ),
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
        "DependenceEntropy",
        feature(&features, "DependenceEntropy"),
        entropy,
        ANALYTIC_RELATIVE_TOLERANCE,
    );
}

/// With α = 1 both levels depend on each other, so the dependence size is the number of
/// voxels in the 3 × 3 × 3 cube around each voxel that lie in the box: 8 at the ends of
/// the box (i = 0 or 3) and 12 in the middle.
#[test]
fn two_halves_with_alpha_one_count_all_neighbours() {
    let settings = GldmSettings {
        alpha: 1.0,
        distances: vec![1],
    };
    let matrix = dependence_matrix(&input(two_halves_levels()), &settings);
    assert_eq!(matrix.levels, [1, 2]);
    let row = |level: usize| &matrix.counts[(level - 1) * matrix.width..level * matrix.width];
    for level in [1, 2] {
        assert_eq!(row(level)[8 - 1], 4, "level {level}, size 8");
        assert_eq!(row(level)[12 - 1], 4, "level {level}, size 12");
        assert_eq!(row(level).iter().sum::<u64>(), 8, "level {level}");
    }
}

#[test]
fn flat_roi_has_zero_grey_level_variance() {
    let levels = Array3::from_elem((3, 3, 3), 5_u32);
    let features = compute(&input(levels), &GldmSettings::default());
    assert_eq!(feature(&features, "GrayLevelVariance"), 0.0);
    assert_eq!(feature(&features, "GrayLevelNonUniformity"), 27.0);
    assert_eq!(feature(&features, "LowGrayLevelEmphasis"), 1.0 / 25.0);
    for &(name, value) in &features {
        assert!(value.is_finite(), "{name} = {value} for a flat ROI");
    }
}

#[test]
fn negative_alpha_makes_no_neighbour_dependent() {
    let settings = GldmSettings {
        alpha: -1.0,
        distances: vec![1],
    };
    let features = compute(&input(two_halves_levels()), &settings);
    assert_eq!(feature(&features, "SmallDependenceEmphasis"), 1.0);
    assert_eq!(feature(&features, "LargeDependenceEmphasis"), 1.0);
}

#[test]
fn repeated_distance_counts_once() {
    let once = compute(&input(scattered_levels()), &GldmSettings::default());
    let twice = GldmSettings {
        alpha: 0.0,
        distances: vec![1, 1],
    };
    assert_eq!(compute(&input(scattered_levels()), &twice), once);
}

#[test]
fn empty_roi_returns_nan() {
    let features = compute(&input(Array3::zeros((2, 2, 2))), &GldmSettings::default());
    assert_eq!(features.len(), FEATURE_NAMES.len());
    assert!(features.iter().all(|&(_, value)| value.is_nan()));
}

const SCATTERED_PYRADIOMICS: [(&str, f64); 14] = [
    ("SmallDependenceEmphasis", 0.2430347694633409),
    ("LargeDependenceEmphasis", 14.666666666666666),
    ("GrayLevelNonUniformity", 19.916666666666668),
    ("DependenceNonUniformity", 18.270833333333332),
    ("DependenceNonUniformityNormalized", 0.19032118055555555),
    ("GrayLevelVariance", 5.458224826388889),
    ("DependenceVariance", 3.694010416666667),
    ("DependenceEntropy", 4.625211912746298),
    ("LowGrayLevelEmphasis", 0.3436023715041572),
    ("HighGrayLevelEmphasis", 17.635416666666668),
    ("SmallDependenceLowGrayLevelEmphasis", 0.06320251603245465),
    ("SmallDependenceHighGrayLevelEmphasis", 5.428040748417423),
    ("LargeDependenceLowGrayLevelEmphasis", 7.43037249622071),
    ("LargeDependenceHighGrayLevelEmphasis", 148.23958333333334),
];

const SCATTERED_ALPHA_PYRADIOMICS: [(&str, f64); 14] = [
    ("SmallDependenceEmphasis", 0.005252292482378126),
    ("LargeDependenceEmphasis", 492.75),
    ("GrayLevelNonUniformity", 19.916666666666668),
    ("DependenceNonUniformity", 4.583333333333333),
    ("DependenceNonUniformityNormalized", 0.04774305555555555),
    ("GrayLevelVariance", 5.458224826388889),
    ("DependenceVariance", 87.734375),
    ("DependenceEntropy", 5.712312109983456),
    ("LowGrayLevelEmphasis", 0.3436023715041572),
    ("HighGrayLevelEmphasis", 17.635416666666668),
    ("SmallDependenceLowGrayLevelEmphasis", 0.0008515218208842726),
    ("SmallDependenceHighGrayLevelEmphasis", 0.155609511659873),
    ("LargeDependenceLowGrayLevelEmphasis", 216.73308767951627),
    ("LargeDependenceHighGrayLevelEmphasis", 4714.083333333333),
];

const BLOCKY_PYRADIOMICS: [(&str, f64); 14] = [
    ("SmallDependenceEmphasis", 0.026700068961716984),
    ("LargeDependenceEmphasis", 69.46715328467154),
    ("GrayLevelNonUniformity", 45.81751824817518),
    ("DependenceNonUniformity", 16.474452554744527),
    ("DependenceNonUniformityNormalized", 0.12025147850178486),
    ("GrayLevelVariance", 0.6933773775907082),
    ("DependenceVariance", 6.976397250785871),
    ("DependenceEntropy", 4.671753489762223),
    ("LowGrayLevelEmphasis", 0.4586374695863747),
    ("HighGrayLevelEmphasis", 4.7226277372262775),
    ("SmallDependenceLowGrayLevelEmphasis", 0.011274978303076126),
    ("SmallDependenceHighGrayLevelEmphasis", 0.125691893456334),
    ("LargeDependenceLowGrayLevelEmphasis", 32.0271695052717),
    ("LargeDependenceHighGrayLevelEmphasis", 322.06569343065695),
];

const PLANE_PYRADIOMICS: [(&str, f64); 14] = [
    ("SmallDependenceEmphasis", 0.5083425925925926),
    ("LargeDependenceEmphasis", 7.066666666666666),
    ("GrayLevelNonUniformity", 8.866666666666667),
    ("DependenceNonUniformity", 8.666666666666666),
    ("DependenceNonUniformityNormalized", 0.28888888888888886),
    ("GrayLevelVariance", 1.1788888888888889),
    ("DependenceVariance", 1.9288888888888889),
    ("DependenceEntropy", 3.1744183139072786),
    ("LowGrayLevelEmphasis", 0.3002314814814815),
    ("HighGrayLevelEmphasis", 7.766666666666667),
    ("SmallDependenceLowGrayLevelEmphasis", 0.2144699074074074),
    ("SmallDependenceHighGrayLevelEmphasis", 3.422259259259259),
    ("LargeDependenceLowGrayLevelEmphasis", 1.529398148148148),
    ("LargeDependenceHighGrayLevelEmphasis", 50.43333333333333),
];
