//! Exponential image type (PyRadiomics `Exponential`, output name `exponential`).
//!
//! f(x) = exp(c·x), with c = ln(max|x|) / max|x| and max|x| over every voxel of the
//! image, so that f(max|x|) = max|x|. Source: PyRadiomics
//! `imageoperations.getExponentialImage` (pyradiomics-bhklab 3.1.4).

use super::{FilterError, max_absolute};
use crate::image::Volume;

/// Computes the exponential image of `image`.
pub fn exponential(image: &Volume) -> Result<Volume, FilterError> {
    let maximum = max_absolute(image, "Exponential")?;
    let coefficient = maximum.ln() / maximum;

    let mut output = image.clone();
    output.data.mapv_inplace(|x| (coefficient * x).exp());
    output.stored_as_integer = false;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::line_volume;

    #[test]
    fn exponential_maps_maximum_to_itself() {
        // max|x| = 8: f(8) = exp(ln 8) = 8, f(0) = 1, f(−8) = 1/8.
        let output = exponential(&line_volume(&[8.0, 0.0, -8.0])).expect("non-zero image");
        let values = output.data.as_slice().expect("contiguous");
        assert!((values[0] - 8.0).abs() < 1e-14, "{values:?}");
        assert_eq!(values[1], 1.0);
        assert!((values[2] - 0.125).abs() < 1e-15, "{values:?}");
    }
}
