use super::*;
use crate::image::Geometry;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Difference allowed between the sliding-histogram entropy and the
/// textbook −Σ p log₂ p of a directly counted window, in bits. The two
/// sum the same terms in other forms, so they differ only by rounding
/// (a few ulp of values below log₂ 3375 ≈ 11.7).
const REFERENCE_TOLERANCE_BITS: f64 = 1e-12;

/// Entropy of a two-level window with one third at one level:
/// −(1/3) log₂(1/3) − (2/3) log₂(2/3) = log₂ 3 − 2/3.
fn one_third_split_bits() -> f64 {
    3f64.log2() - 2.0 / 3.0
}

fn volume(data: Array3<f64>) -> Volume {
    let (a, b, c) = data.dim();
    Volume {
        data,
        geometry: Geometry {
            dims: [a, b, c],
            spacing: [1.0; 3],
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        },
        stored_as_integer: false,
    }
}

fn roi(mask: Array3<bool>) -> Roi {
    let voxel_count = mask.iter().filter(|&&inside| inside).count();
    Roi { mask, voxel_count }
}

fn settings(edge: usize, bins: usize, boundary: Boundary) -> ValidEntropySettings {
    EntropySettings {
        window_edge: edge,
        bins,
        boundary,
        ..EntropySettings::default()
    }
    .validate()
    .expect("valid settings")
}

fn entropy_at(map: &EntropyMap, voxel: [usize; 3]) -> f64 {
    let position = map
        .voxels
        .iter()
        .position(|&v| v == voxel)
        .expect("voxel is in the ROI");
    map.entropy[position]
}

fn assert_bits(actual: f64, expected: f64, case: &str) {
    assert!(
        (actual - expected).abs() <= REFERENCE_TOLERANCE_BITS,
        "{case}: entropy {actual} bits, expected {expected}"
    );
}

/// Builds a 4 × 3 × 3 image whose value depends on i only: 1 on the
/// planes i = 0 and i = 3, 0 on i = 1 and i = 2. The ROI is i ≤ 2, so
/// the padded box (ROI box grown by 1, clipped) is the whole image, the
/// range is (0, 1) and the two values fall in cells 0 and 7 of 8.
fn slab_phantom() -> (Volume, Roi) {
    let data = Array3::from_shape_fn(
        (4, 3, 3),
        |(i, _, _)| if i == 0 || i == 3 { 1.0 } else { 0.0 },
    );
    let mask = Array3::from_shape_fn((4, 3, 3), |(i, _, _)| i <= 2);
    (volume(data), roi(mask))
}

#[test]
fn entropy_masked_slab_hand_values() {
    let (image, roi) = slab_phantom();
    let map = local_entropy(&image, &roi, &settings(3, 8, Boundary::Masked)).expect("valid input");
    // (0,1,1): window ∩ M is the planes i = 0, 1 (9 voxels each): 9
    // ones and 9 zeros, so 1 bit.
    assert_bits(entropy_at(&map, [0, 1, 1]), 1.0, "(0,1,1)");
    // (1,1,1): planes 0, 1, 2 are all in M: 9 ones, 18 zeros.
    assert_bits(
        entropy_at(&map, [1, 1, 1]),
        one_third_split_bits(),
        "(1,1,1)",
    );
    // (2,1,1): plane 3 is outside M, so only the zeros of planes 1, 2.
    assert_bits(entropy_at(&map, [2, 1, 1]), 0.0, "(2,1,1)");
    // (0,0,0): the corner's window ∩ image is 2 × 2 × 2: 4 ones, 4 zeros.
    assert_bits(entropy_at(&map, [0, 0, 0]), 1.0, "(0,0,0)");
    // E spans [0, 1] over the ROI, so Ê equals E.
    for (rescaled, raw) in map.entropy_rescaled.iter().zip(&map.entropy) {
        assert_bits(*rescaled, *raw, "rescaled");
    }
    assert_eq!(map.range, (0.0, 1.0));
}

