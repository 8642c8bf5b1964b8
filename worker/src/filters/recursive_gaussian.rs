//! Deriche's recursive (IIR) approximation of convolution with a Gaussian or its second
//! derivative along one voxel axis, as ITK's `RecursiveGaussianImageFilter` computes it.
//!
//! Each line y = causal + anticausal pass of a 4th-order recursion:
//!
//! y⁺[n] = Σ_{m=0..3} N_m·x[n − m] − Σ_{m=1..4} D_m·y⁺[n − m]
//! y⁻[n] = Σ_{m=1..4} M_m·x[n + m] − Σ_{m=1..4} D_m·y⁻[n + m]
//! y[n]  = y⁺[n] + y⁻[n]
//!
//! The coefficients come from Deriche's fit of the Gaussian by two damped cosines, with
//! the fit constants (a, b, ω, λ) that ITK lists. They are evaluated at σ in voxels
//! (σ_mm / spacing) and scaled to unit sum (order 0) or unit second moment (order 2).
//! With normalisation across scale, order 2 is also multiplied by σ_mm². Outside the line each pass
//! assumes the edge value repeated to infinity (ITK's boundary coefficients), so a
//! constant line gives a constant (order 0) or zero (order 2) response.
//!
//! Source of the coefficients and boundary handling: ITK 5 `itkRecursiveGaussianImageFilter`
//! and `itkRecursiveSeparableImageFilter`, which SimpleITK 2.5 wraps. All arithmetic is
//! f64, as ITK's `ScalarRealType`; lines must have at least 4 voxels.

use ndarray::{Array3, Axis};

/// Derivative order of the recursive filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smoothing with the Gaussian.
    Zero,
    /// Second derivative of the Gaussian.
    Second,
}

/// Recursion coefficients of one axis: N (causal input), M (anticausal input), D
/// (feedback), and BN, BM (edge extension terms of the causal and anticausal pass).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients {
    n: [f64; 4],
    m: [f64; 4],
    d: [f64; 4],
    bn: [f64; 4],
    bm: [f64; 4],
}

/// Deriche's fit constants: (a₁, b₁) of the first damped cosine and (a₂, b₂) of the second,
/// for orders 0 and 2, and the shared frequencies ω and decays λ.
const ZERO_ORDER_AB: [f64; 4] = [1.3530, 1.8151, -0.3531, 0.0902];
const SECOND_ORDER_AB: [f64; 4] = [-1.3563, 5.2318, 0.3446, -2.2355];
const OMEGA: [f64; 2] = [0.6681, 2.0787];
const LAMBDA: [f64; 2] = [-1.3932, -1.3732];

/// Sums of the numerator taps N₀..N₃ and their first and second moments.
struct Moments {
    sum: f64,
    first: f64,
    second: f64,
}

