//! Validation of a fitted chain on every cohort, DeLong comparisons between
//! models, and SHAP values of the fusion model.
//!
//! The model and its cut-off are frozen: nothing here refits anything, and
//! the bootstrap resamples patients of one cohort at a time (stratified by
//! outcome) with the model held fixed.

use std::collections::HashMap;

use ndarray::Axis;
use serde::Serialize;

use super::{FittedModel, MetricsRow, Prediction, chain::FittedChain};
use crate::config::ModelConfig;
use crate::split::Cohort;
use crate::stats::{
    self, AucEstimate, BootstrapOptions, CalibrationPoint, Confusion, DecisionCurve,
    PercentileInterval, ThresholdMetrics,
};
use crate::table::StudyTable;

/// Calibration of one model on one cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Brier score, mean (p − y)².
    pub brier: f64,
    /// Calibration-in-the-large: intercept of the logistic recalibration
    /// with logit(p) as offset; 0 when calibrated.
    pub intercept: Option<f64>,
    /// Slope of logit(p) in the logistic recalibration; 1 when calibrated.
    pub slope: Option<f64>,
    /// Hosmer-Lemeshow statistic over quantile groups of p.
    pub hosmer_lemeshow: Option<f64>,
    /// Its p-value with g − 2 degrees of freedom (development data).
    pub hosmer_lemeshow_p_development: Option<f64>,
    /// Its p-value with g degrees of freedom (external data).
    pub hosmer_lemeshow_p_external: Option<f64>,
    /// Groups used, after merging groups whose quantile edges coincide.
    pub hosmer_lemeshow_groups: Option<usize>,
    /// Mean predicted probability against observed fraction per quantile bin
    /// (10 bins from 50 patients on, else 5).
    pub curve: Vec<CalibrationPoint>,
}

/// Validation of one model on one cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortValidation {
    /// Model name.
    pub model: String,
    /// Cohort name.
    pub cohort: String,
    /// Patients, and positive patients, evaluated.
    pub n: usize,
    /// Positive patients evaluated.
    pub n_positive: usize,
    /// AUC with its DeLong variance and 95% CI; `None` without both classes
    /// or with a single patient in a class.
    pub auc: Option<AucEstimate>,
    /// The training cut-off on the predicted probability.
    pub threshold: f64,
    /// Counts, sensitivity, specificity, PPV, NPV and accuracy at the
    /// cut-off, with Wilson 95% CIs.
    pub at_threshold: ThresholdMetrics,
    /// Stratified-bootstrap percentile 95% CIs of AUC, sensitivity,
    /// specificity and accuracy, with the model frozen.
    pub bootstrap: Option<stats::BootstrapMetrics>,
    /// Calibration measures; `None` without both classes.
    pub calibration: Option<Calibration>,
    /// Net benefit on the threshold grid 0.01 to 0.99.
    pub decision_curve: Option<DecisionCurve>,
}

impl CohortValidation {
    /// Returns the row of `metrics.csv`.
    pub fn metrics_row(&self) -> MetricsRow {
        MetricsRow {
            model: self.model.clone(),
            cohort: self.cohort.clone(),
            n: self.n,
            n_positive: self.n_positive,
            auc: self.auc.map(|a| a.auc),
            auc_ci_low: self.auc.map(|a| a.ci_low),
            auc_ci_high: self.auc.map(|a| a.ci_high),
            sensitivity: self.at_threshold.sensitivity.map(|p| p.estimate),
            specificity: self.at_threshold.specificity.map(|p| p.estimate),
            threshold: self.threshold,
        }
    }
}

/// Validates a chain on each cohort and returns the per-patient scores.
pub fn evaluate(
    table: &StudyTable,
    chain: &FittedChain,
    config: &ModelConfig,
    seed: u64,
) -> (Vec<CohortValidation>, Vec<Prediction>) {
    let mut validations = Vec::new();
    for cohort in Cohort::ALL {
        let rows: Vec<usize> = (0..chain.patients.len())
            .filter(|&row| table.patients[chain.patients[row]].cohort == cohort)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let scores: Vec<f64> = rows.iter().map(|&row| chain.probabilities[row]).collect();
        let labels: Vec<bool> = rows
            .iter()
            .map(|&row| table.patients[chain.patients[row]].label)
            .collect();
        validations.push(validate_cohort(
            &chain.name,
            cohort,
            &scores,
            &labels,
            chain.model.threshold,
            config,
            seed,
        ));
    }

    let predictions = chain
        .patients
        .iter()
        .zip(chain.probabilities.iter().zip(&chain.log_odds))
        .map(|(&patient, (&probability, &radscore))| {
            let record = &table.patients[patient];
            Prediction {
                pseudonym: record.pseudonym.clone(),
                center: record.center.clone(),
                cohort: record.cohort.as_str().to_string(),
                model: chain.name.clone(),
                label: record.label as u8,
                radscore,
                probability,
            }
        })
        .collect();
    (validations, predictions)
}

