//! Seeded stratified bootstrap with percentile 95% intervals for the
//! validation metrics of a frozen model.
//!
//! Each replicate draws the m positives with replacement from the m
//! positives and, independently, the n negatives from the n negatives, so
//! every replicate keeps the class sizes of the original set and the AUC is
//! always defined. The model and the cut-off are frozen: nothing is refitted
//! inside a replicate. Paired statistics (ΔAUC of two models) apply the same
//! resampled patients to both score vectors.
//!
//! The interval is the 2.5th and 97.5th percentile of the B replicate values,
//! with NumPy's default linear interpolation (`np.percentile(values, [2.5,
//! 97.5])`, Hyndman & Fan type 7).
//!
//! Source: B. Efron and R. J. Tibshirani (1993), "An Introduction to the
//! Bootstrap", Chapman & Hall (percentile interval). No reference package
//! shares our random numbers, so the tests check the procedure's properties
//! and the percentile rule against NumPy, not replicate values.
//!
//! Random numbers: `Xoshiro256PlusPlus::seed_from_u64(seed)` from
//! rand_xoshiro 0.6, and `gen_range` over `u64` from rand 0.8, whose
//! algorithm does not depend on the platform's pointer width. The same seed
//! gives the same intervals on every machine, but a different version of
//! either crate may change them.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::StatsError;
use super::quantile::percentile;
use super::roc::roc_auc;
use super::threshold::Confusion;
use super::validate::{check_finite, check_same_length, count_classes};

/// Number of bootstrap replicates of the study.
pub const DEFAULT_REPLICATES: usize = 2000;

/// Seed of the study's bootstrap.
pub const DEFAULT_SEED: u64 = 42;

/// Replicate count and seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapOptions {
    /// Number of replicates B, at least 1.
    pub replicates: usize,
    /// Seed of the random number generator.
    pub seed: u64,
}

impl Default for BootstrapOptions {
    /// Returns B = 2000 and seed 42.
    fn default() -> Self {
        Self {
            replicates: DEFAULT_REPLICATES,
            seed: DEFAULT_SEED,
        }
    }
}

impl BootstrapOptions {
    fn validate(&self) -> Result<(), StatsError> {
        if self.replicates == 0 {
            return Err(StatsError::InvalidParameter {
                name: "replicates",
                value: 0.0,
                expected: "at least 1",
            });
        }
        Ok(())
    }
}

/// Draws stratified bootstrap resamples of patient indices.
#[derive(Debug, Clone)]
pub struct StratifiedResampler {
    positives: Vec<usize>,
    negatives: Vec<usize>,
    rng: Xoshiro256PlusPlus,
}

impl StratifiedResampler {
    /// Prepares resampling of the patients with these labels.
    ///
    /// # Errors
    ///
    /// [`StatsError::Empty`] or [`StatsError::SingleClass`], because each
    /// class must have a member to draw from.
    pub fn new(labels: &[bool], seed: u64) -> Result<Self, StatsError> {
        count_classes(labels)?;
        let positives = (0..labels.len()).filter(|&index| labels[index]).collect();
        let negatives = (0..labels.len()).filter(|&index| !labels[index]).collect();
        Ok(Self {
            positives,
            negatives,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        })
    }

    /// Returns the patient indices of the next replicate: m draws from the
    /// positives, then n draws from the negatives, each uniform with
    /// replacement.
    pub fn next_resample(&mut self) -> Vec<usize> {
        let mut indices = Vec::with_capacity(self.positives.len() + self.negatives.len());
        for class in [&self.positives, &self.negatives] {
            let size = class.len() as u64;
            for _ in 0..class.len() {
                let draw = self.rng.gen_range(0..size);
                // draw < class.len(), which is a usize.
                indices.push(class[draw as usize]);
            }
        }
        indices
    }
}

/// A point estimate with its bootstrap percentile 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentileInterval {
    /// The statistic on the original patients.
    pub estimate: f64,
    /// 2.5th percentile of the replicate values.
    pub ci_low: f64,
    /// 97.5th percentile of the replicate values.
    pub ci_high: f64,
}

