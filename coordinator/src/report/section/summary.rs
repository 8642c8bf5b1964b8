//! Summary: study id, what was predicted, the primary model and its
//! external AUC.

use super::super::read::JsonField;
use super::super::table::with_interval;
use super::super::{ReportError, StudyFiles};
use super::Section;
use super::models::{MetricRow, metrics_rows};

/// The model the report leads with, and why it was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryModel {
    /// Model name as in `metrics.csv`.
    pub name: String,
    /// The rule that chose it, as a sentence fragment.
    pub rule: String,
}

/// Chooses the primary model without looking at validation results: the
/// fusion model of the region chosen in `selection.json`, or, without one,
/// the model with the highest training AUC. External AUCs never choose it,
/// because the method reserves validation cohorts for reporting.
pub fn primary_model(
    files: &StudyFiles,
    rows: &[MetricRow],
) -> Result<Option<PrimaryModel>, ReportError> {
    if let Some(selection) = &files.selection {
        let root = JsonField {
            file: "selection.json",
            value: selection,
        };
        let chosen = root
            .optional("best_region")
            .and_then(|b| b.optional("chosen"))
            .and_then(|c| c.value.as_str());
        if let Some(region) = chosen {
            for model in root.array("models")? {
                let build = model.get("build")?;
                let kind = build.text("kind")?;
                let model_region = build.optional("region").and_then(|r| r.value.as_str());
                let name = model.text("model")?;
                let has_metrics = rows.iter().any(|r| r.model == name);
                if kind != "single" && model_region == Some(region) && has_metrics {
                    return Ok(Some(PrimaryModel {
                        name: name.to_string(),
                        rule: format!("the fusion model of the chosen region ({region})"),
                    }));
                }
            }
        }
    }
    let best = rows
        .iter()
        .filter(|r| r.cohort == "training")
        .filter_map(|r| r.auc.map(|auc| (auc, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    Ok(best.map(|(_, row)| PrimaryModel {
        name: row.model.clone(),
        rule: "the model with the highest training AUC (no fusion model was fitted)".into(),
    }))
}

/// Builds the summary section.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    let mut section = Section::new("summary", "Summary");
    let rows = metrics_rows(&files.metrics)?;
    let provenance = files.provenance.as_ref().map(|value| JsonField {
        file: "provenance.json",
        value,
    });
    let study_id = match &provenance {
        Some(root) => root.text("study_id")?.to_string(),
        None => "unknown (provenance.json is missing)".into(),
    };
    section.paragraphs.push(format!("Study: {study_id}."));
    if let Some(root) = &provenance
        && root.optional("failed_centers").is_some()
    {
        let mut left_out = Vec::new();
        for failure in root.array("failed_centers")? {
            left_out.push(format!(
                "{} ({})",
                failure.text("center")?,
                failure.text("reason")?
            ));
        }
        if !left_out.is_empty() {
            section.paragraphs.push(format!(
                "Centers left out of the study or of a step: {}. Their patients are missing \
                 from every result that the step produced.",
                left_out.join("; ")
            ));
        }
    }
    section.paragraphs.push(
        "Predicted outcome: the binary label of each patient in the centers' cohort manifests \
         (1 = event, 0 = no event), from radiomic features of the lesion and its regions."
            .into(),
    );
    match primary_model(files, &rows)? {
        Some(primary) => {
            let external = rows
                .iter()
                .find(|r| r.model == primary.name && r.cohort == "external_validation");
            let auc_text = match external {
                Some(row) => format!(
                    "external validation AUC {} (95% CI, DeLong), n = {} with {} events",
                    with_interval(row.auc, row.auc_ci_low, row.auc_ci_high),
                    row.n,
                    row.n_positive
                ),
                None => "no external validation result".into(),
            };
            section.paragraphs.push(format!(
                "Primary model: {}, {}; {auc_text}.",
                primary.name, primary.rule
            ));
        }
        None => section
            .paragraphs
            .push("No model has a training AUC, so there is no primary model.".into()),
    }
    Ok(section)
}