#[test]
fn entropy_box_zero_slab_hand_values() {
    let (image, roi) = slab_phantom();
    let map = local_entropy(&image, &roi, &settings(3, 8, Boundary::BoxZero)).expect("valid input");
    // Every window is divided by |W| = 27.
    // (0,1,1): plane i = −1 is beyond the border: 9 ones, 9 zeros, 9
    // nothing: 2 · (9/27) log₂(27/9) = (2/3) log₂ 3.
    assert_bits(
        entropy_at(&map, [0, 1, 1]),
        2.0 / 3.0 * 3f64.log2(),
        "(0,1,1)",
    );
    // (1,1,1): 9 ones, 18 zeros.
    assert_bits(
        entropy_at(&map, [1, 1, 1]),
        one_third_split_bits(),
        "(1,1,1)",
    );
    // (2,1,1): plane 3 is in the image and counts: 9 ones, 18 zeros.
    assert_bits(
        entropy_at(&map, [2, 1, 1]),
        one_third_split_bits(),
        "(2,1,1)",
    );
    // (0,0,0): 2 × 2 × 2 positions in the image, 4 ones and 4 zeros:
    // 2 · (4/27) log₂(27/4).
    let corner = 2.0 * 4.0 / 27.0 * (27.0f64 / 4.0).log2();
    assert_bits(entropy_at(&map, [0, 0, 0]), corner, "(0,0,0)");
    // (2,0,0): planes 1..3 × 2 × 2 in the image: 4 ones (plane 3), 8
    // zeros: (4/27) log₂(27/4) + (8/27) log₂(27/8).
    let edge = 4.0 / 27.0 * (27.0f64 / 4.0).log2() + 8.0 / 27.0 * (27.0f64 / 8.0).log2();
    assert_bits(entropy_at(&map, [2, 0, 0]), edge, "(2,0,0)");
}

#[test]
fn entropy_box_symmetric_slab_hand_values() {
    let (image, roi) = slab_phantom();
    let map =
        local_entropy(&image, &roi, &settings(3, 8, Boundary::BoxSymmetric)).expect("valid input");
    // (0,1,1): plane −1 mirrors plane 0, so 18 ones and 9 zeros.
    // (1,1,1) and (2,1,1): one plane of ones among three. The corner
    // (0,0,0) mirrors i = −1 to 0 as well, and j, k do not change the
    // value. Every ROI voxel has the one-third split.
    for voxel in [[0, 1, 1], [1, 1, 1], [2, 1, 1], [0, 0, 0], [2, 0, 0]] {
        assert_bits(
            entropy_at(&map, voxel),
            one_third_split_bits(),
            &format!("{voxel:?}"),
        );
    }
    // A constant E over the ROI rescales to 0.
    assert!(map.entropy_rescaled.iter().all(|&e| e == 0.0));
}

