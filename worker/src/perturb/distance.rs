//! Exact Euclidean distance transforms of binary masks, in mm, on grids with
//! anisotropic spacing.
//!
//! Method: Felzenszwalb and Huttenlocher's separable algorithm (P. F.
//! Felzenszwalb, D. P. Huttenlocher, "Distance Transforms of Sampled
//! Functions", Theory of Computing 8, 2012, 415–428). The squared distance to
//! the nearest target voxel is computed by three 1-D passes, along i, then j,
//! then k. Each pass replaces a line of values f(q) by
//!
//! ```text
//! D(p) = min over q of ( (s·(p − q))² + f(q) )
//! ```
//!
//! with s the spacing along that axis. The minimum is read from the lower
//! envelope of the parabolas rooted at (q, f(q)), built in O(n) per line. The
//! first pass starts from f = 0 on target voxels and f = +∞ elsewhere, so the
//! result after three passes is the exact squared Euclidean distance between
//! voxel centres, and the whole transform costs O(N) for N voxels.
//!
//! Conventions:
//!
//! - Distances are between voxel centres, in mm, with voxel (i, j, k) at
//!   (i·s_i, j·s_j, k·s_k). The direction cosines of the grid do not enter,
//!   because a rotation of the axes does not change lengths.
//! - [`inside_distance_mm`] treats the voxels beyond the array border as
//!   outside the mask, so a mask voxel on the border is at most one spacing
//!   from the outside.
//! - [`outside_distance_mm`] treats the voxels beyond the border as outside
//!   too, so they are never the nearest mask voxel. An empty mask gives +∞
//!   everywhere.

use ndarray::{Array3, Axis, Zip};

/// An error from the distance transforms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistanceError {
    /// A voxel spacing is zero, negative or not finite.
    #[error("invalid voxel spacing {spacing:?} mm; every spacing must be finite and > 0")]
    InvalidSpacing {
        /// The spacing along i, j and k, in mm.
        spacing: [f64; 3],
    },
}

/// Computes, for each voxel in the mask, the Euclidean distance in mm to the
/// nearest voxel outside the mask. Voxels outside the mask get 0.
///
/// Voxels beyond the array border count as outside: a mask voxel at index 0
/// along i is s_i from the virtual voxel at index −1. The result is therefore
/// finite everywhere, also for a mask that fills the whole array.
pub fn inside_distance_mm(
    mask: &Array3<bool>,
    spacing: [f64; 3],
) -> Result<Array3<f64>, DistanceError> {
    validate_spacing(spacing)?;
    let outside = mask.mapv(|inside| !inside);
    let mut distance = squared_distance_mm2(&outside, spacing, BorderVoxels::Targets);
    distance.mapv_inplace(f64::sqrt);
    Ok(distance)
}

/// Computes, for each voxel outside the mask, the Euclidean distance in mm to
/// the nearest mask voxel. Mask voxels get 0.
///
/// Only voxels of the array count as mask voxels, and an empty mask gives
/// +∞ everywhere.
pub fn outside_distance_mm(
    mask: &Array3<bool>,
    spacing: [f64; 3],
) -> Result<Array3<f64>, DistanceError> {
    validate_spacing(spacing)?;
    let mut distance = squared_distance_mm2(mask, spacing, BorderVoxels::NotTargets);
    distance.mapv_inplace(f64::sqrt);
    Ok(distance)
}

/// Rejects a spacing that is not finite and > 0 along every axis.
pub(super) fn validate_spacing(spacing: [f64; 3]) -> Result<(), DistanceError> {
    if spacing.iter().all(|&s| s.is_finite() && s > 0.0) {
        Ok(())
    } else {
        Err(DistanceError::InvalidSpacing { spacing })
    }
}

/// Whether the virtual voxels just beyond the array border are targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BorderVoxels {
    Targets,
    NotTargets,
}

/// Returns the squared distance in mm² from each voxel to the nearest `true`
/// voxel of `targets` (+∞ when there is none).
fn squared_distance_mm2(
    targets: &Array3<bool>,
    spacing: [f64; 3],
    border: BorderVoxels,
) -> Array3<f64> {
    let mut distance = Array3::from_elem(targets.raw_dim(), f64::INFINITY);
    Zip::from(&mut distance)
        .and(targets)
        .for_each(|value, &target| {
            if target {
                *value = 0.0;
            }
        });

    let mut workspace = LowerEnvelope::default();
    let mut line = Vec::new();
    for (axis, &axis_spacing) in spacing.iter().enumerate() {
        for mut lane in distance.lanes_mut(Axis(axis)) {
            line.clear();
            line.extend(lane.iter().copied());
            workspace.transform(&mut line, axis_spacing, border);
            for (value, &transformed) in lane.iter_mut().zip(&line) {
                *value = transformed;
            }
        }
    }
    distance
}

