//! IBSI mode: features as the Image Biomarker Standardisation Initiative defines them
//! (IBSI reference manual, Zwanenburg A, Leger S, Vallières M, Löck S, arXiv:1612.07003,
//! December 2019 values), where the default mode follows PyRadiomics 3.1.4.
//!
//! The families and their differences from the PyRadiomics mode:
//!
//! - **intensity statistics**: kurtosis is excess kurtosis (Pearson kurtosis − 3), there is
//!   no `voxelArrayShift`, and IBSI adds the median absolute deviation, the coefficient of
//!   variation and the quartile coefficient of dispersion;
//! - **intensity histogram**: every IBSI statistic of the discretised intensities, with
//!   bins that start at the lower bound of the rule (or the ROI minimum), not at a multiple
//!   of the bin width;
//! - **morphology**: the axis lengths use the covariance with divisor N_v − 1, and IBSI
//!   adds compactness, asphericity, centre-of-mass shift, bounding-box and ellipsoid
//!   densities, integrated intensity, Moran's I and Geary's C;
//! - **GLCM and GLRLM**: both the average over the 13 directions (`_3D_avg`, which is what
//!   PyRadiomics computes) and the merged matrix (`_3D_comb`);
//! - **GLSZM, NGTDM, NGLDM** (PyRadiomics' GLDM): one 3-D matrix each (`_3D`);
//! - families PyRadiomics lacks: **GLDZM**, the **intensity-volume histogram** and **local
//!   intensity** peaks.
//!
//! Each feature carries its IBSI-style tag (the `feature_tag` of the IBSI reference tables,
//! for example `stat_kurt` or `cm_joint_max_3D_avg`) and its IBSI permanent identifier.
//! Texture matrices use Chebyshev distance 1 (26 neighbours, 13 directions), a symmetric
//! GLCM and 26-connected zones. The 2-D and 2.5-D aggregations work on slices of
//! constant k.

mod aggregation;
mod autocorrelation;
mod codes;
mod convex_hull;
mod glcm;
mod glrlm;
mod grey_levels;
mod histogram;
mod ivh;
mod local_intensity;
mod morphology;
mod ngldm;
mod ngtdm;
pub mod processing;
mod size_matrix;
mod statistics;
mod zones;

pub use grey_levels::GreyLevelRule;
pub use ivh::IvhSettings;

use crate::image::Volume;
use crate::mask::Roi;
use grey_levels::RoiGrid;

/// Feature definitions and column names of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention {
    /// PyRadiomics 3.1.4 definitions and names (`original_<class>_<Feature>`).
    #[default]
    Pyradiomics,
    /// IBSI definitions and names (`ibsi_<tag>`), see the module documentation.
    Ibsi,
}

/// An IBSI feature family, named as the IBSI reference tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Morphology of the ROI mesh and voxels.
    Morphology,
    /// Local and global intensity peaks.
    LocalIntensity,
    /// Statistics of the raw ROI intensities.
    IntensityStatistics,
    /// Statistics of the discretised ROI intensities.
    IntensityHistogram,
    /// Intensity-volume histogram.
    IntensityVolumeHistogram,
    /// Grey level co-occurrence matrix.
    Glcm,
    /// Grey level run length matrix.
    Glrlm,
    /// Grey level size zone matrix.
    Glszm,
    /// Grey level distance zone matrix.
    Gldzm,
    /// Neighbourhood grey tone difference matrix.
    Ngtdm,
    /// Neighbouring grey level dependence matrix.
    Ngldm,
}

impl Family {
    /// Every family, in output order.
    pub const ALL: [Family; 11] = [
        Family::Morphology,
        Family::LocalIntensity,
        Family::IntensityStatistics,
        Family::IntensityHistogram,
        Family::IntensityVolumeHistogram,
        Family::Glcm,
        Family::Glrlm,
        Family::Glszm,
        Family::Gldzm,
        Family::Ngtdm,
        Family::Ngldm,
    ];

    /// Returns the family's name as in the `family` column of the IBSI reference tables.
    pub fn name(self) -> &'static str {
        match self {
            Family::Morphology => "morphology",
            Family::LocalIntensity => "local_intensity",
            Family::IntensityStatistics => "intensity_statistics",
            Family::IntensityHistogram => "intensity_histogram",
            Family::IntensityVolumeHistogram => "intensity_volume_histogram",
            Family::Glcm => "glcm",
            Family::Glrlm => "glrlm",
            Family::Glszm => "glszm",
            Family::Gldzm => "gldzm",
            Family::Ngtdm => "ngtdm",
            Family::Ngldm => "ngldm",
        }
    }

    /// Returns the IBSI families computed for a PyRadiomics class in IBSI mode. `shape`
    /// gives morphology, and `firstorder` the intensity statistics, intensity histogram,
    /// intensity-volume histogram and local intensity. `glszm` gives both zone matrices
    /// (GLSZM and GLDZM), `gldm` gives NGLDM, and the other texture classes give their
    /// IBSI namesake.
    pub fn for_class(class: super::FeatureClass) -> &'static [Family] {
        use super::FeatureClass;
        match class {
            FeatureClass::Shape => &[Family::Morphology],
            // The IBSI defines no 2-D morphology family.
            FeatureClass::Shape2D => &[],
            FeatureClass::FirstOrder => &[
                Family::LocalIntensity,
                Family::IntensityStatistics,
                Family::IntensityHistogram,
                Family::IntensityVolumeHistogram,
            ],
            FeatureClass::Glcm => &[Family::Glcm],
            FeatureClass::Glrlm => &[Family::Glrlm],
            FeatureClass::Glszm => &[Family::Glszm, Family::Gldzm],
            FeatureClass::Gldm => &[Family::Ngldm],
            FeatureClass::Ngtdm => &[Family::Ngtdm],
        }
    }
}

