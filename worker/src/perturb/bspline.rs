//! Cubic B-spline interpolation in the i–j plane of each slice.
//!
//! Method: M. Unser, "Splines: a perfect fit for signal and image
//! processing", IEEE Signal Processing Magazine 16(6), 1999, 22–38, and
//! P. Thévenaz, T. Blu, M. Unser, "Interpolation revisited", IEEE Trans.
//! Med. Imaging 19(7), 2000, 739–758. The image is written as
//!
//! ```text
//! f(x, y) = Σ_a Σ_b c[a, b] · β³(x − a) · β³(y − b)
//! β³(t)   = 2/3 − t² + |t|³/2     for |t| < 1
//!         = (2 − |t|)³ / 6         for 1 ≤ |t| < 2
//!         = 0                      otherwise
//! ```
//!
//! with x, y in voxel index units. The coefficients c are chosen so that f
//! passes through every voxel value (interpolation, not smoothing). They come
//! from a separable recursive prefilter, causal then anti-causal, with the
//! single pole z = √3 − 2 and gain 6, first along i, then along j.
//!
//! Conventions:
//!
//! - Boundary: mirror extension without repeating the edge voxel (whole-sample
//!   symmetric, scipy.ndimage's `mirror` mode): f(−m) = f(m) and
//!   f(n − 1 + m) = f(n − 1 − m), periodic with period 2n − 2. The prefilter
//!   is initialised exactly for this extension, and samples outside the array
//!   read mirrored coefficients.
//! - Only i and j are interpolated. Samples are taken at integer k, where a
//!   3-D cubic B-spline interpolant equals the data along k, so prefiltering
//!   along k would not change any value that is read.
//! - The interpolant reproduces polynomials up to degree 3 exactly, away from
//!   the borders where the mirror extension breaks them.

use ndarray::ArrayView3;

/// The pole of the cubic B-spline prefilter, √3 − 2.
const POLE: f64 = -0.267_949_192_431_122_7;

/// Gain of the cubic B-spline prefilter, (1 − z)(1 − 1/z) = 6.
const GAIN: f64 = 6.0;

/// Cubic B-spline coefficients of a stack of slices.
#[derive(Debug, Clone)]
pub struct InPlaneCubicBspline {
    /// Coefficients, stored slice by slice: index `(k · n_i + i) · n_j + j`,
    /// so that one slice is contiguous for the 4 × 4 reads of a sample.
    coefficients: Vec<f64>,
    /// Voxels along i, j and k.
    dims: [usize; 3],
}

impl InPlaneCubicBspline {
    /// Prefilters `data` (indexed `[i, j, k]`) into interpolation
    /// coefficients.
    ///
    /// The values must be finite: the recursive filter spreads a NaN or an
    /// infinity over its whole row and column. Callers check this first.
    pub fn new(data: ArrayView3<f64>) -> Self {
        let (ni, nj, nk) = data.dim();
        let mut coefficients = vec![0.0; ni * nj * nk];
        for ((i, j, k), &value) in data.indexed_iter() {
            coefficients[(k * ni + i) * nj + j] = value;
        }

        let mut line = Vec::with_capacity(ni.max(nj));
        let powers_i = pole_powers(ni);
        let powers_j = pole_powers(nj);
        for k in 0..nk {
            let slice = &mut coefficients[k * ni * nj..(k + 1) * ni * nj];
            // Along i: the stride between neighbours is n_j.
            for j in 0..nj {
                line.clear();
                line.extend((0..ni).map(|i| slice[i * nj + j]));
                prefilter_line(&mut line, &powers_i);
                for (i, &value) in line.iter().enumerate() {
                    slice[i * nj + j] = value;
                }
            }
            // Along j: each row is contiguous.
            for row in slice.chunks_exact_mut(nj) {
                prefilter_line(row, &powers_j);
            }
        }

        InPlaneCubicBspline {
            coefficients,
            dims: [ni, nj, nk],
        }
    }

    /// Returns the number of slices.
    pub fn slices(&self) -> usize {
        self.dims[2]
    }

    /// Returns the interpolated value at fractional position (x, y), in
    /// index units along i and j, on slice k.
    ///
    /// Positions outside the array read the mirror extension.
    ///
    /// # Panics
    ///
    /// When `k` is not a slice of the stack.
    pub fn sample(&self, x: f64, y: f64, k: usize) -> f64 {
        let slices = self.slices();
        assert!(k < slices, "slice {k} outside a stack of {slices} slices");
        self.apply(&self.stencil(x, y), k)
    }

