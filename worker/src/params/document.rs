//! The parameter document of a coordinated study: a PyRadiomics parameter file as the
//! canonical JSON text that contract 1.4 carries in `ExtractionSettings.parameters_json`.
//!
//! The coordinator merges the YAML file and the inline keys of study.toml into one YAML
//! value and builds the document with [`ParameterDocument::from_yaml`]. The worker reads
//! the contract's text with [`ParameterDocument::from_json`]. Both run
//! [`super::parse_parameter_value`], so an unknown key or a bad value gets the same error as
//! `radstudy-worker extract --param` gives for the same file.
//!
//! The canonical text sorts object keys by byte order and has no whitespace. Two documents
//! with the same keys and values therefore have the same text, which the worker's result
//! cache key hashes. Numbers keep their integer or float form (`2` or `2.0`), because the
//! LoG image names print σ as written (`log-sigma-2-mm-3D` or `log-sigma-2-0-mm-3D`).

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};

use super::{ParameterFile, ParamsError, parse_parameter_value, render};

/// A validated parameter document and its canonical JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDocument {
    canonical_json: String,
    parsed: ParameterFile,
}

/// Error in a parameter document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DocumentError {
    /// The text is not valid JSON.
    #[error("parameters_json is not valid JSON: {0}")]
    Json(String),
    /// A value that JSON cannot carry: NaN, an infinity or a YAML tag.
    #[error(
        "{key} = {value} cannot be sent to a worker; expected a finite number, text, true/false, a list or a mapping"
    )]
    NotRepresentable {
        /// Dotted path of the value, such as `setting.binWidth`.
        key: String,
        /// The value as YAML.
        value: String,
    },
    /// The document is not a valid parameter file.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

impl ParameterDocument {
    /// Validates a parameter document given as a YAML value and builds its canonical JSON.
    pub fn from_yaml(root: &Value) -> Result<Self, DocumentError> {
        let parsed = parse_parameter_value(root)?;
        let mut canonical_json = String::new();
        write_canonical(root, "", &mut canonical_json)?;
        Ok(ParameterDocument {
            canonical_json,
            parsed,
        })
    }

    /// Parses and validates the JSON text of `ExtractionSettings.parameters_json`.
    pub fn from_json(text: &str) -> Result<Self, DocumentError> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|error| DocumentError::Json(error.to_string()))?;
        Self::from_yaml(&json_to_yaml(&json))
    }

    /// Returns the canonical JSON text: sorted keys, no whitespace.
    pub fn canonical_json(&self) -> &str {
        &self.canonical_json
    }

    /// Returns the parsed parameter file.
    pub fn parsed(&self) -> &ParameterFile {
        &self.parsed
    }
}

/// Converts a JSON value to the YAML value that the parameter parser reads.
fn json_to_yaml(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(flag) => Value::Bool(*flag),
        serde_json::Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Value::Number(integer.into())
            } else if let Some(integer) = number.as_u64() {
                Value::Number(integer.into())
            } else {
                // serde_json parses every other number as a finite f64.
                Value::Number(number.as_f64().unwrap_or(f64::NAN).into())
            }
        }
        serde_json::Value::String(text) => Value::String(text.clone()),
        serde_json::Value::Array(items) => {
            Value::Sequence(items.iter().map(json_to_yaml).collect())
        }
        serde_json::Value::Object(object) => {
            let mut mapping = Mapping::new();
            for (key, value) in object {
                mapping.insert(Value::String(key.clone()), json_to_yaml(value));
            }
            Value::Mapping(mapping)
        }
    }
}

/// Appends the canonical JSON of `value`, found at dotted path `key`, to `output`. A
/// mapping key that is not text (YAML allows `1: x`) becomes its YAML text, which the
/// parser has already rejected as an unknown key in every section it reads.
fn write_canonical(value: &Value, key: &str, output: &mut String) -> Result<(), DocumentError> {
    let not_representable = || DocumentError::NotRepresentable {
        key: if key.is_empty() {
            "document".to_string()
        } else {
            key.to_string()
        },
        value: render(value),
    };
    match value {
        Value::Null => output.push_str("null"),
        Value::Bool(flag) => output.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => {
            let json = if let Some(integer) = number.as_i64() {
                serde_json::Number::from(integer)
            } else if let Some(integer) = number.as_u64() {
                serde_json::Number::from(integer)
            } else {
                number
                    .as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .ok_or_else(not_representable)?
            };
            output.push_str(&json.to_string());
        }
        Value::String(text) => push_json_string(text, output),
        Value::Sequence(items) => {
            output.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    output.push(',');
                }
                write_canonical(item, &format!("{key}[{index}]"), output)?;
            }
            output.push(']');
        }
        Value::Mapping(mapping) => {
            let mut entries = BTreeMap::new();
            for (name, item) in mapping {
                let name = match name {
                    Value::String(text) => text.clone(),
                    other => render(other),
                };
                entries.insert(name, item);
            }
            output.push('{');
            for (index, (name, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    output.push(',');
                }
                push_json_string(&name, output);
                output.push(':');
                let path = if key.is_empty() {
                    name
                } else {
                    format!("{key}.{name}")
                };
                write_canonical(item, &path, output)?;
            }
            output.push('}');
        }
        Value::Tagged(_) => return Err(not_representable()),
    }
    Ok(())
}