/// Returns the 2.5th and 97.5th percentiles of `values`, as
/// `np.percentile(values, [2.5, 97.5])`.
///
/// # Errors
///
/// [`StatsError::Empty`] and [`StatsError::NonFinite`].
pub fn percentile_bounds(values: &[f64]) -> Result<(f64, f64), StatsError> {
    if values.is_empty() {
        return Err(StatsError::Empty { input: "values" });
    }
    check_finite("values", values)?;
    Ok((percentile(values, 2.5), percentile(values, 97.5)))
}

fn interval(estimate: f64, replicates: &[f64]) -> PercentileInterval {
    // Replicate values are finite and non-empty by construction.
    PercentileInterval {
        estimate,
        ci_low: percentile(replicates, 2.5),
        ci_high: percentile(replicates, 97.5),
    }
}

/// Bootstrap intervals of the discrimination metrics of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapMetrics {
    /// ROC AUC.
    pub auc: PercentileInterval,
    /// Sensitivity at the frozen cut-off.
    pub sensitivity: PercentileInterval,
    /// Specificity at the frozen cut-off.
    pub specificity: PercentileInterval,
    /// Accuracy at the frozen cut-off.
    pub accuracy: PercentileInterval,
    /// Number of replicates B.
    pub replicates: usize,
}

/// Computes stratified bootstrap percentile intervals for the AUC and for
/// sensitivity, specificity and accuracy at the frozen `cutoff` (positive
/// when score ≥ cutoff).
///
/// # Errors
///
/// [`StatsError::LengthMismatch`], [`StatsError::NonFinite`] for a score,
/// [`StatsError::Empty`] or [`StatsError::SingleClass`] for the labels,
/// [`StatsError::InvalidParameter`] for a NaN cut-off or zero replicates.
pub fn bootstrap_metrics(
    scores: &[f64],
    labels: &[bool],
    cutoff: f64,
    options: &BootstrapOptions,
) -> Result<BootstrapMetrics, StatsError> {
    options.validate()?;
    let original = Confusion::at_threshold(scores, labels, cutoff)?;
    let auc = roc_auc(scores, labels)?;
    let mut resampler = StratifiedResampler::new(labels, options.seed)?;

    let mut aucs = Vec::with_capacity(options.replicates);
    let mut sensitivities = Vec::with_capacity(options.replicates);
    let mut specificities = Vec::with_capacity(options.replicates);
    let mut accuracies = Vec::with_capacity(options.replicates);
    let mut resampled_scores = Vec::with_capacity(scores.len());
    let mut resampled_labels = Vec::with_capacity(scores.len());
    for _ in 0..options.replicates {
        let indices = resampler.next_resample();
        resampled_scores.clear();
        resampled_labels.clear();
        resampled_scores.extend(indices.iter().map(|&index| scores[index]));
        resampled_labels.extend(indices.iter().map(|&index| labels[index]));

        aucs.push(roc_auc(&resampled_scores, &resampled_labels)?);
        let confusion = Confusion::at_threshold(&resampled_scores, &resampled_labels, cutoff)?;
        let (sensitivity, specificity, accuracy) = rates(&confusion);
        sensitivities.push(sensitivity);
        specificities.push(specificity);
        accuracies.push(accuracy);
    }

    let (sensitivity, specificity, accuracy) = rates(&original);
    Ok(BootstrapMetrics {
        auc: interval(auc, &aucs),
        sensitivity: interval(sensitivity, &sensitivities),
        specificity: interval(specificity, &specificities),
        accuracy: interval(accuracy, &accuracies),
        replicates: options.replicates,
    })
}

/// Returns (sensitivity, specificity, accuracy). Both classes are present in
/// every stratified replicate, so no denominator is 0.
fn rates(confusion: &Confusion) -> (f64, f64, f64) {
    let Confusion { tp, fp, tn, fn_ } = *confusion;
    (
        tp as f64 / (tp + fn_) as f64,
        tn as f64 / (tn + fp) as f64,
        (tp + tn) as f64 / (tp + fp + tn + fn_) as f64,
    )
}

