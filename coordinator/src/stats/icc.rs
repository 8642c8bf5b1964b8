//! Intraclass correlation (ICC) of repeated feature measurements, computed
//! from sums that each site can send without per-patient rows.
//!
//! Let, for one feature measured k times on each of n subjects:
//!
//! ```text
//! x_ij   value of subject i in measurement j     (i = 1..n, j = 1..k)
//! R_i    = Σ_j x_ij, total of subject i          C_j = Σ_i x_ij, total of measurement j
//! T      = Σ_ij x_ij      Q = Σ_ij x_ij²         N = n·k      CF = T² / N
//!
//! SS_total  = Q − CF                SS_rows = Σ_i R_i² / k − CF
//! SS_cols   = Σ_j C_j² / n − CF     SS_err  = SS_total − SS_rows − SS_cols
//! SS_within = SS_total − SS_rows
//!
//! MSR = SS_rows / (n − 1)           MSC = SS_cols / (k − 1)
//! MSE = SS_err / ((n − 1)(k − 1))   MSW = SS_within / (n (k − 1))
//!
//! ICC(1,1) = (MSR − MSW) / (MSR + (k − 1) MSW)                      one-way random
//! ICC(2,1) = (MSR − MSE) / (MSR + (k − 1) MSE + k (MSC − MSE) / n)  two-way random, absolute agreement
//! ICC(3,1) = (MSR − MSE) / (MSR + (k − 1) MSE)                      two-way mixed, consistency
//! ICC(1,k) = (MSR − MSW) / MSR
//! ICC(2,k) = (MSR − MSE) / (MSR + (MSC − MSE) / n)
//! ICC(3,k) = (MSR − MSE) / MSR
//! ```
//!
//! The `(·,k)` forms are the reliability of the mean of the k measurements.
//! ICC(2,1) and ICC(3,1) are McGraw and Wong's ICC(A,1) and ICC(C,1).
//!
//! A site computes [`IccSums`] from its rows, the coordinator adds the sites'
//! sums with [`IccSums::merge`] and evaluates the formulas above with
//! [`IccSums::icc`]. The result equals the pooled computation up to
//! floating-point summation order.
//!
//! # Design requirement
//!
//! The two-way forms (2 and 3) treat measurement j as the same rater or
//! session for every subject, at every site (a crossed design), because MSC
//! and MSE are built from the column totals C_j. If each site has its own
//! readers, the rater factor is nested in the site and the merged two-way
//! forms have no meaning. Use ICC(1,1), which does not depend on the column
//! totals, or compute the ICC per site.
//!
//! Sources: P. E. Shrout and J. L. Fleiss (1979), "Intraclass correlations:
//! uses in assessing rater reliability", Psychological Bulletin
//! 86(2):420–428. K. O. McGraw and S. P. Wong (1996), "Forming inferences
//! about some intraclass correlation coefficients", Psychological Methods
//! 1(1):30–46, for the confidence intervals.
//!
//! Reference implementation: pingouin 0.7.0 `intraclass_corr` (its ICC1,
//! ICC2, ICC3, ICC1k, ICC2k and ICC3k rows and their `CI95`).

use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::StatsError;
use super::validate::check_finite_matrix;

/// Upper quantile level of the two-sided 95% confidence intervals.
const CI_QUANTILE: f64 = 0.975;

/// A sum of squares smaller than this many machine epsilons times Q is
/// rounding noise and is set to 0.
///
/// With compensated sums, Q and each subtracted term Σ R_i² / k, Σ C_j² / n
/// and CF carry an error of a few ε·Q, because each term is at most Q by the
/// Cauchy–Schwarz inequality. SS_err adds three such errors. Without this
/// rule a constant feature whose sums are not exactly 0 would get an
/// arbitrary ICC instead of the zero-denominator result.
const ROUNDING_FACTOR: f64 = 16.0;

