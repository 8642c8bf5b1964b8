//! `[features]` of study.toml: what every worker extracts.
//!
//! Two forms. The short form sets `classes`, `bin_width` and `label`, and the workers
//! extract the original image only (every contract version). The full form names a
//! PyRadiomics parameter file with `params` (YAML, relative to the study file) and/or
//! sets PyRadiomics keys inline under `[features.setting]`, `[features.imageType]` and
//! `[features.featureClass]`. Inline `setting` keys replace the file's keys one by one.
//! An inline `imageType` or `featureClass` table replaces the file's section whole,
//! because those sections list what is enabled and a merge could not disable an entry.
//!
//! The full form is validated here by the worker's own parser
//! ([`radstudy_worker::params::document`]), so a study with an unknown key or a bad value
//! fails at plan time with the message that `radstudy-worker extract --param` gives. The
//! workers receive the document as canonical JSON and need contract 1.4.

use std::path::{Path, PathBuf};

use radstudy_proto::v1::ExtractionSettings;
use radstudy_worker::params::document::ParameterDocument;
use serde::Deserialize;
use serde_norway::{Mapping, Value};

use super::StudyConfigError;

/// Feature extraction settings sent to every worker.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    /// PyRadiomics feature classes, from the parameter document when there is one.
    pub classes: Vec<String>,
    /// Fixed bin width for histogram features, in intensity units, from the parameter
    /// document's `binWidth` when there is one.
    pub bin_width: f64,
    /// Mask label of the tumour, from the parameter document's `label` when there is one.
    pub label: u32,
    /// The canonical JSON of the PyRadiomics parameter document that `params` and the
    /// inline keys make, or none for the short form.
    pub parameters_json: Option<String>,
}

fn default_classes() -> Vec<String> {
    vec!["shape".into(), "firstorder".into()]
}

fn default_bin_width() -> f64 {
    25.0
}

fn default_label() -> u32 {
    1
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            classes: default_classes(),
            bin_width: default_bin_width(),
            label: default_label(),
            parameters_json: None,
        }
    }
}

impl FeatureConfig {
    /// Returns the settings message of every `Extract` request: the three short-form
    /// fields, or the parameter document alone.
    pub fn contract_settings(&self) -> ExtractionSettings {
        match &self.parameters_json {
            Some(json) => ExtractionSettings {
                parameters_json: json.clone(),
                ..Default::default()
            },
            None => ExtractionSettings {
                feature_classes: self.classes.clone(),
                bin_width: self.bin_width,
                label: self.label,
                parameters_json: String::new(),
            },
        }
    }
}

/// `[features]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeatureConfig {
    classes: Option<Vec<String>>,
    bin_width: Option<f64>,
    label: Option<u32>,
    params: Option<PathBuf>,
    #[serde(rename = "imageType")]
    image_type: Option<toml::Table>,
    #[serde(rename = "featureClass")]
    feature_class: Option<toml::Table>,
    setting: Option<toml::Table>,
}

/// The feature classes that the short form accepts.
const CLASSES: [&str; 7] = [
    "shape",
    "firstorder",
    "glcm",
    "glrlm",
    "glszm",
    "gldm",
    "ngtdm",
];

impl RawFeatureConfig {
    /// Validates `[features]` of the study file at `study_path`, reading `params`
    /// relative to its folder.
    pub(super) fn validate(self, study_path: &Path) -> Result<FeatureConfig, StudyConfigError> {
        let invalid = |field: &str, value: String, expected: &str| StudyConfigError::Invalid {
            path: study_path.to_path_buf(),
            field: field.to_string(),
            value,
            expected: expected.to_string(),
        };
        let full_form = self.params.is_some()
            || self.image_type.is_some()
            || self.feature_class.is_some()
            || self.setting.is_some();
        if !full_form {
            return self.validate_short_form(invalid);
        }

        let short_keys = [
            (
                "features.classes",
                self.classes.as_ref().map(|c| format!("{c:?}")),
                "featureClass",
            ),
            (
                "features.bin_width",
                self.bin_width.map(|w| w.to_string()),
                "setting.binWidth",
            ),
            (
                "features.label",
                self.label.map(|l| l.to_string()),
                "setting.label",
            ),
        ];
        for (field, value, replacement) in short_keys {
            if let Some(value) = value {
                return Err(invalid(
                    field,
                    value,
                    &format!(
                        "not set together with params or inline PyRadiomics keys; set {replacement} in the parameter file or under [features] instead"
                    ),
                ));
            }
        }

        let parameters_error = |message: String| StudyConfigError::Parameters {
            path: study_path.to_path_buf(),
            origin: self.origin(study_path),
            message,
        };
        let mut root = match &self.params {
            Some(file) => {
                let file = study_path.parent().unwrap_or(Path::new("")).join(file);
                let text = std::fs::read_to_string(&file).map_err(|error| {
                    parameters_error(format!("cannot read {}: {error}", file.display()))
                })?;
                serde_norway::from_str(&text).map_err(|error| {
                    parameters_error(format!("{} is not valid YAML: {error}", file.display()))
                })?
            }
            None => Value::Null,
        };
        self.merge_inline(&mut root).map_err(parameters_error)?;
        let document = ParameterDocument::from_yaml(&root)
            .map_err(|error| parameters_error(error.to_string()))?;

        let settings = &document.parsed().settings;
        Ok(FeatureConfig {
            classes: settings
                .classes
                .iter()
                .map(|class| class.name().to_string())
                .collect(),
            bin_width: settings.bin_width,
            label: settings.label,
            parameters_json: Some(document.canonical_json().to_string()),
        })
    }

