//! Weighted k-means (Lloyd's algorithm) with k-means++ seeding, the
//! within-cluster sum of squares (inertia) and the Calinski–Harabasz index.
//!
//! The module takes plain `ndarray` views and returns plain structs, so that
//! the coordinator can reuse it for the population step.
//!
//! Algorithm, for rows x_i with weights w_i > 0 (all 1 when no weights are
//! given) and squared Euclidean distance:
//!
//! 1. Distinct points. Rows that are equal in every value (−0.0 equals 0.0)
//!    merge into one point whose weight is the sum of theirs. The fit runs
//!    on these points in lexicographic order of their values. A row of
//!    integer weight w therefore gives the same fit as w copies of it with
//!    weight 1, and reordering the rows only reorders the labels.
//!    The effective number of clusters is k = min(`n_clusters`, number of
//!    distinct points): more clusters than distinct points cannot all be
//!    non-empty, so the fit reports the reduced k instead of failing.
//! 2. Seeding: standard weighted k-means++ (D. Arthur and S. Vassilvitskii,
//!    "k-means++: the advantages of careful seeding", SODA 2007) with one
//!    candidate per centroid. The first centroid is point i with
//!    probability w_i / Σw, each further centroid point i with probability
//!    w_i·D(i)² / Σ_j w_j·D(j)², where D(i) is the distance from point i
//!    to its nearest centroid so far. A draw takes u = U[0, 1) · total and
//!    takes the first point, in the order of a k-d tree over the points,
//!    whose running sum of numerators exceeds u. scikit-learn's default
//!    greedy variant tries 2 + ⌊ln k⌋ candidates per centroid instead.
//! 3. Lloyd iterations: assign every point to its nearest centroid (ties go
//!    to the lower centroid index), relocate empty clusters (below), then
//!    move each centroid to the weighted mean of its points. The
//!    assignment uses the filtering algorithm of Kanungo et al. (2002) on
//!    the k-d tree, which gives every point the label of a full scan
//!    (`lloyd` explains why) while computing few distances.
//! 4. Stopping: after at most `max_iter` assignment steps, or earlier when
//!    an assignment step leaves every label unchanged, or when the centroid
//!    shift Σ_c ‖c_new − c_old‖² is at most `tol · mean_j Var_w(X[:, j])`.
//!    The right-hand side is the tolerance relative to the data's mean
//!    per-column (weighted, population) variance, the definition that
//!    scikit-learn documents for `KMeans(tol=...)`, so `tol` has the same
//!    meaning in both.
//! 5. Empty clusters: after an assignment step, each empty cluster, in index
//!    order, takes one point with all the rows equal to it. The point is
//!    the one farthest from its assigned centroid among the points whose
//!    cluster keeps at least one other point, ties going to the
//!    lexicographically smallest. Such a point always exists because
//!    k ≤ distinct points.
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
//! Exactness: from the same initial centroids, the labels equal those of
//! plain Lloyd iterations that scan every centroid for every row. The
//! cluster sums add node totals of the tree instead of rows one by one, so
//! centroids and inertia can differ from a row-by-row sum in the last bits
//! (for integer data and weights the sums are exact and equal).
//!
//! Reproducibility: run r draws from a xoshiro256++ generator seeded with
//! `seed` through `seed_from_u64` and then advanced by r jumps of 2¹²⁸
//! steps, so the runs use disjoint streams. The fit depends only on the
//! data, the weights, the parameters and the seed. The runs execute one
//! after another on the calling thread. Running them in parallel would give
//! the same result, because no run reads another's stream.

mod criteria;
mod layout;
mod lloyd;
mod node_box;
mod points;
mod seeding;
mod tree;

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use criteria::{calinski_harabasz, inertia};
use layout::Layout;
use points::{DistinctPoints, Rows, mean_column_variance};
use seeding::Seeding;
use tree::KdTree;

/// Default number of k-means runs with different seeds.
pub const DEFAULT_N_INIT: usize = 10;
/// Default maximum number of assignment steps per run.
pub const DEFAULT_MAX_ITER: usize = 300;
/// Default shift tolerance, relative to the mean column variance.
pub const DEFAULT_TOLERANCE: f64 = 1e-4;
/// Largest `max_iter` accepted, a guard against a configuration that
/// would let one fit run for hours.
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
    /// The data matrix has too many rows for the 32-bit point indices.
    #[error("data matrix has {rows} rows; at most 4,294,967,294 rows are supported")]
    TooManyRows {
        /// Rows of the matrix.
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
/// frequency weights: a row of integer weight w gives the same fit as w
/// copies of the row, because equal rows are merged before the fit.
pub fn kmeans(
    x: ArrayView2<'_, f64>,
    weights: Option<ArrayView1<'_, f64>>,
    params: &KMeansParams,
    seed: u64,
) -> Result<KMeansFit, KMeansError> {
    validate_params(params)?;
    let rows = Rows::new(x, weights)?;
    let points = DistinctPoints::new(&rows);
    let k = params.n_clusters.min(points.len());
    let shift_tolerance = params.tol * mean_column_variance(&points);
    let tree = KdTree::new(&points);
    let layout = Layout::new(&tree);

    let mut seeding = Seeding::new(&tree);
    let mut best: Option<(usize, lloyd::Run)> = None;
    for run_index in 0..params.n_init {
        let mut rng = run_rng(seed, run_index);
        let centroids =
            layout::with_layout!(&layout, &tree, data => seeding.choose(&tree, data, k, &mut rng));
        let run = lloyd::lloyd_on(
            &tree,
            &layout,
            centroids,
            k,
            params.max_iter,
            shift_tolerance,
        );
        let better = match &best {
            None => true,
            Some((_, incumbent)) => run.inertia < incumbent.inertia,
        };
        if better {
            best = Some((run_index, run));
        }
    }
    // validate_params rejected n_init = 0, so the loop ran at least once.
    let Some((best_run, run)) = best else {
        return Err(KMeansError::InvalidNInit);
    };

    // Tree position of each distinct point, then label of each row.
    let mut position = vec![0u32; tree.len()];
    for (tree_position, &rank) in tree.rank.iter().enumerate() {
        position[rank as usize] = tree_position as u32;
    }
    let labels: Vec<usize> = points
        .point_of_row
        .iter()
        .map(|&point| run.labels[position[point as usize] as usize] as usize)
        .collect();
    let mut counts = vec![0usize; k];
    for (point, &rows_equal) in points.row_counts.iter().enumerate() {
        counts[run.labels[position[point] as usize] as usize] += rows_equal;
    }
    let centroids = Array2::from_shape_vec((k, points.columns), run.centroids)
        .expect("the centroid buffer has k × columns entries");
    Ok(KMeansFit {
        centroids,
        labels,
        counts,
        inertia: run.inertia,
        iterations: run.iterations,
        converged: run.converged,
        best_run,
        requested_clusters: params.n_clusters,
    })
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

/// Returns the generator of run `run_index`: the seeded stream advanced by
/// `run_index` jumps of 2¹²⁸ steps.
fn run_rng(seed: u64, run_index: usize) -> Xoshiro256PlusPlus {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..run_index {
        rng.jump();
    }
    rng
}

#[cfg(test)]
mod tests;
