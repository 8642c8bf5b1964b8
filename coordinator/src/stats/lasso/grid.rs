//! The λ path: λ_max and the log-spaced grid below it.

use ndarray::ArrayView2;

use super::params::ValidLassoParams;
use crate::stats::StatsError;
use crate::stats::validate::{check_finite_matrix, check_same_length, count_classes};

/// Computes `λ_max = max_f |Σ_i z_if (y_i − ȳ)| / n`, the smallest λ at
/// which every LASSO coefficient is zero.
///
/// The same value holds for both families: at β = 0 with the intercept at its
/// optimum (logit ȳ or ȳ), the gradient of the smooth part with respect to
/// β_f is `−Σ_i z_if (y_i − ȳ) / n` for the binomial and for the Gaussian
/// loss. This is glmnet 4.1-6's first λ (`standardize = FALSE`) and
/// scikit-learn 1.9.1's `alpha_max` in `LassoCV`.
///
/// # Errors
///
/// - [`StatsError::LengthMismatch`] if `z` and `y` have different row counts.
/// - [`StatsError::Empty`] if `z` has no columns, [`StatsError::Empty`] or
///   [`StatsError::SingleClass`] if `y` is empty or has one class.
/// - [`StatsError::NonFiniteCell`] for the first NaN or infinity in `z`.
/// - [`StatsError::LambdaMaxZero`] if every column is orthogonal to the
///   centred labels, for example when all columns are constant.
pub fn lambda_max(z: ArrayView2<f64>, y: &[bool]) -> Result<f64, StatsError> {
    check_lasso_input(z, y)?;
    let lambda_max = lambda_max_unchecked(z, y);
    if lambda_max == 0.0 {
        return Err(StatsError::LambdaMaxZero);
    }
    Ok(lambda_max)
}

/// Builds the λ path: `n_lambda` values from λ_max down to `ε · λ_max`,
/// evenly spaced on the log scale, with ε from
/// [`ValidLassoParams::lambda_min_ratio`] for the shape of `z`.
///
/// `λ_k = λ_max · ε^(k / (n_lambda − 1))` for k = 0 … n_lambda − 1, so the
/// first value is exactly λ_max. glmnet 4.1-6 builds the same values by
/// repeated multiplication and scikit-learn 1.9.1 by `np.logspace`, which
/// differ from these by rounding only.
///
/// # Errors
///
/// The errors of [`lambda_max`].
pub fn lambda_grid(
    z: ArrayView2<f64>,
    y: &[bool],
    params: &ValidLassoParams,
) -> Result<Vec<f64>, StatsError> {
    let lambda_max = lambda_max(z, y)?;
    let ratio = params.lambda_min_ratio(z.nrows(), z.ncols());
    Ok(log_spaced(lambda_max, ratio, params.n_lambda()))
}

/// Checks the inputs shared by every LASSO entry point.
pub(super) fn check_lasso_input(z: ArrayView2<f64>, y: &[bool]) -> Result<(), StatsError> {
    check_same_length("z", z.nrows(), "y", y.len())?;
    count_classes(y)?;
    if z.ncols() == 0 {
        return Err(StatsError::Empty { input: "z columns" });
    }
    check_finite_matrix("z", z)
}

/// λ_max on input that [`check_lasso_input`] accepted. Constant columns are
/// skipped, as the solvers leave them out: their exact sum is 0, but the
/// rounded one need not be.
pub(super) fn lambda_max_unchecked(z: ArrayView2<f64>, y: &[bool]) -> f64 {
    let n = y.len() as f64;
    let y_mean = y.iter().filter(|&&label| label).count() as f64 / n;
    let mut sums = vec![0.0; z.ncols()];
    for (row, &label) in z.rows().into_iter().zip(y) {
        let centred = if label { 1.0 - y_mean } else { -y_mean };
        for (sum, &value) in sums.iter_mut().zip(row) {
            *sum += value * centred;
        }
    }
    let first_row = z.row(0);
    let constant: Vec<bool> = (0..z.ncols())
        .map(|column| {
            z.column(column)
                .iter()
                .all(|&value| value == first_row[column])
        })
        .collect();
    sums.iter()
        .zip(&constant)
        .filter(|&(_, &is_constant)| !is_constant)
        .fold(0.0, |max, (&sum, _)| f64::max(max, sum.abs() / n))
}

/// `count` values from `lambda_max` down to `ratio · lambda_max`, evenly
/// spaced on the log scale.
pub(super) fn log_spaced(lambda_max: f64, ratio: f64, count: usize) -> Vec<f64> {
    let log_ratio = ratio.ln();
    let last = (count - 1) as f64;
    (0..count)
        .map(|k| {
            if k == 0 {
                lambda_max
            } else {
                lambda_max * (log_ratio * k as f64 / last).exp()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::stats::lasso::LassoParams;

    #[test]
    fn lambda_max_is_largest_scaled_covariance() {
        // ȳ = 0.5, y − ȳ = [0.5, −0.5, 0.5, −0.5]
        let z = array![[1.0, 2.0], [-1.0, 0.0], [0.5, -2.0], [-0.5, 0.0]];
        let y = [true, false, true, false];
        // column 0: (0.5 + 0.5 + 0.25 + 0.25) / 4 = 0.375
        // column 1: (1.0 + 0.0 − 1.0 + 0.0) / 4 = 0
        assert_eq!(lambda_max(z.view(), &y).unwrap(), 0.375);
    }

    #[test]
    fn lambda_grid_is_log_spaced_from_lambda_max() {
        let z = array![[1.0, 2.0], [-1.0, 0.0], [0.5, -2.0], [-0.5, 0.0]];
        let y = [true, false, true, false];
        let params = LassoParams {
            n_lambda: 5,
            ..LassoParams::default()
        }
        .validate()
        .unwrap();
        // 4 rows, 2 features: glmnet's rule gives ε = 1e-4.
        let grid = lambda_grid(z.view(), &y, &params).unwrap();
        assert_eq!(grid.len(), 5);
        assert_eq!(grid[0], 0.375);
        for (k, &lambda) in grid.iter().enumerate() {
            let expected = 0.375 * 10f64.powf(-(k as f64));
            assert!((lambda / expected - 1.0).abs() < 1e-14, "λ_{k} = {lambda}");
        }
    }

    #[test]
    fn lambda_max_rejects_uninformative_features() {
        let z = array![[1.0], [1.0], [1.0]];
        assert_eq!(
            lambda_max(z.view(), &[true, false, true]).unwrap_err(),
            StatsError::LambdaMaxZero
        );
    }

    #[test]
    fn lambda_max_rejects_bad_input() {
        let z = array![[1.0, 2.0], [f64::NAN, 0.0], [0.5, -2.0]];
        assert!(matches!(
            lambda_max(z.view(), &[true, false, true]).unwrap_err(),
            StatsError::NonFiniteCell {
                row: 1,
                column: 0,
                ..
            }
        ));
        assert!(matches!(
            lambda_max(z.view(), &[true, false]).unwrap_err(),
            StatsError::LengthMismatch {
                left: 3,
                right: 2,
                ..
            }
        ));
        assert!(matches!(
            lambda_max(z.view(), &[true, true, true]).unwrap_err(),
            StatsError::SingleClass {
                class: true,
                count: 3
            }
        ));
        let no_columns = ndarray::Array2::<f64>::zeros((3, 0));
        assert_eq!(
            lambda_max(no_columns.view(), &[true, false, true]).unwrap_err(),
            StatsError::Empty { input: "z columns" }
        );
    }
}
