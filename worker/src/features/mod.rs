//! Radiomic feature extraction on the original image; [`image_types`] adds the filtered
//! images of a parameter file.
//!
//! Feature names follow PyRadiomics: `original_<class>_<Feature>`, for
//! example `original_firstorder_Mean`. Classes run in the order `shape`, `shape2D`,
//! `firstorder`, `glcm`, `glrlm`, `glszm`, `gldm`, `ngtdm`, whatever order
//! the request lists them in, so that every worker produces the same columns
//! for the same settings. Texture classes share one discretisation of the
//! ROI (fixed bin width) with PyRadiomics' defaults: distance 1, 13
//! directions, symmetric GLCM, `gldm_a` 0.

pub mod discretize;
pub mod firstorder;
pub mod glcm;
pub mod gldm;
pub mod glrlm;
pub mod glszm;
pub mod ibsi;
pub mod image_types;
pub mod ngtdm;
pub mod normalize;
mod order_statistics;
mod padded_grids;
mod pairwise_sum;
pub mod pre_crop;
pub mod resegment;
pub mod shape;
pub mod shape2d;
#[cfg(test)]
mod test_support;
pub mod texture_angles;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::image::Volume;
use crate::mask::Roi;

/// Version of the feature definitions below. Raise it whenever a formula or
/// convention changes a number, so that the definition hash changes too.
pub const DEFINITIONS_VERSION: &str = "radstudy-features-2";

/// Largest number of grey levels a texture class accepts. GLCM keeps 13
/// matrices of N_g² counts (about 100 MB at 1,000 levels) and its MCC
/// feature costs O(N_g³); more levels than this means the bin width is far
/// too small for the intensity range.
pub const MAX_GREY_LEVELS: u32 = 1_000;

/// A feature class, under its PyRadiomics name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeatureClass {
    /// 3-D shape features of the ROI (`shape`).
    Shape,
    /// 2-D shape features of a single-slice ROI (`shape2D`), which need force2D.
    Shape2D,
    /// First-order intensity features (`firstorder`).
    FirstOrder,
    /// Grey level co-occurrence matrix features (`glcm`).
    Glcm,
    /// Grey level run length matrix features (`glrlm`).
    Glrlm,
    /// Grey level size zone matrix features (`glszm`).
    Glszm,
    /// Grey level dependence matrix features (`gldm`).
    Gldm,
    /// Neighbouring grey tone difference matrix features (`ngtdm`).
    Ngtdm,
}

impl FeatureClass {
    /// Every class that [`compute`] and the gRPC contract support, in output order: all but
    /// shape2D, which needs a parameter file's force2D. The definition hash covers these.
    pub const ALL: [FeatureClass; 7] = [
        FeatureClass::Shape,
        FeatureClass::FirstOrder,
        FeatureClass::Glcm,
        FeatureClass::Glrlm,
        FeatureClass::Glszm,
        FeatureClass::Gldm,
        FeatureClass::Ngtdm,
    ];

    /// Every class a PyRadiomics parameter file can enable, in output order.
    pub const WITH_SHAPE_2D: [FeatureClass; 8] = [
        FeatureClass::Shape,
        FeatureClass::Shape2D,
        FeatureClass::FirstOrder,
        FeatureClass::Glcm,
        FeatureClass::Glrlm,
        FeatureClass::Glszm,
        FeatureClass::Gldm,
        FeatureClass::Ngtdm,
    ];

