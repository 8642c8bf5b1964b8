//! Carrying a habitat label map from one voxel grid to another by physical
//! position.
//!
//! Habitats found on one sequence are read on another sequence of the same
//! lesion whose grid has its own origin, spacing and direction. In the STS
//! cohort, for example, MR T1 has voxels of about 0.98 × 0.98 × 3.3 mm and
//! PET voxels of about 4–5 mm, and both masks trace the same contour. Both
//! grids must be in the same world frame; grids read by
//! [`crate::image::nifti`] are in RAS+ mm, so no LPS/RAS flip is needed.
//! Nothing here registers the images: a PET and an MR that are not already
//! aligned in world space give misplaced habitats.
//!
//! Rule, for each voxel v of the target mask, with s sub-samples per axis
//! (default 3, so 27 points per voxel):
//!
//! 1. v is split into s × s × s sub-voxels. Their centres, in target index
//!    units, are v + (a + ½)/s − ½ along each axis for a = 0, …, s − 1, and
//!    their world positions follow from the target grid's index-to-world
//!    map ([`super::grid`]).
//! 2. Each centre votes for the label of the source voxel that contains it
//!    (nearest neighbour). Source voxel n covers the continuous index range
//!    [n − ½, n + ½) along each axis, so a point on a face between two
//!    voxels goes to the higher index. A point outside the source grid or on
//!    source label 0 casts no vote.
//! 3. v takes the label with the most votes. A tie goes to the lower label
//!    number: habitats are numbered from the innermost outward, so ties go
//!    to the inner habitat.
//! 4. v is mixed when its votes fall in more than one habitat. The share of
//!    votes that the winning label received is v's majority share.
//! 5. A voxel without any vote takes the label of the nearest voxel that has
//!    votes. Distance is the shortest path in mm through the target mask in
//!    steps between 26-neighbours, each step as long as the distance between
//!    the two voxel centres. Ties go to the lower label. A part of the mask
//!    that no path connects to a voted voxel takes the label of the voted
//!    voxel nearest in straight-line world distance.
//!
//! Every voxel of the target mask thus gets a label in 1..=255, and voxels
//! outside the mask get 0.

mod fill;

use ndarray::Array3;

use super::grid::{Affine, GeometryProblem, check_geometry};
use crate::image::Geometry;

/// Default number of sub-samples per axis: 27 points per target voxel.
pub const DEFAULT_SUBSAMPLES_PER_AXIS: usize = 3;

/// Largest accepted number of sub-samples per axis. At 9 a voxel already
/// has 729 points, finer than any spacing ratio between the sequences in
/// use, and the vote counts still fit in a `u16`.
pub const MAX_SUBSAMPLES_PER_AXIS: usize = 9;

/// A label map carried onto the target grid, with counts that describe how
/// well the two grids agreed.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedLabels {
    /// Label of each target voxel, shape = target dims: 0 outside the target
    /// mask, 1..=255 inside.
    pub labels: Array3<u8>,
    /// Voxels in the target mask.
    pub mask_voxels: usize,
    /// Voted voxels whose votes fell in more than one habitat.
    pub mixed_voxels: usize,
    /// Whether each target voxel is mixed, shape = target dims; false
    /// outside the mask and for voxels labelled by rule 5. A mixed voxel
    /// keeps the winning label of rule 3, so it belongs to that habitat's
    /// region.
    pub mixed: Array3<bool>,
    /// Voxels that received no vote and took the label of the nearest voted
    /// voxel (rule 5). Includes `unreachable_voxels`.
    pub unlabelled_voxels: usize,
    /// Of the unlabelled voxels, those in a part of the mask with no voted
    /// voxel, labelled by straight-line distance.
    pub unreachable_voxels: usize,
    /// Share of all sub-voxel points of the target mask that cast a vote, in
    /// [0, 1]. Well below 1, the masks or the grids' placement disagree.
    pub voted_point_share: f64,
    /// Mean, over the voted voxels, of the winning label's share of votes.
    pub mean_majority_share: f64,
    /// Minimum, over the voted voxels, of the winning label's share of votes.
    pub min_majority_share: f64,
}

/// Role of a grid in a transfer, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridRole {
    /// The grid the labels come from.
    Source,
    /// The grid the labels go to.
    Target,
}

impl std::fmt::Display for GridRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GridRole::Source => "source",
            GridRole::Target => "target",
        })
    }
}

