//! Mann–Whitney U test for univariate feature screening, and
//! Benjamini–Hochberg adjustment of the resulting p-values.
//!
//! Sources: H. B. Mann and D. R. Whitney (1947), "On a test of whether one of
//! two random variables is stochastically larger than the other", Annals of
//! Mathematical Statistics 18(1):50–60. Y. Benjamini and Y. Hochberg (1995),
//! "Controlling the false discovery rate: a practical and powerful approach to
//! multiple testing", Journal of the Royal Statistical Society B 57(1):289–300.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::StatsError;
use super::rank::mid_ranks;
use super::validate::{check_finite, check_non_empty, compare_finite};

/// Largest size of the smaller group for which the exact null distribution is
/// used (when there are no ties). SciPy 1.17.1 `_mwu_choose_method` uses the
/// exact distribution unless both groups are larger than 8.
const EXACT_MAX_SMALLER_GROUP: usize = 8;

/// Method that produced the p-value of a [`MannWhitney`] result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MwuMethod {
    /// Exact permutation distribution of U, without tie correction.
    Exact,
    /// Normal approximation with tie correction and continuity correction.
    Asymptotic,
}

/// Result of a two-sided Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U statistic of the positive group: the number of (positive, negative)
    /// pairs in which the positive value is larger, counting ties as 1/2.
    /// This is `statistic` of `scipy.stats.mannwhitneyu(positives, negatives)`.
    pub u: f64,
    /// `u / (n1 * n0)`: the ROC AUC of the feature, where 0.5 means no
    /// separation and values below 0.5 mean the negatives tend to be larger.
    pub auc: f64,
    /// Two-sided p-value, capped at 1.
    pub p_value: f64,
    /// Whether the p-value comes from the exact or the asymptotic distribution.
    pub method: MwuMethod,
}

/// Runs the two-sided Mann–Whitney U test of `positives` against `negatives`.
///
/// Reproduces `scipy.stats.mannwhitneyu(positives, negatives)` with its
/// defaults (`alternative="two-sided"`, `use_continuity=True`,
/// `method="auto"`) in SciPy 1.17.1:
///
/// - Ties get mid-ranks, and U of the positives is `R1 - n1 (n1 + 1) / 2`,
///   where `R1` is their rank sum in the pooled sample.
/// - The exact null distribution is used when the smaller group has at most 8
///   values and no two pooled values are equal. The p-value is
///   `2 P(U <= min(U1, U0))`, capped at 1.
/// - Otherwise the p-value is `2 (1 - Φ(z))`, capped at 1, with
///   `z = (max(U1, U0) - n1 n0 / 2 - 0.5) / σ` and the tie-corrected
///   `σ² = n1 n0 / 12 · ((n + 1) - Σ(t³ - t) / (n (n - 1)))`, where t runs over
///   the tie-group sizes. When every value is tied, σ is 0 and the p-value is 1.
///
/// NOTE: the asymptotic p-value uses statrs 0.19 `erfc`, whose relative error
/// is up to about 1e-10, so it agrees with SciPy to about 10 significant
/// digits. The exact branch counts arrangements in `i128`. If that overflows,
/// first at a smaller group of 8 and a larger group of 174,440, the normal
/// approximation is used and `method` is [`MwuMethod::Asymptotic`].
///
/// # Errors
///
/// [`StatsError::Empty`] if either group is empty, and
/// [`StatsError::NonFinite`] for the first NaN or infinity in either group.
pub fn mann_whitney_u(positives: &[f64], negatives: &[f64]) -> Result<MannWhitney, StatsError> {
    check_non_empty("positives", positives)?;
    check_non_empty("negatives", negatives)?;
    check_finite("positives", positives)?;
    check_finite("negatives", negatives)?;

    let n_positive = positives.len();
    let n_negative = negatives.len();
    let pairs = (n_positive * n_negative) as f64;

    let pooled: Vec<f64> = positives.iter().chain(negatives).copied().collect();
    let ranks = mid_ranks(&pooled);
    let positive_rank_sum: f64 = ranks.ranks[..n_positive].iter().sum();
    let u_positive = positive_rank_sum - (n_positive * (n_positive + 1)) as f64 / 2.0;
    let u_negative = pairs - u_positive;

    let has_ties = ranks.tie_group_sizes.iter().any(|&size| size > 1);
    let smaller_group = n_positive.min(n_negative);
    let larger_group = n_positive.max(n_negative);

    let mut method = MwuMethod::Asymptotic;
    let mut p_value = None;
    if smaller_group <= EXACT_MAX_SMALLER_GROUP && !has_ties {
        // Without ties U is an integer, so the rounding only removes float noise.
        let u_min = u_positive.min(u_negative).round() as usize;
        p_value = exact_two_sided_p(u_min, smaller_group, larger_group);
        if p_value.is_some() {
            method = MwuMethod::Exact;
        }
    }
    let p_value = match p_value {
        Some(p) => p,
        None => asymptotic_two_sided_p(
            u_positive.max(u_negative),
            n_positive,
            n_negative,
            &ranks.tie_group_sizes,
        ),
    };

    Ok(MannWhitney {
        u: u_positive,
        auc: u_positive / pairs,
        p_value,
        method,
    })
}

