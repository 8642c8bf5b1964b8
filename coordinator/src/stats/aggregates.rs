//! Validation metrics from per-site aggregates, for external sites that share
//! only summaries of their predicted probabilities ("scores only").
//!
//! A site computes [`ScoreAggregates`] from its patients' predicted
//! probabilities and labels with the frozen cut-off and fixed calibration
//! edges broadcast by the coordinator. The coordinator merges the sites'
//! aggregates and computes:
//!
//! - the ROC AUC, exactly, from the merged ROC points, and its DeLong
//!   variance and interval ([`delong_from_roc_points`]);
//! - sensitivity, specificity, PPV, NPV, accuracy and F1 with Wilson
//!   intervals, from the merged confusion counts;
//! - the decision curve at any threshold, from the ROC points;
//! - the calibration curve and the Hosmer–Lemeshow test on the fixed edges;
//! - the Brier score and Spiegelhalter's z, from additive sums.
//!
//! Each result equals the per-patient computation on the pooled patients,
//! exactly for counts and the AUC, and up to summation order for sums of
//! probabilities.
//!
//! NOTE: the ROC points list every distinct score of the site with its
//! cumulative class counts, which reveals the site's score distribution per
//! class (but not which patient has which score). The DeLong placement of a
//! patient depends only on its score and class, so the DeLong variance is
//! exact from these points. Paired DeLong tests between two models and
//! bootstrap intervals need the pairing of scores, so they are not available. The
//! logistic recalibration needs several rounds of
//! `irls::LogisticSums::at_with_offset` instead of one set of aggregates.

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::calibration::{CalibrationBins, CalibrationSums, check_predictions};
use super::dca::DecisionCurve;
use super::hosmer_lemeshow::{HosmerLemeshow, hosmer_lemeshow_from_bins};
use super::roc::{AucEstimate, Z_975};
use super::threshold::Confusion;
use super::validate::compare_finite;
use super::wilson::{ThresholdMetrics, add_confusion};

/// One point of an empirical ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// A distinct score.
    pub threshold: f64,
    /// Number of positives with score ≥ threshold.
    pub tp: usize,
    /// Number of negatives with score ≥ threshold.
    pub fp: usize,
}

/// Returns the ROC points of `scores`: one per distinct score, in descending
/// order of threshold, with cumulative counts of score ≥ threshold. -0.0 and
/// 0.0 are one score. Scores must be finite.
pub fn roc_points(scores: &[f64], labels: &[bool]) -> Vec<RocPoint> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| compare_finite(scores[b], scores[a]));

    let mut points: Vec<RocPoint> = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for &index in &order {
        if labels[index] {
            tp += 1;
        } else {
            fp += 1;
        }
        match points.last_mut() {
            Some(last) if compare_finite(last.threshold, scores[index]).is_eq() => {
                last.tp = tp;
                last.fp = fp;
            }
            _ => points.push(RocPoint {
                threshold: scores[index],
                tp,
                fp,
            }),
        }
    }
    points
}

/// Merges two ROC point lists (each descending with cumulative counts) into
/// the ROC points of the pooled patients.
pub fn merge_roc_points(left: &[RocPoint], right: &[RocPoint]) -> Vec<RocPoint> {
    // Walk both lists from the highest threshold down. At a threshold t, the
    // pooled count is each side's count at its lowest threshold ≥ t.
    let mut merged: Vec<RocPoint> = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    let (mut left_counts, mut right_counts) = ((0, 0), (0, 0));
    while i < left.len() || j < right.len() {
        let threshold = match (left.get(i), right.get(j)) {
            (Some(a), Some(b)) => {
                if compare_finite(a.threshold, b.threshold).is_ge() {
                    a.threshold
                } else {
                    b.threshold
                }
            }
            (Some(a), None) => a.threshold,
            (None, Some(b)) => b.threshold,
            (None, None) => break,
        };
        if let Some(a) = left
            .get(i)
            .filter(|a| compare_finite(a.threshold, threshold).is_eq())
        {
            left_counts = (a.tp, a.fp);
            i += 1;
        }
        if let Some(b) = right
            .get(j)
            .filter(|b| compare_finite(b.threshold, threshold).is_eq())
        {
            right_counts = (b.tp, b.fp);
            j += 1;
        }
        merged.push(RocPoint {
            threshold,
            tp: left_counts.0 + right_counts.0,
            fp: left_counts.1 + right_counts.1,
        });
    }
    merged
}

