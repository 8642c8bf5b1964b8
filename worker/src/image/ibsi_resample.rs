//! Interpolation of a whole image to a new voxel spacing on the grid that the IBSI
//! reference manual recommends (Zwanenburg et al., arXiv:1612.07003, "Interpolation
//! grid"), for the IBSI mode. [`super::resample`] builds PyRadiomics' grid instead.
//!
//! Per axis, with n_a voxels of spacing s_a and a requested spacing s_b, the new grid has
//! n_b = ⌈n_a s_a / s_b⌉ voxels, and new voxel m lies at original grid coordinate
//! x_b + m s_b / s_a (voxel centres of the original grid are at 0, 1, … n_a − 1):
//!
//! - align grid centres (the IBSI recommendation): x_b = ½ (n_a − 1 − (s_b / s_a)(n_b − 1)),
//!   so both grids have the same centre;
//! - align grid origins: x_b = 0, so voxel 0 of both grids coincides.
//!
//! Positions outside the original grid take the value at the nearest position inside it
//! (IBSI: pad the original grid with its boundary intensities). The interpolators:
//!
//! - nearest neighbour: the voxel at ⌊x + ½⌋;
//! - trilinear: the 8 surrounding voxels, weights (1 − t) and t per axis;
//! - tricubic spline: the cubic B-spline through the samples (Unser, "Splines: a perfect
//!   fit for signal and image processing", IEEE Signal Processing Magazine 1999). The
//!   image is first padded with 12 copies of its boundary voxels per side and then
//!   prefiltered, so that the mirror rule at the ends of the prefilter weighs on the
//!   original voxels by at most |z|¹² ≈ 1.4 × 10⁻⁷ (pole z = √3 − 2). scipy 1.17.1
//!   pads the same way for `map_coordinates(order=3, mode="nearest")`
//!   (`ndimage._interpolation._prepad_for_spline_filter`).

use ndarray::{Array3, s};

use super::resample::{bspline_coefficients, bspline_weights};
use super::{Geometry, Volume};

/// Boundary voxels added per side before the cubic B-spline prefilter.
const SPLINE_PADDING: usize = 12;

/// Placement of the new grid relative to the original one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridAlignment {
    /// The centres of both grids coincide (IBSI "align grid centres").
    Centres,
    /// Voxel 0 of both grids coincides (IBSI "align grid origins").
    Origins,
}

/// Image interpolation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IbsiInterpolator {
    /// Value of the nearest voxel.
    Nearest,
    /// Trilinear interpolation.
    Trilinear,
    /// Cubic B-spline interpolation (IBSI "tricubic spline").
    TricubicSpline,
}

/// Reason a new grid cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IbsiGridError {
    /// A requested spacing is negative or not finite.
    #[error(
        "resampled spacing {spacing:?} mm has a negative or non-finite value; give mm > 0, or 0 to keep an axis"
    )]
    InvalidSpacing {
        /// The requested spacing in mm.
        spacing: [f64; 3],
    },
}

/// A new grid and where its voxels lie on the original grid.
#[derive(Debug, Clone, PartialEq)]
pub struct IbsiGrid {
    /// Geometry of the new grid (same direction as the original).
    pub geometry: Geometry,
    /// Original grid coordinate x_b of new voxel 0, per axis.
    pub start: [f64; 3],
    /// Spacing of the new grid in original grid units, s_b / s_a, per axis.
    pub step: [f64; 3],
}

impl IbsiGrid {
    /// Returns the original grid coordinates of the new voxels along `axis`.
    pub fn positions(&self, axis: usize) -> Vec<f64> {
        (0..self.geometry.dims[axis])
            .map(|m| self.start[axis] + m as f64 * self.step[axis])
            .collect()
    }
}

