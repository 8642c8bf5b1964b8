//! Weighted k-means (Lloyd's algorithm) with k-means++ seeding, the
//! within-cluster sum of squares (inertia) and the Calinski–Harabasz index.
//!
//! The module takes plain `ndarray` views and returns plain structs, so that
//! the coordinator can reuse it for the population step.
//!
//! Algorithm, for rows x_i with weights w_i > 0 (all 1 when no weights are
//! given) and squared Euclidean distance:
//!
//! 1. Effective number of clusters: k = min(`n_clusters`, number of distinct
//!    rows). Rows are distinct when they differ in at least one value
//!    (−0.0 equals 0.0). More clusters than distinct rows cannot all be
//!    non-empty, so the fit reports the reduced k instead of failing.
//! 2. Seeding (k-means++, D. Arthur and S. Vassilvitskii, "k-means++: the
//!    advantages of careful seeding", SODA 2007). The first centroid is row
//!    i with probability w_i / Σw. Each further centroid is row i with
//!    probability w_i·D(i)² / Σ_j w_j·D(j)², where D(i) is the distance from
//!    row i to its nearest centroid so far. A draw takes u = U[0, 1) · total
//!    and scans the rows in index order for the first one whose running sum
//!    of numerators exceeds u.
//! 3. Lloyd iterations: assign every row to its nearest centroid (ties go to
//!    the lower centroid index), relocate empty clusters (below), then move
//!    each centroid to the weighted mean of its rows. The assignment skips
//!    the distances that the bounds of G. Hamerly ("Making k-means even
//!    faster", SIAM SDM 2010) prove irrelevant, with a margin above
//!    rounding, so every label is the one a full scan would give.
//! 4. Stopping: after at most `max_iter` assignment steps, or earlier when
//!    an assignment step leaves every label unchanged, or when the centroid
//!    shift Σ_c ‖c_new − c_old‖² is at most `tol · mean_j Var_w(X[:, j])`.
//!    The right-hand side is the tolerance relative to the data's mean
//!    per-column (weighted, population) variance, the definition that
//!    scikit-learn documents for `KMeans(tol=...)`, so `tol` has the same
//!    meaning in both.
//! 5. Empty clusters: after an assignment step, each empty cluster, in index
//!    order, takes the row farthest from its assigned centroid among the
//!    rows whose cluster keeps at least one other row (ties go to the lower
//!    row index). Such a row always exists because k ≤ distinct rows.
//! 6. Restarts: `n_init` runs; the run with the lowest inertia wins, ties to
//!    the earlier run.
//!
//! The returned labels are those of the last assignment step, and the
//! returned centroids are the weighted means of those labels, so `inertia`
//! is the within-cluster sum of squares of the returned partition. When the
//! run stopped because no label changed, each row is also nearest to its
//! own centroid. After a stop on the shift tolerance or on `max_iter`, a few
//! rows can be slightly nearer to another centroid.
//!
//! Reproducibility: run r draws from a xoshiro256++ generator seeded with
//! `seed` through `seed_from_u64` and then advanced by r jumps of 2¹²⁸
//! steps, so the runs use disjoint streams. The fit depends only on the
//! data, the weights, the parameters and the seed. The runs execute one
//! after another on the calling thread. Running them in parallel would give
//! the same result, because no run reads another's stream.

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Default number of k-means runs with different seeds.
pub const DEFAULT_N_INIT: usize = 10;
/// Default maximum number of assignment steps per run.
pub const DEFAULT_MAX_ITER: usize = 300;
/// Default shift tolerance, relative to the mean column variance.
pub const DEFAULT_TOLERANCE: f64 = 1e-4;
/// Largest `max_iter` accepted. It keeps the rounding of the distance
/// bounds far below the margin that protects exact Lloyd assignments.
pub const MAX_ITER_LIMIT: usize = 100_000;

/// Parameters of [`kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    /// Number of clusters requested; the fit uses fewer when the data have
    /// fewer distinct rows.
    pub n_clusters: usize,
    /// Number of runs from different k-means++ seedings, at least 1.
    pub n_init: usize,
    /// Maximum number of assignment steps per run, 1 to [`MAX_ITER_LIMIT`].
    pub max_iter: usize,
    /// Shift tolerance relative to the mean column variance; finite and ≥ 0.
    pub tol: f64,
}

impl KMeansParams {
    /// Creates parameters for `n_clusters` clusters with the default
    /// `n_init` (10), `max_iter` (300) and `tol` (1e-4).
    pub fn new(n_clusters: usize) -> Self {
        KMeansParams {
            n_clusters,
            n_init: DEFAULT_N_INIT,
            max_iter: DEFAULT_MAX_ITER,
            tol: DEFAULT_TOLERANCE,
        }
    }
}

