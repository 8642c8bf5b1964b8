//! The window slid along one axis of the lesion box, one ROI line at a
//! time.

use super::histogram::Histogram;
use super::quantise::LevelGrid;
use crate::mask::Roi;

/// ROI voxels in lexicographic order, with each one's output position.
pub(super) struct RoiVoxels {
    pub(super) voxels: Vec<[usize; 3]>,
    /// Output position of each voxel of B (row-major over B), or
    /// `u32::MAX` outside the ROI.
    ordinal: Vec<u32>,
    /// Size of B along i, j, k.
    extent: [usize; 3],
}

impl RoiVoxels {
    pub(super) fn new(roi: &Roi, low: [usize; 3], high: [usize; 3]) -> Self {
        let extent: [usize; 3] = std::array::from_fn(|a| high[a] - low[a] + 1);
        let mut voxels = Vec::with_capacity(roi.voxel_count);
        let mut ordinal = Vec::with_capacity(extent.iter().product());
        for i in low[0]..=high[0] {
            for j in low[1]..=high[1] {
                for k in low[2]..=high[2] {
                    if roi.mask[[i, j, k]] {
                        ordinal.push(voxels.len() as u32);
                        voxels.push([i, j, k]);
                    } else {
                        ordinal.push(u32::MAX);
                    }
                }
            }
        }
        RoiVoxels {
            voxels,
            ordinal,
            extent,
        }
    }

    /// Output position of the voxel at offset `position` within B.
    fn ordinal(&self, position: [usize; 3]) -> Option<usize> {
        let index = (position[0] * self.extent[1] + position[1]) * self.extent[2] + position[2];
        let ordinal = self.ordinal[index];
        (ordinal != u32::MAX).then_some(ordinal as usize)
    }
}

/// Computes E in bits for every ROI voxel by sliding the window histogram
/// along the last axis with a window extent above 1.
pub(super) fn sliding_entropy(grid: &LevelGrid, roi: &RoiVoxels) -> Vec<f64> {
    let half = grid.half;
    let slide = if half[2] > 0 { 2 } else { 1 };
    let (first_other, second_other) = match slide {
        2 => (0, 1),
        _ => (0, 2),
    };

    // Offsets of the window plane normal to the slide axis, relative to the
    // plane's lowest corner.
    let mut plane_offsets = Vec::new();
    for a in 0..=2 * half[first_other] {
        for b in 0..=2 * half[second_other] {
            let mut position = [0usize; 3];
            position[first_other] = a;
            position[second_other] = b;
            plane_offsets.push(grid.index(position));
        }
    }
    let plane_stride = grid.strides[slide];

    let mut entropy = vec![0.0; roi.voxels.len()];
    let mut histogram = Histogram::new(grid.bins, grid.window_positions);
    for a in 0..roi.extent[first_other] {
        for b in 0..roi.extent[second_other] {
            let line_position = |t: usize| {
                let mut position = [0usize; 3];
                position[first_other] = a;
                position[second_other] = b;
                position[slide] = t;
                position
            };
            let in_roi = |t: &usize| roi.ordinal(line_position(*t)).is_some();
            let Some(first) = (0..roi.extent[slide]).find(in_roi) else {
                continue;
            };
            let last = (first..roi.extent[slide])
                .rev()
                .find(in_roi)
                .unwrap_or(first);

            // Box offset t along the slide axis is grid offset t + h there,
            // so the window of t spans grid planes t..=t + 2h, and the
            // window's lowest corner in the other axes is the box offset.
            let corner = grid.index(line_position(0));
            histogram.clear();
            for plane in first..=first + 2 * half[slide] {
                histogram.add_plane(&grid.levels, corner + plane * plane_stride, &plane_offsets);
            }
            for t in first..=last {
                if t > first {
                    histogram.slide(
                        &grid.levels,
                        corner + (t - 1) * plane_stride,
                        corner + (t + 2 * half[slide]) * plane_stride,
                        &plane_offsets,
                    );
                }
                if let Some(ordinal) = roi.ordinal(line_position(t)) {
                    entropy[ordinal] = histogram.entropy_bits(grid.window_positions, grid.boundary);
                }
            }
        }
    }
    entropy
}