/// An error from [`carry_labels`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransferError {
    /// One of the grids is unusable.
    #[error("invalid {grid} grid: {problem}")]
    InvalidGeometry {
        /// The grid.
        grid: GridRole,
        /// The problem with the grid.
        problem: GeometryProblem,
    },
    /// The sub-sample count is out of range.
    #[error(
        "subsamples per axis is {value}; expected 1 to {MAX_SUBSAMPLES_PER_AXIS} \
         (default {DEFAULT_SUBSAMPLES_PER_AXIS})"
    )]
    Subsamples {
        /// The requested count.
        value: usize,
    },
    /// An array's shape differs from its grid's dims.
    #[error(
        "{grid} {array} has shape {found:?} but its grid has dims {expected:?}; \
         pass the array computed on that grid"
    )]
    ShapeMismatch {
        /// The grid.
        grid: GridRole,
        /// "label map" or "mask".
        array: &'static str,
        /// The grid's dims.
        expected: [usize; 3],
        /// The array's shape.
        found: [usize; 3],
    },
    /// The target mask has no voxel.
    #[error("the target mask is empty, so there is no voxel to label; check the mask file")]
    EmptyMask,
    /// Not one point of the target mask falls on a labelled source voxel.
    #[error(
        "none of the {points} sub-voxel points of the {mask_voxels} target mask voxels \
         falls on a labelled source voxel; check that both images share a world frame \
         and that both masks outline the same lesion"
    )]
    NoOverlap {
        /// Target mask voxels.
        mask_voxels: usize,
        /// Sub-voxel points checked.
        points: usize,
    },
}

/// Carries `source_labels` (0 = outside, 1..=K habitats, on the `source`
/// grid) onto the voxels of `target_mask` (on the `target` grid), by the
/// rule in the module documentation.
pub fn carry_labels(
    source_labels: &Array3<u8>,
    source: &Geometry,
    target_mask: &Array3<bool>,
    target: &Geometry,
    subsamples_per_axis: usize,
) -> Result<CarriedLabels, TransferError> {
    check_geometry(source).map_err(|problem| TransferError::InvalidGeometry {
        grid: GridRole::Source,
        problem,
    })?;
    check_geometry(target).map_err(|problem| TransferError::InvalidGeometry {
        grid: GridRole::Target,
        problem,
    })?;
    if !(1..=MAX_SUBSAMPLES_PER_AXIS).contains(&subsamples_per_axis) {
        return Err(TransferError::Subsamples {
            value: subsamples_per_axis,
        });
    }
    check_shape(source_labels.dim(), source, GridRole::Source, "label map")?;
    check_shape(target_mask.dim(), target, GridRole::Target, "mask")?;

    // Target index → world → source continuous index. check_geometry has
    // bounded |det D| away from 0, so the inverse exists.
    let source_from_world =
        Affine::index_to_world(source)
            .inverse()
            .ok_or_else(|| TransferError::InvalidGeometry {
                grid: GridRole::Source,
                problem: GeometryProblem::SingularDirection {
                    direction: source.direction,
                    determinant: super::grid::determinant(&source.direction),
                },
            })?;
    let source_from_target = source_from_world.after(&Affine::index_to_world(target));
    let displacements = subsample_displacements(&source_from_target, subsamples_per_axis);

    let vote = vote_labels(
        source_labels,
        &source_from_target,
        &displacements,
        target_mask,
    );
    if vote.mask_voxels == 0 {
        return Err(TransferError::EmptyMask);
    }
    if vote.voted_voxels == 0 {
        return Err(TransferError::NoOverlap {
            mask_voxels: vote.mask_voxels,
            points: vote.mask_voxels * displacements.len(),
        });
    }

    let mut labels = vote.labels;
    let filled = fill::fill_unvoted(&mut labels, target_mask, target);

    Ok(CarriedLabels {
        labels,
        mask_voxels: vote.mask_voxels,
        mixed_voxels: vote.mixed_voxels,
        mixed: vote.mixed,
        unlabelled_voxels: filled.by_path + filled.by_straight_line,
        unreachable_voxels: filled.by_straight_line,
        voted_point_share: vote.voted_points as f64
            / (vote.mask_voxels * displacements.len()) as f64,
        mean_majority_share: vote.majority_share_sum / vote.voted_voxels as f64,
        min_majority_share: vote.min_majority_share,
    })
}

fn check_shape(
    shape: (usize, usize, usize),
    geometry: &Geometry,
    grid: GridRole,
    array: &'static str,
) -> Result<(), TransferError> {
    let found = [shape.0, shape.1, shape.2];
    if found != geometry.dims {
        return Err(TransferError::ShapeMismatch {
            grid,
            array,
            expected: geometry.dims,
            found,
        });
    }
    Ok(())
}