/// One IBSI feature value.
#[derive(Debug, Clone, PartialEq)]
pub struct IbsiFeature {
    /// Family the feature belongs to.
    pub family: Family,
    /// IBSI-style tag with aggregation suffix, for example `cm_joint_max_3D_avg`.
    pub tag: String,
    /// IBSI permanent identifier of the feature, for example `GYBY`.
    pub code: &'static str,
    /// The value.
    pub value: f64,
}

/// Settings of the IBSI mode.
#[derive(Debug, Clone, PartialEq)]
pub struct IbsiSettings {
    /// Grey-level rule of the intensity histogram and the texture families.
    pub discretization: GreyLevelRule,
    /// Intensity-volume histogram discretisation and range.
    pub ivh: IvhSettings,
    /// Image processing before the features (rounding, interpolation, outlier filter).
    pub processing: processing::ProcessingSettings,
    /// NGLDM coarseness α: neighbours within α grey levels of the centre count as
    /// dependent. IBSI and PyRadiomics (`gldm_a`) default to 0.
    pub ngldm_alpha: u32,
}

impl IbsiSettings {
    /// Returns the settings for a fixed bin size w from `lower_bound` (or the ROI minimum):
    /// the texture families and the intensity histogram use w, and the IVH treats the
    /// intensities as discrete with interval 1 over the ROI's range. NGLDM α is 0, and no
    /// processing step runs.
    pub fn for_bin_width(width: f64, lower_bound: Option<f64>) -> Self {
        IbsiSettings {
            discretization: GreyLevelRule::FixedBinSize { width, lower_bound },
            ivh: IvhSettings::discrete_unit(),
            processing: processing::ProcessingSettings::default(),
            ngldm_alpha: 0,
        }
    }

    /// Returns the settings of the IBSI digital phantom: grey levels equal to the
    /// intensities (fixed bin size 1 from 1), IVH over [1, 6] in steps of 1, α = 0.
    pub fn digital_phantom() -> Self {
        IbsiSettings {
            discretization: GreyLevelRule::FixedBinSize {
                width: 1.0,
                lower_bound: Some(1.0),
            },
            ivh: IvhSettings::Discrete {
                interval: 1.0,
                lower: Some(1.0),
                upper: Some(6.0),
            },
            processing: processing::ProcessingSettings::default(),
            ngldm_alpha: 0,
        }
    }
}

/// Reason the IBSI features of an ROI could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IbsiError {
    /// The mask selects no voxel.
    #[error("ROI is empty; the mask selects no voxel")]
    EmptyRoi,
    /// Image and mask grids differ.
    #[error(
        "mask shape {mask:?} differs from image shape {image:?}; place the mask on the image grid first"
    )]
    ShapeMismatch {
        /// Image array shape (i, j, k).
        image: [usize; 3],
        /// Mask array shape (i, j, k).
        mask: [usize; 3],
    },
    /// An ROI intensity is NaN or infinite.
    #[error("intensity {value} at voxel {voxel:?} inside the ROI is not finite")]
    NonFiniteIntensity {
        /// The intensity.
        value: f64,
        /// Its voxel index (i, j, k).
        voxel: [usize; 3],
    },
    /// A setting is out of range.
    #[error("IBSI setting {field} = {value} is invalid: {reason}")]
    InvalidSetting {
        /// Setting name.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// Condition the value must meet.
        reason: &'static str,
    },
    /// The ROI mask was to be interpolated with a tricubic spline.
    #[error(
        "the ROI mask cannot be interpolated with a tricubic spline, which over- and undershoots; use nearest neighbour or trilinear interpolation"
    )]
    SplineMask,
    /// Re-segmentation or outlier filtering left too few voxels.
    #[error(transparent)]
    Resegment(#[from] crate::features::resegment::ResegmentError),
    /// Discretisation gives more grey levels than the texture families accept.
    #[error(
        "the ROI gets {levels} grey levels, more than the cap of {cap}; raise the bin width or lower the bin number"
    )]
    TooManyLevels {
        /// Grey levels the rule gives.
        levels: u64,
        /// The cap.
        cap: u32,
    },
}

