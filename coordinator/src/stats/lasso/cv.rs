//! K-fold cross-validation of the λ path, and the features selected from
//! the fit on all rows. The loss, curve and λ rules are listed in the
//! documentation of the parent module, `stats::lasso`.

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::design::Design;
use super::folds::{check_fold_ids, stratified_fold_ids};
use super::grid::{check_lasso_input, lambda_grid};
use super::params::{Family, LambdaChoice, ValidLassoParams};
use super::path::{LassoPath, check_lambdas, fit_rows, solve_design};
use crate::stats::StatsError;

/// glmnet 4.1-6 `cv.lognet`'s `prob_min`: held-out probabilities are
/// clamped to `[PROBABILITY_CLAMP, 1 − PROBABILITY_CLAMP]` before the
/// deviance, so one confident mistake costs at most −2 log(1e-5) ≈ 23.
const PROBABILITY_CLAMP: f64 = 1e-5;

/// Result of [`lasso_cv`]: the CV curve, the chosen λ and the selected
/// features of the fit on all rows.
#[derive(Debug, Clone, PartialEq)]
pub struct LassoCv {
    /// Path fitted on all rows at the CV λ values. `selected`,
    /// `coefficients` and `intercept` are its row `chosen_index`.
    pub path: LassoPath,
    /// Fold id of each row, one vector per fold partition.
    pub fold_ids: Vec<Vec<usize>>,
    /// Mean held-out loss of each fold at each λ, one folds × n_lambda
    /// matrix per fold partition.
    pub fold_losses: Vec<Array2<f64>>,
    /// Mean CV loss at each λ (see the module documentation).
    pub cv_mean: Vec<f64>,
    /// Standard error of the mean CV loss at each λ.
    pub cv_se: Vec<f64>,
    /// Index of λ_min: the smallest `cv_mean`, the largest λ on a tie.
    pub index_min: usize,
    /// λ_min.
    pub lambda_min: f64,
    /// Index of λ_1se: the largest λ with
    /// `cv_mean ≤ cv_mean[index_min] + cv_se[index_min]`.
    pub index_1se: usize,
    /// λ_1se.
    pub lambda_1se: f64,
    /// Index of the λ whose fit gives the selection, after the fallback in
    /// [`LassoFlags::fell_back_to_first_nonzero`].
    pub chosen_index: usize,
    /// The λ at `chosen_index`.
    pub chosen_lambda: f64,
    /// Selected features: non-zero coefficients at `chosen_index`, in
    /// ascending order, after the `max_features` cap.
    pub selected: Vec<usize>,
    /// Coefficients at `chosen_index`, one per feature, zero for every
    /// feature not in `selected`.
    pub coefficients: Array1<f64>,
    /// Intercept at `chosen_index`. The `max_features` cap does not refit
    /// it.
    pub intercept: f64,
    /// Fallbacks and warnings.
    pub flags: LassoFlags,
}

/// Conditions that a caller should report with a LASSO selection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LassoFlags {
    /// The λ picked by the rule had no non-zero coefficient, so the largest
    /// λ on the path with at least one non-zero coefficient was used.
    pub fell_back_to_first_nonzero: bool,
    /// No λ on the path has a non-zero coefficient, so nothing is selected.
    pub no_feature_on_path: bool,
    /// The `max_features` cap removed features from the selection.
    pub capped: bool,
    /// Number of fold fits whose binomial path saturated (see
    /// [`LassoPath::saturated_from`]) before its last λ.
    pub saturated_fold_fits: usize,
}

/// Cross-validates the LASSO over the default λ path and seeded stratified
/// folds, and selects features on all rows.
///
/// The λ path is [`lambda_grid`](super::lambda_grid) on all rows, and the
/// fold partitions are [`stratified_fold_ids`] with `params.folds()`,
/// `params.seed()` and repeats `0 .. params.repeats()`. See
/// [`lasso_cv_with_folds`] for the rest.
///
/// # Errors
///
/// The errors of [`lambda_grid`](super::lambda_grid),
/// [`stratified_fold_ids`] and [`lasso_cv_with_folds`].
pub fn lasso_cv(
    z: ArrayView2<f64>,
    y: &[bool],
    params: &ValidLassoParams,
) -> Result<LassoCv, StatsError> {
    let lambdas = lambda_grid(z, y, params)?;
    let fold_ids = (0..params.repeats())
        .map(|repeat| stratified_fold_ids(y, params.folds(), params.seed(), repeat))
        .collect::<Result<Vec<_>, _>>()?;
    lasso_cv_with_folds(z, y, &lambdas, &fold_ids, params)
}

