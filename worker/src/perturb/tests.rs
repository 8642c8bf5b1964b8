//! Tests of the whole perturbation chain: reproducibility, the output box
//! against the whole-grid chain, plan ranges, errors, and a real MR image.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array3;
use rand::SeedableRng;

use super::test_volumes::{disc_mask, volume};
use super::*;
use crate::image::nifti::read_volume;
use crate::mask::select_label;

fn plan(repeats: u32, max_angle_deg: f64, max_volume_change_mm: f64, noise: bool) -> ValidPlan {
    PerturbationPlan {
        repeats,
        max_angle_deg,
        max_volume_change_mm,
        noise,
    }
    .validate()
    .expect("valid plan")
}

/// Returns a 72 × 64 × 20 volume with 0.9 × 1.1 × 2.5 mm voxels (a smooth
/// blob plus a deterministic texture) and a cylindrical ROI of radius 8 mm
/// over slices 7 to 10. The output box of the default plan then lies strictly
/// inside the grid along every axis.
fn phantom() -> (Volume, Roi) {
    let (ni, nj, nk) = (72, 64, 20);
    let spacing = [0.9, 1.1, 2.5];
    let data = Array3::from_shape_fn((ni, nj, nk), |(i, j, k)| {
        let (x, y) = (i as f64 - 35.0, j as f64 - 31.0);
        200.0 * (-(x * x + y * y) / 120.0).exp() + 10.0 * ((i * 7 + j * 13 + k * 5) % 11) as f64
    });
    let mut mask = disc_mask(ni, nj, nk, [35.0 * 0.9, 31.0 * 1.1], 8.0, spacing);
    for k in (0..7).chain(11..nk) {
        mask.slice_mut(ndarray::s![.., .., k]).fill(false);
    }
    (volume(data, spacing), roi_from_mask(mask))
}

#[test]
fn perturbed_copies_same_seed_is_reproducible() {
    let (image, roi) = phantom();
    let plan = plan(4, 10.0, 1.0, true);
    let first = perturbed_copies(&image, &roi, &plan, 42).expect("valid input");
    let second = perturbed_copies(&image, &roi, &plan, 42).expect("valid input");
    assert_eq!(first.len(), 4);
    for (repeat, (a, b)) in first.iter().zip(&second).enumerate() {
        assert_eq!(a.0.data, b.0.data, "image of repeat {repeat}");
        assert_eq!(a.1.mask, b.1.mask, "mask of repeat {repeat}");
    }
    let other_seed = perturbed_copies(&image, &roi, &plan, 43).expect("valid input");
    assert_ne!(first[0].0.data, other_seed[0].0.data);
}

#[test]
fn perturbed_copies_do_not_depend_on_order() {
    let (image, roi) = phantom();
    let plan = plan(5, 10.0, 1.0, true);
    let all = perturbed_copies(&image, &roi, &plan, 7).expect("valid input");
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");
    for repeat in (0..5).rev() {
        let (copy, copy_roi) = perturber.copy(7, repeat).expect("valid input");
        let (expected, expected_roi) = &all[repeat as usize];
        assert_eq!(copy.data, expected.data, "repeat {repeat}");
        assert_eq!(copy_roi.mask, expected_roi.mask, "repeat {repeat}");
    }
    // Different repeats get different draws.
    assert_ne!(all[0].0.data, all[1].0.data);
}

