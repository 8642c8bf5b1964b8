use std::collections::BTreeMap;

use ndarray::{Array1, Array2, ArrayView1, array, s};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Deserialize;

use super::empirical_bayes::{CONVERGENCE_TOLERANCE, mean_and_sample_variance, neurocombat_change};
use super::*;

/// Agreement with neuroCombat 0.2.12 in every variant: relative for α,
/// σ², δ̂², δ*², the priors and the harmonised values, and absolute for
/// γ̂ and γ* (in reference SDs, where 0 is a valid value). Measured on the
/// fixture: at most 2.3e-13 relative (non-parametric harmonised values)
/// and 1.2e-13 absolute (γ̂ of feature 23). Feature 23 lies about 3500
/// reference SDs from 0, so the rounding of α alone moves its γ̂ by up to
/// ε·|α|/σ ≈ 8e-13.
const NEUROCOMBAT_TOLERANCE: f64 = 1e-11;

/// Agreement between fits from differently split sums of the same rows,
/// and with the row-level computation in this module.
const SUMS_TOLERANCE: f64 = 1e-12;

const FIXTURE_BATCHES: [&str; 2] = ["site_b", "site_c"];

/// Feature 5 is constant within site_c in the fixture.
const CONSTANT_FEATURE: usize = 5;

#[derive(Deserialize)]
struct Fixture {
    combat: CombatFixture,
}

/// The ComBat part of tests/fixtures/icc_combat.json, written by
/// make_icc_combat_fixtures.py beside it.
#[derive(Deserialize)]
struct CombatFixture {
    reference_batch: String,
    batch: Vec<String>,
    data: Vec<Vec<f64>>,
    cases: BTreeMap<String, NeuroCombatCase>,
}

/// Output of neuroCombat 0.2.12 with `ref_batch="site_a"`, keyed by
/// batch. `None` (JSON null) is a NaN of neuroCombat, which occurs only
/// in feature 5 (see `assert_matches_neurocombat`).
#[derive(Deserialize)]
struct NeuroCombatCase {
    options: ComBatOptions,
    var_pooled: Vec<f64>,
    stand_mean: Vec<f64>,
    gamma_hat: BTreeMap<String, Vec<f64>>,
    delta_hat: BTreeMap<String, Vec<f64>>,
    gamma_star: BTreeMap<String, Vec<Option<f64>>>,
    delta_star: BTreeMap<String, Vec<Option<f64>>>,
    adjusted: Vec<Vec<Option<f64>>>,
    gamma_bar: Option<BTreeMap<String, f64>>,
    t2: Option<BTreeMap<String, f64>>,
    a_prior: Option<BTreeMap<String, f64>>,
    b_prior: Option<BTreeMap<String, f64>>,
}

impl CombatFixture {
    fn load() -> Self {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/icc_combat.json"
        ));
        let fixture: Fixture = serde_json::from_str(text).expect("icc_combat.json does not parse");
        fixture.combat
    }

    fn patients_of(&self, batch: &str) -> Vec<usize> {
        (0..self.batch.len())
            .filter(|&i| self.batch[i] == batch)
            .collect()
    }

    fn rows_of(&self, batch: &str) -> Array2<f64> {
        let features = self.data[0].len();
        let values: Vec<f64> = self.data.iter().flatten().copied().collect();
        let data = Array2::from_shape_vec((self.data.len(), features), values)
            .expect("fixture rows are ragged");
        data.select(Axis(0), &self.patients_of(batch))
    }

    fn sums_of(&self, batch: &str) -> BatchSums {
        BatchSums::from_rows(batch, self.rows_of(batch).view()).unwrap()
    }

    fn fit(&self, options: ComBatOptions) -> ComBatFit {
        let others: Vec<BatchSums> = FIXTURE_BATCHES
            .iter()
            .map(|batch| self.sums_of(batch))
            .collect();
        ComBatFit::fit(&self.sums_of(&self.reference_batch), &others, options).unwrap()
    }
}

fn assert_relative(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
    assert!(
        expected != 0.0,
        "{quantity}: a relative check needs a non-zero baseline"
    );
    let error = (actual - expected).abs() / expected.abs();
    assert!(
        error <= tolerance,
        "{quantity}: got {actual}, expected {expected}, relative error {error:e} > {tolerance:e}"
    );
}

