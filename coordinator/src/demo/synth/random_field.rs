//! Smooth random fields: white noise blurred by a separable Gaussian and
//! standardised to mean 0 and SD 1.

use rand::Rng;
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Returns Gaussian white noise smoothed with an isotropic Gaussian kernel of
/// `sigma_mm`, rescaled to zero mean and unit SD, in C order on `dims`.
pub(super) fn smooth_noise(
    rng: &mut Xoshiro256PlusPlus,
    dims: [usize; 3],
    spacing_mm: [f64; 3],
    sigma_mm: f64,
) -> Vec<f32> {
    let mut field: Vec<f32> = (0..dims[0] * dims[1] * dims[2])
        .map(|_| rng.sample(StandardNormal))
        .collect();
    for (axis, spacing) in spacing_mm.iter().enumerate() {
        blur_axis(&mut field, dims, axis, &gaussian_kernel(sigma_mm / spacing));
    }
    standardize(&mut field);
    field
}

/// Returns a normalized Gaussian kernel truncated at 2.5 sigma, or the
/// identity kernel when sigma is below a third of a voxel.
fn gaussian_kernel(sigma_voxels: f64) -> Vec<f32> {
    if sigma_voxels < 1.0 / 3.0 {
        return vec![1.0];
    }
    let radius = (2.5 * sigma_voxels).ceil() as isize;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|offset| (-0.5 * (offset as f64 / sigma_voxels).powi(2)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .map(|weight| (weight / total) as f32)
        .collect()
}

/// Convolves every line of `field` along `axis` with `kernel`, replicating
/// the edge values.
fn blur_axis(field: &mut [f32], dims: [usize; 3], axis: usize, kernel: &[f32]) {
    if kernel.len() == 1 {
        return;
    }
    let length = dims[axis];
    let radius = kernel.len() / 2;
    // The field is viewed as [outer][length][inner] in C order, so the
    // `inner` voxels after the blurred axis are contiguous.
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();

    if inner == 1 {
        let mut padded = vec![0.0f32; length + 2 * radius];
        for line in field.chunks_exact_mut(length) {
            for (position, value) in padded.iter_mut().enumerate() {
                *value = line[position.saturating_sub(radius).min(length - 1)];
            }
            for (position, value) in line.iter_mut().enumerate() {
                let window = &padded[position..position + kernel.len()];
                *value = window.iter().zip(kernel).map(|(a, b)| a * b).sum();
            }
        }
        return;
    }

    // Weighted sums of whole contiguous rows, which the compiler vectorizes.
    let block = length * inner;
    let mut source = vec![0.0f32; block];
    for chunk in field.chunks_exact_mut(block).take(outer) {
        source.copy_from_slice(chunk);
        for position in 0..length {
            let target = &mut chunk[position * inner..(position + 1) * inner];
            target.fill(0.0);
            for (tap, &weight) in kernel.iter().enumerate() {
                let row = (position + tap).saturating_sub(radius).min(length - 1);
                let source_row = &source[row * inner..(row + 1) * inner];
                for (out, &value) in target.iter_mut().zip(source_row) {
                    *out += weight * value;
                }
            }
        }
    }
}

fn standardize(field: &mut [f32]) {
    let count = field.len() as f64;
    let mean = field.iter().map(|&value| value as f64).sum::<f64>() / count;
    let variance = field
        .iter()
        .map(|&value| (value as f64 - mean).powi(2))
        .sum::<f64>()
        / count;
    let sd = variance.sqrt().max(1e-12);
    for value in field.iter_mut() {
        *value = ((*value as f64 - mean) / sd) as f32;
    }
}
