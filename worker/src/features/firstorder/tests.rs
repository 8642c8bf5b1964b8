use super::*;
use crate::features::test_support::{assert_close, feature};

/// Relative tolerance for PyRadiomics reference values. The sums and percentiles repeat
/// numpy's operations, but `log2` and `pow` may differ from numpy's builds in the last
/// bit.
const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// Runs [`bin_fractions`] with the minimum and maximum of `values` (non-empty).
fn fractions_of(values: &[f64], bin_width: f64) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    bin_fractions(values, sorted[0], sorted[sorted.len() - 1], bin_width)
}

fn default_settings() -> FirstOrderSettings {
    FirstOrderSettings {
        bin_width: 25.0,
        voxel_array_shift: 0.0,
    }
}

/// Returns the intensities of the test ROI: the 44 voxels of a 5 × 4 × 3 (i × j × k)
/// volume where `synthetic_mask` holds, with i varying fastest as in PyRadiomics'
/// arrays. They are whole numbers from −38 to 60, so the bins cross zero.
fn synthetic_roi_values() -> Vec<f64> {
    let mut values = Vec::new();
    for k in 0..3_i64 {
        for j in 0..4_i64 {
            for i in 0..5_i64 {
                if synthetic_mask(i, j, k) {
                    values.push(synthetic_intensity(i, j, k));
                }
            }
        }
    }
    values
}

fn synthetic_mask(i: i64, j: i64, k: i64) -> bool {
    (i + 2 * j + 3 * k) % 4 != 0
}

fn synthetic_intensity(i: i64, j: i64, k: i64) -> f64 {
    ((i * 37 + j * 53 + k * 71) % 97 - 40 + i * j * k) as f64
}

#[test]
fn feature_names_match_output_order() {
    let features = compute(&[1.0, 2.0, 4.0], 1.0, &default_settings());
    let names: Vec<&str> = features.iter().map(|&(name, _)| name).collect();
    assert_eq!(names, FEATURE_NAMES);
}

/// Reference values: PyRadiomics 3.1.4 (pyradiomics-bhklab, numpy 2.4.6), class
/// `RadiomicsFirstOrder`, default settings (binWidth 25, voxelArrayShift 0). Its input
/// was a SimpleITK float64 image and mask built from `synthetic_intensity` and
/// `synthetic_mask` on the 5 × 4 × 3 grid, spacing (0.7, 1.3, 2.9) mm along i, j, k.
/// Values printed with `repr`.
#[test]
fn synthetic_roi_matches_pyradiomics() {
    let values = synthetic_roi_values();
    let voxel_volume = 0.7 * 1.3 * 2.9;
    let features = compute(&values, voxel_volume, &default_settings());
    let expected = [
        ("Energy", 45724.0),
        ("TotalEnergy", 120665.63599999998),
        ("Entropy", 2.205696019505573),
        ("Minimum", -38.0),
        ("10Percentile", -23.1),
        ("90Percentile", 53.500000000000014),
        ("Maximum", 60.0),
        ("Mean", 15.409090909090908),
        ("Median", 16.5),
        ("InterquartileRange", 46.25),
        ("Range", 98.0),
        ("MeanAbsoluteDeviation", 24.5),
        ("RobustMeanAbsoluteDeviation", 18.73529411764706),
        ("RootMeanSquared", 32.236343126691935),
        ("Skewness", -0.18163621813040334),
        ("Kurtosis", 1.871106634838536),
        ("Variance", 801.7417355371902),
        ("Uniformity", 0.23037190082644626),
    ];
    for (name, value) in expected {
        assert_close(
            name,
            feature(&features, name),
            value,
            REFERENCE_RELATIVE_TOLERANCE,
        );
    }
}

/// Reference values: as `synthetic_roi_matches_pyradiomics`, with PyRadiomics settings
/// binWidth 10 and voxelArrayShift 50.
#[test]
fn bin_width_and_shift_match_pyradiomics() {
    let values = synthetic_roi_values();
    let settings = FirstOrderSettings {
        bin_width: 10.0,
        voxel_array_shift: 50.0,
    };
    let features = compute(&values, 0.7 * 1.3 * 2.9, &settings);
    let expected = [
        ("Energy", 223524.0),
        ("TotalEnergy", 589879.836),
        ("Entropy", 3.337653290539765),
        ("RootMeanSquared", 71.27475646462013),
        ("Uniformity", 0.10433884297520658),
        ("Mean", 15.409090909090908),
    ];
    for (name, value) in expected {
        assert_close(
            name,
            feature(&features, name),
            value,
            REFERENCE_RELATIVE_TOLERANCE,
        );
    }
}

#[test]
fn flat_roi_follows_pyradiomics_conventions() {
    let values = vec![0.1; 7];
    let features = compute(&values, 2.0, &default_settings());
    assert_eq!(feature(&features, "Skewness"), 0.0);
    assert_eq!(feature(&features, "Kurtosis"), 0.0);
    assert_eq!(feature(&features, "Range"), 0.0);
    assert_eq!(feature(&features, "Uniformity"), 1.0);
    assert_eq!(feature(&features, "Entropy"), -(1.0 + f64::EPSILON).log2());
    assert!(feature(&features, "Variance") < 1e-30);
    assert_eq!(feature(&features, "Median"), 0.1);
    assert_eq!(feature(&features, "10Percentile"), 0.1);
}