fn assert_absolute(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
    let error = (actual - expected).abs();
    assert!(
        error <= tolerance,
        "{quantity}: got {actual}, expected {expected}, absolute error {error:e} > {tolerance:e}"
    );
}

/// Compares one fixture case with the fit of the same options.
fn assert_matches_neurocombat(case_name: &str) {
    let fixture = CombatFixture::load();
    let case = &fixture.cases[case_name];
    let fit = fixture.fit(case.options);
    let features = case.stand_mean.len();
    assert_eq!(fit.reference_mean.len(), features);
    assert!(fit.zero_variance_features.is_empty());

    for g in 0..features {
        assert_relative(
            fit.reference_mean[g],
            case.stand_mean[g],
            NEUROCOMBAT_TOLERANCE,
            &format!("α[{g}]"),
        );
        assert_relative(
            fit.reference_variance[g],
            case.var_pooled[g],
            NEUROCOMBAT_TOLERANCE,
            &format!("σ²[{g}]"),
        );
    }

    for batch in FIXTURE_BATCHES {
        let estimates = fit.batch(batch).unwrap();
        let is_constant = |g: usize| batch == "site_c" && g == CONSTANT_FEATURE;
        for g in 0..features {
            let at = format!("{case_name} {batch} feature {g}");
            assert_absolute(
                estimates.gamma_hat[g],
                case.gamma_hat[batch][g],
                NEUROCOMBAT_TOLERANCE,
                &format!("γ̂ {at}"),
            );
            assert_relative(
                estimates.delta_hat[g],
                case.delta_hat[batch][g],
                NEUROCOMBAT_TOLERANCE,
                &format!("δ̂² {at}"),
            );
            if is_constant(g) {
                // neuroCombat adjusts it (or returns NaN); we leave it unadjusted.
                assert_eq!(estimates.gamma_star[g], 0.0, "γ* {at}");
                assert_eq!(estimates.delta_star[g], 1.0, "δ*² {at}");
            } else {
                let gamma_star = case.gamma_star[batch][g].expect("neuroCombat γ* is NaN");
                let delta_star = case.delta_star[batch][g].expect("neuroCombat δ*² is NaN");
                assert_absolute(
                    estimates.gamma_star[g],
                    gamma_star,
                    NEUROCOMBAT_TOLERANCE,
                    &format!("γ* {at}"),
                );
                assert_relative(
                    estimates.delta_star[g],
                    delta_star,
                    NEUROCOMBAT_TOLERANCE,
                    &format!("δ*² {at}"),
                );
            }
        }

        match (&estimates.prior, &case.gamma_bar, &case.t2) {
            (Some(prior), Some(gamma_bar), Some(t2)) => {
                assert_relative(
                    prior.gamma_bar,
                    gamma_bar[batch],
                    NEUROCOMBAT_TOLERANCE,
                    "γ̄",
                );
                assert_relative(prior.tau2, t2[batch], NEUROCOMBAT_TOLERANCE, "τ²");
            }
            (None, None, None) => {}
            _ => panic!("{case_name} {batch}: prior present on one side only"),
        }
        match (prior_shape(estimates), &case.a_prior, &case.b_prior) {
            (Some((a, b)), Some(a_prior), Some(b_prior)) => {
                assert_relative(a, a_prior[batch], NEUROCOMBAT_TOLERANCE, "a");
                assert_relative(b, b_prior[batch], NEUROCOMBAT_TOLERANCE, "b");
            }
            (None, None, None) => {}
            _ => panic!("{case_name} {batch}: inverse-gamma prior present on one side only"),
        }

        let rows = fixture.rows_of(batch);
        let adjusted = fit.apply(batch, rows.view()).unwrap();
        for (row, &patient) in fixture.patients_of(batch).iter().enumerate() {
            for g in 0..features {
                let at = format!("{case_name} {batch} patient {patient} feature {g}");
                if is_constant(g) {
                    assert_eq!(
                        adjusted[[row, g]],
                        rows[[row, g]],
                        "{at} must stay unadjusted"
                    );
                } else {
                    let expected = case.adjusted[patient][g]
                        .unwrap_or_else(|| neurocombat_formula(case, batch, g, rows[[row, g]]));
                    assert_relative(adjusted[[row, g]], expected, NEUROCOMBAT_TOLERANCE, &at);
                }
            }
        }
    }
}

