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

use ndarray::{Array3, Axis, s};

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

/// Computes the wavelet images of `image` (see the module documentation for names
/// and order).
pub fn wavelet(image: &Volume, start_level: u32, level: u32) -> Vec<WaveletImage> {
    let low = COIF1_LOW_PASS;
    let high = high_pass(&low);
    let dims = image.geometry.dims;

    // Pad each odd axis by one voxel that wraps around to the first.
    let padded_dims = dims.map(|size| size + size % 2);
    let mut data = Array3::<f64>::zeros((padded_dims[0], padded_dims[1], padded_dims[2]));
    ndarray::Zip::indexed(&mut data).for_each(|(i, j, k), value| {
        *value = image.data[[i % dims[0], j % dims[1], k % dims[2]]];
    });

    for _ in 0..start_level {
        data = transform_axis(
            &transform_axis(&transform_axis(&data, 0, &low), 1, &low),
            2,
            &low,
        );
    }

    let mut outputs = Vec::new();
    for index in 1..=level {
        let prefix = if index == 1 {
            "wavelet".to_string()
        } else {
            format!("wavelet{index}")
        };
        let mut approximation = None;
        for (name, volume) in decompose(&data, &low, &high) {
            if name == "LLL" {
                approximation = Some(volume);
                continue;
            }
            outputs.push((format!("{prefix}-{name}"), crop(&volume, image)));
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
    outputs.push((format!("{prefix}-LLL"), crop(&data, image)));
    outputs
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

/// The 8 decompositions in PyWavelets' `swtn` order (a → L, d → H).
const DECOMPOSITIONS: [&str; 8] = ["LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"];

/// Splits `data` into its 8 decompositions along i, j, k, in [`DECOMPOSITIONS`] order.
fn decompose(data: &Array3<f64>, low: &[f64; 6], high: &[f64; 6]) -> Vec<(String, Array3<f64>)> {
    let mut bands = vec![(String::new(), data.clone())];
    for axis in 0..3 {
        let mut next = Vec::with_capacity(bands.len() * 2);
        for (name, band) in &bands {
            next.push((format!("{name}L"), transform_axis(band, axis, low)));
            next.push((format!("{name}H"), transform_axis(band, axis, high)));
        }
        bands = next;
    }
    bands
}

/// Periodic convolution of every line along `axis` with `taps`, offset by F/2 as in
/// PyWavelets' periodisation mode with step 1.
fn transform_axis(data: &Array3<f64>, axis: usize, taps: &[f64; 6]) -> Array3<f64> {
    let mut output = Array3::<f64>::zeros(data.dim());
    let length = data.len_of(Axis(axis));
    let offset = taps.len() / 2;
    for (input_lane, mut output_lane) in data
        .lanes(Axis(axis))
        .into_iter()
        .zip(output.lanes_mut(Axis(axis)))
    {
        for n in 0..length {
            let mut sum = 0.0;
            for (j, tap) in taps.iter().enumerate() {
                // (n + F/2 − j) mod N without going below zero.
                let index = (n + offset + length * taps.len() - j) % length;
                sum += tap * input_lane[index];
            }
            output_lane[n] = sum;
        }
    }
    output
}

/// Cuts the wrap padding off and attaches the original geometry.
fn crop(data: &Array3<f64>, image: &Volume) -> Volume {
    let [ni, nj, nk] = image.geometry.dims;
    Volume {
        data: data.slice(s![..ni, ..nj, ..nk]).to_owned(),
        geometry: image.geometry.clone(),
        stored_as_integer: false,
    }
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
        let outputs = wavelet(&image, 0, 1);
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
}
