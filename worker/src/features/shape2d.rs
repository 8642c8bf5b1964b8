//! 2-D shape features of an ROI that lies in one slice (PyRadiomics `shape2D`).
//!
//! The features and their conventions follow PyRadiomics 3.1.4 (`radiomics.shape2D` and
//! `calculate_coefficients2D` in its C extension, PyPI package `pyradiomics-bhklab`).
//! PyRadiomics computes them only with force2D, on a mask one voxel thick along the
//! out-of-plane axis, and raises an error otherwise; so does this module.
//!
//! Let:
//!
//! - **u, v** be the two in-plane axes, in array order (i, j for axial slices), with pixel
//!   spacings s_u and s_v in mm;
//! - **N_p** be the number of ROI pixels;
//! - **the contour** be the marching-squares contour of the mask. Its vertices lie at the
//!   midpoints of the pixel edges between an ROI pixel and a pixel outside, in physical
//!   coordinates (index × spacing). Each 2 × 2 square of pixel centres adds one segment per
//!   boundary that crosses it. A square whose two ROI pixels touch only at a corner (a
//!   saddle) gets two segments, each cutting off one ROI pixel, so diagonal neighbours are
//!   not joined, as in PyRadiomics. Each segment a → b has the ROI on its left (positive
//!   cross product);
//! - **A** = Σ (a_u·b_v − a_v·b_u) / 2 over the segments, the area the contour encloses
//!   (shoelace formula), in mm²;
//! - **P** = Σ |b − a| over the segments, the contour length in mm;
//! - **λ_major ≥ λ_minor** be the eigenvalues, in mm², of the covariance matrix of the
//!   physical coordinates of the N_p pixel centres, with divisor N_p.

use ndarray::ArrayView3;

/// Feature names that PyRadiomics 3.1.4 computes by default, in output order, without the
/// `original_shape2D_` prefix.
pub const FEATURE_NAMES: [&str; 9] = [
    "MeshSurface",
    "PixelSurface",
    "Perimeter",
    "PerimeterSurfaceRatio",
    "Sphericity",
    "MaximumDiameter",
    "MajorAxisLength",
    "MinorAxisLength",
    "Elongation",
];

/// Every feature name [`compute`] returns, in output order: [`FEATURE_NAMES`] and
/// SphericalDisproportion, which PyRadiomics marks deprecated and computes only when a
/// parameter file names it.
pub const COMPUTED_FEATURE_NAMES: [&str; 10] = [
    "MeshSurface",
    "PixelSurface",
    "Perimeter",
    "PerimeterSurfaceRatio",
    "Sphericity",
    "SphericalDisproportion",
    "MaximumDiameter",
    "MajorAxisLength",
    "MinorAxisLength",
    "Elongation",
];

/// Reason the 2-D shape features cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Shape2DError {
    /// A request for shape2D without force2D.
    #[error("shape2D needs force2D: true and force2Ddimension set to the axis across the slice")]
    NoForce2D,
    /// An ROI across more than one slice.
    #[error(
        "shape2D needs an ROI in one slice, but the ROI spans {slices} slices along array axis \
         {axis} (force2Ddimension {force2d_dimension}); use a single-slice mask or remove shape2D"
    )]
    MultipleSlices {
        /// Array axis across the slices (0 = i, 1 = j, 2 = k).
        axis: usize,
        /// PyRadiomics' number of the same axis in its (z, y, x) arrays.
        force2d_dimension: usize,
        /// Slices that contain ROI voxels, first to last.
        slices: usize,
    },
}