/// Buffers for the 1-D lower-envelope transform, reused across lines.
#[derive(Debug, Default)]
struct LowerEnvelope {
    /// Finite samples (index along the line, value). The border samples sit
    /// at indices −1 and n.
    samples: Vec<(i64, f64)>,
    /// Indices into `samples` of the parabolas that form the envelope.
    parabolas: Vec<usize>,
    /// `boundaries[h]` is the position in mm where parabola `h` of the
    /// envelope starts to be the lowest, and `boundaries[h + 1]` where it
    /// stops.
    boundaries: Vec<f64>,
}

impl LowerEnvelope {
    /// Replaces `line[p]` by min over q of ((s·(p − q))² + line[q]), in place.
    ///
    /// With `BorderVoxels::Targets`, samples of value 0 at q = −1 and q = n
    /// join the minimum. This equals padding the array with a one-voxel shell
    /// of targets, because a shell voxel is 0 after every pass.
    fn transform(&mut self, line: &mut [f64], spacing: f64, border: BorderVoxels) {
        let length = line.len() as i64;
        self.samples.clear();
        if border == BorderVoxels::Targets {
            self.samples.push((-1, 0.0));
        }
        for (index, &value) in line.iter().enumerate() {
            // +∞ samples never reach the envelope, so leaving them out keeps
            // the intersection arithmetic finite.
            if value.is_finite() {
                self.samples.push((index as i64, value));
            }
        }
        if border == BorderVoxels::Targets {
            self.samples.push((length, 0.0));
        }
        if self.samples.is_empty() {
            line.fill(f64::INFINITY);
            return;
        }

        // Build the lower envelope left to right (Felzenszwalb–Huttenlocher,
        // algorithm DT(f)): a new parabola hides the previous ones whose
        // start lies at or right of its intersection with them.
        self.parabolas.clear();
        self.boundaries.clear();
        self.parabolas.push(0);
        self.boundaries.push(f64::NEG_INFINITY);
        self.boundaries.push(f64::INFINITY);
        for candidate in 1..self.samples.len() {
            loop {
                let top = self.parabolas.len() - 1;
                let crossing = intersection_mm(
                    self.samples[self.parabolas[top]],
                    self.samples[candidate],
                    spacing,
                );
                // The first boundary is −∞ and `crossing` is finite, so the
                // stack never empties.
                if crossing <= self.boundaries[top] {
                    self.parabolas.pop();
                    self.boundaries.pop();
                } else {
                    self.parabolas.push(candidate);
                    self.boundaries[top + 1] = crossing;
                    self.boundaries.push(f64::INFINITY);
                    break;
                }
            }
        }

        // Read the envelope at every voxel centre. The difference p − q is
        // formed in integers so that the result is exactly (s·Δ)² + f(q).
        let mut segment = 0;
        for (position, value) in line.iter_mut().enumerate() {
            let position_mm = position as f64 * spacing;
            while self.boundaries[segment + 1] < position_mm {
                segment += 1;
            }
            let (root, root_value) = self.samples[self.parabolas[segment]];
            let offset_mm = (position as i64 - root) as f64 * spacing;
            *value = offset_mm * offset_mm + root_value;
        }
    }
}

