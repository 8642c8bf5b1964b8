//! Small synthetic volumes and masks shared by the perturbation tests.

use ndarray::Array3;

use crate::image::{Geometry, Volume};

/// Wraps `data` in a volume with the given spacing, origin 0 and identity
/// direction.
pub(crate) fn volume(data: Array3<f64>, spacing: [f64; 3]) -> Volume {
    let (ni, nj, nk) = data.dim();
    Volume {
        data,
        geometry: Geometry {
            dims: [ni, nj, nk],
            spacing,
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        },
        stored_as_integer: false,
    }
}

/// Returns a cylinder mask of `ni × nj × nk` voxels: on every slice, the
/// voxels whose centre (i·s_i, j·s_j) lies within `radius_mm` of
/// `centre_mm`.
pub(crate) fn disc_mask(
    ni: usize,
    nj: usize,
    nk: usize,
    centre_mm: [f64; 2],
    radius_mm: f64,
    spacing: [f64; 3],
) -> Array3<bool> {
    Array3::from_shape_fn((ni, nj, nk), |(i, j, _)| {
        let dx = i as f64 * spacing[0] - centre_mm[0];
        let dy = j as f64 * spacing[1] - centre_mm[1];
        dx * dx + dy * dy <= radius_mm * radius_mm
    })
}
