//! The study report: `report.html` with its figures and tables, written from
//! the files of a finished study directory.
//!
//! [`write_report`] reads only the study directory, so it can run again on
//! an old study. It writes:
//!
//! | path | content |
//! |---|---|
//! | `report.html` | one self-contained page: inline CSS and inline SVG figures, readable offline without JavaScript |
//! | `figures/NAME.svg`, `figures/NAME.png` | each figure, as SVG and as PNG rendered at 2x by resvg |
//! | `tables/NAME.csv`, `tables/NAME.json` | each table of the page, at full precision |
//!
//! `metrics.csv` is required. Every other input is optional, and a missing
//! one leaves its section out with a sentence saying which file is missing.
//! A file that exists but cannot be parsed stops the report with a
//! [`ReportError`] that names the file and the field.

pub mod figure;
pub mod html;
pub mod read;
pub mod section;
pub mod table;

use std::path::{Path, PathBuf};

use tracing::info;

use read::{CsvFile, read_csv, read_json};

/// Errors that stop the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A required file of the study directory is missing.
    #[error(
        "{file} is missing from the study directory; rerun the study so that it writes all its files"
    )]
    MissingFile {
        /// File name inside the study directory.
        file: String,
    },
    /// A file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A CSV file is not valid CSV.
    #[error("{file} is not valid CSV ({message}); rerun the study or repair the file")]
    InvalidCsv {
        /// File name inside the study directory.
        file: String,
        /// The parser's message, with the line.
        message: String,
    },
    /// A JSON file is not valid JSON.
    #[error("{file} is not valid JSON ({message}); rerun the study or repair the file")]
    InvalidJson {
        /// File name inside the study directory.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A column or member the report needs is missing.
    #[error(
        "{file} has no field `{field}`; it was written by another radstudy version or edited, so rerun the study"
    )]
    MissingField {
        /// File name inside the study directory.
        file: String,
        /// The CSV column or JSON member.
        field: String,
    },
    /// A value has the wrong type or range.
    #[error(
        "{file} line {line}: field `{field}` has invalid value {value:?} ({reason}); rerun the study or repair the file"
    )]
    InvalidField {
        /// File name inside the study directory.
        file: String,
        /// Line of the CSV record (0 for JSON, where the field path locates it).
        line: usize,
        /// The CSV column or JSON member.
        field: String,
        /// The value as written.
        value: String,
        /// The expected type or range.
        reason: String,
    },
    /// A report file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// resvg cannot render a figure.
    #[error("cannot render figure {figure} as PNG: {message}")]
    Png {
        /// Figure name.
        figure: String,
        /// resvg's message.
        message: String,
    },
}

/// Summary of the files [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// Path of `report.html`.
    pub html: PathBuf,
    /// Names of the figures written (each as SVG and PNG).
    pub figures: Vec<String>,
    /// Names of the tables written (each as CSV and JSON).
    pub tables: Vec<String>,
    /// Sections left out, with the reason.
    pub omitted: Vec<String>,
    /// Font faces resvg found for PNG text; 0 means the PNG figures have
    /// no text (the SVG figures and the HTML page are unaffected).
    pub font_faces: usize,
}

/// The study directory's files that the report reads.
#[derive(Debug)]
pub struct StudyFiles {
    /// `metrics.csv`, the only required file.
    pub metrics: CsvFile,
    /// `predictions.csv`: per-patient scores, for the ROC curves.
    pub predictions: Option<CsvFile>,
    /// `features.csv`: the cohort per center and split, and feature values
    /// for the beeswarm colours.
    pub features: Option<CsvFile>,
    /// `exclusions.csv`.
    pub exclusions: Option<CsvFile>,
    /// `calibration.csv`.
    pub calibration: Option<CsvFile>,
    /// `decision_curve.csv`.
    pub decision_curve: Option<CsvFile>,
    /// `comparisons.csv`.
    pub comparisons: Option<CsvFile>,
    /// `shap_importance.csv`.
    pub shap_importance: Option<CsvFile>,
    /// `shap_values.csv`.
    pub shap_values: Option<CsvFile>,
    /// `icc.csv`.
    pub icc: Option<CsvFile>,
    /// `habitat_regions.csv`.
    pub habitat_regions: Option<CsvFile>,
    /// `habitats.json`.
    pub habitats: Option<serde_json::Value>,
    /// `validation.json`.
    pub validation: Option<serde_json::Value>,
    /// `selection.json`.
    pub selection: Option<serde_json::Value>,
    /// `provenance.json`.
    pub provenance: Option<serde_json::Value>,
    /// `scores_only.json`.
    pub scores_only: Option<serde_json::Value>,
    /// `models.json`: the fitted models and the models that were skipped.
    pub models: Option<serde_json::Value>,
}