/// Computes `2 P(U <= u_min)`, capped at 1, under the exact null distribution
/// of U for groups of sizes `n_small <= n_large` without ties.
///
/// The number of arrangements with U = u is the coefficient of q^u in the
/// Gaussian binomial coefficient `[n_small + n_large choose n_small]_q`. It is
/// built as the product over i = 1..=n_small of
/// `(1 - q^(n_large + i)) / (1 - q^i)`, truncated at degree `u_min`, because the
/// lower tail needs no higher coefficients. Returns `None` on `i128` overflow.
fn exact_two_sided_p(u_min: usize, n_small: usize, n_large: usize) -> Option<f64> {
    let mut counts = vec![0_i128; u_min + 1];
    counts[0] = 1;
    for i in 1..=n_small {
        // Multiply by (1 - q^shift). Descending order reads the old lower terms.
        let shift = n_large + i;
        for u in (shift..=u_min).rev() {
            counts[u] = counts[u].checked_sub(counts[u - shift])?;
        }
        // Divide by (1 - q^i), that is multiply by 1 + q^i + q^2i + ...
        // Ascending order reads the already-divided lower terms.
        for u in i..=u_min {
            counts[u] = counts[u].checked_add(counts[u - i])?;
        }
    }

    let mut lower_tail: i128 = 0;
    for &count in &counts {
        lower_tail = lower_tail.checked_add(count)?;
    }

    // Binomial(n_small + n_large, n_small); every partial product is itself a
    // binomial coefficient, so the division is exact.
    let mut arrangements: i128 = 1;
    for i in 1..=n_small {
        arrangements = arrangements.checked_mul((n_large + i) as i128)? / i as i128;
    }

    Some((2.0 * (lower_tail as f64 / arrangements as f64)).min(1.0))
}

/// Computes the two-sided p-value of U from the tie-corrected normal
/// approximation with continuity correction, capped at 1.
fn asymptotic_two_sided_p(
    u_max: f64,
    n_positive: usize,
    n_negative: usize,
    tie_group_sizes: &[usize],
) -> f64 {
    let n1 = n_positive as f64;
    let n0 = n_negative as f64;
    let n = n1 + n0;
    let tie_term: f64 = tie_group_sizes
        .iter()
        .map(|&size| {
            let t = size as f64;
            t * t * t - t
        })
        .sum();
    let variance = n1 * n0 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));

    // The tie-corrected variance is 0 only when every pooled value is equal.
    // U then equals its mean and the test has no evidence either way.
    if variance <= 0.0 {
        return 1.0;
    }

    // U is the larger of U1 and U0, so subtracting 0.5 moves it towards the mean.
    let z = (u_max - n1 * n0 / 2.0 - 0.5) / variance.sqrt();
    (2.0 * Normal::standard().sf(z)).min(1.0)
}

