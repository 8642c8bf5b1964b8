//! GLRLM tests: the fast run counting against the line-scanning reference, PyRadiomics
//! reference values, analytic cases and edge cases.

use super::matrix::{count_runs, reference};
use super::*;
use crate::features::discretize::test_volumes::{Case, fortran_order_copy, texture_input};
use crate::features::discretize::{Discretization, PaddedLevels, TextureInput, angle_offsets};

/// Relative tolerance for PyRadiomics reference values. The formulas and their evaluation
/// order follow PyRadiomics, but sums run in another order than numpy's pairwise sums.
const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-12;

fn feature(features: &[(&'static str, f64)], name: &str) -> f64 {
    features
        .iter()
        .find(|(feature_name, _)| *feature_name == name)
        .map(|&(_, value)| value)
        .unwrap_or_else(|| panic!("feature {name} missing from the output"))
}

fn assert_matches_reference(features: &[(&'static str, f64)], expected: &[(&str, f64)]) {
    assert_eq!(features.len(), expected.len(), "feature count");
    for &(name, value) in expected {
        let actual = feature(features, name);
        let difference = (actual - value).abs();
        assert!(
            difference <= REFERENCE_RELATIVE_TOLERANCE * value.abs(),
            "{name}: got {actual:e}, PyRadiomics gives {value:e} (difference {difference:e})"
        );
    }
}

fn bin_width(width: f64) -> Discretization {
    Discretization::FixedBinWidth(width)
}

/// Returns a pseudo-random ROI: levels 1 … 3 (long runs are likely) with about a quarter of
/// the box outside.
fn random_input(shape: (usize, usize, usize), seed: u64) -> TextureInput {
    let mut state = seed;
    let levels = ndarray::Array3::from_shape_simple_fn(shape, || {
        // 64-bit linear congruential generator (Knuth's MMIX constants).
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let draw = (state >> 33) % 8;
        if draw < 2 { 0 } else { (draw % 3 + 1) as u32 }
    });
    TextureInput {
        n_levels: levels.iter().copied().max().unwrap_or(0),
        levels,
        spacing: [1.0; 3],
    }
}

#[test]
fn feature_names_match_output_order() {
    let features = compute(&texture_input(Case::Synthetic, bin_width(25.0)));
    let names: Vec<&str> = features.iter().map(|&(name, _)| name).collect();
    assert_eq!(names, FEATURE_NAMES);
}

#[test]
fn fast_runs_match_reference() {
    let mut diagonal = ndarray::Array3::zeros((4, 4, 4));
    for index in 0..4 {
        diagonal[[index, 3 - index, index]] = 2;
    }
    diagonal[[0, 0, 0]] = 1;
    let inputs = [
        texture_input(Case::Synthetic, bin_width(10.0)),
        texture_input(Case::Synthetic, bin_width(50.0)),
        texture_input(Case::Slab, bin_width(10.0)),
        texture_input(Case::Layers, bin_width(25.0)),
        texture_input(Case::Flat, bin_width(25.0)),
        random_input((7, 5, 6), 1),
        random_input((1, 9, 4), 2),
        random_input((12, 3, 8), 3),
        TextureInput {
            levels: diagonal,
            n_levels: 2,
            spacing: [1.0; 3],
        },
    ];
    let inputs: Vec<TextureInput> = inputs
        .iter()
        .flat_map(|input| [input.clone(), fortran_order_copy(input)])
        .collect();
    for (case, input) in inputs.iter().enumerate() {
        let shape: [usize; 3] = input.levels.dim().into();
        let offsets = angle_offsets(&[1], shape);
        let max_run = shape.into_iter().max().unwrap_or(0);
        let padded = PaddedLevels::new(input, 1);
        assert_eq!(
            count_runs(&padded, &offsets, max_run),
            reference::count_runs(input, &offsets, max_run),
            "input {case}"
        );
    }
}

#[test]
fn memory_order_does_not_change_features() {
    let input = texture_input(Case::Synthetic, bin_width(10.0));
    assert_eq!(compute(&fortran_order_copy(&input)), compute(&input));
}

/// Reference values for the tests below: PyRadiomics 3.1.4 (pyradiomics-bhklab, numpy
/// 2.4.6, SimpleITK float64 images built from `test_volumes`), `RadiomicsFeatureExtractor`
/// with only the glrlm class enabled and the settings named in each test, all others default.
/// Values printed with `repr`.
#[test]
fn synthetic_roi_matches_pyradiomics() {
    let features = compute(&texture_input(Case::Synthetic, bin_width(10.0)));
    // PyRadiomics settings: binWidth 10.
    let expected = [
        ("GrayLevelNonUniformity", 8.289885601375522),
        ("GrayLevelNonUniformityNormalized", 0.09498208851835398),
        ("GrayLevelVariance", 9.495099920346306),
        ("HighGrayLevelRunEmphasis", 49.25901007565623),
        ("LongRunEmphasis", 1.1203777154215817),
        ("LongRunHighGrayLevelEmphasis", 54.740801638889224),
        ("LongRunLowGrayLevelEmphasis", 0.11572767421270758),
        ("LowGrayLevelRunEmphasis", 0.10645068727813436),
        ("RunEntropy", 3.599714911093508),
        ("RunLengthNonUniformity", 83.1582969259974),
        ("RunLengthNonUniformityNormalized", 0.9442007087014362),
        ("RunPercentage", 0.9692307692307693),
        ("RunVariance", 0.03537131968304538),
        ("ShortRunEmphasis", 0.973434301842285),
        ("ShortRunHighGrayLevelEmphasis", 48.088642841549635),
        ("ShortRunLowGrayLevelEmphasis", 0.10421127626970035),
    ];
    assert_matches_reference(&features, &expected);
}

#[test]
fn default_bin_width_matches_pyradiomics() {
    let features = compute(&texture_input(Case::Synthetic, bin_width(25.0)));
    // PyRadiomics settings: binWidth 25.
    let expected = [
        ("GrayLevelNonUniformity", 17.533368679539237),
        ("GrayLevelNonUniformityNormalized", 0.21258223940485127),
        ("GrayLevelVariance", 1.6247638109473652),
        ("HighGrayLevelRunEmphasis", 11.971260852089987),
        ("LongRunEmphasis", 1.3808716381597381),
        ("LongRunHighGrayLevelEmphasis", 16.803391873573798),
        ("LongRunLowGrayLevelEmphasis", 0.25614396120787897),
        ("LowGrayLevelRunEmphasis", 0.2016683207781131),
        ("RunEntropy", 2.6662097206375392),
        ("RunLengthNonUniformity", 72.22861739756863),
        ("RunLengthNonUniformityNormalized", 0.8527566155678261),
        ("RunPercentage", 0.9153846153846155),
        ("RunVariance", 0.10327820164414078),
        ("ShortRunEmphasis", 0.923028521832036),
        ("ShortRunHighGrayLevelEmphasis", 11.015053892116878),
        ("ShortRunLowGrayLevelEmphasis", 0.19114007266335944),
    ];
    assert_matches_reference(&features, &expected);
}

/// A slab one voxel thick along k: PyRadiomics empties the 9 angles with dk ≠ 0.
#[test]
fn one_voxel_thick_slab_matches_pyradiomics() {
    let features = compute(&texture_input(Case::Slab, bin_width(10.0)));
    // PyRadiomics settings: binWidth 10.
    let expected = [
        ("GrayLevelNonUniformity", 1.9),
        ("GrayLevelNonUniformityNormalized", 0.095),
        ("GrayLevelVariance", 10.490000000000002),
        ("HighGrayLevelRunEmphasis", 45.3),
        ("LongRunEmphasis", 1.0),
        ("LongRunHighGrayLevelEmphasis", 45.3),
        ("LongRunLowGrayLevelEmphasis", 0.15318593544702852),
        ("LowGrayLevelRunEmphasis", 0.15318593544702852),
        ("RunEntropy", 3.421928094887359),
        ("RunLengthNonUniformity", 20.0),
        ("RunLengthNonUniformityNormalized", 1.0),
        ("RunPercentage", 1.0),
        ("RunVariance", 0.0),
        ("ShortRunEmphasis", 1.0),
        ("ShortRunHighGrayLevelEmphasis", 45.3),
        ("ShortRunLowGrayLevelEmphasis", 0.15318593544702852),
    ];
    assert_matches_reference(&features, &expected);
}

#[test]
fn flat_roi_matches_pyradiomics() {
    let features = compute(&texture_input(Case::Flat, bin_width(25.0)));
    // PyRadiomics settings: defaults (binWidth 25).
    let expected = [
        ("GrayLevelNonUniformity", 11.153846153846153),
        ("GrayLevelNonUniformityNormalized", 1.0),
        ("GrayLevelVariance", 0.0),
        ("HighGrayLevelRunEmphasis", 1.0),
        ("LongRunEmphasis", 3.617582417582417),
        ("LongRunHighGrayLevelEmphasis", 3.617582417582417),
        ("LongRunLowGrayLevelEmphasis", 3.617582417582417),
        ("LowGrayLevelRunEmphasis", 1.0),
        ("RunEntropy", 0.8074106510800955),
        ("RunLengthNonUniformity", 6.564835164835165),
        ("RunLengthNonUniformityNormalized", 0.6221036106750393),
        ("RunPercentage", 0.6196581196581197),
        ("RunVariance", 0.2258712715855573),
        ("ShortRunEmphasis", 0.5507326007326007),
        ("ShortRunHighGrayLevelEmphasis", 0.5507326007326007),
        ("ShortRunLowGrayLevelEmphasis", 0.5507326007326007),
    ];
    assert_matches_reference(&features, &expected);
    assert_eq!(feature(&features, "GrayLevelNonUniformityNormalized"), 1.0);
    assert_eq!(feature(&features, "GrayLevelVariance"), 0.0);
}

/// Two layers of 2 × 2 voxels, level 1 at k = 0 and level 2 at k = 1. Per layer, angles along
/// i or j give 2 runs of length 2, and the two in-plane diagonals give 1 run of length 2 and
/// 2 of length 1. The 9 angles with dk ≠ 0 give 8 runs of length 1: every voxel is a run of
/// its own, because the level changes at every step along them.
#[test]
fn two_layers_give_analytic_values() {
    let features = compute(&texture_input(Case::Layers, bin_width(25.0)));
    // Runs per angle (length 1, length 2): along i or j (0, 4); diagonals (4, 2); across (8, 0).
    let per_angle = |ones: f64, twos: f64| (ones + twos / 4.0) / (ones + twos);
    let short_run_emphasis =
        (2.0 * per_angle(0.0, 4.0) + 2.0 * per_angle(4.0, 2.0) + 9.0 * per_angle(8.0, 0.0)) / 13.0;
    let actual = feature(&features, "ShortRunEmphasis");
    assert!(
        (actual - short_run_emphasis).abs() < 1e-15,
        "{actual} vs {short_run_emphasis}"
    );
    let run_percentage = (2.0 * 4.0 / 8.0 + 2.0 * 6.0 / 8.0 + 9.0 * 8.0 / 8.0) / 13.0;
    let actual = feature(&features, "RunPercentage");
    assert!(
        (actual - run_percentage).abs() < 1e-15,
        "{actual} vs {run_percentage}"
    );
    // Both levels have the same number of runs along every angle.
    let actual = feature(&features, "GrayLevelNonUniformityNormalized");
    assert!((actual - 0.5).abs() < 1e-15, "{actual}");

    let expected = [
        ("GrayLevelNonUniformity", 3.5384615384615383),
        ("GrayLevelNonUniformityNormalized", 0.5),
        ("GrayLevelVariance", 0.25),
        ("HighGrayLevelRunEmphasis", 2.5),
        ("LongRunEmphasis", 1.6153846153846154),
        ("LongRunHighGrayLevelEmphasis", 4.038461538461538),
        ("LongRunLowGrayLevelEmphasis", 1.0096153846153846),
        ("LowGrayLevelRunEmphasis", 0.625),
        ("RunEntropy", 1.1412762821622287),
        ("RunLengthNonUniformity", 6.666666666666666),
        ("RunLengthNonUniformityNormalized", 0.9316239316239316),
        ("RunPercentage", 0.8846153846153846),
        ("RunVariance", 0.034188034188034185),
        ("ShortRunEmphasis", 0.8461538461538461),
        ("ShortRunHighGrayLevelEmphasis", 2.1153846153846154),
        ("ShortRunLowGrayLevelEmphasis", 0.5288461538461539),
    ];
    assert_matches_reference(&features, &expected);
}

/// Two ROI voxels on no common line of the 13 directions: PyRadiomics empties every angle,
/// and every feature is NaN.
#[test]
fn roi_without_lines_returns_nan() {
    let mut levels = ndarray::Array3::zeros((3, 2, 1));
    levels[[0, 0, 0]] = 1;
    levels[[2, 1, 0]] = 2;
    let input = TextureInput {
        levels,
        n_levels: 2,
        spacing: [1.0; 3],
    };
    for (name, value) in compute(&input) {
        assert!(value.is_nan(), "{name} = {value}, expected NaN");
    }
}

/// Two voxels on one line with a gap: PyRadiomics keeps the angle (two ROI voxels on the
/// line), with two runs of length 1.
#[test]
fn gap_on_a_line_keeps_the_angle() {
    let mut levels = ndarray::Array3::zeros((3, 2, 1));
    levels[[0, 0, 0]] = 1;
    levels[[2, 0, 0]] = 1;
    levels[[0, 1, 0]] = 2;
    let input = TextureInput {
        levels,
        n_levels: 2,
        spacing: [1.0; 3],
    };
    let shape: [usize; 3] = input.levels.dim().into();
    let offsets = angle_offsets(&[1], shape);
    let padded = PaddedLevels::new(&input, 1);
    let runs = count_runs(&padded, &offsets, 3);
    let along_i = offsets
        .iter()
        .position(|&o| o == [1, 0, 0])
        .expect("angle along i");
    let along_j = offsets
        .iter()
        .position(|&o| o == [0, 1, 0])
        .expect("angle along j");
    // Level 1 has two runs of length 1 along i, level 2 one.
    assert_eq!(runs.angle(along_i), [2, 0, 0, 1, 0, 0]);
    // Along j, (0, 0) and (0, 1) share a line.
    assert_eq!(runs.angle(along_j), [2, 0, 0, 1, 0, 0]);
}