impl StudyFiles {
    /// Reads the files from `dir`.
    pub fn read(dir: &Path) -> Result<Self, ReportError> {
        let metrics = read_csv(dir, "metrics.csv")?.ok_or_else(|| ReportError::MissingFile {
            file: "metrics.csv".into(),
        })?;
        Ok(StudyFiles {
            metrics,
            predictions: read_csv(dir, "predictions.csv")?,
            features: read_csv(dir, "features.csv")?,
            exclusions: read_csv(dir, "exclusions.csv")?,
            calibration: read_csv(dir, "calibration.csv")?,
            decision_curve: read_csv(dir, "decision_curve.csv")?,
            comparisons: read_csv(dir, "comparisons.csv")?,
            shap_importance: read_csv(dir, "shap_importance.csv")?,
            shap_values: read_csv(dir, "shap_values.csv")?,
            icc: read_csv(dir, "icc.csv")?,
            habitat_regions: read_csv(dir, "habitat_regions.csv")?,
            habitats: read_json(dir, "habitats.json")?,
            validation: read_json(dir, "validation.json")?,
            selection: read_json(dir, "selection.json")?,
            provenance: read_json(dir, "provenance.json")?,
            scores_only: read_json(dir, "scores_only.json")?,
            models: read_json(dir, "models.json")?,
        })
    }
}

/// Validation cohorts in report order, with their display names.
pub const COHORTS: [(&str, &str); 3] = [
    ("training", "Training"),
    ("internal_validation", "Internal validation"),
    ("external_validation", "External validation"),
];

/// Returns the display name of a cohort id (the id itself when unknown).
pub fn cohort_name(cohort: &str) -> &str {
    COHORTS
        .iter()
        .find(|(id, _)| *id == cohort)
        .map_or(cohort, |(_, name)| name)
}

/// Reads the study directory `out_dir` and writes `report.html`,
/// `figures/` and `tables/` into it.
pub fn write_report(out_dir: &Path) -> Result<ReportSummary, ReportError> {
    let files = StudyFiles::read(out_dir)?;
    let built = section::build_sections(&files)?;

    let figures_dir = out_dir.join("figures");
    let tables_dir = out_dir.join("tables");
    for dir in [&figures_dir, &tables_dir] {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
            path: dir.clone(),
            source,
        })?;
    }
    for table in &built.tables {
        table.write_files(&tables_dir)?;
    }
    let renderer = figure::png::PngRenderer::new();
    for figure in &built.figures {
        figure.write_files(&figures_dir, &renderer)?;
    }

    let html_path = out_dir.join("report.html");
    let page = html::render_page(&built, renderer.font_faces());
    std::fs::write(&html_path, page).map_err(|source| ReportError::Write {
        path: html_path.clone(),
        source,
    })?;
    info!(
        path = %html_path.display(),
        figures = built.figures.len(),
        tables = built.tables.len(),
        "report written"
    );
    Ok(ReportSummary {
        html: html_path,
        figures: built.figures.iter().map(|f| f.name.clone()).collect(),
        tables: built.tables.iter().map(|t| t.name.clone()).collect(),
        omitted: built.omitted.clone(),
        font_faces: renderer.font_faces(),
    })
}

#[cfg(test)]
mod tests;