/// Builds the new grid with voxel size `spacing` in mm (0 keeps an axis's spacing).
pub fn ibsi_grid(
    original: &Geometry,
    spacing: [f64; 3],
    alignment: GridAlignment,
) -> Result<IbsiGrid, IbsiGridError> {
    if spacing.iter().any(|&mm| !(mm.is_finite() && mm >= 0.0)) {
        return Err(IbsiGridError::InvalidSpacing { spacing });
    }
    let mut dims = [0; 3];
    let mut new_spacing = [0.0; 3];
    let mut start = [0.0; 3];
    let mut step = [0.0; 3];
    for axis in 0..3 {
        let old_spacing = original.spacing[axis];
        let target = if spacing[axis] == 0.0 {
            old_spacing
        } else {
            spacing[axis]
        };
        let count = original.dims[axis];
        // Spacings read from files are rounded, so a ratio within 1e-9 of a whole number
        // counts as that number rather than rounding up by one voxel.
        let extent = count as f64 * old_spacing / target;
        let new_count = if (extent - extent.round()).abs() < 1e-9 {
            extent.round()
        } else {
            extent.ceil()
        };
        dims[axis] = (new_count as usize).max(1);
        new_spacing[axis] = target;
        step[axis] = target / old_spacing;
        start[axis] = match alignment {
            GridAlignment::Centres => {
                0.5 * ((count as f64 - 1.0) - step[axis] * (dims[axis] as f64 - 1.0))
            }
            GridAlignment::Origins => 0.0,
        };
    }

    let mut origin = original.origin;
    for (row, value) in origin.iter_mut().enumerate() {
        for (axis, offset) in start.iter().enumerate() {
            *value += original.direction[row][axis] * original.spacing[axis] * offset;
        }
    }
    Ok(IbsiGrid {
        geometry: Geometry {
            dims,
            spacing: new_spacing,
            origin,
            direction: original.direction,
        },
        start,
        step,
    })
}

/// Interpolates `data` (on the original grid) at every voxel of `grid`.
pub fn interpolate(data: &Array3<f64>, grid: &IbsiGrid, method: IbsiInterpolator) -> Array3<f64> {
    let dims: [usize; 3] = data.dim().into();
    let raw_positions: [Vec<f64>; 3] = std::array::from_fn(|axis| grid.positions(axis));
    let shape = (
        raw_positions[0].len(),
        raw_positions[1].len(),
        raw_positions[2].len(),
    );
    // For nearest neighbour and trilinear interpolation, clamping a position to the grid
    // gives the value of the grid padded with its boundary voxels.
    let clamped = || -> [Vec<f64>; 3] {
        std::array::from_fn(|axis| {
            let last = dims[axis].saturating_sub(1) as f64;
            raw_positions[axis]
                .iter()
                .map(|x| x.clamp(0.0, last))
                .collect()
        })
    };
    match method {
        IbsiInterpolator::Nearest => {
            let positions = clamped();
            let nearest: [Vec<usize>; 3] = std::array::from_fn(|axis| {
                positions[axis]
                    .iter()
                    .map(|&x| ((x + 0.5).floor() as usize).min(dims[axis] - 1))
                    .collect()
            });
            Array3::from_shape_fn(shape, |(a, b, c)| {
                data[[nearest[0][a], nearest[1][b], nearest[2][c]]]
            })
        }
        IbsiInterpolator::Trilinear => {
            let positions = clamped();
            let linear: [Vec<(usize, usize, f64)>; 3] = std::array::from_fn(|axis| {
                positions[axis]
                    .iter()
                    .map(|&x| {
                        let below = (x.floor() as usize).min(dims[axis] - 1);
                        let above = (below + 1).min(dims[axis] - 1);
                        (below, above, x - below as f64)
                    })
                    .collect()
            });
            Array3::from_shape_fn(shape, |(a, b, c)| {
                let (i0, i1, ti) = linear[0][a];
                let (j0, j1, tj) = linear[1][b];
                let (k0, k1, tk) = linear[2][c];
                let along_k =
                    |i: usize, j: usize| (1.0 - tk) * data[[i, j, k0]] + tk * data[[i, j, k1]];
                let along_j = |i: usize| (1.0 - tj) * along_k(i, j0) + tj * along_k(i, j1);
                (1.0 - ti) * along_j(i0) + ti * along_j(i1)
            })
        }
        IbsiInterpolator::TricubicSpline => tricubic_spline(data, &raw_positions, shape),
    }
}

