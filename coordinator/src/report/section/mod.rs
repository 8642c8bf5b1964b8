//! The report's sections, in page order, each built from the study files.

pub mod cohort;
pub mod habitat;
pub mod models;
pub mod provenance;
pub mod selection;
pub mod summary;

use super::figure::{self, Figure};
use super::table::Table;
use super::{ReportError, StudyFiles};

/// One section of the page.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// HTML id of the section.
    pub id: String,
    /// Heading.
    pub title: String,
    /// Paragraphs of plain text, shown before the tables.
    pub paragraphs: Vec<String>,
    /// Tables, in order.
    pub tables: Vec<Table>,
    /// Figures, in order, after the tables.
    pub figures: Vec<Figure>,
    /// Reason the section has no content (a missing optional file), if any.
    pub omitted: Option<String>,
}

impl Section {
    /// Returns an empty section.
    pub fn new(id: &str, title: &str) -> Self {
        Section {
            id: id.to_string(),
            title: title.to_string(),
            ..Section::default()
        }
    }

    /// Returns a section left out because `file` is missing; `reason`
    /// is the sentence shown in its place.
    pub fn omitted(id: &str, title: &str, reason: String) -> Self {
        Section {
            omitted: Some(reason),
            ..Section::new(id, title)
        }
    }
}

/// Every section with the tables and figures they contain.
#[derive(Debug, Clone)]
pub struct Built {
    /// Sections in page order.
    pub sections: Vec<Section>,
    /// All tables of the sections.
    pub tables: Vec<Table>,
    /// All figures of the sections.
    pub figures: Vec<Figure>,
    /// "section: reason" for each section left out.
    pub omitted: Vec<String>,
}

/// Builds the sections in page order: summary, cohort, exclusions,
/// habitats, selection funnel, models,
/// ROC, calibration, decision curves, SHAP, DeLong comparisons,
/// provenance.
pub fn build_sections(files: &StudyFiles) -> Result<Built, ReportError> {
    let mut sections = vec![
        summary::section(files)?,
        cohort::cohort_section(files)?,
        cohort::exclusions_section(files)?,
    ];
    sections.push(habitat::section(files)?);
    sections.push(selection::section(files)?);
    sections.push(models::model_section(files)?);
    sections.push(figure::roc::section(files)?);
    sections.push(figure::calibration::section(files)?);
    sections.push(figure::decision::section(files)?);
    sections.push(figure::shap::section(files)?);
    sections.push(models::comparison_section(files)?);
    sections.push(provenance::section(files)?);

    let tables = sections.iter().flat_map(|s| s.tables.clone()).collect();
    let figures = sections.iter().flat_map(|s| s.figures.clone()).collect();
    let omitted = sections
        .iter()
        .filter_map(|s| s.omitted.as_ref().map(|r| format!("{}: {r}", s.title)))
        .collect();
    Ok(Built {
        sections,
        tables,
        figures,
        omitted,
    })
}

/// Returns the sentence for a section left out because `file` is missing.
pub fn missing(file: &str, content: &str) -> String {
    format!(
        "This section is left out because the study directory has no {file}, which contains {content}."
    )
}
