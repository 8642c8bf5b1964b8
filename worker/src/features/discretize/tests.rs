use ndarray::Array3;

use super::test_volumes::{Case, fortran_order_copy, volume_and_roi};
use super::*;
use crate::image::Geometry;

/// Returns a volume of `values` along i (shape n × 1 × 1) with every voxel in the ROI.
fn line(values: &[f64]) -> (Volume, Roi) {
    let data = Array3::from_shape_vec((values.len(), 1, 1), values.to_vec()).expect("shape");
    let mask = data.mapv(|_| true);
    let volume = Volume {
        data,
        geometry: Geometry {
            dims: [values.len(), 1, 1],
            spacing: [1.0, 2.0, 3.0],
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        },
        stored_as_integer: false,
    };
    (
        volume,
        Roi {
            mask,
            voxel_count: values.len(),
        },
    )
}

fn line_levels(values: &[f64], method: Discretization) -> Vec<u32> {
    let (volume, roi) = line(values);
    let input = discretize(&volume, &roi, method, 100_000).expect("valid input");
    input.levels.iter().copied().collect()
}

/// Grey levels of the ROI voxels of `Case::Synthetic` in [i, j, k] order, from
/// PyRadiomics 3.1.4 `imageoperations.binImage` on the same float64 array (the script
/// described in `test_volumes`).
#[test]
fn synthetic_levels_match_pyradiomics() {
    #[rustfmt::skip]
    let cases: [(Discretization, u32, &[u32]); 3] = [
        (Discretization::FixedBinWidth(10.0), 14, &[
            8, 5, 2, 6, 3, 8, 9, 6, 3, 7, 4, 9, 9, 7, 4, 4, 9, 6, 10, 7, 5, 5, 10, 8, 1, 8, 6,
            6, 2, 9, 8, 5, 10, 1, 8, 6, 9, 7, 2, 2, 10, 8, 10, 8, 4, 2, 9, 6, 7, 3, 10, 3, 11,
            9, 8, 5, 13, 4, 2, 11, 3, 10, 8, 1, 9, 4, 5, 3, 11, 2, 10, 8, 6, 5, 14, 9, 4, 2, 5,
            3, 10, 1, 7, 5, 6, 5, 4, 1, 10, 9,
        ]),
        (Discretization::FixedBinWidth(25.0), 6, &[
            4, 3, 2, 3, 2, 4, 4, 3, 2, 3, 2, 4, 4, 3, 2, 2, 4, 3, 5, 4, 3, 3, 5, 4, 1, 4, 3, 3,
            1, 4, 4, 3, 5, 1, 4, 3, 4, 3, 2, 2, 5, 4, 5, 4, 2, 1, 4, 3, 4, 2, 5, 2, 5, 4, 4, 3,
            6, 2, 2, 5, 2, 5, 4, 1, 4, 2, 3, 2, 5, 2, 5, 4, 3, 3, 6, 4, 2, 1, 3, 2, 5, 1, 4, 3,
            3, 3, 2, 1, 5, 4,
        ]),
        (Discretization::FixedBinCount(8), 8, &[
            5, 3, 2, 4, 2, 5, 5, 4, 2, 4, 3, 5, 6, 4, 3, 3, 5, 4, 6, 4, 3, 3, 6, 5, 1, 5, 4, 4,
            1, 6, 5, 3, 6, 1, 5, 4, 5, 4, 2, 2, 6, 5, 6, 5, 3, 1, 6, 4, 4, 2, 6, 2, 6, 5, 5, 3,
            8, 2, 2, 6, 2, 6, 5, 1, 5, 3, 3, 2, 7, 1, 6, 5, 4, 3, 8, 6, 3, 1, 3, 2, 6, 1, 4, 3,
            4, 3, 2, 1, 6, 6,
        ]),
    ];
    let (volume, roi) = volume_and_roi(Case::Synthetic);
    for (method, n_levels, expected) in cases {
        let input = discretize(&volume, &roi, method, 1000).expect("valid input");
        let levels: Vec<u32> = input
            .levels
            .iter()
            .copied()
            .filter(|&level| level > 0)
            .collect();
        assert_eq!(levels, expected, "{method:?}");
        assert_eq!(input.n_levels, n_levels, "{method:?}");
        assert_eq!(input.spacing, [0.7, 1.3, 2.9]);
    }
}

