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

use ndarray::{Array3, ArrayView3, s};

use super::region::{MemoryOrder, VoxelBox, split_shape};
use crate::image::Volume;

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

/// Returns the high-pass taps of an orthogonal wavelet from its low-pass taps
/// (quadrature mirror): h_hi[j] = (−1)^(j+1) · h_lo[F − 1 − j].
fn high_pass(low: &[f64; 6]) -> [f64; 6] {
    std::array::from_fn(|j| {
        let sign = if j % 2 == 0 { -1.0 } else { 1.0 };
        sign * low[low.len() - 1 - j]
    })
}

/// One wavelet output: its PyRadiomics image type name and the image.
pub type WaveletImage = (String, Volume);

/// Computes the wavelet images of `image` on the voxels of `region` (see the module
/// documentation for names and order).
///
/// One level's output at voxel n along an axis reads the input at n − 2 to n + 3. After
/// T levels, the outputs in `region` therefore read `region` widened by 2T voxels before
/// and 3T after, on the periodic (wrapped) padded image. Only that widened box is gathered
/// and transformed, with the same taps in the same order as on the whole image, so the
/// values in `region` equal those of the whole-image transform bit for bit.
// NOTE: PyWavelets keeps float32 input in float32, so PyRadiomics transforms a float32
// image (such as the STS MR NIfTI files) in single precision, while this runs in f64.
// The bands then differ by about 1e-7 relative, enough to move voxels across bin edges:
// on the 49 STS MR lesions up to 1,008 of 4,557 values per band differ by more than 1e-6.
pub fn wavelet(
    image: &Volume,
    start_level: u32,
    level: u32,
    region: &VoxelBox,
) -> Vec<WaveletImage> {
    let low = COIF1_LOW_PASS;
    let high = high_pass(&low);
    let levels = (start_level + level) as usize;
    let input = MemoryOrder::of(image.data.view());
    let mut data = gather_periodic(&input, image.geometry.dims, region, levels);

    for _ in 0..start_level {
        for axis in 0..3 {
            data = convolve_axis(data.view(), input.position(axis), &low);
        }
    }

    // Cuts `region` out of a band of level `done` (levels transformed so far).
    let crop = |band: &Array3<f64>, done: usize| -> Volume {
        let first = 2 * (levels - done);
        let [n0, n1, n2] = input.permute(region.dims());
        let inside = band.slice(s![first..first + n0, first..first + n1, first..first + n2]);
        Volume {
            data: input.to_image_axes(inside.to_owned()),
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
        for (name, band) in decompose(&data, &input, &low, &high) {
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

/// Copies `region` widened by 2 · `levels` voxels before and 3 · `levels` after along
/// each axis, in memory order, from the image padded to even sizes and repeated
/// periodically. The padding voxel of an odd axis repeats the axis's first voxel, as
/// PyRadiomics' `numpy.pad(mode='wrap')` does.
fn gather_periodic(
    input: &MemoryOrder,
    dims: [usize; 3],
    region: &VoxelBox,
    levels: usize,
) -> Array3<f64> {
    let indices: [Vec<usize>; 3] = std::array::from_fn(|axis| {
        let padded = (dims[axis] + dims[axis] % 2) as isize;
        let from = region.from[axis] as isize - 2 * levels as isize;
        let to = (region.to[axis] + 3 * levels) as isize;
        (from..to)
            .map(|position| position.rem_euclid(padded) as usize % dims[axis])
            .collect()
    });
    let [first, second, third] = input.permute([&indices[0], &indices[1], &indices[2]]);
    let mut gathered = Array3::<f64>::zeros((first.len(), second.len(), third.len()));
    for (a, &p) in first.iter().enumerate() {
        for (b, &q) in second.iter().enumerate() {
            let source = input.data.slice(s![p, q, ..]);
            let mut target = gathered.slice_mut(s![a, b, ..]);
            for (value, &r) in target.iter_mut().zip(third.iter()) {
                *value = source[r];
            }
        }
    }
    gathered
}

/// The 8 decompositions in PyWavelets' `swtn` order (a → L, d → H).
const DECOMPOSITIONS: [&str; 8] = ["LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"];

/// Splits `data` (in the memory order of `input`) into its 8 decompositions along i, j,
/// k, in [`DECOMPOSITIONS`] order. Each band is 5 voxels shorter along every axis.
fn decompose(
    data: &Array3<f64>,
    input: &MemoryOrder,
    low: &[f64; 6],
    high: &[f64; 6],
) -> Vec<(String, Array3<f64>)> {
    let mut bands = vec![(String::new(), data.clone())];
    for axis in 0..3 {
        let position = input.position(axis);
        let mut next = Vec::with_capacity(bands.len() * 2);
        for (name, band) in &bands {
            next.push((
                format!("{name}L"),
                convolve_axis(band.view(), position, low),
            ));
            next.push((
                format!("{name}H"),
                convolve_axis(band.view(), position, high),
            ));
        }
        bands = next;
    }
    bands
}

/// Convolves every line of a C-order array along `axis` with `taps`, keeping the outputs
/// whose taps all fall inside the line: output t is Σ_j taps[j] · x[t + 5 − j], so the
/// line gets 5 voxels shorter. On a periodically extended line this is PyWavelets'
/// periodisation convolution with step 1, (n + F/2 − j) mod N, shifted by 2 voxels.
fn convolve_axis(data: ArrayView3<f64>, axis: usize, taps: &[f64; 6]) -> Array3<f64> {
    let data = data.as_standard_layout();
    let shape: [usize; 3] = std::array::from_fn(|index| data.shape()[index]);
    let (outer, length, inner) = split_shape(shape, axis);
    let output_length = length - (taps.len() - 1);
    let mut output_shape = shape;
    output_shape[axis] = output_length;
    let mut output = Array3::<f64>::zeros(output_shape);
    let (Some(source), Some(target)) = (data.as_slice(), output.as_slice_mut()) else {
        unreachable!("both arrays are in C order");
    };

    for block in 0..outer {
        let lines = &source[block * length * inner..(block + 1) * length * inner];
        let outputs =
            &mut target[block * output_length * inner..(block + 1) * output_length * inner];
        if inner == 1 {
            // One contiguous line: window t is x[t..t + 6], so x[t + 5 − j] = window[5 − j].
            for (value, window) in outputs.iter_mut().zip(lines.windows(taps.len())) {
                let mut sum = 0.0;
                sum += taps[0] * window[5];
                sum += taps[1] * window[4];
                sum += taps[2] * window[3];
                sum += taps[3] * window[2];
                sum += taps[4] * window[1];
                sum += taps[5] * window[0];
                *value = sum;
            }
            continue;
        }
        for (t, row) in outputs.chunks_exact_mut(inner).enumerate() {
            // Input rows t + 5, t + 4, …, t for taps 0 to 5; the sum adds the taps in
            // order starting from 0, as the periodic convolution does.
            let x: [&[f64]; 6] =
                std::array::from_fn(|j| &lines[(t + 5 - j) * inner..(t + 6 - j) * inner]);
            for (k, value) in row.iter_mut().enumerate() {
                let mut sum = 0.0;
                sum += taps[0] * x[0][k];
                sum += taps[1] * x[1][k];
                sum += taps[2] * x[2][k];
                sum += taps[3] * x[3][k];
                sum += taps[4] * x[4][k];
                sum += taps[5] * x[5][k];
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
mod tests {
    use super::*;

    #[test]
    fn coif1_high_pass_matches_pywavelets() {
        // pywt.Wavelet('coif1').dec_hi, PyWavelets 1.9.0.
        let expected = [
            0.07273261951252645,
            0.3378976624574818,
            -0.8525720202116004,
            0.3848648468648578,
            0.07273261951252645,
            -0.015655728135791993,
        ];
        assert_eq!(high_pass(&COIF1_LOW_PASS), expected);
    }

    #[test]
    fn wavelet_constant_image_has_no_detail() {
        // The low-pass taps sum to √2 and the high-pass taps to 0, so a constant c gives
        // LLL = c·(√2)³ and zero in every detail band.
        let image = crate::filters::tests::line_volume(&[3.0; 5]);
        let outputs = wavelet(&image, 0, 1, &VoxelBox::whole([5, 1, 1]));
        let names: Vec<&str> = outputs.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, image_type_names(1));
        for (name, volume) in &outputs {
            let expected = if name == "wavelet-LLL" {
                3.0 * 2f64.sqrt().powi(3)
            } else {
                0.0
            };
            for value in volume.data.iter() {
                assert!((value - expected).abs() < 1e-12, "{name}: {value}");
            }
        }
    }

    /// Computes the wavelet images of the whole image the direct way: pad each odd axis,
    /// transform the whole padded image with periodic convolutions, and cut the padding
    /// off. This is the reference for the box version.
    fn whole_image_reference(image: &Volume, start_level: u32, level: u32) -> Vec<Array3<f64>> {
        let low = COIF1_LOW_PASS;
        let high = high_pass(&low);
        let dims = image.geometry.dims;
        let padded_dims = dims.map(|size| size + size % 2);
        let mut data = Array3::<f64>::zeros((padded_dims[0], padded_dims[1], padded_dims[2]));
        ndarray::Zip::indexed(&mut data).for_each(|(i, j, k), value| {
            *value = image.data[[i % dims[0], j % dims[1], k % dims[2]]];
        });

        let periodic = |data: &Array3<f64>, axis: usize, taps: &[f64; 6]| {
            let mut output = Array3::<f64>::zeros(data.dim());
            let length = data.len_of(ndarray::Axis(axis));
            for (input, mut lane) in data
                .lanes(ndarray::Axis(axis))
                .into_iter()
                .zip(output.lanes_mut(ndarray::Axis(axis)))
            {
                for n in 0..length {
                    let mut sum = 0.0;
                    for (j, tap) in taps.iter().enumerate() {
                        sum += tap * input[(n + 3 + 6 * length - j) % length];
                    }
                    lane[n] = sum;
                }
            }
            output
        };
        for _ in 0..start_level {
            for axis in 0..3 {
                data = periodic(&data, axis, &low);
            }
        }

        let mut outputs = Vec::new();
        for _ in 0..level {
            let mut bands = vec![data.clone()];
            for axis in 0..3 {
                bands = bands
                    .iter()
                    .flat_map(|band| [periodic(band, axis, &low), periodic(band, axis, &high)])
                    .collect();
            }
            data = bands.remove(0);
            outputs.extend(bands);
        }
        outputs.push(data);

        outputs
            .into_iter()
            .map(|band| band.slice(s![..dims[0], ..dims[1], ..dims[2]]).to_owned())
            .collect()
    }

    #[test]
    fn wavelet_in_box_equals_whole_image_transform() {
        // The box version reads the same wrapped input voxels with the same taps in the
        // same order, so its values must be bit-identical to the crop of the whole-image
        // transform. Cases: odd and even axes, a Fortran-order image, boxes that touch
        // the image edges (the widened box wraps around), an axis shorter than the
        // widened box, and two levels after one start level.
        use ndarray::ShapeBuilder;
        let values = |(i, j, k): (usize, usize, usize)| {
            ((i * 7 + j * 13 + k * 29) % 31) as f64 * 10.0 - 100.0 + (i * j) as f64
        };
        let geometry = |dims: [usize; 3]| crate::image::Geometry {
            dims,
            spacing: [0.8, 0.8, 3.0],
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        };
        let cases = [
            ([15, 12, 5], [3, 0, 1], [9, 12, 4], 0, 1, true),
            ([15, 12, 5], [0, 5, 0], [15, 6, 5], 0, 1, false),
            ([16, 9, 7], [14, 2, 2], [16, 8, 3], 1, 2, true),
        ];
        for (dims, from, to, start_level, level, fortran) in cases {
            let shape = (dims[0], dims[1], dims[2]);
            let data = if fortran {
                Array3::from_shape_fn(shape.f(), values)
            } else {
                Array3::from_shape_fn(shape, values)
            };
            let image = Volume {
                data,
                geometry: geometry(dims),
                stored_as_integer: false,
            };
            let region = VoxelBox { from, to };
            let outputs = wavelet(&image, start_level, level, &region);
            let reference = whole_image_reference(&image, start_level, level);
            assert_eq!(outputs.len(), reference.len());
            for ((name, volume), expected) in outputs.iter().zip(&reference) {
                let expected = expected.slice(s![from[0]..to[0], from[1]..to[1], from[2]..to[2]]);
                assert_eq!(volume.geometry, region.geometry(&image.geometry), "{name}");
                assert_eq!(
                    volume.data, expected,
                    "{name}, dims {dims:?}, box {from:?}..{to:?}"
                );
            }
        }
    }
}
