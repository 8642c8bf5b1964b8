//! Binomial (logistic) LASSO path by IRLS and coordinate descent.
//!
//! Minimises `−ℓ(β0, β) / n + λ‖β‖₁` as the Fortran routine `lognet2n` of
//! glmnet 4.1-6 does (Friedman, Hastie and Tibshirani 2010). With
//! row weights w_i = 1/n, fitted probabilities q_i and
//!
//! ```text
//! v_i  = w_i q_i (1 − q_i)          IRLS weight
//! r_i  = w_i (y_i − q_i)            weighted residual (kept current as β changes)
//! h_f  = Σ_i v_i z_if²              curvature along feature f
//! ```
//!
//! each IRLS step minimises the penalised quadratic approximation of −ℓ/n at
//! the current fit by coordinate descent: `β_f ← S(Σ_i r_i z_if + h_f β_f, λ) / h_f`,
//! then `r ← r − Δβ_f v ∘ z_f`, and after each pass the intercept moves by
//! `Σ r / Σ v`. The IRLS loop ends when neither the intercept nor any
//! non-zero coefficient moved by more than the convergence threshold
//! (`Σv · Δβ0² < t` and `h_f Δβ_f² < t`) since the step began.
//!
//! glmnet's safeguards, kept here with pmin = 1e-9 (`glmnet.control`):
//! - A linear predictor beyond ±log(1/pmin − 1) ≈ ±20.7 gets a fitted
//!   probability of exactly 0 or 1, so its IRLS weight is 0 and it leaves the
//!   quadratic approximation instead of making it ill-conditioned.
//! - When the weight sum Σv falls to `(1 + pmin) pmin (1 − pmin)` or below,
//!   the fit is saturated: glmnet stops the path there. Here the solution at
//!   that λ is repeated for every smaller λ, which is what `cv.glmnet`'s
//!   predictions at λ values past the end of a stopped path return, and the
//!   path records where this began.

use super::design::{
    CoordinateDescent, Design, PathSummary, Solution, SolverSettings, StrongSet, count_pass, dot,
    settled, soft_threshold,
};
use crate::stats::StatsError;

/// glmnet's `pmin`: smallest fitted probability treated as non-zero.
const PROBABILITY_MIN: f64 = 1e-9;

/// State of the binomial coordinate descent on one design.
struct BinomialFit<'a> {
    design: &'a Design,
    /// Row weight 1/n.
    row_weight: f64,
    intercept: f64,
    beta: Vec<f64>,
    /// Features that have been non-zero, in the order they entered.
    active: Vec<usize>,
    entered: Vec<bool>,
    /// v.
    weights: Vec<f64>,
    /// Σv.
    weight_sum: f64,
    /// r.
    residuals: Vec<f64>,
    /// h, current for the strong-set members.
    curvatures: Vec<f64>,
    /// |Σ_i r_i z_if| from the last KKT check, read by the strong rule.
    abs_gradient: Vec<f64>,
    strong: StrongSet,
    passes: usize,
    max_passes: usize,
    /// `tolerance · D0`, D0 the null deviance per row.
    threshold: f64,
}

/// Solves the binomial LASSO at each of `lambdas` (decreasing) on `design`,
/// calling `emit` with each solution in path order.
///
/// The design must contain both classes.
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
    let mut fit = BinomialFit::new(design, settings);
    let mut lambda_previous = fit.lambda_max().max(lambdas[0]);
    let mut saturated_from = None;
    let mut nonzero = Vec::new();

    for (index, &lambda) in lambdas.iter().enumerate() {
        if saturated_from.is_none() {
            fit.add_strong_rule_survivors(2.0 * lambda - lambda_previous);
            if fit.solve(index, lambda)? == Outcome::Saturated {
                saturated_from = Some(index);
            }
            nonzero.clear();
            nonzero.extend(
                fit.active
                    .iter()
                    .filter(|&&feature| fit.beta[feature] != 0.0)
                    .map(|&feature| (feature, fit.beta[feature])),
            );
        }
        emit(Solution {
            index,
            intercept: fit.intercept,
            coefficients: &nonzero,
        });
        lambda_previous = lambda;
    }

    Ok(PathSummary {
        passes: fit.passes,
        saturated_from,
    })
}

