//! The IBSI image processing chain of the IBSI mode, in the order of the IBSI reference
//! manual (chapter 2, "Image processing"):
//!
//! 1. optionally, round the intensities to the nearest integer (CT numbers are whole HU);
//! 2. optionally, interpolate the whole image to a new voxel spacing on the IBSI grid
//!    ([`crate::image::ibsi_resample`]), and round the interpolated intensities again when
//!    step 1 is on. The ROI mask is interpolated on the same grid, by nearest neighbour or
//!    trilinearly, and then a voxel belongs to the ROI when its interpolated mask value is
//!    at least the partial volume threshold δ (IBSI: R_j = 1 when R_interp,j ≥ δ);
//! 3. the interpolated ROI becomes both the morphological mask and the intensity mask;
//! 4. range re-segmentation removes intensity-mask voxels outside the re-segmentation
//!    range. Then outlier filtering removes those outside μ ± kσ, where μ and σ are the
//!    mean and population standard deviation of the intensity mask after the range step.
//!
//! Rounding is half to even, as numpy's `round`.

use ndarray::Array3;

use super::IbsiError;
use crate::features::resegment::{ResegmentMode, Resegmentation, resegment};
use crate::image::Volume;
use crate::image::ibsi_resample::{
    GridAlignment, IbsiInterpolator, ibsi_grid, interpolate, interpolate_volume,
};
use crate::mask::Roi;

/// Steps of the chain before the features; the default does nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessingSettings {
    /// Round intensities to the nearest integer on input and after interpolation.
    pub round_intensities: bool,
    /// Interpolation to a new voxel spacing, or none.
    pub interpolation: Option<InterpolationSettings>,
    /// Outlier filter half-width k in standard deviations, or none.
    pub outlier_sigma: Option<f64>,
}

/// Interpolation of the image and the ROI mask.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpolationSettings {
    /// New voxel size in mm per axis; 0 keeps an axis's spacing.
    pub spacing: [f64; 3],
    /// Placement of the new grid.
    pub alignment: GridAlignment,
    /// Image interpolator.
    pub image: IbsiInterpolator,
    /// Mask interpolator: nearest neighbour or trilinear.
    pub mask: IbsiInterpolator,
    /// Partial volume threshold δ in (0, 1] for a trilinearly interpolated mask.
    pub partial_volume: f64,
}

/// Intensity summary of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// Voxel size in mm.
    pub spacing: [f64; 3],
    /// Mean intensity.
    pub mean: f64,
    /// Minimum intensity.
    pub minimum: f64,
    /// Maximum intensity.
    pub maximum: f64,
}

/// Summary of a mask and the intensities under it.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskSummary {
    /// Number of voxels.
    pub voxel_count: usize,
    /// Bounding box size in voxels along i, j, k.
    pub bounding_box: [usize; 3],
    /// Mean intensity in the mask.
    pub mean: f64,
    /// Minimum intensity in the mask.
    pub minimum: f64,
    /// Maximum intensity in the mask.
    pub maximum: f64,
}

/// Summaries after each step, for comparison with IBSI's diagnostic values.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// The input image, after rounding.
    pub initial_image: ImageSummary,
    /// The input ROI.
    pub initial_roi: MaskSummary,
    /// The image after interpolation (the input image without interpolation).
    pub interpolated_image: ImageSummary,
    /// The ROI after interpolation.
    pub interpolated_roi: MaskSummary,
    /// The intensity mask after re-segmentation and outlier filtering.
    pub intensity_mask: MaskSummary,
    /// The morphological mask.
    pub morphological_mask: MaskSummary,
}

/// The image and both masks after the chain.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The processed image.
    pub image: Volume,
    /// The morphological mask: the ROI after interpolation, not re-segmented.
    pub morphological: Roi,
    /// The intensity mask: re-segmented and outlier-filtered.
    pub intensity: Roi,
    /// Summaries after each step.
    pub diagnostics: Diagnostics,
}