    /// Returns the PyRadiomics class name.
    pub fn name(self) -> &'static str {
        match self {
            FeatureClass::Shape => "shape",
            FeatureClass::Shape2D => "shape2D",
            FeatureClass::FirstOrder => "firstorder",
            FeatureClass::Glcm => "glcm",
            FeatureClass::Glrlm => "glrlm",
            FeatureClass::Glszm => "glszm",
            FeatureClass::Gldm => "gldm",
            FeatureClass::Ngtdm => "ngtdm",
        }
    }

    /// Returns every feature name the class computes, without prefix, in output order:
    /// [`FeatureClass::feature_names`] and the deprecated features that PyRadiomics computes
    /// only when a parameter file names them (shape2D's SphericalDisproportion).
    pub fn computed_feature_names(self) -> &'static [&'static str] {
        match self {
            FeatureClass::Shape2D => &shape2d::COMPUTED_FEATURE_NAMES,
            other => other.feature_names(),
        }
    }

    /// Returns the feature names of this class that PyRadiomics computes by default,
    /// without prefix.
    pub fn feature_names(self) -> &'static [&'static str] {
        match self {
            FeatureClass::Shape => &shape::FEATURE_NAMES,
            FeatureClass::Shape2D => &shape2d::FEATURE_NAMES,
            FeatureClass::FirstOrder => &firstorder::FEATURE_NAMES,
            FeatureClass::Glcm => &glcm::FEATURE_NAMES,
            FeatureClass::Glrlm => &glrlm::FEATURE_NAMES,
            FeatureClass::Glszm => &glszm::FEATURE_NAMES,
            FeatureClass::Gldm => &gldm::FEATURE_NAMES,
            FeatureClass::Ngtdm => &ngtdm::FEATURE_NAMES,
        }
    }

    /// Returns whether the class describes the ROI's shape. Shape classes are computed once,
    /// on the original image's ROI, and named `original_<class>_<Feature>` whatever the
    /// image types.
    pub fn is_shape(self) -> bool {
        matches!(self, FeatureClass::Shape | FeatureClass::Shape2D)
    }

    /// Parses a PyRadiomics class name.
    pub fn parse(name: &str) -> Result<Self, SettingsError> {
        FeatureClass::WITH_SHAPE_2D
            .into_iter()
            .find(|class| class.name() == name)
            .ok_or_else(|| SettingsError::UnknownClass(name.to_string()))
    }
}

/// Invalid extraction settings, each naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// A feature class this worker does not compute.
    #[error(
        "unknown feature class {0:?}; supported classes are shape, firstorder, glcm, glrlm, glszm, gldm and ngtdm"
    )]
    UnknownClass(String),
    /// A request for shape2D, which needs the force2D of a parameter file.
    #[error(
        "feature class shape2D needs force2D, which only a PyRadiomics parameter file sets; request shape instead"
    )]
    Shape2DNeedsForce2D,
    /// No class was requested.
    #[error("feature_classes is empty; request at least one class, for example \"firstorder\"")]
    NoClass,
    /// The bin width is not a positive finite number.
    #[error("bin_width = {0} must be a finite number > 0")]
    BinWidth(f64),
    /// The mask label is 0 (background).
    #[error("label = 0 is the background; use a label >= 1")]
    Label,
}

/// Validated extraction settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractionSettings {
    /// Classes to compute, sorted and without repeats.
    pub classes: Vec<FeatureClass>,
    /// Fixed bin width for histogram features, in intensity units.
    pub bin_width: f64,
    /// Mask label of the ROI.
    pub label: u32,
}

impl ExtractionSettings {
    /// Validates the contract's settings message.
    pub fn from_proto(
        settings: &radstudy_proto::v1::ExtractionSettings,
    ) -> Result<Self, SettingsError> {
        let mut classes = settings
            .feature_classes
            .iter()
            .map(|name| FeatureClass::parse(name))
            .collect::<Result<Vec<_>, _>>()?;
        classes.sort();
        classes.dedup();
        if classes.is_empty() {
            return Err(SettingsError::NoClass);
        }
        if classes.contains(&FeatureClass::Shape2D) {
            return Err(SettingsError::Shape2DNeedsForce2D);
        }
        if !(settings.bin_width.is_finite() && settings.bin_width > 0.0) {
            return Err(SettingsError::BinWidth(settings.bin_width));
        }
        if settings.label == 0 {
            return Err(SettingsError::Label);
        }
        Ok(ExtractionSettings {
            classes,
            bin_width: settings.bin_width,
            label: settings.label,
        })
    }

    /// Returns the column names of the feature table, in output order.
    pub fn feature_names(&self) -> Vec<String> {
        self.classes
            .iter()
            .flat_map(|class| {
                class
                    .feature_names()
                    .iter()
                    .map(move |feature| format!("original_{}_{feature}", class.name()))
            })
            .collect()
    }
}