#[test]
fn perturbed_copy_box_matches_whole_grid_chain() {
    let (image, roi) = phantom();
    let plan = plan(2, 10.0, 1.0, false);
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");
    let region = perturber.region();
    let end = region.end();
    for axis in 0..3 {
        assert!(
            region.start[axis] > 0,
            "box touches the grid's low border along axis {axis}"
        );
        assert!(
            end[axis] < [72, 64, 20][axis],
            "box touches the grid's high border along axis {axis}"
        );
    }

    let centre = perturber.centre_mm();
    let spacing = image.geometry.spacing;
    for (angle_deg, volume_change_mm) in [(9.7, 0.95), (-10.0, -1.0), (3.3, 0.4), (0.0, 1.0)] {
        let draws = Draws {
            angle_deg,
            volume_change_mm,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let (copy, copy_roi) = perturber
            .copy_with(0, draws, &mut rng)
            .expect("valid input");

        let (whole, whole_roi) =
            rotate::rotate_in_plane(&image, &roi, angle_deg, centre).expect("valid input");
        let whole_roi = adapt_volume(&whole_roi, spacing, volume_change_mm).expect("valid input");
        let case = format!("θ = {angle_deg}°, r = {volume_change_mm} mm");
        assert_eq!(copy.data, region.crop(&whole.data), "image, {case}");
        assert_eq!(copy_roi.mask, region.crop(&whole_roi.mask), "mask, {case}");
        assert_eq!(
            copy_roi.voxel_count, whole_roi.voxel_count,
            "no ROI voxel outside the box, {case}"
        );
    }
}

#[test]
fn perturbed_copy_geometry_is_box_of_grid() {
    let (mut image, roi) = phantom();
    image.geometry.origin = [-10.0, 5.0, 2.0];
    let plan = plan(2, 10.0, 1.0, true);
    let copies = perturbed_copies(&image, &roi, &plan, 1).expect("valid input");
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");
    let region = perturber.region();
    for (copy, copy_roi) in &copies {
        assert_eq!(copy.geometry.dims, region.shape);
        assert_eq!(copy.data.shape(), &region.shape[..]);
        assert_eq!(copy_roi.mask.shape(), &region.shape[..]);
        assert_eq!(copy.geometry.spacing, image.geometry.spacing);
        let [i0, j0, k0] = region.start;
        let expected = [
            -10.0 + 0.9 * i0 as f64,
            5.0 + 1.1 * j0 as f64,
            2.0 + 2.5 * k0 as f64,
        ];
        for (axis, (&origin, &want)) in copy.geometry.origin.iter().zip(&expected).enumerate() {
            assert!(
                (origin - want).abs() < 1e-12,
                "origin axis {axis}: {origin} vs {want}"
            );
        }
    }
}

#[test]
fn perturbed_copies_zero_ranges_without_noise_are_crops() {
    let (image, roi) = phantom();
    let plan = plan(3, 0.0, 0.0, false);
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");
    let region = perturber.region();
    for (copy, copy_roi) in perturbed_copies(&image, &roi, &plan, 5).expect("valid input") {
        assert_eq!(copy.data, region.crop(&image.data));
        assert_eq!(copy_roi.mask, region.crop(&roi.mask));
        assert_eq!(copy_roi.voxel_count, roi.voxel_count);
    }
}

#[test]
fn perturbed_copies_noise_has_estimated_sigma() {
    let (image, roi) = phantom();
    let plan = plan(2, 0.0, 0.0, true);
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");
    let estimate = perturber.noise_estimate().expect("the plan adds noise");
    assert!(estimate.sigma > 0.0);
    let original = perturber.region().crop(&image.data);
    let (copy, _) = perturber.copy(9, 0).expect("valid input");
    let added = &copy.data - &original;
    let count = added.len() as f64;
    let mean = added.sum() / count;
    let sample_sigma =
        (added.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0)).sqrt();
    // Over n > 10⁴ draws the sample standard deviation has a relative
    // standard error 1/√(2n) below 0.7 %, so 5 % is over 7 standard errors.
    assert!(count > 1e4, "{count} voxels in the box");
    assert!(
        (sample_sigma - estimate.sigma).abs() <= 0.05 * estimate.sigma,
        "added noise σ {sample_sigma}, estimate {}",
        estimate.sigma
    );
}

