//! ComBat harmonisation of radiomic features across centres (batches)
//! against one reference batch whose values stay unchanged (the M-ComBat
//! variant), without covariates.
//!
//! Let, for feature g and batch b with n_b patients:
//!
//! ```text
//! x_ig     value of patient i
//! α_g      mean of the reference batch
//! σ_g²     population variance (divisor n_ref) of the reference batch
//! s_ig     = (x_ig − α_g) / σ_g, the standardised value
//! γ̂_bg     = mean of s_ig over batch b
//! δ̂²_bg    = sample variance (divisor n_b − 1) of s_ig over batch b
//! ```
//!
//! Empirical Bayes (Johnson et al. 2007) treats γ_bg and δ²_bg of one batch
//! as draws from a normal and an inverse-gamma prior across features, with
//! hyper-parameters estimated by moments over the G features:
//!
//! ```text
//! γ̄_b = mean_g γ̂_bg      τ²_b = var_g γ̂_bg              (divisor G − 1)
//! m_b = mean_g δ̂²_bg     v_b  = var_g δ̂²_bg             (divisor G − 1)
//! a_b = (2 v_b + m_b²) / v_b                 b_b = (m_b v_b + m_b³) / v_b
//! ```
//!
//! The parametric posterior iterates, from γ* = γ̂ and δ² = δ̂², until the
//! largest relative change is at most 1e-4:
//!
//! ```text
//! γ*_bg  = (n_b τ²_b γ̂_bg + δ²_bg γ̄_b) / (n_b τ²_b + δ²_bg)
//! δ²_bg  = (½ Σ_i∈b (s_ig − γ*_bg)² + b_b) / (n_b / 2 + a_b − 1)
//! ```
//!
//! and the harmonised value of patient i in batch b is
//! `x*_ig = σ_g (s_ig − γ*_bg) / δ*_bg + α_g`. The reference batch keeps its
//! values (γ* = 0, δ* = 1).
//!
//! # Sufficient statistics
//!
//! Every step needs only, per batch and feature, n_b, Σx and Σx², which a
//! site sends as [`BatchSums`]. The EB iteration and the non-parametric
//! likelihood need Σ_i (s_i − γ)² for values γ other than the batch mean,
//! and that follows from the sums by
//!
//! ```text
//! Σ_i∈b (s_i − γ)² = (n_b − 1) δ̂²_raw + n_b (γ̂ − γ)²
//! ```
//!
//! where δ̂²_raw is the sample variance before a zero is replaced by 1. The
//! harmonised values are computed at the worker by [`ComBatFit::apply`].
//!
//! Each non-reference batch's estimates depend only on the reference batch
//! and that batch. A centre that joins later can be fitted against the same
//! reference sums, and the other centres' estimates do not change.
//!
//! Source: W. E. Johnson, C. Li and A. Rabinovic (2007), "Adjusting batch
//! effects in microarray expression data using empirical Bayes methods",
//! Biostatistics 8(1):118–127.
//!
//! Reference implementation: neuroCombat 0.2.12 for Python,
//! `neuroCombat(dat, covars, batch_col, ref_batch=..., eb=..., parametric=...,
//! mean_only=...)` without covariates. With `ref_batch` set, it estimates α
//! as the reference batch mean and σ² as the mean squared deviation over the
//! reference patients only, as here. The deviations from it are listed on
//! [`ComBatFit::fit`].

use std::collections::HashSet;

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::StatsError;
use super::validate::{check_finite, check_finite_matrix};

mod batch_sums;
mod empirical_bayes;

pub use batch_sums::BatchSums;

use empirical_bayes::estimate_batch;

/// Variant of the ComBat adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComBatOptions {
    /// Parametric priors (normal and inverse gamma). If false, the
    /// non-parametric posterior of Johnson et al. (2007), which weights the
    /// other features' estimates by their likelihood, is used.
    pub parametric: bool,
    /// Location-only adjustment: δ* = 1 for every batch and feature.
    pub mean_only: bool,
    /// Empirical Bayes shrinkage of the batch estimates. If false, γ* = γ̂
    /// and δ*² = δ̂².
    pub eb: bool,
}

impl Default for ComBatOptions {
    /// Parametric empirical Bayes on location and scale, the neuroCombat
    /// defaults.
    fn default() -> Self {
        Self {
            parametric: true,
            mean_only: false,
            eb: true,
        }
    }
}

