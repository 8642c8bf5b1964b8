//! LASSO settings, checked once by [`LassoParams::validate`].

use serde::{Deserialize, Serialize};

use crate::stats::StatsError;

/// Model whose penalised loss the LASSO minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Logistic regression: `−ℓ(β0, β) / n + λ‖β‖₁`, as glmnet 4.1-6
    /// `family = "binomial"`. Cross-validation loss: binomial deviance.
    #[default]
    Binomial,
    /// Least squares on the 0/1 label: `‖y − β0 − Zβ‖² / (2n) + λ‖β‖₁`, as
    /// scikit-learn 1.9.1 `Lasso(alpha = λ)`. Cross-validation loss: mean
    /// squared error.
    Gaussian,
}

/// Rule that picks λ from the cross-validation curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaChoice {
    /// λ with the smallest mean CV loss, the largest such λ on a tie
    /// (glmnet `lambda.min`, scikit-learn `LassoCV.alpha_`).
    #[default]
    Min,
    /// Largest λ whose mean CV loss is at most the minimum plus the standard
    /// error at the minimum (glmnet `lambda.1se`). Sparser than `Min`.
    OneSe,
}

/// Unchecked LASSO settings. Call [`LassoParams::validate`] to get the
/// [`ValidLassoParams`] that the fitting functions take.
///
/// The defaults are glmnet 4.1-6's: 100 λ values, `lambda.min.ratio` 0.01 if
/// n < p else 1e-4, 10 folds, `thresh` 1e-7 and `maxit` 1e5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LassoParams {
    /// Binomial (default) or Gaussian model.
    pub family: Family,
    /// Number of λ values on the path, at least 2.
    pub n_lambda: usize,
    /// ε, the smallest λ as a fraction of λ_max, in (0, 1). `None` uses
    /// glmnet's rule: 0.01 if the rows are fewer than the features, else
    /// 1e-4. scikit-learn's `LassoCV` default is 1e-3.
    pub lambda_min_ratio: Option<f64>,
    /// Number of cross-validation folds, at least 2.
    pub folds: usize,
    /// Number of fold partitions whose CV curves are averaged, at least 1.
    pub repeats: usize,
    /// Seed of the fold partitions (see [`stratified_fold_ids`](super::stratified_fold_ids)).
    pub seed: u64,
    /// Convergence threshold relative to the null deviance, glmnet's
    /// `thresh`; finite and greater than 0.
    pub tolerance: f64,
    /// Most coordinate-descent passes over the data allowed for one path,
    /// counted over all its λ values as glmnet's `maxit` does; at least 1.
    pub max_passes: usize,
    /// Rule that picks λ from the CV curve.
    pub choose: LambdaChoice,
    /// Optional cap on the number of selected features. When more are
    /// selected, only those with the largest |β| are kept (lower index first
    /// on a tie). `None`, the default, keeps all.
    pub max_features: Option<usize>,
}

impl Default for LassoParams {
    fn default() -> Self {
        Self {
            family: Family::Binomial,
            n_lambda: 100,
            lambda_min_ratio: None,
            folds: 10,
            repeats: 1,
            seed: 42,
            tolerance: 1e-7,
            max_passes: 100_000,
            choose: LambdaChoice::Min,
            max_features: None,
        }
    }
}

