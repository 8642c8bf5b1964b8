//! The first modelling pass: per model, standardise on training patients,
//! filter features by Mann-Whitney U, fit an L2 logistic regression, fix
//! the Youden cut-off on training, and evaluate every cohort.
//!
//! Models: one per sequence over its whole-tumour features
//! (`<sequence>_whole`), and, with two or more sequences, a fusion model
//! over the features of all sequences (`fusion_whole`). Each model uses the
//! patients that have every one of its features; everything fitted is fitted
//! on training patients only and then frozen.

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::config::ModelConfig;
use crate::split::Cohort;
use crate::stats::{self, Confusion, StatsError};
use crate::table::StudyTable;

/// Minimum number of training patients per class for a model to be fitted.
pub const MIN_TRAINING_PER_CLASS: usize = 3;

/// A model's name and the sequences of its features.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Model name, for example `MR_T1_whole`.
    pub name: String,
    /// Sequences whose columns the model may use.
    pub sequences: Vec<String>,
}

/// Returns the models of a study with these sequences.
pub fn model_specs(sequences: &[String]) -> Vec<ModelSpec> {
    let mut specs: Vec<ModelSpec> = sequences
        .iter()
        .map(|sequence| ModelSpec {
            name: format!("{sequence}_whole"),
            sequences: vec![sequence.clone()],
        })
        .collect();
    if sequences.len() > 1 {
        specs.push(ModelSpec {
            name: "fusion_whole".to_string(),
            sequences: sequences.to_vec(),
        });
    }
    specs
}

/// A selected feature with its test and coefficient.
#[derive(Debug, Clone, Serialize)]
pub struct SelectedFeature {
    /// Column name.
    pub name: String,
    /// Two-sided Mann-Whitney U p-value on training patients.
    pub mwu_p_value: f64,
    /// Training mean used to standardise.
    pub mean: f64,
    /// Training population SD used to standardise.
    pub scale: f64,
    /// Logistic coefficient on the standardised feature (log-odds per SD).
    pub coefficient: f64,
}

/// A fitted, frozen model.
#[derive(Debug, Clone, Serialize)]
pub struct FittedModel {
    /// Model name.
    pub name: String,
    /// Training patients, negative and positive.
    pub n_training: [usize; 2],
    /// Features tested by Mann-Whitney U (non-constant on training).
    pub n_tested: usize,
    /// Whether no feature passed the threshold and the smallest p-values
    /// were kept instead.
    pub mwu_relaxed: bool,
    /// Selected features, in column order.
    pub features: Vec<SelectedFeature>,
    /// Logistic intercept (log-odds at the training mean).
    pub intercept: f64,
    /// Youden cut-off on the predicted probability, fixed on training:
    /// a patient is called positive when its probability is >= this.
    pub threshold: f64,
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsRow {
    /// Model name.
    pub model: String,
    /// Cohort name.
    pub cohort: String,
    /// Patients evaluated.
    pub n: usize,
    /// Positive patients evaluated.
    pub n_positive: usize,
    /// ROC AUC; `None` when a class is absent.
    pub auc: Option<f64>,
    /// DeLong 95% CI lower bound.
    pub auc_ci_low: Option<f64>,
    /// DeLong 95% CI upper bound.
    pub auc_ci_high: Option<f64>,
    /// Sensitivity at the training cut-off; `None` without positives.
    pub sensitivity: Option<f64>,
    /// Specificity at the training cut-off; `None` without negatives.
    pub specificity: Option<f64>,
    /// The training cut-off on the predicted probability.
    pub threshold: f64,
}

/// One patient's score under one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Patient pseudonym.
    pub pseudonym: String,
    /// Patient center.
    pub center: String,
    /// Cohort name.
    pub cohort: String,
    /// Model name.
    pub model: String,
    /// Outcome, 0 or 1.
    pub label: u8,
    /// Predicted probability of the positive class.
    pub probability: f64,
}

