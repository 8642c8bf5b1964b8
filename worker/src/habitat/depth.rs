//! Depth of each ROI voxel below the lesion surface, in mm.
//!
//! The depth d(v) of a voxel v of the ROI M is the Euclidean distance, in mm
//! between voxel centres, to the nearest voxel outside M. Voxels beyond the
//! image border count as outside, so a ROI voxel on the border has a depth
//! of one spacing along that axis. The normalised depth is
//! δ(v) = d(v) / max_{u ∈ M} d(u), in (0, 1]. Both come from the exact
//! transform [`inside_distance_mm`].

use ndarray::{Array3, s};

use crate::mask::Roi;
use crate::perturb::distance::{DistanceError, inside_distance_mm};

/// Depth of each ROI voxel, in ROI voxel order: `[i, j, k]` lexicographic
/// (k fastest), the order of `Array3::indexed_iter` over the mask.
#[derive(Debug, Clone, PartialEq)]
pub struct RoiDepth {
    /// Index (i, j, k) of each ROI voxel.
    pub voxels: Vec<[usize; 3]>,
    /// Depth d(v) in mm; every value is at least the smallest spacing.
    pub depth_mm: Vec<f64>,
    /// Normalised depth δ(v) = d(v) / max d, in (0, 1].
    pub normalised: Vec<f64>,
    /// The largest depth over the ROI, in mm.
    pub max_depth_mm: f64,
}

/// An error from [`roi_depth`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DepthError {
    /// The ROI has no voxel.
    #[error("the ROI is empty, so it has no depth")]
    EmptyRoi,
    /// The voxel spacing is invalid.
    #[error(transparent)]
    Spacing(#[from] DistanceError),
}

/// Computes the depth of every ROI voxel on a grid of the given spacing
/// (mm along i, j, k).
pub fn roi_depth(roi: &Roi, spacing: [f64; 3]) -> Result<RoiDepth, DepthError> {
    let (low, high) = bounding_box(&roi.mask).ok_or(DepthError::EmptyRoi)?;

    // The transform runs on the bounding box grown by one voxel and
    // clipped to the image, which gives the same distances as the whole
    // image. Take a voxel v in the box and any voxel u outside the grown
    // box: clamping u into the grown box moves it closer to v along every
    // axis and keeps it outside M. Where the grown box is clipped, the
    // border rule of `inside_distance_mm` adds the same outside voxels
    // that the image border does.
    let dims = roi.mask.dim();
    let dims = [dims.0, dims.1, dims.2];
    let start: [usize; 3] = std::array::from_fn(|axis| low[axis].saturating_sub(1));
    let end: [usize; 3] = std::array::from_fn(|axis| (high[axis] + 2).min(dims[axis]));
    let crop = roi
        .mask
        .slice(s![start[0]..end[0], start[1]..end[1], start[2]..end[2]])
        .to_owned();
    let distance = inside_distance_mm(&crop, spacing)?;

    let mut voxels = Vec::with_capacity(roi.voxel_count);
    let mut depth_mm = Vec::with_capacity(roi.voxel_count);
    for ((i, j, k), &inside) in crop.indexed_iter() {
        if inside {
            voxels.push([start[0] + i, start[1] + j, start[2] + k]);
            depth_mm.push(distance[[i, j, k]]);
        }
    }
    let max_depth_mm = depth_mm.iter().copied().fold(0.0, f64::max);
    let normalised = depth_mm.iter().map(|&d| d / max_depth_mm).collect();
    Ok(RoiDepth {
        voxels,
        depth_mm,
        normalised,
        max_depth_mm,
    })
}

/// Returns the inclusive bounding box (low, high) of the `true` voxels, or
/// `None` for an empty mask.
pub(super) fn bounding_box(mask: &Array3<bool>) -> Option<([usize; 3], [usize; 3])> {
    let mut low = [usize::MAX; 3];
    let mut high = [0usize; 3];
    let mut any = false;
    // Zip visits the voxels in memory order, which matters for NIfTI
    // masks stored with i fastest. The box does not depend on the order.
    ndarray::Zip::indexed(mask).for_each(|(i, j, k), &inside| {
        if inside {
            any = true;
            for (axis, index) in [i, j, k].into_iter().enumerate() {
                low[axis] = low[axis].min(index);
                high[axis] = high[axis].max(index);
            }
        }
    });
    any.then_some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roi(mask: Array3<bool>) -> Roi {
        let voxel_count = mask.iter().filter(|&&inside| inside).count();
        Roi { mask, voxel_count }
    }

    #[test]
    fn depth_matches_whole_image_transform() {
        // An irregular ROI away from the border and touching it.
        let mask = Array3::from_shape_fn((9, 8, 7), |(i, j, k)| {
            let inside_blob =
                (i as f64 - 4.0).powi(2) + (j as f64 - 3.0).powi(2) + (k as f64 - 2.0).powi(2)
                    < 7.0;
            let touching = i == 8 && j < 3;
            inside_blob || touching
        });
        let spacing = [0.8, 1.1, 2.5];
        let depth = roi_depth(&roi(mask.clone()), spacing).expect("non-empty ROI");
        let whole = inside_distance_mm(&mask, spacing).expect("valid spacing");
        let expected: Vec<f64> = mask
            .indexed_iter()
            .filter(|(_, inside)| **inside)
            .map(|((i, j, k), _)| whole[[i, j, k]])
            .collect();
        // Cropping leaves each line's transform unchanged, so the values
        // are bitwise equal.
        assert_eq!(depth.depth_mm, expected);
        let max = expected.iter().copied().fold(0.0, f64::max);
        assert_eq!(depth.max_depth_mm, max);
        assert!(depth.normalised.iter().all(|&d| d > 0.0));
        assert!(depth.normalised.iter().all(|&d| d <= 1.0));
        assert!(depth.normalised.contains(&1.0));
    }

    #[test]
    fn depth_voxels_are_lexicographic() {
        let mut mask = Array3::from_elem((3, 3, 3), false);
        for voxel in [[2, 0, 1], [0, 1, 2], [0, 1, 0], [1, 2, 2]] {
            mask[voxel] = true;
        }
        let depth = roi_depth(&roi(mask), [1.0; 3]).expect("non-empty ROI");
        assert_eq!(
            depth.voxels,
            vec![[0, 1, 0], [0, 1, 2], [1, 2, 2], [2, 0, 1]]
        );
        // Isolated voxels are one spacing deep.
        assert_eq!(depth.depth_mm, vec![1.0; 4]);
    }

    #[test]
    fn depth_empty_roi_is_rejected() {
        let mask = Array3::from_elem((2, 2, 2), false);
        assert_eq!(roi_depth(&roi(mask), [1.0; 3]), Err(DepthError::EmptyRoi));
    }
}
