//! Gaussian mixture with full covariance matrices, fitted by
//! expectation–maximisation (A. P. Dempster, N. M. Laird, D. B. Rubin,
//! "Maximum likelihood from incomplete data via the EM algorithm", J. R.
//! Stat. Soc. B 39, 1977), and its Bayesian information criterion.
//!
//! Model, for rows x ∈ ℝ^d and K components:
//!
//! ```text
//! p(x) = Σ_k π_k N(x | μ_k, Σ_k)
//! log N(x | μ, Σ) = −½ (d ln 2π + ln det Σ + (x − μ)ᵀ Σ⁻¹ (x − μ))
//! log L = Σ_i ln p(x_i)
//! BIC = −2 log L + p ln n,  p = K (d + d(d+1)/2) + K − 1
//! ```
//!
//! EM iteration, the conventions of scikit-learn 1.9 `GaussianMixture`
//! with `covariance_type="full"`, which the tests check:
//!
//! 1. E-step: responsibilities r_ik = π_k N(x_i | μ_k, Σ_k) / p(x_i), in log
//!    space with log-sum-exp, and the mean log-likelihood ℓ = log L / n.
//! 2. M-step: n_k = Σ_i r_ik + 10·ε (ε = f64::EPSILON keeps an empty component
//!    from dividing by 0), π_k = n_k / n, μ_k = Σ_i r_ik x_i / n_k,
//!    Σ_k = Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ / n_k + λ I.
//! 3. Stop when |ℓ − ℓ_previous| < `tol` (default 1e-3, scikit-learn's) or
//!    after `max_iter` iterations.
//!
//! λ = `reg_covar` (default 1e-6, scikit-learn's `reg_covar`) is a ridge on
//! each covariance diagonal. It keeps Σ_k positive definite when a component
//! collapses onto fewer than d + 1 distinct rows; in standardised units it
//! adds 1e-6 to variances of order 1, far below any effect on the labels.
//!
//! Initialisation, as scikit-learn's default `init_params="kmeans"`: one
//! seeded k-means run ([`crate::kmeans::kmeans`] with k-means++ seeding and
//! `n_init = 1`) gives hard responsibilities, and one M-step turns them into
//! the starting parameters. Run r of `n_init` seeds its k-means with
//! [`run_seed`]`(seed, r)`; the run with the highest final log-likelihood
//! wins, ties to the earlier run. Like k-means, the fit reduces K to the
//! number of distinct rows.

use ndarray::{Array1, Array2, Array3, ArrayView2, Axis};

use crate::kmeans::{self, KMeansError, KMeansParams};

/// Default number of EM runs from different seeds (scikit-learn's 1).
pub const DEFAULT_N_INIT: usize = 1;
/// Default maximum EM iterations per run (scikit-learn's 100).
pub const DEFAULT_MAX_ITER: usize = 100;
/// Default tolerance on the change of the mean log-likelihood.
pub const DEFAULT_TOLERANCE: f64 = 1e-3;
/// Default ridge added to each covariance diagonal.
pub const DEFAULT_REG_COVAR: f64 = 1e-6;

/// Parameters of [`gmm`].
#[derive(Debug, Clone, PartialEq)]
pub struct GmmParams {
    /// Components requested; the fit uses fewer when the data have fewer
    /// distinct rows.
    pub n_components: usize,
    /// EM runs from different k-means initialisations, at least 1.
    pub n_init: usize,
    /// Maximum EM iterations per run, at least 1.
    pub max_iter: usize,
    /// Tolerance on the change of the mean log-likelihood; finite and ≥ 0.
    pub tol: f64,
    /// Ridge added to each covariance diagonal; finite and ≥ 0.
    pub reg_covar: f64,
}

impl GmmParams {
    /// Creates parameters for `n_components` components with the defaults
    /// of scikit-learn 1.9.
    pub fn new(n_components: usize) -> Self {
        GmmParams {
            n_components,
            n_init: DEFAULT_N_INIT,
            max_iter: DEFAULT_MAX_ITER,
            tol: DEFAULT_TOLERANCE,
            reg_covar: DEFAULT_REG_COVAR,
        }
    }
}

