//! Logistic regression by Newton's method (iteratively reweighted least
//! squares), pooled or federated across sites.
//!
//! Let:
//!
//! ```text
//! β = (β0, β1, …, βp)   intercept first, then one coefficient per feature
//! xᵢ = (1, xᵢ1, …, xᵢp) row i of the design, with the implicit intercept column
//! oᵢ                    optional offset of row i (fixed coefficient 1)
//! ηᵢ = xᵢ · β + oᵢ      linear predictor (log-odds)
//! pᵢ = 1 / (1 + e^−ηᵢ)  fitted probability of y = true
//! wᵢ = pᵢ (1 − pᵢ)      IRLS weight
//! g  = Σ xᵢ (yᵢ − pᵢ)   gradient of the log-likelihood
//! H  = Σ wᵢ xᵢ xᵢᵀ      negative Hessian of the log-likelihood (Fisher information)
//! D  = −2 Σ [yᵢ log pᵢ + (1 − yᵢ) log(1 − pᵢ)]   deviance
//! P  = diag(0, 1/C, …, 1/C)   L2 penalty matrix, intercept unpenalised
//! ```
//!
//! One Newton step is `β ← β + (H + P)⁻¹ (g − P β)`. It maximises the
//! penalised log-likelihood `log L − ½ βᵀ P β`, whose deviance form is
//! `D + βᵀ P β`. With `P = 0` this is the unpenalised maximum-likelihood fit.
//!
//! g, H, D and the row counts are sums over rows, so a site computes
//! [`LogisticSums`] from its own rows at the coordinator's current β, the
//! coordinator adds the sites' sums and takes the step ([`newton_step`]).
//! [`fit_newton`] runs the same loop on pooled rows, through the same
//! [`fit_newton_rounds`] driver, so the two differ only in floating-point
//! summation order.
//!
//! Convergence follows R's `glm.fit` (R 4.x, `glm.control(epsilon = 1e-8,
//! maxit = 25)`): stop when `|D_new − D_old| / (|D_new| + 0.1) < ε`, here with
//! the penalised deviance. Unlike R, the first iterate is β = 0, not R's
//! `mustart = (y + ½) / 2`. That changes the iteration count, not the
//! converged coefficients. Like R, no step-halving is done, because every
//! deviance computed here is finite.
//!
//! Sources: P. McCullagh and J. A. Nelder (1989), "Generalized Linear
//! Models", 2nd ed., Chapman & Hall.
//! Reference implementations: statsmodels 0.15.0 `Logit(y,
//! add_constant(X)).fit(method="newton")` for the unpenalised fit, and
//! scikit-learn 1.9.1 `LogisticRegression(C=c)` for the L2 fit, whose summed
//! objective `Σ log-loss + ‖β1..p‖² / (2C)` is half the penalised deviance
//! above.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

use super::StatsError;
use super::linalg::cholesky_solve;
use super::logistic::LogisticModel;
use super::validate::{check_finite, check_finite_matrix, check_same_length, count_classes};

/// A fitted probability closer than this to 0 or 1 marks (quasi-)complete
/// separation in an unpenalised fit. The value is this study's rule, not
/// R's: `glm.fit` warns only at probabilities much closer to 0 or 1.
pub const SEPARATION_PROBABILITY: f64 = 1e-8;

/// The penalty of a logistic regression fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Penalty {
    /// Unpenalised maximum likelihood (scikit-learn `C = ∞`).
    None,
    /// Ridge penalty `‖β1..p‖² / (2C)` on the log-likelihood scale, with the
    /// intercept unpenalised. Larger C means weaker shrinkage.
    L2 {
        /// Inverse penalty strength, finite and greater than 0.
        c: f64,
    },
}

impl Penalty {
    /// Returns the diagonal entry of P for a non-intercept coefficient, 1/C,
    /// or 0 without a penalty.
    fn weight(self) -> f64 {
        match self {
            Penalty::None => 0.0,
            Penalty::L2 { c } => 1.0 / c,
        }
    }

    /// Rejects a C that is not finite and positive.
    fn validate(self) -> Result<(), StatsError> {
        match self {
            Penalty::None => Ok(()),
            Penalty::L2 { c } if c.is_finite() && c > 0.0 => Ok(()),
            Penalty::L2 { c } => Err(StatsError::InvalidParameter {
                name: "C",
                value: c,
                expected: "a finite number greater than 0",
            }),
        }
    }
}

