//! The selection funnel: features extracted, then left after the ICC
//! filter, the Mann-Whitney U filter and LASSO, per model (region and
//! sequence).

use std::collections::BTreeMap;

use super::super::read::JsonField;
use super::super::table::Table;
use super::super::{ReportError, StudyFiles};
use super::{Section, missing};

/// Feature counts per (sequence, region): all, and kept by the ICC filter.
type IccCounts = BTreeMap<(String, String), (usize, usize)>;

/// Counts the features of `icc.csv` per (sequence, region): all, and kept
/// by the ICC filter.
fn icc_counts(files: &StudyFiles) -> Result<Option<IccCounts>, ReportError> {
    let Some(file) = &files.icc else {
        return Ok(None);
    };
    let mut counts = IccCounts::new();

    for row in 0..file.rows.len() {
        let key = (
            file.text(row, "sequence")?.to_string(),
            file.text(row, "region")?.to_string(),
        );
        let kept = match file.text(row, "kept")? {
            "true" => true,
            "false" => false,
            other => return Err(file.invalid(row, "kept", other, "expected true or false")),
        };
        let entry = counts.entry(key).or_default();
        entry.0 += 1;
        entry.1 += usize::from(kept);
    }
    Ok(Some(counts))
}

/// Counts the feature columns of `features.csv` per (sequence, region) of
/// the models: the columns named `{sequence}_{region}_...`, without the
/// `{sequence}_{region}_missing` indicator of an imputed habitat region.
/// Returns `None` without `features.csv`.
fn extracted_count(files: &StudyFiles, sequence: &str, region: &str) -> Option<usize> {
    let features = files.features.as_ref()?;
    let prefix = format!("{sequence}_{region}_");
    let indicator = format!("{prefix}missing");
    let count = features
        .headers()
        .filter(|name| name.starts_with(&prefix) && *name != indicator)
        .count();
    Some(count)
}

/// Builds the funnel section from `selection.json`, `icc.csv` and the
/// columns of `features.csv`.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "selection";
    const TITLE: &str = "Selection funnel";
    let Some(selection) = &files.selection else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing("selection.json", "each model's selection funnel"),
        ));
    };

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "Features per model after each step, all fitted on training patients: the ICC \
         reproducibility filter (icc.csv), removal of constant features, the Mann-Whitney U \
         filter and LASSO (selection.json). The extracted count is the model's features in \
         icc.csv, or its columns in features.csv when icc.csv does not list them. A fusion model starts from the union of its single \
         models' LASSO features, so it has no ICC step. With habitat regions, the non-constant count \
         can exceed the ICC count by the missing-region indicator, which the ICC does not \
         filter. MWU relaxed = yes means that no feature passed the Mann-Whitney U threshold, \
         so the features with the smallest p-values (model.fallback_features) went on to LASSO."
            .into(),
    );

    let icc = icc_counts(files)?;
    match &icc {
        None => section
            .paragraphs
            .push("icc.csv is missing, so the after-ICC counts are NA.".into()),
        Some(counts) if counts.is_empty() => section.paragraphs.push(
            "icc.csv lists no feature because the ICC filter did not run (`not_run` in \
             icc.json gives the reason), so the after-ICC counts are NA."
                .into(),
        ),
        Some(_) => {}
    }

    let root = JsonField {
        file: "selection.json",
        value: selection,
    };

    let mut table = Table::new(
        "selection_funnel",
        "Features left after each selection step",
        &[
            "model",
            "sequence",
            "region",
            "extracted",
            "after_icc",
            "non_constant",
            "after_mwu",
            "after_lasso",
            "mwu_relaxed",
        ],
        &[
            "Model",
            "Sequence",
            "Region",
            "Extracted",
            "After ICC",
            "Non-constant",
            "After MWU",
            "After LASSO",
            "MWU relaxed",
        ],
    );

    for model in root.array("models")? {
        let name = model.text("model")?;
        let build = model.get("build")?;
        let single = build.text("kind")? == "single";
        let region = build
            .optional("region")
            .and_then(|r| r.value.as_str())
            .unwrap_or("")
            .to_string();
        let sequence = if single {
            build.text("sequence")?.to_string()
        } else {
            "fusion".to_string()
        };
        let funnel = model.get("funnel")?;
        let non_constant = funnel.count("non_constant")?;
        let after_mwu = funnel.count("after_mwu")?;
        let after_lasso = funnel.count("after_lasso")?;
        let relaxed = model
            .optional("mwu_relaxed")
            .and_then(|v| v.value.as_bool())
            .unwrap_or(false);
        let icc_pair = if single {
            icc.as_ref()
                .and_then(|c| c.get(&(sequence.clone(), region.clone())).copied())
        } else {
            None
        };
        let extracted = match icc_pair {
            Some((all, _)) => Some(all),
            None if !single => Some(funnel.count("candidates")?),
            None => extracted_count(files, &sequence, &region),
        };
        let after_icc = icc_pair.map(|(_, kept)| kept);
        let optional_count = |v: Option<usize>| v.map_or(serde_json::Value::Null, Into::into);
        let optional_text = |v: Option<usize>| v.map_or("NA".to_string(), |c| c.to_string());
        table.push(
            vec![
                name.into(),
                sequence.clone().into(),
                region.clone().into(),
                optional_count(extracted),
                optional_count(after_icc),
                non_constant.into(),
                after_mwu.into(),
                after_lasso.into(),
                relaxed.into(),
            ],
            vec![
                name.to_string(),
                sequence,
                region,
                optional_text(extracted),
                optional_text(after_icc),
                non_constant.to_string(),
                after_mwu.to_string(),
                after_lasso.to_string(),
                if relaxed { "yes" } else { "no" }.to_string(),
            ],
        );
    }

    section.tables.push(table);

    Ok(section)
}