impl Coefficients {
    /// Computes the coefficients for `sigma_mm` on an axis of `spacing_mm`.
    pub fn new(order: Order, sigma_mm: f64, spacing_mm: f64, normalize_across_scale: bool) -> Self {
        let sigma_voxels = sigma_mm / spacing_mm;

        // Denominator D₁..D₄ and its moments, shared by both orders.
        let (cos1, cos2) = (
            (OMEGA[0] / sigma_voxels).cos(),
            (OMEGA[1] / sigma_voxels).cos(),
        );
        let (exp1, exp2) = (
            (LAMBDA[0] / sigma_voxels).exp(),
            (LAMBDA[1] / sigma_voxels).exp(),
        );
        let d = [
            -2.0 * (exp2 * cos2 + exp1 * cos1),
            4.0 * cos2 * cos1 * exp1 * exp2 + exp1 * exp1 + exp2 * exp2,
            -2.0 * cos1 * exp1 * exp2 * exp2 - 2.0 * cos2 * exp2 * exp1 * exp1,
            exp1 * exp1 * exp2 * exp2,
        ];
        let d_sum = 1.0 + d[0] + d[1] + d[2] + d[3];
        let d_first = d[0] + 2.0 * d[1] + 3.0 * d[2] + 4.0 * d[3];
        let d_second = d[0] + 4.0 * d[1] + 9.0 * d[2] + 16.0 * d[3];

        let (zero_n, zero_moments) = numerator(sigma_voxels, ZERO_ORDER_AB);
        let n = match order {
            // Unit sum of the two-sided response.
            Order::Zero => {
                let alpha = 2.0 * zero_moments.sum / d_sum - zero_n[0];
                zero_n.map(|tap| tap / alpha)
            }
            // Second-order taps plus β times the zero-order taps, so that the response
            // sums to zero, then scaled to unit second moment.
            Order::Second => {
                let (second_n, second_moments) = numerator(sigma_voxels, SECOND_ORDER_AB);
                let beta = -(2.0 * second_moments.sum - d_sum * second_n[0])
                    / (2.0 * zero_moments.sum - d_sum * zero_n[0]);
                let combined: [f64; 4] =
                    std::array::from_fn(|index| second_n[index] + beta * zero_n[index]);
                let sum = second_moments.sum + beta * zero_moments.sum;
                let first = second_moments.first + beta * zero_moments.first;
                let second = second_moments.second + beta * zero_moments.second;
                let alpha = (second * d_sum * d_sum
                    - d_second * sum * d_sum
                    - 2.0 * first * d_first * d_sum
                    + 2.0 * d_first * d_first * sum)
                    / (d_sum * d_sum * d_sum);
                let scale = if normalize_across_scale {
                    sigma_mm * sigma_mm
                } else {
                    1.0
                };
                combined.map(|tap| tap * scale / alpha)
            }
        };

        // Symmetric filter: the anticausal taps mirror the causal ones.
        let m = [
            n[1] - d[0] * n[0],
            n[2] - d[1] * n[0],
            n[3] - d[2] * n[0],
            -d[3] * n[0],
        ];
        let n_sum: f64 = n.iter().sum();
        let m_sum: f64 = m.iter().sum();
        Coefficients {
            n,
            m,
            d,
            bn: d.map(|dm| dm * n_sum / d_sum),
            bm: d.map(|dm| dm * m_sum / d_sum),
        }
    }

    /// Filters one line in place, using `scratch` for the anticausal pass. The line needs
    /// at least 4 voxels.
    // TODO: this version copies the line and tests the edge on every tap. A fast path
    // for the interior should close much of the gap to SimpleITK in docs/benchmarks.md.
    pub fn filter_line(&self, line: &mut [f64], scratch: &mut Vec<f64>) {
        let length = line.len();
        debug_assert!(length >= 4, "recursive Gaussian needs 4 voxels per line");
        let input: Vec<f64> = line.to_vec();
        let (n, m, d) = (&self.n, &self.m, &self.d);

        // Causal pass, with input[0] assumed for every voxel before the line.
        let first = input[0];
        let x = |index: isize| -> f64 {
            if index < 0 {
                first
            } else {
                input[index as usize]
            }
        };
        let causal = line;
        for index in 0..length {
            let i = index as isize;
            let mut value = n[0] * x(i) + n[1] * x(i - 1) + n[2] * x(i - 2) + n[3] * x(i - 3);
            let mut feedback = 0.0;
            for lag in 1..=4 {
                feedback += if index >= lag {
                    causal[index - lag] * d[lag - 1]
                } else {
                    first * self.bn[lag - 1]
                };
            }
            value -= feedback;
            causal[index] = value;
        }

        // Anticausal pass, with input[length − 1] assumed for every voxel after the line.
        let last = input[length - 1];
        let x = |index: usize| -> f64 { if index >= length { last } else { input[index] } };
        scratch.clear();
        scratch.resize(length, 0.0);
        for index in (0..length).rev() {
            let mut value = m[0] * x(index + 1)
                + m[1] * x(index + 2)
                + m[2] * x(index + 3)
                + m[3] * x(index + 4);
            let mut feedback = 0.0;
            for lead in 1..=4 {
                feedback += if index + lead < length {
                    scratch[index + lead] * d[lead - 1]
                } else {
                    last * self.bm[lead - 1]
                };
            }
            value -= feedback;
            scratch[index] = value;
        }

        for (output, anticausal) in causal.iter_mut().zip(scratch.iter()) {
            *output += anticausal;
        }
    }
}

