//! Moran's I and Geary's C of the intensity mask by FFT convolution over its bounding box.
//!
//! Definitions (IBSI reference manual, Zwanenburg et al., arXiv:1612.07003, "Moran's I
//! index" N365 and "Geary's C measure" NPT7): for the N_v voxels k of the intensity mask
//! with intensities X_k, mean μ and weights w_kl = 1 / ‖x_k − x_l‖ between voxel centres
//! in mm,
//!
//! - I = N_v Σ_(k≠l) w_kl (X_k − μ)(X_l − μ) / (Σ_(k≠l) w_kl Σ_k (X_k − μ)²),
//! - C = (N_v − 1) Σ_(k≠l) w_kl (X_k − X_l)² / (2 Σ_(k≠l) w_kl Σ_k (X_k − μ)²).
//!
//! On the voxel grid, w_kl depends only on the index offset Δ = l − k: w_kl = K(Δ) with
//! K(Δ) = 1 / ‖Δ · spacing‖ and K(0) = 0. With m the mask indicator, a = (X − μ) m and
//! s = (X − μ)² m on the bounding box, the double sums are therefore convolutions (K is
//! even, so correlation and convolution agree):
//!
//! - W = Σ_(k≠l) w_kl = m · (K ∗ m),
//! - M = Σ_(k≠l) w_kl a_k a_l = a · (K ∗ a),
//! - G = Σ_(k≠l) w_kl (a_k − a_l)² = 2 s · (K ∗ m) − 2M,
//!
//! and I = N_v M / (W Σs), C = (N_v − 1) G / (2 W Σs). Both are 0 when W = 0 (fewer than
//! two voxels) or Σs = 0 (constant intensity), where the definitions divide by zero.
//!
//! The convolutions are linear, not circular. An axis of n voxels is zero-padded to at
//! least 2n − 1, so that no pair wraps around. The padded size is the next whose only
//! prime factors are 2, 3 and 5, which rustfft transforms fast. One complex transform
//! carries both fields as m + i·a. K's spectrum is real because K is even. The work is
//! O(P log P) for P padded voxels, about 8 times the bounding box, in place of the
//! O(N_v²) pairs. Memory is 24 bytes per padded voxel (the complex buffer and K's real
//! spectrum), about 190 MB for a 100 × 100 × 100 box.
//!
//! Rounding: by the usual estimate for FFT convolution, each convolved value has an
//! absolute error of the order of ε log₂ P ‖K‖₂ ‖f‖₂ for a field f and ε = 2.2 × 10⁻¹⁶,
//! so a sum is exact up to a small
//! multiple of ε times the sum of its terms' magnitudes. Against the pairwise sums, the
//! unit tests allow 10⁻⁹ of that magnitude and measure at most 4 × 10⁻¹⁵, on ROIs of 2
//! to about 3,200 voxels, so small ROIs need no pairwise path. G is a difference of two
//! sums, so its error relative to G grows as G becomes small against s · (K ∗ m), that
//! is, as Geary's C approaches 0.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::grey_levels::RoiGrid;

/// Sums over the ordered pairs (k, l), k ≠ l, of intensity-mask voxels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PairSums {
    /// Number of voxels N_v.
    count: usize,
    /// Σ_k (X_k − μ)².
    squares: f64,
    /// W = Σ_(k≠l) w_kl.
    weights: f64,
    /// M = Σ_(k≠l) w_kl (X_k − μ)(X_l − μ).
    products: f64,
    /// G = Σ_(k≠l) w_kl (X_k − X_l)².
    squared_differences: f64,
}

impl PairSums {
    /// Returns Moran's I and Geary's C, or (0, 0) when W or Σs is 0.
    fn moran_geary(&self) -> (f64, f64) {
        if self.weights == 0.0 || self.squares == 0.0 {
            return (0.0, 0.0);
        }
        let count = self.count as f64;
        let denominator = self.weights * self.squares;
        (
            count * self.products / denominator,
            (count - 1.0) * self.squared_differences / (2.0 * denominator),
        )
    }
}

