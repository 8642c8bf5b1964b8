//! Tests of the modelling pass as a whole: single models, fusion, and that
//! validation data never change anything fitted.

use super::test_tables::{FEATURES_PER_BLOCK, synthetic_table};
use super::*;
use crate::config::{BestRegionRule, FusionMethod};
use crate::split::Cohort;
use crate::table::{FeatureColumn, PatientRecord};

/// Returns a table whose first feature separates the classes and whose second
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
                region: "whole".into(),
                feature: "signal".into(),
                values: signal,
            },
            FeatureColumn {
                name: "T1_whole_noise".into(),
                sequence: "T1".into(),
                region: "whole".into(),
                feature: "noise".into(),
                values: noise,
            },
        ],
    }
}

#[test]
fn model_specs_add_fusion_for_two_sequences() {
    let specs = model_specs(&["MR_T1".into(), "PET".into()]);
    assert_eq!(
        specs,
        [
            ModelSpec::Single {
                sequence: "MR_T1".into()
            },
            ModelSpec::Single {
                sequence: "PET".into()
            },
            ModelSpec::Fusion {
                sequences: vec!["MR_T1".into(), "PET".into()]
            },
        ]
    );
    assert_eq!(model_specs(&["T1".into()]).len(), 1);
}

#[test]
fn single_model_specs_cover_each_sequence_and_region() {
    let table = synthetic_table(&["whole", "inner"], "inner", 1);
    let mut skipped = Vec::new();
    let specs = single_model_specs(
        &table,
        &model_specs(&["T1".into(), "T2".into(), "PET".into()]),
        &ModelConfig::default(),
        &mut skipped,
    );
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    // Regions in name order within each sequence, sequences in study order.
    assert_eq!(names, ["T1_inner", "T1_whole", "T2_inner", "T2_whole"]);
    for spec in &specs {
        assert_eq!(spec.columns.len(), FEATURES_PER_BLOCK, "{}", spec.name);
        assert!(
            spec.columns.iter().all(|&c| table.columns[c]
                .name
                .starts_with(&format!("{}_", spec.name))),
            "{}",
            spec.name
        );
    }
    // PET has no columns, so it is reported rather than silently dropped.
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].model, "PET");
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
        region: "whole".into(),
        feature: "signal".into(),
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

/// Settings that keep the two-region tests quick: 3 best-region partitions
/// instead of 10 and 50 bootstrap replicates instead of 2000.
fn quick_config(fusion: FusionMethod) -> ModelConfig {
    ModelConfig {
        fusion,
        cv_repeats: 3,
        bootstrap_replicates: 50,
        ..ModelConfig::default()
    }
}

#[test]
fn concat_fusion_is_built_on_best_region() {
    let table = synthetic_table(&["inner", "whole"], "inner", 3);
    let specs = model_specs(&["T1".into(), "T2".into()]);
    let outcome = run_models(&table, &specs, &quick_config(FusionMethod::Concat), 42);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);

    let fusion = outcome
        .models
        .iter()
        .find(|m| m.name.starts_with("fusion"))
        .expect("fusion fitted");
    assert_eq!(fusion.name, "fusion_inner");
    assert_eq!(
        fusion.build,
        ModelBuild::Concat {
            region: "inner".into(),
            single_models: vec!["T1_inner".into(), "T2_inner".into()],
            relasso: true,
        }
    );
    assert!(
        fusion.features.iter().all(|f| f.name.contains("_inner_")),
        "{:?}",
        fusion.features
    );
}

#[test]
fn region_models_are_compared_with_whole() {
    let table = synthetic_table(&["inner", "whole"], "inner", 3);
    let specs = model_specs(&["T1".into(), "T2".into()]);
    let outcome = run_models(&table, &specs, &quick_config(FusionMethod::Concat), 42);

    // Each sequence's inner model against its whole-tumour model, on every
    // cohort where DeLong's test is defined; the fusion model is compared
    // separately and never against "whole" as a region pair.
    for sequence in ["T1", "T2"] {
        let inner = format!("{sequence}_inner");
        let whole = format!("{sequence}_whole");
        let pairs = outcome
            .comparisons
            .iter()
            .filter(|c| c.model_a == inner && c.model_b == whole)
            .count();
        assert!(
            pairs >= 1,
            "{inner} against {whole}: {:?}",
            outcome.comparisons
        );
    }
    assert!(
        !outcome
            .comparisons
            .iter()
            .any(|c| c.model_a.starts_with("fusion") && c.model_b == c.model_a)
    );
    assert!(
        !outcome
            .comparisons
            .iter()
            .any(|c| c.model_a.ends_with("_whole")),
        "a whole-tumour model is only ever the reference"
    );
}

