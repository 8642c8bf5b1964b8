use super::*;
use crate::perturb::test_volumes::{disc_mask, volume};
use ndarray::{Array2, ArrayView2, s};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Difference allowed where interpolation should return a voxel value
/// (rotations by multiples of 90°): the spline's prefilter and
/// evaluation round at about 1e-15 relative, for values below 100.
const AT_VOXEL_TOLERANCE: f64 = 1e-11;

fn random_volume(rng: &mut Xoshiro256PlusPlus, dims: (usize, usize, usize)) -> Volume {
    volume(
        Array3::from_shape_fn(dims, |_| rng.gen_range(0.0..100.0)),
        [1.0, 1.0, 2.5],
    )
}

/// Returns a random mask that is symmetric under the 180° turn about the
/// grid centre, so that its centroid is exactly the grid centre, but not
/// under 90° turns.
fn point_symmetric_mask(rng: &mut Xoshiro256PlusPlus, n: usize, nk: usize) -> Array3<bool> {
    let mut mask = Array3::from_elem((n, n, nk), false);
    for i in 0..n {
        for j in 0..n {
            for k in 0..nk {
                if rng.gen_bool(0.3) {
                    mask[[i, j, k]] = true;
                    mask[[n - 1 - i, n - 1 - j, k]] = true;
                }
            }
        }
    }
    mask
}

#[test]
fn rotate_zero_angle_is_identity() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
    let image = random_volume(&mut rng, (9, 7, 3));
    let roi = roi_from_mask(Array3::from_shape_fn((9, 7, 3), |_| rng.gen_bool(0.4)));
    for angle_deg in [0.0, -0.0, 360.0, -720.0] {
        let (rotated, rotated_roi) =
            rotate_in_plane(&image, &roi, angle_deg, [3.3, 2.1]).expect("valid input");
        assert_eq!(rotated.data, image.data, "{angle_deg}°");
        assert_eq!(rotated_roi.mask, roi.mask, "{angle_deg}°");
        assert_eq!(rotated_roi.voxel_count, roi.voxel_count, "{angle_deg}°");
    }
}

/// Returns a square slice turned by `quarter_turns` × 90° about its
/// centre with ndarray views. Output (i, j) reads source (j, n−1−i) for
/// +90°, which is the transpose with axis 0 reversed. −90° reverses axis
/// 1 of the transpose, and 180° reverses both axes.
fn turned<T: Clone>(source: ArrayView2<T>, quarter_turns: i32) -> Array2<T> {
    match quarter_turns.rem_euclid(4) {
        0 => source.to_owned(),
        1 => source.t().slice(s![..;-1, ..]).to_owned(),
        2 => source.slice(s![..;-1, ..;-1]).to_owned(),
        _ => source.t().slice(s![.., ..;-1]).to_owned(),
    }
}

#[test]
fn rotate_quarter_turns_permute_voxels() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(22);
    let n = 8;
    let image = random_volume(&mut rng, (n, n, 2));
    let roi = roi_from_mask(point_symmetric_mask(&mut rng, n, 2));
    let centre = roi_centroid_mm(&roi.mask, image.geometry.spacing).expect("non-empty");
    assert_eq!(centre, [3.5, 3.5]);

    for quarter_turns in [1, -3, -1, 2] {
        let angle_deg = 90.0 * f64::from(quarter_turns);
        let (rotated, rotated_roi) =
            rotate_in_plane(&image, &roi, angle_deg, centre).expect("valid input");
        for k in 0..2 {
            let expected = turned(roi.mask.slice(s![.., .., k]), quarter_turns);
            assert_eq!(
                rotated_roi.mask.slice(s![.., .., k]),
                expected,
                "mask, {angle_deg}°, slice {k}"
            );

            let expected = turned(image.data.slice(s![.., .., k]), quarter_turns);
            let actual = rotated.data.slice(s![.., .., k]);
            for ((index, &value), &want) in actual.indexed_iter().zip(expected.iter()) {
                assert!(
                    (value - want).abs() <= AT_VOXEL_TOLERANCE,
                    "image, {angle_deg}°, slice {k}, voxel {index:?}: {value} vs {want}"
                );
            }
        }
        assert_eq!(rotated_roi.voxel_count, roi.voxel_count, "{angle_deg}°");
    }
}

