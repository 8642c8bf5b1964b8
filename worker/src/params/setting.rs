//! The `setting` section of a parameter file (also the settings under `imageType.Original`).

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};

use super::{ParamsError, key_name, render};
use crate::features::discretize::Discretization;
use crate::features::normalize::Normalization;
use crate::features::resegment::{ResegmentMode, Resegmentation};
use crate::features::texture_angles::{TextureAngles, WeightingNorm};
use crate::features::{ExtractionOptions, ExtractionSettings, FeatureClass};
use crate::image::resample::{Interpolator, ResampleSettings};

/// Every key PyRadiomics accepts under `setting` (its `radiomics/schemas/paramSchema.yaml`),
/// then radstudy's own `ibsiMode` and the IBSI mode's extension keys.
pub const SETTING_KEYS: [&str; 45] = [
    "minimumROIDimensions",
    "minimumROISize",
    "geometryTolerance",
    "correctMask",
    "additionalInfo",
    "label",
    "label_channel",
    "binWidth",
    "binCount",
    "normalize",
    "normalizeScale",
    "removeOutliers",
    "resampledPixelSpacing",
    "interpolator",
    "padDistance",
    "distances",
    "force2D",
    "force2Ddimension",
    "resegmentRange",
    "resegmentMode",
    "resegmentShape",
    "preCrop",
    "sigma",
    "start_level",
    "level",
    "wavelet",
    "gradientUseSpacing",
    "lbp2DRadius",
    "lbp2DSamples",
    "lbp2DMethod",
    "lbp3DLevels",
    "lbp3DIcosphereRadius",
    "lbp3DIcosphereSubdivision",
    "voxelArrayShift",
    "symmetricalGLCM",
    "weightingNorm",
    "gldm_a",
    "ibsiMode",
    "ibsiRoundIntensities",
    "ibsiGridAlignment",
    "ibsiMaskInterpolator",
    "ibsiMaskPartialVolume",
    "ibsiOutlierSigma",
    "ibsiIvhBinWidth",
    "ibsiIvhBinCount",
];

/// SimpleITK interpolator names PyRadiomics accepts for `interpolator`.
const INTERPOLATORS: [&str; 10] = [
    "sitkNearestNeighbor",
    "sitkLinear",
    "sitkBSpline",
    "sitkGaussian",
    "sitkLabelGaussian",
    "sitkHammingWindowedSinc",
    "sitkCosineWindowedSinc",
    "sitkWelchWindowedSinc",
    "sitkLanczosWindowedSinc",
    "sitkBlackmanWindowedSinc",
];

/// Settings collected from one or more mappings; later mappings override earlier ones.
#[derive(Debug, Default, Clone)]
pub(super) struct SettingsBuilder {
    values: BTreeMap<&'static str, Value>,
}

impl SettingsBuilder {
    /// Records every key of `mapping`, rejecting unknown keys at once.
    pub(super) fn apply(&mut self, mapping: &Mapping) -> Result<(), ParamsError> {
        for (key, value) in mapping {
            let name = key_name(key, "setting", &SETTING_KEYS)?;
            self.values.insert(name, value.clone());
        }
        Ok(())
    }

