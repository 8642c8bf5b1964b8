//! Feature selection, models and validation.
//!
//! Single models: one per sequence and region present in the table,
//! named `{sequence}_{region}`. Each is a chain of standardisation fitted
//! on training, a two-sided Mann-Whitney U filter, a cross-validated
//! binomial LASSO, and an L2 logistic regression on the LASSO's features,
//! with the Youden cut-off fixed on training.
//!
//! With two or more sequences, the best region r* is chosen (by default
//! from cross-validated AUCs on training patients, see [`region`]), and a
//! fusion model `fusion_{r*}` combines the sequences' single models on r*:
//! either one more chain on the union of their selected features, with
//! another LASSO when `fusion_relasso` is set (`fusion = "concat"`), or a
//! logistic regression on their out-of-fold radscores (`fusion =
//! "stacking"`, see [`stacking`]).
//!
//! Each model uses the patients that have every one of its features.
//! Everything fitted, including the region choice under the default rule,
//! is fitted on training patients only and then frozen, and validation
//! labels are used for metrics only.

mod chain;
mod cv;
mod evaluate;
pub mod missing;
pub mod region;
pub mod stacking;
#[cfg(test)]
mod test_tables;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::config::{FusionMethod, ModelConfig};
use crate::table::StudyTable;

pub use chain::{ChainSpec, ChainSteps, FittedChain, fit_chain, fit_chain_on};
pub use cv::derive_seed;
/// For the output tests, which build validations from scores.
#[cfg(test)]
pub(crate) use evaluate::validate_cohort;
pub use evaluate::{
    Calibration, CohortValidation, ModelComparison, ShapImportance, compare_models, evaluate,
    shap_importance,
};
pub use region::{RegionScore, RegionSelection, SequenceScore};
pub use stacking::{StackedFusion, StackingInput, StackingSummary};

/// Minimum number of training patients per class for a model to be fitted.
pub const MIN_TRAINING_PER_CLASS: usize = 3;

/// A model family of the study. Regions are not named here: they are
/// whatever regions the table's columns have when the models run.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// One single model per region of this sequence's columns, named
    /// `{sequence}_{region}`.
    Single {
        /// The sequence.
        sequence: String,
    },
    /// A fusion of these sequences' single models on the best region r*,
    /// named `fusion_{r*}`.
    Fusion {
        /// The fused sequences.
        sequences: Vec<String>,
    },
}

/// Returns the model families of a study with these sequences: a single
/// model family per sequence, and a fusion when there are two or more.
pub fn model_specs(sequences: &[String]) -> Vec<ModelSpec> {
    let mut specs: Vec<ModelSpec> = sequences
        .iter()
        .map(|sequence| ModelSpec::Single {
            sequence: sequence.clone(),
        })
        .collect();
    if sequences.len() > 1 {
        specs.push(ModelSpec::Fusion {
            sequences: sequences.to_vec(),
        });
    }
    specs
}

/// Returns the chain of every single model of `specs`: one per sequence
/// and region of the table's columns, regions in name order. A sequence
/// without columns is added to `skipped`.
pub fn single_model_specs(
    table: &StudyTable,
    specs: &[ModelSpec],
    config: &ModelConfig,
    skipped: &mut Vec<SkippedModel>,
) -> Vec<ChainSpec> {
    let mut chains = Vec::new();
    for spec in specs {
        let ModelSpec::Single { sequence } = spec else {
            continue;
        };
        let mut regions: Vec<&str> = table
            .columns
            .iter()
            .filter(|c| &c.sequence == sequence)
            .map(|c| c.region.as_str())
            .collect();
        regions.sort_unstable();
        regions.dedup();
        if regions.is_empty() {
            tracing::warn!(%sequence, "no feature columns; single models skipped");
            skipped.push(SkippedModel {
                model: sequence.clone(),
                reason: format!("the feature table has no columns of sequence {sequence}"),
            });
        }
        for region in regions {
            chains.push(ChainSpec {
                name: format!("{sequence}_{region}"),
                build: ModelBuild::Single {
                    sequence: sequence.clone(),
                    region: region.to_string(),
                },
                columns: (0..table.columns.len())
                    .filter(|&c| {
                        &table.columns[c].sequence == sequence && table.columns[c].region == region
                    })
                    .collect(),
                steps: ChainSteps {
                    mwu: true,
                    lasso: config.lasso,
                },
            });
        }
    }
    chains
}

/// Construction of a model, written to `models.json` under `build`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelBuild {
    /// The selection chain on the columns of one sequence and region.
    Single {
        /// The sequence.
        sequence: String,
        /// The region.
        region: String,
    },
    /// Feature-level fusion: a chain on the union of the single models'
    /// selected features, without the Mann-Whitney U step.
    Concat {
        /// The best region r*.
        region: String,
        /// The fused single models.
        single_models: Vec<String>,
        /// Whether one more LASSO ran on the union.
        relasso: bool,
    },
    /// Score-level fusion: a logistic regression on the single models'
    /// out-of-fold radscores. `features` and `intercept` of the model are
    /// the same function written on the single models' features.
    Stacking(StackingSummary),
}

