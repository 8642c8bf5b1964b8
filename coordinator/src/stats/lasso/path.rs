//! LASSO coefficients along a λ path, fitted with warm starts.

use ndarray::{Array1, Array2, ArrayView2};

use super::design::{Design, PathSummary, Solution, SolverSettings};
use super::grid::check_lasso_input;
use super::params::{Family, ValidLassoParams};
use super::{binomial, gaussian};
use crate::stats::StatsError;

/// LASSO solutions along a λ path.
#[derive(Debug, Clone, PartialEq)]
pub struct LassoPath {
    /// The λ values, in the decreasing order they were fitted.
    pub lambdas: Vec<f64>,
    /// Unpenalised intercept β0 at each λ (log-odds for the binomial
    /// family, label scale for the Gaussian family).
    pub intercepts: Array1<f64>,
    /// Coefficients, one row per λ and one column per feature of `z`
    /// (shape n_lambda × p).
    pub coefficients: Array2<f64>,
    /// Coordinate-descent passes used over the whole path.
    pub passes: usize,
    /// Binomial family only: the first λ index at which the fitted
    /// probabilities became 0 or 1 for (nearly) every row, so the IRLS
    /// weights vanished. glmnet 4.1-6 stops its path there. Here every later
    /// λ repeats that solution, which is what `cv.glmnet` predicts for λ
    /// values past the end of a stopped path.
    pub saturated_from: Option<usize>,
}

impl LassoPath {
    /// Indices of the features with a non-zero coefficient at λ index
    /// `index`, in ascending order.
    ///
    /// # Panics
    ///
    /// If `index` is not below the number of λ values.
    pub fn nonzero(&self, index: usize) -> Vec<usize> {
        self.coefficients
            .row(index)
            .iter()
            .enumerate()
            .filter(|&(_, &beta)| beta != 0.0)
            .map(|(feature, _)| feature)
            .collect()
    }
}

/// Fits the LASSO of `params.family()` on all rows of `z` at each λ in
/// `lambdas`, starting each fit from the previous solution.
///
/// `z` (n × p) must already be standardised; see the module documentation.
/// The settings used are the family, `tolerance` and `max_passes`; the
/// λ-grid and cross-validation settings are ignored. Use
/// [`lambda_grid`](super::lambda_grid) for the default path.
///
/// # Errors
///
/// - [`StatsError::Empty`] if `lambdas` is empty, and
///   [`StatsError::InvalidParameter`] named "lambdas" for the first value
///   that is not finite and positive or not below its predecessor.
/// - The input errors of [`lambda_max`](super::lambda_max), except that a
///   zero λ_max is allowed (every coefficient is then 0).
/// - [`StatsError::LassoNotConverged`] if the path needs more than
///   `max_passes` coordinate-descent passes.
pub fn lasso_path(
    z: ArrayView2<f64>,
    y: &[bool],
    lambdas: &[f64],
    params: &ValidLassoParams,
) -> Result<LassoPath, StatsError> {
    check_lasso_input(z, y)?;
    check_lambdas(lambdas)?;

    let all_rows: Vec<usize> = (0..z.nrows()).collect();
    fit_rows(z, y, &all_rows, lambdas, params)
}

/// Fits the path on `rows` of input that [`check_lasso_input`] accepted and
/// stores every solution densely.
pub(super) fn fit_rows(
    z: ArrayView2<f64>,
    y: &[bool],
    rows: &[usize],
    lambdas: &[f64],
    params: &ValidLassoParams,
) -> Result<LassoPath, StatsError> {
    let design = Design::new(z, y, rows);
    let mut intercepts = Array1::zeros(lambdas.len());
    let mut coefficients = Array2::zeros((lambdas.len(), z.ncols()));
    let summary = solve_design(&design, params, lambdas, |solution| {
        intercepts[solution.index] = solution.intercept;
        for &(feature, beta) in solution.coefficients {
            coefficients[[solution.index, feature]] = beta;
        }
    })?;

    Ok(LassoPath {
        lambdas: lambdas.to_vec(),
        intercepts,
        coefficients,
        passes: summary.passes,
        saturated_from: summary.saturated_from,
    })
}

