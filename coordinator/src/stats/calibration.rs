//! Calibration of predicted probabilities: binned calibration curve, Brier
//! score, Spiegelhalter's z test and logistic recalibration (calibration
//! intercept and slope).
//!
//! Let:
//!
//! ```text
//! pᵢ ∈ [0, 1]   predicted probability of y = true for patient i
//! yᵢ ∈ {0, 1}   observed outcome
//! N             number of patients
//! ```
//!
//! The calibration curve, the Hosmer–Lemeshow groups and the site aggregates
//! share one binning rule. With edges e0 ≤ e1 ≤ … ≤ eK, bin k contains the p
//! with `e_k < p ≤ e_(k+1)`. Bin 0 also contains p ≤ e1, so the lowest edge
//! is included. Probabilities below e0 or above eK fall into the first
//! or last bin. This is scikit-learn 1.9.1 `calibration_curve`'s
//! `np.searchsorted(edges[1:-1], p)` (side "left").
//!
//! Sources: G. W. Brier (1950), "Verification of forecasts expressed in
//! terms of probability", Monthly Weather Review 78(1):1–3.
//! D. J. Spiegelhalter (1986), "Probabilistic prediction in patient
//! management and clinical trials", Statistics in Medicine 5(5):421–433.
//! D. R. Cox (1958), "Two further applications of a model for binary
//! regression", Biometrika 45(3/4):562–565 (recalibration slope).
//! E. W. Steyerberg (2019), "Clinical Prediction Models", 2nd ed., Springer
//! (calibration-in-the-large with offset logit p).

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::StatsError;
use super::irls::{NewtonOptions, Penalty, fit_newton, fit_newton_with_offset};
use super::quantile::equal_count_edges;
use super::validate::{check_same_length, count_classes};

/// Number of calibration-curve bins for N patients: 10 for N ≥ 50, else 5.
pub fn default_bin_count(n: usize) -> usize {
    if n >= 50 { 10 } else { 5 }
}

/// Rejects a prediction that is not a finite number in [0, 1].
pub(crate) fn check_probabilities(input: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|value| !(0.0..=1.0).contains(value)) {
        Some(index) => Err(StatsError::InvalidPrediction {
            input,
            index,
            value: values[index],
            expected: "a probability in [0, 1]",
        }),
        None => Ok(()),
    }
}

/// Validates paired predictions and labels: equal lengths, probabilities in
/// [0, 1]. Empty input is allowed.
pub(crate) fn check_predictions(predictions: &[f64], labels: &[bool]) -> Result<(), StatsError> {
    check_same_length("predictions", predictions.len(), "labels", labels.len())?;
    check_probabilities("predictions", predictions)
}

/// Returns the bin index of `probability` among `edges` (see the module
/// binning rule): the number of interior edges strictly below it.
pub(crate) fn bin_index(edges: &[f64], probability: f64) -> usize {
    let interior = &edges[1..edges.len() - 1];
    interior.partition_point(|&edge| edge < probability)
}

/// Per-bin counts and sums of predictions on fixed edges, the additive form
/// of a calibration curve and of the Hosmer–Lemeshow table.
///
/// Sites that bin their patients on the same edges can be merged with
/// [`CalibrationBins::merge`], and the merged bins equal the bins of the
/// pooled patients up to summation order of `sum_predicted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBins {
    /// Bin edges e0 ≤ … ≤ eK, K + 1 values for K bins.
    pub edges: Vec<f64>,
    /// Number of patients per bin.
    pub counts: Vec<usize>,
    /// Σ p per bin, the expected number of positives.
    pub sum_predicted: Vec<f64>,
    /// Number of patients with y = true per bin.
    pub positives: Vec<usize>,
}

/// One point of a calibration curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationPoint {
    /// Number of patients in the bin, at least 1.
    pub count: usize,
    /// Mean predicted probability in the bin (x axis).
    pub mean_predicted: f64,
    /// Observed fraction of y = true in the bin (y axis).
    pub observed_fraction: f64,
}

