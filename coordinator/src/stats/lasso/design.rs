//! Data layout and settings shared by the two coordinate-descent solvers.

use ndarray::ArrayView2;

use crate::stats::StatsError;

/// The rows of one fit, copied column by column.
///
/// Coordinate descent reads one feature over all rows at a time, so each
/// column is stored contiguously: feature f occupies
/// `values[f * rows .. (f + 1) * rows]`.
pub(super) struct Design {
    rows: usize,
    features: usize,
    values: Vec<f64>,
    labels: Vec<f64>,
    constant: Vec<bool>,
}

impl Design {
    /// Copies the rows `rows` of `z` and `y`, in that order. The caller has
    /// validated `z` and `y` and checked that every index is in range.
    pub(super) fn new(z: ArrayView2<f64>, y: &[bool], rows: &[usize]) -> Self {
        let features = z.ncols();
        let mut values = Vec::with_capacity(features * rows.len());
        for column in z.columns() {
            values.extend(rows.iter().map(|&row| column[row]));
        }
        let labels = rows
            .iter()
            .map(|&row| if y[row] { 1.0 } else { 0.0 })
            .collect();

        let mut design = Self {
            rows: rows.len(),
            features,
            values,
            labels,
            constant: Vec::new(),
        };
        // A column whose values are all equal on these rows is left out and
        // keeps coefficient 0, as glmnet 4.1-6 does (checked with a constant
        // column of 3s and `standardize = FALSE`). Comparing exact values
        // keeps the rule free of a tolerance.
        design.constant = (0..features)
            .map(|feature| {
                let column = design.column(feature);
                column.iter().all(|&value| value == column[0])
            })
            .collect();
        design
    }

    /// Number of rows.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Number of features, including constant ones.
    pub(super) fn features(&self) -> usize {
        self.features
    }

    /// Values of feature `feature` over the rows.
    pub(super) fn column(&self, feature: usize) -> &[f64] {
        &self.values[feature * self.rows..(feature + 1) * self.rows]
    }

    /// Labels as 1.0 (true) and 0.0 (false).
    pub(super) fn labels(&self) -> &[f64] {
        &self.labels
    }

    /// Returns whether `feature` is constant on these rows, and so left out.
    pub(super) fn is_constant(&self, feature: usize) -> bool {
        self.constant[feature]
    }
}

/// Stopping rules shared by both solvers.
#[derive(Debug, Clone, Copy)]
pub(super) struct SolverSettings {
    /// Convergence threshold relative to the null deviance per row.
    pub(super) tolerance: f64,
    /// Most coordinate-descent passes for the whole path.
    pub(super) max_passes: usize,
}

/// Outcome of one path, besides the per-λ solutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PathSummary {
    /// Coordinate-descent passes used over the whole path.
    pub(super) passes: usize,
    /// First λ index at which the binomial fit saturated (see
    /// [`LassoPath::saturated_from`](super::LassoPath::saturated_from)).
    pub(super) saturated_from: Option<usize>,
}

/// The solution at one λ, handed to the caller as the path proceeds.
pub(super) struct Solution<'a> {
    /// Position of λ in the path.
    pub(super) index: usize,
    /// Unpenalised intercept β0.
    pub(super) intercept: f64,
    /// Non-zero coefficients as (feature, β_f), in the order the features
    /// first became non-zero.
    pub(super) coefficients: &'a [(usize, f64)],
}

/// Returns whether a coordinate-descent or IRLS change counts as converged:
/// below the threshold, as in glmnet, or exactly zero. The zero case ends a
/// fit whose threshold is 0, because a constant Gaussian label has null
/// deviance 0.
pub(super) fn settled(change: f64, threshold: f64) -> bool {
    change < threshold || change == 0.0
}

/// A coordinate-descent solver at one λ, as [`CoordinateDescent::descend`]
/// drives it. It provides one pass over a set of features and the two sets
/// that the passes alternate between.
pub(super) trait CoordinateDescent {
    /// Features of the strong set.
    fn strong_features(&self) -> Vec<usize>;

    /// Features that have been non-zero on the path.
    fn active_features(&self) -> Vec<usize>;

    /// Threshold below which the largest change of a pass counts as
    /// converged.
    fn threshold(&self) -> f64;

    /// Updates each coordinate in `features` once and returns the largest
    /// weighted squared change.
    fn pass(&mut self, features: &[usize], index: usize, lambda: f64) -> Result<f64, StatsError>;