/// Outcome of the IRLS loop at one λ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Converged,
    Saturated,
}

impl<'a> BinomialFit<'a> {
    /// Starts from the intercept-only fit `β0 = logit(ȳ)`, β = 0.
    fn new(design: &'a Design, settings: SolverSettings) -> Self {
        let rows = design.rows();
        let row_weight = 1.0 / rows as f64;
        let labels = design.labels();
        let mean = labels.iter().sum::<f64>() * row_weight;
        let features = design.features();

        // −ℓ/n of the intercept-only model; the saturated model's is 0 for
        // 0/1 labels, so this is glmnet's `dev0`.
        let null_deviance = -(mean * mean.ln() + (1.0 - mean) * (1.0 - mean).ln());
        let residuals: Vec<f64> = labels
            .iter()
            .map(|&label| row_weight * (label - mean))
            .collect();
        let abs_gradient = (0..features)
            .map(|feature| {
                if design.is_constant(feature) {
                    0.0
                } else {
                    dot(design.column(feature), &residuals).abs()
                }
            })
            .collect();

        Self {
            design,
            row_weight,
            intercept: (mean / (1.0 - mean)).ln(),
            beta: vec![0.0; features],
            active: Vec::new(),
            entered: vec![false; features],
            weights: vec![row_weight * mean * (1.0 - mean); rows],
            weight_sum: mean * (1.0 - mean),
            residuals,
            curvatures: vec![0.0; features],
            abs_gradient,
            strong: StrongSet::new(features),
            passes: 0,
            max_passes: settings.max_passes,
            threshold: settings.tolerance * null_deviance,
        }
    }

    /// Smallest λ with all coefficients zero on these rows.
    fn lambda_max(&self) -> f64 {
        self.abs_gradient
            .iter()
            .fold(0.0, |max, &value| max.max(value))
    }

    /// Sequential strong rule: adds every feature outside the strong set with
    /// `|g_f| > cutoff`, where g is from the previous λ's solution.
    fn add_strong_rule_survivors(&mut self, cutoff: f64) {
        let survivors: Vec<usize> = (0..self.design.features())
            .filter(|&feature| {
                !self.strong.contains(feature)
                    && !self.design.is_constant(feature)
                    && self.abs_gradient[feature] > cutoff
            })
            .collect();
        self.strong.extend(&survivors);
    }

    /// IRLS at one λ, starting from the current (warm) solution.
    fn solve(&mut self, index: usize, lambda: f64) -> Result<Outcome, StatsError> {
        let mut start_beta = vec![0.0; self.beta.len()];
        loop {
            // Remember where this IRLS step starts, for its convergence test.
            let start_intercept = self.intercept;
            for &feature in &self.active {
                start_beta[feature] = self.beta[feature];
            }
            for &feature in self.strong.features() {
                let column = self.design.column(feature);
                self.curvatures[feature] = column
                    .iter()
                    .zip(&self.weights)
                    .map(|(&value, &weight)| weight * value * value)
                    .sum();
            }

            // Coordinate descent on the current quadratic approximation.
            self.descend(index, lambda)?;

            if self.update_quadratic_approximation() == Outcome::Saturated {
                return Ok(Outcome::Saturated);
            }
            let intercept_settled = settled(
                self.weight_sum * (self.intercept - start_intercept).powi(2),
                self.threshold,
            );
            let coefficients_settled = self.active.iter().all(|&feature| {
                settled(
                    self.curvatures[feature] * (self.beta[feature] - start_beta[feature]).powi(2),
                    self.threshold,
                )
            });
            if !(intercept_settled && coefficients_settled) {
                continue;
            }
            if !self.add_kkt_violators(lambda) {
                return Ok(Outcome::Converged);
            }
        }
    }

