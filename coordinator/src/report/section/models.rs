//! The model table (discrimination at the frozen cut-off per cohort) and
//! the DeLong comparisons.

use serde_json::Value;

use super::super::read::{CsvFile, JsonField};
use super::super::table::{Table, decimal, json_number, with_interval};
use super::super::{COHORTS, ReportError, StudyFiles, cohort_name};
use super::{Section, missing};

/// One row of `metrics.csv`.
#[derive(Debug, Clone)]
pub struct MetricRow {
    /// Model name.
    pub model: String,
    /// Cohort id.
    pub cohort: String,
    /// Patients.
    pub n: usize,
    /// Patients with the event.
    pub n_positive: usize,
    /// AUC.
    pub auc: Option<f64>,
    /// Lower end of the DeLong 95% CI of the AUC.
    pub auc_ci_low: Option<f64>,
    /// Upper end of the DeLong 95% CI of the AUC.
    pub auc_ci_high: Option<f64>,
    /// Sensitivity at the frozen cut-off.
    pub sensitivity: Option<f64>,
    /// Specificity at the frozen cut-off.
    pub specificity: Option<f64>,
    /// The cut-off on the predicted probability, fixed on training.
    pub threshold: Option<f64>,
}

/// Parses `metrics.csv`.
pub fn metrics_rows(file: &CsvFile) -> Result<Vec<MetricRow>, ReportError> {
    (0..file.rows.len())
        .map(|row| {
            Ok(MetricRow {
                model: file.text(row, "model")?.to_string(),
                cohort: file.text(row, "cohort")?.to_string(),
                n: file.count(row, "n")?,
                n_positive: file.count(row, "n_positive")?,
                auc: file.optional_number(row, "auc")?,
                auc_ci_low: file.optional_number(row, "auc_ci_low")?,
                auc_ci_high: file.optional_number(row, "auc_ci_high")?,
                sensitivity: file.optional_number(row, "sensitivity")?,
                specificity: file.optional_number(row, "specificity")?,
                threshold: file.optional_number(row, "threshold")?,
            })
        })
        .collect()
}

/// A proportion with its 95% Wilson interval from `validation.json`.
#[derive(Debug, Clone, Copy, Default)]
struct Interval {
    low: Option<f64>,
    high: Option<f64>,
}

/// Returns the Wilson intervals of sensitivity and specificity of `model`
/// on `cohort`, when `validation.json` has them.
fn wilson_intervals(
    validation: Option<&Value>,
    model: &str,
    cohort: &str,
) -> Result<(Interval, Interval), ReportError> {
    let Some(Value::Array(entries)) = validation else {
        return Ok((Interval::default(), Interval::default()));
    };

    for value in entries {
        let entry = JsonField {
            file: "validation.json",
            value,
        };
        if entry.text("model")? != model || entry.text("cohort")? != cohort {
            continue;
        }
        let Some(at_threshold) = entry.optional("at_threshold") else {
            break;
        };
        let interval = |key: &str| -> Result<Interval, ReportError> {
            match at_threshold.optional(key) {
                Some(p) => Ok(Interval {
                    low: p.optional_number("ci_low")?,
                    high: p.optional_number("ci_high")?,
                }),
                None => Ok(Interval::default()),
            }
        };
        return Ok((interval("sensitivity")?, interval("specificity")?));
    }
    Ok((Interval::default(), Interval::default()))
}

