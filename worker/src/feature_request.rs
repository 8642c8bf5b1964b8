//! The features that an `Extract` round computes for each ROI: the contract's classes, bin
//! width and label on the original image, or (since contract 1.4) a whole PyRadiomics
//! parameter document with its image types, resampling, normalisation, resegmentation and
//! IBSI mode.
//!
//! A round with a document computes exactly what `radstudy-worker extract --param` computes
//! for the same file: the same parser ([`crate::params::document`]), the same pipeline
//! ([`crate::features::image_types::compute_image_types`]) and the same column names
//! ([`crate::cli::extract::feature_columns`]).

use std::sync::Arc;

use crate::cli::extract::feature_columns;
use crate::config::GeometryTolerance;
use crate::features::{ExtractionSettings, SettingsError};
use crate::params::document::{DocumentError, ParameterDocument};

/// The features of a round and the mask label they use.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRequest {
    /// Classes, bin width and label. With a parameter document, the document's.
    pub settings: ExtractionSettings,
    /// The parameter document and its columns, when the request carries one.
    pub parameters: Option<Arc<RoundParameters>>,
}

/// A round's parameter document with the feature columns it produces.
#[derive(Debug, PartialEq)]
pub struct RoundParameters {
    /// The validated document.
    pub document: ParameterDocument,
    /// Feature columns in output order, as `radstudy-worker extract` writes them.
    pub columns: Vec<String>,
}

/// Invalid extraction settings of a request, with the contract field that is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureRequestError {
    /// The classes, bin width or label are invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The parameter document is invalid. The message names the key.
    #[error("{0}")]
    Document(#[from] DocumentError),
    /// Both the document and one of the fields it replaces are set.
    #[error(
        "{field} is set together with parameters_json; leave feature_classes, bin_width and label empty, because the document sets them (featureClass, setting.binWidth, setting.label)"
    )]
    Mixed {
        /// The field that should be empty.
        field: &'static str,
    },
}

impl FeatureRequestError {
    /// Returns the contract field that the error concerns.
    pub fn field(&self) -> &'static str {
        match self {
            FeatureRequestError::Settings(_) => "settings",
            FeatureRequestError::Document(_) | FeatureRequestError::Mixed { .. } => {
                "settings.parameters_json"
            }
        }
    }
}

impl FeatureRequest {
    /// Wraps the contract's three settings, without a parameter document.
    pub fn from_settings(settings: ExtractionSettings) -> Self {
        FeatureRequest {
            settings,
            parameters: None,
        }
    }

    /// Validates the contract's settings message: the three fields alone, or
    /// `parameters_json` alone.
    pub fn from_proto(
        settings: &radstudy_proto::v1::ExtractionSettings,
    ) -> Result<Self, FeatureRequestError> {
        if settings.parameters_json.is_empty() {
            return Ok(Self::from_settings(ExtractionSettings::from_proto(
                settings,
            )?));
        }
        let mixed = [
            ("feature_classes", !settings.feature_classes.is_empty()),
            ("bin_width", settings.bin_width != 0.0),
            ("label", settings.label != 0),
        ];
        if let Some((field, _)) = mixed.into_iter().find(|(_, set)| *set) {
            return Err(FeatureRequestError::Mixed { field });
        }
        let document = ParameterDocument::from_json(&settings.parameters_json)?;
        Ok(Self::from_document(document))
    }

    /// Builds the request of a validated parameter document.
    pub fn from_document(document: ParameterDocument) -> Self {
        let columns = feature_columns(document.parsed());
        FeatureRequest {
            settings: document.parsed().settings.clone(),
            parameters: Some(Arc::new(RoundParameters { document, columns })),
        }
    }

    /// Returns the feature columns in output order.
    pub fn feature_names(&self) -> Vec<String> {
        match &self.parameters {
            Some(parameters) => parameters.columns.clone(),
            None => self.settings.feature_names(),
        }
    }

    /// Returns the axes along which the ROI must span more than one voxel: the document's
    /// `minimumROIDimensions`, else 2.
    pub fn minimum_roi_dimensions(&self) -> usize {
        match &self.parameters {
            Some(parameters) => parameters.document.parsed().options.minimum_roi_dimensions,
            None => crate::mask::MIN_ROI_DIMENSIONS,
        }
    }