/// Computes the 2-D shape features of a single-slice ROI.
///
/// `mask` is indexed `[i, j, k]`, `spacing` is the voxel size along i, j and k in mm, and
/// `out_of_plane_axis` the array axis across the slice (0 = i, 1 = j, 2 = k). Returns
/// `(name, value)` pairs in the order of [`COMPUTED_FEATURE_NAMES`], or an error if the
/// ROI spans more than one slice along `out_of_plane_axis`. An empty mask gives NaN for
/// every feature.
///
/// Each feature (IBSI defines no 2-D morphology; the codes of its 3-D analogues are given):
///
/// 1. **MeshSurface** = A. Unit: mm². The 2-D analogue of IBSI "volume (mesh)" (RNU0).
/// 2. **PixelSurface** = N_p·s_u·s_v. Unit: mm². Analogue of IBSI "approximate volume"
///    (YEKZ).
/// 3. **Perimeter** = P. Unit: mm. Analogue of IBSI "surface area (mesh)" (C0JK).
/// 4. **PerimeterSurfaceRatio** = P / A. Unit: mm⁻¹.
/// 5. **Sphericity** = 2·√(π·A) / P, the perimeter of the circle of area A over P.
///    Dimensionless, 1 for a circle and smaller for other shapes.
/// 6. **SphericalDisproportion** = 1 / Sphericity. Deprecated in PyRadiomics.
/// 7. **MaximumDiameter**: the largest distance between two contour vertices. Unit: mm.
/// 8. **MajorAxisLength** = 4·√λ_major. Unit: mm.
/// 9. **MinorAxisLength** = 4·√λ_minor. Unit: mm.
/// 10. **Elongation** = √(λ_minor / λ_major). Dimensionless, between 0 (a line) and 1.
///
/// Deviation from PyRadiomics 3.1.4: a single-pixel ROI has λ_major = 0, and PyRadiomics
/// returns NaN for Elongation (0 / 0). This function returns 0, as the 3-D shape class does.
pub fn compute(
    mask: ArrayView3<bool>,
    spacing: [f64; 3],
    out_of_plane_axis: usize,
) -> Result<Vec<(&'static str, f64)>, Shape2DError> {
    let Some(plane) = PlaneMask::from_mask(mask, spacing, out_of_plane_axis)? else {
        return Ok(COMPUTED_FEATURE_NAMES
            .iter()
            .map(|&name| (name, f64::NAN))
            .collect());
    };

    let contour = plane.contour();
    let area = contour.area;
    let perimeter = contour.perimeter;
    let pixel_surface = plane.pixel_count as f64 * (plane.spacing[0] * plane.spacing[1]);
    let sphericity = (2.0 * (std::f64::consts::PI * area).sqrt()) / perimeter;
    let [minor, major] = plane.covariance_eigenvalues();
    let elongation = if major > 0.0 {
        (minor / major).sqrt()
    } else {
        0.0
    };

    Ok(vec![
        ("MeshSurface", area),
        ("PixelSurface", pixel_surface),
        ("Perimeter", perimeter),
        ("PerimeterSurfaceRatio", perimeter / area),
        ("Sphericity", sphericity),
        ("SphericalDisproportion", 1.0 / sphericity),
        ("MaximumDiameter", max_distance(&contour.vertices)),
        ("MajorAxisLength", 4.0 * major.sqrt()),
        ("MinorAxisLength", 4.0 * minor.sqrt()),
        ("Elongation", elongation),
    ])
}

/// The ROI's slice, cropped to its bounding box and padded with one empty pixel on every
/// side, so that every 2 × 2 square touching the ROI lies inside the grid.
struct PlaneMask {
    /// Inside flags, row-major over (u, v).
    inside: Vec<bool>,
    /// Padded size along u and v.
    size: [usize; 2],
    /// Pixel spacing along u and v in mm.
    spacing: [f64; 2],
    /// Number of ROI pixels.
    pixel_count: usize,
}

/// The contour's measures and vertices.
struct Contour {
    area: f64,
    perimeter: f64,
    /// Vertices in mm, (u, v), each once.
    vertices: Vec<[f64; 2]>,
}

impl PlaneMask {
    /// Extracts the slice, or returns `None` for an empty mask and an error for an ROI
    /// across more than one slice.
    fn from_mask(
        mask: ArrayView3<bool>,
        spacing: [f64; 3],
        out_of_plane_axis: usize,
    ) -> Result<Option<Self>, Shape2DError> {
        let mut low = [usize::MAX; 3];
        let mut high = [0; 3];
        let mut pixel_count = 0;
        for (index, &inside) in mask.indexed_iter() {
            if !inside {
                continue;
            }
            let index: [usize; 3] = index.into();
            for axis in 0..3 {
                low[axis] = low[axis].min(index[axis]);
                high[axis] = high[axis].max(index[axis]);
            }
            pixel_count += 1;
        }
        if pixel_count == 0 {
            return Ok(None);
        }
        let slices = high[out_of_plane_axis] - low[out_of_plane_axis] + 1;
        if slices > 1 {
            return Err(Shape2DError::MultipleSlices {
                axis: out_of_plane_axis,
                force2d_dimension: 2 - out_of_plane_axis,
                slices,
            });
        }

        let [u_axis, v_axis] = match out_of_plane_axis {
            0 => [1, 2],
            1 => [0, 2],
            _ => [0, 1],
        };
        let size = [
            high[u_axis] - low[u_axis] + 3,
            high[v_axis] - low[v_axis] + 3,
        ];
        let mut inside = vec![false; size[0] * size[1]];
        for (index, &voxel) in mask.indexed_iter() {
            let index: [usize; 3] = index.into();
            if voxel {
                let u = index[u_axis] - low[u_axis] + 1;
                let v = index[v_axis] - low[v_axis] + 1;
                inside[u * size[1] + v] = true;
            }
        }
        Ok(Some(PlaneMask {
            inside,
            size,
            spacing: [spacing[u_axis], spacing[v_axis]],
            pixel_count,
        }))
    }

