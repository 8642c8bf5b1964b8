//! GLCM tests: the fast counting kernel against the reference, PyRadiomics reference values,
//! analytic cases and edge cases.

use super::matrix::{count_cooccurrences, reference};
use super::*;
use crate::features::discretize::test_volumes::{Case, fortran_order_copy, texture_input};
use crate::features::discretize::{Discretization, PaddedLevels, TextureInput, angle_offsets};

/// Relative tolerance for PyRadiomics reference values. The formulas and their evaluation
/// order follow PyRadiomics, but sums run in another order than numpy's pairwise sums, and
/// features such as ClusterShade cancel large terms, which amplifies rounding.
const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// Absolute tolerance where the reference value is zero or cancels to rounding level: a
/// difference below this, with terms of order 1 to 10⁴, is rounding.
const REFERENCE_ABSOLUTE_TOLERANCE: f64 = 1e-12;

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
            difference <= REFERENCE_RELATIVE_TOLERANCE * value.abs()
                || difference <= REFERENCE_ABSOLUTE_TOLERANCE,
            "{name}: got {actual:e}, PyRadiomics gives {value:e} (difference {difference:e})"
        );
    }
}

fn bin_width(width: f64) -> Discretization {
    Discretization::FixedBinWidth(width)
}

#[test]
fn feature_names_match_output_order() {
    let input = texture_input(Case::Synthetic, bin_width(25.0));
    let features = compute(&input, &GlcmSettings::default());
    let names: Vec<&str> = features.iter().map(|&(name, _)| name).collect();
    assert_eq!(names, FEATURE_NAMES);
}

/// Returns a pseudo-random ROI: levels 1 … 9 with about a third of the box outside.
fn random_input(shape: (usize, usize, usize), seed: u64) -> TextureInput {
    let mut state = seed;
    let levels = ndarray::Array3::from_shape_simple_fn(shape, || {
        // 64-bit linear congruential generator (Knuth's MMIX constants).
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let draw = (state >> 33) % 14;
        if draw < 5 { 0 } else { (draw - 4) as u32 }
    });
    TextureInput {
        n_levels: levels.iter().copied().max().unwrap_or(0),
        levels,
        spacing: [1.0; 3],
    }
}

#[test]
fn fast_counts_match_reference() {
    let inputs = [
        texture_input(Case::Synthetic, bin_width(10.0)),
        texture_input(Case::Slab, bin_width(10.0)),
        texture_input(Case::Layers, bin_width(25.0)),
        random_input((7, 5, 6), 1),
        random_input((1, 9, 4), 2),
        random_input((11, 3, 8), 3),
    ];
    let inputs: Vec<TextureInput> = inputs
        .iter()
        .flat_map(|input| [input.clone(), fortran_order_copy(input)])
        .collect();
    for (case, input) in inputs.iter().enumerate() {
        let shape: [usize; 3] = input.levels.dim().into();
        for distances in [vec![1], vec![1, 2], vec![3], vec![2, 5]] {
            let offsets = angle_offsets(&distances, shape);
            let padding = distances.iter().copied().max().unwrap_or(0) as usize;
            let padded = PaddedLevels::new(input, padding);
            assert_eq!(
                count_cooccurrences(&padded, &offsets),
                reference::count_cooccurrences(input, &offsets),
                "input {case}, distances {distances:?}"
            );
        }
    }
}

#[test]
fn memory_order_does_not_change_features() {
    let input = texture_input(Case::Synthetic, bin_width(10.0));
    let settings = GlcmSettings::default();
    assert_eq!(
        compute(&fortran_order_copy(&input), &settings),
        compute(&input, &settings)
    );
}

/// Reference values for the tests below: PyRadiomics 3.1.4 (pyradiomics-bhklab, numpy
/// 2.4.6, SimpleITK float64 images built from `test_volumes`), `RadiomicsFeatureExtractor`
/// with only the glcm class enabled and the settings named in each test, all others default.
/// Values printed with `repr`.
#[test]
fn synthetic_roi_matches_pyradiomics() {
    let input = texture_input(Case::Synthetic, bin_width(10.0));
    let features = compute(&input, &GlcmSettings::default());
    // PyRadiomics settings: binWidth 10.
    let expected = [
        ("Autocorrelation", 40.19164294642556),
        ("ClusterProminence", 910.8562368963753),
        ("ClusterShade", -0.23123470684636516),
        ("ClusterTendency", 17.80363508953424),
        ("Contrast", 19.03930935007022),
        ("Correlation", -0.04572969314338879),
        ("DifferenceAverage", 3.608895947048121),
        ("DifferenceEntropy", 2.063733701386101),
        ("DifferenceVariance", 4.734032298162388),
        ("Id", 0.30957525402000036),
        ("Idm", 0.20908755718412592),
        ("Idmn", 0.9199263596863586),
        ("Idn", 0.8099083690464491),
        ("Imc1", -0.46844912664922117),
        ("Imc2", 0.9777716334093073),
        ("InverseVariance", 0.22981096610526047),
        ("JointAverage", 6.3607224357767835),
        ("JointEnergy", 0.02987574003280684),
        ("JointEntropy", 5.271164639446531),
        ("MCC", 0.8165121082938617),
        ("MaximumProbability", 0.05676174067478415),
        ("SumAverage", 12.721444871553567),
        ("SumEntropy", 3.7093917089462236),
        ("SumSquares", 9.210736109901115),
    ];
    assert_matches_reference(&features, &expected);
}