/// Returns a SHA-256 (hex) over the definitions version and every feature
/// name of the classes the gRPC contract can request ([`FeatureClass::ALL`]);
/// equal hashes mean equal definitions.
pub fn definition_hash() -> String {
    let mut hasher = Sha256::new();
    hasher.update(DEFINITIONS_VERSION.as_bytes());
    for class in FeatureClass::ALL {
        for feature in class.feature_names() {
            hasher.update(b"\n");
            hasher.update(class.name().as_bytes());
            hasher.update(b"_");
            hasher.update(feature.as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// Computes the requested features of one ROI; `values` are the ROI's
/// finite intensities. Returns one value per name of
/// [`ExtractionSettings::feature_names`], in that order, or the reason the
/// ROI cannot be discretised for the texture classes.
///
/// shape2D needs force2D, which these settings cannot carry, so
/// [`ExtractionSettings::from_proto`] rejects it and this function returns no
/// value for it. [`compute_with_options`] computes it.
pub fn compute(
    image: &Volume,
    roi: &Roi,
    values: &[f64],
    settings: &ExtractionSettings,
) -> Result<Vec<f64>, discretize::DiscretizeError> {
    // Texture classes share one discretisation, computed on first use.
    let mut texture: Option<discretize::TextureInput> = None;
    let mut output = Vec::new();
    for &class in &settings.classes {
        let features = match class {
            FeatureClass::Shape => shape::compute(roi.mask.view(), image.geometry.spacing),
            FeatureClass::Shape2D => Vec::new(),
            FeatureClass::FirstOrder => firstorder::compute(
                values,
                image.geometry.voxel_volume_mm3(),
                &firstorder::FirstOrderSettings {
                    bin_width: settings.bin_width,
                    voxel_array_shift: 0.0,
                },
            ),
            _ => {
                let input = match texture.take() {
                    Some(input) => input,
                    None => discretize::discretize(
                        image,
                        roi,
                        discretize::Discretization::FixedBinWidth(settings.bin_width),
                        MAX_GREY_LEVELS,
                    )?,
                };
                let features = texture_features(class, &input);
                texture = Some(input);
                features
            }
        };
        output.extend(features.into_iter().map(|(_, value)| value));
    }
    Ok(output)
}

/// Settings beyond the gRPC contract's classes, bin width and label, as a PyRadiomics
/// parameter file sets them (see `crate::params`). [`ExtractionOptions::for_settings`]
/// gives the values that [`compute`] uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractionOptions {
    /// Grey-level rule of the texture classes (PyRadiomics `binWidth` / `binCount`).
    pub discretization: discretize::Discretization,
    /// Shift c of Energy, TotalEnergy and RootMeanSquared (PyRadiomics `voxelArrayShift`).
    pub voxel_array_shift: f64,
    /// Whole-image normalisation before the ROI is taken (PyRadiomics `normalize`).
    pub normalization: Option<normalize::Normalization>,
    /// Intensity range that ROI voxels must lie in (PyRadiomics `resegmentRange`).
    pub resegmentation: Option<resegment::Resegmentation>,
    /// Whether shape uses the resegmented ROI (PyRadiomics `resegmentShape`, default false).
    pub resegment_shape: bool,
    /// Axes along which the ROI must span more than one voxel (PyRadiomics
    /// `minimumROIDimensions`, default 2).
    pub minimum_roi_dimensions: usize,
    /// Smallest ROI in voxels, or none (PyRadiomics `minimumROISize`).
    pub minimum_roi_size: Option<usize>,
    /// Largest distance between mask and image voxel centres at which the mask is placed
    /// on the image grid, in mm (PyRadiomics `geometryTolerance`). None keeps the default.
    pub geometry_tolerance_mm: Option<f64>,
    /// Voxels of padding around the ROI's bounding box when the image is cropped before
    /// the filters (PyRadiomics `preCrop` with `padDistance`), or none for no cropping.
    pub pre_crop_pad_voxels: Option<usize>,
    /// Resampling after normalisation (PyRadiomics `resampledPixelSpacing`,
    /// `interpolator`, `padDistance`), or none.
    pub resampling: Option<crate::image::resample::ResampleSettings>,
    /// In-plane angles and angle weighting of the texture classes (PyRadiomics `force2D`,
    /// `force2Ddimension`, `weightingNorm`). They also set the slice plane of shape2D.
    pub texture_angles: texture_angles::TextureAngles,
    /// GLCM distances and symmetry.
    pub glcm: glcm::GlcmSettings,
    /// GLDM α and distances.
    pub gldm: gldm::GldmSettings,
    /// NGTDM distances.
    pub ngtdm: ngtdm::NgtdmSettings,
    /// Features to keep per class; a class not listed keeps all its features.
    pub selection: BTreeMap<FeatureClass, Vec<&'static str>>,
    /// PyRadiomics or IBSI definitions. IBSI mode computes the IBSI families of each
    /// requested class (see [`ibsi::Family::for_class`]) and names columns `ibsi_<tag>`.
    pub convention: ibsi::Convention,
    /// Settings of the IBSI mode; used only when `convention` is IBSI.
    pub ibsi: ibsi::IbsiSettings,
}

impl ExtractionOptions {
    /// Returns the options [`compute`] implies: the settings' bin width, no shift, no
    /// normalisation or resegmentation, PyRadiomics' texture defaults, every feature.
    pub fn for_settings(settings: &ExtractionSettings) -> Self {
        ExtractionOptions {
            discretization: discretize::Discretization::FixedBinWidth(settings.bin_width),
            voxel_array_shift: 0.0,
            normalization: None,
            resegmentation: None,
            resegment_shape: false,
            minimum_roi_dimensions: crate::mask::MIN_ROI_DIMENSIONS,
            minimum_roi_size: None,
            geometry_tolerance_mm: None,
            pre_crop_pad_voxels: None,
            resampling: None,
            texture_angles: texture_angles::TextureAngles::default(),
            glcm: glcm::GlcmSettings::default(),
            gldm: gldm::GldmSettings::default(),
            ngtdm: ngtdm::NgtdmSettings::default(),
            selection: BTreeMap::new(),
            convention: ibsi::Convention::Pyradiomics,
            ibsi: ibsi::IbsiSettings::for_bin_width(settings.bin_width, None),
        }
    }
}

/// Reason [`compute_with_options`] produced no features for an ROI.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// Normalisation failed.
    #[error(transparent)]
    Normalize(#[from] normalize::NormalizeError),
    /// Resegmentation left too few voxels.
    #[error(transparent)]
    Resegment(#[from] resegment::ResegmentError),
    /// The texture classes could not discretise the ROI.
    #[error(transparent)]
    Discretize(#[from] discretize::DiscretizeError),
    /// firstorder was requested with a fixed bin count.
    #[error(
        "firstorder Entropy and Uniformity support a fixed bin width only; set binWidth instead of binCount"
    )]
    FirstOrderBinCount,
    /// ROI voxels are NaN or infinite.
    #[error(
        "{count} ROI voxels are NaN or infinite; features need finite intensities, so check the image for missing values inside the lesion or correct the mask"
    )]
    NonFiniteIntensity {
        /// Non-finite voxels in the ROI.
        count: usize,
    },
    /// A filter could not derive its image.
    #[error(transparent)]
    Filter(#[from] crate::filters::FilterError),
    /// The image and ROI could not be resampled.
    #[error(transparent)]
    Resample(#[from] crate::image::resample::ResampleError),
    /// The 2-D shape features could not be computed.
    #[error(transparent)]
    Shape2D(#[from] shape2d::Shape2DError),
    /// The resampled ROI is too thin for 3-D features.
    #[error("after resampling: {0}")]
    ResampledRoi(crate::mask::MaskError),
    /// The IBSI mode could not compute the ROI's features.
    #[error(transparent)]
    Ibsi(#[from] ibsi::IbsiError),
    /// A feature is undefined for this ROI.
    #[error(
        "feature {name} evaluates to {value}, which happens when the ROI is too small or scattered for it (no neighbouring voxel pairs, or one grey level); check that the mask is this image's lesion mask and that IMAGE and MASK are not swapped"
    )]
    NotFinite {
        /// The feature's column name.
        name: String,
        /// The value (NaN or infinite).
        value: f64,
    },
}

/// Computes the features of one ROI on the original image with every option of a
/// parameter file: normalises the image, resegments the ROI, then computes the classes as
/// [`compute`] does. Returns `(column name, value)` pairs in class order, only the
/// selected features of each class, and rejects any value that is not finite, so that no
/// NaN reaches a feature table. [`image_types::compute_image_types`] adds filtered images.
pub fn compute_with_options(
    image: &Volume,
    roi: &Roi,
    settings: &ExtractionSettings,
    options: &ExtractionOptions,
) -> Result<Vec<(String, f64)>, FeatureError> {
    let original = image_types::ImageTypeSpec {
        image_type: crate::filters::ImageType::Original,
        options: options.clone(),
    };
    // The original image type does not depend on the pixel type.
    let pixel_type = crate::image::PixelType::Float64;
    image_types::compute_image_types(image, pixel_type, roi, settings, options, &[original])
}

/// Returns the IBSI-mode column names of the requested classes, in output order.
pub fn ibsi_columns(settings: &ExtractionSettings) -> Vec<String> {
    ibsi_families(settings)
        .into_iter()
        .flat_map(ibsi::feature_tags)
        .map(|tag| format!("ibsi_{tag}"))
        .collect()
}

/// Returns the IBSI families of the requested classes, in [`ibsi::Family::ALL`] order.
pub fn ibsi_families(settings: &ExtractionSettings) -> Vec<ibsi::Family> {
    ibsi::Family::ALL
        .into_iter()
        .filter(|family| {
            settings
                .classes
                .iter()
                .any(|&class| ibsi::Family::for_class(class).contains(family))
        })
        .collect()
}

/// Computes the IBSI families that stand in for the requested classes, named
/// `ibsi_<tag>`, and rejects any value that is not finite.
fn compute_ibsi(
    image: &Volume,
    morphological_roi: &Roi,
    intensity_roi: &Roi,
    settings: &ExtractionSettings,
    options: &ExtractionOptions,
) -> Result<Vec<(String, f64)>, FeatureError> {
    let families = ibsi_families(settings);
    let features = ibsi::compute(
        image,
        morphological_roi,
        intensity_roi,
        &families,
        &options.ibsi,
    )?;
    let mut output = Vec::with_capacity(features.len());
    for feature in features {
        let name = format!("ibsi_{}", feature.tag);
        if !feature.value.is_finite() {
            return Err(FeatureError::NotFinite {
                name,
                value: feature.value,
            });
        }
        output.push((name, feature.value));
    }
    Ok(output)
}

/// Computes one texture class; an intensity class returns nothing here.
fn texture_features(
    class: FeatureClass,
    input: &discretize::TextureInput,
) -> Vec<(&'static str, f64)> {
    match class {
        FeatureClass::Glcm => glcm::compute(input, &glcm::GlcmSettings::default()),
        FeatureClass::Glrlm => glrlm::compute(input),
        FeatureClass::Glszm => glszm::compute(input),
        FeatureClass::Gldm => gldm::compute(input, &gldm::GldmSettings::default()),
        FeatureClass::Ngtdm => ngtdm::compute(input, &ngtdm::NgtdmSettings::default()),
        FeatureClass::Shape | FeatureClass::Shape2D | FeatureClass::FirstOrder => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use radstudy_proto::v1::ExtractionSettings as ProtoSettings;

    fn proto(classes: &[&str], bin_width: f64, label: u32) -> ProtoSettings {
        ProtoSettings {
            feature_classes: classes.iter().map(|c| c.to_string()).collect(),
            bin_width,
            label,
            parameters_json: String::new(),
        }
    }

    #[test]
    fn settings_order_classes_canonically() {
        let settings =
            ExtractionSettings::from_proto(&proto(&["firstorder", "shape", "firstorder"], 25.0, 1))
                .expect("valid settings");
        assert_eq!(
            settings.classes,
            [FeatureClass::Shape, FeatureClass::FirstOrder]
        );
        let names = settings.feature_names();
        assert_eq!(names.len(), 14 + 18);
        assert_eq!(names[0], "original_shape_MeshVolume");
        assert!(names.contains(&"original_firstorder_Mean".to_string()));
    }

    #[test]
    fn settings_reject_each_invalid_field() {
        assert_eq!(
            ExtractionSettings::from_proto(&proto(&["glcmx"], 25.0, 1)),
            Err(SettingsError::UnknownClass("glcmx".into()))
        );
        assert_eq!(
            ExtractionSettings::from_proto(&proto(&[], 25.0, 1)),
            Err(SettingsError::NoClass)
        );
        assert_eq!(
            ExtractionSettings::from_proto(&proto(&["shape", "shape2D"], 25.0, 1)),
            Err(SettingsError::Shape2DNeedsForce2D)
        );
        assert_eq!(
            ExtractionSettings::from_proto(&proto(&["shape"], 0.0, 1)),
            Err(SettingsError::BinWidth(0.0))
        );
        assert_eq!(
            ExtractionSettings::from_proto(&proto(&["shape"], 25.0, 0)),
            Err(SettingsError::Label)
        );
    }

    #[test]
    fn definition_hash_is_stable_hex() {
        let hash = definition_hash();
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, definition_hash());
    }
}
