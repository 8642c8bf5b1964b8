//! Resegmentation: removing ROI voxels whose intensity lies outside a range, as
//! PyRadiomics' `imageoperations.resegmentMask` does. Its `_resegmentation` (sigma) and
//! `_flatRegion` (absolute) baseline variants match in `tests/pyradiomics_parity.rs`; the
//! relative mode is checked only by the unit test below.
//!
//! The sorted bounds (a, b) become thresholds:
//!
//! - `absolute`: (a, b) in intensity units;
//! - `relative`: (a·max, b·max), max being the ROI's maximum intensity;
//! - `sigma`: (μ + a·σ, μ + b·σ), μ and σ being the ROI's mean and population standard
//!   deviation (numpy's `std`).
//!
//! A voxel stays when lower ≤ x ≤ upper (no upper bound when only one value is given).

use crate::mask::Roi;

/// Unit of the bounds of [`Resegmentation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResegmentMode {
    /// Bounds in intensity units.
    Absolute,
    /// Bounds as fractions of the ROI maximum.
    Relative,
    /// Bounds in ROI standard deviations from the ROI mean.
    Sigma,
}

/// Resegmentation settings (PyRadiomics `resegmentRange`, `resegmentMode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resegmentation {
    /// Unit of the bounds.
    pub mode: ResegmentMode,
    /// Lower bound a.
    pub lower: f64,
    /// Upper bound b ≥ a, or none.
    pub upper: Option<f64>,
}

/// Error from [`resegment`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResegmentError {
    /// At most one voxel remained.
    #[error(
        "resegmentation to [{lower}, {upper}] kept {kept} of {before} ROI voxels; at least 2 are needed, so widen resegmentRange"
    )]
    TooFewVoxels {
        /// Lower threshold in intensity units.
        lower: f64,
        /// Upper threshold in intensity units (infinity when unset).
        upper: f64,
        /// Voxels before.
        before: usize,
        /// Voxels kept.
        kept: usize,
    },
}

/// Returns the ROI without the voxels outside the thresholds. `values` are the ROI's
/// intensities (used for the relative and sigma modes), `intensities` the whole image.
pub fn resegment(
    intensities: &ndarray::Array3<f64>,
    roi: &Roi,
    values: &[f64],
    settings: &Resegmentation,
) -> Result<Roi, ResegmentError> {
    let upper = settings.upper.unwrap_or(f64::INFINITY);
    let (lower, upper) = match settings.mode {
        ResegmentMode::Absolute => (settings.lower, upper),
        ResegmentMode::Relative => {
            let maximum = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (settings.lower * maximum, upper * maximum)
        }
        ResegmentMode::Sigma => {
            let count = values.len() as f64;
            let mean = values.iter().sum::<f64>() / count;
            let sigma =
                (values.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>() / count).sqrt();
            let upper = settings.upper.map_or(f64::INFINITY, |b| mean + b * sigma);
            (mean + settings.lower * sigma, upper)
        }
    };

    let mut mask = roi.mask.clone();
    ndarray::Zip::from(&mut mask)
        .and(intensities)
        .for_each(|inside, &x| {
            if *inside && !(x >= lower && x <= upper) {
                *inside = false;
            }
        });
    let kept = mask.iter().filter(|&&inside| inside).count();
    if kept <= 1 {
        return Err(ResegmentError::TooFewVoxels {
            lower,
            upper,
            before: roi.voxel_count,
            kept,
        });
    }
    Ok(Roi {
        mask,
        voxel_count: kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn line(values: &[f64]) -> (Array3<f64>, Roi) {
        let data = Array3::from_shape_vec((values.len(), 1, 1), values.to_vec()).expect("shape");
        let roi = Roi {
            mask: data.mapv(|_| true),
            voxel_count: values.len(),
        };
        (data, roi)
    }

    fn kept(roi: &Roi) -> Vec<bool> {
        roi.mask.iter().copied().collect()
    }

    #[test]
    fn resegment_absolute_keeps_closed_range() {
        let (data, roi) = line(&[0.0, 1.0, 2.0, 3.0]);
        let settings = Resegmentation {
            mode: ResegmentMode::Absolute,
            lower: 1.0,
            upper: Some(2.0),
        };
        let values = [0.0, 1.0, 2.0, 3.0];
        let output = resegment(&data, &roi, &values, &settings).expect("two voxels stay");
        assert_eq!(kept(&output), [false, true, true, false]);
        assert_eq!(output.voxel_count, 2);
    }

    #[test]
    fn resegment_sigma_uses_population_deviation() {
        // 0, 0, 4, 4: μ = 2 and population σ = 2, so [−1, 0.9] is [0, 3.8] and keeps the two
        // zeros. A sample σ of 2.309 would give [−0.31, 4.08] and keep all four.
        let values = [0.0, 0.0, 4.0, 4.0];
        let (data, roi) = line(&values);
        let settings = Resegmentation {
            mode: ResegmentMode::Sigma,
            lower: -1.0,
            upper: Some(0.9),
        };
        let output = resegment(&data, &roi, &values, &settings).expect("two voxels stay");
        assert_eq!(kept(&output), [true, true, false, false]);
    }

    #[test]
    fn resegment_keeping_one_voxel_is_error() {
        let values = [0.0, 1.0, 9.0];
        let (data, roi) = line(&values);
        let settings = Resegmentation {
            mode: ResegmentMode::Absolute,
            lower: 5.0,
            upper: None,
        };
        assert!(matches!(
            resegment(&data, &roi, &values, &settings),
            Err(ResegmentError::TooFewVoxels {
                before: 3,
                kept: 1,
                ..
            })
        ));
    }

    #[test]
    fn resegment_relative_scales_by_maximum() {
        // max 10: [0.5] keeps x ≥ 5.
        let values = [2.0, 5.0, 10.0];
        let (data, roi) = line(&values);
        let settings = Resegmentation {
            mode: ResegmentMode::Relative,
            lower: 0.5,
            upper: None,
        };
        let output = resegment(&data, &roi, &values, &settings).expect("two voxels stay");
        assert_eq!(kept(&output), [false, true, true]);
    }
}
