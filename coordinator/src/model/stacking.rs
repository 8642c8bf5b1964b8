//! Score-level fusion (stacking) on the best region r*.
//!
//! Level 1 is the single model of each sequence on r*, and its radscore is
//! its log-odds. Level 2 is an L2 logistic regression (C from the config)
//! on the level-1 radscores, standardised with the mean and population SD
//! of the values it is fitted on, as every other logistic model here.
//!
//! Level 2 is fitted on out-of-fold radscores: the training patients that
//! have every level-1 model's features are split into `cv_folds`
//! stratified folds, and each level-1 chain, refitted from scratch without
//! a fold, scores that fold. A patient's level-2 input therefore never comes
//! from a model that saw the patient. The deployed level-1 models are the
//! ones fitted on all training patients, and a patient's fusion score is
//! level 2 applied to their radscores.
//!
//! Each radscore is linear in its model's standardised features, so the
//! deployed fusion is one logistic model on the union of the level-1
//! features: with level-2 weight β_q, OOF mean m_q and scale s_q for
//! level-1 model q (intercept b_q, weights w_qj), feature j of model q gets
//! the weight β_q w_qj / s_q and the intercept is
//! β_0 + Σ_q β_q (b_q − m_q) / s_q. `models.json` writes the fusion in that
//! form, so every consumer of a linear model can score it, and describes
//! the two levels under `build`.

use std::collections::HashMap;

use ndarray::Array2;
use serde::Serialize;

use super::chain::{ChainSpec, FittedChain, fit_logistic, sort_by_patient_key};
use super::cv::{Partition, derive_seed, out_of_fold_log_odds, stratified_partition};
use super::{FittedModel, Funnel, MIN_TRAINING_PER_CLASS, ModelBuild, SelectedFeature};
use crate::config::ModelConfig;
use crate::split::Cohort;
use crate::stats::{self, Standardizer};
use crate::table::StudyTable;

/// Construction of a stacked fusion model, written to `models.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackingSummary {
    /// The best region r*.
    pub region: String,
    /// Level-2 inputs, one per level-1 model.
    pub inputs: Vec<StackingInput>,
    /// Level-2 intercept, in log-odds.
    pub level2_intercept: f64,
    /// Folds of the out-of-fold radscores, after capping at the smaller
    /// class.
    pub folds: usize,
    /// Training patients, negative and positive, that level 2 is fitted on:
    /// those with every level-1 model's features.
    pub n_level2_training: [usize; 2],
    /// Out-of-fold fits whose LASSO failed and kept the Mann-Whitney
    /// selection.
    pub lasso_failures: usize,
}

/// One level-2 input: a level-1 model's radscore.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackingInput {
    /// The level-1 model, refitted on all training patients for deployment.
    pub model: String,
    /// Mean of its out-of-fold radscores on the level-2 training patients.
    pub mean: f64,
    /// Population SD of those radscores.
    pub scale: f64,
    /// Level-2 coefficient on the standardised radscore (log-odds per SD).
    pub coefficient: f64,
}

/// A stacked fusion model and the out-of-fold data it was fitted on.
#[derive(Debug, Clone)]
pub struct StackedFusion {
    /// The deployed model. Its `design` contains the standardised deployed
    /// radscores, one column per level-1 model.
    pub chain: FittedChain,
    /// Table rows of the level-2 training patients, ordered by center and
    /// pseudonym.
    pub level2_patients: Vec<usize>,
    /// The fold partition of the out-of-fold radscores.
    pub partition: Partition,
    /// Out-of-fold radscores, shape (level-2 patients, level-1 models),
    /// before standardisation.
    pub out_of_fold: Array2<f64>,
}

