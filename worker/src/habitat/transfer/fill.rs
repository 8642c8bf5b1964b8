//! Rule 5 of the label transfer: labels for target mask voxels that
//! received no vote.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};

use ndarray::Array3;

use crate::habitat::grid::Affine;
use crate::image::Geometry;

/// How many voxels each part of rule 5 labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Filled {
    /// Labelled by the shortest path through the mask.
    pub by_path: usize,
    /// In a part of the mask with no voted voxel, labelled by straight-line
    /// distance.
    pub by_straight_line: usize,
}

/// Gives every mask voxel with label 0 the label of the nearest voxel with
/// a label, first by path length in mm through the mask, then, where no
/// path exists, by straight-line distance. Ties go to the lower label.
/// `labels` must have at least one non-zero voxel inside the mask.
pub(super) fn fill_unvoted(
    labels: &mut Array3<u8>,
    mask: &Array3<bool>,
    geometry: &Geometry,
) -> Filled {
    let dims = geometry.dims;
    let is_unvoted = |index: [usize; 3]| mask[index] && labels[index] == 0;
    let unvoted_count = mask
        .indexed_iter()
        .filter(|&((i, j, k), &inside)| inside && labels[[i, j, k]] == 0)
        .count();
    if unvoted_count == 0 {
        return Filled::default();
    }

    let index_to_world = Affine::index_to_world(geometry);
    let steps: Vec<([isize; 3], f64)> = neighbour_offsets()
        .into_iter()
        .map(|offset| {
            let vector = index_to_world.apply_linear(offset.map(|d| d as f64));
            let length = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
            (offset, length)
        })
        .collect();

    // Seeds: voted voxels next to an unvoted one; boundary voxels: voted
    // voxels with a 6-neighbour that is not voted. Both are collected
    // before any voxel is filled, so they hold only voted voxels.
    let mut heap = BinaryHeap::new();
    let mut boundary = Vec::new();
    for ((i, j, k), &label) in labels.indexed_iter() {
        if label == 0 || !mask[[i, j, k]] {
            continue;
        }
        let voxel = [i, j, k];
        let next_to_unvoted = steps
            .iter()
            .any(|(offset, _)| neighbour(voxel, *offset, dims).is_some_and(is_unvoted));
        if next_to_unvoted {
            heap.push(Candidate {
                distance_mm: 0.0,
                label,
                voxel,
            });
        }
        let on_boundary = steps
            .iter()
            .filter(|(offset, _)| offset.iter().map(|d| d.abs()).sum::<isize>() == 1)
            .any(|(offset, _)| match neighbour(voxel, *offset, dims) {
                Some(n) => !mask[n] || labels[n] == 0,
                None => true,
            });
        if on_boundary {
            boundary.push((index_to_world.apply(voxel.map(|v| v as f64)), label));
        }
    }

    // Multi-source Dijkstra restricted to unvoted mask voxels. A path from
    // a voted voxel deeper inside passes a seed first, so seeding only the
    // voxels next to unvoted ones gives the same distances. Candidates pop
    // in (distance, label) order, so at equal distance the lower label
    // settles the voxel first.
    let mut best: HashMap<[usize; 3], (f64, u8)> = HashMap::new();
    let mut filled = Filled::default();
    let mut settled: HashSet<[usize; 3]> = HashSet::new();
    while let Some(candidate) = heap.pop() {
        if !settled.insert(candidate.voxel) {
            continue;
        }
        if labels[candidate.voxel] == 0 {
            labels[candidate.voxel] = candidate.label;
            filled.by_path += 1;
        }
        for (offset, length) in &steps {
            let Some(next) = neighbour(candidate.voxel, *offset, dims) else {
                continue;
            };
            if !mask[next] || labels[next] != 0 || settled.contains(&next) {
                continue;
            }
            let distance_mm = candidate.distance_mm + length;
            let improves = match best.get(&next) {
                None => true,
                Some(&(known, known_label)) => {
                    distance_mm < known || (distance_mm == known && candidate.label < known_label)
                }
            };
            if improves {
                best.insert(next, (distance_mm, candidate.label));
                heap.push(Candidate {
                    distance_mm,
                    label: candidate.label,
                    voxel: next,
                });
            }
        }
    }

    // Parts of the mask that no path reaches. With orthogonal axes, the
    // voted voxel nearest to an outside point has a 6-neighbour outside the
    // voted set, because a step towards the point along the axis of its
    // largest index offset would shorten the distance. So only boundary
    // voxels are compared.
    // NOTE: on a sheared grid (non-orthogonal axes) the nearest voted
    // voxel can lie off the boundary. The label then comes from the nearest
    // boundary voxel instead.
    for ((i, j, k), &inside) in mask.indexed_iter() {
        if !inside || labels[[i, j, k]] != 0 {
            continue;
        }
        let position = index_to_world.apply([i as f64, j as f64, k as f64]);
        let mut nearest: Option<(f64, u8)> = None;
        for (voted_position, label) in &boundary {
            let squared: f64 = (0..3)
                .map(|axis| (position[axis] - voted_position[axis]).powi(2))
                .sum();
            let closer = match nearest {
                None => true,
                Some((known, known_label)) => {
                    squared < known || (squared == known && *label < known_label)
                }
            };
            if closer {
                nearest = Some((squared, *label));
            }
        }
        if let Some((_, label)) = nearest {
            labels[[i, j, k]] = label;
            filled.by_straight_line += 1;
        }
    }
    filled
}

/// Lists the 26 offsets to a voxel's face, edge and corner neighbours.
fn neighbour_offsets() -> Vec<[isize; 3]> {
    let mut offsets = Vec::with_capacity(26);
    for di in -1..=1 {
        for dj in -1..=1 {
            for dk in -1..=1 {
                if (di, dj, dk) != (0, 0, 0) {
                    offsets.push([di, dj, dk]);
                }
            }
        }
    }
    offsets
}

fn neighbour(voxel: [usize; 3], offset: [isize; 3], dims: [usize; 3]) -> Option<[usize; 3]> {
    let mut next = [0usize; 3];
    for axis in 0..3 {
        let value = voxel[axis].checked_add_signed(offset[axis])?;
        if value >= dims[axis] {
            return None;
        }
        next[axis] = value;
    }
    Some(next)
}

/// A heap entry: a voxel reached at a path length with a label. The heap
/// is a max-heap, so the order is reversed to pop the shortest distance,
/// then the lower label, then the lower index.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    distance_mm: f64,
    label: u8,
    voxel: [usize; 3],
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .distance_mm
            .total_cmp(&self.distance_mm)
            .then_with(|| other.label.cmp(&self.label))
            .then_with(|| other.voxel.cmp(&self.voxel))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}
