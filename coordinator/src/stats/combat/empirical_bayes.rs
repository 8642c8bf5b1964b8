//! Location and scale estimates of one non-reference batch: the naive γ̂ and
//! δ̂² from its sums, and their empirical Bayes posterior (parametric or
//! non-parametric).

use super::super::StatsError;
use super::{BatchEstimates, BatchPrior, BatchSums, ComBatOptions};

/// Stopping rule of the parametric EB iteration: the maximum relative change
/// of γ* and δ*², as neuroCombat 0.2.12 `it_sol(conv=0.0001)`.
pub(super) const CONVERGENCE_TOLERANCE: f64 = 1e-4;

/// Upper bound on EB iterations, which neuroCombat does not have. On the
/// test fixture the iteration stops after 3 or 4 rounds.
const MAX_ITERATIONS: usize = 10_000;

/// Standardised location and scale of one batch, before empirical Bayes.
struct NaiveEstimates {
    /// γ̂ per feature.
    gamma_hat: Vec<f64>,
    /// δ̂² per feature as neuroCombat uses it: 0 replaced by 1, and 1 for
    /// `mean_only`.
    delta_hat: Vec<f64>,
    /// Σ_i (s_i − γ̂)² per feature, (n − 1) δ̂²_raw in the module notation.
    centred_square_sum: Vec<f64>,
    /// Features constant within the batch (n ≥ 2 only).
    constant: Vec<usize>,
}

/// Computes γ̂ and δ̂² of one batch from its sums and the reference α, σ².
fn naive_estimates(
    sums: &BatchSums,
    reference_mean: &[f64],
    reference_variance: &[f64],
    mean_only: bool,
) -> NaiveEstimates {
    let n = sums.n as f64;
    let features = sums.features();
    let mut estimates = NaiveEstimates {
        gamma_hat: Vec::with_capacity(features),
        delta_hat: Vec::with_capacity(features),
        centred_square_sum: Vec::with_capacity(features),
        constant: Vec::new(),
    };
    for g in 0..features {
        let sd = reference_variance[g].sqrt();
        estimates
            .gamma_hat
            .push((sums.mean(g) - reference_mean[g]) / sd);

        let centred = if sums.n >= 2 {
            sums.centred_square_sum(g) / reference_variance[g]
        } else {
            0.0
        };
        estimates.centred_square_sum.push(centred);
        if sums.n >= 2 && centred == 0.0 {
            estimates.constant.push(g);
        }

        let delta_hat = if mean_only || centred == 0.0 {
            1.0
        } else {
            centred / (n - 1.0)
        };
        estimates.delta_hat.push(delta_hat);
    }
    estimates
}

/// Computes the estimates of one non-reference batch.
pub(super) fn estimate_batch(
    sums: &BatchSums,
    reference_mean: &[f64],
    reference_variance: &[f64],
    options: ComBatOptions,
) -> Result<BatchEstimates, StatsError> {
    let naive = naive_estimates(sums, reference_mean, reference_variance, options.mean_only);
    let n = sums.n as f64;

    let mut prior = None;
    let mut iterations = 0;
    let (mut gamma_star, mut delta_star) = if !options.eb {
        (naive.gamma_hat.clone(), naive.delta_hat.clone())
    } else {
        let batch_prior = estimate_prior(&naive, options.mean_only);
        prior = Some(batch_prior);
        if options.mean_only && options.parametric {
            // neuroCombat 0.2.12 and the R neuroCombat call postmean(γ̂, γ̄, 1, 1, τ²) here.
            let gamma = naive
                .gamma_hat
                .iter()
                .map(|&gamma_hat| {
                    (batch_prior.tau2 * gamma_hat + batch_prior.gamma_bar)
                        / (batch_prior.tau2 + 1.0)
                })
                .collect();
            (gamma, vec![1.0; naive.gamma_hat.len()])
        } else if options.parametric {
            let solution = parametric_posterior(&naive, batch_prior, n, &sums.batch)?;
            iterations = solution.iterations;
            (solution.gamma, solution.delta)
        } else {
            non_parametric_posterior(&naive, n)
        }
    };

    for &g in &naive.constant {
        gamma_star[g] = 0.0;
        delta_star[g] = 1.0;
    }

    Ok(BatchEstimates {
        batch: sums.batch.clone(),
        n: sums.n,
        gamma_hat: naive.gamma_hat,
        delta_hat: naive.delta_hat,
        gamma_star,
        delta_star,
        unadjusted_features: naive.constant,
        prior,
        iterations,
    })
}

/// Estimates the batch's hyper-parameters by moments across features
/// (neuroCombat 0.2.12 `fit_LS_model_and_find_priors`, `aprior`, `bprior`).
fn estimate_prior(naive: &NaiveEstimates, mean_only: bool) -> BatchPrior {
    let (gamma_bar, tau2) = mean_and_sample_variance(&naive.gamma_hat);
    let (m, v) = mean_and_sample_variance(&naive.delta_hat);
    let (a, b) = if mean_only || v == 0.0 {
        (None, None)
    } else {
        (Some((2.0 * v + m * m) / v), Some((m * v + m * m * m) / v))
    };
    BatchPrior {
        gamma_bar,
        tau2,
        a,
        b,
    }
}

/// Returns the mean and the variance with divisor len − 1 (len ≥ 2).
pub(super) fn mean_and_sample_variance(values: &[f64]) -> (f64, f64) {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    (mean, squares / (count - 1.0))
}

/// Parametric EB posterior and the number of rounds it took.
struct ParametricSolution {
    gamma: Vec<f64>,
    delta: Vec<f64>,
    iterations: usize,
}