/// Compensated sum in Neumaier's variant of Kahan summation: the running sum
/// plus the rounding error lost so far, so that adding many terms costs about
/// one rounding in total.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    /// Adds `value` and keeps the part lost to rounding.
    pub(crate) fn add(&mut self, value: f64) {
        let total = self.sum + value;
        if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - total) + value;
        } else {
            self.compensation += (value - total) + self.sum;
        }
        self.sum = total;
    }

    /// Returns the compensated total.
    pub(crate) fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// Sufficient statistics of one feature in one repeated-measurement design:
/// n subjects, each measured k times.
///
/// Every sum is taken over `x − shift` instead of `x`. The ICC does not
/// change when all values move by the same amount, and a shift close to the
/// data keeps `Q − CF` from cancelling. For values 5 ± 5e-5, raw sums lose
/// about 10 of their 16 significant digits there. [`IccSums::from_rows`] uses
/// the site's first value as the shift, and [`IccSums::merge`] converts the
/// other site's sums to this shift. With `shift = 0` the fields are the raw
/// sums T, Q, Σ R_i² and C_j of the module formulas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IccSums {
    /// Number of subjects n.
    pub n: usize,
    /// Number of measurements per subject k.
    pub k: usize,
    /// Value subtracted from every x before summing.
    pub shift: f64,
    /// T = Σ_ij (x_ij − shift).
    pub sum: f64,
    /// Q = Σ_ij (x_ij − shift)².
    pub sum_squares: f64,
    /// Σ_i R_i², where R_i = Σ_j (x_ij − shift) is the total of subject i.
    pub sum_squared_subject_totals: f64,
    /// C_j = Σ_i (x_ij − shift), one total per measurement, k values.
    pub measurement_sums: Vec<f64>,
}

/// ANOVA mean squares of the subjects × measurements table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSquares {
    /// MSR, between subjects, with n − 1 degrees of freedom.
    pub rows: f64,
    /// MSC, between measurements (raters), with k − 1 degrees of freedom.
    pub columns: f64,
    /// MSE, residual of the two-way model, with (n − 1)(k − 1) degrees of freedom.
    pub error: f64,
    /// MSW, within subjects (one-way model), with n (k − 1) degrees of freedom.
    pub within: f64,
}

/// Two-sided 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// One of the six ICC forms, named as Shrout and Fleiss name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IccForm {
    /// One-way random effects, single measurement.
    #[serde(rename = "ICC(1,1)")]
    Icc1_1,
    /// Two-way random effects, absolute agreement, single measurement.
    #[serde(rename = "ICC(2,1)")]
    Icc2_1,
    /// Two-way mixed effects, consistency, single measurement.
    #[serde(rename = "ICC(3,1)")]
    Icc3_1,
    /// One-way random effects, mean of k measurements.
    #[serde(rename = "ICC(1,k)")]
    Icc1K,
    /// Two-way random effects, absolute agreement, mean of k measurements.
    #[serde(rename = "ICC(2,k)")]
    Icc2K,
    /// Two-way mixed effects, consistency, mean of k measurements.
    #[serde(rename = "ICC(3,k)")]
    Icc3K,
}

