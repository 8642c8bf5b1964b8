use std::path::{Path, PathBuf};

use ndarray::{Array3, s};

use super::*;
use crate::image::nifti::read_volume;

const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Shares below are ratios of small vote counts, computed in f64; 1e-12
/// covers their rounding.
const SHARE_TOLERANCE: f64 = 1e-12;

fn grid(dims: [usize; 3], spacing: [f64; 3], origin: [f64; 3]) -> Geometry {
    Geometry {
        dims,
        spacing,
        origin,
        direction: IDENTITY,
    }
}

fn full_mask(dims: [usize; 3]) -> Array3<bool> {
    Array3::from_elem((dims[0], dims[1], dims[2]), true)
}

#[test]
fn transfer_identical_grids_is_identity() {
    let geometry = grid([5, 6, 4], [0.9, 1.1, 3.0], [-10.0, 4.0, 22.5]);
    let labels = Array3::from_shape_fn((5, 6, 4), |(i, j, k)| {
        if i == 0 || j == 5 {
            0
        } else {
            1 + ((i + 2 * j + k) % 3) as u8
        }
    });
    let mask = labels.mapv(|label| label > 0);

    let carried = carry_labels(
        &labels,
        &geometry,
        &mask,
        &geometry,
        DEFAULT_SUBSAMPLES_PER_AXIS,
    )
    .expect("valid input");

    assert_eq!(carried.labels, labels);
    assert_eq!(carried.mask_voxels, mask.iter().filter(|&&m| m).count());
    assert_eq!(carried.mixed_voxels, 0);
    assert_eq!(carried.unlabelled_voxels, 0);
    assert_eq!(carried.voted_point_share, 1.0);
    assert_eq!(carried.min_majority_share, 1.0);
}

/// Source 4 × 4 × 2 at 1 mm, target 2 × 2 × 1 at 2 mm with its voxel centres
/// at the centres of 2 × 2 × 2 source blocks. With 4 sub-samples per axis
/// the points sit at source offsets −0.25, 0.25, 0.75 and 1.25 from the
/// block's first voxel. Each source voxel of a block thus gets 8 of the 64
/// votes, and no point lies on a face.
#[test]
fn transfer_coarser_aligned_grid_takes_block_majority() {
    let source = grid([4, 4, 2], [1.0; 3], [0.0; 3]);
    let target = grid([2, 2, 1], [2.0; 3], [0.5; 3]);
    let mut labels = Array3::<u8>::zeros((4, 4, 2));
    // Block (0, 0): five voxels of label 1, three of label 2 → 1, 40/64.
    labels.slice_mut(s![0..2, 0..2, ..]).fill(1);
    labels[[1, 1, 0]] = 2;
    labels[[1, 1, 1]] = 2;
    labels[[0, 1, 1]] = 2;
    // Block (1, 0): four of each → tie → the lower label 1, 32/64.
    labels.slice_mut(s![2..4, 0..2, 0]).fill(1);
    labels.slice_mut(s![2..4, 0..2, 1]).fill(2);
    // Block (0, 1): three 0s, three 2s, two 1s → 2 with 24 of 40 votes.
    labels[[0, 2, 0]] = 2;
    labels[[0, 2, 1]] = 2;
    labels[[0, 3, 0]] = 2;
    labels[[1, 2, 0]] = 1;
    labels[[1, 2, 1]] = 1;
    // Block (1, 1): all label 3 → 3, 64/64.
    labels.slice_mut(s![2..4, 2..4, ..]).fill(3);

    let carried =
        carry_labels(&labels, &source, &full_mask(target.dims), &target, 4).expect("valid input");

    assert_eq!(carried.labels[[0, 0, 0]], 1);
    assert_eq!(carried.labels[[1, 0, 0]], 1);
    assert_eq!(carried.labels[[0, 1, 0]], 2);
    assert_eq!(carried.labels[[1, 1, 0]], 3);
    assert_eq!(carried.mixed_voxels, 3);
    // Blocks (0, 0), (1, 0) and (0, 1) split their votes; block (1, 1) is
    // all label 3.
    assert!(carried.mixed[[0, 0, 0]]);
    assert!(carried.mixed[[1, 0, 0]]);
    assert!(carried.mixed[[0, 1, 0]]);
    assert!(!carried.mixed[[1, 1, 0]]);
    assert_eq!(carried.unlabelled_voxels, 0);
    // 64 + 64 + 40 + 64 voted points out of 4 × 64.
    assert!((carried.voted_point_share - 232.0 / 256.0).abs() < SHARE_TOLERANCE);
    let mean = (40.0 / 64.0 + 32.0 / 64.0 + 24.0 / 40.0 + 1.0) / 4.0;
    assert!((carried.mean_majority_share - mean).abs() < SHARE_TOLERANCE);
    assert!((carried.min_majority_share - 0.5).abs() < SHARE_TOLERANCE);
}

