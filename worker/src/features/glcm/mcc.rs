//! Maximal correlation coefficient (MCC) of the GLCM: the eigenvalues of PyRadiomics'
//! matrix Q per angle and their average over the angles.

use super::{AngleFeatures, eigen};
use crate::features::discretize::nan_mean;

/// Returns the eigenvalues of Q(i, j) = Σ_k p(i, k)·p(j, k) / (p_x(i)·p_y(k) + ε), G of them.
pub(super) fn q_eigenvalues(p: &[f64], p_x: &[f64], p_y: &[f64]) -> Option<Vec<eigen::Eigenvalue>> {
    let g = p_x.len();
    let eps = f64::EPSILON;

    // A level with p_x(i) = 0 has a zero row and a zero column in Q, hence the eigenvalue 0
    // exactly, which LAPACK's balancing isolates the same way. The solver gets the rest.
    let active: Vec<usize> = (0..g).filter(|&row| p_x[row] != 0.0).collect();
    let m = active.len();

    // Q over the active levels, m × m. The sum over k runs in ascending order like
    // PyRadiomics' loop, skipping zero terms, which leaves the rounded sum unchanged.
    let mut q = vec![0.0; m * m];
    let mut nonzero_rows = Vec::with_capacity(m);
    for k in 0..g {
        nonzero_rows.clear();
        nonzero_rows.extend((0..m).filter(|&a| p[active[a] * g + k] != 0.0));
        for &a in &nonzero_rows {
            let p_ik = p[active[a] * g + k];
            let denominator = p_x[active[a]] * p_y[k] + eps;
            for &b in &nonzero_rows {
                q[a * m + b] += (p_ik * p[active[b] * g + k]) / denominator;
            }
        }
    }

    let mut values = eigen::eigenvalues(&q, m)?;
    values.resize(g, eigen::Eigenvalue { re: 0.0, im: 0.0 });
    Some(values)
}

/// Averages MCC = √λ₂ over the angles as PyRadiomics 3.1.4 does (`getMCCFeatureValue`).
pub(super) fn maximal_correlation_coefficient(angles: &[AngleFeatures], levels: usize) -> f64 {
    if levels < 2 {
        // PyRadiomics' convention for a single grey level (Q is 1 × 1).
        return 1.0;
    }
    let Some(spectra) = angles
        .iter()
        .map(|angle| angle.q_eigenvalues.as_deref())
        .collect::<Option<Vec<_>>>()
    else {
        // NOTE: the QR iteration did not converge for some angle. LAPACK would most likely
        // have converged; no tested matrix reaches this branch.
        return f64::NAN;
    };

    // numpy's eigvals returns one complex array for all angles as soon as any eigenvalue is
    // complex, and numpy then sorts by real part, then imaginary part.
    let complex = spectra
        .iter()
        .flat_map(|s| s.iter())
        .any(|value| value.im != 0.0);
    let per_angle: Vec<f64> = spectra
        .iter()
        .map(|spectrum| {
            let mut sorted = spectrum.to_vec();
            sorted.sort_by(|a, b| a.re.total_cmp(&b.re).then(a.im.total_cmp(&b.im)));
            let second = sorted[sorted.len() - 2];
            if complex {
                // Real part of the principal complex square root.
                ((second.re.hypot(second.im) + second.re) / 2.0).sqrt()
            } else {
                // NaN for a negative λ₂, skipped by nan_mean like numpy's nanmean.
                second.re.sqrt()
            }
        })
        .collect();
    nan_mean(&per_angle)
}
