//! Whole-image intensity normalisation before any ROI is taken, as PyRadiomics'
//! `imageoperations.normalizeImage` does it (its `_normalization` baseline variant matches
//! to 1e-15 relative in `tests/pyradiomics_parity.rs`):
//!
//! x' = s · clip((x − μ) / σ, −r, r)
//!
//! where μ and σ are the mean and the sample standard deviation (n − 1 denominator, as
//! SimpleITK's `Normalize`, which uses ITK's `StatisticsImageFilter`) over every voxel of
//! the image, s is `normalizeScale` and r is `removeOutliers` (no clipping when unset).

use crate::image::Volume;

/// Normalisation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    /// Scale s applied after standardisation (PyRadiomics `normalizeScale`, default 1).
    pub scale: f64,
    /// Clip bound r in standard deviations (PyRadiomics `removeOutliers`), or none.
    pub remove_outliers: Option<f64>,
}

/// Error from [`normalize`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    /// The image has one value everywhere (σ = 0) or fewer than two voxels.
    #[error(
        "image has standard deviation {0} over all voxels; it cannot be normalised, so drop `normalize`"
    )]
    Flat(f64),
    /// A voxel is NaN or infinite, so μ and σ are undefined.
    #[error("image contains NaN or infinite voxels; normalisation needs finite intensities")]
    NonFinite,
}

/// Returns a normalised copy of `image`.
pub fn normalize(image: &Volume, settings: &Normalization) -> Result<Volume, NormalizeError> {
    let count = image.data.len();
    if image.data.iter().any(|value| !value.is_finite()) {
        return Err(NormalizeError::NonFinite);
    }
    if count < 2 {
        return Err(NormalizeError::Flat(0.0));
    }
    // Two passes with compensated sums keep μ and σ accurate for 10⁷ voxels.
    let mean = kahan_sum(image.data.iter().copied()) / count as f64;
    let variance =
        kahan_sum(image.data.iter().map(|&x| (x - mean) * (x - mean))) / (count as f64 - 1.0);
    let sigma = variance.sqrt();
    if sigma.is_nan() || sigma <= 0.0 {
        return Err(NormalizeError::Flat(sigma));
    }

    let mut normalized = image.clone();
    normalized.data.mapv_inplace(|x| {
        let mut z = (x - mean) / sigma;
        if let Some(bound) = settings.remove_outliers {
            z = z.clamp(-bound, bound);
        }
        z * settings.scale
    });
    normalized.stored_as_integer = false;
    Ok(normalized)
}

fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0;
    let mut compensation = 0.0;
    for value in values {
        let y = value - compensation;
        let t = sum + y;
        compensation = (t - sum) - y;
        sum = t;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Geometry;
    use ndarray::Array3;

    fn volume(values: &[f64]) -> Volume {
        Volume {
            data: Array3::from_shape_vec((values.len(), 1, 1), values.to_vec()).expect("shape"),
            geometry: Geometry {
                dims: [values.len(), 1, 1],
                spacing: [1.0; 3],
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: true,
        }
    }

    #[test]
    fn normalize_uses_sample_standard_deviation() {
        // 1, 2, 3: μ = 2, sample σ = 1, so z = −1, 0, 1; scale 100 gives −100, 0, 100.
        let output = normalize(
            &volume(&[1.0, 2.0, 3.0]),
            &Normalization {
                scale: 100.0,
                remove_outliers: None,
            },
        )
        .expect("normalises");
        assert_eq!(
            output.data.iter().copied().collect::<Vec<_>>(),
            [-100.0, 0.0, 100.0]
        );
    }

    #[test]
    fn normalize_clips_outliers_before_scaling() {
        // 1, 2, 3 with r = 0.5: z = −1, 0, 1 clip to −0.5, 0, 0.5, times scale 2.
        let output = normalize(
            &volume(&[1.0, 2.0, 3.0]),
            &Normalization {
                scale: 2.0,
                remove_outliers: Some(0.5),
            },
        )
        .expect("normalises");
        assert_eq!(
            output.data.iter().copied().collect::<Vec<_>>(),
            [-1.0, 0.0, 1.0]
        );
    }

    #[test]
    fn normalize_flat_image_is_error() {
        let settings = Normalization {
            scale: 1.0,
            remove_outliers: None,
        };
        assert_eq!(
            normalize(&volume(&[4.0, 4.0]), &settings).unwrap_err(),
            NormalizeError::Flat(0.0)
        );
    }
}