/// With 3 sub-samples and a spacing ratio of 2, the middle point of each
/// target voxel lies exactly on the face between two source voxels. It
/// goes to the higher index, so along i voxel 0 gets one vote and voxel 1
/// two.
#[test]
fn transfer_face_point_goes_to_higher_index() {
    let source = grid([2, 1, 1], [1.0; 3], [0.0; 3]);
    let target = grid([1, 1, 1], [2.0, 1.0, 1.0], [0.5, 0.0, 0.0]);
    let labels = Array3::from_shape_vec((2, 1, 1), vec![1u8, 2]).expect("2 values");

    let carried =
        carry_labels(&labels, &source, &full_mask(target.dims), &target, 3).expect("valid input");

    assert_eq!(carried.labels[[0, 0, 0]], 2);
    assert!((carried.min_majority_share - 2.0 / 3.0).abs() < SHARE_TOLERANCE);
    assert_eq!(carried.mixed_voxels, 1);
}

/// Target grid rotated by 90° about z: its i axis runs along world +y
/// (spacing 2, like the source's j), its j axis along world −x, and its
/// origin at x = 2 mm, so target voxel (a, b, c) sits exactly on source
/// voxel (2 − b, a, c).
#[test]
fn transfer_rotated_grid_permutes_labels() {
    let source = grid([3, 4, 5], [1.0, 2.0, 3.0], [0.0; 3]);
    let target = Geometry {
        dims: [4, 3, 5],
        spacing: [2.0, 1.0, 3.0],
        origin: [2.0, 0.0, 0.0],
        direction: [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
    };
    let labels = Array3::from_shape_fn((3, 4, 5), |(i, j, k)| 1 + ((i + 3 * j + 7 * k) % 5) as u8);

    let carried = carry_labels(
        &labels,
        &source,
        &full_mask(target.dims),
        &target,
        DEFAULT_SUBSAMPLES_PER_AXIS,
    )
    .expect("valid input");

    let expected = Array3::from_shape_fn((4, 3, 5), |(a, b, c)| labels[[2 - b, a, c]]);
    assert_eq!(carried.labels, expected);
    assert_eq!(carried.mixed_voxels, 0);
    assert_eq!(carried.voted_point_share, 1.0);
}

/// Target shifted by +0.4 mm along x on a 1 mm grid. The three sub-voxel
/// centres along i of target voxel n sit at source index n + 0.067,
/// n + 0.4 and n + 0.733. They vote for source voxels n, n and n + 1.
/// Source labels along i are 1, 1, 2, 2: target voxel 1 is mixed (18 votes
/// for 1, 9 for 2) and the last voxel loses its third row of points off the
/// grid.
#[test]
fn transfer_shifted_grid_counts_mixed_boundary() {
    let source = grid([4, 2, 2], [1.0; 3], [0.0; 3]);
    let target = grid([4, 2, 2], [1.0; 3], [0.4, 0.0, 0.0]);
    let labels = Array3::from_shape_fn((4, 2, 2), |(i, _, _)| if i < 2 { 1u8 } else { 2 });

    let carried =
        carry_labels(&labels, &source, &full_mask(target.dims), &target, 3).expect("valid input");

    let expected = Array3::from_shape_fn((4, 2, 2), |(i, _, _)| if i < 2 { 1u8 } else { 2 });
    assert_eq!(carried.labels, expected);
    // One mixed voxel (i = 1) in each of the 2 × 2 rows along i.
    assert_eq!(carried.mixed_voxels, 4);
    assert!((carried.min_majority_share - 2.0 / 3.0).abs() < SHARE_TOLERANCE);
    // Per row: 27 + 27 + 27 + 18 voted points out of 4 × 27.
    assert!((carried.voted_point_share - 99.0 / 108.0).abs() < SHARE_TOLERANCE);
    assert_eq!(carried.unlabelled_voxels, 0);
}

/// A 1 mm line: source labels 1 at voxels 0–1 and 2 at voxel 5. The target
/// mask covers voxels 0–5 and 8, with a gap at 6–7. Voxel 2 is 1 mm from
/// label 1, voxel 3 is 2 mm from both (tie → 1), and voxel 4 is 1 mm from
/// label 2. Voxel 8 has no path, so it takes the label of voxel 5, the
/// nearest voted voxel in a straight line (3 mm).
#[test]
fn transfer_fills_unvoted_voxels_from_nearest() {
    let geometry = grid([10, 1, 1], [1.0; 3], [0.0; 3]);
    let mut labels = Array3::<u8>::zeros((10, 1, 1));
    labels[[0, 0, 0]] = 1;
    labels[[1, 0, 0]] = 1;
    labels[[5, 0, 0]] = 2;
    let mask = Array3::from_shape_fn((10, 1, 1), |(i, _, _)| i <= 5 || i == 8);

    let carried = carry_labels(&labels, &geometry, &mask, &geometry, 1).expect("valid input");

    let found: Vec<u8> = carried.labels.iter().copied().collect();
    assert_eq!(found, vec![1, 1, 1, 1, 2, 2, 0, 0, 2, 0]);
    assert_eq!(carried.unlabelled_voxels, 4);
    assert_eq!(carried.unreachable_voxels, 1);
}

/// On a grid with 1 mm along i and 3 mm along j, the unvoted voxel (0, 1)
/// is one step (3 mm) from label 2 at (0, 0). It is two steps (2 mm) from
/// label 1 at (2, 1). Distance in mm, not in steps, decides.
#[test]
fn transfer_fill_measures_path_in_millimetres() {
    let geometry = grid([3, 2, 1], [1.0, 3.0, 1.0], [0.0; 3]);
    let mut labels = Array3::<u8>::zeros((3, 2, 1));
    labels[[0, 0, 0]] = 2;
    labels[[2, 1, 0]] = 1;
    let mut mask = Array3::from_elem((3, 2, 1), false);
    for voxel in [[0, 0, 0], [0, 1, 0], [1, 1, 0], [2, 1, 0]] {
        mask[voxel] = true;
    }

    let carried = carry_labels(&labels, &geometry, &mask, &geometry, 1).expect("valid input");

    assert_eq!(carried.labels[[0, 1, 0]], 1);
    assert_eq!(carried.labels[[1, 1, 0]], 1);
    assert_eq!(carried.unlabelled_voxels, 2);
    assert_eq!(carried.unreachable_voxels, 0);
}

#[test]
fn transfer_rejects_zero_spacing() {
    let good = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let bad = grid([2, 2, 2], [1.0, 0.0, 1.0], [0.0; 3]);
    let labels = Array3::<u8>::ones((2, 2, 2));
    let error = carry_labels(&labels, &bad, &full_mask(good.dims), &good, 3).unwrap_err();
    assert!(
        matches!(
            error,
            TransferError::InvalidGeometry {
                grid: GridRole::Source,
                problem: GeometryProblem::Spacing { axis: 1, .. }
            }
        ),
        "{error}"
    );
}

#[test]
fn transfer_rejects_nan_target_spacing() {
    let good = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let bad = grid([2, 2, 2], [1.0, 1.0, f64::NAN], [0.0; 3]);
    let labels = Array3::<u8>::ones((2, 2, 2));
    let error = carry_labels(&labels, &good, &full_mask(bad.dims), &bad, 3).unwrap_err();
    assert!(
        matches!(
            error,
            TransferError::InvalidGeometry {
                grid: GridRole::Target,
                problem: GeometryProblem::Spacing { axis: 2, .. }
            }
        ),
        "{error}"
    );
}

#[test]
fn transfer_rejects_singular_direction() {
    let good = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let mut bad = good.clone();
    bad.direction = [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
    let labels = Array3::<u8>::ones((2, 2, 2));
    let error = carry_labels(&labels, &good, &full_mask(bad.dims), &bad, 3).unwrap_err();
    assert!(
        matches!(
            error,
            TransferError::InvalidGeometry {
                problem: GeometryProblem::SingularDirection { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn transfer_rejects_subsamples_out_of_range() {
    let geometry = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let labels = Array3::<u8>::ones((2, 2, 2));
    let mask = full_mask(geometry.dims);
    for value in [0, MAX_SUBSAMPLES_PER_AXIS + 1] {
        let error = carry_labels(&labels, &geometry, &mask, &geometry, value).unwrap_err();
        assert_eq!(error, TransferError::Subsamples { value });
    }
}

#[test]
fn transfer_rejects_label_map_of_other_shape() {
    let geometry = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let labels = Array3::<u8>::ones((2, 2, 3));
    let error =
        carry_labels(&labels, &geometry, &full_mask(geometry.dims), &geometry, 3).unwrap_err();
    assert_eq!(
        error,
        TransferError::ShapeMismatch {
            grid: GridRole::Source,
            array: "label map",
            expected: [2, 2, 2],
            found: [2, 2, 3],
        }
    );
}

#[test]
fn transfer_rejects_mask_of_other_shape() {
    let geometry = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let labels = Array3::<u8>::ones((2, 2, 2));
    let mask = Array3::from_elem((3, 2, 2), true);
    let error = carry_labels(&labels, &geometry, &mask, &geometry, 3).unwrap_err();
    assert!(
        matches!(
            error,
            TransferError::ShapeMismatch {
                grid: GridRole::Target,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn transfer_disjoint_grids_report_no_overlap() {
    let source = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let target = grid([2, 2, 2], [1.0; 3], [100.0, 0.0, 0.0]);
    let labels = Array3::<u8>::ones((2, 2, 2));
    let error = carry_labels(&labels, &source, &full_mask(target.dims), &target, 3).unwrap_err();
    assert_eq!(
        error,
        TransferError::NoOverlap {
            mask_voxels: 8,
            points: 8 * 27
        }
    );
}

#[test]
fn transfer_rejects_empty_target_mask() {
    let geometry = grid([2, 2, 2], [1.0; 3], [0.0; 3]);
    let labels = Array3::<u8>::ones((2, 2, 2));
    let mask = Array3::from_elem((2, 2, 2), false);
    let error = carry_labels(&labels, &geometry, &mask, &geometry, 3).unwrap_err();
    assert_eq!(error, TransferError::EmptyMask);
}

fn sts_dir() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
        .join("sts/STS_001")
}

/// STS_001: MR T1 (0.98 × 0.98 × 3.27 mm) and PET masks outline the same
/// lesion on different grids. A two-habitat map on the MR (label 1 in the
/// lower half of the lesion's k range, 2 above) is carried to the PET
/// mask. The checks are the contract: every PET mask voxel gets a label,
/// nothing outside the mask does, and both habitats survive. The vote
/// share bound (at least half of the points land on the MR lesion) is a
/// loose sanity bound for two masks of one lesion, not a reference value.
#[test]
fn transfer_sts_mr_habitats_reach_every_pet_voxel() {
    let dir = sts_dir();
    let mr_mask = read_volume(&dir.join("MR_T1_mask.nii.gz")).expect("MR mask reads");
    let pet_mask = read_volume(&dir.join("PET_mask.nii.gz")).expect("PET mask reads");
    let mr_inside = mr_mask.data.mapv(|value| value > 0.5);
    let pet_inside = pet_mask.data.mapv(|value| value > 0.5);

    let k_range: Vec<usize> = mr_inside
        .indexed_iter()
        .filter(|(_, inside)| **inside)
        .map(|((_, _, k), _)| k)
        .collect();
    let k_low = *k_range.iter().min().expect("MR lesion is not empty");
    let k_high = *k_range.iter().max().expect("MR lesion is not empty");
    let k_middle = (k_low + k_high) / 2;
    let mr_labels =
        Array3::from_shape_fn(mr_inside.dim(), |(i, j, k)| match mr_inside[[i, j, k]] {
            false => 0u8,
            true if k <= k_middle => 1,
            true => 2,
        });

    let carried = carry_labels(
        &mr_labels,
        &mr_mask.geometry,
        &pet_inside,
        &pet_mask.geometry,
        DEFAULT_SUBSAMPLES_PER_AXIS,
    )
    .expect("STS_001 grids are valid and overlap");

    let pet_voxels = pet_inside.iter().filter(|&&inside| inside).count();
    assert_eq!(carried.mask_voxels, pet_voxels);
    for (index, &inside) in pet_inside.indexed_iter() {
        assert_eq!(carried.labels[index] > 0, inside, "voxel {index:?}");
    }
    assert!(carried.labels.iter().any(|&label| label == 1));
    assert!(carried.labels.iter().any(|&label| label == 2));
    assert!(
        carried.voted_point_share > 0.5,
        "voted point share {}",
        carried.voted_point_share
    );
}

/// Two habitats from normalised depth on `mask` (grid spacing in mm):
/// label 1 where δ > 0.5, label 2 elsewhere in the mask.
fn depth_habitats(mask: &Array3<bool>, spacing: [f64; 3]) -> Array3<u8> {
    let roi = crate::mask::Roi {
        voxel_count: mask.iter().filter(|&&inside| inside).count(),
        mask: mask.clone(),
    };
    let depth = crate::habitat::depth::roi_depth(&roi, spacing).expect("non-empty lesion");
    let mut labels = Array3::<u8>::zeros(mask.dim());
    for (voxel, &normalised) in depth.voxels.iter().zip(&depth.normalised) {
        labels[*voxel] = if normalised > 0.5 { 1 } else { 2 };
    }
    labels
}

/// Carries depth habitats MR → PET and PET → MR for every STS patient and
/// prints the agreement counts. Run with `--ignored --nocapture`; it reads
/// four volumes per patient. The asserts are the contract (every target
/// mask voxel labelled, none outside); the printed numbers are
/// measurements, not reference values.
#[test]
#[ignore = "reads the whole STS cohort; run by hand for the agreement table"]
fn transfer_sts_cohort_agreement() {
    let root = sts_dir()
        .parent()
        .expect("STS_001 has a parent")
        .to_path_buf();
    let mut patients: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("STS root lists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("PET_mask.nii.gz").exists())
        .collect();
    patients.sort();
    println!(
        "patient direction target mask mixed unlabelled unreachable voted_share mean_share ms"
    );
    for patient in &patients {
        let mr = read_volume(&patient.join("MR_T1_mask.nii.gz")).expect("MR mask reads");
        let pet = read_volume(&patient.join("PET_mask.nii.gz")).expect("PET mask reads");
        let mr_mask = mr.data.mapv(|value| value > 0.5);
        let pet_mask = pet.data.mapv(|value| value > 0.5);
        let cases = [
            ("MR->PET", &mr_mask, &mr.geometry, &pet_mask, &pet.geometry),
            ("PET->MR", &pet_mask, &pet.geometry, &mr_mask, &mr.geometry),
        ];
        for (direction, source_mask, source, target_mask, target) in cases {
            let labels = depth_habitats(source_mask, source.spacing);
            let start = std::time::Instant::now();
            let carried = carry_labels(
                &labels,
                source,
                target_mask,
                target,
                DEFAULT_SUBSAMPLES_PER_AXIS,
            )
            .expect("STS grids overlap");
            let elapsed = start.elapsed();
            for (index, &inside) in target_mask.indexed_iter() {
                assert_eq!(carried.labels[index] > 0, inside, "{patient:?} {index:?}");
            }
            println!(
                "{} {direction} {} {} {} {} {:.3} {:.3} {:.1}",
                patient
                    .file_name()
                    .map(|name| name.to_string_lossy())
                    .unwrap_or_default(),
                carried.mask_voxels,
                carried.mixed_voxels,
                carried.unlabelled_voxels,
                carried.unreachable_voxels,
                carried.voted_point_share,
                carried.mean_majority_share,
                elapsed.as_secs_f64() * 1e3,
            );
        }
    }
}
