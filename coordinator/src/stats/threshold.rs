//! Operating-point selection by Youden's J, and confusion counts at a
//! threshold.
//!
//! Source: W. J. Youden (1950), "Index for rating diagnostic tests", Cancer
//! 3(1):32–35.
//!
//! Throughout, a patient is predicted positive when `score >= threshold`, the
//! rule of scikit-learn 1.9.1 `roc_curve`.

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::validate::{check_finite, check_same_length, compare_finite, count_classes};

/// Returns the threshold that maximises Youden's J = sensitivity +
/// specificity - 1.
///
/// Every distinct score is a candidate threshold. Among thresholds with the
/// same J the highest wins, which is the more specific operating point. J is
/// compared exactly, as the integer `tp · n - fp · m` for m positives and n
/// negatives, so equal J values always tie.
///
/// NOTE: `np.argmax(tpr - fpr)` over scikit-learn's `roc_curve` thresholds
/// also prefers the highest threshold, but compares rounded floats. It can
/// therefore pick a lower threshold whose J is larger only by rounding, as in
/// the `youden_threshold_ties_take_highest` test.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`], [`StatsError::NonFinite`] with the index,
/// and [`StatsError::Empty`] or [`StatsError::SingleClass`], because J needs
/// both sensitivity and specificity.
pub fn youden_threshold(scores: &[f64], labels: &[bool]) -> Result<f64, StatsError> {
    check_same_length("scores", scores.len(), "labels", labels.len())?;
    check_finite("scores", scores)?;
    let (positives, negatives) = count_classes(labels)?;

    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| compare_finite(scores[b], scores[a]));

    // Lower the threshold one distinct score at a time. After each group of
    // equal scores, tp and fp count the patients with score >= threshold.
    let mut true_positives: i128 = 0;
    let mut false_positives: i128 = 0;
    let mut best: Option<(f64, i128)> = None;
    let mut start = 0;
    while start < order.len() {
        let threshold = scores[order[start]];
        let mut end = start;
        while end < order.len() && compare_finite(scores[order[end]], threshold).is_eq() {
            if labels[order[end]] {
                true_positives += 1;
            } else {
                false_positives += 1;
            }
            end += 1;
        }

        // J · m · n, exact in integers.
        let scaled_j = true_positives * negatives as i128 - false_positives * positives as i128;
        // Strictly greater keeps the earlier, higher threshold on ties.
        if best.is_none_or(|(_, best_j)| scaled_j > best_j) {
            best = Some((threshold, scaled_j));
        }
        start = end;
    }

    match best {
        Some((threshold, _)) => Ok(threshold),
        // count_classes has rejected empty labels, so a threshold exists.
        None => Err(StatsError::Empty { input: "scores" }),
    }
}

