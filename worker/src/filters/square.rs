//! Square image type (PyRadiomics `Square`, output name `square`).
//!
//! f(x) = (c·x)², with c = 1 / √max|x|, where max|x| is taken over every voxel of the
//! image, not only the ROI. The output lies in [0, max|x|]. Source: PyRadiomics
//! `imageoperations.getSquareImage` (pyradiomics-bhklab 3.1.4), computed in f64 as there.

use super::{FilterError, max_absolute};
use crate::image::Volume;

/// Computes the square image of `image`.
pub fn square(image: &Volume) -> Result<Volume, FilterError> {
    let maximum = max_absolute(image, "Square")?;
    let coefficient = 1.0 / maximum.sqrt();

    let mut output = image.clone();
    output.data.mapv_inplace(|x| (coefficient * x).powi(2));
    output.stored_as_integer = false;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::line_volume;

    #[test]
    fn square_scales_to_original_range() {
        // max|x| = 4, so c = 1/2: (−4/2)² = 4, (1/2)² = 0.25, (2/2)² = 1, 0 stays 0.
        let output = square(&line_volume(&[-4.0, 1.0, 2.0, 0.0])).expect("non-zero image");
        assert_eq!(
            output.data.as_slice().expect("contiguous"),
            [4.0, 0.25, 1.0, 0.0]
        );
    }

    #[test]
    fn square_zero_image_is_error() {
        let error = square(&line_volume(&[0.0, 0.0])).unwrap_err();
        assert_eq!(
            error,
            FilterError::ZeroImage {
                image_type: "Square"
            }
        );
    }
}
