//! Scores-only validation: what a site releases about a frozen model's
//! predicted probabilities on its patients, with no per-patient score.
//!
//! The definitions are those the coordinator merges:
//!
//! - ROC points: one per distinct probability, in descending order, with
//!   the counts of positives (tp) and negatives (fp) whose probability is
//!   ≥ that threshold. −0.0 and 0.0 are one score.
//! - Confusion counts at the frozen cut-off: a patient is predicted
//!   positive when p ≥ cut-off.
//! - Calibration bins on edges e0 ≤ e1 ≤ … ≤ eK: bin b contains the p with
//!   e_b < p ≤ e_(b+1), and bin 0 also contains p = e0. This is NumPy's
//!   `searchsorted(edges[1:-1], p, side="left")`, the rule of the
//!   coordinator's `CalibrationBins::on_edges`.
//! - Σ (p − y)² for the Brier score, and Σ (y − p)(1 − 2p) and
//!   Σ (1 − 2p)² p (1 − p) for Spiegelhalter's z.

use super::CompensatedSum;

/// Cut-off and calibration edges that are not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreSettingsError {
    /// The cut-off is not a probability.
    #[error("cutoff = {0} must be a finite probability in [0, 1]")]
    InvalidCutoff(f64),
    /// Fewer than two edges.
    #[error("{0} calibration edges; at least 2 are needed, for example [0, 0.5, 1]")]
    TooFewEdges(usize),
    /// An edge is NaN, infinite or outside [0, 1].
    #[error("calibration edge {index} = {value} must be a finite probability in [0, 1]")]
    EdgeOutOfRange {
        /// Index of the edge.
        index: usize,
        /// The edge.
        value: f64,
    },
    /// An edge is below the one before it.
    #[error("calibration edge {index} = {value} is below edge {} = {previous}; edges must ascend", index - 1)]
    Descending {
        /// Index of the edge.
        index: usize,
        /// The edge.
        value: f64,
        /// The edge before it.
        previous: f64,
    },
    /// The first edge is not 0 or the last is not 1, so some probabilities
    /// would fall outside every bin.
    #[error("calibration edges run from {first} to {last}; they must start at 0 and end at 1")]
    NotUnitInterval {
        /// The first edge.
        first: f64,
        /// The last edge.
        last: f64,
    },
}

/// A validated cut-off and calibration edges.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSettings {
    cutoff: f64,
    edges: Vec<f64>,
}

impl ScoreSettings {
    /// Checks that `cutoff` is in [0, 1] and that `edges` are at least two
    /// non-decreasing probabilities from exactly 0 to exactly 1.
    ///
    /// Equal neighbouring edges are accepted, as the coordinator's
    /// calibration bins accept them. The bin between them is empty.
    ///
    /// # Errors
    ///
    /// The first [`ScoreSettingsError`] found.
    pub fn new(cutoff: f64, edges: &[f64]) -> Result<Self, ScoreSettingsError> {
        if !(cutoff.is_finite() && (0.0..=1.0).contains(&cutoff)) {
            return Err(ScoreSettingsError::InvalidCutoff(cutoff));
        }
        if edges.len() < 2 {
            return Err(ScoreSettingsError::TooFewEdges(edges.len()));
        }
        for (index, &value) in edges.iter().enumerate() {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(ScoreSettingsError::EdgeOutOfRange { index, value });
            }
            if index > 0 && value < edges[index - 1] {
                return Err(ScoreSettingsError::Descending {
                    index,
                    value,
                    previous: edges[index - 1],
                });
            }
        }
        let (first, last) = (edges[0], edges[edges.len() - 1]);
        if first != 0.0 || last != 1.0 {
            return Err(ScoreSettingsError::NotUnitInterval { first, last });
        }
        Ok(ScoreSettings {
            cutoff,
            edges: edges.to_vec(),
        })
    }

    /// Returns the number of calibration bins, one fewer than the edges.
    pub fn n_bins(&self) -> usize {
        self.edges.len() - 1
    }
}

/// One point of the empirical ROC curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    /// A distinct probability.
    pub threshold: f64,
    /// Positives with p ≥ threshold.
    pub tp: usize,
    /// Negatives with p ≥ threshold.
    pub fp: usize,
}

