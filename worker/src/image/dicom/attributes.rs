//! Attribute access with errors that name the file, the attribute's keyword
//! and tag, and the value found.

use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;

use super::DicomError;

/// Returns `Keyword (gggg,eeee)` for a tag, or the tag alone when the
/// standard dictionary does not know it.
pub fn describe(tag: Tag) -> String {
    match StandardDataDictionary.by_tag(tag) {
        Some(entry) => format!("{} {tag}", entry.alias()),
        None => tag.to_string(),
    }
}

/// Reads attributes of the objects of one file, turning absent or
/// malformed values into [`DicomError::Invalid`] errors for that file.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// The file, for error messages.
    pub path: &'a Path,
}

impl<'a> Attributes<'a> {
    /// Creates a reader for the objects of `path`.
    pub fn new(path: &'a Path) -> Self {
        Attributes { path }
    }

    /// Returns an [`DicomError::Invalid`] error for this file.
    pub fn invalid(&self, message: String) -> DicomError {
        DicomError::Invalid {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// Returns the file's path.
    pub fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    /// Returns a text value with padding removed, or `None` when the
    /// attribute is absent or empty.
    pub fn text(&self, object: &InMemDicomObject, tag: Tag) -> Result<Option<String>, DicomError> {
        let Some(element) = object.get(tag) else {
            return Ok(None);
        };
        let text = element
            .to_str()
            .map_err(|error| self.invalid(format!("{} is not text: {error}", describe(tag))))?;
        let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        Ok((!text.is_empty()).then(|| text.to_string()))
    }

    /// Returns a text value that must be present.
    pub fn required_text(&self, object: &InMemDicomObject, tag: Tag) -> Result<String, DicomError> {
        self.text(object, tag)?
            .ok_or_else(|| self.invalid(format!("{} is missing or empty", describe(tag))))
    }

    /// Returns the `count` numbers of a decimal (DS, FD, FL) attribute, or
    /// `None` when it is absent or empty. Non-finite numbers are an error.
    pub fn numbers(
        &self,
        object: &InMemDicomObject,
        tag: Tag,
        count: usize,
    ) -> Result<Option<Vec<f64>>, DicomError> {
        let Some(element) = object.get(tag) else {
            return Ok(None);
        };
        if element.value().multiplicity() == 0 {
            return Ok(None);
        }
        let values = element.to_multi_float64().map_err(|error| {
            self.invalid(format!(
                "{} is not a list of numbers: {error}",
                describe(tag)
            ))
        })?;
        if values.len() != count || values.iter().any(|v| !v.is_finite()) {
            return Err(self.invalid(format!(
                "{} = {values:?}; expected {count} finite numbers",
                describe(tag)
            )));
        }
        Ok(Some(values))
    }

    /// Returns the `count` numbers of an attribute that must be present.
    pub fn required_numbers(
        &self,
        object: &InMemDicomObject,
        tag: Tag,
        count: usize,
    ) -> Result<Vec<f64>, DicomError> {
        self.numbers(object, tag, count)?
            .ok_or_else(|| self.invalid(format!("{} is missing or empty", describe(tag))))
    }

    /// Returns one number, or `None` when absent or empty.
    pub fn number(&self, object: &InMemDicomObject, tag: Tag) -> Result<Option<f64>, DicomError> {
        Ok(self.numbers(object, tag, 1)?.map(|values| values[0]))
    }

    /// Returns an integer (IS, US, SS, UL, SL), or `None` when absent or empty.
    pub fn integer(&self, object: &InMemDicomObject, tag: Tag) -> Result<Option<i64>, DicomError> {
        let Some(element) = object.get(tag) else {
            return Ok(None);
        };
        if element.value().multiplicity() == 0 {
            return Ok(None);
        }
        element
            .to_int::<i64>()
            .map(Some)
            .map_err(|error| self.invalid(format!("{} is not an integer: {error}", describe(tag))))
    }

    /// Returns an integer that must be present.
    pub fn required_integer(&self, object: &InMemDicomObject, tag: Tag) -> Result<i64, DicomError> {
        self.integer(object, tag)?
            .ok_or_else(|| self.invalid(format!("{} is missing or empty", describe(tag))))
    }

    /// Returns the items of a sequence attribute (empty when absent).
    pub fn items<'o>(
        &self,
        object: &'o InMemDicomObject,
        tag: Tag,
    ) -> Result<&'o [InMemDicomObject], DicomError> {
        match object.get(tag) {
            None => Ok(&[]),
            Some(element) => element
                .items()
                .ok_or_else(|| self.invalid(format!("{} is not a sequence", describe(tag)))),
        }
    }

    /// Returns the first item of a sequence, or `None` when it is absent or empty.
    pub fn first_item<'o>(
        &self,
        object: &'o InMemDicomObject,
        tag: Tag,
    ) -> Result<Option<&'o InMemDicomObject>, DicomError> {
        Ok(self.items(object, tag)?.first())
    }
}
