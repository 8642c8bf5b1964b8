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
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Synthetic training sets: each patient has 12 supervoxels drawn
    /// around three descriptor centres, deeper supervoxels with higher
    /// entropy, so the pooled rows have three clear clusters.
    pub(crate) fn synthetic_sets(patients: usize, seed: u64) -> Vec<SupervoxelSet> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let centres = [[0.2, 0.8], [0.5, 0.5], [0.8, 0.1]];
        let depths = [0.8, 0.5, 0.15];
        (0..patients)
            .map(|p| {
                let rows = 12;
                let mut descriptors = Array2::zeros((rows, 2));
                let mut voxel_counts = Vec::new();
                let mut depth_sums = Vec::new();
                let mut entropy_sums = Vec::new();
                for r in 0..rows {
                    let c = r % 3;
                    descriptors[[r, 0]] = centres[c][0] + rng.gen_range(-0.05..0.05);
                    descriptors[[r, 1]] = centres[c][1] + rng.gen_range(-0.05..0.05);
                    let count = rng.gen_range(20..60u32);
                    voxel_counts.push(count);
                    depth_sums.push(f64::from(count) * (depths[c] + rng.gen_range(-0.05..0.05)));
                    entropy_sums.push(f64::from(count) * descriptors[[r, 1]]);
                }
                SupervoxelSet {
                    center: "A".into(),
                    pseudonym: format!("p{p:03}"),
                    space: "MR_T1".into(),
                    descriptors,
                    voxel_counts,
                    depth_sums,
                    entropy_sums,
                }
            })
            .collect()
    }

    #[test]
    fn population_chooses_three_clusters_by_ch() {
        let config = HabitatConfig::default();
        let fit = fit_population("MR_T1", synthetic_sets(10, 1), &config, 42).expect("fit");
        assert_eq!(fit.k, 3);
        assert_eq!(fit.candidates.len(), 9);
        assert!(fit.candidates.iter().all(|c| c.value.is_some()));
        // The chosen candidate has the maximum index.
        let best = fit
            .candidates
            .iter()
            .filter_map(|c| c.value)
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(fit.candidates[1].value, Some(best));
    }

    #[test]
    fn population_silhouette_and_bic_choose_three() {
        let sets = synthetic_sets(10, 2);
        let silhouette = HabitatConfig {
            k: KChoice::Criterion(KCriterion::Silhouette),
            ..HabitatConfig::default()
        };
        assert_eq!(
            fit_population("MR_T1", sets.clone(), &silhouette, 42)
                .expect("fit")
                .k,
            3
        );
        let bic = HabitatConfig {
            k: KChoice::Criterion(KCriterion::Bic),
            method: ClusterMethod::Gmm,
            n_init: 2,
            k_max: 5,
            ..HabitatConfig::default()
        };
        let fit = fit_population("MR_T1", sets, &bic, 42).expect("fit");
        assert_eq!(fit.k, 3);
        assert_eq!(fit.criterion, Some(KCriterion::Bic));
    }

    #[test]
    fn population_gmm_model_carries_mixture() {
        let config = HabitatConfig {
            k: KChoice::Fixed(3),
            method: ClusterMethod::Gmm,
            n_init: 2,
            ..HabitatConfig::default()
        };
        let fit = fit_population("MR_T1", synthetic_sets(10, 2), &config, 42).expect("fit");
        let mixture = fit.mixture.clone().expect("a gmm fit keeps its mixture");
        // The training assignments are the mixture's own posterior labels.
        let standardised = Array2::from_shape_fn((fit.assignments.len(), 2), |(row, column)| {
            let (set, index) = locate(&fit.sets, row);
            (fit.sets[set].descriptors[[index, column]] - fit.mean[column]) / fit.scale[column]
        });
        assert_eq!(
            radstudy_cluster::gmm::predict(standardised.view(), &mixture).expect("valid"),
            fit.assignments
        );

        let columns = vec!["intensity".to_string(), "entropy".to_string()];
        let model = super::super::SpaceModel::new(&fit, columns, &config);
        let message = model.to_proto();
        assert_eq!(message.covariance_type, "full");
        // Each habitat's weight and covariance follow its centroid into
        // name order.
        for (position, habitat) in model.naming.habitats.iter().enumerate() {
            assert_eq!(message.weights[position], mixture.weights[habitat.cluster]);
            let covariance: Vec<f64> = mixture
                .covariances
                .index_axis(Axis(0), habitat.cluster)
                .iter()
                .copied()
                .collect();
            assert_eq!(
                message.covariances[position * 4..(position + 1) * 4],
                covariance[..]
            );
            assert_eq!(
                message.centroids[position * 2..(position + 1) * 2],
                fit.centroids.row(habitat.cluster).to_vec()[..]
            );
        }
    }

    /// Returns the set and row within it of pooled row `row`.
    fn locate(sets: &[SupervoxelSet], mut row: usize) -> (usize, usize) {
        for (index, set) in sets.iter().enumerate() {
            if row < set.descriptors.nrows() {
                return (index, row);
            }
            row -= set.descriptors.nrows();
        }
        panic!("row {row} is past the pooled rows");
    }

    #[test]
    fn population_zscore_uses_population_sd() {
        // Column [1, 2, 3, 4]: mean 2.5, population variance 1.25.
        let rows = Array2::from_shape_vec((4, 2), vec![1.0, 7.0, 2.0, 7.0, 3.0, 7.0, 4.0, 7.0])
            .expect("shape");
        let (mean, scale) = zscore_parameters(rows.view());
        assert_eq!(mean, vec![2.5, 7.0]);
        assert_eq!(scale, vec![1.25f64.sqrt(), 1.0]);
    }

    #[test]
    fn population_truncates_candidates_to_rows() {
        // Two patients with 2 supervoxels each: N = 4, so K ≤ 3.
        let mut sets = synthetic_sets(2, 3);
        for set in &mut sets {
            set.descriptors = set.descriptors.slice(ndarray::s![0..2, ..]).to_owned();
            set.voxel_counts.truncate(2);
            set.depth_sums.truncate(2);
            set.entropy_sums.truncate(2);
        }
        let fit = fit_population("MR_T1", sets, &HabitatConfig::default(), 42).expect("fit");
        assert!(fit.k <= 3);
        let skipped: Vec<usize> = fit
            .candidates
            .iter()
            .filter(|c| c.skipped.is_some())
            .map(|c| c.k)
            .collect();
        assert_eq!(skipped, (4..=10).collect::<Vec<_>>());
    }

    #[test]
    fn population_without_rows_is_an_error() {
        let error = fit_population("PET", Vec::new(), &HabitatConfig::default(), 42).unwrap_err();
        assert!(matches!(error, PopulationError::NoRows { .. }), "{error}");
    }

    #[test]
    fn population_identical_for_any_center_split_and_order() {
        let config = HabitatConfig::default();
        let sets = synthetic_sets(12, 4);
        let pooled = fit_population("MR_T1", sets.clone(), &config, 42).expect("fit");

        // The same sets split over three centers and in reverse order.
        let mut split = sets.clone();
        split.reverse();
        for (index, set) in split.iter_mut().enumerate() {
            set.center = ["A", "B", "C"][index % 3].to_string();
        }
        let regrouped = fit_population("MR_T1", split, &config, 42).expect("fit");
        assert_eq!(pooled.centroids, regrouped.centroids);
        assert_eq!(pooled.mean, regrouped.mean);
        assert_eq!(pooled.scale, regrouped.scale);
        assert_eq!(pooled.candidates, regrouped.candidates);
        assert_eq!(pooled.assignments, regrouped.assignments);
    }

    #[test]
    fn population_matches_single_site_fit() {
        // The reference: pool the rows by hand in (pseudonym, index) order,
        // z-score with the population SD and run k-means with K = 3 and the
        // space's seed. The population fit must give the same centroids.
        let config = HabitatConfig {
            k: KChoice::Fixed(3),
            ..HabitatConfig::default()
        };
        let mut sets = synthetic_sets(8, 5);
        let mut shuffled = sets.clone();
        shuffled.swap(0, 7);
        shuffled.swap(2, 5);
        let fit = fit_population("MR_T1", shuffled, &config, 42).expect("fit");

        sets.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
        let n: usize = sets.iter().map(|s| s.descriptors.nrows()).sum();
        let flat: Vec<f64> = sets
            .iter()
            .flat_map(|s| s.descriptors.iter().copied())
            .collect();
        let mut rows = Array2::from_shape_vec((n, 2), flat).expect("shape");
        for column in 0..2 {
            let values = rows.column(column).to_owned();
            let mean = values.iter().sum::<f64>() / n as f64;
            let sd =
                (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt();
            rows.column_mut(column).mapv_inplace(|v| (v - mean) / sd);
        }
        let params = KMeansParams {
            n_init: 10,
            ..KMeansParams::new(3)
        };
        let reference =
            kmeans(rows.view(), None, &params, space_seed(42, "MR_T1")).expect("k-means");
        assert_eq!(fit.centroids, reference.centroids);
        assert_eq!(
            fit.candidates,
            vec![CandidateScore {
                k: 3,
                value: None,
                skipped: None
            }]
        );
    }

    #[test]
    fn nearest_centroid_ties_to_lower_index() {
        let centroids = Array2::from_shape_vec((2, 1), vec![-1.0, 1.0]).expect("shape");
        assert_eq!(nearest_centroid(&[0.0], centroids.view()), 0);
        assert_eq!(nearest_centroid(&[0.5], centroids.view()), 1);
    }
}
