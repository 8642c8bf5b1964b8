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
fn coif1_float32_taps_match_pywavelets() {
    // Bit patterns of the impulse responses of pywt.swt(level=1) on a float32 unit
    // impulse (PyWavelets 1.9.0), low pass then high pass, tap 0 first.
    let low_bits = [
        0xbc80_4071,
        0xbd94_f4d7,
        0x3ec5_0d01,
        0x3f5a_4228,
        0x3ead_00ec,
        0xbd94_f4d7,
    ];
    let high_bits = [
        0x3d94_f4d7,
        0x3ead_00ec,
        0xbf5a_4228,
        0x3ec5_0d01,
        0x3d94_f4d7,
        0xbc80_4071,
    ];
    assert_eq!(COIF1_LOW_PASS_F32.map(f32::to_bits), low_bits);
    assert_eq!(high_pass(&COIF1_LOW_PASS_F32).map(f32::to_bits), high_bits);
}

#[test]
fn tap_order_wraps_last_two_outputs() {
    assert_eq!(tap_order(0, 8), [0, 1, 2, 3, 4, 5]);
    assert_eq!(tap_order(5, 8), [0, 1, 2, 3, 4, 5]);
    assert_eq!(tap_order(6, 8), [1, 0, 2, 3, 4, 5]);
    assert_eq!(tap_order(7, 8), [2, 1, 0, 3, 4, 5]);
    // A padded axis of 2 voxels: both outputs run past the end.
    assert_eq!(tap_order(0, 2), [1, 0, 2, 3, 4, 5]);
    assert_eq!(tap_order(1, 2), [2, 1, 0, 3, 4, 5]);
}

#[test]
fn convolve_float32_line_matches_pywavelets() {
    // x and the low-pass band of pywt.swt(x, 'coif1', level=1) for float32 x
    // (PyWavelets 1.9.0, numpy 2.4), compared bit for bit. Output 7 is
    // 417.67105 if the products are added from tap 0, one f32 unit in the last place
    // away, so this checks the wrap-around order of `tap_order` too.
    let x: [f32; 8] = [-831.7, -623.9, 205.4, 493.0, -176.4, -205.9, 702.5, 519.9];
    let expected: [f32; 8] = [
        -847.2806, -804.8071, 230.58752, 471.18738, -137.2272, -25.432144, 812.53925, 417.67102,
    ];
    // The whole line, wrapped: 2 voxels before and 3 after, so output t is voxel t.
    let gathered: Vec<f32> = (0..13).map(|p| x[(p + 6) % 8]).collect();
    let data = Array3::from_shape_vec((1, 1, 13), gathered).expect("13 values");
    let line = Line {
        axis: 2,
        period: 8,
        first: 6,
    };
    let output = convolve_axis(data.view(), line, &COIF1_LOW_PASS_F32);
    let output: Vec<u32> = output.iter().map(|value| value.to_bits()).collect();
    assert_eq!(output, expected.map(f32::to_bits));
}