/// Expected levels from PyRadiomics 3.1.4 `imageoperations.binImage` on the same values.
#[test]
fn edge_values_bin_like_pyradiomics() {
    // Lower edge −50: [−50, −25), [−25, 0), [0, 25), [25, 50).
    let values = [-26.0, -25.0, -1.0, 0.0, 24.0, 25.0];
    assert_eq!(
        line_levels(&values, Discretization::FixedBinWidth(25.0)),
        [1, 2, 2, 3, 3, 4]
    );
    // numpy's float edges put 0.3 below the edge 0.1 + 2·0.1, so into bin 2.
    let values = [0.1, 0.2, 0.3, 0.7];
    assert_eq!(
        line_levels(&values, Discretization::FixedBinWidth(0.1)),
        [1, 2, 2, 6]
    );
    let values = [-3.5, -1.0, 0.0, 2.5, 10.25];
    assert_eq!(
        line_levels(&values, Discretization::FixedBinCount(4)),
        [1, 1, 2, 2, 4]
    );
    let values = [0.0, 0.25, 0.5, 0.75, 1.0];
    assert_eq!(
        line_levels(&values, Discretization::FixedBinCount(4)),
        [1, 2, 3, 4, 4]
    );
    let values = [-32768.0, 0.0, 32767.0];
    assert_eq!(
        line_levels(&values, Discretization::FixedBinWidth(4096.0)),
        [1, 9, 16]
    );
}

#[test]
fn flat_roi_gets_one_level() {
    let values = [7.0; 3];
    assert_eq!(
        line_levels(&values, Discretization::FixedBinWidth(25.0)),
        [1, 1, 1]
    );
    // numpy widens a flat range to [m − 0.5, m + 0.5], so m is in the middle bin.
    assert_eq!(
        line_levels(&values, Discretization::FixedBinCount(32)),
        [17, 17, 17]
    );
    assert_eq!(
        line_levels(&values, Discretization::FixedBinCount(1)),
        [1, 1, 1]
    );
}

#[test]
fn output_is_cropped_to_bounding_box() {
    let mut data = Array3::from_elem((6, 6, 6), 1000.0);
    let mut mask = Array3::from_elem((6, 6, 6), false);
    for (i, j, k) in [(1, 2, 0), (3, 4, 1), (2, 3, 1)] {
        mask[[i, j, k]] = true;
        data[[i, j, k]] = (i * 10 + j) as f64;
    }
    let (mut volume, _) = volume_and_roi(Case::Flat);
    volume.data = data;
    let roi = Roi {
        mask,
        voxel_count: 3,
    };
    let input = discretize(&volume, &roi, Discretization::FixedBinWidth(5.0), 100).expect("valid");
    assert_eq!(input.levels.dim(), (3, 3, 2));
    // 12 → [10, 15) is level 1; 34 → [30, 35) is 5; 23 → [20, 25) is 3.
    assert_eq!(input.levels[[0, 0, 0]], 1);
    assert_eq!(input.levels[[2, 2, 1]], 5);
    assert_eq!(input.levels[[1, 1, 1]], 3);
    assert_eq!(input.levels.iter().filter(|&&level| level == 0).count(), 15);
    assert_eq!(input.n_levels, 5);
}

#[test]
fn too_many_levels_is_rejected() {
    let (volume, roi) = line(&[-32768.0, 0.0, 32767.0]);
    let error = discretize(&volume, &roi, Discretization::FixedBinWidth(1.0), 1000).unwrap_err();
    assert_eq!(
        error,
        DiscretizeError::TooManyLevels {
            levels: 65536,
            max_levels: 1000,
            minimum: -32768.0,
            maximum: 32767.0,
        }
    );
    assert!(error.to_string().contains("65536 grey levels"), "{error}");
    let error = discretize(&volume, &roi, Discretization::FixedBinCount(1001), 1000).unwrap_err();
    assert!(
        matches!(error, DiscretizeError::TooManyLevels { levels: 1001, .. }),
        "{error}"
    );
}