/// Recomputes a harmonised value from neuroCombat's own estimates.
///
/// Used where neuroCombat 0.2.12 returns NaN for a finite γ* and δ*²: its
/// `adjust_data_final` multiplies the batch design by the γ* matrix, so a
/// NaN γ* of one batch (the 0/0 of the non-parametric weights) becomes
/// 0 × NaN = NaN for the patients of every batch.
fn neurocombat_formula(case: &NeuroCombatCase, batch: &str, feature: usize, value: f64) -> f64 {
    let gamma = case.gamma_star[batch][feature].expect("neuroCombat γ* is NaN");
    let delta = case.delta_star[batch][feature].expect("neuroCombat δ*² is NaN");
    let mean = case.stand_mean[feature];
    let sd = case.var_pooled[feature].sqrt();
    ((value - mean) / sd - gamma) / delta.sqrt() * sd + mean
}

fn prior_shape(estimates: &BatchEstimates) -> Option<(f64, f64)> {
    let prior = estimates.prior?;
    Some((prior.a?, prior.b?))
}

#[test]
fn combat_parametric_matches_neurocombat() {
    assert_matches_neurocombat("parametric");
}

#[test]
fn combat_non_parametric_matches_neurocombat() {
    assert_matches_neurocombat("non_parametric");
}

#[test]
fn combat_mean_only_matches_neurocombat() {
    assert_matches_neurocombat("mean_only");
}

#[test]
fn combat_non_parametric_mean_only_matches_neurocombat() {
    assert_matches_neurocombat("non_parametric_mean_only");
}

#[test]
fn combat_without_eb_matches_neurocombat() {
    assert_matches_neurocombat("no_eb");
}

#[test]
fn fixture_options_cover_variants() {
    let fixture = CombatFixture::load();
    assert_eq!(
        fixture.cases["parametric"].options,
        ComBatOptions::default()
    );
    assert!(!fixture.cases["non_parametric"].options.parametric);
    assert!(fixture.cases["mean_only"].options.mean_only);
    let non_parametric_mean_only = fixture.cases["non_parametric_mean_only"].options;
    assert!(non_parametric_mean_only.mean_only);
    assert!(!non_parametric_mean_only.parametric);
    assert!(!fixture.cases["no_eb"].options.eb);
    let fit = fixture.fit(ComBatOptions::default());
    assert!(fit.batches.iter().all(|estimates| estimates.iterations > 0));
}

#[test]
fn reference_batch_is_returned_unchanged() {
    let fixture = CombatFixture::load();
    let rows = fixture.rows_of("site_a");
    for options in fixture.cases.values().map(|case| case.options) {
        let fit = fixture.fit(options);
        let adjusted = fit.apply("site_a", rows.view()).unwrap();
        assert_eq!(adjusted, rows, "{options:?}");
    }
}

#[test]
fn other_batches_do_not_change_a_fit() {
    // No leakage between centres: α, σ² come from the reference alone,
    // and each batch's estimates from the reference and that batch.
    let fixture = CombatFixture::load();
    let reference = fixture.sums_of("site_a");
    let site_b = fixture.sums_of("site_b");
    let site_c = fixture.sums_of("site_c");
    for options in fixture.cases.values().map(|case| case.options) {
        let both = ComBatFit::fit(&reference, &[site_b.clone(), site_c.clone()], options).unwrap();
        let alone = ComBatFit::fit(&reference, std::slice::from_ref(&site_c), options).unwrap();
        assert_eq!(both.reference_mean, alone.reference_mean);
        assert_eq!(both.reference_variance, alone.reference_variance);
        assert_eq!(both.batch("site_c"), alone.batch("site_c"), "{options:?}");
    }
}

