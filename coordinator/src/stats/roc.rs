//! ROC AUC with the DeLong variance, its confidence interval, and the paired
//! DeLong test for two models scored on the same patients.
//!
//! Sources: E. R. DeLong, D. M. DeLong and D. L. Clarke-Pearson (1988),
//! "Comparing the areas under two or more correlated receiver operating
//! characteristic curves: a nonparametric approach", Biometrics 44(3):837–845.
//! X. Sun and W. Xu (2014), "Fast implementation of DeLong's algorithm for
//! comparing the areas under correlated receiver operating characteristic
//! curves", IEEE Signal Processing Letters 21(11):1389–1393.
//!
//! Reference implementation: pROC 1.18.0 for R (`ci.auc(roc, method =
//! "delong")`, `var(roc, method = "delong")` and `roc.test(roc1, roc2,
//! method = "delong", paired = TRUE)`), with `direction = "<"`, so higher
//! scores mean y = true.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::StatsError;
use super::rank::mid_ranks;
use super::validate::{check_finite, check_same_length, count_classes};

/// Φ⁻¹(0.975), the two-sided 95% normal quantile. pROC 1.18.0 computes the
/// interval with R's `qnorm(0.975)`, which is this value and not 1.96. The
/// two differ by 3.6e-5 standard errors.
pub(crate) const Z_975: f64 = 1.959_963_984_540_054;

/// ROC AUC with its DeLong variance and 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AucEstimate {
    /// P(score of a positive > score of a negative) + ½ P(tie).
    pub auc: f64,
    /// DeLong variance of the AUC, `S10 / m + S01 / n` with ddof 1.
    pub variance: f64,
    /// Lower 95% bound, `auc - Φ⁻¹(0.975) · √variance`, clipped at 0.
    pub ci_low: f64,
    /// Upper 95% bound, `auc + Φ⁻¹(0.975) · √variance`, clipped at 1.
    pub ci_high: f64,
}

/// Result of the paired DeLong test of two AUCs on the same patients.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DelongComparison {
    /// AUC of the first scores.
    pub auc_a: f64,
    /// AUC of the second scores.
    pub auc_b: f64,
    /// `(auc_a - auc_b) / SE(auc_a - auc_b)`, positive when model A is better.
    pub z: f64,
    /// Two-sided p-value `2 (1 - Φ(|z|))`.
    pub p_value: f64,
}

/// DeLong placement values of one score vector.
struct Placements {
    /// For each positive, the fraction of negatives it outscores (ties count ½).
    positive: Vec<f64>,
    /// For each negative, the fraction of positives that outscore it (ties ½).
    negative: Vec<f64>,
    /// The AUC, which equals the mean of either placement vector.
    auc: f64,
}

/// Computes the placement values from mid-ranks in O(N log N), following
/// Sun & Xu (2014).
///
/// With `T` the mid-rank of a score among all N scores and `T_pos`, `T_neg`
/// its mid-rank within its own class, a positive's placement is
/// `(T - T_pos) / n` and a negative's is `1 - (T - T_neg) / m`, for m
/// positives and n negatives. Inputs must be validated, with both classes
/// present.
fn placements(scores: &[f64], labels: &[bool], m: usize, n: usize) -> Placements {
    let pooled_ranks = mid_ranks(scores).ranks;
    let positive_scores = scores_of_class(scores, labels, true);
    let negative_scores = scores_of_class(scores, labels, false);
    let positive_ranks = mid_ranks(&positive_scores).ranks;
    let negative_ranks = mid_ranks(&negative_scores).ranks;

    let m_f = m as f64;
    let n_f = n as f64;
    let mut positive = Vec::with_capacity(m);
    let mut negative = Vec::with_capacity(n);
    let mut positive_rank_sum = 0.0;
    for (&rank, &label) in pooled_ranks.iter().zip(labels) {
        if label {
            let own_rank = positive_ranks[positive.len()];
            positive.push((rank - own_rank) / n_f);
            positive_rank_sum += rank;
        } else {
            let own_rank = negative_ranks[negative.len()];
            negative.push(1.0 - (rank - own_rank) / m_f);
        }
    }

    // The Mann–Whitney form of the same AUC avoids averaging rounded placements.
    let auc = (positive_rank_sum - m_f * (m_f + 1.0) / 2.0) / (m_f * n_f);
    Placements {
        positive,
        negative,
        auc,
    }
}