/// Builds a 6 × 1 × 1 line with values 3, 0, 1, 1, 1, 1 (range (0, 3),
/// cells 7, 0 and 2 of 8), all in the ROI. A window of edge 5 (h = 2)
/// reaches two voxels beyond the line's start and beyond its unit
/// extent along j and k.
fn line_phantom() -> (Volume, Roi) {
    let values = [3.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    let data = Array3::from_shape_fn((6, 1, 1), |(i, _, _)| values[i]);
    (volume(data), roi(Array3::from_elem((6, 1, 1), true)))
}

#[test]
fn entropy_box_symmetric_mirrors_with_edge_repeated() {
    let (image, roi) = line_phantom();
    let map =
        local_entropy(&image, &roi, &settings(5, 8, Boundary::BoxSymmetric)).expect("valid input");
    // Along j and k every position mirrors to index 0, so each window
    // contains 25 copies of its five i values.
    // i = 0: i = −2, −1 mirror to 1, 0 (the edge voxel repeats): values
    // 0, 3, 3, 0, 1, cells (2, 2, 1) of 5: 2·(2/5) log₂(5/2) + (1/5)
    // log₂ 5 = log₂ 5 − 4/5. Replicate padding would give 3, 3, 3, 0, 1
    // and log₂ 5 − (3/5) log₂ 3 instead.
    assert_bits(entropy_at(&map, [0, 0, 0]), 5f64.log2() - 0.8, "i = 0");
    // i = 2: values 3, 0, 1, 1, 1: cells (1, 1, 3): log₂ 5 − (3/5) log₂ 3.
    assert_bits(
        entropy_at(&map, [2, 0, 0]),
        5f64.log2() - 0.6 * 3f64.log2(),
        "i = 2",
    );
    // i = 5: i = 6, 7 mirror to 5, 4: all ones.
    assert_bits(entropy_at(&map, [5, 0, 0]), 0.0, "i = 5");
}

#[test]
fn entropy_box_zero_divides_by_full_window() {
    let (image, roi) = line_phantom();
    let map = local_entropy(&image, &roi, &settings(5, 8, Boundary::BoxZero)).expect("valid input");
    // i = 0: only (0..=2, 0, 0) is in the image: 3 positions of 125,
    // one per value: 3 · (1/125) log₂ 125 = (9/125) log₂ 5.
    assert_bits(
        entropy_at(&map, [0, 0, 0]),
        9.0 / 125.0 * 5f64.log2(),
        "i = 0",
    );
}

#[test]
fn entropy_masked_line_counts_roi_only() {
    let (image, roi) = line_phantom();
    let map = local_entropy(&image, &roi, &settings(5, 8, Boundary::Masked)).expect("valid input");
    // i = 0: window ∩ M = i 0..=2 with values 3, 0, 1: log₂ 3.
    assert_bits(entropy_at(&map, [0, 0, 0]), 3f64.log2(), "i = 0");
    // i = 3: i 1..=5 with values 0, 1, 1, 1, 1: H(1/5) =
    // log₂ 5 − (4/5) log₂ 4.
    assert_bits(
        entropy_at(&map, [3, 0, 0]),
        5f64.log2() - 0.8 * 2.0,
        "i = 3",
    );
}

#[test]
fn entropy_slices_do_not_see_neighbours() {
    // Slice k = 0 is constant 0; slice k = 1 has ones on the row i = 0.
    let data = Array3::from_shape_fn(
        (3, 3, 2),
        |(i, _, k)| if k == 1 && i == 0 { 1.0 } else { 0.0 },
    );
    let image = volume(data);
    let roi = roi(Array3::from_elem((3, 3, 2), true));
    let two_d = EntropySettings {
        dimensionality: Dimensionality::Slices,
        window_edge: 3,
        bins: 8,
        ..EntropySettings::default()
    }
    .validate()
    .expect("valid settings");
    let map = local_entropy(&image, &roi, &two_d).expect("valid input");
    assert_eq!(map.window_positions, 9);
    // The window of (1,1,0) covers only slice 0, which is constant.
    assert_bits(entropy_at(&map, [1, 1, 0]), 0.0, "(1,1,0)");
    // (1,1,1): 3 × 3 square of slice 1: 3 ones, 6 zeros.
    assert_bits(
        entropy_at(&map, [1, 1, 1]),
        one_third_split_bits(),
        "(1,1,1)",
    );
    // In 3-D, the window of (1,1,0) also covers slice 1: 3 ones of 18.
    let map_3d =
        local_entropy(&image, &roi, &settings(3, 8, Boundary::Masked)).expect("valid input");
    let one_sixth = -(1.0 / 6.0) * (1.0f64 / 6.0).log2() - (5.0 / 6.0) * (5.0f64 / 6.0).log2();
    assert_bits(entropy_at(&map_3d, [1, 1, 0]), one_sixth, "3-D (1,1,0)");
}

/// Mirrors x into [low, high] by repeated reflection about the faces,
/// the edge voxel repeated; a formulation independent of `mirror`.
fn reflect(mut x: i64, low: i64, high: i64) -> i64 {
    while x < low || x > high {
        x = if x < low {
            2 * low - 1 - x
        } else {
            2 * high + 1 - x
        };
    }
    x
}

/// Computes E(v) in bits by counting the window of v directly and
/// summing −p log₂ p.
fn brute_force_entropy(
    image: &Volume,
    roi: &Roi,
    settings: &ValidEntropySettings,
    range: (f64, f64),
    voxel: [usize; 3],
) -> f64 {
    let config = settings.settings();
    let dims = dims_of(&image.data);
    let half = settings.half_widths();
    let (low, high) = bounding_box(&roi.mask).expect("non-empty ROI");
    let padded_low: [i64; 3] =
        std::array::from_fn(|a| low[a] as i64 - half[a] as i64).map(|x| x.max(0));
    let padded_high: [i64; 3] =
        std::array::from_fn(|a| (high[a] + half[a]).min(dims[a] - 1) as i64);
    let level = |value: f64| {
        let t = if range.1 > range.0 {
            ((value - range.0) / (range.1 - range.0)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (t * (config.bins - 1) as f64).round() as usize
    };

    let mut counts = vec![0usize; config.bins];
    let mut window = 0usize;
    let h = half.map(|x| x as i64);
    for di in -h[0]..=h[0] {
        for dj in -h[1]..=h[1] {
            for dk in -h[2]..=h[2] {
                window += 1;
                let x = [
                    voxel[0] as i64 + di,
                    voxel[1] as i64 + dj,
                    voxel[2] as i64 + dk,
                ];
                let inside = (0..3).all(|a| x[a] >= 0 && x[a] < dims[a] as i64);
                let position = if inside {
                    Some(x.map(|c| c as usize))
                } else if config.boundary == Boundary::BoxSymmetric {
                    Some(std::array::from_fn(|a| {
                        reflect(x[a], padded_low[a], padded_high[a]) as usize
                    }))
                } else {
                    None
                };
                if let Some(p) = position {
                    if config.boundary == Boundary::Masked && !roi.mask[p] {
                        continue;
                    }
                    counts[level(image.data[p])] += 1;
                }
            }
        }
    }
    let divisor = match config.boundary {
        Boundary::Masked => counts.iter().sum::<usize>(),
        _ => window,
    } as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / divisor;
            -p * p.log2()
        })
        .sum()
}

#[test]
fn entropy_sliding_matches_brute_force_on_random_volumes() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let boundaries = [Boundary::Masked, Boundary::BoxSymmetric, Boundary::BoxZero];
    let ranges = [
        IntensityRange::Box,
        IntensityRange::Roi,
        IntensityRange::RoiPercentile,
    ];
    let shapes = [
        (Dimensionality::Volume, 2),
        (Dimensionality::Slices, 0),
        (Dimensionality::Slices, 1),
        (Dimensionality::Slices, 2),
    ];
    let mut cases = 0;
    for boundary in boundaries {
        for (index, &(dimensionality, slice_axis)) in shapes.iter().enumerate() {
            let range = ranges[(cases + index) % ranges.len()];
            let edge = [3, 5][cases % 2];
            let bins = [8, 16, 256][cases % 3];
            cases += 1;
            let dims = (7, 6, 8);
            let data = Array3::from_shape_fn(dims, |_| rng.gen_range(0..20) as f64);
            // A ROI that touches the i = 0 face, so that windows leave
            // the image there, with random holes.
            let mask = Array3::from_shape_fn(dims, |(i, j, k)| {
                i <= 3 && (1..=4).contains(&j) && (2..=6).contains(&k) && rng.gen_bool(0.8)
            });
            let (image, roi) = (volume(data), roi(mask));
            let valid = EntropySettings {
                dimensionality,
                slice_axis,
                window_edge: edge,
                bins,
                boundary,
                range,
                ..EntropySettings::default()
            }
            .validate()
            .expect("valid settings");
            let map = local_entropy(&image, &roi, &valid).expect("valid input");
            let case = format!(
                "{boundary:?}, {dimensionality:?} axis {slice_axis}, {range:?}, edge {edge}, {bins} bins"
            );
            assert_eq!(map.voxels.len(), roi.voxel_count, "{case}");
            for (voxel, &actual) in map.voxels.iter().zip(&map.entropy) {
                let expected = brute_force_entropy(&image, &roi, &valid, map.range, *voxel);
                assert_bits(actual, expected, &format!("{case}, voxel {voxel:?}"));
            }
        }
    }
}

