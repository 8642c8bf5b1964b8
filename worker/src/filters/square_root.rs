//! SquareRoot image type (PyRadiomics `SquareRoot`, output name `squareroot`).
//!
//! f(x) = √(c·x) for x ≥ 0 and −√(−c·x) for x < 0, with c = max|x| over every voxel of
//! the image, so that the output keeps the sign of x and lies in [−max|x|, max|x|].
//! Source: PyRadiomics `imageoperations.getSquareRootImage` (pyradiomics-bhklab 3.1.4).

use super::{FilterError, max_absolute};
use crate::image::Volume;

/// Computes the square root image of `image`.
pub fn square_root(image: &Volume) -> Result<Volume, FilterError> {
    let coefficient = max_absolute(image, "SquareRoot")?;

    let mut output = image.clone();
    output.data.mapv_inplace(|x| {
        if x >= 0.0 {
            (x * coefficient).sqrt()
        } else {
            -(-x * coefficient).sqrt()
        }
    });
    output.stored_as_integer = false;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::line_volume;

    #[test]
    fn square_root_keeps_sign() {
        // c = 4: √(4·4) = 4, −√(4·1) = −2, √0 = 0.
        let output = square_root(&line_volume(&[4.0, -1.0, 0.0])).expect("non-zero image");
        assert_eq!(
            output.data.as_slice().expect("contiguous"),
            [4.0, -2.0, 0.0]
        );
    }
}