#[test]
fn default_bin_width_matches_pyradiomics() {
    let input = texture_input(Case::Synthetic, bin_width(25.0));
    let features = compute(&input, &GlcmSettings::default());
    // PyRadiomics settings: binWidth 25.
    let expected = [
        ("Autocorrelation", 10.75119128456085),
        ("ClusterProminence", 25.034728971358394),
        ("ClusterShade", -0.19228441511213662),
        ("ClusterTendency", 2.9714759230879064),
        ("Contrast", 3.1227402790446273),
        ("Correlation", -0.03362076617395097),
        ("DifferenceAverage", 1.4355586442542962),
        ("DifferenceEntropy", 1.3585726076081834),
        ("DifferenceVariance", 0.8618624158515646),
        ("Id", 0.5052643059436537),
        ("Idm", 0.44746833061794705),
        ("Idmn", 0.9272246160289638),
        ("Idn", 0.8221621709898108),
        ("Imc1", -0.34379903470070405),
        ("Imc2", 0.8749370914456971),
        ("InverseVariance", 0.4840883588030327),
        ("JointAverage", 3.283304304391261),
        ("JointEnergy", 0.09002286906513722),
        ("JointEntropy", 3.797075171731314),
        ("MCC", 0.7191110839845071),
        ("MaximumProbability", 0.14864309603440037),
        ("SumAverage", 6.566608608782522),
        ("SumEntropy", 2.475337643297062),
        ("SumSquares", 1.523554050533133),
    ];
    assert_matches_reference(&features, &expected);
}

#[test]
fn asymmetric_two_distances_match_pyradiomics() {
    let input = texture_input(Case::Synthetic, bin_width(10.0));
    let settings = GlcmSettings {
        distances: vec![1, 2],
        symmetric: false,
    };
    let features = compute(&input, &settings);
    // PyRadiomics settings: binWidth 10, distances [1, 2], symmetricalGLCM False.
    let expected = [
        ("Autocorrelation", 40.661758765947056),
        ("ClusterProminence", 872.8785996426601),
        ("ClusterShade", -7.939054159648405),
        ("ClusterTendency", 18.17141432284892),
        ("Contrast", 19.177191587955964),
        ("Correlation", -0.0012749457927801004),
        ("DifferenceAverage", 3.564037403690279),
        ("DifferenceEntropy", 2.1658902821153965),
        ("DifferenceVariance", 4.836361361706495),
        ("Id", 0.324867837727892),
        ("Idm", 0.2305602531411861),
        ("Idmn", 0.9200749506538329),
        ("Idn", 0.8131239640955117),
        ("Imc1", -0.7085527658052798),
        ("Imc2", 0.9952933615841963),
        ("InverseVariance", 0.2474802029290339),
        ("JointAverage", 5.998077364171333),
        ("JointEnergy", 0.0629561011876397),
        ("JointEntropy", 4.162801281792439),
        ("MCC", 0.993647881523992),
        ("MaximumProbability", 0.11307719298778202),
        ("SumAverage", 12.773763231729575),
        ("SumEntropy", 3.508267478698901),
        ("SumSquares", 8.728943951130491),
    ];
    assert_matches_reference(&features, &expected);
}

