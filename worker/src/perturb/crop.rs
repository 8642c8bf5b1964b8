//! Axis-aligned boxes of voxels: the ROI's bounding box and sub-grids of an
//! image grid.

use ndarray::{Array3, s};

use crate::image::Geometry;

/// An axis-aligned box of voxels of a larger grid: indices `start[a]` up to,
/// not including, `start[a] + shape[a]` along each axis a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First voxel index along i, j and k.
    pub start: [usize; 3],
    /// Voxels along i, j and k.
    pub shape: [usize; 3],
}

impl CropBox {
    /// Returns the box that covers a whole grid of `dims` voxels.
    pub fn whole(dims: [usize; 3]) -> Self {
        CropBox {
            start: [0; 3],
            shape: dims,
        }
    }

    /// Returns the box from `low` to `high` (both inclusive) widened by
    /// `margin[a]` voxels on both sides along each axis a and clipped to a
    /// grid of `dims` voxels.
    pub fn around(low: [usize; 3], high: [usize; 3], margin: [usize; 3], dims: [usize; 3]) -> Self {
        let start: [usize; 3] = std::array::from_fn(|axis| low[axis].saturating_sub(margin[axis]));
        let end: [usize; 3] = std::array::from_fn(|axis| {
            high[axis]
                .saturating_add(margin[axis])
                .saturating_add(1)
                .min(dims[axis])
        });
        CropBox {
            start,
            shape: std::array::from_fn(|axis| end[axis].saturating_sub(start[axis])),
        }
    }

    /// Returns the index one past the last voxel along each axis.
    pub fn end(&self) -> [usize; 3] {
        std::array::from_fn(|axis| self.start[axis] + self.shape[axis])
    }

    /// Returns the geometry of the box as a grid of its own: same spacing
    /// and direction, origin moved to the physical centre of voxel `start`.
    pub fn geometry(&self, full: &Geometry) -> Geometry {
        let origin = std::array::from_fn(|row| {
            full.origin[row]
                + (0..3)
                    .map(|axis| {
                        full.direction[row][axis] * full.spacing[axis] * self.start[axis] as f64
                    })
                    .sum::<f64>()
        });
        Geometry {
            dims: self.shape,
            spacing: full.spacing,
            origin,
            direction: full.direction,
        }
    }

    /// Copies the box out of `array`, which must cover it.
    pub fn crop<T: Clone>(&self, array: &Array3<T>) -> Array3<T> {
        let [i0, j0, k0] = self.start;
        let [i1, j1, k1] = self.end();
        array.slice(s![i0..i1, j0..j1, k0..k1]).to_owned()
    }
}

/// Returns the lowest and highest index (both inclusive) of the `true`
/// voxels along each axis, or `None` for an empty mask.
pub fn bounding_box(mask: &Array3<bool>) -> Option<([usize; 3], [usize; 3])> {
    let mut low = [usize::MAX; 3];
    let mut high = [0; 3];
    for ((i, j, k), &inside) in mask.indexed_iter() {
        if inside {
            for (axis, index) in [i, j, k].into_iter().enumerate() {
                low[axis] = low[axis].min(index);
                high[axis] = high[axis].max(index);
            }
        }
    }
    (low[0] != usize::MAX).then_some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_box_around_clips_to_grid() {
        let cropped = CropBox::around([1, 5, 2], [3, 6, 2], [2, 2, 0], [10, 8, 4]);
        assert_eq!(cropped.start, [0, 3, 2]);
        assert_eq!(cropped.shape, [6, 5, 1]);
        assert_eq!(cropped.end(), [6, 8, 3]);
    }

    #[test]
    fn crop_box_geometry_moves_origin_along_direction() {
        let full = Geometry {
            dims: [10, 10, 10],
            spacing: [0.5, 2.0, 3.0],
            origin: [1.0, 2.0, 3.0],
            // Axis i points along world y, axis j along world −x.
            direction: [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        };
        let cropped = CropBox {
            start: [2, 3, 1],
            shape: [4, 4, 4],
        };
        let geometry = cropped.geometry(&full);
        // origin + 2·0.5·(0, 1, 0) + 3·2·(−1, 0, 0) + 1·3·(0, 0, 1)
        assert_eq!(geometry.origin, [1.0 - 6.0, 2.0 + 1.0, 3.0 + 3.0]);
        assert_eq!(geometry.dims, [4, 4, 4]);
        assert_eq!(geometry.spacing, full.spacing);
    }

    #[test]
    fn bounding_box_of_empty_mask_is_none() {
        assert_eq!(bounding_box(&Array3::from_elem((2, 3, 4), false)), None);
    }

    #[test]
    fn bounding_box_spans_true_voxels() {
        let mut mask = Array3::from_elem((5, 5, 5), false);
        mask[[1, 4, 2]] = true;
        mask[[3, 0, 2]] = true;
        assert_eq!(bounding_box(&mask), Some(([1, 0, 2], [3, 4, 2])));
    }
}