/// Empirical Bayes hyper-parameters of one batch, estimated across features.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchPrior {
    /// γ̄, mean of γ̂ over features.
    pub gamma_bar: f64,
    /// τ², variance (divisor G − 1) of γ̂ over features.
    pub tau2: f64,
    /// Shape a of the inverse-gamma prior on δ². `None` for `mean_only`, and
    /// when every δ̂² is equal, because the prior is then a point mass at
    /// that value.
    pub a: Option<f64>,
    /// Scale b of the inverse-gamma prior on δ², `None` whenever `a` is.
    pub b: Option<f64>,
}

/// ComBat estimates of one non-reference batch, one value per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchEstimates {
    /// Batch (centre) name.
    pub batch: String,
    /// Number of patients the estimates come from.
    pub n: usize,
    /// γ̂, mean of the standardised values.
    pub gamma_hat: Vec<f64>,
    /// δ̂², sample variance of the standardised values, with 0 replaced by 1
    /// and every value 1 for `mean_only` (neuroCombat's `delta_hat`).
    pub delta_hat: Vec<f64>,
    /// γ*, the location adjustment. 0 for the features in `unadjusted_features`.
    pub gamma_star: Vec<f64>,
    /// δ*², the scale adjustment as a variance. 1 for the features in
    /// `unadjusted_features`.
    pub delta_star: Vec<f64>,
    /// Features constant within this batch (with at least 2 patients), whose
    /// values [`ComBatFit::apply`] returns unchanged, in ascending order.
    pub unadjusted_features: Vec<usize>,
    /// Hyper-parameters, `None` without empirical Bayes.
    pub prior: Option<BatchPrior>,
    /// Rounds of the parametric EB iteration, 0 for the other variants.
    pub iterations: usize,
}

/// A ComBat fit: the frozen reference statistics and each other batch's
/// adjustment.
///
/// It serialises with serde, so the coordinator can store it with the other
/// fitted parameters and send it to the workers that call
/// [`ComBatFit::apply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComBatFit {
    /// Name of the reference batch.
    pub reference_batch: String,
    /// Options of the fit.
    pub options: ComBatOptions,
    /// α, mean of each feature in the reference batch.
    pub reference_mean: Vec<f64>,
    /// σ², population variance of each feature in the reference batch, with
    /// zeros replaced (neuroCombat's `var.pooled`).
    pub reference_variance: Vec<f64>,
    /// Features with zero reference variance, whose σ² is the median of the
    /// non-zero reference variances, in ascending order.
    pub zero_variance_features: Vec<usize>,
    /// Estimates of each non-reference batch, in input order.
    pub batches: Vec<BatchEstimates>,
}