#[test]
fn constant_feature_stays_unadjusted() {
    let fixture = CombatFixture::load();
    let fit = fixture.fit(ComBatOptions::default());
    assert_eq!(
        fit.batch("site_c").unwrap().unadjusted_features,
        vec![CONSTANT_FEATURE]
    );
    assert!(fit.batch("site_b").unwrap().unadjusted_features.is_empty());

    let rows = fixture.rows_of("site_c");
    let adjusted = fit.apply("site_c", rows.view()).unwrap();
    assert_eq!(
        adjusted.column(CONSTANT_FEATURE),
        rows.column(CONSTANT_FEATURE)
    );
    assert_ne!(adjusted.column(0), rows.column(0));
}

#[test]
fn merged_site_sums_equal_pooled_rows() {
    // site_c arrives from two workers: its merged sums must give the fit
    // of its pooled rows.
    let fixture = CombatFixture::load();
    let rows = fixture.rows_of("site_c");
    let mut merged = BatchSums::from_rows("site_c", rows.slice(s![..5, ..])).unwrap();
    merged
        .merge(&BatchSums::from_rows("site_c", rows.slice(s![5.., ..])).unwrap())
        .unwrap();
    let pooled = fixture.sums_of("site_c");
    assert_eq!(merged.n, pooled.n);

    let reference = fixture.sums_of("site_a");
    for options in fixture.cases.values().map(|case| case.options) {
        let from_merged =
            ComBatFit::fit(&reference, std::slice::from_ref(&merged), options).unwrap();
        let from_pooled =
            ComBatFit::fit(&reference, std::slice::from_ref(&pooled), options).unwrap();
        let (merged_estimates, pooled_estimates) =
            (&from_merged.batches[0], &from_pooled.batches[0]);
        assert_eq!(
            merged_estimates.unadjusted_features,
            pooled_estimates.unadjusted_features
        );
        for g in 0..pooled.features() {
            let at = format!("{options:?} feature {g}");
            assert_absolute(
                merged_estimates.gamma_star[g],
                pooled_estimates.gamma_star[g],
                SUMS_TOLERANCE,
                &at,
            );
            assert_relative(
                merged_estimates.delta_star[g],
                pooled_estimates.delta_star[g],
                SUMS_TOLERANCE,
                &at,
            );
        }
    }
}

/// Row-level ComBat estimates of one batch: the module's formulas applied
/// to each patient's standardised values, with Σ_i (s_i − γ)² summed over
/// the patients instead of taken from the sums.
fn row_level_estimates(
    reference: ArrayView2<f64>,
    batch: ArrayView2<f64>,
    options: ComBatOptions,
) -> (Vec<f64>, Vec<f64>) {
    let features = reference.ncols();
    let n = batch.nrows() as f64;
    let alpha: Vec<f64> = reference
        .columns()
        .into_iter()
        .map(|c| c.mean().unwrap())
        .collect();
    let sd: Vec<f64> = reference
        .columns()
        .into_iter()
        .map(|c| c.var(0.0).sqrt())
        .collect();
    let standardised: Vec<Vec<f64>> = (0..features)
        .map(|g| {
            batch
                .column(g)
                .iter()
                .map(|x| (x - alpha[g]) / sd[g])
                .collect()
        })
        .collect();
    let squared_distance =
        |g: usize, gamma: f64| -> f64 { standardised[g].iter().map(|s| (s - gamma).powi(2)).sum() };
    let gamma_hat: Vec<f64> = standardised
        .iter()
        .map(|s| s.iter().sum::<f64>() / n)
        .collect();
    let delta_hat: Vec<f64> = (0..features)
        .map(|g| squared_distance(g, gamma_hat[g]) / (n - 1.0))
        .collect();
    assert!(
        delta_hat.iter().all(|&d| d > 0.0),
        "the random data have no constant feature"
    );

    let (gamma_bar, tau2) = mean_and_sample_variance(&gamma_hat);
    let (m, v) = mean_and_sample_variance(&delta_hat);
    let (a, b) = ((2.0 * v + m * m) / v, (m * v + m * m * m) / v);
    if !options.parametric {
        let mut gamma_star = Vec::new();
        let mut delta_star = Vec::new();
        for g in 0..features {
            let others = (0..features).filter(|&j| j != g);
            let log_likelihood: Vec<(usize, f64)> = others
                .map(|j| {
                    let d = delta_hat[j];
                    (
                        j,
                        -0.5 * n * (2.0 * std::f64::consts::PI * d).ln()
                            - squared_distance(g, gamma_hat[j]) / (2.0 * d),
                    )
                })
                .collect();
            let maximum = log_likelihood
                .iter()
                .map(|&(_, l)| l)
                .fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<(usize, f64)> = log_likelihood
                .iter()
                .map(|&(j, l)| (j, (l - maximum).exp()))
                .collect();
            let total: f64 = weights.iter().map(|&(_, w)| w).sum();
            gamma_star.push(weights.iter().map(|&(j, w)| gamma_hat[j] * w).sum::<f64>() / total);
            delta_star.push(weights.iter().map(|&(j, w)| delta_hat[j] * w).sum::<f64>() / total);
        }
        return (gamma_star, delta_star);
    }

    let mut gamma_old = gamma_hat.clone();
    let mut delta_old = delta_hat.clone();
    loop {
        let gamma_new: Vec<f64> = (0..features)
            .map(|g| {
                (tau2 * n * gamma_hat[g] + delta_old[g] * gamma_bar) / (tau2 * n + delta_old[g])
            })
            .collect();
        let delta_new: Vec<f64> = (0..features)
            .map(|g| (0.5 * squared_distance(g, gamma_new[g]) + b) / (n / 2.0 + a - 1.0))
            .collect();
        let change = neurocombat_change(&gamma_new, &gamma_old, &delta_new, &delta_old);
        gamma_old = gamma_new;
        delta_old = delta_new;
        let keep_iterating = change > CONVERGENCE_TOLERANCE;
        if !keep_iterating {
            return (gamma_old, delta_old);
        }
    }
}

