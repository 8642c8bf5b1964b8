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

use std::ops::Range;

use multiversion::multiversion;
use ndarray::{Array3, ArrayView3};

use super::region::split_shape;

/// Contiguous lines filtered together by [`filter_axis_range`].
const LANES: usize = 4;
/// Largest number of interleaved lines filtered together by [`filter_axis_range`]. Rows of
/// 512 values take 4 KiB, so both passes over lines of up to 256 voxels fit in 2 MiB of
/// cache.
const ROW_BLOCK: usize = 512;

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
    /// at least 4 voxels. This is the plain form of the recursion, one voxel at a time
    /// with the edge tested on every tap; [`filter_axis_range`] is the fast form, and the
    /// tests check that both give the same values.
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

/// Filters every line of a C-order array along its axis `axis` and keeps the outputs at
/// positions `keep` along that axis, rounded to f32 as ITK's float32 intermediate images
/// are. Returns a C-order array with `keep.len()` voxels along `axis`.
///
/// Each line is filtered whole, so the kept values equal those of [`Coefficients::filter_line`]
/// bit for bit (same operations in the same order). Lines along the first two axes run
/// side by side: one step of the recursion updates a whole row of `inner` lines, reading
/// contiguous memory. Lines along the last (contiguous) axis run [`LANES`] at a time with
/// the recursion state in registers, so that the independent recursions overlap instead of
/// each waiting on its own feedback chain.
///
/// A second copy of this function, with the passes inlined, is compiled for AVX2 and runs
/// where the CPU has it: the same operations in the same order on wider registers, so the
/// values are the same on every CPU. Rust never fuses a multiply and an add into one FMA
/// on its own, so the AVX2 copy rounds each operation as the baseline copy does.
#[multiversion(targets("x86_64+avx2"))]
pub fn filter_axis_range(
    input: ArrayView3<f64>,
    axis: usize,
    coefficients: &Coefficients,
    keep: Range<usize>,
) -> Array3<f64> {
    let input = input.as_standard_layout();
    let shape: [usize; 3] = std::array::from_fn(|index| input.shape()[index]);
    let (outer, length, inner) = split_shape(shape, axis);
    debug_assert!(length >= 4, "recursive Gaussian needs 4 voxels per line");
    debug_assert!(keep.end <= length && keep.start < keep.end);
    let mut output_shape = shape;
    output_shape[axis] = keep.len();
    let mut output = Array3::<f64>::zeros(output_shape);
    let (Some(source), Some(target)) = (input.as_slice(), output.as_slice_mut()) else {
        unreachable!("both arrays are in C order");
    };

    if inner == 1 {
        // Lines along the contiguous axis: LANES lines at a time, then one at a time.
        let grouped = outer - outer % LANES;
        coefficients.filter_lines::<LANES>(source, length, 0..grouped, &keep, target);
        coefficients.filter_lines::<1>(source, length, grouped..outer, &keep, target);
        return output;
    }

    // Lines along the first two axes run in blocks of at most ROW_BLOCK lines, so that the
    // causal and anticausal rows of a block stay in cache between the two passes.
    let width = inner.min(ROW_BLOCK);
    let mut causal = vec![0.0; length * width];
    let mut anticausal = vec![0.0; length * width];
    for block in 0..outer {
        let lines = &source[block * length * inner..(block + 1) * length * inner];
        let kept_rows = &mut target[block * keep.len() * inner..(block + 1) * keep.len() * inner];
        for first_column in (0..inner).step_by(ROW_BLOCK) {
            let columns = first_column..(first_column + ROW_BLOCK).min(inner);
            let width = columns.len();
            let rows = InterleavedLines {
                lines,
                inner,
                columns: columns.clone(),
            };
            coefficients.causal_rows(&rows, keep.end, &mut causal[..length * width]);
            coefficients.anticausal_rows(&rows, keep.start, &mut anticausal[..length * width]);
            for (row, kept) in keep.clone().zip(kept_rows.chunks_exact_mut(inner)) {
                let from = row * width;
                for ((value, forward), backward) in kept[columns.clone()]
                    .iter_mut()
                    .zip(&causal[from..from + width])
                    .zip(&anticausal[from..from + width])
                {
                    *value = super::round_to_f32(forward + backward);
                }
            }
        }
    }
    output
}