/// Runs the solver of `params.family()` on a prepared design.
pub(super) fn solve_design(
    design: &Design,
    params: &ValidLassoParams,
    lambdas: &[f64],
    emit: impl FnMut(Solution<'_>),
) -> Result<PathSummary, StatsError> {
    let settings = SolverSettings {
        tolerance: params.tolerance(),
        max_passes: params.max_passes(),
    };
    match params.family() {
        Family::Binomial => binomial::solve_path(design, lambdas, settings, emit),
        Family::Gaussian => gaussian::solve_path(design, lambdas, settings, emit),
    }
}

/// Rejects an empty λ list ([`StatsError::Empty`]), and a non-finite or
/// non-positive λ or one not strictly below its predecessor
/// ([`StatsError::InvalidParameter`]).
pub(super) fn check_lambdas(lambdas: &[f64]) -> Result<(), StatsError> {
    let expected = "finite values greater than 0, in strictly decreasing order";
    if lambdas.is_empty() {
        return Err(StatsError::Empty { input: "lambdas" });
    }
    let mut previous = f64::INFINITY;
    for &lambda in lambdas {
        if !(lambda.is_finite() && lambda > 0.0 && lambda < previous) {
            return Err(StatsError::InvalidParameter {
                name: "lambdas",
                value: lambda,
                expected,
            });
        }
        previous = lambda;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, array};

    use super::*;
    use crate::stats::lasso::{LassoParams, lambda_grid};

    fn params(family: Family, tolerance: f64) -> ValidLassoParams {
        LassoParams {
            family,
            tolerance,
            ..LassoParams::default()
        }
        .validate()
        .unwrap()
    }

    /// Deterministic, roughly standardised 30 × 6 design whose label depends
    /// on features 0 and 3.
    fn toy_problem() -> (Array2<f64>, Vec<bool>) {
        let mut state: u64 = 7;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let z = Array2::from_shape_fn((30, 6), |_| next());
        let y = (0..30)
            .map(|row| 1.5 * z[[row, 0]] - z[[row, 3]] + 1.5 * next() > 0.0)
            .collect();
        (z, y)
    }

    /// Optimality conditions of the LASSO at one λ: |g_f| ≤ λ for β_f = 0,
    /// g_f = λ sign(β_f) otherwise, and a zero intercept gradient, where g is
    /// minus the gradient of the smooth part.
    fn assert_kkt(
        z: &Array2<f64>,
        y: &[bool],
        family: Family,
        lambda: f64,
        intercept: f64,
        beta: ndarray::ArrayView1<f64>,
    ) {
        let n = y.len() as f64;
        let residuals: Vec<f64> = (0..y.len())
            .map(|row| {
                let eta = intercept + z.row(row).dot(&beta);
                let fitted = match family {
                    Family::Binomial => 1.0 / (1.0 + (-eta).exp()),
                    Family::Gaussian => eta,
                };
                (if y[row] { 1.0 } else { 0.0 }) - fitted
            })
            .collect();
        // Absolute, because the gradient error left by the convergence
        // threshold does not shrink with λ.
        let slack = 1e-7;
        assert!(
            residuals.iter().sum::<f64>().abs() / n < slack,
            "intercept gradient"
        );
        for feature in 0..z.ncols() {
            let gradient: f64 = (0..y.len())
                .map(|row| z[[row, feature]] * residuals[row])
                .sum::<f64>()
                / n;
            if beta[feature] == 0.0 {
                assert!(
                    gradient.abs() <= lambda + slack,
                    "feature {feature}: |g| = {} > λ = {lambda}",
                    gradient.abs()
                );
            } else {
                assert!(
                    (gradient - lambda * beta[feature].signum()).abs() < slack,
                    "feature {feature}: g = {gradient}, λ = {lambda}, β = {}",
                    beta[feature]
                );
            }
        }
    }

    #[test]
    fn path_satisfies_kkt_for_both_families() {
        let (z, y) = toy_problem();
        for family in [Family::Binomial, Family::Gaussian] {
            let params = params(family, 1e-16);
            let lambdas = lambda_grid(z.view(), &y, &params).unwrap();
            let path = lasso_path(z.view(), &y, &lambdas, &params).unwrap();
            assert_eq!(path.coefficients.dim(), (100, 6));
            assert!(
                path.nonzero(0).is_empty(),
                "{family:?}: λ_max must give β = 0"
            );
            assert!(path.nonzero(99).contains(&0), "{family:?}");
            assert!(path.nonzero(99).contains(&3), "{family:?}");
            for index in (0..100).step_by(9) {
                assert_kkt(
                    &z,
                    &y,
                    family,
                    lambdas[index],
                    path.intercepts[index],
                    path.coefficients.row(index),
                );
            }
        }
    }

    #[test]
    fn path_satisfies_kkt_with_more_features_than_rows() {
        // 20 rows, 300 features: most features stay outside the strong set,
        // so the Gaussian screening bound and its refresh both run.
        let mut state: u64 = 3;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let z = Array2::from_shape_fn((20, 300), |_| next());
        let y: Vec<bool> = (0..20)
            .map(|row| z[[row, 7]] - z[[row, 150]] + 0.5 * next() > 0.0)
            .collect();
        for family in [Family::Binomial, Family::Gaussian] {
            let params = params(family, 1e-16);
            let lambdas = lambda_grid(z.view(), &y, &params).unwrap();
            let path = lasso_path(z.view(), &y, &lambdas, &params).unwrap();
            for index in (0..100).step_by(11) {
                assert_kkt(
                    &z,
                    &y,
                    family,
                    lambdas[index],
                    path.intercepts[index],
                    path.coefficients.row(index),
                );
            }
        }
    }

    #[test]
    fn zero_lambda_max_path_is_all_zero() {
        let z = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]];
        let y = [true, false, true, true];
        for family in [Family::Binomial, Family::Gaussian] {
            let path = lasso_path(z.view(), &y, &[0.5, 0.1], &params(family, 1e-7)).unwrap();
            assert!(path.coefficients.iter().all(|&beta| beta == 0.0));
        }
        let binomial =
            lasso_path(z.view(), &y, &[0.5, 0.1], &params(Family::Binomial, 1e-7)).unwrap();
        assert!((binomial.intercepts[0] - 3f64.ln()).abs() < 1e-15);
        let gaussian =
            lasso_path(z.view(), &y, &[0.5, 0.1], &params(Family::Gaussian, 1e-7)).unwrap();
        assert_eq!(gaussian.intercepts[1], 0.75);
    }

    #[test]
    fn separable_binomial_path_saturates() {
        // One feature separates the classes perfectly, so at small λ the
        // fitted probabilities reach 0 and 1.
        let z = array![[-1.5], [-1.0], [-0.5], [0.5], [1.0], [1.5]];
        let y = [false, false, false, true, true, true];
        let params = params(Family::Binomial, 1e-7);
        let lambdas: Vec<f64> = (0..60).map(|k| 0.5 * 0.7f64.powi(k)).collect();
        let path = lasso_path(z.view(), &y, &lambdas, &params).unwrap();
        let from = path.saturated_from.expect("separable data must saturate");
        assert!(from > 0);
        for index in from..60 {
            assert_eq!(path.coefficients.row(index), path.coefficients.row(from));
        }
        assert!(path.coefficients[[from, 0]] > 20.0 / 1.5);
    }

    #[test]
    fn lasso_path_rejects_bad_lambdas() {
        let (z, y) = toy_problem();
        let params = params(Family::Gaussian, 1e-7);
        assert_eq!(
            lasso_path(z.view(), &y, &[], &params).unwrap_err(),
            StatsError::Empty { input: "lambdas" }
        );
        for lambdas in [
            vec![0.1, 0.2],
            vec![0.1, 0.1],
            vec![0.1, 0.0],
            vec![f64::NAN],
        ] {
            let error = lasso_path(z.view(), &y, &lambdas, &params).unwrap_err();
            assert!(
                matches!(
                    error,
                    StatsError::InvalidParameter {
                        name: "lambdas",
                        ..
                    }
                ),
                "{lambdas:?}: got {error:?}"
            );
        }
    }

    #[test]
    fn lasso_path_reports_pass_limit() {
        let (z, y) = toy_problem();
        let params = LassoParams {
            max_passes: 3,
            tolerance: 1e-12,
            ..LassoParams::default()
        }
        .validate()
        .unwrap();
        let lambdas = lambda_grid(z.view(), &y, &params).unwrap();
        let error = lasso_path(z.view(), &y, &lambdas, &params).unwrap_err();
        assert!(
            matches!(error, StatsError::LassoNotConverged { passes: 3, .. }),
            "got {error:?}"
        );
    }
}
