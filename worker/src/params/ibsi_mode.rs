//! The `ibsiMode` setting and the other radstudy extension keys of the IBSI mode (see
//! `features::ibsi`), which PyRadiomics does not define.
//!
//! The PyRadiomics settings map onto the IBSI mode as follows. `binWidth` w becomes the
//! IBSI fixed bin size, with bins from the lower bound of an absolute `resegmentRange`, or
//! else from the ROI minimum. `binCount` becomes the IBSI fixed bin number. `gldm_a`
//! becomes the NGLDM coarseness α. `resampledPixelSpacing` interpolates the whole image on
//! the IBSI grid, with `interpolator` sitkNearestNeighbor, sitkLinear (trilinear) or
//! sitkBSpline (tricubic spline).
//!
//! The extension keys, all rejected without `ibsiMode: true`:
//!
//! - `ibsiRoundIntensities` (bool, default false): round intensities to the nearest
//!   integer on input and after interpolation, as IBSI does for CT;
//! - `ibsiGridAlignment` (`centres`, default, or `origins`): placement of the interpolation
//!   grid;
//! - `ibsiMaskInterpolator` (`sitkLinear`, default, or `sitkNearestNeighbor`) and
//!   `ibsiMaskPartialVolume` (δ in (0, 1], default 0.5, trilinear only): interpolation of
//!   the ROI mask and the threshold that binarises it;
//! - `ibsiOutlierSigma` (k > 0): after range re-segmentation, remove intensity-mask voxels
//!   outside μ ± kσ;
//! - `ibsiIvhBinWidth` (w > 0) or `ibsiIvhBinCount` (N ≥ 1): the IVH cases of continuous
//!   calibrated intensities (bin centres of width w from the re-segmentation range) and of
//!   arbitrary units (N bins). Without them the IVH treats intensities as discrete, with
//!   interval 1 over the absolute re-segmentation range (the ROI's minimum or maximum for a
//!   missing bound).

use serde_norway::Value;

use super::ParamsError;
use super::setting::{bool_value, integer, invalid, positive};
use crate::features::ExtractionOptions;
use crate::features::discretize::Discretization;
use crate::features::ibsi::processing::InterpolationSettings;
use crate::features::ibsi::{Convention, GreyLevelRule, IvhSettings};
use crate::features::resegment::ResegmentMode;
use crate::features::texture_angles::TextureAngles;
use crate::image::ibsi_resample::{GridAlignment, IbsiInterpolator};
use crate::image::resample::Interpolator;

/// The radstudy extension keys of the IBSI mode, after `ibsiMode` itself.
pub(super) const IBSI_KEYS: [&str; 7] = [
    "ibsiRoundIntensities",
    "ibsiGridAlignment",
    "ibsiMaskInterpolator",
    "ibsiMaskPartialVolume",
    "ibsiOutlierSigma",
    "ibsiIvhBinWidth",
    "ibsiIvhBinCount",
];

/// Rejects the first IBSI extension key that is set while `ibsiMode` is off.
pub(super) fn reject_without_ibsi_mode<'a>(
    get: &dyn Fn(&str) -> Option<&'a Value>,
) -> Result<(), ParamsError> {
    for key in IBSI_KEYS {
        if let Some(value) = get(key) {
            return Err(ParamsError::NotImplemented {
                key: key.into(),
                value: super::render(value),
                reason: "this key configures the IBSI mode; set ibsiMode: true or remove it",
            });
        }
    }
    Ok(())
}

