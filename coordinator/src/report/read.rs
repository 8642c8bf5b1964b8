//! Reading the study directory's CSV and JSON files, with errors that name
//! the file, the line and the field.

use std::path::Path;

use super::ReportError;

/// A CSV file of the study directory, read whole.
#[derive(Debug)]
pub struct CsvFile {
    /// File name inside the study directory, for error messages.
    pub name: String,
    headers: csv::StringRecord,
    /// The data rows.
    pub rows: Vec<csv::StringRecord>,
}

/// Reads `name` from `dir`; `Ok(None)` when the file does not exist.
pub fn read_csv(dir: &Path, name: &str) -> Result<Option<CsvFile>, ReportError> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let invalid = |error: csv::Error| ReportError::InvalidCsv {
        file: name.to_string(),
        message: error.to_string(),
    };
    let mut reader = csv::Reader::from_path(&path).map_err(invalid)?;
    let headers = reader.headers().map_err(invalid)?.clone();
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    Ok(Some(CsvFile {
        name: name.to_string(),
        headers,
        rows,
    }))
}

impl CsvFile {
    /// Returns the index of column `field`, or an error naming it.
    pub fn column(&self, field: &str) -> Result<usize, ReportError> {
        self.headers
            .iter()
            .position(|h| h == field)
            .ok_or_else(|| ReportError::MissingField {
                file: self.name.clone(),
                field: field.to_string(),
            })
    }

    /// Returns the column names in file order.
    pub fn headers(&self) -> impl Iterator<Item = &str> {
        self.headers.iter()
    }

    /// Returns whether the file has column `field`.
    pub fn has_column(&self, field: &str) -> bool {
        self.headers.iter().any(|h| h == field)
    }

    /// Returns the text of `field` in data row `row`.
    pub fn text(&self, row: usize, field: &str) -> Result<&str, ReportError> {
        let column = self.column(field)?;
        self.rows[row]
            .get(column)
            .ok_or_else(|| self.invalid(row, field, "", "the row is shorter than the header"))
    }

    /// Returns `field` of row `row` as a number; an empty cell or `NaN` is
    /// `None`.
    pub fn optional_number(&self, row: usize, field: &str) -> Result<Option<f64>, ReportError> {
        let text = self.text(row, field)?;
        if text.is_empty() || text.eq_ignore_ascii_case("nan") {
            return Ok(None);
        }
        text.parse::<f64>()
            .map(Some)
            .map_err(|_| self.invalid(row, field, text, "expected a number"))
    }

    /// Returns `field` of row `row` as a finite number.
    pub fn number(&self, row: usize, field: &str) -> Result<f64, ReportError> {
        match self.optional_number(row, field)? {
            Some(value) if value.is_finite() => Ok(value),
            _ => {
                let text = self.text(row, field)?;
                Err(self.invalid(row, field, text, "expected a finite number"))
            }
        }
    }

    /// Returns `field` of row `row` as a non-negative integer.
    pub fn count(&self, row: usize, field: &str) -> Result<usize, ReportError> {
        let text = self.text(row, field)?;
        text.parse::<usize>()
            .map_err(|_| self.invalid(row, field, text, "expected a non-negative integer"))
    }

    /// Returns `field` of row `row` as an outcome label, 0 or 1.
    pub fn label(&self, row: usize, field: &str) -> Result<bool, ReportError> {
        match self.text(row, field)? {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(self.invalid(row, field, other, "expected 0 or 1")),
        }
    }

    /// Returns the error for an invalid `value` of `field` in row `row`.
    pub fn invalid(&self, row: usize, field: &str, value: &str, reason: &str) -> ReportError {
        ReportError::InvalidField {
            file: self.name.clone(),
            line: self.rows[row].position().map_or(0, |p| p.line() as usize),
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Reads and parses `name` from `dir`; `Ok(None)` when the file does not
/// exist.
pub fn read_json(dir: &Path, name: &str) -> Result<Option<serde_json::Value>, ReportError> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| ReportError::InvalidJson {
            file: name.to_string(),
            message: error.to_string(),
        })
}

/// A JSON value with the file and path it came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct JsonField<'a> {
    /// File name inside the study directory.
    pub file: &'a str,
    /// The value.
    pub value: &'a serde_json::Value,
}

impl<'a> JsonField<'a> {
    /// Returns member `key` of this object, or an error naming `key`.
    pub fn get(&self, key: &str) -> Result<JsonField<'a>, ReportError> {
        self.value
            .get(key)
            .map(|value| JsonField {
                file: self.file,
                value,
            })
            .ok_or_else(|| ReportError::MissingField {
                file: self.file.to_string(),
                field: key.to_string(),
            })
    }

    /// Returns member `key`, or `None` when it is absent or `null`.
    pub fn optional(&self, key: &str) -> Option<JsonField<'a>> {
        self.value
            .get(key)
            .filter(|value| !value.is_null())
            .map(|value| JsonField {
                file: self.file,
                value,
            })
    }

    /// Returns member `key` as a string.
    pub fn text(&self, key: &str) -> Result<&'a str, ReportError> {
        let field = self.get(key)?;
        field
            .value
            .as_str()
            .ok_or_else(|| self.invalid(key, field.value, "expected a string"))
    }

    /// Returns member `key` as a number; `null` is `None`.
    pub fn optional_number(&self, key: &str) -> Result<Option<f64>, ReportError> {
        match self.optional(key) {
            None => Ok(None),
            Some(field) => field
                .value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.invalid(key, field.value, "expected a number")),
        }
    }

    /// Returns member `key` as a number.
    pub fn number(&self, key: &str) -> Result<f64, ReportError> {
        let field = self.get(key)?;
        field
            .value
            .as_f64()
            .ok_or_else(|| self.invalid(key, field.value, "expected a number"))
    }

    /// Returns member `key` as a non-negative integer.
    pub fn count(&self, key: &str) -> Result<usize, ReportError> {
        let field = self.get(key)?;
        field
            .value
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| self.invalid(key, field.value, "expected a non-negative integer"))
    }

    /// Returns member `key` as an array of fields.
    pub fn array(&self, key: &str) -> Result<Vec<JsonField<'a>>, ReportError> {
        let field = self.get(key)?;
        let items = field
            .value
            .as_array()
            .ok_or_else(|| self.invalid(key, field.value, "expected an array"))?;
        Ok(items
            .iter()
            .map(|value| JsonField {
                file: self.file,
                value,
            })
            .collect())
    }

    fn invalid(&self, key: &str, value: &serde_json::Value, reason: &str) -> ReportError {
        ReportError::InvalidField {
            file: self.file.to_string(),
            line: 0,
            field: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}