/// Computes the ROC AUC by the trapezoidal rule on the step curve through
/// (0, 0) and the points (FP/N, TP/P).
///
/// The doubled area Σ ΔFP · (TPₖ + TPₖ₋₁) is summed in integers and equals
/// twice the Mann–Whitney U with ties counted ½. The result therefore equals
/// [`super::roc::roc_auc`] on the pooled scores, because both are the
/// correctly rounded value of the same fraction.
///
/// # Errors
///
/// [`StatsError::Empty`] for no points, [`StatsError::SingleClass`] when
/// the last point has no positives or no negatives, and
/// [`StatsError::InvalidParameter`] when the points are not cumulative in
/// descending threshold order.
pub fn auc_from_roc_points(points: &[RocPoint]) -> Result<f64, StatsError> {
    let Some(last) = points.last() else {
        return Err(StatsError::Empty {
            input: "roc_points",
        });
    };
    let (positives, negatives) = (last.tp, last.fp);
    if positives == 0 || negatives == 0 {
        return Err(StatsError::SingleClass {
            class: positives > 0,
            count: positives + negatives,
        });
    }

    let mut doubled_area: u128 = 0;
    let (mut previous_tp, mut previous_fp) = (0usize, 0usize);
    let mut previous_threshold = f64::INFINITY;
    for point in points {
        if point.tp < previous_tp
            || point.fp < previous_fp
            || point.threshold.is_nan()
            || point.threshold >= previous_threshold
        {
            return Err(StatsError::InvalidParameter {
                name: "roc point threshold",
                value: point.threshold,
                expected: "strictly descending thresholds with non-decreasing counts",
            });
        }
        let width = (point.fp - previous_fp) as u128;
        doubled_area += width * (point.tp + previous_tp) as u128;
        previous_tp = point.tp;
        previous_fp = point.fp;
        previous_threshold = point.threshold;
    }
    Ok(doubled_area as f64 / (2 * positives as u128 * negatives as u128) as f64)
}

/// Returns the AUC with its DeLong (1988) variance and 95% interval from
/// descending ROC points, equal to [`super::roc::delong_auc`] on the pooled
/// scores up to summation order.
///
/// At a distinct score s with a positives and b negatives (the differences
/// of consecutive cumulative counts), every positive has the placement
/// V10 = (#negatives below s + b/2) / N and every negative
/// V01 = (#positives above s + a/2) / M, where M and N are the class
/// totals. The variance is S10 / M + S01 / N with the ddof-1 variances of
/// the placements, each summed once per distinct score with its count.
///
/// # Errors
///
/// As [`auc_from_roc_points`], and [`StatsError::TooFewForVariance`] with
/// fewer than 2 positives or 2 negatives.
pub fn delong_from_roc_points(points: &[RocPoint]) -> Result<AucEstimate, StatsError> {
    let auc = auc_from_roc_points(points)?;
    let Some(last) = points.last() else {
        return Err(StatsError::Empty {
            input: "roc_points",
        });
    };
    let (m, n) = (last.tp, last.fp);
    if m < 2 || n < 2 {
        return Err(StatsError::TooFewForVariance {
            positives: m,
            negatives: n,
        });
    }

    // Placement values per distinct score, with their multiplicities.
    let mut positive_placements: Vec<(f64, usize)> = Vec::new();
    let mut negative_placements: Vec<(f64, usize)> = Vec::new();
    let (mut previous_tp, mut previous_fp) = (0usize, 0usize);
    for point in points {
        let positives_here = point.tp - previous_tp;
        let negatives_here = point.fp - previous_fp;
        if positives_here > 0 {
            let below = (n - point.fp) as f64 + 0.5 * negatives_here as f64;
            positive_placements.push((below / n as f64, positives_here));
        }
        if negatives_here > 0 {
            let above = previous_tp as f64 + 0.5 * positives_here as f64;
            negative_placements.push((above / m as f64, negatives_here));
        }
        previous_tp = point.tp;
        previous_fp = point.fp;
    }

    let variance = grouped_sample_variance(&positive_placements, m) / m as f64
        + grouped_sample_variance(&negative_placements, n) / n as f64;
    let half_width = Z_975 * variance.sqrt();
    Ok(AucEstimate {
        auc,
        variance,
        ci_low: (auc - half_width).max(0.0),
        ci_high: (auc + half_width).min(1.0),
    })
}