/// Draws `n` patients × `features` with per-feature centre and spread
/// shared by all batches, and a batch-specific shift and scale.
fn random_batch(
    rng: &mut Xoshiro256PlusPlus,
    n: usize,
    centre: ArrayView1<f64>,
    shift: f64,
    scale: f64,
) -> Array2<f64> {
    let noise = Normal::new(0.0, 1.0).unwrap();
    Array2::from_shape_fn((n, centre.len()), |(_, g)| {
        let spread = 1.0 + g as f64 * 0.25;
        centre[g] + spread * (shift + scale * noise.sample(rng))
    })
}

#[test]
fn sums_fit_equals_row_level_fit() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    // Large centres make raw Σx² cancel, which the shifted sums avoid.
    let centre = Array1::from_shape_fn(30, |g| {
        if g % 5 == 0 {
            5_000.0
        } else {
            g as f64 * 3.0 - 20.0
        }
    });
    let reference = random_batch(&mut rng, 15, centre.view(), 0.0, 1.0);
    let batch = random_batch(&mut rng, 9, centre.view(), 0.7, 1.6);
    let reference_sums = BatchSums::from_rows("reference", reference.view()).unwrap();
    let batch_sums = BatchSums::from_rows("batch", batch.view()).unwrap();

    for parametric in [true, false] {
        let options = ComBatOptions {
            parametric,
            ..ComBatOptions::default()
        };
        let fit =
            ComBatFit::fit(&reference_sums, std::slice::from_ref(&batch_sums), options).unwrap();
        let (gamma_star, delta_star) = row_level_estimates(reference.view(), batch.view(), options);
        let estimates = &fit.batches[0];
        for g in 0..centre.len() {
            let at = format!("parametric {parametric} feature {g}");
            assert_absolute(
                estimates.gamma_star[g],
                gamma_star[g],
                SUMS_TOLERANCE,
                &format!("γ* {at}"),
            );
            assert_relative(
                estimates.delta_star[g],
                delta_star[g],
                SUMS_TOLERANCE,
                &format!("δ*² {at}"),
            );
        }
    }
}

