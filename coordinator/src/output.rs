//! Files of the study directory besides the feature table: `metrics.csv`,
//! `predictions.csv`, `exclusions.csv`, `models.json` and
//! `provenance.json`, and the metrics table printed to the terminal.

use std::fmt::Write as _;
use std::path::Path;

use polars::prelude::*;

use crate::client::ExclusionRecord;
use crate::model::{MetricsRow, ModellingOutcome, Prediction};
use crate::table::{TableError, write_csv};

/// Column order of `metrics.csv`.
pub const METRICS_COLUMNS: [&str; 10] = [
    "model",
    "cohort",
    "n",
    "n_positive",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "sensitivity",
    "specificity",
    "threshold",
];

/// Returns the metrics as a DataFrame with [`METRICS_COLUMNS`].
pub fn metrics_frame(rows: &[MetricsRow]) -> PolarsResult<DataFrame> {
    let optional = |f: fn(&MetricsRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new(
            "model".into(),
            rows.iter().map(|r| r.model.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "cohort".into(),
            rows.iter().map(|r| r.cohort.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "n".into(),
            rows.iter().map(|r| r.n as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "n_positive".into(),
            rows.iter().map(|r| r.n_positive as u32).collect::<Vec<_>>(),
        ),
        Column::new("auc".into(), optional(|r| r.auc)),
        Column::new("auc_ci_low".into(), optional(|r| r.auc_ci_low)),
        Column::new("auc_ci_high".into(), optional(|r| r.auc_ci_high)),
        Column::new("sensitivity".into(), optional(|r| r.sensitivity)),
        Column::new("specificity".into(), optional(|r| r.specificity)),
        Column::new(
            "threshold".into(),
            rows.iter().map(|r| r.threshold).collect::<Vec<_>>(),
        ),
    ])
}

fn predictions_frame(rows: &[Prediction]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(
            "pseudonym".into(),
            rows.iter()
                .map(|r| r.pseudonym.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "center".into(),
            rows.iter().map(|r| r.center.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "cohort".into(),
            rows.iter().map(|r| r.cohort.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "model".into(),
            rows.iter().map(|r| r.model.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "label".into(),
            rows.iter().map(|r| r.label as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "score".into(),
            rows.iter().map(|r| r.probability).collect::<Vec<_>>(),
        ),
    ])
}

fn exclusions_frame(rows: &[ExclusionRecord]) -> PolarsResult<DataFrame> {
    let text = |f: fn(&ExclusionRecord) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new("center".into(), text(|r| &r.center)),
        Column::new("pseudonym".into(), text(|r| &r.pseudonym)),
        Column::new("sequence".into(), text(|r| &r.sequence)),
        Column::new("kind".into(), text(|r| &r.kind)),
        Column::new("field".into(), text(|r| &r.field)),
        Column::new("reason".into(), text(|r| &r.reason)),
    ])
}

fn frame_error(path: &Path) -> impl Fn(PolarsError) -> TableError + '_ {
    move |error| TableError::Write {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// Writes `metrics.csv`, `predictions.csv`, `models.json` and
/// `exclusions.csv` into `out_dir`.
pub fn write_outputs(
    out_dir: &Path,
    modelling: &ModellingOutcome,
    exclusions: &[ExclusionRecord],
) -> Result<(), TableError> {
    let path = out_dir.join("metrics.csv");
    write_csv(
        &mut metrics_frame(&modelling.metrics).map_err(frame_error(&path))?,
        &path,
    )?;

    let path = out_dir.join("predictions.csv");
    write_csv(
        &mut predictions_frame(&modelling.predictions).map_err(frame_error(&path))?,
        &path,
    )?;

    let path = out_dir.join("exclusions.csv");
    write_csv(
        &mut exclusions_frame(exclusions).map_err(frame_error(&path))?,
        &path,
    )?;

    let models = serde_json::json!({
        "models": modelling.models,
        "skipped": modelling.skipped,
    });
    write_json(&out_dir.join("models.json"), &models)
}

/// Writes pretty-printed JSON.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TableError> {
    let error = |message: String| TableError::Write {
        path: path.display().to_string(),
        message,
    };
    let text = serde_json::to_string_pretty(value).map_err(|e| error(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| error(e.to_string()))
}

/// Formats the metrics as an aligned text table.
pub fn format_metrics(rows: &[MetricsRow]) -> String {
    let number = |value: Option<f64>| {
        value
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "NA".into())
    };
    let header = [
        "model",
        "cohort",
        "n",
        "n_pos",
        "AUC",
        "95% CI",
        "sens",
        "spec",
        "threshold",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for row in rows {
        let ci = match (row.auc_ci_low, row.auc_ci_high) {
            (Some(low), Some(high)) => format!("[{low:.3}, {high:.3}]"),
            _ => "NA".into(),
        };
        cells.push(vec![
            row.model.clone(),
            row.cohort.clone(),
            row.n.to_string(),
            row.n_positive.to_string(),
            number(row.auc),
            ci,
            number(row.sensitivity),
            number(row.specificity),
            format!("{:.3}", row.threshold),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for (index, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c < 2 {
                    format!("{cell:<width$}", width = widths[c])
                } else {
                    format!("{cell:>width$}", width = widths[c])
                }
            })
            .collect();
        let _ = writeln!(text, "{}", line.join("  ").trim_end());
        if index == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            let _ = writeln!(text, "{}", "-".repeat(total));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(auc: Option<f64>) -> MetricsRow {
        MetricsRow {
            model: "T1_whole".into(),
            cohort: "training".into(),
            n: 10,
            n_positive: 4,
            auc,
            auc_ci_low: auc.map(|a| a - 0.1),
            auc_ci_high: auc.map(|a| a + 0.1),
            sensitivity: Some(0.75),
            specificity: None,
            threshold: 0.5,
        }
    }

    #[test]
    fn metrics_frame_has_documented_columns() {
        let frame = metrics_frame(&[row(Some(0.8))]).expect("frame");
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, METRICS_COLUMNS);
    }

    #[test]
    fn metrics_table_prints_na_for_missing_values() {
        let text = format_metrics(&[row(None)]);
        assert!(
            text.lines().nth(2).is_some_and(|line| line.contains("NA")),
            "{text}"
        );
        let text = format_metrics(&[row(Some(0.8))]);
        assert!(text.contains("[0.700, 0.900]"), "{text}");
    }
}