/// Invalid input to a mixture fit, or a fit that broke down.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GmmError {
    /// The k-means initialisation rejected the data or parameters.
    #[error("k-means initialisation failed: {0}")]
    Initialisation(#[from] KMeansError),
    /// A parameter is out of range.
    #[error("{name} = {value} is invalid; expected {expected}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// The value, as text.
        value: String,
        /// The constraint.
        expected: &'static str,
    },
    /// The initial parameters do not match the data's shape.
    #[error(
        "initial mixture has {components} components of dimension {dimension}, the data {columns} columns"
    )]
    InitialShape {
        /// Components of the initial mixture.
        components: usize,
        /// Dimension of its means.
        dimension: usize,
        /// Columns of the data.
        columns: usize,
    },
    /// A covariance matrix lost positive definiteness.
    #[error(
        "covariance of component {component} is not positive definite; the data may have constant or duplicated columns, so raise reg_covar or standardise the data"
    )]
    NotPositiveDefinite {
        /// The component.
        component: usize,
    },
}

/// Parameters of a Gaussian mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    /// Mixing weights π_k, summing to 1; shape (K).
    pub weights: Array1<f64>,
    /// Component means μ_k; shape (K, d).
    pub means: Array2<f64>,
    /// Component covariances Σ_k; shape (K, d, d).
    pub covariances: Array3<f64>,
}

/// A fitted mixture: the best of `n_init` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct GmmFit {
    /// The mixture's parameters.
    pub mixture: GaussianMixture,
    /// Component of highest responsibility for each row (ties to the lower
    /// index).
    pub labels: Vec<usize>,
    /// log L of the data under the returned parameters.
    pub log_likelihood: f64,
    /// BIC of the returned parameters, from [`bic`].
    pub bic: f64,
    /// EM iterations of the winning run.
    pub iterations: usize,
    /// Whether the winning run met the tolerance before `max_iter`.
    pub converged: bool,
    /// Components requested; the fit has `mixture.weights.len()` ≤ this.
    pub requested_components: usize,
}

