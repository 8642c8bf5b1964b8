//! The index-to-world map of a voxel grid, its inverse, and the checks a
//! [`Geometry`] must pass before label maps are moved or written on it.
//!
//! Voxel (i, j, k) has its centre at x = origin + D · diag(spacing) · (i, j, k)ᵀ
//! in mm (the [`Geometry`] convention). Grids read by [`crate::image::nifti`]
//! are in the NIfTI world frame, RAS+ (x to the patient's right, y anterior,
//! z superior), so two such grids can be compared point by point without an
//! LPS/RAS flip.

use crate::image::Geometry;

/// Smallest accepted |det D| for the direction matrix D. Its columns are unit
/// vectors, so |det D| is 1 for orthogonal axes and falls towards 0 as two
/// axes become parallel. Below 1e-6 the inverse map would amplify rounding
/// by more than a million.
const MIN_DIRECTION_DETERMINANT: f64 = 1e-6;

/// Tolerance on a column length of D, which should be a unit vector.
const UNIT_LENGTH_TOLERANCE: f64 = 1e-3;

/// A problem that makes a [`Geometry`] unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryProblem {
    /// A grid dimension is zero.
    #[error("grid dims are {dims:?}; every axis needs at least one voxel")]
    EmptyGrid {
        /// The dims.
        dims: [usize; 3],
    },
    /// A spacing is zero, negative or not finite.
    #[error("spacing along axis {axis} is {value} mm; expected a finite value > 0")]
    Spacing {
        /// The voxel axis (0 = i, 1 = j, 2 = k).
        axis: usize,
        /// The spacing, in mm.
        value: f64,
    },
    /// The origin has a non-finite component.
    #[error("origin {origin:?} mm is not finite")]
    Origin {
        /// The origin, in mm.
        origin: [f64; 3],
    },
    /// A direction column is not a finite unit vector.
    #[error(
        "direction of axis {axis} has length {length}; expected a finite unit vector \
         (read the grid with the NIfTI reader, which normalises it)"
    )]
    DirectionLength {
        /// The voxel axis.
        axis: usize,
        /// The Euclidean length of the column.
        length: f64,
    },
    /// The direction matrix is singular: two voxel axes are (nearly) parallel.
    #[error(
        "direction matrix {direction:?} is singular (determinant {determinant:e}); \
         the header's axes must be independent"
    )]
    SingularDirection {
        /// The direction matrix, `direction[row][column]`.
        direction: [[f64; 3]; 3],
        /// Its determinant.
        determinant: f64,
    },
}

/// Checks that a grid has voxels, positive finite spacing, a finite origin
/// and independent unit direction axes.
pub fn check_geometry(geometry: &Geometry) -> Result<(), GeometryProblem> {
    if geometry.dims.contains(&0) {
        return Err(GeometryProblem::EmptyGrid {
            dims: geometry.dims,
        });
    }
    for (axis, &value) in geometry.spacing.iter().enumerate() {
        if !(value.is_finite() && value > 0.0) {
            return Err(GeometryProblem::Spacing { axis, value });
        }
    }
    if geometry.origin.iter().any(|value| !value.is_finite()) {
        return Err(GeometryProblem::Origin {
            origin: geometry.origin,
        });
    }
    for axis in 0..3 {
        let length = (0..3)
            .map(|row| geometry.direction[row][axis].powi(2))
            .sum::<f64>()
            .sqrt();
        if !length.is_finite() || (length - 1.0).abs() > UNIT_LENGTH_TOLERANCE {
            return Err(GeometryProblem::DirectionLength { axis, length });
        }
    }
    let determinant = determinant(&geometry.direction);
    if !determinant.is_finite() || determinant.abs() < MIN_DIRECTION_DETERMINANT {
        return Err(GeometryProblem::SingularDirection {
            direction: geometry.direction,
            determinant,
        });
    }
    Ok(())
}

/// An affine map y = matrix · x + offset between index space and world
/// space (mm), or between two index spaces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// The linear part, `matrix[row][column]`.
    pub matrix: [[f64; 3]; 3],
    /// The translation.
    pub offset: [f64; 3],
}

impl Affine {
    /// Builds the index-to-world map of a grid: matrix = D · diag(spacing),
    /// offset = origin.
    pub fn index_to_world(geometry: &Geometry) -> Affine {
        let matrix = std::array::from_fn(|row| {
            std::array::from_fn(|column| geometry.direction[row][column] * geometry.spacing[column])
        });
        Affine {
            matrix,
            offset: geometry.origin,
        }
    }

    /// Applies the map to a point.
    pub fn apply(&self, point: [f64; 3]) -> [f64; 3] {
        let linear = self.apply_linear(point);
        std::array::from_fn(|row| linear[row] + self.offset[row])
    }

    /// Applies only the linear part, for displacements.
    pub fn apply_linear(&self, vector: [f64; 3]) -> [f64; 3] {
        std::array::from_fn(|row| {
            (0..3)
                .map(|column| self.matrix[row][column] * vector[column])
                .sum()
        })
    }