/// Evaluates the cubic B-spline of `data`, padded with its boundary voxels, at every
/// combination of the per-axis positions. Positions beyond the padding are clamped to
/// its last voxel that has a full 4-voxel support.
fn tricubic_spline(
    data: &Array3<f64>,
    positions: &[Vec<f64>; 3],
    shape: (usize, usize, usize),
) -> Array3<f64> {
    let dims: [usize; 3] = data.dim().into();
    let padded_dims = dims.map(|n| n + 2 * SPLINE_PADDING);
    let mut padded = Array3::zeros((padded_dims[0], padded_dims[1], padded_dims[2]));
    for ((i, j, k), value) in padded.indexed_iter_mut() {
        let source = [i, j, k].map(|index| index as isize - SPLINE_PADDING as isize);
        let clamped: [usize; 3] =
            std::array::from_fn(|axis| source[axis].clamp(0, dims[axis] as isize - 1) as usize);
        *value = data[clamped];
    }
    let coefficients = bspline_coefficients(&padded);

    // Weights and coefficient indices per axis and position, computed once.
    let support: [Vec<([f64; 4], [usize; 4])>; 3] = std::array::from_fn(|axis| {
        positions[axis]
            .iter()
            .map(|&x| {
                let last_centre = padded_dims[axis] as f64 - 2.0;
                let padded_x = (x + SPLINE_PADDING as f64).clamp(1.0, last_centre);
                let (weights, first) = bspline_weights(padded_x);
                let last = padded_dims[axis] as i64 - 1;
                let indices = std::array::from_fn(|m| (first + m as i64).clamp(0, last) as usize);
                (weights, indices)
            })
            .collect()
    });
    Array3::from_shape_fn(shape, |(a, b, c)| {
        let (wi, ii) = &support[0][a];
        let (wj, jj) = &support[1][b];
        let (wk, kk) = &support[2][c];
        let mut value = 0.0;
        for p in 0..4 {
            for q in 0..4 {
                let lane = coefficients.slice(s![ii[p], jj[q], ..]);
                let sum: f64 = (0..4).map(|r| wk[r] * lane[kk[r]]).sum();
                value += wi[p] * wj[q] * sum;
            }
        }
        value
    })
}