#[test]
fn entropy_affine_intensity_change_keeps_features() {
    // x → 4x − 300 is exact in binary for these integer intensities,
    // so (x − a)/(b − a) is bitwise unchanged and so are the levels.
    // The percentile range is left out: its interpolation rounds
    // differently after the shift, which can move a level at a tie.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let dims = (9, 8, 7);
    let data = Array3::from_shape_fn(dims, |_| rng.gen_range(0..100) as f64);
    let mask = Array3::from_shape_fn(dims, |(i, j, k)| {
        (i as f64 - 4.0).powi(2) + (j as f64 - 4.0).powi(2) + (k as f64 - 3.0).powi(2) < 9.0
    });
    let roi = roi(mask);
    let original = volume(data.clone());
    let changed = volume(data.mapv(|x| 4.0 * x - 300.0));
    for boundary in [Boundary::Masked, Boundary::BoxSymmetric, Boundary::BoxZero] {
        for range in [IntensityRange::Box, IntensityRange::Roi] {
            let valid = EntropySettings {
                boundary,
                range,
                window_edge: 5,
                ..EntropySettings::default()
            }
            .validate()
            .expect("valid settings");
            let before = local_entropy(&original, &roi, &valid).expect("valid input");
            let after = local_entropy(&changed, &roi, &valid).expect("valid input");
            let case = format!("{boundary:?}, {range:?}");
            assert_eq!(before.intensity, after.intensity, "{case}: Ĩ");
            assert_eq!(before.entropy, after.entropy, "{case}: E");
            assert_eq!(before.entropy_rescaled, after.entropy_rescaled, "{case}: Ê");
            assert!(
                before.entropy_rescaled.contains(&1.0),
                "{case}: Ê reaches 1"
            );
        }
    }
}