/// The six ICC forms with their 95% confidence intervals and the mean
/// squares they come from.
///
/// A form whose denominator is exactly 0 (for example every form of a
/// feature that is constant across all subjects and measurements) is set to
/// 0 and listed in `zero_denominator`, so a reliability filter drops it. A
/// confidence interval is `None` where it is undefined: when MSW (form 1) or
/// MSE (forms 2 and 3) is 0, which includes every ICC of exactly 1, or when a
/// bound is not finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IccResult {
    /// Number of subjects.
    pub n: usize,
    /// Number of measurements per subject.
    pub k: usize,
    /// Mean squares MSR, MSC, MSE and MSW.
    pub mean_squares: MeanSquares,
    /// ICC(1,1), one-way random, absolute agreement, single measurement.
    pub icc1_1: f64,
    /// ICC(2,1), two-way random, absolute agreement, single measurement.
    pub icc2_1: f64,
    /// ICC(3,1), two-way mixed, consistency, single measurement.
    pub icc3_1: f64,
    /// ICC(1,k), one-way random, mean of k measurements.
    pub icc1_k: f64,
    /// ICC(2,k), two-way random, absolute agreement, mean of k measurements.
    pub icc2_k: f64,
    /// ICC(3,k), two-way mixed, consistency, mean of k measurements.
    pub icc3_k: f64,
    /// 95% CI of ICC(1,1), from F = MSR / MSW.
    pub ci1_1: Option<ConfidenceInterval>,
    /// 95% CI of ICC(2,1), McGraw and Wong case 2A.
    pub ci2_1: Option<ConfidenceInterval>,
    /// 95% CI of ICC(3,1), from F = MSR / MSE.
    pub ci3_1: Option<ConfidenceInterval>,
    /// 95% CI of ICC(1,k).
    pub ci1_k: Option<ConfidenceInterval>,
    /// 95% CI of ICC(2,k), the ICC(2,1) bounds through the Spearman–Brown formula.
    pub ci2_k: Option<ConfidenceInterval>,
    /// 95% CI of ICC(3,k).
    pub ci3_k: Option<ConfidenceInterval>,
    /// Forms whose denominator was 0 and whose value was set to 0.
    pub zero_denominator: Vec<IccForm>,
}

impl IccSums {
    /// Computes the sums of one site's `rows` (subjects × measurements, so
    /// column j is measurement j of every subject).
    ///
    /// The shift is the first value, and every sum is compensated. A site
    /// without subjects (zero rows) gives n = 0 and merges as a no-op.
    ///
    /// # Errors
    ///
    /// [`StatsError::TooFewObservations`] if there are fewer than 2
    /// measurements per subject, and [`StatsError::NonFiniteCell`] for the
    /// first NaN or infinity. Use [`IccSums::from_rows_omitting_nan`] to drop
    /// incomplete subjects instead.
    pub fn from_rows(rows: ArrayView2<f64>) -> Result<Self, StatsError> {
        let k = rows.ncols();
        if k < 2 {
            return Err(StatsError::TooFewObservations {
                input: "measurements per subject",
                count: k,
                minimum: 2,
            });
        }
        check_finite_matrix("rows", rows)?;

        let shift = rows.first().copied().unwrap_or(0.0);
        let mut sum = CompensatedSum::default();
        let mut sum_squares = CompensatedSum::default();
        let mut sum_squared_subject_totals = CompensatedSum::default();
        let mut measurement_sums = vec![CompensatedSum::default(); k];
        for subject in rows.axis_iter(Axis(0)) {
            let mut subject_total = CompensatedSum::default();
            for (measurement, &value) in subject.iter().enumerate() {
                let centred = value - shift;
                sum.add(centred);
                sum_squares.add(centred * centred);
                subject_total.add(centred);
                measurement_sums[measurement].add(centred);
            }
            let subject_total = subject_total.total();
            sum_squared_subject_totals.add(subject_total * subject_total);
        }

        Ok(Self {
            n: rows.nrows(),
            k,
            shift,
            sum: sum.total(),
            sum_squares: sum_squares.total(),
            sum_squared_subject_totals: sum_squared_subject_totals.total(),
            measurement_sums: measurement_sums.iter().map(CompensatedSum::total).collect(),
        })
    }

    /// Computes the sums of the subjects in `rows` that have no NaN, and
    /// returns them with the indices of the subjects left out.
    ///
    /// This is listwise deletion for one feature, as pingouin 0.7.0
    /// `intraclass_corr(..., nan_policy="omit")` does it.
    ///
    /// # Errors
    ///
    /// As [`IccSums::from_rows`], except that NaN is skipped: an infinity is
    /// still rejected with its row and column.
    pub fn from_rows_omitting_nan(rows: ArrayView2<f64>) -> Result<(Self, Vec<usize>), StatsError> {
        let mut complete = Vec::with_capacity(rows.nrows());
        let mut omitted = Vec::new();
        for (index, subject) in rows.axis_iter(Axis(0)).enumerate() {
            if subject.iter().any(|value| value.is_nan()) {
                omitted.push(index);
            } else {
                complete.push(index);
            }
        }
        let sums = Self::from_rows(rows.select(Axis(0), &complete).view())?;
        Ok((sums, omitted))
    }

