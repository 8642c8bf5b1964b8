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
//!
//! Every function validates its input and returns [`StatsError`] instead of a
//! NaN: non-finite values are rejected with their index, and empty or
//! single-class input is rejected where the statistic is undefined.

pub mod logistic;
pub mod mwu;
mod rank;
pub mod roc;
pub mod standardize;
pub mod threshold;
mod validate;

pub use logistic::{LogisticModel, fit_l2};
pub use mwu::{MannWhitney, MwuMethod, benjamini_hochberg, mann_whitney_u};
pub use roc::{AucEstimate, DelongComparison, delong_auc, delong_test, roc_auc};
pub use standardize::Standardizer;
pub use threshold::{Confusion, youden_threshold};

/// Error returned by the statistics functions.
///
/// Every message names the input and quotes the offending value, so it can be
/// traced back to a feature column or a patient row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
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
}