/// Invalid input to [`kmeans`], [`inertia`] or [`calinski_harabasz`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KMeansError {
    /// The data matrix has no rows or no columns.
    #[error("data matrix is {rows} × {columns}; expected at least one row and one column")]
    EmptyData {
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        columns: usize,
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
    /// The weight vector does not have one entry per row.
    #[error("weights has {weights} entries but the data have {rows} rows")]
    WeightsLength {
        /// Entries in the weight vector.
        weights: usize,
        /// Rows of the data.
        rows: usize,
    },
    /// A weight is not finite and > 0.
    #[error("weight {value} of row {row} is invalid; every weight must be finite and > 0")]
    InvalidWeight {
        /// Row of the weight.
        row: usize,
        /// The weight.
        value: f64,
    },
    /// `n_clusters` is 0.
    #[error("n_clusters = 0 is invalid; expected at least 1")]
    InvalidClusters,
    /// `n_init` is 0.
    #[error("n_init = 0 is invalid; expected at least 1 run")]
    InvalidNInit,
    /// `max_iter` is 0 or above [`MAX_ITER_LIMIT`].
    #[error("max_iter = {value} is invalid; expected 1 to {MAX_ITER_LIMIT} iterations")]
    InvalidMaxIter {
        /// The configured value.
        value: usize,
    },
    /// `tol` is negative or not finite.
    #[error("tol = {value} is invalid; expected a finite value ≥ 0")]
    InvalidTolerance {
        /// The configured value.
        value: f64,
    },
    /// The label vector does not have one entry per row.
    #[error("labels has {labels} entries but the data have {rows} rows")]
    LabelsLength {
        /// Entries in the label vector.
        labels: usize,
        /// Rows of the data.
        rows: usize,
    },
    /// A label has no centroid.
    #[error("label {label} of row {row} has no centroid; there are {clusters} centroids")]
    LabelOutOfRange {
        /// Row of the label.
        row: usize,
        /// The label.
        label: usize,
        /// Rows of the centroid matrix.
        clusters: usize,
    },
    /// The centroids have another number of columns than the data.
    #[error("centroids have {centroid_columns} columns but the data have {data_columns}")]
    CentroidColumns {
        /// Columns of the centroid matrix.
        centroid_columns: usize,
        /// Columns of the data.
        data_columns: usize,
    },
    /// The Calinski–Harabasz index needs 2 ≤ K < N.
    #[error(
        "the Calinski–Harabasz index needs at least 2 clusters and fewer clusters than the total weight N; got K = {clusters}, N = {total_weight}"
    )]
    ClusterCountOutOfRange {
        /// Non-empty clusters.
        clusters: usize,
        /// Number of rows, or the sum of the weights when weights are given.
        total_weight: f64,
    },
    /// Both dispersions are 0, so the Calinski–Harabasz index is 0/0.
    #[error(
        "the Calinski–Harabasz index is undefined: every row equals its cluster mean and every cluster mean equals the overall mean"
    )]
    UndefinedIndex,
}

/// A k-means fit: the best of `n_init` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// Cluster means, one row per cluster (k × columns).
    pub centroids: Array2<f64>,
    /// Cluster index of each row, in 0..k.
    pub labels: Vec<usize>,
    /// Rows per cluster; every entry is ≥ 1.
    pub counts: Vec<usize>,
    /// Weighted within-cluster sum of squares, Σ_i w_i ‖x_i − c_label(i)‖².
    pub inertia: f64,
    /// Assignment steps of the winning run.
    pub iterations: usize,
    /// Whether the winning run stopped before `max_iter` (labels unchanged
    /// or shift within tolerance).
    pub converged: bool,
    /// Index of the winning run, in 0..n_init.
    pub best_run: usize,
    /// Clusters requested; the fit has `centroids.nrows()` ≤ this.
    pub requested_clusters: usize,
}

impl KMeansFit {
    /// Returns the number of clusters fitted (k), at most the requested
    /// number and at most the number of distinct rows.
    pub fn n_clusters(&self) -> usize {
        self.centroids.nrows()
    }
}

/// Clusters the rows of `x` into at most `params.n_clusters` clusters. The
/// module documentation defines the algorithm, its stopping rule and its
/// reproducibility.
///
/// `weights`, when given, are per-row weights (finite, > 0) that act as
/// frequency weights: a row of weight 3 counts like three copies in the
/// seeding probabilities, the means and the inertia.
pub fn kmeans(
    x: ArrayView2<'_, f64>,
    weights: Option<ArrayView1<'_, f64>>,
    params: &KMeansParams,
    seed: u64,
) -> Result<KMeansFit, KMeansError> {
    validate_params(params)?;
    let data = Rows::new(x, weights)?;

    let k = params.n_clusters.min(count_distinct_rows(&data));
    let shift_tolerance = params.tol * mean_column_variance(&data);
    let margin = bound_margin(&data);

    let mut best: Option<(usize, Run)> = None;
    for run_index in 0..params.n_init {
        let mut rng = run_rng(seed, run_index);
        let seeds = kmeans_plus_plus(&data, k, &mut rng);
        let run = lloyd(&data, seeds, k, params.max_iter, shift_tolerance, margin);
        let better = match &best {
            None => true,
            Some((_, incumbent)) => run.inertia < incumbent.inertia,
        };
        if better {
            best = Some((run_index, run));
        }
    }
    let (best_run, run) = best.expect("n_init ≥ 1 was validated, so one run exists");

    let mut counts = vec![0usize; k];
    for &label in &run.labels {
        counts[label] += 1;
    }
    let centroids = Array2::from_shape_vec((k, data.columns), run.centroids)
        .expect("the centroid buffer has k × columns entries");
    Ok(KMeansFit {
        centroids,
        labels: run.labels,
        counts,
        inertia: run.inertia,
        iterations: run.iterations,
        converged: run.converged,
        best_run,
        requested_clusters: params.n_clusters,
    })
}

/// Computes the weighted within-cluster sum of squares
/// Σ_i w_i ‖x_i − centroids[labels[i]]‖² for any centroids, for example
/// ones fitted on other data.
pub fn inertia(
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    centroids: ArrayView2<'_, f64>,
    weights: Option<ArrayView1<'_, f64>>,
) -> Result<f64, KMeansError> {
    let data = Rows::new(x, weights)?;
    check_labels(&data, labels, centroids.nrows())?;
    if centroids.ncols() != data.columns {
        return Err(KMeansError::CentroidColumns {
            centroid_columns: centroids.ncols(),
            data_columns: data.columns,
        });
    }
    let flat: Vec<f64> = centroids.iter().copied().collect();
    Ok(weighted_inertia(&data, &flat, labels))
}