    fn is_inside(&self, u: usize, v: usize) -> bool {
        self.inside[u * self.size[1] + v]
    }

    /// Runs marching squares over the padded grid and sums the area, the perimeter and the
    /// vertices of the contour.
    fn contour(&self) -> Contour {
        // Corner offsets of the square at (u, v) in cyclic order, and the midpoint of the
        // edge from corner c to corner c + 1 (mod 4).
        const CORNERS: [[usize; 2]; 4] = [[0, 0], [1, 0], [1, 1], [0, 1]];
        const EDGE_MIDPOINTS: [[f64; 2]; 4] = [[0.5, 0.0], [1.0, 0.5], [0.5, 1.0], [0.0, 0.5]];

        let mut area_twice = 0.0;
        let mut perimeter = 0.0;
        let mut vertices = Vec::new();
        let point = |u: usize, v: usize, offset: [f64; 2]| {
            [
                (u as f64 + offset[0]) * self.spacing[0],
                (v as f64 + offset[1]) * self.spacing[1],
            ]
        };

        for u in 0..self.size[0] - 1 {
            for v in 0..self.size[1] - 1 {
                let corner_inside: [bool; 4] =
                    CORNERS.map(|[du, dv]| self.is_inside(u + du, v + dv));
                let inside_count = corner_inside.iter().filter(|&&inside| inside).count();
                if inside_count == 0 || inside_count == 4 {
                    continue;
                }

                // The vertices that this square owns: those on its edges at u and at v, so
                // that each vertex of the grid is listed once.
                for edge in [0, 3] {
                    if corner_inside[edge] != corner_inside[(edge + 1) % 4] {
                        vertices.push(point(u, v, EDGE_MIDPOINTS[edge]));
                    }
                }

                // Each segment joins two crossed edges and is listed with an ROI corner on
                // its left. A saddle (two ROI corners on a diagonal) cuts off each of them;
                // otherwise the two crossed edges form one segment.
                let crossed: Vec<usize> = (0..4)
                    .filter(|&edge| corner_inside[edge] != corner_inside[(edge + 1) % 4])
                    .collect();
                let saddle = crossed.len() == 4;
                let mut segments: Vec<(usize, usize, usize)> = Vec::with_capacity(2);
                if saddle {
                    for corner in (0..4).filter(|&corner| corner_inside[corner]) {
                        // Edge corner − 1 ends at this corner and edge corner starts there.
                        segments.push(((corner + 3) % 4, corner, corner));
                    }
                } else {
                    let roi_corner = (0..4).find(|&corner| corner_inside[corner]).unwrap_or(0);
                    segments.push((crossed[0], crossed[1], roi_corner));
                }

                for (first_edge, second_edge, roi_corner) in segments {
                    let mut a = point(u, v, EDGE_MIDPOINTS[first_edge]);
                    let mut b = point(u, v, EDGE_MIDPOINTS[second_edge]);
                    let corner = CORNERS[roi_corner];
                    let c = point(u, v, [corner[0] as f64, corner[1] as f64]);
                    let turn = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
                    if turn < 0.0 {
                        std::mem::swap(&mut a, &mut b);
                    }
                    area_twice += a[0] * b[1] - b[0] * a[1];
                    let (du, dv) = (a[0] - b[0], a[1] - b[1]);
                    perimeter += (du * du + dv * dv).sqrt();
                }
            }
        }
        Contour {
            area: area_twice / 2.0,
            perimeter,
            vertices,
        }
    }