#[test]
fn entropy_percentile_range_clips() {
    // 200 ROI voxels with values 0..=199. Type-7 percentiles: rank
    // 0.005 · 199 = 0.995 gives a = 0.995, rank 198.005 gives
    // b = 198.005.
    let data = Array3::from_shape_fn((10, 20, 1), |(i, j, _)| (i * 20 + j) as f64);
    let image = volume(data);
    let roi = roi(Array3::from_elem((10, 20, 1), true));
    let valid = EntropySettings {
        range: IntensityRange::RoiPercentile,
        ..EntropySettings::default()
    }
    .validate()
    .expect("valid settings");
    let map = local_entropy(&image, &roi, &valid).expect("valid input");
    let (a, b) = map.range;
    assert!((a - 0.995).abs() < 1e-12, "a = {a}");
    assert!((b - 198.005).abs() < 1e-12, "b = {b}");
    // Voxel order is lexicographic, so value v sits at position v.
    assert_eq!(map.intensity[0], 0.0, "value 0 clips to 0");
    assert_eq!(map.intensity[199], 1.0, "value 199 clips to 1");
    let middle = (100.0 - a) / (b - a);
    assert_eq!(map.intensity[100], middle);
}

#[test]
fn entropy_constant_lesion_is_zero() {
    // The ROI stays one voxel away from the faces, so no window of edge
    // 3 leaves the image and box_zero has no empty positions either.
    let image = volume(Array3::from_elem((7, 7, 7), 42.0));
    let mask = Array3::from_shape_fn((7, 7, 7), |(i, j, k)| {
        i.abs_diff(3) + j.abs_diff(3) + k.abs_diff(3) <= 2
    });
    let roi = roi(mask);
    for boundary in [Boundary::Masked, Boundary::BoxSymmetric, Boundary::BoxZero] {
        let map = local_entropy(&image, &roi, &settings(3, 256, boundary)).expect("valid input");
        assert_eq!(map.range, (42.0, 42.0));
        assert!(map.intensity.iter().all(|&x| x == 0.0), "{boundary:?}: Ĩ");
        assert!(map.entropy.iter().all(|&e| e == 0.0), "{boundary:?}: E");
        assert!(
            map.entropy_rescaled.iter().all(|&e| e == 0.0),
            "{boundary:?}: Ê"
        );
    }
}

