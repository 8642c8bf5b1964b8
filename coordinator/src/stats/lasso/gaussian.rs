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
//! soft-threshold, and `β0 = ȳ − Σ_f m_f β_f` (the covariance updates of
//! Friedman, Hastie and Tibshirani 2010). The solution is a function of n,
//! m, ȳ, c and G only, so per-site sums `Σ z`, `Σ zzᵀ`, `Σ zy` and `Σ y`
//! determine it exactly.
//!
//! Coordinate descent needs G only between strong-set members and features
//! that have been non-zero, so only those entries are computed, from the
//! rows. The optimality check outside the strong set needs g_f for every
//! feature. It is computed exactly only for the features that a cheap bound
//! cannot clear, as `Σ_i z_if r_i / n` with the residual
//! `r = (y − ȳ) − Zc β`, which equals c_f − Σ_k G_fk β_k. With g_f known exactly at an earlier
//! solution β_ref, the Cauchy–Schwarz inequality (G is a Gram matrix) gives
//!
//! ```text
//! |g_f(β)| ≤ |g_f(β_ref)| + sqrt(G_ff) · sqrt((β − β_ref)ᵀ G (β − β_ref))
//! ```
//!
//! so a feature whose bound is at most the limit (λ for the optimality
//! check, `2λ − λ_prev` for the strong rule) is cleared without touching
//! its column. The others get their exact g_f.

use super::design::{
    CoordinateDescent, Design, PathSummary, Solution, SolverSettings, StrongSet, count_pass, dot,
    soft_threshold,
};
use crate::stats::StatsError;

/// When at least this fraction of the features outside the strong set fail
/// the bound, g is recomputed for all of them and β_ref moves to the current
/// solution, which tightens the bound for the following screenings. The
/// refresh then costs at most four times the exact values it replaces.
const REFRESH_FRACTION: f64 = 0.25;

