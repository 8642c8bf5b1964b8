use std::path::{Path, PathBuf};

use ndarray::Array3;

use super::*;
use crate::image::read_volume;

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn axis_aligned(dims: [usize; 3], spacing: [f64; 3]) -> Geometry {
    Geometry {
        dims,
        spacing,
        origin: [0.0; 3],
        direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    }
}

fn volume(data: Array3<f64>, spacing: [f64; 3], integer: bool) -> Volume {
    let (i, j, k) = data.dim();
    Volume {
        data,
        geometry: axis_aligned([i, j, k], spacing),
        stored_as_integer: integer,
    }
}

#[test]
fn prefilter_then_evaluate_reproduces_samples() {
    // Interpolation: the spline through the coefficients passes through
    // every sample. The prefilter's causal start is truncated at 1e-10,
    // so the samples come back to about 1e-9 of their size.
    let data = Array3::from_shape_fn((7, 5, 4), |(i, j, k)| {
        ((i * 31 + j * 17 + k * 7) % 23) as f64 * 10.0 - 50.0
    });
    let coefficients = bspline_coefficients(&data);
    let positions: [Vec<f64>; 3] =
        std::array::from_fn(|axis| (0..data.shape()[axis]).map(|n| n as f64).collect());
    let values = sample_bspline(&coefficients, &positions);
    for (value, sample) in values.iter().zip(data.iter()) {
        assert!(
            (value - sample).abs() < 1e-9 * 250.0,
            "{value} against {sample}"
        );
    }
}

#[test]
fn prefilter_short_line_uses_exact_mirror_start() {
    // A line shorter than the 1e-10 horizon (18 samples) takes the exact
    // mirrored start; the spline still passes through the samples.
    let mut line = vec![3.0, -1.0, 4.0, 1.0, -5.0];
    let samples = line.clone();
    prefilter_line(&mut line);
    let coefficients = Array3::from_shape_fn((5, 1, 1), |(i, _, _)| line[i]);
    let positions = [(0..5).map(|n| n as f64).collect(), vec![0.0], vec![0.0]];
    let values = sample_bspline(&coefficients, &positions);
    for (value, sample) in values.iter().zip(&samples) {
        assert!((value - sample).abs() < 1e-12, "{value} against {sample}");
    }
}