/// A selected feature with its test and coefficient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectedFeature {
    /// Column name.
    pub name: String,
    /// Two-sided Mann-Whitney U p-value on training patients; `None` in a
    /// concat fusion model, which does not rerun the test.
    pub mwu_p_value: Option<f64>,
    /// Its Benjamini-Hochberg q-value, when the study corrects for
    /// multiple testing.
    pub mwu_q_value: Option<f64>,
    /// Training mean used to standardise.
    pub mean: f64,
    /// Training population SD used to standardise.
    pub scale: f64,
    /// Logistic coefficient on the standardised feature (log-odds per SD).
    pub coefficient: f64,
}

/// A fitted, frozen model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FittedModel {
    /// Model name.
    pub name: String,
    /// Construction of the model: a single chain, or a concat or stacking
    /// fusion.
    pub build: ModelBuild,
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
    /// Set when `penalty = "none"` separated and the model was refitted
    /// with C = 1.
    pub separation_refit: bool,
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
    /// Radscore: the model's log-odds.
    pub radscore: f64,
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
    /// The best-region choice and the per-region scores behind it.
    pub region_selection: Option<RegionSelection>,
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
/// LASSO folds, the best-region and stacking folds, and the bootstrap.
pub fn run_models(
    table: &StudyTable,
    specs: &[ModelSpec],
    config: &ModelConfig,
    seed: u64,
) -> ModellingOutcome {
    let mut outcome = ModellingOutcome::default();

    let single_specs = single_model_specs(table, specs, config, &mut outcome.skipped);
    let mut singles: Vec<(ChainSpec, FittedChain)> = Vec::new();
    for spec in single_specs {
        let result = fit_chain(table, &spec, config, seed);
        if let Some(chain) = record(&mut outcome, table, &spec.name, result, config, seed) {
            singles.push((spec, chain));
        }
    }

    let selection = region::select_best_region(table, &singles, config, seed);
    tracing::info!(
        region = selection.chosen.as_deref().unwrap_or("none"),
        rule = ?selection.rule,
        "best region chosen"
    );
    for spec in specs {
        let ModelSpec::Fusion { sequences } = spec else {
            continue;
        };
        let (name, result) = match &selection.chosen {
            Some(region) => {
                let name = format!("fusion_{region}");
                let result = fit_fusion(table, &name, region, sequences, &singles, config, seed);
                (name, result)
            }
            None => {
                let reason = selection
                    .skipped_reason
                    .as_deref()
                    .unwrap_or("no region was ranked");
                (
                    "fusion".to_string(),
                    Err(format!("no best region was chosen: {reason}")),
                )
            }
        };
        if let Some(chain) = record(&mut outcome, table, &name, result, config, seed) {
            outcome.fusion_chain = Some(chain);
        }
    }
    outcome.region_selection = Some(selection);

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

/// Fits the fusion of `sequences` on `region` from their fitted single
/// models, by the configured method.
fn fit_fusion(
    table: &StudyTable,
    name: &str,
    region: &str,
    sequences: &[String],
    singles: &[(ChainSpec, FittedChain)],
    config: &ModelConfig,
    seed: u64,
) -> Result<FittedChain, String> {
    let level1: Vec<(&ChainSpec, &FittedChain)> = singles
        .iter()
        .filter(|(spec, _)| match &spec.build {
            ModelBuild::Single {
                sequence,
                region: single_region,
            } => single_region == region && sequences.contains(sequence),
            _ => false,
        })
        .map(|(spec, chain)| (spec, chain))
        .collect();
    if level1.is_empty() {
        return Err(format!(
            "no single model was fitted on region {region}, so there is nothing to fuse"
        ));
    }
    match config.fusion {
        FusionMethod::Concat => {
            let mut columns: Vec<usize> = level1
                .iter()
                .flat_map(|(_, chain)| chain.selected_columns.iter().copied())
                .collect();
            columns.sort_unstable();
            columns.dedup();
            let relasso = config.lasso && config.fusion_relasso;
            let spec = ChainSpec {
                name: name.to_string(),
                build: ModelBuild::Concat {
                    region: region.to_string(),
                    single_models: level1.iter().map(|(s, _)| s.name.clone()).collect(),
                    relasso,
                },
                columns,
                steps: ChainSteps {
                    mwu: false,
                    lasso: relasso,
                },
            };
            fit_chain(table, &spec, config, seed)
        }
        FusionMethod::Stacking => {
            stacking::fit_stacking(table, name, region, &level1, config, seed).map(|s| s.chain)
        }
    }
}

/// Adds one model's result to the outcome; returns the chain when fitted.
fn record(
    outcome: &mut ModellingOutcome,
    table: &StudyTable,
    name: &str,
    result: Result<FittedChain, String>,
    config: &ModelConfig,
    seed: u64,
) -> Option<FittedChain> {
    let span = tracing::info_span!("model", model = %name);
    let _entered = span.enter();
    match result {
        Ok(chain) => {
            tracing::info!(features = chain.model.features.len(), "model fitted");
            if let Some(reason) = chain.model.lasso.as_ref().and_then(|l| l.failure.as_ref()) {
                tracing::warn!(%reason, "LASSO failed; the model keeps the Mann-Whitney selection");
            }
            let (validations, predictions) = evaluate(table, &chain, config, seed);
            outcome
                .metrics
                .extend(validations.iter().map(CohortValidation::metrics_row));
            outcome.validations.extend(validations);
            outcome.predictions.extend(predictions);
            outcome.models.push(chain.model.clone());
            Some(chain)
        }
        Err(reason) => {
            tracing::warn!(%reason, "model skipped");
            outcome.skipped.push(SkippedModel {
                model: name.to_string(),
                reason,
            });
            None
        }
    }
}