#[test]
fn entropy_lesion_smaller_than_window_is_finite() {
    let mut data = Array3::zeros((12, 12, 12));
    data[[6, 6, 6]] = 10.0;
    let mut mask = Array3::from_elem((12, 12, 12), false);
    mask[[6, 6, 6]] = true;
    mask[[6, 6, 7]] = true;
    let map = local_entropy(
        &volume(data),
        &roi(mask),
        &settings(9, 256, Boundary::Masked),
    )
    .expect("valid input");
    // Each window ∩ M is the two ROI voxels, one at each level: 1 bit.
    assert_eq!(map.entropy, vec![1.0, 1.0]);
    assert_eq!(map.entropy_rescaled, vec![0.0, 0.0]);
}

#[test]
fn entropy_nats_scale_bits() {
    let (image, roi) = slab_phantom();
    let bits = local_entropy(&image, &roi, &settings(3, 8, Boundary::Masked)).expect("valid input");
    let nats_settings = EntropySettings {
        window_edge: 3,
        bins: 8,
        log_base: LogBase::E,
        ..EntropySettings::default()
    }
    .validate()
    .expect("valid settings");
    let nats = local_entropy(&image, &roi, &nats_settings).expect("valid input");
    for (n, b) in nats.entropy.iter().zip(&bits.entropy) {
        assert_eq!(*n, b * std::f64::consts::LN_2);
    }
    // Ê is a ratio of entropies, so the base cancels up to rounding.
    for (n, b) in nats.entropy_rescaled.iter().zip(&bits.entropy_rescaled) {
        assert!((n - b).abs() < 1e-15);
    }
}

#[test]
fn entropy_voxel_order_is_lexicographic() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let dims = (5, 6, 7);
    let mask = Array3::from_shape_fn(dims, |_| rng.gen_bool(0.4));
    let expected: Vec<[usize; 3]> = mask
        .indexed_iter()
        .filter(|(_, inside)| **inside)
        .map(|((i, j, k), _)| [i, j, k])
        .collect();
    let image = volume(Array3::from_shape_fn(dims, |_| rng.gen_range(0.0..5.0)));
    let roi = roi(mask);
    for slice_axis in [0, 2] {
        let valid = EntropySettings {
            dimensionality: Dimensionality::Slices,
            slice_axis,
            ..EntropySettings::default()
        }
        .validate()
        .expect("valid settings");
        let map = local_entropy(&image, &roi, &valid).expect("valid input");
        assert_eq!(map.voxels, expected, "slice axis {slice_axis}");
    }
}

#[test]
fn entropy_invalid_input_is_rejected() {
    let valid = EntropySettings::default()
        .validate()
        .expect("defaults are valid");
    let image = volume(Array3::zeros((3, 3, 3)));
    let small = roi(Array3::from_elem((3, 3, 2), true));
    assert_eq!(
        local_entropy(&image, &small, &valid),
        Err(EntropyError::ShapeMismatch {
            image: [3, 3, 3],
            mask: [3, 3, 2]
        })
    );
    let empty = roi(Array3::from_elem((3, 3, 3), false));
    assert_eq!(
        local_entropy(&image, &empty, &valid),
        Err(EntropyError::EmptyRoi)
    );

    // A NaN next to the ROI is read by the box range, not by the
    // masked boundary with the ROI range.
    let mut data = Array3::zeros((3, 3, 3));
    data[[0, 0, 0]] = f64::NAN;
    let image = volume(data);
    let mut mask = Array3::from_elem((3, 3, 3), false);
    mask[[1, 1, 1]] = true;
    let roi = roi(mask);
    assert_eq!(
        local_entropy(&image, &roi, &valid),
        Err(EntropyError::NonFiniteIntensity { count: 1 })
    );
    let roi_range = EntropySettings {
        range: IntensityRange::Roi,
        ..EntropySettings::default()
    }
    .validate()
    .expect("valid settings");
    assert!(local_entropy(&image, &roi, &roi_range).is_ok());
}