/// A model that could not be fitted, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedModel {
    /// Model name.
    pub model: String,
    /// The reason it was skipped.
    pub reason: String,
}

/// Everything the modelling pass produces.
#[derive(Debug, Clone, Default)]
pub struct ModellingOutcome {
    /// Fitted models.
    pub models: Vec<FittedModel>,
    /// Metrics per model and cohort.
    pub metrics: Vec<MetricsRow>,
    /// Scores per patient and model.
    pub predictions: Vec<Prediction>,
    /// Models that could not be fitted.
    pub skipped: Vec<SkippedModel>,
}

/// Fits and evaluates every model of `specs` on `table`.
pub fn run_models(
    table: &StudyTable,
    specs: &[ModelSpec],
    config: &ModelConfig,
) -> ModellingOutcome {
    let mut outcome = ModellingOutcome::default();
    for spec in specs {
        let span = tracing::info_span!("model", model = %spec.name);
        let _entered = span.enter();
        match fit_and_evaluate(table, spec, config) {
            Ok((model, metrics, predictions)) => {
                tracing::info!(features = model.features.len(), "model fitted");
                outcome.models.push(model);
                outcome.metrics.extend(metrics);
                outcome.predictions.extend(predictions);
            }
            Err(reason) => {
                tracing::warn!(%reason, "model skipped");
                outcome.skipped.push(SkippedModel {
                    model: spec.name.clone(),
                    reason,
                });
            }
        }
    }
    outcome
}

type Evaluated = (FittedModel, Vec<MetricsRow>, Vec<Prediction>);

