use ndarray::{Array2, array};

use super::*;
use crate::stats::lasso::LassoParams;

fn params(family: Family) -> ValidLassoParams {
    LassoParams {
        family,
        folds: 4,
        n_lambda: 20,
        ..LassoParams::default()
    }
    .validate()
    .unwrap()
}

/// Deterministic 40 × 8 design whose label depends on features 1 and 5.
fn problem() -> (Array2<f64>, Vec<bool>) {
    let mut state: u64 = 11;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let z = Array2::from_shape_fn((40, 8), |_| next());
    let y = (0..40)
        .map(|row| z[[row, 1]] - 0.8 * z[[row, 5]] + 0.7 * next() > 0.0)
        .collect();
    (z, y)
}

fn hand_made_path(coefficients: Array2<f64>) -> LassoPath {
    let lambdas = (0..coefficients.nrows())
        .map(|k| 1.0 / (k + 1) as f64)
        .collect();
    LassoPath {
        lambdas,
        intercepts: Array1::zeros(coefficients.nrows()),
        coefficients,
        passes: 0,
        saturated_from: None,
    }
}

#[test]
fn choose_indices_prefers_largest_lambda() {
    // Two λ share the minimum 1.0; the first (larger λ) wins. The bound
    // for λ_1se is 1.0 + 0.25, first reached at index 1.
    let mean = [2.0, 1.2, 1.0, 1.1, 1.0];
    let se = [0.1, 0.1, 0.25, 0.1, 0.1];
    assert_eq!(choose_indices(&mean, &se), (2, 1));
}

#[test]
fn weighted_curve_matches_cv_glmnet_formula() {
    // Fold losses 1, 2, 4 with weights 1, 1, 2:
    // mean = (1 + 2 + 8) / 4 = 2.75
    // se = sqrt((1.75² + 0.75² + 2 · 1.25²) / 4 / 2)
    let losses = array![[1.0], [2.0], [4.0]];
    let (mean, se) = weighted_curve(&losses, &[1.0, 1.0, 2.0]);
    assert_eq!(mean, vec![2.75]);
    let expected_se =
        ((1.75f64.powi(2) + 0.75f64.powi(2) + 2.0 * 1.25f64.powi(2)) / 4.0 / 2.0).sqrt();
    assert!((se[0] - expected_se).abs() < 1e-15);
}

#[test]
fn row_loss_clamps_binomial_probability() {
    // glmnet also takes log(1 − p) of the clamped p = 1 − 1e-5, which
    // rounds to slightly more than 1e-5.
    let worst_false = -2.0 * (1.0 - (1.0 - PROBABILITY_CLAMP)).ln();
    assert_eq!(row_loss(Family::Binomial, 100.0, false), worst_false);
    assert_eq!(
        row_loss(Family::Binomial, -100.0, true),
        -2.0 * PROBABILITY_CLAMP.ln()
    );
    assert!((row_loss(Family::Binomial, 0.0, true) - 2.0 * 2f64.ln()).abs() < 1e-15);
    assert_eq!(row_loss(Family::Gaussian, 0.25, true), 0.5625);
    assert_eq!(row_loss(Family::Gaussian, 0.25, false), 0.0625);
}

#[test]
fn selection_falls_back_to_first_nonzero() {
    let path = hand_made_path(array![[0.0, 0.0], [0.0, 0.0], [0.0, 0.5], [0.3, 0.6]]);
    let selection = select_features(&path, 1, None);
    assert!(selection.fell_back);
    assert_eq!(selection.index, 2);
    assert_eq!(selection.features, vec![1]);

    let selection = select_features(&path, 3, None);
    assert!(!selection.fell_back);
    assert_eq!(selection.features, vec![0, 1]);
}

#[test]
fn selection_reports_empty_path() {
    let path = hand_made_path(Array2::zeros((3, 2)));
    let selection = select_features(&path, 0, None);
    assert!(selection.no_feature_on_path);
    assert!(!selection.fell_back);
    assert!(selection.features.is_empty());
}

#[test]
fn selection_cap_keeps_largest_coefficients() {
    let path = hand_made_path(array![[0.2, -0.9, 0.5, -0.5]]);
    let selection = select_features(&path, 0, Some(2));
    assert!(selection.capped);
    // |−0.9| first, then the tie 0.5 / −0.5 goes to the lower index.
    assert_eq!(selection.features, vec![1, 2]);
    assert_eq!(selection.coefficients, array![0.0, -0.9, 0.5, 0.0]);

    let uncapped = select_features(&path, 0, Some(4));
    assert!(!uncapped.capped);
    assert_eq!(uncapped.features, vec![0, 1, 2, 3]);
}

