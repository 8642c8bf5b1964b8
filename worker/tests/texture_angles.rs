//! Texture features with angle settings that PyRadiomics' own baselines do not cover:
//! `weightingNorm` manhattan, euclidean and infinity, `force2Ddimension` 1 and 2, and
//! force2D with weighting. The expected values in `tests/texture_angles/reference.csv` come
//! from PyRadiomics 3.1.4 (`pyradiomics-bhklab`) on breast1 of the shared data, written by
//! `tests/texture_angles/make_reference.py`.
//!
//! Tolerance: relative difference at most 1e-6, or absolute at most 1e-9 near zero, as in
//! `pyradiomics_parity.rs`. The weighted matrices are sums of products of counts and
//! weights that this crate adds in another order than numpy, which moves the last bits only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use radstudy_worker::config::GeometryTolerance;
use radstudy_worker::features::compute_with_options;
use radstudy_worker::image::read_volume;
use radstudy_worker::mask::{place_on_image_grid, select_label_spanning};
use radstudy_worker::params::parse_parameters;

const RELATIVE_TOLERANCE: f64 = 1e-6;
const ABSOLUTE_TOLERANCE: f64 = 1e-9;

/// Parameter file settings of each reference variant, as make_reference.py sets them.
const VARIANTS: [(&str, &str, &str); 6] = [
    ("manhattan", "weightingNorm: manhattan", "glcm, glrlm"),
    ("euclidean", "weightingNorm: euclidean", "glcm, glrlm"),
    ("infinity", "weightingNorm: infinity", "glcm, glrlm"),
    (
        "coronal",
        "force2D: true\n  force2Ddimension: 1",
        "glcm, glrlm, glszm, gldm, ngtdm",
    ),
    (
        "sagittal",
        "force2D: true\n  force2Ddimension: 2",
        "glcm, glrlm, glszm, gldm, ngtdm",
    ),
    (
        "axial_euclidean",
        "force2D: true\n  force2Ddimension: 0\n  weightingNorm: euclidean",
        "glcm, glrlm",
    ),
];

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Reads reference.csv into variant → (feature column → value).
fn read_reference() -> BTreeMap<String, BTreeMap<String, f64>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/texture_angles/reference.csv");
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
    let mut reference: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("reference row parses");
        let value: f64 = record[3]
            .parse()
            .unwrap_or_else(|_| panic!("reference value {:?} is no number", &record[3]));
        reference
            .entry(record[1].to_string())
            .or_default()
            .insert(record[2].to_string(), value);
    }
    reference
}

#[test]
fn angle_settings_match_pyradiomics() {
    let reference = read_reference();
    let image = read_volume(&data_root().join("pyradiomics/breast1_image.nrrd"))
        .expect("breast1 image reads");
    let labels = read_volume(&data_root().join("pyradiomics/breast1_label.nrrd"))
        .expect("breast1 mask reads");
    let labels = place_on_image_grid(&labels, &image.geometry, &GeometryTolerance::default(), 1)
        .expect("breast1 mask lies on the image grid");
    let roi = select_label_spanning(&labels, 1, 2).expect("breast1 ROI is valid");

    let mut misses = Vec::new();
    for (variant, settings, classes) in VARIANTS {
        let text = format!(
            "imageType:\n  Original: {{}}\nfeatureClass:\n{}\nsetting:\n  label: 1\n  binWidth: 25\n  distances: [1]\n  {settings}\n",
            classes
                .split(", ")
                .map(|class| format!("  {class}:"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let parameters =
            parse_parameters(&text).unwrap_or_else(|error| panic!("{variant}: {error}\n{text}"));
        let features =
            compute_with_options(&image, &roi, &parameters.settings, &parameters.options)
                .unwrap_or_else(|error| panic!("{variant}: {error}"));
        let features: BTreeMap<String, f64> = features.into_iter().collect();

        let expected = reference
            .get(variant)
            .unwrap_or_else(|| panic!("reference.csv has no variant {variant}"));
        assert_eq!(
            features.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{variant}: feature columns differ from PyRadiomics'"
        );
        let mut max_relative: f64 = 0.0;
        for (name, &value) in expected {
            let actual = features[name];
            let difference = (actual - value).abs();
            let relative = if value == 0.0 {
                difference
            } else {
                difference / value.abs()
            };
            max_relative = max_relative.max(relative);
            if difference > ABSOLUTE_TOLERANCE && relative > RELATIVE_TOLERANCE {
                misses.push(format!(
                    "{variant} {name}: radstudy {actual:e}, PyRadiomics {value:e} (relative {relative:.2e})"
                ));
            }
        }
        println!(
            "{variant}: {} values compared, max relative difference {max_relative:.2e}",
            expected.len()
        );
    }
    assert!(
        misses.is_empty(),
        "values outside tolerance:\n{}",
        misses.join("\n")
    );
}
