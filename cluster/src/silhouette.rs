//! Mean silhouette coefficient (P. J. Rousseeuw, "Silhouettes: a graphical
//! aid to the interpretation and validation of cluster analysis", J. Comput.
//! Appl. Math. 20, 1987), computed exactly from all pairwise Euclidean
//! distances.
//!
//! For row i in cluster C(i):
//!
//! ```text
//! a(i) = mean over j ∈ C(i), j ≠ i of ‖x_i − x_j‖
//! b(i) = min over clusters C ≠ C(i) of the mean over j ∈ C of ‖x_i − x_j‖
//! s(i) = (b(i) − a(i)) / max(a(i), b(i))
//! ```
//!
//! A row alone in its cluster has s(i) = 0, and so does a row with
//! a(i) = b(i) = 0. The score is the mean of s(i) over all rows. These are
//! the conventions of scikit-learn 1.9 `silhouette_score`, which the tests
//! check. The index needs 2 ≤ K ≤ N − 1 distinct labels.
//!
//! Cost: O(N² · d) time and O(N · K) memory. Above [`SILHOUETTE_SAMPLE`] rows,
//! [`silhouette_score`] scores a seeded random subset of that many rows,
//! as HABIT and scikit-learn's `sample_size` do, so the index stays
//! affordable for large pools.

use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Rows scored by [`silhouette_score`]; larger inputs are subsampled.
pub const SILHOUETTE_SAMPLE: usize = 10_000;

/// Invalid input to the silhouette functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SilhouetteError {
    /// The label vector does not have one entry per row.
    #[error("labels has {labels} entries but the data have {rows} rows")]
    LabelsLength {
        /// Entries in the label vector.
        labels: usize,
        /// Rows of the data.
        rows: usize,
    },
    /// The silhouette needs 2 ≤ K ≤ N − 1.
    #[error(
        "the silhouette needs at least 2 clusters and fewer clusters than rows; got K = {clusters} for N = {rows} rows"
    )]
    ClusterCountOutOfRange {
        /// Distinct labels among the scored rows.
        clusters: usize,
        /// Rows scored.
        rows: usize,
    },
    /// A data value is NaN or infinite.
    #[error("data value {value} at row {row}, column {column} is not finite")]
    NonFiniteValue {
        /// Row of the value.
        row: usize,
        /// Column of the value.
        column: usize,
        /// The value.
        value: f64,
    },
}

/// Returns the mean silhouette of `labels` over the rows of `x`, exactly
/// when `x` has at most [`SILHOUETTE_SAMPLE`] rows, and otherwise over
/// [`SILHOUETTE_SAMPLE`] rows drawn without replacement from a
/// xoshiro256++ stream seeded with `seed`.
pub fn silhouette_score(
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    seed: u64,
) -> Result<f64, SilhouetteError> {
    if labels.len() != x.nrows() {
        return Err(SilhouetteError::LabelsLength {
            labels: labels.len(),
            rows: x.nrows(),
        });
    }
    if x.nrows() <= SILHOUETTE_SAMPLE {
        let rows: Vec<usize> = (0..x.nrows()).collect();
        return silhouette_of_rows(x, labels, &rows);
    }

    // Partial Fisher–Yates shuffle: the first SILHOUETTE_SAMPLE entries
    // are a uniform sample without replacement.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    for position in 0..SILHOUETTE_SAMPLE {
        let pick = rng.gen_range(position..order.len());
        order.swap(position, pick);
    }
    order.truncate(SILHOUETTE_SAMPLE);
    order.sort_unstable();
    silhouette_of_rows(x, labels, &order)
}

/// Returns the exact mean silhouette over every row of `x`.
pub fn silhouette_exact(x: ArrayView2<'_, f64>, labels: &[usize]) -> Result<f64, SilhouetteError> {
    if labels.len() != x.nrows() {
        return Err(SilhouetteError::LabelsLength {
            labels: labels.len(),
            rows: x.nrows(),
        });
    }
    let rows: Vec<usize> = (0..x.nrows()).collect();
    silhouette_of_rows(x, labels, &rows)
}