impl LassoParams {
    /// Checks every setting and returns the validated copy.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidParameter`] naming the first setting outside its
    /// range.
    pub fn validate(&self) -> Result<ValidLassoParams, StatsError> {
        if self.n_lambda < 2 {
            return Err(invalid(
                "n_lambda",
                self.n_lambda as f64,
                "an integer of at least 2",
            ));
        }
        if let Some(ratio) = self.lambda_min_ratio
            && !(ratio > 0.0 && ratio < 1.0)
        {
            return Err(invalid(
                "lambda_min_ratio",
                ratio,
                "a number strictly between 0 and 1",
            ));
        }
        if self.folds < 2 {
            return Err(invalid(
                "folds",
                self.folds as f64,
                "an integer of at least 2",
            ));
        }
        if self.repeats < 1 {
            return Err(invalid(
                "repeats",
                self.repeats as f64,
                "an integer of at least 1",
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(invalid(
                "tolerance",
                self.tolerance,
                "a finite number greater than 0",
            ));
        }
        if self.max_passes < 1 {
            return Err(invalid(
                "max_passes",
                self.max_passes as f64,
                "an integer of at least 1",
            ));
        }
        if self.max_features == Some(0) {
            return Err(invalid(
                "max_features",
                0.0,
                "an integer of at least 1, or no cap",
            ));
        }
        Ok(ValidLassoParams(self.clone()))
    }
}

fn invalid(name: &'static str, value: f64, expected: &'static str) -> StatsError {
    StatsError::InvalidParameter {
        name,
        value,
        expected,
    }
}

/// LASSO settings that passed [`LassoParams::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidLassoParams(LassoParams);

impl ValidLassoParams {
    /// Returns the checked settings.
    pub fn params(&self) -> &LassoParams {
        &self.0
    }

    /// Model family.
    pub fn family(&self) -> Family {
        self.0.family
    }

    /// Number of λ values on the path.
    pub fn n_lambda(&self) -> usize {
        self.0.n_lambda
    }

    /// ε for `rows` rows and `features` features: the configured ratio, or
    /// glmnet's rule (0.01 if rows < features, else 1e-4).
    pub fn lambda_min_ratio(&self, rows: usize, features: usize) -> f64 {
        match self.0.lambda_min_ratio {
            Some(ratio) => ratio,
            None if rows < features => 0.01,
            None => 1e-4,
        }
    }

    /// Number of cross-validation folds.
    pub fn folds(&self) -> usize {
        self.0.folds
    }

    /// Number of fold partitions.
    pub fn repeats(&self) -> usize {
        self.0.repeats
    }

    /// Seed of the fold partitions.
    pub fn seed(&self) -> u64 {
        self.0.seed
    }

    /// Convergence threshold relative to the null deviance.
    pub fn tolerance(&self) -> f64 {
        self.0.tolerance
    }

    /// Most coordinate-descent passes for one path.
    pub fn max_passes(&self) -> usize {
        self.0.max_passes
    }

    /// Rule that picks λ from the CV curve.
    pub fn choose(&self) -> LambdaChoice {
        self.0.choose
    }

    /// Cap on the number of selected features, if any.
    pub fn max_features(&self) -> Option<usize> {
        self.0.max_features
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_glmnet_defaults() {
        let params = LassoParams::default().validate().unwrap();
        assert_eq!(params.family(), Family::Binomial);
        assert_eq!(params.n_lambda(), 100);
        assert_eq!(params.folds(), 10);
        assert_eq!(params.repeats(), 1);
        assert_eq!(params.tolerance(), 1e-7);
        assert_eq!(params.max_passes(), 100_000);
        assert_eq!(params.choose(), LambdaChoice::Min);
        assert_eq!(params.lambda_min_ratio(56, 9000), 0.01);
        assert_eq!(params.lambda_min_ratio(56, 56), 1e-4);
        assert_eq!(params.lambda_min_ratio(100, 20), 1e-4);
    }

    #[test]
    fn configured_ratio_overrides_glmnet_rule() {
        let params = LassoParams {
            lambda_min_ratio: Some(1e-3),
            ..LassoParams::default()
        }
        .validate()
        .unwrap();
        assert_eq!(params.lambda_min_ratio(56, 9000), 1e-3);
        assert_eq!(params.lambda_min_ratio(100, 20), 1e-3);
    }

    #[test]
    fn validate_rejects_each_bad_setting() {
        let cases: Vec<(LassoParams, &str)> = vec![
            (
                LassoParams {
                    n_lambda: 1,
                    ..Default::default()
                },
                "n_lambda",
            ),
            (
                LassoParams {
                    lambda_min_ratio: Some(0.0),
                    ..Default::default()
                },
                "lambda_min_ratio",
            ),
            (
                LassoParams {
                    lambda_min_ratio: Some(1.0),
                    ..Default::default()
                },
                "lambda_min_ratio",
            ),
            (
                LassoParams {
                    lambda_min_ratio: Some(f64::NAN),
                    ..Default::default()
                },
                "lambda_min_ratio",
            ),
            (
                LassoParams {
                    folds: 1,
                    ..Default::default()
                },
                "folds",
            ),
            (
                LassoParams {
                    repeats: 0,
                    ..Default::default()
                },
                "repeats",
            ),
            (
                LassoParams {
                    tolerance: 0.0,
                    ..Default::default()
                },
                "tolerance",
            ),
            (
                LassoParams {
                    tolerance: f64::INFINITY,
                    ..Default::default()
                },
                "tolerance",
            ),
            (
                LassoParams {
                    max_passes: 0,
                    ..Default::default()
                },
                "max_passes",
            ),
            (
                LassoParams {
                    max_features: Some(0),
                    ..Default::default()
                },
                "max_features",
            ),
        ];
        for (params, expected_name) in cases {
            let error = params.validate().unwrap_err();
            assert!(
                matches!(error, StatsError::InvalidParameter { name, .. } if name == expected_name),
                "{params:?}: got {error:?}"
            );
        }
    }

    #[test]
    fn params_deserialize_with_defaults() {
        let params: LassoParams =
            serde_json::from_str(r#"{"family": "gaussian", "choose": "one_se"}"#).unwrap();
        assert_eq!(params.family, Family::Gaussian);
        assert_eq!(params.choose, LambdaChoice::OneSe);
        assert_eq!(params.n_lambda, 100);
        assert!(serde_json::from_str::<LassoParams>(r#"{"fold": 5}"#).is_err());
    }
}