    fn validate_short_form(
        self,
        invalid: impl Fn(&str, String, &str) -> StudyConfigError,
    ) -> Result<FeatureConfig, StudyConfigError> {
        let classes = self.classes.unwrap_or_else(default_classes);
        if let Some(class) = classes.iter().find(|c| !CLASSES.contains(&c.as_str())) {
            return Err(invalid(
                "features.classes",
                format!("{class:?}"),
                "shape, firstorder, glcm, glrlm, glszm, gldm or ngtdm",
            ));
        }
        let bin_width = self.bin_width.unwrap_or_else(default_bin_width);
        if !(bin_width.is_finite() && bin_width > 0.0) {
            return Err(invalid(
                "features.bin_width",
                bin_width.to_string(),
                "a finite number > 0",
            ));
        }
        Ok(FeatureConfig {
            classes,
            bin_width,
            label: self.label.unwrap_or_else(default_label),
            parameters_json: None,
        })
    }

    /// Describes where the parameters come from, for error messages.
    fn origin(&self, study_path: &Path) -> String {
        let mut parts = Vec::new();
        if let Some(file) = &self.params {
            let resolved = study_path.parent().unwrap_or(Path::new("")).join(file);
            parts.push(format!("params = {}", resolved.display()));
        }
        for (name, table) in [
            ("imageType", &self.image_type),
            ("featureClass", &self.feature_class),
            ("setting", &self.setting),
        ] {
            if table.is_some() {
                parts.push(format!("[features.{name}]"));
            }
        }
        parts.join(" with ")
    }