/// Stopping rule of the Newton iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NewtonOptions {
    /// Maximum number of Newton steps. R's `glm.control` default is 25.
    pub max_iterations: usize,
    /// Convergence threshold ε on `|ΔD| / (|D| + 0.1)` for the penalised
    /// deviance D. R's `glm.control` default is 1e-8.
    pub tolerance: f64,
}

impl Default for NewtonOptions {
    /// Returns R's `glm.control()` defaults: 25 iterations, ε = 1e-8.
    fn default() -> Self {
        Self {
            max_iterations: 25,
            tolerance: 1e-8,
        }
    }
}

impl NewtonOptions {
    fn validate(&self) -> Result<(), StatsError> {
        if self.max_iterations == 0 {
            return Err(StatsError::InvalidParameter {
                name: "max_iterations",
                value: 0.0,
                expected: "at least 1",
            });
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(StatsError::InvalidParameter {
                name: "tolerance",
                value: self.tolerance,
                expected: "a finite number greater than 0",
            });
        }
        Ok(())
    }
}

/// Result of a Newton fit.
#[derive(Debug, Clone, PartialEq)]
pub struct NewtonFit {
    /// Intercept β0, on the log-odds scale.
    pub intercept: f64,
    /// Coefficients β1..βp, one per feature column, on the log-odds scale.
    pub coefficients: Array1<f64>,
    /// Penalty of this fit. [`fit_with_fallback`] reports `L2 { c: 1.0 }`
    /// here when it fell back.
    pub penalty: Penalty,
    /// Number of Newton steps taken.
    pub iterations: usize,
    /// Unpenalised deviance −2 log L at the returned coefficients.
    pub deviance: f64,
    /// Whether the relative deviance change fell below the tolerance within
    /// the iteration limit.
    pub converged: bool,
    /// Set when an unpenalised fit did not converge or left a fitted
    /// probability within [`SEPARATION_PROBABILITY`] of 0 or 1, the signs of
    /// (quasi-)complete separation, and kept set by [`fit_with_fallback`]
    /// after it refitted with C = 1. Always false for a plain L2 fit.
    pub separation_flag: bool,
}

impl NewtonFit {
    /// Returns the fitted coefficients as a [`LogisticModel`] for prediction.
    pub fn model(&self) -> LogisticModel {
        LogisticModel {
            intercept: self.intercept,
            coefficients: self.coefficients.clone(),
        }
    }
}

/// Per-site sufficient statistics of one Newton step, evaluated at the
/// coordinator's current coefficients.
///
/// Sums from several sites at the same β are combined with
/// [`LogisticSums::add`], and the total equals the sums over the pooled rows
/// up to floating-point summation order.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticSums {
    /// Gradient of the log-likelihood `Σ xᵢ (yᵢ − pᵢ)`, length p + 1,
    /// intercept first.
    pub gradient: Array1<f64>,
    /// Fisher information `Σ wᵢ xᵢ xᵢᵀ`, shape (p + 1)×(p + 1), symmetric.
    pub hessian: Array2<f64>,
    /// Deviance −2 log L of the rows at β, without any penalty.
    pub deviance: f64,
    /// Number of rows.
    pub n: usize,
    /// Number of rows with y = true.
    pub n_positive: usize,
    /// Number of rows whose fitted probability lies within
    /// [`SEPARATION_PROBABILITY`] of 0 or 1.
    pub n_at_bound: usize,
}

impl LogisticSums {
    /// Returns the sums of an empty site, the identity of [`LogisticSums::add`],
    /// for a model with `n_coefficients` = p + 1 coefficients.
    pub fn zeros(n_coefficients: usize) -> Self {
        Self {
            gradient: Array1::zeros(n_coefficients),
            hessian: Array2::zeros((n_coefficients, n_coefficients)),
            deviance: 0.0,
            n: 0,
            n_positive: 0,
            n_at_bound: 0,
        }
    }

    /// Computes the sums of the rows `x` (n×p, no intercept column) with
    /// labels `y` at the coefficients `beta` = (β0, β1..βp).
    ///
    /// A site with no rows, or with one class only, is valid and contributes
    /// its share of the sums.
    ///
    /// # Errors
    ///
    /// [`StatsError::LengthMismatch`] if `x` and `y` have different row
    /// counts, [`StatsError::ColumnMismatch`] if `beta` does not have
    /// `x.ncols() + 1` entries, and [`StatsError::NonFiniteCell`] or
    /// [`StatsError::NonFinite`] for the first NaN or infinity in `x` or
    /// `beta`.
    pub fn at(x: ArrayView2<f64>, y: &[bool], beta: ArrayView1<f64>) -> Result<Self, StatsError> {
        validate_rows(x, y, None)?;
        validate_beta(x.ncols(), beta)?;
        Ok(accumulate(x, y, None, beta))
    }