/// Confusion-matrix counts at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Positives with `score >= threshold`.
    pub tp: usize,
    /// Negatives with `score >= threshold`.
    pub fp: usize,
    /// Negatives with `score < threshold`.
    pub tn: usize,
    /// Positives with `score < threshold`. The trailing underscore avoids the
    /// `fn` keyword; serialised as `fn`.
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    /// Counts predictions against labels, predicting positive when
    /// `score >= threshold`.
    ///
    /// Labels of a single class are accepted, and the undefined rate is then
    /// `None`. An infinite threshold is allowed: +inf predicts every patient
    /// negative and -inf every patient positive.
    ///
    /// # Errors
    ///
    /// [`StatsError::LengthMismatch`], [`StatsError::NonFinite`] with the
    /// index of a non-finite score, and [`StatsError::InvalidParameter`] for
    /// a NaN threshold.
    pub fn at_threshold(
        scores: &[f64],
        labels: &[bool],
        threshold: f64,
    ) -> Result<Self, StatsError> {
        check_same_length("scores", scores.len(), "labels", labels.len())?;
        check_finite("scores", scores)?;
        if threshold.is_nan() {
            return Err(StatsError::InvalidParameter {
                name: "threshold",
                value: threshold,
                expected: "a number, not NaN",
            });
        }

        let mut confusion = Self {
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
        };
        for (&score, &label) in scores.iter().zip(labels) {
            match (score >= threshold, label) {
                (true, true) => confusion.tp += 1,
                (true, false) => confusion.fp += 1,
                (false, false) => confusion.tn += 1,
                (false, true) => confusion.fn_ += 1,
            }
        }
        Ok(confusion)
    }

    /// Returns `tp / (tp + fn)`, or `None` when there are no positives.
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Returns `tn / (tn + fp)`, or `None` when there are no negatives.
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fp)
    }
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 28 patients with ties, including -0.0 against 0.0 (see the roc tests):
    //   rng = np.random.default_rng(7); y = np.array([1]*12 + [0]*16); rng.shuffle(y)
    //   a = np.round(rng.normal(0, 1, 28) + 0.8*y, 1)
    const SCORES: [f64; 28] = [
        -1.8, 0.6, -1.3, 0.3, 1.0, -0.2, -2.5, -0.5, -0.0, 0.1, -0.7, -0.5, -1.0, -0.0, 1.9, -0.0,
        0.8, 0.9, 0.2, -0.1, 0.1, 0.9, -1.2, 0.1, 2.2, -1.5, 1.7, 0.9,
    ];
    const LABELS: [bool; 28] = [
        false, true, false, false, true, false, false, false, false, false, true, false, false,
        true, true, true, true, false, true, false, false, true, false, false, true, false, true,
        true,
    ];

    #[test]
    fn youden_threshold_matches_sklearn() {
        // scikit-learn 1.9.1:
        //   fpr, tpr, thr = roc_curve(y, a, drop_intermediate=False)
        //   thr[1:][np.argmax((tpr - fpr)[1:])] -> 0.2, J = 0.625
        // An exact Fraction search over distinct scores gives the same.
        assert_eq!(youden_threshold(&SCORES, &LABELS).unwrap(), 0.2);
    }

    #[test]
    fn youden_threshold_ties_take_highest() {
        // Thresholds 0.6, 0.4 and 0.2 all give J = 1/3 exactly (Python
        // fractions.Fraction), so the rule picks 0.6. scikit-learn 1.9.1
        // roc_curve computes J at 0.2 as 0.33333333333333337 and its argmax
        // picks 0.2.
        let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let labels = [false, true, false, true, false, true];
        assert_eq!(youden_threshold(&scores, &labels).unwrap(), 0.6);
    }

    #[test]
    fn youden_threshold_perfect_separation() {
        // The lowest positive score is the only threshold with J = 1.
        let scores = [0.9, 0.7, 0.3, 0.1, 0.8];
        let labels = [true, true, false, false, true];
        assert_eq!(youden_threshold(&scores, &labels).unwrap(), 0.7);
    }

    #[test]
    fn youden_threshold_rejects_bad_input() {
        assert_eq!(
            youden_threshold(&[0.1, 0.2], &[true, true]).unwrap_err(),
            StatsError::SingleClass {
                class: true,
                count: 2
            }
        );
        assert!(matches!(
            youden_threshold(&[0.1, f64::INFINITY], &[true, false]).unwrap_err(),
            StatsError::NonFinite {
                input: "scores",
                index: 1,
                ..
            }
        ));
        assert!(matches!(
            youden_threshold(&[0.1], &[true, false]).unwrap_err(),
            StatsError::LengthMismatch { .. }
        ));
    }

    #[test]
    fn confusion_matches_sklearn() {
        // scikit-learn 1.9.1: confusion_matrix(y, np.array(a) >= t, labels=[False, True])
        let cases = [
            (0.2, (9, 2, 14, 3)),
            (0.0, (11, 6, 10, 1)),
            (-0.0, (11, 6, 10, 1)),
            (5.0, (0, 0, 16, 12)),
        ];
        for (threshold, (tp, fp, tn, fn_)) in cases {
            let confusion = Confusion::at_threshold(&SCORES, &LABELS, threshold).unwrap();
            assert_eq!(
                confusion,
                Confusion { tp, fp, tn, fn_ },
                "threshold {threshold}"
            );
        }
    }

    #[test]
    fn confusion_rates_at_youden_threshold() {
        let confusion = Confusion::at_threshold(&SCORES, &LABELS, 0.2).unwrap();
        assert_eq!(confusion.sensitivity(), Some(9.0 / 12.0));
        assert_eq!(confusion.specificity(), Some(14.0 / 16.0));
    }

    #[test]
    fn confusion_rates_none_for_missing_class() {
        let confusion = Confusion::at_threshold(&[0.3, 0.7], &[true, true], 0.5).unwrap();
        assert_eq!(confusion.sensitivity(), Some(0.5));
        assert_eq!(confusion.specificity(), None);

        let confusion = Confusion::at_threshold(&[0.3], &[false], 0.5).unwrap();
        assert_eq!(confusion.sensitivity(), None);
        assert_eq!(confusion.specificity(), Some(1.0));
    }

    #[test]
    fn confusion_infinite_thresholds() {
        let all_negative = Confusion::at_threshold(&SCORES, &LABELS, f64::INFINITY).unwrap();
        assert_eq!(all_negative.tp + all_negative.fp, 0);
        let all_positive = Confusion::at_threshold(&SCORES, &LABELS, f64::NEG_INFINITY).unwrap();
        assert_eq!(all_positive.tn + all_positive.fn_, 0);
    }

    #[test]
    fn confusion_rejects_nan() {
        assert!(matches!(
            Confusion::at_threshold(&[0.1], &[true], f64::NAN).unwrap_err(),
            StatsError::InvalidParameter {
                name: "threshold",
                ..
            }
        ));
        assert!(matches!(
            Confusion::at_threshold(&[0.1, f64::NAN], &[true, false], 0.5).unwrap_err(),
            StatsError::NonFinite { index: 1, .. }
        ));
    }
}
