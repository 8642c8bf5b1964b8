//! Exact SHAP values of a logistic model on the log-odds scale, with
//! independent (interventional) features and a background set.
//!
//! Let:
//!
//! ```text
//! f(x) = β0 + Σⱼ βⱼ zⱼ(x)     log-odds of the model on standardised features z
//! z̄ⱼ   = mean of zⱼ over the background set (the training patients)
//! φⱼ(x) = βⱼ (zⱼ(x) − z̄ⱼ)     SHAP value of feature j
//! φ0    = β0 + Σⱼ βⱼ z̄ⱼ       base value, the mean log-odds over the background
//! ```
//!
//! For a linear function the interventional Shapley values are exact in
//! this closed form, and they are additive: f(x) = φ0 + Σⱼ φⱼ(x). When z
//! is standardised on the training set and that set is the background,
//! z̄ = 0 up to rounding, so φⱼ = βⱼ zⱼ and φ0 = β0.
//!
//! Probability-scale attributions are not additive in this closed form and
//! are not provided here.
//!
//! Sources: S. M. Lundberg and S.-I. Lee (2017), "A unified approach to
//! interpreting model predictions", NeurIPS 30 (linear SHAP).
//! Reference implementation: shap 0.51.0 `LinearExplainer(model, masker,
//! feature_perturbation="interventional")` on a scikit-learn 1.9.1
//! `LogisticRegression`.
//!
//! NOTE: `LinearExplainer` given a background array of more than 100 rows
//! averages over a random sample of 100 (shap 0.51.0 `maskers.Independent`
//! `max_samples=100`), so its base value and φ then differ from ours, which
//! use every background row. Pass `maskers.Independent(X, max_samples=len(X))`
//! to shap for the exact background mean.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::StatsError;
use super::logistic::LogisticModel;
use super::validate::{check_finite, check_finite_matrix};

/// A linear SHAP explainer: the model and its background means.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearShap {
    /// The explained model.
    pub model: LogisticModel,
    /// Mean of each feature over the background set, z̄.
    pub background_mean: Array1<f64>,
    /// Base value φ0 = β0 + β · z̄, on the log-odds scale.
    pub base_value: f64,
}

impl LinearShap {
    /// Builds the explainer with the column means of `background` (rows are
    /// patients, in the model's feature space, usually the standardised
    /// training set).
    ///
    /// # Errors
    ///
    /// [`StatsError::Empty`] if `background` has no rows,
    /// [`StatsError::ColumnMismatch`] and [`StatsError::NonFiniteCell`].
    pub fn new(model: &LogisticModel, background: ArrayView2<f64>) -> Result<Self, StatsError> {
        check_columns(model, "background", background.ncols())?;
        check_finite_matrix("background", background)?;
        let Some(mean) = background.mean_axis(Axis(0)) else {
            return Err(StatsError::Empty {
                input: "background",
            });
        };
        Self::with_background_mean(model, mean)
    }

    /// Builds the explainer from background means computed elsewhere, for
    /// example Σz / n summed over the training sites.
    ///
    /// # Errors
    ///
    /// [`StatsError::ColumnMismatch`] and [`StatsError::NonFinite`].
    pub fn with_background_mean(
        model: &LogisticModel,
        background_mean: Array1<f64>,
    ) -> Result<Self, StatsError> {
        check_columns(model, "background_mean", background_mean.len())?;
        check_finite("background_mean", &background_mean.to_vec())?;
        let base_value = model.intercept + model.coefficients.dot(&background_mean);
        Ok(Self {
            model: model.clone(),
            background_mean,
            base_value,
        })
    }

    /// Computes the SHAP values of every row of `x`.
    ///
    /// # Errors
    ///
    /// [`StatsError::ColumnMismatch`] and [`StatsError::NonFiniteCell`].
    pub fn explain(&self, x: ArrayView2<f64>) -> Result<ShapValues, StatsError> {
        check_columns(&self.model, "x", x.ncols())?;
        check_finite_matrix("x", x)?;

        // φ = (x − z̄) ⊙ β, the 1-D vectors broadcast over rows; shape (n, p).
        let centred = &x - &self.background_mean;
        let values = centred * &self.model.coefficients;
        let log_odds = x.dot(&self.model.coefficients) + self.model.intercept;
        Ok(ShapValues {
            base_value: self.base_value,
            values,
            log_odds,
        })
    }
}

