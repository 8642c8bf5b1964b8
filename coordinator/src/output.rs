//! Files of the study directory besides the feature table, and the metrics
//! table printed to the terminal.
//!
//! | file | content |
//! |---|---|
//! | `metrics.csv` | AUC with DeLong CI, sensitivity and specificity per model and cohort |
//! | `validation.json` | every validation measure per model and cohort |
//! | `calibration.csv` | calibration curve points |
//! | `decision_curve.csv` | net benefit of model, treat-all and treat-none |
//! | `comparisons.csv` | DeLong tests of the fusion model against each single model |
//! | `shap_importance.csv`, `shap_values.csv` | SHAP values of the fusion model |
//! | `selection.json` | the best-region choice with each region's scores, and the selection funnel of each model |
//! | `models.json` | the frozen models |
//! | `predictions.csv`, `exclusions.csv` | per-patient scores and exclusions |
//! | `habitats.json`, `habitat_regions.csv` | the habitat model per space and the region sums over centers ([`crate::habitat::report`]) |
//! | `missing_regions.json` | patients per cohort whose habitat region was imputed ([`crate::model::missing`]) |

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
        column("model", rows, |r| r.model.as_str()),
        column("cohort", rows, |r| r.cohort.as_str()),
        column("n", rows, |r| r.n as u32),
        column("n_positive", rows, |r| r.n_positive as u32),
        Column::new("auc".into(), optional(|r| r.auc)),
        Column::new("auc_ci_low".into(), optional(|r| r.auc_ci_low)),
        Column::new("auc_ci_high".into(), optional(|r| r.auc_ci_high)),
        Column::new("sensitivity".into(), optional(|r| r.sensitivity)),
        Column::new("specificity".into(), optional(|r| r.specificity)),
        column("threshold", rows, |r| r.threshold),
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
        column("center", rows, |r| r.center.as_str()),
        column("cohort", rows, |r| r.cohort.as_str()),
        column("model", rows, |r| r.model.as_str()),
        column("label", rows, |r| r.label as u32),
        column("score", rows, |r| r.probability),
        column("radscore", rows, |r| r.radscore),
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

/// Builds the column `name` with one value per row.
fn column<'a, R, T>(name: &str, rows: &'a [R], value: impl Fn(&'a R) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), rows.iter().map(value).collect::<Vec<_>>())
}

