//! Small synthetic ROIs shared by the texture tests. The script that produced the
//! PyRadiomics reference values builds the same arrays, indexed [k, j, i] in numpy, with
//! spacing (0.7, 1.3, 2.9) mm along i, j, k.

use ndarray::{Array3, ShapeBuilder};

use super::{Discretization, TextureInput, discretize};
use crate::image::{Geometry, Volume};
use crate::mask::Roi;

/// A synthetic test ROI.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Case {
    /// 6 × 5 × 4 voxels, intensities −40 … 79 with gaps, 90 ROI voxels with holes.
    Synthetic,
    /// 3 × 3 × 2 voxels, all 7.
    Flat,
    /// 5 × 4 × 1 voxels: a one-voxel-thick slab, intensities −30 … 70.
    Slab,
    /// 2 × 2 × 2 voxels: intensity 10 at k = 0 and 40 at k = 1.
    Layers,
}

impl Case {
    fn shape(self) -> (usize, usize, usize) {
        match self {
            Case::Synthetic => (6, 5, 4),
            Case::Flat => (3, 3, 2),
            Case::Slab => (5, 4, 1),
            Case::Layers => (2, 2, 2),
        }
    }

    fn intensity(self, i: i64, j: i64, k: i64) -> f64 {
        match self {
            Case::Synthetic => ((i * 37 + j * 53 + k * 71) % 97 - 40 + i * j * k) as f64,
            Case::Flat => 7.0,
            Case::Slab => (((i * 7 + j * 13) % 11) * 10 - 30) as f64,
            Case::Layers => 10.0 + 30.0 * k as f64,
        }
    }

    fn inside(self, i: i64, j: i64, k: i64) -> bool {
        match self {
            Case::Synthetic => (i + 2 * j + 3 * k) % 4 != 0,
            Case::Flat | Case::Slab | Case::Layers => true,
        }
    }
}

/// Returns the image and ROI of `case`.
pub(crate) fn volume_and_roi(case: Case) -> (Volume, Roi) {
    let shape = case.shape();
    let data = Array3::from_shape_fn(shape, |(i, j, k)| {
        case.intensity(i as i64, j as i64, k as i64)
    });
    let mask = Array3::from_shape_fn(shape, |(i, j, k)| case.inside(i as i64, j as i64, k as i64));
    let voxel_count = mask.iter().filter(|&&inside| inside).count();
    let volume = Volume {
        data,
        geometry: Geometry {
            dims: [shape.0, shape.1, shape.2],
            spacing: [0.7, 1.3, 2.9],
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        },
        stored_as_integer: true,
    };
    (volume, Roi { mask, voxel_count })
}

/// Returns `input` with its levels in Fortran order (i varies fastest), the layout of
/// NIfTI volumes as `image::nifti` reads them.
pub(crate) fn fortran_order_copy(input: &TextureInput) -> TextureInput {
    let mut levels = Array3::zeros(input.levels.raw_dim().f());
    levels.assign(&input.levels);
    TextureInput {
        levels,
        ..input.clone()
    }
}

/// Returns the discretised ROI of `case`, with a cap of 1000 grey levels.
pub(crate) fn texture_input(case: Case, method: Discretization) -> TextureInput {
    let (volume, roi) = volume_and_roi(case);
    discretize(&volume, &roi, method, 1000).expect("test ROIs discretise")
}
