//! Proportions with Wilson score 95% confidence intervals, and the
//! threshold metrics built from confusion counts.
//!
//! Let:
//!
//! ```text
//! k, n   successes and trials
//! p̂ = k / n
//! z = Φ⁻¹(0.975) = 1.959963984540054
//! centre    = (p̂ + z² / (2n)) / (1 + z² / n)
//! halfwidth = z √(p̂ (1 − p̂) / n + z² / (4n²)) / (1 + z² / n)
//! CI = [centre − halfwidth, centre + halfwidth], clipped to [0, 1]
//! ```
//!
//! Source: E. B. Wilson (1927), "Probable inference, the law of succession,
//! and statistical inference", J. Am. Stat. Assoc. 22(158):209–212; L. D.
//! Brown, T. T. Cai and A. DasGupta (2001), "Interval estimation for a
//! binomial proportion", Statistical Science 16(2):101–133.
//! Reference implementation: statsmodels 0.15.0
//! `proportion_confint(k, n, alpha=0.05, method="wilson")`, which computes
//! the same expressions in the same order and clips to [0, 1].

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::threshold::Confusion;

/// Φ⁻¹(0.975), the two-sided 95% normal quantile, as SciPy 1.17.1
/// `norm.isf(0.025)` returns it.
const Z_975: f64 = 1.959_963_984_540_054;

/// A binomial proportion with its Wilson score 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    /// Number of successes k.
    pub successes: usize,
    /// Number of trials n, at least 1.
    pub trials: usize,
    /// Point estimate k / n.
    pub estimate: f64,
    /// Lower bound of the Wilson 95% interval.
    pub ci_low: f64,
    /// Upper bound of the Wilson 95% interval.
    pub ci_high: f64,
}

impl Proportion {
    /// Computes k / n and its Wilson score 95% interval from the counts.
    ///
    /// # Errors
    ///
    /// [`StatsError::Empty`] when `trials` is 0, where statsmodels returns
    /// NaN, and [`StatsError::InvalidParameter`] when `successes` exceeds
    /// `trials`.
    pub fn wilson(successes: usize, trials: usize) -> Result<Self, StatsError> {
        if trials == 0 {
            return Err(StatsError::Empty { input: "trials" });
        }
        if successes > trials {
            return Err(StatsError::InvalidParameter {
                name: "successes",
                value: successes as f64,
                expected: "at most the number of trials",
            });
        }

        let n = trials as f64;
        let estimate = successes as f64 / n;
        let z_squared = Z_975 * Z_975;
        let denominator = 1.0 + z_squared / n;
        let centre = (estimate + z_squared / (2.0 * n)) / denominator;
        let half_width = Z_975
            * (estimate * (1.0 - estimate) / n + z_squared / (4.0 * n * n)).sqrt()
            / denominator;
        Ok(Self {
            successes,
            trials,
            estimate,
            ci_low: (centre - half_width).clamp(0.0, 1.0),
            ci_high: (centre + half_width).clamp(0.0, 1.0),
        })
    }
}

/// Returns the proportion, or `None` when there are no trials. Every caller
/// passes a part of the confusion counts as `successes` and a sum that
/// contains it as `trials`, so only `trials == 0` makes `wilson` fail.
fn proportion(successes: usize, trials: usize) -> Option<Proportion> {
    Proportion::wilson(successes, trials).ok()
}

/// Classification metrics at one fixed cut-off, each proportion with its
/// Wilson 95% interval.
///
/// A metric whose denominator is 0 is `None`, for example PPV when no
/// patient is predicted positive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdMetrics {
    /// The counts the metrics come from.
    pub confusion: Confusion,
    /// Sensitivity (recall) TP / (TP + FN).
    pub sensitivity: Option<Proportion>,
    /// Specificity TN / (TN + FP).
    pub specificity: Option<Proportion>,
    /// Positive predictive value (precision) TP / (TP + FP).
    pub ppv: Option<Proportion>,
    /// Negative predictive value TN / (TN + FN).
    pub npv: Option<Proportion>,
    /// Accuracy (TP + TN) / N.
    pub accuracy: Option<Proportion>,
    /// F1 = 2 TP / (2 TP + FP + FN), the harmonic mean of PPV and sensitivity.
    ///
    /// NOTE: F1 is not a binomial proportion, so it has no Wilson interval.
    /// Use the stratified bootstrap for its uncertainty.
    pub f1: Option<f64>,
}

impl ThresholdMetrics {
    /// Computes the metrics from confusion counts, for example from
    /// [`Confusion::at_threshold`] with the cut-off frozen on `train`, or from
    /// the sum of several sites' counts.
    pub fn from_confusion(confusion: Confusion) -> Self {
        let Confusion { tp, fp, tn, fn_ } = confusion;
        let f1_denominator = 2 * tp + fp + fn_;
        Self {
            confusion,
            sensitivity: proportion(tp, tp + fn_),
            specificity: proportion(tn, tn + fp),
            ppv: proportion(tp, tp + fp),
            npv: proportion(tn, tn + fn_),
            accuracy: proportion(tp + tn, tp + fp + tn + fn_),
            f1: (f1_denominator > 0).then(|| 2.0 * tp as f64 / f1_denominator as f64),
        }
    }
}