/// Returns Benjamini–Hochberg adjusted p-values (q-values), in input order.
///
/// For p-values sorted ascending, `q_(i) = min over j >= i of p_(j) · m / j`,
/// capped at 1, so the q-values are monotone in p. Reproduces
/// `scipy.stats.false_discovery_control(p, method="bh")` of SciPy 1.17.1 and
/// R's `p.adjust(p, "BH")`. Equal p-values get equal q-values. An empty input
/// returns an empty vector.
///
/// # Errors
///
/// [`StatsError::InvalidProbability`] for the first value outside [0, 1],
/// including NaN.
pub fn benjamini_hochberg(p: &[f64]) -> Result<Vec<f64>, StatsError> {
    if let Some(index) = p.iter().position(|value| !(0.0..=1.0).contains(value)) {
        return Err(StatsError::InvalidProbability {
            index,
            value: p[index],
        });
    }

    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| compare_finite(p[a], p[b]));

    let mut q = vec![0.0; m];
    let mut running_min = f64::INFINITY;
    for (position, &index) in order.iter().enumerate().rev() {
        let rank = (position + 1) as f64;
        running_min = running_min.min(p[index] * (m as f64 / rank));
        q[index] = running_min.min(1.0);
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The U statistic and the p-values are closed forms evaluated in a
    /// different order than SciPy, so only rounding differs.
    const CLOSED_FORM_TOLERANCE: f64 = 1e-12;

    /// The asymptotic p-value goes through statrs 0.19 `erfc`, whose relative
    /// error against CPython's `math.erfc` peaks at 1.0e-10 (measured at
    /// z = 0, 0.05, ..., 12). SciPy's `ndtr` is accurate to a few ulp.
    const NORMAL_TAIL_RELATIVE_TOLERANCE: f64 = 2e-10;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= CLOSED_FORM_TOLERANCE,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    fn assert_normal_tail_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= NORMAL_TAIL_RELATIVE_TOLERANCE * expected,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    // Expected values: scipy 1.17.1, numpy 2.4.6, from
    //   r = scipy.stats.mannwhitneyu(pos, neg); (r.statistic, r.pvalue)
    // with `pos` and `neg` as in each test.

    #[test]
    fn mann_whitney_exact_without_ties() {
        // scipy chooses "exact": 5 positives, 7 negatives, no ties.
        let positives = [1.1, 2.3, 3.5, 4.2, 5.9];
        let negatives = [0.5, 1.7, 2.0, 2.8, 3.1, 3.3, 0.9];
        let result = mann_whitney_u(&positives, &negatives).unwrap();
        assert_eq!(result.method, MwuMethod::Exact);
        assert_close(result.u, 27.0, "u");
        assert_close(result.auc, 0.7714285714285715, "auc");
        assert_close(result.p_value, 0.148989898989899, "p");
    }

    #[test]
    fn mann_whitney_matches_scipy_with_ties() {
        // Ties force "asymptotic" although both groups are small.
        let positives = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 7.0];
        let negatives = [2.0, 3.0, 3.0, 4.0, 1.0, 0.0, 5.0, 6.0];
        let result = mann_whitney_u(&positives, &negatives).unwrap();
        assert_eq!(result.method, MwuMethod::Asymptotic);
        assert_close(result.u, 31.5, "u");
        assert_close(result.auc, 0.5625, "auc");
        assert_normal_tail_close(result.p_value, 0.7253753858423436, "p");
    }

    #[test]
    fn mann_whitney_asymptotic_without_ties() {
        // Both groups larger than 8: "asymptotic" with the continuity correction.
        let positives = [0.31, 1.42, 2.05, 0.77, 1.93, 2.61, 1.18, 0.12, 2.44, 1.67];
        let negatives = [
            0.05, 0.58, 1.01, -0.42, 0.93, 1.36, -0.11, 0.24, 0.66, 1.72, 0.49, 0.88,
        ];
        let result = mann_whitney_u(&positives, &negatives).unwrap();
        assert_eq!(result.method, MwuMethod::Asymptotic);
        assert_close(result.u, 94.0, "u");
        assert_normal_tail_close(result.p_value, 0.027179886800582677, "p");
    }

    #[test]
    fn mann_whitney_exact_at_smaller_group_of_eight() {
        // pos = list(np.arange(8) * 1.5 + 0.25); neg = list(np.arange(20) * 0.6)
        // A smaller group of exactly 8 still selects "exact" in scipy 1.17.1.
        let positives: Vec<f64> = (0..8).map(|i| i as f64 * 1.5 + 0.25).collect();
        let negatives: Vec<f64> = (0..20).map(|i| i as f64 * 0.6).collect();
        let result = mann_whitney_u(&positives, &negatives).unwrap();
        assert_eq!(result.method, MwuMethod::Exact);
        assert_close(result.u, 76.0, "u");
        assert_close(result.p_value, 0.8616665138404269, "p");
    }

    #[test]
    fn mann_whitney_asymptotic_when_both_groups_exceed_eight() {
        // pos = list(np.arange(9) * 1.5 + 0.25); neg = list(np.arange(9) * 0.6 + 0.1)
        // The exact p-value would be 0.05030851501439737.
        let positives: Vec<f64> = (0..9).map(|i| i as f64 * 1.5 + 0.25).collect();
        let negatives: Vec<f64> = (0..9).map(|i| i as f64 * 0.6 + 0.1).collect();
        let result = mann_whitney_u(&positives, &negatives).unwrap();
        assert_eq!(result.method, MwuMethod::Asymptotic);
        assert_close(result.u, 63.0, "u");
        assert_normal_tail_close(result.p_value, 0.052058768750600205, "p");
    }

    #[test]
    fn mann_whitney_all_tied_gives_p_one() {
        // σ = 0: scipy returns statistic 3.0 and p-value 1.0.
        let result = mann_whitney_u(&[2.0, 2.0, 2.0], &[2.0, 2.0]).unwrap();
        assert_eq!(result.method, MwuMethod::Asymptotic);
        assert_close(result.u, 3.0, "u");
        assert_close(result.auc, 0.5, "auc");
        assert_eq!(result.p_value, 1.0);
    }

    #[test]
    fn mann_whitney_single_positive_caps_p_at_one() {
        // U = 3 of 5 pairs: 2 P(U <= 2) = 2 · 3/6 = 1.
        let result = mann_whitney_u(&[3.0], &[1.0, 2.0, 4.0, 5.0, 0.5]).unwrap();
        assert_eq!(result.method, MwuMethod::Exact);
        assert_close(result.u, 3.0, "u");
        assert_close(result.auc, 0.6, "auc");
        assert_eq!(result.p_value, 1.0);
    }

    #[test]
    fn mann_whitney_complete_separation() {
        // Exact p = 2 / C(9, 4) = 2 / 126.
        let positives = [10.0, 11.0, 12.0, 13.0];
        let negatives = [1.0, 2.0, 3.0, 4.0, 5.0];
        let result = mann_whitney_u(&positives, &negatives).unwrap();
        assert_eq!(result.method, MwuMethod::Exact);
        assert_close(result.u, 20.0, "u");
        assert_close(result.auc, 1.0, "auc");
        assert_close(result.p_value, 0.015873015873015872, "p");

        let reversed = mann_whitney_u(&negatives, &positives).unwrap();
        assert_close(reversed.u, 0.0, "reversed u");
        assert_close(reversed.auc, 0.0, "reversed auc");
        assert_close(reversed.p_value, 0.015873015873015872, "reversed p");
    }

    #[test]
    fn mann_whitney_rejects_empty_group() {
        let error = mann_whitney_u(&[], &[1.0]).unwrap_err();
        assert_eq!(error, StatsError::Empty { input: "positives" });
        let error = mann_whitney_u(&[1.0], &[]).unwrap_err();
        assert_eq!(error, StatsError::Empty { input: "negatives" });
    }

    #[test]
    fn mann_whitney_rejects_nan_with_index() {
        let error = mann_whitney_u(&[1.0, 2.0], &[0.5, f64::NAN, 3.0]).unwrap_err();
        match error {
            StatsError::NonFinite {
                input,
                index,
                value,
            } => {
                assert_eq!(input, "negatives");
                assert_eq!(index, 1);
                assert!(value.is_nan());
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        let message = mann_whitney_u(&[f64::INFINITY], &[1.0])
            .unwrap_err()
            .to_string();
        assert_eq!(message, "non-finite value inf in positives at index 0");
    }

    #[test]
    fn mann_whitney_falls_back_when_exact_count_overflows() {
        // C(174_448, 8) · 8, the last partial product, exceeds i128::MAX.
        let positives: Vec<f64> = (0..8).map(|i| i as f64 * 1000.0 + 0.5).collect();
        let negatives: Vec<f64> = (0..174_440).map(|i| i as f64).collect();
        let result = mann_whitney_u(&positives, &negatives).unwrap();
        assert_eq!(result.method, MwuMethod::Asymptotic);
        assert!(result.p_value > 0.0, "p = {}", result.p_value);
        assert!(result.p_value <= 1.0, "p = {}", result.p_value);
    }

    #[test]
    fn exact_distribution_sums_to_one() {
        // The full lower tail up to n1 n0 counts every arrangement, so 2 P = 2.
        let p = exact_two_sided_p(3 * 5, 3, 5).unwrap();
        assert_eq!(p, 1.0);
        // P(U <= 0) = 1 / C(8, 3) = 1 / 56.
        let p = exact_two_sided_p(0, 3, 5).unwrap();
        assert_close(p, 2.0 / 56.0, "p at u = 0");
    }

    // Expected values: scipy 1.17.1,
    //   scipy.stats.false_discovery_control(ps, method="bh")

    #[test]
    fn benjamini_hochberg_matches_scipy() {
        let p = [0.01, 0.04, 0.03, 0.04, 0.2, 0.9, 0.5, 0.001];
        let expected = [
            0.04,
            0.064,
            0.064,
            0.064,
            0.26666666666666666,
            0.9,
            0.5714285714285714,
            0.008,
        ];
        let q = benjamini_hochberg(&p).unwrap();
        assert_eq!(q.len(), expected.len());
        for (index, (&actual, &wanted)) in q.iter().zip(&expected).enumerate() {
            assert_close(actual, wanted, &format!("q[{index}]"));
        }
    }

    #[test]
    fn benjamini_hochberg_caps_at_one() {
        // scipy: false_discovery_control([1.0, 0.8, 0.95]) -> [1., 1., 1.]
        let q = benjamini_hochberg(&[1.0, 0.8, 0.95]).unwrap();
        assert_eq!(q, vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn benjamini_hochberg_is_monotone_in_p() {
        let p = [0.2, 0.001, 0.04, 0.03, 0.5, 0.012, 0.049];
        let q = benjamini_hochberg(&p).unwrap();
        for a in 0..p.len() {
            assert!(q[a] >= p[a], "q[{a}] = {} is below p = {}", q[a], p[a]);
            for b in 0..p.len() {
                if p[a] <= p[b] {
                    assert!(q[a] <= q[b], "q not monotone between {a} and {b}");
                }
            }
        }
    }

    #[test]
    fn benjamini_hochberg_empty_and_single() {
        assert_eq!(benjamini_hochberg(&[]).unwrap(), Vec::<f64>::new());
        assert_eq!(benjamini_hochberg(&[0.3]).unwrap(), vec![0.3]);
    }

    #[test]
    fn benjamini_hochberg_rejects_invalid_p() {
        let error = benjamini_hochberg(&[0.1, 1.5]).unwrap_err();
        assert_eq!(
            error,
            StatsError::InvalidProbability {
                index: 1,
                value: 1.5
            }
        );
        let error = benjamini_hochberg(&[f64::NAN]).unwrap_err();
        assert!(matches!(
            error,
            StatsError::InvalidProbability { index: 0, .. }
        ));
    }
}
