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

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::StatsError;
use super::icc::CompensatedSum;
use super::validate::{check_finite, check_finite_matrix};

/// Stopping rule of the parametric EB iteration: the maximum relative change
/// of γ* and δ*², as neuroCombat 0.2.12 `it_sol(conv=0.0001)`.
const CONVERGENCE_TOLERANCE: f64 = 1e-4;

/// Upper bound on EB iterations, which neuroCombat does not have. On the
/// test fixture the iteration stops after 3 or 4 rounds.
const MAX_ITERATIONS: usize = 10_000;

/// A centred sum of squares below this many machine epsilons times Σ(x − shift)²
/// is rounding noise, so the feature is constant in that batch.
const ROUNDING_FACTOR: f64 = 16.0;

/// Per-feature sums of one batch (centre), which a site sends instead of its
/// patient rows.
///
/// The sums are taken over `x − shift` for a per-feature shift. A shift near
/// the data keeps the variance `Σ(x − shift)² − (Σ(x − shift))² / n` from
/// cancelling for features whose mean is large against their spread.
/// [`BatchSums::from_rows`] uses the batch's first patient as the shift, and
/// [`BatchSums::from_raw_sums`] accepts plain Σx and Σx² (shift 0).
///
/// NOTE: unlike [`ComBatFit`], this type has no serde derive, because the
/// workspace builds ndarray without its `serde` feature.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSums {
    /// Batch (centre) name.
    pub batch: String,
    /// Number of patients.
    pub n: usize,
    /// Value subtracted from feature g before summing, one per feature.
    pub shift: Array1<f64>,
    /// Σ_i (x_ig − shift_g), one per feature.
    pub sum: Array1<f64>,
    /// Σ_i (x_ig − shift_g)², one per feature.
    pub sum_squares: Array1<f64>,
}

impl BatchSums {
    /// Computes the compensated sums of `x` (patients × features) for the
    /// batch `batch`, with the first patient's values as the shift.
    ///
    /// # Errors
    ///
    /// [`StatsError::NonFiniteCell`] for the first NaN or infinity.
    pub fn from_rows(batch: impl Into<String>, x: ArrayView2<f64>) -> Result<Self, StatsError> {
        check_finite_matrix("x", x)?;
        let features = x.ncols();
        let shift = match x.outer_iter().next() {
            Some(first) => first.to_owned(),
            None => Array1::zeros(features),
        };

        let mut sum = vec![CompensatedSum::default(); features];
        let mut sum_squares = vec![CompensatedSum::default(); features];
        for patient in x.axis_iter(Axis(0)) {
            for (feature, &value) in patient.iter().enumerate() {
                let centred = value - shift[feature];
                sum[feature].add(centred);
                sum_squares[feature].add(centred * centred);
            }
        }

        Ok(Self {
            batch: batch.into(),
            n: x.nrows(),
            shift,
            sum: sum.iter().map(CompensatedSum::total).collect(),
            sum_squares: sum_squares.iter().map(CompensatedSum::total).collect(),
        })
    }