/// Fits the stacked fusion `name` on region `region` from the level-1
/// models `level1`, each with the spec it was fitted from.
pub fn fit_stacking(
    table: &StudyTable,
    name: &str,
    region: &str,
    level1: &[(&ChainSpec, &FittedChain)],
    config: &ModelConfig,
    seed: u64,
) -> Result<StackedFusion, String> {
    if level1.len() < 2 {
        return Err(format!(
            "stacking needs single models of at least 2 sequences on region {region}, but {} was fitted",
            level1.len()
        ));
    }

    // Patients scored by every level-1 model, and each model's row of them.
    let rows_of: Vec<HashMap<usize, usize>> = level1
        .iter()
        .map(|(_, chain)| {
            chain
                .patients
                .iter()
                .enumerate()
                .map(|(r, &p)| (p, r))
                .collect()
        })
        .collect();
    let mut patients: Vec<usize> = level1[0]
        .1
        .patients
        .iter()
        .copied()
        .filter(|p| rows_of.iter().all(|rows| rows.contains_key(p)))
        .collect();
    sort_by_patient_key(table, &mut patients);
    let level2_patients: Vec<usize> = patients
        .iter()
        .copied()
        .filter(|&p| table.patients[p].cohort == Cohort::Training)
        .collect();
    let labels: Vec<bool> = level2_patients
        .iter()
        .map(|&p| table.patients[p].label)
        .collect();
    let n_positive = labels.iter().filter(|&&y| y).count();
    let n_level2_training = [labels.len() - n_positive, n_positive];
    if n_level2_training
        .iter()
        .any(|&n| n < MIN_TRAINING_PER_CLASS)
    {
        return Err(format!(
            "{} negative and {} positive training patients have every level-1 model's features; at least {MIN_TRAINING_PER_CLASS} per class are needed",
            n_level2_training[0], n_level2_training[1]
        ));
    }

    // Level-1 out-of-fold radscores.
    let partition = stratified_partition(
        table,
        &level2_patients,
        config.cv_folds,
        derive_seed(seed, "stacking"),
        0,
    )?;
    let mut out_of_fold = Array2::zeros((level2_patients.len(), level1.len()));
    let mut lasso_failures = 0;
    for (q, (spec, _)) in level1.iter().enumerate() {
        let oof = out_of_fold_log_odds(table, spec, config, seed, &partition)
            .map_err(|reason| format!("out-of-fold radscores of {}: {reason}", spec.name))?;
        lasso_failures += oof.lasso_failures;
        for (row, &p) in level2_patients.iter().enumerate() {
            out_of_fold[[row, q]] = oof.log_odds[p].ok_or_else(|| {
                format!(
                    "{} has no out-of-fold radscore for patient {}",
                    spec.name, table.patients[p].pseudonym
                )
            })?;
        }
    }

    // Level 2 on the standardised out-of-fold radscores.
    let standardizer = Standardizer::fit(out_of_fold.view())
        .map_err(|e| format!("standardising the out-of-fold radscores failed: {e}"))?;
    if let Some(&q) = standardizer.constant_columns.first() {
        return Err(format!(
            "the out-of-fold radscores of {} are constant on training patients",
            level1[q].0.name
        ));
    }
    let z_training = standardizer
        .transform(out_of_fold.view())
        .map_err(|e| format!("standardising the out-of-fold radscores failed: {e}"))?;
    let (level2, separation_refit) = fit_logistic(z_training.view(), &labels, config)
        .map_err(|reason| format!("level 2: {reason}"))?;

    // Deployed scores: level 2 on the deployed level-1 radscores.
    let deployed = Array2::from_shape_fn((patients.len(), level1.len()), |(row, q)| {
        level1[q].1.log_odds[rows_of[q][&patients[row]]]
    });
    let design = standardizer
        .transform(deployed.view())
        .map_err(|e| format!("standardising the deployed radscores failed: {e}"))?;
    let log_odds = level2
        .log_odds(design.view())
        .map_err(|e| format!("level-2 prediction failed: {e}"))?;
    let probabilities = level2
        .probability(design.view())
        .map_err(|e| format!("level-2 prediction failed: {e}"))?;
    let (train_probabilities, train_labels): (Vec<f64>, Vec<bool>) = patients
        .iter()
        .zip(probabilities.iter())
        .filter(|(p, _)| table.patients[**p].cohort == Cohort::Training)
        .map(|(&p, &probability)| (probability, table.patients[p].label))
        .unzip();
    let threshold = stats::youden_threshold(&train_probabilities, &train_labels)
        .map_err(|e| format!("Youden cut-off failed: {e}"))?;

    let inputs: Vec<StackingInput> = level1
        .iter()
        .enumerate()
        .map(|(q, (spec, _))| StackingInput {
            model: spec.name.clone(),
            mean: standardizer.mean[q],
            scale: standardizer.scale[q],
            coefficient: level2.coefficients[q],
        })
        .collect();
    let (features, selected_columns, intercept) = flatten(level1, &inputs, level2.intercept);
    let model = FittedModel {
        name: name.to_string(),
        build: ModelBuild::Stacking(StackingSummary {
            region: region.to_string(),
            inputs,
            level2_intercept: level2.intercept,
            folds: partition.folds,
            n_level2_training,
            lasso_failures,
        }),
        n_training: n_level2_training,
        funnel: Funnel {
            candidates: features.len(),
            non_constant: features.len(),
            after_mwu: features.len(),
            after_lasso: features.len(),
        },
        mwu_relaxed: false,
        lasso: None,
        features,
        intercept,
        threshold,
        separation_refit,
    };
    let input_names = level1
        .iter()
        .map(|(spec, _)| format!("{}_radscore", spec.name))
        .collect();
    let chain = FittedChain {
        name: name.to_string(),
        model,
        patients,
        selected_columns,
        logistic: level2,
        design,
        input_names,
        log_odds: log_odds.to_vec(),
        probabilities: probabilities.to_vec(),
    };
    Ok(StackedFusion {
        chain,
        level2_patients,
        partition,
        out_of_fold,
    })
}