/// Computes Moran's I and Geary's C of the grid's intensity mask with inverse-distance
/// weights, where `mean` is μ over the mask.
pub(super) fn moran_geary(grid: &RoiGrid, mean: f64) -> (f64, f64) {
    pair_sums(grid, mean).moran_geary()
}

/// Computes the pair sums by FFT convolution over the grid's bounding box.
fn pair_sums(grid: &RoiGrid, mean: f64) -> PairSums {
    let shape: [usize; 3] = grid.mask.dim().into();
    let mut count = 0_usize;
    let mut squares = 0.0;
    for (inside, x) in grid.mask.iter().zip(grid.intensities.iter()) {
        if *inside {
            count += 1;
            squares += (x - mean) * (x - mean);
        }
    }
    let mut sums = PairSums {
        count,
        squares,
        weights: 0.0,
        products: 0.0,
        squared_differences: 0.0,
    };
    if count < 2 {
        return sums;
    }

    let padded = shape.map(|n| fast_fft_size(2 * n - 1));
    let length = padded.iter().product::<usize>();
    let mut transforms = Transforms::new(padded);

    // K's spectrum, divided by P to fold in the normalisation that rustfft's inverse
    // transform leaves out.
    let mut buffer = vec![Complex::new(0.0, 0.0); length];
    fill_kernel(&mut buffer, shape, padded, grid.spacing);
    transforms.forward(&mut buffer, padded);
    let spectrum: Vec<f64> = buffer
        .iter()
        .map(|value| value.re / length as f64)
        .collect();

    // m + i·a, convolved with K, gives K ∗ m in the real and K ∗ a in the imaginary part.
    buffer.fill(Complex::new(0.0, 0.0));
    for ((i, j, k), inside) in grid.mask.indexed_iter() {
        if *inside {
            let centred = grid.intensities[[i, j, k]] - mean;
            buffer[(i * padded[1] + j) * padded[2] + k] = Complex::new(1.0, centred);
        }
    }
    transforms.forward(&mut buffer, shape);
    for (value, factor) in buffer.iter_mut().zip(&spectrum) {
        *value *= factor;
    }
    transforms.inverse(&mut buffer, shape);

    let mut weighted_squares = 0.0;
    for ((i, j, k), inside) in grid.mask.indexed_iter() {
        if *inside {
            let centred = grid.intensities[[i, j, k]] - mean;
            let convolved = buffer[(i * padded[1] + j) * padded[2] + k];
            sums.weights += convolved.re;
            sums.products += centred * convolved.im;
            weighted_squares += centred * centred * convolved.re;
        }
    }
    sums.squared_differences = 2.0 * weighted_squares - 2.0 * sums.products;
    sums
}

/// Writes K(Δ) = 1 / ‖Δ · spacing‖ for every offset |Δ_axis| < shape[axis] into the
/// padded buffer, negative offsets wrapped to the end of their axis.
fn fill_kernel(
    buffer: &mut [Complex<f64>],
    shape: [usize; 3],
    padded: [usize; 3],
    spacing: [f64; 3],
) {
    // Offset 0 and its wrapped copy are the same index. Padding to 2n − 1 keeps the
    // other offsets ±d apart.
    let wrapped = |offset: usize, size: usize| [offset, (size - offset) % size];
    for di in 0..shape[0] {
        for dj in 0..shape[1] {
            for dk in 0..shape[2] {
                let squared = (di as f64 * spacing[0]).powi(2)
                    + (dj as f64 * spacing[1]).powi(2)
                    + (dk as f64 * spacing[2]).powi(2);
                if squared == 0.0 {
                    continue;
                }
                let weight = Complex::new(1.0 / squared.sqrt(), 0.0);
                for i in wrapped(di, padded[0]) {
                    for j in wrapped(dj, padded[1]) {
                        for k in wrapped(dk, padded[2]) {
                            buffer[(i * padded[1] + j) * padded[2] + k] = weight;
                        }
                    }
                }
            }
        }
    }
}

/// Returns the smallest size ≥ `minimum` whose only prime factors are 2, 3 and 5.
fn fast_fft_size(minimum: usize) -> usize {
    let is_fast = |size: usize| {
        let mut rest = size;
        for factor in [2, 3, 5] {
            while rest.is_multiple_of(factor) {
                rest /= factor;
            }
        }
        rest == 1
    };
    (minimum.max(1)..)
        .find(|&size| is_fast(size))
        .unwrap_or(minimum)
}

