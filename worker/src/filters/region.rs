//! The part of an image that a filter must compute, and the memory order the fast
//! filters run in.
//!
//! Features read the filtered image only at ROI voxels, so LoG and Wavelet compute their
//! output on the ROI's bounding box alone. Both still read every input voxel that the
//! full-image filter would use for those outputs, so the values inside the box are the
//! same, bit for bit, as those of the filter run on the whole image.

use std::ops::Range;

use ndarray::{Array3, ArrayView3, CowArray, Ix3, s};

use crate::image::{Geometry, Volume};
use crate::mask::Roi;

/// A box of voxels: `from[axis]..to[axis]` along i, j and k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoxelBox {
    /// First voxel index along i, j, k.
    pub from: [usize; 3],
    /// One past the last voxel index along i, j, k.
    pub to: [usize; 3],
}

impl VoxelBox {
    /// Returns the box of every voxel of an image of `dims` voxels.
    pub fn whole(dims: [usize; 3]) -> Self {
        VoxelBox {
            from: [0; 3],
            to: dims,
        }
    }

    /// Returns the bounding box of the ROI, or `None` when the ROI is empty.
    pub fn around(roi: &Roi) -> Option<Self> {
        let (low, high) = crate::features::discretize::bounding_box(roi)?;
        Some(VoxelBox {
            from: low,
            to: high.map(|index| index + 1),
        })
    }

    /// Returns the voxel range along `axis`.
    pub fn range(&self, axis: usize) -> Range<usize> {
        self.from[axis]..self.to[axis]
    }

    /// Returns the number of voxels along i, j, k.
    pub fn dims(&self) -> [usize; 3] {
        std::array::from_fn(|axis| self.to[axis] - self.from[axis])
    }

    /// Returns the geometry of the box inside an image of geometry `geometry`: the same
    /// spacing and direction, with the origin moved to the box's first voxel.
    pub fn geometry(&self, geometry: &Geometry) -> Geometry {
        let origin: [f64; 3] = std::array::from_fn(|row| {
            geometry.origin[row]
                + (0..3)
                    .map(|axis| {
                        geometry.direction[row][axis]
                            * geometry.spacing[axis]
                            * self.from[axis] as f64
                    })
                    .sum::<f64>()
        });
        Geometry {
            dims: self.dims(),
            spacing: geometry.spacing,
            origin,
            direction: geometry.direction,
        }
    }

    /// Copies the voxels of the box out of `volume`.
    pub fn crop_volume(&self, volume: &Volume) -> Volume {
        let [i, j, k] = [self.range(0), self.range(1), self.range(2)];
        Volume {
            data: volume.data.slice(s![i, j, k]).to_owned(),
            geometry: self.geometry(&volume.geometry),
            stored_as_integer: volume.stored_as_integer,
        }
    }

    /// Copies the part of the ROI inside the box. The voxel count stays that of the
    /// whole ROI, so the box must contain the ROI.
    pub fn crop_roi(&self, roi: &Roi) -> Roi {
        let [i, j, k] = [self.range(0), self.range(1), self.range(2)];
        Roi {
            mask: roi.mask.slice(s![i, j, k]).to_owned(),
            voxel_count: roi.voxel_count,
        }
    }
}

/// A 3-D array viewed in memory order: `data` is in standard (C) layout, and its axis
/// `q` is the image's axis `axes[q]`.
pub(crate) struct MemoryOrder<'a> {
    /// The voxels with the last axis contiguous.
    pub data: CowArray<'a, f64, Ix3>,
    /// Image axis (0 = i, 1 = j, 2 = k) of each axis of `data`.
    pub axes: [usize; 3],
}

impl<'a> MemoryOrder<'a> {
    /// Views `data` in memory order. C-order and Fortran-order arrays (NRRD and NIfTI
    /// volumes) are viewed without a copy; any other layout is copied to C order.
    pub fn of(data: ArrayView3<'a, f64>) -> Self {
        if data.is_standard_layout() {
            return MemoryOrder {
                data: CowArray::from(data),
                axes: [0, 1, 2],
            };
        }
        let reversed = data.reversed_axes();
        if reversed.is_standard_layout() {
            return MemoryOrder {
                data: CowArray::from(reversed),
                axes: [2, 1, 0],
            };
        }
        MemoryOrder {
            data: CowArray::from(data.as_standard_layout().into_owned()),
            axes: [0, 1, 2],
        }
    }

