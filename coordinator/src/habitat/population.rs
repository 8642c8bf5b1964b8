//! The population habitat model of one habitat space, fitted on the
//! supervoxel descriptors of the training patients.
//!
//! 1. Pooling: every training patient's supervoxel rows, sorted by
//!    (pseudonym, space, supervoxel index). The model therefore depends only
//!    on which rows arrive, not on how the patients are split over centers
//!    or in which order the centers reply.
//! 2. Scaling: column-wise z-score over the pooled rows, z = (x − m) / s,
//!    with m the mean and s the population standard deviation (divisor N,
//!    as scikit-learn's `StandardScaler`). MATLAB's `zscore` in the
//!    reference recipe divides by N − 1; the two differ by the same factor
//!    sqrt((N − 1)/N) on every column, which scales all distances alike and
//!    leaves the partition unchanged. A constant column gets s = 1, so its
//!    z-scores are 0.
//! 3. Clustering: k-means (k-means++, `n_init` runs, 300 iterations,
//!    tolerance 1e-4) or a full-covariance Gaussian mixture, for each
//!    candidate K. Candidates above N − 1 rows are dropped, since the
//!    Calinski–Harabasz index and the silhouette need K < N. A candidate
//!    whose fit finds fewer distinct rows than K is recorded and skipped.
//! 4. Choice of K: maximum Calinski–Harabasz index, maximum mean
//!    silhouette, or minimum BIC; ties go to the smaller K.
//! 5. Every fit uses the seed derived from the study seed and the space
//!    name, so each K starts from the same random stream.
//!
//! The centroids sent to the workers are the cluster means (k-means) or
//! component means (mixture) in the standardised space. For k-means a
//! worker assigns a supervoxel to the nearest centroid, Euclidean, ties to
//! the lower index. For a mixture the model also carries the weights and
//! full covariances, and a worker assigns the component of maximum
//! posterior probability, the rule of the mixture's own training labels
//! ([`PopulationFit::assignments`]).
//!
//! With `weight_by_size`, each supervoxel weighs its voxel count in the
//! k-means fit and in the Calinski–Harabasz index.
//!
//! NOTE: the silhouette criterion and the mixture fit ignore
//! `weight_by_size`; every supervoxel counts once there.

use std::collections::BTreeSet;

use ndarray::{Array1, Array2, ArrayView2, Axis};
use radstudy_cluster::gmm::{GaussianMixture, GmmParams, gmm};
use radstudy_cluster::kmeans::{KMeansParams, calinski_harabasz, kmeans};
use radstudy_cluster::silhouette::silhouette_score;
use serde::Serialize;

use super::config::{ClusterMethod, HabitatConfig, KChoice, KCriterion};
use crate::model::derive_seed;

/// The supervoxel descriptors of one patient and habitat space, as a
/// worker returns them after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervoxelSet {
    /// The center that returned the set.
    pub center: String,
    /// The patient's pseudonym.
    pub pseudonym: String,
    /// A sequence, or "joint".
    pub space: String,
    /// Descriptors, one row per supervoxel; shape (supervoxels, columns).
    pub descriptors: Array2<f64>,
    /// Voxels per supervoxel.
    pub voxel_counts: Vec<u32>,
    /// Sum of normalised depth over each supervoxel's voxels.
    pub depth_sums: Vec<f64>,
    /// Sum of rescaled local entropy over each supervoxel's voxels.
    pub entropy_sums: Vec<f64>,
}

/// A population fit that could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PopulationError {
    /// No training supervoxel arrived for the space.
    #[error(
        "habitat space {space}: no training patient's supervoxels arrived; check the centers' supervoxel exclusions"
    )]
    NoRows {
        /// The habitat space.
        space: String,
    },
    /// Two sets of one space have different numbers of columns.
    #[error(
        "habitat space {space}: patient {pseudonym} has {found} descriptor columns, other patients {expected}"
    )]
    ColumnMismatch {
        /// The habitat space.
        space: String,
        /// The patient.
        pseudonym: String,
        /// Its columns.
        found: usize,
        /// The other patients' columns.
        expected: usize,
    },
    /// No candidate K can be fitted.
    #[error(
        "habitat space {space}: {rows} pooled supervoxels with {distinct} distinct rows leave no candidate K in {candidates:?}; include more training patients or lower habitat.k_min"
    )]
    NoCandidate {
        /// The habitat space.
        space: String,
        /// Pooled rows.
        rows: usize,
        /// Distinct pooled rows.
        distinct: usize,
        /// The configured candidates.
        candidates: Vec<usize>,
    },
    /// The clustering library rejected the data.
    #[error("habitat space {space}, K = {k}: {message}")]
    Fit {
        /// The habitat space.
        space: String,
        /// The candidate.
        k: usize,
        /// The library's message.
        message: String,
    },
}