/// Interpolates a volume onto `grid`, keeping `stored_as_integer`.
pub fn interpolate_volume(volume: &Volume, grid: &IbsiGrid, method: IbsiInterpolator) -> Volume {
    Volume {
        data: interpolate(&volume.data, grid, method),
        geometry: grid.geometry.clone(),
        stored_as_integer: volume.stored_as_integer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(dims: [usize; 3], spacing: [f64; 3]) -> Geometry {
        Geometry {
            dims,
            spacing,
            origin: [10.0, 20.0, 30.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    #[test]
    fn centred_grid_matches_manual_example() {
        // The manual's example: 4 voxels of 3 mm to 2 mm gives n_b = ⌈12 / 2⌉ = 6 and
        // x_b = ½ (3 − (2/3) · 5) = −1/6 in grid units.
        let grid = ibsi_grid(
            &geometry([4, 4, 1], [3.0, 3.0, 1.0]),
            [2.0, 2.0, 0.0],
            GridAlignment::Centres,
        )
        .expect("valid spacing");
        assert_eq!(grid.geometry.dims, [6, 6, 1]);
        assert!(
            (grid.start[0] + 1.0 / 6.0).abs() < 1e-12,
            "{:?}",
            grid.start
        );
        assert!((grid.step[0] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(grid.start[2], 0.0, "spacing 0 keeps the axis");
        // The centre of the new grid, x_b + 2.5 s_b/s_a, is the old centre 1.5.
        assert!((grid.start[0] + 2.5 * grid.step[0] - 1.5).abs() < 1e-12);
        assert!((grid.geometry.origin[0] - (10.0 - 0.5)).abs() < 1e-12);
    }

    #[test]
    fn origin_alignment_starts_at_zero() {
        let grid = ibsi_grid(
            &geometry([4, 4, 4], [3.0, 3.0, 3.0]),
            [2.0, 2.0, 2.0],
            GridAlignment::Origins,
        )
        .expect("valid spacing");
        assert_eq!(grid.start, [0.0; 3]);
        assert_eq!(grid.geometry.origin, [10.0, 20.0, 30.0]);
    }

    #[test]
    fn negative_spacing_is_rejected() {
        let result = ibsi_grid(
            &geometry([4, 4, 4], [1.0; 3]),
            [1.0, -1.0, 1.0],
            GridAlignment::Centres,
        );
        assert!(matches!(result, Err(IbsiGridError::InvalidSpacing { .. })));
    }

    /// Returns a linear ramp along i: 0, 10, 20, 30.
    fn ramp() -> Array3<f64> {
        Array3::from_shape_fn((4, 1, 1), |(i, _, _)| 10.0 * i as f64)
    }

    fn grid_along_i(start: f64, step: f64, count: usize) -> IbsiGrid {
        IbsiGrid {
            geometry: geometry([count, 1, 1], [step, 1.0, 1.0]),
            start: [start, 0.0, 0.0],
            step: [step, 1.0, 1.0],
        }
    }

    #[test]
    fn trilinear_reproduces_ramp_and_pads_with_edges() {
        // Linear interpolation is exact on a ramp; positions −0.5 and 3.5 lie outside the
        // grid and take the edge values 0 and 30.
        let values = interpolate(
            &ramp(),
            &grid_along_i(-0.5, 0.75, 6),
            IbsiInterpolator::Trilinear,
        );
        let expected = [0.0, 2.5, 10.0, 17.5, 25.0, 30.0];
        for (value, expected) in values.iter().zip(expected) {
            assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
        }
    }

    #[test]
    fn nearest_rounds_halves_up() {
        let values = interpolate(
            &ramp(),
            &grid_along_i(0.5, 1.0, 3),
            IbsiInterpolator::Nearest,
        );
        assert_eq!(
            values.iter().copied().collect::<Vec<_>>(),
            [10.0, 20.0, 30.0]
        );
    }

    #[test]
    fn spline_passes_through_samples() {
        let at_samples = interpolate(
            &ramp(),
            &grid_along_i(0.0, 1.0, 4),
            IbsiInterpolator::TricubicSpline,
        );
        for (i, value) in at_samples.iter().enumerate() {
            assert!(
                (value - 10.0 * i as f64).abs() < 1e-9,
                "sample {i}: {value}"
            );
        }
    }

    #[test]
    fn spline_matches_scipy_nearest_mode() {
        // Expected values: scipy 1.17.1,
        // map_coordinates([0, 10, 40, 30, 5], [[0.5, 2.25, -0.4, 4.3]], order=3,
        // mode="nearest"), printed to 8 decimals. The boundary rule at the ends of the
        // padded line may differ between the two, but 12 voxels away it moves values by
        // about |z|^12 ≈ 1.4e-7 times the edge step (at most 5 here), so 1e-4 is ample.
        let data =
            Array3::from_shape_vec((5, 1, 1), vec![0.0, 10.0, 40.0, 30.0, 5.0]).expect("shape");
        let expected = [1.896_688_88, 41.836_541_58, -0.185_556_85, 2.884_777_65];
        for (position, expected) in [0.5, 2.25, -0.4, 4.3].into_iter().zip(expected) {
            let value = interpolate(
                &data,
                &grid_along_i(position, 1.0, 1),
                IbsiInterpolator::TricubicSpline,
            )[[0, 0, 0]];
            assert!(
                (value - expected).abs() < 1e-4,
                "at {position}: {value} vs {expected}"
            );
        }
    }
}
