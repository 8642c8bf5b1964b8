//! Decision curve analysis: net benefit of treating by the model, treating
//! everyone and treating no one, over a grid of threshold probabilities.
//!
//! Let, at threshold probability pₜ ∈ (0, 1):
//!
//! ```text
//! N           number of patients, π = (number with y = true) / N
//! TP, FP      positives and negatives with p ≥ pₜ   (treated)
//! NB_model  = TP / N − (FP / N) · pₜ / (1 − pₜ)
//! NB_all    = π − (1 − π) · pₜ / (1 − pₜ)
//! NB_none   = 0
//! ```
//!
//! A patient is treated when p ≥ pₜ, as in dcurves 1.1.7 (`risks >=
//! threshold`). dcurves also moves predictions of exactly 0 to −ε and of
//! exactly 1 to 1 + ε, which only matters at pₜ = 0 or 1; those thresholds
//! are rejected here because pₜ / (1 − pₜ) is undefined at 1.
//!
//! Source: A. J. Vickers and E. B. Elkin (2006), "Decision curve analysis: a
//! novel method for evaluating prediction models", Medical Decision Making
//! 26(6):565–574. Reference implementation: dcurves 1.1.7 `dca(data,
//! outcome, modelnames, thresholds)` with no harm, whose `net_benefit`
//! column for the model, "all" and "none" this reproduces.

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::calibration::check_predictions;
use super::validate::check_non_empty;

/// Net benefit of the three strategies at one threshold probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetBenefitPoint {
    /// Threshold probability pₜ.
    pub threshold: f64,
    /// Net benefit of treating patients with p ≥ pₜ.
    pub model: f64,
    /// Net benefit of treating every patient.
    pub treat_all: f64,
    /// Net benefit of treating no patient, always 0.
    pub treat_none: f64,
}

/// A decision curve on one set of patients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionCurve {
    /// Number of patients N.
    pub n: usize,
    /// Prevalence π of y = true. Divide a net benefit by π for the
    /// standardised net benefit.
    pub prevalence: f64,
    /// One point per threshold, in the order of the thresholds passed in.
    pub points: Vec<NetBenefitPoint>,
}

/// Returns the study's threshold grid 0.01, 0.02, …, 0.99 as `k / 100.0`,
/// the same floats as Python's `[i / 100 for i in range(1, 100)]`.
pub fn default_thresholds() -> Vec<f64> {
    (1..100).map(|k| k as f64 / 100.0).collect()
}

impl DecisionCurve {
    /// Builds the curve from counts: `treated_at(pₜ)` returns (TP, FP), the
    /// positives and negatives with p ≥ pₜ. This is the form for counts
    /// summed across sites.
    ///
    /// # Errors
    ///
    /// [`StatsError::Empty`] when there are no patients, and
    /// [`StatsError::InvalidParameter`] for a threshold outside (0, 1).
    pub fn from_counts<F>(
        thresholds: &[f64],
        n_positive: usize,
        n_negative: usize,
        mut treated_at: F,
    ) -> Result<Self, StatsError>
    where
        F: FnMut(f64) -> (usize, usize),
    {
        check_thresholds(thresholds)?;
        let n = n_positive + n_negative;
        if n == 0 {
            return Err(StatsError::Empty {
                input: "predictions",
            });
        }

        let total = n as f64;
        let prevalence = n_positive as f64 / total;
        let points = thresholds
            .iter()
            .map(|&threshold| {
                let odds = threshold / (1.0 - threshold);
                let (true_positives, false_positives) = treated_at(threshold);
                NetBenefitPoint {
                    threshold,
                    model: true_positives as f64 / total - false_positives as f64 / total * odds,
                    treat_all: prevalence - (1.0 - prevalence) * odds,
                    treat_none: 0.0,
                }
            })
            .collect();
        Ok(Self {
            n,
            prevalence,
            points,
        })
    }
}

