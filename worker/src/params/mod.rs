//! PyRadiomics parameter files: the YAML that `featureextractor.RadiomicsFeatureExtractor`
//! reads, with its top-level keys `imageType`, `featureClass` and `setting`, and
//! PyRadiomics' own key names (its `radiomics/schemas/paramSchema.yaml`, master branch).
//!
//! A file is accepted unchanged when everything it sets is implemented here. Each key that
//! is not a PyRadiomics key is an error that names it and lists close valid keys. Each key
//! that PyRadiomics accepts but radstudy does not implement yet (LBP image types, wavelets
//! other than coif1, 2-D wavelets under force2D, voxel-based extraction) is an error of
//! its own, so none is silently ignored.
//!
//! `force2D` with `force2Ddimension` restricts the texture classes to in-plane neighbours
//! and enables `shape2D`, and `weightingNorm` merges the GLCM and GLRLM angles (see
//! `features::texture_angles`). `shape2D` listed under `featureClass` without force2D is
//! an error, where PyRadiomics skips it with a warning. Without a `featureClass` section,
//! shape2D is enabled exactly when force2D is, as in PyRadiomics. So an ROI of more than one
//! slice then fails, as it does in PyRadiomics.
//!
//! Each enabled image type gets the `setting` values overridden by its own mapping, as
//! PyRadiomics passes them to its filter and feature classes. Normalisation,
//! resegmentation and the ROI checks run once on the original image, with `setting`
//! overridden by `imageType.Original`. `preCrop` crops the image to the ROI plus
//! `padDistance` voxels before the filters, which changes filtered values only. Keys that
//! only steer PyRadiomics' diagnostics or mask correction (`additionalInfo`,
//! `correctMask`, `interpolator` without resampling, `force2Ddimension` without `force2D`)
//! are validated and have no effect on the values. A mask on a sub-grid of the image is
//! always placed by physical position, within `geometryTolerance` when it is set.

pub mod document;
mod ibsi_mode;
mod image_type;
mod setting;
pub mod suggest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::features::image_types::ImageTypeSpec;
use crate::features::{ExtractionOptions, ExtractionSettings, FeatureClass};

pub use setting::SETTING_KEYS;

/// Top-level keys of a PyRadiomics parameter file.
pub const TOP_LEVEL_KEYS: [&str; 4] = ["imageType", "featureClass", "setting", "voxelSetting"];

/// Image types PyRadiomics accepts, in radstudy's output order. All but `LBP2D` and
/// `LBP3D` are implemented.
pub const IMAGE_TYPES: [&str; 10] = [
    "Original",
    "LoG",
    "Wavelet",
    "Square",
    "SquareRoot",
    "Logarithm",
    "Exponential",
    "Gradient",
    "LBP2D",
    "LBP3D",
];

/// Feature classes PyRadiomics accepts.
pub const CLASS_NAMES: [&str; 8] = [
    "shape",
    "shape2D",
    "firstorder",
    "glcm",
    "glrlm",
    "glszm",
    "gldm",
    "ngtdm",
];

/// Error in a parameter file, naming the key and the bad value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    /// The file could not be read.
    #[error("cannot read parameter file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        reason: String,
    },
    /// The text is not valid YAML, or its top level is not a mapping.
    #[error("parameter file is not valid YAML: {0}")]
    Yaml(String),
    /// A key that PyRadiomics does not know.
    #[error("unknown key {key:?} in {section}; {}", hint(close))]
    UnknownKey {
        /// `top level`, `setting`, `imageType` or `featureClass`.
        section: &'static str,
        /// The key as written.
        key: String,
        /// Valid keys within a small edit distance.
        close: Vec<&'static str>,
    },
    /// A feature name that the class does not have.
    #[error("unknown feature {feature:?} in featureClass {class}; {}", hint(close))]
    UnknownFeature {
        /// The class.
        class: &'static str,
        /// The feature as written.
        feature: String,
        /// Features of the class within a small edit distance.
        close: Vec<&'static str>,
    },
    /// A value of the wrong type or out of range.
    #[error("{key} = {value} is invalid; expected {expected}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as YAML.
        value: String,
        /// Accepted values of the key.
        expected: &'static str,
    },
    /// A PyRadiomics key or value that radstudy does not implement yet.
    #[error(
        "{key} = {value} is not implemented in radstudy yet: {reason}; remove it or use PyRadiomics"
    )]
    NotImplemented {
        /// The key.
        key: String,
        /// The value as YAML.
        value: String,
        /// The missing part of radstudy.
        reason: &'static str,
    },
    /// `imageType` or `featureClass` enables nothing.
    #[error("{0} is empty; enable at least one entry, for example {1}")]
    Empty(&'static str, &'static str),
}