    /// Returns the axis of `data` that is the image's axis `image_axis`.
    pub fn position(&self, image_axis: usize) -> usize {
        self.axes
            .iter()
            .position(|&axis| axis == image_axis)
            .unwrap_or(image_axis)
    }

    /// Permutes a per-image-axis value into the order of `data`'s axes.
    pub fn permute<T: Copy>(&self, per_image_axis: [T; 3]) -> [T; 3] {
        self.axes.map(|axis| per_image_axis[axis])
    }

    /// Turns an array whose axes are in the order of `data`'s axes back into image axis
    /// order (i, j, k), without copying.
    pub fn to_image_axes(&self, array: Array3<f64>) -> Array3<f64> {
        let inverse: [usize; 3] = std::array::from_fn(|image_axis| self.position(image_axis));
        array.permuted_axes(inverse)
    }
}

/// Splits a C-order shape at `axis` into (outer, length, inner): the product of the
/// axes before it, its own length, and the product of the axes after it.
pub(crate) fn split_shape(shape: [usize; 3], axis: usize) -> (usize, usize, usize) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;

    #[test]
    fn memory_order_views_fortran_array_reversed() {
        // A Fortran-order array is C order with the axes reversed, so element (1, 2, 3)
        // sits at [3, 2, 1] of the view, and permuting back restores (i, j, k).
        let fortran =
            Array3::from_shape_fn((2, 3, 4).f(), |(i, j, k)| (i * 100 + j * 10 + k) as f64);
        let order = MemoryOrder::of(fortran.view());
        assert_eq!(order.axes, [2, 1, 0]);
        assert_eq!(order.data[[3, 2, 1]], 123.0);
        assert!(order.data.is_view(), "a Fortran-order array needs no copy");
        assert_eq!(order.position(0), 2);
        assert_eq!(order.permute([10, 20, 30]), [30, 20, 10]);
        let back = order.to_image_axes(order.data.to_owned());
        assert_eq!(back, fortran);
    }

    #[test]
    fn memory_order_copies_other_layouts() {
        // Axes (j, i, k) of a C-order array are neither C nor Fortran order.
        let data = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f64);
        let swapped = data.view().permuted_axes([1, 0, 2]);
        let order = MemoryOrder::of(swapped);
        assert_eq!(order.axes, [0, 1, 2]);
        assert!(order.data.is_owned());
        assert!(order.data.is_standard_layout());
        assert_eq!(order.data[[2, 1, 3]], 123.0);
    }

    #[test]
    fn voxel_box_crops_volume_and_moves_origin() {
        // Box i 1..3, j 2..4, k 0..1 of a 4 × 5 × 2 image with spacing 2, 1, 1 mm.
        // The origin moves by (1 · 2, 2 · 1, 0) mm, and voxel (0, 0, 0) is old (1, 2, 0).
        let volume = Volume {
            data: Array3::from_shape_fn((4, 5, 2), |(i, j, k)| (i * 100 + j * 10 + k) as f64),
            geometry: Geometry {
                dims: [4, 5, 2],
                spacing: [2.0, 1.0, 1.0],
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: true,
        };
        let region = VoxelBox {
            from: [1, 2, 0],
            to: [3, 4, 1],
        };
        let cropped = region.crop_volume(&volume);
        assert_eq!(cropped.geometry.dims, [2, 2, 1]);
        assert_eq!(cropped.data.dim(), (2, 2, 1));
        assert_eq!(cropped.geometry.origin, [2.0, 2.0, 0.0]);
        assert_eq!(cropped.data[[0, 0, 0]], 120.0);
        assert_eq!(cropped.data[[1, 1, 0]], 230.0);
    }

    #[test]
    fn split_shape_at_each_axis() {
        assert_eq!(split_shape([2, 3, 4], 0), (1, 2, 12));
        assert_eq!(split_shape([2, 3, 4], 1), (2, 3, 4));
        assert_eq!(split_shape([2, 3, 4], 2), (6, 4, 1));
    }
}
