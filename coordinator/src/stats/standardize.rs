//! Column standardisation (z-scores) fitted on training patients only.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::StatsError;
use super::validate::check_finite_matrix;

/// Column means and scales for z-scoring, as scikit-learn 1.9.1
/// `StandardScaler()` with its defaults computes them.
///
/// The scale is the population standard deviation (ddof 0, divisor n). A
/// column that is constant up to rounding gets scale 1, so it transforms to
/// zeros, and its index is listed in `constant_columns`.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Mean of each column.
    pub mean: Array1<f64>,
    /// Population standard deviation of each column, or 1 for a constant column.
    pub scale: Array1<f64>,
    /// Indices of the columns detected as constant, in ascending order.
    pub constant_columns: Vec<usize>,
}

impl Standardizer {
    /// Fits the column means and population standard deviations of `x`
    /// (rows are patients, columns are features).
    ///
    /// The variance uses the corrected two-pass formula
    /// `(Σd² - (Σd)² / n) / n` with `d = x - mean`, as scikit-learn 1.9.1
    /// `_incremental_mean_and_var` does. A column counts as constant when its
    /// variance is within the rounding error of that formula,
    /// `var <= n·ε·var + (n·mean·ε)²` with ε the f64 machine epsilon. This is
    /// the rule of scikit-learn 1.9.1 `_is_constant_feature`, so a column of
    /// repeated 0.1 is constant even if its computed variance is a tiny
    /// positive number.
    ///
    /// # Errors
    ///
    /// [`StatsError::Empty`] if `x` has no rows, and
    /// [`StatsError::NonFiniteCell`] for the first NaN or infinity.
    pub fn fit(x: ArrayView2<f64>) -> Result<Self, StatsError> {
        if x.nrows() == 0 {
            return Err(StatsError::Empty { input: "x" });
        }
        check_finite_matrix("x", x)?;

        let n = x.nrows() as f64;
        let mut mean = Array1::zeros(x.ncols());
        let mut scale = Array1::ones(x.ncols());
        let mut constant_columns = Vec::new();
        for (column_index, column) in x.axis_iter(Axis(1)).enumerate() {
            let column_mean = column.sum() / n;
            let deviation_sum: f64 = column.iter().map(|&value| value - column_mean).sum();
            let squared_sum: f64 = column
                .iter()
                .map(|&value| (value - column_mean).powi(2))
                .sum();
            let variance = (squared_sum - deviation_sum * deviation_sum / n) / n;

            let rounding_bound =
                n * f64::EPSILON * variance + (n * column_mean * f64::EPSILON).powi(2);
            mean[column_index] = column_mean;
            if variance <= rounding_bound {
                constant_columns.push(column_index);
            } else {
                scale[column_index] = variance.sqrt();
            }
        }

        Ok(Self {
            mean,
            scale,
            constant_columns,
        })
    }

