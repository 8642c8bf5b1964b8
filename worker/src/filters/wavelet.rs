//! Wavelet image type (PyRadiomics `Wavelet`, output names `wavelet-LLH` … `wavelet-LLL`).
//!
//! An undecimated (stationary) wavelet transform with the coif1 wavelet, one level at a
//! time. Along one axis of N voxels (N even), the low-pass (L) and high-pass (H) outputs
//! are periodic convolutions with the decomposition taps h (6 taps, F = 6):
//!
//! L[n] = Σ_{j=0..F−1} h_lo[j] · x[(n + F/2 − j) mod N], and H likewise with h_hi.
//!
//! Applying L or H along i, then j, then k gives 8 images named by one letter per axis
//! in that order: `LLH` is low-pass along i and j and high-pass along k. An odd axis is
//! first padded with one voxel that repeats its first voxel (periodic wrap) and the
//! padding is cut from each output.
//!
//! Levels follow PyRadiomics, not the textbook à trous scheme: each level transforms the
//! previous level's LLL with the same, not dilated, taps. The first `start_level` levels
//! give no output. The next `level` levels each give 7 detail images, named `wavelet-…`
//! for the first of them and `wavelet<n>-…` for the n-th. The LLL of the last level
//! comes last. Source: PyRadiomics `imageoperations.getWaveletImage` and `_swt3`
//! (pyradiomics-bhklab 3.1.4), which call `pywt.swtn(level=1)` of PyWavelets 1.9
//! (periodisation convolution in `downsampling_convolution_periodization`).
//!
//! Precision follows PyWavelets, which transforms a float32 array in float32 with float32
//! taps and any integer or float64 array in float64. PyRadiomics hands it the array of the
//! SimpleITK image, so a float32 file (such as the STS MR T1 NIfTI files) is transformed
//! in single precision and each band stays a float32 image for the features. Here
//! [`Precision::Single`] rounds the input to f32, runs the same taps in f32 and widens
//! the bands to f64. Each sum adds the 6 products in PyWavelets' order, which starts at
//! tap 0 except for the last two outputs of a line (see `tap_order`), so the bands
//! match PyWavelets bit for bit in both precisions.

use ndarray::{Array3, ArrayView3, s};

use super::region::{MemoryOrder, VoxelBox, split_shape};
use crate::image::{PixelType, Volume};

/// coif1 decomposition low-pass taps h_lo, as PyWavelets 1.9 lists them
/// (`pywt.Wavelet('coif1').dec_lo`).
pub const COIF1_LOW_PASS: [f64; 6] = [
    -0.015655728135791993,
    -0.07273261951252645,
    0.3848648468648578,
    0.8525720202116004,
    0.3378976624574818,
    -0.07273261951252645,
];

/// coif1 decomposition low-pass taps that PyWavelets 1.9 uses on float32 input. They are
/// the impulse response of `pywt.swt` on a float32 unit impulse. Tap 3 (0x3f5a4228) is
/// one unit in the last place below the f32 rounding of [`COIF1_LOW_PASS`]\[3\], and the
/// others are the f32 roundings of [`COIF1_LOW_PASS`].
pub const COIF1_LOW_PASS_F32: [f32; 6] = [
    -0.015655728,
    -0.07273262,
    0.38486484,
    0.85257196,
    0.33789766,
    -0.07273262,
];

/// The arithmetic of the transform: PyWavelets' float32 or float64 path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 input, taps and sums ([`COIF1_LOW_PASS_F32`]).
    Single,
    /// f64 input, taps and sums ([`COIF1_LOW_PASS`]).
    Double,
}

impl Precision {
    /// Returns the precision PyWavelets uses on the array of an image of this pixel type.
    pub fn of(pixel_type: PixelType) -> Precision {
        match pixel_type {
            PixelType::Float32 => Precision::Single,
            PixelType::Integer | PixelType::Float64 => Precision::Double,
        }
    }
}

