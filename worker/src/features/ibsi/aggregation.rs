//! The 2-D and 2.5-D aggregations of IBSI texture features over slices of constant k.
//!
//! GLCM and GLRLM have one matrix per in-plane direction, and IBSI defines four
//! aggregations for them:
//!
//! - `_2D_avg` (BTW3) averages the feature over every slice and direction;
//! - `_2D_comb` (SUJT) merges each slice's directions and averages over slices;
//! - `_2_5D_avg` (JJUI) merges each direction over slices and averages over directions;
//! - `_2_5D_comb` (ZW7Z) merges everything.
//!
//! GLSZM, GLDZM, NGTDM and NGLDM have one matrix per slice. `_2D` (8QNN) averages over
//! slices, and `_2_5D` (62GR) merges the slices. Empty matrices are left out of averages.
//! A merged matrix carries the sum of the voxel counts of its parts, so percentages stay
//! fractions.

/// A matrix with the number of ROI voxels behind it.
#[derive(Debug, Clone)]
pub(super) struct Counted<M> {
    pub matrix: M,
    pub voxels: f64,
}

/// Merging and emptiness test of a family's texture matrix.
pub(super) trait TextureMatrix: Clone {
    /// Adds the counts of `other` to `self`.
    fn merge(&mut self, other: &Self);
    /// Returns true when the matrix has no counts.
    fn is_empty(&self) -> bool;
}

/// Merges a non-empty list of counted matrices.
fn merge_all<M: TextureMatrix>(items: &[&Counted<M>]) -> Counted<M> {
    let mut merged = items[0].clone();
    for item in &items[1..] {
        merged.matrix.merge(&item.matrix);
        merged.voxels += item.voxels;
    }
    merged
}

/// Averages `features` over the non-empty matrices.
fn average<M: TextureMatrix, const N: usize>(
    items: &[Counted<M>],
    features: &impl Fn(&M, f64) -> [f64; N],
) -> [f64; N] {
    let used: Vec<&Counted<M>> = items
        .iter()
        .filter(|item| !item.matrix.is_empty())
        .collect();
    let mut sum = [0.0; N];
    for item in &used {
        for (total, value) in sum.iter_mut().zip(features(&item.matrix, item.voxels)) {
            *total += value / used.len() as f64;
        }
    }
    sum
}

/// Returns the `_2D_avg`, `_2D_comb`, `_2_5D_avg` and `_2_5D_comb` values. `slices`
/// yields, per slice, the matrix of each in-plane direction in a fixed order. Slices are
/// consumed one at a time, so that only the running merges stay in memory.
pub(super) fn directional<M: TextureMatrix, const N: usize>(
    slices: impl Iterator<Item = Vec<Counted<M>>>,
    features: impl Fn(&M, f64) -> [f64; N],
) -> [[f64; N]; 4] {
    let mut all_sum = [0.0; N];
    let mut all_count = 0.0;
    let mut slice_sum = [0.0; N];
    let mut slice_count = 0.0;
    let mut direction_merged: Vec<Counted<M>> = Vec::new();
    let mut everything: Option<Counted<M>> = None;

    for directions in slices {
        for item in directions.iter().filter(|item| !item.matrix.is_empty()) {
            add_to(&mut all_sum, features(&item.matrix, item.voxels));
            all_count += 1.0;
        }
        let merged = merge_all(&directions.iter().collect::<Vec<_>>());
        if !merged.matrix.is_empty() {
            add_to(&mut slice_sum, features(&merged.matrix, merged.voxels));
            slice_count += 1.0;
        }
        if direction_merged.is_empty() {
            direction_merged = directions;
        } else {
            for (total, item) in direction_merged.iter_mut().zip(&directions) {
                total.matrix.merge(&item.matrix);
                total.voxels += item.voxels;
            }
        }
        match everything.as_mut() {
            Some(total) => {
                total.matrix.merge(&merged.matrix);
                total.voxels += merged.voxels;
            }
            None => everything = Some(merged),
        }
    }

    let everything =
        everything.map_or([f64::NAN; N], |total| features(&total.matrix, total.voxels));
    [
        all_sum.map(|sum| sum / all_count),
        slice_sum.map(|sum| sum / slice_count),
        average(&direction_merged, &features),
        everything,
    ]
}

/// Adds `values` to `sum` element by element.
fn add_to<const N: usize>(sum: &mut [f64; N], values: [f64; N]) {
    for (total, value) in sum.iter_mut().zip(values) {
        *total += value;
    }
}

/// Returns the `_2D` and `_2_5D` values, with `per_slice[s]` the matrix of slice s.
pub(super) fn per_slice<M: TextureMatrix, const N: usize>(
    per_slice: &[Counted<M>],
    features: impl Fn(&M, f64) -> [f64; N],
) -> [[f64; N]; 2] {
    let merged = merge_all(&per_slice.iter().collect::<Vec<_>>());
    [
        average(per_slice, &features),
        features(&merged.matrix, merged.voxels),
    ]
}

/// Tag suffixes of [`directional`]'s results, in order.
pub(super) const DIRECTIONAL_SUFFIXES: [&str; 4] =
    ["_2D_avg", "_2D_comb", "_2_5D_avg", "_2_5D_comb"];

/// Tag suffixes of [`per_slice`]'s results, in order.
pub(super) const SLICE_SUFFIXES: [&str; 2] = ["_2D", "_2_5D"];

impl TextureMatrix for Vec<f64> {
    fn merge(&mut self, other: &Self) {
        for (total, value) in self.iter_mut().zip(other) {
            *total += value;
        }
    }

    fn is_empty(&self) -> bool {
        self.iter().all(|&value| value == 0.0)
    }
}