impl CalibrationBins {
    /// Bins `predictions` and `labels` on fixed `edges`.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidParameter`] unless `edges` has at least two
    /// finite, non-decreasing values, [`StatsError::LengthMismatch`], and
    /// [`StatsError::InvalidPrediction`] for a prediction outside [0, 1]
    /// or NaN.
    pub fn on_edges(
        edges: &[f64],
        predictions: &[f64],
        labels: &[bool],
    ) -> Result<Self, StatsError> {
        check_edges(edges)?;
        check_predictions(predictions, labels)?;

        let bins = edges.len() - 1;
        let mut result = Self {
            edges: edges.to_vec(),
            counts: vec![0; bins],
            sum_predicted: vec![0.0; bins],
            positives: vec![0; bins],
        };
        for (&probability, &label) in predictions.iter().zip(labels) {
            let bin = bin_index(edges, probability);
            result.counts[bin] += 1;
            result.sum_predicted[bin] += probability;
            result.positives[bin] += usize::from(label);
        }
        Ok(result)
    }

    /// Adds another site's bins on the same edges to these.
    ///
    /// # Errors
    ///
    /// [`StatsError::AggregateMismatch`] if the edges differ.
    pub fn merge(&mut self, other: &CalibrationBins) -> Result<(), StatsError> {
        if self.edges != other.edges {
            return Err(StatsError::AggregateMismatch {
                field: "calibration bin edges",
                detail: format!("{:?} against {:?}", self.edges, other.edges),
            });
        }
        for bin in 0..self.counts.len() {
            self.counts[bin] += other.counts[bin];
            self.sum_predicted[bin] += other.sum_predicted[bin];
            self.positives[bin] += other.positives[bin];
        }
        Ok(())
    }

    /// Returns the calibration curve: one point per non-empty bin, in edge
    /// order.
    pub fn curve(&self) -> Vec<CalibrationPoint> {
        (0..self.counts.len())
            .filter(|&bin| self.counts[bin] > 0)
            .map(|bin| {
                let count = self.counts[bin] as f64;
                CalibrationPoint {
                    count: self.counts[bin],
                    mean_predicted: self.sum_predicted[bin] / count,
                    observed_fraction: self.positives[bin] as f64 / count,
                }
            })
            .collect()
    }
}

fn check_edges(edges: &[f64]) -> Result<(), StatsError> {
    if edges.len() < 2 {
        return Err(StatsError::InvalidParameter {
            name: "number of bin edges",
            value: edges.len() as f64,
            expected: "at least 2 edges",
        });
    }
    for (index, &edge) in edges.iter().enumerate() {
        if !edge.is_finite() || (index > 0 && edge < edges[index - 1]) {
            return Err(StatsError::InvalidParameter {
                name: "bin edge",
                value: edge,
                expected: "finite edges in non-decreasing order",
            });
        }
    }
    Ok(())
}

/// Computes the calibration curve on `bins` equal-count (quantile) bins of
/// the predictions, dropping empty bins.
///
/// The edges are `np.percentile(p, np.linspace(0, 1, bins + 1) * 100)`, so
/// the result equals scikit-learn 1.9.1 `calibration_curve(y, p,
/// n_bins=bins, strategy="quantile")`, which returns `(observed_fraction,
/// mean_predicted)` of the non-empty bins. Use [`default_bin_count`] for the
/// study's rule.
///
/// # Errors
///
/// [`StatsError::InvalidParameter`] if `bins` is 0, [`StatsError::Empty`]
/// for no predictions, and as [`CalibrationBins::on_edges`].
pub fn calibration_curve(
    predictions: &[f64],
    labels: &[bool],
    bins: usize,
) -> Result<Vec<CalibrationPoint>, StatsError> {
    if bins == 0 {
        return Err(StatsError::InvalidParameter {
            name: "number of bins",
            value: 0.0,
            expected: "at least 1",
        });
    }
    check_predictions(predictions, labels)?;
    if predictions.is_empty() {
        return Err(StatsError::Empty {
            input: "predictions",
        });
    }
    let edges = equal_count_edges(predictions, bins);
    Ok(CalibrationBins::on_edges(&edges, predictions, labels)?.curve())
}