    /// Runs coordinate descent on the strong set until a full pass converges:
    /// after each full pass that changed something, passes over the features
    /// that have been non-zero repeat until they converge.
    fn descend(&mut self, index: usize, lambda: f64) -> Result<(), StatsError> {
        loop {
            let strong = self.strong_features();
            if settled(self.pass(&strong, index, lambda)?, self.threshold()) {
                return Ok(());
            }
            loop {
                let active = self.active_features();
                if settled(self.pass(&active, index, lambda)?, self.threshold()) {
                    break;
                }
            }
        }
    }
}

/// Counts one coordinate-descent pass on the λ with index `index`.
///
/// # Errors
///
/// [`StatsError::LassoNotConverged`] once `passes` exceeds `max_passes`.
pub(super) fn count_pass(
    passes: &mut usize,
    max_passes: usize,
    index: usize,
    lambda: f64,
) -> Result<(), StatsError> {
    *passes += 1;
    if *passes > max_passes {
        return Err(StatsError::LassoNotConverged {
            lambda_index: index,
            lambda,
            passes: max_passes,
        });
    }
    Ok(())
}

/// Soft-thresholding operator `sign(u) · max(|u| − λ, 0)`.
pub(super) fn soft_threshold(u: f64, lambda: f64) -> f64 {
    if u > lambda {
        u - lambda
    } else if u < -lambda {
        u + lambda
    } else {
        0.0
    }
}

/// Inner product of two slices of equal length.
///
/// Four independent partial sums let the compiler keep the multiply-adds in
/// vector registers. The summation order therefore differs from a plain loop
/// by rounding only.
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut partial = [0.0_f64; 4];
    let mut a_chunks = a.chunks_exact(4);
    let mut b_chunks = b.chunks_exact(4);
    for (a4, b4) in a_chunks.by_ref().zip(b_chunks.by_ref()) {
        for lane in 0..4 {
            partial[lane] += a4[lane] * b4[lane];
        }
    }
    let tail: f64 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    (partial[0] + partial[1]) + (partial[2] + partial[3]) + tail
}

/// Records which features are in the strong set, keeping them in ascending
/// order so every coordinate-descent pass visits them as glmnet does.
pub(super) struct StrongSet {
    member: Vec<bool>,
    features: Vec<usize>,
}

impl StrongSet {
    /// Creates an empty set over `features` features.
    pub(super) fn new(features: usize) -> Self {
        Self {
            member: vec![false; features],
            features: Vec::new(),
        }
    }

    /// Returns whether `feature` is in the set.
    pub(super) fn contains(&self, feature: usize) -> bool {
        self.member[feature]
    }

    /// Members in ascending order.
    pub(super) fn features(&self) -> &[usize] {
        &self.features
    }

    /// Adds `added` (features not yet in the set) and restores the order.
    pub(super) fn extend(&mut self, added: &[usize]) {
        if added.is_empty() {
            return;
        }
        for &feature in added {
            debug_assert!(!self.member[feature]);
            self.member[feature] = true;
        }
        self.features.extend_from_slice(added);
        self.features.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn design_copies_selected_rows_by_column() {
        let z = array![[1.0, 5.0, 2.0], [2.0, 5.0, 4.0], [3.0, 5.0, 6.0]];
        let design = Design::new(z.view(), &[true, false, true], &[2, 0]);
        assert_eq!(design.rows(), 2);
        assert_eq!(design.features(), 3);
        assert_eq!(design.column(0), &[3.0, 1.0]);
        assert_eq!(design.column(2), &[6.0, 2.0]);
        assert_eq!(design.labels(), &[1.0, 1.0]);
        assert!(!design.is_constant(0));
        assert!(design.is_constant(1));
    }

    #[test]
    fn soft_threshold_shrinks_towards_zero() {
        assert_eq!(soft_threshold(3.0, 1.0), 2.0);
        assert_eq!(soft_threshold(-3.0, 1.0), -2.0);
        assert_eq!(soft_threshold(0.5, 1.0), 0.0);
        assert_eq!(soft_threshold(-1.0, 1.0), 0.0);
    }

    #[test]
    fn dot_matches_plain_sum() {
        let a: Vec<f64> = (0..11).map(|i| i as f64 * 0.5).collect();
        let b: Vec<f64> = (0..11).map(|i| 1.0 - i as f64).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-12);
        assert_eq!(dot(&[], &[]), 0.0);
    }

    #[test]
    fn strong_set_stays_sorted() {
        let mut set = StrongSet::new(6);
        set.extend(&[4, 1]);
        set.extend(&[3]);
        assert_eq!(set.features(), &[1, 3, 4]);
        assert!(set.contains(3));
        assert!(!set.contains(0));
    }
}