#[test]
fn zero_reference_variance_takes_median() {
    // Feature 0 is constant in the reference. The non-zero population
    // variances are 1, 4 and 16 (values ±1, ±2, ±4 around 0), median 4.
    let reference = array![[3.0, -1.0, -2.0, -4.0], [3.0, 1.0, 2.0, 4.0]];
    let batch = array![
        [1.0, 0.0, 1.0, 1.0],
        [2.0, 1.0, 0.0, 3.0],
        [4.0, 2.0, 1.0, 2.0]
    ];
    let fit = ComBatFit::fit(
        &BatchSums::from_rows("reference", reference.view()).unwrap(),
        &[BatchSums::from_rows("batch", batch.view()).unwrap()],
        ComBatOptions {
            eb: false,
            ..ComBatOptions::default()
        },
    )
    .unwrap();
    assert_eq!(fit.zero_variance_features, vec![0]);
    assert_eq!(fit.reference_variance, vec![4.0, 1.0, 4.0, 16.0]);
    // γ̂ of feature 0: (mean 7/3 − 3) / √4.
    assert_absolute(
        fit.batches[0].gamma_hat[0],
        (7.0 / 3.0 - 3.0) / 2.0,
        1e-15,
        "γ̂[0]",
    );
}

#[test]
fn constant_reference_is_rejected() {
    let constant = array![[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]];
    let batch = array![[1.0, 2.0], [3.0, 4.0]];
    let error = ComBatFit::fit(
        &BatchSums::from_rows("site_a", constant.view()).unwrap(),
        &[BatchSums::from_rows("site_b", batch.view()).unwrap()],
        ComBatOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(error, StatsError::InvalidBatchSums { ref batch, .. } if batch == "site_a"));
}

#[test]
fn small_batches_are_rejected() {
    let reference =
        BatchSums::from_rows("site_a", array![[1.0, 2.0], [2.0, 5.0], [0.5, 3.0]].view()).unwrap();
    let single = BatchSums::from_rows("site_b", array![[1.5, 2.5]].view()).unwrap();
    let error = ComBatFit::fit(
        &reference,
        std::slice::from_ref(&single),
        ComBatOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, StatsError::BatchTooSmall { ref batch, n: 1, .. } if batch == "site_b")
    );

    let mean_only = ComBatOptions {
        mean_only: true,
        ..ComBatOptions::default()
    };
    let fit = ComBatFit::fit(&reference, std::slice::from_ref(&single), mean_only).unwrap();
    assert_eq!(fit.batches[0].delta_star, vec![1.0, 1.0]);
    assert!(fit.batches[0].unadjusted_features.is_empty());

    let one_reference = BatchSums::from_rows("site_a", array![[1.0, 2.0]].view()).unwrap();
    let error = ComBatFit::fit(&one_reference, &[], mean_only).unwrap_err();
    assert!(
        matches!(error, StatsError::BatchTooSmall { ref batch, n: 1, .. } if batch == "site_a")
    );

    let empty = BatchSums::from_rows("site_c", Array2::<f64>::zeros((0, 2)).view()).unwrap();
    let error = ComBatFit::fit(&reference, &[empty], mean_only).unwrap_err();
    assert!(matches!(error, StatsError::BatchTooSmall { n: 0, .. }));
}

#[test]
fn fit_rejects_bad_inputs() {
    let reference =
        BatchSums::from_rows("site_a", array![[1.0, 2.0], [2.0, 5.0], [0.5, 3.0]].view()).unwrap();
    let other = BatchSums::from_rows("site_b", array![[1.5, 2.5], [2.5, 2.0]].view()).unwrap();
    let options = ComBatOptions::default();

    let duplicate =
        ComBatFit::fit(&reference, &[other.clone(), other.clone()], options).unwrap_err();
    assert_eq!(
        duplicate,
        StatsError::DuplicateBatch {
            batch: "site_b".to_owned()
        }
    );
    let mut named_as_reference = other.clone();
    named_as_reference.batch = "site_a".to_owned();
    assert!(matches!(
        ComBatFit::fit(&reference, &[named_as_reference], options).unwrap_err(),
        StatsError::DuplicateBatch { .. }
    ));

    let three_features =
        BatchSums::from_rows("site_c", array![[1.0, 2.0, 3.0], [2.0, 1.0, 0.0]].view()).unwrap();
    assert!(matches!(
        ComBatFit::fit(&reference, &[three_features], options).unwrap_err(),
        StatsError::InvalidBatchSums { ref batch, .. } if batch == "site_c"
    ));

    let mut non_finite = other.clone();
    non_finite.sum_squares[1] = f64::NAN;
    let error = ComBatFit::fit(&reference, &[non_finite], options).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("sum_squares of feature 1 is NaN"),
        "{error}"
    );

    let one_feature = BatchSums::from_rows("site_a", array![[1.0], [2.0]].view()).unwrap();
    let other_one = BatchSums::from_rows("site_b", array![[1.0], [4.0]].view()).unwrap();
    assert!(matches!(
        ComBatFit::fit(&one_feature, std::slice::from_ref(&other_one), options).unwrap_err(),
        StatsError::TooFewObservations {
            count: 1,
            minimum: 2,
            ..
        }
    ));
    let without_eb = ComBatOptions {
        eb: false,
        ..options
    };
    assert!(ComBatFit::fit(&one_feature, &[other_one], without_eb).is_ok());
}

