//! Agreement with glmnet 4.1-6 and scikit-learn 1.9.1 on stored fixtures.
//!
//! `coordinator/tests/fixtures/lasso.json` is written by
//! `coordinator/tests/fixtures/make_lasso_fixtures.py`, whose header pins
//! the versions. Every reference fit there is iterative, so each tolerance
//! below is set by how tightly both sides converge, not by rounding.

use ndarray::Array2;
use serde::Deserialize;

use super::{Family, LassoParams, ValidLassoParams, lasso_cv_with_folds, lasso_path};

const FIXTURE: &str = include_str!("../../../tests/fixtures/lasso.json");

/// Gaussian path against scikit-learn `Lasso(tol=1e-14)`, our tolerance
/// 1e-20. Both solve the same convex problem by coordinate descent, and
/// scikit-learn's duality-gap stop leaves the larger error: the measured
/// largest difference is 2.3e-9 on the wide problem and 2.2e-12 on the tall
/// one.
const GAUSSIAN_PATH_TOLERANCE: f64 = 1e-8;

/// Binomial path against glmnet `thresh = 1e-14`, our tolerance also 1e-14.
/// The two run the same IRLS and coordinate-descent steps in the same order,
/// so they stop at the same iterate: the measured largest difference is
/// 9e-16. The tolerance leaves room for another summation order or FMA
/// contraction, which changes the iterates by rounding only.
const BINOMIAL_PATH_TOLERANCE: f64 = 1e-9;

/// Binomial path at the default tolerance 1e-7 against the tight glmnet
/// reference. The default stops once no coordinate moves by more than about
/// sqrt(1e-7 · D0 / h_f); the measured largest difference is 2.5e-3.
const BINOMIAL_DEFAULT_TOLERANCE: f64 = 1e-2;

/// CV mean and standard error of the binomial deviance against
/// `cv.glmnet(thresh = 1e-14)`, relative; measured largest 2.6e-7 (for the
/// standard error).
const CV_RELATIVE_TOLERANCE: f64 = 1e-6;

/// Gaussian CV fold losses against `LassoCV(tol=1e-14)`; measured largest
/// difference 2.3e-11.
const GAUSSIAN_CV_TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    versions: Versions,
    problems: Problems,
    gaussian_path: Vec<PathCase>,
    binomial_path: Vec<PathCase>,
    binomial_cv: BinomialCv,
    gaussian_cv: GaussianCv,
}

#[derive(Deserialize)]
struct Versions {
    #[serde(rename = "scikit-learn")]
    scikit_learn: String,
    glmnet: String,
}

#[derive(Deserialize)]
struct Problems {
    tall: Problem,
    wide: Problem,
}

#[derive(Deserialize)]
struct Problem {
    z: Vec<Vec<f64>>,
    y: Vec<bool>,
}