/// Returns the seed of run `run` of a fit seeded with `seed`: the
/// SplitMix64 output of `seed + run · φ` (φ = 0x9E3779B97F4A7C15), so the
/// runs draw unrelated k-means++ seedings.
pub fn run_seed(seed: u64, run: usize) -> u64 {
    let mut z = seed.wrapping_add((run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Returns the number of free parameters of a full-covariance mixture of
/// `components` components in `dimension` dimensions:
/// K (d + d(d+1)/2) + K − 1.
pub fn free_parameters(components: usize, dimension: usize) -> usize {
    components * (dimension + dimension * (dimension + 1) / 2) + components - 1
}

/// Returns BIC = −2 log L + p ln n for a full-covariance mixture.
pub fn bic(log_likelihood: f64, rows: usize, components: usize, dimension: usize) -> f64 {
    -2.0 * log_likelihood + free_parameters(components, dimension) as f64 * (rows as f64).ln()
}

/// Fits a full-covariance Gaussian mixture to the rows of `x`. The module
/// documentation defines the iteration, its initialisation and the seeds.
pub fn gmm(x: ArrayView2<'_, f64>, params: &GmmParams, seed: u64) -> Result<GmmFit, GmmError> {
    validate(params)?;
    let mut best: Option<GmmFit> = None;
    for run in 0..params.n_init {
        let mut kmeans_params = KMeansParams::new(params.n_components);
        kmeans_params.n_init = 1;
        let start = kmeans::kmeans(x, None, &kmeans_params, run_seed(seed, run))?;
        let k = start.n_clusters();
        let mut responsibilities = Array2::zeros((x.nrows(), k));
        for (row, &label) in start.labels.iter().enumerate() {
            responsibilities[[row, label]] = 1.0;
        }
        let initial = m_step(x, &responsibilities, params.reg_covar);
        let mut fit = em(x, initial, params)?;
        fit.requested_components = params.n_components;
        let better = match &best {
            None => true,
            Some(incumbent) => fit.log_likelihood > incumbent.log_likelihood,
        };
        if better {
            best = Some(fit);
        }
    }
    best.ok_or(GmmError::InvalidParameter {
        name: "n_init",
        value: "0".into(),
        expected: "at least 1 run",
    })
}

/// Runs EM from `initial` until the tolerance or `max_iter` and returns
/// the fit at the last parameters.
pub fn em(
    x: ArrayView2<'_, f64>,
    initial: GaussianMixture,
    params: &GmmParams,
) -> Result<GmmFit, GmmError> {
    validate(params)?;
    let (k, d) = initial.means.dim();
    if d != x.ncols() || initial.weights.len() != k || initial.covariances.dim() != (k, d, d) {
        return Err(GmmError::InitialShape {
            components: k,
            dimension: d,
            columns: x.ncols(),
        });
    }
    for (row, values) in x.axis_iter(Axis(0)).enumerate() {
        for (column, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                return Err(GmmError::Initialisation(KMeansError::NonFiniteValue {
                    row,
                    column,
                    value,
                }));
            }
        }
    }

    let mut mixture = initial;
    let mut lower_bound = f64::NEG_INFINITY;
    let mut converged = false;
    let mut iterations = 0;
    for iteration in 1..=params.max_iter {
        iterations = iteration;
        let previous = lower_bound;
        let (mean_log_likelihood, responsibilities) = e_step(x, &mixture)?;
        mixture = m_step(x, &responsibilities, params.reg_covar);
        lower_bound = mean_log_likelihood;
        if (lower_bound - previous).abs() < params.tol {
            converged = true;
            break;
        }
    }

    let (mean_log_likelihood, responsibilities) = e_step(x, &mixture)?;
    let log_likelihood = mean_log_likelihood * x.nrows() as f64;
    let labels = most_responsible(&responsibilities);
    Ok(GmmFit {
        bic: bic(log_likelihood, x.nrows(), k, d),
        labels,
        log_likelihood,
        iterations,
        converged,
        requested_components: k,
        mixture,
    })
}

/// Returns the component of maximum posterior probability of each row of
/// `x` under `mixture`, ties to the lower index: the rule of
/// [`GmmFit::labels`], so a fit's own rows get its labels back.
pub fn predict(x: ArrayView2<'_, f64>, mixture: &GaussianMixture) -> Result<Vec<usize>, GmmError> {
    let (_, responsibilities) = e_step(x, mixture)?;
    Ok(most_responsible(&responsibilities))
}

/// Returns the column of the largest value of each row, ties to the lower
/// column.
fn most_responsible(responsibilities: &Array2<f64>) -> Vec<usize> {
    responsibilities
        .axis_iter(Axis(0))
        .map(|row| {
            let mut best = 0;
            for (component, &value) in row.iter().enumerate() {
                if value > row[best] {
                    best = component;
                }
            }
            best
        })
        .collect()
}

/// Returns log L = Σ_i ln p(x_i) of the rows of `x` under `mixture`.
pub fn log_likelihood(x: ArrayView2<'_, f64>, mixture: &GaussianMixture) -> Result<f64, GmmError> {
    let (mean, _) = e_step(x, mixture)?;
    Ok(mean * x.nrows() as f64)
}

fn validate(params: &GmmParams) -> Result<(), GmmError> {
    let invalid = |name, value: String, expected| GmmError::InvalidParameter {
        name,
        value,
        expected,
    };
    if params.n_components == 0 {
        return Err(invalid("n_components", "0".into(), "at least 1 component"));
    }
    if params.n_init == 0 {
        return Err(invalid("n_init", "0".into(), "at least 1 run"));
    }
    if params.max_iter == 0 {
        return Err(invalid("max_iter", "0".into(), "at least 1 iteration"));
    }
    if !(params.tol.is_finite() && params.tol >= 0.0) {
        return Err(invalid("tol", params.tol.to_string(), "a finite value ≥ 0"));
    }
    if !(params.reg_covar.is_finite() && params.reg_covar >= 0.0) {
        return Err(invalid(
            "reg_covar",
            params.reg_covar.to_string(),
            "a finite value ≥ 0",
        ));
    }
    Ok(())
}

/// E-step: mean log-likelihood and responsibilities, shape (n, K).
fn e_step(
    x: ArrayView2<'_, f64>,
    mixture: &GaussianMixture,
) -> Result<(f64, Array2<f64>), GmmError> {
    let (k, d) = mixture.means.dim();
    let n = x.nrows();
    let ln_2pi = (2.0 * std::f64::consts::PI).ln();

    // log π_k + log N(x_i | μ_k, Σ_k), shape (n, K).
    let mut weighted = Array2::zeros((n, k));
    for component in 0..k {
        let covariance = mixture.covariances.index_axis(Axis(0), component);
        let lower =
            cholesky(&covariance.to_owned()).ok_or(GmmError::NotPositiveDefinite { component })?;
        let log_det: f64 = (0..d).map(|i| 2.0 * lower[[i, i]].ln()).sum();
        let log_weight = mixture.weights[component].ln();
        let mean = mixture.means.row(component);
        let mut solved = vec![0.0; d];
        for (row, values) in x.axis_iter(Axis(0)).enumerate() {
            // Forward substitution L y = x − μ gives the Mahalanobis
            // distance as ‖y‖².
            for i in 0..d {
                let mut value = values[i] - mean[i];
                for j in 0..i {
                    value -= lower[[i, j]] * solved[j];
                }
                solved[i] = value / lower[[i, i]];
            }
            let mahalanobis: f64 = solved.iter().map(|v| v * v).sum();
            weighted[[row, component]] =
                log_weight - 0.5 * (d as f64 * ln_2pi + log_det + mahalanobis);
        }
    }

    let mut total = 0.0;
    for mut row in weighted.axis_iter_mut(Axis(0)) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_norm = if max.is_finite() {
            max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
        } else {
            max
        };
        total += log_norm;
        row.mapv_inplace(|v| (v - log_norm).exp());
    }
    Ok((total / n as f64, weighted))
}

/// M-step from responsibilities, shape (n, K).
fn m_step(
    x: ArrayView2<'_, f64>,
    responsibilities: &Array2<f64>,
    reg_covar: f64,
) -> GaussianMixture {
    let (n, d) = x.dim();
    let k = responsibilities.ncols();
    let counts: Array1<f64> = responsibilities.sum_axis(Axis(0)) + 10.0 * f64::EPSILON;
    let mut means = responsibilities.t().dot(&x);
    for component in 0..k {
        let count = counts[component];
        means.row_mut(component).mapv_inplace(|v| v / count);
    }
    let mut covariances = Array3::zeros((k, d, d));
    for component in 0..k {
        let mean = means.row(component);
        let mut covariance = covariances.index_axis_mut(Axis(0), component);
        for row in 0..n {
            let weight = responsibilities[[row, component]];
            for i in 0..d {
                let di = x[[row, i]] - mean[i];
                for j in 0..d {
                    covariance[[i, j]] += weight * di * (x[[row, j]] - mean[j]);
                }
            }
        }
        let count = counts[component];
        covariance.mapv_inplace(|v| v / count);
        for i in 0..d {
            covariance[[i, i]] += reg_covar;
        }
    }
    GaussianMixture {
        weights: counts.mapv(|c| c / n as f64),
        means,
        covariances,
    }
}

/// Lower Cholesky factor of a symmetric matrix, or `None` when it is not
/// positive definite.
fn cholesky(matrix: &Array2<f64>) -> Option<Array2<f64>> {
    let d = matrix.nrows();
    let mut lower = Array2::zeros((d, d));
    for i in 0..d {
        for j in 0..=i {
            let mut sum = matrix[[i, j]];
            for m in 0..j {
                sum -= lower[[i, m]] * lower[[j, m]];
            }
            if i == j {
                if !(sum > 0.0 && sum.is_finite()) {
                    return None;
                }
                lower[[i, i]] = sum.sqrt();
            } else {
                lower[[i, j]] = sum / lower[[j, j]];
            }
        }
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[allow(dead_code)] // Each module uses part of the shared fixture file.
    mod fixtures {
        include!("../tests/fixtures/sklearn_fixtures.rs");
    }

    fn matrix<const D: usize>(rows: &[[f64; D]]) -> Array2<f64> {
        Array2::from_shape_fn((rows.len(), D), |(i, j)| rows[i][j])
    }

    fn sklearn_mixture() -> GaussianMixture {
        let covariances = Array3::from_shape_fn((3, 2, 2), |(k, i, j)| {
            fixtures::GMM_COVARIANCES[k][2 * i + j]
        });
        GaussianMixture {
            weights: Array1::from(fixtures::GMM_WEIGHTS.to_vec()),
            means: matrix(&fixtures::GMM_MEANS),
            covariances,
        }
    }

    /// Relative tolerance of log L and BIC at scikit-learn's own parameters:
    /// both sum the same n = 90 terms, and scikit-learn works through the
    /// precision Cholesky factor where this module solves with the
    /// covariance factor, so only rounding of order 1e-14 separates them.
    const LOG_LIKELIHOOD_TOLERANCE: f64 = 1e-12;

    /// Absolute tolerance of EM's fixed point. Both fits start from the
    /// same parameters and stop when the mean log-likelihood changes by
    /// less than 1e-12 per iteration. EM converges linearly, so the
    /// parameters are then within about sqrt(1e-12) = 1e-6 of the fixed
    /// point; 1e-5 covers that for both fits.
    const FIXED_POINT_TOLERANCE: f64 = 1e-5;

    #[test]
    fn log_likelihood_matches_sklearn_score() {
        let x = matrix(&fixtures::GMM_X);
        let value = log_likelihood(x.view(), &sklearn_mixture()).expect("valid mixture");
        let error =
            (value - fixtures::GMM_LOG_LIKELIHOOD).abs() / fixtures::GMM_LOG_LIKELIHOOD.abs();
        assert!(
            error < LOG_LIKELIHOOD_TOLERANCE,
            "{value} vs {}",
            fixtures::GMM_LOG_LIKELIHOOD
        );
    }

    #[test]
    fn bic_matches_sklearn_bic() {
        let x = matrix(&fixtures::GMM_X);
        let value = log_likelihood(x.view(), &sklearn_mixture()).expect("valid mixture");
        let criterion = bic(value, x.nrows(), 3, 2);
        let error = (criterion - fixtures::GMM_BIC).abs() / fixtures::GMM_BIC.abs();
        assert!(
            error < LOG_LIKELIHOOD_TOLERANCE,
            "{criterion} vs {}",
            fixtures::GMM_BIC
        );
    }

    #[test]
    fn free_parameters_of_full_covariance() {
        // K = 3, d = 2: 3 · (2 + 3) + 2 = 17, as scikit-learn's
        // `_n_parameters` counts.
        assert_eq!(free_parameters(3, 2), 17);
        assert_eq!(free_parameters(1, 4), 14);
    }

    #[test]
    fn em_reaches_sklearn_fixed_point() {
        let x = matrix(&fixtures::GMM_X);
        let covariances =
            Array3::from_shape_fn((3, 2, 2), |(_, i, j)| if i == j { 1.0 } else { 0.0 });
        let initial = GaussianMixture {
            weights: Array1::from(fixtures::GMM_WEIGHTS_INIT.to_vec()),
            means: matrix(&fixtures::GMM_MEANS_INIT),
            covariances,
        };
        let params = GmmParams {
            tol: 1e-12,
            max_iter: 100_000,
            ..GmmParams::new(3)
        };
        let fit = em(x.view(), initial, &params).expect("EM runs");
        assert!(fit.converged);
        let expected = sklearn_mixture();
        for k in 0..3 {
            assert!((fit.mixture.weights[k] - expected.weights[k]).abs() < FIXED_POINT_TOLERANCE);
            for i in 0..2 {
                let mean = fit.mixture.means[[k, i]];
                assert!(
                    (mean - expected.means[[k, i]]).abs() < FIXED_POINT_TOLERANCE,
                    "mean {k},{i}: {mean}"
                );
                for j in 0..2 {
                    let value = fit.mixture.covariances[[k, i, j]];
                    let reference = expected.covariances[[k, i, j]];
                    assert!(
                        (value - reference).abs() < FIXED_POINT_TOLERANCE,
                        "cov {k},{i},{j}: {value} vs {reference}"
                    );
                }
            }
        }
        assert_eq!(fit.labels, fixtures::GMM_LABELS.to_vec());
        assert!((fit.log_likelihood - fixtures::GMM_LOG_LIKELIHOOD).abs() < 1e-6);
    }

    #[test]
    fn predict_matches_sklearn_labels() {
        // scikit-learn's `predict` at its own fitted parameters: the same
        // argmax of the posterior, so the labels must agree exactly.
        let x = matrix(&fixtures::GMM_X);
        let labels = predict(x.view(), &sklearn_mixture()).expect("valid mixture");
        assert_eq!(labels, fixtures::GMM_LABELS.to_vec());
    }

    #[test]
    fn gmm_is_reproducible_for_a_seed() {
        let x = matrix(&fixtures::GMM_X);
        let params = GmmParams {
            n_init: 3,
            ..GmmParams::new(3)
        };
        let first = gmm(x.view(), &params, 11).expect("fit");
        let second = gmm(x.view(), &params, 11).expect("fit");
        assert_eq!(first, second);
        // The three blobs are well separated, so a seeded fit finds the
        // optimum that scikit-learn found, up to the order of the
        // components. It stops when log L changes by less than n · tol =
        // 90 · 1e-3 = 0.09 per iteration, and EM's linear convergence leaves
        // a remaining gap of a few such steps, so 1.0 is the bound.
        let gap = (first.log_likelihood - fixtures::GMM_LOG_LIKELIHOOD).abs();
        assert!(
            gap < 1.0,
            "log L {} vs {}",
            first.log_likelihood,
            fixtures::GMM_LOG_LIKELIHOOD
        );
    }

    #[test]
    fn gmm_reduces_components_to_distinct_rows() {
        let x = matrix(&[[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]);
        let fit = gmm(x.view(), &GmmParams::new(3), 1).expect("fit");
        assert_eq!(fit.mixture.weights.len(), 2);
        assert_eq!(fit.requested_components, 3);
        assert_eq!(fit.labels[0], fit.labels[1]);
        assert_ne!(fit.labels[0], fit.labels[2]);
    }

    #[test]
    fn gmm_rejects_zero_components() {
        let x = matrix(&[[0.0], [1.0]]);
        assert!(matches!(
            gmm(x.view(), &GmmParams::new(0), 1),
            Err(GmmError::InvalidParameter {
                name: "n_components",
                ..
            })
        ));
    }
}