/// Additive sums behind the Brier score and Spiegelhalter's z test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSums {
    /// Number of patients N.
    pub n: usize,
    /// Σ (pᵢ − yᵢ)².
    pub squared_error: f64,
    /// Σ (yᵢ − pᵢ)(1 − 2pᵢ), the numerator of Spiegelhalter's z.
    pub spiegelhalter_numerator: f64,
    /// Σ (1 − 2pᵢ)² pᵢ (1 − pᵢ), the null variance of that numerator.
    pub spiegelhalter_variance: f64,
}

/// Spiegelhalter's z test that the predicted probabilities are the true
/// ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpiegelhalterTest {
    /// z = Σ (y − p)(1 − 2p) / √Σ (1 − 2p)² p (1 − p).
    pub z: f64,
    /// Two-sided p-value 2 (1 − Φ(|z|)).
    pub p_value: f64,
}

impl CalibrationSums {
    /// Accumulates the sums over patients.
    ///
    /// # Errors
    ///
    /// [`StatsError::LengthMismatch`] and [`StatsError::InvalidPrediction`].
    pub fn from_predictions(predictions: &[f64], labels: &[bool]) -> Result<Self, StatsError> {
        check_predictions(predictions, labels)?;
        let mut sums = Self {
            n: 0,
            squared_error: 0.0,
            spiegelhalter_numerator: 0.0,
            spiegelhalter_variance: 0.0,
        };
        for (&probability, &label) in predictions.iter().zip(labels) {
            let outcome = if label { 1.0 } else { 0.0 };
            let error = probability - outcome;
            let weight = 1.0 - 2.0 * probability;
            sums.n += 1;
            sums.squared_error += error * error;
            sums.spiegelhalter_numerator += -error * weight;
            sums.spiegelhalter_variance += weight * weight * probability * (1.0 - probability);
        }
        Ok(sums)
    }

    /// Adds another site's sums to these.
    pub fn add(&mut self, other: &CalibrationSums) {
        self.n += other.n;
        self.squared_error += other.squared_error;
        self.spiegelhalter_numerator += other.spiegelhalter_numerator;
        self.spiegelhalter_variance += other.spiegelhalter_variance;
    }

    /// Returns the Brier score Σ (p − y)² / N.
    ///
    /// # Errors
    ///
    /// [`StatsError::Empty`] when N = 0.
    pub fn brier_score(&self) -> Result<f64, StatsError> {
        if self.n == 0 {
            return Err(StatsError::Empty {
                input: "predictions",
            });
        }
        Ok(self.squared_error / self.n as f64)
    }

    /// Returns Spiegelhalter's z and its two-sided p-value.
    ///
    /// NOTE: the normal tail comes from statrs 0.19, whose `erfc` has a
    /// relative error of up to about 1e-10, so p-values agree with SciPy to
    /// about 10 significant digits.
    ///
    /// # Errors
    ///
    /// [`StatsError::UndefinedStatistic`] when the variance is 0, which
    /// happens when every p is 0, ½ or 1 (or N = 0).
    pub fn spiegelhalter(&self) -> Result<SpiegelhalterTest, StatsError> {
        if self.spiegelhalter_variance.is_nan() || self.spiegelhalter_variance <= 0.0 {
            return Err(StatsError::UndefinedStatistic {
                statistic: "Spiegelhalter z",
                reason: format!(
                    "its variance is 0 over {} predictions, because every prediction is 0, 0.5 or 1",
                    self.n
                ),
            });
        }
        let z = self.spiegelhalter_numerator / self.spiegelhalter_variance.sqrt();
        let p_value = (2.0 * Normal::standard().sf(z.abs())).min(1.0);
        Ok(SpiegelhalterTest { z, p_value })
    }
}

/// Computes the Brier score Σ (p − y)² / N, as scikit-learn 1.9.1
/// `brier_score_loss(y, p)`.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`], [`StatsError::InvalidPrediction`], and
/// [`StatsError::Empty`] for no predictions.
pub fn brier_score(predictions: &[f64], labels: &[bool]) -> Result<f64, StatsError> {
    CalibrationSums::from_predictions(predictions, labels)?.brier_score()
}