#[test]
fn draws_cover_plan_ranges() {
    let plan = plan(2, 10.0, 1.0, true);
    let mut angles = Vec::new();
    let mut changes = Vec::new();
    for repeat in 0..200 {
        let mut rng = repeat_rng(3, repeat);
        let draws = Draws::sample(&plan, &mut rng);
        assert!((-10.0..=10.0).contains(&draws.angle_deg), "{draws:?}");
        assert!((-1.0..=1.0).contains(&draws.volume_change_mm), "{draws:?}");
        angles.push(draws.angle_deg);
        changes.push(draws.volume_change_mm);
    }
    // 200 uniform draws: each of the four outer tenths of the ranges is hit
    // with probability 1 − 0.9²⁰⁰ ≈ 1 − 7e-10.
    assert!(angles.iter().any(|&a| a < -8.0), "no angle below −8°");
    assert!(angles.iter().any(|&a| a > 8.0), "no angle above 8°");
    assert!(changes.iter().any(|&r| r < -0.8), "no change below −0.8 mm");
    assert!(changes.iter().any(|&r| r > 0.8), "no change above 0.8 mm");
}

#[test]
fn repeat_rng_streams_differ_and_repeat() {
    use rand::RngCore;
    let first: Vec<u64> = (0..3)
        .map(|repeat| repeat_rng(11, repeat).next_u64())
        .collect();
    assert_ne!(first[0], first[1]);
    assert_ne!(first[1], first[2]);
    assert_eq!(repeat_rng(11, 2).next_u64(), first[2]);
}

