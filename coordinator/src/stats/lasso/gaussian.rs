//! Gaussian LASSO path by coordinate descent with covariance updates.
//!
//! Minimises `Σ_i (y_i − β0 − z_i · β)² / (2n) + λ‖β‖₁`, the objective of
//! scikit-learn 1.9.1 `Lasso(alpha = λ)`. Profiling out the unpenalised
//! intercept centres both sides, so with
//!
//! ```text
//! m_f    = Σ_i z_if / n                          column mean
//! c_f    = Σ_i (z_if − m_f)(y_i − ȳ) / n         centred cross-product with y
//! G_fk   = Σ_i (z_if − m_f)(z_ik − m_k) / n      centred Gram matrix
//! g_f    = c_f − Σ_k G_fk β_k                    minus the gradient of the loss
//! ```
//!
//! the coordinate update is `β_f ← S(g_f + G_ff β_f, λ) / G_ff` with S the
//! soft-threshold, and `β0 = ȳ − Σ_f m_f β_f` (Friedman, Hastie and Tibshirani
//! 2010, section 2.2, "covariance updates"). The data enter only through n,
//! m, ȳ, `Σ (y_i − ȳ)² / n`, c and the columns of G for the features that
//! become non-zero. G's columns are computed from the rows here, but the
//! same numbers follow from per-site sums `Σ z`, `Σ zzᵀ`, `Σ zy`, `Σ y`,
//! `Σ y²`.

use super::design::{
    Design, PathSummary, Solution, SolverSettings, StrongSet, dot, soft_threshold,
};
use crate::stats::StatsError;

/// Sufficient statistics of one fit and the coordinate-descent state.
struct GaussianFit<'a> {
    design: &'a Design,
    means: Vec<f64>,
    /// Column variances, the diagonal of G.
    variances: Vec<f64>,
    /// c, the centred cross-products with y.
    cross_products: Vec<f64>,
    /// Columns of G, computed when a feature first becomes non-zero.
    gram_columns: Vec<Option<Vec<f64>>>,
    /// Features with a computed G column, in the order they entered.
    active: Vec<usize>,
    beta: Vec<f64>,
    /// g. Current for the strong-set members; for the others it holds the
    /// value from the last KKT check, which the strong rule reads.
    gradient: Vec<f64>,
    strong: StrongSet,
    passes: usize,
    max_passes: usize,
    /// `tolerance · Σ (y_i − ȳ)² / n`.
    threshold: f64,
}

