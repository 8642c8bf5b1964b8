use ndarray::{Array2, array, s};
use serde_json::Value;

use super::super::logistic::fit_l2;
use super::super::test_fixtures::{labels, matrix, section, vector};
use super::*;

/// Coefficients of the fixture fits after Newton's method converged to
/// `TIGHT.tolerance`. Both sides solve the same smooth convex problem to
/// near machine precision, so agreement is limited only by rounding.
const REFERENCE_TOLERANCE: f64 = 1e-8;

/// Pooled against federated: the same iterates, with the sums added in a
/// different order.
const FEDERATED_TOLERANCE: f64 = 1e-10;

/// linfa-logistic 0.8.1 stops L-BFGS at a gradient norm of 1e-10 per row
/// (see `logistic::GRADIENT_TOLERANCE_PER_ROW`) and on f64-flat loss, so it
/// is only this close to the optimum that Newton's method reaches.
const LINFA_TOLERANCE: f64 = 1e-6;

/// A stopping rule tight enough that one more Newton step changes the
/// coefficients by rounding only.
const TIGHT: NewtonOptions = NewtonOptions {
    max_iterations: 50,
    tolerance: 1e-13,
};

fn assert_close(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{quantity}: got {actual}, expected {expected} (tolerance {tolerance:e})"
    );
}

fn assert_fit(fit: &NewtonFit, expected: &[f64], tolerance: f64, case: &str) {
    assert_eq!(fit.coefficients.len() + 1, expected.len(), "{case}: length");
    assert_close(
        fit.intercept,
        expected[0],
        tolerance,
        &format!("{case}: intercept"),
    );
    for (index, &wanted) in expected[1..].iter().enumerate() {
        assert_close(
            fit.coefficients[index],
            wanted,
            tolerance,
            &format!("{case}: coefficient {index}"),
        );
    }
}

fn fixture() -> (Value, Array2<f64>, Vec<bool>) {
    let data = section("logistic");
    let x = matrix(&data["x"]);
    let y = labels(&data["y"]);
    (data, x, y)
}

#[test]
fn fit_newton_matches_statsmodels_logit() {
    let (data, x, y) = fixture();
    let reference = &data["statsmodels_logit"];
    let fit = fit_newton(x.view(), &y, Penalty::None, &TIGHT).unwrap();
    assert!(fit.converged);
    assert!(!fit.separation_flag);
    assert_fit(
        &fit,
        &vector(&reference["params"]),
        REFERENCE_TOLERANCE,
        "tight",
    );
    let deviance = -2.0 * reference["llf"].as_f64().unwrap();
    assert_close(fit.deviance, deviance, 1e-9, "deviance");
}

#[test]
fn fit_newton_default_rule_matches_statsmodels_logit() {
    // R's rule stops once the deviance changes by less than 1e-8
    // relative, one Newton step before the coefficients settle to
    // rounding. On the fixture that leaves them 6.6e-10 from statsmodels.
    const R_RULE_TOLERANCE: f64 = 1e-8;
    let (data, x, y) = fixture();
    let fit = fit_newton(x.view(), &y, Penalty::None, &NewtonOptions::default()).unwrap();
    assert!(fit.converged);
    assert!(fit.iterations <= 25, "{} iterations", fit.iterations);
    assert_fit(
        &fit,
        &vector(&data["statsmodels_logit"]["params"]),
        R_RULE_TOLERANCE,
        "default options",
    );
}

#[test]
fn fit_newton_l2_matches_sklearn() {
    let (data, x, y) = fixture();
    for case in data["sklearn_l2"].as_array().unwrap() {
        let c = case["C"].as_f64().unwrap();
        let fit = fit_newton(x.view(), &y, Penalty::L2 { c }, &TIGHT).unwrap();
        assert!(fit.converged, "C = {c}");
        assert!(!fit.separation_flag, "C = {c}");
        assert_fit(
            &fit,
            &vector(&case["params"]),
            REFERENCE_TOLERANCE,
            &format!("C = {c}"),
        );
    }
}

#[test]
fn fit_newton_l2_matches_linfa_fit() {
    let (_, x, y) = fixture();
    for c in [1.0, 0.1] {
        let newton = fit_newton(x.view(), &y, Penalty::L2 { c }, &TIGHT).unwrap();
        let linfa = fit_l2(x.view(), &y, c).unwrap();
        assert_close(
            newton.intercept,
            linfa.intercept,
            LINFA_TOLERANCE,
            "intercept",
        );
        for (index, (a, b)) in newton
            .coefficients
            .iter()
            .zip(&linfa.coefficients)
            .enumerate()
        {
            assert_close(
                *a,
                *b,
                LINFA_TOLERANCE,
                &format!("C = {c}: coefficient {index}"),
            );
        }
    }
}