/// Computes the Calinski–Harabasz index of a partition,
///
/// ```text
/// CH = [B / (K − 1)] / [W / (N − K)],
/// B  = Σ_k N_k ‖c_k − c̄‖²,   W = Σ_k Σ_{i in k} w_i ‖x_i − c_k‖²,
/// ```
///
/// with c_k the weighted mean of cluster k, N_k its total weight, c̄ the
/// weighted mean of all rows, N the total weight and K the number of
/// non-empty clusters (distinct labels). Without weights, N_k and N are row
/// counts, as in scikit-learn's `calinski_harabasz_score` (which cites
/// T. Caliński and J. Harabasz, Commun. Stat. 3, 1974). Weights act as
/// frequency weights: integer weights give the index of the data with each
/// row repeated.
///
/// Requires 2 ≤ K < N. Returns +∞ when W = 0 and B > 0 (every row equals
/// its cluster mean), the limit of the ratio. scikit-learn returns 1.0 in
/// that case.
pub fn calinski_harabasz(
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    weights: Option<ArrayView1<'_, f64>>,
) -> Result<f64, KMeansError> {
    let data = Rows::new(x, weights)?;
    let clusters = labels.iter().copied().max().map_or(0, |max| max + 1);
    check_labels(&data, labels, clusters)?;

    let columns = data.columns;
    let mut sums = vec![0.0; clusters * columns];
    let mut cluster_weights = vec![0.0; clusters];
    let mut overall = vec![0.0; columns];
    for (row, &label) in labels.iter().enumerate() {
        let weight = data.weights[row];
        cluster_weights[label] += weight;
        for (column, &value) in data.row(row).iter().enumerate() {
            sums[label * columns + column] += weight * value;
            overall[column] += weight * value;
        }
    }
    let total_weight: f64 = data.weights.iter().sum();
    for value in &mut overall {
        *value /= total_weight;
    }

    let non_empty = cluster_weights.iter().filter(|&&w| w > 0.0).count();
    if non_empty < 2 || (non_empty as f64) >= total_weight {
        return Err(KMeansError::ClusterCountOutOfRange {
            clusters: non_empty,
            total_weight,
        });
    }

    let mut means = sums;
    let mut between = 0.0;
    for cluster in 0..clusters {
        let weight = cluster_weights[cluster];
        if weight == 0.0 {
            continue;
        }
        let mean = &mut means[cluster * columns..(cluster + 1) * columns];
        for value in mean.iter_mut() {
            *value /= weight;
        }
        between += weight * squared_distance(mean, &overall);
    }
    let within = weighted_inertia(&data, &means, labels);

    let clusters = non_empty as f64;
    if within == 0.0 {
        return if between > 0.0 {
            Ok(f64::INFINITY)
        } else {
            Err(KMeansError::UndefinedIndex)
        };
    }
    Ok((between / (clusters - 1.0)) / (within / (total_weight - clusters)))
}

/// Validated rows in row-major order with their weights.
struct Rows {
    values: Vec<f64>,
    weights: Vec<f64>,
    rows: usize,
    columns: usize,
}

impl Rows {
    fn new(
        x: ArrayView2<'_, f64>,
        weights: Option<ArrayView1<'_, f64>>,
    ) -> Result<Self, KMeansError> {
        let (rows, columns) = x.dim();
        if rows == 0 || columns == 0 {
            return Err(KMeansError::EmptyData { rows, columns });
        }
        if let Some(((row, column), &value)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(KMeansError::NonFiniteValue { row, column, value });
        }
        let weights = match weights {
            None => vec![1.0; rows],
            Some(weights) => {
                if weights.len() != rows {
                    return Err(KMeansError::WeightsLength {
                        weights: weights.len(),
                        rows,
                    });
                }
                if let Some((row, &value)) = weights
                    .iter()
                    .enumerate()
                    .find(|(_, w)| !(w.is_finite() && **w > 0.0))
                {
                    return Err(KMeansError::InvalidWeight { row, value });
                }
                weights.to_vec()
            }
        };
        Ok(Rows {
            values: x.iter().copied().collect(),
            weights,
            rows,
            columns,
        })
    }

    fn row(&self, row: usize) -> &[f64] {
        &self.values[row * self.columns..(row + 1) * self.columns]
    }
}

/// One k-means run.
struct Run {
    /// Centroids in row-major order (k × columns).
    centroids: Vec<f64>,
    labels: Vec<usize>,
    inertia: f64,
    iterations: usize,
    converged: bool,
}

/// Checks the parameters of [`kmeans`].
pub fn validate_params(params: &KMeansParams) -> Result<(), KMeansError> {
    if params.n_clusters == 0 {
        return Err(KMeansError::InvalidClusters);
    }
    if params.n_init == 0 {
        return Err(KMeansError::InvalidNInit);
    }
    if !(1..=MAX_ITER_LIMIT).contains(&params.max_iter) {
        return Err(KMeansError::InvalidMaxIter {
            value: params.max_iter,
        });
    }
    if !(params.tol.is_finite() && params.tol >= 0.0) {
        return Err(KMeansError::InvalidTolerance { value: params.tol });
    }
    Ok(())
}

fn check_labels(data: &Rows, labels: &[usize], clusters: usize) -> Result<(), KMeansError> {
    if labels.len() != data.rows {
        return Err(KMeansError::LabelsLength {
            labels: labels.len(),
            rows: data.rows,
        });
    }
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= clusters) {
        return Err(KMeansError::LabelOutOfRange {
            row,
            label,
            clusters,
        });
    }
    Ok(())
}

/// Returns the generator of run `run_index`: the seeded stream advanced by
/// `run_index` jumps of 2¹²⁸ steps.
fn run_rng(seed: u64, run_index: usize) -> Xoshiro256PlusPlus {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..run_index {
        rng.jump();
    }
    rng
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| {
            let difference = p - q;
            difference * difference
        })
        .sum()
}