    /// Returns `(x - mean) / scale`, column by column.
    ///
    /// # Errors
    ///
    /// [`StatsError::ColumnMismatch`] if `x` has a different number of
    /// columns than the fitted data, and [`StatsError::NonFiniteCell`] for the
    /// first NaN or infinity.
    pub fn transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, StatsError> {
        if x.ncols() != self.mean.len() {
            return Err(StatsError::ColumnMismatch {
                input: "x",
                expected: self.mean.len(),
                found: x.ncols(),
            });
        }
        check_finite_matrix("x", x)?;
        Ok((&x - &self.mean) / &self.scale)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    /// Means and scales are closed forms, so only the summation order differs
    /// from NumPy's pairwise summation.
    const CLOSED_FORM_TOLERANCE: f64 = 1e-12;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= CLOSED_FORM_TOLERANCE,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    // Expected values: scikit-learn 1.9.1, numpy 2.4.6, from
    //   sc = sklearn.preprocessing.StandardScaler().fit(Z)
    //   sc.mean_, sc.scale_, sc.transform(Z)[0], sc.transform(Z)[4]
    fn example_matrix() -> Array2<f64> {
        array![
            [1.0, 5.0, 0.1, 10.0],
            [2.0, 5.0, 0.1, -2.0],
            [4.0, 5.0, 0.1, 3.5],
            [7.5, 5.0, 0.1, 0.25],
            [-3.0, 5.0, 0.1, 8.0],
        ]
    }

    #[test]
    fn standardizer_matches_sklearn() {
        let x = example_matrix();
        let scaler = Standardizer::fit(x.view()).unwrap();

        let expected_mean = [2.3, 5.0, 0.1, 3.95];
        let expected_scale = [3.4583232931581165, 1.0, 1.0, 4.523273151159457];
        for column in 0..4 {
            assert_close(
                scaler.mean[column],
                expected_mean[column],
                &format!("mean[{column}]"),
            );
            assert_close(
                scaler.scale[column],
                expected_scale[column],
                &format!("scale[{column}]"),
            );
        }

        let z = scaler.transform(x.view()).unwrap();
        let expected_row_0 = [-0.3759047057780561, 0.0, 0.0, 1.33752700706328];
        let expected_row_4 = [-1.5325345697105366, 0.0, 0.0, 0.8953693187778982];
        for column in 0..4 {
            assert_close(
                z[[0, column]],
                expected_row_0[column],
                &format!("z[0, {column}]"),
            );
            assert_close(
                z[[4, column]],
                expected_row_4[column],
                &format!("z[4, {column}]"),
            );
        }
    }

    #[test]
    fn standardizer_reports_constant_columns() {
        // Column 2 repeats 0.1, whose computed variance need not be exactly 0.
        let scaler = Standardizer::fit(example_matrix().view()).unwrap();
        assert_eq!(scaler.constant_columns, vec![1, 2]);
        assert_eq!(scaler.scale[1], 1.0);
        assert_eq!(scaler.scale[2], 1.0);
    }

    #[test]
    fn standardizer_uses_population_sd() {
        // Values 1 and 3: mean 2, population SD 1 (the sample SD would be √2).
        let scaler = Standardizer::fit(array![[1.0], [3.0]].view()).unwrap();
        assert_eq!(scaler.mean[0], 2.0);
        assert_eq!(scaler.scale[0], 1.0);
        assert!(scaler.constant_columns.is_empty());
    }

    #[test]
    fn standardizer_single_row_is_constant() {
        let scaler = Standardizer::fit(array![[4.0, -1.0]].view()).unwrap();
        assert_eq!(scaler.constant_columns, vec![0, 1]);
        let z = scaler.transform(array![[5.0, -1.0]].view()).unwrap();
        assert_eq!(z, array![[1.0, 0.0]]);
    }

    #[test]
    fn standardizer_rejects_empty_and_non_finite() {
        let empty = Array2::<f64>::zeros((0, 3));
        assert_eq!(
            Standardizer::fit(empty.view()).unwrap_err(),
            StatsError::Empty { input: "x" }
        );

        let x = array![[1.0, 2.0], [3.0, f64::NEG_INFINITY]];
        assert_eq!(
            Standardizer::fit(x.view()).unwrap_err(),
            StatsError::NonFiniteCell {
                input: "x",
                row: 1,
                column: 1,
                value: f64::NEG_INFINITY
            }
        );
    }

    #[test]
    fn standardizer_transform_rejects_bad_input() {
        let scaler = Standardizer::fit(example_matrix().view()).unwrap();
        assert_eq!(
            scaler.transform(array![[1.0, 2.0]].view()).unwrap_err(),
            StatsError::ColumnMismatch {
                input: "x",
                expected: 4,
                found: 2
            }
        );
        let error = scaler
            .transform(array![[1.0, 2.0, f64::NAN, 4.0]].view())
            .unwrap_err();
        assert!(matches!(
            error,
            StatsError::NonFiniteCell {
                row: 0,
                column: 2,
                ..
            }
        ));
    }
}