    /// Adds the sums of `other`, a disjoint set of subjects measured with the
    /// same k measurements, so that `self` describes the pooled subjects.
    ///
    /// `other`'s sums are first moved to `self.shift` by the exact identities
    /// (with d = other.shift − self.shift and m = other.n):
    ///
    /// ```text
    /// T' = T + m k d      Q' = Q + 2 d T + m k d²
    /// Σ R'² = Σ R² + 2 k d T + m k² d²      C'_j = C_j + m d
    /// ```
    ///
    /// # Errors
    ///
    /// [`StatsError::MeasurementCountMismatch`] if the two k differ, and the
    /// errors of [`IccSums::icc`] for sums that are malformed (wrong number
    /// of measurement sums, or a non-finite field).
    pub fn merge(&mut self, other: &IccSums) -> Result<(), StatsError> {
        self.check_consistent()?;
        other.check_consistent()?;
        if other.k != self.k {
            return Err(StatsError::MeasurementCountMismatch {
                expected: self.k,
                found: other.k,
            });
        }
        if other.n == 0 {
            return Ok(());
        }
        if self.n == 0 {
            *self = other.clone();
            return Ok(());
        }

        let k = self.k as f64;
        let m = other.n as f64;
        let d = other.shift - self.shift;
        self.sum += other.sum + m * k * d;
        self.sum_squares += other.sum_squares + 2.0 * d * other.sum + m * k * d * d;
        self.sum_squared_subject_totals +=
            other.sum_squared_subject_totals + 2.0 * k * d * other.sum + m * k * k * d * d;
        for (total, &other_total) in self
            .measurement_sums
            .iter_mut()
            .zip(&other.measurement_sums)
        {
            *total += other_total + m * d;
        }
        self.n += other.n;
        Ok(())
    }

    /// Computes the mean squares, the six ICC forms and their 95% confidence
    /// intervals, as pingouin 0.7.0 `intraclass_corr` does from the rows.
    ///
    /// Each sum of squares is clamped to 0 when it is below 16 ε·Q, the size
    /// of its rounding error. The confidence intervals use the F quantile of
    /// statrs 0.19 (`FisherSnedecor::inverse_cdf`) where pingouin uses
    /// SciPy's `f.ppf`.
    ///
    /// # Errors
    ///
    /// [`StatsError::TooFewObservations`] if n < 2 or k < 2,
    /// [`StatsError::MeasurementCountMismatch`] if `measurement_sums` does
    /// not have k values, and [`StatsError::NonFinite`] for a NaN or infinite
    /// field (index 0 to 3 for T, Q, Σ R_i² and the shift, then 4 + j for C_j).
    pub fn icc(&self) -> Result<IccResult, StatsError> {
        self.check_consistent()?;
        if self.n < 2 {
            return Err(StatsError::TooFewObservations {
                input: "subjects",
                count: self.n,
                minimum: 2,
            });
        }

        let mean_squares = self.mean_squares();
        let n = self.n as f64;
        let k = self.k as f64;
        let MeanSquares {
            rows: msr,
            columns: msc,
            error: mse,
            within: msw,
        } = mean_squares;

        let mut zero_denominator = Vec::new();
        let mut ratio = |numerator: f64, denominator: f64, form: IccForm| {
            if denominator == 0.0 {
                zero_denominator.push(form);
                0.0
            } else {
                numerator / denominator
            }
        };
        let icc1_1 = ratio(msr - msw, msr + (k - 1.0) * msw, IccForm::Icc1_1);
        let icc2_1 = ratio(
            msr - mse,
            msr + (k - 1.0) * mse + k * (msc - mse) / n,
            IccForm::Icc2_1,
        );
        let icc3_1 = ratio(msr - mse, msr + (k - 1.0) * mse, IccForm::Icc3_1);
        let icc1_k = ratio(msr - msw, msr, IccForm::Icc1K);
        let icc2_k = ratio(msr - mse, msr + (msc - mse) / n, IccForm::Icc2K);
        let icc3_k = ratio(msr - mse, msr, IccForm::Icc3K);

        let one_way = f_ratio_interval(msr, msw, n - 1.0, n * (k - 1.0), k);
        let consistency = f_ratio_interval(msr, mse, n - 1.0, (n - 1.0) * (k - 1.0), k);
        let agreement = agreement_interval(mean_squares, icc2_1, n, k);

        Ok(IccResult {
            n: self.n,
            k: self.k,
            mean_squares,
            icc1_1,
            icc2_1,
            icc3_1,
            icc1_k,
            icc2_k,
            icc3_k,
            ci1_1: one_way.map(|bounds| bounds.single),
            ci2_1: agreement,
            ci3_1: consistency.map(|bounds| bounds.single),
            ci1_k: one_way.and_then(|bounds| bounds.average),
            ci2_k: agreement.and_then(|interval| spearman_brown_interval(interval, k)),
            ci3_k: consistency.and_then(|bounds| bounds.average),
            zero_denominator,
        })
    }