/// Sufficient statistics of one fit and the coordinate-descent state.
struct GaussianFit<'a> {
    design: &'a Design,
    means: Vec<f64>,
    /// Column variances, the diagonal of G.
    variances: Vec<f64>,
    /// Square roots of `variances`, for the bound.
    scales: Vec<f64>,
    /// c, the centred cross-products with y.
    cross_products: Vec<f64>,
    /// `y − ȳ` over the rows.
    centred_labels: Vec<f64>,
    strong: StrongSet,
    /// Strong-set members in the order they joined: a member's slot is its
    /// position here, and it indexes the G entries in `gram`.
    slot_features: Vec<usize>,
    /// Features that have been non-zero, in the order they entered.
    active: Vec<usize>,
    /// Position in `active` of each feature, if any.
    active_position: Vec<Option<usize>>,
    /// `z_k − m_k` for each entry of `active`.
    centred_columns: Vec<Vec<f64>>,
    /// `G_jk` for each entry k of `active` (outer) and each slot j (inner).
    gram: Vec<Vec<f64>>,
    beta: Vec<f64>,
    /// β at the last exact computation of g outside the strong set.
    beta_reference: Vec<f64>,
    /// g. Exact and current for the strong-set members; for the others, the
    /// exact value at `beta_reference`.
    gradient: Vec<f64>,
    /// `sqrt((β − β_ref)ᵀ G (β − β_ref))` at the last screening.
    drift: f64,
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
            variances[feature] = column
                .iter()
                .map(|&value| (value - mean).powi(2))
                .sum::<f64>()
                / n;
            // Σ_i (z_if − m_f)(y_i − ȳ) = Σ_i z_if (y_i − ȳ) because Σ_i (y_i − ȳ) = 0.
            cross_products[feature] = dot(column, &centred_labels) / n;
        }

        Self {
            design,
            means,
            scales: variances.iter().map(|&variance| variance.sqrt()).collect(),
            variances,
            gradient: cross_products.clone(),
            cross_products,
            centred_labels,
            strong: StrongSet::new(features),
            slot_features: Vec::new(),
            active: Vec::new(),
            active_position: vec![None; features],
            centred_columns: Vec::new(),
            gram: Vec::new(),
            beta: vec![0.0; features],
            beta_reference: vec![0.0; features],
            drift: 0.0,
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

    /// Upper bound on |g_f| for a feature outside the strong set, from its
    /// exact value at β_ref and the drift at the last screening.
    fn gradient_bound(&self, feature: usize) -> f64 {
        self.gradient[feature].abs() + self.scales[feature] * self.drift
    }

    /// Sequential strong rule: adds every feature outside the strong set
    /// with `|g_f| > cutoff` at the previous λ's solution.
    fn add_strong_rule_survivors(&mut self, cutoff: f64) {
        let survivors = self.features_above(cutoff);
        self.add_to_strong_set(&survivors);
    }

    /// Adds features to the strong set: computes their G entries with every
    /// feature that has been non-zero, and their exact g.
    fn add_to_strong_set(&mut self, features: &[usize]) {
        let n = self.design.rows() as f64;
        for &feature in features {
            let column = self.design.column(feature);
            let mut gradient = self.cross_products[feature];
            for (position, &active) in self.active.iter().enumerate() {
                let entry = dot(column, &self.centred_columns[position]) / n;
                self.gram[position].push(entry);
                gradient -= entry * self.beta[active];
            }
            self.gradient[feature] = gradient;
            self.slot_features.push(feature);
        }
        self.strong.extend(features);
    }

    /// Returns the position of `feature` in `active`, adding it (with its
    /// centred column and its G entries with every strong-set member) the
    /// first time it becomes non-zero.
    fn activate(&mut self, feature: usize) -> usize {
        if let Some(position) = self.active_position[feature] {
            return position;
        }
        let n = self.design.rows() as f64;
        let mean = self.means[feature];
        let centred: Vec<f64> = self
            .design
            .column(feature)
            .iter()
            .map(|&value| value - mean)
            .collect();
        let entries = self
            .slot_features
            .iter()
            .map(|&member| {
                // Use the two-pass variance on the diagonal, the same number
                // the coordinate update divides by.
                if member == feature {
                    self.variances[feature]
                } else {
                    dot(self.design.column(member), &centred) / n
                }
            })
            .collect();

        let position = self.active.len();
        self.active.push(feature);
        self.active_position[feature] = Some(position);
        self.centred_columns.push(centred);
        self.gram.push(entries);
        position
    }

    /// Checks `|g_f| ≤ λ` outside the strong set and adds every feature that
    /// violates it. Returns whether any was added.
    fn add_kkt_violators(&mut self, lambda: f64) -> bool {
        let violators = self.features_above(lambda);
        self.add_to_strong_set(&violators);
        !violators.is_empty()
    }

    /// Returns the features outside the strong set with `|g_f| > limit` at
    /// the current β. g_f is computed exactly only where the bound exceeds
    /// `limit`, or for all of them when that is most (see
    /// [`REFRESH_FRACTION`]), which also moves β_ref to β.
    fn features_above(&mut self, limit: f64) -> Vec<usize> {
        let n = self.design.rows() as f64;
        let mut residuals = self.centred_labels.clone();
        let mut shift = vec![0.0; self.design.rows()];
        for (position, &feature) in self.active.iter().enumerate() {
            let beta = self.beta[feature];
            let change = beta - self.beta_reference[feature];
            for ((residual, moved), &value) in residuals
                .iter_mut()
                .zip(shift.iter_mut())
                .zip(&self.centred_columns[position])
            {
                *residual -= beta * value;
                *moved += change * value;
            }
        }
        // (β − β_ref)ᵀ G (β − β_ref) = ‖Zc (β − β_ref)‖² / n.
        self.drift = (dot(&shift, &shift) / n).sqrt();

        let outside: Vec<usize> = (0..self.design.features())
            .filter(|&feature| !self.strong.contains(feature) && !self.design.is_constant(feature))
            .collect();
        let uncleared: Vec<usize> = outside
            .iter()
            .copied()
            .filter(|&feature| self.gradient_bound(feature) > limit)
            .collect();

        if uncleared.len() as f64 >= REFRESH_FRACTION * outside.len() as f64 {
            for &feature in &outside {
                self.gradient[feature] = dot(self.design.column(feature), &residuals) / n;
            }
            for &feature in &self.active {
                self.beta_reference[feature] = self.beta[feature];
            }
            self.drift = 0.0;
            return outside
                .into_iter()
                .filter(|&feature| self.gradient[feature].abs() > limit)
                .collect();
        }

        uncleared
            .into_iter()
            .filter(|&feature| (dot(self.design.column(feature), &residuals) / n).abs() > limit)
            .collect()
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

impl CoordinateDescent for GaussianFit<'_> {
    fn strong_features(&self) -> Vec<usize> {
        self.strong.features().to_vec()
    }

    fn active_features(&self) -> Vec<usize> {
        self.active.clone()
    }

    fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Updates each coordinate in `features` once and returns the largest
    /// `G_ff · Δβ_f²`.
    fn pass(&mut self, features: &[usize], index: usize, lambda: f64) -> Result<f64, StatsError> {
        count_pass(&mut self.passes, self.max_passes, index, lambda)?;

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

            let position = self.activate(feature);
            for (&member, &entry) in self.slot_features.iter().zip(&self.gram[position]) {
                self.gradient[member] -= entry * delta;
            }
        }
        Ok(largest_change)
    }
}
