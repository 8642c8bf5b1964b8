//! Statistics for feature screening, model fitting and validation.
//!
//! Each file is one concept, and each public function names the reference
//! implementation and version whose numbers it reproduces:
//!
//! - [`mwu`]: two-sided Mann–Whitney U test (SciPy 1.17.1 `mannwhitneyu`) and
//!   Benjamini–Hochberg q-values (SciPy 1.17.1 `false_discovery_control`).
//! - [`standardize`]: column z-scoring with the population SD
//!   (scikit-learn 1.9.1 `StandardScaler`).
//! - [`logistic`]: L2-penalised logistic regression through linfa-logistic,
//!   equivalent to scikit-learn 1.9.1 `LogisticRegression(C=c)`.
//! - [`roc`]: ROC AUC with the DeLong variance, its 95% CI (pROC 1.18.0
//!   `ci.auc(method = "delong")`) and the paired DeLong test.
//! - [`threshold`]: Youden's J threshold and confusion counts.
//! - [`icc`]: the six Shrout–Fleiss ICC forms and their 95% CIs from sums
//!   that sites send (pingouin 0.7.0 `intraclass_corr`).
//! - [`combat`]: ComBat harmonisation against a reference batch from per-site
//!   sums (neuroCombat 0.2.12 with `ref_batch`).
//! - [`lasso`]: binomial and Gaussian LASSO paths, stratified k-fold CV and
//!   feature selection (glmnet 4.1-6 `glmnet`/`cv.glmnet`, scikit-learn 1.9.1
//!   `Lasso`/`LassoCV`).
//! - [`irls`]: logistic regression by Newton/IRLS, pooled or from per-site
//!   sums (statsmodels 0.15.0 `Logit`, scikit-learn 1.9.1
//!   `LogisticRegression(C=c)`).
//! - [`wilson`]: Wilson score intervals (statsmodels 0.15.0
//!   `proportion_confint`) and the metrics at a fixed cut-off.
//! - [`calibration`]: calibration curve (scikit-learn 1.9.1
//!   `calibration_curve`), Brier score, Spiegelhalter's z, recalibration
//!   intercept and slope.
//! - [`hosmer_lemeshow`](mod@hosmer_lemeshow): Hosmer–Lemeshow test on
//!   quantile groups or fixed bins.
//! - [`dca`]: decision curves (dcurves 1.1.7 `dca`).
//! - [`bootstrap`]: seeded stratified bootstrap with percentile intervals.
//! - [`aggregates`]: the same validation metrics from per-site aggregates.
//! - [`shap`]: exact linear SHAP values (shap 0.51.0 `LinearExplainer`).
//!
//! Every function validates its input and returns [`StatsError`] instead of a
//! NaN: non-finite values are rejected with their index, and empty or
//! single-class input is rejected where the statistic is undefined.

pub mod aggregates;
pub mod bootstrap;
pub mod calibration;
pub mod combat;
pub mod dca;
pub mod hosmer_lemeshow;
pub mod icc;
pub mod irls;
pub mod lasso;
mod linalg;
pub mod logistic;
pub mod mwu;
mod quantile;
mod rank;
pub mod roc;
pub mod shap;
pub mod standardize;
#[cfg(test)]
mod test_fixtures;
pub mod threshold;
mod validate;
pub mod wilson;

pub use aggregates::{
    RocPoint, ScoreAggregates, auc_from_roc_points, merge_roc_points, roc_points,
};
pub use bootstrap::{
    BootstrapMetrics, BootstrapOptions, PairedAucDifference, PercentileInterval,
    StratifiedResampler, bootstrap_auc_difference, bootstrap_metrics, percentile_bounds,
};
pub use calibration::{
    CalibrationBins, CalibrationPoint, CalibrationSums, Recalibration, SpiegelhalterTest,
    brier_score, calibration_curve, default_bin_count, logistic_recalibration, spiegelhalter_test,
};
pub use combat::{BatchEstimates, BatchSums, ComBatFit, ComBatOptions};
pub use dca::{DecisionCurve, NetBenefitPoint, decision_curve, default_thresholds};
pub use hosmer_lemeshow::{HosmerLemeshow, hosmer_lemeshow, hosmer_lemeshow_from_bins};
pub use icc::{IccForm, IccResult, IccSums};
pub use irls::{
    LogisticSums, NewtonFit, NewtonOptions, Penalty, fit_newton, fit_newton_rounds,
    fit_newton_with_offset, fit_with_fallback, newton_step,
};
pub use lasso::{
    Family, LambdaChoice, LassoCv, LassoFlags, LassoParams, LassoPath, ValidLassoParams,
    lambda_grid, lambda_max, lasso_cv, lasso_cv_with_folds, lasso_path, stratified_fold_ids,
};
pub use logistic::{LogisticModel, fit_l2};
pub use mwu::{MannWhitney, MwuMethod, benjamini_hochberg, mann_whitney_u};
pub use roc::{AucEstimate, DelongComparison, delong_auc, delong_test, roc_auc};
pub use shap::{ImportanceSums, LinearShap, ShapValues};
pub use standardize::Standardizer;
pub use threshold::{Confusion, youden_threshold};
pub use wilson::{Proportion, ThresholdMetrics};