    /// Computes the mean squares from validated sums (n ≥ 2, k ≥ 2).
    fn mean_squares(&self) -> MeanSquares {
        let n = self.n as f64;
        let k = self.k as f64;
        let correction = self.sum * self.sum / (n * k);
        let mut column_square_sum = CompensatedSum::default();
        for &total in &self.measurement_sums {
            column_square_sum.add(total * total);
        }

        let noise = ROUNDING_FACTOR * f64::EPSILON * self.sum_squares;
        let clamp = |value: f64| if value <= noise { 0.0 } else { value };
        let ss_total = clamp(self.sum_squares - correction);
        let ss_rows = clamp(self.sum_squared_subject_totals / k - correction);
        let ss_columns = clamp(column_square_sum.total() / n - correction);
        let ss_error = clamp(ss_total - ss_rows - ss_columns);
        let ss_within = clamp(ss_total - ss_rows);

        MeanSquares {
            rows: ss_rows / (n - 1.0),
            columns: ss_columns / (k - 1.0),
            error: ss_error / ((n - 1.0) * (k - 1.0)),
            within: ss_within / (n * (k - 1.0)),
        }
    }

    /// Rejects k < 2, a measurement-sum count other than k, and non-finite fields.
    fn check_consistent(&self) -> Result<(), StatsError> {
        if self.k < 2 {
            return Err(StatsError::TooFewObservations {
                input: "measurements per subject",
                count: self.k,
                minimum: 2,
            });
        }
        if self.measurement_sums.len() != self.k {
            return Err(StatsError::MeasurementCountMismatch {
                expected: self.k,
                found: self.measurement_sums.len(),
            });
        }
        let fields = [
            self.sum,
            self.sum_squares,
            self.sum_squared_subject_totals,
            self.shift,
        ];
        let values: Vec<f64> = fields
            .iter()
            .chain(&self.measurement_sums)
            .copied()
            .collect();
        super::validate::check_finite("ICC sums", &values)
    }
}

/// Bounds of the single-measurement and average-measurement forms that are
/// built from one F ratio.
#[derive(Debug, Clone, Copy)]
struct FRatioBounds {
    single: ConfidenceInterval,
    average: Option<ConfidenceInterval>,
}

