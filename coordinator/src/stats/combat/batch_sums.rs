//! Per-feature sums of one batch, the only data a site sends for ComBat.

use ndarray::{Array1, ArrayView2, Axis};

use super::super::StatsError;
use super::super::icc::CompensatedSum;
use super::super::validate::check_finite_matrix;
use super::check_feature_count;

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
/// NOTE: unlike [`ComBatFit`](super::ComBatFit), this type has no serde derive, because the
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
    pub(super) fn mean(&self, feature: usize) -> f64 {
        self.shift[feature] + self.sum[feature] / self.n as f64
    }

    /// Returns Σ_i (x_ig − mean)², set to 0 where it is within rounding of 0.
    pub(super) fn centred_square_sum(&self, feature: usize) -> f64 {
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
    pub(super) fn check_consistent(&self) -> Result<(), StatsError> {
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