    /// Returns the value of `key`, or none when it is unset or null (PyRadiomics' default).
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|value| !value.is_null())
    }

    /// Returns the `force2D` setting, false when unset or null.
    pub(super) fn force_2d(&self) -> Result<bool, ParamsError> {
        match self.get("force2D") {
            Some(value) => bool_value("force2D", value),
            None => Ok(false),
        }
    }

    /// Validates the collected settings and builds the extraction settings. A key set to
    /// null means PyRadiomics' default, as in PyRadiomics.
    pub(super) fn finish(
        self,
        classes: Vec<FeatureClass>,
        selection: BTreeMap<FeatureClass, Vec<&'static str>>,
    ) -> Result<super::ParameterFile, ParamsError> {
        let get = |key: &str| self.get(key);

        // The LoG, Wavelet and Gradient settings are read by `super::image_type`.
        for key in [
            "lbp2DRadius",
            "lbp2DSamples",
            "lbp2DMethod",
            "lbp3DLevels",
            "lbp3DIcosphereRadius",
            "lbp3DIcosphereSubdivision",
        ] {
            if let Some(value) = get(key) {
                return Err(not_implemented(
                    key,
                    value,
                    "it configures the local binary pattern (LBP) image types, which are not implemented",
                ));
            }
        }
        let force_2d = self.force_2d()?;
        // PyRadiomics' default force2Ddimension is 0, the z axis of its (z, y, x) arrays.
        let force_2d_dimension = match get("force2Ddimension") {
            Some(value) => integer("force2Ddimension", value, 0, 2)? as usize,
            None => 0,
        };
        let out_of_plane_axis = if force_2d {
            TextureAngles::axis_of_force2d_dimension(force_2d_dimension)
        } else {
            None
        };
        let weighting = match get("weightingNorm") {
            None => None,
            Some(value) => Some(value.as_str().and_then(WeightingNorm::parse).ok_or_else(
                || {
                    invalid(
                        "weightingNorm",
                        value,
                        "manhattan, euclidean, infinity, no_weighting or null",
                    )
                },
            )?),
        };
        if let Some(value) = get("label_channel")
            && integer("label_channel", value, 0, u32::MAX as i64)? != 0
        {
            return Err(not_implemented(
                "label_channel",
                value,
                "masks are read as scalar label maps; vector masks are not supported",
            ));
        }
        let interpolator = match get("interpolator") {
            None => Interpolator::BSpline,
            Some(value) => interpolator(value)?,
        };
        for key in ["additionalInfo", "correctMask"] {
            if let Some(value) = get(key) {
                bool_value(key, value)?;
            }
        }
        // PyRadiomics' default padDistance is 5 voxels.
        let pad_distance = match get("padDistance") {
            Some(value) => integer("padDistance", value, 0, i64::from(u32::MAX))? as usize,
            None => 5,
        };
        let resampling = match get("resampledPixelSpacing") {
            None => None,
            Some(value) => resampled_spacing(value)?.map(|spacing| ResampleSettings {
                spacing,
                interpolator,
                pad_distance: pad_distance as f64,
            }),
        };
        let pre_crop = match get("preCrop") {
            Some(value) => bool_value("preCrop", value)?,
            None => false,
        };

        let label = match get("label") {
            Some(value) => integer("label", value, 1, i64::from(u32::MAX))? as u32,
            None => 1,
        };
        let bin_width = match get("binWidth") {
            Some(value) => positive("binWidth", value)?,
            None => 25.0,
        };
        // PyRadiomics' getBinEdges uses binCount whenever it is set, whatever the value of binWidth.
        let discretization = match get("binCount") {
            Some(value) => {
                Discretization::FixedBinCount(
                    integer("binCount", value, 1, i64::from(u32::MAX))? as u32
                )
            }
            None => Discretization::FixedBinWidth(bin_width),
        };
        // The IBSI mode bins its intensity histogram with a fixed bin number too.
        let ibsi_mode = match get("ibsiMode") {
            Some(value) => bool_value("ibsiMode", value)?,
            None => false,
        };
        if let (Some(value), Discretization::FixedBinCount(_)) = (get("binCount"), discretization)
            && classes.contains(&FeatureClass::FirstOrder)
            && !ibsi_mode
        {
            return Err(not_implemented(
                "binCount",
                value,
                "firstorder Entropy and Uniformity support a fixed bin width only; drop firstorder or use binWidth",
            ));
        }

        let normalization = match get("normalize") {
            Some(value) if bool_value("normalize", value)? => Some(Normalization {
                scale: match get("normalizeScale") {
                    Some(value) => positive("normalizeScale", value)?,
                    None => 1.0,
                },
                remove_outliers: match get("removeOutliers") {
                    Some(value) => Some(positive("removeOutliers", value)?),
                    None => None,
                },
            }),
            _ => None,
        };

        let mode = match get("resegmentMode") {
            None => ResegmentMode::Absolute,
            Some(Value::String(mode)) if mode == "absolute" => ResegmentMode::Absolute,
            Some(Value::String(mode)) if mode == "relative" => ResegmentMode::Relative,
            Some(Value::String(mode)) if mode == "sigma" => ResegmentMode::Sigma,
            Some(other) => {
                return Err(invalid(
                    "resegmentMode",
                    other,
                    "absolute, relative or sigma",
                ));
            }
        };
        let resegmentation = match get("resegmentRange") {
            None => None,
            Some(value) => {
                let bounds = number_list("resegmentRange", value)?;
                let mut sorted = bounds.clone();
                sorted.sort_by(f64::total_cmp);
                match sorted.as_slice() {
                    [lower] => Some(Resegmentation {
                        mode,
                        lower: *lower,
                        upper: None,
                    }),
                    [lower, upper] => Some(Resegmentation {
                        mode,
                        lower: *lower,
                        upper: Some(*upper),
                    }),
                    _ => {
                        return Err(invalid(
                            "resegmentRange",
                            value,
                            "a list of one (lower) or two (lower, upper) finite numbers",
                        ));
                    }
                }
            }
        };
        let resegment_shape = match get("resegmentShape") {
            Some(value) => bool_value("resegmentShape", value)?,
            None => false,
        };

        let minimum_roi_dimensions = match get("minimumROIDimensions") {
            Some(value) => integer("minimumROIDimensions", value, 1, 3)? as usize,
            None => 2,
        };
        let minimum_roi_size = match get("minimumROISize") {
            Some(value) => Some(integer("minimumROISize", value, 1, i64::MAX)? as usize),
            None => None,
        };
        let geometry_tolerance = match get("geometryTolerance") {
            Some(value) => Some(positive("geometryTolerance", value)?),
            None => None,
        };
        let voxel_array_shift = match get("voxelArrayShift") {
            Some(value) => finite("voxelArrayShift", value)?,
            None => 0.0,
        };
        let distances = match get("distances") {
            Some(value) => {
                let distances = number_list("distances", value)?;
                let valid = !distances.is_empty()
                    && distances
                        .iter()
                        .all(|&d| d >= 1.0 && d.fract() == 0.0 && d <= f64::from(u32::MAX));
                if !valid {
                    return Err(invalid(
                        "distances",
                        value,
                        "a non-empty list of whole numbers >= 1",
                    ));
                }
                distances.into_iter().map(|d| d as u32).collect()
            }
            None => vec![1],
        };
        let symmetric = match get("symmetricalGLCM") {
            Some(value) => bool_value("symmetricalGLCM", value)?,
            None => true,
        };
        let gldm_alpha = match get("gldm_a") {
            Some(value) => non_negative("gldm_a", value)?,
            None => 0.0,
        };

        let settings = ExtractionSettings {
            classes,
            bin_width,
            label,
        };
        let mut options = ExtractionOptions::for_settings(&settings);
        options.discretization = discretization;
        options.voxel_array_shift = voxel_array_shift;
        options.normalization = normalization;
        options.resegmentation = resegmentation;
        options.resegment_shape = resegment_shape;
        options.minimum_roi_dimensions = minimum_roi_dimensions;
        options.minimum_roi_size = minimum_roi_size;
        options.geometry_tolerance_mm = geometry_tolerance;
        options.pre_crop_pad_voxels = pre_crop.then_some(pad_distance);
        options.resampling = resampling;
        options.texture_angles = TextureAngles {
            out_of_plane_axis,
            weighting,
        };
        options.glcm.distances = distances.clone();
        options.glcm.symmetric = symmetric;
        options.gldm.distances = distances.clone();
        options.gldm.alpha = gldm_alpha;
        options.ngtdm.distances = distances;
        options.selection = selection;
        if let Some(value) = get("ibsiMode")
            && ibsi_mode
        {
            super::ibsi_mode::apply(&mut options, value, &get)?;
        } else {
            super::ibsi_mode::reject_without_ibsi_mode(&get)?;
        }
        Ok(super::ParameterFile {
            settings,
            options,
            image_types: Vec::new(),
        })
    }
}