/// Returns the element-wise sum of two sites' confusion counts at the same
/// cut-off.
pub fn add_confusion(left: Confusion, right: Confusion) -> Confusion {
    Confusion {
        tp: left.tp + right.tp,
        fp: left.fp + right.fp,
        tn: left.tn + right.tn,
        fn_: left.fn_ + right.fn_,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::section;
    use super::*;

    /// The same closed form in the same operation order as statsmodels, so
    /// only libm differences in `sqrt` and division could remain.
    const CLOSED_FORM_TOLERANCE: f64 = 1e-15;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= CLOSED_FORM_TOLERANCE,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    fn count(value: &serde_json::Value) -> usize {
        value.as_u64().unwrap() as usize
    }

    #[test]
    fn wilson_matches_statsmodels() {
        let cases = section("wilson");
        for case in cases.as_array().unwrap() {
            let (successes, trials) = (count(&case["count"]), count(&case["nobs"]));
            let interval = Proportion::wilson(successes, trials).unwrap();
            let label = format!("{successes}/{trials}");
            assert_close(interval.ci_low, case["low"].as_f64().unwrap(), &label);
            assert_close(interval.ci_high, case["high"].as_f64().unwrap(), &label);
            assert_eq!(interval.estimate, successes as f64 / trials as f64);
        }
    }

    #[test]
    fn wilson_bounds_stay_in_unit_interval() {
        // The bound is 0 mathematically; rounding leaves about 1e-17, as in
        // statsmodels (2.8e-17 for 0/7).
        let none = Proportion::wilson(0, 7).unwrap();
        assert!(none.ci_low >= 0.0, "{none:?}");
        assert!(none.ci_low < CLOSED_FORM_TOLERANCE, "{none:?}");
        assert!(none.ci_high > 0.0, "{none:?}");
        assert!(none.ci_high < 1.0, "{none:?}");
        let all = Proportion::wilson(7, 7).unwrap();
        assert!(all.ci_high <= 1.0, "{all:?}");
        assert!(all.ci_high > 1.0 - CLOSED_FORM_TOLERANCE, "{all:?}");
        assert!(all.ci_low > 0.0, "{all:?}");
        assert!(all.ci_low < 1.0, "{all:?}");
    }

    #[test]
    fn wilson_rejects_invalid_counts() {
        assert_eq!(
            Proportion::wilson(0, 0).unwrap_err(),
            StatsError::Empty { input: "trials" }
        );
        assert!(matches!(
            Proportion::wilson(5, 4).unwrap_err(),
            StatsError::InvalidParameter {
                name: "successes",
                ..
            }
        ));
    }

    #[test]
    fn threshold_metrics_from_counts() {
        let confusion = Confusion {
            tp: 9,
            fp: 2,
            tn: 14,
            fn_: 3,
        };
        let metrics = ThresholdMetrics::from_confusion(confusion);
        assert_eq!(metrics.sensitivity.unwrap().estimate, 9.0 / 12.0);
        assert_eq!(metrics.specificity.unwrap().estimate, 14.0 / 16.0);
        assert_eq!(metrics.ppv.unwrap().estimate, 9.0 / 11.0);
        assert_eq!(metrics.npv.unwrap().estimate, 14.0 / 17.0);
        assert_eq!(metrics.accuracy.unwrap().estimate, 23.0 / 28.0);
        assert_eq!(metrics.f1.unwrap(), 18.0 / 23.0);
        assert_eq!(
            metrics.sensitivity.unwrap(),
            Proportion::wilson(9, 12).unwrap()
        );
    }

    #[test]
    fn threshold_metrics_missing_denominators() {
        // No patient predicted positive: PPV is undefined.
        let confusion = Confusion {
            tp: 0,
            fp: 0,
            tn: 5,
            fn_: 3,
        };
        let metrics = ThresholdMetrics::from_confusion(confusion);
        assert_eq!(metrics.ppv, None);
        assert_eq!(metrics.sensitivity.unwrap().estimate, 0.0);
        assert_eq!(metrics.f1, Some(0.0));

        let empty = ThresholdMetrics::from_confusion(Confusion {
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
        });
        assert_eq!(empty.accuracy, None);
        assert_eq!(empty.f1, None);
    }

    #[test]
    fn add_confusion_sums_counts() {
        let total = add_confusion(
            Confusion {
                tp: 1,
                fp: 2,
                tn: 3,
                fn_: 4,
            },
            Confusion {
                tp: 10,
                fp: 20,
                tn: 30,
                fn_: 40,
            },
        );
        assert_eq!(
            total,
            Confusion {
                tp: 11,
                fp: 22,
                tn: 33,
                fn_: 44
            }
        );
    }
}