/// Numerator taps N₀..N₃ of one order from its (a₁, b₁, a₂, b₂), and their moments.
fn numerator(sigma_voxels: f64, ab: [f64; 4]) -> ([f64; 4], Moments) {
    let [a1, b1, a2, b2] = ab;
    let (sin1, sin2) = (
        (OMEGA[0] / sigma_voxels).sin(),
        (OMEGA[1] / sigma_voxels).sin(),
    );
    let (cos1, cos2) = (
        (OMEGA[0] / sigma_voxels).cos(),
        (OMEGA[1] / sigma_voxels).cos(),
    );
    let (exp1, exp2) = (
        (LAMBDA[0] / sigma_voxels).exp(),
        (LAMBDA[1] / sigma_voxels).exp(),
    );

    let n0 = a1 + a2;
    let n1 =
        exp2 * (b2 * sin2 - (a2 + 2.0 * a1) * cos2) + exp1 * (b1 * sin1 - (a1 + 2.0 * a2) * cos1);
    let n2 = 2.0 * exp1 * exp2 * ((a1 + a2) * cos2 * cos1 - b1 * cos2 * sin1 - b2 * cos1 * sin2)
        + a2 * exp1 * exp1
        + a1 * exp2 * exp2;
    let n3 =
        exp2 * exp1 * exp1 * (b2 * sin2 - a2 * cos2) + exp1 * exp2 * exp2 * (b1 * sin1 - a1 * cos1);
    let moments = Moments {
        sum: n0 + n1 + n2 + n3,
        first: n1 + 2.0 * n2 + 3.0 * n3,
        second: n1 + 4.0 * n2 + 9.0 * n3,
    };
    ([n0, n1, n2, n3], moments)
}

/// Filters every line of `data` along `axis` in place, rounding each result to f32 as
/// ITK's float32 intermediate images do.
pub fn filter_axis(data: &mut Array3<f64>, axis: usize, coefficients: &Coefficients) {
    let mut line = Vec::new();
    let mut scratch = Vec::new();
    for mut lane in data.lanes_mut(Axis(axis)) {
        line.clear();
        line.extend(lane.iter().copied());
        coefficients.filter_line(&mut line, &mut scratch);
        for (target, value) in lane.iter_mut().zip(&line) {
            *target = super::round_to_f32(*value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursive_gaussian_preserves_constant_line() {
        // Order 0 has unit sum and edge extension, so a constant stays constant.
        let coefficients = Coefficients::new(Order::Zero, 2.0, 1.0, true);
        let mut line = vec![5.0; 12];
        coefficients.filter_line(&mut line, &mut Vec::new());
        for value in &line {
            assert!((value - 5.0).abs() < 1e-9, "{line:?}");
        }
    }

    #[test]
    fn recursive_gaussian_second_derivative_of_parabola() {
        // x² has second derivative 2 everywhere. At the centre of a long line, far from the
        // edges, the unit-second-moment filter returns 2 (σ = 2 voxels, no scale factor).
        let coefficients = Coefficients::new(Order::Second, 2.0, 1.0, false);
        let mut line: Vec<f64> = (0..101).map(|n| ((n as f64) - 50.0).powi(2)).collect();
        coefficients.filter_line(&mut line, &mut Vec::new());
        assert!((line[50] - 2.0).abs() < 1e-3, "{}", line[50]);
    }
}
