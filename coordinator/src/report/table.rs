//! A table of the report: full-precision values for `tables/NAME.csv` and
//! `tables/NAME.json`, and the rounded text shown in `report.html`.

use std::fmt::Write as _;
use std::path::Path;

use super::ReportError;
use super::html::escape;

/// One report table.
#[derive(Debug, Clone)]
pub struct Table {
    /// File stem in `tables/` and the HTML id (`table-NAME`).
    pub name: String,
    /// Caption shown above the table.
    pub caption: String,
    /// Column names of the CSV and JSON files.
    pub columns: Vec<String>,
    /// Rows of full-precision values, one per `columns` entry.
    pub values: Vec<Vec<serde_json::Value>>,
    /// Column headings shown in the HTML.
    pub headings: Vec<String>,
    /// Rows of display text, one per `headings` entry.
    pub cells: Vec<Vec<String>>,
}

impl Table {
    /// Returns an empty table.
    pub fn new(name: &str, caption: &str, columns: &[&str], headings: &[&str]) -> Self {
        Table {
            name: name.to_string(),
            caption: caption.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            values: Vec::new(),
            headings: headings.iter().map(|h| h.to_string()).collect(),
            cells: Vec::new(),
        }
    }

    /// Appends a row: its file values and its display cells.
    pub fn push(&mut self, values: Vec<serde_json::Value>, cells: Vec<String>) {
        debug_assert_eq!(values.len(), self.columns.len(), "{}", self.name);
        debug_assert_eq!(cells.len(), self.headings.len(), "{}", self.name);
        self.values.push(values);
        self.cells.push(cells);
    }

    /// Writes `NAME.csv` and `NAME.json` into `tables_dir`.
    pub fn write_files(&self, tables_dir: &Path) -> Result<(), ReportError> {
        let csv_path = tables_dir.join(format!("{}.csv", self.name));
        let write_error = |source: std::io::Error| ReportError::Write {
            path: csv_path.clone(),
            source,
        };
        let mut writer = csv::Writer::from_path(&csv_path).map_err(|e| write_error(e.into()))?;
        writer
            .write_record(&self.columns)
            .map_err(|e| write_error(e.into()))?;
        for row in &self.values {
            let record: Vec<String> = row.iter().map(csv_text).collect();
            writer
                .write_record(&record)
                .map_err(|e| write_error(e.into()))?;
        }
        writer.flush().map_err(write_error)?;

        let json_path = tables_dir.join(format!("{}.json", self.name));
        let rows: Vec<serde_json::Value> = self
            .values
            .iter()
            .map(|row| {
                let object: serde_json::Map<String, serde_json::Value> = self
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect();
                serde_json::Value::Object(object)
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
        std::fs::write(&json_path, text + "\n").map_err(|source| ReportError::Write {
            path: json_path.clone(),
            source,
        })
    }

    /// Renders the table as HTML, with links to its CSV and JSON files.
    pub fn to_html(&self) -> String {
        let mut html = String::new();
        let _ = write!(
            html,
            "<table id=\"table-{}\"><caption>{} <span class=\"files\">(<a href=\"tables/{}.csv\">CSV</a>, <a href=\"tables/{}.json\">JSON</a>)</span></caption><thead><tr>",
            escape(&self.name),
            escape(&self.caption),
            escape(&self.name),
            escape(&self.name)
        );
        for heading in &self.headings {
            let _ = write!(html, "<th scope=\"col\">{}</th>", escape(heading));
        }
        html.push_str("</tr></thead><tbody>");
        for row in &self.cells {
            html.push_str("<tr>");
            for cell in row {
                let _ = write!(html, "<td>{}</td>", escape(cell));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
        html
    }
}

fn csv_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Formats a probability-like number with three decimals, or "NA".
pub fn decimal(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "NA".into(),
    }
}

/// Formats an estimate with its 95% CI as "0.741 [0.583, 0.899]"; the
/// interval is left out when either end is missing.
pub fn with_interval(estimate: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (estimate, low, high) {
        (Some(_), Some(l), Some(h)) => {
            format!(
                "{} [{}, {}]",
                decimal(estimate),
                decimal(Some(l)),
                decimal(Some(h))
            )
        }
        _ => decimal(estimate),
    }
}

/// Converts an optional number to a JSON value (`null` when missing).
pub fn json_number(value: Option<f64>) -> serde_json::Value {
    value
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_interval_formats_three_decimals() {
        assert_eq!(
            with_interval(Some(0.74117), Some(0.58322), Some(0.89913)),
            "0.741 [0.583, 0.899]"
        );
        assert_eq!(with_interval(Some(0.5), None, Some(0.9)), "0.500");
        assert_eq!(with_interval(None, None, None), "NA");
    }

    #[test]
    fn table_files_hold_full_precision() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut table = Table::new("t", "caption", &["model", "auc"], &["Model", "AUC"]);
        table.push(
            vec!["m".into(), json_number(Some(0.123456789))],
            vec!["m".into(), decimal(Some(0.123456789))],
        );
        table.write_files(dir.path()).expect("write");
        let csv = std::fs::read_to_string(dir.path().join("t.csv")).expect("csv");
        assert_eq!(csv, "model,auc\nm,0.123456789\n");
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("t.json")).expect("json"),
        )
        .expect("parse");
        assert_eq!(json[0]["auc"], 0.123456789);
        assert!(table.to_html().contains("<td>0.123</td>"));
    }
}