#[test]
fn wavelet_constant_image_has_no_detail() {
    // The low-pass taps sum to √2 and the high-pass taps to 0, so a constant c gives
    // LLL = c·(√2)³ and zero in every detail band. The f64 sums carry rounding errors
    // of about 1e-15, far below the 1e-12 tolerance.
    let image = crate::filters::tests::line_volume(&[3.0; 5]);
    let outputs = wavelet(&image, Precision::Double, 0, 1, &VoxelBox::whole([5, 1, 1]));
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

/// Periodic convolution of every line of `data` along `axis`, written as PyWavelets
/// states it: output n = Σ taps[j] · x[(n + 3 − j) mod N], adding the products in
/// [`tap_order`].
fn periodic<T: Sample>(data: &Array3<T>, axis: usize, taps: &[T; 6]) -> Array3<T> {
    let mut output = Array3::<T>::default(data.dim());
    let length = data.len_of(ndarray::Axis(axis));
    for (input, mut lane) in data
        .lanes(ndarray::Axis(axis))
        .into_iter()
        .zip(output.lanes_mut(ndarray::Axis(axis)))
    {
        for n in 0..length {
            let mut sum = T::default();
            for j in tap_order(n, length) {
                sum = sum + taps[j] * input[(n + 3 + 6 * length - j) % length];
            }
            lane[n] = sum;
        }
    }
    output
}

/// Computes the wavelet images of the whole image the direct way: pad each odd axis,
/// transform the whole padded image with periodic convolutions in the precision of
/// `T`, and cut the padding off. This is the reference for the box version.
fn whole_image_reference<T: Sample>(
    image: &Volume,
    low: [T; 6],
    start_level: u32,
    level: u32,
) -> Vec<Array3<f64>> {
    let high = high_pass(&low);
    let dims = image.geometry.dims;
    let padded_dims = dims.map(|size| size + size % 2);
    let mut data = Array3::<T>::default((padded_dims[0], padded_dims[1], padded_dims[2]));
    ndarray::Zip::indexed(&mut data).for_each(|(i, j, k), value| {
        *value = T::from_f64(image.data[[i % dims[0], j % dims[1], k % dims[2]]]);
    });

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
        .map(|band| {
            band.slice(s![..dims[0], ..dims[1], ..dims[2]])
                .mapv(T::to_f64)
        })
        .collect()
}

#[test]
fn wavelet_in_box_equals_whole_image_transform() {
    // The box version reads the same wrapped input voxels with the same taps in the
    // same order, so its values must be bit-identical to the crop of the whole-image
    // transform, in both precisions. Cases: odd and even axes, a Fortran-order image,
    // and boxes that touch the image edges. There the widened box wraps around, and
    // the last two voxels of a padded axis add their products in the wrapped order.
    // Also an axis shorter than the widened box, an axis of 1 voxel, and two levels
    // after one start level. The values have fractions so that f32 sums round.
    use ndarray::ShapeBuilder;
    let values = |(i, j, k): (usize, usize, usize)| {
        ((i * 7 + j * 13 + k * 29) % 31) as f64 * 10.3 - 100.0 + (i * j) as f64 / 3.0
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
        ([10, 1, 6], [6, 0, 4], [10, 1, 6], 0, 1, false),
    ];
    for precision in [Precision::Single, Precision::Double] {
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
            let outputs = wavelet(&image, precision, start_level, level, &region);
            let reference = match precision {
                Precision::Single => {
                    whole_image_reference(&image, COIF1_LOW_PASS_F32, start_level, level)
                }
                Precision::Double => {
                    whole_image_reference(&image, COIF1_LOW_PASS, start_level, level)
                }
            };
            assert_eq!(outputs.len(), reference.len());
            for ((name, volume), expected) in outputs.iter().zip(&reference) {
                let expected = expected.slice(s![from[0]..to[0], from[1]..to[1], from[2]..to[2]]);
                assert_eq!(volume.geometry, region.geometry(&image.geometry), "{name}");
                assert_eq!(
                    volume.data, expected,
                    "{name}, {precision:?}, dims {dims:?}, box {from:?}..{to:?}"
                );
            }
        }
    }
}

#[test]
fn wavelet_single_precision_bands_are_float32_values() {
    // Each band of the float32 path is an f32 widened to f64, as PyRadiomics' float32
    // SimpleITK band images are, and differs from the f64 path.
    let image = crate::filters::tests::line_volume(&[1.1, 2.7, -3.3, 4.9, 0.25, 7.0]);
    let region = VoxelBox::whole([6, 1, 1]);
    let single = wavelet(&image, Precision::Single, 0, 1, &region);
    let double = wavelet(&image, Precision::Double, 0, 1, &region);
    for ((name, volume), (_, reference)) in single.iter().zip(&double) {
        for value in volume.data.iter() {
            assert_eq!(f64::from(*value as f32), *value, "{name}");
        }
        if name == "wavelet-LLL" {
            assert_ne!(volume.data, reference.data, "{name}");
        }
    }
}

#[test]
fn precision_follows_pixel_type() {
    assert_eq!(Precision::of(PixelType::Float32), Precision::Single);
    assert_eq!(Precision::of(PixelType::Float64), Precision::Double);
    assert_eq!(Precision::of(PixelType::Integer), Precision::Double);
}
