//! LASSO feature selection: penalty path, cross-validation and the selected
//! features, for a binomial (logistic) or a Gaussian (linear) model of the
//! 0/1 label.
//!
//! Let:
//!
//! ```text
//! n          number of rows (patients) in the fit
//! z_i        row i of the standardised feature matrix Z (n × p)
//! y_i        label of row i, 1 for true and 0 for false
//! η_i        β0 + z_i · β, the linear predictor
//! ℓ(β0, β)   Σ_i [y_i η_i − log(1 + exp η_i)], the Bernoulli log-likelihood
//! ‖β‖₁       Σ_f |β_f|; the intercept β0 is never penalised
//! ```
//!
//! The two families minimise, for each λ on the path:
//!
//! ```text
//! Binomial:  −ℓ(β0, β) / n + λ ‖β‖₁                    (glmnet, family = "binomial")
//! Gaussian:  Σ_i (y_i − η_i)² / (2n) + λ ‖β‖₁           (scikit-learn `Lasso(alpha = λ)`)
//! ```
//!
//! The penalty treats all features alike, so the caller must standardise Z
//! first (the coordinator uses [`Standardizer`](super::Standardizer) fitted on
//! the training rows). Nothing here rescales Z, and the coefficients are on
//! the scale of the columns that were passed in. Cross-validation folds reuse
//! that one standardisation and do not standardise their training rows again.
//!
//! Solvers (J. Friedman, T. Hastie and R. Tibshirani (2010), "Regularization
//! Paths for Generalized Linear Models via Coordinate Descent", Journal of
//! Statistical Software 33(1)):
//!
//! - Binomial: an outer IRLS loop replaces −ℓ/n by its quadratic
//!   approximation at the current fit, and cyclic coordinate descent
//!   minimises the penalised approximation. This is the algorithm of the
//!   Fortran routine `lognet2n` in glmnet 4.1-6, with its safeguards: a
//!   linear predictor beyond ±log(1/pmin − 1) ≈ ±20.7 (pmin = 1e-9) gets a
//!   fitted probability of exactly 0 or 1 and so IRLS weight 0, and a fit
//!   whose IRLS weights sum to about pmin or less is saturated
//!   ([`LassoPath::saturated_from`]).
//! - Gaussian: coordinate descent with covariance updates. The fit reads the
//!   data only through n, the column means, the label mean and variance,
//!   `Zcᵀ yc / n` and columns of the centred Gram matrix `Zcᵀ Zc / n`, so it
//!   is exactly reproducible from per-site sums of those statistics.
//!
//! Both solvers walk the λ path from the largest value down and start each λ
//! from the previous solution (warm start). Coordinate descent runs on the
//! sequential strong set `{f : |g_f(λ_prev)| > 2λ − λ_prev}`, where g is the
//! gradient of the smooth part, and cycles over the non-zero coefficients
//! until they settle. Then the optimality (KKT) condition `|g_f| ≤ λ` is
//! checked on every other feature, and any violator joins the set before
//! solving again.
//!
//! Convergence, as glmnet's `thresh` (default 1e-7): a coordinate-descent
//! loop stops when one pass over its coordinates changes no coefficient by
//! more than `Δβ_f² · h_f < tolerance · D0`, where h_f is the curvature of the
//! smooth objective along coordinate f (the weighted mean of z_f², or the
//! column variance for the Gaussian family, and the weight sum for the
//! intercept) and D0 is the null deviance per row: `−ℓ(logit ȳ, 0) / n` for
//! the binomial family and `Σ (y_i − ȳ)² / n` for the Gaussian family.
//!
//! The λ path ([`lambda_grid`]) runs log-spaced from
//! `λ_max = max_f |Σ_i z_if (y_i − ȳ)| / n`, the smallest λ at which every
//! coefficient is zero (for both families), down to `ε · λ_max`.
//! Cross-validation ([`lasso_cv`]) follows `cv.glmnet` of glmnet 4.1-6 for the
//! binomial family and `LassoCV` of scikit-learn 1.9.1 for the Gaussian
//! family:
//!
//! - Held-out loss per row: binomial deviance `−2 log p̂(y)` with p̂ clamped
//!   to [1e-5, 1 − 1e-5] (glmnet's `prob_min`), or squared error.
//! - Curve: the mean of the per-fold mean losses, weighted by fold size for
//!   the binomial family (`cvm`) and unweighted for the Gaussian family
//!   (`LassoCV.mse_path_.mean(axis=1)`), and its standard error
//!   `sqrt(Σ_k a_k (L_k − mean)² / Σ_k a_k / (K − 1))` with the same fold
//!   weights a_k (`cvsd`). With several fold partitions, the curves and
//!   standard errors are averaged over partitions.
//! - λ_min is the largest λ with the smallest mean, λ_1se the largest λ whose
//!   mean is at most the minimum plus its standard error (`lambda.1se`).
//! - The selection is the non-zero coefficients of the path fitted on all
//!   rows at the chosen λ. If there are none, the largest λ with at least
//!   one is used instead and [`LassoFlags::fell_back_to_first_nonzero`] is
//!   set.
//!
//! Deliberate differences from the reference implementations:
//!
//! - Folds do not standardise their training rows again, whereas
//!   `cv.glmnet` with its default `standardize = TRUE` would. The fixtures
//!   compare against `standardize = FALSE`.
//! - The path always has `n_lambda` values. glmnet ends its default path
//!   early once the deviance ratio exceeds 0.999 or gains less than 1e-5
//!   per step; with an explicit λ sequence, as in the fixtures, it does not.
//! - Fold assignment is radstudy's own ([`stratified_fold_ids`]), so a run
//!   matches glmnet or scikit-learn only when they are given the same fold
//!   ids.

mod binomial;
mod cv;
mod design;
mod folds;
mod gaussian;
mod grid;
mod params;
mod path;

#[cfg(test)]
mod reference_tests;

pub use cv::{LassoCv, LassoFlags, lasso_cv, lasso_cv_with_folds};
pub use folds::stratified_fold_ids;
pub use grid::{lambda_grid, lambda_max};
pub use params::{Family, LambdaChoice, LassoParams, ValidLassoParams};
pub use path::{LassoPath, lasso_path};
