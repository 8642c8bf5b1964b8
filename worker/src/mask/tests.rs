use super::*;
use crate::image::Geometry;
use ndarray::ShapeBuilder;

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
        stored_as_integer: true,
    }
}

#[test]
fn mask_selects_requested_label() {
    let mut data = Array3::zeros((4, 4, 4));
    data.slice_mut(ndarray::s![0..2, 0..2, 0..2]).fill(2.0);
    data[[3, 3, 3]] = 1.0;
    let roi = select_label(&volume(data), 2).expect("label 2 spans 2x2x2");
    assert_eq!(roi.voxel_count, 8);
}

#[test]
fn mask_absent_label_lists_labels_present() {
    let mut data = Array3::zeros((3, 3, 3));
    data[[0, 0, 0]] = 2.0;
    data[[1, 1, 1]] = 5.0;
    let error = select_label(&volume(data), 1).unwrap_err();
    assert_eq!(
        error,
        MaskError::LabelAbsent {
            label: 1,
            present: vec![2, 5]
        }
    );
    assert!(
        error.to_string().contains("labels present: 2, 5;"),
        "{error}"
    );
    // The same message reaches a study's exclusions and the CLI's
    // `check` and `extract`, so it names the setting of each.
    assert!(error.to_string().contains("features.label"), "{error}");
    assert!(error.to_string().contains("--label"), "{error}");
}

#[test]
fn mask_empty_is_named_empty() {
    let error = select_label(&volume(Array3::zeros((3, 3, 3))), 1).unwrap_err();
    assert_eq!(error, MaskError::Empty);
}

#[test]
fn mask_non_integer_value_is_rejected() {
    let mut data = Array3::zeros((3, 3, 3));
    data[[1, 2, 0]] = 0.5;
    let error = select_label(&volume(data), 1).unwrap_err();
    assert_eq!(
        error,
        MaskError::NonInteger {
            value: 0.5,
            voxel: [1, 2, 0],
            looks_like_intensity_image: false,
        }
    );
    assert!(!error.to_string().contains("swapped"), "{error}");
}

#[test]
fn mask_absent_label_lists_first_ten() {
    // Labels 2 to 21, one voxel each: 20 labels, of which the message lists the
    // 10 smallest and counts the other 10.
    let mut data = Array3::zeros((3, 3, 3));
    for (voxel, label) in data.iter_mut().zip(2..=21) {
        *voxel = label as f64;
    }
    let error = select_label(&volume(data), 1).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("labels present: 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 10 more;"),
        "{message}"
    );
    assert!(!message.contains("12"), "{message}");
    assert!(message.contains("--label"), "{message}");
    assert!(!message.contains("swapped"), "{message}");
}

#[test]
fn mask_absent_label_many_values_suggests_swap() {
    // Values -100 to 411 on an 8 × 8 × 8 grid, as in a CT image given as the mask:
    // 512 voxels, 511 distinct non-zero values (0 is background).
    let data = Array3::from_shape_fn((8, 8, 8), |(i, j, k)| (i + 8 * j + 64 * k) as f64 - 100.0);
    let error = select_label(&volume(data), 1000).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("511 distinct values"), "{message}");
    assert!(
        message.contains("(-100, -99, -98, -97, -96, -95, -94, -93, -92, -91 and 501 more)"),
        "{message}"
    );
    assert!(message.contains("intensity image"), "{message}");
    assert!(
        message.contains("image and mask paths are not swapped"),
        "{message}"
    );
    assert!(!message.contains("set the label"), "{message}");
}