/// Returns the ddof-1 variance of `total` values given as (value, count)
/// pairs.
fn grouped_sample_variance(groups: &[(f64, usize)], total: usize) -> f64 {
    let mean = groups
        .iter()
        .map(|&(value, count)| value * count as f64)
        .sum::<f64>()
        / total as f64;
    groups
        .iter()
        .map(|&(value, count)| count as f64 * (value - mean).powi(2))
        .sum::<f64>()
        / (total - 1) as f64
}

/// Returns (TP, FP) with score ≥ `threshold` from descending ROC points.
fn counts_at_or_above(points: &[RocPoint], threshold: f64) -> (usize, usize) {
    let above = points.partition_point(|point| point.threshold >= threshold);
    match above {
        0 => (0, 0),
        count => (points[count - 1].tp, points[count - 1].fp),
    }
}

/// A site's summary of its predicted probabilities and labels for external
/// validation, sent in place of per-patient rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreAggregates {
    /// Number of patients.
    pub n: usize,
    /// Number of patients with y = true.
    pub n_positive: usize,
    /// ROC points at every distinct score, descending (see [`roc_points`]).
    pub roc_points: Vec<RocPoint>,
    /// The frozen cut-off the confusion counts use (positive when p ≥ cut-off).
    pub cutoff: f64,
    /// Confusion counts at `cutoff`.
    pub confusion: Confusion,
    /// Calibration counts and sums on the fixed edges.
    pub calibration_bins: CalibrationBins,
    /// Sums for the Brier score and Spiegelhalter's z.
    pub calibration_sums: CalibrationSums,
}

impl ScoreAggregates {
    /// Computes a site's aggregates from its predicted probabilities.
    ///
    /// A site with no patients or a single class is valid: its aggregates
    /// are merged with the other sites' before any metric is computed.
    ///
    /// # Errors
    ///
    /// [`StatsError::LengthMismatch`], [`StatsError::InvalidPrediction`] for
    /// a prediction outside [0, 1] or NaN, [`StatsError::InvalidParameter`]
    /// for a NaN cut-off or invalid edges.
    pub fn from_predictions(
        predictions: &[f64],
        labels: &[bool],
        cutoff: f64,
        edges: &[f64],
    ) -> Result<Self, StatsError> {
        check_predictions(predictions, labels)?;
        let calibration_bins = CalibrationBins::on_edges(edges, predictions, labels)?;
        Ok(Self {
            n: predictions.len(),
            n_positive: labels.iter().filter(|&&label| label).count(),
            roc_points: roc_points(predictions, labels),
            cutoff,
            confusion: Confusion::at_threshold(predictions, labels, cutoff)?,
            calibration_bins,
            calibration_sums: CalibrationSums::from_predictions(predictions, labels)?,
        })
    }

    /// Adds another site's aggregates to these.
    ///
    /// # Errors
    ///
    /// [`StatsError::AggregateMismatch`] if the cut-offs or the calibration
    /// edges differ.
    pub fn merge(&mut self, other: &ScoreAggregates) -> Result<(), StatsError> {
        if self.cutoff != other.cutoff {
            return Err(StatsError::AggregateMismatch {
                field: "cut-off",
                detail: format!("{} against {}", self.cutoff, other.cutoff),
            });
        }
        self.calibration_bins.merge(&other.calibration_bins)?;
        self.n += other.n;
        self.n_positive += other.n_positive;
        self.roc_points = merge_roc_points(&self.roc_points, &other.roc_points);
        self.confusion = add_confusion(self.confusion, other.confusion);
        self.calibration_sums.add(&other.calibration_sums);
        Ok(())
    }

    /// Returns the ROC AUC (see [`auc_from_roc_points`]).
    ///
    /// # Errors
    ///
    /// As [`auc_from_roc_points`].
    pub fn auc(&self) -> Result<f64, StatsError> {
        auc_from_roc_points(&self.roc_points)
    }

    /// Returns the metrics at the frozen cut-off with Wilson intervals.
    pub fn threshold_metrics(&self) -> ThresholdMetrics {
        ThresholdMetrics::from_confusion(self.confusion)
    }

