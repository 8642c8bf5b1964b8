//! Helpers shared by the feature-class tests: wrapping grey levels in a
//! [`TextureInput`], looking up a feature by name, and comparing values with a
//! relative tolerance.

use ndarray::Array3;

use super::discretize::TextureInput;

/// Wraps grey levels in a [`TextureInput`] with N_g the highest level and 1 mm
/// spacing.
pub(crate) fn input(levels: Array3<u32>) -> TextureInput {
    let n_levels = levels.iter().copied().max().unwrap_or(0);
    TextureInput {
        levels,
        n_levels,
        spacing: [1.0; 3],
    }
}

pub(crate) fn feature(features: &[(&'static str, f64)], name: &str) -> f64 {
    features
        .iter()
        .find(|(feature_name, _)| *feature_name == name)
        .map(|&(_, value)| value)
        .unwrap_or_else(|| panic!("feature {name} missing from the output"))
}

pub(crate) fn assert_close(name: &str, actual: f64, expected: f64, relative_tolerance: f64) {
    let scale = expected.abs().max(1e-300);
    assert!(
        (actual - expected).abs() <= relative_tolerance * scale,
        "{name}: got {actual:e}, expected {expected:e} (relative difference {:e})",
        (actual - expected).abs() / scale
    );
}

/// Asserts that each `(name, value)` of `expected` matches the feature of that
/// name within `relative_tolerance`.
pub(crate) fn assert_features(
    label: &str,
    features: &[(&'static str, f64)],
    expected: &[(&str, f64)],
    relative_tolerance: f64,
) {
    for &(name, value) in expected {
        assert_close(
            &format!("{label} {name}"),
            feature(features, name),
            value,
            relative_tolerance,
        );
    }
}