#[test]
fn mask_non_integer_many_values_suggests_swap() {
    // 0.5 to 511.5 on an 8 × 8 × 8 grid, as in a float MR image given as the mask.
    let data = Array3::from_shape_fn((8, 8, 8), |(i, j, k)| (i + 8 * j + 64 * k) as f64 + 0.5);
    let error = select_label(&volume(data), 1).unwrap_err();
    assert_eq!(
        error,
        MaskError::NonInteger {
            value: 0.5,
            voxel: [0, 0, 0],
            looks_like_intensity_image: true,
        }
    );
    let message = error.to_string();
    assert!(message.contains("intensity image"), "{message}");
    assert!(
        message.contains("image and mask paths are not swapped"),
        "{message}"
    );
}

#[test]
fn mask_non_integer_names_index_order_voxel() {
    // Fortran order, as NIfTI volumes are read. Memory order visits (2, 0, 0) at
    // offset 2 first. [i, j, k] order visits (0, 0, 2) at position 2 first, and the
    // error names that one.
    let mut data = Array3::zeros((3, 3, 3).f());
    data[[2, 0, 0]] = 0.25;
    data[[0, 0, 2]] = 0.5;
    let error = select_label(&volume(data), 1).unwrap_err();
    assert_eq!(
        error,
        MaskError::NonInteger {
            value: 0.5,
            voxel: [0, 0, 2],
            looks_like_intensity_image: false,
        }
    );
}

#[test]
fn mask_fortran_order_keeps_layout_and_count() {
    // Label 3 on a 2 × 3 × 2 block of a 4 × 5 × 3 Fortran-order map: 12 voxels, and
    // the mask keeps the map's memory order.
    let mut data = Array3::zeros((4, 5, 3).f());
    data.slice_mut(ndarray::s![1..3, 1..4, 0..2]).fill(3.0);
    data[[0, 0, 0]] = 7.0;
    let roi = select_label(&volume(data), 3).expect("label 3 spans three axes");
    assert_eq!(roi.voxel_count, 12);
    assert!(roi.mask.t().is_standard_layout());
    assert!(roi.mask[[1, 1, 0]]);
    assert!(!roi.mask[[0, 0, 0]]);
}

#[test]
fn mask_one_voxel_roi_is_too_small() {
    let mut data = Array3::zeros((3, 3, 3));
    data[[1, 1, 1]] = 1.0;
    let error = select_label(&volume(data), 1).unwrap_err();
    assert_eq!(
        error,
        MaskError::TooSmall {
            voxels: 1,
            dimensions: 0,
            extent: [1, 1, 1]
        }
    );
}

#[test]
fn mask_line_roi_is_too_small() {
    let mut data = Array3::zeros((3, 3, 3));
    data.slice_mut(ndarray::s![.., 1, 1]).fill(1.0);
    assert!(matches!(
        select_label(&volume(data), 1),
        Err(MaskError::TooSmall { dimensions: 1, .. })
    ));
}

#[test]
fn roi_values_counts_non_finite_intensities() {
    let mut labels = Array3::zeros((2, 2, 2));
    labels.fill(1.0);
    let roi = select_label(&volume(labels), 1).expect("full cube");
    let mut image = Array3::from_elem((2, 2, 2), 3.0);
    image[[0, 0, 0]] = f64::NAN;
    image[[1, 0, 0]] = f64::INFINITY;
    assert_eq!(roi_values(&volume(image), &roi), Err(2));
}

fn geometry(dims: [usize; 3], origin: [f64; 3]) -> crate::image::Geometry {
    crate::image::Geometry {
        dims,
        spacing: [2.0, 2.0, 5.0],
        origin,
        direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    }
}

fn label_box(dims: [usize; 3], origin: [f64; 3]) -> Volume {
    Volume {
        data: Array3::from_elem(dims, 1.0),
        geometry: geometry(dims, origin),
        stored_as_integer: true,
    }
}