impl Coefficients {
    /// Causal pass over a block of interleaved lines, for rows `0..end`, into `causal`
    /// (row `n` starts at `n · width`, width being the block's line count).
    #[inline(always)]
    fn causal_rows(&self, lines: &InterleavedLines, end: usize, causal: &mut [f64]) {
        let width = lines.columns.len();
        let row = |n: usize| lines.row(n);
        let (n, d, bn) = (&self.n, &self.d, &self.bn);
        for index in 0..end {
            // Input before the line is its first voxel; output before the line is the
            // first voxel times the boundary coefficient BN.
            let x: [&[f64]; 4] = std::array::from_fn(|lag| row(index.saturating_sub(lag)));
            let (done, rest) = causal.split_at_mut(index * width);
            let current = &mut rest[..width];
            let feedback: [(&[f64], f64); 4] = std::array::from_fn(|lag| {
                if index > lag {
                    let n = index - lag - 1;
                    (&done[n * width..(n + 1) * width], d[lag])
                } else {
                    (row(0), bn[lag])
                }
            });
            // Slices of exactly `width` values let the compiler drop the bounds checks.
            let [x0, x1, x2, x3] = x.map(|values| &values[..width]);
            let [(y1, d1), (y2, d2), (y3, d3), (y4, d4)] =
                feedback.map(|(values, coefficient)| (&values[..width], coefficient));
            for k in 0..width {
                let value = n[0] * x0[k] + n[1] * x1[k] + n[2] * x2[k] + n[3] * x3[k];
                let sum = y1[k] * d1 + y2[k] * d2 + y3[k] * d3 + y4[k] * d4;
                current[k] = value - sum;
            }
        }
    }

    /// Anticausal pass over a block of interleaved lines, for rows `start..` of the line
    /// length, into `anticausal` (row `n` starts at `n · width`, width being the block's
    /// line count).
    #[inline(always)]
    fn anticausal_rows(&self, lines: &InterleavedLines, start: usize, anticausal: &mut [f64]) {
        let width = lines.columns.len();
        let length = lines.length();
        let row = |n: usize| lines.row(n.min(length - 1));
        let (m, d, bm) = (&self.m, &self.d, &self.bm);
        for index in (start..length).rev() {
            // Input after the line is its last voxel; output after the line is the last
            // voxel times the boundary coefficient BM.
            let x: [&[f64]; 4] = std::array::from_fn(|lead| row(index + lead + 1));
            let (rest, done) = anticausal.split_at_mut((index + 1) * width);
            let current = &mut rest[index * width..(index + 1) * width];
            let feedback: [(&[f64], f64); 4] = std::array::from_fn(|lead| {
                if index + lead + 1 < length {
                    (&done[lead * width..(lead + 1) * width], d[lead])
                } else {
                    (row(length - 1), bm[lead])
                }
            });
            let [x1, x2, x3, x4] = x.map(|values| &values[..width]);
            let [(y1, d1), (y2, d2), (y3, d3), (y4, d4)] =
                feedback.map(|(values, coefficient)| (&values[..width], coefficient));
            for k in 0..width {
                let value = m[0] * x1[k] + m[1] * x2[k] + m[2] * x3[k] + m[3] * x4[k];
                let sum = y1[k] * d1 + y2[k] * d2 + y3[k] * d3 + y4[k] * d4;
                current[k] = value - sum;
            }
        }
    }