#[test]
fn entropy_settings_defaults_match_method() {
    let settings = EntropySettings::default();
    assert_eq!(settings.dimensionality, Dimensionality::Volume);
    assert_eq!(settings.window_edge, 9);
    assert_eq!(settings.bins, 256);
    assert_eq!(settings.log_base, LogBase::Two);
    assert_eq!(settings.boundary, Boundary::Masked);
    assert_eq!(settings.range, IntensityRange::Box);
    assert_eq!(
        (settings.percentile_low, settings.percentile_high),
        (0.5, 99.5)
    );
    assert_eq!(settings.validate().expect("valid").window_edge(), 9);
}

#[test]
fn entropy_settings_even_edge_is_raised() {
    for (configured, used) in [(2, 3), (4, 5), (9, 9), (14, 15), (15, 15)] {
        let valid = EntropySettings {
            window_edge: configured,
            ..EntropySettings::default()
        }
        .validate()
        .expect("valid edge");
        assert_eq!(valid.window_edge(), used, "edge {configured}");
    }
}

#[test]
fn entropy_settings_invalid_values_name_field() {
    let cases = [
        (
            EntropySettings {
                window_edge: 1,
                ..EntropySettings::default()
            },
            "window_edge",
        ),
        (
            EntropySettings {
                window_edge: 16,
                ..EntropySettings::default()
            },
            "window_edge",
        ),
        (
            EntropySettings {
                bins: 7,
                ..EntropySettings::default()
            },
            "bins",
        ),
        (
            EntropySettings {
                bins: 257,
                ..EntropySettings::default()
            },
            "bins",
        ),
        (
            EntropySettings {
                slice_axis: 3,
                ..EntropySettings::default()
            },
            "slice_axis",
        ),
        (
            EntropySettings {
                percentile_low: 99.5,
                percentile_high: 0.5,
                ..EntropySettings::default()
            },
            "percentile_low",
        ),
        (
            EntropySettings {
                percentile_high: f64::NAN,
                ..EntropySettings::default()
            },
            "percentile_high",
        ),
    ];
    for (settings, field) in cases {
        let error = settings.validate().unwrap_err();
        assert!(error.to_string().contains(field), "{field}: {error}");
    }
}

#[test]
fn entropy_settings_parse_from_toml() {
    let settings: EntropySettings = toml::from_str(
        "dimensionality = \"2d\"\nboundary = \"box_symmetric\"\nrange = \"roi_percentile\"\nlog_base = \"e\"\nwindow_edge = 5",
    )
    .expect("valid TOML");
    assert_eq!(settings.dimensionality, Dimensionality::Slices);
    assert_eq!(settings.boundary, Boundary::BoxSymmetric);
    assert_eq!(settings.range, IntensityRange::RoiPercentile);
    assert_eq!(settings.log_base, LogBase::E);
    assert_eq!(settings.window_edge, 5);
    assert_eq!(settings.bins, 256, "unset fields take defaults");
    let error = toml::from_str::<EntropySettings>("edge = 5").unwrap_err();
    assert!(error.to_string().contains("edge"), "{error}");
}

/// NIfTI volumes arrive with i fastest in memory. The map must not depend
/// on the memory order of the image or the mask.
#[test]
fn entropy_fortran_order_matches_c_order() {
    use ndarray::ShapeBuilder;

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let dims = (9, 7, 8);
    let data = Array3::from_shape_fn(dims, |_| rng.gen_range(0..30) as f64);
    let mask = Array3::from_shape_fn(dims, |(i, j, k)| {
        (2..=7).contains(&i) && j >= 1 && k <= 6 && rng.gen_bool(0.7)
    });
    let mut data_fortran = Array3::zeros(dims.f());
    data_fortran.assign(&data);
    let mut mask_fortran = Array3::from_elem(dims.f(), false);
    mask_fortran.assign(&mask);

    for boundary in [Boundary::Masked, Boundary::BoxSymmetric, Boundary::BoxZero] {
        let valid = settings(5, 16, boundary);
        let c_order =
            local_entropy(&volume(data.clone()), &roi(mask.clone()), &valid).expect("valid input");
        let fortran_order = local_entropy(
            &volume(data_fortran.clone()),
            &roi(mask_fortran.clone()),
            &valid,
        )
        .expect("valid input");
        assert_eq!(fortran_order, c_order, "{boundary:?}");
    }
}