/// Computes every validation measure of one cohort; a measure that is
/// undefined for this cohort (one class only, say) is `None`.
pub fn validate_cohort(
    model: &str,
    cohort: Cohort,
    scores: &[f64],
    labels: &[bool],
    threshold: f64,
    config: &ModelConfig,
    seed: u64,
) -> CohortValidation {
    let n_positive = labels.iter().filter(|&&y| y).count();
    let both_classes = n_positive > 0 && n_positive < labels.len();
    let confusion = Confusion::at_threshold(scores, labels, threshold).unwrap_or(Confusion {
        tp: 0,
        fp: 0,
        tn: 0,
        fn_: 0,
    });
    let bootstrap = (both_classes && config.bootstrap_replicates > 0)
        .then(|| {
            let options = BootstrapOptions {
                replicates: config.bootstrap_replicates,
                seed,
            };
            stats::bootstrap_metrics(scores, labels, threshold, &options).ok()
        })
        .flatten();
    let calibration = both_classes.then(|| calibration(scores, labels)).flatten();
    CohortValidation {
        model: model.to_string(),
        cohort: cohort.as_str().to_string(),
        n: labels.len(),
        n_positive,
        auc: stats::delong_auc(scores, labels).ok(),
        threshold,
        at_threshold: ThresholdMetrics::from_confusion(confusion),
        bootstrap,
        calibration,
        decision_curve: stats::decision_curve(scores, labels, &stats::default_thresholds()).ok(),
    }
}

fn calibration(scores: &[f64], labels: &[bool]) -> Option<Calibration> {
    let brier = stats::brier_score(scores, labels).ok()?;
    let recalibration = stats::logistic_recalibration(scores, labels).ok();
    let bins = stats::default_bin_count(scores.len());
    let hosmer = stats::hosmer_lemeshow(scores, labels, bins).ok();
    Some(Calibration {
        brier,
        intercept: recalibration.map(|r| r.intercept),
        slope: recalibration.map(|r| r.slope),
        hosmer_lemeshow: hosmer.as_ref().map(|h| h.statistic),
        hosmer_lemeshow_p_development: hosmer.as_ref().and_then(|h| h.p_development),
        hosmer_lemeshow_p_external: hosmer.as_ref().map(|h| h.p_external),
        hosmer_lemeshow_groups: hosmer.as_ref().map(|h| h.groups),
        curve: stats::calibration_curve(scores, labels, bins).unwrap_or_default(),
    })
}

/// DeLong's test between two models on the patients both score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelComparison {
    /// Cohort name.
    pub cohort: String,
    /// First model: the fusion model, or a region's model.
    pub model_a: String,
    /// Second model.
    pub model_b: String,
    /// Patients scored by both.
    pub n: usize,
    /// AUC of the first model on those patients.
    pub auc_a: f64,
    /// AUC of the second model on those patients.
    pub auc_b: f64,
    /// DeLong z of AUC_a − AUC_b.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Stratified-bootstrap percentile 95% CI of AUC_a − AUC_b.
    pub difference_ci: Option<PercentileInterval>,
}

/// Compares models per cohort with DeLong's paired test on the patients
/// both score: the fusion model against each single model, and each
/// region's model against the whole-tumour model of its sequence
/// (`{sequence}_{region}` against `{sequence}_whole`). The second kind
/// tests whether a subregion beats the whole tumour.
pub fn compare_models(predictions: &[Prediction], models: &[FittedModel]) -> Vec<ModelComparison> {
    let mut scores: HashMap<(&str, &str), f64> = HashMap::new();
    for prediction in predictions {
        scores.insert(
            (prediction.model.as_str(), prediction.pseudonym.as_str()),
            prediction.probability,
        );
    }

    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(fusion) = models.iter().find(|m| m.name.starts_with("fusion")) {
        for other in models.iter().filter(|m| m.name != fusion.name) {
            pairs.push((&fusion.name, &other.name));
        }
    }
    // Region names may contain '_' ("mid_2"), and so may sequence names
    // ("MR_T1"), so each sequence is found from its whole-tumour model.
    for whole in models {
        let Some(sequence) = whole.name.strip_suffix("_whole") else {
            continue;
        };
        let prefix = format!("{sequence}_");
        for model in models.iter().filter(|m| {
            m.name != whole.name && !m.name.starts_with("fusion") && m.name.starts_with(&prefix)
        }) {
            pairs.push((&model.name, &whole.name));
        }
    }

    let mut comparisons = Vec::new();
    for (model_a, model_b) in pairs {
        for cohort in Cohort::ALL {
            if let Some(comparison) = compare_pair(predictions, &scores, model_a, model_b, cohort) {
                comparisons.push(comparison);
            }
        }
    }
    comparisons
}