/// Returns the position in mm where the parabolas rooted at samples `left`
/// and `right` (left of it) are equal.
fn intersection_mm(left: (i64, f64), right: (i64, f64), spacing: f64) -> f64 {
    let (left_index, left_value) = left;
    let (right_index, right_value) = right;
    let left_mm = left_index as f64 * spacing;
    let right_mm = right_index as f64 * spacing;
    ((right_value + right_mm * right_mm) - (left_value + left_mm * left_mm))
        / (2.0 * (right_mm - left_mm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Difference allowed between the separable transform and brute force,
    /// in mm. Both sum the same three squares (s·Δ)², in another order, so
    /// they differ only by rounding (about 1e-15 mm for distances below
    /// 20 mm).
    const BRUTE_FORCE_TOLERANCE_MM: f64 = 1e-12;

    /// Brute-force O(N²) distance from each voxel to the nearest voxel where
    /// `is_target` is true. With `border_targets`, the virtual voxels just
    /// beyond each face count as targets.
    fn brute_force_mm(
        mask: &Array3<bool>,
        spacing: [f64; 3],
        is_target: impl Fn(bool) -> bool,
        border_targets: bool,
    ) -> Array3<f64> {
        let dims = mask.dim();
        let dims = [dims.0, dims.1, dims.2];
        Array3::from_shape_fn(mask.raw_dim(), |(i, j, k)| {
            let voxel = [i, j, k];
            let mut best = f64::INFINITY;
            for ((ti, tj, tk), &value) in mask.indexed_iter() {
                if is_target(value) {
                    let squared: f64 = [ti, tj, tk]
                        .iter()
                        .zip(voxel)
                        .zip(spacing)
                        .map(|((&t, h), s)| ((t as f64 - h as f64) * s).powi(2))
                        .sum();
                    best = best.min(squared.sqrt());
                }
            }
            if border_targets {
                for axis in 0..3 {
                    let below = (voxel[axis] + 1) as f64 * spacing[axis];
                    let above = (dims[axis] - voxel[axis]) as f64 * spacing[axis];
                    best = best.min(below).min(above);
                }
            }
            best
        })
    }

    fn random_mask(
        rng: &mut Xoshiro256PlusPlus,
        dims: (usize, usize, usize),
        density: f64,
    ) -> Array3<bool> {
        Array3::from_shape_fn(dims, |_| rng.gen_bool(density))
    }

    fn assert_close(actual: &Array3<f64>, expected: &Array3<f64>, case: &str) {
        for ((index, &a), &e) in actual.indexed_iter().zip(expected.iter()) {
            if e.is_infinite() {
                assert_eq!(a, e, "{case}: voxel {index:?}");
            } else {
                assert!(
                    (a - e).abs() <= BRUTE_FORCE_TOLERANCE_MM,
                    "{case}: voxel {index:?}: transform {a}, brute force {e}"
                );
            }
        }
    }

    const SPACINGS: [[f64; 3]; 3] = [[1.0, 1.0, 1.0], [0.7, 1.3, 2.9], [3.0, 0.5, 0.8]];

    #[test]
    fn inside_distance_matches_brute_force_on_random_masks() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        for spacing in SPACINGS {
            for density in [0.3, 0.7, 0.95] {
                let mask = random_mask(&mut rng, (7, 6, 5), density);
                let actual = inside_distance_mm(&mask, spacing).expect("valid spacing");
                let expected = brute_force_mm(&mask, spacing, |inside| !inside, true);
                assert_close(
                    &actual,
                    &expected,
                    &format!("spacing {spacing:?}, density {density}"),
                );
            }
        }
    }

    #[test]
    fn outside_distance_matches_brute_force_on_random_masks() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        for spacing in SPACINGS {
            for density in [0.02, 0.1, 0.5] {
                let mask = random_mask(&mut rng, (8, 5, 6), density);
                let actual = outside_distance_mm(&mask, spacing).expect("valid spacing");
                let expected = brute_force_mm(&mask, spacing, |inside| inside, false);
                assert_close(
                    &actual,
                    &expected,
                    &format!("spacing {spacing:?}, density {density}"),
                );
            }
        }
    }

    #[test]
    fn inside_distance_full_mask_reaches_border() {
        let mask = Array3::from_elem((5, 4, 3), true);
        let spacing = [1.0, 2.0, 10.0];
        let distance = inside_distance_mm(&mask, spacing).expect("valid spacing");
        // The centre voxel (2, 1, 1) is 3 voxels from both i faces (3 mm),
        // 2 voxels from the j faces (4 mm), 2 voxels from the k faces (20 mm).
        assert_eq!(distance[[2, 1, 1]], 3.0);
        // A corner voxel is one spacing from the nearest face, the i face.
        assert_eq!(distance[[0, 0, 0]], 1.0);
        let expected = brute_force_mm(&mask, spacing, |inside| !inside, true);
        assert_close(&distance, &expected, "full mask");
    }

    #[test]
    fn outside_distance_empty_mask_is_infinite() {
        let mask = Array3::from_elem((3, 4, 2), false);
        let distance = outside_distance_mm(&mask, [1.0; 3]).expect("valid spacing");
        assert!(distance.iter().all(|&d| d == f64::INFINITY));
    }

    #[test]
    fn inside_distance_empty_mask_is_zero() {
        let mask = Array3::from_elem((3, 4, 2), false);
        let distance = inside_distance_mm(&mask, [1.0; 3]).expect("valid spacing");
        assert!(distance.iter().all(|&d| d == 0.0));
    }

    #[test]
    fn outside_distance_single_voxel_is_euclidean() {
        let mut mask = Array3::from_elem((4, 4, 4), false);
        mask[[1, 1, 1]] = true;
        let spacing = [0.5, 2.0, 3.0];
        let distance = outside_distance_mm(&mask, spacing).expect("valid spacing");
        // (3, 2, 0) is (2, 1, −1) voxels away: √(1² + 2² + 3²) mm.
        assert!((distance[[3, 2, 0]] - 14f64.sqrt()).abs() <= BRUTE_FORCE_TOLERANCE_MM);
        assert_eq!(distance[[1, 1, 1]], 0.0);
        assert_eq!(distance[[2, 1, 1]], 0.5);
    }

    #[test]
    fn distance_invalid_spacing_is_rejected() {
        let mask = Array3::from_elem((2, 2, 2), true);
        for spacing in [[1.0, 0.0, 1.0], [1.0, -1.0, 1.0], [f64::NAN, 1.0, 1.0]] {
            let error = inside_distance_mm(&mask, spacing).unwrap_err();
            assert!(
                matches!(error, DistanceError::InvalidSpacing { .. }),
                "{error}"
            );
            let error = outside_distance_mm(&mask, spacing).unwrap_err();
            assert!(
                matches!(error, DistanceError::InvalidSpacing { .. }),
                "{error}"
            );
        }
    }
}
