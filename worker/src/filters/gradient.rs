//! Gradient image type (PyRadiomics `Gradient`, output name `gradient`).
//!
//! f = √(Σ_d (∂x/∂d)²) over the three voxel axes d, with the central difference
//! ∂x/∂d = (x[n + 1] − x[n − 1]) / (2·s_d). s_d is the voxel spacing along d in mm when
//! `gradientUseSpacing` is true (PyRadiomics' default) and 1 otherwise. A neighbour
//! outside the image takes the value of the edge voxel (zero-flux Neumann boundary), so an
//! edge voxel gets (x[n + 1] − x[n]) / (2·s_d).
//!
//! Source: PyRadiomics `imageoperations.getGradientImage`, which runs SimpleITK's
//! `GradientMagnitudeImageFilter`. SimpleITK 2.5 returns float32 for every input pixel
//! type, so each output value is rounded to f32, as there; the sums are in f64.

use ndarray::{Array3, Zip};

use super::round_to_f32;
use crate::image::Volume;

/// Computes the gradient magnitude image of `image`.
pub fn gradient(image: &Volume, use_spacing: bool) -> Volume {
    let data = &image.data;
    let (ni, nj, nk) = data.dim();
    let scale = if use_spacing {
        image.geometry.spacing.map(|s| 1.0 / (2.0 * s))
    } else {
        [0.5; 3]
    };

    let mut magnitude = Array3::<f64>::zeros((ni, nj, nk));
    Zip::indexed(&mut magnitude).for_each(|(i, j, k), value| {
        let di = (data[[(i + 1).min(ni - 1), j, k]] - data[[i.saturating_sub(1), j, k]]) * scale[0];
        let dj = (data[[i, (j + 1).min(nj - 1), k]] - data[[i, j.saturating_sub(1), k]]) * scale[1];
        let dk = (data[[i, j, (k + 1).min(nk - 1)]] - data[[i, j, k.saturating_sub(1)]]) * scale[2];
        *value = round_to_f32((di * di + dj * dj + dk * dk).sqrt());
    });

    Volume {
        data: magnitude,
        geometry: image.geometry.clone(),
        stored_as_integer: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::line_volume;

    #[test]
    fn gradient_central_difference_with_spacing() {
        // Line 0, 2, 6 with spacing 2 mm along i: edges (2 − 0)/4 = 0.5 and (6 − 2)/4 = 1,
        // centre (6 − 0)/4 = 1.5.
        let mut volume = line_volume(&[0.0, 2.0, 6.0]);
        volume.geometry.spacing = [2.0, 1.0, 1.0];
        let output = gradient(&volume, true);
        assert_eq!(output.data.as_slice().expect("contiguous"), [0.5, 1.5, 1.0]);
        let unscaled = gradient(&volume, false);
        assert_eq!(
            unscaled.data.as_slice().expect("contiguous"),
            [1.0, 3.0, 2.0]
        );
    }
}