/// Forward and inverse 3-D transforms of a buffer of the padded shape, indexed
/// (i · P_j + j) · P_k + k, as 1-D transforms along k, then j, then i (inverse: i, j, k).
struct Transforms {
    padded: [usize; 3],
    forward: [Arc<dyn Fft<f64>>; 3],
    inverse: [Arc<dyn Fft<f64>>; 3],
    /// Lines of one plane, gathered for the strided axes i and j.
    lines: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

impl Transforms {
    fn new(padded: [usize; 3]) -> Self {
        let mut planner = FftPlanner::new();
        let forward = padded.map(|size| planner.plan_fft_forward(size));
        let inverse = padded.map(|size| planner.plan_fft_inverse(size));
        let scratch_length = forward
            .iter()
            .chain(&inverse)
            .map(|fft| fft.get_inplace_scratch_len())
            .max()
            .unwrap_or(0);
        let plane = padded[0].max(padded[1]) * padded[2];
        Transforms {
            padded,
            forward,
            inverse,
            lines: vec![Complex::new(0.0, 0.0); plane],
            scratch: vec![Complex::new(0.0, 0.0); scratch_length],
        }
    }

    /// Transforms the buffer forward, given that it is 0 outside the first `filled[axis]`
    /// indices of each axis: lines that are still 0 when their axis comes are skipped.
    fn forward(&mut self, buffer: &mut [Complex<f64>], filled: [usize; 3]) {
        let [size_i, size_j, size_k] = self.padded;
        let plane = size_j * size_k;

        for i in 0..filled[0] {
            let start = i * plane;
            let rows = &mut buffer[start..start + filled[1] * size_k];
            self.forward[2].process_with_scratch(rows, &mut self.scratch);
        }

        let along_j = Arc::clone(&self.forward[1]);
        for i in 0..filled[0] {
            self.transform_strided(buffer, i * plane, size_k, &*along_j);
        }

        let along_i = Arc::clone(&self.forward[0]);
        for j in 0..size_j {
            self.transform_strided(buffer, j * size_k, plane, &*along_i);
        }
        debug_assert_eq!(buffer.len(), size_i * plane);
    }

    /// Transforms the buffer back (unnormalised), exactly only within the first
    /// `kept[axis]` indices of each axis: lines that end outside them are skipped.
    fn inverse(&mut self, buffer: &mut [Complex<f64>], kept: [usize; 3]) {
        let [_, size_j, size_k] = self.padded;
        let plane = size_j * size_k;

        let along_i = Arc::clone(&self.inverse[0]);
        for j in 0..size_j {
            self.transform_strided(buffer, j * size_k, plane, &*along_i);
        }

        let along_j = Arc::clone(&self.inverse[1]);
        for i in 0..kept[0] {
            self.transform_strided(buffer, i * plane, size_k, &*along_j);
        }

        for i in 0..kept[0] {
            let start = i * plane;
            let rows = &mut buffer[start..start + kept[1] * size_k];
            self.inverse[2].process_with_scratch(rows, &mut self.scratch);
        }
    }

    /// Transforms the P_k lines that start at `start + k` (k < P_k) and step by `stride`,
    /// gathering them into contiguous rows first.
    fn transform_strided(
        &mut self,
        buffer: &mut [Complex<f64>],
        start: usize,
        stride: usize,
        fft: &dyn Fft<f64>,
    ) {
        let width = self.padded[2];
        let length = fft.len();
        let lines = &mut self.lines[..length * width];
        for t in 0..length {
            let row = start + t * stride;
            for (k, value) in buffer[row..row + width].iter().enumerate() {
                lines[k * length + t] = *value;
            }
        }

        fft.process_with_scratch(lines, &mut self.scratch);

        for t in 0..length {
            let row = start + t * stride;
            for (k, value) in buffer[row..row + width].iter_mut().enumerate() {
                *value = lines[k * length + t];
            }
        }
    }
}

#[cfg(test)]
mod tests;