/// Computes the 95% CIs of ICC(1,·) (F = MSR / MSW) or ICC(3,·)
/// (F = MSR / MSE), McGraw and Wong (1996) cases 1 and 3:
///
/// ```text
/// F_L = F / F_{0.975}(df1, df2)     F_U = F · F_{0.975}(df2, df1)
/// single:  [(F_L − 1) / (F_L + k − 1), (F_U − 1) / (F_U + k − 1)]
/// average: [1 − 1 / F_L, 1 − 1 / F_U]
/// ```
///
/// Returns `None` when the F ratio or a bound is not finite. The average
/// interval alone is `None` when F is 0, because 1 − 1/F_L is then −∞.
fn f_ratio_interval(
    numerator: f64,
    denominator: f64,
    df1: f64,
    df2: f64,
    k: f64,
) -> Option<FRatioBounds> {
    let f = numerator / denominator;
    if !f.is_finite() {
        return None;
    }
    let f_lower = f / f_quantile(df1, df2)?;
    let f_upper = f * f_quantile(df2, df1)?;
    let single = finite_interval(
        (f_lower - 1.0) / (f_lower + k - 1.0),
        (f_upper - 1.0) / (f_upper + k - 1.0),
    )?;
    let average = finite_interval(1.0 - 1.0 / f_lower, 1.0 - 1.0 / f_upper);
    Some(FRatioBounds { single, average })
}

/// Computes the 95% CI of ICC(2,1), McGraw and Wong (1996) case 2A, with the
/// Satterthwaite degrees of freedom written as pingouin 0.7.0 writes them:
///
/// ```text
/// ρ = ICC(2,1), F_j = MSC / MSE, c = n (1 + (k − 1) ρ) − k ρ
/// ν = (n − 1)(k − 1) (k ρ F_j + c)² / ((n − 1) k² ρ² F_j² + c²)
/// F* = F_{0.975}(n − 1, ν)     F** = F_{0.975}(ν, n − 1)
/// lower = n (MSR − F* MSE) / (F* (k MSC + (k n − k − n) MSE) + n MSR)
/// upper = n (F** MSR − MSE) / (k MSC + (k n − k − n) MSE + n F** MSR)
/// ```
fn agreement_interval(
    mean_squares: MeanSquares,
    icc2_1: f64,
    n: f64,
    k: f64,
) -> Option<ConfidenceInterval> {
    let MeanSquares {
        rows: msr,
        columns: msc,
        error: mse,
        ..
    } = mean_squares;
    let rho = icc2_1;
    let f_columns = msc / mse;
    let c = n * (1.0 + (k - 1.0) * rho) - k * rho;
    let nu = (n - 1.0) * (k - 1.0) * (k * rho * f_columns + c).powi(2)
        / ((n - 1.0) * k * k * rho * rho * f_columns * f_columns + c * c);
    if !nu.is_finite() {
        return None;
    }

    let f_star = f_quantile(n - 1.0, nu)?;
    let f_double_star = f_quantile(nu, n - 1.0)?;
    let error_weight = k * msc + (k * n - k - n) * mse;
    finite_interval(
        n * (msr - f_star * mse) / (f_star * error_weight + n * msr),
        n * (f_double_star * msr - mse) / (error_weight + n * f_double_star * msr),
    )
}

/// Maps single-measurement bounds ρ to the mean of k measurements,
/// kρ / (1 + (k − 1)ρ), as pingouin 0.7.0 does for ICC(2,k).
fn spearman_brown_interval(interval: ConfidenceInterval, k: f64) -> Option<ConfidenceInterval> {
    let step_up = |rho: f64| k * rho / (1.0 + (k - 1.0) * rho);
    finite_interval(step_up(interval.lower), step_up(interval.upper))
}

/// Returns F_{0.975}(df1, df2), or `None` if a degree of freedom is not a
/// positive finite number or the quantile is not finite.
fn f_quantile(df1: f64, df2: f64) -> Option<f64> {
    let quantile = FisherSnedecor::new(df1, df2).ok()?.inverse_cdf(CI_QUANTILE);
    quantile.is_finite().then_some(quantile)
}

/// Returns the interval if both bounds are finite.
fn finite_interval(lower: f64, upper: f64) -> Option<ConfidenceInterval> {
    (lower.is_finite() && upper.is_finite()).then_some(ConfidenceInterval { lower, upper })
}

#[cfg(test)]
mod tests;
