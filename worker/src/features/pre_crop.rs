//! Cropping before the filters (PyRadiomics `preCrop`): the image and ROI are cut to the
//! ROI's bounding box widened by `padDistance` voxels on each side (default 5), clipped
//! to the image. Cropping changes filtered values: the intensity filters scale by max|x|
//! over the cropped image, and LoG, Gradient and Wavelet see the crop's edges. Source:
//! PyRadiomics `imageoperations.cropToTumorMask`, called from
//! `RadiomicsFeatureExtractor.loadImage` after normalisation.

use ndarray::s;

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

    // The new voxel (0, 0, 0) is the old voxel `from`.
    let geometry = &image.geometry;
    let origin: [f64; 3] = std::array::from_fn(|row| {
        geometry.origin[row]
            + (0..3)
                .map(|axis| {
                    geometry.direction[row][axis] * geometry.spacing[axis] * from[axis] as f64
                })
                .sum::<f64>()
    });
    let cropped = Volume {
        data,
        geometry: Geometry {
            dims: std::array::from_fn(|axis| to[axis] - from[axis]),
            spacing: geometry.spacing,
            origin,
            direction: geometry.direction,
        },
        stored_as_integer: image.stored_as_integer,
    };
    let roi = Roi {
        mask,
        voxel_count: roi.voxel_count,
    };
    (cropped, roi)
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
}
