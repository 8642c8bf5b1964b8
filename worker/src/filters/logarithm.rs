//! Logarithm image type (PyRadiomics `Logarithm`, output name `logarithm`).
//!
//! g(x) = ln(x + 1) for x > 0, −ln(1 − x) for x < 0 and 0 for x = 0, then
//! f(x) = g(x) · max|x| / max|g(x)|, both maxima over every voxel of the image, so that
//! the output keeps the sign of x and lies in [−max|x|, max|x|].
//! Source: PyRadiomics `imageoperations.getLogarithmImage` (pyradiomics-bhklab 3.1.4).

use super::{FilterError, max_absolute};
use crate::image::Volume;

/// Computes the logarithm image of `image`.
pub fn logarithm(image: &Volume) -> Result<Volume, FilterError> {
    let maximum = max_absolute(image, "Logarithm")?;

    let mut output = image.clone();
    output.data.mapv_inplace(|x| {
        if x > 0.0 {
            (x + 1.0).ln()
        } else if x < 0.0 {
            -(1.0 - x).ln()
        } else {
            x
        }
    });

    // max|g| > 0 because max|x| > 0 and g is strictly monotonic with g(0) = 0.
    let log_maximum = max_absolute(&output, "Logarithm")?;
    let scale = maximum / log_maximum;
    output.data.mapv_inplace(|g| g * scale);
    output.stored_as_integer = false;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::line_volume;

    #[test]
    fn logarithm_rescales_to_original_maximum() {
        // max|x| = e − 1, g(e − 1) = 1, so the scale is e − 1 and f(e − 1) = e − 1;
        // f(−(e − 1)) = −(e − 1) by symmetry.
        let e_minus_one = std::f64::consts::E - 1.0;
        let output =
            logarithm(&line_volume(&[e_minus_one, -e_minus_one, 0.0])).expect("non-zero image");
        let values = output.data.as_slice().expect("contiguous");
        assert!((values[0] - e_minus_one).abs() < 1e-15, "{values:?}");
        assert!((values[1] + e_minus_one).abs() < 1e-15, "{values:?}");
        assert_eq!(values[2], 0.0);
    }
}