    /// Writes the interpolated value at (x, y) on every slice k into
    /// `values[k]`, computing the weights once.
    ///
    /// # Panics
    ///
    /// When `values` does not have one entry per slice.
    pub fn sample_slices(&self, x: f64, y: f64, values: &mut [f64]) {
        let slices = self.slices();
        assert_eq!(values.len(), slices, "one output value per slice");
        let stencil = self.stencil(x, y);
        for (k, value) in values.iter_mut().enumerate() {
            *value = self.apply(&stencil, k);
        }
    }

    /// Returns the 4 × 4 coefficients that contribute at (x, y), as offsets
    /// within a slice, with their weights.
    fn stencil(&self, x: f64, y: f64) -> Stencil {
        let [ni, nj, _] = self.dims;
        let (first_i, weights_i) = weights(x);
        let (first_j, weights_j) = weights(y);
        Stencil {
            row_offsets: std::array::from_fn(|a| mirror(first_i + a as i64, ni) * nj),
            columns: std::array::from_fn(|b| mirror(first_j + b as i64, nj)),
            weights_i,
            weights_j,
        }
    }

    fn apply(&self, stencil: &Stencil, k: usize) -> f64 {
        let [ni, nj, _] = self.dims;
        let slice = &self.coefficients[k * ni * nj..(k + 1) * ni * nj];
        let mut value = 0.0;
        for (row_offset, weight_i) in stencil.row_offsets.iter().zip(&stencil.weights_i) {
            let row = &slice[*row_offset..*row_offset + nj];
            let mut dot = 0.0;
            for (column, weight_j) in stencil.columns.iter().zip(&stencil.weights_j) {
                dot += row[*column] * weight_j;
            }
            value += weight_i * dot;
        }
        value
    }
}

/// The coefficients and weights of one interpolation point.
#[derive(Debug, Clone, Copy)]
struct Stencil {
    /// Offsets i·n_j of the four contributing rows within a slice, mirrored
    /// into the array.
    row_offsets: [usize; 4],
    /// The four contributing columns j, mirrored into the array.
    columns: [usize; 4],
    /// β³ weights of the rows.
    weights_i: [f64; 4],
    /// β³ weights of the columns.
    weights_j: [f64; 4],
}

/// Returns the first of the four coefficient indices that contribute at
/// position `x`, and their weights β³(x − index).
fn weights(x: f64) -> (i64, [f64; 4]) {
    let base = x.floor();
    let t = x - base;
    let u = 1.0 - t;
    let weights = [
        u * u * u / 6.0,
        2.0 / 3.0 - t * t + t * t * t / 2.0,
        2.0 / 3.0 - u * u + u * u * u / 2.0,
        t * t * t / 6.0,
    ];
    (base as i64 - 1, weights)
}

/// Maps any integer index onto 0..n by the mirror extension of period
/// 2n − 2 (index 0 for n = 1).
fn mirror(index: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let folded = index.rem_euclid(period);
    let last = n as i64 - 1;
    if folded > last {
        (period - folded) as usize
    } else {
        folded as usize
    }
}

/// Returns z^m for m = 0 ..= 2n − 2, the powers the mirror initialisation of
/// a line of n samples needs. Powers below the f64 range become 0, which
/// changes no sum.
fn pole_powers(n: usize) -> Vec<f64> {
    let count = (2 * n).saturating_sub(1).max(1);
    let mut powers = Vec::with_capacity(count);
    let mut power = 1.0;
    for _ in 0..count {
        powers.push(power);
        power *= POLE;
    }
    powers
}