    /// Wraps plain per-feature sums Σx and Σx² (shift 0).
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidBatchSums`] if the two arrays differ in length or
    /// contain a non-finite value.
    pub fn from_raw_sums(
        batch: impl Into<String>,
        n: usize,
        sum: Array1<f64>,
        sum_squares: Array1<f64>,
    ) -> Result<Self, StatsError> {
        let sums = Self {
            batch: batch.into(),
            n,
            shift: Array1::zeros(sum.len()),
            sum,
            sum_squares,
        };
        sums.check_consistent()?;
        Ok(sums)
    }

    /// Returns the number of features.
    pub fn features(&self) -> usize {
        self.sum.len()
    }

    /// Adds the sums of `other`, more patients of the same batch, after
    /// moving them to `self.shift` with d = other.shift − self.shift:
    /// `Σ(x − s) = Σ(x − s_o) + n_o d` and
    /// `Σ(x − s)² = Σ(x − s_o)² + 2 d Σ(x − s_o) + n_o d²`.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidBatchSums`] if the batch names or the feature
    /// counts differ, or either side is malformed.
    pub fn merge(&mut self, other: &BatchSums) -> Result<(), StatsError> {
        self.check_consistent()?;
        other.check_consistent()?;
        if other.batch != self.batch {
            return Err(StatsError::InvalidBatchSums {
                batch: self.batch.clone(),
                reason: format!(
                    "cannot merge sums of batch {:?}; rename one batch if they are meant to be pooled",
                    other.batch
                ),
            });
        }
        check_feature_count(other, self.features())?;
        if other.n == 0 {
            return Ok(());
        }
        if self.n == 0 {
            *self = other.clone();
            return Ok(());
        }

        let m = other.n as f64;
        for feature in 0..self.features() {
            let d = other.shift[feature] - self.shift[feature];
            let other_sum = other.sum[feature];
            self.sum[feature] += other_sum + m * d;
            self.sum_squares[feature] +=
                other.sum_squares[feature] + 2.0 * d * other_sum + m * d * d;
        }
        self.n += other.n;
        Ok(())
    }

    /// Returns the mean of feature g.
    fn mean(&self, feature: usize) -> f64 {
        self.shift[feature] + self.sum[feature] / self.n as f64
    }

    /// Returns Σ_i (x_ig − mean)², set to 0 where it is within rounding of 0.
    fn centred_square_sum(&self, feature: usize) -> f64 {
        let sum = self.sum[feature];
        let squares = self.sum_squares[feature];
        let centred = squares - sum * sum / self.n as f64;
        if centred <= ROUNDING_FACTOR * f64::EPSILON * squares {
            0.0
        } else {
            centred
        }
    }

    /// Rejects arrays of different lengths and non-finite values.
    fn check_consistent(&self) -> Result<(), StatsError> {
        let features = self.sum.len();
        if self.sum_squares.len() != features || self.shift.len() != features {
            return Err(StatsError::InvalidBatchSums {
                batch: self.batch.clone(),
                reason: format!(
                    "sum has {} features, sum_squares {} and shift {}",
                    features,
                    self.sum_squares.len(),
                    self.shift.len()
                ),
            });
        }
        for (name, values) in [
            ("shift", &self.shift),
            ("sum", &self.sum),
            ("sum_squares", &self.sum_squares),
        ] {
            if let Some(feature) = values.iter().position(|value| !value.is_finite()) {
                return Err(StatsError::InvalidBatchSums {
                    batch: self.batch.clone(),
                    reason: format!("{name} of feature {feature} is {}", values[feature]),
                });
            }
        }
        Ok(())
    }
}

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
fn check_feature_count(sums: &BatchSums, features: usize) -> Result<(), StatsError> {
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

/// Standardised location and scale of one batch, before empirical Bayes.
struct NaiveEstimates {
    /// γ̂ per feature.
    gamma_hat: Vec<f64>,
    /// δ̂² per feature as neuroCombat uses it: 0 replaced by 1, and 1 for
    /// `mean_only`.
    delta_hat: Vec<f64>,
    /// Σ_i (s_i − γ̂)² per feature, (n − 1) δ̂²_raw in the module notation.
    centred_square_sum: Vec<f64>,
    /// Features constant within the batch (n ≥ 2 only).
    constant: Vec<usize>,
}

/// Computes γ̂ and δ̂² of one batch from its sums and the reference α, σ².
fn naive_estimates(
    sums: &BatchSums,
    reference_mean: &[f64],
    reference_variance: &[f64],
    mean_only: bool,
) -> NaiveEstimates {
    let n = sums.n as f64;
    let features = sums.features();
    let mut estimates = NaiveEstimates {
        gamma_hat: Vec::with_capacity(features),
        delta_hat: Vec::with_capacity(features),
        centred_square_sum: Vec::with_capacity(features),
        constant: Vec::new(),
    };
    for g in 0..features {
        let sd = reference_variance[g].sqrt();
        estimates
            .gamma_hat
            .push((sums.mean(g) - reference_mean[g]) / sd);

        let centred = if sums.n >= 2 {
            sums.centred_square_sum(g) / reference_variance[g]
        } else {
            0.0
        };
        estimates.centred_square_sum.push(centred);
        if sums.n >= 2 && centred == 0.0 {
            estimates.constant.push(g);
        }

        let delta_hat = if mean_only || centred == 0.0 {
            1.0
        } else {
            centred / (n - 1.0)
        };
        estimates.delta_hat.push(delta_hat);
    }
    estimates
}

/// Computes the estimates of one non-reference batch.
fn estimate_batch(
    sums: &BatchSums,
    reference_mean: &[f64],
    reference_variance: &[f64],
    options: ComBatOptions,
) -> Result<BatchEstimates, StatsError> {
    let naive = naive_estimates(sums, reference_mean, reference_variance, options.mean_only);
    let n = sums.n as f64;

    let mut prior = None;
    let mut iterations = 0;
    let (mut gamma_star, mut delta_star) = if !options.eb {
        (naive.gamma_hat.clone(), naive.delta_hat.clone())
    } else {
        let batch_prior = estimate_prior(&naive, options.mean_only);
        prior = Some(batch_prior);
        if options.mean_only && options.parametric {
            // neuroCombat 0.2.12 and the R neuroCombat call postmean(γ̂, γ̄, 1, 1, τ²) here.
            let gamma = naive
                .gamma_hat
                .iter()
                .map(|&gamma_hat| {
                    (batch_prior.tau2 * gamma_hat + batch_prior.gamma_bar)
                        / (batch_prior.tau2 + 1.0)
                })
                .collect();
            (gamma, vec![1.0; naive.gamma_hat.len()])
        } else if options.parametric {
            let solution = parametric_posterior(&naive, batch_prior, n, &sums.batch)?;
            iterations = solution.iterations;
            (solution.gamma, solution.delta)
        } else {
            non_parametric_posterior(&naive, n)
        }
    };

    for &g in &naive.constant {
        gamma_star[g] = 0.0;
        delta_star[g] = 1.0;
    }

    Ok(BatchEstimates {
        batch: sums.batch.clone(),
        n: sums.n,
        gamma_hat: naive.gamma_hat,
        delta_hat: naive.delta_hat,
        gamma_star,
        delta_star,
        unadjusted_features: naive.constant,
        prior,
        iterations,
    })
}

/// Estimates the batch's hyper-parameters by moments across features
/// (neuroCombat 0.2.12 `fit_LS_model_and_find_priors`, `aprior`, `bprior`).
fn estimate_prior(naive: &NaiveEstimates, mean_only: bool) -> BatchPrior {
    let (gamma_bar, tau2) = mean_and_sample_variance(&naive.gamma_hat);
    let (m, v) = mean_and_sample_variance(&naive.delta_hat);
    let (a, b) = if mean_only || v == 0.0 {
        (None, None)
    } else {
        (Some((2.0 * v + m * m) / v), Some((m * v + m * m * m) / v))
    };
    BatchPrior {
        gamma_bar,
        tau2,
        a,
        b,
    }
}

/// Returns the mean and the variance with divisor len − 1 (len ≥ 2).
fn mean_and_sample_variance(values: &[f64]) -> (f64, f64) {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    (mean, squares / (count - 1.0))
}

/// Parametric EB posterior and the number of rounds it took.
struct ParametricSolution {
    gamma: Vec<f64>,
    delta: Vec<f64>,
    iterations: usize,
}

/// Iterates the parametric posterior of γ and δ² until the stopping rule of
/// neuroCombat 0.2.12 `it_sol` holds.
fn parametric_posterior(
    naive: &NaiveEstimates,
    prior: BatchPrior,
    n: f64,
    batch: &str,
) -> Result<ParametricSolution, StatsError> {
    let features = naive.gamma_hat.len();
    let mean_delta = naive.delta_hat.iter().sum::<f64>() / features as f64;
    let mut gamma_old = naive.gamma_hat.clone();
    let mut delta_old = naive.delta_hat.clone();
    let mut gamma_new = vec![0.0; features];
    let mut delta_new = vec![0.0; features];

    let mut change = f64::NAN;
    for iteration in 1..=MAX_ITERATIONS {
        for g in 0..features {
            let gamma_hat = naive.gamma_hat[g];
            gamma_new[g] = (prior.tau2 * n * gamma_hat + delta_old[g] * prior.gamma_bar)
                / (prior.tau2 * n + delta_old[g]);
            // Σ_i (s_i − γ)² from the sums, by the module's identity.
            let sum2 = naive.centred_square_sum[g] + n * (gamma_hat - gamma_new[g]).powi(2);
            delta_new[g] = match (prior.a, prior.b) {
                (Some(a), Some(b)) => (0.5 * sum2 + b) / (n / 2.0 + a - 1.0),
                // All δ̂² equal (v = 0): a and b are infinite and b / a → m.
                _ => mean_delta,
            };
        }

        change = neurocombat_change(&gamma_new, &gamma_old, &delta_new, &delta_old);
        std::mem::swap(&mut gamma_old, &mut gamma_new);
        std::mem::swap(&mut delta_old, &mut delta_new);
        // Python's `while change > conv` also stops on NaN.
        let keep_iterating = change > CONVERGENCE_TOLERANCE;
        if !keep_iterating {
            return Ok(ParametricSolution {
                gamma: gamma_old,
                delta: delta_old,
                iterations: iteration,
            });
        }
    }
    Err(StatsError::EmpiricalBayesNotConverged {
        batch: batch.to_owned(),
        iterations: MAX_ITERATIONS,
        change,
    })
}

/// Computes neuroCombat 0.2.12's stopping statistic,
/// `max((|γ_new − γ_old| / γ_old).max(), (|δ_new − δ_old| / δ_old).max())`:
/// NumPy's `max` returns NaN if any ratio is NaN, and Python's `max(a, b)`
/// returns `a` unless `b > a`. The division is by the signed γ_old.
fn neurocombat_change(
    gamma_new: &[f64],
    gamma_old: &[f64],
    delta_new: &[f64],
    delta_old: &[f64],
) -> f64 {
    let numpy_max = |new: &[f64], old: &[f64]| {
        let mut maximum = f64::NEG_INFINITY;
        for (&value, &previous) in new.iter().zip(old) {
            let ratio = (value - previous).abs() / previous;
            if ratio.is_nan() {
                return f64::NAN;
            }
            maximum = maximum.max(ratio);
        }
        maximum
    };
    let gamma_change = numpy_max(gamma_new, gamma_old);
    let delta_change = numpy_max(delta_new, delta_old);
    if delta_change > gamma_change {
        delta_change
    } else {
        gamma_change
    }
}

/// Computes the non-parametric posterior of Johnson et al. (2007), as
/// neuroCombat 0.2.12 `int_eprior`: for feature g, the other features' (γ̂_j,
/// δ̂²_j) are weighted by the likelihood of feature g's standardised values,
///
/// ```text
/// L_j = (2π δ̂²_j)^(−n/2) exp(−Σ_i (s_ig − γ̂_j)² / (2 δ̂²_j))
/// γ*_g = Σ_j≠g γ̂_j L_j / Σ_j≠g L_j      δ*²_g = Σ_j≠g δ̂²_j L_j / Σ_j≠g L_j
/// ```
///
/// with Σ_i (s_ig − γ̂_j)² = (n − 1) δ̂²_raw,g + n (γ̂_g − γ̂_j)² from the sums.
/// The weights are formed as exp(log L_j − max log L), which leaves the ratios
/// unchanged but cannot underflow.
fn non_parametric_posterior(naive: &NaiveEstimates, n: f64) -> (Vec<f64>, Vec<f64>) {
    let features = naive.gamma_hat.len();
    let mut gamma_star = Vec::with_capacity(features);
    let mut delta_star = Vec::with_capacity(features);
    let mut log_likelihood = vec![0.0; features];

    for g in 0..features {
        let mut maximum = f64::NEG_INFINITY;
        for j in (0..features).filter(|&j| j != g) {
            let delta = naive.delta_hat[j];
            let sum2 =
                naive.centred_square_sum[g] + n * (naive.gamma_hat[g] - naive.gamma_hat[j]).powi(2);
            // The common factor (2π)^(−n/2) cancels in the ratios.
            log_likelihood[j] = -0.5 * n * delta.ln() - sum2 / (2.0 * delta);
            maximum = maximum.max(log_likelihood[j]);
        }

        let mut weight_sum = 0.0;
        let mut gamma_sum = 0.0;
        let mut delta_sum = 0.0;
        for j in (0..features).filter(|&j| j != g) {
            let weight = (log_likelihood[j] - maximum).exp();
            weight_sum += weight;
            gamma_sum += naive.gamma_hat[j] * weight;
            delta_sum += naive.delta_hat[j] * weight;
        }
        gamma_star.push(gamma_sum / weight_sum);
        delta_star.push(delta_sum / weight_sum);
    }
    (gamma_star, delta_star)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ndarray::{Array2, ArrayView1, array, s};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use serde::Deserialize;

    use super::*;

    /// Agreement with neuroCombat 0.2.12 in every variant: relative for α,
    /// σ², δ̂², δ*², the priors and the harmonised values, and absolute for
    /// γ̂ and γ* (in reference SDs, where 0 is a valid value). Measured on the
    /// fixture: at most 2.3e-13 relative (non-parametric harmonised values)
    /// and 1.2e-13 absolute (γ̂ of feature 23). Feature 23 lies about 3500
    /// reference SDs from 0, so the rounding of α alone moves its γ̂ by up to
    /// ε·|α|/σ ≈ 8e-13.
    const NEUROCOMBAT_TOLERANCE: f64 = 1e-11;

    /// Agreement between fits from differently split sums of the same rows,
    /// and with the row-level computation in this module.
    const SUMS_TOLERANCE: f64 = 1e-12;

    const FIXTURE_BATCHES: [&str; 2] = ["site_b", "site_c"];

    /// Feature 5 is constant within site_c in the fixture.
    const CONSTANT_FEATURE: usize = 5;

    #[derive(Deserialize)]
    struct Fixture {
        combat: CombatFixture,
    }

    /// The ComBat part of tests/fixtures/icc_combat.json, written by
    /// make_icc_combat_fixtures.py beside it.
    #[derive(Deserialize)]
    struct CombatFixture {
        reference_batch: String,
        batch: Vec<String>,
        data: Vec<Vec<f64>>,
        cases: BTreeMap<String, NeuroCombatCase>,
    }

    /// Output of neuroCombat 0.2.12 with `ref_batch="site_a"`, keyed by
    /// batch. `None` (JSON null) is a NaN of neuroCombat, which occurs only
    /// in feature 5 (see `assert_matches_neurocombat`).
    #[derive(Deserialize)]
    struct NeuroCombatCase {
        options: ComBatOptions,
        var_pooled: Vec<f64>,
        stand_mean: Vec<f64>,
        gamma_hat: BTreeMap<String, Vec<f64>>,
        delta_hat: BTreeMap<String, Vec<f64>>,
        gamma_star: BTreeMap<String, Vec<Option<f64>>>,
        delta_star: BTreeMap<String, Vec<Option<f64>>>,
        adjusted: Vec<Vec<Option<f64>>>,
        gamma_bar: Option<BTreeMap<String, f64>>,
        t2: Option<BTreeMap<String, f64>>,
        a_prior: Option<BTreeMap<String, f64>>,
        b_prior: Option<BTreeMap<String, f64>>,
    }

    impl CombatFixture {
        fn load() -> Self {
            let text = include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/icc_combat.json"
            ));
            let fixture: Fixture =
                serde_json::from_str(text).expect("icc_combat.json does not parse");
            fixture.combat
        }

        fn patients_of(&self, batch: &str) -> Vec<usize> {
            (0..self.batch.len())
                .filter(|&i| self.batch[i] == batch)
                .collect()
        }

        fn rows_of(&self, batch: &str) -> Array2<f64> {
            let features = self.data[0].len();
            let values: Vec<f64> = self.data.iter().flatten().copied().collect();
            let data = Array2::from_shape_vec((self.data.len(), features), values)
                .expect("fixture rows are ragged");
            data.select(Axis(0), &self.patients_of(batch))
        }

        fn sums_of(&self, batch: &str) -> BatchSums {
            BatchSums::from_rows(batch, self.rows_of(batch).view()).unwrap()
        }

        fn fit(&self, options: ComBatOptions) -> ComBatFit {
            let others: Vec<BatchSums> = FIXTURE_BATCHES
                .iter()
                .map(|batch| self.sums_of(batch))
                .collect();
            ComBatFit::fit(&self.sums_of(&self.reference_batch), &others, options).unwrap()
        }
    }

    fn assert_relative(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
        assert!(
            expected != 0.0,
            "{quantity}: a relative check needs a non-zero baseline"
        );
        let error = (actual - expected).abs() / expected.abs();
        assert!(
            error <= tolerance,
            "{quantity}: got {actual}, expected {expected}, relative error {error:e} > {tolerance:e}"
        );
    }

    fn assert_absolute(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
        let error = (actual - expected).abs();
        assert!(
            error <= tolerance,
            "{quantity}: got {actual}, expected {expected}, absolute error {error:e} > {tolerance:e}"
        );
    }

    /// Compares one fixture case with the fit of the same options.
    fn assert_matches_neurocombat(case_name: &str) {
        let fixture = CombatFixture::load();
        let case = &fixture.cases[case_name];
        let fit = fixture.fit(case.options);
        let features = case.stand_mean.len();
        assert_eq!(fit.reference_mean.len(), features);
        assert!(fit.zero_variance_features.is_empty());

        for g in 0..features {
            assert_relative(
                fit.reference_mean[g],
                case.stand_mean[g],
                NEUROCOMBAT_TOLERANCE,
                &format!("α[{g}]"),
            );
            assert_relative(
                fit.reference_variance[g],
                case.var_pooled[g],
                NEUROCOMBAT_TOLERANCE,
                &format!("σ²[{g}]"),
            );
        }

        for batch in FIXTURE_BATCHES {
            let estimates = fit.batch(batch).unwrap();
            let is_constant = |g: usize| batch == "site_c" && g == CONSTANT_FEATURE;
            for g in 0..features {
                let at = format!("{case_name} {batch} feature {g}");
                assert_absolute(
                    estimates.gamma_hat[g],
                    case.gamma_hat[batch][g],
                    NEUROCOMBAT_TOLERANCE,
                    &format!("γ̂ {at}"),
                );
                assert_relative(
                    estimates.delta_hat[g],
                    case.delta_hat[batch][g],
                    NEUROCOMBAT_TOLERANCE,
                    &format!("δ̂² {at}"),
                );
                if is_constant(g) {
                    // neuroCombat adjusts it (or returns NaN); we leave it unadjusted.
                    assert_eq!(estimates.gamma_star[g], 0.0, "γ* {at}");
                    assert_eq!(estimates.delta_star[g], 1.0, "δ*² {at}");
                } else {
                    let gamma_star = case.gamma_star[batch][g].expect("neuroCombat γ* is NaN");
                    let delta_star = case.delta_star[batch][g].expect("neuroCombat δ*² is NaN");
                    assert_absolute(
                        estimates.gamma_star[g],
                        gamma_star,
                        NEUROCOMBAT_TOLERANCE,
                        &format!("γ* {at}"),
                    );
                    assert_relative(
                        estimates.delta_star[g],
                        delta_star,
                        NEUROCOMBAT_TOLERANCE,
                        &format!("δ*² {at}"),
                    );
                }
            }

            match (&estimates.prior, &case.gamma_bar, &case.t2) {
                (Some(prior), Some(gamma_bar), Some(t2)) => {
                    assert_relative(
                        prior.gamma_bar,
                        gamma_bar[batch],
                        NEUROCOMBAT_TOLERANCE,
                        "γ̄",
                    );
                    assert_relative(prior.tau2, t2[batch], NEUROCOMBAT_TOLERANCE, "τ²");
                }
                (None, None, None) => {}
                _ => panic!("{case_name} {batch}: prior present on one side only"),
            }
            match (prior_shape(estimates), &case.a_prior, &case.b_prior) {
                (Some((a, b)), Some(a_prior), Some(b_prior)) => {
                    assert_relative(a, a_prior[batch], NEUROCOMBAT_TOLERANCE, "a");
                    assert_relative(b, b_prior[batch], NEUROCOMBAT_TOLERANCE, "b");
                }
                (None, None, None) => {}
                _ => panic!("{case_name} {batch}: inverse-gamma prior present on one side only"),
            }

            let rows = fixture.rows_of(batch);
            let adjusted = fit.apply(batch, rows.view()).unwrap();
            for (row, &patient) in fixture.patients_of(batch).iter().enumerate() {
                for g in 0..features {
                    let at = format!("{case_name} {batch} patient {patient} feature {g}");
                    if is_constant(g) {
                        assert_eq!(
                            adjusted[[row, g]],
                            rows[[row, g]],
                            "{at} must stay unadjusted"
                        );
                    } else {
                        let expected = case.adjusted[patient][g]
                            .unwrap_or_else(|| neurocombat_formula(case, batch, g, rows[[row, g]]));
                        assert_relative(adjusted[[row, g]], expected, NEUROCOMBAT_TOLERANCE, &at);
                    }
                }
            }
        }
    }

    /// Recomputes a harmonised value from neuroCombat's own estimates.
    ///
    /// Used where neuroCombat 0.2.12 returns NaN for a finite γ* and δ*²: its
    /// `adjust_data_final` multiplies the batch design by the γ* matrix, so a
    /// NaN γ* of one batch (the 0/0 of the non-parametric weights) becomes
    /// 0 × NaN = NaN for the patients of every batch.
    fn neurocombat_formula(case: &NeuroCombatCase, batch: &str, feature: usize, value: f64) -> f64 {
        let gamma = case.gamma_star[batch][feature].expect("neuroCombat γ* is NaN");
        let delta = case.delta_star[batch][feature].expect("neuroCombat δ*² is NaN");
        let mean = case.stand_mean[feature];
        let sd = case.var_pooled[feature].sqrt();
        ((value - mean) / sd - gamma) / delta.sqrt() * sd + mean
    }

    fn prior_shape(estimates: &BatchEstimates) -> Option<(f64, f64)> {
        let prior = estimates.prior?;
        Some((prior.a?, prior.b?))
    }

    #[test]
    fn combat_parametric_matches_neurocombat() {
        assert_matches_neurocombat("parametric");
    }

    #[test]
    fn combat_non_parametric_matches_neurocombat() {
        assert_matches_neurocombat("non_parametric");
    }

    #[test]
    fn combat_mean_only_matches_neurocombat() {
        assert_matches_neurocombat("mean_only");
    }

    #[test]
    fn combat_non_parametric_mean_only_matches_neurocombat() {
        assert_matches_neurocombat("non_parametric_mean_only");
    }

    #[test]
    fn combat_without_eb_matches_neurocombat() {
        assert_matches_neurocombat("no_eb");
    }

    #[test]
    fn fixture_options_cover_variants() {
        let fixture = CombatFixture::load();
        assert_eq!(
            fixture.cases["parametric"].options,
            ComBatOptions::default()
        );
        assert!(!fixture.cases["non_parametric"].options.parametric);
        assert!(fixture.cases["mean_only"].options.mean_only);
        let non_parametric_mean_only = fixture.cases["non_parametric_mean_only"].options;
        assert!(non_parametric_mean_only.mean_only);
        assert!(!non_parametric_mean_only.parametric);
        assert!(!fixture.cases["no_eb"].options.eb);
        let fit = fixture.fit(ComBatOptions::default());
        assert!(fit.batches.iter().all(|estimates| estimates.iterations > 0));
    }

    #[test]
    fn reference_batch_is_returned_unchanged() {
        let fixture = CombatFixture::load();
        let rows = fixture.rows_of("site_a");
        for options in fixture.cases.values().map(|case| case.options) {
            let fit = fixture.fit(options);
            let adjusted = fit.apply("site_a", rows.view()).unwrap();
            assert_eq!(adjusted, rows, "{options:?}");
        }
    }

    #[test]
    fn other_batches_do_not_change_a_fit() {
        // No leakage between centres: α, σ² come from the reference alone,
        // and each batch's estimates from the reference and that batch.
        let fixture = CombatFixture::load();
        let reference = fixture.sums_of("site_a");
        let site_b = fixture.sums_of("site_b");
        let site_c = fixture.sums_of("site_c");
        for options in fixture.cases.values().map(|case| case.options) {
            let both =
                ComBatFit::fit(&reference, &[site_b.clone(), site_c.clone()], options).unwrap();
            let alone = ComBatFit::fit(&reference, std::slice::from_ref(&site_c), options).unwrap();
            assert_eq!(both.reference_mean, alone.reference_mean);
            assert_eq!(both.reference_variance, alone.reference_variance);
            assert_eq!(both.batch("site_c"), alone.batch("site_c"), "{options:?}");
        }
    }

    #[test]
    fn constant_feature_stays_unadjusted() {
        let fixture = CombatFixture::load();
        let fit = fixture.fit(ComBatOptions::default());
        assert_eq!(
            fit.batch("site_c").unwrap().unadjusted_features,
            vec![CONSTANT_FEATURE]
        );
        assert!(fit.batch("site_b").unwrap().unadjusted_features.is_empty());

        let rows = fixture.rows_of("site_c");
        let adjusted = fit.apply("site_c", rows.view()).unwrap();
        assert_eq!(
            adjusted.column(CONSTANT_FEATURE),
            rows.column(CONSTANT_FEATURE)
        );
        assert_ne!(adjusted.column(0), rows.column(0));
    }

    #[test]
    fn merged_site_sums_equal_pooled_rows() {
        // site_c arrives from two workers: its merged sums must give the fit
        // of its pooled rows.
        let fixture = CombatFixture::load();
        let rows = fixture.rows_of("site_c");
        let mut merged = BatchSums::from_rows("site_c", rows.slice(s![..5, ..])).unwrap();
        merged
            .merge(&BatchSums::from_rows("site_c", rows.slice(s![5.., ..])).unwrap())
            .unwrap();
        let pooled = fixture.sums_of("site_c");
        assert_eq!(merged.n, pooled.n);

        let reference = fixture.sums_of("site_a");
        for options in fixture.cases.values().map(|case| case.options) {
            let from_merged =
                ComBatFit::fit(&reference, std::slice::from_ref(&merged), options).unwrap();
            let from_pooled =
                ComBatFit::fit(&reference, std::slice::from_ref(&pooled), options).unwrap();
            let (merged_estimates, pooled_estimates) =
                (&from_merged.batches[0], &from_pooled.batches[0]);
            assert_eq!(
                merged_estimates.unadjusted_features,
                pooled_estimates.unadjusted_features
            );
            for g in 0..pooled.features() {
                let at = format!("{options:?} feature {g}");
                assert_absolute(
                    merged_estimates.gamma_star[g],
                    pooled_estimates.gamma_star[g],
                    SUMS_TOLERANCE,
                    &at,
                );
                assert_relative(
                    merged_estimates.delta_star[g],
                    pooled_estimates.delta_star[g],
                    SUMS_TOLERANCE,
                    &at,
                );
            }
        }
    }

    /// Row-level ComBat estimates of one batch: the module's formulas applied
    /// to each patient's standardised values, with Σ_i (s_i − γ)² summed over
    /// the patients instead of taken from the sums.
    fn row_level_estimates(
        reference: ArrayView2<f64>,
        batch: ArrayView2<f64>,
        options: ComBatOptions,
    ) -> (Vec<f64>, Vec<f64>) {
        let features = reference.ncols();
        let n = batch.nrows() as f64;
        let alpha: Vec<f64> = reference
            .columns()
            .into_iter()
            .map(|c| c.mean().unwrap())
            .collect();
        let sd: Vec<f64> = reference
            .columns()
            .into_iter()
            .map(|c| c.var(0.0).sqrt())
            .collect();
        let standardised: Vec<Vec<f64>> = (0..features)
            .map(|g| {
                batch
                    .column(g)
                    .iter()
                    .map(|x| (x - alpha[g]) / sd[g])
                    .collect()
            })
            .collect();
        let squared_distance = |g: usize, gamma: f64| -> f64 {
            standardised[g].iter().map(|s| (s - gamma).powi(2)).sum()
        };
        let gamma_hat: Vec<f64> = standardised
            .iter()
            .map(|s| s.iter().sum::<f64>() / n)
            .collect();
        let delta_hat: Vec<f64> = (0..features)
            .map(|g| squared_distance(g, gamma_hat[g]) / (n - 1.0))
            .collect();
        assert!(
            delta_hat.iter().all(|&d| d > 0.0),
            "the random data have no constant feature"
        );

        let (gamma_bar, tau2) = mean_and_sample_variance(&gamma_hat);
        let (m, v) = mean_and_sample_variance(&delta_hat);
        let (a, b) = ((2.0 * v + m * m) / v, (m * v + m * m * m) / v);
        if !options.parametric {
            let mut gamma_star = Vec::new();
            let mut delta_star = Vec::new();
            for g in 0..features {
                let others = (0..features).filter(|&j| j != g);
                let log_likelihood: Vec<(usize, f64)> = others
                    .map(|j| {
                        let d = delta_hat[j];
                        (
                            j,
                            -0.5 * n * (2.0 * std::f64::consts::PI * d).ln()
                                - squared_distance(g, gamma_hat[j]) / (2.0 * d),
                        )
                    })
                    .collect();
                let maximum = log_likelihood
                    .iter()
                    .map(|&(_, l)| l)
                    .fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<(usize, f64)> = log_likelihood
                    .iter()
                    .map(|&(j, l)| (j, (l - maximum).exp()))
                    .collect();
                let total: f64 = weights.iter().map(|&(_, w)| w).sum();
                gamma_star
                    .push(weights.iter().map(|&(j, w)| gamma_hat[j] * w).sum::<f64>() / total);
                delta_star
                    .push(weights.iter().map(|&(j, w)| delta_hat[j] * w).sum::<f64>() / total);
            }
            return (gamma_star, delta_star);
        }

        let mut gamma_old = gamma_hat.clone();
        let mut delta_old = delta_hat.clone();
        loop {
            let gamma_new: Vec<f64> = (0..features)
                .map(|g| {
                    (tau2 * n * gamma_hat[g] + delta_old[g] * gamma_bar) / (tau2 * n + delta_old[g])
                })
                .collect();
            let delta_new: Vec<f64> = (0..features)
                .map(|g| (0.5 * squared_distance(g, gamma_new[g]) + b) / (n / 2.0 + a - 1.0))
                .collect();
            let change = neurocombat_change(&gamma_new, &gamma_old, &delta_new, &delta_old);
            gamma_old = gamma_new;
            delta_old = delta_new;
            let keep_iterating = change > CONVERGENCE_TOLERANCE;
            if !keep_iterating {
                return (gamma_old, delta_old);
            }
        }
    }

    /// Draws `n` patients × `features` with per-feature centre and spread
    /// shared by all batches, and a batch-specific shift and scale.
    fn random_batch(
        rng: &mut Xoshiro256PlusPlus,
        n: usize,
        centre: ArrayView1<f64>,
        shift: f64,
        scale: f64,
    ) -> Array2<f64> {
        let noise = Normal::new(0.0, 1.0).unwrap();
        Array2::from_shape_fn((n, centre.len()), |(_, g)| {
            let spread = 1.0 + g as f64 * 0.25;
            centre[g] + spread * (shift + scale * noise.sample(rng))
        })
    }

    #[test]
    fn sums_fit_equals_row_level_fit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        // Large centres make raw Σx² cancel, which the shifted sums avoid.
        let centre = Array1::from_shape_fn(30, |g| {
            if g % 5 == 0 {
                5_000.0
            } else {
                g as f64 * 3.0 - 20.0
            }
        });
        let reference = random_batch(&mut rng, 15, centre.view(), 0.0, 1.0);
        let batch = random_batch(&mut rng, 9, centre.view(), 0.7, 1.6);
        let reference_sums = BatchSums::from_rows("reference", reference.view()).unwrap();
        let batch_sums = BatchSums::from_rows("batch", batch.view()).unwrap();

        for parametric in [true, false] {
            let options = ComBatOptions {
                parametric,
                ..ComBatOptions::default()
            };
            let fit = ComBatFit::fit(&reference_sums, std::slice::from_ref(&batch_sums), options)
                .unwrap();
            let (gamma_star, delta_star) =
                row_level_estimates(reference.view(), batch.view(), options);
            let estimates = &fit.batches[0];
            for g in 0..centre.len() {
                let at = format!("parametric {parametric} feature {g}");
                assert_absolute(
                    estimates.gamma_star[g],
                    gamma_star[g],
                    SUMS_TOLERANCE,
                    &format!("γ* {at}"),
                );
                assert_relative(
                    estimates.delta_star[g],
                    delta_star[g],
                    SUMS_TOLERANCE,
                    &format!("δ*² {at}"),
                );
            }
        }
    }

    #[test]
    fn zero_reference_variance_takes_median() {
        // Feature 0 is constant in the reference. The non-zero population
        // variances are 1, 4 and 16 (values ±1, ±2, ±4 around 0), median 4.
        let reference = array![[3.0, -1.0, -2.0, -4.0], [3.0, 1.0, 2.0, 4.0]];
        let batch = array![
            [1.0, 0.0, 1.0, 1.0],
            [2.0, 1.0, 0.0, 3.0],
            [4.0, 2.0, 1.0, 2.0]
        ];
        let fit = ComBatFit::fit(
            &BatchSums::from_rows("reference", reference.view()).unwrap(),
            &[BatchSums::from_rows("batch", batch.view()).unwrap()],
            ComBatOptions {
                eb: false,
                ..ComBatOptions::default()
            },
        )
        .unwrap();
        assert_eq!(fit.zero_variance_features, vec![0]);
        assert_eq!(fit.reference_variance, vec![4.0, 1.0, 4.0, 16.0]);
        // γ̂ of feature 0: (mean 7/3 − 3) / √4.
        assert_absolute(
            fit.batches[0].gamma_hat[0],
            (7.0 / 3.0 - 3.0) / 2.0,
            1e-15,
            "γ̂[0]",
        );
    }

    #[test]
    fn constant_reference_is_rejected() {
        let constant = array![[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]];
        let batch = array![[1.0, 2.0], [3.0, 4.0]];
        let error = ComBatFit::fit(
            &BatchSums::from_rows("site_a", constant.view()).unwrap(),
            &[BatchSums::from_rows("site_b", batch.view()).unwrap()],
            ComBatOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(error, StatsError::InvalidBatchSums { ref batch, .. } if batch == "site_a")
        );
    }

    #[test]
    fn small_batches_are_rejected() {
        let reference =
            BatchSums::from_rows("site_a", array![[1.0, 2.0], [2.0, 5.0], [0.5, 3.0]].view())
                .unwrap();
        let single = BatchSums::from_rows("site_b", array![[1.5, 2.5]].view()).unwrap();
        let error = ComBatFit::fit(
            &reference,
            std::slice::from_ref(&single),
            ComBatOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(error, StatsError::BatchTooSmall { ref batch, n: 1, .. } if batch == "site_b")
        );

        let mean_only = ComBatOptions {
            mean_only: true,
            ..ComBatOptions::default()
        };
        let fit = ComBatFit::fit(&reference, std::slice::from_ref(&single), mean_only).unwrap();
        assert_eq!(fit.batches[0].delta_star, vec![1.0, 1.0]);
        assert!(fit.batches[0].unadjusted_features.is_empty());

        let one_reference = BatchSums::from_rows("site_a", array![[1.0, 2.0]].view()).unwrap();
        let error = ComBatFit::fit(&one_reference, &[], mean_only).unwrap_err();
        assert!(
            matches!(error, StatsError::BatchTooSmall { ref batch, n: 1, .. } if batch == "site_a")
        );

        let empty = BatchSums::from_rows("site_c", Array2::<f64>::zeros((0, 2)).view()).unwrap();
        let error = ComBatFit::fit(&reference, &[empty], mean_only).unwrap_err();
        assert!(matches!(error, StatsError::BatchTooSmall { n: 0, .. }));
    }

    #[test]
    fn fit_rejects_bad_inputs() {
        let reference =
            BatchSums::from_rows("site_a", array![[1.0, 2.0], [2.0, 5.0], [0.5, 3.0]].view())
                .unwrap();
        let other = BatchSums::from_rows("site_b", array![[1.5, 2.5], [2.5, 2.0]].view()).unwrap();
        let options = ComBatOptions::default();

        let duplicate =
            ComBatFit::fit(&reference, &[other.clone(), other.clone()], options).unwrap_err();
        assert_eq!(
            duplicate,
            StatsError::DuplicateBatch {
                batch: "site_b".to_owned()
            }
        );
        let mut named_as_reference = other.clone();
        named_as_reference.batch = "site_a".to_owned();
        assert!(matches!(
            ComBatFit::fit(&reference, &[named_as_reference], options).unwrap_err(),
            StatsError::DuplicateBatch { .. }
        ));

        let three_features =
            BatchSums::from_rows("site_c", array![[1.0, 2.0, 3.0], [2.0, 1.0, 0.0]].view())
                .unwrap();
        assert!(matches!(
            ComBatFit::fit(&reference, &[three_features], options).unwrap_err(),
            StatsError::InvalidBatchSums { ref batch, .. } if batch == "site_c"
        ));

        let mut non_finite = other.clone();
        non_finite.sum_squares[1] = f64::NAN;
        let error = ComBatFit::fit(&reference, &[non_finite], options).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("sum_squares of feature 1 is NaN"),
            "{error}"
        );

        let one_feature = BatchSums::from_rows("site_a", array![[1.0], [2.0]].view()).unwrap();
        let other_one = BatchSums::from_rows("site_b", array![[1.0], [4.0]].view()).unwrap();
        assert!(matches!(
            ComBatFit::fit(&one_feature, std::slice::from_ref(&other_one), options).unwrap_err(),
            StatsError::TooFewObservations {
                count: 1,
                minimum: 2,
                ..
            }
        ));
        let without_eb = ComBatOptions {
            eb: false,
            ..options
        };
        assert!(ComBatFit::fit(&one_feature, &[other_one], without_eb).is_ok());
    }

    #[test]
    fn apply_rejects_unknown_batch_and_bad_rows() {
        let fixture = CombatFixture::load();
        let fit = fixture.fit(ComBatOptions::default());
        let rows = fixture.rows_of("site_b");

        let error = fit.apply("site_x", rows.view()).unwrap_err();
        assert_eq!(
            error,
            StatsError::UnknownBatch {
                batch: "site_x".to_owned(),
                known: r#""site_a" (reference), "site_b", "site_c""#.to_owned(),
            }
        );
        assert!(
            error.to_string().contains("unknown batch \"site_x\""),
            "{error}"
        );

        assert!(matches!(
            fit.apply("site_b", rows.slice(s![.., ..3])).unwrap_err(),
            StatsError::ColumnMismatch {
                expected: 24,
                found: 3,
                ..
            }
        ));
        let mut with_nan = rows.clone();
        with_nan[[2, 7]] = f64::NAN;
        assert!(matches!(
            fit.apply("site_b", with_nan.view()).unwrap_err(),
            StatsError::NonFiniteCell {
                row: 2,
                column: 7,
                ..
            }
        ));
    }

    #[test]
    fn raw_sums_merge_and_fit() {
        // Plain Σx and Σx² (shift 0) are accepted and merge with shifted sums.
        let fixture = CombatFixture::load();
        let rows = fixture.rows_of("site_b");
        let raw = BatchSums::from_raw_sums(
            "site_b",
            rows.nrows(),
            rows.sum_axis(Axis(0)),
            rows.mapv(|x| x * x).sum_axis(Axis(0)),
        )
        .unwrap();
        let shifted = fixture.sums_of("site_b");
        for g in 0..raw.features() {
            assert_relative(raw.mean(g), shifted.mean(g), 1e-13, &format!("mean[{g}]"));
        }

        let mut empty =
            BatchSums::from_rows("site_b", Array2::<f64>::zeros((0, 24)).view()).unwrap();
        empty.merge(&raw).unwrap();
        assert_eq!(empty, raw);

        let mismatched = BatchSums::from_raw_sums("site_b", 3, Array1::zeros(2), Array1::zeros(3));
        assert!(matches!(
            mismatched.unwrap_err(),
            StatsError::InvalidBatchSums { .. }
        ));
        let mut other_batch = raw.clone();
        other_batch.batch = "site_c".to_owned();
        assert!(empty.merge(&other_batch).is_err());
    }

    #[test]
    fn fit_round_trips_through_json() {
        let fixture = CombatFixture::load();
        let fit = fixture.fit(ComBatOptions::default());
        let parsed: ComBatFit =
            serde_json::from_str(&serde_json::to_string(&fit).unwrap()).unwrap();
        let mut malformed = parsed.clone();
        malformed.batches[0].delta_star[3] = -1.0;
        assert!(matches!(
            malformed
                .apply("site_b", fixture.rows_of("site_b").view())
                .unwrap_err(),
            StatsError::InvalidParameter {
                name: "delta_star",
                ..
            }
        ));
        assert_eq!(parsed.reference_batch, fit.reference_batch);
        assert_eq!(parsed.options, fit.options);
        assert_eq!(
            parsed.batches[1].unadjusted_features,
            vec![CONSTANT_FEATURE]
        );

        // serde_json without `float_roundtrip` may move a number by 1 ulp.
        let rows = fixture.rows_of("site_c");
        let expected = fit.apply("site_c", rows.view()).unwrap();
        let actual = parsed.apply("site_c", rows.view()).unwrap();
        for (&a, &e) in actual.iter().zip(&expected) {
            assert_relative(a, e, 1e-14, "harmonised value after a JSON round trip");
        }
    }
}
