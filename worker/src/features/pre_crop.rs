//! Cropping before the filters (PyRadiomics `preCrop`): the image and ROI are cut to the
//! ROI's bounding box widened by `padDistance` voxels on each side (default 5), clipped
//! to the image. Cropping changes filtered values: the intensity filters scale by max|x|
//! over the cropped image, and LoG, Gradient and Wavelet see the crop's edges. Source:
//! PyRadiomics `imageoperations.cropToTumorMask`, called from
//! `RadiomicsFeatureExtractor.loadImage` after normalisation.

use ndarray::{Array3, ArrayView3, ShapeBuilder, s};

use super::discretize::bounding_box;
use crate::image::{Geometry, Volume};
use crate::mask::Roi;

/// Returns the image and ROI cropped to the ROI's bounding box plus `pad_voxels`, or
/// copies of both when the ROI is empty.
pub fn pre_crop(image: &Volume, roi: &Roi, pad_voxels: usize) -> (Volume, Roi) {
    let Some((low, high)) = bounding_box(roi) else {
        return (image.clone(), roi.clone());
    };
    let dims = image.geometry.dims;
    let from: [usize; 3] = std::array::from_fn(|axis| low[axis].saturating_sub(pad_voxels));
    let to: [usize; 3] = std::array::from_fn(|axis| (high[axis] + pad_voxels + 1).min(dims[axis]));

    let data = image
        .data
        .slice(s![from[0]..to[0], from[1]..to[1], from[2]..to[2]])
        .to_owned();
    let mask = roi
        .mask
        .slice(s![from[0]..to[0], from[1]..to[1], from[2]..to[2]])
        .to_owned();

    let cropped = Volume {
        data,
        geometry: cropped_geometry(&image.geometry, from, to),
        stored_as_integer: image.stored_as_integer,
    };
    let roi = Roi {
        mask,
        voxel_count: roi.voxel_count,
    };
    (cropped, roi)
}

/// Returns the image and ROI cut to the ROI's bounding box, each in its own memory order
/// (Fortran order for NIfTI), or `None` when the ROI is empty.
///
/// Features of the original image depend only on the ROI voxels and their order in
/// memory. This crop keeps both, so the features are the same on the crop as on the whole
/// image, and the passes over the ROI touch only the box. Filters and normalisation see the
/// voxels around the ROI, so they need the whole image.
pub fn crop_to_bounding_box(image: &Volume, roi: &Roi) -> Option<(Volume, Roi)> {
    let (low, high) = bounding_box(roi)?;
    let to: [usize; 3] = std::array::from_fn(|axis| high[axis] + 1);
    let box_slice = s![low[0]..to[0], low[1]..to[1], low[2]..to[2]];
    let cropped = Volume {
        data: copy_in_order(
            image.data.slice(box_slice),
            0.0,
            is_fortran_order(&image.data),
        ),
        geometry: cropped_geometry(&image.geometry, low, to),
        stored_as_integer: image.stored_as_integer,
    };
    let roi = Roi {
        mask: copy_in_order(
            roi.mask.slice(box_slice),
            false,
            is_fortran_order(&roi.mask),
        ),
        voxel_count: roi.voxel_count,
    };
    Some((cropped, roi))
}

fn is_fortran_order<T>(array: &Array3<T>) -> bool {
    !array.is_standard_layout() && array.t().is_standard_layout()
}

/// Copies `view` into a new array in Fortran or C order, because `to_owned` of a sliced
/// view always gives C order.
fn copy_in_order<T: Copy>(view: ArrayView3<T>, fill: T, fortran_order: bool) -> Array3<T> {
    let mut copy = if fortran_order {
        Array3::from_elem(view.raw_dim().f(), fill)
    } else {
        Array3::from_elem(view.raw_dim(), fill)
    };
    copy.assign(&view);
    copy
}

/// Returns the geometry of the voxels `from` (inclusive) to `to` (exclusive) of a grid.
fn cropped_geometry(geometry: &Geometry, from: [usize; 3], to: [usize; 3]) -> Geometry {
    // The new voxel (0, 0, 0) is the old voxel `from`.
    let origin: [f64; 3] = std::array::from_fn(|row| {
        geometry.origin[row]
            + (0..3)
                .map(|axis| {
                    geometry.direction[row][axis] * geometry.spacing[axis] * from[axis] as f64
                })
                .sum::<f64>()
    });
    Geometry {
        dims: std::array::from_fn(|axis| to[axis] - from[axis]),
        spacing: geometry.spacing,
        origin,
        direction: geometry.direction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn pre_crop_pads_and_clips_to_image() {
        // ROI voxel (1, 5, 5) in a 10×10×10 image with pad 2: i from 0 (clipped) to 3,
        // j and k from 3 to 7, and the origin moves by the lower corner times the spacing.
        let mut mask = Array3::from_elem((10, 10, 10), false);
        mask[[1, 5, 5]] = true;
        let roi = Roi {
            mask,
            voxel_count: 1,
        };
        let image = Volume {
            data: Array3::from_shape_fn((10, 10, 10), |(i, j, k)| (i * 100 + j * 10 + k) as f64),
            geometry: Geometry {
                dims: [10, 10, 10],
                spacing: [2.0, 1.0, 1.0],
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: true,
        };
        let (cropped, cropped_roi) = pre_crop(&image, &roi, 2);
        assert_eq!(cropped.geometry.dims, [4, 5, 5]);
        assert_eq!(cropped.geometry.origin, [0.0, 3.0, 3.0]);
        assert_eq!(cropped.data[[0, 0, 0]], 33.0);
        assert!(cropped_roi.mask[[1, 2, 2]]);
        assert_eq!(cropped_roi.voxel_count, 1);
    }

    #[test]
    fn bounding_box_crop_keeps_roi_values() {
        // Image value 100k + 10j + i; ROI voxels (1, 1, 1), (3, 2, 1) and (2, 1, 2), so the
        // box runs from (1, 1, 1) to (3, 2, 2).
        let image = Volume {
            data: Array3::from_shape_fn((5, 4, 3).f(), |(i, j, k)| (100 * k + 10 * j + i) as f64),
            geometry: Geometry {
                dims: [5, 4, 3],
                spacing: [2.0, 1.0, 3.0],
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: true,
        };
        let mut mask = Array3::from_elem((5, 4, 3).f(), false);
        for voxel in [[1, 1, 1], [3, 2, 1], [2, 1, 2]] {
            mask[voxel] = true;
        }
        let roi = Roi {
            mask,
            voxel_count: 3,
        };

        let (cropped, cropped_roi) = crop_to_bounding_box(&image, &roi).expect("ROI is not empty");
        assert_eq!(cropped.geometry.dims, [3, 2, 2]);
        assert_eq!(cropped.geometry.origin, [2.0, 1.0, 3.0]);
        assert!(cropped.data.t().is_standard_layout());
        assert!(cropped_roi.mask.t().is_standard_layout());
        assert_eq!(cropped.data[[0, 0, 0]], 111.0);
        // Fortran order lists i fastest, then j, then k: 111, 123, 212.
        let values = crate::mask::roi_values(&cropped, &cropped_roi).expect("finite");
        assert_eq!(values, [111.0, 123.0, 212.0]);
        assert_eq!(
            values,
            crate::mask::roi_values(&image, &roi).expect("finite")
        );
    }
}