#[test]
fn placement_puts_sub_grid_mask_by_position() {
    // Mask origin (4, 2, 5) mm on a 2 × 2 × 5 mm grid from 0 is image index (2, 1, 1).
    let image = geometry([6, 5, 4], [0.0; 3]);
    let placed = place_on_image_grid(
        &label_box([2, 2, 2], [4.0, 2.0, 5.0]),
        &image,
        &crate::config::GeometryTolerance::default(),
        1,
    )
    .expect("sub-grid mask is placed");
    assert_eq!(placed.geometry, image);
    assert_eq!(placed.data.iter().filter(|&&v| v == 1.0).count(), 8);
    assert_eq!(placed.data[[2, 1, 1]], 1.0);
    assert_eq!(placed.data[[3, 2, 2]], 1.0);
    assert_eq!(placed.data[[1, 1, 1]], 0.0);
}

#[test]
fn placement_on_same_grid_moves_without_copy() {
    let labels = label_box([3, 2, 2], [0.0; 3]);
    let address = labels.data.as_ptr();
    let placed = into_image_grid(
        labels,
        &geometry([3, 2, 2], [0.0; 3]),
        &crate::config::GeometryTolerance::default(),
        1,
    )
    .expect("the mask grid is the image grid");
    assert_eq!(placed.data.as_ptr(), address);
}

#[test]
fn placement_rejects_mask_outside_image() {
    let image = geometry([6, 5, 4], [0.0; 3]);
    let error = place_on_image_grid(
        &label_box([2, 2, 2], [10.0, 0.0, 0.0]),
        &image,
        &crate::config::GeometryTolerance::default(),
        1,
    )
    .unwrap_err();
    // Index offset (5, 0, 0): the i = 6 half of the 2 × 2 × 2 box is outside.
    assert_eq!(
        error,
        PlacementError::OutsideImage {
            label: 1,
            outside: 4,
            offset: [5, 0, 0],
            mask_dims: [2, 2, 2],
            image_dims: [6, 5, 4],
        }
    );
}

#[test]
fn placement_crops_larger_grid_to_image() {
    // An 8 × 7 × 6 mask from the image origin covers the 6 × 5 × 4 image and more.
    // Label 1 lies inside the image, label 2 only outside it: label 2 is dropped.
    let image = geometry([6, 5, 4], [0.0; 3]);
    let mut labels = label_box([8, 7, 6], [0.0; 3]);
    labels.data.fill(0.0);
    labels.data[[1, 1, 1]] = 1.0;
    labels.data[[5, 4, 3]] = 1.0;
    labels.data[[7, 6, 5]] = 2.0;
    let placed = place_on_image_grid(
        &labels,
        &image,
        &crate::config::GeometryTolerance::default(),
        1,
    )
    .expect("every voxel of label 1 lies inside the image");
    assert_eq!(placed.geometry, image);
    assert_eq!(placed.data[[1, 1, 1]], 1.0);
    assert_eq!(placed.data[[5, 4, 3]], 1.0);
    assert_eq!(placed.data.iter().filter(|&&v| v != 0.0).count(), 2);
}

#[test]
fn placement_rejects_non_integer_outside_image() {
    let image = geometry([6, 5, 4], [0.0; 3]);
    let mut labels = label_box([8, 7, 6], [0.0; 3]);
    labels.data.fill(0.0);
    labels.data[[1, 1, 1]] = 1.0;
    labels.data[[7, 0, 0]] = 0.5;
    let error = place_on_image_grid(
        &labels,
        &image,
        &crate::config::GeometryTolerance::default(),
        1,
    )
    .unwrap_err();
    assert_eq!(
        error,
        PlacementError::NonIntegerOutside {
            value: 0.5,
            voxel: [7, 0, 0],
        }
    );
}

#[test]
fn placement_rejects_mask_between_voxel_centres() {
    let image = geometry([6, 5, 4], [0.0; 3]);
    let error = place_on_image_grid(
        &label_box([2, 2, 2], [1.0, 0.0, 0.0]),
        &image,
        &crate::config::GeometryTolerance::default(),
        1,
    )
    .unwrap_err();
    assert!(matches!(error, PlacementError::OffGrid { distance_mm, .. } if distance_mm == 1.0));
}