/// One candidate K and its criterion value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateScore {
    /// The candidate.
    pub k: usize,
    /// Calinski–Harabasz index, mean silhouette or BIC; `None` for a fixed
    /// K or a skipped candidate.
    pub value: Option<f64>,
    /// Reason the candidate was skipped.
    pub skipped: Option<String>,
}

/// A fitted clustering of the pooled standardised rows, in cluster order.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationFit {
    /// The habitat space.
    pub space: String,
    /// Column means m; one per descriptor column.
    pub mean: Vec<f64>,
    /// Column scales s (population standard deviation, 1 for a constant
    /// column).
    pub scale: Vec<f64>,
    /// Centroids in the standardised space; shape (K, columns).
    pub centroids: Array2<f64>,
    /// The chosen K.
    pub k: usize,
    /// Criterion, or `None` for a fixed K.
    pub criterion: Option<KCriterion>,
    /// Each candidate's criterion value, in increasing K.
    pub candidates: Vec<CandidateScore>,
    /// The pooled sets, in canonical order.
    pub sets: Vec<SupervoxelSet>,
    /// Habitat of every pooled row, in pooled order: the nearest centroid
    /// for k-means, the component of maximum posterior for a mixture.
    pub assignments: Vec<usize>,
    /// The mixture's parameters in cluster order, for `method = "gmm"`.
    pub mixture: Option<GaussianMixture>,
}

/// Sorts sets by (pseudonym, space), then by center for a pseudonym that
/// two centers share, so that the pooled row order is canonical.
pub fn sort_canonically(sets: &mut [SupervoxelSet]) {
    sets.sort_by(|a, b| {
        (a.pseudonym.as_str(), a.space.as_str(), a.center.as_str()).cmp(&(
            b.pseudonym.as_str(),
            b.space.as_str(),
            b.center.as_str(),
        ))
    });
}

/// Returns the seed of the population fits of `space`.
pub fn space_seed(study_seed: u64, space: &str) -> u64 {
    derive_seed(study_seed, &format!("habitat_population/{space}"))
}

/// Returns the z-score mean and population standard deviation of each
/// column of `rows`; a constant column gets scale 1.
pub fn zscore_parameters(rows: ArrayView2<'_, f64>) -> (Vec<f64>, Vec<f64>) {
    let n = rows.nrows() as f64;
    let mut means = Vec::with_capacity(rows.ncols());
    let mut scales = Vec::with_capacity(rows.ncols());
    for column in rows.axis_iter(Axis(1)) {
        let mean = column.iter().sum::<f64>() / n;
        let variance = column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let scale = variance.sqrt();
        means.push(mean);
        scales.push(if scale > 0.0 { scale } else { 1.0 });
    }
    (means, scales)
}