/// Error returned by the statistics functions.
///
/// Every message names the input and quotes the offending value, so it can be
/// traced back to a feature column or a patient row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// A center's sums for a federated computation could not be fetched.
    #[error("a center's sums could not be fetched: {message}")]
    Remote {
        /// The transport or worker error.
        message: String,
    },

    /// An input that needs at least one element has none.
    #[error("{input} is empty: at least one value is required")]
    Empty {
        /// Name of the input, for example "positives".
        input: &'static str,
    },

    /// Two inputs that pair up element by element have different lengths.
    #[error("length mismatch: {left_name} has {left} values but {right_name} has {right}")]
    LengthMismatch {
        /// Name of the first input.
        left_name: &'static str,
        /// Length of the first input.
        left: usize,
        /// Name of the second input.
        right_name: &'static str,
        /// Length of the second input.
        right: usize,
    },

    /// A slice contains NaN or an infinity.
    #[error("non-finite value {value} in {input} at index {index}")]
    NonFinite {
        /// Name of the input.
        input: &'static str,
        /// Position of the first non-finite value.
        index: usize,
        /// The value itself (NaN, inf or -inf).
        value: f64,
    },

    /// A matrix contains NaN or an infinity.
    #[error("non-finite value {value} in {input} at row {row}, column {column}")]
    NonFiniteCell {
        /// Name of the input.
        input: &'static str,
        /// Row of the first non-finite value, in row-major order.
        row: usize,
        /// Column of that value.
        column: usize,
        /// The value itself (NaN, inf or -inf).
        value: f64,
    },

    /// A matrix has a different number of columns than the fitted object.
    #[error(
        "column count mismatch: {input} has {found} columns but the model was fitted on {expected}"
    )]
    ColumnMismatch {
        /// Name of the input.
        input: &'static str,
        /// Number of columns at fit time.
        expected: usize,
        /// Number of columns in the input.
        found: usize,
    },

    /// The labels contain only one class, so the statistic is undefined.
    #[error(
        "labels contain a single class: all {count} labels are {class}, but both true and false are required"
    )]
    SingleClass {
        /// The only class present.
        class: bool,
        /// Number of labels.
        count: usize,
    },

    /// A class has too few members for a variance with ddof 1.
    #[error(
        "the DeLong variance needs at least 2 positives and 2 negatives, got {positives} positives and {negatives} negatives; use roc_auc for the point estimate"
    )]
    TooFewForVariance {
        /// Number of positive labels.
        positives: usize,
        /// Number of negative labels.
        negatives: usize,
    },

    /// The paired DeLong test has a zero standard error but a non-zero AUC
    /// difference, so its z statistic would be infinite.
    #[error("the DeLong test is degenerate: AUC difference {difference} with zero standard error")]
    ZeroVariance {
        /// AUC of model A minus AUC of model B.
        difference: f64,
    },

    /// A p-value outside [0, 1], including NaN.
    #[error("invalid p-value {value} at index {index}: expected a number in [0, 1]")]
    InvalidProbability {
        /// Position of the first invalid p-value.
        index: usize,
        /// The value itself.
        value: f64,
    },

    /// A tuning parameter is outside its valid range.
    #[error("invalid {name} {value}: expected {expected}")]
    InvalidParameter {
        /// Parameter name, for example "C".
        name: &'static str,
        /// The value passed.
        value: f64,
        /// The valid range, in words.
        expected: &'static str,
    },

    /// The optimiser returned an error.
    #[error("logistic regression fit failed: {reason}")]
    FitFailed {
        /// Message of the underlying linfa-logistic error.
        reason: String,
    },

    /// The optimiser stopped before the gradient of the penalised loss was
    /// small enough to trust the coefficients.
    #[error(
        "logistic regression did not converge: gradient norm {gradient_norm:e} exceeds {tolerance:e}; standardise the features or lower C"
    )]
    NotConverged {
        /// L2 norm of the gradient of the penalised summed loss at the result.
        gradient_norm: f64,
        /// Largest norm accepted.
        tolerance: f64,
    },

    /// An input has fewer observations than the statistic needs.
    #[error("too few {input}: got {count}, at least {minimum} are required")]
    TooFewObservations {
        /// Name of the counted items, for example "subjects".
        input: &'static str,
        /// Number found.
        count: usize,
        /// Smallest number accepted.
        minimum: usize,
    },

    /// ICC sums or rows have a different number of measurements per subject
    /// than expected.
    #[error(
        "measurement count mismatch: expected {expected} measurements per subject, found {found}; ICC sums combine only within one design"
    )]
    MeasurementCountMismatch {
        /// Measurements per subject (k) of the sums merged into.
        expected: usize,
        /// Measurements per subject of the other input.
        found: usize,
    },

    /// Every feature column is orthogonal to the centred labels, so the
    /// LASSO path has no λ with a non-zero coefficient.
    #[error(
        "lambda_max is 0: no feature column has a non-zero inner product with the centred labels, so every LASSO coefficient is 0; check that the features are not all constant"
    )]
    LambdaMaxZero,

    /// A LASSO path used up its coordinate-descent passes.
    #[error(
        "LASSO did not converge: {passes} coordinate-descent passes used up at lambda {lambda:e} (index {lambda_index}); raise max_passes or the tolerance"
    )]
    LassoNotConverged {
        /// Position of the λ being fitted when the limit was reached.
        lambda_index: usize,
        /// That λ.
        lambda: f64,
        /// The pass limit.
        passes: usize,
    },

    /// A cross-validation fold has no rows.
    #[error(
        "fold {fold} of fold partition {repeat} has no rows: fold ids must run from 0 to {folds} - 1 with every fold used"
    )]
    EmptyFold {
        /// Fold partition (repeat), from 0.
        repeat: usize,
        /// The empty fold.
        fold: usize,
        /// Number of folds, the largest id plus 1.
        folds: usize,
    },

    /// The training rows of a cross-validation fold contain one class only,
    /// so the binomial model cannot be fitted on them.
    #[error(
        "the training rows of fold {fold} in fold partition {repeat} are all {class}: use fewer folds, or stratified folds with at least 2 rows per class"
    )]
    SingleClassFold {
        /// Fold partition (repeat), from 0.
        repeat: usize,
        /// The fold whose training rows are single-class.
        fold: usize,
        /// The only class among them.
        class: bool,
    },

    /// The Newton system `H + P` of a logistic regression is singular at
    /// the starting point.
    #[error(
        "the logistic regression Hessian over {n} rows is singular: a feature column is constant or a linear combination of others; drop it or fit with an L2 penalty"
    )]
    SingularHessian {
        /// Number of rows in the sums.
        n: usize,
    },

    /// Per-site aggregates that are merged were computed with different
    /// settings.
    #[error(
        "cannot merge aggregates: {field} differs ({detail}); every site must use the same model, cut-off and bin edges"
    )]
    AggregateMismatch {
        /// The setting that differs, for example "cut-off".
        field: &'static str,
        /// The two values.
        detail: String,
    },

    /// A predicted probability is NaN or outside its valid range.
    #[error(
        "invalid predicted probability {value} in {input} at index {index}: expected {expected}"
    )]
    InvalidPrediction {
        /// Name of the input.
        input: &'static str,
        /// Position of the first invalid value.
        index: usize,
        /// The value itself.
        value: f64,
        /// The valid range, in words.
        expected: &'static str,
    },

    /// A statistic is undefined for this input.
    #[error("{statistic} is undefined: {reason}")]
    UndefinedStatistic {
        /// Name of the statistic.
        statistic: &'static str,
        /// The reason, with the values involved.
        reason: String,
    },

    /// Per-batch sums that cannot be used: mismatched lengths, a non-finite
    /// value, or a reference batch without variance.
    #[error("invalid sums for batch {batch:?}: {reason}")]
    InvalidBatchSums {
        /// Batch (centre) name.
        batch: String,
        /// What is wrong, with the values involved.
        reason: String,
    },

    /// A batch has too few patients for the requested ComBat variant.
    #[error("batch {batch:?} has {n} patients, but {requirement}")]
    BatchTooSmall {
        /// Batch (centre) name.
        batch: String,
        /// Number of patients.
        n: usize,
        /// The size required and why.
        requirement: &'static str,
    },

    /// A batch name appears twice among the inputs of one ComBat fit.
    #[error("duplicate batch {batch:?}: each batch may appear once; merge its sums first")]
    DuplicateBatch {
        /// The repeated name.
        batch: String,
    },

    /// A batch that the ComBat fit has no estimates for.
    #[error(
        "unknown batch {batch:?}: the ComBat fit has {known}; fit the batch against the frozen reference sums first"
    )]
    UnknownBatch {
        /// The name requested.
        batch: String,
        /// The batches of the fit, reference first.
        known: String,
    },

    /// The parametric empirical Bayes iteration of ComBat did not stop.
    #[error(
        "ComBat empirical Bayes for batch {batch:?} did not converge in {iterations} iterations: last relative change {change:e}"
    )]
    EmpiricalBayesNotConverged {
        /// Batch (centre) name.
        batch: String,
        /// Number of iterations run.
        iterations: usize,
        /// Relative change of the last iteration.
        change: f64,
    },
}
