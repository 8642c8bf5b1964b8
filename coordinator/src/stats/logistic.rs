//! L2-penalised logistic regression, fitted with linfa-logistic 0.8.1.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, ArrayView2};

use super::StatsError;
use super::validate::{check_finite_matrix, check_same_length, count_classes};

/// L-BFGS stops when the L2 norm of the gradient of the summed penalised loss
/// falls below this value times the number of rows, that is 1e-10 per row.
/// scikit-learn's default stops at 1e-4 on the largest gradient component of
/// its per-row (mean) loss. argmin 0.11's L-BFGS also stops when the loss
/// changes by less than f64 epsilon between iterations, which on larger data
/// usually happens first. On the 24×3 test data the coefficients differ from
/// scikit-learn 1.9.1 (`tol=1e-12`) by at most 4.2e-9.
const GRADIENT_TOLERANCE_PER_ROW: f64 = 1e-10;

/// A fit whose final gradient norm exceeds this value times the number of
/// rows is rejected as not converged. It is looser than the stopping
/// tolerance because L-BFGS also stops when the loss no longer changes in
/// f64, which can happen slightly above the tolerance on large data.
const ACCEPTED_GRADIENT_NORM_PER_ROW: f64 = 1e-6;

/// Maximum number of L-BFGS iterations.
const MAX_ITERATIONS: u64 = 10_000;

/// A fitted binary logistic regression model.
///
/// `log_odds(x) = intercept + x · coefficients` is the log-odds of y = true,
/// whichever class was more frequent in the training labels.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    /// Unpenalised intercept, on the log-odds scale.
    pub intercept: f64,
    /// One coefficient per feature column, on the log-odds scale.
    pub coefficients: Array1<f64>,
}

/// Fits an L2-penalised logistic regression of `y` on the rows of `x`.
///
/// Minimises `Σ log(1 + exp(-s_i (b + x_i · w))) + ‖w‖² / (2 C)` with
/// `s_i = +1` for y = true and -1 for y = false. The intercept b is not
/// penalised. This is the objective of scikit-learn 1.9.1
/// `LogisticRegression(C=c)` with the default L2 penalty and `lbfgs` solver
/// (scikit-learn divides both terms by n, which leaves the minimiser
/// unchanged). linfa-logistic 0.8.1 sums the log-losses and adds
/// `alpha / 2 · ‖w‖²`, so `alpha = 1 / C`.
///
/// The objective is strictly convex when both classes are present, so the
/// minimiser is unique and finite even for perfectly separable data. The
/// coefficients are standardised-scale only if `x` was standardised first,
/// which also keeps L-BFGS well conditioned.
///
/// NOTE: on one 33 × 1 training fold this call did not return within
/// minutes (argmin 0.11's line search has no iteration limit), so the
/// models fit with [`super::irls::fit_newton`] and this function serves as
/// a cross-check of it.
///
/// # Errors
///
/// - [`StatsError::InvalidParameter`] if `c` is not finite and positive.
/// - [`StatsError::LengthMismatch`] if `x` and `y` have different row counts.
/// - [`StatsError::Empty`] or [`StatsError::SingleClass`] if `y` is empty or
///   has one class.
/// - [`StatsError::NonFiniteCell`] for the first NaN or infinity in `x`.
/// - [`StatsError::FitFailed`] if linfa-logistic returns an error, and
///   [`StatsError::NotConverged`] if L-BFGS stops with a gradient norm above
///   `1e-6 · n`.
pub fn fit_l2(x: ArrayView2<f64>, y: &[bool], c: f64) -> Result<LogisticModel, StatsError> {
    if !(c.is_finite() && c > 0.0) {
        return Err(StatsError::InvalidParameter {
            name: "C",
            value: c,
            expected: "a finite number greater than 0",
        });
    }
    check_same_length("x", x.nrows(), "y", y.len())?;
    count_classes(y)?;
    check_finite_matrix("x", x)?;

    let rows = x.nrows() as f64;
    let dataset = Dataset::new(x.to_owned(), Array1::from(y.to_vec()));
    let fitted = LogisticRegression::default()
        .alpha(1.0 / c)
        .with_intercept(true)
        .gradient_tolerance(GRADIENT_TOLERANCE_PER_ROW * rows)
        .max_iterations(MAX_ITERATIONS)
        .fit(&dataset)
        .map_err(|error| StatsError::FitFailed {
            reason: error.to_string(),
        })?;

    // linfa-logistic models the log-odds of its "positive" class, which is
    // the MORE frequent label (the first label seen on a tie). Flip the sign
    // when that class is false, so the model always predicts y = true.
    let orientation = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let model = LogisticModel {
        intercept: orientation * fitted.intercept(),
        coefficients: fitted.params().mapv(|value| orientation * value),
    };

    let gradient_norm = model.penalised_loss_gradient_norm(x, y, 1.0 / c);
    let tolerance = ACCEPTED_GRADIENT_NORM_PER_ROW * rows;
    if gradient_norm.is_nan() || gradient_norm > tolerance {
        return Err(StatsError::NotConverged {
            gradient_norm,
            tolerance,
        });
    }
    Ok(model)
}