#[test]
fn extreme_intensities_do_not_panic() {
    let (volume, roi) = line(&[-1e300, 0.0, 1e300, f64::MAX, f64::MIN]);
    let error = discretize(&volume, &roi, Discretization::FixedBinWidth(1.0), 1000).unwrap_err();
    assert!(
        matches!(
            error,
            DiscretizeError::TooManyLevels {
                levels: u64::MAX,
                ..
            }
        ),
        "{error:?}"
    );

    // M − m overflows to infinity; the interpolated edges, at about −0.9·10³⁰⁸, 0 and
    // 0.9·10³⁰⁸, still order the values.
    let input = discretize(&volume, &roi, Discretization::FixedBinCount(4), 1000).expect("valid");
    let levels: Vec<u32> = input.levels.iter().copied().collect();
    assert_eq!(levels, [2, 3, 3, 4, 1]);

    // M + 2w overflows, so numpy cannot build the edges; here it is too many levels.
    let error = discretize(&volume, &roi, Discretization::FixedBinWidth(1e307), 1000).unwrap_err();
    assert!(
        matches!(error, DiscretizeError::TooManyLevels { .. }),
        "{error:?}"
    );

    // PyRadiomics 3.1.4 binImage gives [1, 11, 21] for these values and width.
    let (volume, roi) = line(&[-1e300, 0.0, 1e300]);
    let input =
        discretize(&volume, &roi, Discretization::FixedBinWidth(1e299), 1000).expect("valid");
    let levels: Vec<u32> = input.levels.iter().copied().collect();
    assert_eq!(levels, [1, 11, 21]);
    assert_eq!(input.n_levels, 21);
}

#[test]
fn invalid_parameters_are_rejected() {
    let (volume, roi) = line(&[1.0, 2.0]);
    for width in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error =
            discretize(&volume, &roi, Discretization::FixedBinWidth(width), 10).unwrap_err();
        assert!(
            matches!(error, DiscretizeError::InvalidBinWidth(w) if w.to_bits() == width.to_bits())
        );
    }
    assert_eq!(
        discretize(&volume, &roi, Discretization::FixedBinCount(0), 10).unwrap_err(),
        DiscretizeError::InvalidBinCount
    );
}

#[test]
fn bad_volumes_are_rejected() {
    let (mut volume, roi) = line(&[1.0, f64::NAN, 3.0]);
    let error = discretize(&volume, &roi, Discretization::FixedBinWidth(1.0), 10).unwrap_err();
    assert!(matches!(
        error,
        DiscretizeError::NonFiniteIntensity {
            voxel: [1, 0, 0],
            ..
        }
    ));

    // A NaN outside the ROI is ignored.
    let mut outside = roi.clone();
    outside.mask[[1, 0, 0]] = false;
    outside.voxel_count = 2;
    assert!(discretize(&volume, &outside, Discretization::FixedBinWidth(1.0), 10).is_ok());

    let empty = Roi {
        mask: roi.mask.mapv(|_| false),
        voxel_count: 0,
    };
    assert_eq!(
        discretize(&volume, &empty, Discretization::FixedBinWidth(1.0), 10).unwrap_err(),
        DiscretizeError::EmptyRoi
    );

    volume.data = Array3::zeros((3, 2, 1));
    assert_eq!(
        discretize(&volume, &roi, Discretization::FixedBinWidth(1.0), 10).unwrap_err(),
        DiscretizeError::ShapeMismatch {
            image: [3, 2, 1],
            mask: [3, 1, 1]
        }
    );
}