#[test]
fn bin_count_matches_pyradiomics() {
    let input = texture_input(Case::Synthetic, Discretization::FixedBinCount(8));
    let features = compute(&input, &GlcmSettings::default());
    // PyRadiomics settings: binCount 8.
    let expected = [
        ("Autocorrelation", 15.380612503438593),
        ("ClusterProminence", 93.8123935272343),
        ("ClusterShade", -0.2643645854441124),
        ("ClusterTendency", 5.657009430034382),
        ("Contrast", 5.94044800610018),
        ("Correlation", -0.039264800677093856),
        ("DifferenceAverage", 1.9967388167388167),
        ("DifferenceEntropy", 1.552743081372203),
        ("DifferenceVariance", 1.562786765584332),
        ("Id", 0.42955288954202003),
        ("Idm", 0.35196014435813766),
        ("Idmn", 0.9230990925435397),
        ("Idn", 0.8154029459724199),
        ("Imc1", -0.40932593912063325),
        ("Imc2", 0.9348257473481123),
        ("InverseVariance", 0.405355807873018),
        ("JointAverage", 3.9290788076657646),
        ("JointEnergy", 0.06306710895557245),
        ("JointEntropy", 4.246798930343379),
        ("MCC", 0.7748634533844656),
        ("MaximumProbability", 0.10332514707514708),
        ("SumAverage", 7.858157615331529),
        ("SumEntropy", 2.973324093842319),
        ("SumSquares", 2.89936435903364),
    ];
    assert_matches_reference(&features, &expected);
}

/// A slab one voxel thick along k: the 9 angles with dk ≠ 0 have no pairs.
#[test]
fn one_voxel_thick_slab_matches_pyradiomics() {
    let input = texture_input(Case::Slab, bin_width(10.0));
    assert_eq!(input.levels.dim(), (5, 4, 1));
    let features = compute(&input, &GlcmSettings::default());
    // PyRadiomics settings: binWidth 10.
    let expected = [
        ("Autocorrelation", 32.553124999999994),
        ("ClusterProminence", 646.0827034502951),
        ("ClusterShade", 5.575419307002386),
        ("ClusterTendency", 16.567495659722223),
        ("Contrast", 25.438541666666666),
        ("Correlation", -0.22039698106467387),
        ("DifferenceAverage", 4.448958333333333),
        ("DifferenceEntropy", 0.8600503654223699),
        ("DifferenceVariance", 4.866141493055555),
        ("Id", 0.22189608134920635),
        ("Idm", 0.09799401870555025),
        ("Idmn", 0.8468924278628698),
        ("Idn", 0.7282297951231773),
        ("Imc1", -0.7455073487950774),
        ("Imc2", 0.9965151769927222),
        ("InverseVariance", 0.1182665757275132),
        ("JointAverage", 5.894270833333333),
        ("JointEnergy", 0.05769965277777778),
        ("JointEntropy", 4.198370565929368),
        ("MCC", 0.9922719148253822),
        ("MaximumProbability", 0.07395833333333333),
        ("SumAverage", 11.788541666666665),
        ("SumEntropy", 3.198370565929371),
        ("SumSquares", 10.501509331597223),
    ];
    assert_matches_reference(&features, &expected);
}

#[test]
fn flat_roi_matches_pyradiomics() {
    let input = texture_input(Case::Flat, bin_width(25.0));
    let features = compute(&input, &GlcmSettings::default());
    // PyRadiomics settings: defaults (binWidth 25).
    let expected = [
        ("Autocorrelation", 1.0),
        ("ClusterProminence", 0.0),
        ("ClusterShade", 0.0),
        ("ClusterTendency", 0.0),
        ("Contrast", 0.0),
        ("Correlation", 1.0),
        ("DifferenceAverage", 0.0),
        ("DifferenceEntropy", -3.2034265038149176e-16),
        ("DifferenceVariance", 0.0),
        ("Id", 1.0),
        ("Idm", 1.0),
        ("Idmn", 1.0),
        ("Idn", 1.0),
        ("Imc1", 0.0),
        ("Imc2", 0.0),
        ("InverseVariance", 0.0),
        ("JointAverage", 1.0),
        ("JointEnergy", 1.0),
        ("JointEntropy", -3.2034265038149176e-16),
        ("MCC", 1.0),
        ("MaximumProbability", 1.0),
        ("SumAverage", 2.0),
        ("SumEntropy", -3.2034265038149176e-16),
        ("SumSquares", 0.0),
    ];
    assert_matches_reference(&features, &expected);
    // The mean over 13 angles of −log₂(1 + ε), bit for bit as numpy sums it.
    assert_eq!(feature(&features, "JointEntropy"), -3.2034265038149176e-16);
    assert_eq!(feature(&features, "MCC"), 1.0);
}