/// Appends `text` as a JSON string literal.
fn push_json_string(text: &str, output: &mut String) {
    output.push_str(&serde_json::Value::String(text.to_string()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::ImageType;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).expect("test YAML parses")
    }

    #[test]
    fn canonical_json_sorts_keys_and_keeps_number_forms() {
        let document = ParameterDocument::from_yaml(&yaml(
            "setting: {label: 1, binWidth: 25}\nimageType: {LoG: {sigma: [2.0, 3]}, Original: {}}",
        ))
        .expect("valid document");
        assert_eq!(
            document.canonical_json(),
            r#"{"imageType":{"LoG":{"sigma":[2.0,3]},"Original":{}},"setting":{"binWidth":25,"label":1}}"#
        );
    }

    #[test]
    fn json_round_trip_gives_same_text_and_names() {
        let from_yaml = ParameterDocument::from_yaml(&yaml(
            "imageType: {LoG: {sigma: [2.0]}, Wavelet: {}}\nfeatureClass: {firstorder: [Mean]}",
        ))
        .expect("valid document");
        let from_json = ParameterDocument::from_json(from_yaml.canonical_json())
            .expect("canonical JSON parses");
        assert_eq!(from_json, from_yaml);
        // σ written as 2.0 names the image `log-sigma-2-0-mm-3D`, as PyRadiomics names it.
        let log = &from_json.parsed().image_types[0];
        assert_eq!(log.image_type.key(), "LoG");
        assert_eq!(log.image_type.image_names(), ["log-sigma-2-0-mm-3D"]);
        assert!(matches!(
            from_json.parsed().image_types[1].image_type,
            ImageType::Wavelet {
                start_level: 0,
                level: 1
            }
        ));
    }

    #[test]
    fn key_order_does_not_change_text() {
        let first = ParameterDocument::from_json(r#"{"setting":{"binWidth":5,"label":2}}"#)
            .expect("valid document");
        let second =
            ParameterDocument::from_json(r#"{ "setting": { "label": 2, "binWidth": 5 } }"#)
                .expect("valid document");
        assert_eq!(first.canonical_json(), second.canonical_json());
    }

    #[test]
    fn from_json_rejects_invalid_text() {
        let error = ParameterDocument::from_json("{\"setting\": ").unwrap_err();
        assert!(matches!(error, DocumentError::Json(_)), "{error:?}");
    }

    #[test]
    fn from_json_names_unknown_and_invalid_keys() {
        let error = ParameterDocument::from_json(r#"{"setting":{"binwidth":5}}"#).unwrap_err();
        assert_eq!(
            error,
            DocumentError::Params(ParamsError::UnknownKey {
                section: "setting",
                key: "binwidth".into(),
                close: vec!["binWidth"],
            })
        );
        let error = ParameterDocument::from_json(r#"{"setting":{"binWidth":-1}}"#).unwrap_err();
        assert!(
            matches!(&error, DocumentError::Params(ParamsError::InvalidValue { key, .. }) if key == "binWidth"),
            "{error:?}"
        );
        assert!(error.to_string().contains("binWidth = -1"), "{error}");
    }

    #[test]
    fn from_yaml_rejects_non_finite_number() {
        // The parser rejects a NaN under every key it reads, so a whole document cannot carry
        // one to the converter. The converter's own check is therefore called directly.
        let mut output = String::new();
        let error = write_canonical(&yaml("{binWidth: .nan}"), "setting", &mut output).unwrap_err();
        assert_eq!(
            error,
            DocumentError::NotRepresentable {
                key: "setting.binWidth".into(),
                value: ".nan".into(),
            }
        );
    }
}