    /// Filters the contiguous lines `lines` of `source` (each `length` voxels long), `L`
    /// at a time, and writes the outputs at `keep`, rounded to f32, to the same lines of
    /// `target` (each `keep.len()` voxels long). `lines.len()` must be a multiple of `L`.
    #[inline(always)]
    fn filter_lines<const L: usize>(
        &self,
        source: &[f64],
        length: usize,
        lines: Range<usize>,
        keep: &Range<usize>,
        target: &mut [f64],
    ) {
        // Voxel n of the L lines of a group is at [n][lane].
        let mut causal = vec![[0.0; L]; length];
        let mut anticausal = vec![[0.0; L]; length];
        for group in lines.step_by(L) {
            let group_lines: [&[f64]; L] = std::array::from_fn(|lane| {
                let line = group + lane;
                &source[line * length..(line + 1) * length]
            });
            self.causal_lines(&group_lines, keep.end, &mut causal);
            self.anticausal_lines(&group_lines, keep.start, &mut anticausal);
            for lane in 0..L {
                let line = group + lane;
                let kept = &mut target[line * keep.len()..(line + 1) * keep.len()];
                for ((value, forward), backward) in kept
                    .iter_mut()
                    .zip(&causal[keep.clone()])
                    .zip(&anticausal[keep.clone()])
                {
                    *value = super::round_to_f32(forward[lane] + backward[lane]);
                }
            }
        }
    }

    /// Causal pass over `L` contiguous lines of equal length, for voxels `0..end`, into
    /// `causal`.
    #[inline(always)]
    fn causal_lines<const L: usize>(
        &self,
        lines: &[&[f64]; L],
        end: usize,
        causal: &mut [[f64; L]],
    ) {
        let (n, d, bn) = (&self.n, &self.d, &self.bn);
        // The first four outputs read the boundary terms.
        let head = end.min(4);
        for index in 0..head {
            for (lane, line) in lines.iter().enumerate() {
                let first = line[0];
                let x = |lag: usize| line[index.saturating_sub(lag)];
                let value = n[0] * x(0) + n[1] * x(1) + n[2] * x(2) + n[3] * x(3);
                let term = |lag: usize| {
                    if index > lag {
                        causal[index - lag - 1][lane] * d[lag]
                    } else {
                        first * bn[lag]
                    }
                };
                let sum = term(0) + term(1) + term(2) + term(3);
                causal[index][lane] = value - sum;
            }
        }
        if end <= 4 {
            return;
        }
        let lanes = |index: usize| -> [f64; L] { std::array::from_fn(|lane| lines[lane][index]) };
        let (mut x1, mut x2, mut x3) = (lanes(3), lanes(2), lanes(1));
        let (mut y1, mut y2, mut y3, mut y4) = (causal[3], causal[2], causal[1], causal[0]);
        for (index, output) in causal.iter_mut().enumerate().take(end).skip(4) {
            let x0 = lanes(index);
            let mut y0 = [0.0; L];
            for lane in 0..L {
                let value = n[0] * x0[lane] + n[1] * x1[lane] + n[2] * x2[lane] + n[3] * x3[lane];
                let sum = y1[lane] * d[0] + y2[lane] * d[1] + y3[lane] * d[2] + y4[lane] * d[3];
                y0[lane] = value - sum;
            }
            *output = y0;
            (x3, x2, x1) = (x2, x1, x0);
            (y4, y3, y2, y1) = (y3, y2, y1, y0);
        }
    }