/// Switches `options`, already filled from the other settings, to the IBSI mode; `value`
/// is the `ibsiMode` value for error messages and `get` returns any other set key.
pub(super) fn apply<'a>(
    options: &mut ExtractionOptions,
    value: &Value,
    get: &dyn Fn(&str) -> Option<&'a Value>,
) -> Result<(), ParamsError> {
    let reject_key = |key: &str, value: &Value, reason: &'static str| ParamsError::NotImplemented {
        key: key.into(),
        value: super::render(value),
        reason,
    };
    let reject = |reason: &'static str| reject_key("ibsiMode", value, reason);
    if !options.selection.is_empty() {
        return Err(reject(
            "IBSI mode computes whole families; list feature classes without feature names",
        ));
    }
    if options.texture_angles != TextureAngles::default() {
        return Err(reject(
            "IBSI mode computes 3-D features with its own aggregation; remove force2D and weightingNorm",
        ));
    }
    if options.glcm.distances != [1] {
        return Err(reject("IBSI mode uses distance 1 only; remove distances"));
    }
    let alpha = options.gldm.alpha;
    if alpha.fract() != 0.0 || alpha > f64::from(u32::MAX) {
        return Err(reject(
            "IBSI mode needs a whole-number gldm_a (NGLDM coarseness on grey levels)",
        ));
    }
    for key in ["preCrop", "padDistance"] {
        if let Some(setting) = get(key) {
            return Err(reject_key(
                key,
                setting,
                "IBSI mode interpolates and keeps the whole image, because local intensity peaks read voxels around the ROI; remove it",
            ));
        }
    }

    let absolute_range = options
        .resegmentation
        .as_ref()
        .filter(|resegmentation| resegmentation.mode == ResegmentMode::Absolute);
    let lower_bound = absolute_range.map(|resegmentation| resegmentation.lower);
    let upper_bound = absolute_range.and_then(|resegmentation| resegmentation.upper);

    options.convention = Convention::Ibsi;
    options.ibsi.ngldm_alpha = alpha as u32;
    options.ibsi.discretization = match options.discretization {
        Discretization::FixedBinWidth(width) => GreyLevelRule::FixedBinSize { width, lower_bound },
        Discretization::FixedBinCount(count) => GreyLevelRule::FixedBinNumber(count),
    };
    options.ibsi.ivh = ivh_settings(get, lower_bound, upper_bound)?;

    let processing = &mut options.ibsi.processing;
    if let Some(setting) = get("ibsiRoundIntensities") {
        processing.round_intensities = bool_value("ibsiRoundIntensities", setting)?;
    }
    if let Some(setting) = get("ibsiOutlierSigma") {
        if options
            .resegmentation
            .as_ref()
            .is_some_and(|resegmentation| resegmentation.mode == ResegmentMode::Sigma)
        {
            return Err(reject_key(
                "ibsiOutlierSigma",
                setting,
                "resegmentMode sigma already filters by standard deviations; use one of the two",
            ));
        }
        processing.outlier_sigma = Some(positive("ibsiOutlierSigma", setting)?);
    }

    // The IBSI chain replaces PyRadiomics' resampling around the ROI.
    let resampling = options.resampling.take();
    processing.interpolation = match resampling {
        Some(resampling) => Some(InterpolationSettings {
            spacing: resampling.spacing,
            alignment: grid_alignment(get)?,
            image: match resampling.interpolator {
                Interpolator::Nearest => IbsiInterpolator::Nearest,
                Interpolator::Linear => IbsiInterpolator::Trilinear,
                Interpolator::BSpline => IbsiInterpolator::TricubicSpline,
            },
            mask: mask_interpolator(get)?,
            partial_volume: partial_volume(get)?,
        }),
        None => {
            for key in [
                "ibsiGridAlignment",
                "ibsiMaskInterpolator",
                "ibsiMaskPartialVolume",
            ] {
                if let Some(setting) = get(key) {
                    return Err(reject_key(
                        key,
                        setting,
                        "it configures interpolation, which needs resampledPixelSpacing",
                    ));
                }
            }
            None
        }
    };
    Ok(())
}