/// Returns the scores whose label equals `class`, in input order.
fn scores_of_class(scores: &[f64], labels: &[bool], class: bool) -> Vec<f64> {
    scores
        .iter()
        .zip(labels)
        .filter(|&(_, &label)| label == class)
        .map(|(&score, _)| score)
        .collect()
}

/// Sample variance with divisor `len - 1`. The caller guarantees `len >= 2`.
fn sample_variance(values: &[f64]) -> f64 {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    values
        .iter()
        .map(|&value| (value - mean).powi(2))
        .sum::<f64>()
        / (count - 1.0)
}

/// Validates one score vector against the labels and returns (m, n), the
/// numbers of positives and negatives.
fn validate_scores(
    input: &'static str,
    scores: &[f64],
    labels: &[bool],
) -> Result<(usize, usize), StatsError> {
    check_same_length(input, scores.len(), "labels", labels.len())?;
    check_finite(input, scores)?;
    count_classes(labels)
}

/// Rejects a class with fewer than 2 members, whose placement variance with
/// ddof 1 is 0/0.
fn check_variance_defined(m: usize, n: usize) -> Result<(), StatsError> {
    if m < 2 || n < 2 {
        return Err(StatsError::TooFewForVariance {
            positives: m,
            negatives: n,
        });
    }
    Ok(())
}

/// Computes the ROC AUC, P(score_pos > score_neg) + ½ P(tie), without a
/// variance.
///
/// Higher scores mean y = true. This equals scikit-learn 1.9.1
/// `roc_auc_score(labels, scores)` and works with a single positive or a
/// single negative, where [`delong_auc`] fails.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`], [`StatsError::NonFinite`] with the index,
/// and [`StatsError::Empty`] or [`StatsError::SingleClass`] for empty or
/// single-class labels.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64, StatsError> {
    let (m, n) = validate_scores("scores", scores, labels)?;
    Ok(placements(scores, labels, m, n).auc)
}

/// Computes the ROC AUC with the DeLong (1988) variance and a 95% confidence
/// interval.
///
/// The variance is `S10 / m + S01 / n`, where S10 and S01 are the sample
/// variances (ddof 1) of the positive and negative placement values and m, n
/// are the class sizes. The placements come from mid-ranks (Sun & Xu 2014),
/// so tied scores count ½. The interval is `auc ± Φ⁻¹(0.975) · √variance`
/// clipped to [0, 1], the same as pROC 1.18.0
/// `ci.auc(roc(labels, scores, direction = "<"), method = "delong")`.
///
/// When every positive outscores every negative, all placements are equal,
/// so the variance is 0 and the interval is [1, 1]. pROC returns the same,
/// with a warning that such an interval can mislead. A score that is
/// constant across all patients gives AUC 0.5 with a [0.5, 0.5] interval.
///
/// # Errors
///
/// As [`roc_auc`], and [`StatsError::TooFewForVariance`] when there are fewer
/// than 2 positives or 2 negatives. There the ddof-1 variance of a single
/// placement value is 0/0, and pROC returns NA for the whole interval.
/// Call [`roc_auc`] for the point estimate in that case.
pub fn delong_auc(scores: &[f64], labels: &[bool]) -> Result<AucEstimate, StatsError> {
    let (m, n) = validate_scores("scores", scores, labels)?;
    check_variance_defined(m, n)?;

    let placements = placements(scores, labels, m, n);
    let variance = sample_variance(&placements.positive) / m as f64
        + sample_variance(&placements.negative) / n as f64;
    let half_width = Z_975 * variance.sqrt();
    Ok(AucEstimate {
        auc: placements.auc,
        variance,
        ci_low: (placements.auc - half_width).max(0.0),
        ci_high: (placements.auc + half_width).min(1.0),
    })
}