/// A floating-point type the transform runs in (f32 or f64).
trait Sample:
    Copy
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Neg<Output = Self>
{
    /// Converts an f64 voxel value with rounding to nearest, as numpy's `astype` does.
    fn from_f64(value: f64) -> Self;
    /// Widens to f64 exactly.
    fn to_f64(self) -> f64;
}

impl Sample for f32 {
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Sample for f64 {
    fn from_f64(value: f64) -> Self {
        value
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// Returns the high-pass taps of an orthogonal wavelet from its low-pass taps
/// (quadrature mirror): h_hi[j] = (−1)^(j+1) · h_lo[F − 1 − j].
fn high_pass<T: Sample>(low: &[T; 6]) -> [T; 6] {
    std::array::from_fn(|j| {
        let mirrored = low[low.len() - 1 - j];
        if j % 2 == 0 { -mirrored } else { mirrored }
    })
}

/// Returns the order in which PyWavelets 1.9 adds the 6 products of the periodisation
/// convolution with step 1 for output `n` of a line of `period` (N) voxels.
///
/// Output n reads x[(n + 3 − j) mod N] for tap j. Where the taps run past the end of the
/// line (e = n + 3 − N ≥ 1, so the last two outputs), the C loop first adds the
/// wrapped-around taps j = e, e − 1, …, 0 and then j = e + 1, …, 5. Every other output
/// adds j = 0, …, 5. Source: `downsampling_convolution_periodization` in PyWavelets'
/// `_extensions/c/convolution.template.c`. Sums in this order were bit-identical to
/// `pywt.swt` on random float32 and float64 lines of 2 to 30 voxels, and sums from tap 0
/// were not.
fn tap_order(n: usize, period: usize) -> [usize; 6] {
    match (n + 3).checked_sub(period) {
        Some(1) => [1, 0, 2, 3, 4, 5],
        Some(2) => [2, 1, 0, 3, 4, 5],
        _ => [0, 1, 2, 3, 4, 5],
    }
}

/// One wavelet output: its PyRadiomics image type name and the image.
pub type WaveletImage = (String, Volume);

/// Computes the wavelet images of `image` on the voxels of `region` in `precision` (see
/// the module documentation for names, order and precision).
///
/// One level's output at voxel n along an axis reads the input at n − 2 to n + 3. After
/// T levels, the outputs in `region` therefore read `region` widened by 2T voxels before
/// and 3T after, on the periodic (wrapped) padded image. Only that widened box is gathered
/// and transformed, with the same taps in the same order as on the whole image, so the
/// values in `region` equal those of the whole-image transform bit for bit.
pub fn wavelet(
    image: &Volume,
    precision: Precision,
    start_level: u32,
    level: u32,
    region: &VoxelBox,
) -> Vec<WaveletImage> {
    match precision {
        Precision::Single => transform(image, COIF1_LOW_PASS_F32, start_level, level, region),
        Precision::Double => transform(image, COIF1_LOW_PASS, start_level, level, region),
    }
}

/// Runs [`wavelet`] in the precision of `T` with the low-pass taps `low`.
fn transform<T: Sample>(
    image: &Volume,
    low: [T; 6],
    start_level: u32,
    level: u32,
    region: &VoxelBox,
) -> Vec<WaveletImage> {
    let high = high_pass(&low);
    let levels = (start_level + level) as usize;
    let input = MemoryOrder::of(image.data.view());
    let dims = image.geometry.dims;
    let mut data = gather_periodic::<T>(&input, dims, region, levels);
    // The padded (even) length of each image axis, and the padded position of the first
    // gathered voxel along it before level `done`: region.from − 2 · (levels − done).
    let periods = dims.map(|size| size + size % 2);
    let lines = |done: usize| -> [Line; 3] {
        std::array::from_fn(|axis| Line {
            axis: input.position(axis),
            period: periods[axis],
            first: (region.from[axis] as isize - 2 * (levels - done) as isize)
                .rem_euclid(periods[axis] as isize) as usize,
        })
    };

    for done in 0..start_level as usize {
        for line in lines(done) {
            data = convolve_axis(data.view(), line, &low);
        }
    }

    // Cuts `region` out of a band of level `done` (levels transformed so far).
    let crop = |band: &Array3<T>, done: usize| -> Volume {
        let first = 2 * (levels - done);
        let [n0, n1, n2] = input.permute(region.dims());
        let inside = band.slice(s![first..first + n0, first..first + n1, first..first + n2]);
        Volume {
            data: input.to_image_axes(inside.mapv(T::to_f64)),
            geometry: region.geometry(&image.geometry),
            stored_as_integer: false,
        }
    };

    let mut outputs = Vec::new();
    for index in 1..=level {
        let done = (start_level + index) as usize;
        let prefix = if index == 1 {
            "wavelet".to_string()
        } else {
            format!("wavelet{index}")
        };
        let mut approximation = None;
        for (name, band) in decompose(&data, lines(done - 1), &low, &high) {
            if name == "LLL" {
                approximation = Some(band);
                continue;
            }
            outputs.push((format!("{prefix}-{name}"), crop(&band, done)));
        }
        if let Some(next) = approximation {
            data = next;
        }
    }
    let prefix = if level == 1 {
        "wavelet".to_string()
    } else {
        format!("wavelet{level}")
    };
    outputs.push((format!("{prefix}-LLL"), crop(&data, levels)));
    outputs
}

/// One image axis of the gathered array, as [`convolve_axis`] needs it.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Position of the axis in the array's memory order.
    axis: usize,
    /// Length N of the padded (even) image axis.
    period: usize,
    /// Position on the padded axis (0 ≤ first < N) of the array's first voxel.
    first: usize,
}

/// Copies `region` widened by 2 · `levels` voxels before and 3 · `levels` after along
/// each axis, in memory order, from the image padded to even sizes and repeated
/// periodically, converted to `T`. The padding voxel of an odd axis repeats the axis's
/// first voxel, as PyRadiomics' `numpy.pad(mode='wrap')` does.
fn gather_periodic<T: Sample>(
    input: &MemoryOrder,
    dims: [usize; 3],
    region: &VoxelBox,
    levels: usize,
) -> Array3<T> {
    let indices: [Vec<usize>; 3] = std::array::from_fn(|axis| {
        let padded = (dims[axis] + dims[axis] % 2) as isize;
        let from = region.from[axis] as isize - 2 * levels as isize;
        let to = (region.to[axis] + 3 * levels) as isize;
        (from..to)
            .map(|position| position.rem_euclid(padded) as usize % dims[axis])
            .collect()
    });
    let [first, second, third] = input.permute([&indices[0], &indices[1], &indices[2]]);
    let mut gathered = Array3::<T>::default((first.len(), second.len(), third.len()));
    for (a, &p) in first.iter().enumerate() {
        for (b, &q) in second.iter().enumerate() {
            let source = input.data.slice(s![p, q, ..]);
            let mut target = gathered.slice_mut(s![a, b, ..]);
            for (value, &r) in target.iter_mut().zip(third.iter()) {
                *value = T::from_f64(source[r]);
            }
        }
    }
    gathered
}

/// The 8 decompositions in PyWavelets' `swtn` order (a → L, d → H).
const DECOMPOSITIONS: [&str; 8] = ["LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"];

/// Splits `data` into its 8 decompositions along i, j, k (the image axes described by
/// `lines`), in [`DECOMPOSITIONS`] order. Each band is 5 voxels shorter along every axis.
fn decompose<T: Sample>(
    data: &Array3<T>,
    lines: [Line; 3],
    low: &[T; 6],
    high: &[T; 6],
) -> Vec<(String, Array3<T>)> {
    let mut bands = vec![(String::new(), data.clone())];
    for line in lines {
        let mut next = Vec::with_capacity(bands.len() * 2);
        for (name, band) in &bands {
            next.push((format!("{name}L"), convolve_axis(band.view(), line, low)));
            next.push((format!("{name}H"), convolve_axis(band.view(), line, high)));
        }
        bands = next;
    }
    bands
}

/// Convolves every line of a C-order array along `line.axis` with `taps`, keeping the
/// outputs whose taps all fall inside the line: output t is Σ_j taps[j] · x[t + 5 − j], so
/// the line gets 5 voxels shorter. On a periodically extended line this is PyWavelets'
/// periodisation convolution with step 1, (n + F/2 − j) mod N, shifted by 2 voxels: output
/// t is padded position n = (line.first + t + 2) mod N, and its sum adds the products in
/// [`tap_order`]`(n, N)`.
fn convolve_axis<T: Sample>(data: ArrayView3<T>, line: Line, taps: &[T; 6]) -> Array3<T> {
    let data = data.as_standard_layout();
    let shape: [usize; 3] = std::array::from_fn(|index| data.shape()[index]);
    let (outer, length, inner) = split_shape(shape, line.axis);
    let output_length = length - (taps.len() - 1);
    let mut output_shape = shape;
    output_shape[line.axis] = output_length;
    let mut output = Array3::<T>::default(output_shape);
    let (Some(source), Some(target)) = (data.as_slice(), output.as_slice_mut()) else {
        unreachable!("both arrays are in C order");
    };
    let orders: Vec<[usize; 6]> = (0..output_length)
        .map(|t| tap_order((line.first + t + 2) % line.period, line.period))
        .collect();

    for block in 0..outer {
        let lines = &source[block * length * inner..(block + 1) * length * inner];
        let outputs =
            &mut target[block * output_length * inner..(block + 1) * output_length * inner];
        if inner == 1 {
            // One contiguous line: window t is x[t..t + 6], so x[t + 5 − j] = window[5 − j].
            for ((value, window), order) in outputs
                .iter_mut()
                .zip(lines.windows(taps.len()))
                .zip(&orders)
            {
                let mut sum = T::default();
                if *order == [0, 1, 2, 3, 4, 5] {
                    sum = sum + taps[0] * window[5];
                    sum = sum + taps[1] * window[4];
                    sum = sum + taps[2] * window[3];
                    sum = sum + taps[3] * window[2];
                    sum = sum + taps[4] * window[1];
                    sum = sum + taps[5] * window[0];
                } else {
                    for &j in order {
                        sum = sum + taps[j] * window[5 - j];
                    }
                }
                *value = sum;
            }
            continue;
        }
        for ((t, row), order) in outputs.chunks_exact_mut(inner).enumerate().zip(&orders) {
            // Input rows t + 5, t + 4, …, t for taps 0 to 5.
            let x: [&[T]; 6] =
                std::array::from_fn(|j| &lines[(t + 5 - j) * inner..(t + 6 - j) * inner]);
            if *order == [0, 1, 2, 3, 4, 5] {
                for (k, value) in row.iter_mut().enumerate() {
                    let mut sum = T::default();
                    sum = sum + taps[0] * x[0][k];
                    sum = sum + taps[1] * x[1][k];
                    sum = sum + taps[2] * x[2][k];
                    sum = sum + taps[3] * x[3][k];
                    sum = sum + taps[4] * x[4][k];
                    sum = sum + taps[5] * x[5][k];
                    *value = sum;
                }
                continue;
            }
            for (k, value) in row.iter_mut().enumerate() {
                let mut sum = T::default();
                for &j in order {
                    sum = sum + taps[j] * x[j][k];
                }
                *value = sum;
            }
        }
    }
    output
}

/// Returns the names of [`wavelet`]'s outputs, in its order.
pub fn image_type_names(level: u32) -> Vec<String> {
    let mut names = Vec::new();
    for index in 1..=level {
        let prefix = if index == 1 {
            "wavelet".to_string()
        } else {
            format!("wavelet{index}")
        };
        for name in DECOMPOSITIONS.iter().filter(|&&name| name != "LLL") {
            names.push(format!("{prefix}-{name}"));
        }
    }
    let prefix = if level == 1 {
        "wavelet".to_string()
    } else {
        format!("wavelet{level}")
    };
    names.push(format!("{prefix}-LLL"));
    names
}

#[cfg(test)]
mod tests;