impl ComBatFit {
    /// Fits ComBat with `reference` as the reference batch and `others` as
    /// the batches to map onto it.
    ///
    /// Matches neuroCombat 0.2.12 (`ref_batch` set, no covariates),
    /// including two behaviours of its code:
    ///
    /// - The EB iteration stops when `max(|Δγ| / γ_old, |Δδ²| / δ²_old) ≤
    ///   1e-4` with the signed γ_old, so features with negative γ do not hold
    ///   it back.
    /// - The `mean_only` parametric posterior is `(τ² γ̂ + γ̄) / (τ² + 1)`,
    ///   with n and δ² both set to 1.
    ///
    /// It deviates from neuroCombat 0.2.12 here:
    ///
    /// - A zero reference variance is replaced by the median of the non-zero
    ///   reference variances. neuroCombat 0.2.12 takes the median of the mask
    ///   `var_pooled != 0`, which is 1.0 when more than half the features
    ///   vary; the R neuroCombat (R/neuroCombat in the ComBatHarmonization
    ///   repository) uses the non-zero variances, as here.
    /// - A feature constant within a batch of at least 2 patients is left
    ///   unadjusted for that batch (γ* = 0, δ* = 1). It still enters the
    ///   batch's priors with δ̂² = 1, as in neuroCombat, so the other
    ///   features' estimates are neuroCombat's.
    /// - The non-parametric likelihoods are normalised in log space, so they
    ///   cannot underflow to 0/0 (NaN in neuroCombat) for large batches.
    ///
    /// # Errors
    ///
    /// - [`StatsError::InvalidBatchSums`] for malformed sums, a feature count
    ///   that differs from the reference, or a reference batch in which every
    ///   feature is constant.
    /// - [`StatsError::BatchTooSmall`] if the reference batch has fewer than
    ///   2 patients, or another batch fewer than 2 (1 with `mean_only`).
    /// - [`StatsError::DuplicateBatch`] if a batch name appears twice,
    ///   including the reference name among `others`.
    /// - [`StatsError::TooFewObservations`] with empirical Bayes and fewer
    ///   than 2 features, because the priors need a variance across features.
    /// - [`StatsError::EmpiricalBayesNotConverged`] if the parametric
    ///   iteration has not stopped after 10,000 rounds.
    pub fn fit(
        reference: &BatchSums,
        others: &[BatchSums],
        options: ComBatOptions,
    ) -> Result<Self, StatsError> {
        let features = reference.features();
        check_inputs(reference, others, options)?;

        let reference_mean: Vec<f64> = (0..features).map(|g| reference.mean(g)).collect();
        let (reference_variance, zero_variance_features) = reference_variance(reference)?;

        let batches = others
            .iter()
            .map(|sums| estimate_batch(sums, &reference_mean, &reference_variance, options))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Self {
            reference_batch: reference.batch.clone(),
            options,
            reference_mean,
            reference_variance,
            zero_variance_features,
            batches,
        })
    }

    /// Returns the estimates of `batch`, or `None` for the reference batch
    /// and unknown names.
    pub fn batch(&self, batch: &str) -> Option<&BatchEstimates> {
        self.batches
            .iter()
            .find(|estimates| estimates.batch == batch)
    }

    /// Harmonises `x` (patients × features) of the patients of `batch`:
    /// `x* = σ ((x − α)/σ − γ*) / δ* + α`, per feature, with σ = √σ² and
    /// δ* = √δ*².
    ///
    /// The reference batch is returned unchanged, bit for bit, as are the
    /// batch's `unadjusted_features`.
    ///
    /// # Errors
    ///
    /// - [`StatsError::UnknownBatch`] if `batch` is neither the reference nor
    ///   a fitted batch.
    /// - [`StatsError::ColumnMismatch`] if `x` has another number of features
    ///   than the fit.
    /// - [`StatsError::NonFiniteCell`] for the first NaN or infinity in `x`.
    /// - [`StatsError::LengthMismatch`], [`StatsError::NonFinite`] or
    ///   [`StatsError::InvalidParameter`] for a malformed fit, which only
    ///   deserialising can produce.
    pub fn apply(&self, batch: &str, x: ArrayView2<f64>) -> Result<Array2<f64>, StatsError> {
        let features = self.reference_mean.len();
        if x.ncols() != features {
            return Err(StatsError::ColumnMismatch {
                input: "x",
                expected: features,
                found: x.ncols(),
            });
        }
        check_finite_matrix("x", x)?;
        if batch == self.reference_batch {
            return Ok(x.to_owned());
        }
        let estimates = self.batch(batch).ok_or_else(|| StatsError::UnknownBatch {
            batch: batch.to_owned(),
            known: self.batch_names(),
        })?;
        self.check_lengths(estimates)?;

        let mut adjusted = x.to_owned();
        let unadjusted: HashSet<usize> = estimates.unadjusted_features.iter().copied().collect();
        for (feature, mut column) in adjusted.axis_iter_mut(Axis(1)).enumerate() {
            if unadjusted.contains(&feature) {
                continue;
            }
            let mean = self.reference_mean[feature];
            let sd = self.reference_variance[feature].sqrt();
            let gamma = estimates.gamma_star[feature];
            let delta = estimates.delta_star[feature].sqrt();
            // Same operation order as neuroCombat 0.2.12 `adjust_data_final`.
            column.mapv_inplace(|value| ((value - mean) / sd - gamma) / delta * sd + mean);
        }
        Ok(adjusted)
    }

    /// Lists the reference and fitted batch names, for error messages.
    fn batch_names(&self) -> String {
        std::iter::once(format!("{:?} (reference)", self.reference_batch))
            .chain(
                self.batches
                    .iter()
                    .map(|estimates| format!("{:?}", estimates.batch)),
            )
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rejects a fit whose per-feature vectors differ in length or hold a
    /// non-finite value or a variance that is not positive.
    fn check_lengths(&self, estimates: &BatchEstimates) -> Result<(), StatsError> {
        let features = self.reference_mean.len();
        let lengths = [
            ("reference_variance", self.reference_variance.len()),
            ("gamma_star", estimates.gamma_star.len()),
            ("delta_star", estimates.delta_star.len()),
        ];
        for (name, length) in lengths {
            if length != features {
                return Err(StatsError::LengthMismatch {
                    left_name: "reference_mean",
                    left: features,
                    right_name: name,
                    right: length,
                });
            }
        }
        check_finite("reference_variance", &self.reference_variance)?;
        check_finite("gamma_star", &estimates.gamma_star)?;
        check_finite("delta_star", &estimates.delta_star)?;
        for (name, values) in [
            ("reference_variance", &self.reference_variance),
            ("delta_star", &estimates.delta_star),
        ] {
            if let Some(&value) = values.iter().find(|&&value| value <= 0.0) {
                return Err(StatsError::InvalidParameter {
                    name,
                    value,
                    expected: "a positive variance",
                });
            }
        }
        Ok(())
    }
}