#[derive(Deserialize)]
struct PathCase {
    problem: String,
    lambdas: Vec<f64>,
    intercepts: Vec<f64>,
    coefficients: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct BinomialCv {
    fold_ids: Vec<usize>,
    lambdas: Vec<f64>,
    cvm: Vec<f64>,
    cvsd: Vec<f64>,
    lambda_min: f64,
    lambda_1se: f64,
    index_min: usize,
    index_1se: usize,
}

#[derive(Deserialize)]
struct GaussianCv {
    fold_ids: Vec<usize>,
    lambdas: Vec<f64>,
    /// n_lambda × folds.
    mse_path: Vec<Vec<f64>>,
    alpha: f64,
    index_min: usize,
}

fn fixture() -> Fixture {
    serde_json::from_str(FIXTURE).expect("lasso.json must parse")
}

impl Fixture {
    fn problem(&self, name: &str) -> &Problem {
        match name {
            "tall" => &self.problems.tall,
            "wide" => &self.problems.wide,
            other => panic!("unknown fixture problem {other}"),
        }
    }
}

impl Problem {
    fn matrix(&self) -> Array2<f64> {
        let columns = self.z[0].len();
        Array2::from_shape_fn((self.z.len(), columns), |(row, column)| self.z[row][column])
    }
}

fn params(family: Family, tolerance: f64) -> ValidLassoParams {
    LassoParams {
        family,
        tolerance,
        max_passes: 10_000_000,
        ..LassoParams::default()
    }
    .validate()
    .unwrap()
}

/// Largest absolute difference between our path and a reference path.
fn largest_path_difference(case: &PathCase, problem: &Problem, params: &ValidLassoParams) -> f64 {
    let z = problem.matrix();
    let path = lasso_path(z.view(), &problem.y, &case.lambdas, params).unwrap();
    let mut largest: f64 = 0.0;
    for (index, expected) in case.coefficients.iter().enumerate() {
        largest = largest.max((path.intercepts[index] - case.intercepts[index]).abs());
        for (feature, &beta) in expected.iter().enumerate() {
            largest = largest.max((path.coefficients[[index, feature]] - beta).abs());
        }
    }
    largest
}

#[test]
fn fixture_records_reference_versions() {
    let fixture = fixture();
    assert_eq!(fixture.versions.scikit_learn, "1.9.1");
    assert_eq!(fixture.versions.glmnet, "4.1.6");
}

#[test]
fn gaussian_path_matches_sklearn_lasso() {
    let fixture = fixture();
    for case in &fixture.gaussian_path {
        let difference = largest_path_difference(
            case,
            fixture.problem(&case.problem),
            &params(Family::Gaussian, 1e-20),
        );
        assert!(
            difference <= GAUSSIAN_PATH_TOLERANCE,
            "{} problem: largest difference {difference:e}",
            case.problem
        );
    }
}

#[test]
fn gaussian_path_keeps_sklearn_zeros() {
    let fixture = fixture();
    for case in &fixture.gaussian_path {
        let problem = fixture.problem(&case.problem);
        let z = problem.matrix();
        let path = lasso_path(
            z.view(),
            &problem.y,
            &case.lambdas,
            &params(Family::Gaussian, 1e-20),
        )
        .unwrap();
        for (index, expected) in case.coefficients.iter().enumerate() {
            let expected_nonzero: Vec<usize> = (0..expected.len())
                .filter(|&f| expected[f] != 0.0)
                .collect();
            assert_eq!(
                path.nonzero(index),
                expected_nonzero,
                "{} problem, λ index {index}",
                case.problem
            );
        }
    }
}

#[test]
fn binomial_path_matches_glmnet() {
    let fixture = fixture();
    for case in &fixture.binomial_path {
        let difference = largest_path_difference(
            case,
            fixture.problem(&case.problem),
            &params(Family::Binomial, 1e-14),
        );
        assert!(
            difference <= BINOMIAL_PATH_TOLERANCE,
            "{} problem: largest difference {difference:e}",
            case.problem
        );
    }
}

#[test]
fn binomial_default_tolerance_is_close_to_glmnet() {
    let fixture = fixture();
    for case in &fixture.binomial_path {
        let difference = largest_path_difference(
            case,
            fixture.problem(&case.problem),
            &params(Family::Binomial, 1e-7),
        );
        assert!(
            difference <= BINOMIAL_DEFAULT_TOLERANCE,
            "{} problem: largest difference {difference:e}",
            case.problem
        );
    }
}

#[test]
fn binomial_cv_matches_cv_glmnet() {
    let fixture = fixture();
    let reference = &fixture.binomial_cv;
    let problem = fixture.problem("tall");
    let z = problem.matrix();
    let cv = lasso_cv_with_folds(
        z.view(),
        &problem.y,
        &reference.lambdas,
        std::slice::from_ref(&reference.fold_ids),
        &params(Family::Binomial, 1e-14),
    )
    .unwrap();

    for index in 0..reference.lambdas.len() {
        let mean_error = (cv.cv_mean[index] / reference.cvm[index] - 1.0).abs();
        assert!(
            mean_error <= CV_RELATIVE_TOLERANCE,
            "cvm at λ index {index}: got {}, expected {}",
            cv.cv_mean[index],
            reference.cvm[index]
        );
        let se_error = (cv.cv_se[index] / reference.cvsd[index] - 1.0).abs();
        assert!(
            se_error <= CV_RELATIVE_TOLERANCE,
            "cvsd at λ index {index}: got {}, expected {}",
            cv.cv_se[index],
            reference.cvsd[index]
        );
    }
    assert_eq!(cv.index_min, reference.index_min);
    assert_eq!(cv.index_1se, reference.index_1se);
    assert_eq!(cv.lambda_min, reference.lambda_min);
    assert_eq!(cv.lambda_1se, reference.lambda_1se);
    assert_eq!(cv.chosen_index, reference.index_min);
    assert!(!cv.selected.is_empty());
}

#[test]
fn gaussian_cv_matches_sklearn_lasso_cv() {
    let fixture = fixture();
    let reference = &fixture.gaussian_cv;
    let problem = fixture.problem("tall");
    let z = problem.matrix();
    let cv = lasso_cv_with_folds(
        z.view(),
        &problem.y,
        &reference.lambdas,
        std::slice::from_ref(&reference.fold_ids),
        &params(Family::Gaussian, 1e-20),
    )
    .unwrap();

    let losses = &cv.fold_losses[0];
    for (index, fold_values) in reference.mse_path.iter().enumerate() {
        for (fold, &expected) in fold_values.iter().enumerate() {
            let difference = (losses[[fold, index]] - expected).abs();
            assert!(
                difference <= GAUSSIAN_CV_TOLERANCE,
                "fold {fold}, λ index {index}: got {}, expected {expected}",
                losses[[fold, index]]
            );
        }
        let mean = fold_values.iter().sum::<f64>() / fold_values.len() as f64;
        assert!(
            (cv.cv_mean[index] - mean).abs() <= GAUSSIAN_CV_TOLERANCE,
            "mean at λ index {index}"
        );
    }
    assert_eq!(cv.index_min, reference.index_min);
    assert_eq!(cv.lambda_min, reference.alpha);
}