    /// Merges the inline sections into the document `root` read from `params` (null
    /// without a file).
    fn merge_inline(&self, root: &mut Value) -> Result<(), String> {
        if root.is_null() {
            *root = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(sections) = root else {
            // The parser rejects this top level with its own message.
            return Ok(());
        };
        let to_yaml = |name: &str, table: &toml::Table| {
            serde_norway::to_value(table)
                .map_err(|error| format!("[features.{name}] cannot be converted: {error}"))
        };
        for (name, table) in [
            ("imageType", &self.image_type),
            ("featureClass", &self.feature_class),
        ] {
            if let Some(table) = table {
                sections.insert(Value::String(name.to_string()), to_yaml(name, table)?);
            }
        }
        if let Some(table) = &self.setting {
            let Value::Mapping(inline) = to_yaml("setting", table)? else {
                return Err("[features.setting] is not a table".to_string());
            };
            let key = Value::String("setting".to_string());
            match sections.get_mut(&key) {
                Some(Value::Mapping(file_settings)) => {
                    for (name, value) in inline {
                        file_settings.insert(name, value);
                    }
                }
                // The parser rejects a `setting` that is not a mapping.
                Some(other) if !other.is_null() => {}
                _ => {
                    sections.insert(key, Value::Mapping(inline));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `[features]` text of a study file in `dir`.
    fn features(dir: &Path, text: &str) -> Result<FeatureConfig, StudyConfigError> {
        let raw: RawFeatureConfig = toml::from_str(text).expect("test TOML parses");
        raw.validate(&dir.join("study.toml"))
    }

    #[test]
    fn short_form_keeps_contract_fields() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let config = features(
            dir.path(),
            "classes = [\"firstorder\"]\nbin_width = 5.0\nlabel = 2",
        )
        .expect("valid short form");
        assert_eq!(config.parameters_json, None);
        let settings = config.contract_settings();
        assert_eq!(settings.feature_classes, ["firstorder"]);
        assert_eq!(settings.bin_width, 5.0);
        assert_eq!(settings.label, 2);
        assert!(settings.parameters_json.is_empty());
    }

    #[test]
    fn params_file_merges_inline_settings() {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::create_dir(dir.path().join("params")).expect("folder");
        std::fs::write(
            dir.path().join("params/mr.yaml"),
            "imageType:\n  Original: {}\n  LoG: {sigma: [2.0]}\n  Wavelet: {}\nfeatureClass:\n  firstorder:\nsetting:\n  binWidth: 25\n  label: 1\n",
        )
        .expect("params file");
        let config = features(
            dir.path(),
            "params = \"params/mr.yaml\"\n[setting]\nlabel = 2\nnormalize = true\n",
        )
        .expect("valid parameters");
        // The inline `label` replaces the file's, and the file's binWidth stays.
        assert_eq!(config.label, 2);
        assert_eq!(config.bin_width, 25.0);
        assert_eq!(config.classes, ["firstorder"]);
        assert_eq!(
            config.parameters_json.as_deref(),
            Some(
                r#"{"featureClass":{"firstorder":null},"imageType":{"LoG":{"sigma":[2.0]},"Original":{},"Wavelet":{}},"setting":{"binWidth":25,"label":2,"normalize":true}}"#
            )
        );
        // The contract carries the document alone, so a 1.3 worker rejects the request.
        let settings = config.contract_settings();
        assert!(settings.feature_classes.is_empty());
        assert_eq!(settings.bin_width, 0.0);
        assert_eq!(settings.label, 0);
        assert_eq!(Some(settings.parameters_json), config.parameters_json);
    }

    #[test]
    fn inline_image_type_replaces_file_section() {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(
            dir.path().join("params.yaml"),
            "imageType: {Original: {}, Square: {}}\n",
        )
        .expect("params file");
        let config = features(
            dir.path(),
            "params = \"params.yaml\"\n[imageType.LoG]\nsigma = [1.0, 3.0]\n",
        )
        .expect("valid parameters");
        let json = config.parameters_json.expect("document");
        assert!(
            json.contains(r#""imageType":{"LoG":{"sigma":[1.0,3.0]}}"#),
            "{json}"
        );
    }

    #[test]
    fn inline_keys_without_file_form_document() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let config = features(
            dir.path(),
            "[featureClass]\nglcm = []\n[setting]\nbinCount = 32\n",
        )
        .expect("valid parameters");
        assert_eq!(config.classes, ["glcm"]);
        assert_eq!(
            config.parameters_json.as_deref(),
            Some(r#"{"featureClass":{"glcm":[]},"setting":{"binCount":32}}"#)
        );
    }

    #[test]
    fn unknown_key_is_named_at_plan_time() {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(dir.path().join("params.yaml"), "setting:\n  binwidth: 25\n")
            .expect("params file");
        let error = features(dir.path(), "params = \"params.yaml\"").unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, StudyConfigError::Parameters { .. }),
            "{message}"
        );
        assert!(
            message.contains("unknown key \"binwidth\" in setting"),
            "{message}"
        );
        assert!(message.contains("did you mean binWidth?"), "{message}");
        assert!(message.contains("params.yaml"), "{message}");
    }

    #[test]
    fn bad_inline_value_is_named() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let error = features(dir.path(), "[imageType.LoG]\nsigma = [0.0]\n").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("sigma = [0.0] is invalid"), "{message}");
        assert!(message.contains("[features.imageType]"), "{message}");
    }

    #[test]
    fn missing_params_file_is_reported() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let error = features(dir.path(), "params = \"absent.yaml\"").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("cannot read"), "{message}");
        assert!(message.contains("absent.yaml"), "{message}");
    }

    #[test]
    fn example_params_file_gives_every_feature() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/params");
        let config =
            features(&examples, "params = \"mr_features.yaml\"").expect("the example is valid");
        let request = radstudy_worker::feature_request::FeatureRequest::from_proto(
            &config.contract_settings(),
        )
        .expect("the worker accepts the example");
        // PyRadiomics 3.1.4's default feature counts: 107 on the original image (shape 14,
        // firstorder 18, glcm 24, glrlm 16, glszm 16, gldm 14, ngtdm 5), 93 on each of the 3
        // LoG and 8 wavelet images.
        let names = request.feature_names();
        assert_eq!(names.len(), 107 + 11 * 93);
        assert!(names.contains(&"log-sigma-1-0-mm-3D_glcm_Idm".to_string()));
        assert!(names.contains(&"wavelet-HLL_glszm_ZoneEntropy".to_string()));
    }

    #[test]
    fn short_keys_with_params_are_rejected() {
        let dir = tempfile::tempdir().expect("temporary folder");
        for (text, field) in [
            (
                "classes = [\"shape\"]\n[setting]\nlabel = 1",
                "features.classes",
            ),
            (
                "bin_width = 5.0\n[setting]\nlabel = 1",
                "features.bin_width",
            ),
            ("label = 2\n[setting]\nlabel = 1", "features.label"),
        ] {
            match features(dir.path(), text) {
                Err(StudyConfigError::Invalid { field: found, .. }) => {
                    assert_eq!(found, field, "{text}")
                }
                other => panic!("{text}: expected Invalid for {field}, got {other:?}"),
            }
        }
    }
}