    /// Computes the sums as [`LogisticSums::at`] does, with a fixed offset
    /// `offset[i]` added to each linear predictor.
    ///
    /// # Errors
    ///
    /// As [`LogisticSums::at`], and [`StatsError::LengthMismatch`] or
    /// [`StatsError::NonFinite`] for the offset.
    pub fn at_with_offset(
        x: ArrayView2<f64>,
        y: &[bool],
        offset: &[f64],
        beta: ArrayView1<f64>,
    ) -> Result<Self, StatsError> {
        validate_rows(x, y, Some(offset))?;
        validate_beta(x.ncols(), beta)?;
        Ok(accumulate(x, y, Some(offset), beta))
    }

    /// Adds another site's sums, computed at the same β, to these.
    ///
    /// # Errors
    ///
    /// [`StatsError::AggregateMismatch`] if the two have different numbers of
    /// coefficients.
    pub fn add(&mut self, other: &LogisticSums) -> Result<(), StatsError> {
        if other.gradient.len() != self.gradient.len() || other.hessian.dim() != self.hessian.dim()
        {
            return Err(StatsError::AggregateMismatch {
                field: "number of coefficients",
                detail: format!("{} against {}", self.gradient.len(), other.gradient.len()),
            });
        }
        self.gradient += &other.gradient;
        self.hessian += &other.hessian;
        self.deviance += other.deviance;
        self.n += other.n;
        self.n_positive += other.n_positive;
        self.n_at_bound += other.n_at_bound;
        Ok(())
    }

    /// Returns the penalised deviance `D + βᵀ P β` at `beta`.
    fn penalised_deviance(&self, beta: ArrayView1<f64>, penalty: Penalty) -> f64 {
        let weight = penalty.weight();
        let squared_norm: f64 = beta.iter().skip(1).map(|value| value * value).sum();
        self.deviance + weight * squared_norm
    }
}

/// Takes one Newton step from `beta` with the summed statistics `sums`
/// evaluated at `beta`: returns `β + (H + P)⁻¹ (g − P β)`.
///
/// # Errors
///
/// [`StatsError::ColumnMismatch`] if `beta` and `sums` have different
/// lengths, [`StatsError::InvalidParameter`] for an invalid C, and
/// [`StatsError::SingularHessian`] when `H + P` is singular to working
/// precision.
pub fn newton_step(
    sums: &LogisticSums,
    beta: ArrayView1<f64>,
    penalty: Penalty,
) -> Result<Array1<f64>, StatsError> {
    penalty.validate()?;
    if beta.len() != sums.gradient.len() {
        return Err(StatsError::ColumnMismatch {
            input: "beta",
            expected: sums.gradient.len(),
            found: beta.len(),
        });
    }

    let weight = penalty.weight();
    let mut system = sums.hessian.clone();
    let mut right_hand_side = sums.gradient.clone();
    for j in 1..beta.len() {
        system[[j, j]] += weight;
        right_hand_side[j] -= weight * beta[j];
    }

    let step = cholesky_solve(system.view(), right_hand_side.view())
        .ok_or(StatsError::SingularHessian { n: sums.n })?;
    Ok(&beta + &step)
}

/// Returns whether `|current − previous| / (|current| + 0.1) < tolerance`,
/// the deviance convergence rule of R's `glm.fit`.
pub fn deviance_converged(previous: f64, current: f64, tolerance: f64) -> bool {
    (current - previous).abs() / (current.abs() + 0.1) < tolerance
}