    /// Returns the inverse map, or `None` when the linear part is singular
    /// (|det| ≤ 1e-300) or not finite.
    pub fn inverse(&self) -> Option<Affine> {
        let m = &self.matrix;
        let det = determinant(m);
        if !(det.is_finite() && det.abs() > 1e-300) {
            return None;
        }
        // Adjugate divided by the determinant: inverse[r][c] is the
        // cofactor of m[c][r] over det.
        let cofactor = |row: usize, column: usize| {
            let (r0, r1) = ((row + 1) % 3, (row + 2) % 3);
            let (c0, c1) = ((column + 1) % 3, (column + 2) % 3);
            m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
        };
        let matrix: [[f64; 3]; 3] =
            std::array::from_fn(|row| std::array::from_fn(|column| cofactor(column, row) / det));
        let linear = Affine {
            matrix,
            offset: [0.0; 3],
        };
        let shifted = linear.apply_linear(self.offset);
        Some(Affine {
            matrix,
            offset: std::array::from_fn(|row| -shifted[row]),
        })
    }

    /// Returns the map that applies `first`, then `self`.
    pub fn after(&self, first: &Affine) -> Affine {
        let matrix = std::array::from_fn(|row| {
            std::array::from_fn(|column| {
                (0..3)
                    .map(|inner| self.matrix[row][inner] * first.matrix[inner][column])
                    .sum()
            })
        });
        Affine {
            matrix,
            offset: self.apply(first.offset),
        }
    }
}

/// Determinant of a 3 × 3 matrix.
pub fn determinant(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oblique_grid() -> Geometry {
        // Rotation by 30° about z, so every axis mixes world components.
        let (sin, cos) = 30f64.to_radians().sin_cos();
        Geometry {
            dims: [5, 6, 7],
            spacing: [0.8, 1.25, 3.0],
            origin: [-12.5, 40.0, 7.25],
            direction: [[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    #[test]
    fn affine_inverse_round_trips_points() {
        let forward = Affine::index_to_world(&oblique_grid());
        let backward = forward.inverse().expect("a rotation is invertible");
        for point in [[0.0, 0.0, 0.0], [4.0, 5.0, 6.0], [-1.5, 2.25, 0.5]] {
            let back = backward.apply(forward.apply(point));
            for axis in 0..3 {
                // A few f64 roundings on values below 100 mm.
                assert!(
                    (back[axis] - point[axis]).abs() < 1e-12,
                    "{back:?} vs {point:?}"
                );
            }
        }
    }

    #[test]
    fn affine_voxel_centre_follows_geometry_convention() {
        // origin + D · diag(spacing) · (1, 0, 2) written out by hand.
        let grid = oblique_grid();
        let world = Affine::index_to_world(&grid).apply([1.0, 0.0, 2.0]);
        let (sin, cos) = 30f64.to_radians().sin_cos();
        let expected = [-12.5 + 0.8 * cos, 40.0 + 0.8 * sin, 7.25 + 2.0 * 3.0];
        for axis in 0..3 {
            assert!((world[axis] - expected[axis]).abs() < 1e-12);
        }
    }

    #[test]
    fn affine_composition_applies_first_then_self() {
        let forward = Affine::index_to_world(&oblique_grid());
        let backward = forward.inverse().expect("invertible");
        let identity = backward.after(&forward);
        for row in 0..3 {
            for column in 0..3 {
                let expected = if row == column { 1.0 } else { 0.0 };
                assert!((identity.matrix[row][column] - expected).abs() < 1e-12);
            }
            assert!(identity.offset[row].abs() < 1e-12);
        }
    }

    #[test]
    fn geometry_check_accepts_oblique_grid() {
        assert_eq!(check_geometry(&oblique_grid()), Ok(()));
    }

    #[test]
    fn geometry_check_rejects_zero_spacing() {
        let mut grid = oblique_grid();
        grid.spacing[1] = 0.0;
        assert_eq!(
            check_geometry(&grid),
            Err(GeometryProblem::Spacing {
                axis: 1,
                value: 0.0
            })
        );
    }

    #[test]
    fn geometry_check_rejects_nan_spacing() {
        let mut grid = oblique_grid();
        grid.spacing[2] = f64::NAN;
        assert!(matches!(
            check_geometry(&grid),
            Err(GeometryProblem::Spacing { axis: 2, .. })
        ));
    }

    #[test]
    fn geometry_check_rejects_parallel_axes() {
        let mut grid = oblique_grid();
        grid.direction = [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(matches!(
            check_geometry(&grid),
            Err(GeometryProblem::SingularDirection { .. })
        ));
    }

    #[test]
    fn geometry_check_rejects_unnormalised_direction() {
        let mut grid = oblique_grid();
        grid.direction[2][2] = 2.0;
        assert!(matches!(
            check_geometry(&grid),
            Err(GeometryProblem::DirectionLength { axis: 2, .. })
        ));
    }

    #[test]
    fn geometry_check_rejects_empty_grid() {
        let mut grid = oblique_grid();
        grid.dims[0] = 0;
        assert!(matches!(
            check_geometry(&grid),
            Err(GeometryProblem::EmptyGrid { .. })
        ));
    }

    #[test]
    fn geometry_check_rejects_infinite_origin() {
        let mut grid = oblique_grid();
        grid.origin[0] = f64::INFINITY;
        assert!(matches!(
            check_geometry(&grid),
            Err(GeometryProblem::Origin { .. })
        ));
    }
}
