//! Provenance: software versions, feature-definition hashes, seed, study
//! and round ids, from `provenance.json`.

use super::super::read::JsonField;
use super::super::table::Table;
use super::super::{ReportError, StudyFiles};
use super::{Section, missing};

/// Builds the provenance section.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "provenance";
    const TITLE: &str = "Provenance";
    let Some(provenance) = &files.provenance else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing("provenance.json", "versions, hashes, seed and ids"),
        ));
    };

    let root = JsonField {
        file: "provenance.json",
        value: provenance,
    };

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "Everything needed to rerun the study: the study id and seed, the hash of the study \
         settings, the round ids, and each center's software version, contract version and \
         feature-definition hash (SHA-256 of the extraction settings and feature definitions). \
         Source: provenance.json."
            .into(),
    );
    let mut study = Table::new(
        "provenance",
        "Study provenance",
        &["field", "value"],
        &["Field", "Value"],
    );

    for key in [
        "study_id",
        "seed",
        "settings_hash",
        "coordinator_version",
        "contract_version",
        "round_id",
        "extraction_round_id",
        "habitat_apply_round_id",
    ] {
        let value = root
            .optional(key)
            .map(|v| v.value.clone())
            .unwrap_or(serde_json::Value::Null);
        let text = match &value {
            serde_json::Value::Null => "NA".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        study.push(vec![key.into(), value], vec![key.to_string(), text]);
    }

    section.tables.push(study);

    let mut centers = Table::new(
        "provenance_centers",
        "Centers",
        &[
            "center",
            "software_version",
            "contract_version",
            "feature_definition_hash",
        ],
        &[
            "Center",
            "Worker version",
            "Contract version",
            "Feature-definition hash (SHA-256)",
        ],
    );
    let mut hashes: Vec<&str> = Vec::new();

    for center in root.array("centers")? {
        let values = [
            center.text("center")?,
            center.text("software_version")?,
            center.text("contract_version")?,
            center.text("feature_definition_hash")?,
        ];
        hashes.push(values[3]);
        centers.push(
            values.iter().map(|v| (*v).into()).collect(),
            values.iter().map(|v| v.to_string()).collect(),
        );
    }
    hashes.sort_unstable();
    hashes.dedup();
    if hashes.len() > 1 {
        section.paragraphs.push(format!(
            "The centers report {} different feature-definition hashes, so their features were not computed identically.",
            hashes.len()
        ));
    }

    section.tables.push(centers);

    if let Some(failed) = root.optional("failed_centers") {
        let failed = failed.value.as_array().map_or(0, Vec::len);
        if failed > 0 {
            section.paragraphs.push(format!(
                "{failed} centers were left out of the study; provenance.json lists them with the reason."
            ));
        }
    }

    Ok(section)
}