/// Confusion counts at a cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confusion {
    /// Positives with p ≥ cut-off.
    pub tp: usize,
    /// Negatives with p ≥ cut-off.
    pub fp: usize,
    /// Negatives with p < cut-off.
    pub tn: usize,
    /// Positives with p < cut-off.
    pub fn_: usize,
}

/// Everything a site releases for scores-only validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSummary {
    /// Patients scored.
    pub n: usize,
    /// Scored patients with y = 1.
    pub n_positive: usize,
    /// ROC points, descending by threshold.
    pub roc_points: Vec<RocPoint>,
    /// Counts at the cut-off.
    pub confusion: Confusion,
    /// Patients per calibration bin.
    pub bin_counts: Vec<usize>,
    /// Patients with y = 1 per calibration bin.
    pub bin_positives: Vec<usize>,
    /// Σ p per calibration bin.
    pub bin_sum_predicted: Vec<f64>,
    /// Σ (p − y)².
    pub squared_error: f64,
    /// Σ (y − p)(1 − 2p).
    pub spiegelhalter_numerator: f64,
    /// Σ (1 − 2p)² p (1 − p).
    pub spiegelhalter_variance: f64,
}

/// Returns the ROC points of (probability, label) pairs: one per distinct
/// probability, descending, with cumulative counts at or above it.
///
/// Probabilities must not be NaN. −0.0 is reported as 0.0.
pub fn roc_points(scores: &[(f64, bool)]) -> Vec<RocPoint> {
    // Adding 0.0 turns −0.0 into 0.0, so that the total order below puts
    // both zeros in one group.
    let mut sorted: Vec<(f64, bool)> = scores
        .iter()
        .map(|&(probability, label)| (probability + 0.0, label))
        .collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));

    let mut points: Vec<RocPoint> = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for (probability, label) in sorted {
        if label {
            tp += 1;
        } else {
            fp += 1;
        }
        match points.last_mut() {
            Some(last) if last.threshold == probability => {
                last.tp = tp;
                last.fp = fp;
            }
            _ => points.push(RocPoint {
                threshold: probability,
                tp,
                fp,
            }),
        }
    }
    points
}

/// Returns the calibration bin of `probability`: the number of interior
/// edges strictly below it (see the module's bin rule).
pub fn bin_index(edges: &[f64], probability: f64) -> usize {
    let interior = &edges[1..edges.len() - 1];
    interior.partition_point(|&edge| edge < probability)
}