/// Computes the requested IBSI families of one ROI, in the order of [`Family::ALL`].
///
/// `image` must be on the masks' grid. `morphological_roi` gives the mesh, axes and
/// geometric centre of the morphology family and the GLDZM border distances.
/// `intensity_roi` is the re-segmented ROI (or the same ROI), and every intensity comes
/// from it, including those of Moran's I, Geary's C and the integrated intensity. Local
/// intensity also reads image voxels outside the ROI.
pub fn compute(
    image: &Volume,
    morphological_roi: &Roi,
    intensity_roi: &Roi,
    families: &[Family],
    settings: &IbsiSettings,
) -> Result<Vec<IbsiFeature>, IbsiError> {
    let image_shape: [usize; 3] = image.data.dim().into();
    let morphological_shape: [usize; 3] = morphological_roi.mask.dim().into();
    if morphological_shape != image_shape {
        return Err(IbsiError::ShapeMismatch {
            image: image_shape,
            mask: morphological_shape,
        });
    }
    let grid = RoiGrid::new(
        image,
        intensity_roi,
        &settings.discretization,
        super::MAX_GREY_LEVELS,
    )?;

    let mut output = Vec::new();
    for family in Family::ALL {
        if !families.contains(&family) {
            continue;
        }
        let _span = tracing::debug_span!("ibsi_family", family = family.name()).entered();
        let values: Vec<(String, f64)> = match family {
            Family::Morphology => morphology::compute(morphological_roi, &grid),
            Family::LocalIntensity => local_intensity::compute(image, &grid),
            Family::IntensityStatistics => statistics::compute_tagged(&grid.roi_intensities()),
            Family::IntensityHistogram => histogram::compute(&grid),
            Family::IntensityVolumeHistogram => ivh::compute(&grid, &settings.ivh)?,
            Family::Glcm => glcm::compute(&grid),
            Family::Glrlm => glrlm::compute(&grid),
            Family::Glszm => zones::compute_glszm(&grid),
            Family::Gldzm => zones::compute_gldzm(&grid, morphological_roi),
            Family::Ngtdm => ngtdm::compute(&grid),
            Family::Ngldm => ngldm::compute(&grid, settings.ngldm_alpha),
        };
        output.extend(values.into_iter().map(|(tag, value)| IbsiFeature {
            family,
            code: code_of(&tag),
            tag,
            value,
        }));
    }
    Ok(output)
}

/// Returns the tags that [`compute`] gives a family, in output order.
pub fn feature_tags(family: Family) -> Vec<String> {
    use aggregation::{DIRECTIONAL_SUFFIXES, SLICE_SUFFIXES};
    let directional = [&["_3D_avg", "_3D_comb"][..], &DIRECTIONAL_SUFFIXES[..]].concat();
    let per_slice = [&["_3D"][..], &SLICE_SUFFIXES[..]].concat();
    let (prefix, names, suffixes): (&str, &[&str], Vec<&str>) = match family {
        Family::Morphology => ("morph_", &morphology::NAMES, vec![""]),
        Family::LocalIntensity => ("loc_", &local_intensity::NAMES, vec![""]),
        Family::IntensityStatistics => ("stat_", &statistics::NAMES, vec![""]),
        Family::IntensityHistogram => ("ih_", &histogram::NAMES, vec![""]),
        Family::IntensityVolumeHistogram => ("ivh_", &ivh::NAMES, vec![""]),
        Family::Glcm => ("cm_", &glcm::NAMES, directional),
        Family::Glrlm => ("rlm_", &glrlm::NAMES, directional),
        Family::Glszm => ("szm_", &zones::GLSZM_NAMES, per_slice),
        Family::Gldzm => ("dzm_", &zones::GLDZM_NAMES, per_slice),
        Family::Ngtdm => ("ngt_", &ngtdm::NAMES, per_slice),
        Family::Ngldm => ("ngl_", &ngldm::NAMES, per_slice),
    };
    suffixes
        .iter()
        .flat_map(|suffix| {
            names
                .iter()
                .map(move |name| format!("{prefix}{name}{suffix}"))
        })
        .collect()
}

/// Returns the IBSI permanent identifier of a tag (with or without aggregation suffix),
/// or `""` for a tag IBSI does not list.
pub fn code_of(tag: &str) -> &'static str {
    let base = AGGREGATION_SUFFIXES
        .iter()
        .find_map(|suffix| tag.strip_suffix(suffix))
        .unwrap_or(tag);
    codes::FEATURE_CODES
        .iter()
        .find(|(name, _)| *name == base)
        .map_or("", |(_, code)| code)
}

/// Aggregation suffixes of texture tags, each before any suffix it ends with, so that
/// `_2_5D_avg` is not read as `_5D_avg` or `_3D_avg` as `_3D`.
const AGGREGATION_SUFFIXES: [&str; 9] = [
    "_2_5D_avg",
    "_2_5D_comb",
    "_2_5D",
    "_2D_avg",
    "_2D_comb",
    "_2D",
    "_3D_avg",
    "_3D_comb",
    "_3D",
];

/// Pairs each value with its tag `<prefix><name><suffix>`.
fn tagged<const N: usize>(
    prefix: &str,
    suffix: &str,
    names: [&str; N],
    values: [f64; N],
) -> Vec<(String, f64)> {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| (format!("{prefix}{name}{suffix}"), value))
        .collect()
}