/// Runs the chain on an image and its ROI (on the image grid). `range` is the
/// re-segmentation of the parameter file; its sigma mode measures μ and σ on the
/// interpolated ROI.
pub fn process(
    image: &Volume,
    roi: &Roi,
    range: Option<&Resegmentation>,
    settings: &ProcessingSettings,
) -> Result<Processed, IbsiError> {
    let mask_dims: [usize; 3] = roi.mask.dim().into();
    if mask_dims != image.geometry.dims {
        return Err(IbsiError::ShapeMismatch {
            image: image.geometry.dims,
            mask: mask_dims,
        });
    }
    let round = |value: f64| {
        if settings.round_intensities {
            value.round_ties_even()
        } else {
            value
        }
    };
    let initial = Volume {
        data: image.data.mapv(round),
        geometry: image.geometry.clone(),
        stored_as_integer: image.stored_as_integer,
    };
    let initial_image = summarise_image(&initial);
    let initial_roi = summarise_mask(&initial, &roi.mask);

    let (interpolated, interpolated_roi) = match &settings.interpolation {
        None => (initial, roi.clone()),
        Some(interpolation) => interpolate_image_and_mask(&initial, roi, interpolation, round)?,
    };
    if interpolated_roi.voxel_count == 0 {
        return Err(IbsiError::EmptyRoi);
    }

    let mut intensity = interpolated_roi.clone();
    if let Some(range) = range {
        let values = roi_values(&interpolated.data, &intensity.mask);
        intensity = resegment(&interpolated.data, &intensity, &values, range)?;
    }
    if let Some(sigma) = settings.outlier_sigma {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(IbsiError::InvalidSetting {
                field: "outlier_sigma",
                value: sigma,
                reason: "it must be a finite number > 0",
            });
        }
        let values = roi_values(&interpolated.data, &intensity.mask);
        let filter = Resegmentation {
            mode: ResegmentMode::Sigma,
            lower: -sigma,
            upper: Some(sigma),
        };
        intensity = resegment(&interpolated.data, &intensity, &values, &filter)?;
    }

    let diagnostics = Diagnostics {
        initial_image,
        initial_roi,
        interpolated_image: summarise_image(&interpolated),
        interpolated_roi: summarise_mask(&interpolated, &interpolated_roi.mask),
        intensity_mask: summarise_mask(&interpolated, &intensity.mask),
        morphological_mask: summarise_mask(&interpolated, &interpolated_roi.mask),
    };
    Ok(Processed {
        image: interpolated,
        morphological: interpolated_roi,
        intensity,
        diagnostics,
    })
}

/// Interpolates the image (rounding with `round`) and the ROI mask onto the IBSI grid.
fn interpolate_image_and_mask(
    image: &Volume,
    roi: &Roi,
    settings: &InterpolationSettings,
    round: impl Fn(f64) -> f64,
) -> Result<(Volume, Roi), IbsiError> {
    let threshold = settings.partial_volume;
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(IbsiError::InvalidSetting {
            field: "partial_volume",
            value: threshold,
            reason: "it must lie in (0, 1]",
        });
    }
    if settings.mask == IbsiInterpolator::TricubicSpline {
        return Err(IbsiError::SplineMask);
    }
    let grid = ibsi_grid(&image.geometry, settings.spacing, settings.alignment).map_err(|_| {
        IbsiError::InvalidSetting {
            field: "spacing",
            value: settings
                .spacing
                .iter()
                .copied()
                .find(|mm| !(mm.is_finite() && *mm >= 0.0))
                .unwrap_or(f64::NAN),
            reason: "each spacing must be a finite number > 0, or 0 to keep the axis",
        }
    })?;

    let mut interpolated = interpolate_volume(image, &grid, settings.image);
    interpolated.data.mapv_inplace(round);

    let fractions = interpolate(
        &roi.mask.mapv(|inside| if inside { 1.0 } else { 0.0 }),
        &grid,
        settings.mask,
    );
    // Interpolation weights such as 1/3 + 1/6 miss 0.5 by a rounding error, so the
    // comparison allows 1e-9 below δ.
    let mask = fractions.mapv(|fraction| fraction >= threshold - 1e-9);
    let voxel_count = mask.iter().filter(|&&inside| inside).count();
    Ok((interpolated, Roi { mask, voxel_count }))
}

/// Returns the intensities under `mask`.
fn roi_values(data: &Array3<f64>, mask: &Array3<bool>) -> Vec<f64> {
    data.iter()
        .zip(mask)
        .filter(|(_, inside)| **inside)
        .map(|(value, _)| *value)
        .collect()
}