fn fit_and_evaluate(
    table: &StudyTable,
    spec: &ModelSpec,
    config: &ModelConfig,
) -> Result<Evaluated, String> {
    let stats_error = |error: StatsError| format!("statistics failed: {error}");

    // Columns of the model's sequences; patients with every one of them.
    let columns: Vec<usize> = (0..table.columns.len())
        .filter(|&c| spec.sequences.contains(&table.columns[c].sequence))
        .collect();
    if columns.is_empty() {
        return Err("no feature columns for its sequences".into());
    }
    let patients: Vec<usize> = (0..table.patients.len())
        .filter(|&p| {
            columns
                .iter()
                .all(|&c| table.columns[c].values[p].is_some())
        })
        .collect();
    let matrix = Array2::from_shape_fn((patients.len(), columns.len()), |(row, column)| {
        table.columns[columns[column]].values[patients[row]].unwrap_or(f64::NAN)
    });
    let labels: Vec<bool> = patients.iter().map(|&p| table.patients[p].label).collect();
    let training: Vec<usize> = (0..patients.len())
        .filter(|&row| table.patients[patients[row]].cohort == Cohort::Training)
        .collect();
    let train_x = matrix.select(Axis(0), &training);
    let train_y: Vec<bool> = training.iter().map(|&row| labels[row]).collect();
    let n_positive = train_y.iter().filter(|&&y| y).count();
    let n_training = [train_y.len() - n_positive, n_positive];
    if n_training[0] < MIN_TRAINING_PER_CLASS || n_training[1] < MIN_TRAINING_PER_CLASS {
        return Err(format!(
            "training has {} negative and {} positive patients with all features; at least {MIN_TRAINING_PER_CLASS} per class are needed",
            n_training[0], n_training[1]
        ));
    }

    // Standardisation fitted on training; constant columns are not tested.
    let standardizer = stats::Standardizer::fit(train_x.view()).map_err(stats_error)?;
    let train_z = standardizer
        .transform(train_x.view())
        .map_err(stats_error)?;
    let tested: Vec<usize> = (0..columns.len())
        .filter(|c| !standardizer.constant_columns.contains(c))
        .collect();
    if tested.is_empty() {
        return Err("every feature is constant on training patients".into());
    }

    // Mann-Whitney U filter on training patients.
    let mut p_values = Vec::with_capacity(tested.len());
    for &column in &tested {
        let values = train_z.column(column);
        let positives: Vec<f64> = train_y
            .iter()
            .zip(values)
            .filter(|(y, _)| **y)
            .map(|(_, v)| *v)
            .collect();
        let negatives: Vec<f64> = train_y
            .iter()
            .zip(values)
            .filter(|(y, _)| !**y)
            .map(|(_, v)| *v)
            .collect();
        p_values.push(
            stats::mann_whitney_u(&positives, &negatives)
                .map_err(stats_error)?
                .p_value,
        );
    }
    let mut selected: Vec<usize> = (0..tested.len())
        .filter(|&i| p_values[i] < config.mwu_alpha)
        .collect();
    let mwu_relaxed = selected.is_empty();
    if mwu_relaxed {
        let mut order: Vec<usize> = (0..tested.len()).collect();
        order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]).then(a.cmp(&b)));
        order.truncate(config.fallback_features);
        order.sort_unstable();
        selected = order;
    }
    let selected_columns: Vec<usize> = selected.iter().map(|&i| tested[i]).collect();

    // L2 logistic regression on the selected, standardised features.
    let train_selected = train_z.select(Axis(1), &selected_columns);
    let fitted = stats::fit_l2(train_selected.view(), &train_y, config.c).map_err(stats_error)?;

    // Scores for every patient; the cut-off is fixed on training.
    let all_z = standardizer.transform(matrix.view()).map_err(stats_error)?;
    let all_selected = all_z.select(Axis(1), &selected_columns);
    let probabilities = fitted
        .probability(all_selected.view())
        .map_err(stats_error)?;
    let train_probabilities: Vec<f64> = training.iter().map(|&row| probabilities[row]).collect();
    let threshold = stats::youden_threshold(&train_probabilities, &train_y).map_err(stats_error)?;

    let features = selected
        .iter()
        .zip(&selected_columns)
        .zip(fitted.coefficients.iter())
        .map(|((&tested_index, &column), &coefficient)| SelectedFeature {
            name: table.columns[columns[column]].name.clone(),
            mwu_p_value: p_values[tested_index],
            mean: standardizer.mean[column],
            scale: standardizer.scale[column],
            coefficient,
        })
        .collect();
    let model = FittedModel {
        name: spec.name.clone(),
        n_training,
        n_tested: tested.len(),
        mwu_relaxed,
        features,
        intercept: fitted.intercept,
        threshold,
    };

    let mut metrics = Vec::new();
    for cohort in Cohort::ALL {
        let rows: Vec<usize> = (0..patients.len())
            .filter(|&row| table.patients[patients[row]].cohort == cohort)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let scores: Vec<f64> = rows.iter().map(|&row| probabilities[row]).collect();
        let cohort_labels: Vec<bool> = rows.iter().map(|&row| labels[row]).collect();
        metrics.push(evaluate(
            &spec.name,
            cohort,
            &scores,
            &cohort_labels,
            threshold,
        ));
    }
    let predictions = (0..patients.len())
        .map(|row| {
            let patient = &table.patients[patients[row]];
            Prediction {
                pseudonym: patient.pseudonym.clone(),
                center: patient.center.clone(),
                cohort: patient.cohort.as_str().to_string(),
                model: spec.name.clone(),
                label: patient.label as u8,
                probability: probabilities[row],
            }
        })
        .collect();
    Ok((model, metrics, predictions))
}