    /// Returns the image/mask tolerance of the round: the site's, with the origin
    /// tolerance replaced by the document's `geometryTolerance` where it sets one, as
    /// `radstudy-worker extract` replaces its default.
    pub fn geometry_tolerance(&self, site: &GeometryTolerance) -> GeometryTolerance {
        let mut tolerance = site.clone();
        if let Some(origin_mm) = self
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.document.parsed().options.geometry_tolerance_mm)
        {
            tolerance.origin_mm = origin_mm;
        }
        tolerance
    }

    /// Returns the canonical JSON of the document, or none, for the result cache key.
    pub fn canonical_json(&self) -> Option<&str> {
        self.parameters
            .as_ref()
            .map(|parameters| parameters.document.canonical_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use radstudy_proto::v1::ExtractionSettings as ProtoSettings;

    fn document(json: &str) -> ProtoSettings {
        ProtoSettings {
            parameters_json: json.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn from_proto_without_document_keeps_settings() {
        let request = FeatureRequest::from_proto(&ProtoSettings {
            feature_classes: vec!["firstorder".into()],
            bin_width: 25.0,
            label: 1,
            parameters_json: String::new(),
        })
        .expect("valid settings");
        assert!(request.parameters.is_none());
        assert_eq!(request.feature_names()[0], "original_firstorder_Energy");
        assert_eq!(request.feature_names().len(), 18);
    }

    #[test]
    fn from_proto_document_names_image_type_columns() {
        let request = FeatureRequest::from_proto(&document(
            r#"{"imageType":{"Original":{},"LoG":{"sigma":[2.0]},"Wavelet":{}},"featureClass":{"firstorder":["Mean"]},"setting":{"label":2,"binWidth":10}}"#,
        ))
        .expect("valid document");
        assert_eq!(request.settings.label, 2);
        assert_eq!(request.settings.bin_width, 10.0);
        // Original, one LoG σ and the 8 coif1 sub-bands of level 1, one feature each.
        let names = request.feature_names();
        assert_eq!(names.len(), 10, "{names:?}");
        assert_eq!(names[0], "original_firstorder_Mean");
        assert_eq!(names[1], "log-sigma-2-0-mm-3D_firstorder_Mean");
        assert!(names.contains(&"wavelet-LLH_firstorder_Mean".to_string()));
        assert!(names.contains(&"wavelet-HHH_firstorder_Mean".to_string()));
    }

    #[test]
    fn from_proto_rejects_document_with_settings() {
        for (settings, field) in [
            (
                ProtoSettings {
                    feature_classes: vec!["shape".into()],
                    ..document("{}")
                },
                "feature_classes",
            ),
            (
                ProtoSettings {
                    bin_width: 25.0,
                    ..document("{}")
                },
                "bin_width",
            ),
            (
                ProtoSettings {
                    label: 1,
                    ..document("{}")
                },
                "label",
            ),
        ] {
            let error = FeatureRequest::from_proto(&settings).unwrap_err();
            assert_eq!(error, FeatureRequestError::Mixed { field });
            assert_eq!(error.field(), "settings.parameters_json");
        }
    }

    #[test]
    fn from_proto_document_error_names_key() {
        let error =
            FeatureRequest::from_proto(&document(r#"{"setting":{"normalise":true}}"#)).unwrap_err();
        assert_eq!(error.field(), "settings.parameters_json");
        let message = error.to_string();
        assert!(message.contains("\"normalise\""), "{message}");
        assert!(message.contains("normalize"), "{message}");
    }

    #[test]
    fn geometry_tolerance_takes_document_origin() {
        let site = GeometryTolerance::default();
        let request =
            FeatureRequest::from_proto(&document(r#"{"setting":{"geometryTolerance":0.5}}"#))
                .expect("valid document");
        let tolerance = request.geometry_tolerance(&site);
        assert_eq!(tolerance.origin_mm, 0.5);
        assert_eq!(tolerance.spacing_relative, site.spacing_relative);
        let plain = FeatureRequest::from_settings(request.settings.clone());
        assert_eq!(plain.geometry_tolerance(&site), site);
    }
}
