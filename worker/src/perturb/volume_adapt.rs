//! Mask volume adaptation: growing or shrinking a region of interest by a
//! signed distance in mm.
//!
//! Let d_in(v) be the distance in mm from a mask voxel v to the nearest voxel
//! outside the mask, where voxels beyond the array border count as outside.
//! Let d_out(v) be the distance from a voxel v outside the mask to the
//! nearest mask voxel. Both are measured between voxel centres
//! ([`super::distance`]). For a change r:
//!
//! ```text
//! r < 0 (erosion):  keep the mask voxels with d_in(v) > |r|       (strict)
//! r = 0:            the mask is unchanged
//! r > 0 (dilation): add the outside voxels with d_out(v) ≤ r      (non-strict)
//! ```
//!
//! Both are morphological operations with the closed ball of radius |r| mm:
//! erosion keeps v only when no outside voxel lies within |r| of it, and
//! dilation adds v when some mask voxel lies within r of it. So r = −1 mm on
//! a 1 mm grid removes exactly the boundary layer, and r = +1 mm adds exactly
//! the 6-connected neighbours. The comparisons use the computed distances,
//! so a voxel whose distance equals |r| only up to rounding may fall on either
//! side. This is the mask step of Zwanenburg et al.'s perturbation chain
//! (Sci Rep 2019, arXiv 1806.06719), which grows or shrinks the ROI by a
//! distance rather than by a volume fraction.

use ndarray::{Array3, Zip};

use super::distance::{DistanceError, inside_distance_mm, outside_distance_mm, validate_spacing};
use crate::mask::Roi;

/// An error from mask volume adaptation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VolumeAdaptError {
    /// The change is NaN or infinite.
    #[error("invalid volume change {change_mm} mm; expected a finite distance")]
    InvalidChange {
        /// The requested change, in mm.
        change_mm: f64,
    },
    /// The distance transform failed.
    #[error(transparent)]
    Distance(#[from] DistanceError),
}

/// Grows (`change_mm` > 0) or shrinks (`change_mm` < 0) a region by a
/// distance in mm, by the rule in the module documentation.
///
/// The result may be empty, and the caller decides whether it is still
/// usable.
/// A change smaller in magnitude than the smallest voxel spacing returns the
/// mask unchanged.
pub fn adapt_volume(roi: &Roi, spacing: [f64; 3], change_mm: f64) -> Result<Roi, VolumeAdaptError> {
    if !change_mm.is_finite() {
        return Err(VolumeAdaptError::InvalidChange { change_mm });
    }

    validate_spacing(spacing)?;

    // Every non-zero distance between voxel centres is at least the smallest
    // spacing s_min, and √(s²) is exactly s in IEEE arithmetic. So for
    // |r| < s_min erosion keeps every voxel (d_in ≥ s_min > |r|) and
    // dilation adds none (d_out ≥ s_min > r), and the transform is skipped.
    let smallest_spacing = spacing.iter().copied().fold(f64::INFINITY, f64::min);
    if change_mm.abs() < smallest_spacing {
        return Ok(roi.clone());
    }

    let mask = if change_mm < 0.0 {
        let depth = inside_distance_mm(&roi.mask, spacing)?;
        let limit = -change_mm;
        depth.mapv(|distance| distance > limit)
    } else {
        let reach = outside_distance_mm(&roi.mask, spacing)?;
        reach.mapv(|distance| distance <= change_mm)
    };

    Ok(roi_from_mask(mask))
}