/// Validates the sums, batch names and sizes before fitting.
fn check_inputs(
    reference: &BatchSums,
    others: &[BatchSums],
    options: ComBatOptions,
) -> Result<(), StatsError> {
    reference.check_consistent()?;
    if reference.n < 2 {
        return Err(StatsError::BatchTooSmall {
            batch: reference.batch.clone(),
            n: reference.n,
            requirement: "the reference batch needs at least 2 for its variance",
        });
    }
    let features = reference.features();
    if options.eb && features < 2 {
        return Err(StatsError::TooFewObservations {
            input: "features for the empirical Bayes prior",
            count: features,
            minimum: 2,
        });
    }

    let mut names = HashSet::from([reference.batch.as_str()]);
    for sums in others {
        sums.check_consistent()?;
        check_feature_count(sums, features)?;
        if !names.insert(sums.batch.as_str()) {
            return Err(StatsError::DuplicateBatch {
                batch: sums.batch.clone(),
            });
        }
        if sums.n == 0 {
            return Err(StatsError::BatchTooSmall {
                batch: sums.batch.clone(),
                n: 0,
                requirement: "a batch needs at least 1",
            });
        }
        if sums.n < 2 && !options.mean_only {
            return Err(StatsError::BatchTooSmall {
                batch: sums.batch.clone(),
                n: sums.n,
                requirement: "a batch needs at least 2 for its variance; set mean_only for single-patient batches",
            });
        }
    }
    Ok(())
}

/// Rejects sums with a feature count other than `features`.
pub(super) fn check_feature_count(sums: &BatchSums, features: usize) -> Result<(), StatsError> {
    if sums.features() != features {
        return Err(StatsError::InvalidBatchSums {
            batch: sums.batch.clone(),
            reason: format!(
                "{} features, but the reference batch has {features}",
                sums.features()
            ),
        });
    }
    Ok(())
}

/// Computes σ² of each feature in the reference batch (divisor n_ref) and
/// replaces zeros by the median of the non-zero values. Returns the
/// variances and the replaced features.
fn reference_variance(reference: &BatchSums) -> Result<(Vec<f64>, Vec<usize>), StatsError> {
    let n = reference.n as f64;
    let mut variance: Vec<f64> = (0..reference.features())
        .map(|g| reference.centred_square_sum(g) / n)
        .collect();
    let zero_features: Vec<usize> = (0..variance.len())
        .filter(|&g| variance[g] == 0.0)
        .collect();
    if zero_features.is_empty() {
        return Ok((variance, zero_features));
    }

    let mut non_zero: Vec<f64> = variance.iter().copied().filter(|&v| v > 0.0).collect();
    if non_zero.is_empty() {
        return Err(StatsError::InvalidBatchSums {
            batch: reference.batch.clone(),
            reason: "every feature is constant in the reference batch, so ComBat has no scale to map onto".to_owned(),
        });
    }
    non_zero.sort_by(f64::total_cmp);
    let middle = non_zero.len() / 2;
    let median = if non_zero.len().is_multiple_of(2) {
        (non_zero[middle - 1] + non_zero[middle]) / 2.0
    } else {
        non_zero[middle]
    };
    for &g in &zero_features {
        variance[g] = median;
    }
    Ok((variance, zero_features))
}

#[cfg(test)]
mod tests;