/// Computes one metrics row; AUC and its CI are `None` when the cohort
/// lacks a class.
pub fn evaluate(
    model: &str,
    cohort: Cohort,
    scores: &[f64],
    labels: &[bool],
    threshold: f64,
) -> MetricsRow {
    let n_positive = labels.iter().filter(|&&y| y).count();
    let auc = stats::delong_auc(scores, labels).ok();
    let confusion = Confusion::at_threshold(scores, labels, threshold).ok();
    MetricsRow {
        model: model.to_string(),
        cohort: cohort.as_str().to_string(),
        n: labels.len(),
        n_positive,
        auc: auc.map(|a| a.auc),
        auc_ci_low: auc.map(|a| a.ci_low),
        auc_ci_high: auc.map(|a| a.ci_high),
        sensitivity: confusion.as_ref().and_then(Confusion::sensitivity),
        specificity: confusion.as_ref().and_then(Confusion::specificity),
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{FeatureColumn, PatientRecord};

    /// A table whose first feature separates the classes and whose second
    /// is noise-like, with 12 training and 6 validation patients.
    fn toy_table() -> StudyTable {
        let mut patients = Vec::new();
        let mut signal = Vec::new();
        let mut noise = Vec::new();
        for i in 0..18 {
            let label = i % 2 == 0;
            let cohort = if i < 12 {
                Cohort::Training
            } else {
                Cohort::ExternalValidation
            };
            patients.push(PatientRecord {
                center: "A".into(),
                pseudonym: format!("A-{i:02}"),
                label,
                cohort,
            });
            signal.push(Some(if label { 100.0 + i as f64 } else { i as f64 }));
            noise.push(Some(((i * 7) % 5) as f64));
        }
        StudyTable {
            patients,
            columns: vec![
                FeatureColumn {
                    name: "T1_whole_signal".into(),
                    sequence: "T1".into(),
                    values: signal,
                },
                FeatureColumn {
                    name: "T1_whole_noise".into(),
                    sequence: "T1".into(),
                    values: noise,
                },
            ],
        }
    }

    #[test]
    fn model_specs_add_fusion_for_two_sequences() {
        let specs = model_specs(&["MR_T1".into(), "PET".into()]);
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["MR_T1_whole", "PET_whole", "fusion_whole"]);
        assert_eq!(model_specs(&["T1".into()]).len(), 1);
    }

    #[test]
    fn model_selects_separating_feature_only() {
        let outcome = run_models(
            &toy_table(),
            &model_specs(&["T1".into()]),
            &ModelConfig::default(),
        );
        assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
        let model = &outcome.models[0];
        let names: Vec<_> = model.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["T1_whole_signal"]);
        assert!(!model.mwu_relaxed);
        assert!(model.features[0].coefficient > 0.0);
    }

    #[test]
    fn model_separable_data_give_auc_one_on_every_cohort() {
        // Positives score 100 + i and negatives i < 18, so the
        // ranking is perfect in both cohorts: AUC is exactly 1.
        let outcome = run_models(
            &toy_table(),
            &model_specs(&["T1".into()]),
            &ModelConfig::default(),
        );
        assert_eq!(outcome.metrics.len(), 2);
        for row in &outcome.metrics {
            assert_eq!(row.auc, Some(1.0), "{row:?}");
            assert_eq!(row.n, if row.cohort == "training" { 12 } else { 6 });
        }
    }

    #[test]
    fn model_validation_values_do_not_change_fit() {
        let table = toy_table();
        let mut changed = table.clone();
        for row in 12..18 {
            changed.columns[0].values[row] = Some(1000.0 * row as f64);
            changed.patients[row].label = !changed.patients[row].label;
        }
        let specs = model_specs(&["T1".into()]);
        let first = run_models(&table, &specs, &ModelConfig::default());
        let second = run_models(&changed, &specs, &ModelConfig::default());
        assert_eq!(first.models[0].intercept, second.models[0].intercept);
        assert_eq!(first.models[0].threshold, second.models[0].threshold);
        assert_eq!(
            first.models[0].features[0].coefficient,
            second.models[0].features[0].coefficient
        );
    }

    #[test]
    fn model_with_too_few_positives_is_skipped_with_reason() {
        let mut table = toy_table();
        for patient in table.patients.iter_mut().take(12) {
            patient.label = false;
        }
        table.patients[0].label = true;
        let outcome = run_models(
            &table,
            &model_specs(&["T1".into()]),
            &ModelConfig::default(),
        );
        assert_eq!(outcome.skipped.len(), 1);
        assert!(
            outcome.skipped[0].reason.contains("1 positive"),
            "{}",
            outcome.skipped[0].reason
        );
    }
}
