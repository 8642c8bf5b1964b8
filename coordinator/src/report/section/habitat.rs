//! Habitats: per region voxel fraction, mean rescaled local entropy and
//! mean normalised depth,
//! and whether the inner habitat is more heterogeneous than the marginal
//! one.

use super::super::read::JsonField;
use super::super::table::{Table, decimal, json_number};
use super::super::{ReportError, StudyFiles};
use super::{Section, missing};

/// Builds the habitat section from `region_totals` of `habitats.json`.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "habitats";
    const TITLE: &str = "Habitats";
    let Some(habitats) = &files.habitats else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing(
                "habitats.json",
                "the habitat model and its regions (the study ran without habitats)",
            ),
        ));
    };

    let root = JsonField {
        file: "habitats.json",
        value: habitats,
    };

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "Per sequence and region, summed over all centers: the region's share of lesion voxels, \
         the mean local entropy of its voxels, rescaled to [0, 1], and their mean normalised \
         depth (0 at the lesion border, 1 at the deepest voxel). Source: region_totals of \
         habitats.json."
            .into(),
    );

    let mut table = Table::new(
        "habitats",
        "Habitat regions",
        &[
            "sequence",
            "region",
            "patients",
            "voxel_fraction",
            "mean_entropy",
            "mean_depth",
        ],
        &[
            "Sequence",
            "Region",
            "Patients",
            "Voxel fraction",
            "Mean entropy (rescaled, 0 to 1)",
            "Mean depth (normalised, 0 to 1)",
        ],
    );
    let mut entropy: Vec<(String, String, Option<f64>)> = Vec::new();

    for region in root.array("region_totals")? {
        let sequence = region.text("sequence")?;
        let name = region.text("region")?;
        let patients = region.count("patients")?;
        let fraction = region.optional_number("voxel_fraction")?;
        let mean_entropy = region.optional_number("mean_entropy")?;
        let depth = region.optional_number("mean_depth")?;
        entropy.push((sequence.to_string(), name.to_string(), mean_entropy));
        table.push(
            vec![
                sequence.into(),
                name.into(),
                patients.into(),
                json_number(fraction),
                json_number(mean_entropy),
                json_number(depth),
            ],
            vec![
                sequence.to_string(),
                name.to_string(),
                patients.to_string(),
                decimal(fraction),
                decimal(mean_entropy),
                decimal(depth),
            ],
        );
    }

    let mut sequences: Vec<&String> = entropy.iter().map(|(s, _, _)| s).collect();
    sequences.dedup();

    for sequence in sequences {
        let find = |region: &str| {
            entropy
                .iter()
                .find(|(s, r, _)| s == sequence && r == region)
                .and_then(|(_, _, e)| *e)
        };
        let sentence = match (find("inner"), find("marginal")) {
            (Some(inner), Some(marginal)) if inner > marginal => format!(
                "{sequence}: the inner habitat has higher mean entropy than the marginal one ({inner:.3} against {marginal:.3})."
            ),
            (Some(inner), Some(marginal)) => format!(
                "{sequence}: the inner habitat does not have higher mean entropy than the marginal one ({inner:.3} against {marginal:.3})."
            ),
            _ => format!(
                "{sequence}: inner and marginal entropy cannot be compared because one of them has no voxels."
            ),
        };
        section.paragraphs.push(sentence);
    }

    section.tables.push(table);
    naming_table(&root, &mut section)?;

    Ok(section)
}

/// Adds the table of how each space's habitats were named: the training
/// statistics of the naming rule (habitats.json `spaces[].naming`), which
/// are not the all-patient voxel means of the region table.
fn naming_table(root: &JsonField<'_>, section: &mut Section) -> Result<(), ReportError> {
    let settings = root.optional("settings");
    let rule = |key: &str| {
        settings
            .as_ref()
            .and_then(|s| s.optional(key))
            .and_then(|field| field.value.as_str())
            .unwrap_or_default()
    };
    let (order_by, weighting) = (rule("order_by"), rule("naming_weighting"));
    let statistic = if order_by == "entropy" {
        "mean rescaled entropy"
    } else {
        "mean normalised depth"
    };
    let per = if weighting == "voxel" {
        "over all voxels of the training patients"
    } else {
        "first per training patient, then averaged over patients"
    };
    section.paragraphs.push(format!(
        "Names follow the habitat model, fitted on training patients only: habitats are ordered \
         by decreasing {statistic} ({per}), the first is inner and the last marginal. These \
         naming statistics differ from the region table above, which weights every voxel of \
         every patient of every cohort, so the two can order habitats differently. Source: \
         spaces[].naming of habitats.json."
    ));

    let mut table = Table::new(
        "habitat_naming",
        "How the habitats were named (training patients)",
        &[
            "space",
            "region",
            "cluster",
            "training_patients",
            "naming_depth",
            "naming_entropy",
        ],
        &[
            "Space",
            "Region",
            "Cluster",
            "Training patients",
            "Naming depth D_h",
            "Naming entropy E_h",
        ],
    );
    let spaces = match root.optional("spaces") {
        Some(_) => root.array("spaces")?,
        None => Vec::new(),
    };
    for space in spaces {
        let name = space.text("space")?;
        let Some(naming) = space.optional("naming") else {
            continue;
        };
        for habitat in naming.array("habitats")? {
            let region = habitat.text("name")?;
            let cluster = habitat.count("cluster")?;
            let patients = habitat.count("patients")?;
            let depth = habitat.optional_number("mean_depth")?;
            let entropy = habitat.optional_number("mean_entropy")?;
            table.push(
                vec![
                    name.into(),
                    region.into(),
                    cluster.into(),
                    patients.into(),
                    json_number(depth),
                    json_number(entropy),
                ],
                vec![
                    name.to_string(),
                    region.to_string(),
                    cluster.to_string(),
                    patients.to_string(),
                    decimal(depth),
                    decimal(entropy),
                ],
            );
        }
    }
    section.tables.push(table);
    Ok(())
}