#[test]
fn stacking_fusion_explains_two_radscores() {
    let table = synthetic_table(&["inner", "whole"], "inner", 3);
    let specs = model_specs(&["T1".into(), "T2".into()]);
    let outcome = run_models(&table, &specs, &quick_config(FusionMethod::Stacking), 42);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);

    let fusion = outcome
        .models
        .iter()
        .find(|m| m.name == "fusion_inner")
        .expect("stacked fusion fitted");
    let json = serde_json::to_value(fusion).expect("serialisable");
    assert_eq!(json["build"]["kind"], "stacking");
    assert_eq!(json["build"]["region"], "inner");
    assert_eq!(json["build"]["inputs"][0]["model"], "T1_inner");
    assert_eq!(json["build"]["inputs"][1]["model"], "T2_inner");

    // SHAP over the two radscores for each of the 64 patients, who all
    // have both sequences.
    let mut features: Vec<&str> = outcome
        .shap_values
        .iter()
        .map(|(_, _, feature, _)| feature.as_str())
        .collect();
    features.sort_unstable();
    features.dedup();
    assert_eq!(features, ["T1_inner_radscore", "T2_inner_radscore"]);
    assert_eq!(outcome.shap_values.len(), 64 * 2);

    // The fusion has predictions and a validation on each of the 3 cohorts.
    let validated = outcome
        .validations
        .iter()
        .filter(|v| v.model == "fusion_inner")
        .count();
    assert_eq!(validated, 3);
    let predicted = outcome
        .predictions
        .iter()
        .filter(|p| p.model == "fusion_inner")
        .count();
    assert_eq!(predicted, 64);
}

/// Collects every fitted number of a model as bits, in a fixed order.
fn fitted_bits(model: &FittedModel) -> Vec<u64> {
    let mut numbers = vec![model.intercept, model.threshold];
    for feature in &model.features {
        numbers.extend([feature.mean, feature.scale, feature.coefficient]);
        numbers.extend(feature.mwu_p_value);
    }
    if let Some(lasso) = &model.lasso {
        numbers.extend([
            lasso.lambda,
            lasso.lambda_min,
            lasso.lambda_1se,
            lasso.cv_deviance,
        ]);
    }
    if let ModelBuild::Stacking(stacking) = &model.build {
        numbers.push(stacking.level2_intercept);
        for input in &stacking.inputs {
            numbers.extend([input.mean, input.scale, input.coefficient]);
        }
    }
    numbers.iter().map(|x| x.to_bits()).collect()
}

/// Returns `table` with every validation patient's label flipped and every
/// one of their feature values replaced by 3·v − 25 + 0.1·row.
fn with_validation_changed(table: &StudyTable) -> StudyTable {
    let mut changed = table.clone();
    for (row, patient) in changed.patients.iter_mut().enumerate() {
        if patient.cohort == Cohort::Training {
            continue;
        }
        patient.label = !patient.label;
        for column in &mut changed.columns {
            column.values[row] = column.values[row].map(|v| 3.0 * v - 25.0 + 0.1 * row as f64);
        }
    }
    changed
}

/// Runs the whole modelling twice, before and after changing every
/// validation label and feature value, and checks that everything fitted is
/// bit-identical while the validation metrics change.
fn assert_fit_ignores_validation_data(fusion: FusionMethod) {
    let table = synthetic_table(&["inner", "whole"], "inner", 11);
    let changed = with_validation_changed(&table);
    let specs = model_specs(&["T1".into(), "T2".into()]);
    let config = quick_config(fusion);
    let first = run_models(&table, &specs, &config, 42);
    let second = run_models(&changed, &specs, &config, 42);

    assert!(first.skipped.is_empty(), "{:?}", first.skipped);
    assert_eq!(first.skipped, second.skipped);
    // 2 sequences × 2 regions, plus the fusion.
    assert_eq!(first.models.len(), 5);
    assert_eq!(second.models.len(), 5);
    for (a, b) in first.models.iter().zip(&second.models) {
        assert_eq!(a.name, b.name);
        assert_eq!(fitted_bits(a), fitted_bits(b), "numbers of {}", a.name);
        assert_eq!(a, b, "model {}", a.name);
    }

    let selection = |o: &ModellingOutcome| {
        serde_json::to_string(&o.region_selection).expect("serialisable selection")
    };
    assert_eq!(selection(&first), selection(&second));
    let chosen = first
        .region_selection
        .as_ref()
        .and_then(|s| s.chosen.clone());
    assert_eq!(chosen.as_deref(), Some("inner"));

    // Training metrics are computed on training patients only, so they are
    // unchanged too. Each validation AUC must change, which shows that the
    // second run did see the changed data.
    for (a, b) in first.validations.iter().zip(&second.validations) {
        assert_eq!((&a.model, &a.cohort), (&b.model, &b.cohort));
        let auc = |v: &CohortValidation| v.auc.map(|a| a.auc.to_bits());
        if a.cohort == Cohort::Training.as_str() {
            assert_eq!(a, b, "{} training validation", a.model);
        } else {
            assert_ne!(auc(a), auc(b), "{} {} AUC", a.model, a.cohort);
        }
    }
}