/// Two layers of 2 × 2 voxels, level 1 at k = 0 and level 2 at k = 1. The 4 angles with
/// dk = 0 see p = diag(1/2, 1/2); the 9 with dk ≠ 0 see p = [[0, 1/2], [1/2, 0]].
#[test]
fn two_layers_give_analytic_values() {
    let input = texture_input(Case::Layers, bin_width(25.0));
    let features = compute(&input, &GlcmSettings::default());
    let close = |name: &str, expected: f64| {
        let actual = feature(&features, name);
        assert!(
            (actual - expected).abs() < 1e-14,
            "{name}: got {actual}, expected {expected}"
        );
    };
    // In-plane 0.5·1 + 0.5·4 = 2.5, across 2·0.5·2 = 2.
    close("Autocorrelation", (4.0 * 2.5 + 9.0 * 2.0) / 13.0);
    close("Contrast", 9.0 / 13.0);
    close("DifferenceAverage", 9.0 / 13.0);
    close("Id", (4.0 + 9.0 * 0.5) / 13.0);
    close("Idn", (4.0 + 9.0 / 1.5) / 13.0);
    close("JointAverage", 1.5);
    close("SumAverage", 3.0);
    close("JointEnergy", 0.5);
    close("MaximumProbability", 0.5);
    close("SumSquares", 0.25);
    // Correlation is +1 in-plane and −1 across, up to ε in the denominator.
    close("Correlation", -5.0 / 13.0);
    close("JointEntropy", 1.0);
    close("Imc1", -1.0);
    close("MCC", 1.0);

    let expected = [
        ("Autocorrelation", 2.1538461538461537),
        ("ClusterProminence", 0.3076923076923077),
        ("ClusterShade", 0.0),
        ("ClusterTendency", 0.3076923076923077),
        ("Contrast", 0.6923076923076923),
        ("Correlation", -0.38461538461538436),
        ("DifferenceAverage", 0.6923076923076923),
        ("DifferenceEntropy", -3.2034265038149176e-16),
        ("DifferenceVariance", 0.0),
        ("Id", 0.6538461538461539),
        ("Idm", 0.6538461538461539),
        ("Idmn", 0.8615384615384615),
        ("Idn", 0.7692307692307693),
        ("Imc1", -1.0),
        ("Imc2", 0.9298734950321936),
        ("InverseVariance", 0.6923076923076923),
        ("JointAverage", 1.5),
        ("JointEnergy", 0.5),
        ("JointEntropy", 0.9999999999999996),
        ("MCC", 0.9999999999999998),
        ("MaximumProbability", 0.5),
        ("SumAverage", 3.0),
        ("SumEntropy", 0.30769230769230727),
        ("SumSquares", 0.25),
    ];
    assert_matches_reference(&features, &expected);
}

/// For a symmetric matrix, ClusterTendency + Contrast = 2σ² + 2cov + 2σ² − 2cov = 4·SumSquares
/// per angle, so also for the averages.
#[test]
fn symmetric_identities_hold() {
    let input = texture_input(Case::Synthetic, bin_width(10.0));
    let features = compute(&input, &GlcmSettings::default());
    let tendency = feature(&features, "ClusterTendency");
    let contrast = feature(&features, "Contrast");
    let sum_squares = feature(&features, "SumSquares");
    assert!((tendency + contrast - 4.0 * sum_squares).abs() < 1e-12 * sum_squares);
    let joint_average = feature(&features, "JointAverage");
    let sum_average = feature(&features, "SumAverage");
    assert!((sum_average - 2.0 * joint_average).abs() < 1e-12 * sum_average);
}

/// Two ROI voxels that do not touch: no angle has a pair, so every feature is NaN, as in
/// PyRadiomics (the mean of no angles).
#[test]
fn roi_without_neighbours_returns_nan() {
    let mut levels = ndarray::Array3::zeros((3, 3, 3));
    levels[[0, 0, 0]] = 1;
    levels[[2, 2, 2]] = 2;
    let input = TextureInput {
        levels,
        n_levels: 2,
        spacing: [1.0; 3],
    };
    let features = compute(&input, &GlcmSettings::default());
    for (name, value) in features {
        assert!(value.is_nan(), "{name} = {value}, expected NaN");
    }
}

#[test]
fn settings_reject_missing_or_zero_distances() {
    assert_eq!(GlcmSettings::default().validate(), Ok(()));
    let empty = GlcmSettings {
        distances: vec![],
        symmetric: true,
    };
    assert_eq!(empty.validate(), Err(GlcmSettingsError::Distances(vec![])));
    let zero = GlcmSettings {
        distances: vec![1, 0],
        symmetric: true,
    };
    assert_eq!(
        zero.validate(),
        Err(GlcmSettingsError::Distances(vec![1, 0]))
    );
}

#[test]
fn zero_distance_is_ignored() {
    let input = texture_input(Case::Synthetic, bin_width(10.0));
    let with_zero = GlcmSettings {
        distances: vec![0, 1],
        symmetric: true,
    };
    assert_eq!(
        compute(&input, &with_zero),
        compute(&input, &GlcmSettings::default())
    );
}