/// Replaces a line of samples by its cubic B-spline coefficients, in place.
///
/// `powers` are [`pole_powers`] for this length. A line of one sample is
/// its own coefficient.
fn prefilter_line(line: &mut [f64], powers: &[f64]) {
    let n = line.len();
    if n < 2 {
        return;
    }
    for value in line.iter_mut() {
        *value *= GAIN;
    }

    // Causal initialisation for the mirror extension, summed over one
    // period 2n − 2 and closed with the geometric factor 1/(1 − z^(2n−2)):
    // c⁺(0) = [f(0) + z^(n−1) f(n−1) + Σ_{m=1}^{n−2} (z^m + z^(2n−2−m)) f(m)] / (1 − z^(2n−2)).
    let mut sum = line[0] + powers[n - 1] * line[n - 1];
    for m in 1..n - 1 {
        sum += (powers[m] + powers[2 * n - 2 - m]) * line[m];
    }
    line[0] = sum / (1.0 - powers[2 * n - 2]);

    // Causal recursion: c⁺(m) = f(m) + z c⁺(m − 1).
    for m in 1..n {
        line[m] += POLE * line[m - 1];
    }

    // Anti-causal initialisation for the mirror extension:
    // c⁻(n−1) = z / (z² − 1) · (c⁺(n−1) + z c⁺(n−2)).
    line[n - 1] = POLE / (POLE * POLE - 1.0) * (line[n - 1] + POLE * line[n - 2]);

    // Anti-causal recursion: c⁻(m) = z (c⁻(m + 1) − c⁺(m)).
    for m in (0..n - 1).rev() {
        line[m] = POLE * (line[m + 1] - line[m]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Difference allowed between interpolated values at voxel centres and
    /// the data, for data in [0, 100): the prefilter and the evaluation
    /// are a few dozen roundings of values of that size.
    const AT_VOXEL_TOLERANCE: f64 = 1e-11;

    #[test]
    fn pole_is_sqrt3_minus_2() {
        // √3 rounds to f64 with an error below 1.2e-16, which the
        // subtraction keeps. The constant is the double nearest to the pole.
        assert!((POLE - (3f64.sqrt() - 2.0)).abs() < 2.3e-16);
    }

    #[test]
    fn bspline_reproduces_data_at_voxel_centres() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for (ni, nj) in [(1, 1), (1, 4), (2, 2), (3, 5), (17, 9)] {
            let data = Array3::from_shape_fn((ni, nj, 2), |_| rng.gen_range(0.0..100.0));
            let spline = InPlaneCubicBspline::new(data.view());
            for ((i, j, k), &expected) in data.indexed_iter() {
                let value = spline.sample(i as f64, j as f64, k);
                assert!(
                    (value - expected).abs() <= AT_VOXEL_TOLERANCE,
                    "{ni}×{nj} voxel ({i}, {j}, {k}): {value} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn bspline_outside_reads_mirror_extension() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let data = Array3::from_shape_fn((6, 5, 1), |_| rng.gen_range(0.0..100.0));
        let spline = InPlaneCubicBspline::new(data.view());
        // Whole-sample mirror: index −2 reads index 2, index n − 1 + 2 reads n − 3.
        let cases = [
            ((-2.0, 1.0), (2, 1)),
            ((7.0, 3.0), (3, 3)),
            ((1.0, -1.0), (1, 1)),
            ((0.0, 6.0), (0, 2)),
        ];
        for ((x, y), (i, j)) in cases {
            let value = spline.sample(x, y, 0);
            assert!(
                (value - data[[i, j, 0]]).abs() <= AT_VOXEL_TOLERANCE,
                "({x}, {y}) should read voxel ({i}, {j})"
            );
        }
        // Between voxels, the mirror images are symmetric about the border.
        let inside = spline.sample(0.3, 2.6, 0);
        let mirrored = spline.sample(-0.3, 2.6, 0);
        assert!((inside - mirrored).abs() <= AT_VOXEL_TOLERANCE);
    }

    #[test]
    fn bspline_reproduces_cubic_polynomial_in_interior() {
        // A cubic in x and y is in the spline space, so interpolation is
        // exact where the mirror extension does not reach. The border
        // influence decays as |z|^d with distance d in voxels, and
        // |z|^20 ≈ 3.7e-12 relative to values of order 10³ gives about 4e-9.
        let polynomial =
            |x: f64, y: f64| 0.02 * x * x * x - 0.3 * x * y + 0.1 * y * y + 2.0 * x - y + 7.0;
        let n = 48;
        let data = Array3::from_shape_fn((n, n, 1), |(i, j, _)| polynomial(i as f64, j as f64));
        let spline = InPlaneCubicBspline::new(data.view());
        for (x, y) in [(20.25, 22.5), (23.9, 24.1), (26.0, 21.37), (24.5, 27.75)] {
            let value = spline.sample(x, y, 0);
            let expected = polynomial(x, y);
            assert!(
                (value - expected).abs() <= 1e-8,
                "({x}, {y}): {value} vs {expected}"
            );
        }
    }

    #[test]
    fn bspline_mirror_maps_indices() {
        assert_eq!(mirror(-1, 4), 1);
        assert_eq!(mirror(4, 4), 2);
        assert_eq!(mirror(6, 4), 0);
        assert_eq!(mirror(-7, 4), 1);
        assert_eq!(mirror(5, 1), 0);
        assert_eq!(mirror(3, 2), 1);
    }

    #[test]
    fn bspline_weights_sum_to_one() {
        for x in [-3.7, 0.0, 0.25, 0.5, 4.999] {
            let (_, weights) = weights(x);
            let sum: f64 = weights.iter().sum();
            assert!((sum - 1.0).abs() < 1e-15, "x = {x}: {sum}");
        }
    }
}