#[test]
fn leakage_concat_fit_ignores_validation_data() {
    assert_fit_ignores_validation_data(FusionMethod::Concat);
}

#[test]
fn leakage_stacking_fit_ignores_validation_data() {
    assert_fit_ignores_validation_data(FusionMethod::Stacking);
}

#[test]
fn internal_validation_rule_is_flagged_optimistic() {
    let table = synthetic_table(&["inner", "whole"], "inner", 3);
    let specs = model_specs(&["T1".into(), "T2".into()]);
    let config = ModelConfig {
        best_region: BestRegionRule::InternalValidation,
        ..quick_config(FusionMethod::Concat)
    };
    let outcome = run_models(&table, &specs, &config, 42);
    let selection = outcome.region_selection.expect("selection made");
    assert!(selection.optimistic);
    assert_eq!(selection.cv_folds, None);
    assert_eq!(selection.regions.len(), 2);
    // Each sequence's score is its model's internal validation AUC.
    for region in &selection.regions {
        for score in &region.sequences {
            let validation = outcome
                .validations
                .iter()
                .find(|v| v.model == score.model && v.cohort == "internal_validation")
                .expect("internal validation of each single model");
            assert_eq!(
                score.mean_auc,
                validation.auc.map(|a| a.auc),
                "{}",
                score.model
            );
        }
    }
}

#[test]
fn mwu_bh_keeps_subset_of_raw() {
    let table = synthetic_table(&["whole"], "whole", 5);
    let specs = model_specs(&["T1".into()]);
    // Without the LASSO the model keeps exactly the features that pass the
    // Mann-Whitney step, so the two selections can be compared.
    let raw_config = ModelConfig {
        lasso: false,
        bootstrap_replicates: 0,
        ..ModelConfig::default()
    };
    let bh_config = ModelConfig {
        mwu_correction: crate::config::MwuCorrection::BenjaminiHochberg,
        ..raw_config.clone()
    };
    let raw = run_models(&table, &specs, &raw_config, 42);
    let corrected = run_models(&table, &specs, &bh_config, 42);
    let (raw, corrected) = (&raw.models[0], &corrected.models[0]);
    assert!(!corrected.mwu_relaxed, "the shifted features pass BH");

    let raw_names: Vec<&str> = raw.features.iter().map(|f| f.name.as_str()).collect();
    for feature in &corrected.features {
        assert!(
            raw_names.contains(&feature.name.as_str()),
            "{}",
            feature.name
        );
        let (p, q) = (
            feature.mwu_p_value.expect("tested"),
            feature.mwu_q_value.expect("corrected"),
        );
        // A BH q-value is min over k ≥ rank of p_(k)·m/k, never below p.
        assert!(
            q >= p && q < bh_config.mwu_alpha,
            "{}: p {p}, q {q}",
            feature.name
        );
    }
    assert!(raw.features.iter().all(|f| f.mwu_q_value.is_none()));
    assert!(corrected.features.len() <= raw.features.len());
}

#[test]
fn penalty_none_separated_refits_with_l2() {
    let specs = model_specs(&["T1".into()]);
    let unpenalised = ModelConfig {
        penalty: crate::config::PenaltyChoice::None,
        bootstrap_replicates: 0,
        ..ModelConfig::default()
    };
    let l2 = ModelConfig {
        bootstrap_replicates: 0,
        ..ModelConfig::default()
    };
    let refitted = run_models(&toy_table(), &specs, &unpenalised, 42);
    let reference = run_models(&toy_table(), &specs, &l2, 42);
    let (refitted, reference) = (&refitted.models[0], &reference.models[0]);

    // The signal feature separates the classes perfectly, so maximum
    // likelihood runs off to infinity and the C = 1 refit replaces it. The
    // default is C = 1 as well, and both go through the same Newton solver:
    // the coefficients are bit-identical.
    assert!(refitted.separation_refit);
    assert!(!reference.separation_refit);
    assert_eq!(refitted.intercept, reference.intercept);
    assert_eq!(
        refitted.features[0].coefficient,
        reference.features[0].coefficient
    );
}

#[test]
fn predictions_radscore_is_log_odds() {
    let outcome = run_models(
        &toy_table(),
        &model_specs(&["T1".into()]),
        &ModelConfig::default(),
        42,
    );
    assert!(!outcome.predictions.is_empty());
    for prediction in &outcome.predictions {
        let p = prediction.probability;
        let expected = (p / (1.0 - p)).ln();
        // logit(σ(η)) recovers η to a few ulps while p is not within about
        // 1e-12 of 0 or 1, which holds for these scores.
        assert!(
            (prediction.radscore - expected).abs() <= 1e-9 * (1.0 + expected.abs()),
            "{prediction:?}"
        );
    }
}