#[test]
fn angles_follow_pyradiomics_order() {
    let offsets = angle_offsets(&[1], [5, 5, 5]);
    assert_eq!(offsets.len(), 13);
    // PyRadiomics lists (dz, dy, dx) from (1, 1, 1) downwards; here they are (di, dj, dk).
    assert_eq!(offsets[0], [1, 1, 1]);
    assert_eq!(offsets[4], [0, 0, 1]);
    assert_eq!(offsets[12], [1, 0, 0]);
    assert_eq!(angle_offsets(&[1, 2], [5, 5, 5]).len(), 13 + 49);
    // A box one voxel thick along k keeps the 4 in-plane angles.
    assert_eq!(
        angle_offsets(&[1], [5, 5, 1]),
        [[1, 1, 0], [0, 1, 0], [-1, 1, 0], [1, 0, 0]]
    );
    // A distance far beyond the box costs nothing and finds nothing.
    assert!(angle_offsets(&[u32::MAX], [3, 3, 3]).is_empty());
}

/// NIfTI volumes arrive in Fortran order; the levels must not depend on the layout.
#[test]
fn fortran_order_image_gives_same_levels() {
    let (volume, roi) = volume_and_roi(Case::Synthetic);
    let mut fortran_volume = volume.clone();
    fortran_volume.data = Array3::zeros(volume.data.raw_dim().f());
    fortran_volume.data.assign(&volume.data);
    let mut fortran_mask = Array3::from_elem(roi.mask.raw_dim().f(), false);
    fortran_mask.assign(&roi.mask);
    let fortran_roi = Roi {
        mask: fortran_mask,
        voxel_count: roi.voxel_count,
    };
    for method in [
        Discretization::FixedBinWidth(10.0),
        Discretization::FixedBinCount(8),
    ] {
        let expected = discretize(&volume, &roi, method, 1000).expect("valid input");
        let actual = discretize(&fortran_volume, &fortran_roi, method, 1000).expect("valid");
        assert_eq!(actual, expected, "{method:?}");
        assert!(
            actual.levels.t().is_standard_layout(),
            "levels keep Fortran order"
        );
    }
}

#[test]
fn padded_levels_renumber_present_levels() {
    let mut levels = Array3::zeros((2, 3, 2));
    levels[[0, 0, 0]] = 3;
    levels[[1, 0, 0]] = 7;
    levels[[1, 2, 1]] = 3;
    let input = TextureInput {
        levels,
        n_levels: 7,
        spacing: [1.0; 3],
    };
    // Padded shape 4 × 5 × 4, in C and in Fortran order.
    for (input, strides) in [
        (input.clone(), [20, 4, 1]),
        (fortran_order_copy(&input), [1, 4, 20]),
    ] {
        let padded = PaddedLevels::new(&input, 1);
        assert_eq!(padded.shape, [4, 5, 4]);
        assert_eq!(padded.strides, strides);
        assert_eq!(padded.present_levels, [3, 7]);
        assert_eq!(padded.data.iter().filter(|&&level| level != 0).count(), 3);
        // Voxel (0, 0, 0) sits at (1, 1, 1) in the padded grid.
        let first = padded.flat_index([1, 1, 1]);
        assert_eq!(padded.position(first), [1, 1, 1]);
        assert_eq!(padded.data[first], 1);
        let next = first.wrapping_add_signed(padded.linear_offset([1, 0, 0]));
        assert_eq!(padded.data[next], 2);
        assert_eq!(padded.data[padded.flat_index([2, 3, 2])], 1);
    }
}

#[test]
fn nan_mean_skips_nan_and_sums_like_numpy() {
    assert_eq!(nan_mean(&[1.0, f64::NAN, 3.0]), 2.0);
    assert!(nan_mean(&[f64::NAN]).is_nan());
    assert!(nan_mean(&[]).is_nan());
    // numpy.mean of these 20 values is 17/20; summing left to right gives 3/20, because
    // the ones added while 1e16 is in the running sum are lost.
    let mut terms = vec![1e16];
    terms.extend([1.0; 15]);
    terms.push(-1e16);
    terms.extend([1.0; 3]);
    assert_eq!(nan_mean(&terms), 17.0 / 20.0);
}