fn frame_error(path: &Path) -> impl Fn(PolarsError) -> TableError + '_ {
    move |error| TableError::Write {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// Writes `frame` as the CSV file `name` in `out_dir`. An error building the
/// frame is reported against that file.
fn write_frame(
    out_dir: &Path,
    name: &str,
    frame: PolarsResult<DataFrame>,
) -> Result<(), TableError> {
    let path = out_dir.join(name);
    write_csv(&mut frame.map_err(frame_error(&path))?, &path)
}

/// Writes `metrics.csv`, `predictions.csv`, `models.json` and
/// `exclusions.csv` into `out_dir`.
pub fn write_outputs(
    out_dir: &Path,
    modelling: &ModellingOutcome,
    exclusions: &[ExclusionRecord],
) -> Result<(), TableError> {
    write_frame(out_dir, "metrics.csv", metrics_frame(&modelling.metrics))?;
    write_frame(
        out_dir,
        "predictions.csv",
        predictions_frame(&modelling.predictions),
    )?;
    write_frame(out_dir, "exclusions.csv", exclusions_frame(exclusions))?;
    write_frame(out_dir, "calibration.csv", calibration_frame(modelling))?;
    write_frame(
        out_dir,
        "decision_curve.csv",
        decision_curve_frame(modelling),
    )?;
    write_frame(out_dir, "comparisons.csv", comparisons_frame(modelling))?;
    write_frame(
        out_dir,
        "shap_importance.csv",
        shap_importance_frame(modelling),
    )?;
    write_frame(out_dir, "shap_values.csv", shap_values_frame(modelling))?;

    write_json(&out_dir.join("validation.json"), &modelling.validations)?;
    write_json(&out_dir.join("selection.json"), &selection_json(modelling))?;
    let models = serde_json::json!({
        "models": modelling.models,
        "skipped": modelling.skipped,
    });
    write_json(&out_dir.join("models.json"), &models)
}

/// Returns the content of `selection.json`: the best-region choice with
/// the per-region scores behind it, and each model's selection funnel.
pub fn selection_json(modelling: &ModellingOutcome) -> serde_json::Value {
    let models: Vec<_> = modelling
        .models
        .iter()
        .map(|m| {
            serde_json::json!({
                "model": m.name,
                "build": m.build,
                "funnel": m.funnel,
                "mwu_relaxed": m.mwu_relaxed,
                "lasso": m.lasso,
            })
        })
        .collect();
    serde_json::json!({
        "best_region": modelling.region_selection,
        "models": models,
    })
}

fn calibration_frame(modelling: &ModellingOutcome) -> PolarsResult<DataFrame> {
    // One row per calibration bin of each validation, numbered from 1.
    let rows: Vec<_> = modelling
        .validations
        .iter()
        .filter_map(|validation| Some((validation, validation.calibration.as_ref()?)))
        .flat_map(|(validation, calibration)| {
            calibration
                .curve
                .iter()
                .enumerate()
                .map(move |(index, point)| (validation, index, point))
        })
        .collect();
    DataFrame::new_infer_height(vec![
        column("model", &rows, |&(v, _, _)| v.model.as_str()),
        column("cohort", &rows, |&(v, _, _)| v.cohort.as_str()),
        column("bin", &rows, |&(_, index, _)| index as u32 + 1),
        column("n", &rows, |&(_, _, point)| point.count as u32),
        column("mean_predicted", &rows, |&(_, _, point)| {
            point.mean_predicted
        }),
        column("observed_fraction", &rows, |&(_, _, point)| {
            point.observed_fraction
        }),
    ])
}

fn decision_curve_frame(modelling: &ModellingOutcome) -> PolarsResult<DataFrame> {
    // One row per threshold of each validation's decision curve.
    let rows: Vec<_> = modelling
        .validations
        .iter()
        .filter_map(|validation| Some((validation, validation.decision_curve.as_ref()?)))
        .flat_map(|(validation, curve)| curve.points.iter().map(move |point| (validation, point)))
        .collect();
    DataFrame::new_infer_height(vec![
        column("model", &rows, |&(v, _)| v.model.as_str()),
        column("cohort", &rows, |&(v, _)| v.cohort.as_str()),
        column("threshold", &rows, |&(_, point)| point.threshold),
        column("net_benefit", &rows, |&(_, point)| point.model),
        column("net_benefit_treat_all", &rows, |&(_, point)| {
            point.treat_all
        }),
        column("net_benefit_treat_none", &rows, |&(_, point)| {
            point.treat_none
        }),
    ])
}

fn comparisons_frame(modelling: &ModellingOutcome) -> PolarsResult<DataFrame> {
    let rows = &modelling.comparisons;
    DataFrame::new_infer_height(vec![
        column("cohort", rows, |r| r.cohort.as_str()),
        column("model_a", rows, |r| r.model_a.as_str()),
        column("model_b", rows, |r| r.model_b.as_str()),
        column("n", rows, |r| r.n as u32),
        column("auc_a", rows, |r| r.auc_a),
        column("auc_b", rows, |r| r.auc_b),
        column("delong_z", rows, |r| r.z),
        column("delong_p", rows, |r| r.p_value),
        Column::new(
            "difference_ci_low".into(),
            rows.iter()
                .map(|r| r.difference_ci.map(|d| d.ci_low))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "difference_ci_high".into(),
            rows.iter()
                .map(|r| r.difference_ci.map(|d| d.ci_high))
                .collect::<Vec<_>>(),
        ),
    ])
}

fn shap_importance_frame(modelling: &ModellingOutcome) -> PolarsResult<DataFrame> {
    let rows = &modelling.shap_importance;
    DataFrame::new_infer_height(vec![
        column("model", rows, |r| r.model.as_str()),
        column("cohort", rows, |r| r.cohort.as_str()),
        column("feature", rows, |r| r.feature.as_str()),
        column("mean_abs_shap", rows, |r| r.mean_abs_shap),
    ])
}

fn shap_values_frame(modelling: &ModellingOutcome) -> PolarsResult<DataFrame> {
    let rows = &modelling.shap_values;
    DataFrame::new_infer_height(vec![
        column("pseudonym", rows, |r| r.0.as_str()),
        column("cohort", rows, |r| r.1.as_str()),
        column("feature", rows, |r| r.2.as_str()),
        column("shap_log_odds", rows, |r| r.3),
    ])
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
    fn selection_json_has_best_region_and_models() {
        let mut modelling = ModellingOutcome::default();
        modelling.region_selection = Some(crate::model::RegionSelection {
            rule: crate::config::BestRegionRule::CvAuc,
            chosen: Some("inner".into()),
            optimistic: false,
            skipped_reason: None,
            cv_folds: Some(10),
            cv_repeats: Some(10),
            regions: Vec::new(),
        });
        let json = selection_json(&modelling);
        assert_eq!(json["best_region"]["chosen"], "inner");
        assert_eq!(json["best_region"]["rule"], "cv_auc");
        assert_eq!(json["models"], serde_json::json!([]));
    }

    /// Two validations of one model: training with both classes, and an
    /// external cohort of positives only, which has no calibration curve.
    fn two_validations() -> ModellingOutcome {
        let config = crate::config::ModelConfig {
            bootstrap_replicates: 0,
            ..Default::default()
        };
        let scores = [0.1, 0.2, 0.35, 0.4, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95];
        let labels = [
            false, false, true, false, true, false, true, true, false, true,
        ];
        let training = crate::model::validate_cohort(
            "T1_whole",
            crate::split::Cohort::Training,
            &scores,
            &labels,
            0.5,
            &config,
            7,
        );
        let external = crate::model::validate_cohort(
            "T1_whole",
            crate::split::Cohort::ExternalValidation,
            &scores[..4],
            &[true; 4],
            0.5,
            &config,
            7,
        );
        let mut modelling = ModellingOutcome::default();
        modelling.validations = vec![training, external];
        modelling
    }

    #[test]
    fn calibration_frame_lists_every_bin() {
        let modelling = two_validations();
        let frame = calibration_frame(&modelling).expect("frame");

        // The expected rows are read from the validations in order, with
        // bins numbered from 1, so the check needs exact equality.
        let mut row = 0;
        for validation in &modelling.validations {
            let Some(calibration) = &validation.calibration else {
                continue;
            };
            for (index, point) in calibration.curve.iter().enumerate() {
                let expected = vec![
                    AnyValue::String(&validation.model),
                    AnyValue::String(&validation.cohort),
                    AnyValue::UInt32(index as u32 + 1),
                    AnyValue::UInt32(point.count as u32),
                    AnyValue::Float64(point.mean_predicted),
                    AnyValue::Float64(point.observed_fraction),
                ];
                assert_eq!(frame.get(row), Some(expected), "row {row}");
                row += 1;
            }
        }
        assert!(row > 0, "the training cohort has a calibration curve");
        assert_eq!(frame.height(), row);
    }

    #[test]
    fn decision_curve_frame_lists_every_threshold() {
        let modelling = two_validations();
        let frame = decision_curve_frame(&modelling).expect("frame");

        // The expected rows are read from the validations in order, so the
        // check needs exact equality.
        let mut row = 0;
        for validation in &modelling.validations {
            let Some(curve) = &validation.decision_curve else {
                continue;
            };
            for point in &curve.points {
                let expected = vec![
                    AnyValue::String(&validation.model),
                    AnyValue::String(&validation.cohort),
                    AnyValue::Float64(point.threshold),
                    AnyValue::Float64(point.model),
                    AnyValue::Float64(point.treat_all),
                    AnyValue::Float64(point.treat_none),
                ];
                assert_eq!(frame.get(row), Some(expected), "row {row}");
                row += 1;
            }
        }
        assert!(row > 0, "the training cohort has a decision curve");
        assert_eq!(frame.height(), row);
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
