//! The `[model]` table: feature selection, model fitting and evaluation
//! settings, with their defaults.

use serde::Deserialize;

/// Harmonisation of feature values across centers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Harmonization {
    /// Feature values are used as the centers report them.
    None,
    /// Parametric empirical-Bayes ComBat with the development centers'
    /// training patients as the reference batch.
    Combat,
    /// Non-parametric empirical-Bayes ComBat, same reference.
    CombatNonParametric,
}

/// Rule that picks λ from the LASSO cross-validation curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LassoChoice {
    /// The λ with the smallest mean CV deviance (glmnet's `lambda.min`).
    Min,
    /// The largest λ within one standard error of that minimum (glmnet's
    /// `lambda.1se`); sparser.
    OneSe,
}

/// Rule that picks the best region r*, on which the fusion model is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BestRegionRule {
    /// Highest mean repeated stratified k-fold CV AUC on training patients,
    /// with the whole selection chain refitted in each fold.
    CvAuc,
    /// Highest mean AUC on the internal validation cohort. It is
    /// optimistic, because those patients then take part in a modelling
    /// choice, so selection.json flags it.
    InternalValidation,
}

/// Method by which the fusion model combines the sequences on the best
/// region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionMethod {
    /// Feature-level fusion: one chain on the union of the single models'
    /// selected features.
    Concat,
    /// Score-level fusion: a logistic regression on the single models'
    /// radscores, fitted on out-of-fold radscores of training patients.
    Stacking,
}

/// Multiple-testing correction of the Mann-Whitney p-values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MwuCorrection {
    /// Raw p-values are compared with `mwu_alpha`.
    None,
    /// Benjamini-Hochberg q-values (false discovery rate) are compared with
    /// `mwu_alpha`.
    BenjaminiHochberg,
}

/// Penalty of the models' logistic regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PenaltyChoice {
    /// L2 with inverse strength `c`, as scikit-learn's default.
    L2,
    /// None: maximum likelihood, R's `glm` stopping rule; under separation
    /// the model is refitted with C = 1 and the refit is recorded.
    None,
}

fn default_mwu_correction() -> MwuCorrection {
    MwuCorrection::None
}

fn default_penalty() -> PenaltyChoice {
    PenaltyChoice::L2
}

/// Feature selection and model settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Features with a two-sided Mann-Whitney U p-value below this pass.
    #[serde(default = "default_mwu_alpha")]
    pub mwu_alpha: f64,
    /// When no feature passes, the features with the smallest p-values are
    /// kept, this many.
    #[serde(default = "default_fallback_features")]
    pub fallback_features: usize,
    /// Multiple-testing correction of the Mann-Whitney p-values before the
    /// threshold: none (default) or Benjamini-Hochberg.
    #[serde(default = "default_mwu_correction")]
    pub mwu_correction: MwuCorrection,
    /// Penalty of the logistic regression: L2 with `c` (default), or none
    /// (maximum likelihood, refitted with C = 1 when it separates).
    #[serde(default = "default_penalty")]
    pub penalty: PenaltyChoice,
    /// Whether a cross-validated binomial LASSO selects among the features
    /// that pass Mann-Whitney U.
    #[serde(default = "default_true")]
    pub lasso: bool,
    /// The λ rule of the LASSO.
    #[serde(default = "default_lasso_choice")]
    pub lasso_choice: LassoChoice,
    /// Cross-validation folds of the LASSO, stratified on the outcome.
    #[serde(default = "default_lasso_folds")]
    pub lasso_folds: usize,
    /// Fold partitions whose CV curves are averaged.
    #[serde(default = "default_lasso_repeats")]
    pub lasso_repeats: usize,
    /// Whether the fusion model runs one more LASSO on the union of the
    /// sequences' selected features.
    #[serde(default = "default_true")]
    pub fusion_relasso: bool,
    /// Inverse L2 penalty strength of the logistic regression, as
    /// scikit-learn's `C`.
    #[serde(default = "default_c")]
    pub c: f64,
    /// Rule that picks the best region for the fusion model.
    #[serde(default = "default_best_region")]
    pub best_region: BestRegionRule,
    /// Folds of the best-region cross-validation and of the out-of-fold
    /// radscores of stacking, stratified on the outcome.
    #[serde(default = "default_cv_folds")]
    pub cv_folds: usize,
    /// Fold partitions of the best-region cross-validation.
    #[serde(default = "default_cv_repeats")]
    pub cv_repeats: usize,
    /// Method by which the fusion model combines the sequences.
    #[serde(default = "default_fusion")]
    pub fusion: FusionMethod,
    /// Stratified bootstrap replicates for the percentile CIs of AUC,
    /// sensitivity and specificity; 0 turns the bootstrap off.
    #[serde(default = "default_bootstrap_replicates")]
    pub bootstrap_replicates: usize,
    /// Harmonisation across centers, off by default.
    #[serde(default = "default_harmonization")]
    pub harmonization: Harmonization,
}

fn default_harmonization() -> Harmonization {
    Harmonization::None
}

fn default_mwu_alpha() -> f64 {
    0.05
}

fn default_fallback_features() -> usize {
    10
}

fn default_true() -> bool {
    true
}

fn default_lasso_choice() -> LassoChoice {
    LassoChoice::Min
}

fn default_lasso_folds() -> usize {
    10
}

fn default_lasso_repeats() -> usize {
    1
}

fn default_c() -> f64 {
    1.0
}

fn default_bootstrap_replicates() -> usize {
    2000
}

fn default_best_region() -> BestRegionRule {
    BestRegionRule::CvAuc
}

fn default_cv_folds() -> usize {
    10
}

fn default_cv_repeats() -> usize {
    10
}

fn default_fusion() -> FusionMethod {
    FusionMethod::Concat
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            mwu_alpha: default_mwu_alpha(),
            fallback_features: default_fallback_features(),
            mwu_correction: default_mwu_correction(),
            penalty: default_penalty(),
            lasso: true,
            lasso_choice: default_lasso_choice(),
            lasso_folds: default_lasso_folds(),
            lasso_repeats: default_lasso_repeats(),
            fusion_relasso: true,
            c: default_c(),
            best_region: default_best_region(),
            cv_folds: default_cv_folds(),
            cv_repeats: default_cv_repeats(),
            fusion: default_fusion(),
            bootstrap_replicates: default_bootstrap_replicates(),
            harmonization: default_harmonization(),
        }
    }
}