/// Bootstrap interval of the paired AUC difference of two models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedAucDifference {
    /// AUC of model A on the original patients.
    pub auc_a: f64,
    /// AUC of model B on the original patients.
    pub auc_b: f64,
    /// AUC(A) − AUC(B) with its percentile interval.
    pub difference: PercentileInterval,
    /// Number of replicates B.
    pub replicates: usize,
}

/// Computes the stratified bootstrap percentile interval of AUC(A) − AUC(B)
/// for two models scored on the same patients. Each replicate resamples
/// patients once and scores both models on them.
///
/// # Errors
///
/// As [`bootstrap_metrics`], for either score vector.
pub fn bootstrap_auc_difference(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[bool],
    options: &BootstrapOptions,
) -> Result<PairedAucDifference, StatsError> {
    options.validate()?;
    check_same_length("scores_b", scores_b.len(), "labels", labels.len())?;
    check_finite("scores_b", scores_b)?;
    let auc_a = roc_auc(scores_a, labels)?;
    let auc_b = roc_auc(scores_b, labels)?;
    let mut resampler = StratifiedResampler::new(labels, options.seed)?;

    let mut differences = Vec::with_capacity(options.replicates);
    for _ in 0..options.replicates {
        let indices = resampler.next_resample();
        let resampled_labels: Vec<bool> = indices.iter().map(|&index| labels[index]).collect();
        let resampled_a: Vec<f64> = indices.iter().map(|&index| scores_a[index]).collect();
        let resampled_b: Vec<f64> = indices.iter().map(|&index| scores_b[index]).collect();
        differences.push(
            roc_auc(&resampled_a, &resampled_labels)? - roc_auc(&resampled_b, &resampled_labels)?,
        );
    }

    Ok(PairedAucDifference {
        auc_a,
        auc_b,
        difference: interval(auc_a - auc_b, &differences),
        replicates: options.replicates,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::{labels, section, vector};
    use super::*;

    fn fixture() -> (Vec<f64>, Vec<f64>, Vec<bool>) {
        let data = section("bootstrap");
        (
            vector(&data["scores_a"]),
            vector(&data["scores_b"]),
            labels(&data["y"]),
        )
    }

    #[test]
    fn percentile_bounds_match_numpy() {
        let data = section("bootstrap");
        let values = vector(&data["percentile_values"]);
        let expected = vector(&data["percentile_bounds"]);
        // The same operations as np.percentile, so bitwise equal.
        assert_eq!(
            percentile_bounds(&values).unwrap(),
            (expected[0], expected[1])
        );
    }

    #[test]
    fn resampler_keeps_class_sizes() {
        let (_, _, y) = fixture();
        let positives = y.iter().filter(|&&label| label).count();
        let mut resampler = StratifiedResampler::new(&y, 42).unwrap();
        for _ in 0..50 {
            let indices = resampler.next_resample();
            assert_eq!(indices.len(), y.len());
            assert!(indices[..positives].iter().all(|&index| y[index]));
            assert!(indices[positives..].iter().all(|&index| !y[index]));
        }
    }

    #[test]
    fn resampler_is_deterministic_per_seed() {
        let (_, _, y) = fixture();
        let draw = |seed| {
            let mut resampler = StratifiedResampler::new(&y, seed).unwrap();
            (0..3)
                .map(|_| resampler.next_resample())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn resampler_first_draws_are_pinned() {
        // Pins rand 0.8 / rand_xoshiro 0.6: a crate upgrade that changes the
        // stream fails here rather than silently shifting reported intervals.
        let y = [true, false, true, false, false, true, false, false];
        let mut resampler = StratifiedResampler::new(&y, 42).unwrap();
        let first = resampler.next_resample();
        assert_eq!(first, PINNED_FIRST_RESAMPLE.to_vec());
    }

    const PINNED_FIRST_RESAMPLE: [usize; 8] = [5, 5, 5, 6, 3, 7, 6, 1];

    #[test]
    fn bootstrap_metrics_are_deterministic() {
        let (a, _, y) = fixture();
        let options = BootstrapOptions {
            replicates: 200,
            seed: 42,
        };
        let first = bootstrap_metrics(&a, &y, 0.5, &options).unwrap();
        let second = bootstrap_metrics(&a, &y, 0.5, &options).unwrap();
        assert_eq!(first, second);
        let other_seed =
            bootstrap_metrics(&a, &y, 0.5, &BootstrapOptions { seed: 7, ..options }).unwrap();
        assert_ne!(first.auc, other_seed.auc);
    }

    #[test]
    fn bootstrap_intervals_contain_estimates() {
        let (a, _, y) = fixture();
        let metrics = bootstrap_metrics(&a, &y, 0.5, &BootstrapOptions::default()).unwrap();
        assert_eq!(metrics.replicates, 2000);
        assert_eq!(metrics.auc.estimate, roc_auc(&a, &y).unwrap());
        for (name, interval) in [
            ("auc", metrics.auc),
            ("sensitivity", metrics.sensitivity),
            ("specificity", metrics.specificity),
            ("accuracy", metrics.accuracy),
        ] {
            assert!(
                interval.ci_low <= interval.estimate && interval.estimate <= interval.ci_high,
                "{name}: {interval:?}"
            );
            assert!(interval.ci_low < interval.ci_high, "{name}: {interval:?}");
            assert!(
                interval.ci_low >= 0.0 && interval.ci_high <= 1.0,
                "{name}: {interval:?}"
            );
        }
    }

    #[test]
    fn bootstrap_auc_interval_is_close_to_delong() {
        // On 200 patients the percentile interval and the DeLong interval
        // both approximate the sampling distribution of the AUC; their
        // bounds agree to within a few hundredths.
        let (a, _, y) = fixture();
        let metrics = bootstrap_metrics(&a, &y, 0.5, &BootstrapOptions::default()).unwrap();
        let delong = super::super::roc::delong_auc(&a, &y).unwrap();
        assert!(
            (metrics.auc.ci_low - delong.ci_low).abs() < 0.03,
            "{metrics:?} {delong:?}"
        );
        assert!(
            (metrics.auc.ci_high - delong.ci_high).abs() < 0.03,
            "{metrics:?} {delong:?}"
        );
    }

    #[test]
    fn paired_difference_is_antisymmetric() {
        let (a, b, y) = fixture();
        let options = BootstrapOptions {
            replicates: 300,
            seed: 42,
        };
        let forward = bootstrap_auc_difference(&a, &b, &y, &options).unwrap();
        let backward = bootstrap_auc_difference(&b, &a, &y, &options).unwrap();
        assert_eq!(forward.difference.estimate, forward.auc_a - forward.auc_b);
        assert_eq!(forward.difference.estimate, -backward.difference.estimate);
        // Same resamples, so the replicate differences are negated and the
        // percentiles swap up to rounding of the interpolation.
        assert!((forward.difference.ci_low + backward.difference.ci_high).abs() < 1e-12);
        assert!((forward.difference.ci_high + backward.difference.ci_low).abs() < 1e-12);
    }

    #[test]
    fn paired_difference_of_identical_models_is_zero() {
        let (a, _, y) = fixture();
        let options = BootstrapOptions {
            replicates: 100,
            seed: 42,
        };
        let result = bootstrap_auc_difference(&a, &a, &y, &options).unwrap();
        assert_eq!(result.difference.estimate, 0.0);
        assert_eq!(result.difference.ci_low, 0.0);
        assert_eq!(result.difference.ci_high, 0.0);
    }

    #[test]
    fn bootstrap_rejects_bad_input() {
        let (a, _, y) = fixture();
        let error = bootstrap_metrics(
            &a,
            &y,
            0.5,
            &BootstrapOptions {
                replicates: 0,
                seed: 1,
            },
        )
        .unwrap_err();
        assert!(matches!(
            error,
            StatsError::InvalidParameter {
                name: "replicates",
                ..
            }
        ));
        let error = bootstrap_metrics(&a, &vec![true; a.len()], 0.5, &BootstrapOptions::default())
            .unwrap_err();
        assert!(matches!(error, StatsError::SingleClass { .. }));
        let error =
            bootstrap_auc_difference(&a, &a[1..], &y, &BootstrapOptions::default()).unwrap_err();
        assert!(matches!(error, StatsError::LengthMismatch { .. }));
        assert_eq!(
            percentile_bounds(&[]).unwrap_err(),
            StatsError::Empty { input: "values" }
        );
    }
}