/// Reads `interpolator`: a SimpleITK name, or its enum number as PyRadiomics accepts it.
/// Nearest neighbour (1), linear (2) and B-spline (3) are implemented; the windowed-sinc
/// and Gaussian interpolators (4 to 10) are not.
fn interpolator(value: &Value) -> Result<Interpolator, ParamsError> {
    match value {
        Value::String(name) => match Interpolator::from_sitk_name(name) {
            Some(interpolator) => Ok(interpolator),
            None if INTERPOLATORS.contains(&name.as_str()) => Err(not_implemented(
                "interpolator",
                value,
                "only sitkNearestNeighbor, sitkLinear and sitkBSpline are implemented",
            )),
            None => Err(invalid(
                "interpolator",
                value,
                "a SimpleITK interpolator name such as sitkBSpline, or its number 1 to 10",
            )),
        },
        Value::Number(number) => match number.as_i64() {
            Some(1) => Ok(Interpolator::Nearest),
            Some(2) => Ok(Interpolator::Linear),
            Some(3) => Ok(Interpolator::BSpline),
            Some(4..=10) => Err(not_implemented(
                "interpolator",
                value,
                "only sitkNearestNeighbor (1), sitkLinear (2) and sitkBSpline (3) are implemented",
            )),
            _ => Err(invalid(
                "interpolator",
                value,
                "a SimpleITK interpolator name such as sitkBSpline, or its number 1 to 10",
            )),
        },
        other => Err(invalid(
            "interpolator",
            other,
            "a SimpleITK interpolator name such as sitkBSpline, or its number 1 to 10",
        )),
    }
}