    /// Returns the decision curve at `thresholds`, treating p ≥ pₜ.
    ///
    /// # Errors
    ///
    /// As [`DecisionCurve::from_counts`].
    pub fn decision_curve(&self, thresholds: &[f64]) -> Result<DecisionCurve, StatsError> {
        DecisionCurve::from_counts(
            thresholds,
            self.n_positive,
            self.n - self.n_positive,
            |threshold| counts_at_or_above(&self.roc_points, threshold),
        )
    }

    /// Returns the Hosmer–Lemeshow test on the fixed calibration edges.
    pub fn hosmer_lemeshow(&self) -> HosmerLemeshow {
        hosmer_lemeshow_from_bins(&self.calibration_bins)
    }
}

#[cfg(test)]
mod tests {
    use super::super::dca::{decision_curve, default_thresholds};
    use super::super::hosmer_lemeshow::hosmer_lemeshow_from_bins;
    use super::super::roc::roc_auc;
    use super::super::test_fixtures::{labels, section, vector};
    use super::super::{brier_score, spiegelhalter_test};
    use super::*;

    /// The AUC from aggregates and from ranks are the correctly rounded
    /// value of the same fraction.
    const EXACT_AUC_TOLERANCE: f64 = 1e-12;

    /// Sums of probabilities added in a different order.
    const SUM_TOLERANCE: f64 = 1e-12;

    fn edges() -> Vec<f64> {
        (0..=10).map(|k| k as f64 / 10.0).collect()
    }

    /// Three sites of unequal size from the fixture's predictions, which are
    /// rounded to 2 decimals so that ties occur within and across sites.
    fn sites() -> (Vec<f64>, Vec<bool>, Vec<ScoreAggregates>) {
        let data = section("aggregates");
        let p = vector(&data["p"]);
        let y = labels(&data["y"]);
        let cutoff = data["cutoff"].as_f64().unwrap();
        let bounds = [0, 31, 47, p.len()];
        let sites = bounds
            .windows(2)
            .map(|range| {
                ScoreAggregates::from_predictions(
                    &p[range[0]..range[1]],
                    &y[range[0]..range[1]],
                    cutoff,
                    &edges(),
                )
                .unwrap()
            })
            .collect();
        (p, y, sites)
    }

    fn merged(sites: &[ScoreAggregates]) -> ScoreAggregates {
        let mut total = sites[0].clone();
        for site in &sites[1..] {
            total.merge(site).unwrap();
        }
        total
    }

    #[test]
    fn aggregate_auc_equals_rank_auc() {
        let (p, y, sites) = sites();
        let total = merged(&sites);
        let expected = roc_auc(&p, &y).unwrap();
        let found = total.auc().unwrap();
        assert!(
            (found - expected).abs() <= EXACT_AUC_TOLERANCE,
            "{found} vs {expected}"
        );
        assert_eq!(found, expected);
    }

    #[test]
    fn delong_from_roc_points_matches_pooled() {
        let (p, y, sites) = sites();
        let total = merged(&sites);
        let expected = super::super::roc::delong_auc(&p, &y).unwrap();
        let found = delong_from_roc_points(&total.roc_points).unwrap();
        assert_eq!(found.auc, expected.auc);
        // The variance sums the same placements grouped by score instead of
        // one by one: a difference of summation order, a few ulps of a
        // variance near 1e-3.
        assert!(
            (found.variance - expected.variance).abs() <= 1e-15,
            "{} vs {}",
            found.variance,
            expected.variance
        );
        assert!((found.ci_low - expected.ci_low).abs() <= 1e-12);
        assert!((found.ci_high - expected.ci_high).abs() <= 1e-12);
    }

    #[test]
    fn delong_from_roc_points_needs_two_per_class() {
        let points = roc_points(&[0.9, 0.1, 0.2], &[true, false, false]);
        assert!(matches!(
            delong_from_roc_points(&points),
            Err(StatsError::TooFewForVariance {
                positives: 1,
                negatives: 2
            })
        ));
    }

    #[test]
    fn aggregate_auc_with_ties_across_sites() {
        // Site A and site B share scores 0.5 and 0.7, with mixed labels.
        let a_scores = [0.5, 0.7, 0.5, 0.2, 0.9];
        let a_labels = [true, false, false, false, true];
        let b_scores = [0.7, 0.5, 0.7, 0.1];
        let b_labels = [true, true, false, false];
        let mut total =
            ScoreAggregates::from_predictions(&a_scores, &a_labels, 0.5, &edges()).unwrap();
        total
            .merge(&ScoreAggregates::from_predictions(&b_scores, &b_labels, 0.5, &edges()).unwrap())
            .unwrap();

        let pooled_scores: Vec<f64> = a_scores.iter().chain(&b_scores).copied().collect();
        let pooled_labels: Vec<bool> = a_labels.iter().chain(&b_labels).copied().collect();
        assert_eq!(total.roc_points, roc_points(&pooled_scores, &pooled_labels));
        assert_eq!(
            total.auc().unwrap(),
            roc_auc(&pooled_scores, &pooled_labels).unwrap()
        );
    }