/// Runs the paired DeLong (1988) test that two models scored on the same
/// patients have equal AUCs.
///
/// The variance of `auc_a - auc_b` is `Lᵀ S L` with `L = (1, -1)` and
/// `S = S10 / m + S01 / n` the 2×2 covariance matrices (ddof 1) of the
/// placement values. It is computed directly as the sample variance of the
/// placement differences, which equals `Lᵀ S L` and cannot go negative
/// through rounding. `z = (auc_a - auc_b) / √var` and the p-value is
/// two-sided. This matches pROC 1.18.0
/// `roc.test(roc_a, roc_b, method = "delong", paired = TRUE)`.
///
/// NOTE: the normal tail comes from statrs 0.19, whose `erfc` has a relative
/// error of up to about 1e-10, so p-values agree with R to about 10
/// significant digits, not 15.
///
/// When the two models give the same AUC with zero standard error (for
/// example identical rankings), z is 0 and the p-value 1, as in pROC.
///
/// # Errors
///
/// As [`delong_auc`] for either score vector, and
/// [`StatsError::ZeroVariance`] when the standard error is 0 but the AUCs
/// differ. pROC would report an infinite z there.
pub fn delong_test(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[bool],
) -> Result<DelongComparison, StatsError> {
    let (m, n) = validate_scores("scores_a", scores_a, labels)?;
    validate_scores("scores_b", scores_b, labels)?;
    check_variance_defined(m, n)?;

    let a = placements(scores_a, labels, m, n);
    let b = placements(scores_b, labels, m, n);
    let positive_differences: Vec<f64> = a
        .positive
        .iter()
        .zip(&b.positive)
        .map(|(x, y)| x - y)
        .collect();
    let negative_differences: Vec<f64> = a
        .negative
        .iter()
        .zip(&b.negative)
        .map(|(x, y)| x - y)
        .collect();
    let variance = sample_variance(&positive_differences) / m as f64
        + sample_variance(&negative_differences) / n as f64;

    let difference = a.auc - b.auc;
    let (z, p_value) = if variance > 0.0 {
        let z = difference / variance.sqrt();
        (z, (2.0 * Normal::standard().sf(z.abs())).min(1.0))
    } else if difference == 0.0 {
        (0.0, 1.0)
    } else {
        return Err(StatsError::ZeroVariance { difference });
    };

    Ok(DelongComparison {
        auc_a: a.auc,
        auc_b: b.auc,
        z,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AUC, variance and bounds are closed forms of ranks, so only the order of
    /// floating-point sums differs from NumPy and R.
    const CLOSED_FORM_TOLERANCE: f64 = 1e-12;

    /// The p-value goes through statrs 0.19 `erfc`, whose relative error
    /// against CPython's `math.erfc` peaks at 1.0e-10 (measured at
    /// z = 0, 0.05, ..., 12). R's `pnorm` is accurate to a few ulp.
    const NORMAL_TAIL_RELATIVE_TOLERANCE: f64 = 2e-10;

    fn assert_normal_tail_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= NORMAL_TAIL_RELATIVE_TOLERANCE * expected,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= CLOSED_FORM_TOLERANCE,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    // 28 patients, 12 positive, with ties including -0.0 against 0.0. Made with
    //   rng = np.random.default_rng(7); y = np.array([1]*12 + [0]*16); rng.shuffle(y)
    //   a = np.round(rng.normal(0, 1, 28) + 0.8*y, 1)
    //   b = np.round(0.6*a + rng.normal(0, 0.8, 28), 1)
    const SCORES_A: [f64; 28] = [
        -1.8, 0.6, -1.3, 0.3, 1.0, -0.2, -2.5, -0.5, -0.0, 0.1, -0.7, -0.5, -1.0, -0.0, 1.9, -0.0,
        0.8, 0.9, 0.2, -0.1, 0.1, 0.9, -1.2, 0.1, 2.2, -1.5, 1.7, 0.9,
    ];
    const SCORES_B: [f64; 28] = [
        -1.6, 2.0, -0.2, -0.8, 0.7, 0.3, -1.7, 0.2, -0.1, 0.6, 0.7, -0.8, -0.4, -0.4, 1.2, -0.9,
        0.0, 0.4, 0.8, 0.9, -1.0, -0.1, -0.2, -1.5, 0.9, -1.0, 2.0, 1.1,
    ];
    const LABELS: [bool; 28] = [
        false, true, false, false, true, false, false, false, false, false, true, false, false,
        true, true, true, true, false, true, false, false, true, false, false, true, false, true,
        true,
    ];

    // Expected values: pROC 1.18.0 (Debian r-cran-proc, R 4.2.2), printed with
    // options(digits = 17), from
    //   r <- roc(y, b, levels = c(FALSE, TRUE), direction = "<")
    //   ci.auc(r, method = "delong"); var(r, method = "delong")
    // An O(m n) NumPy 2.4.6 implementation of DeLong's structural components
    // (Heaviside kernel, ddof 1, scipy.stats.norm.ppf(0.975)) agrees within 1e-15.

    #[test]
    fn delong_auc_matches_proc_interior_interval() {
        let estimate = delong_auc(&SCORES_B, &LABELS).unwrap();
        assert_close(estimate.auc, 0.8255208333333334, "auc");
        assert_close(estimate.variance, 0.006667669533880471, "variance");
        assert_close(estimate.ci_low, 0.6654784078818344, "ci_low");
        assert_close(estimate.ci_high, 0.9855632587848323, "ci_high");
    }

    #[test]
    fn delong_auc_matches_proc_clipped_at_one() {
        // auc + 1.96 se = 1.0024, so pROC clips the upper bound to 1.
        let estimate = delong_auc(&SCORES_A, &LABELS).unwrap();
        assert_close(estimate.auc, 0.8645833333333334, "auc");
        assert_close(estimate.variance, 0.004945943813131313, "variance");
        assert_close(estimate.ci_low, 0.7267441535345156, "ci_low");
        assert_eq!(estimate.ci_high, 1.0);
    }

    #[test]
    fn roc_auc_matches_sklearn() {
        // scikit-learn 1.9.1: roc_auc_score(y, a), roc_auc_score(y, b)
        assert_close(
            roc_auc(&SCORES_A, &LABELS).unwrap(),
            0.8645833333333333,
            "auc a",
        );
        assert_close(
            roc_auc(&SCORES_B, &LABELS).unwrap(),
            0.8255208333333334,
            "auc b",
        );
    }

    #[test]
    fn delong_auc_perfect_separation_has_zero_width() {
        // pROC 1.18.0: ci.auc(roc(c(1,1,0,0,1,0), c(0.9,0.8,0.1,0.2,0.7,0.3))) -> 1 1 1
        let labels = [true, true, false, false, true, false];
        let estimate = delong_auc(&[0.9, 0.8, 0.1, 0.2, 0.7, 0.3], &labels).unwrap();
        assert_eq!(estimate.auc, 1.0);
        assert_eq!(estimate.variance, 0.0);
        assert_eq!(estimate.ci_low, 1.0);
        assert_eq!(estimate.ci_high, 1.0);
    }

    #[test]
    fn delong_auc_inverted_scores_give_zero() {
        // scikit-learn 1.9.1: roc_auc_score([1,1,0,0,1,0], [0.1,0.2,0.9,0.8,0.3,0.7]) = 0.0
        let labels = [true, true, false, false, true, false];
        let estimate = delong_auc(&[0.1, 0.2, 0.9, 0.8, 0.3, 0.7], &labels).unwrap();
        assert_eq!(estimate.auc, 0.0);
        assert_eq!(estimate.variance, 0.0);
        assert_eq!(estimate.ci_low, 0.0);
        assert_eq!(estimate.ci_high, 0.0);
    }

    #[test]
    fn delong_auc_constant_scores_give_half() {
        // pROC 1.18.0: ci.auc(roc(c(1,1,0,0,1,0), rep(0.5, 6))) -> 0.5 0.5 0.5
        let labels = [true, true, false, false, true, false];
        let estimate = delong_auc(&[0.5; 6], &labels).unwrap();
        assert_eq!(estimate.auc, 0.5);
        assert_eq!(estimate.variance, 0.0);
        assert_eq!(estimate.ci_low, 0.5);
        assert_eq!(estimate.ci_high, 0.5);
    }

    #[test]
    fn delong_auc_single_positive_is_an_error() {
        // pROC 1.18.0 returns NA NA NA here, but roc_auc gives the point estimate.
        let scores = [0.9, 0.1, 0.5, 0.3];
        let labels = [true, false, false, false];
        assert_eq!(
            delong_auc(&scores, &labels).unwrap_err(),
            StatsError::TooFewForVariance {
                positives: 1,
                negatives: 3
            }
        );
        assert_eq!(roc_auc(&scores, &labels).unwrap(), 1.0);
    }

    #[test]
    fn delong_auc_single_negative_is_an_error() {
        let labels = [true, true, false];
        assert_eq!(
            delong_auc(&[0.2, 0.4, 0.3], &labels).unwrap_err(),
            StatsError::TooFewForVariance {
                positives: 2,
                negatives: 1
            }
        );
        assert_eq!(roc_auc(&[0.2, 0.4, 0.3], &labels).unwrap(), 0.5);
    }

    #[test]
    fn delong_auc_rejects_bad_input() {
        assert_eq!(
            delong_auc(&[0.1, 0.2], &[true]).unwrap_err(),
            StatsError::LengthMismatch {
                left_name: "scores",
                left: 2,
                right_name: "labels",
                right: 1
            }
        );
        assert!(matches!(
            delong_auc(&[0.1, f64::NAN, 0.3], &[true, false, true]).unwrap_err(),
            StatsError::NonFinite {
                input: "scores",
                index: 1,
                ..
            }
        ));
        assert_eq!(
            delong_auc(&[0.1, 0.2], &[false, false]).unwrap_err(),
            StatsError::SingleClass {
                class: false,
                count: 2
            }
        );
        assert_eq!(
            roc_auc(&[], &[]).unwrap_err(),
            StatsError::Empty { input: "labels" }
        );
    }

    // Expected values: pROC 1.18.0, from
    //   roc.test(roc(y, a, direction = "<"), roc(y, b, direction = "<"),
    //            method = "delong", paired = TRUE)
    // The NumPy implementation above, with the variance of the placement
    // differences, agrees within 1e-15.

    #[test]
    fn delong_test_matches_proc_paired() {
        let comparison = delong_test(&SCORES_A, &SCORES_B, &LABELS).unwrap();
        assert_close(comparison.auc_a, 0.8645833333333334, "auc_a");
        assert_close(comparison.auc_b, 0.8255208333333334, "auc_b");
        assert_close(comparison.z, 0.44364179475277904, "z");
        assert_normal_tail_close(comparison.p_value, 0.6573015834521267, "p");

        let swapped = delong_test(&SCORES_B, &SCORES_A, &LABELS).unwrap();
        assert_close(swapped.z, -0.44364179475277904, "swapped z");
        assert_normal_tail_close(swapped.p_value, 0.6573015834521267, "swapped p");
    }

    #[test]
    fn delong_test_identical_rankings_give_p_one() {
        // A monotone transform keeps every placement, so the difference and
        // its variance are both exactly 0.
        let transformed: Vec<f64> = SCORES_A.iter().map(|score| 3.0 * score + 1.0).collect();
        let comparison = delong_test(&SCORES_A, &transformed, &LABELS).unwrap();
        assert_eq!(comparison.z, 0.0);
        assert_eq!(comparison.p_value, 1.0);
    }

    #[test]
    fn delong_test_rejects_degenerate_variance() {
        // Model A separates perfectly and model B is constant, so every
        // placement difference is ½: the standard error is 0 while the AUCs
        // differ by ½.
        let labels = [true, true, false, false];
        let scores_a = [0.9, 0.8, 0.2, 0.1];
        let scores_b = [0.5; 4];
        assert_eq!(
            delong_test(&scores_a, &scores_b, &labels).unwrap_err(),
            StatsError::ZeroVariance { difference: 0.5 }
        );
    }

    #[test]
    fn delong_test_rejects_mismatched_lengths() {
        let error = delong_test(&SCORES_A, &SCORES_B[..27], &LABELS).unwrap_err();
        assert_eq!(
            error,
            StatsError::LengthMismatch {
                left_name: "scores_b",
                left: 27,
                right_name: "labels",
                right: 28
            }
        );
    }
}