/// Mean silhouette of the rows `rows` of `x`, with distances among those
/// rows only.
fn silhouette_of_rows(
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    rows: &[usize],
) -> Result<f64, SilhouetteError> {
    for &row in rows {
        for (column, &value) in x.row(row).iter().enumerate() {
            if !value.is_finite() {
                return Err(SilhouetteError::NonFiniteValue { row, column, value });
            }
        }
    }

    // Dense cluster ids 0..K over the scored rows.
    let mut ids: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    for id in &mut ids {
        *id = distinct.binary_search(id).unwrap_or(0);
    }
    let clusters = distinct.len();
    let n = rows.len();
    if clusters < 2 || clusters >= n {
        return Err(SilhouetteError::ClusterCountOutOfRange { clusters, rows: n });
    }
    let mut sizes = vec![0usize; clusters];
    for &id in &ids {
        sizes[id] += 1;
    }

    // distance_sums[i * K + c] = Σ_{j ∈ c} ‖x_i − x_j‖, shape (N, K).
    let mut distance_sums = vec![0.0; n * clusters];
    for i in 0..n {
        let xi = x.row(rows[i]);
        for j in (i + 1)..n {
            let xj = x.row(rows[j]);
            let squared: f64 = xi
                .iter()
                .zip(xj.iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            let distance = squared.sqrt();
            distance_sums[i * clusters + ids[j]] += distance;
            distance_sums[j * clusters + ids[i]] += distance;
        }
    }

    let mut total = 0.0;
    for i in 0..n {
        let own = ids[i];
        if sizes[own] == 1 {
            continue;
        }
        let a = distance_sums[i * clusters + own] / (sizes[own] - 1) as f64;
        let b = (0..clusters)
            .filter(|&c| c != own)
            .map(|c| distance_sums[i * clusters + c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let larger = a.max(b);
        if larger > 0.0 {
            total += (b - a) / larger;
        }
    }
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[allow(dead_code)] // Each module uses part of the shared fixture file.
    mod fixtures {
        include!("../tests/fixtures/sklearn_fixtures.rs");
    }

    /// Relative tolerance against scikit-learn: it computes distances as
    /// sqrt(‖x‖² + ‖y‖² − 2x·y), which loses a few digits to cancellation
    /// for near rows, while this module sums squared differences. On data of
    /// unit scale the two agree to about 1e-13; 1e-10 leaves room without
    /// hiding a wrong a(i) or b(i), which would move the score by > 1e-3.
    const SKLEARN_RELATIVE_TOLERANCE: f64 = 1e-10;

    fn matrix<const D: usize>(rows: &[[f64; D]]) -> Array2<f64> {
        Array2::from_shape_fn((rows.len(), D), |(i, j)| rows[i][j])
    }

    fn assert_close(actual: f64, expected: f64) {
        let error = (actual - expected).abs() / expected.abs().max(1e-300);
        assert!(
            error <= SKLEARN_RELATIVE_TOLERANCE,
            "silhouette {actual} vs scikit-learn {expected}: relative error {error}"
        );
    }

    #[test]
    fn silhouette_matches_sklearn_three_blobs() {
        let x = matrix(&fixtures::SILHOUETTE_X);
        let score = silhouette_exact(x.view(), &fixtures::SILHOUETTE_LABELS).expect("valid input");
        assert_close(score, fixtures::SILHOUETTE_SCORE);
    }

    #[test]
    fn silhouette_matches_sklearn_with_singleton() {
        let x = matrix(&fixtures::SILHOUETTE_X);
        let score = silhouette_exact(x.view(), &fixtures::SILHOUETTE_SINGLETON_LABELS)
            .expect("valid input");
        assert_close(score, fixtures::SILHOUETTE_SINGLETON_SCORE);
    }

    #[test]
    fn silhouette_ignores_label_values() {
        // Labels are ids: renumbering the clusters leaves the score as is.
        let x = matrix(&fixtures::SILHOUETTE_X);
        let renamed: Vec<usize> = fixtures::SILHOUETTE_LABELS
            .iter()
            .map(|l| 10 + 7 * (2 - l))
            .collect();
        let original = silhouette_exact(x.view(), &fixtures::SILHOUETTE_LABELS).expect("valid");
        let relabelled = silhouette_exact(x.view(), &renamed).expect("valid");
        assert_eq!(original, relabelled);
    }

    #[test]
    fn silhouette_rejects_one_cluster() {
        let x = matrix(&[[0.0], [1.0], [2.0]]);
        assert_eq!(
            silhouette_exact(x.view(), &[4, 4, 4]),
            Err(SilhouetteError::ClusterCountOutOfRange {
                clusters: 1,
                rows: 3
            })
        );
    }

    #[test]
    fn silhouette_rejects_one_cluster_per_row() {
        let x = matrix(&[[0.0], [1.0], [2.0]]);
        assert!(silhouette_exact(x.view(), &[0, 1, 2]).is_err());
    }

    #[test]
    fn silhouette_two_points_per_cluster_by_hand() {
        // Clusters {0, 1} and {10, 11} on a line. Row 0: a = 1, b = 10.5,
        // s = 9.5 / 10.5; row 1: a = 1, b = 9.5, s = 8.5 / 9.5; rows 2 and 3
        // mirror rows 1 and 0.
        let x = matrix(&[[0.0], [1.0], [10.0], [11.0]]);
        let expected = (2.0 * (9.5 / 10.5) + 2.0 * (8.5 / 9.5)) / 4.0;
        let score = silhouette_exact(x.view(), &[0, 0, 1, 1]).expect("valid");
        assert!((score - expected).abs() < 1e-15, "{score} vs {expected}");
    }

    #[test]
    fn silhouette_subsample_is_seeded_and_close() {
        // 12,000 rows of two separated lines: the subsample of 10,000 rows
        // gives the same score for the same seed, and within 0.01 of the
        // exact score, since every row's silhouette is near 0.9.
        let n = 12_000;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| {
            if i % 2 == 0 {
                (i % 97) as f64 * 0.01
            } else {
                10.0 + (i % 89) as f64 * 0.01
            }
        });
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let first = silhouette_score(x.view(), &labels, 7).expect("valid");
        let again = silhouette_score(x.view(), &labels, 7).expect("valid");
        assert_eq!(first, again);
        let exact = silhouette_exact(x.view(), &labels).expect("valid");
        assert!((first - exact).abs() < 0.01, "{first} vs exact {exact}");
    }
}