    /// Returns the eigenvalues [λ_minor, λ_major] in mm² of the population covariance of the
    /// pixel centres' physical coordinates.
    ///
    /// The moments are exact integer sums of pixel indices, so a one-pixel-wide ROI gets an
    /// exactly zero λ_minor. λ_minor comes from the determinant divided by λ_major, which
    /// avoids the cancellation of the (trace − root) / 2 form for elongated ROIs.
    fn covariance_eigenvalues(&self) -> [f64; 2] {
        let mut count: i128 = 0;
        let mut sums = [0_i128; 2];
        let mut products = [0_i128; 3];
        for u in 0..self.size[0] {
            for v in 0..self.size[1] {
                if !self.is_inside(u, v) {
                    continue;
                }
                let (u, v) = (u as i128, v as i128);
                count += 1;
                sums[0] += u;
                sums[1] += v;
                products[0] += u * u;
                products[1] += u * v;
                products[2] += v * v;
            }
        }
        // N² · covariance, exact for slices far larger than any image.
        let scaled_uu = count * products[0] - sums[0] * sums[0];
        let scaled_uv = count * products[1] - sums[0] * sums[1];
        let scaled_vv = count * products[2] - sums[1] * sums[1];
        let scaled_determinant = scaled_uu * scaled_vv - scaled_uv * scaled_uv;

        let [s_u, s_v] = self.spacing;
        let n_squared = (count * count) as f64;
        let uu = scaled_uu as f64 * (s_u * s_u) / n_squared;
        let uv = scaled_uv as f64 * (s_u * s_v) / n_squared;
        let vv = scaled_vv as f64 * (s_v * s_v) / n_squared;
        let determinant =
            scaled_determinant as f64 * ((s_u * s_u) * (s_v * s_v)) / (n_squared * n_squared);

        let half_difference = (uu - vv) / 2.0;
        let major = (uu + vv) / 2.0 + (half_difference * half_difference + uv * uv).sqrt();
        let minor = if major > 0.0 {
            (determinant / major).max(0.0)
        } else {
            0.0
        };
        [minor, major]
    }
}

