//! Feature selection, models and validation.
//!
//! Per single model (one per sequence over its whole-tumour features,
//! `<sequence>_whole`): standardisation fitted on training, a two-sided
//! Mann-Whitney U filter, a cross-validated binomial LASSO, and an L2
//! logistic regression on the LASSO's features, with the Youden cut-off
//! fixed on training. With two or more sequences, a fusion model
//! (`fusion_whole`) takes the union of the single models' selected
//! features, runs one more LASSO on it (`fusion_relasso`), and fits its own
//! logistic regression. Each model uses the patients that have every one of
//! its features; everything fitted is fitted on training patients only and
//! then frozen, and validation labels are used for metrics only.

mod chain;
mod evaluate;

use serde::Serialize;

use crate::config::ModelConfig;
use crate::table::StudyTable;

pub use chain::{ChainSteps, FittedChain, fit_chain};
pub use evaluate::{
    CohortValidation, ModelComparison, ShapImportance, compare_models, evaluate, shap_importance,
};

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
    /// Two-sided Mann-Whitney U p-value on training patients; `None` in a
    /// fusion model, which does not rerun the test.
    pub mwu_p_value: Option<f64>,
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
    /// Selection funnel: candidate features, then after the constant-feature
    /// filter, Mann-Whitney U and the LASSO.
    pub funnel: Funnel,
    /// Whether no feature passed the threshold and the smallest p-values
    /// were kept instead.
    pub mwu_relaxed: bool,
    /// LASSO outcome, when the LASSO ran.
    pub lasso: Option<LassoSummary>,
    /// Selected features, in column order.
    pub features: Vec<SelectedFeature>,
    /// Logistic intercept (log-odds at the training mean).
    pub intercept: f64,
    /// Youden cut-off on the predicted probability, fixed on training:
    /// a patient is called positive when its probability is >= this.
    pub threshold: f64,
}

/// Number of features left after each selection step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    /// Columns the model may use.
    pub candidates: usize,
    /// Columns not constant on training.
    pub non_constant: usize,
    /// Columns passing Mann-Whitney U (or kept by its fallback).
    pub after_mwu: usize,
    /// Columns with a non-zero LASSO coefficient (equal to `after_mwu`
    /// when the LASSO is off).
    pub after_lasso: usize,
}

/// Outcome of a model's LASSO step.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LassoSummary {
    /// The chosen λ.
    pub lambda: f64,
    /// λ with the smallest mean CV deviance.
    pub lambda_min: f64,
    /// Largest λ within one SE of that minimum.
    pub lambda_1se: f64,
    /// Mean CV binomial deviance at the chosen λ.
    pub cv_deviance: f64,
    /// Set when no feature was selected at the chosen λ and the largest λ
    /// with a non-zero coefficient was taken instead.
    pub fell_back_to_first_nonzero: bool,
    /// Smallest λ as a fraction of λ_max; `None` is glmnet's rule.
    pub lambda_min_ratio: Option<f64>,
    /// Reason the LASSO failed; the model then keeps the Mann-Whitney
    /// selection.
    pub failure: Option<String>,
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
    /// Metrics per model and cohort, the columns of `metrics.csv`.
    pub metrics: Vec<MetricsRow>,
    /// Full validation per model and cohort.
    pub validations: Vec<CohortValidation>,
    /// DeLong comparisons of the fusion model with each single model.
    pub comparisons: Vec<ModelComparison>,
    /// Mean |SHAP| per feature of the fusion model, per cohort.
    pub shap_importance: Vec<ShapImportance>,
    /// Per-patient SHAP values of the fusion model (log-odds), as
    /// (pseudonym, cohort, feature, value).
    pub shap_values: Vec<(String, String, String, f64)>,
    /// Scores per patient and model.
    pub predictions: Vec<Prediction>,
    /// Models that could not be fitted.
    pub skipped: Vec<SkippedModel>,
    fusion_chain: Option<FittedChain>,
}

/// Fits and evaluates every model of `specs` on `table`; `seed` drives the
/// LASSO folds and the bootstrap.
pub fn run_models(
    table: &StudyTable,
    specs: &[ModelSpec],
    config: &ModelConfig,
    seed: u64,
) -> ModellingOutcome {
    let mut outcome = ModellingOutcome::default();
    let mut single_chains: Vec<FittedChain> = Vec::new();

    for spec in specs.iter().filter(|s| s.sequences.len() == 1) {
        let columns = columns_of(table, &spec.sequences);
        let steps = ChainSteps {
            mwu: true,
            lasso: config.lasso,
        };
        record(
            &mut outcome,
            table,
            spec,
            fit_chain(table, &spec.name, &columns, steps, config, seed),
            config,
            seed,
        )
        .into_iter()
        .for_each(|chain| single_chains.push(chain));
    }

    for spec in specs.iter().filter(|s| s.sequences.len() > 1) {
        // Fusion: the union of the single models' selected features.
        let mut columns: Vec<usize> = single_chains
            .iter()
            .filter(|chain| {
                spec.sequences
                    .iter()
                    .any(|s| chain.name == format!("{s}_whole"))
            })
            .flat_map(|chain| chain.selected_columns.iter().copied())
            .collect();
        columns.sort_unstable();
        columns.dedup();
        let result = if columns.is_empty() {
            Err("no single-sequence model was fitted, so there is nothing to fuse".to_string())
        } else {
            let steps = ChainSteps {
                mwu: false,
                lasso: config.lasso && config.fusion_relasso,
            };
            fit_chain(table, &spec.name, &columns, steps, config, seed)
        };
        let _ = record(&mut outcome, table, spec, result, config, seed);
    }

    outcome.comparisons = compare_models(&outcome.predictions, &outcome.models);
    if let Some(fusion) = outcome.fusion_chain.take() {
        match shap_importance(table, &fusion) {
            Ok((importance, values)) => {
                outcome.shap_importance = importance;
                outcome.shap_values = values;
            }
            Err(reason) => tracing::warn!(%reason, "SHAP values not computed"),
        }
    }
    outcome
}