    /// Anticausal pass over `L` contiguous lines of equal length, for voxels `start..`,
    /// into `anticausal`.
    #[inline(always)]
    fn anticausal_lines<const L: usize>(
        &self,
        lines: &[&[f64]; L],
        start: usize,
        anticausal: &mut [[f64; L]],
    ) {
        let length = lines[0].len();
        let (m, d, bm) = (&self.m, &self.d, &self.bm);
        // The last four outputs read the boundary terms.
        let tail_start = length.saturating_sub(4).max(start);
        for index in (tail_start..length).rev() {
            for (lane, line) in lines.iter().enumerate() {
                let last = line[length - 1];
                let x = |lead: usize| line[(index + lead).min(length - 1)];
                let value = m[0] * x(1) + m[1] * x(2) + m[2] * x(3) + m[3] * x(4);
                let term = |lead: usize| {
                    if index + lead < length {
                        anticausal[index + lead][lane] * d[lead - 1]
                    } else {
                        last * bm[lead - 1]
                    }
                };
                let sum = term(1) + term(2) + term(3) + term(4);
                anticausal[index][lane] = value - sum;
            }
        }
        if tail_start <= start {
            return;
        }
        let end = length - 4;
        let lanes = |index: usize| -> [f64; L] { std::array::from_fn(|lane| lines[lane][index]) };
        let (mut x1, mut x2, mut x3, mut x4) =
            (lanes(end), lanes(end + 1), lanes(end + 2), lanes(end + 3));
        let (mut y1, mut y2, mut y3, mut y4) = (
            anticausal[end],
            anticausal[end + 1],
            anticausal[end + 2],
            anticausal[end + 3],
        );
        for index in (start..end).rev() {
            let mut y0 = [0.0; L];
            for lane in 0..L {
                let value = m[0] * x1[lane] + m[1] * x2[lane] + m[2] * x3[lane] + m[3] * x4[lane];
                let sum = y1[lane] * d[0] + y2[lane] * d[1] + y3[lane] * d[2] + y4[lane] * d[3];
                y0[lane] = value - sum;
            }
            anticausal[index] = y0;
            (x4, x3, x2, x1) = (x3, x2, x1, lanes(index));
            (y4, y3, y2, y1) = (y3, y2, y1, y0);
        }
    }
}

/// A block of lines along a non-contiguous axis: row `n` contains voxel `n` of every line,
/// and the block takes the lines at `columns` of each row of `inner` values.
struct InterleavedLines<'a> {
    lines: &'a [f64],
    inner: usize,
    columns: Range<usize>,
}

impl InterleavedLines<'_> {
    /// Returns the number of voxels per line.
    fn length(&self) -> usize {
        self.lines.len() / self.inner
    }

    /// Returns voxel `n` of every line of the block.
    fn row(&self, n: usize) -> &[f64] {
        let start = n * self.inner;
        &self.lines[start + self.columns.start..start + self.columns.end]
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

    /// Returns deterministic values in [-500, 500) from a linear congruential generator.
    fn noise(count: usize) -> Vec<f64> {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 11) as f64 / (1u64 << 53) as f64 * 1000.0 - 500.0
            })
            .collect()
    }

    #[test]
    fn fast_axis_filter_equals_line_filter() {
        // The fast path runs the same operations in the same order as `filter_line`, so
        // each kept voxel must be bit-identical after the same f32 rounding. The cases
        // cover every axis, lines of 4 and 5 voxels (all boundary terms) and kept ranges
        // that start or end inside the line. Shape [5, 23, 47] has 1,081 lines along its
        // first axis, more than one block of ROW_BLOCK lines.
        for shape in [[4, 5, 7], [9, 4, 6], [5, 8, 4], [13, 11, 17], [5, 23, 47]] {
            let data = Array3::from_shape_vec(shape, noise(shape.iter().product()))
                .expect("shape matches the values");
            for order in [Order::Zero, Order::Second] {
                let coefficients = Coefficients::new(order, 2.5, 0.8, true);
                for axis in 0..3 {
                    let length = shape[axis];
                    for keep in [0..length, 1..length - 1, length - 1..length, 0..1] {
                        let fast =
                            filter_axis_range(data.view(), axis, &coefficients, keep.clone());
                        let mut scratch = Vec::new();
                        for (input, output) in data
                            .lanes(ndarray::Axis(axis))
                            .into_iter()
                            .zip(fast.lanes(ndarray::Axis(axis)))
                        {
                            let mut line = input.to_vec();
                            coefficients.filter_line(&mut line, &mut scratch);
                            let expected: Vec<f64> = line[keep.clone()]
                                .iter()
                                .map(|&value| crate::filters::round_to_f32(value))
                                .collect();
                            assert_eq!(
                                output.to_vec(),
                                expected,
                                "shape {shape:?}, {order:?}, axis {axis}, keep {keep:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
