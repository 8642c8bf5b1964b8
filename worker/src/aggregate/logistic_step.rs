//! One site's sums for one Newton step of a pooled logistic regression.
//!
//! With rows x_i = (1, z_i1, …, z_ip), outcomes y_i ∈ {0, 1}, linear
//! predictors η_i and p_i = σ(η_i), a site returns
//!
//! ```text
//! gradient  g = Σ_i x_i (y_i − p_i)             the log-likelihood's gradient
//! Hessian   H = Σ_i p_i (1 − p_i) x_i x_iᵀ      the Fisher information X'WX
//! deviance  D = −2 Σ_i [y_i log p_i + (1 − y_i) log(1 − p_i)]
//! ```
//!
//! Summed over sites, they give the pooled Newton step β + H⁻¹ g exactly,
//! up to summation order. The deviance is computed from η, as
//! log p = −log(1 + e^−η) and log(1 − p) = −log(1 + e^η), so that it stays
//! finite when p rounds to 0 or 1.

use super::CompensatedSum;
use super::linear_model::{PatientEvaluation, logistic, softplus};

/// The sums of one site at the model's current coefficients.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticStepSums {
    /// Patients included.
    pub n: usize,
    /// Included patients with y = 1.
    pub n_positive: usize,
    /// X'(y − p), intercept first, length m = 1 + number of terms.
    pub gradient: Vec<f64>,
    /// X'WX, row-major, m² values, symmetric.
    pub hessian: Vec<f64>,
    /// −2 log-likelihood.
    pub deviance: f64,
}