#[test]
fn single_voxel_returns_finite_values() {
    let features = compute(&[13.0], 0.5, &default_settings());
    for &(name, value) in &features {
        assert!(value.is_finite(), "{name} = {value} for a single voxel");
    }
    assert_eq!(feature(&features, "Energy"), 169.0);
    assert_eq!(feature(&features, "TotalEnergy"), 84.5);
    assert_eq!(feature(&features, "InterquartileRange"), 0.0);
    assert_eq!(feature(&features, "RobustMeanAbsoluteDeviation"), 0.0);
}

#[test]
fn empty_values_return_nan() {
    let features = compute(&[], 1.0, &default_settings());
    assert_eq!(features.len(), FEATURE_NAMES.len());
    assert!(features.iter().all(|&(_, value)| value.is_nan()));
}

#[test]
fn binning_floors_negative_minimum() {
    // Lower edge −50: bins [−50, −25), [−25, 0), [0, 25), [25, 50) hold 1, 2, 2, 1.
    let values = [-26.0, -25.0, -1.0, 0.0, 24.0, 25.0];
    assert_eq!(
        fractions_of(&values, 25.0),
        [1.0 / 6.0, 2.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0]
    );
    let features = compute(&values, 1.0, &default_settings());
    assert_close(
        "Uniformity",
        feature(&features, "Uniformity"),
        10.0 / 36.0,
        1e-15,
    );
}

#[test]
fn binning_puts_edge_values_in_upper_bin() {
    // 0 and 25 are edges: each opens its own right-open bin.
    assert_eq!(
        fractions_of(&[0.0, 24.999, 25.0], 25.0),
        [2.0 / 3.0, 1.0 / 3.0]
    );
}

#[test]
fn binning_survives_extreme_ranges() {
    let values = [f64::MIN, -1.0, 0.0, f64::MAX];
    let fractions = fractions_of(&values, 1e-300);
    let total: f64 = fractions.iter().sum();
    assert!((total - 1.0).abs() < 1e-15, "fractions sum to {total}");
    let features = compute(
        &values,
        1.0,
        &FirstOrderSettings {
            bin_width: 1e-300,
            voxel_array_shift: 0.0,
        },
    );
    assert!(feature(&features, "Entropy").is_finite());
    assert!(feature(&features, "Uniformity").is_finite());
    assert_eq!(feature(&features, "Median"), -0.5);
}

/// PyRadiomics 3.1.4 returns NaN for RobustMeanAbsoluteDeviation here.
#[test]
fn two_voxels_have_zero_robust_deviation() {
    let features = compute(&[0.0, 10.0], 1.0, &default_settings());
    assert_eq!(feature(&features, "10Percentile"), 1.0);
    assert_eq!(feature(&features, "90Percentile"), 9.0);
    assert_eq!(feature(&features, "RobustMeanAbsoluteDeviation"), 0.0);
    assert_eq!(feature(&features, "MeanAbsoluteDeviation"), 5.0);
}

#[test]
fn powers_match_exact_integer_powers() {
    // Integers below 2^13 have cubes and fourth powers below 2^53, so the exact power
    // is an f64 and the functions must return it.
    for n in (1..8192_i64).step_by(7) {
        let d = n as f64;
        assert_eq!(cube(d), (n * n * n) as f64, "{n}³");
        assert_eq!(cube(-d), -((n * n * n) as f64), "(−{n})³");
        assert_eq!(fourth_power(d), (n * n * n * n) as f64, "{n}⁴");
    }
}

#[test]
fn powers_match_pow_within_one_ulp() {
    // pow is not correctly rounded in every case, and the functions are correctly
    // rounded but for rare ties. So they differ by at most one unit in the last place.
    for n in 0..2000 {
        let d = (n as f64 - 1000.0) * 0.123_456_789 + 1e-3;
        for (ours, reference) in [(cube(d), d.powf(3.0)), (fourth_power(d), d.powf(4.0))] {
            let ulp = reference.abs() * f64::EPSILON;
            assert!(
                (ours - reference).abs() <= ulp,
                "{d}: {ours} against {reference}"
            );
        }
    }
}

#[test]
fn pairwise_sum_groups_like_numpy() {
    // numpy.sum of these 20 values is 17.0; summing left to right gives 3.0, because
    // the ones added while 1e16 is in the running sum are lost.
    let mut terms = vec![1e16];
    terms.extend([1.0; 15]);
    terms.push(-1e16);
    terms.extend([1.0; 3]);
    assert_eq!(pairwise_sum(&terms), 17.0);
}

#[test]
fn pairwise_sum_is_exact_on_integers() {
    let terms: Vec<f64> = (1..=1000).map(f64::from).collect();
    assert_eq!(pairwise_sum(&terms), 500_500.0);
    assert_eq!(pairwise_sum(&terms[..7]), 28.0);
    assert_eq!(pairwise_sum(&terms[..100]), 5050.0);
}