/// Reads the IVH case from `ibsiIvhBinWidth` or `ibsiIvhBinCount`, with the bounds of an
/// absolute re-segmentation range.
fn ivh_settings<'a>(
    get: &dyn Fn(&str) -> Option<&'a Value>,
    lower: Option<f64>,
    upper: Option<f64>,
) -> Result<IvhSettings, ParamsError> {
    match (get("ibsiIvhBinWidth"), get("ibsiIvhBinCount")) {
        (Some(_), Some(count)) => Err(ParamsError::NotImplemented {
            key: "ibsiIvhBinCount".into(),
            value: super::render(count),
            reason: "ibsiIvhBinWidth is set too; the IVH uses one discretisation, so remove one of them",
        }),
        (Some(width), None) => Ok(IvhSettings::BinCentres {
            width: positive("ibsiIvhBinWidth", width)?,
            lower,
            upper,
        }),
        (None, Some(count)) => Ok(IvhSettings::BinNumbers {
            count: integer("ibsiIvhBinCount", count, 1, i64::from(u32::MAX))? as u32,
        }),
        (None, None) => Ok(IvhSettings::Discrete {
            interval: 1.0,
            lower,
            upper,
        }),
    }
}

fn grid_alignment<'a>(
    get: &dyn Fn(&str) -> Option<&'a Value>,
) -> Result<GridAlignment, ParamsError> {
    match get("ibsiGridAlignment") {
        None => Ok(GridAlignment::Centres),
        Some(Value::String(name)) if name == "centres" => Ok(GridAlignment::Centres),
        Some(Value::String(name)) if name == "origins" => Ok(GridAlignment::Origins),
        Some(other) => Err(invalid("ibsiGridAlignment", other, "centres or origins")),
    }
}

fn mask_interpolator<'a>(
    get: &dyn Fn(&str) -> Option<&'a Value>,
) -> Result<IbsiInterpolator, ParamsError> {
    match get("ibsiMaskInterpolator") {
        None => Ok(IbsiInterpolator::Trilinear),
        Some(Value::String(name)) if name == "sitkLinear" => Ok(IbsiInterpolator::Trilinear),
        Some(Value::String(name)) if name == "sitkNearestNeighbor" => Ok(IbsiInterpolator::Nearest),
        Some(other) => Err(invalid(
            "ibsiMaskInterpolator",
            other,
            "sitkLinear or sitkNearestNeighbor",
        )),
    }
}