#[test]
fn apply_rejects_unknown_batch_and_bad_rows() {
    let fixture = CombatFixture::load();
    let fit = fixture.fit(ComBatOptions::default());
    let rows = fixture.rows_of("site_b");

    let error = fit.apply("site_x", rows.view()).unwrap_err();
    assert_eq!(
        error,
        StatsError::UnknownBatch {
            batch: "site_x".to_owned(),
            known: r#""site_a" (reference), "site_b", "site_c""#.to_owned(),
        }
    );
    assert!(
        error.to_string().contains("unknown batch \"site_x\""),
        "{error}"
    );

    assert!(matches!(
        fit.apply("site_b", rows.slice(s![.., ..3])).unwrap_err(),
        StatsError::ColumnMismatch {
            expected: 24,
            found: 3,
            ..
        }
    ));
    let mut with_nan = rows.clone();
    with_nan[[2, 7]] = f64::NAN;
    assert!(matches!(
        fit.apply("site_b", with_nan.view()).unwrap_err(),
        StatsError::NonFiniteCell {
            row: 2,
            column: 7,
            ..
        }
    ));
}

#[test]
fn raw_sums_merge_and_fit() {
    // Plain Σx and Σx² (shift 0) are accepted and merge with shifted sums.
    let fixture = CombatFixture::load();
    let rows = fixture.rows_of("site_b");
    let raw = BatchSums::from_raw_sums(
        "site_b",
        rows.nrows(),
        rows.sum_axis(Axis(0)),
        rows.mapv(|x| x * x).sum_axis(Axis(0)),
    )
    .unwrap();
    let shifted = fixture.sums_of("site_b");
    for g in 0..raw.features() {
        assert_relative(raw.mean(g), shifted.mean(g), 1e-13, &format!("mean[{g}]"));
    }

    let mut empty = BatchSums::from_rows("site_b", Array2::<f64>::zeros((0, 24)).view()).unwrap();
    empty.merge(&raw).unwrap();
    assert_eq!(empty, raw);

    let mismatched = BatchSums::from_raw_sums("site_b", 3, Array1::zeros(2), Array1::zeros(3));
    assert!(matches!(
        mismatched.unwrap_err(),
        StatsError::InvalidBatchSums { .. }
    ));
    let mut other_batch = raw.clone();
    other_batch.batch = "site_c".to_owned();
    assert!(empty.merge(&other_batch).is_err());
}

#[test]
fn fit_round_trips_through_json() {
    let fixture = CombatFixture::load();
    let fit = fixture.fit(ComBatOptions::default());
    let parsed: ComBatFit = serde_json::from_str(&serde_json::to_string(&fit).unwrap()).unwrap();
    let mut malformed = parsed.clone();
    malformed.batches[0].delta_star[3] = -1.0;
    assert!(matches!(
        malformed
            .apply("site_b", fixture.rows_of("site_b").view())
            .unwrap_err(),
        StatsError::InvalidParameter {
            name: "delta_star",
            ..
        }
    ));
    assert_eq!(parsed.reference_batch, fit.reference_batch);
    assert_eq!(parsed.options, fit.options);
    assert_eq!(
        parsed.batches[1].unadjusted_features,
        vec![CONSTANT_FEATURE]
    );

    // serde_json without `float_roundtrip` may move a number by 1 ulp.
    let rows = fixture.rows_of("site_c");
    let expected = fit.apply("site_c", rows.view()).unwrap();
    let actual = parsed.apply("site_c", rows.view()).unwrap();
    for (&a, &e) in actual.iter().zip(&expected) {
        assert_relative(a, e, 1e-14, "harmonised value after a JSON round trip");
    }
}