/// DeLong's paired test of `model_a` against `model_b` on one cohort, or
/// `None` when the test is undefined there (one class, no shared patient).
fn compare_pair(
    predictions: &[Prediction],
    scores: &HashMap<(&str, &str), f64>,
    model_a: &str,
    model_b: &str,
    cohort: Cohort,
) -> Option<ModelComparison> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut labels = Vec::new();
    for prediction in predictions
        .iter()
        .filter(|p| p.model == model_a && p.cohort == cohort.as_str())
    {
        if let Some(score) = scores.get(&(model_b, prediction.pseudonym.as_str())) {
            a.push(prediction.probability);
            b.push(*score);
            labels.push(prediction.label == 1);
        }
    }

    let test = stats::delong_test(&a, &b, &labels).ok()?;
    let options = BootstrapOptions::default();
    Some(ModelComparison {
        cohort: cohort.as_str().to_string(),
        model_a: model_a.to_string(),
        model_b: model_b.to_string(),
        n: labels.len(),
        auc_a: test.auc_a,
        auc_b: test.auc_b,
        z: test.z,
        p_value: test.p_value,
        difference_ci: stats::bootstrap_auc_difference(&a, &b, &labels, &options)
            .ok()
            .map(|d| d.difference),
    })
}

/// Global SHAP importance of one feature on one cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapImportance {
    /// Model name.
    pub model: String,
    /// Cohort name.
    pub cohort: String,
    /// Feature column.
    pub feature: String,
    /// Mean |φ| over the cohort's patients, in log-odds.
    pub mean_abs_shap: f64,
}

/// Per-patient SHAP values as (pseudonym, cohort, feature, φ).
type PatientShap = Vec<(String, String, String, f64)>;

/// Computes exact linear SHAP values of a chain in log-odds over the
/// logistic model's inputs (standardised features, or a stacked model's
/// standardised radscores), with the training patients' inputs as
/// background, and their mean |φ| per cohort.
pub fn shap_importance(
    table: &StudyTable,
    chain: &FittedChain,
) -> Result<(Vec<ShapImportance>, PatientShap), String> {
    let training: Vec<usize> = (0..chain.patients.len())
        .filter(|&row| table.patients[chain.patients[row]].cohort == Cohort::Training)
        .collect();
    let background = chain.design.select(Axis(0), &training);
    let explainer =
        stats::LinearShap::new(&chain.logistic, background.view()).map_err(|e| e.to_string())?;
    let values = explainer
        .explain(chain.design.view())
        .map_err(|e| e.to_string())?;
    let names: Vec<&str> = chain.input_names.iter().map(String::as_str).collect();

    let mut per_patient = Vec::new();
    for (row, &patient) in chain.patients.iter().enumerate() {
        let record = &table.patients[patient];
        for (feature, name) in names.iter().enumerate() {
            per_patient.push((
                record.pseudonym.clone(),
                record.cohort.as_str().to_string(),
                name.to_string(),
                values.values[[row, feature]],
            ));
        }
    }

    let mut importance = Vec::new();
    for cohort in Cohort::ALL {
        let rows: Vec<usize> = (0..chain.patients.len())
            .filter(|&row| table.patients[chain.patients[row]].cohort == cohort)
            .collect();
        if rows.is_empty() {
            continue;
        }
        for (feature, name) in names.iter().enumerate() {
            let total: f64 = rows
                .iter()
                .map(|&row| values.values[[row, feature]].abs())
                .sum();
            importance.push(ShapImportance {
                model: chain.name.clone(),
                cohort: cohort.as_str().to_string(),
                feature: name.to_string(),
                mean_abs_shap: total / rows.len() as f64,
            });
        }
    }
    Ok((importance, per_patient))
}