/// Solves the Gaussian LASSO at each of `lambdas` (decreasing) on `design`,
/// calling `emit` with each solution in path order.
///
/// # Errors
///
/// [`StatsError::LassoNotConverged`] if the path needs more than
/// `settings.max_passes` coordinate-descent passes.
pub(super) fn solve_path(
    design: &Design,
    lambdas: &[f64],
    settings: SolverSettings,
    mut emit: impl FnMut(Solution<'_>),
) -> Result<PathSummary, StatsError> {
    let mut fit = GaussianFit::new(design, settings);
    let mut lambda_previous = fit.lambda_max().max(lambdas[0]);
    let mut nonzero = Vec::new();

    for (index, &lambda) in lambdas.iter().enumerate() {
        fit.add_strong_rule_survivors(2.0 * lambda - lambda_previous);
        loop {
            fit.descend(index, lambda)?;
            if !fit.add_kkt_violators(lambda) {
                break;
            }
        }

        nonzero.clear();
        nonzero.extend(
            fit.active
                .iter()
                .filter(|&&feature| fit.beta[feature] != 0.0)
                .map(|&feature| (feature, fit.beta[feature])),
        );
        emit(Solution {
            index,
            intercept: fit.intercept(),
            coefficients: &nonzero,
        });
        lambda_previous = lambda;
    }

    Ok(PathSummary {
        passes: fit.passes,
        saturated_from: None,
    })
}

impl<'a> GaussianFit<'a> {
    fn new(design: &'a Design, settings: SolverSettings) -> Self {
        let n = design.rows() as f64;
        let labels = design.labels();
        let y_mean = labels.iter().sum::<f64>() / n;
        let centred_labels: Vec<f64> = labels.iter().map(|&label| label - y_mean).collect();
        let null_deviance = dot(&centred_labels, &centred_labels) / n;

        let features = design.features();
        let mut means = vec![0.0; features];
        let mut variances = vec![0.0; features];
        let mut cross_products = vec![0.0; features];
        for feature in 0..features {
            if design.is_constant(feature) {
                continue;
            }
            let column = design.column(feature);
            let mean = column.iter().sum::<f64>() / n;
            means[feature] = mean;
            variances[feature] = column.iter().map(|&value| (value - mean).powi(2)).sum::<f64>() / n;
            // Σ_i (z_if − m_f)(y_i − ȳ) = Σ_i z_if (y_i − ȳ) because Σ_i (y_i − ȳ) = 0.
            cross_products[feature] = dot(column, &centred_labels) / n;
        }

        Self {
            design,
            means,
            variances,
            gradient: cross_products.clone(),
            cross_products,
            gram_columns: vec![None; features],
            active: Vec::new(),
            beta: vec![0.0; features],
            strong: StrongSet::new(features),
            passes: 0,
            max_passes: settings.max_passes,
            threshold: settings.tolerance * null_deviance,
        }
    }

    /// Smallest λ with all coefficients zero on these rows: `max_f |c_f|`.
    fn lambda_max(&self) -> f64 {
        self.cross_products
            .iter()
            .fold(0.0, |max, &value| f64::max(max, value.abs()))
    }

    /// Sequential strong rule: adds every feature outside the strong set with
    /// `|g_f| > cutoff`, where g is from the previous λ's solution.
    fn add_strong_rule_survivors(&mut self, cutoff: f64) {
        let survivors: Vec<usize> = (0..self.design.features())
            .filter(|&feature| {
                !self.strong.contains(feature)
                    && !self.design.is_constant(feature)
                    && self.gradient[feature].abs() > cutoff
            })
            .collect();
        self.strong.extend(&survivors);
    }

    /// Runs coordinate descent on the strong set until a full pass converges:
    /// after each full pass that changed something, passes over the features
    /// that have been non-zero repeat until they converge.
    fn descend(&mut self, index: usize, lambda: f64) -> Result<(), StatsError> {
        loop {
            let strong = self.strong.features().to_vec();
            if self.pass(&strong, index, lambda)? < self.threshold {
                return Ok(());
            }
            loop {
                let active = self.active.clone();
                if self.pass(&active, index, lambda)? < self.threshold {
                    break;
                }
            }
        }
    }

    /// Updates each coordinate in `features` once and returns the largest
    /// `G_ff · Δβ_f²`.
    fn pass(&mut self, features: &[usize], index: usize, lambda: f64) -> Result<f64, StatsError> {
        self.passes += 1;
        if self.passes > self.max_passes {
            return Err(StatsError::LassoNotConverged {
                lambda_index: index,
                lambda,
                passes: self.max_passes,
            });
        }

        let mut largest_change: f64 = 0.0;
        for &feature in features {
            let curvature = self.variances[feature];
            if curvature <= 0.0 {
                continue;
            }
            let old = self.beta[feature];
            let new = soft_threshold(self.gradient[feature] + curvature * old, lambda) / curvature;
            let delta = new - old;
            if delta == 0.0 {
                continue;
            }
            self.beta[feature] = new;
            largest_change = largest_change.max(curvature * delta * delta);

            self.ensure_gram_column(feature);
            if let Some(column) = &self.gram_columns[feature] {
                for &member in self.strong.features() {
                    self.gradient[member] -= column[member] * delta;
                }
            }
        }
        Ok(largest_change)
    }

    /// Computes column `feature` of G the first time the feature becomes
    /// non-zero: `G_kf = Σ_i z_ik (z_if − m_f) / n`, one pass over all
    /// columns.
    fn ensure_gram_column(&mut self, feature: usize) {
        if self.gram_columns[feature].is_some() {
            return;
        }
        let n = self.design.rows() as f64;
        let mean = self.means[feature];
        let centred: Vec<f64> = self
            .design
            .column(feature)
            .iter()
            .map(|&value| value - mean)
            .collect();
        let mut column: Vec<f64> = (0..self.design.features())
            .map(|other| {
                if self.design.is_constant(other) {
                    0.0
                } else {
                    dot(self.design.column(other), &centred) / n
                }
            })
            .collect();
        // Use the two-pass variance on the diagonal, the same number the
        // coordinate update divides by.
        column[feature] = self.variances[feature];
        self.gram_columns[feature] = Some(column);
        self.active.push(feature);
    }

    /// Recomputes g outside the strong set and adds every feature with
    /// `|g_f| > λ`, which violates the optimality condition at β_f = 0.
    /// Returns whether any was added.
    fn add_kkt_violators(&mut self, lambda: f64) -> bool {
        let mut full_gradient = self.cross_products.clone();
        for &feature in &self.active {
            let beta = self.beta[feature];
            if beta == 0.0 {
                continue;
            }
            if let Some(column) = &self.gram_columns[feature] {
                for (value, &gram) in full_gradient.iter_mut().zip(column) {
                    *value -= gram * beta;
                }
            }
        }

        let mut violators = Vec::new();
        for feature in 0..self.design.features() {
            if self.strong.contains(feature) || self.design.is_constant(feature) {
                continue;
            }
            self.gradient[feature] = full_gradient[feature];
            if full_gradient[feature].abs() > lambda {
                violators.push(feature);
            }
        }
        self.strong.extend(&violators);
        !violators.is_empty()
    }

    /// `β0 = ȳ − Σ_f m_f β_f`.
    fn intercept(&self) -> f64 {
        let n = self.design.rows() as f64;
        let y_mean = self.design.labels().iter().sum::<f64>() / n;
        y_mean
            - self
                .active
                .iter()
                .map(|&feature| self.means[feature] * self.beta[feature])
                .sum::<f64>()
    }
}