/// Returns the index of the centroid nearest to `row` (squared Euclidean
/// distance, ties to the lower index), the workers' assignment rule.
pub fn nearest_centroid(row: &[f64], centroids: ArrayView2<'_, f64>) -> usize {
    let mut best = (0, f64::INFINITY);
    for (index, centroid) in centroids.axis_iter(Axis(0)).enumerate() {
        let distance: f64 = row
            .iter()
            .zip(centroid.iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        if distance < best.1 {
            best = (index, distance);
        }
    }
    best.0
}

/// Fits the population model of one space from the training sets of that
/// space, in any order.
pub fn fit_population(
    space: &str,
    mut sets: Vec<SupervoxelSet>,
    config: &HabitatConfig,
    study_seed: u64,
) -> Result<PopulationFit, PopulationError> {
    sort_canonically(&mut sets);
    let columns = match sets.iter().find(|s| s.descriptors.nrows() > 0) {
        Some(set) => set.descriptors.ncols(),
        None => {
            return Err(PopulationError::NoRows {
                space: space.to_string(),
            });
        }
    };
    for set in &sets {
        if set.descriptors.nrows() > 0 && set.descriptors.ncols() != columns {
            return Err(PopulationError::ColumnMismatch {
                space: space.to_string(),
                pseudonym: set.pseudonym.clone(),
                found: set.descriptors.ncols(),
                expected: columns,
            });
        }
    }

    // Pooled rows, shape (N, columns), in canonical order.
    let rows: Vec<f64> = sets
        .iter()
        .flat_map(|set| set.descriptors.iter().copied())
        .collect();
    let n = rows.len() / columns;
    let pooled = Array2::from_shape_vec((n, columns), rows).map_err(|e| PopulationError::Fit {
        space: space.to_string(),
        k: 0,
        message: e.to_string(),
    })?;
    let weights: Array1<f64> = sets
        .iter()
        .flat_map(|set| set.voxel_counts.iter().map(|&c| f64::from(c)))
        .collect();

    let (mean, scale) = zscore_parameters(pooled.view());
    let mut standardised = pooled;
    for mut row in standardised.axis_iter_mut(Axis(0)) {
        for (column, value) in row.iter_mut().enumerate() {
            *value = (*value - mean[column]) / scale[column];
        }
    }
    let distinct = count_distinct(standardised.view());

    let criterion = match config.k {
        KChoice::Fixed(_) => None,
        KChoice::Criterion(criterion) => Some(criterion),
    };
    let seed = space_seed(study_seed, space);
    let weights = config.weight_by_size.then_some(weights);
    let mut candidates = Vec::new();
    let mut best: Option<Best> = None;
    for k in config.candidates() {
        if k + 1 > n {
            candidates.push(CandidateScore {
                k,
                value: None,
                skipped: Some(format!(
                    "K must be at most N − 1 = {} pooled supervoxels",
                    n.saturating_sub(1)
                )),
            });
            continue;
        }
        let fit_error = |message: String| PopulationError::Fit {
            space: space.to_string(),
            k,
            message,
        };
        let (centroids, labels, bic, mixture) = match config.method {
            ClusterMethod::Kmeans => {
                let params = KMeansParams {
                    n_init: config.n_init,
                    ..KMeansParams::new(k)
                };
                let fit = kmeans(
                    standardised.view(),
                    weights.as_ref().map(|w| w.view()),
                    &params,
                    seed,
                )
                .map_err(|e| fit_error(e.to_string()))?;
                (fit.centroids, fit.labels, None, None)
            }
            ClusterMethod::Gmm => {
                let params = GmmParams {
                    n_init: config.n_init,
                    ..GmmParams::new(k)
                };
                let fit = gmm(standardised.view(), &params, seed)
                    .map_err(|e| fit_error(e.to_string()))?;
                (
                    fit.mixture.means.clone(),
                    fit.labels,
                    Some(fit.bic),
                    Some(fit.mixture),
                )
            }
        };
        if centroids.nrows() < k {
            candidates.push(CandidateScore {
                k,
                value: None,
                skipped: Some(format!(
                    "the pooled rows have only {distinct} distinct values"
                )),
            });
            continue;
        }

        // Criterion value, oriented so that larger is better in `score`.
        let (value, score) = match criterion {
            None => (None, 0.0),
            Some(KCriterion::CalinskiHarabasz) => {
                match calinski_harabasz(
                    standardised.view(),
                    &labels,
                    weights.as_ref().map(|w| w.view()),
                ) {
                    Ok(value) => (Some(value), value),
                    Err(error) => {
                        candidates.push(CandidateScore {
                            k,
                            value: None,
                            skipped: Some(error.to_string()),
                        });
                        continue;
                    }
                }
            }
            Some(KCriterion::Silhouette) => {
                match silhouette_score(standardised.view(), &labels, seed) {
                    Ok(value) => (Some(value), value),
                    Err(error) => {
                        candidates.push(CandidateScore {
                            k,
                            value: None,
                            skipped: Some(error.to_string()),
                        });
                        continue;
                    }
                }
            }
            Some(KCriterion::Bic) => {
                let value = bic.unwrap_or(f64::INFINITY);
                (Some(value), -value)
            }
        };
        candidates.push(CandidateScore {
            k,
            value,
            skipped: None,
        });
        // Strictly better only, so ties stay with the smaller K.
        let better = match &best {
            None => true,
            Some(incumbent) => score > incumbent.score,
        };
        if better {
            best = Some(Best {
                k,
                score,
                centroids,
                labels,
                mixture,
            });
        }
    }
    let Some(Best {
        k,
        centroids,
        labels,
        mixture,
        ..
    }) = best
    else {
        return Err(PopulationError::NoCandidate {
            space: space.to_string(),
            rows: n,
            distinct,
            candidates: config.candidates(),
        });
    };

    // A mixture's own labels are its posterior argmax, the rule the
    // workers apply. k-means labels can differ from the nearest final
    // centroid after a stop on the shift tolerance, so they are recomputed.
    let assignments = match mixture {
        Some(_) => labels,
        None => standardised
            .axis_iter(Axis(0))
            .map(|row| nearest_centroid(&row.to_vec(), centroids.view()))
            .collect(),
    };
    Ok(PopulationFit {
        space: space.to_string(),
        mean,
        scale,
        centroids,
        k,
        criterion,
        candidates,
        sets,
        assignments,
        mixture,
    })
}

/// The best candidate K so far.
struct Best {
    k: usize,
    /// Criterion value, larger is better.
    score: f64,
    centroids: Array2<f64>,
    labels: Vec<usize>,
    mixture: Option<GaussianMixture>,
}

fn count_distinct(rows: ArrayView2<'_, f64>) -> usize {
    rows.axis_iter(Axis(0))
        .map(|row| {
            row.iter()
                .map(|&v| if v == 0.0 { 0u64 } else { v.to_bits() })
                .collect::<Vec<u64>>()
        })
        .collect::<BTreeSet<_>>()
        .len()
}

#[cfg(test)]
mod tests;