#[test]
fn fit_newton_with_offset_matches_statsmodels_glm() {
    let (data, x, y) = fixture();
    let offset = vector(&data["offset"]);
    let fit = fit_newton_with_offset(x.view(), &y, &offset, Penalty::None, &TIGHT).unwrap();
    assert!(fit.converged);
    assert_fit(
        &fit,
        &vector(&data["statsmodels_glm_offset"]["params"]),
        REFERENCE_TOLERANCE,
        "offset",
    );
}

/// Splits the fixture rows into three sites of unequal size.
fn sites(x: &Array2<f64>, y: &[bool]) -> Vec<(Array2<f64>, Vec<bool>)> {
    let bounds = [0, 17, 29, x.nrows()];
    bounds
        .windows(2)
        .map(|range| {
            (
                x.slice(s![range[0]..range[1], ..]).to_owned(),
                y[range[0]..range[1]].to_vec(),
            )
        })
        .collect()
}

fn federated_fit(
    sites: &[(Array2<f64>, Vec<bool>)],
    n_features: usize,
    penalty: Penalty,
) -> NewtonFit {
    fit_newton_rounds(n_features, penalty, &NewtonOptions::default(), |beta| {
        let mut total = LogisticSums::zeros(n_features + 1);
        for (x_site, y_site) in sites {
            total.add(&LogisticSums::at(x_site.view(), y_site, beta)?)?;
        }
        Ok(total)
    })
    .unwrap()
}

#[test]
fn federated_fit_equals_pooled_fit() {
    let (_, x, y) = fixture();
    let sites = sites(&x, &y);
    for penalty in [
        Penalty::None,
        Penalty::L2 { c: 1.0 },
        Penalty::L2 { c: 0.1 },
    ] {
        let pooled = fit_newton(x.view(), &y, penalty, &NewtonOptions::default()).unwrap();
        let federated = federated_fit(&sites, x.ncols(), penalty);
        assert_eq!(pooled.iterations, federated.iterations, "{penalty:?}");
        assert_eq!(pooled.converged, federated.converged, "{penalty:?}");
        let mut expected = vec![pooled.intercept];
        expected.extend(pooled.coefficients.iter());
        assert_fit(
            &federated,
            &expected,
            FEDERATED_TOLERANCE,
            &format!("{penalty:?}"),
        );
        assert_close(
            federated.deviance,
            pooled.deviance,
            FEDERATED_TOLERANCE,
            "deviance",
        );
    }
}

#[test]
fn federated_sums_equal_pooled_sums() {
    let (_, x, y) = fixture();
    let beta = array![0.3, -0.5, 0.25, 1.0];
    let pooled = LogisticSums::at(x.view(), &y, beta.view()).unwrap();
    let mut total = LogisticSums::zeros(4);
    for (x_site, y_site) in sites(&x, &y) {
        total
            .add(&LogisticSums::at(x_site.view(), &y_site, beta.view()).unwrap())
            .unwrap();
    }
    assert_eq!(total.n, pooled.n);
    assert_eq!(total.n_positive, pooled.n_positive);
    assert_close(total.deviance, pooled.deviance, 1e-12, "deviance");
    for (a, b) in total.gradient.iter().zip(&pooled.gradient) {
        assert_close(*a, *b, 1e-12, "gradient");
    }
    for (a, b) in total.hessian.iter().zip(&pooled.hessian) {
        assert_close(*a, *b, 1e-12, "hessian");
    }
    for j in 0..4 {
        for k in 0..4 {
            assert_eq!(pooled.hessian[[j, k]], pooled.hessian[[k, j]], "symmetry");
        }
    }
}

#[test]
fn logistic_sums_empty_site_is_identity() {
    let x = Array2::<f64>::zeros((0, 2));
    let sums = LogisticSums::at(x.view(), &[], array![0.1, 0.2, 0.3].view()).unwrap();
    assert_eq!(sums, LogisticSums::zeros(3));
}