#[test]
fn mirror_folds_without_repeating_the_edge() {
    assert_eq!(
        (-3..8).map(|index| mirror(index, 5)).collect::<Vec<_>>(),
        [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
    );
    assert_eq!(mirror(-4, 1), 0);
}

#[test]
fn linear_midpoint_and_clamped_border() {
    let data = Array3::from_shape_fn((2, 1, 1), |(i, _, _)| [10.0, 20.0][i]);
    let positions = [vec![-0.4, 0.5, 1.4], vec![0.0], vec![0.0]];
    let values = sample(&data, &positions, Interpolator::Linear);
    assert_eq!(
        values.iter().copied().collect::<Vec<_>>(),
        [10.0, 15.0, 20.0]
    );
}

#[test]
fn nearest_rounds_halves_up_and_outside_is_zero() {
    let data = Array3::from_shape_fn((3, 1, 1), |(i, _, _)| [1.0, 2.0, 3.0][i]);
    let positions = [vec![-0.6, 0.5, 1.49, 2.6], vec![0.0], vec![0.0]];
    let values = sample(&data, &positions, Interpolator::Nearest);
    assert_eq!(
        values.iter().copied().collect::<Vec<_>>(),
        [0.0, 2.0, 2.0, 0.0]
    );
}

#[test]
fn grid_follows_pyradiomics_rules_on_a_small_case() {
    // 10 voxels of 1 mm, ROI at indices 3..=5, new spacing 2 mm, pad 1:
    // r = 0.5; lower = ⌊(3 − 0.5)·0.5 − 1⌋ = 0; upper = ⌈(6 − 0.5)·0.5 + 1⌉
    // = 4, within ⌈10·0.5⌉ − 1 = 4; so 5 new voxels, and new voxel 0 sits
    // at old index ½·(2 − 1)/1 + 0 = 0.5.
    let mut labels = Array3::zeros((10, 3, 3));
    for i in 3..=5 {
        for j in 0..3 {
            for k in 0..3 {
                labels[[i, j, k]] = 1.0;
            }
        }
    }

    let image = volume(Array3::from_elem((10, 3, 3), 7.0), [1.0; 3], false);
    let labels = volume(labels, [1.0; 3], true);
    let settings = ResampleSettings {
        spacing: [2.0, 0.0, 0.0],
        interpolator: Interpolator::Linear,
        pad_distance: 1.0,
    };
    let resampled = resample(&image, &labels, 1, &settings).expect("resamples");

    assert!(resampled.interpolated);
    assert_eq!(resampled.image.geometry.dims, [5, 3, 3]);
    assert_eq!(resampled.image.geometry.spacing, [2.0, 1.0, 1.0]);
    assert_eq!(resampled.image.geometry.origin, [0.5, 0.0, 0.0]);
    // A constant image stays constant under linear interpolation.
    assert!(resampled.image.data.iter().all(|&v| v == 7.0));
    // New centres at old indices 0.5, 2.5, 4.5, 6.5, 8.5 round to 1, 3, 5,
    // 7, 9: the ROI keeps new voxels 1 and 2.
    let row: Vec<f64> = (0..5).map(|a| resampled.labels.data[[a, 1, 1]]).collect();
    assert_eq!(row, [0.0, 1.0, 1.0, 0.0, 0.0]);
}

#[test]
fn same_spacing_is_not_interpolated() {
    let image = volume(Array3::from_elem((4, 4, 4), 1.0), [1.0; 3], false);
    let labels = volume(Array3::from_elem((4, 4, 4), 1.0), [1.0; 3], true);
    let settings = ResampleSettings {
        spacing: [1.0, 1.0, 1.0 + 1e-9],
        interpolator: Interpolator::BSpline,
        pad_distance: 5.0,
    };
    let resampled = resample(&image, &labels, 1, &settings).expect("resamples");
    assert!(!resampled.interpolated);
}

#[test]
fn roi_between_new_voxel_centres_vanishes_with_reason() {
    // The ROI is old voxels j = 2 and 3 of six 1 mm voxels. At 3 mm along
    // j the new centres sit at old j = 0.5·(3 − 1) = 1 and 4: neither lies
    // in the ROI. At 2 mm they sit at 0.5, 2.5, 4.5, and 2.5 rounds to 3.
    let mut labels = Array3::zeros((2, 6, 2));
    for i in 0..2 {
        for k in 0..2 {
            labels[[i, 2, k]] = 1.0;
            labels[[i, 3, k]] = 1.0;
        }
    }

    let image = volume(Array3::from_elem((2, 6, 2), 1.0), [1.0; 3], false);
    let labels = volume(labels, [1.0; 3], true);
    let along_j = |spacing| ResampleSettings {
        spacing: [0.0, spacing, 0.0],
        interpolator: Interpolator::Nearest,
        pad_distance: 0.0,
    };

    assert!(resample(&image, &labels, 1, &along_j(2.0)).is_ok());
    let error = resample(&image, &labels, 1, &along_j(3.0)).unwrap_err();
    assert_eq!(
        error,
        ResampleError::RoiVanished {
            label: 1,
            spacing: [1.0, 3.0, 1.0]
        }
    );
    assert!(
        error
            .to_string()
            .contains("use a finer resampledPixelSpacing")
    );
}

#[test]
fn negative_spacing_is_rejected() {
    let image = volume(Array3::from_elem((2, 2, 2), 1.0), [1.0; 3], false);
    let settings = ResampleSettings {
        spacing: [1.0, -2.0, 1.0],
        interpolator: Interpolator::Linear,
        pad_distance: 5.0,
    };
    let error = resample(&image, &image, 1, &settings).unwrap_err();
    assert!(matches!(error, ResampleError::InvalidSpacing { .. }));
}

/// Compares with PyRadiomics 3.1.4's `resampleImage` over SimpleITK 2.5.7,
/// fingerprints recorded by worker/tests/resample/generate_expected.py.
#[test]
fn resample_matches_pyradiomics_on_its_test_cases() {
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/resample/expected.json"))
            .expect("expected.json parses");
    let root = data_root().join("pyradiomics");
    for case in expected["cases"].as_array().expect("cases") {
        let image = read_volume(&root.join(case["image"].as_str().expect("image"))).expect("image");
        let labels = read_volume(&root.join(case["mask"].as_str().expect("mask"))).expect("mask");
        let interpolator =
            Interpolator::from_sitk_name(case["interpolator"].as_str().expect("name"))
                .expect("known interpolator");
        let spacing: Vec<f64> =
            serde_json::from_value(case["spacing_requested"].clone()).expect("spacing");
        let settings = ResampleSettings {
            spacing: [spacing[0], spacing[1], spacing[2]],
            interpolator,
            pad_distance: 5.0,
        };
        let resampled = resample(&image, &labels, 1, &settings).expect("resamples");
        let name = format!("{} {:?} {:?}", case["image"], interpolator, spacing);

        // The grid is exact: size and spacing equal, origin to 1e-9 mm
        // (ITK and radstudy round the same mm arithmetic differently).
        let size: Vec<usize> = serde_json::from_value(case["size"].clone()).expect("size");
        assert_eq!(resampled.image.geometry.dims.to_vec(), size, "{name}");
        let origin: Vec<f64> = serde_json::from_value(case["origin_ras"].clone()).expect("origin");
        for axis in 0..3 {
            assert!(
                (resampled.image.geometry.origin[axis] - origin[axis]).abs() < 1e-9,
                "{name}: origin {:?} against {origin:?}",
                resampled.image.geometry.origin
            );
        }

        let roi_voxels = resampled.labels.data.iter().filter(|&&v| v == 1.0).count();
        let image_sum: f64 = resampled.image.data.sum();
        let roi_sum: f64 = resampled
            .image
            .data
            .iter()
            .zip(resampled.labels.data.iter())
            .filter(|(_, label)| **label == 1.0)
            .map(|(value, _)| value)
            .sum();
        let expected_roi = case["roi_voxels"].as_u64().expect("roi") as usize;
        let expected_sum = case["image_sum"].as_f64().expect("sum");
        let expected_roi_sum = case["roi_sum"].as_f64().expect("roi sum");
        // The images are int16, so both sides truncate interpolated values
        // to whole numbers: the sums and probes must agree exactly (an
        // interpolation difference above about 1e-12 could flip a value
        // that lies near a whole number, and would show here).
        assert_eq!(
            (roi_voxels, image_sum, roi_sum),
            (expected_roi, expected_sum, expected_roi_sum),
            "{name}"
        );
        for probe in case["probes"].as_array().expect("probes") {
            let index: Vec<usize> = serde_json::from_value(probe["index"].clone()).expect("index");
            let value = resampled.image.data[[index[0], index[1], index[2]]];
            assert_eq!(Some(value), probe["value"].as_f64(), "{name} at {index:?}");
        }
    }
}
