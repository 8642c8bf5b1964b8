//! Parity of the wavelet image type with PyRadiomics on float32 images: three
//! soft-tissue-sarcoma MR T1 lesions (`sts/STS_0{08,19,25}/MR_T1_*.nii.gz` under
//! `RADSTUDY_DATA_ROOT`), whose NIfTI files store float32 voxels. PyWavelets transforms
//! them in single precision, so radstudy must too. The expected values are
//! `tests/wavelet_float32/expected.json`, written by
//! `tests/wavelet_float32/generate_expected.py` (its docstring has the command) with
//! `tests/wavelet_float32/params.yaml`: every band, every intensity and texture class.
//!
//! Tolerance: 1e-6 relative (absolute 1e-9 near zero), the bound for an unchanged
//! definition. The bands equal PyWavelets' float32 bands bit for bit, so the features
//! differ only by the order of f64 sums over at most 10⁴ ROI voxels. A band computed in
//! f64 instead differs by about 1e-7 relative, which moves voxels across bin edges. The
//! second test checks that this fixture catches that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use radstudy_worker::config::GeometryTolerance;
use radstudy_worker::features::image_types::compute_image_types;
use radstudy_worker::image::{PixelType, read_image_file, read_volume};
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
        .join("tests/wavelet_float32")
        .join(name)
}

#[test]
fn wavelet_float32_matches_pyradiomics() {
    let misses = compare_with_pyradiomics(None);
    assert!(
        misses.is_empty(),
        "values outside tolerance:\n{}",
        misses.join("\n")
    );
}

#[test]
fn wavelet_float64_misses_float32_fixture() {
    // The same images transformed in f64, as if they were float64 files: some texture
    // features must leave the tolerance, or the fixture could not tell the paths apart.
    let misses = compare_with_pyradiomics(Some(PixelType::Float64));
    println!(
        "{} features outside tolerance with the f64 wavelet",
        misses.len()
    );
    assert!(
        !misses.is_empty(),
        "the f64 wavelet matched PyRadiomics' float32 values on every feature"
    );
}

/// Computes every case of `expected.json` and returns the features outside tolerance.
/// `pixel_type` overrides the pixel type read from the file.
fn compare_with_pyradiomics(pixel_type: Option<PixelType>) -> Vec<String> {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("expected values read");
    let expected: serde_json::Value = serde_json::from_str(&text).expect("expected values parse");
    let cases = expected["cases"].as_object().expect("cases is an object");
    let parameters = read_parameter_file(&fixture("params.yaml")).expect("parameter file is valid");

    let mut misses = Vec::new();
    for (case, features) in cases {
        let features = features.as_object().expect("case maps names to values");
        let folder = data_root().join("sts").join(case);
        let file = read_image_file(&folder.join("MR_T1_image.nii.gz")).expect("case image reads");
        assert_eq!(file.pixel_type, PixelType::Float32, "{case}");
        let labels = read_volume(&folder.join("MR_T1_mask.nii.gz")).expect("case mask reads");
        let labels = place_on_image_grid(
            &labels,
            &file.volume.geometry,
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
            &file.volume,
            pixel_type.unwrap_or(file.pixel_type),
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
            if difference > ABSOLUTE_TOLERANCE && difference > RELATIVE_TOLERANCE * expected.abs() {
                misses.push(format!(
                    "{case} {name}: radstudy {actual:e}, PyRadiomics {expected:e}"
                ));
            }
        }
    }
    misses
}