/// Reads `resampledPixelSpacing`: null for none, or three spacings in mm, each > 0 or 0
/// to keep that axis.
fn resampled_spacing(value: &Value) -> Result<Option<[f64; 3]>, ParamsError> {
    let expected = "null, or a list of three spacings in mm, each > 0 or 0 to keep the axis";
    match value {
        Value::Null => Ok(None),
        Value::Sequence(items) if items.len() == 3 => {
            let mut spacing = [0.0; 3];
            for (slot, item) in spacing.iter_mut().zip(items) {
                match item.as_f64() {
                    Some(mm) if mm.is_finite() && mm >= 0.0 => *slot = mm,
                    _ => return Err(invalid("resampledPixelSpacing", value, expected)),
                }
            }
            Ok(Some(spacing))
        }
        other => Err(invalid("resampledPixelSpacing", other, expected)),
    }
}

pub(super) fn not_implemented(key: &str, value: &Value, reason: &'static str) -> ParamsError {
    ParamsError::NotImplemented {
        key: key.to_string(),
        value: render(value),
        reason,
    }
}

pub(super) fn invalid(key: &str, value: &Value, expected: &'static str) -> ParamsError {
    ParamsError::InvalidValue {
        key: key.to_string(),
        value: render(value),
        expected,
    }
}

pub(super) fn bool_value(key: &str, value: &Value) -> Result<bool, ParamsError> {
    value
        .as_bool()
        .ok_or_else(|| invalid(key, value, "true or false"))
}

fn finite(key: &str, value: &Value) -> Result<f64, ParamsError> {
    value
        .as_f64()
        .filter(|number| number.is_finite())
        .ok_or_else(|| invalid(key, value, "a finite number"))
}

pub(super) fn positive(key: &str, value: &Value) -> Result<f64, ParamsError> {
    value
        .as_f64()
        .filter(|number| number.is_finite() && *number > 0.0)
        .ok_or_else(|| invalid(key, value, "a finite number > 0"))
}

fn non_negative(key: &str, value: &Value) -> Result<f64, ParamsError> {
    value
        .as_f64()
        .filter(|number| number.is_finite() && *number >= 0.0)
        .ok_or_else(|| invalid(key, value, "a finite number >= 0"))
}

pub(super) fn integer(
    key: &str,
    value: &Value,
    minimum: i64,
    maximum: i64,
) -> Result<i64, ParamsError> {
    value
        .as_i64()
        .filter(|number| (minimum..=maximum).contains(number))
        .ok_or_else(|| invalid(key, value, "a whole number in the range PyRadiomics allows"))
}

fn number_list(key: &str, value: &Value) -> Result<Vec<f64>, ParamsError> {
    let Value::Sequence(items) = value else {
        return Err(invalid(key, value, "a list of numbers"));
    };
    items
        .iter()
        .map(|item| {
            item.as_f64()
                .filter(|number| number.is_finite())
                .ok_or_else(|| invalid(key, value, "a list of finite numbers"))
        })
        .collect()
}