/// Writes the deployed fusion as one linear model on the level-1 features
/// (see the module documentation). Returns the features in column order,
/// their table columns and the intercept.
fn flatten(
    level1: &[(&ChainSpec, &FittedChain)],
    inputs: &[StackingInput],
    level2_intercept: f64,
) -> (Vec<SelectedFeature>, Vec<usize>, f64) {
    let mut intercept = level2_intercept;
    let mut terms: Vec<(usize, SelectedFeature)> = Vec::new();
    for ((_, chain), input) in level1.iter().zip(inputs) {
        let weight = input.coefficient / input.scale;
        intercept += weight * (chain.model.intercept - input.mean);
        for (feature, &column) in chain.model.features.iter().zip(&chain.selected_columns) {
            terms.push((
                column,
                SelectedFeature {
                    coefficient: weight * feature.coefficient,
                    ..feature.clone()
                },
            ));
        }
    }
    terms.sort_by_key(|(column, _)| *column);
    let columns = terms.iter().map(|(column, _)| *column).collect();
    let features = terms.into_iter().map(|(_, feature)| feature).collect();
    (features, columns, intercept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fit_chain_on;
    use crate::model::test_tables::{fit_single_models, synthetic_table};

    fn stack(table: &StudyTable, config: &ModelConfig) -> StackedFusion {
        let fits = fit_single_models(table, config);
        let level1: Vec<(&ChainSpec, &FittedChain)> = fits.iter().map(|(s, c)| (s, c)).collect();
        fit_stacking(table, "fusion_inner", "inner", &level1, config, 42)
            .unwrap_or_else(|reason| panic!("stacking failed: {reason}"))
    }

    #[test]
    fn stacking_inputs_come_from_models_without_fold() {
        let table = synthetic_table(&["inner"], "inner", 7);
        let config = ModelConfig::default();
        let stacked = stack(&table, &config);
        let fits = fit_single_models(&table, &config);
        // All 36 training patients have both sequences; 18 per class, so
        // the 10 folds are not capped.
        assert_eq!(stacked.level2_patients.len(), 36);
        assert_eq!(stacked.partition.folds, 10);

        let mut differs_from_deployed = 0;
        for fold in 0..stacked.partition.folds {
            let training: Vec<bool> = table
                .patients
                .iter()
                .zip(&stacked.partition.fold_of)
                .map(|(p, &f)| p.cohort == Cohort::Training && f != Some(fold))
                .collect();
            for (q, (spec, deployed)) in fits.iter().enumerate() {
                let without_fold = fit_chain_on(&table, spec, &config, 42, &training)
                    .unwrap_or_else(|reason| panic!("{} fold {fold}: {reason}", spec.name));
                for (row, &p) in stacked.level2_patients.iter().enumerate() {
                    if stacked.partition.fold_of[p] != Some(fold) {
                        continue;
                    }
                    let refit_row = without_fold
                        .patients
                        .iter()
                        .position(|&x| x == p)
                        .expect("patient has the features");
                    // The same computation on the same data, so the same bits.
                    assert_eq!(
                        stacked.out_of_fold[[row, q]].to_bits(),
                        without_fold.log_odds[refit_row].to_bits(),
                        "{} patient {}",
                        spec.name,
                        table.patients[p].pseudonym
                    );
                    let deployed_row = deployed.patients.iter().position(|&x| x == p);
                    if deployed_row.map(|r| deployed.log_odds[r])
                        != Some(without_fold.log_odds[refit_row])
                    {
                        differs_from_deployed += 1;
                    }
                }
            }
        }
        // A model that saw the patient scores it differently from one that
        // did not; all 72 inputs (36 patients × 2 models) should differ.
        assert_eq!(differs_from_deployed, 72);
    }

    #[test]
    fn stacking_fold_mates_ignore_patient_change() {
        let table = synthetic_table(&["inner"], "inner", 7);
        let config = ModelConfig::default();
        let before = stack(&table, &config);

        // Change every feature value of one training patient, which moves
        // no patient to another fold (folds depend on labels only).
        let changed_patient = before.level2_patients[0];
        let fold = before.partition.fold_of[changed_patient];
        let mut changed = table.clone();
        for column in &mut changed.columns {
            column.values[changed_patient] = column.values[changed_patient].map(|v| v + 3.0);
        }
        let after = stack(&changed, &config);
        assert_eq!(before.partition, after.partition);

        let mut outside_changed = 0;
        for (row, &p) in before.level2_patients.iter().enumerate() {
            for q in 0..2 {
                let (a, b) = (before.out_of_fold[[row, q]], after.out_of_fold[[row, q]]);
                if p == changed_patient {
                    assert_ne!(a.to_bits(), b.to_bits(), "the changed patient's own input");
                } else if before.partition.fold_of[p] == fold {
                    // Fitted without the changed patient's fold: unchanged.
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "fold mate {}",
                        table.patients[p].pseudonym
                    );
                } else if a.to_bits() != b.to_bits() {
                    outside_changed += 1;
                }
            }
        }
        // Models of other folds were fitted with the changed patient, so
        // some of their inputs move; this shows the check above can fail.
        assert!(outside_changed > 0);
    }

    #[test]
    fn stacking_flat_model_matches_two_level_scores() {
        let table = synthetic_table(&["inner"], "inner", 7);
        let stacked = stack(&table, &ModelConfig::default());
        let model = &stacked.chain.model;
        assert_eq!(model.features.len(), stacked.chain.selected_columns.len());
        for (row, &p) in stacked.chain.patients.iter().enumerate() {
            let flat: f64 = model.intercept
                + model
                    .features
                    .iter()
                    .zip(&stacked.chain.selected_columns)
                    .map(|(f, &c)| {
                        let value = table.columns[c].values[p].expect("patient has the feature");
                        f.coefficient * (value - f.mean) / f.scale
                    })
                    .sum::<f64>();
            // The two forms differ by rounding only: a few dozen operations
            // on log-odds of magnitude below 100 stay far below 1e-9.
            let two_level = stacked.chain.log_odds[row];
            assert!((flat - two_level).abs() < 1e-9, "{flat} vs {two_level}");
        }
    }

    #[test]
    fn stacking_needs_two_sequences() {
        let table = synthetic_table(&["inner"], "inner", 7);
        let config = ModelConfig::default();
        let fits = fit_single_models(&table, &config);
        let t1_only = [(&fits[0].0, &fits[0].1)];
        let error =
            fit_stacking(&table, "fusion_inner", "inner", &t1_only, &config, 42).unwrap_err();
        assert!(error.contains("at least 2 sequences"), "{error}");
    }
}