/// Returns the source-index displacement of each sub-voxel centre from its
/// target voxel centre (rule 1), s³ vectors.
fn subsample_displacements(source_from_target: &Affine, subsamples: usize) -> Vec<[f64; 3]> {
    let offsets: Vec<f64> = (0..subsamples)
        .map(|a| (a as f64 + 0.5) / subsamples as f64 - 0.5)
        .collect();
    let mut displacements = Vec::with_capacity(subsamples.pow(3));
    for &di in &offsets {
        for &dj in &offsets {
            for &dk in &offsets {
                displacements.push(source_from_target.apply_linear([di, dj, dk]));
            }
        }
    }
    displacements
}

/// Tolerance, in source voxel units, for a point on a face between two
/// source voxels. Such points are common: with s odd and an even spacing
/// ratio the middle sub-voxel centre lies exactly on a face, and rounding
/// in the affine product can put it a few ulps on either side. Adding the
/// tolerance before rounding sends all of them to the higher index.
const FACE_TOLERANCE: f64 = 1e-9;

/// Returns the index of the source voxel containing a continuous source
/// index, or `None` outside the grid (rule 2).
fn containing_voxel(point: [f64; 3], dims: [usize; 3]) -> Option<[usize; 3]> {
    let mut index = [0usize; 3];
    for axis in 0..3 {
        let rounded = (point[axis] + 0.5 + FACE_TOLERANCE).floor();
        if !(rounded >= 0.0 && rounded < dims[axis] as f64) {
            return None;
        }
        index[axis] = rounded as usize;
    }
    Some(index)
}

/// The target voxels' labels after rules 1–4, before filling.
struct Vote {
    /// Winning label per target voxel; 0 outside the mask and where no
    /// point voted.
    labels: Array3<u8>,
    /// Whether each target voxel's votes fell in more than one habitat.
    mixed: Array3<bool>,
    mask_voxels: usize,
    voted_voxels: usize,
    mixed_voxels: usize,
    voted_points: usize,
    majority_share_sum: f64,
    min_majority_share: f64,
}

fn vote_labels(
    source_labels: &Array3<u8>,
    source_from_target: &Affine,
    displacements: &[[f64; 3]],
    target_mask: &Array3<bool>,
) -> Vote {
    let source_dims = {
        let (a, b, c) = source_labels.dim();
        [a, b, c]
    };
    let mut labels = Array3::<u8>::zeros(target_mask.dim());
    let mut mixed = Array3::from_elem(target_mask.dim(), false);
    let mut vote = Vote {
        labels: Array3::zeros((0, 0, 0)),
        mixed: Array3::from_elem((0, 0, 0), false),
        mask_voxels: 0,
        voted_voxels: 0,
        mixed_voxels: 0,
        voted_points: 0,
        majority_share_sum: 0.0,
        min_majority_share: 1.0,
    };

    // Votes per label for the current voxel, and the labels touched, so
    // that resetting costs the number of labels seen, not 256.
    let mut counts = [0u16; 256];
    let mut seen: Vec<u8> = Vec::with_capacity(16);

    for ((i, j, k), &inside) in target_mask.indexed_iter() {
        if !inside {
            continue;
        }
        vote.mask_voxels += 1;
        let centre = source_from_target.apply([i as f64, j as f64, k as f64]);

        for displacement in displacements {
            let point = std::array::from_fn(|axis| centre[axis] + displacement[axis]);
            let Some(index) = containing_voxel(point, source_dims) else {
                continue;
            };
            let label = source_labels[index];
            if label == 0 {
                continue;
            }
            if counts[label as usize] == 0 {
                seen.push(label);
            }
            counts[label as usize] += 1;
        }
        if seen.is_empty() {
            continue;
        }

        // Rule 3: most votes, ties to the lower label.
        seen.sort_unstable();
        let mut winner = seen[0];
        for &label in &seen[1..] {
            if counts[label as usize] > counts[winner as usize] {
                winner = label;
            }
        }
        let total: usize = seen
            .iter()
            .map(|&label| counts[label as usize] as usize)
            .sum();
        let share = counts[winner as usize] as f64 / total as f64;

        labels[[i, j, k]] = winner;
        vote.voted_voxels += 1;
        vote.voted_points += total;
        vote.majority_share_sum += share;
        vote.min_majority_share = vote.min_majority_share.min(share);
        if seen.len() > 1 {
            vote.mixed_voxels += 1;
            mixed[[i, j, k]] = true;
        }

        for &label in &seen {
            counts[label as usize] = 0;
        }
        seen.clear();
    }

    vote.labels = labels;
    vote.mixed = mixed;
    vote
}

#[cfg(test)]
mod tests;