fn check_columns(
    model: &LogisticModel,
    input: &'static str,
    found: usize,
) -> Result<(), StatsError> {
    if found != model.coefficients.len() {
        return Err(StatsError::ColumnMismatch {
            input,
            expected: model.coefficients.len(),
            found,
        });
    }
    Ok(())
}

/// SHAP values of a set of patients.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapValues {
    /// Base value φ0 on the log-odds scale.
    pub base_value: f64,
    /// φ, shape (patients, features).
    pub values: Array2<f64>,
    /// The model's log-odds f(x) per patient, computed directly.
    pub log_odds: Array1<f64>,
}

impl ShapValues {
    /// Returns max over patients of |φ0 + Σⱼ φⱼ − f(x)|, the additivity
    /// error. It is rounding error only, of order 1e-15 · Σ|φ|.
    pub fn max_additivity_error(&self) -> f64 {
        self.values
            .sum_axis(Axis(1))
            .iter()
            .zip(&self.log_odds)
            .map(|(sum, log_odds)| (self.base_value + sum - log_odds).abs())
            .fold(0.0, f64::max)
    }

    /// Returns Σ|φⱼ| per feature and the patient count, the mergeable form of
    /// the global importance.
    pub fn importance_sums(&self) -> ImportanceSums {
        ImportanceSums {
            absolute_sums: self.values.mapv(f64::abs).sum_axis(Axis(0)),
            count: self.values.nrows(),
        }
    }
}

/// Per-feature Σ|φⱼ| and patient count, additive across sites.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportanceSums {
    /// Σ over patients of |φⱼ|, one entry per feature.
    pub absolute_sums: Array1<f64>,
    /// Number of patients.
    pub count: usize,
}

impl ImportanceSums {
    /// Adds another site's sums to these.
    ///
    /// # Errors
    ///
    /// [`StatsError::AggregateMismatch`] if the feature counts differ.
    pub fn add(&mut self, other: &ImportanceSums) -> Result<(), StatsError> {
        if self.absolute_sums.len() != other.absolute_sums.len() {
            return Err(StatsError::AggregateMismatch {
                field: "number of features",
                detail: format!(
                    "{} against {}",
                    self.absolute_sums.len(),
                    other.absolute_sums.len()
                ),
            });
        }
        self.absolute_sums += &other.absolute_sums;
        self.count += other.count;
        Ok(())
    }

