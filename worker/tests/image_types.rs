//! Parity of every implemented image type with PyRadiomics on its brain1 and breast1 test
//! cases. The expected values are `tests/image_types/expected*.json`, written by
//! `tests/image_types/generate_expected.py` from the parameter file named in each JSON;
//! the JSON records the PyRadiomics, SimpleITK, PyWavelets and numpy versions used.
//!
//! Tolerance: 1e-6 relative (absolute 1e-9 near zero) for every image type, the bound
//! for an unchanged definition. The filtered images equal PyRadiomics' to f64 rounding
//! (wavelet bands within 1e-14 relative), and the features are sums over at most 10⁴ ROI
//! voxels. Gradient and LoG follow SimpleITK's float32 arithmetic: on brain1 the Gradient
//! image and the σ = 1 mm LoG image are bit-identical to SimpleITK 2.5.7's, and at
//! σ = 3 mm 0.0002% of the voxels differ by one float32 step (6e-7 relative), which moved
//! no feature beyond 1e-9 absolute on these cases. Such a voxel could cross a bin edge in
//! another image and change a texture feature by more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use radstudy_worker::config::GeometryTolerance;
use radstudy_worker::features::image_types::compute_image_types;
use radstudy_worker::image::{read_image_file, read_volume};
use radstudy_worker::mask::{place_on_image_grid, select_label_spanning};
use radstudy_worker::params::read_parameter_file;

const RELATIVE_TOLERANCE: f64 = 1e-6;
const ABSOLUTE_TOLERANCE: f64 = 1e-9;

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/image_types")
        .join(name)
}

/// Returns the image type of a feature column: the part before the first `_`.
fn image_type_of(column: &str) -> &str {
    column.split('_').next().unwrap_or(column)
}

#[test]
fn image_types_match_pyradiomics_features() {
    assert_matches_pyradiomics("expected.json");
}

#[test]
fn image_types_after_pre_crop_match_pyradiomics() {
    assert_matches_pyradiomics("expected_precrop.json");
}

/// Computes every case of one expected-values file with its parameter file and asserts
/// that the columns are PyRadiomics' and each value is within tolerance.
fn assert_matches_pyradiomics(expected_file: &str) {
    let text = std::fs::read_to_string(fixture(expected_file)).expect("expected values read");
    let expected: serde_json::Value = serde_json::from_str(&text).expect("expected values parse");
    let cases = expected["cases"].as_object().expect("cases is an object");
    let parameters_file = expected["parameters"]
        .as_str()
        .expect("parameters names a file");
    let parameters =
        read_parameter_file(&fixture(parameters_file)).expect("parameter file is valid");
    println!(
        "{expected_file}: values from {parameters_file}, {}",
        expected["versions"]
    );

    let mut misses = Vec::new();
    let mut max_relative: BTreeMap<String, f64> = BTreeMap::new();
    for (case, features) in cases {
        let features = features.as_object().expect("case maps names to values");
        let file = read_image_file(&data_root().join(format!("pyradiomics/{case}_image.nrrd")))
            .expect("case image reads");
        let image = file.volume;
        let labels = read_volume(&data_root().join(format!("pyradiomics/{case}_label.nrrd")))
            .expect("case mask reads");
        let labels = place_on_image_grid(
            &labels,
            &image.geometry,
            &GeometryTolerance::default(),
            parameters.settings.label,
        )
        .expect("mask lies on the image grid");
        let roi = select_label_spanning(
            &labels,
            parameters.settings.label,
            parameters.options.minimum_roi_dimensions,
        )
        .expect("ROI is valid");

        let computed = compute_image_types(
            &image,
            file.pixel_type,
            &roi,
            &parameters.settings,
            &parameters.options,
            &parameters.image_types,
        )
        .unwrap_or_else(|error| panic!("{case}: {error}"));
        let computed: BTreeMap<String, f64> = computed.into_iter().collect();

        let expected_names: Vec<&String> = features.keys().collect();
        let computed_names: Vec<&String> = computed.keys().collect();
        assert_eq!(
            computed_names, expected_names,
            "{case}: radstudy's feature columns differ from PyRadiomics'"
        );

        for (name, value) in features {
            let expected = value.as_f64().expect("expected value is a number");
            let actual = computed[name];
            let difference = (actual - expected).abs();
            let relative = if expected == 0.0 {
                if difference == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                difference / expected.abs()
            };
            let entry = max_relative
                .entry(image_type_of(name).to_string())
                .or_default();
            if difference > ABSOLUTE_TOLERANCE {
                *entry = entry.max(relative);
            }
            if relative > RELATIVE_TOLERANCE && difference > ABSOLUTE_TOLERANCE {
                misses.push(format!(
                    "{case} {name}: radstudy {actual:e}, PyRadiomics {expected:e} (relative {relative:.2e})"
                ));
            }
        }
    }

    for (image_type, relative) in &max_relative {
        println!(
            "{image_type}: max relative difference {relative:.2e} (differences <= 1e-9 count as 0)"
        );
    }
    assert!(
        misses.is_empty(),
        "values outside tolerance:\n{}",
        misses.join("\n")
    );
}