/// Cross-validates the LASSO over `lambdas` with the given fold partitions,
/// then fits the path on all rows and selects the features at the chosen λ.
///
/// Each element of `fold_ids` is one partition: a fold number for every row,
/// numbered from 0 with no fold left empty. `params.folds()`,
/// `params.repeats()` and `params.seed()` are not used here. The chosen λ is
/// λ_min or λ_1se, as `params.choose()` selects. If the fit on all rows has no
/// non-zero coefficient there, the largest λ with at least one is used and
/// [`LassoFlags::fell_back_to_first_nonzero`] is set.
///
/// # Errors
///
/// - The input errors of [`lasso_path`](super::lasso_path).
/// - [`StatsError::Empty`] if `fold_ids` is empty.
/// - For a partition: [`StatsError::LengthMismatch`] if it does not have one
///   id per row, [`StatsError::InvalidParameter`] named "folds" if it has
///   fewer than 2 folds, and [`StatsError::EmptyFold`] if a fold number below
///   the largest has no rows.
/// - [`StatsError::SingleClassFold`] (binomial family) if the training rows
///   of a fold hold one class only.
/// - [`StatsError::LassoNotConverged`] from any fit.
pub fn lasso_cv_with_folds(
    z: ArrayView2<f64>,
    y: &[bool],
    lambdas: &[f64],
    fold_ids: &[Vec<usize>],
    params: &ValidLassoParams,
) -> Result<LassoCv, StatsError> {
    check_lasso_input(z, y)?;
    check_lambdas(lambdas)?;
    if fold_ids.is_empty() {
        return Err(StatsError::Empty { input: "fold_ids" });
    }
    let fold_counts = fold_ids
        .iter()
        .enumerate()
        .map(|(repeat, ids)| check_fold_ids(ids, y.len(), repeat))
        .collect::<Result<Vec<_>, _>>()?;

    let mut flags = LassoFlags::default();
    let mut fold_losses = Vec::with_capacity(fold_ids.len());
    let mut cv_mean = vec![0.0; lambdas.len()];
    let mut cv_se = vec![0.0; lambdas.len()];
    for (repeat, (ids, &folds)) in fold_ids.iter().zip(&fold_counts).enumerate() {
        let (losses, saturated) =
            cross_validate_partition(z, y, lambdas, ids, folds, repeat, params)?;
        flags.saturated_fold_fits += saturated;

        let fold_weights: Vec<f64> = (0..folds)
            .map(|fold| match params.family() {
                Family::Binomial => ids.iter().filter(|&&id| id == fold).count() as f64,
                Family::Gaussian => 1.0,
            })
            .collect();
        let (mean, se) = weighted_curve(&losses, &fold_weights);
        for index in 0..lambdas.len() {
            cv_mean[index] += mean[index] / fold_ids.len() as f64;
            cv_se[index] += se[index] / fold_ids.len() as f64;
        }
        fold_losses.push(losses);
    }

    let (index_min, index_1se) = choose_indices(&cv_mean, &cv_se);
    let rule_index = match params.choose() {
        LambdaChoice::Min => index_min,
        LambdaChoice::OneSe => index_1se,
    };

    let all_rows: Vec<usize> = (0..y.len()).collect();
    let path = fit_rows(z, y, &all_rows, lambdas, params)?;
    let selection = select_features(&path, rule_index, params.max_features());
    flags.fell_back_to_first_nonzero = selection.fell_back;
    flags.no_feature_on_path = selection.no_feature_on_path;
    flags.capped = selection.capped;
    let chosen_index = selection.index;

    Ok(LassoCv {
        intercept: path.intercepts[chosen_index],
        chosen_lambda: lambdas[chosen_index],
        lambda_min: lambdas[index_min],
        lambda_1se: lambdas[index_1se],
        path,
        fold_ids: fold_ids.to_vec(),
        fold_losses,
        cv_mean,
        cv_se,
        index_min,
        index_1se,
        chosen_index,
        selected: selection.features,
        coefficients: selection.coefficients,
        flags,
    })
}

/// Features selected from one row of the path.
struct Selection {
    index: usize,
    features: Vec<usize>,
    coefficients: Array1<f64>,
    fell_back: bool,
    no_feature_on_path: bool,
    capped: bool,
}

/// Takes the non-zero coefficients at `rule_index`, or at the first index
/// with any if there are none, and keeps the `max_features` largest |β|.
fn select_features(path: &LassoPath, rule_index: usize, max_features: Option<usize>) -> Selection {
    let mut index = rule_index;
    let mut fell_back = false;
    let mut no_feature_on_path = false;
    if path.nonzero(rule_index).is_empty() {
        match (0..path.lambdas.len()).find(|&candidate| !path.nonzero(candidate).is_empty()) {
            Some(candidate) => {
                index = candidate;
                fell_back = true;
            }
            None => no_feature_on_path = true,
        }
    }

    let mut coefficients = path.coefficients.row(index).to_owned();
    let mut features = path.nonzero(index);
    let mut capped = false;
    if let Some(cap) = max_features
        && features.len() > cap
    {
        // The stable sort keeps the lower index first on a tie.
        let mut by_size = features.clone();
        by_size.sort_by(|&a, &b| coefficients[b].abs().total_cmp(&coefficients[a].abs()));
        for &dropped in &by_size[cap..] {
            coefficients[dropped] = 0.0;
        }
        features.retain(|&feature| coefficients[feature] != 0.0);
        capped = true;
    }

    Selection {
        index,
        features,
        coefficients,
        fell_back,
        no_feature_on_path,
        capped,
    }
}