/// Computes the sums over `patients`, whose `standardized` values each have
/// `n_coefficients − 1` entries.
pub fn logistic_step(patients: &[PatientEvaluation], n_coefficients: usize) -> LogisticStepSums {
    let mut gradient = vec![CompensatedSum::default(); n_coefficients];
    let mut hessian = vec![CompensatedSum::default(); n_coefficients * n_coefficients];
    let mut deviance = CompensatedSum::default();
    let mut n_positive = 0;
    let mut row = vec![1.0; n_coefficients];

    for patient in patients {
        debug_assert_eq!(patient.standardized.len() + 1, n_coefficients);
        row[1..].copy_from_slice(&patient.standardized);
        let eta = patient.linear_predictor;

        // p and 1 − p each from its own exponential, so neither loses its
        // digits to cancellation when the other is close to 1.
        let probability = logistic(eta);
        let complement = logistic(-eta);
        let (residual, row_deviance) = if patient.label {
            n_positive += 1;
            (complement, 2.0 * softplus(-eta))
        } else {
            (-probability, 2.0 * softplus(eta))
        };
        let weight = probability * complement;
        deviance.add(row_deviance);

        for j in 0..n_coefficients {
            gradient[j].add(row[j] * residual);
            let weighted = weight * row[j];
            // Upper triangle here, mirrored below, so that H is exactly
            // symmetric.
            for k in j..n_coefficients {
                hessian[j * n_coefficients + k].add(weighted * row[k]);
            }
        }
    }

    let mut hessian: Vec<f64> = hessian.iter().map(CompensatedSum::total).collect();
    for j in 0..n_coefficients {
        for k in 0..j {
            hessian[j * n_coefficients + k] = hessian[k * n_coefficients + j];
        }
    }
    LogisticStepSums {
        n: patients.len(),
        n_positive,
        gradient: gradient.iter().map(CompensatedSum::total).collect(),
        hessian,
        deviance: deviance.total(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patients of a small two-term design: (z1, z2, label).
    const DESIGN: [(f64, f64, bool); 6] = [
        (0.3, -1.2, true),
        (-0.8, 0.4, false),
        (1.5, 0.9, true),
        (-0.2, -0.3, false),
        (0.7, 1.8, false),
        (-1.4, -0.6, true),
    ];

    fn evaluate(beta: &[f64; 3]) -> Vec<PatientEvaluation> {
        DESIGN
            .iter()
            .map(|&(z1, z2, label)| PatientEvaluation {
                label,
                standardized: vec![z1, z2],
                linear_predictor: beta[0] + beta[1] * z1 + beta[2] * z2,
            })
            .collect()
    }

    /// Deviance by its definition, with log p and log(1 − p) from p: fine
    /// for the moderate η of [`DESIGN`].
    fn direct_deviance(beta: &[f64; 3]) -> f64 {
        evaluate(beta)
            .iter()
            .map(|patient| {
                let p = 1.0 / (1.0 + (-patient.linear_predictor).exp());
                if patient.label {
                    -2.0 * p.ln()
                } else {
                    -2.0 * (1.0 - p).ln()
                }
            })
            .sum()
    }

    #[test]
    fn logistic_step_single_patient_by_hand() {
        // η = 0, so p = 1/2 and W = 1/4. x = (1, 2), y = 1:
        // g = x (1 − 1/2) = (0.5, 1), H = x xᵀ / 4 = [[0.25, 0.5], [0.5, 1]],
        // D = −2 log(1/2) = 2 ln 2. All exact in binary except ln 2.
        let patient = PatientEvaluation {
            label: true,
            standardized: vec![2.0],
            linear_predictor: 0.0,
        };
        let sums = logistic_step(&[patient], 2);
        assert_eq!(sums.n, 1);
        assert_eq!(sums.n_positive, 1);
        assert_eq!(sums.gradient, vec![0.5, 1.0]);
        assert_eq!(sums.hessian, vec![0.25, 0.5, 0.5, 1.0]);
        assert_eq!(sums.deviance, 2.0 * std::f64::consts::LN_2);
    }

    #[test]
    fn logistic_step_deviance_matches_definition() {
        let beta = [0.2, -0.7, 1.1];
        let sums = logistic_step(&evaluate(&beta), 3);
        // |η| < 3 here, so p and 1 − p keep about 15 digits either way, and
        // six terms of order 1 agree to a few ulps.
        assert!((sums.deviance - direct_deviance(&beta)).abs() < 1e-13);
        assert_eq!(sums.n, 6);
        assert_eq!(sums.n_positive, 3);
    }

    #[test]
    fn logistic_step_gradient_is_deviance_slope() {
        // D = −2 log L, so the log-likelihood gradient is g = −∂D/∂β / 2.
        // Central differences with h = 1e-5 have truncation error
        // h² |D'''| / 6 < 2e-10, because |D'''| ≤ 2 · 6 · 0.1 · 1.8³ < 7
        // (six rows, |p (1 − p)(1 − 2p)| < 0.1, |x| ≤ 1.8), and rounding
        // error about ε |D| / h < 3e-10 (|D| < 10). 1e-8 leaves a margin of
        // about 20.
        let beta = [0.2, -0.7, 1.1];
        let sums = logistic_step(&evaluate(&beta), 3);
        let h = 1e-5;
        for j in 0..3 {
            let (mut up, mut down) = (beta, beta);
            up[j] += h;
            down[j] -= h;
            let slope = (direct_deviance(&up) - direct_deviance(&down)) / (2.0 * h);
            let expected = -slope / 2.0;
            assert!(
                (sums.gradient[j] - expected).abs() < 1e-8,
                "gradient[{j}]: got {}, finite difference {expected}",
                sums.gradient[j]
            );
        }
    }

    #[test]
    fn logistic_step_hessian_is_gradient_slope() {
        // H = −∂g/∂β. Central differences of the analytic gradient with
        // h = 1e-5: truncation h² |g'''| / 6 < 3e-10, because
        // |g'''| ≤ 6 · 0.25 · 1.8⁴ < 16, and rounding ε |g| / h < 1e-10
        // (|g| < 5), so 1e-8 leaves a margin of about 30.
        let beta = [0.2, -0.7, 1.1];
        let sums = logistic_step(&evaluate(&beta), 3);
        let h = 1e-5;
        for k in 0..3 {
            let (mut up, mut down) = (beta, beta);
            up[k] += h;
            down[k] -= h;
            let g_up = logistic_step(&evaluate(&up), 3).gradient;
            let g_down = logistic_step(&evaluate(&down), 3).gradient;
            for j in 0..3 {
                let expected = -(g_up[j] - g_down[j]) / (2.0 * h);
                let actual = sums.hessian[j * 3 + k];
                assert!(
                    (actual - expected).abs() < 1e-8,
                    "hessian[{j}][{k}]: got {actual}, finite difference {expected}"
                );
            }
        }
        for j in 0..3 {
            for k in 0..3 {
                assert_eq!(sums.hessian[j * 3 + k], sums.hessian[k * 3 + j]);
            }
        }
    }

    #[test]
    fn logistic_step_extreme_predictor_stays_finite() {
        // η = ±800: p rounds to exactly 1 or 0, so log(1 − p) from p would
        // be −∞. From η, a wrong prediction costs 2 log(1 + e^800) = 1600
        // and a right one 2 log(1 + e^−800) = 0 (e^−800 underflows).
        let wrong = PatientEvaluation {
            label: false,
            standardized: vec![],
            linear_predictor: 800.0,
        };
        let right = PatientEvaluation {
            label: true,
            standardized: vec![],
            linear_predictor: 800.0,
        };
        let sums = logistic_step(&[wrong, right], 1);
        assert_eq!(sums.deviance, 1600.0);
        // y − p = −1 for the wrong row, 1 − σ(800) = σ(−800) = 0 for the
        // right one, and p (1 − p) = 0 for both.
        assert_eq!(sums.gradient, vec![-1.0]);
        assert_eq!(sums.hessian, vec![0.0]);
    }

    #[test]
    fn logistic_step_without_patients_is_zero() {
        let sums = logistic_step(&[], 2);
        assert_eq!(sums.n, 0);
        assert_eq!(sums.gradient, vec![0.0, 0.0]);
        assert_eq!(sums.hessian, vec![0.0; 4]);
        assert_eq!(sums.deviance, 0.0);
    }
}
