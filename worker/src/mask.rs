//! Regions of interest from integer label maps.
//!
//! A mask file is a label map: every voxel contains an integer label, 0 for
//! background. The region of interest is the set of voxels equal to the
//! requested label. A mask with a non-integer value is an error, never
//! truncated, because a float mask usually means an interpolated or
//! probabilistic map that needs a decision the worker cannot make.

use std::collections::BTreeSet;

use ndarray::{Array3, Zip};

use crate::image::Volume;

/// Smallest number of axes along which the ROI must span more than one
/// voxel (PyRadiomics' `minimumROIDimensions` default, 2).
pub const MIN_ROI_DIMENSIONS: usize = 2;

/// Reason a mask yields no usable region.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MaskError {
    /// A voxel value is not an integer.
    #[error(
        "mask value {value} at voxel {voxel:?} is not an integer; masks must be integer label maps"
    )]
    NonInteger {
        /// The offending value.
        value: f64,
        /// Its voxel index (i, j, k).
        voxel: [usize; 3],
    },
    /// The requested label does not occur.
    #[error(
        "label {label} not found in mask; labels present: {present:?}; set the study's label to one of them"
    )]
    LabelAbsent {
        /// The requested label.
        label: u32,
        /// Labels present, background excluded.
        present: Vec<i64>,
    },
    /// The ROI is too thin for the features.
    #[error(
        "ROI of {voxels} voxels spans more than one voxel along {dimensions} axes (extent {extent:?}); at least {MIN_ROI_DIMENSIONS} are needed"
    )]
    TooSmall {
        /// Voxels in the ROI.
        voxels: usize,
        /// Axes with extent > 1.
        dimensions: usize,
        /// Bounding-box extent along i, j, k.
        extent: [usize; 3],
    },
}

/// A region of interest: a boolean mask on the image grid.
#[derive(Debug, Clone)]
pub struct Roi {
    /// `true` inside the region, indexed `[i, j, k]`.
    pub mask: Array3<bool>,
    /// Number of `true` voxels.
    pub voxel_count: usize,
}

/// Selects the voxels equal to `label` in a label map and checks that the
/// region is large enough for 3-D features.
pub fn select_label(labels: &Volume, label: u32) -> Result<Roi, MaskError> {
    let mut present = BTreeSet::new();
    for ((i, j, k), &value) in labels.data.indexed_iter() {
        if value.fract() != 0.0 || !value.is_finite() {
            return Err(MaskError::NonInteger {
                value,
                voxel: [i, j, k],
            });
        }
        if value != 0.0 {
            present.insert(value as i64);
        }
    }
    if !present.contains(&(label as i64)) {
        return Err(MaskError::LabelAbsent {
            label,
            present: present.into_iter().collect(),
        });
    }

    let target = label as f64;
    let mask = labels.data.mapv(|value| value == target);
    let voxel_count = mask.iter().filter(|&&inside| inside).count();

    let extent = bounding_box_extent(&mask);
    let dimensions = extent.iter().filter(|&&e| e > 1).count();
    if dimensions < MIN_ROI_DIMENSIONS {
        return Err(MaskError::TooSmall {
            voxels: voxel_count,
            dimensions,
            extent,
        });
    }
    Ok(Roi { mask, voxel_count })
}

/// Returns the ROI's intensities, in `[i, j, k]` iteration order, or the
/// number of non-finite values among them.
pub fn roi_values(image: &Volume, roi: &Roi) -> Result<Vec<f64>, usize> {
    let mut values = Vec::with_capacity(roi.voxel_count);
    let mut non_finite = 0;
    Zip::from(&image.data)
        .and(&roi.mask)
        .for_each(|&value, &inside| {
            if inside {
                if value.is_finite() {
                    values.push(value);
                } else {
                    non_finite += 1;
                }
            }
        });
    if non_finite > 0 {
        Err(non_finite)
    } else {
        Ok(values)
    }
}

/// Bounding-box extent of the `true` voxels along each axis (0 when empty).
fn bounding_box_extent(mask: &Array3<bool>) -> [usize; 3] {
    let mut low = [usize::MAX; 3];
    let mut high = [0usize; 3];
    for ((i, j, k), &inside) in mask.indexed_iter() {
        if inside {
            for (axis, index) in [i, j, k].into_iter().enumerate() {
                low[axis] = low[axis].min(index);
                high[axis] = high[axis].max(index);
            }
        }
    }
    std::array::from_fn(|axis| {
        if low[axis] == usize::MAX {
            0
        } else {
            high[axis] - low[axis] + 1
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Geometry;

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
        assert!(error.to_string().contains("[2, 5]"));
    }

    #[test]
    fn mask_empty_reports_no_labels() {
        let error = select_label(&volume(Array3::zeros((3, 3, 3))), 1).unwrap_err();
        assert_eq!(
            error,
            MaskError::LabelAbsent {
                label: 1,
                present: vec![]
            }
        );
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
                voxel: [1, 2, 0]
            }
        );
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
}