#[test]
fn logistic_sums_reject_mismatched_sites() {
    let mut total = LogisticSums::zeros(3);
    let error = total.add(&LogisticSums::zeros(4)).unwrap_err();
    assert!(
        matches!(error, StatsError::AggregateMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn logistic_sums_reject_bad_input() {
    let x = array![[0.5, 1.0], [f64::NAN, 0.0]];
    let error =
        LogisticSums::at(x.view(), &[true, false], array![0.0, 0.0, 0.0].view()).unwrap_err();
    assert!(
        matches!(
            error,
            StatsError::NonFiniteCell {
                row: 1,
                column: 0,
                ..
            }
        ),
        "{error:?}"
    );

    let x = array![[0.5, 1.0], [0.0, 0.0]];
    let error = LogisticSums::at(x.view(), &[true, false], array![0.0, 0.0].view()).unwrap_err();
    assert_eq!(
        error,
        StatsError::ColumnMismatch {
            input: "beta",
            expected: 3,
            found: 2
        }
    );
}

// Perfect separation on one feature: the unpenalised MLE is at infinity.
fn separated() -> (Array2<f64>, Vec<bool>) {
    (
        array![[-2.0], [-1.5], [-1.0], [-0.5], [0.5], [1.0], [1.5], [2.0]],
        vec![false, false, false, false, true, true, true, true],
    )
}

#[test]
fn fit_newton_flags_separation() {
    let (x, y) = separated();
    let fit = fit_newton(x.view(), &y, Penalty::None, &NewtonOptions::default()).unwrap();
    assert!(fit.separation_flag, "{fit:?}");
    assert!(fit.coefficients[0] > 5.0, "{fit:?}");
}

#[test]
fn fit_with_fallback_refits_with_c_one() {
    let (x, y) = separated();
    let fit = fit_with_fallback(x.view(), &y, &NewtonOptions::default()).unwrap();
    assert!(fit.separation_flag);
    assert!(fit.converged);
    assert_eq!(fit.penalty, Penalty::L2 { c: 1.0 });

    let direct = fit_newton(
        x.view(),
        &y,
        Penalty::L2 { c: 1.0 },
        &NewtonOptions::default(),
    )
    .unwrap();
    assert!(!direct.separation_flag);
    assert_eq!(fit.coefficients, direct.coefficients);
    assert_eq!(fit.intercept, direct.intercept);
}

#[test]
fn fit_with_fallback_keeps_unpenalised_fit() {
    let (data, x, y) = fixture();
    let fit = fit_with_fallback(x.view(), &y, &TIGHT).unwrap();
    assert_eq!(fit.penalty, Penalty::None);
    assert!(!fit.separation_flag);
    assert_fit(
        &fit,
        &vector(&data["statsmodels_logit"]["params"]),
        REFERENCE_TOLERANCE,
        "no separation",
    );
}

#[test]
fn fit_newton_flags_iteration_limit() {
    let (_, x, y) = fixture();
    let options = NewtonOptions {
        max_iterations: 1,
        tolerance: 1e-8,
    };
    let fit = fit_newton(x.view(), &y, Penalty::None, &options).unwrap();
    assert_eq!(fit.iterations, 1);
    assert!(!fit.converged);
    assert!(fit.separation_flag);
}

#[test]
fn fit_newton_rejects_collinear_columns() {
    let (_, x, y) = fixture();
    let mut doubled = Array2::<f64>::zeros((x.nrows(), 2));
    doubled.column_mut(0).assign(&x.column(0));
    doubled
        .column_mut(1)
        .assign(&x.column(0).mapv(|value| 2.0 * value));
    let error =
        fit_newton(doubled.view(), &y, Penalty::None, &NewtonOptions::default()).unwrap_err();
    assert!(
        matches!(error, StatsError::SingularHessian { .. }),
        "{error:?}"
    );

    // The penalty makes the same system solvable.
    let fit = fit_newton(
        doubled.view(),
        &y,
        Penalty::L2 { c: 1.0 },
        &NewtonOptions::default(),
    )
    .unwrap();
    assert!(fit.converged);
}

#[test]
fn fit_newton_rejects_bad_parameters() {
    let (_, x, y) = fixture();
    for c in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error =
            fit_newton(x.view(), &y, Penalty::L2 { c }, &NewtonOptions::default()).unwrap_err();
        assert!(
            matches!(error, StatsError::InvalidParameter { name: "C", .. }),
            "{error:?}"
        );
    }
    let error = fit_newton(
        x.view(),
        &y,
        Penalty::None,
        &NewtonOptions {
            max_iterations: 0,
            tolerance: 1e-8,
        },
    )
    .unwrap_err();
    assert!(matches!(
        error,
        StatsError::InvalidParameter {
            name: "max_iterations",
            ..
        }
    ));
    let error = fit_newton(x.view(), &vec![true; x.nrows()], Penalty::None, &TIGHT).unwrap_err();
    assert_eq!(
        error,
        StatsError::SingleClass {
            class: true,
            count: x.nrows()
        }
    );
}

#[test]
fn fit_newton_intercept_only() {
    // With no features the MLE intercept is logit(mean y) = log(3/5).
    let x = Array2::<f64>::zeros((8, 0));
    let y = [true, false, true, false, true, false, false, false];
    let fit = fit_newton(x.view(), &y, Penalty::None, &TIGHT).unwrap();
    assert_close(fit.intercept, (3.0f64 / 5.0).ln(), 1e-12, "intercept");
    assert!(fit.coefficients.is_empty());
}