#[test]
fn perturbed_copy_thin_roi_reports_repeat() {
    // A line of voxels along k: in-plane rotation about its own axis and
    // changes below the 1 mm in-plane spacing leave it a line, which the
    // mask rule rejects (extent > 1 along one axis only).
    let spacing = [1.0, 1.0, 2.0];
    let image = volume(Array3::from_elem((9, 9, 6), 5.0), spacing);
    let mut mask = Array3::from_elem((9, 9, 6), false);
    mask.slice_mut(ndarray::s![4, 4, 1..5]).fill(true);
    let roi = roi_from_mask(mask);
    let plan = plan(3, 10.0, 0.5, false);
    let error = perturbed_copies(&image, &roi, &plan, 0).unwrap_err();
    assert!(
        matches!(
            error,
            PerturbError::RoiTooSmall {
                repeat: 0,
                voxels: 4,
                dimensions: 1,
                extent: [1, 1, 4],
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().starts_with("repeat 0: perturbed ROI"),
        "{error}"
    );
}

#[test]
fn perturbed_copy_eroded_away_is_too_small() {
    let (image, roi) = phantom();
    let plan = plan(2, 10.0, 20.0, false);
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");
    let draws = Draws {
        angle_deg: 2.0,
        volume_change_mm: -9.0,
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let error = perturber.copy_with(3, draws, &mut rng).unwrap_err();
    assert_eq!(
        error,
        PerturbError::RoiTooSmall {
            repeat: 3,
            angle_deg: 2.0,
            volume_change_mm: -9.0,
            voxels: 0,
            dimensions: 0,
            extent: [0, 0, 0],
        }
    );
}

#[test]
fn perturber_invalid_input_is_rejected() {
    let (image, roi) = phantom();
    let plan = plan(2, 10.0, 1.0, true);

    let other = roi_from_mask(Array3::from_elem((72, 64, 8), true));
    let error = Perturber::new(&image, &other, &plan).unwrap_err();
    assert_eq!(
        error,
        PerturbError::ShapeMismatch {
            image: [72, 64, 20],
            mask: [72, 64, 8]
        }
    );

    let empty = roi_from_mask(Array3::from_elem((72, 64, 20), false));
    assert_eq!(
        Perturber::new(&image, &empty, &plan).unwrap_err(),
        PerturbError::EmptyRoi
    );

    let mut broken = image.clone();
    broken.data[[40, 2, 8]] = f64::NAN;
    let error = Perturber::new(&broken, &roi, &plan).unwrap_err();
    assert!(
        matches!(
            error,
            PerturbError::NonFiniteIntensity {
                voxel: [40, 2, 8],
                ..
            }
        ),
        "{error}"
    );

    let flat = volume(Array3::zeros((1, 64, 20)), image.geometry.spacing);
    let flat_roi = roi_from_mask(Array3::from_elem((1, 64, 20), true));
    let error = Perturber::new(&flat, &flat_roi, &plan).unwrap_err();
    assert!(matches!(error, PerturbError::NoiseEstimation(_)), "{error}");
}

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn sts_001() -> (Volume, Roi) {
    let root = data_root().join("sts/STS_001");
    let image = read_volume(&root.join("MR_T1_image.nii.gz")).expect("STS_001 MR image reads");
    let labels = read_volume(&root.join("MR_T1_mask.nii.gz")).expect("STS_001 MR mask reads");
    let roi = select_label(&labels, 1).expect("STS_001 mask has label 1");
    (image, roi)
}

#[test]
fn perturbed_copies_sts_001_mr_are_valid() {
    let (image, roi) = sts_001();
    let plan = PerturbationPlan::default()
        .validate()
        .expect("defaults are valid");
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");

    // σ̂ and block counts of this image, computed independently with numpy
    // 2.4.6 from the same Haar blocks.
    let estimate = perturber.noise_estimate().expect("the plan adds noise");
    assert!(
        (estimate.sigma - 23.72).abs() < 0.01,
        "σ̂ = {}",
        estimate.sigma
    );

    let copies = perturbed_copies(&image, &roi, &plan, 2024).expect("STS_001 perturbs");
    assert_eq!(copies.len(), 10);
    for (repeat, (copy, copy_roi)) in copies.iter().enumerate() {
        assert_eq!(
            copy.geometry.dims,
            perturber.region().shape,
            "repeat {repeat}"
        );
        // |r| ≤ 1 mm moves the surface by at most one in-plane voxel
        // (0.98 mm) and never across slices (3.27 mm). One in-plane surface
        // layer of this ROI is about 6,300 voxels (5.4 %), and rotation
        // changes the count by far less, so 10 % bounds the change.
        let change = copy_roi.voxel_count.abs_diff(roi.voxel_count) as f64;
        assert!(
            change <= 0.10 * roi.voxel_count as f64,
            "repeat {repeat}: {} voxels, original {}",
            copy_roi.voxel_count,
            roi.voxel_count
        );
    }
}

/// Prints the time of each step on STS_001 (run with `--ignored
/// --nocapture`). It asserts nothing about time, which depends on the
/// machine.
#[test]
#[ignore = "timing report, not a check"]
fn perturbed_copies_sts_001_timing() {
    let started = Instant::now();
    let (image, roi) = sts_001();
    let read = started.elapsed();

    let plan = PerturbationPlan::default()
        .validate()
        .expect("defaults are valid");
    let started = Instant::now();
    let perturber = Perturber::new(&image, &roi, &plan).expect("valid input");
    let prepared = started.elapsed();

    let started = Instant::now();
    let copies: Vec<_> = (0..plan.repeats())
        .map(|repeat| perturber.copy(2024, repeat).expect("STS_001 perturbs"))
        .collect();
    let copied = started.elapsed();

    let started = Instant::now();
    let all = perturbed_copies(&image, &roi, &plan, 2024).expect("STS_001 perturbs");
    let total = started.elapsed();
    assert_eq!(all.len(), copies.len());

    println!(
        "STS_001 MR {:?}, ROI {} voxels, box {:?} from {:?}",
        image.geometry.dims,
        roi.voxel_count,
        perturber.region().shape,
        perturber.region().start
    );
    println!("read image and mask: {read:?}");
    println!("prepare (checks, σ̂, B-spline coefficients): {prepared:?}");
    println!("10 copies: {copied:?}");
    println!("perturbed_copies, 10 repeats, total: {total:?}");
}