/// Iterates the parametric posterior of γ and δ² until the stopping rule of
/// neuroCombat 0.2.12 `it_sol` holds.
fn parametric_posterior(
    naive: &NaiveEstimates,
    prior: BatchPrior,
    n: f64,
    batch: &str,
) -> Result<ParametricSolution, StatsError> {
    let features = naive.gamma_hat.len();
    let mean_delta = naive.delta_hat.iter().sum::<f64>() / features as f64;
    let mut gamma_old = naive.gamma_hat.clone();
    let mut delta_old = naive.delta_hat.clone();
    let mut gamma_new = vec![0.0; features];
    let mut delta_new = vec![0.0; features];

    let mut change = f64::NAN;
    for iteration in 1..=MAX_ITERATIONS {
        for g in 0..features {
            let gamma_hat = naive.gamma_hat[g];
            gamma_new[g] = (prior.tau2 * n * gamma_hat + delta_old[g] * prior.gamma_bar)
                / (prior.tau2 * n + delta_old[g]);
            // Σ_i (s_i − γ)² from the sums, by the module's identity.
            let sum2 = naive.centred_square_sum[g] + n * (gamma_hat - gamma_new[g]).powi(2);
            delta_new[g] = match (prior.a, prior.b) {
                (Some(a), Some(b)) => (0.5 * sum2 + b) / (n / 2.0 + a - 1.0),
                // All δ̂² equal (v = 0): a and b are infinite and b / a → m.
                _ => mean_delta,
            };
        }

        change = neurocombat_change(&gamma_new, &gamma_old, &delta_new, &delta_old);
        std::mem::swap(&mut gamma_old, &mut gamma_new);
        std::mem::swap(&mut delta_old, &mut delta_new);
        // Python's `while change > conv` also stops on NaN.
        let keep_iterating = change > CONVERGENCE_TOLERANCE;
        if !keep_iterating {
            return Ok(ParametricSolution {
                gamma: gamma_old,
                delta: delta_old,
                iterations: iteration,
            });
        }
    }
    Err(StatsError::EmpiricalBayesNotConverged {
        batch: batch.to_owned(),
        iterations: MAX_ITERATIONS,
        change,
    })
}

/// Computes neuroCombat 0.2.12's stopping statistic,
/// `max((|γ_new − γ_old| / γ_old).max(), (|δ_new − δ_old| / δ_old).max())`:
/// NumPy's `max` returns NaN if any ratio is NaN, and Python's `max(a, b)`
/// returns `a` unless `b > a`. The division is by the signed γ_old.
pub(super) fn neurocombat_change(
    gamma_new: &[f64],
    gamma_old: &[f64],
    delta_new: &[f64],
    delta_old: &[f64],
) -> f64 {
    let numpy_max = |new: &[f64], old: &[f64]| {
        let mut maximum = f64::NEG_INFINITY;
        for (&value, &previous) in new.iter().zip(old) {
            let ratio = (value - previous).abs() / previous;
            if ratio.is_nan() {
                return f64::NAN;
            }
            maximum = maximum.max(ratio);
        }
        maximum
    };
    let gamma_change = numpy_max(gamma_new, gamma_old);
    let delta_change = numpy_max(delta_new, delta_old);
    if delta_change > gamma_change {
        delta_change
    } else {
        gamma_change
    }
}

/// Computes the non-parametric posterior of Johnson et al. (2007), as
/// neuroCombat 0.2.12 `int_eprior`: for feature g, the other features' (γ̂_j,
/// δ̂²_j) are weighted by the likelihood of feature g's standardised values,
///
/// ```text
/// L_j = (2π δ̂²_j)^(−n/2) exp(−Σ_i (s_ig − γ̂_j)² / (2 δ̂²_j))
/// γ*_g = Σ_j≠g γ̂_j L_j / Σ_j≠g L_j      δ*²_g = Σ_j≠g δ̂²_j L_j / Σ_j≠g L_j
/// ```
///
/// with Σ_i (s_ig − γ̂_j)² = (n − 1) δ̂²_raw,g + n (γ̂_g − γ̂_j)² from the sums.
/// The weights are formed as exp(log L_j − max log L), which leaves the ratios
/// unchanged but cannot underflow.
fn non_parametric_posterior(naive: &NaiveEstimates, n: f64) -> (Vec<f64>, Vec<f64>) {
    let features = naive.gamma_hat.len();
    let mut gamma_star = Vec::with_capacity(features);
    let mut delta_star = Vec::with_capacity(features);
    let mut log_likelihood = vec![0.0; features];

    for g in 0..features {
        let mut maximum = f64::NEG_INFINITY;
        for j in (0..features).filter(|&j| j != g) {
            let delta = naive.delta_hat[j];
            let sum2 =
                naive.centred_square_sum[g] + n * (naive.gamma_hat[g] - naive.gamma_hat[j]).powi(2);
            // The common factor (2π)^(−n/2) cancels in the ratios.
            log_likelihood[j] = -0.5 * n * delta.ln() - sum2 / (2.0 * delta);
            maximum = maximum.max(log_likelihood[j]);
        }

        let mut weight_sum = 0.0;
        let mut gamma_sum = 0.0;
        let mut delta_sum = 0.0;
        for j in (0..features).filter(|&j| j != g) {
            let weight = (log_likelihood[j] - maximum).exp();
            weight_sum += weight;
            gamma_sum += naive.gamma_hat[j] * weight;
            delta_sum += naive.delta_hat[j] * weight;
        }
        gamma_star.push(gamma_sum / weight_sum);
        delta_star.push(delta_sum / weight_sum);
    }
    (gamma_star, delta_star)
}