/// Returns the largest distance between two of `points`, or 0 for fewer than two.
fn max_distance(points: &[[f64; 2]]) -> f64 {
    let mut largest_squared: f64 = 0.0;
    for (index, a) in points.iter().enumerate() {
        for b in &points[index + 1..] {
            let (du, dv) = (a[0] - b[0], a[1] - b[1]);
            largest_squared = largest_squared.max(du * du + dv * dv);
        }
    }
    largest_squared.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn feature(features: &[(&'static str, f64)], name: &str) -> f64 {
        features
            .iter()
            .find(|(feature, _)| *feature == name)
            .map(|&(_, value)| value)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    /// Builds a mask of shape (i, j, 1) from `rows`, one string per i with '#' inside.
    fn axial_mask(rows: &[&str]) -> Array3<bool> {
        let width = rows[0].len();
        Array3::from_shape_fn((rows.len(), width, 1), |(i, j, _)| {
            rows[i].as_bytes()[j] == b'#'
        })
    }

    #[test]
    fn single_pixel_is_a_diamond() {
        // The contour of one pixel joins its four edge midpoints: a square rotated by 45°
        // with diagonals of one pixel. By hand, with spacing 2 × 3 mm: area 2·3/2 = 3 mm²,
        // each side √(1² + 1.5²) mm, diameter 3 mm (the longer diagonal).
        let mask = axial_mask(&["#"]);
        let features = compute(mask.view(), [2.0, 3.0, 5.0], 2).expect("single slice");
        let side = (1.0_f64 + 2.25).sqrt();
        let expected = [
            ("MeshSurface", 3.0),
            ("PixelSurface", 6.0),
            ("Perimeter", 4.0 * side),
            ("MaximumDiameter", 3.0),
            ("MajorAxisLength", 0.0),
            ("MinorAxisLength", 0.0),
            ("Elongation", 0.0),
        ];
        for (name, value) in expected {
            // A few correctly rounded operations on exact inputs.
            let actual = feature(&features, name);
            assert!(
                (actual - value).abs() <= 1e-14,
                "{name}: {actual}, expected {value}"
            );
        }
    }

    #[test]
    fn rectangle_area_loses_the_corner_triangles() {
        // A 3 × 4 block on unit spacing: the contour cuts each corner pixel's outer quarter
        // diagonally, so A = 12 − 4·(1/8) = 11.5 and P = 2·(2 + 3) + 4·√(1/2). The covariance
        // of the pixel centres is diag((3² − 1)/12, (4² − 1)/12) = diag(2/3, 5/4).
        let mask = axial_mask(&["####", "####", "####"]);
        let features = compute(mask.view(), [1.0, 1.0, 1.0], 2).expect("single slice");
        let perimeter = 10.0 + 4.0 * 0.5_f64.sqrt();
        let expected = [
            ("MeshSurface", 11.5),
            ("PixelSurface", 12.0),
            ("Perimeter", perimeter),
            ("PerimeterSurfaceRatio", perimeter / 11.5),
            ("MajorAxisLength", 4.0 * 1.25_f64.sqrt()),
            ("MinorAxisLength", 4.0 * (2.0_f64 / 3.0).sqrt()),
            ("Elongation", (2.0_f64 / 3.0 / 1.25).sqrt()),
            // Farthest vertices: (0, −0.5) and (2, 3.5) in pixel-centre coordinates, the
            // midpoints of the outer edges of two opposite corner pixels along v.
            ("MaximumDiameter", 20.0_f64.sqrt()),
        ];
        for (name, value) in expected {
            // Sums of a few dozen exact terms, so 1e-13 allows their rounding.
            let actual = feature(&features, name);
            assert!(
                (actual - value).abs() <= 1e-13 * value.abs().max(1.0),
                "{name}: {actual}, expected {value}"
            );
        }
    }

    #[test]
    fn diagonal_pixels_stay_apart() {
        // Two pixels touching at a corner form a saddle square: each is cut off on its own,
        // so the area is that of two single-pixel diamonds (2 · 0.5) and the perimeter is
        // two diamonds' (2 · 4 · √0.5).
        let mask = axial_mask(&["#.", ".#"]);
        let features = compute(mask.view(), [1.0, 1.0, 1.0], 2).expect("single slice");
        let area = feature(&features, "MeshSurface");
        let perimeter = feature(&features, "Perimeter");
        assert!((area - 1.0).abs() <= 1e-15, "area {area}");
        assert!(
            (perimeter - 8.0 * 0.5_f64.sqrt()).abs() <= 1e-14,
            "perimeter {perimeter}"
        );
    }

    #[test]
    fn out_of_plane_axis_does_not_matter() {
        // The same L-shaped slice laid across each axis, with the in-plane spacings kept.
        let rows = ["##.", "#..", "###"];
        let axial = axial_mask(&rows);
        let reference = compute(axial.view(), [0.7, 1.3, 9.0], 2).expect("axial");
        let across_j = axial.clone().permuted_axes([0, 2, 1]);
        let across_i = axial.clone().permuted_axes([2, 0, 1]);
        let cases = [
            (across_j, [0.7, 9.0, 1.3], 1),
            (across_i, [9.0, 0.7, 1.3], 0),
        ];
        for (mask, spacing, axis) in cases {
            let features = compute(mask.view(), spacing, axis).expect("single slice");
            for ((name, expected), (_, actual)) in reference.iter().zip(&features) {
                // Same arithmetic on the same numbers.
                assert_eq!(actual, expected, "{name} across axis {axis}");
            }
        }
    }

    #[test]
    fn roi_across_two_slices_is_rejected() {
        let mut mask = Array3::from_elem((3, 3, 4), false);
        mask[[1, 1, 1]] = true;
        mask[[1, 1, 2]] = true;
        let error = compute(mask.view(), [1.0, 1.0, 1.0], 2).unwrap_err();
        assert_eq!(
            error,
            Shape2DError::MultipleSlices {
                axis: 2,
                force2d_dimension: 0,
                slices: 2
            }
        );
        // Along i the same ROI lies in one slice.
        assert!(compute(mask.view(), [1.0, 1.0, 1.0], 0).is_ok());
    }

    #[test]
    fn empty_mask_gives_nan() {
        let mask = Array3::from_elem((2, 2, 1), false);
        let features = compute(mask.view(), [1.0, 1.0, 1.0], 2).expect("no slice spanned");
        assert_eq!(features.len(), COMPUTED_FEATURE_NAMES.len());
        assert!(features.iter().all(|(_, value)| value.is_nan()));
    }
}