/// Builds the model table: one row per model and cohort, cohorts in the
/// order training, internal, external.
pub fn model_section(files: &StudyFiles) -> Result<Section, ReportError> {
    let mut section = Section::new("models", "Models");
    section.paragraphs.push(
        "AUC with its DeLong 95% CI; sensitivity and specificity at the cut-off fixed on \
         training, with 95% Wilson intervals from validation.json. Source: metrics.csv."
            .into(),
    );
    if files.validation.is_none() {
        section.paragraphs.push(
            "validation.json is missing, so sensitivity and specificity have no intervals.".into(),
        );
    }
    section.paragraphs.extend(skipped_models(files));
    let mut rows = metrics_rows(&files.metrics)?;
    let order = |cohort: &str| {
        COHORTS
            .iter()
            .position(|(id, _)| *id == cohort)
            .unwrap_or(COHORTS.len())
    };
    let models: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for row in &rows {
            if !seen.contains(&row.model) {
                seen.push(row.model.clone());
            }
        }
        seen
    };
    rows.sort_by_key(|r| {
        (
            models.iter().position(|m| *m == r.model).unwrap_or(0),
            order(&r.cohort),
        )
    });

    let mut table = Table::new(
        "models",
        "Discrimination per model and cohort",
        &[
            "model",
            "cohort",
            "n",
            "n_positive",
            "auc",
            "auc_ci_low",
            "auc_ci_high",
            "sensitivity",
            "sensitivity_ci_low",
            "sensitivity_ci_high",
            "specificity",
            "specificity_ci_low",
            "specificity_ci_high",
            "threshold",
            "caution",
        ],
        &[
            "Model",
            "Cohort",
            "n",
            "Events",
            "AUC [95% CI]",
            "Sensitivity [95% CI]",
            "Specificity [95% CI]",
            "Cut-off",
            "Caution",
        ],
    );

    for row in &rows {
        let (sensitivity, specificity) =
            wilson_intervals(files.validation.as_ref(), &row.model, &row.cohort)?;
        let caution = metric_caution(row);
        table.push(
            vec![
                row.model.clone().into(),
                row.cohort.clone().into(),
                row.n.into(),
                row.n_positive.into(),
                json_number(row.auc),
                json_number(row.auc_ci_low),
                json_number(row.auc_ci_high),
                json_number(row.sensitivity),
                json_number(sensitivity.low),
                json_number(sensitivity.high),
                json_number(row.specificity),
                json_number(specificity.low),
                json_number(specificity.high),
                json_number(row.threshold),
                caution.clone().into(),
            ],
            vec![
                row.model.clone(),
                cohort_name(&row.cohort).to_string(),
                row.n.to_string(),
                row.n_positive.to_string(),
                with_interval(row.auc, row.auc_ci_low, row.auc_ci_high),
                with_interval(row.sensitivity, sensitivity.low, sensitivity.high),
                with_interval(row.specificity, specificity.low, specificity.high),
                decimal(row.threshold),
                caution,
            ],
        );
    }

    section.tables.push(table);

    Ok(section)
}

/// Builds the DeLong comparison table from `comparisons.csv`.
pub fn comparison_section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "delong";
    const TITLE: &str = "DeLong comparisons";
    let Some(file) = &files.comparisons else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing("comparisons.csv", "the DeLong tests between models"),
        ));
    };

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "Paired DeLong tests on the same patients: the fusion model against each single model, \
         and each region's model (inner, mid, marginal, core, rim) against the whole-lesion model \
         of its sequence. \
         Each test uses only the patients that both models scored, so n and the AUCs can differ \
         from the Models table when a sequence is excluded for some patients. \
         p-values are two-sided and not adjusted for multiple comparisons. Source: comparisons.csv."
            .into(),
    );

    let mut table = Table::new(
        "comparisons",
        "DeLong tests of paired AUCs",
        &[
            "cohort",
            "model_a",
            "model_b",
            "n",
            "auc_a",
            "auc_b",
            "delong_z",
            "delong_p",
            "difference_ci_low",
            "difference_ci_high",
            "caution",
        ],
        &[
            "Cohort",
            "Model A",
            "Model B",
            "n",
            "AUC A",
            "AUC B",
            "ΔAUC [95% CI]",
            "z",
            "p",
            "Caution",
        ],
    );

    for row in 0..file.rows.len() {
        let cohort = file.text(row, "cohort")?;
        let model_a = file.text(row, "model_a")?;
        let model_b = file.text(row, "model_b")?;
        let n = file.count(row, "n")?;
        let auc_a = file.optional_number(row, "auc_a")?;
        let auc_b = file.optional_number(row, "auc_b")?;
        let z = file.optional_number(row, "delong_z")?;
        let p = file.optional_number(row, "delong_p")?;
        let low = file.optional_number(row, "difference_ci_low")?;
        let high = file.optional_number(row, "difference_ci_high")?;
        let difference = auc_a.zip(auc_b).map(|(a, b)| a - b);
        let caution = comparison_caution(difference, z, low, high);
        table.push(
            vec![
                cohort.into(),
                model_a.into(),
                model_b.into(),
                n.into(),
                json_number(auc_a),
                json_number(auc_b),
                json_number(z),
                json_number(p),
                json_number(low),
                json_number(high),
                caution.clone().into(),
            ],
            vec![
                cohort_name(cohort).to_string(),
                model_a.to_string(),
                model_b.to_string(),
                n.to_string(),
                decimal(auc_a),
                decimal(auc_b),
                with_interval(difference, low, high),
                decimal(z),
                decimal(p),
                caution,
            ],
        );
    }
    if file.rows.is_empty() {
        section
            .paragraphs
            .push("No pair of models was compared (comparisons.csv has no rows).".into());
    }

    section.tables.push(table);

    Ok(section)
}