/// Adds one model's result to the outcome; returns the chain when fitted.
fn record(
    outcome: &mut ModellingOutcome,
    table: &StudyTable,
    spec: &ModelSpec,
    result: Result<FittedChain, String>,
    config: &ModelConfig,
    seed: u64,
) -> Option<FittedChain> {
    let span = tracing::info_span!("model", model = %spec.name);
    let _entered = span.enter();
    match result {
        Ok(chain) => {
            tracing::info!(features = chain.model.features.len(), "model fitted");
            let (validations, predictions) = evaluate(table, &chain, config, seed);
            outcome
                .metrics
                .extend(validations.iter().map(CohortValidation::metrics_row));
            outcome.validations.extend(validations);
            outcome.predictions.extend(predictions);
            outcome.models.push(chain.model.clone());
            if spec.sequences.len() > 1 {
                outcome.fusion_chain = Some(chain.clone());
            }
            Some(chain)
        }
        Err(reason) => {
            tracing::warn!(%reason, "model skipped");
            outcome.skipped.push(SkippedModel {
                model: spec.name.clone(),
                reason,
            });
            None
        }
    }
}

/// Indices of the table columns of these sequences.
fn columns_of(table: &StudyTable, sequences: &[String]) -> Vec<usize> {
    (0..table.columns.len())
        .filter(|&c| sequences.contains(&table.columns[c].sequence))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::Cohort;
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
            42,
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
            42,
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
        let first = run_models(&table, &specs, &ModelConfig::default(), 42);
        let second = run_models(&changed, &specs, &ModelConfig::default(), 42);
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
            42,
        );
        assert_eq!(outcome.skipped.len(), 1);
        assert!(
            outcome.skipped[0].reason.contains("1 positive"),
            "{}",
            outcome.skipped[0].reason
        );
    }

    /// Adds a second sequence whose one column carries the same signal.
    fn two_sequence_table() -> StudyTable {
        let mut table = toy_table();
        let pet: Vec<Option<f64>> = (0..18)
            .map(|i| {
                Some(if i % 2 == 0 {
                    50.0 + (i % 5) as f64
                } else {
                    40.0 + (i % 7) as f64
                })
            })
            .collect();
        table.columns.push(FeatureColumn {
            name: "PET_whole_signal".into(),
            sequence: "PET".into(),
            values: pet,
        });
        table
    }

    #[test]
    fn fusion_uses_union_of_selected_features() {
        let table = two_sequence_table();
        let specs = model_specs(&["T1".into(), "PET".into()]);
        let outcome = run_models(&table, &specs, &ModelConfig::default(), 42);
        assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
        let fusion = outcome
            .models
            .iter()
            .find(|m| m.name == "fusion_whole")
            .expect("fusion fitted");
        // The union has T1's signal and PET's signal; the relasso may keep
        // one or both, never the T1 noise column that MWU dropped.
        assert_eq!(fusion.funnel.candidates, 2);
        assert!(
            fusion.features.iter().all(|f| f.name.ends_with("signal")),
            "{:?}",
            fusion.features
        );
        assert!(fusion.features.iter().all(|f| f.mwu_p_value.is_none()));
    }

    #[test]
    fn fusion_comparisons_and_shap_are_reported() {
        let table = two_sequence_table();
        let specs = model_specs(&["T1".into(), "PET".into()]);
        let outcome = run_models(&table, &specs, &ModelConfig::default(), 42);
        // Fusion against each of the two single models, on the training and
        // the external cohort: 4 comparisons.
        assert_eq!(outcome.comparisons.len(), 4, "{:?}", outcome.comparisons);
        assert!(
            outcome
                .comparisons
                .iter()
                .all(|c| c.model_a == "fusion_whole")
        );
        // SHAP: one value per fusion feature and patient (all 18 have both sequences).
        let fusion = outcome
            .models
            .iter()
            .find(|m| m.name == "fusion_whole")
            .expect("fusion fitted");
        assert_eq!(outcome.shap_values.len(), 18 * fusion.features.len());
        assert!(
            outcome
                .shap_importance
                .iter()
                .all(|s| s.mean_abs_shap >= 0.0)
        );
    }

    #[test]
    fn validation_bootstrap_is_seeded() {
        let specs = model_specs(&["T1".into()]);
        let first = run_models(&toy_table(), &specs, &ModelConfig::default(), 7);
        let second = run_models(&toy_table(), &specs, &ModelConfig::default(), 7);
        assert_eq!(first.validations, second.validations);
        let training = &first.validations[0];
        assert_eq!(training.bootstrap.map(|b| b.replicates), Some(2000));
    }
}