/// Summarises (probability, label) pairs, with probabilities in [0, 1].
pub fn summarize(scores: &[(f64, bool)], settings: &ScoreSettings) -> ScoreSummary {
    let bins = settings.n_bins();
    let mut confusion = Confusion::default();
    let mut bin_counts = vec![0; bins];
    let mut bin_positives = vec![0; bins];
    let mut bin_sum_predicted = vec![CompensatedSum::default(); bins];
    let mut squared_error = CompensatedSum::default();
    let mut spiegelhalter_numerator = CompensatedSum::default();
    let mut spiegelhalter_variance = CompensatedSum::default();

    for &(probability, label) in scores {
        match (probability >= settings.cutoff, label) {
            (true, true) => confusion.tp += 1,
            (true, false) => confusion.fp += 1,
            (false, false) => confusion.tn += 1,
            (false, true) => confusion.fn_ += 1,
        }

        let bin = bin_index(&settings.edges, probability);
        bin_counts[bin] += 1;
        bin_positives[bin] += usize::from(label);
        bin_sum_predicted[bin].add(probability);

        let outcome = if label { 1.0 } else { 0.0 };
        let error = probability - outcome;
        let weight = 1.0 - 2.0 * probability;
        squared_error.add(error * error);
        spiegelhalter_numerator.add(-error * weight);
        spiegelhalter_variance.add(weight * weight * probability * (1.0 - probability));
    }

    ScoreSummary {
        n: scores.len(),
        n_positive: scores.iter().filter(|(_, label)| *label).count(),
        roc_points: roc_points(scores),
        confusion,
        bin_counts,
        bin_positives,
        bin_sum_predicted: bin_sum_predicted
            .iter()
            .map(CompensatedSum::total)
            .collect(),
        squared_error: squared_error.total(),
        spiegelhalter_numerator: spiegelhalter_numerator.total(),
        spiegelhalter_variance: spiegelhalter_variance.total(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums of five terms below 1: a few ulps, far below 1e-15.
    const SUM_TOLERANCE: f64 = 1e-15;

    /// Five patients with a tie at 0.75 across the classes.
    const HAND: [(f64, bool); 5] = [
        (0.75, true),
        (0.25, false),
        (0.75, false),
        (0.5, true),
        (0.125, false),
    ];

    fn point(threshold: f64, tp: usize, fp: usize) -> RocPoint {
        RocPoint { threshold, tp, fp }
    }

    #[test]
    fn roc_points_hand_example_with_ties() {
        // Descending: 0.75 (one positive, one negative), 0.5 (positive),
        // 0.25 (negative), 0.125 (negative); counts are cumulative.
        assert_eq!(
            roc_points(&HAND),
            vec![
                point(0.75, 1, 1),
                point(0.5, 2, 1),
                point(0.25, 2, 2),
                point(0.125, 2, 3),
            ]
        );
    }

    #[test]
    fn roc_points_signed_zeros_are_one_score() {
        let points = roc_points(&[(0.0, true), (-0.0, false), (0.4, true)]);
        assert_eq!(points, vec![point(0.4, 1, 0), point(0.0, 2, 1)]);
        assert!(points[1].threshold.is_sign_positive());
    }

    #[test]
    fn roc_points_of_nothing_is_empty() {
        assert!(roc_points(&[]).is_empty());
    }

    #[test]
    fn bin_index_is_right_closed() {
        // Edges 0, 0.5, 1: 0 and 0.5 fall in bin 0, anything above 0.5 in
        // bin 1, as NumPy's searchsorted([0.5], p, side="left") gives.
        let edges = [0.0, 0.5, 1.0];
        assert_eq!(bin_index(&edges, 0.0), 0);
        assert_eq!(bin_index(&edges, 0.5), 0);
        assert_eq!(bin_index(&edges, 0.500001), 1);
        assert_eq!(bin_index(&edges, 1.0), 1);
        // Equal edges 0, 0.5, 0.5, 1 leave the middle bin empty: 0.5 has no
        // interior edge strictly below it, 0.6 has two.
        let doubled = [0.0, 0.5, 0.5, 1.0];
        assert_eq!(bin_index(&doubled, 0.5), 0);
        assert_eq!(bin_index(&doubled, 0.6), 2);
    }

    #[test]
    fn summarize_hand_example() {
        let settings = ScoreSettings::new(0.5, &[0.0, 0.25, 0.5, 1.0]).expect("valid settings");
        let summary = summarize(&HAND, &settings);
        assert_eq!(summary.n, 5);
        assert_eq!(summary.n_positive, 2);

        // p ≥ 0.5: 0.75 (y = 1), 0.75 (y = 0), 0.5 (y = 1); p < 0.5: 0.25
        // and 0.125, both y = 0.
        assert_eq!(
            summary.confusion,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 2,
                fn_: 0
            }
        );

        // Bins (0, 0.25], (0.25, 0.5], (0.5, 1] with 0 in the first:
        // {0.25, 0.125}, {0.5}, {0.75, 0.75}.
        assert_eq!(summary.bin_counts, vec![2, 1, 2]);
        assert_eq!(summary.bin_positives, vec![0, 1, 1]);
        assert_eq!(summary.bin_sum_predicted, vec![0.375, 0.5, 1.5]);

        // Σ (p − y)²: 0.0625 + 0.0625 + 0.5625 + 0.25 + 0.015625 = 0.953125.
        assert!((summary.squared_error - 0.953125).abs() < SUM_TOLERANCE);
        // Σ (y − p)(1 − 2p), per patient: 0.25·(−0.5), −0.25·0.5,
        // −0.75·(−0.5), 0.5·0, −0.125·0.75, so −0.125 − 0.125 + 0.375 + 0
        // − 0.09375 = 0.03125.
        assert!((summary.spiegelhalter_numerator - 0.03125).abs() < SUM_TOLERANCE);
        // Σ (1 − 2p)² p (1 − p): 0.25·0.1875 twice, 0.25·0.1875, 0, and
        // 0.5625·0.109375, so 3·0.046875 + 0.0615234375 = 0.2021484375.
        assert!((summary.spiegelhalter_variance - 0.2021484375).abs() < SUM_TOLERANCE);
    }

    #[test]
    fn summarize_matches_direct_formulas() {
        // Probabilities on an irregular grid, checked against the
        // definitions written out one by one in a plain loop.
        let scores: Vec<(f64, bool)> = (0..40)
            .map(|i| (((i * 37) % 41) as f64 / 40.0, i % 3 == 0))
            .collect();
        let edges = [0.0, 0.1, 0.3, 0.3, 0.7, 1.0];
        let settings = ScoreSettings::new(0.3, &edges).unwrap();
        let summary = summarize(&scores, &settings);

        let mut counts = [0usize; 5];
        let mut squared_error = 0.0;
        for &(p, y) in &scores {
            let bin = (0..5)
                .find(|&b| (b == 0 && p <= edges[1]) || (edges[b] < p && p <= edges[b + 1]))
                .expect("every p in [0, 1] has a bin");
            counts[bin] += 1;
            let outcome = if y { 1.0 } else { 0.0 };
            squared_error += (p - outcome) * (p - outcome);
        }
        assert_eq!(summary.bin_counts, counts.to_vec());
        assert_eq!(summary.bin_counts[2], 0, "equal edges give an empty bin");
        // 40 terms below 1 in two orders: within a few ulps of their sum.
        assert!((summary.squared_error - squared_error).abs() < 1e-13);
        let (tp, fp) =
            scores
                .iter()
                .filter(|(p, _)| *p >= 0.3)
                .fold(
                    (0, 0),
                    |(tp, fp), &(_, y)| if y { (tp + 1, fp) } else { (tp, fp + 1) },
                );
        assert_eq!((summary.confusion.tp, summary.confusion.fp), (tp, fp));
        assert_eq!(
            summary.confusion.tp + summary.confusion.fn_,
            summary.n_positive
        );
        let last = summary.roc_points.last().expect("points");
        assert_eq!(
            (last.tp, last.fp),
            (summary.n_positive, 40 - summary.n_positive)
        );
    }

    #[test]
    fn score_settings_invalid_values_are_rejected() {
        assert_eq!(
            ScoreSettings::new(1.5, &[0.0, 1.0]),
            Err(ScoreSettingsError::InvalidCutoff(1.5))
        );
        assert!(matches!(
            ScoreSettings::new(f64::NAN, &[0.0, 1.0]),
            Err(ScoreSettingsError::InvalidCutoff(_))
        ));
        assert_eq!(
            ScoreSettings::new(0.5, &[0.0]),
            Err(ScoreSettingsError::TooFewEdges(1))
        );
        assert!(matches!(
            ScoreSettings::new(0.5, &[0.0, f64::NAN, 1.0]),
            Err(ScoreSettingsError::EdgeOutOfRange { index: 1, .. })
        ));
        assert_eq!(
            ScoreSettings::new(0.5, &[0.0, 1.2]),
            Err(ScoreSettingsError::EdgeOutOfRange {
                index: 1,
                value: 1.2
            })
        );
        assert_eq!(
            ScoreSettings::new(0.5, &[0.0, 0.6, 0.4, 1.0]),
            Err(ScoreSettingsError::Descending {
                index: 2,
                value: 0.4,
                previous: 0.6
            })
        );
        assert_eq!(
            ScoreSettings::new(0.5, &[0.1, 1.0]),
            Err(ScoreSettingsError::NotUnitInterval {
                first: 0.1,
                last: 1.0
            })
        );
        assert_eq!(
            ScoreSettings::new(0.5, &[0.0, 0.9]),
            Err(ScoreSettingsError::NotUnitInterval {
                first: 0.0,
                last: 0.9
            })
        );
        assert!(ScoreSettings::new(0.0, &[0.0, 1.0]).is_ok());
        assert!(ScoreSettings::new(1.0, &[0.0, 0.5, 0.5, 1.0]).is_ok());
    }
}