/// Runs the Newton iteration with sums supplied by `sums_at`, for a model of
/// `n_features` features plus an intercept.
///
/// `sums_at(β)` returns the [`LogisticSums`] of all rows at β: for pooled
/// rows [`LogisticSums::at`], for a federated fit the sum of every site's
/// reply in one round. The iteration starts at β = 0 and stops by
/// [`deviance_converged`] on the penalised deviance. It ends early, with
/// `converged = false`, when `H + P` becomes singular after the first step,
/// which happens as unpenalised coefficients run off to infinity under
/// separation.
///
/// # Errors
///
/// - [`StatsError::InvalidParameter`] for invalid C or options.
/// - [`StatsError::Empty`] or [`StatsError::SingleClass`] if the first sums
///   count no rows or a single class.
/// - [`StatsError::SingularHessian`] if `H + P` is singular at β = 0, which
///   means collinear or constant feature columns.
/// - Any error returned by `sums_at`, and [`StatsError::ColumnMismatch`] if
///   its sums have the wrong length.
pub fn fit_newton_rounds<F>(
    n_features: usize,
    penalty: Penalty,
    options: &NewtonOptions,
    mut sums_at: F,
) -> Result<NewtonFit, StatsError>
where
    F: FnMut(ArrayView1<f64>) -> Result<LogisticSums, StatsError>,
{
    penalty.validate()?;
    options.validate()?;

    let mut beta = Array1::<f64>::zeros(n_features + 1);
    let mut sums = sums_at(beta.view())?;
    check_sums_shape(&sums, n_features + 1)?;
    if sums.n == 0 {
        return Err(StatsError::Empty { input: "labels" });
    }
    if sums.n_positive == 0 || sums.n_positive == sums.n {
        return Err(StatsError::SingleClass {
            class: sums.n_positive > 0,
            count: sums.n,
        });
    }

    let mut objective = sums.penalised_deviance(beta.view(), penalty);
    let mut iterations = 0;
    let mut converged = false;
    while iterations < options.max_iterations {
        let next_beta = match newton_step(&sums, beta.view(), penalty) {
            Ok(next_beta) => next_beta,
            Err(error @ StatsError::SingularHessian { .. }) if iterations == 0 => {
                return Err(error);
            }
            // A singular system after the first step: the weights have
            // collapsed towards 0, so report the last iterate as not converged.
            Err(StatsError::SingularHessian { .. }) => break,
            Err(error) => return Err(error),
        };
        let next_sums = sums_at(next_beta.view())?;
        check_sums_shape(&next_sums, n_features + 1)?;
        let next_objective = next_sums.penalised_deviance(next_beta.view(), penalty);
        iterations += 1;

        beta = next_beta;
        sums = next_sums;
        let previous_objective = objective;
        objective = next_objective;
        if deviance_converged(previous_objective, objective, options.tolerance) {
            converged = true;
            break;
        }
    }

    let separation_flag = matches!(penalty, Penalty::None) && (!converged || sums.n_at_bound > 0);
    Ok(NewtonFit {
        intercept: beta[0],
        coefficients: beta.slice(ndarray::s![1..]).to_owned(),
        penalty,
        iterations,
        deviance: sums.deviance,
        converged,
        separation_flag,
    })
}

/// Fits a logistic regression of `y` on the rows of `x` (n×p, no intercept
/// column) by Newton's method on pooled rows.
///
/// With `Penalty::None` this is the maximum-likelihood fit of statsmodels
/// 0.15.0 `Logit` and R `glm(family = binomial)`. With `Penalty::L2 { c }` it
/// minimises the objective of scikit-learn 1.9.1 `LogisticRegression(C=c)`,
/// the same objective as [`super::logistic::fit_l2`], which uses L-BFGS
/// instead.
///
/// Check `converged` and `separation_flag` on the result, or call
/// [`fit_with_fallback`] for this study's rule, which refits with C = 1
/// under separation.
///
/// # Errors
///
/// As [`LogisticSums::at`] for the input, and as [`fit_newton_rounds`].
pub fn fit_newton(
    x: ArrayView2<f64>,
    y: &[bool],
    penalty: Penalty,
    options: &NewtonOptions,
) -> Result<NewtonFit, StatsError> {
    validate_rows(x, y, None)?;
    count_classes(y)?;
    fit_newton_rounds(x.ncols(), penalty, options, |beta| {
        Ok(accumulate(x, y, None, beta))
    })
}

/// Fits as [`fit_newton`] does, with a fixed offset in each linear predictor
/// (statsmodels 0.15.0 `GLM(y, X, family=Binomial(), offset=offset)`).
///
/// `x` may have zero columns, which fits the intercept alone.
///
/// # Errors
///
/// As [`fit_newton`], and [`StatsError::LengthMismatch`] or
/// [`StatsError::NonFinite`] for the offset.
pub fn fit_newton_with_offset(
    x: ArrayView2<f64>,
    y: &[bool],
    offset: &[f64],
    penalty: Penalty,
    options: &NewtonOptions,
) -> Result<NewtonFit, StatsError> {
    validate_rows(x, y, Some(offset))?;
    count_classes(y)?;
    fit_newton_rounds(x.ncols(), penalty, options, |beta| {
        Ok(accumulate(x, y, Some(offset), beta))
    })
}

