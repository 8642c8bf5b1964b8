//! Aggregates that a worker releases in place of per-patient rows.
//!
//! - [`icc_sums`]: the sufficient statistics of the reproducibility (ICC)
//!   design over the perturbed copies of a round.
//! - [`linear_model`]: a frozen linear model evaluated on a round's feature
//!   table, shared by the next two.
//! - [`logistic_step`]: gradient, Hessian and deviance of a logistic model
//!   at given coefficients, for one federated Newton step.
//! - [`scores`]: ROC points, confusion counts and calibration sums of a
//!   frozen model's probabilities, for scores-only validation.
//!
//! Every aggregate is a sum over patients, so the coordinator pools sites by
//! adding their aggregates. These modules compute the numbers only. The
//! site policy (`min_patients`, `min_per_class`) is applied by the service
//! before anything is released.

pub mod icc_sums;
pub mod linear_model;
pub mod logistic_step;
pub mod scores;

/// Compensated sum in Neumaier's variant of Kahan summation: the running sum
/// plus the rounding error lost so far, so that adding many terms costs
/// about one rounding in total whatever their order of magnitude.
///
/// Source: A. Neumaier (1974), "Rundungsfehleranalyse einiger Verfahren zur
/// Summation endlicher Summen", ZAMM 54(1):39–51.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    /// Adds `value`, keeping the part that rounding drops from the sum.
    pub fn add(&mut self, value: f64) {
        let total = self.sum + value;
        if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - total) + value;
        } else {
            self.compensation += (value - total) + self.sum;
        }
        self.sum = total;
    }

    /// Returns the compensated total.
    pub fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_keeps_small_terms() {
        // 1 + 1e-16 + 1e-16 - 1: plain f64 addition rounds each 1e-16 away
        // (half an ulp of 1 is 1.1e-16), the compensated sum keeps both.
        let mut sum = CompensatedSum::default();
        for value in [1.0, 1e-16, 1e-16, -1.0] {
            sum.add(value);
        }
        let plain = 1.0 + 1e-16 + 1e-16 - 1.0;
        assert_eq!(plain, 0.0);
        // The exact total 2e-16 is representable to within one ulp of 2e-16.
        assert!((sum.total() - 2e-16).abs() <= 2e-16 * f64::EPSILON);
    }

    #[test]
    fn compensated_sum_of_nothing_is_zero() {
        assert_eq!(CompensatedSum::default().total(), 0.0);
    }
}