    /// Recomputes the fitted probabilities, IRLS weights and residuals at
    /// the current coefficients.
    fn update_quadratic_approximation(&mut self) -> Outcome {
        let limit = (1.0 / PROBABILITY_MIN - 1.0).ln();
        let mut linear_predictor = vec![self.intercept; self.design.rows()];
        for &feature in &self.active {
            let beta = self.beta[feature];
            if beta == 0.0 {
                continue;
            }
            for (eta, &value) in linear_predictor.iter_mut().zip(self.design.column(feature)) {
                *eta += beta * value;
            }
        }

        let labels = self.design.labels();
        self.weight_sum = 0.0;
        for (row, &eta) in linear_predictor.iter().enumerate() {
            let probability = if eta < -limit {
                0.0
            } else if eta > limit {
                1.0
            } else {
                1.0 / (1.0 + (-eta).exp())
            };
            self.weights[row] = self.row_weight * probability * (1.0 - probability);
            self.weight_sum += self.weights[row];
            self.residuals[row] = self.row_weight * (labels[row] - probability);
        }

        let weight_sum_min = (1.0 + PROBABILITY_MIN) * PROBABILITY_MIN * (1.0 - PROBABILITY_MIN);
        if self.weight_sum <= weight_sum_min {
            Outcome::Saturated
        } else {
            Outcome::Converged
        }
    }

    /// Recomputes |g_f| = |Σ_i r_i z_if| outside the strong set and adds
    /// every feature with |g_f| > λ. Returns whether any was added.
    fn add_kkt_violators(&mut self, lambda: f64) -> bool {
        let mut violators = Vec::new();
        for feature in 0..self.design.features() {
            if self.strong.contains(feature) || self.design.is_constant(feature) {
                continue;
            }
            let gradient = dot(&self.residuals, self.design.column(feature)).abs();
            self.abs_gradient[feature] = gradient;
            if gradient > lambda {
                violators.push(feature);
            }
        }
        self.strong.extend(&violators);
        !violators.is_empty()
    }
}

impl CoordinateDescent for BinomialFit<'_> {
    fn strong_features(&self) -> Vec<usize> {
        self.strong.features().to_vec()
    }

    fn active_features(&self) -> Vec<usize> {
        self.active.clone()
    }

    fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Updates each coordinate in `features` once, then the intercept, and
    /// returns the largest `h_f · Δβ_f²` (or `Σv · Δβ0²`).
    fn pass(&mut self, features: &[usize], index: usize, lambda: f64) -> Result<f64, StatsError> {
        count_pass(&mut self.passes, self.max_passes, index, lambda)?;

        let mut largest_change: f64 = 0.0;
        for &feature in features {
            let curvature = self.curvatures[feature];
            // Every row of this feature has IRLS weight 0 (all saturated).
            if curvature <= 0.0 {
                continue;
            }
            let column = self.design.column(feature);
            let old = self.beta[feature];
            let score = dot(&self.residuals, column);
            let new = soft_threshold(score + curvature * old, lambda) / curvature;
            let delta = new - old;
            if delta == 0.0 {
                continue;
            }
            self.beta[feature] = new;
            largest_change = largest_change.max(curvature * delta * delta);
            for ((residual, &weight), &value) in
                self.residuals.iter_mut().zip(&self.weights).zip(column)
            {
                *residual -= delta * weight * value;
            }
            if !self.entered[feature] {
                self.entered[feature] = true;
                self.active.push(feature);
            }
        }

        // The intercept is unpenalised, so its update is a plain Newton step
        // on the quadratic approximation.
        let delta = self.residuals.iter().sum::<f64>() / self.weight_sum;
        if delta != 0.0 {
            self.intercept += delta;
            largest_change = largest_change.max(self.weight_sum * delta * delta);
            for (residual, &weight) in self.residuals.iter_mut().zip(&self.weights) {
                *residual -= delta * weight;
            }
        }
        Ok(largest_change)
    }
}