/// Wraps a mask in a [`Roi`], counting its voxels.
pub(crate) fn roi_from_mask(mask: Array3<bool>) -> Roi {
    let mut voxel_count = 0;
    Zip::from(&mask).for_each(|&inside| voxel_count += usize::from(inside));
    Roi { mask, voxel_count }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the mask of the voxels whose centres lie within `radius_mm`
    /// of voxel `centre`, on a grid of `dims` voxels.
    fn sphere(
        dims: (usize, usize, usize),
        centre: [usize; 3],
        radius_mm: f64,
        spacing: [f64; 3],
    ) -> Roi {
        let mask = Array3::from_shape_fn(dims, |(i, j, k)| {
            squared_mm([i, j, k], centre, spacing) <= radius_mm * radius_mm
        });
        roi_from_mask(mask)
    }

    fn squared_mm(a: [usize; 3], b: [usize; 3], spacing: [f64; 3]) -> f64 {
        (0..3)
            .map(|axis| ((a[axis] as f64 - b[axis] as f64) * spacing[axis]).powi(2))
            .sum()
    }

    /// Counts, by brute force over all voxel pairs, the voxels of the
    /// adapted mask as the module documentation defines it.
    fn brute_force_count(roi: &Roi, spacing: [f64; 3], change_mm: f64) -> usize {
        let (ni, nj, nk) = roi.mask.dim();
        let dims = [ni, nj, nk];
        let mut count = 0;
        for ((i, j, k), &inside) in roi.mask.indexed_iter() {
            let voxel = [i, j, k];
            let nearest_other = |want_inside: bool| {
                let mut best = f64::INFINITY;
                for ((a, b, c), &value) in roi.mask.indexed_iter() {
                    if value == want_inside {
                        best = best.min(squared_mm([a, b, c], voxel, spacing).sqrt());
                    }
                }
                best
            };
            let keep = if change_mm < 0.0 {
                let mut depth = nearest_other(false);
                for axis in 0..3 {
                    depth = depth
                        .min((voxel[axis] + 1) as f64 * spacing[axis])
                        .min((dims[axis] - voxel[axis]) as f64 * spacing[axis]);
                }
                inside && depth > -change_mm
            } else {
                inside || nearest_other(true) <= change_mm
            };
            count += usize::from(keep);
        }
        count
    }

    #[test]
    fn adapt_volume_sphere_matches_brute_force() {
        let cases = [
            ([1.0, 1.0, 1.0], (13, 13, 13), [6, 6, 6], 4.0),
            ([0.8, 0.8, 2.0], (15, 15, 7), [7, 7, 3], 4.5),
        ];
        for (spacing, dims, centre, radius_mm) in cases {
            let roi = sphere(dims, centre, radius_mm, spacing);
            for change_mm in [-2.5, -1.6, -1.0, -0.8, 0.0, 0.5, 0.8, 1.0, 1.6, 2.0] {
                let adapted = adapt_volume(&roi, spacing, change_mm).expect("valid input");
                let expected = brute_force_count(&roi, spacing, change_mm);
                assert_eq!(
                    adapted.voxel_count, expected,
                    "spacing {spacing:?}, change {change_mm} mm"
                );
            }
        }
    }

    #[test]
    fn adapt_volume_sphere_known_counts() {
        // Integer points with x² + y² + z² ≤ R²: 1 + 6 = 7 for R = 1, and
        // 1 + 6 + 12 + 8 + 6 = 33 for R = 2 (shells of squared norm 0 … 4).
        let roi = sphere((9, 9, 9), [4, 4, 4], 2.0, [1.0; 3]);
        assert_eq!(roi.voxel_count, 33);
        // Shrinking by 1 mm keeps the voxels with depth > 1 mm: those whose
        // 6-neighbours are all inside, the 7 voxels of the radius-1 ball.
        let shrunk = adapt_volume(&roi, [1.0; 3], -1.0).expect("valid input");
        assert_eq!(shrunk.voxel_count, 7);
    }

    #[test]
    fn adapt_volume_dilation_boundary_is_inclusive() {
        let mut mask = Array3::from_elem((5, 5, 5), false);
        mask[[2, 2, 2]] = true;
        let roi = roi_from_mask(mask);
        let cases = [
            (0.999, 1),
            (1.0, 7),
            (2f64.sqrt(), 19),
            (3f64.sqrt(), 27),
            (2.0, 33),
        ];
        for (change_mm, expected) in cases {
            let grown = adapt_volume(&roi, [1.0; 3], change_mm).expect("valid input");
            assert_eq!(grown.voxel_count, expected, "change {change_mm} mm");
        }
    }

    #[test]
    fn adapt_volume_erosion_boundary_is_exclusive() {
        let mut mask = Array3::from_elem((5, 5, 5), false);
        mask.slice_mut(ndarray::s![1..4, 1..4, 1..4]).fill(true);
        let roi = roi_from_mask(mask);
        // Face voxels of the 3×3×3 cube are 1 mm deep, the centre 2 mm.
        let cases = [(-0.999, 27), (-1.0, 1), (-1.999, 1), (-2.0, 0)];
        for (change_mm, expected) in cases {
            let shrunk = adapt_volume(&roi, [1.0; 3], change_mm).expect("valid input");
            assert_eq!(shrunk.voxel_count, expected, "change {change_mm} mm");
        }
    }

    #[test]
    fn adapt_volume_erosion_treats_border_as_outside() {
        let roi = roi_from_mask(Array3::from_elem((3, 3, 3), true));
        let shrunk = adapt_volume(&roi, [1.0; 3], -1.0).expect("valid input");
        assert_eq!(shrunk.voxel_count, 1);
        assert!(shrunk.mask[[1, 1, 1]]);
    }

    #[test]
    fn adapt_volume_anisotropic_grows_along_fine_axes_only() {
        let mut mask = Array3::from_elem((5, 5, 5), false);
        mask[[2, 2, 2]] = true;
        let roi = roi_from_mask(mask);
        // 1.5 mm reaches the 4 in-plane face neighbours (1 mm) and the 4
        // in-plane diagonals (√2 ≈ 1.41 mm), but not the k neighbours (3 mm).
        let grown = adapt_volume(&roi, [1.0, 1.0, 3.0], 1.5).expect("valid input");
        assert_eq!(grown.voxel_count, 9);
        assert!(!grown.mask[[2, 2, 3]]);
        assert!(grown.mask[[3, 3, 2]]);
    }

    #[test]
    fn adapt_volume_zero_change_is_identity() {
        let roi = sphere((7, 7, 7), [3, 3, 3], 2.5, [1.0; 3]);
        let same = adapt_volume(&roi, [1.0; 3], 0.0).expect("valid input");
        assert_eq!(same.mask, roi.mask);
        assert_eq!(same.voxel_count, roi.voxel_count);
    }

    #[test]
    fn adapt_volume_invalid_input_is_rejected() {
        let roi = sphere((5, 5, 5), [2, 2, 2], 1.0, [1.0; 3]);
        for change_mm in [f64::NAN, f64::INFINITY] {
            let error = adapt_volume(&roi, [1.0; 3], change_mm).unwrap_err();
            assert!(
                matches!(error, VolumeAdaptError::InvalidChange { .. }),
                "{error}"
            );
        }
        for change_mm in [-1.0, 0.0, 1.0] {
            let error = adapt_volume(&roi, [1.0, 0.0, 1.0], change_mm).unwrap_err();
            assert!(matches!(error, VolumeAdaptError::Distance(_)), "{error}");
        }
    }
}