/// Counts the distinct rows, comparing values by their numeric value
/// (−0.0 equals 0.0).
fn count_distinct_rows(data: &Rows) -> usize {
    // Adding 0.0 turns −0.0 into +0.0, so that total_cmp orders equal
    // numbers as equal.
    let canonical: Vec<f64> = data.values.iter().map(|&v| v + 0.0).collect();
    let columns = data.columns;
    let row = |index: usize| &canonical[index * columns..(index + 1) * columns];
    let compare = |a: &usize, b: &usize| {
        row(*a)
            .iter()
            .zip(row(*b))
            .map(|(p, q)| p.total_cmp(q))
            .find(|ordering| ordering.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    let mut order: Vec<usize> = (0..data.rows).collect();
    order.sort_unstable_by(compare);
    1 + order
        .windows(2)
        .filter(|pair| compare(&pair[0], &pair[1]).is_ne())
        .count()
}

/// Returns the mean over columns of the weighted population variance of
/// each column.
fn mean_column_variance(data: &Rows) -> f64 {
    let total_weight: f64 = data.weights.iter().sum();
    let mut sum_of_variances = 0.0;
    for column in 0..data.columns {
        let mean = (0..data.rows)
            .map(|row| data.weights[row] * data.values[row * data.columns + column])
            .sum::<f64>()
            / total_weight;
        let variance = (0..data.rows)
            .map(|row| {
                let difference = data.values[row * data.columns + column] - mean;
                data.weights[row] * difference * difference
            })
            .sum::<f64>()
            / total_weight;
        sum_of_variances += variance;
    }
    sum_of_variances / data.columns as f64
}

/// Picks the index of the first row whose running sum of `scores` exceeds
/// a uniform draw in [0, Σ scores). Falls back to the last row with a
/// positive score when rounding leaves the draw at the total.
fn sample_by_score(scores: &[f64], rng: &mut Xoshiro256PlusPlus) -> usize {
    let total: f64 = scores.iter().sum();
    let target = rng.r#gen::<f64>() * total;
    let mut running = 0.0;
    for (index, &score) in scores.iter().enumerate() {
        running += score;
        if running > target && score > 0.0 {
            return index;
        }
    }
    scores
        .iter()
        .rposition(|&score| score > 0.0)
        .expect("callers pass at least one positive score")
}

/// Chooses k initial centroids by weighted k-means++ (module documentation,
/// step 2). Requires k ≤ the number of distinct rows, so that each draw
/// after the first has a positive total.
fn kmeans_plus_plus(data: &Rows, k: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
    let columns = data.columns;
    let mut centroids = Vec::with_capacity(k * columns);

    let first = sample_by_score(&data.weights, rng);
    centroids.extend_from_slice(data.row(first));
    let mut nearest: Vec<f64> = (0..data.rows)
        .map(|row| squared_distance(data.row(row), data.row(first)))
        .collect();

    let mut scores = vec![0.0; data.rows];
    for _ in 1..k {
        for row in 0..data.rows {
            scores[row] = data.weights[row] * nearest[row];
        }
        let chosen = sample_by_score(&scores, rng);
        let centroid = data.row(chosen).to_vec();
        for (row, distance) in nearest.iter_mut().enumerate() {
            let candidate = squared_distance(data.row(row), &centroid);
            if candidate < *distance {
                *distance = candidate;
            }
        }
        centroids.extend_from_slice(&centroid);
    }
    centroids
}

/// Moves rows into empty clusters (module documentation, step 5), given
/// each row's squared distance to its assigned centroid. Returns the rows
/// moved.
fn relocate_empty_clusters(
    labels: &mut [usize],
    distances: &mut [f64],
    counts: &mut [usize],
) -> Vec<usize> {
    let mut moved = Vec::new();
    for cluster in 0..counts.len() {
        if counts[cluster] > 0 {
            continue;
        }
        let mut farthest: Option<usize> = None;
        for row in 0..labels.len() {
            if counts[labels[row]] < 2 {
                continue;
            }
            if farthest.is_none_or(|best| distances[row] > distances[best]) {
                farthest = Some(row);
            }
        }
        let row = farthest.expect("k ≤ distinct rows, so some cluster has two rows");
        counts[labels[row]] -= 1;
        labels[row] = cluster;
        distances[row] = 0.0;
        counts[cluster] = 1;
        moved.push(row);
    }
    moved
}

/// Returns the weighted means of the rows of each cluster (k × columns).
/// Every cluster must have at least one row.
fn cluster_means(data: &Rows, labels: &[usize], k: usize) -> Vec<f64> {
    let columns = data.columns;
    let mut sums = vec![0.0; k * columns];
    let mut weights = vec![0.0; k];
    for (row, &label) in labels.iter().enumerate() {
        let weight = data.weights[row];
        weights[label] += weight;
        for (column, &value) in data.row(row).iter().enumerate() {
            sums[label * columns + column] += weight * value;
        }
    }
    for (cluster, &weight) in weights.iter().enumerate() {
        for value in &mut sums[cluster * columns..(cluster + 1) * columns] {
            *value /= weight;
        }
    }
    sums
}

fn weighted_inertia(data: &Rows, centroids: &[f64], labels: &[usize]) -> f64 {
    let columns = data.columns;
    labels
        .iter()
        .enumerate()
        .map(|(row, &label)| {
            let centroid = &centroids[label * columns..(label + 1) * columns];
            data.weights[row] * squared_distance(data.row(row), centroid)
        })
        .sum()
}

/// Returns the nearest centroid of `point` (ties to the lower index), its
/// squared distance, and the squared distance to the second nearest (+∞
/// when k = 1).
fn nearest_two(point: &[f64], centroids: &[f64], columns: usize) -> (usize, f64, f64) {
    let mut best = (0, f64::INFINITY);
    let mut second = f64::INFINITY;
    for (cluster, centroid) in centroids.chunks_exact(columns).enumerate() {
        let distance = squared_distance(point, centroid);
        if distance < best.1 {
            second = best.1;
            best = (cluster, distance);
        } else if distance < second {
            second = distance;
        }
    }
    (best.0, best.1, second)
}

/// Returns half the distance from each centroid to its nearest other
/// centroid (+∞ when k = 1).
fn half_separations(centroids: &[f64], columns: usize) -> Vec<f64> {
    let rows: Vec<&[f64]> = centroids.chunks_exact(columns).collect();
    let mut nearest = vec![f64::INFINITY; rows.len()];
    for a in 0..rows.len() {
        for b in a + 1..rows.len() {
            let distance = squared_distance(rows[a], rows[b]);
            nearest[a] = nearest[a].min(distance);
            nearest[b] = nearest[b].min(distance);
        }
    }
    nearest.into_iter().map(|d| 0.5 * d.sqrt()).collect()
}

/// Runs Lloyd iterations from `centroids` (module documentation, steps 3
/// to 5).
///
/// The assignment step skips distance computations with the bounds of
/// G. Hamerly ("Making k-means even faster", SIAM SDM 2010): per row, an
/// upper bound u on the distance to its centroid and a lower bound l on the
/// distance to every other centroid, moved by the centroid shifts after
/// each update. A row keeps its label without a full scan only when
/// u + margin < max(l, s/2), s being the distance from its centroid to the
/// nearest other one, which proves the label strictly nearest. `margin`
/// exceeds the rounding that the bounds accumulate, so every label equals
/// the one a full scan with the lower-index tie rule would give: the
/// result is that of plain Lloyd iterations, bit for bit.
fn lloyd(
    data: &Rows,
    mut centroids: Vec<f64>,
    k: usize,
    max_iter: usize,
    shift_tolerance: f64,
    margin: f64,
) -> Run {
    let rows = data.rows;
    let columns = data.columns;
    // No row has a label before the first assignment step, so that step
    // never counts as unchanged.
    let mut labels = vec![usize::MAX; rows];
    let mut previous = vec![usize::MAX; rows];
    // An infinite upper bound forces a full scan of the row.
    let mut upper = vec![f64::INFINITY; rows];
    let mut lower = vec![0.0; rows];
    let mut iterations = 0;
    let mut converged = false;

    for iteration in 1..=max_iter {
        iterations = iteration;
        previous.copy_from_slice(&labels);
        let separations = half_separations(&centroids, columns);
        let mut counts = vec![0usize; k];
        for row in 0..rows {
            let label = labels[row];
            if upper[row].is_finite() {
                let bound = separations[label].max(lower[row]);
                if upper[row] + margin < bound {
                    counts[label] += 1;
                    continue;
                }
                let centroid = &centroids[label * columns..(label + 1) * columns];
                upper[row] = squared_distance(data.row(row), centroid).sqrt();
                if upper[row] + margin < bound {
                    counts[label] += 1;
                    continue;
                }
            }
            let (nearest, best, second) = nearest_two(data.row(row), &centroids, columns);
            labels[row] = nearest;
            upper[row] = best.sqrt();
            lower[row] = second.sqrt();
            counts[nearest] += 1;
        }

        if counts.contains(&0) {
            let mut distances: Vec<f64> = (0..rows)
                .map(|row| {
                    let label = labels[row];
                    squared_distance(
                        data.row(row),
                        &centroids[label * columns..(label + 1) * columns],
                    )
                })
                .collect();
            for row in relocate_empty_clusters(&mut labels, &mut distances, &mut counts) {
                upper[row] = f64::INFINITY;
            }
        }
        if labels == previous {
            // The centroids are already the means of these labels.
            converged = true;
            break;
        }

        let updated = cluster_means(data, &labels, k);
        let shift = squared_distance(&updated, &centroids);
        let moves: Vec<f64> = updated
            .chunks_exact(columns)
            .zip(centroids.chunks_exact(columns))
            .map(|(new, old)| squared_distance(new, old).sqrt())
            .collect();
        centroids = updated;
        if shift <= shift_tolerance {
            converged = true;
            break;
        }

        // The lower bound of a row drops by the largest move of any other
        // centroid: the largest move overall, or the second largest for
        // rows of the centroid that moved most.
        let (mut largest, mut runner_up, mut largest_cluster) = (0.0, 0.0, 0);
        for (cluster, &distance) in moves.iter().enumerate() {
            if distance > largest {
                runner_up = largest;
                largest = distance;
                largest_cluster = cluster;
            } else if distance > runner_up {
                runner_up = distance;
            }
        }
        for row in 0..rows {
            let label = labels[row];
            upper[row] += moves[label];
            lower[row] -= if label == largest_cluster {
                runner_up
            } else {
                largest
            };
        }
    }

    let inertia = weighted_inertia(data, &centroids, &labels);
    Run {
        centroids,
        labels,
        inertia,
        iterations,
        converged,
    }
}

/// Returns the margin that the bounds of [`lloyd`] must clear: 1e-9 times
/// the diagonal of the data's bounding box. The bounds that decide a skip
/// are at most about that diagonal, and each update rounds by about 1e-16
/// of it. Up to [`MAX_ITER_LIMIT`] updates therefore stay at least 100
/// times below the margin.
fn bound_margin(data: &Rows) -> f64 {
    let mut squared_diagonal = 0.0;
    for column in 0..data.columns {
        let (low, high) = (0..data.rows)
            .map(|row| data.values[row * data.columns + column])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
                (low.min(v), high.max(v))
            });
        squared_diagonal += (high - low) * (high - low);
    }
    1e-9 * squared_diagonal.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array};

    /// Builds three blobs of 9 points each, a 3 × 3 grid of spacing 0.1
    /// around (0, 0), (10, 0) and (0, 10). Returns the points and each
    /// point's blob.
    fn three_blobs() -> (Array2<f64>, Vec<usize>) {
        let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let mut values = Vec::new();
        let mut blobs = Vec::new();
        for (blob, &(cx, cy)) in centres.iter().enumerate() {
            for dx in [-0.1, 0.0, 0.1] {
                for dy in [-0.1, 0.0, 0.1] {
                    values.push(cx + dx);
                    values.push(cy + dy);
                    blobs.push(blob);
                }
            }
        }
        // Interleave the blobs so that row order does not reveal them.
        let rows = blobs.len();
        let order: Vec<usize> = (0..rows).map(|i| (i * 7) % rows).collect();
        let x = Array2::from_shape_fn((rows, 2), |(r, c)| values[order[r] * 2 + c]);
        let blobs = order.iter().map(|&i| blobs[i]).collect();
        (x, blobs)
    }

    /// Checks whether two labelings define the same partition (equal up to
    /// a renaming of clusters).
    fn same_partition(a: &[usize], b: &[usize]) -> bool {
        a.len() == b.len()
            && (0..a.len()).all(|i| (0..a.len()).all(|j| (a[i] == a[j]) == (b[i] == b[j])))
    }

    #[test]
    fn kmeans_separated_blobs_are_recovered() {
        let (x, blobs) = three_blobs();
        let fit = kmeans(x.view(), None, &KMeansParams::new(3), 7).expect("valid input");
        assert_eq!(fit.n_clusters(), 3);

        assert!(
            same_partition(&fit.labels, &blobs),
            "labels {:?}",
            fit.labels
        );
        assert_eq!(fit.counts, vec![9, 9, 9]);
        assert!(fit.converged);

        // Each blob's 3 × 3 grid has its mean at the centre. Along each
        // axis six of its nine points lie 0.1 away, so the squared
        // deviations sum to 6 · 0.1² = 0.06 per axis, 0.12 per blob and
        // 0.36 in total. The tolerance covers rounding of 27 sums of
        // values near 10.
        assert!(
            (fit.inertia - 0.36).abs() < 1e-12,
            "inertia {}",
            fit.inertia
        );

        let mut centroids: Vec<(f64, f64)> = fit
            .centroids
            .rows()
            .into_iter()
            .map(|row| (row[0], row[1]))
            .collect();
        centroids.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        for (actual, expected) in centroids.iter().zip([(0.0, 0.0), (0.0, 10.0), (10.0, 0.0)]) {
            assert!((actual.0 - expected.0).abs() < 1e-12, "{actual:?}");
            assert!((actual.1 - expected.1).abs() < 1e-12, "{actual:?}");
        }
    }

    #[test]
    fn kmeans_same_seed_is_bitwise_identical() {
        let (x, _) = three_blobs();
        let params = KMeansParams::new(3);
        let first = kmeans(x.view(), None, &params, 12345).expect("valid input");
        let second = kmeans(x.view(), None, &params, 12345).expect("valid input");
        assert_eq!(first, second);
    }

    #[test]
    fn kmeans_other_seeds_reach_same_inertia() {
        let (x, blobs) = three_blobs();
        let params = KMeansParams::new(3);
        let reference = kmeans(x.view(), None, &params, 1).expect("valid input");
        for seed in [2, 3, 99, u64::MAX] {
            let fit = kmeans(x.view(), None, &params, seed).expect("valid input");
            // Label numbers may differ between seeds; the partition and the
            // inertia may not, because the blobs leave one optimum.
            assert!(same_partition(&fit.labels, &blobs), "seed {seed}");
            assert!(
                (fit.inertia - reference.inertia).abs() < 1e-12,
                "seed {seed}: inertia {} against {}",
                fit.inertia,
                reference.inertia
            );
        }
    }

    #[test]
    fn kmeans_more_clusters_than_distinct_rows_reduces_k() {
        // Three distinct rows, each repeated, and one −0.0 that equals 0.0.
        let x = array![
            [0.0, 0.0],
            [1.0, 1.0],
            [0.0, 0.0],
            [5.0, 5.0],
            [1.0, 1.0],
            [-0.0, 0.0],
            [5.0, 5.0]
        ];
        let fit = kmeans(x.view(), None, &KMeansParams::new(5), 3).expect("valid input");
        assert_eq!(fit.requested_clusters, 5);
        assert_eq!(fit.n_clusters(), 3);
        assert_eq!(fit.inertia, 0.0);
        assert!(same_partition(&fit.labels, &[0, 1, 0, 2, 1, 0, 2]));
        let mut counts = fit.counts.clone();
        counts.sort_unstable();
        assert_eq!(counts, vec![2, 2, 3]);
    }

    #[test]
    fn kmeans_all_rows_equal_gives_one_cluster() {
        let x = Array2::from_elem((6, 3), 2.5);
        let fit = kmeans(x.view(), None, &KMeansParams::new(4), 0).expect("valid input");
        assert_eq!(fit.n_clusters(), 1);
        assert_eq!(fit.labels, vec![0; 6]);
        assert_eq!(fit.centroids, Array2::from_elem((1, 3), 2.5));
        assert_eq!(fit.inertia, 0.0);
    }

    #[test]
    fn kmeans_weighted_centroid_is_weighted_mean() {
        // One cluster over 0 (weight 3) and 1 (weight 1): mean 1/4, inertia
        // 3 · (1/4)² + 1 · (3/4)² = 3/16 + 9/16 = 3/4, all exact in binary.
        let x = array![[0.0], [1.0]];
        let weights = array![3.0, 1.0];
        let fit =
            kmeans(x.view(), Some(weights.view()), &KMeansParams::new(1), 0).expect("valid input");
        assert_eq!(fit.centroids, array![[0.25]]);
        assert_eq!(fit.inertia, 0.75);
    }

    #[test]
    fn kmeans_integer_weights_match_repeated_rows() {
        let (x, _) = three_blobs();
        let weights: Array1<f64> = (0..x.nrows()).map(|i| (1 + i % 3) as f64).collect();
        let mut repeated = Vec::new();
        for (row, &weight) in x.rows().into_iter().zip(weights.iter()) {
            for _ in 0..weight as usize {
                repeated.extend(row.iter().copied());
            }
        }
        let repeated = Array2::from_shape_vec((repeated.len() / 2, 2), repeated).expect("pairs");
        let params = KMeansParams::new(3);
        let weighted = kmeans(x.view(), Some(weights.view()), &params, 5).expect("valid input");
        let copies = kmeans(repeated.view(), None, &params, 5).expect("valid input");
        // Both reach the blob partition; the sums run in another order, so
        // the inertias agree to rounding (values near 10, about 50 terms).
        assert!(
            (weighted.inertia - copies.inertia).abs() < 1e-12,
            "{} against {}",
            weighted.inertia,
            copies.inertia
        );
    }

    #[test]
    fn kmeans_restart_matches_single_run_with_its_stream() {
        let (x, _) = three_blobs();
        let all = KMeansParams {
            n_init: 4,
            ..KMeansParams::new(5)
        };
        let fit = kmeans(x.view(), None, &all, 21).expect("valid input");
        // Re-run the winning run alone from its own stream.
        let data = Rows::new(x.view(), None).expect("valid input");
        let tolerance = all.tol * mean_column_variance(&data);
        let mut rng = run_rng(21, fit.best_run);
        let seeds = kmeans_plus_plus(&data, 5, &mut rng);
        let run = lloyd(
            &data,
            seeds,
            5,
            all.max_iter,
            tolerance,
            bound_margin(&data),
        );
        assert_eq!(run.labels, fit.labels);
        assert_eq!(run.inertia, fit.inertia);
    }

    /// Assigns every row to its nearest centroid (ties to the lower index)
    /// and stores the squared distance to it. Returns the rows per cluster.
    fn full_assignment(
        data: &Rows,
        centroids: &[f64],
        k: usize,
        labels: &mut [usize],
        distances: &mut [f64],
    ) -> Vec<usize> {
        let mut counts = vec![0usize; k];
        for row in 0..data.rows {
            let (nearest, best, _) = nearest_two(data.row(row), centroids, data.columns);
            labels[row] = nearest;
            distances[row] = best;
            counts[nearest] += 1;
        }
        counts
    }

    /// Runs plain Lloyd iterations with every distance computed, the
    /// reference that the bounded iterations of `lloyd` must reproduce bit
    /// for bit.
    fn plain_lloyd(
        data: &Rows,
        mut centroids: Vec<f64>,
        k: usize,
        max_iter: usize,
        shift_tolerance: f64,
    ) -> Run {
        let mut labels = vec![usize::MAX; data.rows];
        let mut next_labels = vec![0usize; data.rows];
        let mut distances = vec![0.0; data.rows];
        let mut iterations = 0;
        let mut converged = false;
        for iteration in 1..=max_iter {
            iterations = iteration;
            let mut counts = full_assignment(data, &centroids, k, &mut next_labels, &mut distances);
            relocate_empty_clusters(&mut next_labels, &mut distances, &mut counts);
            if next_labels == labels {
                converged = true;
                break;
            }
            std::mem::swap(&mut labels, &mut next_labels);
            let updated = cluster_means(data, &labels, k);
            let shift = squared_distance(&updated, &centroids);
            centroids = updated;
            if shift <= shift_tolerance {
                converged = true;
                break;
            }
        }
        let inertia = weighted_inertia(data, &centroids, &labels);
        Run {
            centroids,
            labels,
            inertia,
            iterations,
            converged,
        }
    }

    #[test]
    fn lloyd_bounds_match_plain_iterations() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
        for case in 0..40 {
            let rows = [50, 200, 1000][case % 3];
            let columns = [1, 2, 3][case % 3];
            let k = [1, 2, 5, 12, 40][case % 5];
            // Half the cases on a coarse integer grid, where exact ties
            // between centroids and duplicate rows are common.
            let coarse = case % 2 == 0;
            let values: Vec<f64> = (0..rows * columns)
                .map(|_| {
                    if coarse {
                        rng.gen_range(0..6) as f64
                    } else {
                        rng.r#gen::<f64>()
                    }
                })
                .collect();
            let x = Array2::from_shape_vec((rows, columns), values).expect("rows × columns");
            let weights: Array1<f64> = (0..rows).map(|i| 1.0 + (i % 4) as f64).collect();
            let weighted = case % 3 == 1;
            let data = Rows::new(x.view(), weighted.then(|| weights.view())).expect("valid input");
            let k = k.min(count_distinct_rows(&data));
            let tolerance = [0.0, 1e-4][case % 2] * mean_column_variance(&data);
            let mut rng_run = run_rng(case as u64, 0);
            let seeds = kmeans_plus_plus(&data, k, &mut rng_run);
            let bounded = lloyd(&data, seeds.clone(), k, 300, tolerance, bound_margin(&data));
            let plain = plain_lloyd(&data, seeds, k, 300, tolerance);
            assert_eq!(bounded.labels, plain.labels, "case {case}: labels");
            assert_eq!(bounded.centroids, plain.centroids, "case {case}: centroids");
            assert_eq!(bounded.inertia, plain.inertia, "case {case}: inertia");
            assert_eq!(
                bounded.iterations, plain.iterations,
                "case {case}: iterations"
            );
        }
    }

    #[test]
    fn lloyd_bounds_match_plain_after_relocation() {
        // Seeds with two centroids far from every row: both clusters are
        // empty after the first assignment and take the farthest rows.
        let x = array![[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]];
        let data = Rows::new(x.view(), None).expect("valid input");
        let seeds = vec![0.1, 100.0, 200.0];
        let bounded = lloyd(&data, seeds.clone(), 3, 300, 0.0, bound_margin(&data));
        let plain = plain_lloyd(&data, seeds, 3, 300, 0.0);
        assert_eq!(bounded.labels, plain.labels);
        assert_eq!(bounded.centroids, plain.centroids);
        // The relocations end in the natural three groups.
        assert!(same_partition(&bounded.labels, &[0, 0, 0, 1, 1, 2]));
    }

    #[test]
    fn relocation_moves_farthest_row_into_empty_cluster() {
        // Cluster 0 has rows 0, 1, 3; cluster 1 is empty; cluster 2 has
        // only row 2, which is the farthest but must stay.
        let mut labels = vec![0, 0, 2, 0];
        let mut distances = vec![0.5, 4.0, 9.0, 4.0];
        let mut counts = vec![3, 0, 1];
        let moved = relocate_empty_clusters(&mut labels, &mut distances, &mut counts);
        assert_eq!(moved, vec![1]);
        // Rows 1 and 3 tie at 4.0; the lower index moves.
        assert_eq!(labels, vec![0, 1, 2, 0]);
        assert_eq!(counts, vec![2, 1, 1]);
        assert_eq!(distances[1], 0.0);
    }

    #[test]
    fn kmeans_plus_plus_picks_distinct_rows() {
        let x = array![[0.0], [0.0], [0.0], [1.0], [1.0], [7.0]];
        let data = Rows::new(x.view(), None).expect("valid input");
        for seed in 0..20 {
            let mut rng = run_rng(seed, 0);
            let mut seeds = kmeans_plus_plus(&data, 3, &mut rng);
            seeds.sort_by(f64::total_cmp);
            assert_eq!(seeds, vec![0.0, 1.0, 7.0], "seed {seed}");
        }
    }

    #[test]
    fn kmeans_invalid_parameters_name_field() {
        let x = array![[0.0], [1.0]];
        let cases = [
            (
                KMeansParams {
                    n_clusters: 0,
                    ..KMeansParams::new(1)
                },
                "n_clusters",
            ),
            (
                KMeansParams {
                    n_init: 0,
                    ..KMeansParams::new(1)
                },
                "n_init",
            ),
            (
                KMeansParams {
                    max_iter: 0,
                    ..KMeansParams::new(1)
                },
                "max_iter",
            ),
            (
                KMeansParams {
                    max_iter: MAX_ITER_LIMIT + 1,
                    ..KMeansParams::new(1)
                },
                "max_iter",
            ),
            (
                KMeansParams {
                    tol: -1.0,
                    ..KMeansParams::new(1)
                },
                "tol",
            ),
            (
                KMeansParams {
                    tol: f64::NAN,
                    ..KMeansParams::new(1)
                },
                "tol",
            ),
        ];
        for (params, field) in cases {
            let error = kmeans(x.view(), None, &params, 0).unwrap_err();
            assert!(error.to_string().contains(field), "{error}");
        }
    }

    #[test]
    fn kmeans_invalid_data_is_rejected() {
        let params = KMeansParams::new(2);
        let empty = Array2::<f64>::zeros((0, 2));
        assert_eq!(
            kmeans(empty.view(), None, &params, 0).unwrap_err(),
            KMeansError::EmptyData {
                rows: 0,
                columns: 2
            }
        );
        let x = array![[0.0, 1.0], [f64::NAN, 2.0]];
        assert!(matches!(
            kmeans(x.view(), None, &params, 0).unwrap_err(),
            KMeansError::NonFiniteValue {
                row: 1,
                column: 0,
                ..
            }
        ));
        let x = array![[0.0], [1.0]];
        let short = array![1.0];
        assert_eq!(
            kmeans(x.view(), Some(short.view()), &params, 0).unwrap_err(),
            KMeansError::WeightsLength {
                weights: 1,
                rows: 2
            }
        );
        let zero = array![1.0, 0.0];
        assert_eq!(
            kmeans(x.view(), Some(zero.view()), &params, 0).unwrap_err(),
            KMeansError::InvalidWeight { row: 1, value: 0.0 }
        );
    }

    #[test]
    fn calinski_harabasz_hand_example() {
        // Clusters {0, 2} and {10, 12} on a line: means 1 and 11, overall
        // mean 6. B = 2 · 5² + 2 · 5² = 100, W = 4 · 1² = 4, N = 4, K = 2,
        // so CH = (100 / 1) / (4 / 2) = 50, exact in binary.
        let x = array![[0.0], [2.0], [10.0], [12.0]];
        let index = calinski_harabasz(x.view(), &[0, 0, 1, 1], None).expect("2 ≤ K < N");
        assert_eq!(index, 50.0);
    }

    #[test]
    fn calinski_harabasz_two_dimensional_hand_example() {
        // Cluster 0: (0, 0), (2, 0), (1, 3), mean (1, 1); squared
        // deviations 2 + 2 + 4 = 8. Cluster 1: (6, 6), (8, 6), mean (7, 6);
        // deviations 1 + 1 = 2. Overall mean (17/5, 3). B = 3 · ((1 −
        // 3.4)² + 2²) + 2 · ((7 − 3.4)² + 3²) = 3 · 9.76 + 2 · 21.96 =
        // 73.2; W = 10; N = 5 and K = 2, so CH = (73.2 / 1) / (10 / 3) =
        // 21.96. Rounding of 17/5 and of the squares stays below 1e-12.
        let x = array![[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [6.0, 6.0], [8.0, 6.0]];
        let index = calinski_harabasz(x.view(), &[0, 0, 0, 1, 1], None).expect("2 ≤ K < N");
        assert!((index - 21.96).abs() < 1e-12, "CH {index}");
    }

    #[test]
    fn calinski_harabasz_integer_weights_match_repeated_rows() {
        let x = array![[0.0], [2.0], [10.0], [12.0], [5.0]];
        let labels = [0, 0, 1, 1, 1];
        let weights = array![2.0, 1.0, 1.0, 3.0, 1.0];
        let repeated = array![[0.0], [0.0], [2.0], [10.0], [12.0], [12.0], [12.0], [5.0]];
        let repeated_labels = [0, 0, 0, 1, 1, 1, 1, 1];
        let weighted =
            calinski_harabasz(x.view(), &labels, Some(weights.view())).expect("2 ≤ K < N");
        let copies = calinski_harabasz(repeated.view(), &repeated_labels, None).expect("2 ≤ K < N");
        assert!(
            (weighted - copies).abs() < 1e-12 * copies,
            "{weighted} against {copies}"
        );
    }

    #[test]
    fn calinski_harabasz_edge_cases() {
        let x = array![[0.0], [0.0], [3.0], [3.0]];
        assert_eq!(
            calinski_harabasz(x.view(), &[0, 0, 1, 1], None),
            Ok(f64::INFINITY)
        );
        assert_eq!(
            calinski_harabasz(x.view(), &[0, 0, 0, 0], None),
            Err(KMeansError::ClusterCountOutOfRange {
                clusters: 1,
                total_weight: 4.0
            })
        );
        assert!(matches!(
            calinski_harabasz(x.view(), &[0, 1, 2, 3], None),
            Err(KMeansError::ClusterCountOutOfRange { clusters: 4, .. })
        ));
        let same = array![[1.0], [1.0], [1.0]];
        assert_eq!(
            calinski_harabasz(same.view(), &[0, 1, 1], None),
            Err(KMeansError::UndefinedIndex)
        );
        assert!(matches!(
            calinski_harabasz(x.view(), &[0, 1], None),
            Err(KMeansError::LabelsLength { labels: 2, rows: 4 })
        ));
    }

    #[test]
    fn inertia_of_given_centroids() {
        // Rows 0 and 4 against centroid 1, row 10 against centroid 8:
        // 1 + 9 + 4 = 14.
        let x = array![[0.0], [4.0], [10.0]];
        let centroids = array![[1.0], [8.0]];
        assert_eq!(
            inertia(x.view(), &[0, 0, 1], centroids.view(), None),
            Ok(14.0)
        );
        assert!(matches!(
            inertia(x.view(), &[0, 0, 2], centroids.view(), None),
            Err(KMeansError::LabelOutOfRange {
                row: 2,
                label: 2,
                ..
            })
        ));
    }
}