#[test]
fn lasso_cv_selects_informative_features() {
    let (z, y) = problem();
    for family in [Family::Binomial, Family::Gaussian] {
        let cv = lasso_cv(z.view(), &y, &params(family)).unwrap();
        assert!(cv.selected.contains(&1), "{family:?}: {:?}", cv.selected);
        assert!(cv.selected.contains(&5), "{family:?}: {:?}", cv.selected);
        assert_eq!(
            cv.fold_ids,
            vec![stratified_fold_ids(&y, 4, 42, 0).unwrap()]
        );
        assert_eq!(cv.cv_mean.len(), 20);
        assert_eq!(cv.fold_losses[0].dim(), (4, 20));
        assert!(cv.index_1se <= cv.index_min);
        assert_eq!(cv.chosen_index, cv.index_min);
        assert_eq!(cv.coefficients, cv.path.coefficients.row(cv.chosen_index));
        assert_eq!(cv.intercept, cv.path.intercepts[cv.chosen_index]);
    }
}

#[test]
fn lasso_cv_one_se_is_sparser() {
    let (z, y) = problem();
    let one_se = LassoParams {
        choose: LambdaChoice::OneSe,
        folds: 4,
        n_lambda: 20,
        ..LassoParams::default()
    }
    .validate()
    .unwrap();
    let cv = lasso_cv(z.view(), &y, &one_se).unwrap();
    assert_eq!(cv.chosen_index, cv.index_1se);
    assert!(cv.selected.len() <= cv.path.nonzero(cv.index_min).len());
}

#[test]
fn repeats_average_partition_curves() {
    let (z, y) = problem();
    let base = params(Family::Binomial);
    let lambdas = crate::stats::lasso::lambda_grid(z.view(), &y, &base).unwrap();
    let first = stratified_fold_ids(&y, 4, 42, 0).unwrap();
    let second = stratified_fold_ids(&y, 4, 42, 1).unwrap();

    let both = lasso_cv_with_folds(
        z.view(),
        &y,
        &lambdas,
        &[first.clone(), second.clone()],
        &base,
    )
    .unwrap();
    let only_first = lasso_cv_with_folds(z.view(), &y, &lambdas, &[first], &base).unwrap();
    let only_second = lasso_cv_with_folds(z.view(), &y, &lambdas, &[second], &base).unwrap();
    for index in 0..lambdas.len() {
        let mean = (only_first.cv_mean[index] + only_second.cv_mean[index]) / 2.0;
        let se = (only_first.cv_se[index] + only_second.cv_se[index]) / 2.0;
        assert!(
            (both.cv_mean[index] - mean).abs() < 1e-12,
            "mean at {index}"
        );
        assert!((both.cv_se[index] - se).abs() < 1e-12, "se at {index}");
    }

    let repeated = LassoParams {
        repeats: 2,
        folds: 4,
        n_lambda: 20,
        ..LassoParams::default()
    }
    .validate()
    .unwrap();
    let from_params = lasso_cv(z.view(), &y, &repeated).unwrap();
    assert_eq!(from_params.cv_mean, both.cv_mean);
}

#[test]
fn lasso_cv_rejects_single_class_training_fold() {
    // The only positive row is in fold 0, so fold 0's training rows are
    // all false.
    let z = array![[1.0], [0.5], [-0.5], [-1.0], [0.2], [0.1]];
    let y = [true, false, false, false, false, false];
    let ids = vec![0, 0, 1, 1, 2, 2];
    let error = lasso_cv_with_folds(
        z.view(),
        &y,
        &[0.1, 0.05],
        std::slice::from_ref(&ids),
        &params(Family::Binomial),
    )
    .unwrap_err();
    assert_eq!(
        error,
        StatsError::SingleClassFold {
            repeat: 0,
            fold: 0,
            class: false
        }
    );

    // The Gaussian fit of a constant label is defined, so it runs.
    assert!(
        lasso_cv_with_folds(
            z.view(),
            &y,
            &[0.1, 0.05],
            &[ids],
            &params(Family::Gaussian)
        )
        .is_ok()
    );
}

#[test]
fn lasso_cv_rejects_bad_fold_ids() {
    let (z, y) = problem();
    let lambdas = [0.1, 0.05];
    let binomial = params(Family::Binomial);
    assert_eq!(
        lasso_cv_with_folds(z.view(), &y, &lambdas, &[], &binomial).unwrap_err(),
        StatsError::Empty { input: "fold_ids" }
    );
    let good: Vec<usize> = (0..40).map(|row| row % 3).collect();
    // Ids 0 and 2 only: fold 1 of the second partition (repeat 1) is empty.
    let gap: Vec<usize> = (0..40)
        .map(|row| if row % 2 == 0 { 0 } else { 2 })
        .collect();
    assert_eq!(
        lasso_cv_with_folds(z.view(), &y, &lambdas, &[good, gap], &binomial).unwrap_err(),
        StatsError::EmptyFold {
            repeat: 1,
            fold: 1,
            folds: 3
        }
    );
}