/// Fits every fold of one partition and returns the folds × λ matrix of
/// mean held-out losses and the number of saturated fold fits.
fn cross_validate_partition(
    z: ArrayView2<f64>,
    y: &[bool],
    lambdas: &[f64],
    ids: &[usize],
    folds: usize,
    repeat: usize,
    params: &ValidLassoParams,
) -> Result<(Array2<f64>, usize), StatsError> {
    let mut losses = Array2::zeros((folds, lambdas.len()));
    let mut saturated = 0;
    for fold in 0..folds {
        let training: Vec<usize> = (0..y.len()).filter(|&row| ids[row] != fold).collect();
        let held_out: Vec<usize> = (0..y.len()).filter(|&row| ids[row] == fold).collect();
        if params.family() == Family::Binomial {
            let positives = training.iter().filter(|&&row| y[row]).count();
            if positives == 0 || positives == training.len() {
                return Err(StatsError::SingleClassFold {
                    repeat,
                    fold,
                    class: positives > 0,
                });
            }
        }

        let design = Design::new(z, y, &training);
        let family = params.family();
        let summary = solve_design(&design, params, lambdas, |solution| {
            let total: f64 = held_out
                .iter()
                .map(|&row| {
                    let eta = solution.intercept
                        + solution
                            .coefficients
                            .iter()
                            .map(|&(feature, beta)| beta * z[[row, feature]])
                            .sum::<f64>();
                    row_loss(family, eta, y[row])
                })
                .sum();
            losses[[fold, solution.index]] = total / held_out.len() as f64;
        })?;
        if summary
            .saturated_from
            .is_some_and(|index| index + 1 < lambdas.len())
        {
            saturated += 1;
        }
    }
    Ok((losses, saturated))
}

/// Held-out loss of one row with linear predictor `eta`: the binomial
/// deviance `−2 log p̂(y)` with p̂ clamped as `cv.glmnet` does, or the squared
/// error.
fn row_loss(family: Family, eta: f64, label: bool) -> f64 {
    match family {
        Family::Binomial => {
            let probability =
                (1.0 / (1.0 + (-eta).exp())).clamp(PROBABILITY_CLAMP, 1.0 - PROBABILITY_CLAMP);
            let fitted = if label {
                probability
            } else {
                1.0 - probability
            };
            -2.0 * fitted.ln()
        }
        Family::Gaussian => {
            let residual = if label { 1.0 } else { 0.0 } - eta;
            residual * residual
        }
    }
}

/// Weighted mean and standard error over folds (rows of `losses`) at each
/// λ: `Σ a_k L_k / Σ a_k` and `sqrt(Σ a_k (L_k − mean)² / Σ a_k / (K − 1))`,
/// `cv.glmnet`'s `cvm` and `cvsd`.
fn weighted_curve(losses: &Array2<f64>, weights: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let folds = losses.nrows();
    let weight_sum: f64 = weights.iter().sum();
    let mut means = Vec::with_capacity(losses.ncols());
    let mut errors = Vec::with_capacity(losses.ncols());
    for column in losses.columns() {
        let mean = column
            .iter()
            .zip(weights)
            .map(|(&loss, &weight)| weight * loss)
            .sum::<f64>()
            / weight_sum;
        let spread = column
            .iter()
            .zip(weights)
            .map(|(&loss, &weight)| weight * (loss - mean).powi(2))
            .sum::<f64>()
            / weight_sum;
        means.push(mean);
        errors.push((spread / (folds - 1) as f64).sqrt());
    }
    (means, errors)
}

/// Indices of λ_min and λ_1se as glmnet 4.1-6 `getOptcv.glmnet` defines
/// them, for λ in decreasing order.
fn choose_indices(cv_mean: &[f64], cv_se: &[f64]) -> (usize, usize) {
    let minimum = cv_mean.iter().copied().fold(f64::INFINITY, f64::min);
    let index_min = cv_mean
        .iter()
        .position(|&mean| mean <= minimum)
        .unwrap_or(0);
    let bound = cv_mean[index_min] + cv_se[index_min];
    let index_1se = cv_mean
        .iter()
        .position(|&mean| mean <= bound)
        .unwrap_or(index_min);
    (index_min, index_1se)
}

#[cfg(test)]
mod tests;