/// Computes the decision curve of predicted probabilities at `thresholds`
/// (use [`default_thresholds`] for the study's grid).
///
/// # Errors
///
/// [`StatsError::LengthMismatch`], [`StatsError::InvalidPrediction`] for a
/// prediction outside [0, 1], [`StatsError::Empty`] for no predictions, and
/// [`StatsError::InvalidParameter`] for a threshold outside (0, 1).
pub fn decision_curve(
    predictions: &[f64],
    labels: &[bool],
    thresholds: &[f64],
) -> Result<DecisionCurve, StatsError> {
    check_predictions(predictions, labels)?;
    check_non_empty("predictions", predictions)?;
    let n_positive = labels.iter().filter(|&&label| label).count();
    let n_negative = labels.len() - n_positive;

    // Scores sorted in descending order per class, so the count with
    // p ≥ pₜ is a partition point.
    let descending = |class: bool| {
        let mut scores: Vec<f64> = predictions
            .iter()
            .zip(labels)
            .filter(|&(_, &label)| label == class)
            .map(|(&score, _)| score)
            .collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        scores
    };
    let positives = descending(true);
    let negatives = descending(false);

    DecisionCurve::from_counts(thresholds, n_positive, n_negative, |threshold| {
        (
            positives.partition_point(|&score| score >= threshold),
            negatives.partition_point(|&score| score >= threshold),
        )
    })
}

fn check_thresholds(thresholds: &[f64]) -> Result<(), StatsError> {
    match thresholds
        .iter()
        .find(|&&threshold| !(threshold > 0.0 && threshold < 1.0))
    {
        Some(&threshold) => Err(StatsError::InvalidParameter {
            name: "threshold probability",
            value: threshold,
            expected: "a number strictly between 0 and 1",
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::{labels, section, vector};
    use super::*;

    /// dcurves computes TP/N as (TP / N₁) · (N₁ / N), one rounding more than
    /// TP / N here, so the two differ in the last bits only.
    const NET_BENEFIT_TOLERANCE: f64 = 1e-14;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= NET_BENEFIT_TOLERANCE,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    #[test]
    fn decision_curve_matches_dcurves() {
        let data = section("dca");
        for case in data.as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let p = vector(&case["p"]);
            let y = labels(&case["y"]);
            let curve = decision_curve(&p, &y, &default_thresholds()).unwrap();
            let thresholds = vector(&case["thresholds"]);
            let model = vector(&case["net_benefit_model"]);
            let all = vector(&case["net_benefit_all"]);
            let none = vector(&case["net_benefit_none"]);
            assert_eq!(curve.points.len(), thresholds.len(), "{name}");
            for (index, point) in curve.points.iter().enumerate() {
                assert_eq!(point.threshold, thresholds[index], "{name}: grid {index}");
                let label = format!("{name} at {}", point.threshold);
                assert_close(point.model, model[index], &format!("{label}: model"));
                assert_close(point.treat_all, all[index], &format!("{label}: all"));
                assert_close(point.treat_none, none[index], &format!("{label}: none"));
            }
        }
    }

    #[test]
    fn decision_curve_treats_ties_at_threshold() {
        // p = 0.3 is treated at pₜ = 0.3 (p ≥ pₜ) but not at 0.31.
        let curve = decision_curve(&[0.3, 0.1], &[true, false], &[0.3, 0.31]).unwrap();
        assert_eq!(curve.points[0].model, 0.5);
        assert_eq!(curve.points[1].model, 0.0);
    }

    #[test]
    fn default_grid_has_99_thresholds() {
        let grid = default_thresholds();
        assert_eq!(grid.len(), 99);
        assert_eq!(grid[0], 0.01);
        assert_eq!(grid[29], 0.3);
        assert_eq!(grid[98], 0.99);
    }

    #[test]
    fn decision_curve_rejects_bad_input() {
        for threshold in [0.0, 1.0, f64::NAN] {
            let error = decision_curve(&[0.5], &[true], &[threshold]).unwrap_err();
            assert!(
                matches!(error, StatsError::InvalidParameter { .. }),
                "threshold {threshold}: {error:?}"
            );
        }
        let error = decision_curve(&[], &[], &[0.5]).unwrap_err();
        assert_eq!(
            error,
            StatsError::Empty {
                input: "predictions"
            }
        );
        let error = decision_curve(&[1.5], &[true], &[0.5]).unwrap_err();
        assert!(matches!(error, StatsError::InvalidPrediction { .. }));
    }
}