    #[test]
    fn merged_roc_points_equal_pooled_points() {
        let (p, y, sites) = sites();
        assert_eq!(merged(&sites).roc_points, roc_points(&p, &y));
    }

    #[test]
    fn roc_points_treat_signed_zeros_as_one_score() {
        let points = roc_points(&[0.0, -0.0, 0.4], &[true, false, true]);
        assert_eq!(points.len(), 2);
        assert_eq!((points[1].tp, points[1].fp), (2, 1));
    }

    #[test]
    fn aggregate_counts_equal_pooled_counts() {
        let (p, y, sites) = sites();
        let total = merged(&sites);
        let cutoff = total.cutoff;
        assert_eq!(total.n, p.len());
        assert_eq!(
            total.confusion,
            Confusion::at_threshold(&p, &y, cutoff).unwrap()
        );
        assert_eq!(
            total.threshold_metrics(),
            ThresholdMetrics::from_confusion(Confusion::at_threshold(&p, &y, cutoff).unwrap())
        );

        let pooled_bins = CalibrationBins::on_edges(&edges(), &p, &y).unwrap();
        assert_eq!(total.calibration_bins.counts, pooled_bins.counts);
        assert_eq!(total.calibration_bins.positives, pooled_bins.positives);
        let hl = total.hosmer_lemeshow();
        let pooled_hl = hosmer_lemeshow_from_bins(&pooled_bins);
        assert_eq!(hl.groups, pooled_hl.groups);
        assert!((hl.statistic - pooled_hl.statistic).abs() <= SUM_TOLERANCE);
    }

    #[test]
    fn aggregate_calibration_sums_equal_pooled() {
        let (p, y, sites) = sites();
        let total = merged(&sites);
        let brier = total.calibration_sums.brier_score().unwrap();
        assert!((brier - brier_score(&p, &y).unwrap()).abs() <= SUM_TOLERANCE);
        let z = total.calibration_sums.spiegelhalter().unwrap().z;
        assert!((z - spiegelhalter_test(&p, &y).unwrap().z).abs() <= SUM_TOLERANCE);
    }

    #[test]
    fn aggregate_decision_curve_equals_pooled() {
        let (p, y, sites) = sites();
        let total = merged(&sites);
        let from_aggregates = total.decision_curve(&default_thresholds()).unwrap();
        let pooled = decision_curve(&p, &y, &default_thresholds()).unwrap();
        // Counts are equal, so every net benefit is bitwise equal.
        assert_eq!(from_aggregates, pooled);
    }

    #[test]
    fn merge_rejects_different_cutoffs() {
        let mut left = ScoreAggregates::from_predictions(&[0.2], &[true], 0.5, &edges()).unwrap();
        let right = ScoreAggregates::from_predictions(&[0.2], &[true], 0.4, &edges()).unwrap();
        assert!(matches!(
            left.merge(&right).unwrap_err(),
            StatsError::AggregateMismatch {
                field: "cut-off",
                ..
            }
        ));
    }

    #[test]
    fn auc_from_roc_points_rejects_bad_points() {
        assert_eq!(
            auc_from_roc_points(&[]).unwrap_err(),
            StatsError::Empty {
                input: "roc_points"
            }
        );
        let one_class = [RocPoint {
            threshold: 0.4,
            tp: 2,
            fp: 0,
        }];
        assert!(matches!(
            auc_from_roc_points(&one_class).unwrap_err(),
            StatsError::SingleClass { .. }
        ));
        let ascending = [
            RocPoint {
                threshold: 0.2,
                tp: 1,
                fp: 0,
            },
            RocPoint {
                threshold: 0.4,
                tp: 1,
                fp: 1,
            },
        ];
        assert!(matches!(
            auc_from_roc_points(&ascending).unwrap_err(),
            StatsError::InvalidParameter { .. }
        ));
    }
}