fn summarise_image(image: &Volume) -> ImageSummary {
    let count = image.data.len().max(1) as f64;
    ImageSummary {
        dims: image.geometry.dims,
        spacing: image.geometry.spacing,
        mean: image.data.sum() / count,
        minimum: image.data.iter().copied().fold(f64::INFINITY, f64::min),
        maximum: image.data.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

fn summarise_mask(image: &Volume, mask: &Array3<bool>) -> MaskSummary {
    let mut lower = [usize::MAX; 3];
    let mut upper = [0; 3];
    let mut count = 0;
    let mut sum = 0.0;
    let mut minimum = f64::INFINITY;
    let mut maximum = f64::NEG_INFINITY;
    for ((i, j, k), &inside) in mask.indexed_iter() {
        if !inside {
            continue;
        }
        let value = image.data[[i, j, k]];
        count += 1;
        sum += value;
        minimum = minimum.min(value);
        maximum = maximum.max(value);
        for (axis, index) in [i, j, k].into_iter().enumerate() {
            lower[axis] = lower[axis].min(index);
            upper[axis] = upper[axis].max(index);
        }
    }
    let bounding_box = if count == 0 {
        [0; 3]
    } else {
        std::array::from_fn(|axis| upper[axis] - lower[axis] + 1)
    };
    MaskSummary {
        voxel_count: count,
        bounding_box,
        mean: sum / count.max(1) as f64,
        minimum,
        maximum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Geometry;

    fn volume(data: Array3<f64>, spacing: [f64; 3]) -> Volume {
        let dims: [usize; 3] = data.dim().into();
        Volume {
            data,
            geometry: Geometry {
                dims,
                spacing,
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: false,
        }
    }

    fn full_roi(dims: (usize, usize, usize)) -> Roi {
        Roi {
            mask: Array3::from_elem(dims, true),
            voxel_count: dims.0 * dims.1 * dims.2,
        }
    }

    #[test]
    fn rounding_is_half_to_even() {
        let image = volume(
            Array3::from_shape_vec((4, 1, 1), vec![0.5, 1.5, 2.4, -0.5]).expect("shape"),
            [1.0; 3],
        );
        let settings = ProcessingSettings {
            round_intensities: true,
            ..ProcessingSettings::default()
        };
        let processed = process(&image, &full_roi((4, 1, 1)), None, &settings).expect("runs");
        let values: Vec<f64> = processed.image.data.iter().copied().collect();
        assert_eq!(values, [0.0, 2.0, 2.0, -0.0]);
    }

    #[test]
    fn outlier_filter_follows_range_filter() {
        // Range [0, 100] removes −1000 first. The remaining 20 values are 19 × 10 and one
        // 70: μ = 13, σ = √(19 · 9 + 57²)/√20 ≈ 13.08, so μ + 3σ ≈ 52.2 removes the 70.
        // Without the range step, −1000 would inflate σ to about 216, and the 70 would stay.
        let mut values = vec![10.0; 19];
        values.push(70.0);
        values.push(-1000.0);
        let image = volume(
            Array3::from_shape_vec((21, 1, 1), values).expect("shape"),
            [1.0; 3],
        );
        let range = Resegmentation {
            mode: ResegmentMode::Absolute,
            lower: 0.0,
            upper: Some(100.0),
        };
        let settings = ProcessingSettings {
            outlier_sigma: Some(3.0),
            ..ProcessingSettings::default()
        };
        let processed =
            process(&image, &full_roi((21, 1, 1)), Some(&range), &settings).expect("runs");
        assert_eq!(processed.intensity.voxel_count, 19);
        assert_eq!(processed.morphological.voxel_count, 21);
        assert_eq!(processed.diagnostics.intensity_mask.maximum, 10.0);
    }

    #[test]
    fn mask_threshold_keeps_half_covered_voxels() {
        // Voxels 0, 1 and 2 of 6 (3 mm) are in the ROI. On a 2 mm grid with aligned
        // centres, n_b = 9 and new voxel m lies at −1/6 + 2m/3. Voxels m = 0 … 3 lie within
        // ROI voxels (value 1). m = 4 lies at 2.5, halfway between voxel 2 (inside) and 3
        // (outside), so its value 0.5 meets δ = 0.5. m ≥ 5 lie beyond voxel 3 (value 0).
        let image = volume(Array3::zeros((6, 1, 1)), [3.0, 1.0, 1.0]);
        let mut mask = Array3::from_elem((6, 1, 1), false);
        for i in 0..3 {
            mask[[i, 0, 0]] = true;
        }
        let roi = Roi {
            mask,
            voxel_count: 3,
        };
        let settings = ProcessingSettings {
            interpolation: Some(InterpolationSettings {
                spacing: [2.0, 0.0, 0.0],
                alignment: GridAlignment::Centres,
                image: IbsiInterpolator::Trilinear,
                mask: IbsiInterpolator::Trilinear,
                partial_volume: 0.5,
            }),
            ..ProcessingSettings::default()
        };
        let processed = process(&image, &roi, None, &settings).expect("runs");
        let inside: Vec<bool> = processed.morphological.mask.iter().copied().collect();
        assert_eq!(
            inside,
            [true, true, true, true, true, false, false, false, false]
        );
    }

    #[test]
    fn spline_mask_is_rejected() {
        let image = volume(Array3::zeros((4, 4, 4)), [1.0; 3]);
        let settings = ProcessingSettings {
            interpolation: Some(InterpolationSettings {
                spacing: [2.0; 3],
                alignment: GridAlignment::Centres,
                image: IbsiInterpolator::TricubicSpline,
                mask: IbsiInterpolator::TricubicSpline,
                partial_volume: 0.5,
            }),
            ..ProcessingSettings::default()
        };
        let result = process(&image, &full_roi((4, 4, 4)), None, &settings);
        assert!(
            matches!(result, Err(IbsiError::SplineMask)),
            "{:?}",
            result.map(|processed| processed.intensity.voxel_count)
        );
    }
}