fn hint(close: &[&str]) -> String {
    if close.is_empty() {
        "check the spelling against the PyRadiomics documentation".to_string()
    } else {
        format!("did you mean {}?", close.join(" or "))
    }
}

/// A parsed parameter file: the three contract settings and the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterFile {
    /// Classes, bin width and label, as the gRPC contract carries them.
    pub settings: ExtractionSettings,
    /// Everything else `setting` and `imageType.Original` set: the preprocessing, the ROI
    /// checks, shape, and the features of the original image.
    pub options: ExtractionOptions,
    /// Enabled image types in [`IMAGE_TYPES`] order, each with its own options.
    /// Without an `imageType` section this is `Original` alone, as in PyRadiomics.
    pub image_types: Vec<ImageTypeSpec>,
}

/// Reads and parses a parameter file.
pub fn read_parameter_file(path: &Path) -> Result<ParameterFile, ParamsError> {
    let text = std::fs::read_to_string(path).map_err(|error| ParamsError::Read {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    parse_parameters(&text)
}

/// Parses the text of a parameter file. An empty file gives PyRadiomics' defaults: the
/// original image, every class, bin width 25, label 1.
pub fn parse_parameters(text: &str) -> Result<ParameterFile, ParamsError> {
    let root: Value =
        serde_norway::from_str(text).map_err(|error| ParamsError::Yaml(error.to_string()))?;
    parse_parameter_value(&root)
}

/// Parses a parameter document that is already a YAML value, as [`parse_parameters`]
/// parses its text.
pub fn parse_parameter_value(root: &Value) -> Result<ParameterFile, ParamsError> {
    let empty = Mapping::new();
    let root = match root {
        Value::Null => &empty,
        Value::Mapping(mapping) => mapping,
        other => {
            return Err(ParamsError::Yaml(format!(
                "the top level must be a mapping of imageType, featureClass and setting, not {}",
                render(other)
            )));
        }
    };

    let mut sections: BTreeMap<&'static str, &Value> = BTreeMap::new();
    for (key, value) in root {
        let name = key_name(key, "top level", &TOP_LEVEL_KEYS)?;
        sections.insert(name, value);
    }
    if let Some(value) = sections.get("voxelSetting") {
        return Err(ParamsError::NotImplemented {
            key: "voxelSetting".into(),
            value: render(value),
            reason: "voxel-based (feature map) extraction is not implemented",
        });
    }

    let mut builder = setting::SettingsBuilder::default();
    if let Some(value) = sections.get("setting") {
        builder.apply(section_mapping(value, "setting")?)?;
    }
    let general = builder.clone();
    let enabled = match sections.get("imageType") {
        Some(value) => enabled_image_types(section_mapping(value, "imageType")?)?,
        None => vec![("Original", None)],
    };
    if let Some((_, Some(overrides))) = enabled.iter().find(|(name, _)| *name == "Original") {
        builder.apply(overrides)?;
    }
    let (classes, selection) = match sections.get("featureClass") {
        Some(value) => parse_classes(section_mapping(value, "featureClass")?)?,
        // PyRadiomics enables every class, and skips shape2D when force2D is off.
        None if builder.force_2d()? => (FeatureClass::WITH_SHAPE_2D.to_vec(), BTreeMap::new()),
        None => (FeatureClass::ALL.to_vec(), BTreeMap::new()),
    };
    if classes.contains(&FeatureClass::Shape2D) && !builder.force_2d()? {
        return Err(ParamsError::InvalidValue {
            key: "featureClass.shape2D".into(),
            value: "enabled with force2D off".into(),
            expected: "force2D: true with force2Ddimension across the slice, or no shape2D (PyRadiomics skips it without force2D)",
        });
    }

    let mut image_types = Vec::with_capacity(enabled.len());
    for (name, overrides) in &enabled {
        let mut type_settings = general.clone();
        if let Some(overrides) = overrides {
            type_settings.apply(overrides)?;
        }
        let image_type = image_type::parse_image_type(name, &type_settings)?;
        let parsed = type_settings.finish(classes.clone(), selection.clone())?;
        image_types.push(ImageTypeSpec {
            image_type,
            options: parsed.options,
        });
    }
    let mut parsed = builder.finish(classes, selection)?;
    parsed.image_types = image_types;
    Ok(parsed)
}

/// An enabled image type and the settings its own mapping overrides.
type EnabledImageType<'a> = (&'static str, Option<&'a Mapping>);

/// Lists the enabled image types of `imageType` in [`IMAGE_TYPES`] order, each with its
/// mapping of settings (null for none).
fn enabled_image_types(types: &Mapping) -> Result<Vec<EnabledImageType<'_>>, ParamsError> {
    if types.is_empty() {
        return Err(ParamsError::Empty("imageType", "`Original: {}`"));
    }
    let mut enabled = Vec::new();
    for (key, value) in types {
        let name = key_name(key, "imageType", &IMAGE_TYPES)?;
        if name.starts_with("LBP") {
            return Err(ParamsError::NotImplemented {
                key: format!("imageType.{name}"),
                value: render(value),
                reason: "local binary pattern (LBP) images are not implemented",
            });
        }
        let overrides = match value {
            Value::Null => None,
            Value::Mapping(overrides) => Some(overrides),
            other => {
                return Err(ParamsError::InvalidValue {
                    key: format!("imageType.{name}"),
                    value: render(other),
                    expected: "an empty mapping {} or a mapping of settings",
                });
            }
        };
        enabled.push((name, overrides));
    }
    enabled.sort_by_key(|(name, _)| IMAGE_TYPES.iter().position(|known| known == name));
    Ok(enabled)
}

/// Enabled classes, and the features chosen per class where the file lists them.
type ClassSelection = (Vec<FeatureClass>, BTreeMap<FeatureClass, Vec<&'static str>>);

/// Parses `featureClass`: each class maps to null or an empty list (all features) or to a
/// list of feature names.
fn parse_classes(mapping: &Mapping) -> Result<ClassSelection, ParamsError> {
    if mapping.is_empty() {
        return Err(ParamsError::Empty("featureClass", "`firstorder:`"));
    }
    let mut classes = Vec::new();
    let mut selection = BTreeMap::new();
    for (key, value) in mapping {
        let name = key_name(key, "featureClass", &CLASS_NAMES)?;
        let class = FeatureClass::parse(name).map_err(|_| ParamsError::UnknownKey {
            section: "featureClass",
            key: name.to_string(),
            close: Vec::new(),
        })?;
        classes.push(class);
        let features = match value {
            Value::Null => continue,
            Value::Sequence(items) if items.is_empty() => continue,
            Value::Sequence(items) => items,
            other => {
                return Err(ParamsError::InvalidValue {
                    key: format!("featureClass.{name}"),
                    value: render(other),
                    expected: "nothing (all features) or a list of feature names",
                });
            }
        };
        let known = class.computed_feature_names();
        let mut chosen = Vec::new();
        for item in features {
            let Value::String(feature) = item else {
                return Err(ParamsError::InvalidValue {
                    key: format!("featureClass.{name}"),
                    value: render(item),
                    expected: "feature names as strings",
                });
            };
            let Some(&found) = known.iter().find(|&&known| known == feature) else {
                return Err(ParamsError::UnknownFeature {
                    class: class.name(),
                    feature: feature.clone(),
                    close: suggest::close_names(feature, known),
                });
            };
            if !chosen.contains(&found) {
                chosen.push(found);
            }
        }
        selection.insert(class, chosen);
    }
    classes.sort();
    classes.dedup();
    Ok((classes, selection))
}

fn section_mapping<'a>(
    value: &'a Value,
    section: &'static str,
) -> Result<&'a Mapping, ParamsError> {
    static EMPTY: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
    match value {
        Value::Null => Ok(EMPTY.get_or_init(Mapping::new)),
        Value::Mapping(mapping) => Ok(mapping),
        other => Err(ParamsError::InvalidValue {
            key: section.to_string(),
            value: render(other),
            expected: "a mapping",
        }),
    }
}

/// Returns the known key that `key` spells, or an unknown-key error with close names.
fn key_name(
    key: &Value,
    section: &'static str,
    known: &[&'static str],
) -> Result<&'static str, ParamsError> {
    let text = match key {
        Value::String(text) => text.clone(),
        other => render(other),
    };
    known
        .iter()
        .find(|&&name| name == text)
        .copied()
        .ok_or_else(|| ParamsError::UnknownKey {
            section,
            close: suggest::close_names(&text, known),
            key: text,
        })
}

/// Renders a YAML value on one line, in flow style, for messages.
fn render(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(mapping) => {
            let entries: Vec<String> = mapping
                .iter()
                .map(|(key, value)| format!("{}: {}", render(key), render(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, render(&tagged.value)),
    }
}

#[cfg(test)]
mod tests;