/// Runs Spiegelhalter's (1986) z test of calibration.
///
/// z = Σ (y − p)(1 − 2p) / √Σ (1 − 2p)² p (1 − p) is approximately standard
/// normal when the predictions are calibrated, and the p-value is two-sided.
/// The reference values come from SciPy 1.17.1 `norm.sf` applied to the same
/// formula.
///
/// # Errors
///
/// As [`CalibrationSums::from_predictions`] and
/// [`CalibrationSums::spiegelhalter`].
pub fn spiegelhalter_test(
    predictions: &[f64],
    labels: &[bool],
) -> Result<SpiegelhalterTest, StatsError> {
    CalibrationSums::from_predictions(predictions, labels)?.spiegelhalter()
}

/// Logistic recalibration of predicted probabilities on new outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recalibration {
    /// Calibration-in-the-large: a in `logit P(y) = a + logit p`, fitted with
    /// logit p as an offset. 0 when predictions are right on average,
    /// positive when they are too low.
    pub intercept: f64,
    /// Calibration slope: b in `logit P(y) = a' + b · logit p`. 1 for a
    /// calibrated model, below 1 when predictions are too extreme
    /// (overfitting).
    pub slope: f64,
    /// The intercept a' of the slope model.
    pub slope_model_intercept: f64,
    /// Whether both Newton fits converged.
    pub converged: bool,
    /// Set when the slope fit shows separation (for example when logit p
    /// separates the outcomes perfectly), so the slope tends to infinity and
    /// the reported value is only the last iterate.
    pub separation_flag: bool,
}

/// Fits the logistic recalibration model: the calibration intercept with
/// logit p as offset, and the calibration slope with logit p as the sole
/// covariate.
///
/// Both are unpenalised maximum-likelihood fits by Newton's method with
/// R's stopping rule ([`NewtonOptions::default`]), equal to statsmodels
/// 0.15.0 `GLM(y, ones, family=Binomial(), offset=logit(p))` and
/// `GLM(y, add_constant(logit(p)), family=Binomial())`.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`], [`StatsError::InvalidPrediction`] for a
/// prediction of exactly 0 or 1 (whose logit is infinite) or outside [0, 1],
/// [`StatsError::Empty`] or [`StatsError::SingleClass`], and
/// [`StatsError::SingularHessian`] if every prediction is the same, so the
/// slope is not identifiable.
pub fn logistic_recalibration(
    predictions: &[f64],
    labels: &[bool],
) -> Result<Recalibration, StatsError> {
    check_same_length("predictions", predictions.len(), "labels", labels.len())?;
    if let Some(index) = predictions
        .iter()
        .position(|value| !(*value > 0.0 && *value < 1.0))
    {
        return Err(StatsError::InvalidPrediction {
            input: "predictions",
            index,
            value: predictions[index],
            expected: "a probability strictly between 0 and 1, because its logit is used",
        });
    }
    count_classes(labels)?;

    let logits: Vec<f64> = predictions.iter().map(|&p| (p / (1.0 - p)).ln()).collect();
    let options = NewtonOptions::default();

    // Intercept only, logit p as offset: shape (N, 0).
    let no_features = Array2::<f64>::zeros((predictions.len(), 0));
    let in_the_large =
        fit_newton_with_offset(no_features.view(), labels, &logits, Penalty::None, &options)?;

    // logit p as the only covariate: shape (N, 1).
    let covariate =
        Array2::from_shape_vec((predictions.len(), 1), logits.clone()).map_err(|error| {
            StatsError::FitFailed {
                reason: error.to_string(),
            }
        })?;
    let slope_fit = fit_newton(covariate.view(), labels, Penalty::None, &options)?;

    Ok(Recalibration {
        intercept: in_the_large.intercept,
        slope: slope_fit.coefficients[0],
        slope_model_intercept: slope_fit.intercept,
        converged: in_the_large.converged && slope_fit.converged,
        separation_flag: slope_fit.separation_flag,
    })
}

#[cfg(test)]
mod tests;