#[test]
fn rotate_source_index_uses_physical_spacing() {
    // Spacing 0.5 mm along i and 1 mm along j, centre at the origin voxel.
    let rotation = InPlaneRotation::new(90.0, [0.0, 0.0], [0.5, 1.0]).expect("valid");
    // Output voxel (0, 2) is at (0, 2) mm. Rotating back by −90° maps it
    // to (2, 0) mm, which is index (4, 0).
    assert_eq!(rotation.source_index(0, 2), [4.0, 0.0]);
    // Output voxel (2, 0) is at (1, 0) mm, from (0, −1) mm = index (0, −1).
    assert_eq!(rotation.source_index(2, 0), [0.0, -1.0]);
}

#[test]
fn rotate_reproduces_rotated_cubic_polynomial() {
    // A cubic polynomial lies in the spline space, so the rotated image
    // must equal the polynomial at the rotated coordinates wherever the
    // mirror boundary is far. The border's influence decays as 0.268^d
    // over d voxels, and sources here stay at least 14 voxels from the
    // border. The largest error measured is 1.6e-8 for values of order
    // 10², and the test allows 1e-6.
    let polynomial =
        |x: f64, y: f64| 0.001 * x * x * x - 0.02 * x * y + 0.05 * y * y + 1.5 * x - 0.7 * y + 30.0;
    let spacing = [0.8, 1.2, 3.0];
    let (ni, nj) = (60, 44);
    let data = Array3::from_shape_fn((ni, nj, 2), |(i, j, _)| {
        polynomial(i as f64 * spacing[0], j as f64 * spacing[1])
    });
    let image = volume(data, spacing);
    let roi = roi_from_mask(Array3::from_elem((ni, nj, 2), false));

    let centre = [24.0, 26.4];
    let angle_deg = 17.0;
    let (rotated, _) = rotate_in_plane(&image, &roi, angle_deg, centre).expect("valid input");
    let rotation =
        InPlaneRotation::new(angle_deg, centre, [spacing[0], spacing[1]]).expect("valid");

    let margin = 14.0;
    let mut checked = 0;
    for i in 0..ni {
        for j in 0..nj {
            let [x, y] = rotation.source_index(i, j);
            let far_from_border = x >= margin
                && y >= margin
                && x <= (ni - 1) as f64 - margin
                && y <= (nj - 1) as f64 - margin;
            if !far_from_border {
                continue;
            }
            let expected = polynomial(x * spacing[0], y * spacing[1]);
            for k in 0..2 {
                let value = rotated.data[[i, j, k]];
                assert!(
                    (value - expected).abs() <= 1e-6,
                    "voxel ({i}, {j}, {k}): {value} vs {expected}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} interior voxels checked");
}

#[test]
fn rotate_there_and_back_recovers_smooth_image() {
    // A Gaussian blob with σ = 4 voxels and a peak of 100: two cubic
    // B-spline resamplings (θ, then −θ) lose little of a signal this
    // smooth. The largest error measured for these angles is 0.0092, at
    // 23°, and the tolerance of 0.05 (5e-4 of the peak) is about 5 times
    // that. Only voxels within 16 voxels of the centre are compared,
    // because the first rotation filled the corners from the mirror
    // extension.
    let n = 48;
    let sigma = 4.0;
    let data = Array3::from_shape_fn((n, n, 1), |(i, j, _)| {
        let (x, y) = (i as f64 - 23.0, j as f64 - 25.0);
        100.0 * (-(x * x + y * y) / (2.0 * sigma * sigma)).exp()
    });
    let image = volume(data.clone(), [1.0, 1.0, 3.0]);
    let roi = roi_from_mask(Array3::from_elem((n, n, 1), false));
    let centre = [23.5, 24.0];
    for angle_deg in [3.0, 10.0, 23.0] {
        let (there, _) = rotate_in_plane(&image, &roi, angle_deg, centre).expect("valid input");
        let (back, _) = rotate_in_plane(&there, &roi, -angle_deg, centre).expect("valid input");
        let mut worst: f64 = 0.0;
        for ((i, j, k), &value) in back.data.indexed_iter() {
            let (dx, dy) = (i as f64 - centre[0], j as f64 - centre[1]);
            if (dx * dx + dy * dy).sqrt() < 16.0 {
                worst = worst.max((value - data[[i, j, k]]).abs());
            }
        }
        assert!(worst <= 0.05, "{angle_deg}°: largest error {worst}");
    }
}

#[test]
fn rotate_preserves_roi_voxel_count() {
    // Nearest-neighbour resampling is not one to one, so only voxels near
    // the ROI boundary can be gained or lost. The continuous shapes keep
    // their area, so the count may change by at most a small fraction of
    // the boundary voxels: the test allows 10 % of them.
    let n = 64;
    let spacing = [0.9, 1.1, 3.0];
    let disc = disc_mask(n, n, 2, [31.0 * 0.9, 30.0 * 1.1], 20.0, spacing);
    let rectangle = Array3::from_shape_fn((n, n, 2), |(i, j, _)| {
        (18..46).contains(&i) && (22..38).contains(&j)
    });
    let image = volume(Array3::zeros((n, n, 2)), spacing);
    for (name, mask) in [("disc", disc), ("rectangle", rectangle)] {
        let roi = roi_from_mask(mask);
        let boundary = boundary_voxels(&roi.mask);
        let centre = roi_centroid_mm(&roi.mask, spacing).expect("non-empty");
        for angle_deg in [-10.0, 4.0, 10.0, 33.0] {
            let (_, rotated) =
                rotate_in_plane(&image, &roi, angle_deg, centre).expect("valid input");
            let change = rotated.voxel_count.abs_diff(roi.voxel_count);
            assert!(
                change * 10 <= boundary,
                "{name}, {angle_deg}°: {} → {} voxels, {boundary} boundary voxels",
                roi.voxel_count,
                rotated.voxel_count
            );
        }
    }
}

/// Counts ROI voxels with an in-plane 4-neighbour outside the ROI.
fn boundary_voxels(mask: &Array3<bool>) -> usize {
    let (ni, nj, _) = mask.dim();
    mask.indexed_iter()
        .filter(|&((i, j, k), &inside)| {
            inside
                && [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)]
                    .iter()
                    .any(|&(di, dj)| {
                        let (a, b) = (i as i64 + di, j as i64 + dj);
                        a < 0
                            || b < 0
                            || a >= ni as i64
                            || b >= nj as i64
                            || !mask[[a as usize, b as usize, k]]
                    })
        })
        .count()
}

#[test]
fn rotate_region_matches_whole_grid() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
    let image = random_volume(&mut rng, (20, 18, 5));
    let roi = roi_from_mask(Array3::from_shape_fn((20, 18, 5), |(i, j, _)| {
        (6..12).contains(&i) && (5..13).contains(&j)
    }));
    let rotation = InPlaneRotation::new(12.5, [8.0, 8.5], [1.0, 1.0]).expect("valid");
    let (whole_image, whole_roi) =
        rotate_in_plane(&image, &roi, 12.5, [8.0, 8.5]).expect("valid input");

    let region = CropBox {
        start: [3, 2, 1],
        shape: [12, 14, 3],
    };
    let spline = InPlaneCubicBspline::new(image.data.slice(s![.., .., 1..4]));
    let part = rotate_image(&image.data, &spline, &rotation, &region);
    let part_mask = rotate_mask(&roi.mask, &rotation, &region);
    assert_eq!(part, region.crop(&whole_image.data));
    assert_eq!(part_mask, region.crop(&whole_roi.mask));
}

#[test]
fn rotate_invalid_input_is_rejected() {
    let image = volume(Array3::zeros((4, 4, 2)), [1.0; 3]);
    let roi = roi_from_mask(Array3::from_elem((4, 4, 2), true));
    let error = rotate_in_plane(&image, &roi, f64::NAN, [1.0, 1.0]).unwrap_err();
    assert!(matches!(error, RotateError::InvalidAngle { .. }), "{error}");
    let error = rotate_in_plane(&image, &roi, 5.0, [f64::INFINITY, 1.0]).unwrap_err();
    assert!(
        matches!(error, RotateError::InvalidCentre { .. }),
        "{error}"
    );

    let other = roi_from_mask(Array3::from_elem((4, 3, 2), true));
    let error = rotate_in_plane(&image, &other, 5.0, [1.0, 1.0]).unwrap_err();
    assert_eq!(
        error,
        RotateError::ShapeMismatch {
            image: [4, 4, 2],
            mask: [4, 3, 2]
        }
    );

    let mut data = Array3::zeros((4, 4, 2));
    data[[2, 1, 1]] = f64::NAN;
    let error = rotate_in_plane(&volume(data, [1.0; 3]), &roi, 5.0, [1.0, 1.0]).unwrap_err();
    assert!(
        matches!(
            error,
            RotateError::NonFiniteIntensity {
                voxel: [2, 1, 1],
                ..
            }
        ),
        "{error}"
    );
}