/// Returns one sentence per model that could not be fitted, with the
/// reason from `models.json`, so that a model missing from the table is
/// explained where the table is.
fn skipped_models(files: &StudyFiles) -> Vec<String> {
    let Some(skipped) = files
        .models
        .as_ref()
        .and_then(|models| models.get("skipped"))
        .and_then(serde_json::Value::as_array)
    else {
        return Vec::new();
    };
    skipped
        .iter()
        .filter_map(|entry| {
            let model = entry.get("model")?.as_str()?;
            let reason = entry.get("reason")?.as_str()?;
            Some(format!(
                "Model {model} was not fitted and is not in the table: {reason}. A fusion model \
                 built without it rests on the remaining sequences only. Source: models.json."
            ))
        })
        .collect()
}

/// Events or non-events below which the report warns that an AUC and its
/// interval rest on few patients. Ten per class is the usual rule of thumb
/// for a stable AUC estimate (Hanley and McNeil, Radiology 1982).
const FEW_PER_CLASS: usize = 10;

/// Returns the reader's warning for one model and cohort, or an empty
/// string: statistics that are correct but easy to over-read.
pub fn metric_caution(row: &MetricRow) -> String {
    let mut notes = Vec::new();
    let non_events = row.n.saturating_sub(row.n_positive);
    if row.n_positive.min(non_events) < FEW_PER_CLASS {
        notes.push(format!(
            "{} events and {non_events} non-events: the AUC is unstable",
            row.n_positive
        ));
    }
    if let (Some(low), Some(high)) = (row.auc_ci_low, row.auc_ci_high)
        && high - low < 1e-12
    {
        notes.push(
            "zero-width DeLong interval: the classes are perfectly separated, and the \
             interval does not show the uncertainty"
                .to_string(),
        );
    }
    notes.join("; ")
}

/// Returns the reader's warning for one DeLong comparison, or an empty
/// string.
pub fn comparison_caution(
    difference: Option<f64>,
    z: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
) -> String {
    let same = difference.is_some_and(|d| d.abs() < 1e-12)
        && low.zip(high).is_none_or(|(l, h)| (h - l).abs() < 1e-12);
    if same {
        return "the two models rank the patients identically; there is nothing to test".into();
    }
    if z.is_none() {
        return "no z statistic: the variance of the AUC difference is zero".into();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(n: usize, n_positive: usize, ci: (f64, f64)) -> MetricRow {
        MetricRow {
            model: "T1W_inner".into(),
            cohort: "external".into(),
            n,
            n_positive,
            auc: Some(0.8),
            auc_ci_low: Some(ci.0),
            auc_ci_high: Some(ci.1),
            sensitivity: None,
            specificity: None,
            threshold: None,
        }
    }

    #[test]
    fn metric_caution_large_cohort_is_empty() {
        assert_eq!(metric_caution(&metric(80, 30, (0.7, 0.9))), "");
    }

    #[test]
    fn metric_caution_small_class_zero_width_interval() {
        // The STS external center: 10 patients, 3 events, AUC 1.000 gives a
        // DeLong interval of zero width.
        let caution = metric_caution(&metric(10, 3, (1.0, 1.0)));
        assert!(
            caution.starts_with("3 events and 7 non-events"),
            "{caution}"
        );
        assert!(caution.contains("zero-width DeLong interval"), "{caution}");
    }

    #[test]
    fn comparison_caution_flags_identical_rankings_only() {
        let identical = comparison_caution(Some(0.0), None, Some(0.0), Some(0.0));
        assert!(identical.contains("identically"), "{identical}");
        assert_eq!(
            comparison_caution(Some(0.05), Some(1.2), Some(-0.03), Some(0.13)),
            ""
        );
        let no_z = comparison_caution(Some(0.05), None, None, None);
        assert!(no_z.starts_with("no z statistic"), "{no_z}");
    }
}