/// The C of the fallback fit under separation, scikit-learn's default.
pub const FALLBACK_C: f64 = 1.0;

/// Fits an unpenalised logistic regression and, when it shows separation,
/// refits with an L2 penalty of C = [`FALLBACK_C`].
///
/// Separation means the unpenalised fit did not converge within
/// `options.max_iterations` or left a fitted probability within
/// [`SEPARATION_PROBABILITY`] of 0 or 1. The returned fit then has
/// `penalty = L2 { c: 1.0 }` and `separation_flag = true`, so a report can
/// state that the unpenalised model was replaced.
///
/// # Errors
///
/// As [`fit_newton`]. Collinear columns are an error, not a reason to fall
/// back: remove the duplicate feature or fit with an L2 penalty directly.
pub fn fit_with_fallback(
    x: ArrayView2<f64>,
    y: &[bool],
    options: &NewtonOptions,
) -> Result<NewtonFit, StatsError> {
    let unpenalised = fit_newton(x, y, Penalty::None, options)?;
    if !unpenalised.separation_flag {
        return Ok(unpenalised);
    }
    let mut fallback = fit_newton(x, y, Penalty::L2 { c: FALLBACK_C }, options)?;
    fallback.separation_flag = true;
    Ok(fallback)
}

/// Validates the rows of one site: equal lengths and finite values.
fn validate_rows(x: ArrayView2<f64>, y: &[bool], offset: Option<&[f64]>) -> Result<(), StatsError> {
    check_same_length("x", x.nrows(), "y", y.len())?;
    check_finite_matrix("x", x)?;
    if let Some(offset) = offset {
        check_same_length("offset", offset.len(), "y", y.len())?;
        check_finite("offset", offset)?;
    }
    Ok(())
}

fn validate_beta(n_features: usize, beta: ArrayView1<f64>) -> Result<(), StatsError> {
    if beta.len() != n_features + 1 {
        return Err(StatsError::ColumnMismatch {
            input: "beta",
            expected: n_features + 1,
            found: beta.len(),
        });
    }
    let beta = beta.to_vec();
    check_finite("beta", &beta)
}

fn check_sums_shape(sums: &LogisticSums, n_coefficients: usize) -> Result<(), StatsError> {
    if sums.gradient.len() != n_coefficients
        || sums.hessian.dim() != (n_coefficients, n_coefficients)
    {
        return Err(StatsError::ColumnMismatch {
            input: "sums.gradient",
            expected: n_coefficients,
            found: sums.gradient.len(),
        });
    }
    Ok(())
}

/// Accumulates g, H, D and the counts over validated rows.
fn accumulate(
    x: ArrayView2<f64>,
    y: &[bool],
    offset: Option<&[f64]>,
    beta: ArrayView1<f64>,
) -> LogisticSums {
    let n_coefficients = beta.len();
    let mut sums = LogisticSums::zeros(n_coefficients);
    // Row i with its leading intercept 1; shape (p + 1).
    let mut row = Array1::<f64>::ones(n_coefficients);

    for (index, (features, &label)) in x.outer_iter().zip(y).enumerate() {
        row.slice_mut(ndarray::s![1..]).assign(&features);
        let eta = row.dot(&beta) + offset.map_or(0.0, |offset| offset[index]);

        // p and 1 − p each from its own exponential, so neither loses digits
        // to cancellation when the other is near 1.
        let probability = logistic(eta);
        let complement = logistic(-eta);
        let residual = if label { complement } else { -probability };
        let weight = probability * complement;

        // Deviance of one row: 2 log(1 + e^η) − 2 y η.
        sums.deviance += 2.0 * softplus(eta) - if label { 2.0 * eta } else { 0.0 };
        sums.n += 1;
        sums.n_positive += usize::from(label);
        if probability.min(complement) < SEPARATION_PROBABILITY {
            sums.n_at_bound += 1;
        }

        for j in 0..n_coefficients {
            sums.gradient[j] += row[j] * residual;
            let weighted = weight * row[j];
            // Lower triangle, mirrored below.
            for k in 0..=j {
                sums.hessian[[j, k]] += weighted * row[k];
            }
        }
    }

    for j in 0..n_coefficients {
        for k in 0..j {
            sums.hessian[[k, j]] = sums.hessian[[j, k]];
        }
    }
    sums
}

/// Logistic function `1 / (1 + e^−z)`, written so that neither branch
/// overflows.
pub(crate) fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let exp_z = z.exp();
        exp_z / (1.0 + exp_z)
    }
}

/// `log(1 + e^z)` without overflow for large z.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests;