    /// Returns the global importance mean |φⱼ| per feature.
    ///
    /// # Errors
    ///
    /// [`StatsError::Empty`] when no patient was counted.
    pub fn mean_absolute(&self) -> Result<Array1<f64>, StatsError> {
        if self.count == 0 {
            return Err(StatsError::Empty {
                input: "shap values",
            });
        }
        Ok(&self.absolute_sums / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{array, s};

    use super::super::test_fixtures::{matrix, section, vector};
    use super::*;

    /// φ is one subtraction and one product per entry; the background mean
    /// differs from NumPy's pairwise sum only in rounding.
    const SHAP_TOLERANCE: f64 = 1e-12;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= SHAP_TOLERANCE,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    fn fixture() -> (serde_json::Value, LogisticModel, Array2<f64>, Array2<f64>) {
        let data = section("shap");
        let model = LogisticModel {
            intercept: data["intercept"].as_f64().unwrap(),
            coefficients: Array1::from(vector(&data["coefficients"])),
        };
        (
            data.clone(),
            model,
            matrix(&data["background"]),
            matrix(&data["x"]),
        )
    }

    #[test]
    fn linear_shap_matches_shap_package() {
        let (data, model, background, x) = fixture();
        let explainer = LinearShap::new(&model, background.view()).unwrap();
        assert_close(
            explainer.base_value,
            data["expected_value"].as_f64().unwrap(),
            "base",
        );

        let explained = explainer.explain(x.view()).unwrap();
        let expected = matrix(&data["shap_values"]);
        assert_eq!(explained.values.dim(), expected.dim());
        for ((row, column), &value) in expected.indexed_iter() {
            assert_close(
                explained.values[[row, column]],
                value,
                &format!("phi[{row}, {column}]"),
            );
        }
    }

    #[test]
    fn linear_shap_on_standardised_training_set() {
        // Background = the standardised training set itself: z̄ ≈ 0, so the
        // base value is the intercept and φ = β z.
        let (data, model, _, _) = fixture();
        let training = matrix(&data["standardised_training"]);
        let explainer = LinearShap::new(&model, training.view()).unwrap();
        assert_close(explainer.base_value, model.intercept, "base value");
        let explained = explainer.explain(training.view()).unwrap();
        for ((row, column), &value) in explained.values.indexed_iter() {
            assert_close(
                value,
                model.coefficients[column] * training[[row, column]],
                &format!("phi[{row}, {column}]"),
            );
        }
        let expected = matrix(&data["standardised_shap_values"]);
        for ((row, column), &value) in expected.indexed_iter() {
            assert_close(explained.values[[row, column]], value, "shap package");
        }
    }

    #[test]
    fn shap_values_are_additive() {
        let (_, model, background, x) = fixture();
        let explained = LinearShap::new(&model, background.view())
            .unwrap()
            .explain(x.view())
            .unwrap();
        assert!(explained.max_additivity_error() < 1e-12);
        let direct = model.log_odds(x.view()).unwrap();
        assert_eq!(explained.log_odds, direct);
    }

    #[test]
    fn importance_sums_merge_across_sites() {
        let (_, model, background, x) = fixture();
        let explainer = LinearShap::new(&model, background.view()).unwrap();
        let pooled = explainer.explain(x.view()).unwrap().importance_sums();

        let mut merged = explainer
            .explain(x.slice(s![..7, ..]))
            .unwrap()
            .importance_sums();
        merged
            .add(
                &explainer
                    .explain(x.slice(s![7.., ..]))
                    .unwrap()
                    .importance_sums(),
            )
            .unwrap();
        assert_eq!(merged.count, pooled.count);
        let pooled_mean = pooled.mean_absolute().unwrap();
        for (index, (a, b)) in merged
            .mean_absolute()
            .unwrap()
            .iter()
            .zip(&pooled_mean)
            .enumerate()
        {
            assert_close(*a, *b, &format!("mean |phi| {index}"));
        }
        let direct = explainer.explain(x.view()).unwrap().values.mapv(f64::abs);
        let direct_mean = direct.mean_axis(Axis(0)).unwrap();
        for (a, b) in pooled_mean.iter().zip(&direct_mean) {
            assert_close(*a, *b, "mean |phi| against direct mean");
        }
    }

    #[test]
    fn linear_shap_rejects_bad_input() {
        let model = LogisticModel {
            intercept: 0.1,
            coefficients: array![1.0, -1.0],
        };
        let error = LinearShap::new(&model, array![[1.0, 2.0, 3.0]].view()).unwrap_err();
        assert!(matches!(error, StatsError::ColumnMismatch { found: 3, .. }));
        let error = LinearShap::new(&model, Array2::zeros((0, 2)).view()).unwrap_err();
        assert_eq!(
            error,
            StatsError::Empty {
                input: "background"
            }
        );
        let explainer = LinearShap::new(&model, array![[0.0, 1.0]].view()).unwrap();
        let error = explainer
            .explain(array![[f64::NAN, 1.0]].view())
            .unwrap_err();
        assert!(matches!(
            error,
            StatsError::NonFiniteCell {
                row: 0,
                column: 0,
                ..
            }
        ));
        let empty = ImportanceSums {
            absolute_sums: Array1::zeros(2),
            count: 0,
        };
        assert!(empty.mean_absolute().is_err());
    }
}