impl LogisticModel {
    /// Computes `intercept + x · coefficients` for each row of `x`: the
    /// log-odds of y = true.
    ///
    /// # Errors
    ///
    /// [`StatsError::ColumnMismatch`] if `x` does not have one column per
    /// coefficient, and [`StatsError::NonFiniteCell`] for the first NaN or
    /// infinity.
    pub fn log_odds(&self, x: ArrayView2<f64>) -> Result<Array1<f64>, StatsError> {
        if x.ncols() != self.coefficients.len() {
            return Err(StatsError::ColumnMismatch {
                input: "x",
                expected: self.coefficients.len(),
                found: x.ncols(),
            });
        }
        check_finite_matrix("x", x)?;
        Ok(x.dot(&self.coefficients) + self.intercept)
    }

    /// Computes P(y = true) for each row of `x`, the logistic function of
    /// [`LogisticModel::log_odds`].
    ///
    /// # Errors
    ///
    /// The same as [`LogisticModel::log_odds`].
    pub fn probability(&self, x: ArrayView2<f64>) -> Result<Array1<f64>, StatsError> {
        Ok(self.log_odds(x)?.mapv(logistic))
    }

    /// L2 norm of the gradient of the summed penalised loss at this model.
    /// `x` and `y` must already be validated.
    fn penalised_loss_gradient_norm(&self, x: ArrayView2<f64>, y: &[bool], alpha: f64) -> f64 {
        let log_odds = x.dot(&self.coefficients) + self.intercept;
        let residuals: Array1<f64> = log_odds
            .iter()
            .zip(y)
            .map(|(&z, &label)| logistic(z) - if label { 1.0 } else { 0.0 })
            .collect();
        let coefficient_gradient =
            x.t().dot(&residuals) + self.coefficients.mapv(|value| alpha * value);
        let intercept_gradient = residuals.sum();
        let squared_norm = coefficient_gradient.dot(&coefficient_gradient)
            + intercept_gradient * intercept_gradient;
        squared_norm.sqrt()
    }
}

