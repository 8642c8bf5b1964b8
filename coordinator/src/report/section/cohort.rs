//! The cohort per center and split, and the exclusions with reasons.

use std::collections::BTreeMap;

use super::super::table::Table;
use super::super::{COHORTS, ReportError, StudyFiles, cohort_name};
use super::{Section, missing};

/// Patient counts of one center and cohort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Patients.
    pub patients: usize,
    /// Patients with the event (label 1).
    pub events: usize,
}

/// Patient counts per (center, cohort).
pub type CohortCounts = BTreeMap<(String, String), Counts>;

/// Counts the patients of `features.csv` per (center, cohort).
pub fn cohort_counts(files: &StudyFiles) -> Result<Option<CohortCounts>, ReportError> {
    let Some(file) = &files.features else {
        return Ok(None);
    };
    let mut counts = CohortCounts::new();

    for row in 0..file.rows.len() {
        let key = (
            file.text(row, "center")?.to_string(),
            file.text(row, "cohort")?.to_string(),
        );
        let event = file.label(row, "label")?;
        let entry = counts.entry(key).or_default();
        entry.patients += 1;
        entry.events += usize::from(event);
    }
    Ok(Some(counts))
}

/// Builds the cohort section.
pub fn cohort_section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "cohort";
    const TITLE: &str = "Cohort";
    let Some(counts) = cohort_counts(files)? else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing("features.csv", "each patient's center, cohort and label"),
        ));
    };

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "Patients in the shared feature table per center and cohort; events are patients with \
         label 1. Source: features.csv."
            .into(),
    );
    if files.scores_only.is_some() {
        section.paragraphs.push(
            "Centers that validate by scores only keep their tables, so their patients are \
             not counted here; see scores_only.json."
                .into(),
        );
    }
    let order = |cohort: &str| {
        COHORTS
            .iter()
            .position(|(id, _)| *id == cohort)
            .unwrap_or(COHORTS.len())
    };
    let mut keys: Vec<&(String, String)> = counts.keys().collect();
    keys.sort_by_key(|(center, cohort)| (center.clone(), order(cohort)));

    let mut table = Table::new(
        "cohort",
        "Patients per center and cohort",
        &["center", "cohort", "patients", "events", "non_events"],
        &["Center", "Cohort", "Patients", "Events", "Non-events"],
    );
    let mut total = Counts::default();

    for key in keys {
        let c = counts[key];
        total.patients += c.patients;
        total.events += c.events;
        table.push(
            vec![
                key.0.clone().into(),
                key.1.clone().into(),
                c.patients.into(),
                c.events.into(),
                (c.patients - c.events).into(),
            ],
            vec![
                key.0.clone(),
                cohort_name(&key.1).to_string(),
                c.patients.to_string(),
                c.events.to_string(),
                (c.patients - c.events).to_string(),
            ],
        );
    }
    table.push(
        vec![
            "all".into(),
            "all".into(),
            total.patients.into(),
            total.events.into(),
            (total.patients - total.events).into(),
        ],
        vec![
            "All".into(),
            "All".into(),
            total.patients.to_string(),
            total.events.to_string(),
            (total.patients - total.events).to_string(),
        ],
    );

    section.tables.push(table);

    Ok(section)
}

/// Builds the exclusions section from `exclusions.csv`.
pub fn exclusions_section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "exclusions";
    const TITLE: &str = "Exclusions";
    let Some(file) = &files.exclusions else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing(
                "exclusions.csv",
                "the patients excluded per sequence and why",
            ),
        ));
    };

    let mut section = Section::new(ID, TITLE);
    let fields = ["center", "pseudonym", "sequence", "kind", "field", "reason"];

    let mut table = Table::new(
        "exclusions",
        "Patients excluded per sequence, with reasons",
        &fields,
        &["Center", "Pseudonym", "Sequence", "Kind", "Field", "Reason"],
    );

    for row in 0..file.rows.len() {
        let texts = fields
            .iter()
            .map(|f| file.text(row, f).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        table.push(texts.iter().cloned().map(Into::into).collect(), texts);
    }
    section.paragraphs.push(if file.rows.is_empty() {
        "No patient was excluded. Source: exclusions.csv.".into()
    } else {
        format!(
            "{} patient-sequence exclusions; a patient excluded for one sequence still counts for the others. Source: exclusions.csv.",
            file.rows.len()
        )
    });

    section.tables.push(table);

    Ok(section)
}