/// Reads δ; it is rejected with a nearest-neighbour mask, which has no partial volumes.
fn partial_volume<'a>(get: &dyn Fn(&str) -> Option<&'a Value>) -> Result<f64, ParamsError> {
    let Some(setting) = get("ibsiMaskPartialVolume") else {
        return Ok(0.5);
    };
    if mask_interpolator(get)? == IbsiInterpolator::Nearest {
        return Err(ParamsError::NotImplemented {
            key: "ibsiMaskPartialVolume".into(),
            value: super::render(setting),
            reason: "a nearest-neighbour mask has no partial volumes; remove it or set ibsiMaskInterpolator: sitkLinear",
        });
    }
    match setting.as_f64() {
        Some(threshold) if threshold > 0.0 && threshold <= 1.0 => Ok(threshold),
        _ => Err(invalid(
            "ibsiMaskPartialVolume",
            setting,
            "a fraction in (0, 1]",
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::features::ibsi::{Convention, GreyLevelRule, IvhSettings};
    use crate::image::ibsi_resample::{GridAlignment, IbsiInterpolator};
    use crate::params::{ParamsError, parse_parameters};

    #[test]
    fn range_sets_bin_start_and_ivh_range() {
        let file = parse_parameters(
            "setting: {ibsiMode: true, binWidth: 25, resegmentRange: [-1000, 400]}",
        )
        .expect("valid IBSI parameter file");
        assert_eq!(file.options.convention, Convention::Ibsi);
        assert_eq!(
            file.options.ibsi.discretization,
            GreyLevelRule::FixedBinSize {
                width: 25.0,
                lower_bound: Some(-1000.0)
            }
        );
        assert_eq!(
            file.options.ibsi.ivh,
            IvhSettings::Discrete {
                interval: 1.0,
                lower: Some(-1000.0),
                upper: Some(400.0)
            }
        );
    }

    #[test]
    fn bin_count_becomes_bin_number() {
        let file = parse_parameters("setting: {ibsiMode: true, binCount: 32, gldm_a: 1}")
            .expect("valid IBSI parameter file");
        assert_eq!(
            file.options.ibsi.discretization,
            GreyLevelRule::FixedBinNumber(32)
        );
        assert_eq!(file.options.ibsi.ivh, IvhSettings::discrete_unit());
        assert_eq!(file.options.ibsi.ngldm_alpha, 1);
    }

    #[test]
    fn ibsi_mode_false_keeps_pyradiomics() {
        let file = parse_parameters("setting: {ibsiMode: false}").expect("valid parameter file");
        assert_eq!(file.options.convention, Convention::Pyradiomics);
    }

    #[test]
    fn unsupported_combinations_are_rejected() {
        for text in [
            "setting: {ibsiMode: true, distances: [2]}",
            "setting: {ibsiMode: true, gldm_a: 0.5}",
            "setting: {ibsiMode: true}\nfeatureClass: {firstorder: [Mean]}",
            "setting: {ibsiMode: true, preCrop: true}",
            "setting: {ibsiMode: true, ibsiGridAlignment: origins}",
            "setting: {ibsiMode: true, ibsiIvhBinWidth: 2.5, ibsiIvhBinCount: 1000}",
            "setting: {ibsiMode: true, resegmentMode: sigma, resegmentRange: [-3, 3], ibsiOutlierSigma: 3}",
            "setting: {ibsiMode: true, resampledPixelSpacing: [2, 2, 2], ibsiMaskInterpolator: sitkNearestNeighbor, ibsiMaskPartialVolume: 0.5}",
        ] {
            let result = parse_parameters(text);
            assert!(
                matches!(result, Err(ParamsError::NotImplemented { .. })),
                "{text}: {result:?}"
            );
        }
    }

    #[test]
    fn ct_phantom_config_e_settings() {
        let file = parse_parameters(
            "setting: {ibsiMode: true, binCount: 32, resegmentRange: [-1000, 400], \
             resampledPixelSpacing: [2, 2, 2], interpolator: sitkBSpline, \
             ibsiRoundIntensities: true, ibsiOutlierSigma: 3, ibsiIvhBinCount: 1000}",
        )
        .expect("valid IBSI parameter file");
        let ibsi = &file.options.ibsi;
        assert!(ibsi.processing.round_intensities);
        assert_eq!(ibsi.processing.outlier_sigma, Some(3.0));
        assert_eq!(ibsi.ivh, IvhSettings::BinNumbers { count: 1000 });
        let interpolation = ibsi
            .processing
            .interpolation
            .as_ref()
            .expect("resampledPixelSpacing interpolates");
        assert_eq!(interpolation.spacing, [2.0; 3]);
        assert_eq!(interpolation.alignment, GridAlignment::Centres);
        assert_eq!(interpolation.image, IbsiInterpolator::TricubicSpline);
        assert_eq!(interpolation.mask, IbsiInterpolator::Trilinear);
        assert_eq!(interpolation.partial_volume, 0.5);
        assert!(
            file.options.resampling.is_none(),
            "the IBSI chain replaces PyRadiomics' resampling"
        );
    }

    #[test]
    fn ivh_bin_width_uses_range_bounds() {
        let file = parse_parameters(
            "setting: {ibsiMode: true, resegmentRange: [-1000, 400], ibsiIvhBinWidth: 2.5}",
        )
        .expect("valid IBSI parameter file");
        assert_eq!(
            file.options.ibsi.ivh,
            IvhSettings::BinCentres {
                width: 2.5,
                lower: Some(-1000.0),
                upper: Some(400.0)
            }
        );
    }

    #[test]
    fn ibsi_keys_need_ibsi_mode() {
        for text in [
            "setting: {ibsiRoundIntensities: true}",
            "setting: {ibsiMode: false, ibsiOutlierSigma: 3}",
        ] {
            let result = parse_parameters(text);
            assert!(
                matches!(result, Err(ParamsError::NotImplemented { reason, .. }) if reason.contains("ibsiMode: true")),
                "{text}: {result:?}"
            );
        }
    }
}