/// Logistic function `1 / (1 + exp(-z))`, written so that neither branch
/// overflows.
fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let exp_z = z.exp();
        exp_z / (1.0 + exp_z)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, array};

    use super::*;

    /// Both fits are iterative: scikit-learn stops at its `tol` and linfa at
    /// GRADIENT_TOLERANCE_PER_ROW, so agreement is limited by convergence,
    /// not by rounding.
    const ITERATIVE_FIT_TOLERANCE: f64 = 1e-6;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= ITERATIVE_FIT_TOLERANCE,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    fn assert_model(model: &LogisticModel, intercept: f64, coefficients: [f64; 3]) {
        assert_close(model.intercept, intercept, "intercept");
        assert_eq!(model.coefficients.len(), 3);
        for (index, &expected) in coefficients.iter().enumerate() {
            assert_close(
                model.coefficients[index],
                expected,
                &format!("coefficient {index}"),
            );
        }
    }

    // 24 patients, 3 features. Made with
    //   rng = np.random.default_rng(11); X = np.round(rng.normal(0, 1, (24, 3)), 2)
    //   eta = 0.4 + 1.2*X[:, 0] - 0.8*X[:, 1]
    //   y = rng.uniform(size=24) < 1/(1 + np.exp(-eta))      # 15 true, 9 false
    fn features() -> Array2<f64> {
        array![
            [0.03, 1.36, 1.22],
            [-0.51, -0.3, -0.53],
            [0.57, -0.06, 0.75],
            [-1.85, 1.57, -0.1],
            [0.68, -0.14, -0.38],
            [0.46, 0.82, -0.2],
            [-0.15, 0.69, -0.87],
            [-1.51, 0.39, -0.67],
            [-1.92, -0.81, -0.47],
            [-1.19, -1.49, 0.04],
            [0.9, -0.23, -0.74],
            [0.38, 0.72, -0.3],
            [0.54, 1.04, -0.21],
            [-0.81, 0.35, 0.25],
            [1.1, -1.28, -0.66],
            [-0.84, -1.73, 0.13],
            [0.53, -0.74, 1.39],
            [0.82, 0.63, 0.4],
            [0.96, -1.33, 0.61],
            [0.6, -1.77, 0.35],
            [-0.25, 0.78, -0.44],
            [-0.02, 0.34, -0.88],
            [0.6, -0.1, 0.49],
            [-0.52, 1.09, 0.61],
        ]
    }

    const LABELS: [bool; 24] = [
        true, true, true, false, false, true, true, false, false, false, true, true, true, false,
        true, true, true, true, true, true, false, false, true, false,
    ];

    // Expected values: scikit-learn 1.9.1, from
    //   clf = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000).fit(X, y)
    //   clf.intercept_[0], clf.coef_[0]
    // The default tol=1e-4 stops about 4e-4 away (intercept 0.7462723237917237),
    // so the reference is the tightly converged optimum of the same objective.

    #[test]
    fn fit_l2_matches_sklearn_majority_positive() {
        // true is the majority, so linfa's "positive" class is already true.
        let model = fit_l2(features().view(), &LABELS, 1.0).unwrap();
        assert_model(
            &model,
            0.7465543610719881,
            [1.4443092530965402, -0.3641623850868397, 0.46612251122784626],
        );
    }

    #[test]
    fn fit_l2_matches_sklearn_majority_negative() {
        // y = ~y: false is the majority, so linfa's coefficients are flipped.
        let labels: Vec<bool> = LABELS.iter().map(|&label| !label).collect();
        let model = fit_l2(features().view(), &labels, 1.0).unwrap();
        assert_model(
            &model,
            -0.746554361071988,
            [-1.44430925309654, 0.3641623850868397, -0.46612251122784626],
        );
    }

    #[test]
    fn fit_l2_matches_sklearn_balanced_labels() {
        // yb = np.array([True, False] * 12): on a tie linfa takes the first
        // label seen as its "positive" class, here true.
        let labels: Vec<bool> = (0..24).map(|index| index % 2 == 0).collect();
        let model = fit_l2(features().view(), &labels, 1.0).unwrap();
        assert_model(
            &model,
            0.027950494976772513,
            [
                0.7996588668384421,
                -0.04280543126192507,
                0.10014756006335557,
            ],
        );

        // Same counts, but false comes first.
        let flipped: Vec<bool> = labels.iter().map(|&label| !label).collect();
        let model = fit_l2(features().view(), &flipped, 1.0).unwrap();
        assert_model(
            &model,
            -0.027950494976772513,
            [
                -0.7996588668384421,
                0.04280543126192507,
                -0.10014756006335557,
            ],
        );
    }

    #[test]
    fn fit_l2_matches_sklearn_stronger_penalty() {
        // LogisticRegression(C=0.1, tol=1e-12, max_iter=100000)
        let model = fit_l2(features().view(), &LABELS, 0.1).unwrap();
        assert_model(
            &model,
            0.5617426240025438,
            [
                0.46752925041751675,
                -0.1251772579158155,
                0.13720034318795665,
            ],
        );
    }

    #[test]
    fn probability_matches_sklearn_predict_proba() {
        // clf.predict_proba(X[:3])[:, 1] for the C=1.0 fit
        let model = fit_l2(features().view(), &LABELS, 1.0).unwrap();
        let x = features();
        let probabilities = model.probability(x.slice(ndarray::s![..3, ..])).unwrap();
        let expected = [0.703348042275186, 0.4680835622197996, 0.87448965308417];
        for (index, &wanted) in expected.iter().enumerate() {
            assert_close(
                probabilities[index],
                wanted,
                &format!("probability {index}"),
            );
        }

        let log_odds = model.log_odds(x.view()).unwrap();
        for (index, &value) in log_odds.iter().enumerate().take(3) {
            assert_close(
                logistic(value),
                expected[index],
                &format!("logistic(log_odds) {index}"),
            );
        }
    }

    #[test]
    fn fit_l2_separable_data_is_finite() {
        // Perfect separation: the penalty keeps the coefficient finite.
        let x = array![[-2.0], [-1.0], [1.0], [2.0]];
        let model = fit_l2(x.view(), &[false, false, true, true], 1.0).unwrap();
        assert!(model.coefficients[0].is_finite(), "{model:?}");
        assert!(model.coefficients[0] > 0.0, "{model:?}");
        assert!(model.intercept.abs() < ITERATIVE_FIT_TOLERANCE);
    }

    #[test]
    fn fit_l2_rejects_single_class() {
        let error = fit_l2(features().view(), &[true; 24], 1.0).unwrap_err();
        assert_eq!(
            error,
            StatsError::SingleClass {
                class: true,
                count: 24
            }
        );
        assert_eq!(
            error.to_string(),
            "labels contain a single class: all 24 labels are true, but both true and false are required"
        );
    }

    #[test]
    fn fit_l2_rejects_invalid_c() {
        for c in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = fit_l2(features().view(), &LABELS, c).unwrap_err();
            assert!(
                matches!(error, StatsError::InvalidParameter { name: "C", .. }),
                "C = {c}: got {error:?}"
            );
        }
    }

    #[test]
    fn fit_l2_rejects_bad_input() {
        assert_eq!(
            fit_l2(features().view(), &LABELS[..20], 1.0).unwrap_err(),
            StatsError::LengthMismatch {
                left_name: "x",
                left: 24,
                right_name: "y",
                right: 20
            }
        );

        let mut x = features();
        x[[5, 2]] = f64::NAN;
        assert!(matches!(
            fit_l2(x.view(), &LABELS, 1.0).unwrap_err(),
            StatsError::NonFiniteCell {
                row: 5,
                column: 2,
                ..
            }
        ));
    }

    #[test]
    fn log_odds_rejects_wrong_column_count() {
        let model = LogisticModel {
            intercept: 0.5,
            coefficients: array![1.0, -1.0],
        };
        assert_eq!(
            model.log_odds(array![[1.0, 2.0, 3.0]].view()).unwrap_err(),
            StatsError::ColumnMismatch {
                input: "x",
                expected: 2,
                found: 3
            }
        );
        assert_eq!(
            model.log_odds(array![[1.0, 2.0]].view()).unwrap(),
            array![-0.5]
        );
    }

    #[test]
    fn logistic_is_stable_at_extremes() {
        assert_eq!(logistic(0.0), 0.5);
        assert_eq!(logistic(800.0), 1.0);
        assert_eq!(logistic(-800.0), 0.0);
        assert!(logistic(-40.0) > 0.0);
    }
}
